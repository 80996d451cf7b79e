"""The DCGAN main job: models, training steps, exact resume, checkpoints, the NaN guard, PyTorch weights."""
from __future__ import annotations

import json

import numpy as np
import pytest

import tinygan as tg
from tinygan.gan import DCGANDiscriminator, DCGANGenerator
from tinygan.io import atomic_write
from tinygan.run import CheckpointError, NonFiniteError, Trainer, TrainConfig, load_checkpoint, resume, train
from tinygan.run import checkpoint as ckpt


def small(tmp_path, name="run", **kw):
    base = dict(steps=4, batch_size=8, ngf=8, ndf=8, nz=16, out=str(tmp_path / name), sample_every=2,
                checkpoint_every=2, progress=False)
    base.update(kw)
    return TrainConfig(**base)


@pytest.mark.parametrize("size", [8, 14, 16, 28, 32, 64])
def test_dcgan_output_shapes(size):
    G = DCGANGenerator(nz=10, ngf=4, nc=3, image_size=size)
    D = DCGANDiscriminator(nc=3, ndf=4, image_size=size)
    x = G(tg.randn(2, 10))
    assert x.shape == (2, 3, size, size)
    assert D(x).shape == (2,)
    assert np.all(np.abs(x.numpy()) <= 1)                  # Tanh output


@pytest.mark.parametrize("size", [0, 4, 30, 48, 100])
def test_dcgan_rejects_sizes_it_cannot_build(size):
    with pytest.raises(ValueError, match=f"image_size={size}"):
        DCGANGenerator(image_size=size)
    with pytest.raises(ValueError, match=f"image_size={size}"):
        DCGANDiscriminator(image_size=size)


def test_dcgan_initialisation_follows_the_paper():
    tg.manual_seed(0)
    G = DCGANGenerator(nz=100, ngf=64, nc=3, image_size=64)
    w = G.main[0].weight.numpy()
    assert abs(w.mean()) < 1e-3 and abs(w.std() - 0.02) < 1e-3
    bn = G.main[1]
    assert abs(bn.weight.numpy().mean() - 1) < 5e-3 and abs(bn.weight.numpy().std() - 0.02) < 5e-3
    assert np.all(bn.bias.numpy() == 0)


def test_training_steps_move_both_networks_and_log(tmp_path):
    t = train(small(tmp_path, steps=0 + 4))
    fresh = Trainer(small(tmp_path, "fresh"))
    g0, d0 = fresh.G.state_dict(), fresh.D.state_dict()
    g1, d1 = t.G.state_dict(), t.D.state_dict()
    assert all(not np.array_equal(g0[k], g1[k]) for k in g0 if k.endswith("weight"))
    assert all(not np.array_equal(d0[k], d1[k]) for k in d0 if k.endswith("weight"))
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    for r in rows:
        for key in ("Loss_D", "Loss_G", "D_x", "D_G_z1", "D_G_z2", "grad_sq_D", "grad_sq_G", "sec_per_iter", "epoch"):
            assert np.isfinite(r[key]), key
        assert 0 <= r["D_x"] <= 1 and 0 <= r["D_G_z1"] <= 1
    run = tmp_path / "run"
    for name in ("config.json", "checkpoint.npz", "progress.gif", "losses.png"):
        assert (run / name).is_file(), name
    assert sorted(p.name for p in (run / "samples").glob("*.png")) == [
        "step_000001.png", "step_000002.png", "step_000004.png"]


def test_config_json_records_the_settings_actually_used(tmp_path):
    train(small(tmp_path, steps=1, loss="wgan-gp"))
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert (saved["lr"], saved["beta1"], saved["beta2"], saved["n_critic"]) == (8e-4, 0.0, 0.9, 5)   # 8x its 1e-4
    assert TrainConfig.from_dict(saved).loss == "wgan-gp"


