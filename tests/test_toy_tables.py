"""``benchmarks/toy_tables.py``: the papers' toy networks, the table's statistics and format, and a tiny
end-to-end call (a few steps: the command keeps working; the real tables are documented commands)."""
from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

import tinygan
from tinygan import nn
from tinygan.gan.models import Maxout
from tinygan.gan.pack import Packed

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tables():
    spec = importlib.util.spec_from_file_location("toy_tables", ROOT / "benchmarks" / "toy_tables.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["toy_tables"] = module            # the process pool pickles its functions by module name
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("toy_tables", None)


def test_the_papers_networks(tables):
    tinygan.manual_seed(0)
    G, D = tables.build_networks("gan")
    linears = [m for m in G.modules() if isinstance(m, nn.Linear)]
    assert [tuple(m.weight.shape) for m in linears] == [(400, 2), (400, 400), (400, 400), (400, 400), (2, 400)]
    assert sum(isinstance(m, nn.BatchNorm1d) for m in G.modules()) == 4
    assert sum(isinstance(m, nn.ReLU) for m in G.modules()) == 4
    assert [tuple(m.weight.shape) for m in D.modules() if isinstance(m, nn.Linear)] == \
        [(1000, 2), (1000, 200), (1000, 200), (1, 200)]                   # 200 maxout units of 5 pieces
    assert [m.pieces for m in D.modules() if isinstance(m, Maxout)] == [5, 5, 5]
    assert not any(isinstance(m, (nn.BatchNorm1d, nn.LayerNorm)) for m in D.modules())
    w = np.concatenate([m.weight.numpy().ravel() for m in linears])
    assert abs(w.std() - 0.02) < 0.001 and all(not m.bias.numpy().any() for m in linears)
    _, D4 = tables.build_networks("pacgan4")
    assert isinstance(D4, Packed) and D4.pack == 4 and D4.inner.main[0].weight.shape == (1000, 8)


def test_wgan_gp_gets_the_same_number_of_d_updates(tables):
    assert tables.generator_steps("pacgan3", 20000) == 20000
    assert tables.generator_steps("wgan-gp", 20000) == 4000              # 5 critic updates per generator step


def test_mean_and_standard_error(tables):
    assert tables.mean_se([1.0, 2.0, 3.0, 6.0]) == (3.0, pytest.approx(math.sqrt(14 / 3) / 2))
    assert tables.mean_se([5.0]) == (5.0, 0.0)


def test_summary_and_table_format(tables):
    rows = [{"variant": "pacgan2", "trial": t, "steps": 10, "seconds": 2.0, "num_modes": 8, "modes_captured": m,
             "high_quality": hq, "reverse_kl": kl} for t, (m, hq, kl) in enumerate([(8, 0.95, 0.02), (7, 0.91, 0.2)])]
    s = tables.summarise(rows)
    assert s["pacgan2"]["modes"] == (7.5, pytest.approx(0.5))
    assert s["pacgan2"]["high_quality"][0] == pytest.approx(93.0)
    text = tables.format_table("ring8", s)
    assert "| tinygan PacGAN2 | 7.5 +- 0.5 | 93.0 +- 2.0 % | 0.11 +- 0.09 | 2 | 10 | 2 |" in text
    assert "| PacGAN Table 1: PacGAN2 | 7.9 +- 0.1 | 95.6 +- 2.0 % | 0.07 +- 0.03 |" in text
    assert "| VEEGAN Table 1: GAN | 1.0 | 99.3 % | - |" in text


def test_a_tiny_table_end_to_end_then_reused(tables, tmp_path, capsys):
    argv = ["--quick", "--steps", "2", "--dataset", "grid25", "--variants", "gan", "pacgan2", "wgan-gp",
            "--jobs", "2", "--out", str(tmp_path / "t"), "--markdown", str(tmp_path / "toy-grid25.md")]
    first = tables.main(argv)
    rows = first["summary"]["grid25"]
    assert list(rows) == ["gan", "pacgan2", "wgan-gp"] and all(r["trials"] == 2 for r in rows.values())
    saved = json.loads((tmp_path / "t" / "grid25" / "pacgan2_trial1.json").read_text())
    assert saved["steps"] == 2 and saved["num_modes"] == 25
    assert saved["finite"] and len(saved["mode_counts"]) == 25
    text = (tmp_path / "toy-grid25.md").read_text()
    assert "tinygan PacGAN2" in text and "PacGAN Table 1: PacGAN4" in text and "Command: `" in text
    capsys.readouterr()
    again = tables.main(argv)                                               # every trial reused, none trained
    assert "0 trial(s) to train (6 reused)" in capsys.readouterr().out
    assert again["summary"] == first["summary"]
    report = tables.main(argv[:-4] + ["--trials", "3", "--report-only", "--out", str(tmp_path / "t")])
    assert "0 trial(s) to train (6 reused)" in capsys.readouterr().out       # trial 2 is missing: left out
    assert report["summary"] == first["summary"]
    assert "Wall time: this call trained nothing (--report-only)" in report["text"]
    steps = tables.main(["--quick", "--steps", "4", "--eval-every", "2", "--dataset", "ring8", "--variants", "gan",
                         "--trials", "1", "--out", str(tmp_path / "h"), "--history"])
    (r,) = steps["results"]["ring8"]
    assert f"| GAN | 0 | 2 | {r['history'][0]['modes_captured']}/8 |" in steps["text"]
    assert f"| GAN | 0 | 4 | {r['modes_captured']}/8 | {100 * r['high_quality']:.1f} % |" in steps["text"]
    assert "Wall time: " in first["text"] and "2 trial(s) at a time" in first["text"]


def test_a_trial_measures_what_its_generator_draws(tables, monkeypatch):
    """The numbers come from mixture_metrics on 2,500 samples of the trained G (not, say, of the data)."""
    seen = {}

    def fake_metrics(samples, target, n):
        seen.update(shape=np.shape(samples), target=target, n=n)
        return {"modes_captured": 3, "num_modes": 8, "high_quality": 0.5, "reverse_kl": 0.1, "mode_counts": [0] * 8}

    monkeypatch.setattr(tables, "mixture_metrics", fake_metrics)
    r = tables.run_trial("ring8", "pacgan3", 0, 1)
    assert seen == {"shape": (2500, 2), "target": "ring8", "n": 2500}
    assert (r["modes_captured"], r["high_quality"], r["variant"], r["steps"]) == (3, 0.5, "pacgan3", 1)


def _arrays(path):
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files if k != "meta.json"}, json.loads(z["meta.json"].tobytes())


