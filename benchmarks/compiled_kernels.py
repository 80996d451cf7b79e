"""The compiled batch-norm and LeakyReLU kernels (numba, ``tinygan/kernels/jit.py``) against the NumPy ones.

    python benchmarks/compiled_kernels.py                        # the DCGAN's layers at 28 and 64 px, batch 64
    python benchmarks/compiled_kernels.py --sizes 28 --batch 128 --markdown out.md

For every batch-norm and LeakyReLU layer of the bench's DCGANs, at the input shape and memory
layout the training step hands it (``tinygan.benchmark.kernels.walk_layers``: channels-last
after a convolution), it checks that the compiled kernels agree with the NumPy ones (largest
difference relative to the largest value), then times both the training forward and the backward,
alternating blocks of calls (NumPy, compiled; compiled, NumPy; ...), and reports the medians.
Both run on tinygan's thread count (``--threads``, default: tinygan's).  Needs numba
(``pip install -e ".[fast]"``).  Run it on an otherwise idle machine.
"""
from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tinygan  # noqa: E402,F401  (before NumPy: OpenBLAS's thread timeout)

import numpy as np  # noqa: E402

from tinygan import nn  # noqa: E402
from tinygan.benchmark.kernels import Config, walk_layers  # noqa: E402
from tinygan.io import atomic_write_text  # noqa: E402
from tinygan.kernels import activations as act  # noqa: E402
from tinygan.kernels import batchnorm as bn  # noqa: E402
from tinygan.kernels import jit  # noqa: E402
from tinygan.kernels import threads as _threads  # noqa: E402


def _array(shape, channels_last: bool, rng) -> np.ndarray:
    """A float32 (N, C, H, W) or (N, C) array, as an NCHW view of NHWC memory when ``channels_last``."""
    a = rng.standard_normal(shape).astype(np.float32)
    if channels_last and a.ndim == 4:
        a = np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    return a


def cases(cfg: Config, rng) -> list[tuple[str, str, dict]]:
    """(layer name, op, {pass: callable}) for each batch norm and LeakyReLU of G and D at ``cfg``."""
    out = []
    for layer in walk_layers(cfg):
        if isinstance(layer.module, nn.BatchNorm2d):
            x, g = (_array(layer.in_shape, layer.channels_last, rng) for _ in range(2))
            c = layer.in_shape[1]
            gamma, beta = rng.uniform(0.5, 1.5, c).astype(np.float32), rng.standard_normal(c).astype(np.float32)
            _, mean, _, invstd = bn.batch_norm_train_forward(x, gamma, beta, 1e-5)
            out.append((layer.name, "batch_norm", {
                "fwd": lambda x=x, gamma=gamma, beta=beta: bn.batch_norm_train_forward(x, gamma, beta, 1e-5),
                "bwd": lambda g=g, x=x, mean=mean, invstd=invstd, gamma=gamma:
                    bn.batch_norm_train_backward(g, x, mean, invstd, gamma)}))
        elif isinstance(layer.module, nn.LeakyReLU):
            x, g = (_array(layer.in_shape, layer.channels_last, rng) for _ in range(2))
            slope = layer.module.negative_slope
            y = act.leaky_relu(x, slope)
            out.append((layer.name, "leaky_relu", {
                "fwd": lambda x=x, slope=slope: act.leaky_relu(x, slope),
                "bwd": lambda g=g, y=y, slope=slope: act.leaky_relu_backward_from_output(g, y, slope)}))
    return out


def _first(result):
    return result[0] if isinstance(result, tuple) else result


def agreement(fn) -> float:
    """max |compiled - NumPy| / max |NumPy| of the call's (first) output."""
    jit.set_enabled(False)
    ref = _first(fn())
    jit.set_enabled(True)
    new = _first(fn())
    return float(np.abs(new - ref).max() / max(float(np.abs(ref).max()), 1e-30))


