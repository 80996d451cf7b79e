"""The GAN losses and the critic's penalties, against hand-computed values, PyTorch, and in training.

Losses: each one's value on small logits against the plain NumPy formula
(log and sigmoid, no tricks), against the same loss written with PyTorch
(value and gradients w.r.t. the logits), at logits of +-1e4, and its paper
defaults.  Penalties: WGAN-GP and R1 against ``torch.autograd.grad(create_graph=True)``
on the same critic (an MLP and a DCGAN critic) and the same eps: the penalty
and the gradients of every critic parameter.  Training: for every loss a few
steps of a tiny MLP GAN move G, and G's gradient is the one that flows
through D (checked against PyTorch, and by cutting D out of the path).
"""
from __future__ import annotations

import numpy as np
import pytest

import tinygan as tg
from tinygan import nn, optim
from tinygan.gan import (LOSSES, LSGAN, WGANGP, DCGANDiscriminator, GANLoss, MLPDiscriminator, MLPGenerator,
                         get_loss, gradient_penalty, r1_penalty, weight_clip_)
from tinygan.gan import losses as L
from tinygan.gan.losses import LOSS_PRESETS
from tinygan.gan.recipes import RECIPES, recipe_for
from tinygan.gan.models import ConditionalMLPDiscriminator

LOSS_NAMES = ["minimax", "nonsaturating", "lsgan", "wgan", "wgan-gp", "hinge"]
BEYOND = ["rsgan", "ragan", "ralsgan", "dragan"]      # issue 14's; tests/test_relativistic_dragan.py

REAL = np.array([2.0, -0.5, 0.3, 1.7, -3.0])           # D's raw outputs l(x) on 5 real samples
FAKE = np.array([-1.2, 0.4, 0.0, -2.5, 3.1, 0.9])      # ... and l(G(z)) on 6 fakes (another batch size on purpose)


def sigmoid(t):
    return 1.0 / (1.0 + np.exp(-t))


# The losses written the plain way: D(x) = sigmoid(l), then log.  Fine for these small logits.
def numpy_reference(name, real, fake, a=0.0, b=1.0, c=1.0):
    Dr, Df = sigmoid(real), sigmoid(fake)
    if name in ("minimax", "nonsaturating"):
        d = -np.mean(np.log(Dr)) - np.mean(np.log(1 - Df))           # -(E log D(x) + E log(1 - D(G(z))))
        g = np.mean(np.log(1 - Df)) if name == "minimax" else -np.mean(np.log(Df))
    elif name == "lsgan":
        d = 0.5 * np.mean((real - b) ** 2) + 0.5 * np.mean((fake - a) ** 2)
        g = 0.5 * np.mean((fake - c) ** 2)
    elif name in ("wgan", "wgan-gp"):
        d = np.mean(fake) - np.mean(real)
        g = -np.mean(fake)
    elif name == "hinge":
        d = np.mean(np.maximum(0, 1 - real)) + np.mean(np.maximum(0, 1 + fake))
        g = -np.mean(fake)
    return d, g


def torch_reference(torch, name, real, fake):
    """The same objectives written with torch.nn.functional (BCE on logits where it applies)."""
    TF = torch.nn.functional
    if name in ("minimax", "nonsaturating"):
        d = (TF.binary_cross_entropy_with_logits(real, torch.ones_like(real))
             + TF.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))
        if name == "nonsaturating":
            g = TF.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))
        else:
            g = -TF.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))   # E log(1 - D(G(z)))
    elif name == "lsgan":
        d = 0.5 * TF.mse_loss(real, torch.ones_like(real)) + 0.5 * TF.mse_loss(fake, torch.zeros_like(fake))
        g = 0.5 * TF.mse_loss(fake, torch.ones_like(fake))
    elif name in ("wgan", "wgan-gp"):
        d = fake.mean() - real.mean()
        g = -fake.mean()
    elif name == "hinge":
        d = torch.relu(1 - real).mean() + torch.relu(1 + fake).mean()
        g = -fake.mean()
    return d, g


def _ours(name, real, fake, **kw):
    loss = get_loss(name, **kw)
    r, f = tg.tensor(real, requires_grad=True), tg.tensor(fake, requires_grad=True)
    d = loss.d_loss(r, f)
    d.backward()
    f2 = tg.tensor(fake, requires_grad=True)
    g = loss.g_loss(f2)
    g.backward()
    return d, g, r.grad.numpy(), f.grad.numpy(), f2.grad.numpy()