@pytest.mark.parametrize("variant", ["gan", "wgan-gp"])              # wgan-gp: the penalty's eps draws too
def test_a_resumed_trial_computes_the_floats_of_an_uninterrupted_one(tables, tmp_path, variant):
    steps = 4
    straight = tables.run_trial("ring8", variant, 1, steps, eval_every=2, state=tmp_path / "a.npz")
    first = tables.run_trial("ring8", variant, 1, 2, eval_every=2, state=tmp_path / "b.npz", checkpoint_every=1)
    assert "resumed_at" not in first
    resumed = tables.run_trial("ring8", variant, 1, steps, eval_every=2, state=tmp_path / "b.npz")
    a, meta_a = _arrays(tmp_path / "a.npz")
    b, meta_b = _arrays(tmp_path / "b.npz")
    assert sorted(a) == sorted(b) and any(k.startswith("optD/") for k in a)
    assert all(np.array_equal(a[k], b[k]) for k in a), [k for k in a if not np.array_equal(a[k], b[k])]
    assert meta_a["rng"] == meta_b["rng"] and meta_a["step"] == meta_b["step"] == steps
    assert resumed["resumed_at"] == [2] and meta_b["resumed_at"] == [2]
    for key in ("mode_counts", "high_quality", "reverse_kl"):
        assert resumed[key] == straight[key]
    assert [h["step"] for h in resumed["history"]] == [h["step"] for h in straight["history"]] == [2]
    assert resumed["history"][0]["mode_counts"] == straight["history"][0]["mode_counts"]


