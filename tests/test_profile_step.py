"""benchmarks/profile_step.py: self times that add up, the convolutions split into GEMMs and copies, originals restored."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest

from tinygan.kernels import conv

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def profile_step():
    spec = importlib.util.spec_from_file_location("profile_step", ROOT / "benchmarks" / "profile_step.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_self_time_takes_nested_timers_out(profile_step, monkeypatch):
    clock = [0.0]                                      # a fake clock: each function advances it by a known amount
    monkeypatch.setattr(time, "perf_counter", lambda: clock[0])
    host = types.SimpleNamespace()

    def inner():
        clock[0] += 3.0

    def outer():
        clock[0] += 1.0
        host.inner()
        clock[0] += 2.0

    host.inner, host.outer = inner, outer
    prof = profile_step.Profiler()
    prof._wrap(host, "inner", ("copy", "inner"))
    prof._wrap(host, "outer", ("gemm", "outer"))
    host.outer()
    host.outer()
    assert dict(prof.total) == {("gemm", "outer"): 6.0, ("copy", "inner"): 6.0}     # 2 x (1 + 2), 2 x 3
    assert dict(prof.calls) == {("gemm", "outer"): 2, ("copy", "inner"): 2}
    prof.uninstall()
    assert host.inner is inner and host.outer is outer


def test_dcgan_iteration_profile_counts_every_conv_kernel_and_restores_them(profile_step, tmp_path, capsys):
    originals = {name: getattr(conv, name) for name in profile_step.CONV_KERNELS + profile_step.COPY_HELPERS}
    md = tmp_path / "profile.md"
    from tinygan.kernels import threads
    threshold = threads.MIN_PARALLEL_BYTES
    assert profile_step.main(["--batch", "4", "--steps", "2", "--warmup", "1", "--gemm-rate", "190",
                              "--threads", "1", "--min-parallel-kib", "512", "--markdown", str(md)]) == 0
    text = capsys.readouterr().out
    assert md.read_text() == text
    assert "(element-wise work threaded from 512 KiB of input), 1 thread(s)" in text
    assert threads.MIN_PARALLEL_BYTES == threshold                     # restored
    assert all(getattr(conv, name) is fn for name, fn in originals.items())
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if line.startswith("| gemm: ") or line.startswith("| copy: ") or line.startswith("| op: "):
            rows[cells[0]] = (float(cells[1]), int(cells[2]))
    # One iteration of the 28 px DCGAN: 3 D passes (real, fake, fake for G) of 3 convs, G's 3 transposed convs,
    # and the backward passes that need them (no input gradient for D's first conv, no weight gradient for D in G's step).
    assert rows["gemm: `conv2d`"][1] == 11
    assert rows["gemm: `_conv2d_grad_input_nhwc`"][1] == 10
    assert rows["gemm: `conv2d_grad_weight`"][1] == 9
    assert rows["copy: `_im2col`"][1] > 0 and rows["op: `optimizer step (Adam, ...)`"][1] == 2
    assert "GEMM floor: 0.59 GFLOP of convolutions at 190 GFLOP/s" in text
    shares = [float(line.rsplit("|", 2)[1].strip().rstrip("%")) for line in text.splitlines() if line.startswith("| **")]
    assert len(shares) == 4 and abs(sum(shares) - 100) < 0.5           # GEMMs + copies + other ops + not timed


def run_script(*args):
    return subprocess.run([sys.executable, str(ROOT / "benchmarks" / "profile_step.py"), *args], capture_output=True,
                          text=True, timeout=300)


@pytest.mark.parametrize("args, named", [(["--steps", "0"], "--steps must be >= 1, got 0"),
                                         (["--size", "30"], "--size"),
                                         (["--trainer", "--size", "64"], "--trainer"),
                                         (["--gemm-rate", "-1"], "--gemm-rate must be > 0"),
                                         (["--threads", "0", "--gemm-rate", "1"], "--threads must be >= 1"),
                                         (["--min-parallel-kib", "0"], "--min-parallel-kib must be >= 1"),
                                         (["--batch", "2", "--steps", "1", "--warmup", "0", "--gemm-rate", "1",
                                           "--markdown", "/nonexistent/dir/p.md"], "--markdown /nonexistent/dir/p.md")])
def test_bad_input_is_one_line(args, named):
    r = run_script(*args)
    assert r.returncode == 2 and named in r.stderr.strip().splitlines()[-1] and "Traceback" not in r.stderr
