"""Issue 14's losses: RSGAN, RaGAN, RaLSGAN (Jolicoeur-Martineau 2019) and DRAGAN (Kodali et al. 2017).

Relativistic losses: value and logit gradients (both players, both batches) against the same formulas
written with PyTorch (BCE on logit differences, as the author's code writes them), float64 gradchecks
of first and second order, finite values at logits of +-1e4, RSGAN's pairing error, and the trainer
handing G's step the last critic step's real batch.  DRAGAN: its penalty against
``torch.autograd.grad(create_graph=True)`` on the same critic with the same draws (value and every
critic weight's gradient: the double backward), a float64 gradcheck of the penalty as a function of
D's weights (second order in D), points around the real batch only.  Both: bit-identical ``--resume``.

Step-level checks against NumPy references are in tests/test_steps.py; each equation with its
hand-derived logit gradients in tests/test_semantics_gan.py.
"""
from __future__ import annotations

import numpy as np
import pytest

import tinygan as tg
from tinygan.gan import get_loss
from tinygan.gan.penalties import dragan_penalty, gradient_penalty
from tinygan.testing import gradcheck, gradgradcheck

from test_losses import _assert_param_grads, _critics, _torch_critic

RELATIVISTIC = ["rsgan", "ragan", "ralsgan"]
REAL = np.array([2.0, -0.5, 0.3, 1.7, -3.0, 0.8])
FAKE = np.array([-1.2, 0.4, 0.0, -2.5, 3.1, 0.9])


def torch_relativistic(torch, name, r, f):
    """(L_D, L_G) written with torch.nn.functional, as in the paper's code (without its halving of RaGAN's sums)."""
    TF = torch.nn.functional
    bce = lambda t, y: TF.binary_cross_entropy_with_logits(t, torch.full_like(t, y))   # noqa: E731
    mse = lambda t, y: TF.mse_loss(t, torch.full_like(t, y))                           # noqa: E731
    if name == "rsgan":
        return bce(r - f, 1.0), bce(f - r, 1.0)
    if name == "ragan":
        return (bce(r - f.mean(), 1.0) + bce(f - r.mean(), 0.0),
                bce(f - r.mean(), 1.0) + bce(r - f.mean(), 0.0))
    return (mse(r - f.mean(), 1.0) + mse(f - r.mean(), -1.0),
            mse(f - r.mean(), 1.0) + mse(r - f.mean(), -1.0))


def _ours(name, real, fake):
    loss = get_loss(name)
    assert loss.relativistic and not loss.probabilistic
    r, f = tg.tensor(real, requires_grad=True), tg.tensor(fake, requires_grad=True)
    d = loss.d_loss(r, f)
    dr, df = tg.grad(d, [r, f])
    r2, f2 = tg.tensor(real, requires_grad=True), tg.tensor(fake, requires_grad=True)
    g = loss.g_loss(f2, r2)
    gf, gr = tg.grad(g, [f2, r2])
    return d.item(), g.item(), [x.numpy() for x in (dr, df, gf, gr)]


@pytest.mark.parametrize("name", RELATIVISTIC)
def test_relativistic_losses_match_pytorch(name, torch):
    d, g, grads = _ours(name, REAL, FAKE)
    tr, tf = torch.tensor(REAL, requires_grad=True), torch.tensor(FAKE, requires_grad=True)
    td, _ = torch_relativistic(torch, name, tr, tf)
    tdr, tdf = torch.autograd.grad(td, [tr, tf])
    _, tgl = torch_relativistic(torch, name, tr, tf)
    tgf, tgr = torch.autograd.grad(tgl, [tf, tr])
    np.testing.assert_allclose([d, g], [td.item(), tgl.item()], rtol=1e-12, err_msg=name)
    for mine, ref, what in zip(grads, (tdr, tdf, tgf, tgr), ("dL_D/dl(x)", "dL_D/dl(G(z))", "dL_G/dl(G(z))",
                                                             "dL_G/dl(x)")):
        np.testing.assert_allclose(mine, ref.numpy(), rtol=1e-10, atol=1e-15, err_msg=f"{name}: {what}")


@pytest.mark.parametrize("name", RELATIVISTIC)
def test_relativistic_losses_gradcheck_float64(name):
    loss = get_loss(name)
    r, f = tg.tensor(REAL, requires_grad=True), tg.tensor(FAKE, requires_grad=True)
    assert gradcheck(loss.d_loss, [r, f]) and gradcheck(loss.g_loss, [f, r])
    assert gradgradcheck(loss.d_loss, [r, f]) and gradgradcheck(loss.g_loss, [f, r])


@pytest.mark.parametrize("name", RELATIVISTIC)
def test_relativistic_losses_are_finite_at_huge_logits_and_symmetric_at_a_tie(name):
    big = np.array([1e4, -1e4, 1e4, -1e4], dtype=np.float32)
    d, g, grads = _ours(name, big, -big)
    assert np.isfinite([d, g]).all() and all(np.isfinite(x).all() for x in grads), name
    # a D that cannot tell the batches apart (equal scores) gives G and D the same loss
    d, g, _ = _ours(name, np.full(4, 0.7), np.full(4, 0.7))
    assert d == pytest.approx(g)