# ------------------------------------------------------------------------------------ the losses

def test_registry_names_are_exactly_the_six():
    assert sorted(LOSSES) == sorted(LOSS_NAMES + BEYOND)
    for name in LOSS_NAMES + BEYOND:
        loss = get_loss(name)
        assert isinstance(loss, GANLoss) and loss.name == name
    with pytest.raises(ValueError, match="unknown loss 'bce'"):
        get_loss("bce")


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_loss_matches_the_hand_computed_value(name):
    d, g, *_ = _ours(name, REAL, FAKE)
    d_ref, g_ref = numpy_reference(name, REAL, FAKE)
    np.testing.assert_allclose(d.item(), d_ref, rtol=1e-12)
    np.testing.assert_allclose(g.item(), g_ref, rtol=1e-12)


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_loss_matches_pytorch_value_and_logit_gradients(name, torch):
    d, g, gr, gf, gf2 = _ours(name, REAL, FAKE)
    tr = torch.tensor(REAL, requires_grad=True)
    tf = torch.tensor(FAKE, requires_grad=True)
    td, _ = torch_reference(torch, name, tr, tf)
    td.backward()
    tf2 = torch.tensor(FAKE, requires_grad=True)
    _, tgl = torch_reference(torch, name, tr.detach(), tf2)
    tgl.backward()
    np.testing.assert_allclose(d.item(), td.item(), rtol=1e-12, err_msg=f"{name}: d_loss")
    np.testing.assert_allclose(g.item(), tgl.item(), rtol=1e-12, err_msg=f"{name}: g_loss")
    np.testing.assert_allclose(gr, tr.grad.numpy(), rtol=1e-10, atol=1e-15, err_msg=f"{name}: dL_D/dl(x)")
    np.testing.assert_allclose(gf, tf.grad.numpy(), rtol=1e-10, atol=1e-15, err_msg=f"{name}: dL_D/dl(G(z))")
    np.testing.assert_allclose(gf2, tf2.grad.numpy(), rtol=1e-10, atol=1e-15, err_msg=f"{name}: dL_G/dl(G(z))")


@pytest.mark.parametrize("name", ["wgan", "wgan-gp"])
def test_wgan_sign_conventions(name):
    # The critic minimises E[f(G(z))] - E[f(x)]: raising a real score or lowering a fake one lowers its
    # loss; G minimises -E[f(G(z))]: raising a fake score lowers G's loss.
    _, _, gr, gf, gf2 = _ours(name, REAL, FAKE)
    np.testing.assert_allclose(gr, -np.ones(5) / 5)
    np.testing.assert_allclose(gf, np.ones(6) / 6)
    np.testing.assert_allclose(gf2, -np.ones(6) / 6)
    d, _, *_ = _ours(name, np.array([5.0]), np.array([-5.0]))   # a critic that separates the two: negative loss
    assert d.item() == -10.0


def test_lsgan_abc_and_the_pearson_preset():
    d_ref, g_ref = numpy_reference("lsgan", REAL, FAKE, a=-1, b=1, c=0)
    for kw, name in (({"a": -1, "b": 1, "c": 0}, "lsgan"), ({"preset": "pearson"}, "lsgan"), ({}, "lsgan-pearson")):
        d, g, *_ = _ours(name, REAL, FAKE, **kw)
        np.testing.assert_allclose([d.item(), g.item()], [d_ref, g_ref], rtol=1e-12, err_msg=str(kw))
    loss = get_loss("lsgan-pearson")
    assert isinstance(loss, LSGAN) and (loss.a, loss.b, loss.c) == (-1, 1, 0)
    assert (get_loss("lsgan").a, get_loss("lsgan").b, get_loss("lsgan").c) == (0, 1, 1)
    with pytest.raises(ValueError, match="unknown preset"):
        LSGAN(preset="chi")


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_huge_logits_give_finite_losses_and_gradients(name):
    big = np.array([1e4, -1e4, 1e4, -1e4], dtype=np.float32)
    d, g, gr, gf, gf2 = _ours(name, big, -big)
    for v in (d.item(), g.item()):
        assert np.isfinite(v), (name, v)
    for grad in (gr, gf, gf2):
        assert np.all(np.isfinite(grad)), (name, grad)
    if name in ("minimax", "nonsaturating"):
        # softplus(1e4) = 1e4 exactly; sigmoid-then-log would give log(0) = -inf here
        d, g, *_ = _ours(name, np.array([-1e4], np.float32), np.array([1e4], np.float32))
        assert d.item() == pytest.approx(2e4)


