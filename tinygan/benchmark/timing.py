"""Timing: warm-up, repeated runs, the median and the spread, on the CPU or a GPU.

One clock per (framework, device):

* CPU: ``time.perf_counter`` around each call (the work is synchronous).
* GPU: a pair of CUDA events around each call, recorded on the framework's
  current stream, then an event synchronisation; CuPy's events for tinygan,
  ``torch.cuda.Event`` for PyTorch.  The elapsed time is GPU time between the
  two records, so host overhead counts only where it leaves the GPU idle (as
  it does in real training).

:func:`measure` times one callable; :func:`measure_pair` times tinygan and
PyTorch in alternating blocks (A B, then B A, ...) so that a load change on a
shared machine hits both sides alike.  :func:`machine_ceilings` measures the
rates every row is compared with: a large float32 GEMM through NumPy's BLAS
(or cuBLAS) and a large copy.
"""
from __future__ import annotations

import dataclasses
import statistics
import time
from typing import Callable

import numpy as np

from tinygan.backend import cupy_module
from tinygan.kernels import threads as tg_threads


@dataclasses.dataclass
class Timing:
    """Per-call times in milliseconds: median, quartiles (IQR), min and max over ``reps`` runs."""

    median_ms: float
    q1_ms: float
    q3_ms: float
    min_ms: float
    max_ms: float
    reps: int

    @classmethod
    def from_samples(cls, samples_ms: list[float]) -> "Timing":
        s = sorted(samples_ms)
        if len(s) >= 4:
            q1, _, q3 = statistics.quantiles(s, n=4, method="inclusive")
        else:
            q1, q3 = s[0], s[-1]
        return cls(statistics.median(s), q1, q3, s[0], s[-1], len(s))

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


# ---------------------------------------------------------------------------- clocks

class WallClock:
    """Host wall-clock time of one synchronous call."""

    def time_call(self, fn: Callable[[], object]) -> float:
        t0 = time.perf_counter()
        fn()
        return (time.perf_counter() - t0) * 1e3

    def synchronize(self) -> None:
        pass


class CupyEventClock:
    """GPU time of one call between two CuPy CUDA events on the current stream."""

    def __init__(self):
        import cupy
        self.cp = cupy

    def time_call(self, fn):
        cp = self.cp
        start, end = cp.cuda.Event(), cp.cuda.Event()
        start.record()
        fn()
        end.record()
        end.synchronize()
        return float(cp.cuda.get_elapsed_time(start, end))

    def synchronize(self) -> None:
        self.cp.cuda.get_current_stream().synchronize()


class TorchEventClock:
    """GPU time of one call between two ``torch.cuda.Event`` records on torch's current stream."""

    def __init__(self):
        import torch
        self.torch = torch

    def time_call(self, fn):
        start = self.torch.cuda.Event(enable_timing=True)
        end = self.torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        return float(start.elapsed_time(end))

    def synchronize(self) -> None:
        self.torch.cuda.synchronize()


def clock_for(framework: str, device: str):
    """The clock for ``framework`` ("tinygan" or "torch") on ``device`` ("cpu" or "cuda")."""
    if device == "cpu":
        return WallClock()
    return CupyEventClock() if framework == "tinygan" else TorchEventClock()


# ---------------------------------------------------------------------------- measuring

@dataclasses.dataclass
class Budget:
    """How long to time: ``warmup`` calls, then ``reps`` calls (or as many as fit ``target_s``)."""

    warmup: int = 2
    reps: int | None = None          # fixed count; None: adapt to target_s within [min_reps, max_reps]
    target_s: float = 0.3
    min_reps: int = 5
    max_reps: int = 200
    rounds: int = 2                  # measure_pair: alternating blocks per side


def _warm(fn, clock, calls: int) -> list[float]:
    """Untimed-in-the-result warm-up calls; returns their times (ms) to size the run."""
    return [clock.time_call(fn) for _ in range(max(1, calls))]


def _auto_reps(warm_ms: list[float], budget: Budget) -> int:
    """``budget.reps``, or as many calls as fit ``budget.target_s`` at the warm-up's pace."""
    if budget.reps is not None:
        return max(1, budget.reps)
    per_call = max(min(warm_ms), 1e-3)
    return max(budget.min_reps, min(budget.max_reps, int(budget.target_s * 1e3 / per_call)))


def measure(fn: Callable[[], object], clock, budget: Budget | None = None) -> Timing:
    """Time ``fn``: warm-up calls, then repeated timed calls; the median and spread."""
    budget = budget or Budget()
    reps = _auto_reps(_warm(fn, clock, budget.warmup), budget)
    return Timing.from_samples([clock.time_call(fn) for _ in range(reps)])


