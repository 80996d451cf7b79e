"""The compiled kernels' plumbing (tinygan/kernels/jit.py): the switch, layouts, threads, fork, two callers.

Their numbers are checked against the slow references and the NumPy kernels by the kernel tests
(tests/test_kernels_batchnorm.py, tests/test_kernels_activations.py run every test on both, through
conftest's ``kernel_path``) and by the gradient checks; this file checks what decides whether they run.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

from tinygan.kernels import activations as act
from tinygan.kernels import batchnorm as bn
from tinygan.kernels import jit
from tinygan.kernels import threads as _threads

ROOT = Path(__file__).resolve().parent.parent
needs_numba = pytest.mark.skipif(not jit.available(), reason='numba is not installed (pip install -e ".[fast]")')


def _python(code: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=300, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), **env})


def _channels_last(shape, seed=0):
    x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


def test_the_environment_turns_them_off():
    proc = _python("from tinygan.kernels import jit; print(jit.enabled())", TINYGAN_NUMBA="0")
    assert proc.returncode == 0 and proc.stdout.strip() == "False", proc.stderr


def test_turning_them_on_without_numba_says_what_to_install(monkeypatch):
    monkeypatch.setattr(jit, "numba", None)
    with pytest.raises(RuntimeError, match=r'need numba: pip install -e "\.\[fast\]"'):
        jit.set_enabled(True)


def test_switched_off_they_leave_the_work_to_numpy(monkeypatch):
    monkeypatch.setattr(jit, "_ENABLED", False)
    x = _channels_last((2, 3, 4, 5))
    assert jit.batch_norm_train_forward(x, None, None, 1e-5) is None
    assert jit.leaky_relu(x, 0.2) is None


@needs_numba
def test_layouts_they_do_not_compile_fall_back_to_numpy(monkeypatch):
    """A strided view, an (N, C, H, W) array of neither layout, a slope above 1: None, and the caller's
    NumPy kernel computes the same values as with the compiled kernels off."""
    monkeypatch.setattr(jit, "_ENABLED", True)
    x = np.random.default_rng(1).standard_normal((4, 3, 6, 10)).astype(np.float32)[:, :, :, ::2]   # strided
    odd = np.random.default_rng(2).standard_normal((4, 5, 3, 6)).astype(np.float32).transpose(0, 3, 2, 1)
    assert jit.batch_norm_train_forward(x, None, None, 1e-5) is None
    assert jit.batch_norm_train_forward(odd, None, None, 1e-5) is None
    assert jit.leaky_relu(x, 0.2) is None and jit.leaky_relu(_channels_last((2, 3, 4, 5)), 1.5) is None
    on = bn.batch_norm_train_forward(x, None, None, 1e-5)[0], act.leaky_relu(odd, 0.2)
    monkeypatch.setattr(jit, "_ENABLED", False)
    off = bn.batch_norm_train_forward(x, None, None, 1e-5)[0], act.leaky_relu(odd, 0.2)
    for a, b in zip(on, off):
        np.testing.assert_array_equal(a, b)


@needs_numba
@pytest.mark.parametrize("shape", [(4, 3, 5, 6), (7, 11)])
def test_output_keeps_the_input_layout(shape, monkeypatch):
    monkeypatch.setattr(jit, "_ENABLED", True)
    x = _channels_last(shape) if len(shape) == 4 else np.random.default_rng(0).standard_normal(shape).astype(
        np.float32)
    for a in (x, np.ascontiguousarray(x)):
        y = jit.batch_norm_train_forward(a, None, None, 1e-5)[0]
        assert y.strides == a.strides
        dx = jit.batch_norm_train_backward(a, a, np.zeros(shape[1], np.float32), np.ones(shape[1], np.float32),
                                           None)[0]
        assert dx.strides == a.strides and jit.leaky_relu(a, 0.2).strides == a.strides


@needs_numba
def test_they_run_on_tinygans_thread_count(monkeypatch):
    monkeypatch.setattr(jit, "_ENABLED", True)
    before = _threads.get_num_threads()
    try:
        _threads.set_num_threads(1)
        jit.leaky_relu(_channels_last((2, 3, 4, 5)), 0.2)
        assert jit.numba.get_num_threads() == 1
        _threads.set_num_threads(2)
        jit.leaky_relu(_channels_last((2, 3, 4, 5)), 0.2)
        assert jit.numba.get_num_threads() == min(2, jit.numba.config.NUMBA_NUM_THREADS)
    finally:
        _threads.set_num_threads(before)


@needs_numba
def test_two_python_threads_at_once_get_their_own_results(monkeypatch):
    monkeypatch.setattr(jit, "_ENABLED", True)
    xs = [_channels_last((16, 8, 12, 12), seed=s) for s in range(4)]
    expected = [bn.batch_norm_train_forward(x, None, None, 1e-5)[0] for x in xs]
    got, errors = {}, []

    def work(i):
        try:
            for _ in range(20):
                got[i] = bn.batch_norm_train_forward(xs[i], None, None, 1e-5)[0]
        except Exception as e:                        # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for i in range(4):
        np.testing.assert_array_equal(got[i], expected[i])


@needs_numba
def test_a_process_forked_after_a_compiled_call_uses_the_numpy_kernels():
    """GNU OpenMP's threads do not survive fork(): the child of a process that ran a compiled kernel turns
    them off (and finishes its work); the child of one that had not keeps them."""
    proc = _python("""
        import os, numpy as np
        from tinygan.kernels import jit, activations as act

        def child():
            x = np.arange(-6, 6, dtype=np.float32).reshape(2, 6)
            ok = np.array_equal(act.leaky_relu(x, 0.5), np.where(x > 0, x, 0.5 * x))
            os._exit(0 if ok else 3)

        def fork_and_report():
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(r)
                os.write(w, b"1" if jit.enabled() else b"0")
                child()
            os.close(w)
            flag = os.read(r, 1)
            _, status = os.waitpid(pid, 0)
            return flag, os.waitstatus_to_exitcode(status)

        print(fork_and_report())                        # before any compiled call: kept
        act.leaky_relu(np.ones((4, 4), np.float32), 0.2)
        print(fork_and_report())                        # after one: NumPy's kernels in the child
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:2] == ["(b'1', 0)", "(b'0', 0)"]