def _assert_same_checkpoint(a, b):
    for part in ("generator", "discriminator", "generator_ema", "fixed"):
        assert a[part].keys() == b[part].keys()
        for k in a[part]:
            assert np.array_equal(a[part][k], b[part][k]), (part, k)
    for part in ("opt_g", "opt_d"):
        assert a[part]["state"].keys() == b[part]["state"].keys()
        for i, st in a[part]["state"].items():
            for k, v in st.items():
                assert np.array_equal(np.asarray(v), np.asarray(b[part]["state"][i][k])), (part, i, k)
    assert a["meta"]["step"] == b["meta"]["step"]
    assert a["meta"]["rng"] == b["meta"]["rng"] and a["meta"]["global_rng"] == b["meta"]["global_rng"]
    assert a["meta"]["position"] == b["meta"]["position"]


def _log(path):
    strip = lambda line: {k: v for k, v in json.loads(line).items() if k != "sec_per_iter"}  # noqa: E731
    return [strip(x) for x in path.read_text().splitlines()]


@pytest.mark.parametrize("kw", [dict(ema=0.9), dict(model="cgan", loss="wgan-gp", r1=0.5),
                                dict(model="infogan", loss="lsgan", num_categories=3, num_continuous=1),
                                dict(r1=0.5, r1_every=2)],
                         ids=["dcgan-ema", "cgan-wgan-gp-r1", "infogan-lsgan", "lazy-r1"])
def test_resume_is_bit_identical(tmp_path, kw):
    # 2N steps in one go == N steps, stop, resume for N more; the 8-image batches of 10,000 digits
    # do not cross an epoch here, so a dry-run variant below covers the epoch boundary.
    n = 3
    train(small(tmp_path, "full", steps=2 * n, checkpoint_every=100, sample_every=100, **kw))
    train(small(tmp_path, "half", steps=n, checkpoint_every=100, sample_every=100, **kw))
    resume(tmp_path / "half", steps=2 * n, progress=False)
    _assert_same_checkpoint(load_checkpoint(tmp_path / "full" / "checkpoint.npz"),
                            load_checkpoint(tmp_path / "half" / "checkpoint.npz"))
    assert _log(tmp_path / "full" / "metrics.jsonl") == _log(tmp_path / "half" / "metrics.jsonl")


