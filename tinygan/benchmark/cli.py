"""The ``tinygan bench`` sub-command: kernels and a whole DCGAN iteration against PyTorch.

    tinygan bench --device cpu                          everything: 64x64, 28x28, 32x32 at batch 64 and 128
    tinygan bench --device cpu --sizes 28 --batch 64    one configuration
    tinygan bench --only step --json out.json --markdown results.md
    tinygan bench --device cuda --tf32                  GPU, plus a second table with TF32 on for both
    tinygan bench --quick                               tiny shapes, 1-2 repetitions: agreement only (tests)

``tinygan.cli`` calls :func:`add_parser`; PyTorch is imported when the
command runs, not when the parser is built.
"""
from __future__ import annotations

import os
import sys

import numpy as np

from tinygan.backend import cupy_module
from tinygan.benchmark import kernels as K
from tinygan.benchmark import report as R
from tinygan.benchmark import step as S
from tinygan.benchmark.kernels import Config
from tinygan.benchmark.timing import Budget, machine_ceilings
from tinygan.kernels import threads as tg_threads

SIZES = (64, 28, 32)
BATCHES = (64, 128)


def default_threads() -> int:
    """NumPy's BLAS thread count (threadpoolctl), else the CPU count."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return os.cpu_count() or 1
    for pool in threadpool_info():
        path = pool.get("filepath", "")
        if pool.get("user_api") == "blas" and ("numpy" in path or "scipy_openblas" in path):
            return int(pool["num_threads"])
    return os.cpu_count() or 1


def add_parser(subparsers, common=None) -> None:
    """Register ``bench`` on the ``tinygan`` command's sub-parsers."""
    p = subparsers.add_parser(
        "bench", parents=[common] if common else [], help="benchmark kernels and a whole DCGAN iteration against PyTorch",
        description="Check agreement with PyTorch, then time each DCGAN kernel (forward and backward) and a "
                    "whole training iteration in both frameworks (median of repeated runs after a warm-up). "
                    "Needs PyTorch: pip install -e \".[bench]\". See docs/benchmarks.md.")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--quick", action="store_true",
                   help="tiny shapes (batch 8, ngf = ndf = 8), 1-2 repetitions: an agreement check, not a timing")
    p.add_argument("--batch", type=int, nargs="+", default=list(BATCHES), metavar="N", help="batch sizes")
    p.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), metavar="S",
                   help="DCGAN image sizes: 64 (3 channels, PyTorch's example) and 28/32 (1 channel, MNIST)")
    p.add_argument("--only", choices=["kernels", "step"], default=None, help="run one part only")
    p.add_argument("--reps", type=int, default=None,
                   help="timed repetitions per measurement (default: kernels as many as fit ~0.3 s, steps 10)")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for both (default: NumPy's BLAS thread count)")
    p.add_argument("--parity-iters", type=int, default=10, help="float32 iterations compared before timing")
    p.add_argument("--f64-iters", type=int, default=3,
                   help="float64 iterations compared to ~1e-9 (0: skip)")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurement")
    p.add_argument("--json", default=None, metavar="PATH", help="write every number as JSON")
    p.add_argument("--markdown", default=None, metavar="PATH",
                   help="write a results file: machine, versions, command, tables, targets")
    p.add_argument("--tf32", action="store_true", help="GPU: a second table with TF32 on for both frameworks")
    p.add_argument("--same-process", action="store_true",
                   help="CPU: time both frameworks in this process, alternating blocks (the default runs each "
                        "framework in its own processes, alternating; the GPU always uses one process)")
    p.set_defaults(func=run)


def command_line(args) -> str:
    """The command that reproduces this run, every setting spelled out."""
    parts = ["tinygan bench", f"--device {args.device}", "--sizes " + " ".join(map(str, args.sizes)),
             "--batch " + " ".join(map(str, args.batch)), f"--threads {args.threads}",
             f"--parity-iters {args.parity_iters}", f"--f64-iters {args.f64_iters}"]
    if args.quick:
        parts.append("--quick")
    if args.only:
        parts.append(f"--only {args.only}")
    if args.reps is not None:
        parts.append(f"--reps {args.reps}")
    if args.no_memory:
        parts.append("--no-memory")
    if args.tf32:
        parts.append("--tf32")
    if getattr(args, "same_process", False):
        parts.append("--same-process")
    if args.json:
        parts.append(f"--json {args.json}")
    if args.markdown:
        parts.append(f"--markdown {args.markdown}")
    return " ".join(parts)


def _import_torch():
    try:
        import torch
    except ImportError as e:
        raise RuntimeError('the benchmarks compare with PyTorch, which is not installed: '
                           'pip install -e ".[bench]"') from e
    return torch


def _set_tf32(torch, on: bool) -> None:
    """TF32 for float32 GEMMs/convolutions in both frameworks (GPU only)."""
    torch.backends.cuda.matmul.allow_tf32 = on
    torch.backends.cudnn.allow_tf32 = on
    try:
        from cupy._core import _routines_linalg as linalg   # CuPy's switch behind CUPY_TF32 (not public API)
        mode = linalg.COMPUTE_TYPE_TF32 if on else linalg.COMPUTE_TYPE_DEFAULT
        linalg.set_compute_type(np.dtype(np.float32), mode)
    except (ImportError, AttributeError) as e:
        if on or os.environ.get("CUPY_TF32") == "1":
            raise RuntimeError(f"cannot switch CuPy's TF32 mode in this CuPy version ({e}); set CUPY_TF32=1 "
                               "(on) or unset it (off) before starting tinygan bench") from e


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _isolated(args) -> bool:
    """Each framework in its own processes: the CPU default (see tinygan/benchmark/isolated.py)."""
    return args.device == "cpu" and not getattr(args, "same_process", False)


def timing_method(args) -> str:
    if _isolated(args):
        return ("each framework in its own processes, alternating (tinygan, PyTorch, then PyTorch, tinygan, ...): "
                "one fresh process per timed block, importing only its own framework")
    if args.device == "cpu":
        return "both frameworks in this process, alternating blocks (--same-process)"
    return "both frameworks in one process, alternating blocks, CUDA events"


def _run_tables(args, configs, budgets, ceilings, tf32: bool) -> dict:
    table = {"tf32": tf32, "kernels": [], "steps": []}
    if args.only != "step":
        _log(f"kernels{' (TF32)' if tf32 else ''}: agreement, then timing")
        table["kernels"] = K.run_kernels(configs, args.device, budgets["kernels"], ceilings, tf32=tf32, log=_log,
                                         threads=args.threads, isolated=_isolated(args))
    if args.only != "kernels":
        for cfg in configs:
            _log(f"step {cfg.name}{' (TF32)' if tf32 else ''}: parity over {args.parity_iters} iterations, "
                 f"then timing")
            row = S.run_step(cfg, args.device, budgets["step"], args.threads, tf32=tf32,
                             parity_iters=args.parity_iters, f64_iters=args.f64_iters,
                             memory=not (args.no_memory or args.quick), ceilings=ceilings,
                             isolated=_isolated(args), log=_log)
            p = row["parity"]
            _log(f"  parity {'ok' if p['ok'] else 'FAILED ' + ', '.join(p['failed'])}: gradients from the same "
                 f"weights {p['probe_grad_rel_l2']:.1e}; after {p['iters']} iterations losses {p['loss_rel']:.1e}, "
                 f"weights {p['weight_rel_l2']:.1e}"
                 + (f"; {row['tinygan']['median_ms']:.1f} vs {row['torch']['median_ms']:.1f} ms"
                    if "tinygan" in row else ""))
            table["steps"].append(row)
    return table


def run(args) -> int:
    """The ``bench`` command: returns 0, or 1 when any agreement or parity check failed."""
    torch = _import_torch()

    if args.device == "cuda":
        cupy_module()                                   # a clear error when CuPy or the GPU is missing
        if not torch.cuda.is_available():
            raise RuntimeError("--device cuda: PyTorch sees no GPU (a CPU-only torch build?)")
        torch.backends.cudnn.benchmark = True
        _set_tf32(torch, False)
    elif args.tf32:
        raise ValueError("--tf32 applies to --device cuda only")
    args.threads = args.threads or default_threads()
    torch.set_num_threads(args.threads)
    tg_threads.set_num_threads(args.threads)
    limiter = None
    try:
        from threadpoolctl import threadpool_limits
        limiter = threadpool_limits(args.threads, user_api="blas")
    except ImportError:
        pass

    try:
        if args.quick:
            configs = [Config(s, 8, ngf=8, ndf=8) for s in args.sizes]
            budgets = {"kernels": Budget(warmup=1, reps=1, rounds=1), "step": Budget(warmup=1, reps=1, rounds=1)}
            args.parity_iters = min(args.parity_iters, 3)
            args.f64_iters = min(args.f64_iters, 2)
        else:
            configs = [Config(s, b) for s in args.sizes for b in args.batch]
            # Several alternating blocks per side: a burst of load elsewhere then spoils a few samples,
            # not all of one side's (the median survives it).
            budgets = {"kernels": Budget(warmup=2, reps=args.reps, rounds=4),
                       "step": Budget(warmup=1, reps=args.reps or 10, rounds=5)}
        _log(f"tinygan bench on {args.device}, {args.threads} threads: measuring the machine's ceilings")
        ceilings = machine_ceilings(args.device, quick=args.quick, threads=args.threads)
        result = {"schema": 1, "command": command_line(args), "device": args.device, "threads": args.threads,
                  "quick": args.quick, "timing": timing_method(args),
                  "machine": R.machine_info(args.device, args.threads),
                  "versions": R.versions(args.device), "ceilings": ceilings,
                  "configs": [c.as_dict() for c in configs], "tables": []}
        result["tables"].append(_run_tables(args, configs, budgets, ceilings, tf32=False))
        if args.tf32:
            _set_tf32(torch, True)
            try:
                result["tables"].append(_run_tables(args, configs, budgets, ceilings, tf32=True))
            finally:
                _set_tf32(torch, False)
        _log("measuring the ceilings again (the better of the two counts)")
        result["ceilings"] = R.merge_ceilings(ceilings, machine_ceilings(args.device, quick=args.quick,
                                                                         threads=args.threads))
        R.apply_ceilings(result["tables"], result["ceilings"])
        result["targets"] = R.evaluate_targets(result)
    finally:
        if limiter is not None:
            limiter.restore_original_limits()
        tg_threads.set_num_threads(None)

    print(R.tables_markdown(result))
    print("### Where we stand vs targets\n")
    print(R.targets_markdown(result["targets"]))
    if args.json:
        R.write_json(result, args.json)
    if args.markdown:
        R.write_markdown(result, args.markdown)
    failed = [r for t in result["tables"] for r in t["kernels"] if not r["ok"]] + \
             [s for t in result["tables"] for s in t["steps"]
              if not s["parity"]["ok"] or not s.get("parity_f64", {"ok": True})["ok"]]
    if failed:
        _log(f"tinygan bench: {len(failed)} agreement/parity check(s) failed (those rows are not timed)")
        return 1
    return 0
