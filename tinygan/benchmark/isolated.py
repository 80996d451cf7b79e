"""Timing each framework in its own process (the CPU default of ``tinygan bench``).

Why: NumPy's BLAS (OpenBLAS) and PyTorch (OpenMP) each keep worker threads
that spin for a while after a parallel region.  Timed in one process, one
library's idle workers steal the two cores from the other's: measured on the
2-core AMD EPYC machines (``shared/perf-notes.md``), a PyTorch 28 px DCGAN
step took 183 ms alone and 245 ms interleaved with tinygan's, and the ratio
moved from 1.39 to 0.95.  So on the CPU every timed block runs in a fresh
child process that imports only its own framework (the tinygan child never
imports torch), and the processes alternate::

    round 0: tinygan child, PyTorch child;  round 1: PyTorch child, tinygan child;  ...

Each child is one block of :func:`tinygan.benchmark.timing.measure_pair`'s
scheme (its own warm-up, then its share of the repetitions), so a burst of
load elsewhere spoils a few blocks, not one side.  The agreement and parity
checks stay in the parent, which has both frameworks.

Children: ``python -m tinygan.benchmark.step SPEC`` (an iteration) or
``python -m tinygan.benchmark.kernels SPEC`` (kernel rows), where SPEC (JSON)
says ``mode``, ``framework``, ``threads``, the configurations and the budget;
the child (``_timing_child`` in those modules, with the helpers at the end of
this one) prints one JSON line with its samples (ms).  The
environment pins the thread counts before either library loads
(``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``, ``TINYGAN_NUM_THREADS``).
On a GPU the frameworks are timed in one process (CUDA events; see
``docs/benchmarks.md``).
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
import tempfile

import numpy as np

from tinygan.benchmark.timing import Budget, Timing, WallClock, _auto_reps, _warm
from tinygan.kernels import threads as tg_threads

FRAMEWORKS = ("tinygan", "torch")


# ---------------------------------------------------------------------------- parent side

def _env(threads: int) -> dict:
    return {**os.environ, "OMP_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads),
            "MKL_NUM_THREADS": str(threads), "TINYGAN_NUM_THREADS": str(threads)}


CHILD = {"step": "tinygan.benchmark.step", "kernels": "tinygan.benchmark.kernels"}


def run_child(spec: dict, timeout: float = 3600) -> dict:
    """Run one child process with ``spec``; its JSON answer, or ``{"error": last line of stderr}``."""
    proc = subprocess.run([sys.executable, "-m", CHILD[spec["mode"]], json.dumps(spec)],
                          capture_output=True, text=True, env=_env(spec["threads"]), timeout=timeout)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        err = proc.stderr.strip().splitlines()
        return {"error": err[-1] if err else f"exit status {proc.returncode}"}
    return json.loads(lines[-1])


def alternate(spec: dict, rounds: int, log=None) -> dict:
    """``rounds`` alternating child processes per framework; ``{framework: [child answers]}``."""
    out: dict = {fw: [] for fw in FRAMEWORKS}
    for r in range(max(1, rounds)):
        for fw in (FRAMEWORKS if r % 2 == 0 else FRAMEWORKS[::-1]):
            answer = run_child({**spec, "framework": fw, "round": r, "rounds": rounds})
            if "error" in answer:
                raise RuntimeError(f"tinygan bench: the {fw} timing process failed: {answer['error']}")
            out[fw].append(answer)
            if log:
                log(f"    {fw} process {r + 1}/{rounds} done")
    return out


def time_steps(cfg, state: dict, budget: Budget, threads: int, log=None) -> dict[str, Timing]:
    """One DCGAN iteration, each framework in its own processes (``state``: PyTorch's initial weights)."""
    fields = ("image_size", "batch", "nz", "ngf", "ndf", "nc")
    with tempfile.TemporaryDirectory(prefix="tinygan-bench-") as tmp:
        path = os.path.join(tmp, "init.npz")
        np.savez(path, **{f"{net}/{k}": v for net, sd in state.items() for k, v in sd.items()})
        spec = {"mode": "step", "threads": threads, "config": {k: getattr(cfg, k) for k in fields},
                "state": path, "budget": dataclasses.asdict(budget)}
        answers = alternate(spec, budget.rounds, log)
    return {fw: Timing.from_samples([s for a in answers[fw] for s in a["samples"]]) for fw in FRAMEWORKS}


def time_kernels(cases: list[dict], budget: Budget, threads: int, log=None) -> dict:
    """Kernel rows, each framework in its own processes.

    ``cases``: ``{"config": Config fields, "layer", "op", "passes"}`` for every
    case with a row to time.  Returns ``{(config name, layer, op, pass):
    {framework: Timing}}``.
    """
    spec = {"mode": "kernels", "threads": threads, "cases": cases, "budget": dataclasses.asdict(budget)}
    answers = alternate(spec, budget.rounds, log)
    samples: dict = {}
    for fw in FRAMEWORKS:
        for a in answers[fw]:
            for key, values in a["samples"].items():
                samples.setdefault(key, {}).setdefault(fw, []).extend(values)
    return {tuple(json.loads(k)): {fw: Timing.from_samples(v) for fw, v in by_fw.items()}
            for k, by_fw in samples.items()}


# ---------------------------------------------------------------------------- child side (helpers)

def set_threads(framework: str, threads: int) -> None:
    """A timing child's thread counts: tinygan's element-wise pool, PyTorch's, NumPy's BLAS (if threadpoolctl)."""
    tg_threads.set_num_threads(threads)
    if framework == "torch":
        import torch
        torch.set_num_threads(threads)
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(threads, user_api="blas")
    except ImportError:
        pass


def block(fn, budget: Budget, rounds: int) -> list[float]:
    """One block as :func:`tinygan.benchmark.timing.measure_pair` times it: warm-up, then this round's share."""
    clock = WallClock()
    warm = _warm(fn, clock, budget.warmup)
    per_round = max(1, math.ceil(_auto_reps(warm, budget) / max(1, rounds)))
    return [clock.time_call(fn) for _ in range(per_round)]


def child_main(module: str, argv: list[str], body) -> None:
    """``python -m <module> SPEC``: set the threads, run ``body(spec)``, print its JSON answer on one line."""
    spec = json.loads(argv[1])
    set_threads(spec["framework"], spec["threads"])
    print(json.dumps(body(spec)))
