"""ACGAN, DiffAugment, the minibatch-stddev layer and the unrolled GAN (issue 14).

For each: float64 finite-difference checks, a PyTorch parity test of the same formula written in
PyTorch here, a torch-free test against a slow NumPy reference, bit-identical ``--resume`` and the
one-line errors for combinations that make no sense.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

import tinygan as tg
from test_steps import LR, fd_grad, linear_keys, log_softmax, lrelu, one_hot, ref_d_loss, ref_g_loss, sigmoid, weights
from test_trainer import _assert_same_checkpoint, _log, small
from tinygan import optim
from tinygan.autograd import Tensor
from tinygan.gan import build_gan, get_loss
from tinygan.gan.augment import DiffAugment, cutout_mask, parse_policy, translate
from tinygan.gan.mbstd import MinibatchStdDev, group_size_for
from tinygan.gan.models import ACGANDiscriminator, ACGANMLPDiscriminator, ConditionalMLPGenerator, MLPDiscriminator, \
    MLPGenerator
from tinygan.gan.steps import d_step, g_step
from tinygan.gan.unroll import substituted, unrolled_parameters
from tinygan.run import TrainConfig, Trainer, load_checkpoint, resume, train
from tinygan.run.config import ConfigError
from tinygan.testing import gradcheck, gradgradcheck

N, K = 6, 3                                   # batch, classes


def redraw(module, seed, scale=0.8):
    """float64, every weight ~ N(0, scale^2)."""
    module.double()
    rng = np.random.default_rng(seed)
    for p in module.parameters():
        p.data[...] = rng.normal(0.0, scale, p.shape)
    return module


def t64(a, requires_grad=False):
    return tg.tensor(np.asarray(a, dtype=np.float64), requires_grad=requires_grad)


# ============================================================================ ACGAN

def ref_acgan_D(P, x):
    """ACGAN MLP D (one hidden layer): logits (N,) and class logits (N, K) from the shared body."""
    (w0, b0), (w1, b1) = linear_keys(P, "main")
    h = lrelu(x @ P[w0].T + P[b0])
    return (h @ P[w1].T + P[b1])[:, 0], h @ P["aux.weight"].T + P["aux.bias"]


def ref_ce(class_logits, y):
    """E[-log softmax(c)_y], the paper's -log P(C = c | X) averaged."""
    return -np.mean(log_softmax(class_logits)[np.arange(len(y)), y])


def acgan_pair(seed):
    G = redraw(ConditionalMLPGenerator(2, K, (2,), hidden=(5,)), seed)
    D = redraw(ACGANMLPDiscriminator((2,), K, hidden=(4,)), seed + 1)
    return G, D


@pytest.mark.parametrize("name", ["nonsaturating", "lsgan", "wgan-gp", "hinge"])
def test_acgan_d_step_descends_L_S_plus_L_C_of_the_paper(name):
    """One SGD step of D on -(L_S + L_C): L_S the chosen loss, L_C = log P(c|x_real) + log P(c|x_fake)."""
    _, D = acgan_pair(1)
    rng = np.random.default_rng(2)
    x, xf, y = rng.normal(size=(N, 2)), rng.normal(size=(N, 2)), rng.integers(0, K, N)
    P = weights(D)

    def f(P):
        (lr_, cr), (lf, cf) = ref_acgan_D(P, x), ref_acgan_D(P, xf)
        return ref_d_loss(name, lr_, lf) + ref_ce(cr, y) + ref_ce(cf, y)

    expected = {k: P[k] - LR * g for k, g in fd_grad(f, P).items()}
    record = d_step(D, optim.SGD(D.parameters(), lr=LR), get_loss(name), t64(x), t64(xf), labels=y)
    assert float(record["Loss_D"]) == pytest.approx(f(P), rel=1e-10)
    ac = ref_ce(ref_acgan_D(P, x)[1], y) + ref_ce(ref_acgan_D(P, xf)[1], y)
    assert float(record["Loss_AC_D"]) == pytest.approx(ac)
    for k, p in D.named_parameters():
        np.testing.assert_allclose(p.data, expected[k], atol=1e-9, err_msg=k)


@pytest.mark.parametrize("name", ["nonsaturating", "lsgan"])
def test_acgan_g_step_descends_its_part_of_L_C_minus_L_S(name):
    """G minimises the loss's L_G plus E[-log P(c | G(z, c))]; D's weights stay put."""
    G, D = acgan_pair(3)
    rng = np.random.default_rng(4)
    z, y = rng.normal(size=(N, 2)), rng.integers(0, K, N)
    PG, PD = weights(G), weights(D)

    def f(PG):
        (w0, b0), (w1, b1) = linear_keys(PG, "main")
        h = np.maximum(np.concatenate([z, one_hot(y, K)], axis=1) @ PG[w0].T + PG[b0], 0.0)
        lf, cf = ref_acgan_D(PD, h @ PG[w1].T + PG[b1])
        return ref_g_loss(name, lf) + ref_ce(cf, y)

    expected = {k: PG[k] - LR * g for k, g in fd_grad(f, PG).items()}
    fake = G(z=t64(z), labels=y)
    g_step(D, optim.SGD(G.parameters(), lr=LR), get_loss(name), fake, labels=y)
    for k, p in G.named_parameters():
        np.testing.assert_allclose(p.data, expected[k], atol=1e-9, err_msg=k)
    for k, p in D.named_parameters():
        np.testing.assert_array_equal(p.data, PD[k])


