"""Peak memory of one DCGAN training iteration on the CPU, tinygan and PyTorch side by side.

    python benchmarks/memory.py --markdown benchmarks/results/memory-cpu.md
    python benchmarks/memory.py --sizes 64 --batch 64          # one configuration, printed

The memory half of ``tinygan bench`` (``tinygan.benchmark.step.peak_memory``) without the
timing half: each framework runs one iteration alone in a fresh child process and reports
its resident-set high-water mark above the resident set before the iteration (docs/benchmarks.md,
Memory).  Unlike a time, that number does not depend on what else the machine is running, so
this command may run beside other work.  PyTorch comes from the ``bench`` extra.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

from tinygan.benchmark.kernels import Config
from tinygan.benchmark.step import peak_memory


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 28, 32], help="DCGAN image sizes")
    p.add_argument("--batch", type=int, nargs="+", default=[64, 128], help="batch sizes")
    p.add_argument("--threads", type=int, default=1, help="BLAS/PyTorch threads in each child")
    p.add_argument("--markdown", default=None, help="write a results file here (default: print only)")
    args = p.parse_args(argv)
    for flag, values in (("--sizes", args.sizes), ("--batch", args.batch), ("--threads", [args.threads])):
        if min(values) < 1:
            p.error(f"{flag} must be positive, got {min(values)}")
    started, rows = time.time(), []
    for size in args.sizes:
        for batch in args.batch:
            cfg = Config(size, batch)
            mem = peak_memory(cfg, "cpu", args.threads)
            for side in ("tinygan", "torch"):
                if "error" in mem[side]:
                    p.exit(1, f"memory.py: {side} failed on {cfg.name}: {mem[side]['error']}\n")
            row = {"config": cfg.name, **{f"{k}_{side}": mem[side][k] for side in ("tinygan", "torch")
                                            for k in ("step_peak_mib", "peak_mib")}}
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.markdown:
        write(args, rows, time.time() - started, Path(args.markdown))
    return 0


def write(args, rows: list[dict], wall: float, path: Path) -> None:
    import torch
    lines = ["# Peak memory of one DCGAN training iteration (CPU): tinygan vs PyTorch", "",
             f"Command: `python benchmarks/memory.py {' '.join(sys.argv[1:])}`", "",
             f"Machine: {platform.processor() or platform.machine()}; Python {platform.python_version()}, "
             f"NumPy {np.__version__}, PyTorch {torch.__version__}; {args.threads} thread(s); "
             f"taken {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, wall time {wall:.0f} s.", "",
             "Each framework alone in a fresh process (`MALLOC_MMAP_THRESHOLD_=65536`), two warm-up "
             "iterations, then one: *iteration* is the resident-set high-water mark above the resident set "
             "before it (activations, gradients and temporaries), *process* the high-water mark itself "
             "(PyTorch's library is larger). Same networks, recipe and batch in both (`tinygan bench`'s "
             "step).", "",
             "| config | tinygan MiB (iteration) | PyTorch MiB (iteration) | tinygan/PyTorch | "
             "tinygan MiB (process) | PyTorch MiB (process) |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(f"| {r['config']} | {r['step_peak_mib_tinygan']:.0f} | {r['step_peak_mib_torch']:.0f} | "
                     f"{r['step_peak_mib_tinygan'] / r['step_peak_mib_torch']:.2f} | "
                     f"{r['peak_mib_tinygan']:.0f} | {r['peak_mib_torch']:.0f} |")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    path.with_suffix(".json").write_text(json.dumps({"args": vars(args), "wall_s": wall, "rows": rows}, indent=1))
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
