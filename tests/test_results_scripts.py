"""The results commands keep working: tiny versions of benchmarks/quality.py and benchmarks/scoreboard.py.

The long runs are documented commands (docs/results.md, benchmarks/results/); these check that the
commands run end to end and write what they promise."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import require_torch

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def scoreboard(*args):
    return subprocess.run([sys.executable, str(ROOT / "benchmarks" / "scoreboard.py"), *args], capture_output=True,
                          text=True, env=ENV, timeout=600)


def test_scoreboard_quick(tmp_path):
    md = tmp_path / "results.md"
    r = scoreboard("--quick", "--only", "cgan", "infogan", "--jobs", "2", "--threads", "1", "--markdown", str(md),
                   "--work", str(tmp_path / "work"), "--note", "Shared with a test suite.")
    assert r.returncode == 0, r.stderr[-2000:]
    assert sorted(p.name for p in (tmp_path / "work").iterdir()) == ["cgan_seed0.json", "infogan_seed0.json"]
    commit = json.loads((tmp_path / "work" / "cgan_seed0.json").read_text())["commit"]
    assert commit and f"tinygan at commit {commit}" in md.read_text()      # which code trained the rows
    text = md.read_text()
    assert "| cgan |" in text and "| infogan |" in text
    assert "training time, summed: " in text and "Shared with a test suite." in text
    assert (tmp_path / "figures" / "scoreboard_cgan.png").is_file()
    rows = json.loads((tmp_path / "figures" / "scoreboard.json").read_text())["rows"]
    assert {r["row"] for r in rows} == {"cgan", "infogan"}
    assert "conditional_accuracy" in next(r for r in rows if r["row"] == "cgan")
    assert "code_agreement" in next(r for r in rows if r["row"] == "infogan")


def test_scoreboard_reuses_finished_runs_of_the_same_budget(tmp_path):
    """An interrupted scoreboard picks up where it stopped: a saved run of the same budget is not trained again;
    another budget, or --fresh, trains it again."""
    md, work = tmp_path / "results.md", tmp_path / "work"
    base = ["--quick", "--only", "minimax", "--markdown", str(md), "--work", str(work)]
    first = scoreboard(*base)
    assert first.returncode == 0 and "training minimax, seed 0" in first.stderr, first.stderr[-2000:]
    saved = (work / "minimax_seed0.json").read_text()
    again = scoreboard(*base)
    assert again.returncode == 0 and "training" not in again.stderr, again.stderr[-2000:]
    assert (work / "minimax_seed0.json").read_text() == saved and "| minimax |" in md.read_text()
    for extra in (["--fresh"], ["--ema", "0.5"]):
        r = scoreboard(*base, *extra)
        assert r.returncode == 0 and "training minimax, seed 0" in r.stderr, (extra, r.stderr[-2000:])


def test_scoreboard_refuses_a_bad_count(tmp_path):
    r = scoreboard("--quick", "--jobs", "0", "--work", str(tmp_path))
    assert r.returncode == 2 and "--jobs must be at least 1, got 0" in r.stderr.strip().splitlines()[-1]


def test_quality_quick(tmp_path):
    require_torch()
    md = tmp_path / "q.md"
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "quality.py"), "--quick", "--threads", "1",
                        "--work", str(tmp_path / "w"), "--markdown", str(md)], capture_output=True, text=True,
                       env=ENV, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    text = md.read_text()
    assert "| tinygan |" in text and "| torch |" in text
    saved = json.loads(md.with_suffix(".json").read_text())
    rows = saved["rows"]
    assert {(r["framework"], r["step"]) for r in rows} == {("tinygan", 2), ("tinygan", 4), ("torch", 2), ("torch", 4)}
    assert "| tinygan | tinygan train: lr 0.0002, ema 0 |" in text          # --mode steps: the plain recipe, from its config
    assert saved["command"].endswith("--quick --threads 1 --work " + str(tmp_path / "w") + " --markdown " + str(md))
    # --render: the same table again from the .json, with no training (no snapshot folder needed)
    again = tmp_path / "again.md"
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "quality.py"), "--render", str(md.with_suffix(".json")),
                        "--markdown", str(again)], capture_output=True, text=True, env=ENV, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert again.read_text() == text.replace("q.png", "again.png") and again.with_suffix(".png").is_file()
    for bad, named in ((tmp_path / "missing.json", "No such file"), (md, "not a results file")):
        r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "quality.py"), "--render", str(bad)],
                           capture_output=True, text=True, env=ENV, timeout=60)
        assert r.returncode == 2 and named in r.stderr.strip().splitlines()[-1] and "Traceback" not in r.stderr


def test_quality_recipe_cell_names_lr_ema_and_r1():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import quality
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    assert quality._recipe({"lr": 0.0016, "ema": 0.999, "ema_warmup": 20, "r1": 1.0, "r1_every": 16}) == \
        "tinygan train: lr 0.0016, ema 0.999 (warm-up 20), R1 gamma 1 every 16 D steps"
    assert quality._recipe({"lr": 0.0016, "ema": 0.999, "r1": 0.0}) == \
        "tinygan train: lr 0.0016, ema 0.999 (warm-up 10)"          # a run from before --ema-warmup
    assert quality._recipe({"lr": 2e-4, "ema": 0.0, "r1": 10.0, "r1_every": 1}) == \
        "tinygan train: lr 0.0002, ema 0, R1 gamma 10"
    assert quality._recipe({"recipe": "pytorch examples/dcgan"}) == "pytorch examples/dcgan"


def test_memory_script(tmp_path):
    require_torch()
    md = tmp_path / "m.md"
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "memory.py"), "--sizes", "28", "--batch", "4",
                        "--markdown", str(md)], capture_output=True, text=True, env=ENV, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    row = json.loads(md.with_suffix(".json").read_text())["rows"][0]
    assert row["config"] == "dcgan28 b4" and row["step_peak_mib_tinygan"] > 0 and row["step_peak_mib_torch"] > 0
    assert "| dcgan28 b4 |" in md.read_text()
    bad = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "memory.py"), "--batch", "0"],
                         capture_output=True, text=True, env=ENV, timeout=60)
    assert bad.returncode == 2 and "--batch must be positive, got 0" in bad.stderr


def sweep(*args):
    return subprocess.run([sys.executable, str(ROOT / "benchmarks" / "sweep.py"), *args], capture_output=True,
                          text=True, env=ENV, timeout=600)


def test_sweep_scores_a_setting_at_each_eval_step(tmp_path):
    log = tmp_path / "sweep.jsonl"
    r = sweep("ngf=8", "ndf=8", "seed=3", "--steps", "4", "--evals", "2", "4", "--n", "200", "--decay", "linear",
              "--jsonl", str(log))
    assert r.returncode == 0, r.stderr[-2000:]
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert [row["step"] for row in rows] == [2, 4] and r.stdout.count("frechet_distance") == 2
    assert rows[0]["settings"] == {"ngf": 8, "ndf": 8, "seed": 3} and rows[0]["decay"] == "linear"
    assert all(row["frechet_distance"] > 0 and 0 <= row["smallest_class"] <= row["largest_class"] <= 1
               for row in rows)


def test_sweep_scores_more_averages_beside_the_runs_own():
    """--ema-warmups 10: the run's own average (warm-up 20) and one with warm-up 10, from the same training."""
    r = sweep("ngf=8", "ndf=8", "--steps", "3", "--evals", "3", "--n", "200", "--ema-warmups", "10", "20")
    assert r.returncode == 0, r.stderr[-2000:]
    rows = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    assert [(row["step"], row["ema_warmup"]) for row in rows] == [(3, 20), (3, 10)]
    assert rows[0]["frechet_distance"] != rows[1]["frechet_distance"]        # two different averages


