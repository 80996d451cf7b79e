"""The small kernel helpers against their documented behaviour (torch-free; the ``kernels`` mutation group).

* ``tinygan.kernels.args.pair``: PyTorch's ``_pair`` with its checks and messages;
* ``tinygan.kernels.matmul.matmul``: ``a @ b`` bit for bit, the rank-one case without the GEMM;
* ``tinygan.kernels.memory.reuse_freed_memory``: when it calls glibc's ``mallopt`` (with malloc.h's
  ``M_MMAP_THRESHOLD`` = -3 and ``M_TRIM_THRESHOLD`` = -1) and when it leaves malloc alone;
* ``tinygan.kernels.threads``: the thread count's sources and their order, ``blocks``, ``run`` (serial
  when it should be, really parallel when it should be, errors), ``scratch``.
"""
from __future__ import annotations

import ctypes
import os
import threading
import time

import numpy as np
import pytest

from tinygan.kernels import args, matmul, memory, threads


# ---------------------------------------------------------------------------- args.pair

def test_pair_values():
    assert args.pair(3, "stride", "conv2d") == (3, 3)
    assert args.pair((1, 2), "stride", "conv2d") == (1, 2)
    assert args.pair([4, 0], "padding", "conv2d") == (4, 0)
    got = args.pair((np.int64(2), np.uint8(5)), "stride", "conv2d")
    assert got == (2, 5) and all(type(v) is int for v in got)
    assert args.pair(np.int32(-1), "padding", "op") == (-1, -1)      # ranges are the caller's to check


@pytest.mark.parametrize("bad,shown,kind", [
    (1.5, "1.5", "float"), (2.0, "2.0", "float"), (True, "True", "bool"), ("3", "'3'", "str"),
    (None, "None", "NoneType"), ((1, 1.5), r"\(1, 1.5\)", "float"), ((True, 2), r"\(True, 2\)", "bool"),
    ([2, "x"], r"\[2, 'x'\]", "str"), (np.float64(2.0), r"np.float64\(2.0\)|2.0", "float64"),
])
def test_pair_type_errors_name_the_op_the_argument_and_the_bad_type(bad, shown, kind):
    with pytest.raises(TypeError, match=rf"^conv_transpose2d: output_padding must be an int or a pair of ints, "
                                        rf"got ({shown}) \({kind}\)$") as info:
        args.pair(bad, "output_padding", "conv_transpose2d")
    assert info.value.__cause__ is None and info.value.__suppress_context__


@pytest.mark.parametrize("bad", [(1, 2, 3), (1,), [], [1, 2, 3, 4]], ids=repr)
def test_pair_length_errors(bad):
    with pytest.raises(ValueError, match=r"^Conv2d: kernel_size must be an int or a pair of ints, got "):
        args.pair(bad, "kernel_size", "Conv2d")
    with pytest.raises(ValueError) as info:
        args.pair(bad, "kernel_size", "Conv2d")
    assert str(info.value).endswith(repr(bad))


# ---------------------------------------------------------------------------- matmul

RANK_ONE = [((64, 1), (1, 8192)), ((1, 1), (1, 1)), ((5, 1), (1, 0)), ((0, 1), (1, 3)),
            ((3, 4, 1), (3, 1, 5)), ((4, 1), (2, 1, 6)), ((2, 1, 3, 1), (4, 1, 7))]


class _NoGemm(np.ndarray):
    """An array whose ``@`` fails: matmul's rank-one case must not call the GEMM."""

    def __matmul__(self, other):
        raise AssertionError("the GEMM was called")

    __rmatmul__ = __matmul__


@pytest.mark.parametrize("dtypes", [("float32", "float32"), ("float64", "float64"), ("float32", "float64"),
                                    ("int64", "float32"), ("bool", "bool")])
@pytest.mark.parametrize("shapes", RANK_ONE, ids=str)
def test_matmul_rank_one_is_the_gemm_bit_for_bit(shapes, dtypes):
    rng = np.random.default_rng(0)
    a = (rng.standard_normal(shapes[0]) * 3).astype(dtypes[0])
    b = (rng.standard_normal(shapes[1]) * 3).astype(dtypes[1])
    want = a @ b
    for a_, b_ in [(a, b), (np.asfortranarray(a), np.asfortranarray(b))]:
        got = matmul.matmul(a_.view(_NoGemm), b_.view(_NoGemm))
        assert type(got) is np.ndarray and got.shape == want.shape and got.dtype == want.dtype
        assert got.flags.c_contiguous
        assert np.array_equal(got, want)