def test_rsgan_pairs_samples_and_refuses_batches_of_two_sizes():
    loss = get_loss("rsgan")
    with pytest.raises(ValueError, match="RSGAN pairs the i-th real sample with the i-th fake one: got 6 real "
                                         "and 5 fake"):
        loss.d_loss(tg.tensor(REAL), tg.tensor(FAKE[:5]))
    with pytest.raises(ValueError, match="RSGAN pairs"):
        loss.g_loss(tg.tensor(FAKE[:5]), tg.tensor(REAL))
    # RaGAN compares with batch means: any two sizes
    assert np.isfinite(get_loss("ragan").d_loss(tg.tensor(REAL), tg.tensor(FAKE[:5])).item())


@pytest.mark.parametrize("name", RELATIVISTIC)
def test_trainer_gives_g_step_the_last_critic_batch(name, tmp_path, monkeypatch):
    from tinygan.run import trainer as trainer_module
    from tinygan.run.config import TrainConfig
    seen = {}
    d_step, g_step = trainer_module.d_step, trainer_module.g_step

    def spy_d(D, opt, loss, real, fake, **kw):
        seen.setdefault("d_real", []).append(real)
        return d_step(D, opt, loss, real, fake, **kw)

    def spy_g(D, opt, loss, fake, **kw):
        seen["g_real"] = kw.get("real")
        return g_step(D, opt, loss, fake, **kw)

    monkeypatch.setattr(trainer_module, "d_step", spy_d)
    monkeypatch.setattr(trainer_module, "g_step", spy_g)
    t = trainer_module.Trainer(TrainConfig(model="mlp", dataset="ring8", loss=name, batch_size=16, n_critic=2,
                                           out=str(tmp_path / "r"), progress=False))
    record = t.train_step()
    assert len(seen["d_real"]) == 2 and seen["g_real"] is seen["d_real"][-1]
    assert np.isfinite(float(record["Loss_G"]))


# ---------------------------------------------------------------------------- DRAGAN's penalty

def _torch_dragan(torch, critic, real, u, alpha, weight):
    """Kodali et al.'s reference code in PyTorch: x_p = x + 0.5 std(x) u; x_hat = x + alpha (x_p - x)."""
    x_p = real + 0.5 * real.std(unbiased=False) * u
    x_hat = (real + alpha * (x_p - real)).requires_grad_(True)
    (g,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return weight * ((g.reshape(g.shape[0], -1).norm(2, dim=1) - 1) ** 2).mean()


@pytest.mark.parametrize("kind", ["mlp", "dcgan", "dcgan-layer"])
def test_dragan_penalty_matches_pytorch(kind, torch):
    D, real, _ = _critics(kind)
    gp = dragan_penalty(D, tg.tensor(real), weight=10.0, generator=np.random.default_rng(3))
    gp.backward()
    mirror = np.random.default_rng(3)
    u = mirror.random(real.shape)                                        # the same draws, in the same order
    alpha = mirror.random((real.shape[0],) + (1,) * (real.ndim - 1))
    critic, seq = _torch_critic(torch, kind, D)
    ref = _torch_dragan(torch, critic, torch.tensor(real), torch.tensor(u), torch.tensor(alpha), 10.0)
    ref.backward()
    assert ref.item() > 1e-3
    np.testing.assert_allclose(gp.item(), ref.item(), rtol=1e-9)
    _assert_param_grads(D, seq, f"dragan/{kind}")


def test_dragan_penalty_gradcheck_through_the_critics_weights():
    """The penalty is a function of grad_x D; its gradient in D's weights is a second derivative of D:
    central differences of the whole penalty (the same draws at every evaluation) in float64, D's own
    parameters perturbed in place."""
    D, real, _ = _critics("mlp")
    penalty = lambda *params: dragan_penalty(D, tg.tensor(real), weight=10.0,          # noqa: E731
                                             generator=np.random.default_rng(5))
    assert gradcheck(penalty, list(D.parameters()), atol=1e-6, rtol=1e-5)


def test_dragan_points_lie_around_the_real_data_only():
    """x_hat = x + alpha 0.5 std(x) u: with a critic that records its input, every point is within
    0.5 std(x) (per coordinate, upwards) of its real sample; the fake batch is not an argument at all."""
    D, real, fake = _critics("mlp")
    seen = []

    def critic(x):
        seen.append(x.numpy().copy())
        return D(x)

    dragan_penalty(critic, tg.tensor(real), generator=np.random.default_rng(0))
    delta = seen[0] - real
    assert np.all(delta >= 0) and np.all(delta <= 0.5 * real.std() + 1e-12) and delta.max() > 0.25 * real.std()
    gp = gradient_penalty(D, tg.tensor(real), tg.tensor(fake), generator=np.random.default_rng(0)).item()
    assert dragan_penalty(D, tg.tensor(real), generator=np.random.default_rng(0)).item() != gp


# ---------------------------------------------------------------------------- resume

@pytest.mark.parametrize("loss", ["ragan", "dragan"])
def test_resume_is_bit_identical(loss, tmp_path):
    from test_trainer import _assert_same_checkpoint, _log
    from tinygan.run import TrainConfig, load_checkpoint, resume, train
    base = dict(model="mlp", dataset="ring8", loss=loss, batch_size=16, checkpoint_every=100, sample_every=100,
                progress=False)
    train(TrainConfig(out=str(tmp_path / "full"), steps=4, **base))
    train(TrainConfig(out=str(tmp_path / "half"), steps=2, **base))
    resume(tmp_path / "half", steps=4, progress=False)
    _assert_same_checkpoint(load_checkpoint(tmp_path / "full" / "checkpoint.npz"),
                            load_checkpoint(tmp_path / "half" / "checkpoint.npz"))
    assert _log(tmp_path / "full" / "metrics.jsonl") == _log(tmp_path / "half" / "metrics.jsonl")
