"""Where one training iteration's time goes: every op, and the convolutions split into GEMM and copies.

    python benchmarks/profile_step.py                          # the bench's 28 px batch-64 iteration
    python benchmarks/profile_step.py --size 64 --batch 128
    python benchmarks/profile_step.py --trainer                # `tinygan train`'s own step (EMA, lazy R1)
    python benchmarks/profile_step.py --markdown out.md        # also write the table to a file

It times a few warm-up iterations, then ``--steps`` more, with a timer around

* every autograd op's ``forward`` and ``backward`` (``tinygan.autograd.Function``
  subclasses) and the optimizers' ``step``;
* inside the convolution kernels (``tinygan/kernels/conv.py``), the public kernels and their
  layout helpers: the zero-padded channels-last copy (``_to_nhwc``), im2col, col2im,
  depth-to-space, the weight re-ordering.  A kernel's own time, its helpers' taken out, is
  its matrix products (plus a few small reshapes): the "conv GEMMs" line.

Each line is *self* time (a timer's nested timers subtracted), so the lines add up to the
iteration; "not timed" is the rest (Python between ops, the autograd walk, the losses'
scalar work).  The "GEMM floor" is the iteration's convolution FLOPs
(``tinygan.benchmark.kernels.step_gflop``) at the measured rate of NumPy's GEMM on the
conv shapes (``--gemm-rate``, default: measured here on the 28 px D's middle convolution,
the best of a few calls): no NumPy/BLAS implementation of this iteration can be faster.

Like ``tinygan train``, it keeps freed memory mapped (``tinygan.kernels.memory``); the
timers cost about a microsecond per call.  Run it on an otherwise idle machine: the numbers
of a shared one are noise.  ``docs/benchmarks.md`` ("Where the time goes") has a run.
"""
from __future__ import annotations

import argparse
import collections
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tinygan  # noqa: E402  (before NumPy: it sets OpenBLAS's thread timeout, docs/benchmarks.md)

import numpy as np  # noqa: E402

from tinygan.kernels import conv as _conv  # noqa: E402
from tinygan.kernels import threads as _threads  # noqa: E402

# The conv module's layout helpers: each moves data and does no arithmetic.
COPY_HELPERS = ("_to_nhwc", "_im2col", "_col2im", "_depth_to_space", "_weight_rows", "_pixel_rows")
# The conv module's kernels (public ones and the grad-input dispatcher): their own time is the GEMMs.
CONV_KERNELS = ("conv2d", "conv2d_grad_weight", "_conv2d_grad_input_nhwc")


class Profiler:
    """Self-time accumulators keyed by (group, name); install() wraps, uninstall() restores."""

    def __init__(self):
        self.total = collections.defaultdict(float)     # key -> seconds (self time)
        self.calls = collections.Counter()
        self._stack: list[float] = []                   # children's time of each open timer
        self._restore: list[tuple[object, str, object]] = []

    def _wrap(self, owner, attr: str, key: tuple[str, str]) -> None:
        fn = owner.__dict__[attr] if isinstance(owner, type) else getattr(owner, attr)
        total, calls, stack, clock = self.total, self.calls, self._stack, time.perf_counter

        def timed(*args, **kwargs):
            stack.append(0.0)
            start = clock()
            try:
                return fn(*args, **kwargs)
            finally:
                spent = clock() - start
                children = stack.pop()
                total[key] += spent - children
                calls[key] += 1
                if stack:
                    stack[-1] += spent

        self._restore.append((owner, attr, fn))
        setattr(owner, attr, timed)

    def install(self) -> "Profiler":
        from tinygan import optim
        from tinygan.autograd import Function

        def subclasses(cls):
            for sub in cls.__subclasses__():
                yield sub
                yield from subclasses(sub)

        for cls in sorted(set(subclasses(Function)), key=lambda c: c.__name__):
            for attr, label in (("forward", "fwd"), ("backward", "bwd")):
                if attr in cls.__dict__:
                    self._wrap(cls, attr, ("op", f"{cls.__name__} {label}"))
        self._wrap(optim.Optimizer, "step", ("op", "optimizer step (Adam, ...)"))
        for name in CONV_KERNELS:
            self._wrap(_conv, name, ("gemm", name))
        for name in COPY_HELPERS:
            self._wrap(_conv, name, ("copy", name))
        return self

    def uninstall(self) -> None:
        for owner, attr, fn in reversed(self._restore):
            setattr(owner, attr, fn)
        self._restore.clear()

    def reset(self) -> None:
        self.total.clear()
        self.calls.clear()