@pytest.mark.parametrize("shapes", [((4, 3), (3, 5)), ((2, 4, 2), (2, 5)), ((3, 1), (2, 4)), ((1, 3), (3, 1))],
                         ids=str)
def test_matmul_other_shapes_are_the_gemm(shapes):
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal(shapes[0]), rng.standard_normal(shapes[1])
    if shapes[0][-1] != shapes[1][-2]:
        with pytest.raises(ValueError):          # @'s own error: (n, 1) @ (2, m) is not an outer product
            matmul.matmul(a, b)
        return
    assert np.array_equal(matmul.matmul(a, b), a @ b)
    with pytest.raises(AssertionError, match="GEMM"):
        matmul.matmul(a.view(_NoGemm), b.view(_NoGemm))


# ---------------------------------------------------------------------------- memory

class _FakeMallopt:
    def __init__(self, results=(1, 1)):
        self.calls, self.results = [], list(results)
        self.argtypes = self.restype = None

    def __call__(self, param, value):
        self.calls.append((param, value))
        return self.results[len(self.calls) - 1]


@pytest.fixture
def fresh_memory(monkeypatch):
    """reuse_freed_memory as in a new process, on a fake glibc whose mallopt records its calls."""
    monkeypatch.setattr(memory, "_done", False)
    monkeypatch.setattr(memory, "applied", False)
    for var in ("TINYGAN_REUSE_MEMORY", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(memory.platform, "system", lambda: "Linux")
    monkeypatch.setattr(memory.platform, "libc_ver", lambda: ("glibc", "2.36"))
    fake = _FakeMallopt()
    libc = type("Libc", (), {})()
    libc.mallopt = fake
    opened = []

    def cdll(name):
        opened.append(name)
        return libc

    monkeypatch.setattr(memory.ctypes, "CDLL", cdll)
    return fake, opened, libc


def test_reuse_freed_memory_sets_both_thresholds_once(fresh_memory):
    fake, opened, _ = fresh_memory
    assert memory.reuse_freed_memory() is True and memory.applied is True
    assert opened == [None]                                          # this process's own libc
    assert fake.calls == [(-3, 32 * 1024 * 1024), (-1, 1024 ** 3)]  # M_MMAP_THRESHOLD, M_TRIM_THRESHOLD
    assert fake.argtypes == [ctypes.c_int, ctypes.c_int] and fake.restype is ctypes.c_int
    assert memory.reuse_freed_memory() is True                       # once per process
    assert len(fake.calls) == 2


@pytest.mark.parametrize("results", [(0, 1), (1, 0), (0, 0)])
def test_reuse_freed_memory_reports_a_refused_setting(fresh_memory, results):
    fake, _, _ = fresh_memory
    fake.results = list(results)
    assert memory.reuse_freed_memory() is False and memory.applied is False
    assert memory.reuse_freed_memory() is False
    assert len(fake.calls) in (1, 2)


@pytest.mark.parametrize("env", [{"TINYGAN_REUSE_MEMORY": "0"}, {"TINYGAN_REUSE_MEMORY": " 0 "},
                                 {"MALLOC_MMAP_THRESHOLD_": "65536"}, {"MALLOC_TRIM_THRESHOLD_": "1"},
                                 {"MALLOC_TOP_PAD_": "0"}])
def test_reuse_freed_memory_leaves_a_chosen_malloc_alone(fresh_memory, monkeypatch, env):
    fake, opened, _ = fresh_memory
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert memory.reuse_freed_memory() is False and memory.applied is False
    assert fake.calls == [] and opened == []
    assert memory.reuse_freed_memory() is False and fake.calls == []  # and does not try again


def test_reuse_freed_memory_runs_unless_told_not_to(fresh_memory, monkeypatch):
    fake, _, _ = fresh_memory
    monkeypatch.setenv("TINYGAN_REUSE_MEMORY", "1")
    monkeypatch.setenv("MALLOC_TOP_PAD_", "")                         # set but empty: not a choice
    assert memory.reuse_freed_memory() is True and len(fake.calls) == 2


@pytest.mark.parametrize("system,libc", [("Darwin", ("", "")), ("Linux", ("musl", "1.2")), ("Windows", ("", ""))])
def test_reuse_freed_memory_needs_linux_and_glibc(fresh_memory, monkeypatch, system, libc):
    fake, opened, _ = fresh_memory
    monkeypatch.setattr(memory.platform, "system", lambda: system)
    monkeypatch.setattr(memory.platform, "libc_ver", lambda: libc)
    assert memory.reuse_freed_memory() is False and fake.calls == [] and opened == []


@pytest.mark.parametrize("error", [OSError, AttributeError])
def test_reuse_freed_memory_without_a_loadable_mallopt(fresh_memory, monkeypatch, error):
    def cdll(name):
        if error is OSError:
            raise OSError("no libc")
        return object()                                              # no mallopt attribute
    monkeypatch.setattr(memory.ctypes, "CDLL", cdll)
    assert memory.reuse_freed_memory() is False and memory.applied is False


def test_reuse_freed_memory_on_this_machines_glibc(monkeypatch):
    import platform
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        pytest.skip("glibc only")
    monkeypatch.setattr(memory, "_done", False)
    monkeypatch.setattr(memory, "applied", False)
    for var in ("TINYGAN_REUSE_MEMORY", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_"):
        monkeypatch.delenv(var, raising=False)
    assert memory.reuse_freed_memory() is True                        # glibc accepts both values


# ---------------------------------------------------------------------------- threads: the count

ENV = ("TINYGAN_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@pytest.fixture
def no_thread_env(monkeypatch):
    """No thread-count variables, no setting, and no pool yet: each test starts its own pool (state left by
    earlier tests, or inherited by a forked test process, cannot hide how a pool is made)."""
    for var in ENV:
        monkeypatch.delenv(var, raising=False)
    threads.set_num_threads(None)
    monkeypatch.setattr(threads, "_pool", None)
    monkeypatch.setattr(threads, "_pool_lock", threading.Lock())
    yield monkeypatch
    if threads._pool is not None:
        threads._pool.close()
    threads.set_num_threads(None)


def test_thread_count_from_the_environment_in_order(no_thread_env):
    mp = no_thread_env
    mp.setattr(threads, "_cpu_count", lambda: 7)
    assert threads._env_threads() is None and threads.get_num_threads() == 7
    mp.setenv("MKL_NUM_THREADS", "5")
    assert threads.get_num_threads() == 5
    mp.setenv("OPENBLAS_NUM_THREADS", "4")
    assert threads.get_num_threads() == 4
    mp.setenv("OMP_NUM_THREADS", " 3,2 ")                            # OpenMP's nested list: the outer count
    assert threads.get_num_threads() == 3
    mp.setenv("TINYGAN_NUM_THREADS", "1")
    assert threads.get_num_threads() == 1
    for bad in ("", "   ", "0", "-2", "two", ",3"):                  # skipped: the next variable decides
        mp.setenv("TINYGAN_NUM_THREADS", bad)
        assert threads.get_num_threads() == 3, bad
    threads.set_num_threads(2)                                        # the setting beats the environment
    assert threads.get_num_threads() == 2
    threads.set_num_threads(None)
    assert threads.get_num_threads() == 3


def test_set_num_threads(no_thread_env):
    threads.set_num_threads(1)
    assert threads.get_num_threads() == 1
    threads.set_num_threads("6")
    assert threads.get_num_threads() == 6
    threads.set_num_threads(np.int64(2))
    assert threads.get_num_threads() == 2 and type(threads.get_num_threads()) is int
    for bad in (0, -1):
        with pytest.raises(ValueError, match=rf"^set_num_threads: need at least 1 thread, got {bad}$"):
            threads.set_num_threads(bad)
    assert threads.get_num_threads() == 2                             # a refused value changes nothing


def test_cpu_count_is_the_affinity_mask(monkeypatch):
    if hasattr(os, "sched_getaffinity"):
        assert threads._cpu_count() == len(os.sched_getaffinity(0))
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(), raising=False)
    assert threads._cpu_count() == 1
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    assert threads._cpu_count() == 3

    def unavailable(pid):
        raise OSError("no affinity here")
    monkeypatch.setattr(os, "sched_getaffinity", unavailable, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 5)
    assert threads._cpu_count() == 5
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert threads._cpu_count() == 1
    monkeypatch.delattr(os, "sched_getaffinity")                       # macOS, Windows
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    assert threads._cpu_count() == 4


def test_parallel(no_thread_env):
    threads.set_num_threads(2)
    assert threads.parallel(threads.MIN_PARALLEL_BYTES)
    assert not threads.parallel(threads.MIN_PARALLEL_BYTES - 1)
    threads.set_num_threads(1)
    assert not threads.parallel(threads.MIN_PARALLEL_BYTES * 100)


# ---------------------------------------------------------------------------- threads: blocks, run, scratch

def _blocks_ref(rows, row_bytes, block_bytes=None, multiple=1):
    if rows <= 0:
        return []
    per = max(1, (threads.BLOCK_BYTES if block_bytes is None else block_bytes) // max(1, row_bytes))
    per = max(multiple, per - per % multiple)
    out, s = [], 0
    while s < rows:
        out.append((s, min(rows, s + per)))
        s += per
    return out


def test_blocks():
    for rows in (0, 1, 2, 5, 10, 17):
        for row_bytes in (0, 1, 3, 4, 8, 100):
            for block_bytes in (None, 1, 4, 12, 16, 64):
                for multiple in (1, 2, 3):
                    got = threads.blocks(rows, row_bytes, block_bytes, multiple)
                    assert got == _blocks_ref(rows, row_bytes, block_bytes, multiple), \
                        (rows, row_bytes, block_bytes, multiple)
                    assert [b for blk in got for b in range(*blk)] == list(range(rows))
                    assert all((b1 - b0) % multiple == 0 for b0, b1 in got[:-1])
    assert threads.blocks(-3, 4) == []
    assert threads.blocks(5, threads.BLOCK_BYTES // 2) == [(0, 2), (2, 4), (4, 5)]
    assert threads.blocks(4, threads.BLOCK_BYTES) == [(0, 1), (1, 2), (2, 3), (3, 4)]


def test_run_serial_cases_run_every_block_in_order_in_the_caller(no_thread_env, monkeypatch):
    monkeypatch.setattr(threads, "MIN_PARALLEL_BYTES", 1000)
    me = threading.current_thread().name
    for n, nbytes, count in [(5, 10 ** 6, 1), (1, 10 ** 6, 4), (6, 999, 4), (3, 10 ** 6, 0)]:
        seen = []

        def block(i):
            seen.append((i, threading.current_thread().name))
            time.sleep(0.01)                                           # long enough for a woken worker to join in
        threads.run(block, n, nbytes, threads=count)
        assert seen == [(i, me) for i in range(n)], (n, nbytes, count)
    seen = []
    threads.run(seen.append, 0, 10 ** 6, threads=4)
    threads.run(seen.append, -2, 10 ** 6, threads=4)
    assert seen == []
    threads.set_num_threads(1)                                        # the default count
    seen = []
    threads.run(lambda i: seen.append(threading.current_thread().name), 4, 10 ** 6)
    assert seen == [me] * 4


def test_run_really_uses_two_threads(no_thread_env, monkeypatch):
    """Two blocks that wait for each other finish only when two threads run them at the same time."""
    monkeypatch.setattr(threads, "MIN_PARALLEL_BYTES", 1000)
    for count in (2, None):
        if count is None:
            threads.set_num_threads(2)
        barrier = threading.Barrier(2, timeout=5)
        names = []

        def block(i):
            names.append(threading.current_thread().name)
            barrier.wait()

        threads.run(block, 2, nbytes=1000, threads=count)
        assert sorted(names) == sorted([threading.current_thread().name, "tinygan-elementwise"])
        # inside a worker, a nested run is serial (no deadlock waiting for the busy pool)
        inner = []
        threads.run(lambda i: threads.run(lambda j: inner.append((i, j)), 3, nbytes=10 ** 6, threads=2), 2,
                    nbytes=10 ** 6, threads=2)
        assert sorted(inner) == [(i, j) for i in range(2) for j in range(3)]


def test_run_reraises_the_first_error(no_thread_env, monkeypatch):
    monkeypatch.setattr(threads, "MIN_PARALLEL_BYTES", 1000)
    ran = []

    def block(i):
        ran.append(i)
        if i == 3:
            raise KeyError("block 3")

    for count in (1, 2, 3):
        ran.clear()
        with pytest.raises(KeyError, match="block 3"):
            threads.run(block, 50, nbytes=10 ** 6, threads=count)
        assert 3 in ran and len(ran) < 50                             # the remaining blocks are skipped
    threads.run(lambda i: None, 10, nbytes=10 ** 6, threads=3)      # and the pool still works


def test_pool_grows_to_the_requested_size(no_thread_env, monkeypatch):
    monkeypatch.setattr(threads, "MIN_PARALLEL_BYTES", 1000)
    barrier = threading.Barrier(4, timeout=5)
    names = []

    def block(i):
        names.append(threading.current_thread().name)
        barrier.wait()

    threads.run(lambda i: None, 4, nbytes=10 ** 6, threads=2)
    threads.run(block, 4, nbytes=10 ** 6, threads=4)                  # 3 workers and the caller at once
    assert names.count("tinygan-elementwise") == 3


def _in_a_new_thread(fn):
    """Run fn in a fresh thread (fresh per-thread scratch buffers); re-raise what it raised."""
    errors = []

    def body():
        try:
            fn()
        except BaseException as e:          # noqa: BLE001
            errors.append(e)
    t = threading.Thread(target=body)
    t.start()
    t.join()
    if errors:
        raise errors[0]


def test_scratch_reuses_per_thread_and_per_slot_buffers():
    _in_a_new_thread(_scratch_checks)


def _scratch_checks():
    a = threads.scratch((4, 5), np.float32)
    assert a.shape == (4, 5) and a.dtype == np.float32
    a[:] = 1.0
    b = threads.scratch((2, 3), np.float64)                           # smaller: the same memory
    assert b.shape == (2, 3) and b.dtype == np.float64 and np.shares_memory(a, b)
    c = threads.scratch((4, 5), np.bool_, slot=1)
    assert c.dtype == np.bool_ and not np.shares_memory(a, c)
    d = threads.scratch((100, 100), np.float64)                       # larger: a new buffer
    assert d.shape == (100, 100) and d.nbytes == 80000
    e = threads.scratch((10,), np.float64)
    assert np.shares_memory(d, e)
    assert threads.scratch((0, 3), np.float32).shape == (0, 3)
    other = []
    t = threading.Thread(target=lambda: other.append(threads.scratch((10,), np.float64)))
    t.start()
    t.join()
    assert not np.shares_memory(other[0], e)                          # each thread its own


# ---------------------------------------------------------------------------- conv: sizes and argument checks

from tinygan.kernels import conv as kconv  # noqa: E402


def test_output_sizes_are_pytorchs():
    """Conv2d: floor((H + 2p - k) / s) + 1; ConvTranspose2d: (H - 1) s - 2p + k + output_padding."""
    for h in range(1, 9):
        for k in range(1, 5):
            for s in range(1, 4):
                for p in range(0, 3):
                    if k <= h + 2 * p:
                        assert kconv.conv_output_size(h, k, s, p) == (h + 2 * p - k) // s + 1
                    assert kconv.conv_transpose_output_size(h, k, s, p) == (h - 1) * s - 2 * p + k
                    assert kconv.conv_transpose_output_size(h, k, s, p, 1) == (h - 1) * s - 2 * p + k + 1


def test_check_conv_args_returns_the_output_size():
    assert kconv.check_conv_args("conv2d", (2, 3, 7, 9), (4, 3, 3, 2), (2, 1), (1, 0)) == (4, 8)
    assert kconv.check_conv_args("conv2d", (1, 1, 3, 4), (1, 1, 5, 4), (1, 1), (1, 0)) == (1, 1)   # k = H + 2p
    assert kconv.check_conv_args("conv2d", [1, 1, 3, 4], [1, 1, 3, 6], (1, 1), (0, 1)) == (1, 1)
    assert kconv.check_conv_args("convT", (2, 3, 4, 5), (3, 6, 4, 3), (2, 3), (1, 0), (1, 2)) == (9, 17)
    assert kconv.check_conv_args("convT", (2, 3, 1, 1), (3, 6, 3, 3), (1, 1), (1, 1), (0, 0)) == (1, 1)
    assert kconv.check_conv_args("convT", (2, 3, 4, 5), (3, 6, 4, 3), (1, 1), (0, 0), (0, 0)) == (7, 7)


def _refused(message, *a):
    with pytest.raises(ValueError) as info:
        kconv.check_conv_args(*a)
    assert str(info.value) == message


def test_check_conv_args_messages():
    _refused("conv2d: expected a 4-D input (N, C, H, W) and a 4-D weight, got input (3, 7, 7) and weight "
             "(4, 3, 3, 3)", "conv2d", (3, 7, 7), (4, 3, 3, 3), (1, 1), (0, 0))
    _refused("F.conv2d: expected a 4-D input (N, C, H, W) and a 4-D weight, got input (1, 3, 7, 7) and weight "
             "(4, 3, 3)", "F.conv2d", [1, 3, 7, 7], [4, 3, 3], (1, 1), (0, 0))
    _refused("conv2d: input has 2 channels (shape (1, 2, 7, 7)) but weight (out, in, kh, kw) of shape "
             "(4, 3, 3, 3) expects 3", "conv2d", (1, 2, 7, 7), (4, 3, 3, 3), (1, 1), (0, 0))
    _refused("convT: input has 4 channels (shape (1, 4, 7, 7)) but weight (in, out, kh, kw) of shape "
             "(3, 4, 3, 3) expects 3", "convT", (1, 4, 7, 7), (3, 4, 3, 3), (1, 1), (0, 0), (0, 0))
    for stride, padding in [((0, 1), (0, 0)), ((1, 0), (0, 0)), ((1, 1), (-1, 0)), ((1, 1), (0, -1))]:
        _refused(f"conv2d: stride must be >= 1 and padding >= 0, got stride {stride}, padding {padding}",
                 "conv2d", (1, 3, 7, 7), (4, 3, 3, 3), stride, padding)
        _refused(f"convT: stride must be >= 1 and padding >= 0, got stride {stride}, padding {padding}",
                 "convT", (1, 3, 7, 7), (3, 4, 3, 3), stride, padding, (0, 0))
    for w in [(4, 3, 0, 3), (4, 3, 3, 0)]:
        _refused(f"conv2d: weight of shape {w} has an empty kernel", "conv2d", (1, 3, 7, 7), w, (1, 1), (0, 0))
    _refused("conv2d: kernel size (6, 3) is larger than the padded input (5, 7) (input (1, 3, 3, 5), "
             "padding (1, 1))", "conv2d", (1, 3, 3, 5), (4, 3, 6, 3), (1, 1), (1, 1))
    _refused("conv2d: kernel size (3, 8) is larger than the padded input (5, 7) (input (1, 3, 3, 5), "
             "padding (1, 1))", "conv2d", (1, 3, 3, 5), (4, 3, 3, 8), (1, 1), (1, 1))
    for op_pad in [(2, 0), (0, 3), (-1, 0), (0, -1)]:
        _refused(f"convT: output_padding {op_pad} must be >= 0 and smaller than stride (2, 3)",
                 "convT", (1, 3, 4, 4), (3, 2, 3, 3), (2, 3), (0, 0), op_pad)
    _refused("convT: output size (-1, 3) is empty for input (1, 3, 1, 3), weight (3, 2, 1, 3), stride (1, 1), "
             "padding (1, 1)", "convT", (1, 3, 1, 3), (3, 2, 1, 3), (1, 1), (1, 1), (0, 0))
    _refused("convT: output size (3, 0) is empty for input (1, 3, 3, 3), weight (3, 2, 3, 2), stride (1, 1), "
             "padding (1, 2)", "convT", (1, 3, 3, 3), (3, 2, 3, 2), (1, 1), (1, 2), (0, 0))


CONV_CASES = [  # (x shape, weight shape, stride, padding): DCGAN's 4/2/1, odd sizes, stride 1 and 3, 1x1
    ((2, 3, 8, 8), (4, 3, 4, 4), (2, 2), (1, 1)),
    ((1, 2, 7, 5), (3, 2, 3, 2), (1, 2), (1, 0)),
    ((2, 4, 9, 9), (2, 4, 3, 3), (3, 3), (0, 2)),
    ((1, 3, 5, 6), (5, 3, 1, 1), (1, 1), (0, 0)),
]


@pytest.mark.parametrize("xs,ws,stride,padding", CONV_CASES)
def test_conv_kernels_on_every_device(device, xs, ws, stride, padding):
    """conv2d, its two gradients and conv_transpose2d (the same maths as conv2d's input gradient) against
    the slow references, on the CPU and on "cuda" (the CuPy kernels: a GPU, or the stand-in)."""
    from tinygan.backend import get_array_module, to_device, to_numpy
    from tinygan.kernels import reference as ref
    rng = np.random.default_rng(sum(xs))
    x, w = rng.standard_normal(xs), rng.standard_normal(ws)
    hw = xs[2:]
    y_ref = ref.conv2d_ref(x, w, stride, padding)
    gy = rng.standard_normal(y_ref.shape)
    xd, wd, gyd = (to_device(a, device) for a in (x, w, gy))
    xp = get_array_module(xd)
    y = kconv.conv2d(xd, wd, stride, padding)
    assert get_array_module(y) is xp
    np.testing.assert_allclose(to_numpy(y), y_ref, rtol=1e-10, atol=1e-10)
    gx = kconv.conv2d_grad_input(gyd, wd, hw, stride, padding)
    assert get_array_module(gx) is xp and gx.shape == xs
    np.testing.assert_allclose(to_numpy(gx), ref.conv2d_grad_input_ref(gy, w, hw, stride, padding),
                               rtol=1e-10, atol=1e-10)
    gw = kconv.conv2d_grad_weight(xd, gyd, ws[2:], stride, padding)
    assert get_array_module(gw) is xp and gw.shape == ws
    np.testing.assert_allclose(to_numpy(gw), ref.conv2d_grad_weight_ref(x, gy, ws[2:], stride, padding),
                               rtol=1e-10, atol=1e-10)
    wt = rng.standard_normal((ws[1], ws[0]) + ws[2:])               # (in, out, kh, kw) for the transposed conv
    u = rng.standard_normal((xs[0], ws[1]) + y_ref.shape[2:])
    yt = kconv.conv_transpose2d(to_device(u, device), to_device(wt, device), stride, padding)
    assert get_array_module(yt) is xp
    np.testing.assert_allclose(to_numpy(yt), ref.conv_transpose2d_ref(u, wt, stride, padding), rtol=1e-10,
                               atol=1e-10)


# ---------------------------------------------------------------------------- threads: the pool's behaviour

def _pool_threads():
    return {t for t in threading.enumerate() if t.name == "tinygan-elementwise"}


def test_an_explicit_thread_count_beats_the_setting(no_thread_env, monkeypatch):
    monkeypatch.setattr(threads, "MIN_PARALLEL_BYTES", 1)
    threads.set_num_threads(1)
    barrier, names = threading.Barrier(2, timeout=5), []

    def block(i):
        names.append(threading.current_thread().name)
        barrier.wait()

    threads.run(block, 2, nbytes=10, threads=2)
    assert "tinygan-elementwise" in names
    names.clear()
    threads.set_num_threads(2)
    def slow(i):
        names.append(threading.current_thread().name)
        time.sleep(0.02)
    threads.run(slow, 3, threads=2)                                    # nbytes defaults to 0: serial
    assert names == [threading.current_thread().name] * 3


def test_the_at_fork_hook_leaves_a_working_empty_pool(no_thread_env, monkeypatch):
    monkeypatch.setattr(threads, "MIN_PARALLEL_BYTES", 1)
    threads.run(lambda i: None, 2, nbytes=10, threads=2)
    old = threads._pool
    threads._forget_pool_after_fork()                                 # what a forked child runs first
    assert threads._pool is None
    barrier, names = threading.Barrier(2, timeout=5), []

    def block(i):
        names.append(threading.current_thread().name)
        barrier.wait()
    threads.run(block, 2, nbytes=10, threads=2)
    assert threads._pool is not old
    assert sorted(names) == sorted([threading.current_thread().name, "tinygan-elementwise"])
    old.close()


def test_workers_are_daemons_reused_and_waited_for(no_thread_env, monkeypatch):
    monkeypatch.setattr(threads, "MIN_PARALLEL_BYTES", 1)
    threads.run(lambda i: None, 4, nbytes=10, threads=2)
    before = set(threads._pool.workers)
    assert before and all(t.daemon and t.name == "tinygan-elementwise" for t in before)   # never keep Python alive
    barrier, done = threading.Barrier(2, timeout=5), []

    def block(i):
        barrier.wait()
        if threading.current_thread().name == "tinygan-elementwise":
            time.sleep(0.2)                                            # the worker finishes last
        done.append(i)

    threads.run(block, 2, nbytes=10, threads=2)
    assert sorted(done) == [0, 1]                                      # run returns after every block
    assert set(threads._pool.workers) == before and all(t.is_alive() for t in before)   # the same workers


def test_a_busy_pool_runs_a_second_callers_blocks_serially(no_thread_env, monkeypatch):
    monkeypatch.setattr(threads, "MIN_PARALLEL_BYTES", 1)
    threads.run(lambda i: None, 2, nbytes=10, threads=2)
    second_done, names, errors = threading.Event(), [], []

    def first_block(i):
        if not second_done.wait(timeout=5):                           # holds the pool until the other caller is done
            errors.append("the second caller waited for the pool")

    def second():
        me = threading.current_thread().name
        threads.run(lambda i: names.append(threading.current_thread().name == me), 4, nbytes=10, threads=2)
        second_done.set()

    t = threading.Thread(target=lambda: threads.run(first_block, 2, nbytes=10, threads=2))
    t.start()
    time.sleep(0.2)                                                    # the first job is running now
    s = threading.Thread(target=second)
    s.start()
    s.join(10)
    t.join(10)
    assert not errors and names == [True] * 4


def test_a_new_python_thread_gets_the_pool_too(no_thread_env, monkeypatch):
    monkeypatch.setattr(threads, "MIN_PARALLEL_BYTES", 1)
    names, barrier = [], threading.Barrier(2, timeout=5)

    def block(i):
        names.append(threading.current_thread().name)
        barrier.wait()

    t = threading.Thread(target=lambda: threads.run(block, 2, nbytes=10, threads=2), name="caller")
    t.start()
    t.join(10)
    assert sorted(names) == ["caller", "tinygan-elementwise"]


def test_a_grown_pool_stops_its_old_workers_cleanly(no_thread_env, monkeypatch):
    monkeypatch.setattr(threads, "MIN_PARALLEL_BYTES", 1)
    size = threads._pool.size if threads._pool is not None else 1
    threads.run(lambda i: None, 2, nbytes=10, threads=size + 1)       # at least one worker now
    old = list(threads._pool.workers)
    assert old
    raised = []
    monkeypatch.setattr(threading, "excepthook", lambda args: raised.append(args))
    threads.run(lambda i: None, 2, nbytes=10, threads=size + 2)       # a bigger pool replaces it
    for t in old:
        t.join(5)
        assert not t.is_alive()
    assert raised == []


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_starts_with_a_fresh_pool(no_thread_env, monkeypatch):
    monkeypatch.setattr(threads, "MIN_PARALLEL_BYTES", 1)
    threads.run(lambda i: None, 2, nbytes=10, threads=2)              # the parent has workers
    pid = os.fork()
    if pid == 0:                                                       # the child: run on two threads again
        code = 1
        try:
            barrier, names = threading.Barrier(2, timeout=5), []

            def block(i):
                names.append(threading.current_thread().name)
                barrier.wait()
            threads.run(block, 2, nbytes=10, threads=2)
            me = threading.current_thread().name
            code = 0 if sorted(names) == sorted([me, "tinygan-elementwise"]) else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_scratch_reuses_a_buffer_of_exactly_the_size():
    def check():
        a = threads.scratch((4, 5), np.float32, slot=7)
        b = threads.scratch((4, 5), np.float32, slot=7)
        assert np.shares_memory(a, b)
    _in_a_new_thread(check)


def test_every_conv_kernel_names_itself_and_the_argument_in_its_errors():
    x, w = np.zeros((1, 3, 6, 6)), np.zeros((4, 3, 3, 3))
    gy = np.zeros((1, 4, 4, 4))
    u, wt = np.zeros((1, 3, 4, 4)), np.zeros((3, 2, 3, 3))
    calls = {
        "conv2d": lambda **kw: kconv.conv2d(x, w, **kw),
        "conv2d_grad_input": lambda **kw: kconv.conv2d_grad_input(gy, w, kw.pop("input_hw", (6, 6)), **kw),
        "conv2d_grad_weight": lambda **kw: kconv.conv2d_grad_weight(x, gy, kw.pop("kernel_size", 3), **kw),
        "conv_transpose2d": lambda **kw: kconv.conv_transpose2d(u, wt, **kw),
    }
    for op, call in calls.items():
        for arg in ("stride", "padding"):
            with pytest.raises(TypeError, match=rf"^{op}: {arg} must be an int or a pair of ints, got 1.5 \(float\)$"):
                call(**{arg: 1.5})
        with pytest.raises(ValueError, match=rf"^{op}: stride must be >= 1 and padding >= 0, got stride \(0, 1\)"):
            call(stride=(0, 1))
    with pytest.raises(TypeError, match=r"^conv2d_grad_input: input_hw must be an int or a pair of ints, got "):
        calls["conv2d_grad_input"](input_hw=(6.0, 6))
    with pytest.raises(TypeError, match=r"^conv2d_grad_weight: kernel_size must be an int or a pair of ints, got "):
        calls["conv2d_grad_weight"](kernel_size="3")
    with pytest.raises(TypeError, match=r"^conv_transpose2d: output_padding must be an int or a pair of ints, "):
        calls["conv_transpose2d"](output_padding=True)
    with pytest.raises(ValueError, match=r"^conv2d_grad_input: grad_output has shape \(1, 4, 4, 4\) but the "
                                         r"convolution output is \(1, 4, 3, 3\)$"):
        kconv.conv2d_grad_input(gy, w, (5, 5))
    with pytest.raises(ValueError, match=r"^conv2d_grad_weight: grad_output has shape \(1, 4, 4, 4\) but the "
                                         r"convolution output is \(1, 4, 2, 2\)$"):
        kconv.conv2d_grad_weight(x, gy, 5)
    with pytest.raises(ValueError, match=r"^conv2d_grad_input: expected a 4-D grad_output \(N, O, Ho, Wo\) and a "
                                         r"4-D weight, got grad_output \(4, 4, 4\) and weight \(4, 3, 3, 3\)$"):
        kconv.conv2d_grad_input(gy[0], w, (6, 6))
    with pytest.raises(ValueError, match=r"^conv2d_grad_weight: expected a 4-D input \(N, C, H, W\) and a 4-D "
                                         r"grad_output \(N, O, Ho, Wo\), got input \(1, 3, 6, 6\) and grad_output "
                                         r"\(4, 4, 4\)$"):
        kconv.conv2d_grad_weight(x, gy[0], 3)