@needs_numba
def test_the_benchmark_script_runs_and_checks_agreement(tmp_path, capsys):
    """benchmarks/compiled_kernels.py on a tiny batch: every batch-norm and LeakyReLU layer of the 28 px
    DCGAN, both passes, agreeing to float32 rounding; a bad count is refused in one line."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import compiled_kernels
    finally:
        sys.path.pop(0)
    out = tmp_path / "ck.md"
    assert compiled_kernels.main(["--sizes", "28", "--batch", "2", "--blocks", "1", "--calls", "1",
                                  "--markdown", str(out)]) == 0
    rows = [line.split(" | ") for line in out.read_text().splitlines() if line.startswith("| dcgan28")]
    rows = [r for r in rows if len(r) == 8]                       # the kernel rows, not the per-config sums
    assert {(r[1], r[2], r[3]) for r in rows} == {(layer, op, p) for layer, op in (
        ("G.main.1", "batch_norm"), ("G.main.4", "batch_norm"), ("D.main.1", "leaky_relu"),
        ("D.main.3", "batch_norm"), ("D.main.4", "leaky_relu")) for p in ("fwd", "bwd")}
    assert all(float(r[-1].rstrip(" |")) < 1e-5 for r in rows)
    capsys.readouterr()
    with pytest.raises(SystemExit):
        compiled_kernels.main(["--calls", "0"])
    assert "--calls must be at least 1, got 0" in capsys.readouterr().err