def test_recipes_follow_the_papers():
    table = {
        "minimax": ("adam", 2e-4, (0.5, 0.999), 1, None, None, "batch"),
        "nonsaturating": ("adam", 2e-4, (0.5, 0.999), 1, None, None, "batch"),
        "lsgan": ("adam", 2e-4, (0.5, 0.999), 1, None, None, "batch"),
        "lsgan-pearson": ("adam", 2e-4, (0.5, 0.999), 1, None, None, "batch"),
        "hinge": ("adam", 2e-4, (0.5, 0.999), 1, None, None, "batch"),
        "wgan": ("rmsprop", 5e-5, None, 5, 0.01, None, "batch"),
        "wgan-gp": ("adam", 1e-4, (0.0, 0.9), 5, None, 10.0, "layer"),
        "rsgan": ("adam", 2e-4, (0.5, 0.999), 1, None, None, "batch"),      # Jolicoeur-Martineau 2019
        "ragan": ("adam", 2e-4, (0.5, 0.999), 1, None, None, "batch"),
        "ralsgan": ("adam", 2e-4, (0.5, 0.999), 1, None, None, "batch"),
        "dragan": ("adam", 1e-4, (0.5, 0.9), 1, None, 10.0, "layer"),       # Kodali et al. 2017's code
    }
    assert set(RECIPES) == set(table) == set(LOSSES) | set(LOSS_PRESETS)
    for name, expected in table.items():
        r = recipe_for(name)
        assert (r.optimizer, r.lr, r.betas, r.n_critic, r.clip_value, r.gp_weight, r.critic_norm) == expected, name
        assert recipe_for(get_loss(name)) == r, name
    assert get_loss("minimax").probabilistic and get_loss("nonsaturating").probabilistic
    assert not any(get_loss(n).probabilistic for n in ("lsgan", "wgan", "wgan-gp", "hinge", "rsgan", "ragan",
                                                           "ralsgan"))
    assert [n for n in table if recipe_for(n).gp_at == "perturbed"] == ["dragan"]
    with pytest.raises(ValueError, match="no training recipe"):
        recipe_for("nope")


# ------------------------------------------------------------------------------------ penalties

def _torch_mlp_critic(torch, D: MLPDiscriminator):
    tnn = torch.nn
    layers = []
    for m in D.main:
        if isinstance(m, nn.Linear):
            layers.append(tnn.Linear(m.in_features, m.out_features))
        elif isinstance(m, nn.LeakyReLU):
            layers.append(tnn.LeakyReLU(m.negative_slope))
        else:
            raise AssertionError(m)
    seq = tnn.Sequential(*layers).double()
    seq.load_state_dict({k[len("main."):]: torch.tensor(v) for k, v in D.state_dict().items()})

    def critic(x):
        return seq(x.reshape(x.shape[0], -1)).reshape(-1)
    return critic, seq


def _torch_dcgan_critic(torch, D: DCGANDiscriminator):
    tnn = torch.nn
    layers = []
    for m in D.main:
        if isinstance(m, nn.Conv2d):
            layers.append(tnn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding, bias=False))
        elif isinstance(m, nn.LeakyReLU):
            layers.append(tnn.LeakyReLU(m.negative_slope))
        elif isinstance(m, nn.LayerNorm):
            layers.append(tnn.LayerNorm(list(m.normalized_shape)))
        elif isinstance(m, nn.Identity):
            layers.append(tnn.Identity())
        else:
            raise AssertionError(m)
    seq = tnn.Sequential(*layers).double()
    seq.load_state_dict({k[len("main."):]: torch.tensor(v) for k, v in D.state_dict().items()})

    def critic(x):
        return seq(x).reshape(-1)
    return critic, seq


