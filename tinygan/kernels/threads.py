"""A small persistent thread pool for NumPy's element-wise work (the CPU path only).

NumPy runs a ufunc on one core, but it releases the GIL inside the loop of
every ufunc and reduction over more than a few hundred elements.  So plain
Python threads, each calling ufuncs with ``out=`` on its own slice of an
array, run batch norm, LeakyReLU and the optimizers' updates on every core,
with no compiled helper and no new dependency (``shared/perf-notes.md``: a
LeakyReLU over a 16 MiB array, 3.7 ms on one thread, 2.6 ms on two).

How the kernels use it (``tinygan/kernels/batchnorm.py``, ``activations.py``,
``optim.py``):

* the work is cut into **blocks** by :func:`blocks`, from the array's shape
  alone (about :data:`BLOCK_BYTES` each, a size that stays in cache), never
  from the thread count;
* :func:`run` calls ``fn(i)`` for every block ``i``; the threads take blocks
  from a shared counter, so a core that another process is using simply
  takes fewer of them;
* a block's several ufunc calls (batch norm's subtract, square and sum, say)
  then read the block from cache, so a chain of NumPy calls costs about one
  pass over main memory, as one fused kernel would;
* reductions write one partial result per block and add the partials in
  block order afterwards.  Results are therefore **bitwise identical for
  any thread count** (1, 2, 16) and from run to run: the same blocks,
  reduced the same way, whichever thread ran them.

Work smaller than :data:`MIN_PARALLEL_BYTES` runs in the calling thread (the
same blocks, in order): waking a thread costs tens of microseconds.

The thread count: :func:`set_num_threads` (``tinygan bench --threads`` calls
it), else ``$TINYGAN_NUM_THREADS``, else ``$OMP_NUM_THREADS`` /
``$OPENBLAS_NUM_THREADS`` / ``$MKL_NUM_THREADS`` (the BLAS setting), else the
CPUs this process may run on.  ``TINYGAN_NUM_THREADS=1`` turns the pool off.

Only the calling thread and the pool's own workers run blocks; when the pool
is busy (a second Python thread calls a kernel meanwhile) or the caller is a
worker, the blocks run serially in the caller, with the same results.  After
``fork()`` the child starts with a fresh, empty pool.  CuPy arrays never come
here: each kernel checks ``get_array_module(x) is numpy`` first.
"""
from __future__ import annotations

import itertools
import math
import os
import threading

import numpy


# Target size of one block: big enough that the Python around a block's ufunc
# calls (about 10 us) is a small part of its work, small enough that a block
# and its temporaries stay in cache (1 MiB of L2 per core and 32 MiB of shared
# L3 on the 2-core AMD EPYC machines) and that two threads get several blocks
# each.  Measured there (one thread, CPU time): 256 KiB blocks cost up to 1.7x
# the time of 1 MiB ones for a LeakyReLU backward over 3 MiB, 4 MiB no better.
BLOCK_BYTES = 1 << 20
# Below this many bytes of input, one thread does everything.
MIN_PARALLEL_BYTES = 1 << 20

