"""The DCGAN main job: training steps, exact resume, atomic checkpoints, PyTorch weights, errors."""
from __future__ import annotations

import json

import numpy as np
import pytest

import tinygan as tg
from tinygan.gan import DCGANDiscriminator, DCGANGenerator
from tinygan.gan import checkpoint as ckpt
from tinygan.gan.trainer import NonFiniteError, Trainer, TrainConfig, resume, train


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
    t = Trainer(small(tmp_path))
    g0 = {k: v.copy() for k, v in t.G.state_dict().items()}
    d0 = {k: v.copy() for k, v in t.D.state_dict().items()}
    t.train()
    g1, d1 = t.G.state_dict(), t.D.state_dict()
    assert all(not np.array_equal(g0[k], g1[k]) for k in g0 if k.endswith("weight"))
    assert all(not np.array_equal(d0[k], d1[k]) for k in d0 if k.endswith("weight"))
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    for r in rows:
        for key in ("Loss_D", "Loss_G", "D_x", "D_G_z1", "D_G_z2", "sec_per_iter", "epoch"):
            assert np.isfinite(r[key])
        assert 0 <= r["D_x"] <= 1 and 0 <= r["D_G_z1"] <= 1
    run = tmp_path / "run"
    for name in ("config.json", "checkpoint.npz", "progress.gif", "losses.png"):
        assert (run / name).is_file(), name
    assert sorted(p.name for p in (run / "samples").glob("*.png")) == [
        "step_000001.png", "step_000002.png", "step_000004.png"]


def _assert_same_checkpoint(a, b):
    for part in ("generator", "discriminator", "fixed"):
        assert a[part].keys() == b[part].keys()
        for k in a[part]:
            assert np.array_equal(a[part][k], b[part][k]), (part, k)
    for part in ("opt_g", "opt_d"):
        for i, st in a[part]["state"].items():
            for k, v in st.items():
                assert np.array_equal(np.asarray(v), np.asarray(b[part]["state"][i][k])), (part, i, k)
    assert a["meta"]["step"] == b["meta"]["step"]
    assert a["meta"]["rng"] == b["meta"]["rng"]


def test_resume_is_bit_identical(tmp_path):
    # 2N steps in one go == N steps, stop, resume for N more (the data order crosses an epoch boundary
    # because the bundled dataset is replaced by random data in dry-run mode: use real data instead).
    n = 3
    train(small(tmp_path, "full", steps=2 * n, checkpoint_every=100, sample_every=100))
    train(small(tmp_path, "half", steps=n, checkpoint_every=100, sample_every=100))
    resume(tmp_path / "half", steps=2 * n, progress=False)
    a = ckpt.load_checkpoint(tmp_path / "full" / "checkpoint.npz")
    b = ckpt.load_checkpoint(tmp_path / "half" / "checkpoint.npz")
    _assert_same_checkpoint(a, b)
    la = (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()
    lb = (tmp_path / "half" / "metrics.jsonl").read_text().splitlines()
    strip = lambda line: {k: v for k, v in json.loads(line).items() if k != "sec_per_iter"}  # noqa: E731
    assert [strip(x) for x in la] == [strip(x) for x in lb]


def test_resume_after_a_kill_redoes_only_unsaved_steps(tmp_path):
    # A run killed after step 3 with its last checkpoint at step 2 resumes from step 2.
    cfg = small(tmp_path, "killed", steps=3, checkpoint_every=2, sample_every=100)
    t = Trainer(cfg)
    t.train()                                     # writes checkpoints at steps 2 and 3 (the end)
    saved = ckpt.load_checkpoint(tmp_path / "killed" / "checkpoint.npz")
    assert saved["meta"]["step"] == 3
    t2 = resume(tmp_path / "killed", steps=5, progress=False)
    assert t2.step == 5
    rows = (tmp_path / "killed" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(r)["step"] for r in rows] == [1, 2, 3, 4, 5]


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
    assert not (tmp_path / "ck.npz.tmp").exists()
    assert ckpt.load_checkpoint(path)["meta"]["step"] == 0


def test_truncated_or_foreign_checkpoint_gives_a_clear_error(tmp_path):
    t = Trainer(small(tmp_path))
    path = tmp_path / "ck.npz"
    t.save(path)
    data = path.read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        ckpt.load_checkpoint(tmp_path / "cut.npz")
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="not a tinygan checkpoint"):
        ckpt.load_checkpoint(tmp_path / "other.npz")
    with pytest.raises(FileNotFoundError):
        ckpt.load_checkpoint(tmp_path / "missing.npz")


def test_checkpoint_loads_without_pickle(tmp_path):
    t = Trainer(small(tmp_path))
    t.save(tmp_path / "ck.npz")
    with np.load(tmp_path / "ck.npz", allow_pickle=False) as z:
        assert all(z[k].dtype != object for k in z.files)


def test_non_finite_loss_stops_with_a_clear_message(tmp_path, monkeypatch):
    cfg = small(tmp_path, steps=6, checkpoint_every=2, sample_every=100)
    t = Trainer(cfg)
    real_d_loss = t.loss.d_loss
    calls = {"n": 0}

    def poisoned(real_logits, fake_logits):
        calls["n"] += 1
        loss = real_d_loss(real_logits, fake_logits)
        return loss * float("nan") if calls["n"] == 4 else loss

    monkeypatch.setattr(t.loss, "d_loss", poisoned)
    with pytest.raises(NonFiniteError, match="step 4: the discriminator's"):
        t.train()
    kept = ckpt.load_checkpoint(tmp_path / "run" / "checkpoint.npz")
    assert kept["meta"]["step"] == 2                # the last good checkpoint
    for v in kept["discriminator"].values():
        assert np.all(np.isfinite(v))


def test_pytorch_dcgan_state_dict_loads_one_to_one():
    torch = pytest.importorskip("torch")
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
    with pytest.raises(ValueError, match="image_size=30"):
        Trainer(small(tmp_path, image_size=30))


def test_new_run_in_an_old_folder_starts_a_fresh_log_and_gif(tmp_path):
    train(small(tmp_path, "again", steps=4))
    train(small(tmp_path, "again", steps=2))
    rows = (tmp_path / "again" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(r)["step"] for r in rows] == [1, 2]
    assert sorted(p.name for p in (tmp_path / "again" / "samples").glob("*.png")) == [
        "step_000001.png", "step_000002.png"]