def test_acgan_losses_match_pytorch(torch):
    """d_step's and g_step's gradients equal the same objective written with torch.nn.functional."""
    tF = torch.nn.functional
    G, D = acgan_pair(5)
    rng = np.random.default_rng(6)
    x, z, y = rng.normal(size=(N, 2)), rng.normal(size=(N, 2)), rng.integers(0, K, N)
    PD = {k: torch.tensor(v, requires_grad=True) for k, v in weights(D).items()}
    PG = {k: torch.tensor(v, requires_grad=True) for k, v in weights(G).items()}
    yt = torch.tensor(y)

    def tD(x):
        h = tF.leaky_relu(x @ PD["main.0.weight"].T + PD["main.0.bias"], 0.2)
        return (h @ PD["main.2.weight"].T + PD["main.2.bias"])[:, 0], h @ PD["aux.weight"].T + PD["aux.bias"]

    fake_t = torch.relu(torch.cat([torch.tensor(z), tF.one_hot(yt, K).double()], 1) @ PG["main.0.weight"].T
                        + PG["main.0.bias"]) @ PG["main.2.weight"].T + PG["main.2.bias"]
    (lr_, cr), (lf, cf) = tD(torch.tensor(x)), tD(fake_t.detach())
    loss_d = tF.softplus(-lr_).mean() + tF.softplus(lf).mean() + tF.cross_entropy(cr, yt) + tF.cross_entropy(cf, yt)
    loss_d.backward()
    fake = G(z=t64(z), labels=y)
    d_step(D, optim.SGD(D.parameters(), lr=0.0), get_loss("nonsaturating"), t64(x), fake, labels=y)
    for k, p in D.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), PD[k].grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=k)
    for v in PD.values():
        v.grad = None
    lf, cf = tD(fake_t)
    (tF.softplus(-lf).mean() + tF.cross_entropy(cf, yt)).backward()
    g_step(D, optim.SGD(G.parameters(), lr=0.0), get_loss("nonsaturating"), fake, labels=y)
    for k, p in G.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), PG[k].grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=k)


def test_acgan_gradients_match_finite_differences():
    """float64: the ACGAN D objective's gradient w.r.t. the inputs and every weight of D (both heads)."""
    _, D = acgan_pair(7)
    rng = np.random.default_rng(8)
    y = rng.integers(0, K, N)
    params = list(D.parameters())
    loss = get_loss("nonsaturating")
    from tinygan.gan.losses import class_nll

    def objective(x, xf, *theta):
        with substituted(D, params, theta):
            (lr_, cr), (lf, cf) = D(x, return_aux=True), D(xf, return_aux=True)
            return loss.d_loss(lr_, lf) + class_nll(cr, y) + class_nll(cf, y)

    inputs = [t64(rng.normal(size=(N, 2)), True), t64(rng.normal(size=(N, 2)), True)] + \
        [t64(p.data, True) for p in params]
    assert gradcheck(objective, inputs)


def test_acgan_networks_and_refusals():
    G, D = build_gan("acgan", image_shape=(1, 16, 16), ngf=4, ndf=4, num_classes=K)
    assert isinstance(D, ACGANDiscriminator) and G.conditional and not D.conditional
    x = G(**{k: Tensor(v) for k, v in G.sample_inputs(N, np.random.default_rng(0)).items()})
    logits, cls = D(x, return_aux=True)
    assert logits.shape == (N,) and cls.shape == (N, K)
    np.testing.assert_array_equal(D(x).numpy(), logits.numpy())
    with pytest.raises(ValueError, match="takes no label"):
        D(x, labels=np.zeros(N, dtype=np.int64))
    with pytest.raises(ValueError, match="pass labels="):
        d_step(D, optim.SGD(D.parameters(), lr=0.0), get_loss("nonsaturating"), x.detach(), x)
    with pytest.raises(ValueError, match="pass labels="):
        g_step(D, optim.SGD(G.parameters(), lr=0.0), get_loss("nonsaturating"), x)
    with pytest.raises(ValueError, match="num_classes >= 2"):
        ACGANMLPDiscriminator((2,), 1)
    _, D = build_gan("acgan-mlp", data_dim=2, num_classes=K)
    assert isinstance(D, ACGANMLPDiscriminator)