def test_a_finished_trial_is_extended_by_a_call_with_more_steps(tables, tmp_path, capsys):
    argv = ["--variants", "gan", "--trials", "1", "--eval-every", "2", "--checkpoint-every", "0"]
    tables.main(argv + ["--steps", "2", "--out", str(tmp_path / "t")])
    assert (tmp_path / "t" / "ring8" / "gan_trial0.state.npz").is_file()      # the end state is kept
    capsys.readouterr()
    longer = tables.main(argv + ["--steps", "4", "--out", str(tmp_path / "t")])
    assert "ring8 GAN trial 0: resumes at step 2" in capsys.readouterr().out
    fresh = tables.main(argv + ["--steps", "4", "--out", str(tmp_path / "f")])
    (r,), (f,) = longer["results"]["ring8"], fresh["results"]["ring8"]
    assert r["resumed_at"] == [2] and "resumed_at" not in f
    assert [seg["from_step"] for seg in r["trained_on"]] == [0, 2] and len(f["trained_on"]) == 1
    assert r["trained_on"][1]["cpu"] == tables.machine()["cpu"] and "commit" in r["trained_on"][1]
    assert "trials trained on: " in longer["text"]
    assert (r["mode_counts"], r["reverse_kl"]) == (f["mode_counts"], f["reverse_kl"])
    assert r["history"] == [dict(f["history"][0], seconds=r["history"][0]["seconds"])]
    a, _ = _arrays(tmp_path / "t" / "ring8" / "gan_trial0.state.npz")
    b, _ = _arrays(tmp_path / "f" / "ring8" / "gan_trial0.state.npz")
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_the_header_says_where_the_trials_were_trained(tables):
    """Trials gathered over calls and machines: each CPU and commit with its count; older trials say so."""
    xeon = {"from_step": 0, "cpu": "Xeon", "cores": 2, "commit": "abc"}          # before kernels were recorded
    later = dict(xeon, from_step=5, cpu="EPYC", commit="def", kernels="numba 0.68.1")
    rows = [{"trained_on": [xeon]}, {"trained_on": [xeon, later]}, {}]
    assert tables.trained_on_line(rows) == ("trials trained on: EPYC, 2 cores (1); Xeon, 2 cores (2); "
                                            "not recorded (1); at commits abc (2), def (1), not recorded (1); "
                                            "with kernels numba 0.68.1 (1), numpy (3)")


def test_a_trial_records_which_kernels_trained_it(tables, tmp_path, monkeypatch):
    """The compiled kernels (numba) compute other floats than NumPy's: each stretch of a trial says which ran."""
    from tinygan.kernels import jit
    argv = ["--variants", "gan", "--trials", "1", "--steps", "2", "--checkpoint-every", "0"]
    monkeypatch.setattr(jit, "_ENABLED", False)
    r = tables.main(argv + ["--out", str(tmp_path / "a")])["results"]["ring8"][0]
    assert r["trained_on"][0]["kernels"] == "numpy" and tables.machine()["kernels"] == "numpy"
    if jit.available():
        monkeypatch.setattr(jit, "_ENABLED", True)
        r = tables.main(argv + ["--out", str(tmp_path / "b")])["results"]["ring8"][0]
        assert r["trained_on"][0]["kernels"] == f"numba {jit.numba.__version__}"


def test_a_state_that_does_not_fit_ends_the_call_with_one_line(tables, tmp_path, capsys):
    out = tmp_path / "t"
    argv = ["--variants", "gan", "--trials", "1", "--first-trial", "1", "--steps", "2", "--out", str(out)]
    (out / "ring8").mkdir(parents=True)
    state = out / "ring8" / "gan_trial1.state.npz"
    state.write_bytes(b"not a zip file")
    with pytest.raises(SystemExit, match=r"gan_trial1\.state\.npz: this trial's saved state cannot be read "
                                         r"\(not a \.npz archive.*--overwrite"):
        tables.main(argv)
    assert state.read_bytes() == b"not a zip file"                          # nothing touched
    state.unlink()
    tables.run_trial("ring8", "gan", 0, 1, state=state)                     # trial 0's state under trial 1's name
    with pytest.raises(SystemExit, match=r"gan_trial1\.state\.npz: its trial is 0, this trial's 1"):
        tables.main(argv)
    tables.main(argv + ["--overwrite"])                                     # asked for: trained afresh
    assert _arrays(state)[1]["trial"] == 1 and (out / "ring8" / "gan_trial1.json").is_file()