def measure_gemm_rate(repeats: int = 7) -> float:
    """GFLOP/s of NumPy's float32 GEMM on a DCGAN conv shape ((3136, 1024) @ (1024, 128)), best of ``repeats``."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3136, 1024), dtype=np.float32)
    b = rng.standard_normal((1024, 128), dtype=np.float32)
    out = np.empty((3136, 128), np.float32)
    best = float("inf")
    for _ in range(repeats + 2):
        start = time.perf_counter()
        np.matmul(a, b, out=out)
        best = min(best, time.perf_counter() - start)
    return 2 * 3136 * 1024 * 128 / best / 1e9


def make_step(args):
    """(step function, conv GFLOP of one iteration, label) for the bench's iteration or the trainer's."""
    from tinygan.benchmark.kernels import Config, step_gflop
    if args.trainer:
        from tinygan.run import TrainConfig, Trainer
        out = Path(tempfile.gettempdir()) / "tinygan-profile-unused"       # train_step() writes no files
        trainer = Trainer(TrainConfig(seed=0, out=str(out), progress=False, batch_size=args.batch))
        cfg = Config(image_size=28, batch=args.batch)

        def step(i):
            trainer.train_step()
            trainer.step += 1
        return step, step_gflop(cfg), f"`tinygan train`'s step (its defaults, batch {args.batch})"
    from tinygan.benchmark.step import TinyganSide, make_data
    cfg = Config(image_size=args.size, batch=args.batch)
    side = TinyganSide(cfg)
    side.set_data(*make_data(cfg))
    return side.step, step_gflop(cfg), f"The bench's DCGAN iteration ({cfg.name})"


def report(prof: Profiler, steps: int, times: list[float], gflop: float, rate: float, label: str,
           threads: int, floor_note: str = "") -> str:
    per = {k: v / steps * 1e3 for k, v in prof.total.items()}          # ms per iteration
    mean = float(np.mean(times)) * 1e3
    timed = sum(per.values())
    groups = {g: sum(v for (gg, _), v in per.items() if gg == g) for g in ("gemm", "copy", "op")}
    floor = gflop / rate * 1e3
    lines = [f"{label}, {threads} thread(s): mean {mean:.1f} ms, median "
             f"{float(np.median(times)) * 1e3:.1f} ms over {steps} iterations.", "",
             f"GEMM floor: {gflop:.2f} GFLOP of convolutions at {rate:.0f} GFLOP/s (NumPy's GEMM on a conv "
             f"shape) = {floor:.1f} ms{floor_note}.", "",
             "| where | ms / iteration | calls / iteration | share |", "| --- | --- | --- | --- |"]

    def row(name, ms, calls=""):
        lines.append(f"| {name} | {ms:.2f} | {calls} | {100 * ms / mean:.1f}% |")

    row("**conv GEMMs** (the conv kernels' own time)", groups["gemm"])
    row("**conv layout copies** (helpers below)", groups["copy"])
    row("**everything else timed** (ops below)", groups["op"])
    row("**not timed** (Python between ops, autograd, losses)", mean - timed)
    for group in ("gemm", "copy", "op"):
        for (g, name), ms in sorted(per.items(), key=lambda kv: -kv[1]):
            if g == group and ms >= 0.005:
                row(f"{group}: `{name}`", ms, f"{prof.calls[(g, name)] / steps:.0f}")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=28, choices=[28, 32, 64], help="image size of the bench's DCGAN")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=32, help="timed iterations (the trainer's lazy R1: use a multiple of 16)")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--threads", type=int, default=None, help="element-wise threads (default: tinygan's)")
    p.add_argument("--min-parallel-kib", type=int, default=None, metavar="KIB",
                   help="element-wise work on less input than this runs on one thread (default: tinygan's "
                        "MIN_PARALLEL_BYTES)")
    p.add_argument("--trainer", action="store_true", help="profile `tinygan train`'s step (28 px, its defaults)")
    p.add_argument("--gemm-rate", type=float, default=None, help="GFLOP/s for the floor (default: measured)")
    p.add_argument("--markdown", default=None, help="also write the table here")
    args = p.parse_args(argv)
    for flag in ("batch", "steps"):
        if getattr(args, flag) < 1:
            p.error(f"--{flag} must be >= 1, got {getattr(args, flag)}")
    if args.warmup < 0:
        p.error(f"--warmup must be >= 0, got {args.warmup}")
    if args.gemm_rate is not None and args.gemm_rate <= 0:
        p.error(f"--gemm-rate must be > 0, got {args.gemm_rate}")
    if args.trainer and args.size != 28:
        p.error("--trainer profiles `tinygan train`'s 28 px job; leave out --size")

    from tinygan.kernels.memory import reuse_freed_memory
    reuse_freed_memory()
    if args.threads is not None:
        if args.threads < 1:
            p.error(f"--threads must be >= 1, got {args.threads}")
        _threads.set_num_threads(args.threads)
    if args.min_parallel_kib is not None and args.min_parallel_kib < 1:
        p.error(f"--min-parallel-kib must be >= 1, got {args.min_parallel_kib}")
    threshold = _threads.MIN_PARALLEL_BYTES
    if args.min_parallel_kib is not None:
        _threads.MIN_PARALLEL_BYTES = args.min_parallel_kib << 10
    try:
        return _profile(args, argv)
    finally:
        _threads.MIN_PARALLEL_BYTES = threshold                       # as it was (a caller in this process)


def _profile(args, argv) -> int:
    """Warm up, time ``args.steps`` iterations under the profiler, print (and write) the report."""
    step, gflop, label = make_step(args)
    label += f" (element-wise work threaded from {_threads.MIN_PARALLEL_BYTES >> 10} KiB of input)"
    rate = args.gemm_rate or measure_gemm_rate()
    for i in range(args.warmup):
        step(i)
    prof = Profiler().install()
    times = []
    try:
        for i in range(args.steps):
            start = time.perf_counter()
            step(args.warmup + i)
            times.append(time.perf_counter() - start)
    finally:
        prof.uninstall()
    text = report(prof, args.steps, times, gflop, rate, label, _threads.get_num_threads(),
                  " (the plain iteration's; R1's double backward adds more on every 16th step)" if args.trainer else "")
    text += (f"\n`python benchmarks/profile_step.py {' '.join(sys.argv[1:] if argv is None else argv)}` on "
             f"{platform.machine()}, Python {platform.python_version()}, NumPy {np.__version__}, "
             f"tinygan {tinygan.__version__}.\n")
    print(text, end="")
    if args.markdown:
        try:
            Path(args.markdown).write_text(text)
        except OSError as e:
            print(f"profile_step.py: error: --markdown {args.markdown}: {e.strerror or e}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