def measure_pair(fns: dict[str, tuple[Callable[[], object], object]], budget: Budget | None = None
                 ) -> dict[str, Timing]:
    """Time several callables (``{name: (fn, clock)}``) in alternating blocks.

    Each of ``budget.rounds`` rounds gives every callable one block (its own
    warm-up, then its share of the repetitions); the order flips every round
    (A B, B A, ...), so slow drift on a shared machine hits all sides alike,
    and each block's warm-up absorbs the other library's idle threads.
    """
    budget = budget or Budget()
    rounds = max(1, budget.rounds)
    names = list(fns)
    samples: dict[str, list[float]] = {n: [] for n in names}
    per_round: dict[str, int] = {}
    for r in range(rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            fn, clock = fns[name]
            warm = _warm(fn, clock, budget.warmup)
            if name not in per_round:                       # sized once, from the first warm-up
                per_round[name] = max(1, -(-_auto_reps(warm, budget) // rounds))
            samples[name] += [clock.time_call(fn) for _ in range(per_round[name])]
    return {n: Timing.from_samples(s) for n, s in samples.items()}


# ---------------------------------------------------------------------------- ceilings

def _best_rate(fn, clock, work: float, reps: int) -> float:
    """Work per second of the fastest of ``reps`` calls (after one warm-up call)."""
    t = measure(fn, clock, Budget(warmup=1, reps=reps))
    return work / (t.min_ms * 1e-3)


def parallel_copy(dst, src, threads: int) -> None:
    """``dst[...] = src`` for 1-D arrays, cut into tinygan's element-wise blocks and run on ``threads`` threads."""
    blocks = tg_threads.blocks(src.size, src.itemsize)

    def block(i):
        s, e = blocks[i]
        np.copyto(dst[s:e], src[s:e])

    tg_threads.run(block, len(blocks), src.nbytes, threads=threads)


def machine_ceilings(device: str, quick: bool = False, torch_too: bool = True, threads: int | None = None) -> dict:
    """The measured ceilings: float32 GEMM GFLOP/s and copy GB/s, for tinygan's library and PyTorch.

    GEMM: ``a @ b`` on square float32 matrices (2048 and 4096; 512 with
    ``quick``), the best of a few calls.  Copy: one array into another
    (128 MiB; 8 MiB with ``quick``), counted as bytes read + bytes written.
    tinygan's ceilings use its array library (NumPy's BLAS on the CPU,
    CuPy/cuBLAS on the GPU): a kernel can at best match them.  On the CPU
    the copy is measured twice: NumPy's own (one core) and split over
    ``threads`` cores by tinygan's element-wise thread pool
    (``tinygan_copy_all_gbs``, the ceiling of the memory-bound rows' target).
    """
    sizes = (512,) if quick else (2048, 4096)
    copy_elems = (2 << 20) if quick else (32 << 20)
    out: dict = {"gemm_sizes": list(sizes), "copy_bytes": copy_elems * 4}
    if device == "cpu":
        xp = np
    else:
        xp = cupy_module()
    clock = clock_for("tinygan", device)
    rng = np.random.default_rng(0)
    rates = []
    for n in sizes:
        a = xp.asarray(rng.standard_normal((n, n), dtype=np.float32))
        b = xp.asarray(rng.standard_normal((n, n), dtype=np.float32))
        c = xp.empty((n, n), dtype=np.float32)
        rates.append(_best_rate(lambda: xp.matmul(a, b, out=c), clock, 2.0 * n ** 3 / 1e9, 2 if n >= 4096 else 4))
        del a, b, c
    out["tinygan_gemm_gflops"] = max(rates)
    src = xp.ones(copy_elems, dtype=np.float32)
    dst = xp.empty_like(src)
    out["tinygan_copy_gbs"] = _best_rate(lambda: xp.copyto(dst, src), clock, 2.0 * src.nbytes / 1e9, 5)
    if device == "cpu":
        n = threads or tg_threads.get_num_threads()
        out["copy_threads"] = n
        out["tinygan_copy_all_gbs"] = _best_rate(lambda: parallel_copy(dst, src, n), clock,
                                                 2.0 * src.nbytes / 1e9, 5)
    del src, dst
    out["tinygan_library"] = "numpy" if device == "cpu" else "cupy"
    if torch_too:
        import torch
        tdev = "cuda" if device != "cpu" else "cpu"
        tclock = clock_for("torch", device)
        rates = []
        for n in sizes:
            a = torch.randn(n, n, device=tdev)
            b = torch.randn(n, n, device=tdev)
            c = torch.empty(n, n, device=tdev)
            rates.append(_best_rate(lambda: torch.matmul(a, b, out=c), tclock, 2.0 * n ** 3 / 1e9,
                                    2 if n >= 4096 else 4))
            del a, b, c
        out["torch_gemm_gflops"] = max(rates)
        src = torch.ones(copy_elems, device=tdev)
        dst = torch.empty_like(src)
        out["torch_copy_gbs"] = _best_rate(lambda: dst.copy_(src), tclock, 2.0 * src.numel() * 4 / 1e9, 5)
    return out