def _critics(kind):
    """A float64 critic with non-trivial weights and data of its input shape."""
    tg.manual_seed(1)
    rng = np.random.default_rng(7)
    if kind == "mlp":
        D = MLPDiscriminator(in_shape=(3,), hidden=(16, 16))
        shape = (6, 3)
    else:
        D = DCGANDiscriminator(nc=2, ndf=4, image_size=16, norm="none" if kind == "dcgan" else "layer")
        for p in D.parameters():                         # the DCGAN init (std 0.02) gives tiny gradients
            p.data = rng.normal(0, 0.3, p.shape).astype(np.float32)
        if kind == "dcgan-layer":                        # non-trivial layer-norm scale and shift
            for m in D.modules():
                if isinstance(m, nn.LayerNorm):
                    m.weight.data = rng.uniform(0.5, 1.5, m.weight.shape).astype(np.float32)
                    m.bias.data = rng.normal(0, 0.1, m.bias.shape).astype(np.float32)
        shape = (4, 2, 16, 16)
    D.to(dtype=np.float64)
    real = rng.normal(size=shape)
    fake = rng.normal(size=shape) * 0.5 + 0.3
    return D, real, fake


def _torch_critic(torch, kind, D):
    return _torch_mlp_critic(torch, D) if kind == "mlp" else _torch_dcgan_critic(torch, D)