@pytest.mark.parametrize("kw, match", [
    (dict(model="acgan", dataset="ring8"), "needs labelled data"),
    (dict(model="acgan-mlp", dataset="grid25"), "needs labelled data"),
    (dict(model="acgan", pack=2), "--pack"),
    (dict(model="acgan", unroll=2), "--unroll"),
    (dict(model="infogan", unroll=2), "--unroll"),
    (dict(model="mlp", dataset="ring8", unroll=2, loss="wgan"), "--unroll: --loss wgan"),
    (dict(model="mlp", dataset="ring8", diffaugment="translation"), "--diffaugment: the toy dataset"),
    (dict(diffaugment="translation,flip"), "--diffaugment: must be a comma-separated list"),
    (dict(diffaugment="color,color"), "--diffaugment"),
])
def test_combinations_that_make_no_sense_are_one_line_errors(tmp_path, kw, match):
    with pytest.raises(ConfigError, match=match) as e:
        Trainer(TrainConfig(out=str(tmp_path / "r"), progress=False, **kw))
    assert "\n" not in str(e.value)


def test_unroll_with_a_convolutional_model_is_allowed_but_warned(tmp_path):
    with pytest.warns(UserWarning, match="--unroll 1 with --model dcgan"):
        t = Trainer(TrainConfig(dry_run=True, unroll=1, ngf=4, ndf=4, batch_size=4, out=str(tmp_path / "r"),
                                progress=False, image_size=8))
    t.train_step()


def test_sample_label_and_conditional_accuracy_inputs_for_acgan(tmp_path, capsys):
    from tinygan.cli import main
    out = tmp_path / "r"
    assert main(["train", "--model", "acgan", "--dry-run", "--ngf", "4", "--ndf", "4", "--nz", "8", "--batch-size",
                 "8", "--no-progress", "--out", str(out)]) == 0
    assert main(["sample", "--checkpoint", str(out / "checkpoint.npz"), "--label", "3", "--n", "4",
                 "--out", str(tmp_path / "3.npz")]) == 0
    assert np.load(tmp_path / "3.npz")["images"].shape[0] == 4
    capsys.readouterr()


# ============================================================================ DiffAugment