def test_a_state_past_the_calls_steps_is_left_alone(tables, tmp_path, capsys):
    out = tmp_path / "t"
    tables.main(["--variants", "gan", "--trials", "1", "--steps", "3", "--out", str(out)])
    state = out / "ring8" / "gan_trial0.state.npz"
    before = state.read_bytes()
    capsys.readouterr()
    r = tables.main(["--variants", "gan", "--trials", "1", "--steps", "2", "--out", str(out)])
    assert "trained from scratch; " in capsys.readouterr().out and state.read_bytes() == before
    assert r["results"]["ring8"][0]["steps"] == 2 and "resumed_at" not in r["results"]["ring8"][0]
    tables.main(["--variants", "gan", "--trials", "2", "--steps", "5", "--out", str(out), "--report-only"])
    assert "ring8 GAN trial 0: in flight, at step 3" in capsys.readouterr().out


def test_the_table_at_an_earlier_step_takes_finished_trials_and_those_in_flight(tables, tmp_path, capsys):
    out = str(tmp_path / "t")
    common = ["--variants", "gan", "--eval-every", "2", "--out", out]
    tables.main(common + ["--trials", "1", "--steps", "4"])                       # trial 0: finished at 4
    tables.main(common + ["--trials", "1", "--first-trial", "1", "--steps", "2"])  # trial 1: stopped at 2
    finished = json.loads((tmp_path / "t" / "ring8" / "gan_trial0.json").read_text())
    _, in_flight = _arrays(tmp_path / "t" / "ring8" / "gan_trial1.state.npz")
    capsys.readouterr()
    at2 = tables.main(common + ["--trials", "2", "--steps", "4", "--report-only", "--at-step", "2"])
    rows = sorted(at2["results"]["ring8"], key=lambda r: r["trial"])
    assert [(r["trial"], r["steps"]) for r in rows] == [(0, 2), (1, 2)]
    assert rows[0]["mode_counts"] == finished["history"][0]["mode_counts"]
    assert rows[1]["mode_counts"] == in_flight["history"][0]["mode_counts"]
    assert at2["summary"]["ring8"]["gan"]["trials"] == 2
    assert "Measured at step 2 of trials trained for 4 steps" in (tmp_path / "t" / "table-at2.md").read_text()
    at4 = tables.main(common + ["--trials", "2", "--steps", "4", "--report-only", "--at-step", "4"])
    assert [r["trial"] for r in at4["results"]["ring8"]] == [0]                # trial 1 has not reached step 4
    assert at4["results"]["ring8"][0]["mode_counts"] == finished["mode_counts"]
    critic = ["--variants", "wgan-gp", "--eval-every", "1", "--out", out, "--trials", "1", "--steps", "10"]
    tables.main(critic)                                                        # 2 generator steps, 10 D updates
    at5 = tables.main(critic + ["--report-only", "--at-step", "5"])            # 5 D updates: generator step 1
    assert [r["steps"] for r in at5["results"]["ring8"]] == [1]
    with pytest.raises(SystemExit):
        tables.parse_args(common + ["--steps", "4", "--at-step", "2"])            # needs --report-only
    assert "--at-step needs --report-only" in capsys.readouterr().err
    (tmp_path / "a_file").write_text("mine")
    with pytest.raises(SystemExit):
        tables.parse_args(["--out", str(tmp_path / "a_file")])
    assert "is a file, not a folder" in capsys.readouterr().err and (tmp_path / "a_file").read_text() == "mine"
    with pytest.raises(SystemExit):                                          # checked before any training
        tables.parse_args(["--markdown", str(tmp_path)])
    assert f"--markdown {tmp_path} is a folder, not a file name" in capsys.readouterr().err


# --------------------------------------------------------------------------- the defaults for toy data