def _torch_gp(torch, critic, real, fake, eps, weight):
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (g,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return weight * ((g.reshape(g.shape[0], -1).norm(2, dim=1) - 1) ** 2).mean()


def _assert_param_grads(D, seq, what):
    # A parameter the penalty does not depend on (a bias: grad_x D(x) is blind to it, up to the
    # piecewise-constant LeakyReLU masks) has no gradient in either library.
    ours = dict(D.named_parameters())
    compared = 0
    for name, p in seq.named_parameters():
        mine = ours["main." + name].grad
        if p.grad is None or not p.grad.any():          # torch may hold an all-zero gradient there
            assert mine is None or not np.any(mine.numpy()), f"{what}: {name} has a gradient in tinygan only"
            continue
        assert mine is not None, f"{what}: no gradient for {name}"
        np.testing.assert_allclose(mine.numpy(), p.grad.numpy(), rtol=1e-7, atol=1e-10,
                                   err_msg=f"{what}: d penalty / d {name}")
        compared += 1
    assert compared >= 3, f"{what}: only {compared} parameters have gradients"


@pytest.mark.parametrize("kind", ["mlp", "dcgan", "dcgan-layer"])
def test_gradient_penalty_matches_pytorch(kind, torch):
    D, real, fake = _critics(kind)
    gp = gradient_penalty(D, tg.tensor(real), tg.tensor(fake), weight=10.0, generator=np.random.default_rng(3))
    gp.backward()
    eps = np.random.default_rng(3).random((real.shape[0],) + (1,) * (real.ndim - 1))   # the same eps
    critic, seq = _torch_critic(torch, kind, D)
    ref = _torch_gp(torch, critic, torch.tensor(real), torch.tensor(fake), torch.tensor(eps), 10.0)
    ref.backward()
    assert ref.item() > 1e-3                                   # a penalty that is not trivially zero
    np.testing.assert_allclose(gp.item(), ref.item(), rtol=1e-9)
    _assert_param_grads(D, seq, f"gp/{kind}")


@pytest.mark.parametrize("kind", ["mlp", "dcgan"])
def test_r1_penalty_matches_pytorch(kind, torch):
    D, real, _ = _critics(kind)
    r1 = r1_penalty(D, tg.tensor(real), gamma=3.0)
    r1.backward()
    critic, seq = _torch_critic(torch, kind, D)
    x = torch.tensor(real, requires_grad=True)
    (g,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
    ref = 1.5 * (g.reshape(g.shape[0], -1) ** 2).sum(dim=1).mean()    # gamma/2 E ||grad_x D(x)||^2
    ref.backward()
    np.testing.assert_allclose(r1.item(), ref.item(), rtol=1e-9)
    _assert_param_grads(D, seq, f"r1/{kind}")


def test_gradient_penalty_eps_comes_from_the_global_generator_by_default():
    D, real, fake = _critics("mlp")
    tg.manual_seed(11)
    a = gradient_penalty(D, tg.tensor(real), tg.tensor(fake)).item()
    b = gradient_penalty(D, tg.tensor(real), tg.tensor(fake), generator=np.random.default_rng(11)).item()
    assert a == b


def test_gradient_penalty_passes_labels_to_a_conditional_critic():
    tg.manual_seed(0)
    D = ConditionalMLPDiscriminator(in_shape=(3,), num_classes=4, hidden=(8,)).to(dtype=np.float64)
    rng = np.random.default_rng(0)
    real, fake = tg.tensor(rng.normal(size=(5, 3))), tg.tensor(rng.normal(size=(5, 3)))
    labels = np.array([0, 1, 2, 3, 1])
    gp = gradient_penalty(D, real, fake, labels=labels, generator=np.random.default_rng(1))
    same = gradient_penalty(lambda x: D(x, labels=labels), real, fake, generator=np.random.default_rng(1))
    other = gradient_penalty(D, real, fake, labels=(labels + 1) % 4, generator=np.random.default_rng(1))
    assert gp.item() == same.item() and gp.item() != other.item()
    r1 = r1_penalty(D, real, 2.0, labels=labels)
    assert np.isfinite(r1.item())
    with pytest.raises(ValueError, match="pass labels"):
        gradient_penalty(D, real, fake)


def test_gradient_penalty_sends_nothing_to_the_generator():
    # The penalty belongs to the critic's loss: even a fake batch still attached to G gives G no gradient.
    tg.manual_seed(0)
    G, D = MLPGenerator(nz=3, out_shape=(2,), hidden=(8,)), MLPDiscriminator(in_shape=(2,), hidden=(8,))
    fake = G(tg.randn(4, 3))
    gp = gradient_penalty(D, tg.randn(4, 2), fake, generator=np.random.default_rng(0))
    gp.backward()
    assert all(p.grad is None for p in G.parameters())
    assert D.main[0].weight.grad is not None and D.main[2].weight.grad is not None


def test_gradient_penalty_of_a_dead_critic_is_finite():
    D = MLPDiscriminator(in_shape=(2,), hidden=(4,))
    for p in D.parameters():
        p.data[...] = 0                                  # grad_x D = 0 everywhere: ||g|| = 0
    gp = gradient_penalty(D, tg.randn(3, 2), tg.randn(3, 2), weight=10.0)
    gp.backward()
    assert gp.item() == pytest.approx(10.0, rel=1e-5)  # lambda (0 - 1)^2
    assert all(np.all(np.isfinite(p.grad.numpy())) for p in D.parameters() if p.grad is not None)
    assert D.main[0].weight.grad is not None


def test_weight_clipping_keeps_every_critic_parameter_in_range():
    tg.manual_seed(0)
    D = DCGANDiscriminator(nc=1, ndf=4, image_size=16)           # conv and batch-norm parameters
    for p in D.parameters():
        p.data = p.data * 100 + 1
    before = {k: v.copy() for k, v in D.state_dict().items()}
    weight_clip_(D, 0.01)
    for name, p in D.named_parameters():
        w = p.numpy()
        assert w.min() >= -0.01 and w.max() <= 0.01, name
        np.testing.assert_array_equal(w, np.clip(before[name], -0.01, 0.01))
    np.testing.assert_array_equal(D.main[3].running_var, before["main.3.running_var"])   # buffers untouched
    with pytest.raises(ValueError, match="positive"):
        weight_clip_(D, 0.0)


# ------------------------------------------------------------------------------------ in training

NZ, H = 3, 8


def _tiny_gan(seed=0):
    tg.manual_seed(seed)
    G = MLPGenerator(nz=NZ, out_shape=(2,), hidden=(H,)).to(dtype=np.float64)
    D = MLPDiscriminator(in_shape=(2,), hidden=(H,)).to(dtype=np.float64)
    return G, D


def _toy_batch(rng, n=16):
    angles = rng.integers(0, 8, n) * (2 * np.pi / 8)              # a ring of 8 Gaussians
    return np.stack([np.cos(angles), np.sin(angles)], 1) * 2 + rng.normal(0, 0.05, (n, 2))


def _optimizer(loss, params):
    r = recipe_for(loss)
    if r.optimizer == "rmsprop":
        return optim.RMSprop(params, lr=r.lr)
    return optim.Adam(params, lr=r.lr, betas=r.betas)


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_a_few_training_steps_move_the_generator(name):
    loss = get_loss(name)
    G, D = _tiny_gan()
    opt_g, opt_d = _optimizer(loss, G.parameters()), _optimizer(loss, D.parameters())
    rng = np.random.default_rng(0)
    g0 = {k: v.copy() for k, v in G.state_dict().items()}
    for _ in range(3):
        # (1) critic/discriminator: minimise loss.d_loss (+ the penalty, in the critic's loss only)
        real = tg.tensor(_toy_batch(rng))
        z = tg.tensor(rng.standard_normal((16, NZ)))
        fake = G(z)
        err_d = loss.d_loss(D(real), D(fake.detach()))
        if recipe_for(loss).gp_weight:
            err_d = err_d + gradient_penalty(D, real, fake.detach(), weight=recipe_for(loss).gp_weight,
                                             generator=rng)
        opt_d.zero_grad()
        err_d.backward()
        opt_d.step()
        if recipe_for(loss).clip_value:
            weight_clip_(D, recipe_for(loss).clip_value)
        # (2) generator: minimise loss.g_loss through D
        err_g = loss.g_loss(D(fake))
        opt_g.zero_grad()
        D.zero_grad()
        err_g.backward()
        opt_g.step()
        assert np.isfinite(err_d.item()) and np.isfinite(err_g.item())
    for k, v in G.state_dict().items():
        assert not np.array_equal(v, g0[k]), f"{name}: G's {k} did not move"


def _torch_mlp(torch, module, act):
    tnn = torch.nn
    layers = []
    for m in module.main:
        if isinstance(m, nn.Linear):
            layers.append(tnn.Linear(m.in_features, m.out_features))
        else:
            layers.append(act())
    seq = tnn.Sequential(*layers).double()
    seq.load_state_dict({k[len("main."):]: torch.tensor(v) for k, v in module.state_dict().items()})
    return seq


def _generator_grads(loss, G, D, z):
    G.zero_grad()
    D.zero_grad()
    loss.g_loss(D(G(tg.tensor(z)))).backward()
    return {k: p.grad.numpy().copy() for k, p in G.named_parameters()}


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_generator_gradient_flows_through_the_discriminator(name, torch):
    loss = get_loss(name)
    G, D = _tiny_gan(seed=3)
    z = np.random.default_rng(5).standard_normal((7, NZ))
    grads = _generator_grads(loss, G, D, z)

    # The same G, D and objective in PyTorch: G's gradients agree.
    tG = _torch_mlp(torch, G, torch.nn.ReLU)
    tD = _torch_mlp(torch, D, lambda: torch.nn.LeakyReLU(0.2))
    tr = torch.zeros(1, dtype=torch.float64)
    _, tgl = torch_reference(torch, name, tr, tD(tG(torch.tensor(z))).reshape(-1))
    tgl.backward()
    for k, p in tG.named_parameters():
        np.testing.assert_allclose(grads["main." + k], p.grad.numpy(), rtol=1e-8, atol=1e-12,
                                   err_msg=f"{name}: dL_G/d{k}")
    assert any(np.abs(g).max() > 1e-6 for g in grads.values())

    # Cut D's dependence on its input (zero its first layer's weights): G's gradient must vanish.
    D.main[0].weight.data[...] = 0
    cut = _generator_grads(loss, G, D, z)
    for k in grads:
        np.testing.assert_array_equal(cut[k], 0, err_msg=f"{name}: {k} got a gradient that bypasses D")
    if name == "wgan-gp":
        # G's objective for WGAN-GP is WGAN's: the penalty is not part of it.
        G2, D2 = _tiny_gan(seed=3)
        ref = _generator_grads(get_loss("wgan"), G2, D2, z)
        for k in grads:
            np.testing.assert_array_equal(grads[k], ref[k])


def test_generator_gradient_matches_finite_differences():
    # One scalar parameter of G, float64 central differences of g_loss(D(G(z))), non-saturating loss.
    loss = get_loss("nonsaturating")
    G, D = _tiny_gan(seed=4)
    z = np.random.default_rng(6).standard_normal((5, NZ))
    grads = _generator_grads(loss, G, D, z)
    w = G.main[0].weight
    h = 1e-6
    for idx in [(0, 0), (3, 1), (7, 2)]:
        old = w.data[idx]
        w.data[idx] = old + h
        up = loss.g_loss(D(G(tg.tensor(z)))).item()
        w.data[idx] = old - h
        down = loss.g_loss(D(G(tg.tensor(z)))).item()
        w.data[idx] = old
        np.testing.assert_allclose(grads["main.0.weight"][idx], (up - down) / (2 * h), rtol=1e-5, atol=1e-10)


def test_module_exports_and_docstrings_carry_the_equations():
    for cls in (L.Minimax, L.NonSaturating, L.LSGAN, L.WGAN, L.WGANGP, L.Hinge):
        doc = cls.__doc__
        assert "L_" in doc or "V(D, G)" in doc, cls
    assert "E[(" in gradient_penalty.__doc__ and "gamma / 2" in r1_penalty.__doc__