def time_pair(fn, blocks: int, calls: int) -> tuple[float, float]:
    """Median seconds per call, NumPy kernels and compiled ones, from alternating blocks of ``calls`` calls."""
    samples = {False: [], True: []}
    for b in range(blocks):
        for compiled in ((False, True) if b % 2 == 0 else (True, False)):
            jit.set_enabled(compiled)
            fn()                                                  # warm-up (and the JIT's first compile)
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            samples[compiled].append((time.perf_counter() - start) / calls)
    return statistics.median(samples[False]), statistics.median(samples[True])


def run(sizes, batch: int, blocks: int, calls: int, rng) -> list[dict]:
    rows = []
    for size in sizes:
        cfg = Config(image_size=size, batch=batch)
        for name, op, passes in cases(cfg, rng):
            for pass_, fn in passes.items():
                err = agreement(fn)
                t_np, t_jit = time_pair(fn, blocks, calls)
                rows.append({"config": cfg.name, "layer": name, "op": op, "pass": pass_, "rel_diff": err,
                             "numpy_ms": t_np * 1e3, "compiled_ms": t_jit * 1e3})
    return rows


def markdown(rows: list[dict], argv: list[str], wall: float) -> str:
    import numba
    lines = [
        "# Compiled (numba) vs NumPy kernels: batch norm and LeakyReLU",
        "",
        f"Command: `python benchmarks/compiled_kernels.py {' '.join(argv)}`  ",
        f"Machine: {platform.machine()}, {_threads.get_num_threads()} thread(s); Python {platform.python_version()}, "
        f"NumPy {np.__version__}, numba {numba.__version__}, tinygan {getattr(tinygan, '__version__', '?')}  ",
        f"Wall time: {wall:.0f} s; median ms per call of alternating blocks; inputs as the training step "
        "hands them (channels-last after a convolution); rel. diff = max |compiled - NumPy| / max |NumPy|",
        "",
        "| config | layer | op | pass | NumPy, ms | compiled, ms | speed-up | rel. diff |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['config']} | {r['layer']} | {r['op']} | {r['pass']} | {r['numpy_ms']:.3f} | "
                     f"{r['compiled_ms']:.3f} | {r['numpy_ms'] / r['compiled_ms']:.2f}x | {r['rel_diff']:.1e} |")
    by_config = {}
    for r in rows:
        t = by_config.setdefault(r["config"], [0.0, 0.0])
        t[0] += r["numpy_ms"]
        t[1] += r["compiled_ms"]
    lines += ["", "Sum of the rows per configuration (each layer's forward and backward once, as in one "
              "D or G pass; a training iteration runs D's layers about three times):", "",
              "| config | NumPy, ms | compiled, ms |", "|---|---|---|"]
    lines += [f"| {k} | {a:.2f} | {b:.2f} |" for k, (a, b) in by_config.items()]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description="Compiled (numba) vs NumPy batch-norm and LeakyReLU kernels "
                                            "on the DCGAN's layers.")
    p.add_argument("--sizes", type=int, nargs="+", default=[28, 64], choices=[28, 32, 64])
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--blocks", type=int, default=6, help="alternating timed blocks per kernel and side")
    p.add_argument("--calls", type=int, default=10, help="calls per timed block")
    p.add_argument("--threads", type=int, default=None, help="threads for both (default: tinygan's)")
    p.add_argument("--markdown", type=Path, default=None, help="also write the table to this file")
    args = p.parse_args(argv)
    for flag in ("batch", "blocks", "calls", "threads"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            p.error(f"--{flag} must be at least 1, got {value}")
    if args.markdown is not None and args.markdown.is_dir():
        p.error(f"--markdown {args.markdown}: is a folder; give a file name")
    if not jit.available():
        p.error('needs numba: pip install -e ".[fast]"')
    if args.threads:
        _threads.set_num_threads(args.threads)
    previous = jit.enabled()
    start = time.perf_counter()
    try:
        rows = run(args.sizes, args.batch, args.blocks, args.calls, np.random.default_rng(0))
    finally:
        jit.set_enabled(previous)
    text = markdown(rows, argv, time.perf_counter() - start)
    print(text, end="")
    if args.markdown is not None:
        atomic_write_text(args.markdown, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
