"""Spectral normalisation (Miyato et al. 2018): ``nn.spectral_norm``, ``--spectral-norm`` and ``--model sngan``.

* PyTorch parity: the state_dict keys of ``torch.nn.utils.spectral_norm`` (``weight_orig``, ``weight_u``,
  ``weight_v``) and, from the same u and v, the same outputs, weight gradients and buffers after several
  training forwards, and in eval mode (no power iteration); the same values through
  ``torch.nn.utils.parametrizations.spectral_norm``.
* Torch-free: the power iteration against a slow NumPy loop, sigma against the SVD after convergence,
  one iteration per training forward and none in eval.
* float64 gradchecks: through sigma (first order), and of a gradient penalty on a normalised critic
  (second order: sigma inside grad_x D).
* The models and the run: sngan's and ``--spectral-norm``'s discriminators, refused combinations,
  bit-identical ``--resume`` (u and v are in the checkpoint).
"""
from __future__ import annotations

import numpy as np
import pytest

import tinygan as tg
from tinygan import nn
from tinygan.autograd import Tensor
from tinygan.gan import build_gan
from tinygan.gan.models import spectral_normalize
from tinygan.gan.penalties import dragan_penalty, gradient_penalty
from tinygan.run.config import ConfigError, TrainConfig
from tinygan.testing import gradcheck

LAYERS = {
    "linear": (lambda: nn.Linear(5, 3), (4, 5)),
    "conv": (lambda: nn.Conv2d(2, 4, 3, stride=2, padding=1, bias=False), (2, 2, 7, 7)),
    "convT": (lambda: nn.ConvTranspose2d(3, 2, 4, stride=2, padding=1), (2, 3, 4, 4)),
}


def _layer(kind, seed=0):
    tg.manual_seed(seed)
    make, shape = LAYERS[kind]
    m = nn.spectral_norm(make())
    x = np.random.default_rng(seed + 1).standard_normal(shape).astype(np.float32)
    return m, x


def _torch_twin(torch, kind, m, parametrized=False):
    """The same layer in PyTorch, spectrally normalised, holding m's weights and u, v."""
    tnn = torch.nn
    sd = m.state_dict()
    if kind == "linear":
        t = tnn.Linear(5, 3)
    elif kind == "conv":
        t = tnn.Conv2d(2, 4, 3, stride=2, padding=1, bias=False)
    else:
        t = tnn.ConvTranspose2d(3, 2, 4, stride=2, padding=1)
    with torch.no_grad():
        t.weight.copy_(torch.tensor(sd["weight_orig"]))
        if "bias" in sd:
            t.bias.copy_(torch.tensor(sd["bias"]))
    if parametrized:
        t = tnn.utils.parametrizations.spectral_norm(t)
        sn = t.parametrizations.weight[0]
        with torch.no_grad():
            sn._u.copy_(torch.tensor(sd["weight_u"]))
            sn._v.copy_(torch.tensor(sd["weight_v"]))
        return t
    t = tnn.utils.spectral_norm(t)
    t.load_state_dict({k: torch.tensor(v) for k, v in sd.items()})
    return t


