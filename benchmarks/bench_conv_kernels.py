"""Micro-benchmark: tinygan's conv kernels against PyTorch's, on the DCGAN shapes.

Every layer of a DCGAN is one convolution "x (N,C,H,W) * w (O,C,k,k) -> y
(N,O,Ho,Wo)".  A discriminator conv runs conv2d forward and grad_input /
grad_weight backward; a generator transposed conv runs the same three kernels
in another order (its forward is conv2d_grad_input of the conv it transposes,
its input-gradient is conv2d).  So each row below is one such conv shape, and
the three passes are timed on it:

    fwd  = conv2d(x, w)                  vs torch.nn.functional.conv2d
    dx   = conv2d_grad_input(gy, w)      vs torch.nn.grad.conv2d_input
    dw   = conv2d_grad_weight(x, gy)     vs torch.nn.grad.conv2d_weight

float32, batch 64, torch on the same number of threads as NumPy's BLAS.
Before timing, the results are checked to agree (max relative error < 1e-4).
Times are medians of 9 runs, alternating between the two libraries in
blocks of 3 after a warm-up call, so that background load hits both alike.

    python benchmarks/bench_conv_kernels.py                # all shapes
    python benchmarks/bench_conv_kernels.py --only dcgan64 --channels-last
    python benchmarks/bench_conv_kernels.py --out benchmarks/results/conv_kernels.md
    python benchmarks/bench_conv_kernels.py --threads 1 --cpu-time   # on a busy machine

``--channels-last`` hands tinygan its inputs as NCHW views of NHWC buffers,
which is what its own kernels (and elementwise ops on their outputs) produce
inside a network; torch always gets contiguous NCHW tensors.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tinygan.kernels import (  # noqa: E402
    conv2d,
    conv2d_grad_input,
    conv2d_grad_weight,
    conv_output_size,
)

# (group, label, N, C, H, W, O, k, s, p): the conv "x (N,C,H,W) * w (O,C,k,k)".
# For a generator layer "convT Cin->Cout on h x h" the conv it transposes maps
# the (bigger) output back to the input: C = Cout, O = Cin, H = output size.
SHAPES = [
    ("dcgan64", "D conv 3->64 @64", 64, 3, 64, 64, 64, 4, 2, 1),
    ("dcgan64", "D conv 64->128 @32", 64, 64, 32, 32, 128, 4, 2, 1),
    ("dcgan64", "D conv 128->256 @16", 64, 128, 16, 16, 256, 4, 2, 1),
    ("dcgan64", "D conv 256->512 @8", 64, 256, 8, 8, 512, 4, 2, 1),
    ("dcgan64", "D conv 512->1 @4 k4s1p0", 64, 512, 4, 4, 1, 4, 1, 0),
    ("dcgan64", "G convT 100->512 @1 k4s1p0", 64, 512, 4, 4, 100, 4, 1, 0),
    ("dcgan64", "G convT 512->256 @4", 64, 256, 8, 8, 512, 4, 2, 1),
    ("dcgan64", "G convT 256->128 @8", 64, 128, 16, 16, 256, 4, 2, 1),
    ("dcgan64", "G convT 128->64 @16", 64, 64, 32, 32, 128, 4, 2, 1),
    ("dcgan64", "G convT 64->3 @32", 64, 3, 64, 64, 64, 4, 2, 1),
    ("mnist32", "D conv 1->64 @32", 64, 1, 32, 32, 64, 4, 2, 1),
    ("mnist32", "D conv 64->128 @16", 64, 64, 16, 16, 128, 4, 2, 1),
    ("mnist32", "D conv 128->256 @8", 64, 128, 8, 8, 256, 4, 2, 1),
    ("mnist32", "D conv 256->1 @4 k4s1p0", 64, 256, 4, 4, 1, 4, 1, 0),
    ("mnist32", "G convT 100->256 @1 k4s1p0", 64, 256, 4, 4, 100, 4, 1, 0),
    ("mnist32", "G convT 64->1 @16", 64, 1, 32, 32, 64, 4, 2, 1),
    ("mnist28", "D conv 1->64 @28", 64, 1, 28, 28, 64, 4, 2, 1),
    ("mnist28", "D conv 64->128 @14", 64, 64, 14, 14, 128, 4, 2, 1),
    ("mnist28", "D conv 128->1 @7 k7s1p0", 64, 128, 7, 7, 1, 7, 1, 0),
    ("mnist28", "G convT 100->128 @1 k7s1p0", 64, 128, 7, 7, 100, 7, 1, 0),
    ("mnist28", "G convT 64->1 @14", 64, 1, 28, 28, 64, 4, 2, 1),
]


SETTLE_SECONDS = 0.3


CLOCK = time.perf_counter        # --cpu-time: time.process_time


def time_pair(ours, theirs, rounds=3, reps=3):
    """Median wall times (ms) of ``ours()`` and ``theirs()``.

    The two alternate in blocks of ``reps`` calls, ``rounds`` times, so that
    both see the same background load (this machine may be shared).  Both
    libraries keep their worker threads spinning for a while after a call
    (OpenMP in torch, OpenBLAS in NumPy), which steals the cores from the
    other one: sleeping before each block lets them go idle.  The first call
    of each block is a warm-up and is not counted.
    """
    times = ([], [])
    for _ in range(rounds):
        for fn, out in zip((ours, theirs), times):
            time.sleep(SETTLE_SECONDS)
            fn()
            for _ in range(reps):
                t0 = CLOCK()
                fn()
                out.append(CLOCK() - t0)
    return tuple(1e3 * statistics.median(t) for t in times)


def max_rel_err(ours, theirs):
    theirs = theirs.detach().numpy().astype(np.float64)
    return float(np.abs(np.asarray(ours, np.float64) - theirs).max() / max(np.abs(theirs).max(), 1e-30))


def channels_last(a):
    """The same values as an NCHW view of an NHWC buffer."""
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


def bench_shape(torch, shape, use_channels_last):
    _, label, N, C, H, W, O, k, s, p = shape
    rng = np.random.default_rng(0)
    Ho, Wo = conv_output_size(H, k, s, p), conv_output_size(W, k, s, p)
    x = rng.standard_normal((N, C, H, W), dtype=np.float32)
    w = rng.standard_normal((O, C, k, k), dtype=np.float32) * np.float32(0.05)
    gy = rng.standard_normal((N, O, Ho, Wo), dtype=np.float32)
    tx, tw, tgy = (torch.from_numpy(a) for a in (x, w, gy))
    if use_channels_last:
        x, gy = channels_last(x), channels_last(gy)
    F, G = torch.nn.functional, torch.nn.grad
    passes = {
        "fwd": (lambda: conv2d(x, w, s, p),
                lambda: F.conv2d(tx, tw, stride=s, padding=p)),
        "dx": (lambda: conv2d_grad_input(gy, w, (H, W), s, p),
               lambda: G.conv2d_input(tx.shape, tw, tgy, stride=s, padding=p)),
        "dw": (lambda: conv2d_grad_weight(x, gy, (k, k), s, p),
               lambda: G.conv2d_weight(tx, tw.shape, tgy, stride=s, padding=p)),
    }
    flops = 2.0 * N * Ho * Wo * O * C * k * k
    rows = []
    with torch.no_grad():
        for name, (ours, theirs) in passes.items():
            err = max_rel_err(ours(), theirs())
            if not err < 1e-4:
                raise SystemExit(f"{label} {name}: tinygan and torch disagree, max rel err {err:.2e}")
            t_ours, t_theirs = time_pair(ours, theirs)
            rows.append((label, name, t_ours, t_theirs, t_ours / t_theirs,
                         flops / (t_ours * 1e-3) / 1e9, err))
    return rows


def markdown(rows, threads, blas_threads, clock, use_channels_last, load):
    lines = [
        f"float32, batch 64, torch.set_num_threads({threads}), NumPy {blas_threads}, "
        f"{clock}, "
        f"tinygan inputs {'channels-last views' if use_channels_last else 'contiguous NCHW'}; "
        "median ms; ratio = tinygan / torch (< 1: tinygan faster); "
        f"1-min load average before/after: {load[0]:.2f}/{load[1]:.2f}",
        "",
        "| shape | pass | tinygan ms | torch ms | ratio | tinygan GFLOP/s | max rel err |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for label, name, a, b, r, gf, err in rows:
        lines.append(f"| {label} | {name} | {a:.2f} | {b:.2f} | {r:.2f} | {gf:.0f} | {err:.1e} |")
    total_ours = sum(r[2] for r in rows)
    total_theirs = sum(r[3] for r in rows)
    lines.append(f"| **total** | | **{total_ours:.1f}** | **{total_theirs:.1f}** | "
                 f"**{total_ours / total_theirs:.2f}** | | |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", choices=sorted({s[0] for s in SHAPES}), action="append",
                    help="benchmark only this group of shapes (repeatable)")
    ap.add_argument("--threads", type=int, default=os.cpu_count(),
                    help="threads for torch and, through threadpoolctl when it is installed, "
                         "for NumPy's BLAS (default: all cores)")
    ap.add_argument("--cpu-time", action="store_true",
                    help="time CPU seconds of this process instead of wall time: with "
                         "--threads 1 this is robust against other load on a shared machine")
    ap.add_argument("--channels-last", action="store_true",
                    help="give tinygan NCHW views of NHWC buffers, as inside a network")
    ap.add_argument("--out", type=Path, help="also write the markdown table here")
    args = ap.parse_args(argv)
    try:
        import torch
    except ImportError:
        raise SystemExit("this benchmark compares against PyTorch: pip install torch")
    global CLOCK
    if args.cpu_time:
        CLOCK = time.process_time
    torch.set_num_threads(args.threads)
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(args.threads, user_api="blas")
        blas_threads = f"BLAS threads {args.threads}"
    except ImportError:
        blas_threads = "BLAS threads as configured (threadpoolctl not installed)"
    shapes = [s for s in SHAPES if not args.only or s[0] in args.only]
    load_before = os.getloadavg()[0]
    rows = []
    for shape in shapes:
        rows += bench_shape(torch, shape, args.channels_last)
        for r in rows[-3:]:
            print(f"  {r[0]:<30} {r[1]:<4} {r[2]:8.2f} ms  torch {r[3]:8.2f} ms  x{r[4]:.2f}",
                  file=sys.stderr, flush=True)
    table = markdown(rows, args.threads, blas_threads,
                     "CPU time" if args.cpu_time else "wall time", args.channels_last,
                     (load_before, os.getloadavg()[0]))
    print(table)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(table + "\n")


if __name__ == "__main__":
    main()