@pytest.mark.parametrize("args, named", [(["ngff=8"], "unknown setting 'ngff'"), (["lr=-1"], "--lr"),
                                         (["lr"], "key=value"), (["--steps", "4", "--evals", "5"], "--evals"),
                                         (["--jsonl", "/nonexistent/dir/x.jsonl"], "--jsonl: cannot write"),
                                         (["dataset=ring8", "model=mlp"], "toy_tables.py"),
                                         (["--ema-warmups", "1"], "--ema-warmups"),
                                         (["ema=0", "--steps", "1", "--ema-warmups", "10"],
                                          "--ema-warmups: the run has no average")])
def test_sweep_refuses_a_bad_setting_in_one_line(args, named):
    r = sweep(*args)
    assert r.returncode == 2 and named in r.stderr and "Traceback" not in r.stderr


def test_sweep_lr_schedules():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import sweep as sweep_module
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    assert [sweep_module.lr_factor(s, 4, "linear") for s in range(4)] == [1.0, 0.75, 0.5, 0.25]
    assert sweep_module.lr_factor(3, 4, "none") == 1.0
    assert sweep_module.parse_settings(["lr=1e-3", "ngf=128", "loss=hinge"]) == {"lr": 1e-3, "ngf": 128,
                                                                                  "loss": "hinge"}
    assert sweep_module.parse_settings(["mbstd=true", "spectral_norm=False"]) == {"mbstd": True,
                                                                                  "spectral_norm": False}


def test_sweep_d_lr_factor_sets_d_learning_rate_only(monkeypatch):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import sweep as sweep_module
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    made = []

    class Recording(sweep_module.Trainer):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            made.append(self)

    monkeypatch.setattr(sweep_module, "Trainer", Recording)
    rows = sweep_module.run({"ngf": 8, "ndf": 8}, steps=2, evals=[2], n=50, log=lambda line: None, d_lr_factor=3.0,
                            decay="linear")
    t = made[0]
    lr_g = t.opt_g.param_groups[0]["lr"]
    # after the last step of a linear decay over 2 steps, both lrs are at half their start
    assert lr_g == pytest.approx(t.config.resolved().lr * 0.5)
    assert t.opt_d.param_groups[0]["lr"] == pytest.approx(3.0 * lr_g)
    assert rows[0]["d_lr_factor"] == 3.0