@pytest.mark.parametrize("kind", list(LAYERS))
def test_matches_torch_spectral_norm_keys_values_training_and_eval(kind, torch):
    m, x = _layer(kind)
    t = _torch_twin(torch, kind, m)
    assert list(m.state_dict()) == list(t.state_dict())          # bias?, weight_orig, weight_u, weight_v
    for step in range(4):                                         # training forwards: one power iteration each
        y = m(Tensor(x))
        ty = t(torch.tensor(x))
        (y * y).sum().backward()
        (ty * ty).sum().backward()
        np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-5, atol=1e-6, err_msg=f"step {step}")
    np.testing.assert_allclose(m.weight_orig.grad.numpy(), t.weight_orig.grad.numpy(), rtol=1e-4, atol=1e-5)
    ours, theirs = m.state_dict(), t.state_dict()
    for k in ours:
        np.testing.assert_allclose(ours[k], theirs[k].numpy(), rtol=1e-5, atol=1e-6, err_msg=k)
    u = m.weight_u.copy()
    m.eval()
    t.eval()
    np.testing.assert_allclose(m(Tensor(x)).numpy(), t(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(m.weight_u, u)                 # eval: no power iteration
    np.testing.assert_allclose(t.weight_u.numpy(), u, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("kind", list(LAYERS))
def test_matches_torch_parametrizations_spectral_norm_in_eval(kind, torch):
    """The newer API computes the same W / (u^T W v) from the same u, v (its training iteration updates u
    before v, the older API and tinygan v before u, so only eval mode is compared)."""
    m, x = _layer(kind, seed=3)
    for _ in range(3):
        m(Tensor(x))
    m.eval()
    t = _torch_twin(torch, kind, m, parametrized=True).eval()
    np.testing.assert_allclose(m(Tensor(x)).numpy(), t(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(m.weight.numpy(), t.weight.detach().numpy(), rtol=1e-5, atol=1e-7)


# ---------------------------------------------------------------------------- torch-free semantics

def _slow_matrix(w, dim):
    """W as a matrix, row by row: row i = every weight of output unit i along ``dim``, in C order."""
    rows = []
    for i in range(w.shape[dim]):
        rows.append(np.take(w, i, axis=dim).reshape(-1))
    return np.array(rows, dtype=np.float64)


@pytest.mark.parametrize("kind", list(LAYERS))
def test_power_iteration_and_sigma_against_a_slow_numpy_loop(kind):
    m, x = _layer(kind, seed=5)
    dim = 1 if kind == "convT" else 0
    W = _slow_matrix(m.weight_orig.numpy().astype(np.float64), dim)
    u, v = m.weight_u.astype(np.float64), m.weight_v.astype(np.float64)
    for _ in range(3):
        m(Tensor(x))
        v = W.T @ u
        v = v / np.sqrt(np.sum(v * v))
        u = W @ v
        u = u / np.sqrt(np.sum(u * u))
        np.testing.assert_allclose(m.weight_u, u, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(m.weight_v, v, rtol=1e-5, atol=1e-6)
        sigma = sum(u[i] * W[i, j] * v[j] for i in range(W.shape[0]) for j in range(W.shape[1]))
        np.testing.assert_allclose(m.weight.numpy(), m.weight_orig.numpy() / sigma, rtol=1e-5, atol=1e-7)
    for _ in range(200):                                   # converged: sigma is the largest singular value
        m(Tensor(x))
    top = np.linalg.svd(W, compute_uv=False)[0]
    np.testing.assert_allclose(np.linalg.svd(_slow_matrix(m.weight.numpy(), dim), compute_uv=False)[0], 1.0,
                               rtol=1e-4)
    np.testing.assert_allclose(float(m.weight_u @ _slow_matrix(m.weight_orig.numpy(), dim) @ m.weight_v), top,
                               rtol=1e-4)


def test_one_power_iteration_per_training_forward_none_in_eval_and_none_without_a_forward():
    m, x = _layer("linear")
    u0 = m.weight_u.copy()
    m.eval()
    m(Tensor(x))
    m(Tensor(x))
    np.testing.assert_array_equal(m.weight_u, u0)
    m.train()
    m(Tensor(x))
    u1 = m.weight_u.copy()
    assert not np.array_equal(u1, u0)
    m(Tensor(x))
    assert not np.array_equal(m.weight_u, u1)
    two = nn.spectral_norm(nn.Linear(5, 3), n_power_iterations=2)
    with pytest.raises(RuntimeError, match="already spectrally normalised"):
        nn.spectral_norm(two)


def test_remove_spectral_norm_keeps_the_normalised_weight():
    m, x = _layer("conv")
    m(Tensor(x))
    m.eval()
    y = m(Tensor(x)).numpy()
    nn.remove_spectral_norm(m)
    assert list(m.state_dict()) == ["weight"] and isinstance(m.weight, nn.Parameter)
    np.testing.assert_allclose(m(Tensor(x)).numpy(), y, rtol=1e-6, atol=1e-7)


# ---------------------------------------------------------------------------- gradients

def test_gradient_goes_through_sigma_gradcheck_float64():
    """d(W / sigma(W))/dW includes sigma's own derivative u v^T (u, v fixed in eval mode)."""
    m, x = _layer("conv")
    m.to(dtype=np.float64)
    m(Tensor(x.astype(np.float64)))                        # one iteration: u, v not yet singular vectors
    m.eval()
    xd = Tensor(x.astype(np.float64))
    assert gradcheck(lambda w: m(xd), [m.weight_orig])
    # and a version with sigma held constant would not pass: the two gradients differ
    y = m(xd)
    (g,) = tg.grad((y * y).sum(), m.weight_orig)
    sigma = float(m.weight_u @ m.weight_orig.numpy().reshape(4, -1) @ m.weight_v)
    from tinygan import functional as F
    (g_const,) = tg.grad((F.conv2d(xd, m.weight_orig / sigma, None, 2, 1) ** 2).sum(), m.weight_orig)
    assert np.abs(g.numpy() - g_const.numpy()).max() > 1e-3


def _sn_critic(seed=0):
    tg.manual_seed(seed)
    D = spectral_normalize(nn.Sequential(nn.Linear(3, 6), nn.LeakyReLU(0.2), nn.Linear(6, 1)))
    D.to(dtype=np.float64)
    x = np.random.default_rng(seed).standard_normal((5, 3))
    D(Tensor(x))                                            # one training forward, then fixed u, v
    D.eval()
    return (lambda t: D(t).reshape(t.shape[0])), D, x


@pytest.mark.parametrize("which", ["wgan-gp", "dragan"])
def test_penalty_on_a_spectrally_normalised_critic_gradcheck_second_order(which):
    """A gradient penalty differentiates grad_x D, and grad_x D contains 1/sigma(W): its weight gradient is a
    second derivative through sigma.  Central differences of the penalty in every weight_orig and bias."""
    critic, D, x = _sn_critic()
    fake = x[::-1].copy() * 0.5

    def penalty(*params):
        rng = np.random.default_rng(9)
        if which == "dragan":
            return dragan_penalty(critic, tg.tensor(x), weight=10.0, generator=rng)
        return gradient_penalty(critic, tg.tensor(x), tg.tensor(fake), weight=10.0, generator=rng)

    assert penalty().item() > 1e-3
    assert gradcheck(penalty, list(D.parameters()), atol=1e-6, rtol=1e-5)


def test_penalty_through_sigma_matches_torch(torch):
    critic, D, x = _sn_critic(2)
    tnn = torch.nn
    seq = tnn.Sequential(tnn.utils.spectral_norm(tnn.Linear(3, 6)), tnn.LeakyReLU(0.2),
                         tnn.utils.spectral_norm(tnn.Linear(6, 1))).double()
    seq.load_state_dict({k: torch.tensor(v) for k, v in D.state_dict().items()})
    seq.eval()
    gp = gradient_penalty(critic, tg.tensor(x), tg.tensor(0.5 * x), weight=10.0, generator=np.random.default_rng(1))
    gp.backward()
    eps = torch.tensor(np.random.default_rng(1).random((5, 1)))
    xh = (eps * torch.tensor(x) + (1 - eps) * torch.tensor(0.5 * x)).requires_grad_(True)
    (g,) = torch.autograd.grad(seq(xh).sum(), xh, create_graph=True)
    ref = 10.0 * ((g.norm(2, dim=1) - 1) ** 2).mean()
    ref.backward()
    np.testing.assert_allclose(gp.item(), ref.item(), rtol=1e-9)
    ours, compared = dict(D.named_parameters()), 0
    for name, p in seq.named_parameters():
        if p.grad is None or not p.grad.any():               # biases: grad_x D is blind to them (LeakyReLU MLP)
            assert ours[name].grad is None or not ours[name].grad.numpy().any(), name
            continue
        np.testing.assert_allclose(ours[name].grad.numpy(), p.grad.numpy(), rtol=1e-7, atol=1e-12, err_msg=name)
        compared += 1
    assert compared == 2                                     # both weight_orig


# ---------------------------------------------------------------------------- models and runs

def _sn_layers(D):
    return [m for m in D.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))]


def test_sngan_is_dcgan_without_batch_norm_in_d_and_every_layer_normalised():
    tg.manual_seed(0)
    G, D = build_gan("sngan", image_shape=(1, 16, 16), ngf=8, ndf=8, nz=10, loss="hinge")
    assert type(G).__name__ == "DCGANGenerator"
    assert not any(isinstance(m, (nn.BatchNorm2d, nn.LayerNorm)) for m in D.modules())
    layers = _sn_layers(D)
    assert len(layers) == 3 and all(hasattr(m, "weight_orig") and hasattr(m, "weight_u") for m in layers)
    keys = list(D.state_dict())
    assert "main.0.weight_orig" in keys and "main.0.weight_u" in keys and "main.0.weight_v" in keys
    assert not any(k.endswith(".weight") for k in keys)
    # the same seed builds the same D, u and v included
    tg.manual_seed(0)
    _, D2 = build_gan("sngan", image_shape=(1, 16, 16), ngf=8, ndf=8, nz=10, loss="hinge")
    for k, v in D.state_dict().items():
        np.testing.assert_array_equal(v, D2.state_dict()[k], err_msg=k)
    assert D(G(tg.randn(3, 10))).shape == (3,)
    with pytest.raises(ValueError, match="'sngan' \\(SN-DCGAN\\) needs images"):
        build_gan("sngan", data_dim=2)


@pytest.mark.parametrize("model,shape", [("mlp", None), ("dcgan", (1, 16, 16)), ("cgan-mlp", None),
                                         ("infogan", None)])
def test_spectral_norm_flag_normalises_every_layer_of_d_and_leaves_g_alone(model, shape):
    kw = dict(image_shape=shape) if shape else dict(data_dim=2)
    tg.manual_seed(0)
    G, D = build_gan(model, ngf=8, ndf=8, nz=4, hidden=(8, 8), spectral_norm=True, **kw)
    tg.manual_seed(0)
    G0, D0 = build_gan(model, ngf=8, ndf=8, nz=4, hidden=(8, 8), **kw)
    layers = _sn_layers(D)
    assert layers and all("weight_orig" in m._parameters for m in layers)
    assert list(G.state_dict()) == list(G0.state_dict())
    plain = D0.state_dict()
    for k, v in D.state_dict().items():                   # weight_orig is the unnormalised model's weight
        if k.endswith("_orig"):
            np.testing.assert_array_equal(v, plain[k[:-len("_orig")]])
        elif not k.endswith(("_u", "_v")):
            np.testing.assert_array_equal(v, plain[k])


def test_packed_discriminator_is_normalised_too():
    _, D = build_gan("mlp", data_dim=2, hidden=(8,), pack=2, spectral_norm=True)
    assert _sn_layers(D) and all("weight_orig" in m._parameters for m in _sn_layers(D))


@pytest.mark.parametrize("kw,message", [
    (dict(model="sngan", loss="nonsaturating"), "--loss nonsaturating: --model sngan is SN-DCGAN with the hinge loss"),
    (dict(model="sngan", loss="wgan-gp"), "--loss wgan-gp: --model sngan is SN-DCGAN with the hinge loss"),
    (dict(model="sngan", loss="hinge", spectral_norm=True), "--spectral-norm: would be ignored"),
    (dict(model="dcgan", loss="wgan", spectral_norm=True), "--spectral-norm: --loss wgan clips D's weights"),
    (dict(model="sngan", loss="hinge", dataset="ring8"), "--model sngan needs images"),
    (dict(spectral_norm="yes"), "--spectral-norm: must be true or false"),
])
def test_refused_combinations(kw, message):
    with pytest.raises(ConfigError, match="^" + message.replace("(", "\\(")):
        TrainConfig(**kw).validate()
    TrainConfig(model="sngan", loss="hinge").validate()
    TrainConfig(model="mlp", dataset="ring8", loss="ragan", spectral_norm=True).validate()


def test_sngan_without_loss_takes_the_hinge_loss(tmp_path):
    """`tinygan train --model sngan` is SN-DCGAN with the hinge loss; the default loss stays nonsaturating."""
    assert TrainConfig(model="sngan").validate().loss == "hinge"
    assert TrainConfig().loss == TrainConfig(model="dcgan").loss == "nonsaturating"
    from tinygan.cli import main
    import json
    assert main(["train", "--model", "sngan", "--dry-run", "--out", str(tmp_path / "sn"), "--no-progress"]) == 0
    assert json.loads((tmp_path / "sn" / "config.json").read_text())["loss"] == "hinge"


def test_cli_flag(tmp_path):
    from tinygan.cli import main
    out = tmp_path / "r"
    assert main(["train", "--model", "mlp", "--dataset", "ring8", "--spectral-norm", "--steps", "1",
                 "--out", str(out), "--no-progress"]) == 0
    import json
    assert json.loads((out / "config.json").read_text())["spectral_norm"] is True


@pytest.mark.parametrize("kw", [dict(model="sngan", loss="hinge", image_size=16, ngf=8, ndf=8, nz=16),
                                dict(model="mlp", dataset="ring8", loss="ragan", spectral_norm=True)],
                         ids=["sngan", "mlp-ragan-sn"])
def test_resume_is_bit_identical(tmp_path, kw):
    """u and v are persistent buffers: 4 steps == 2 steps, resume, 2 more, bit for bit (weights, u, v, log)."""
    from test_trainer import _assert_same_checkpoint, _log
    from tinygan.run import load_checkpoint, resume, train
    base = dict(batch_size=8, checkpoint_every=100, sample_every=100, progress=False, **kw)
    train(TrainConfig(out=str(tmp_path / "full"), steps=4, **base))
    train(TrainConfig(out=str(tmp_path / "half"), steps=2, **base))
    resume(tmp_path / "half", steps=4, progress=False)
    full = load_checkpoint(tmp_path / "full" / "checkpoint.npz")
    assert any(k.endswith("weight_u") for k in full["discriminator"])
    _assert_same_checkpoint(full, load_checkpoint(tmp_path / "half" / "checkpoint.npz"))
    assert _log(tmp_path / "full" / "metrics.jsonl") == _log(tmp_path / "half" / "metrics.jsonl")