def test_toy_data_take_the_toy_column_of_run_defaults():
    from tinygan.run.config import DEFAULT_STEPS, RUN_DEFAULTS, TrainConfig
    toy = TrainConfig(model="mlp", dataset="ring8").validate().resolved()
    assert (toy.batch_size, toy.nz, toy.ema, toy.ema_warmup, toy.lr, toy.steps) == \
        (256, 2, 0.999, 10, pytest.approx(1e-3), 4000)
    assert {k: v[1] for k, v in RUN_DEFAULTS.items()} == {"batch_size": 256, "nz": 2, "ema": 0.999, "ema_warmup": 10,
                                                          "lr_scale": 5.0, "r1": 0.0, "steps": 4000}
    assert (toy.r1, toy.r1_every) == (0.0, 1)                             # no R1 on toy data
    wgan_gp = TrainConfig(model="mlp", dataset="grid25", loss="wgan-gp").validate().resolved()
    assert (wgan_gp.lr, wgan_gp.beta1, wgan_gp.n_critic) == (pytest.approx(5e-4), 0.0, 5)   # 5x its recipe's 1e-4


def test_the_image_default_is_the_dcgan_recipe_at_8x_its_lr_with_an_average_of_g_and_lazy_r1():
    from tinygan.gan.recipes import RECIPES
    from tinygan.run.config import DEFAULT_STEPS, TrainConfig
    images = TrainConfig().validate().resolved()                          # `tinygan train`, no flags
    assert (images.batch_size, images.nz, images.ema, images.ema_warmup, images.lr, images.steps) == \
        (64, 100, 0.999, 20, 1.6e-3, 4500)
    assert (images.beta1, images.beta2, images.n_critic, images.r1, images.r1_every) == (0.5, 0.999, 1, 1.0, 16)
    assert DEFAULT_STEPS == 4500
    for loss in ("wgan", "wgan-gp", "hinge"):                             # every loss: 8x its own recipe's lr
        assert TrainConfig(loss=loss).validate().resolved().lr == pytest.approx(8 * RECIPES[loss].lr)
    paper = TrainConfig(lr=2e-4, ema=0.0, r1=0.0).validate().resolved()   # the paper's plain recipe, one command away
    assert (paper.lr, paper.ema, paper.r1) == (2e-4, 0.0, 0.0)


def test_explicit_flags_win_over_the_toy_defaults():
    from tinygan.run.config import TrainConfig
    c = TrainConfig(model="mlp", dataset="ring8", batch_size=64, nz=100, ema=0.0, lr=2e-4, steps=10).validate()
    c = c.resolved()
    assert (c.batch_size, c.nz, c.ema, c.lr, c.steps) == (64, 100, 0.0, 2e-4, 10)
    assert TrainConfig(model="mlp", dataset="ring8", epochs=None, dry_run=False).resolved().steps == 4000


def test_config_json_records_the_toy_defaults(tmp_path):
    from tinygan.run import TrainConfig, train
    train(TrainConfig(model="mlp", dataset="grid25", steps=2, progress=False, out=str(tmp_path / "r")))
    saved = json.loads((tmp_path / "r" / "config.json").read_text())
    assert (saved["batch_size"], saved["nz"], saved["ema"], saved["lr"], saved["pack"]) == (256, 2, 0.999, 1e-3, 1)


def test_pack_is_checked_against_the_toy_batch_size():
    from tinygan.run.config import ConfigError, TrainConfig
    TrainConfig(model="mlp", dataset="ring8", pack=4).validate()         # 256 = 64 packs of 4
    with pytest.raises(ConfigError, match="--pack 3 and --batch-size 256"):
        TrainConfig(model="mlp", dataset="ring8", pack=3).validate()


@pytest.mark.slow
def test_the_default_toy_run_covers_the_ring(tmp_path):
    """``tinygan train --model mlp --dataset ring8`` (about a minute of CPU): 8/8 modes, >= 90% high quality."""
    from tinygan.cli import main
    from tinygan.metrics import evaluate_checkpoint
    assert main(["train", "--model", "mlp", "--dataset", "ring8", "--no-progress", "--out", str(tmp_path / "r")]) == 0
    m = evaluate_checkpoint(tmp_path / "r" / "checkpoint.npz", n=2500)["metrics"]
    assert m["modes_captured"] == 8 and m["high_quality"] >= 0.90, m