def ref_diffaugment(x, policy, seed):
    """The reference implementation's three policies, pixel by pixel, with the draws in its order."""
    rng = np.random.default_rng(seed)
    x = np.array(x, dtype=np.float64)
    n, c, h, w = x.shape
    for p in parse_policy(policy):
        if p == "color":
            u = rng.random(n)
            x = x + (u - 0.5)[:, None, None, None]                                       # brightness
            u = rng.random(n)
            m = x.mean(axis=1, keepdims=True)
            x = (x - m) * (2 * u)[:, None, None, None] + m                               # saturation
            u = rng.random(n)
            m = x.mean(axis=(1, 2, 3), keepdims=True)
            x = (x - m) * (u + 0.5)[:, None, None, None] + m                             # contrast
        elif p == "translation":
            th = rng.integers(-(h // 8), h // 8 + 1, size=n)
            tw = rng.integers(-(w // 8), w // 8 + 1, size=n)
            out = np.zeros_like(x)
            for k in range(n):
                for i in range(h):
                    for j in range(w):
                        if 0 <= i + th[k] < h and 0 <= j + tw[k] < w:
                            out[k, :, i, j] = x[k, :, i + th[k], j + tw[k]]
            x = out
        else:                                                                            # cutout
            ch, cw = h // 2, w // 2
            oh = rng.integers(0, h + (1 - ch % 2), size=n)
            ow = rng.integers(0, w + (1 - cw % 2), size=n)
            for k in range(n):
                for a in range(ch):
                    for b in range(cw):
                        i = min(max(a + oh[k] - ch // 2, 0), h - 1)
                        j = min(max(b + ow[k] - cw // 2, 0), w - 1)
                        x[k, :, i, j] = 0.0
    return x


@pytest.mark.parametrize("policy", ["translation,cutout,color", "color", "translation", "cutout",
                                    "cutout,translation"])
@pytest.mark.parametrize("size", [8, 9, 16])
def test_diffaugment_matches_a_pixel_loop_reference(policy, size):
    x = np.random.default_rng(size).normal(size=(5, 3, size, size))
    got = DiffAugment(policy, np.random.default_rng(11))(t64(x)).numpy()
    np.testing.assert_allclose(got, ref_diffaugment(x, policy, 11), rtol=1e-12, atol=1e-12)


def test_diffaugment_matches_the_reference_pytorch_code(torch):
    """DiffAugment_pytorch.py's functions (mit-han-lab/data-efficient-gans) with our draws: values and grad_x."""
    tF = torch.nn.functional
    rng = np.random.default_rng(3)
    n, c, s = 4, 3, 16
    x = rng.normal(size=(n, c, s, s))
    draws = np.random.default_rng(5)
    u = [draws.random(n) for _ in range(3)]
    th, tw = draws.integers(-2, 3, size=n), draws.integers(-2, 3, size=n)
    oh, ow = draws.integers(0, s + 1, size=n), draws.integers(0, s + 1, size=n)
    r = lambda a: torch.tensor(a).reshape(-1, 1, 1, 1)     # noqa: E731

    xt = torch.tensor(x, requires_grad=True)
    y = xt + (r(u[0]) - 0.5)                                                             # rand_brightness
    m = y.mean(dim=1, keepdim=True)
    y = (y - m) * (r(u[1]) * 2) + m                                                      # rand_color
    m = y.mean(dim=[1, 2, 3], keepdim=True)
    y = (y - m) * (r(u[2]) + 0.5) + m                                                    # rand_contrast
    gb, gx, gy = torch.meshgrid(torch.arange(n), torch.arange(s), torch.arange(s), indexing="ij")
    gx = torch.clamp(gx + torch.tensor(th).reshape(-1, 1, 1) + 1, 0, s + 1)             # rand_translation
    gy = torch.clamp(gy + torch.tensor(tw).reshape(-1, 1, 1) + 1, 0, s + 1)
    y = tF.pad(y, [1, 1, 1, 1, 0, 0, 0, 0])[gb, :, gx, gy].permute(0, 3, 1, 2)
    cut = s // 2                                                                         # rand_cutout
    gb, gx, gy = torch.meshgrid(torch.arange(n), torch.arange(cut), torch.arange(cut), indexing="ij")
    gx = torch.clamp(gx + torch.tensor(oh).reshape(-1, 1, 1) - cut // 2, min=0, max=s - 1)
    gy = torch.clamp(gy + torch.tensor(ow).reshape(-1, 1, 1) - cut // 2, min=0, max=s - 1)
    mask = torch.ones(n, s, s, dtype=torch.float64)
    mask[gb, gx, gy] = 0
    y = y * mask.unsqueeze(1)
    weights_ = rng.normal(size=y.shape)
    (y * torch.tensor(weights_)).sum().backward()

    aug = DiffAugment("color,translation,cutout", np.random.default_rng(5))
    xs = t64(x, True)
    ours = aug(xs)
    (ours * t64(weights_)).sum().backward()
    np.testing.assert_allclose(ours.numpy(), y.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(xs.grad.numpy(), xt.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_diffaugment_gradients_first_and_second_order():
    """T is differentiable (G's step) and twice (a gradient penalty through it): fixed draws, float64."""
    x = t64(np.random.default_rng(0).normal(size=(3, 2, 8, 8)), True)

    def augment(x):
        return DiffAugment("translation,cutout,color", np.random.default_rng(1))(x)

    assert gradcheck(augment, [x])
    assert gradgradcheck(lambda x: augment(x).square(), [x])


def test_translate_and_cutout_edge_cases():
    x = np.arange(2 * 1 * 8 * 8, dtype=np.float64).reshape(2, 1, 8, 8)
    out = translate(t64(x), [1, -1], [0, 2]).numpy()
    np.testing.assert_array_equal(out[0, 0, :7], x[0, 0, 1:])                 # shifted up one row
    np.testing.assert_array_equal(out[0, 0, 7], 0.0)                          # zeros shifted in
    np.testing.assert_array_equal(out[1, 0, 1:, :6], x[1, 0, :7, 2:])
    mask = cutout_mask(1, 8, 8, [0], [8])                                     # a corner square, clipped
    assert mask.sum() == 64 - 2 * 2 and mask[0, 0, 0, 7] == 0 and mask[0, 0, 2, 7] == 1


@pytest.mark.parametrize("model", ["dcgan", "acgan"])
def test_diffaugment_sees_real_and_fake_in_both_steps_and_gradients_reach_G(model):
    tg.manual_seed(0)
    G, D = build_gan(model, image_shape=(1, 8, 8), ngf=4, ndf=4)
    calls = []
    aug = DiffAugment("translation,cutout,color", np.random.default_rng(0))
    spy = lambda x: calls.append(x.shape) or aug(x)                          # noqa: E731
    inputs = {k: Tensor(v) for k, v in G.sample_inputs(4, np.random.default_rng(1)).items()}
    labels = inputs.get("labels")
    real = Tensor(np.random.default_rng(2).uniform(-1, 1, (4, 1, 8, 8)).astype(np.float32))
    fake = G(**inputs)
    d_step(D, optim.Adam(D.parameters()), get_loss("nonsaturating"), real, fake, augment=spy, labels=labels)
    assert len(calls) == 2                                                   # D(T(x)) and D(T(G(z)))
    opt_g = optim.SGD(G.parameters(), lr=0.0)
    g_step(D, opt_g, get_loss("nonsaturating"), fake, augment=spy, labels=labels)
    assert len(calls) == 3                                                   # D(T(G(z))) in G's step
    assert all(p.grad is not None and np.abs(p.grad.numpy()).sum() > 0 for p in G.parameters())


def test_diffaugment_draws_from_its_own_generator_and_the_noise_stays_the_same(tmp_path):
    a = Trainer(small(tmp_path, "a", dry_run=True, steps=None, image_size=8))
    b = Trainer(small(tmp_path, "b", dry_run=True, steps=None, image_size=8, diffaugment="color"))
    a.train_step()
    b.train_step()
    assert a.rng.bit_generator.state == b.rng.bit_generator.state           # z draws unaffected
    assert b.augment.generator.bit_generator.state != np.random.default_rng([0, 4]).bit_generator.state


# ============================================================================ minibatch stddev

def ref_mbstd(x, group=4):
    """Karras et al.'s minibatch_stddev_layer by loops: group members n, n + M, ...; stddev averaged."""
    n = x.shape[0]
    g = group_size_for(n, group)
    m = n // g
    extra = np.zeros((n, 1) + x.shape[2:])
    for j in range(m):
        members = x[j::m]                                                    # (G, ...)
        s = np.sqrt(((members - members.mean(axis=0)) ** 2).mean(axis=0) + 1e-8).mean()
        extra[j::m] = s
    return np.concatenate([x, extra], axis=1)


@pytest.mark.parametrize("shape", [(8, 3, 4, 4), (6, 2, 2, 2), (5, 7), (1, 3), (12, 4)])
def test_mbstd_matches_a_loop_reference(shape):
    x = np.random.default_rng(0).normal(size=shape)
    np.testing.assert_allclose(MinibatchStdDev()(t64(x)).numpy(), ref_mbstd(x), rtol=1e-12, atol=1e-12)


def test_mbstd_group_size():
    assert [group_size_for(n) for n in (1, 2, 3, 4, 5, 6, 8, 64)] == [1, 2, 3, 4, 1, 3, 4, 4]


def test_mbstd_matches_pytorch_formula(torch):
    """The paper's code written in PyTorch (reshape to [G, M, C, H, W], biased variance, sqrt(+1e-8), mean, tile)."""
    x = np.random.default_rng(1).normal(size=(8, 3, 4, 4))
    xt = torch.tensor(x, requires_grad=True)
    y = xt.reshape(4, -1, 3, 4, 4)
    y = y - y.mean(dim=0, keepdim=True)
    y = torch.sqrt(y.square().mean(dim=0) + 1e-8).mean(dim=[1, 2, 3]).reshape(-1, 1, 1, 1)
    out = torch.cat([xt, y.repeat(4, 1, 4, 4)], dim=1)
    w = np.random.default_rng(2).normal(size=out.shape)
    (out * torch.tensor(w)).sum().backward()
    xs = t64(x, True)
    ours = MinibatchStdDev()(xs)
    (ours * t64(w)).sum().backward()
    np.testing.assert_allclose(ours.numpy(), out.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(xs.grad.numpy(), xt.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_mbstd_gradients_first_and_second_order():
    x = t64(np.random.default_rng(3).normal(size=(4, 2, 2, 2)), True)
    assert gradcheck(MinibatchStdDev(), [x])
    assert gradgradcheck(MinibatchStdDev(), [t64(np.random.default_rng(4).normal(size=(6, 3)), True)])


@pytest.mark.parametrize("model", ["dcgan", "mlp", "cgan", "infogan", "acgan"])
def test_mbstd_sits_before_ds_last_layer_and_couples_only_a_group(model):
    G, D = build_gan(model, image_shape=(1, 8, 8), ngf=4, ndf=4, hidden=(8,), mbstd=True)
    assert isinstance(D.main[-2], MinibatchStdDev)
    D.double().eval()
    x = np.random.default_rng(0).normal(size=(8, 1, 8, 8))
    labels = {"labels": np.zeros(8, dtype=np.int64)} if model == "cgan" else {}
    base = D(t64(x), **labels).numpy()
    x[1] += 1.0                                                              # sample 1: group {1, 3, 5, 7}
    moved = D(t64(x), **labels).numpy() != base
    assert moved[[1, 3, 5, 7]].all() and not moved[[0, 2, 4, 6]].any()


# ============================================================================ unrolled GAN

def unroll_case(seed, opt="adam", loss="nonsaturating"):
    G = redraw(MLPGenerator(2, (2,), hidden=(3,)), seed, 0.7)
    D = redraw(MLPDiscriminator((2,), hidden=(4,)), seed + 1, 0.7)
    rng = np.random.default_rng(seed + 2)
    real, z = t64(rng.normal(size=(N, 2))), t64(rng.normal(size=(N, 2)))
    opt_d = optim.Adam(D.parameters(), lr=0.05, betas=(0.5, 0.999)) if opt == "adam" else \
        optim.SGD(D.parameters(), lr=0.3)
    d_step(D, opt_d, get_loss(loss), real, G(z))                           # D's optimizer has state now
    return G, D, opt_d, real, z


def k_step_value(G, D, opt_d, real, z, k, loss):
    """f_K(theta_G) = L_G(G(z), theta_D^K(theta_G)), evaluated (the function the test differentiates)."""
    params = list(D.parameters())
    fake = G(z)
    theta = unrolled_parameters(D, params, opt_d, lambda: loss.d_loss(D(real), D(fake)), k)
    with substituted(D, params, theta):
        return loss.g_loss(D(fake), D(real)) if loss.relativistic else loss.g_loss(D(fake))


def unrolled_grads(G, D, opt_d, real, z, k, loss):
    opt_g = optim.SGD(G.parameters(), lr=0.0)
    g_step(D, opt_g, loss, G(z), real=real, unroll=k, opt_d=opt_d)
    return {n: p.grad.numpy().copy() for n, p in G.named_parameters()}


@pytest.mark.parametrize("opt", ["adam", "sgd"])
@pytest.mark.parametrize("k", [1, 3])
def test_unrolled_gradient_equals_finite_differences_of_the_k_step_function(opt, k):
    """float64: g_step's gradient of G is d/dtheta_G of L_G(theta_G, theta_D^K(theta_G)), second term included."""
    G, D, opt_d, real, z = unroll_case(10 + k, opt)
    loss = get_loss("nonsaturating")
    d_before = {n: p.data.copy() for n, p in D.named_parameters()}
    state_before = json.dumps({str(i): {n: np.asarray(v).tolist() for n, v in st.items()}
                               for i, st in enumerate(opt_d.state.values())})
    got = unrolled_grads(G, D, opt_d, real, z, k, loss)
    for name, p in G.named_parameters():
        num = np.zeros_like(p.data)
        for idx in np.ndindex(p.shape):
            old = p.data[idx]
            p.data[idx] = old + 1e-6
            up = float(k_step_value(G, D, opt_d, real, z, k, loss).item())
            p.data[idx] = old - 1e-6
            down = float(k_step_value(G, D, opt_d, real, z, k, loss).item())
            p.data[idx] = old
            num[idx] = (up - down) / 2e-6
        np.testing.assert_allclose(got[name], num, rtol=1e-5, atol=1e-8, err_msg=name)
    for n, p in D.named_parameters():                                        # D itself is untouched
        np.testing.assert_array_equal(p.data, d_before[n])
    assert json.dumps({str(i): {n: np.asarray(v).tolist() for n, v in st.items()}
                       for i, st in enumerate(opt_d.state.values())}) == state_before


@pytest.mark.parametrize("name", ["rsgan", "ragan", "ralsgan"])
def test_unrolled_relativistic_gradient_is_finite_and_equals_finite_differences(name):
    """Under a relativistic loss D's last bias cancels in D(x_r) - D(x_f): its gradient is exactly 0 at every step,
    Adam's v stays 0 there, and d sqrt(v)/dv = inf made G's unrolled gradient nan (--unroll with --loss rsgan)."""
    loss = get_loss(name)
    G, D, opt_d, real, z = unroll_case(40, "adam", name)
    bias = list(D.parameters())[-1]
    assert np.all(np.asarray(opt_d.state[id(bias)]["exp_avg_sq"]) == 0)       # the case the test is about
    got = unrolled_grads(G, D, opt_d, real, z, 2, loss)
    for name_p, p in G.named_parameters():
        assert np.isfinite(got[name_p]).all(), name_p
        num = np.zeros_like(p.data)
        for idx in np.ndindex(p.shape):
            old = p.data[idx]
            p.data[idx] = old + 1e-6
            up = float(k_step_value(G, D, opt_d, real, z, 2, loss).item())
            p.data[idx] = old - 1e-6
            down = float(k_step_value(G, D, opt_d, real, z, 2, loss).item())
            p.data[idx] = old
            num[idx] = (up - down) / 2e-6
        np.testing.assert_allclose(got[name_p], num, rtol=1e-5, atol=1e-8, err_msg=name_p)


def test_unrolling_changes_the_gradient_and_zero_steps_is_the_plain_step():
    G, D, opt_d, real, z = unroll_case(20)
    loss = get_loss("nonsaturating")
    plain = unrolled_grads(G, D, opt_d, real, z, 0, loss)
    opt_g = optim.SGD(G.parameters(), lr=0.0)
    g_step(D, opt_g, loss, G(z))
    for n, p in G.named_parameters():
        np.testing.assert_array_equal(plain[n], p.grad.numpy())
    two = unrolled_grads(G, D, opt_d, real, z, 2, loss)
    assert max(np.abs(two[n] - plain[n]).max() for n in plain) > 1e-4


def test_unrolled_gradient_matches_pytorch(torch):
    """K Adam steps of D written in PyTorch with create_graph=True; G's gradient of L_G at theta_D^K."""
    tF = torch.nn.functional
    k = 2
    G, D, opt_d, real, z = unroll_case(30)
    got = unrolled_grads(G, D, opt_d, real, z, k, get_loss("nonsaturating"))
    PG = {n: torch.tensor(v, requires_grad=True) for n, v in weights(G).items()}
    names = [n for n, _ in D.named_parameters()]
    theta = [torch.tensor(p.data, requires_grad=True) for p in D.parameters()]
    states = [opt_d.state[id(p)] for p in D.parameters()]
    m = [torch.tensor(np.asarray(s["exp_avg"])) for s in states]
    v = [torch.tensor(np.asarray(s["exp_avg_sq"])) for s in states]
    step = int(states[0]["step"])
    b1, b2, lr, eps = 0.5, 0.999, 0.05, 1e-8

    def tD(x, th):
        P = dict(zip(names, th))
        h = tF.leaky_relu(x @ P["main.0.weight"].T + P["main.0.bias"], 0.2)
        return (h @ P["main.2.weight"].T + P["main.2.bias"])[:, 0]

    fake = torch.relu(torch.tensor(z.numpy()) @ PG["main.0.weight"].T + PG["main.0.bias"]) @ PG["main.2.weight"].T \
        + PG["main.2.bias"]
    xr = torch.tensor(real.numpy())
    for _ in range(k):
        loss_d = tF.softplus(-tD(xr, theta)).mean() + tF.softplus(tD(fake, theta)).mean()
        grads = torch.autograd.grad(loss_d, theta, create_graph=True)
        step += 1
        m = [b1 * mi + (1 - b1) * g for mi, g in zip(m, grads)]
        v = [b2 * vi + (1 - b2) * g * g for vi, g in zip(v, grads)]
        theta = [t - lr * (mi / (1 - b1 ** step)) / (torch.sqrt(vi / (1 - b2 ** step)) + eps)
                 for t, mi, vi in zip(theta, m, v)]
    tF.softplus(-tD(fake, theta)).mean().backward()
    for n in got:
        np.testing.assert_allclose(got[n], PG[n].grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=n)


def test_unrolled_gradient_matches_a_numpy_reference_for_linear_networks():
    """Linear G and D, SGD: theta^{k+1} = theta^k - lr grad L_D in closed form, f_K by finite differences."""
    G = redraw(MLPGenerator(2, (2,), hidden=()), 40, 0.7)
    D = redraw(MLPDiscriminator((2,), hidden=()), 41, 0.7)
    rng = np.random.default_rng(42)
    xr, z = rng.normal(size=(N, 2)), rng.normal(size=(N, 2))
    lr, k = 0.5, 3
    opt_d = optim.SGD(D.parameters(), lr=lr)
    got = unrolled_grads(G, D, opt_d, t64(xr), t64(z), k, get_loss("nonsaturating"))
    w0, b0 = D.main[0].weight.numpy()[0].copy(), float(D.main[0].bias.numpy()[0])

    def f_k(P):
        xf = z @ P["main.0.weight"].T + P["main.0.bias"]
        w, b = w0.copy(), b0
        for _ in range(k):
            sr, sf = sigmoid(xr @ w + b), sigmoid(xf @ w + b)     # dL_D/dl: -(1 - D(x)) real, D(G(z)) fake
            gw = (-(1 - sr)[:, None] * xr).mean(0) + (sf[:, None] * xf).mean(0)
            gb = (-(1 - sr)).mean() + sf.mean()
            w, b = w - lr * gw, b - lr * gb
        return -np.mean(np.log(sigmoid(xf @ w + b)))

    num = fd_grad(f_k, weights(G))
    for n in got:
        np.testing.assert_allclose(got[n], num[n], rtol=1e-6, atol=1e-9, err_msg=n)


# ============================================================================ resume

@pytest.mark.parametrize("kw", [
    pytest.param(dict(model="acgan", loss="hinge", diffaugment="translation,cutout,color", mbstd=True),
                 id="acgan-diffaugment-mbstd"),
    pytest.param(dict(model="mlp", dataset="ring8", unroll=2, mbstd=True, batch_size=16), id="toy-unroll",
                 marks=pytest.mark.slow),
])
def test_resume_is_bit_identical(tmp_path, kw):
    n = 3
    if kw.get("dataset"):
        kw = dict(kw, ngf=64, ndf=64)
    train(small(tmp_path, "full", steps=2 * n, checkpoint_every=100, sample_every=100, **kw))
    train(small(tmp_path, "half", steps=n, checkpoint_every=100, sample_every=100, **kw))
    resume(tmp_path / "half", steps=2 * n, progress=False)
    a, b = (load_checkpoint(tmp_path / r / "checkpoint.npz") for r in ("full", "half"))
    _assert_same_checkpoint(a, b)
    assert a["meta"].get("augment_rng") == b["meta"].get("augment_rng")
    assert ("augment_rng" in a["meta"]) == ("diffaugment" in kw)
    assert _log(tmp_path / "full" / "metrics.jsonl") == _log(tmp_path / "half" / "metrics.jsonl")


def test_unrolled_steps_leave_ds_batch_norm_statistics_alone():
    """The functional copies share nothing with D: its running statistics are restored after the unrolled calls."""
    tg.manual_seed(0)
    G, D = build_gan("dcgan", image_shape=(1, 16, 16), ngf=4, ndf=4)
    inputs = {k: Tensor(v) for k, v in G.sample_inputs(4, np.random.default_rng(1)).items()}
    real = Tensor(np.random.default_rng(2).uniform(-1, 1, (4, 1, 16, 16)).astype(np.float32))
    opt_d = optim.Adam(D.parameters())
    d_step(D, opt_d, get_loss("nonsaturating"), real, G(**inputs))
    before = {k: np.array(v) for k, v in D.named_buffers()}
    assert before
    g_step(D, optim.SGD(G.parameters(), lr=0.0), get_loss("nonsaturating"), G(**inputs), real=real, unroll=2,
           opt_d=opt_d)
    for k, v in D.named_buffers():
        np.testing.assert_array_equal(np.asarray(v), before[k], err_msg=k)


# ============================================================================ devices

def test_augment_mbstd_acgan_and_unroll_run_on_the_device(device):
    """The same draws and values on every device (the draws are made on the host), and a full step there."""
    from tinygan.backend import to_device, to_numpy
    x = np.random.default_rng(0).uniform(-1, 1, (4, 1, 16, 16)).astype(np.float32)
    on_cpu = DiffAugment("translation,cutout,color", np.random.default_rng(1))(Tensor(x)).numpy()
    there = DiffAugment("translation,cutout,color", np.random.default_rng(1))(Tensor(to_device(x, device)))
    assert there.device == device
    np.testing.assert_allclose(to_numpy(there.data), on_cpu, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(to_numpy(MinibatchStdDev()(Tensor(to_device(x, device))).data),
                               MinibatchStdDev()(Tensor(x)).numpy(), rtol=1e-6)
    tg.manual_seed(0)
    G, D = build_gan("acgan", image_shape=(1, 16, 16), ngf=4, ndf=4, num_classes=K, mbstd=True)
    G.to(device), D.to(device)
    inputs = {k: Tensor(to_device(v, device)) for k, v in G.sample_inputs(4, np.random.default_rng(2)).items()}
    aug = DiffAugment("translation,cutout,color", np.random.default_rng(3))
    real = Tensor(to_device(x, device))
    opt_d = optim.Adam(D.parameters())
    rec = d_step(D, opt_d, get_loss("hinge"), real, G(**inputs), labels=inputs["labels"], augment=aug)
    rec.update(g_step(D, optim.Adam(G.parameters()), get_loss("hinge"), G(**inputs), labels=inputs["labels"],
                      augment=aug))
    assert all(np.isfinite(float(to_numpy(v))) for v in rec.values())
    tg.manual_seed(0)
    G, D = build_gan("mlp", data_dim=2, hidden=(8,))
    G.to(device), D.to(device)
    z = Tensor(to_device(np.random.default_rng(4).normal(size=(8, 100)).astype(np.float32), device))
    real = Tensor(to_device(np.random.default_rng(5).normal(size=(8, 2)).astype(np.float32), device))
    opt_d = optim.Adam(D.parameters())
    d_step(D, opt_d, get_loss("nonsaturating"), real, G(z))
    rec = g_step(D, optim.Adam(G.parameters()), get_loss("nonsaturating"), G(z), real=real, unroll=2, opt_d=opt_d)
    assert np.isfinite(float(to_numpy(rec["Loss_G"])))


def _ranked_run(comm=None, steps=2):
    """distributed_steps.train's loop with DiffAugment, its draws cut to the rank's rows as the trainer does."""
    import contextlib

    import distributed_steps as ds
    from tinygan import functional as F
    from tinygan.run.distributed import AveragedOptimizer, RankSlice, broadcast_module_, rank_rows
    tg.manual_seed(0)
    G, D = build_gan("dcgan", image_shape=ds.SHAPE, nz=ds.NZ, ngf=8, ndf=8, num_classes=0)
    G.double(), D.double()
    opt_g, opt_d = (optim.Adam(net.parameters(), lr=1e-3, betas=(0.5, 0.999)) for net in (G, D))
    draws, data, aug_draws, rows = np.random.default_rng(1), np.random.default_rng(2), np.random.default_rng(3), \
        slice(0, ds.N)
    if comm is not None:
        opt_g, opt_d = AveragedOptimizer(opt_g, comm), AveragedOptimizer(opt_d, comm)
        draws, aug_draws, rows = RankSlice(draws, comm), RankSlice(aug_draws, comm), rank_rows(ds.N, comm)
        broadcast_module_(G, comm)
        broadcast_module_(D, comm)
    augment = DiffAugment("translation,cutout,color", aug_draws)
    for _ in range(steps):
        real = Tensor(data.uniform(-1, 1, (ds.N,) + ds.SHAPE)[rows])
        with F.sync_batch_norm(comm.allreduce_sum_) if comm is not None else contextlib.nullcontext():
            fake = G(Tensor(draws.standard_normal((real.shape[0], ds.NZ))))
            d_step(D, opt_d, get_loss("nonsaturating"), real, fake, augment=augment)
            g_step(D, opt_g, get_loss("nonsaturating"), fake, augment=augment)
    return {f"{w}/{k}": np.asarray(v, dtype=np.float64) for w, net in (("G", G), ("D", D))
            for k, v in net.state_dict().items()}


def test_diffaugment_on_two_ranks_is_one_process_in_float64():
    """With the draws cut to each rank's rows (RankSlice, as the trainer does), R ranks augment as one process."""
    import distributed_steps as ds
    alone = _ranked_run()
    ranks = ds.run_ranks(2, lambda comm: _ranked_run(comm))
    assert ds.largest_difference(alone, ranks[0]) < 1e-10
    assert ds.largest_difference(ranks[0], ranks[1]) == 0.0