_ENV_VARS = ("TINYGAN_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _env_threads() -> int | None:
    for var in _ENV_VARS:
        value = os.environ.get(var, "").strip()
        if value:
            try:
                n = int(value.split(",")[0])
            except ValueError:
                continue
            if n >= 1:
                return n
    return None


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


_requested: int | None = None          # set_num_threads()


def get_num_threads() -> int:
    """Threads the element-wise kernels use (the caller included): see the module docstring."""
    if _requested is not None:
        return _requested
    return _env_threads() or _cpu_count()


def set_num_threads(n: int | None) -> None:
    """Use ``n`` threads for the element-wise kernels from now on (None: back to the environment's default)."""
    global _requested
    if n is not None:
        n = int(n)
        if n < 1:
            raise ValueError(f"set_num_threads: need at least 1 thread, got {n}")
    _requested = n


class _Job:
    """One ``run``: the function, the shared block counter, the first error."""

    __slots__ = ("fn", "n", "counter", "error")

    def __init__(self, fn, n: int):
        self.fn, self.n, self.counter, self.error = fn, n, itertools.count(), None

    def work(self) -> None:
        fn, n, counter = self.fn, self.n, self.counter
        while self.error is None:
            i = next(counter)                  # atomic under the GIL: each block is taken once
            if i >= n:
                return
            try:
                fn(i)
            except BaseException as e:         # re-raised in the caller
                self.error = e
                return


class _Worker(threading.Thread):
    def __init__(self, pool: "_Pool"):
        super().__init__(name="tinygan-elementwise", daemon=True)
        self.pool = pool
        self.wake = threading.Semaphore(0)
        self.done = threading.Semaphore(0)
        self.job: _Job | None = None

    def run(self) -> None:
        while True:
            self.wake.acquire()
            job = self.job
            if job is None:                    # shutdown
                return
            try:
                job.work()
            finally:
                # Drop the job now: kept until the next one, its closure would keep that call's
                # arrays (an im2col matrix, a GEMM's output) alive past their last use.
                self.job = job = None
                self.done.release()


class _Pool:
    """``size - 1`` worker threads; the caller is the last one."""

    def __init__(self, size: int):
        self.size = size
        self.busy = threading.Lock()
        self.workers = [_Worker(self) for _ in range(size - 1)]
        for w in self.workers:
            w.start()

    def run(self, fn, n: int, threads: int) -> None:
        if not self.busy.acquire(blocking=False):   # used by another thread right now: serial
            _serial(fn, n)
            return
        try:
            job = _Job(fn, n)
            helpers = self.workers[:max(0, min(threads, n) - 1)]
            for w in helpers:
                w.job = job
                w.wake.release()
            _local.inside = True
            try:
                job.work()
            finally:
                _local.inside = False
                for w in helpers:
                    w.done.acquire()
            if job.error is not None:
                raise job.error
        finally:
            self.busy.release()

    def close(self) -> None:
        for w in self.workers:
            w.job = None
            w.wake.release()


_local = threading.local()
_pool: _Pool | None = None
_pool_lock = threading.Lock()


def _serial(fn, n: int) -> None:
    for i in range(n):
        fn(i)


def _get_pool(threads: int) -> _Pool:
    global _pool
    with _pool_lock:
        if _pool is None or _pool.size < threads:
            if _pool is not None:
                _pool.close()
            _pool = _Pool(threads)
        return _pool


def _forget_pool_after_fork() -> None:
    global _pool, _pool_lock
    _pool = None                               # the workers do not exist in the child
    _pool_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_after_fork)


def parallel(nbytes: int) -> bool:
    """Whether work on ``nbytes`` of input would use more than one thread (else a kernel's plain path is cheaper)."""
    return nbytes >= MIN_PARALLEL_BYTES and get_num_threads() > 1


def run(fn, n: int, nbytes: int = 0, threads: int | None = None) -> None:
    """Call ``fn(i)`` for ``i`` in ``range(n)``, on up to ``threads`` threads (default :func:`get_num_threads`).

    ``nbytes`` is the size of the work's main input: below
    :data:`MIN_PARALLEL_BYTES`, or for one block, the caller runs every
    block itself, in order.  ``fn`` must write only its own block's outputs.
    The first exception a block raises is re-raised here, after every thread
    has stopped.
    """
    if n <= 0:
        return
    threads = get_num_threads() if threads is None else threads
    if threads <= 1 or n == 1 or nbytes < MIN_PARALLEL_BYTES or getattr(_local, "inside", False) \
            or threading.current_thread().name == "tinygan-elementwise":
        _serial(fn, n)
        return
    _get_pool(threads).run(fn, n, threads)


def blocks(rows: int, row_bytes: int, block_bytes: int | None = None, multiple: int = 1) -> list[tuple[int, int]]:
    """Cut ``rows`` rows of ``row_bytes`` each into ``(start, stop)`` blocks of about ``block_bytes``.

    Every block but the last holds a multiple of ``multiple`` rows.  The cut
    depends only on these numbers, never on the thread count, so reductions
    that add per-block partials in block order give the same floats on any
    number of threads.
    """
    if rows <= 0:
        return []
    per = max(1, (BLOCK_BYTES if block_bytes is None else block_bytes) // max(1, row_bytes))
    per = max(multiple, per - per % multiple)
    return [(s, min(rows, s + per)) for s in range(0, rows, per)]


class _Scratch(threading.local):
    def __init__(self):
        self.by_slot = {}


_scratch = _Scratch()


def scratch(shape, dtype, slot: int | str = 0):
    """A per-thread temporary of ``shape``, uninitialised, carved out of the thread's buffer for ``slot``.

    Each slot keeps one byte buffer, grown to the largest size asked of it, so
    temporaries are reused from call to call: a block's stay in cache, and a
    big one's pages are faulted in once, not on every call.  A temporary is
    valid until the next call with the same slot on the same thread; two
    alive at once need two slots (the element-wise kernels number theirs,
    the conv kernels name theirs).
    """
    dtype = numpy.dtype(dtype)
    nbytes = max(1, math.prod(shape) * dtype.itemsize)
    buf = _scratch.by_slot.get(slot)
    if buf is None or buf.nbytes < nbytes:
        buf = numpy.empty(nbytes, dtype=numpy.uint8)
        _scratch.by_slot[slot] = buf
    return buf[:math.prod(shape) * dtype.itemsize].view(dtype).reshape(shape)
