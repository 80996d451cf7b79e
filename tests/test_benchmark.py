"""The benchmark suite: agreement with PyTorch through the ``bench`` CLI, and whole-step parity.

No timing is asserted: these tests check that every kernel row and every
training iteration the benchmarks time computes the same thing as PyTorch.
"""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import require_torch  # noqa: E402

torch = require_torch()   # fails without PyTorch unless TINYGAN_ALLOW_NO_TORCH=1 (conftest.py)

from tinygan.benchmark import kernels as K  # noqa: E402
from tinygan.benchmark import step as S  # noqa: E402


def test_import_tinygan_does_not_import_torch():
    code = ("import sys, tinygan, tinygan.cli, tinygan.benchmark, tinygan.benchmark.cli; "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_walk_layers_matches_the_models():
    cfg = K.Config(64, 64)
    layers = K.walk_layers(cfg)
    convs = [(l.name, l.in_shape) for l in layers if l.kind in ("Conv2d", "ConvTranspose2d")]
    assert convs[0] == ("G.main.0", (64, 100, 1, 1))
    assert ("G.main.12", (64, 64, 32, 32)) in convs                       # the last ConvTranspose2d
    assert ("D.main.0", (64, 3, 64, 64)) in convs
    assert convs[-1] == ("D.main.11", (64, 512, 4, 4))                     # the logit layer
    # 64x64 at batch 64: about 146 GFLOP of convolution per iteration (shared/perf-notes.md: ~159 with
    # a data gradient for D's first layer in D's step, which tinygan and PyTorch skip).
    assert 140 < K.step_gflop(cfg) < 160


def test_quick_bench_cli_agrees_with_pytorch(tmp_path):
    from tinygan.cli import main
    out = tmp_path / "bench.json"
    md = tmp_path / "bench.md"
    rc = main(["bench", "--quick", "--device", "cpu", "--threads", "1", "--json", str(out), "--markdown", str(md)])
    assert rc == 0
    result = json.loads(out.read_text())
    table = result["tables"][0]
    rows = table["kernels"]
    # every op of every configuration, with each of its passes
    for size in (64, 28, 32):
        name = K.Config(size, 8, ngf=8, ndf=8).name
        expected = {(c.layer, c.op, p) for c in K.kernel_cases(K.Config(size, 8, ngf=8, ndf=8)) for p in c.passes}
        got = {(r["layer"], r["op"], r["pass"]) for r in rows if r["config"] == name}
        assert got == expected, f"{name}: missing {expected - got}"
        assert {op for _, op, _ in got} == {"conv2d", "conv_transpose2d", "batch_norm", "leaky_relu", "linear",
                                              "adam", "bce_with_logits"}
    for r in rows:
        assert r["agree"] < r["tol"] <= K.KERNEL_TOL, r
        assert r["ok"]
    for s in table["steps"]:
        assert s["parity"]["ok"], s["parity"]
        assert s["parity_f64"]["ok"], s["parity_f64"]
    assert "Where we stand vs targets" in md.read_text()
    assert result["machine"]["threads"] == 1 and result["command"].startswith("tinygan bench")
    # A run without kernel rows (--only step) judges no kernel target: it has nothing to judge it by.
    from tinygan.benchmark.report import evaluate_targets
    assert any(t["target"].startswith("no kernel worse") for t in evaluate_targets(result))
    steps_only = {**result, "tables": [{**table, "kernels": []}]}
    assert not any(t["target"].startswith("no kernel worse") for t in evaluate_targets(steps_only))


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_whole_step_parity_small_dcgan(dtype):
    """10 iterations from the same weights and data: losses and weights agree (see step.Tolerance)."""
    cfg = K.Config(28, 16, ngf=16, ndf=16)
    tg, pt = S.build_pair(cfg, "cpu", dtype=dtype)
    iters = 10 if dtype == np.float32 else 3
    tol = S.Tolerance() if dtype == np.float32 else S.Tolerance.float64()
    report = S.check_parity(tg, pt, iters, tol)
    assert report["ok"], {k: v for k, v in report.items() if k != "losses_first_last"}
    # At this small size float32 barely drifts: the lead's float32 bounds hold after 10 iterations
    # (the wider drift bounds of step.Tolerance are for full-width DCGANs, see docs/benchmarks.md).
    assert report["loss_rel"] < 1e-3 and report["weight_rel_l2"] < 3e-3 and report["weight_max_abs"] < 1e-2


def test_parity_catches_a_different_recipe():
    """Real differences fail: a different D learning rate (float64 drift), a different slope (probe)."""
    cfg = K.Config(28, 8, ngf=8, ndf=8)
    tg, pt = S.build_pair(cfg, "cpu", dtype=np.float64)
    for group in pt.opt_d.param_groups:
        group["lr"] = 2.2e-4
    report = S.check_parity(tg, pt, 2, S.Tolerance.float64())
    assert not report["ok"] and "weight_rel_l2" in report["failed"]

    tg, pt = S.build_pair(cfg, "cpu")
    pt.D.main[1].negative_slope = 0.21
    report = S.check_parity(tg, pt, 1)
    assert not report["ok"] and "probe_grad_rel_l2" in report["failed"]