def test_resume_crosses_an_epoch_boundary_exactly(tmp_path):
    # 12 images in batches of 4: 3 batches an epoch, so 7 steps cross two epoch boundaries.
    from PIL import Image
    (tmp_path / "imgs").mkdir()
    for i in range(12):
        Image.fromarray(np.random.default_rng(i).integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(
            tmp_path / "imgs" / f"{i:02d}.png")
    kw = dict(model="mlp", dataset="folder", data_dir=str(tmp_path / "imgs"), image_size=8, batch_size=4,
              checkpoint_every=100, sample_every=100, ngf=64, ndf=64)
    train(small(tmp_path, "full", steps=7, **kw))
    train(small(tmp_path, "half", steps=4, **kw))
    resume(tmp_path / "half", steps=7, progress=False)
    a, b = load_checkpoint(tmp_path / "full" / "checkpoint.npz"), load_checkpoint(tmp_path / "half" / "checkpoint.npz")
    assert a["meta"]["position"] == [2, 1]
    _assert_same_checkpoint(a, b)


def test_resume_after_a_kill_redoes_only_unsaved_steps(tmp_path):
    # A run killed after step 3 with its last checkpoint at step 2: the log holds steps 1-3, and a line
    # of step 4 was being written when the kill came.  The resume continues from step 2.
    t = train(small(tmp_path, "killed", steps=2, checkpoint_every=2, sample_every=100))
    log = tmp_path / "killed" / "metrics.jsonl"
    row = json.loads(log.read_text().splitlines()[-1])
    with open(log, "a") as f:
        f.write(json.dumps({**row, "step": 3}) + "\n" + '{"Loss_D": 1.2, "st')      # step 3, then a torn line
    assert t.step == 2
    with pytest.warns(UserWarning, match="half-written last line"):
        t2 = resume(tmp_path / "killed", steps=5, progress=False)
    assert t2.step == 5
    rows = log.read_text().splitlines()
    assert [json.loads(r)["step"] for r in rows] == [1, 2, 3, 4, 5]


def test_resume_applies_new_cadence_and_refuses_new_definitions(tmp_path):
    train(small(tmp_path, steps=2))
    with pytest.raises(ValueError, match=r"--lr 0.001 \(the run has 0.0016\).*--ngf 16 \(the run has 8\)"):
        resume(tmp_path / "run", steps=4, lr=1e-3, ngf=16)
    t = resume(tmp_path / "run", steps=4, sample_every=1, lr=1.6e-3, ngf=8, progress=False)   # same values: fine
    assert t.step == 4 and t.config.sample_every == 1
    assert sorted(p.name for p in (tmp_path / "run" / "samples").glob("*.png"))[-2:] == [
        "step_000003.png", "step_000004.png"]
    assert json.loads((tmp_path / "run" / "config.json").read_text())["sample_every"] == 1


def test_resume_checks_the_data_are_the_runs(tmp_path, monkeypatch):
    train(small(tmp_path, steps=1))
    import tinygan.run.data as D                     # the same settings, but other digits on disk
    real = D.dataset_fingerprint
    monkeypatch.setattr(D, "dataset_fingerprint", lambda ds: {**real(ds), "count": 9999, "digest": "0" * 64})
    with pytest.raises(ValueError, match="the data differ from the run's"):
        resume(tmp_path / "run", steps=2)


def test_checkpoint_write_is_atomic_under_a_crash(tmp_path, monkeypatch):
    t = Trainer(small(tmp_path))
    path = tmp_path / "ck.npz"
    t.save(path)
    before = path.read_bytes()

    def crash(f, **arrays):
        f.write(b"PK\x03\x04 half a zip file")
        raise OSError("simulated kill during the write")

    monkeypatch.setattr(ckpt.np, "savez", crash)
    t.step = 99
    with pytest.raises(OSError, match="simulated kill"):
        t.save(path)
    assert path.read_bytes() == before             # the old checkpoint is whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.npz"]       # no temporary file left
    assert load_checkpoint(path)["meta"]["step"] == 0


def test_truncated_or_foreign_checkpoint_gives_a_clear_error(tmp_path):
    t = Trainer(small(tmp_path))
    path = tmp_path / "ck.npz"
    t.save(path)
    data = path.read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_checkpoint(tmp_path / "cut.npz")
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(CheckpointError, match="not a tinygan checkpoint"):
        load_checkpoint(tmp_path / "other.npz")
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.npz")


def test_checkpoint_loads_without_pickle(tmp_path):
    t = Trainer(small(tmp_path))
    t.save(tmp_path / "ck.npz")
    with np.load(tmp_path / "ck.npz", allow_pickle=False) as z:
        assert all(z[k].dtype != object for k in z.files)


def test_non_finite_loss_stops_with_a_clear_message(tmp_path, monkeypatch):
    cfg = small(tmp_path, steps=6, checkpoint_every=2, sample_every=100)
    real_d_loss = type(Trainer(cfg).loss).d_loss
    calls = {"n": 0}

    def poisoned(self, real_logits, fake_logits):
        calls["n"] += 1
        loss = real_d_loss(self, real_logits, fake_logits)
        return loss * float("nan") if calls["n"] == 4 else loss

    monkeypatch.setattr(type(Trainer(cfg).loss), "d_loss", poisoned)
    calls["n"] = 0
    with pytest.raises(NonFiniteError, match="step 4: the discriminator's loss.*checkpoint.npz, is kept"):
        train(cfg)
    kept = load_checkpoint(tmp_path / "run" / "checkpoint.npz")
    assert kept["meta"]["step"] == 2                # the last good checkpoint
    for v in kept["discriminator"].values():
        assert np.all(np.isfinite(v))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_exploding_weights_stop_the_run_before_any_checkpoint(tmp_path):
    # --lr 1e16: the losses may stay finite for a step while the weights and running statistics
    # overflow; the guard checks them after each update and no checkpoint is ever written from them.
    with pytest.raises(NonFiniteError, match="step 1: .*No checkpoint had been written"):
        train(small(tmp_path, lr=1e16, steps=5, checkpoint_every=1))
    assert not (tmp_path / "run" / "checkpoint.npz").exists()


def test_a_checkpoint_with_non_finite_values_is_never_written(tmp_path):
    t = Trainer(small(tmp_path))
    t.D.main[0].weight.data[0, 0, 0, 0] = np.inf
    with pytest.raises(CheckpointError, match="NaN or infinite"):
        t.save(tmp_path / "ck.npz")
    assert not (tmp_path / "ck.npz").exists()


def test_pytorch_dcgan_state_dict_loads_one_to_one(torch):
    tnn = torch.nn

    class TorchG(tnn.Module):  # PyTorch's examples/dcgan/main.py Generator (64x64)
        def __init__(self, nz=100, ngf=64, nc=3):
            super().__init__()
            self.main = tnn.Sequential(
                tnn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False), tnn.BatchNorm2d(ngf * 8), tnn.ReLU(True),
                tnn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False), tnn.BatchNorm2d(ngf * 4), tnn.ReLU(True),
                tnn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), tnn.BatchNorm2d(ngf * 2), tnn.ReLU(True),
                tnn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), tnn.BatchNorm2d(ngf), tnn.ReLU(True),
                tnn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), tnn.Tanh())

        def forward(self, x):
            return self.main(x)

    class TorchD(tnn.Module):  # ... and its Discriminator
        def __init__(self, nc=3, ndf=64):
            super().__init__()
            self.main = tnn.Sequential(
                tnn.Conv2d(nc, ndf, 4, 2, 1, bias=False), tnn.LeakyReLU(0.2, inplace=True),
                tnn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), tnn.BatchNorm2d(ndf * 2), tnn.LeakyReLU(0.2, True),
                tnn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False), tnn.BatchNorm2d(ndf * 4), tnn.LeakyReLU(0.2, True),
                tnn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False), tnn.BatchNorm2d(ndf * 8), tnn.LeakyReLU(0.2, True),
                tnn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False), tnn.Sigmoid())

        def forward(self, x):
            return self.main(x).view(-1, 1).squeeze(1)

    torch.manual_seed(0)
    tG, tD = TorchG(ngf=8).eval(), TorchD(ndf=8).eval()
    with torch.no_grad():  # non-trivial running statistics
        for m in list(tG.modules()) + list(tD.modules()):
            if isinstance(m, tnn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    G, D = DCGANGenerator(ngf=8), DCGANDiscriminator(ndf=8)
    assert list(G.state_dict()) == list(tG.state_dict())
    assert list(D.state_dict()) == list(tD.state_dict())
    G.load_state_dict(tG.state_dict())
    D.load_state_dict(tD.state_dict())
    G.eval(), D.eval()
    z = np.random.default_rng(0).standard_normal((3, 100, 1, 1)).astype(np.float32)
    with torch.no_grad():
        ref_x = tG(torch.tensor(z))
        ref_p = tD(ref_x)
    x = G(tg.tensor(z))
    np.testing.assert_allclose(x.numpy(), ref_x.numpy(), rtol=1e-4, atol=1e-5)
    p = tg.functional.sigmoid(D(tg.tensor(ref_x.numpy())))      # our D returns logits
    np.testing.assert_allclose(p.numpy(), ref_p.numpy(), rtol=1e-4, atol=1e-5)


def test_wrong_size_data_is_reported(tmp_path):
    with pytest.raises(ValueError, match="--image-size: .*4 \\* 2\\^k or 7 \\* 2\\^k.*got 30"):
        Trainer(small(tmp_path, image_size=30))


def test_a_new_run_never_replaces_an_old_one_unasked(tmp_path):
    train(small(tmp_path, "again", steps=4))
    before = (tmp_path / "again" / "metrics.jsonl").read_bytes()
    with pytest.raises(ValueError, match="already holds a run.*--resume.*--overwrite"):
        train(small(tmp_path, "again", steps=2))
    assert (tmp_path / "again" / "metrics.jsonl").read_bytes() == before
    (tmp_path / "again" / "notes.txt").write_text("mine")
    train(small(tmp_path, "again", steps=2), overwrite=True)
    rows = (tmp_path / "again" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(r)["step"] for r in rows] == [1, 2]
    assert sorted(p.name for p in (tmp_path / "again" / "samples").glob("*.png")) == [
        "step_000001.png", "step_000002.png"]
    assert (tmp_path / "again" / "notes.txt").read_text() == "mine"     # not a run file: untouched


def test_ema_averages_the_generator_and_samples_come_from_the_average(tmp_path):
    """theta_ema <- b_t theta_ema + (1 - b_t) theta after each G update, b_t = min(beta, (1 + t) / (c + t)),
    c = --ema-warmup (20 by default on images)."""
    from tinygan.gan.ema import ema_decay
    t = Trainer(small(tmp_path, ema=0.5))
    assert t.config.ema_warmup == 20
    expected = {k: v.copy() for k, v in t.G_ema.state_dict().items()}
    for step in range(3):
        t.train_step()
        b = ema_decay(0.5, step, 20)
        for k, v in t.G.state_dict().items():
            if v.dtype.kind == "f":
                expected[k] = b * expected[k] + (1 - b) * v
            else:
                expected[k] = v
        t.step += 1
    for k, v in t.G_ema.state_dict().items():
        np.testing.assert_allclose(v, expected[k], rtol=1e-6, atol=1e-7, err_msg=k)
    assert not np.allclose(t.G_ema.state_dict()["main.0.weight"], t.G.state_dict()["main.0.weight"])
    assert ema_decay(0.999, 0) == pytest.approx(0.1) and ema_decay(0.999, 10**6) == 0.999   # TensorFlow's c = 10
    assert ema_decay(0.999, 0, 20) == pytest.approx(0.05) and ema_decay(0.999, 8989) < 0.999 == ema_decay(0.999, 8990)
    assert t.sampler is t.G_ema
    t.save(tmp_path / "ck.npz")
    from tinygan.run import load_generator
    G, config, _ = load_generator(tmp_path / "ck.npz")
    for k, v in G.state_dict().items():
        np.testing.assert_array_equal(v, t.G_ema.state_dict()[k])


def test_a_run_records_its_budget_and_an_older_run_without_one_keeps_its_2000_steps(tmp_path):
    """config.json records the default budget, so changing DEFAULT_STEPS never moves a resumed run's end; a run
    written before budgets were recorded (steps null, no epochs) resumes to the 2,000 steps it was started with."""
    from tinygan.run.config import DEFAULT_STEPS, LEGACY_DEFAULT_STEPS
    from tinygan.run.loop import _apply_changes
    assert TrainConfig().validate().resolved().steps == DEFAULT_STEPS
    old = TrainConfig(out=str(tmp_path / "old")).validate()               # as an older run's config.json reads
    assert old.steps is None
    assert _apply_changes(old, {}, str(tmp_path / "old")).steps == LEGACY_DEFAULT_STEPS == 2000
    assert _apply_changes(old, {"steps": 50}, str(tmp_path / "old")).steps == 50
    assert _apply_changes(old, {"epochs": 1.0}, str(tmp_path / "old")).steps is None


def test_ema_warmup_defaults_refusals_and_an_older_run_keeps_tensorflows(tmp_path):
    """--ema-warmup C: 20 on images, 10 on toy data, recorded in config.json; refused without an average; a run
    written before the flag existed (no ema_warmup in its config) resumes with the c = 10 it was started with."""
    from tinygan.run import ConfigError
    from tinygan.run.loop import _apply_changes
    assert TrainConfig().validate().resolved().ema_warmup == 20
    assert TrainConfig(model="mlp", dataset="ring8").validate().resolved().ema_warmup == 10
    assert TrainConfig(ema_warmup=5).validate().resolved().ema_warmup == 5
    assert TrainConfig(ema=0.0).validate().resolved().ema_warmup is None          # no average, no warm-up
    with pytest.raises(ConfigError, match="--ema-warmup: would be ignored: there is no average"):
        TrainConfig(ema=0.0, ema_warmup=20).validate()
    for bad in (1, 0, 2.5, "x"):
        with pytest.raises(ConfigError, match="--ema-warmup"):
            TrainConfig(ema_warmup=bad).validate()
    old = TrainConfig(out=str(tmp_path / "old"), ema=0.999, steps=10).validate()    # an older config.json
    assert _apply_changes(old, {}, str(tmp_path / "old")).ema_warmup == 10
    new = TrainConfig(out=str(tmp_path / "new")).validate().resolved()
    assert _apply_changes(new, {}, str(tmp_path / "new")).ema_warmup == 20
    off = TrainConfig(out=str(tmp_path / "off"), ema=0.0).validate().resolved()
    assert _apply_changes(off, {}, str(tmp_path / "off")).ema_warmup is None


def test_lazy_r1_applies_k_times_gamma_on_every_kth_discriminator_step(tmp_path):
    t = train(small(tmp_path, r1=0.5, r1_every=2))
    assert [t.r1_gamma(i) for i in range(5)] == [1.0, 0.0, 1.0, 0.0, 1.0]     # K x gamma, every K-th step
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [("r1" in r) for r in rows] == [True, False, True, False]         # steps 1-4: D steps 0-3
    every = Trainer(small(tmp_path, "every", r1=0.5))
    assert [every.r1_gamma(i) for i in range(3)] == [0.5, 0.5, 0.5]



def test_lazy_r1_counts_discriminator_steps_across_critic_iterations(tmp_path, monkeypatch):
    import tinygan.run.trainer as trainer_module
    seen = []
    real_d_step = trainer_module.d_step

    def spy(*a, r1_gamma=0.0, **k):
        seen.append(r1_gamma)
        return real_d_step(*a, r1_gamma=r1_gamma, **k)

    monkeypatch.setattr(trainer_module, "d_step", spy)
    t = Trainer(small(tmp_path, loss="wgan-gp", r1=0.5, r1_every=3, n_critic=2))
    for _ in range(3):                                       # 3 generator steps x 2 critic steps
        t.train_step()
        t.step += 1
    assert seen == [1.5, 0.0, 0.0, 1.5, 0.0, 0.0]


def test_r1_every_without_r1_is_refused():
    from tinygan.run import ConfigError
    for off in (dict(r1=0.0), dict(loss="wgan-gp"), dict(model="mlp", dataset="ring8")):   # no R1 in these runs
        with pytest.raises(ConfigError, match="--r1-every: would be ignored"):
            TrainConfig(r1_every=4, **off).validate()
    assert TrainConfig(r1_every=4).validate().resolved().r1_every == 4    # the default R1, every 4th step
    with pytest.raises(ConfigError, match="--r1-every"):
        TrainConfig(r1=1.0, r1_every=0).validate()


def test_r1_defaults_lazy_for_the_nonsaturating_loss_on_images_only():
    r = TrainConfig().validate().resolved()
    assert (r.r1, r.r1_every) == (1.0, 16)                             # the default run: lazy R1
    r = TrainConfig(r1=2.0).validate().resolved()
    assert (r.r1, r.r1_every) == (2.0, 1)                              # an explicit --r1: Mescheder's, every step
    for other in (dict(loss="wgan-gp"), dict(loss="hinge"), dict(model="mlp", dataset="ring8"), dict(r1=0.0)):
        r = TrainConfig(**other).validate().resolved()
        assert (r.r1, r.r1_every) == (0.0, 1), other
    # an older run's config.json has r1 0.0 and no r1_every: it resumes without R1, as it was trained
    old = TrainConfig.from_dict({**TrainConfig().validate().resolved().to_dict(), "r1": 0.0, "r1_every": None})
    assert (old.resolved().r1, old.resolved().r1_every) == (0.0, 1)
