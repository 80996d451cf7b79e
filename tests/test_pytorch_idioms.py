"""PyTorch habits in tinygan: each works as in PyTorch, or fails with an error that names the tinygan way.

1. The table ``IDIOMS``: PyTorch idioms from GAN tutorials (DCGAN, WGAN, WGAN-GP, CGAN, InfoGAN),
   each written once as code over a namespace ``L`` (``L.T`` is ``torch`` or ``tinygan``, ``L.nn``,
   ``L.F``), run in both frameworks on the same numbers, results compared (values, shapes, dtypes).
   ``RAISES`` lists the idioms tinygan refuses, with the message that names its way.
2. The four silent traps, each with a test that failed before it was fixed:
   (a) ``with no_grad(): p -= lr * p.grad`` moved nothing; (b) ``p.data -= lr * p.grad`` left a
   Tensor in ``p.data``; (c) ``a == b`` compared identity; (d) ``t.max(dim=1)[0]`` took row 0.
3. The ops added for these idioms: float64 gradcheck and gradgradcheck (first and second
   derivatives against finite differences) and parity with PyTorch's forward and gradients.
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

import tinygan as tg
import tinygan.functional as F
from tinygan import nn, optim
from conftest import require_torch
from tinygan.testing import gradcheck, gradgradcheck

torch = require_torch()   # fails without PyTorch unless TINYGAN_ALLOW_NO_TORCH=1 (conftest.py)
pytestmark = pytest.mark.filterwarnings("ignore:Using padding=.same. with even kernel:UserWarning")

TG = SimpleNamespace(T=tg, nn=tg.nn, F=tg.functional, optim=tg.optim, grad=tg.grad, name="tinygan")
TORCH = SimpleNamespace(T=torch, nn=torch.nn, F=torch.nn.functional, optim=torch.optim, grad=torch.autograd.grad,
                        name="torch")

RNG = np.random.default_rng(0)
IMG = RNG.standard_normal((2, 3, 4, 4)).astype(np.float32)        # (N, C, H, W)
MAT = RNG.standard_normal((4, 5)).astype(np.float32)
MAT2 = np.where(RNG.random((4, 5)) < 0.5, MAT, RNG.standard_normal((4, 5))).astype(np.float32)
LABELS = np.array([3, 0, 2, 1])


def t(L, a, **kw):
    return L.T.tensor(a, **kw)


def weights_init(L):
    """PyTorch's DCGAN weights_init, with constants instead of draws so both frameworks agree exactly."""
    def init(m):
        classname = m.__class__.__name__
        if classname.find("Conv") != -1:
            L.nn.init.constant_(m.weight.data, 0.05)
        elif classname.find("BatchNorm") != -1:
            L.nn.init.constant_(m.weight.data, 1.5)
            L.nn.init.constant_(m.bias.data, 0)
    return init


def small_net(L):
    net = L.nn.Sequential(L.nn.Conv2d(3, 2, 3, 1, 1, bias=False), L.nn.BatchNorm2d(2), L.nn.LeakyReLU(0.2, True))
    net.apply(weights_init(L))
    return net


def no_grad_decorated(L):
    @L.T.no_grad
    def generate(x):
        return x * 2
    return generate(t(L, MAT, requires_grad=True)).requires_grad


def manual_sgd(L):
    """Trap (a) as an idiom: the parameters move by lr * grad."""
    w = L.nn.Parameter(t(L, MAT))
    (w * w).sum().backward()
    with L.T.no_grad():
        for p in [w]:
            p -= 0.1 * p.grad
    return w


def p_data_update(L):
    """Trap (b) as an idiom: the update lands, and the layer still runs."""
    conv = L.nn.Conv2d(3, 2, 3, bias=False)
    L.nn.init.constant_(conv.weight.data, 0.1)
    x = t(L, IMG)
    conv(x).sum().backward()
    for p in conv.parameters():
        p.data -= 0.01 * p.grad
    return conv(x)


def wgan_gp_penalty(L):
    """The WGAN-GP reference's penalty block (Gulrajani et al., gradient_penalty), weights fixed."""
    D = L.nn.Sequential(L.nn.Linear(5, 8), L.nn.Tanh(), L.nn.Linear(8, 1))
    for m in D.modules():
        if m.__class__.__name__ == "Linear":
            L.nn.init.constant_(m.weight.data, 0.3)
            L.nn.init.constant_(m.bias.data, 0.1)
    real, fake = t(L, MAT), t(L, MAT2)
    alpha = t(L, np.linspace(0, 1, 4, dtype=np.float32).reshape(4, 1)).expand_as(real)
    interpolates = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    d = D(interpolates)
    gradients = L.grad(outputs=d, inputs=interpolates, grad_outputs=L.T.ones(d.size()), create_graph=True,
                       retain_graph=True, only_inputs=True)[0]
    penalty = ((gradients.view(gradients.size(0), -1).norm(2, dim=1) - 1) ** 2).mean() * 10
    penalty.backward()
    return penalty, D[0].weight.grad


def cgan_labels(L):
    L.T.manual_seed(0)
    labels = L.T.randint(0, 10, (64,))
    onehot = L.T.eye(10)[labels]
    return labels.dtype == L.T.long, bool(((labels >= 0) & (labels < 10)).all()), onehot.sum(1)


def dcgan_labels(L):
    label = L.T.full((4,), 1.0, dtype=L.T.float)
    label.fill_(0.0)
    return label, L.T.full((2,), 1).dtype == L.T.long


def wgan_clip(L):
    p = L.nn.Parameter(t(L, MAT))
    with L.T.no_grad():
        p.clamp_(-0.01, 0.01)
    return p, L.T.is_grad_enabled()


def wgan_clip_through_data(L):
    """The WGAN reference's clipping: ``for p in netD.parameters(): p.data.clamp_(lower, upper)``."""
    D = L.nn.Linear(5, 4)
    L.nn.init.constant_(D.weight.data, 0.5)
    for p in D.parameters():
        p.data.clamp_(-0.01, 0.01)
    return D.weight, D.bias.abs().max() <= 0.01


def dcgan_init_through_data(L):
    """PyTorch's DCGAN weights_init, verbatim: ``m.weight.data.normal_(0.0, 0.02)`` and ``m.bias.data.fill_(0)``."""
    def init(m):
        classname = m.__class__.__name__
        if classname.find("Conv") != -1:
            m.weight.data.normal_(0.0, 0.02)
        elif classname.find("BatchNorm") != -1:
            m.weight.data.normal_(1.0, 0.02)
            m.bias.data.fill_(0)
    net = L.nn.Sequential(L.nn.Conv2d(64, 64, 4, bias=False), L.nn.BatchNorm2d(512))
    net.apply(init)
    w, g, b = net[0].weight, net[1].weight, net[1].bias
    return (abs(float(w.detach().std()) - 0.02) < 0.001, abs(float(g.detach().mean()) - 1.0) < 0.005,
            float(b.detach().abs().max()),
            w.requires_grad, w.is_leaf)


def data_inplace_chain(L):
    """``.data``'s other in-place methods, as EMA and init code use them."""
    w = L.nn.Parameter(t(L, MAT))
    w.data.mul_(0.5).add_(t(L, MAT2), alpha=2)
    w.data.sub_(t(L, MAT2)).div_(2)
    v = L.nn.Parameter(t(L, MAT2))
    v.data.copy_(w.data)
    u = L.nn.Parameter(t(L, MAT))
    u.data.zero_()
    u.data += 1
    u.data *= 3
    return w, v, u


def infogan_accuracy(L):
    logits = t(L, MAT[:, :4])
    return (logits.argmax(1) == t(L, LABELS)).float().mean()


# name -> code over L (both frameworks run it; results must agree)
IDIOMS = {
    "x.view(x.size(0), -1)": lambda L: t(L, IMG).view(t(L, IMG).size(0), -1),
    "x.reshape(-1)": lambda L: t(L, IMG).reshape(-1),
    "x.size(), x.shape, x.dim(), x.numel()": lambda L: (tuple(t(L, IMG).size()), tuple(t(L, IMG).shape),
                                                        t(L, IMG).dim(), t(L, IMG).numel()),
    "x.mean(dim=(1, 2, 3))": lambda L: t(L, IMG).mean(dim=(1, 2, 3)),
    "x.sum(dim=1, keepdim=True)": lambda L: t(L, IMG).sum(dim=1, keepdim=True),
    "x.std() (unbiased)": lambda L: t(L, MAT).std(),
    "x.std(dim=0, unbiased=False)": lambda L: t(L, MAT).std(dim=0, unbiased=False),
    "x.var(dim=1, keepdim=True)": lambda L: t(L, MAT).var(dim=1, keepdim=True),
    "x.max()": lambda L: t(L, MAT).max(),
    "x.max(dim=1)[0]": lambda L: t(L, MAT).max(dim=1)[0],
    "x.max(1).indices": lambda L: t(L, MAT).max(1).indices,
    "values, idx = x.min(dim=0, keepdim=True)": lambda L: tuple(t(L, MAT).min(dim=0, keepdim=True)),
    "x.argmax(dim=1), x.argmin()": lambda L: (t(L, MAT).argmax(dim=1), t(L, MAT).argmin()),
    "a == b": lambda L: t(L, MAT) == t(L, MAT2),
    "(a != b).float().mean()": lambda L: (t(L, MAT) != t(L, MAT2)).float().mean(),
    "(logits.argmax(1) == labels).float().mean()": infogan_accuracy,
    "x.norm(2, dim=1)": lambda L: t(L, MAT).norm(2, dim=1),
    "x.norm()": lambda L: t(L, MAT).norm(),
    "x.clone()": lambda L: t(L, MAT).clone(),
    "x.pow(2), x ** 3": lambda L: (t(L, MAT).pow(2), t(L, MAT) ** 3),
    "x.clamp(min=0), torch.clamp(x, -0.5, 0.5)": lambda L: (t(L, MAT).clamp(min=0), L.T.clamp(t(L, MAT), -0.5, 0.5)),
    "x.chunk(2, dim=1)": lambda L: t(L, MAT).chunk(2, dim=1),
    "x.split([2, 3], dim=1)": lambda L: t(L, MAT).split([2, 3], dim=1),
    "x.repeat(2, 1, 1, 1)": lambda L: t(L, IMG).repeat(2, 1, 1, 1),
    "alpha.expand_as(real)": lambda L: t(L, IMG[:, :1, :1, :1]).expand_as(t(L, IMG)),
    "x.permute(0, 2, 3, 1).contiguous().view(-1, 3)": lambda L: t(L, IMG).permute(0, 2, 3, 1).contiguous().view(-1, 3),
    "x.t(), x.mm(w), torch.matmul": lambda L: (t(L, MAT).t(), t(L, MAT).mm(t(L, MAT).t()),
                                               L.T.matmul(t(L, MAT), t(L, MAT).t())),
    "x.unsqueeze(1).squeeze(1)": lambda L: t(L, MAT).unsqueeze(1).squeeze(1),
    "torch.cat([a, b], 1), torch.stack": lambda L: (L.T.cat([t(L, MAT), t(L, MAT2)], 1),
                                                    L.T.stack([t(L, MAT), t(L, MAT2)])),
    "label = full((N,), 1.0, dtype=torch.float); label.fill_(0)": dcgan_labels,
    "torch.arange(5), torch.arange(0, 1, 0.25)": lambda L: (L.T.arange(5), L.T.arange(0, 1, 0.25)),
    "zeros_like, ones(x.size()), full_like": lambda L: (L.T.zeros_like(t(L, MAT)), L.T.ones(t(L, MAT).size()),
                                                        L.T.full_like(t(L, MAT), 7.0)),
    "randint labels, eye(10)[labels]": cgan_labels,
    "torch.from_numpy shares memory": lambda L: (lambda a: (L.T.from_numpy(a).add_(1), a)[1])(MAT.copy()),
    "randn_like / rand_like shapes and dtypes": lambda L: (L.T.randn_like(t(L, MAT)).shape,
                                                          L.T.rand_like(t(L, MAT)).dtype == L.T.float32),
    "x.float(), x.double(), labels.long(), x.to(torch.float64)": lambda L: (
        t(L, LABELS).float(), t(L, MAT).double(), t(L, MAT).long(), t(L, MAT).to(L.T.float64)),
    "torch.mean(x), torch.log(x.abs() + 1), torch.max(a, b)": lambda L: (
        L.T.mean(t(L, MAT)), L.T.log(t(L, MAT).abs() + 1), L.T.max(t(L, MAT), t(L, MAT2))),
    "torch.max(x, 1) (values, indices)": lambda L: tuple(L.T.max(t(L, MAT), 1)),
    "x.add(y, alpha=2), x.sub(y), x.mul(y), x.div(2)": lambda L: (
        t(L, MAT).add(t(L, MAT2), alpha=2), t(L, MAT).sub(t(L, MAT2)), t(L, MAT).mul(t(L, MAT2)), t(L, MAT).div(2)),
    "F.softmax(x, dim=1), F.log_softmax(x, 1)": lambda L: (L.F.softmax(t(L, MAT), dim=1),
                                                           L.F.log_softmax(t(L, MAT), 1)),
    "F.pad(x, (1, 1, 2, 0)), reflect": lambda L: (L.F.pad(t(L, IMG), (1, 1, 2, 0)),
                                                  L.F.pad(t(L, IMG), (1, 2, 3, 0), mode="reflect")),
    "F.interpolate(x, scale_factor=2)": lambda L: L.F.interpolate(t(L, IMG), scale_factor=2),
    "F.interpolate(bilinear, align_corners)": lambda L: (
        L.F.interpolate(t(L, IMG), size=(7, 5), mode="bilinear", align_corners=False),
        L.F.interpolate(t(L, IMG), scale_factor=1.5, mode="bilinear", align_corners=True)),
    "nn.Upsample(scale_factor=2)": lambda L: L.nn.Upsample(scale_factor=2, mode="nearest")(t(L, IMG)),
    "nn.Conv2d(..., padding='same') with an even kernel": lambda L: (
        lambda c: (L.nn.init.constant_(c.weight.data, 0.1), L.nn.init.constant_(c.bias.data, 0), c(t(L, IMG)))[2])(
        L.nn.Conv2d(3, 2, 4, padding="same")),
    "nn.BCELoss()(D(x).sigmoid(), label)": lambda L: L.nn.BCELoss()(t(L, MAT).sigmoid(), (t(L, MAT2) > 0).float()),
    "nn.BCEWithLogitsLoss()": lambda L: L.nn.BCEWithLogitsLoss()(t(L, MAT) * 10, (t(L, MAT2) > 0).float()),
    "nn.MSELoss(reduction='sum' / 'none')": lambda L: (L.nn.MSELoss(reduction="sum")(t(L, MAT), t(L, MAT2)),
                                                      L.nn.MSELoss(reduction="none")(t(L, MAT), t(L, MAT2))),
    "nn.CrossEntropyLoss()(logits, labels)": lambda L: L.nn.CrossEntropyLoss()(t(L, MAT), t(L, LABELS)),
    "F.leaky_relu(x, 0.2, inplace=True)": lambda L: L.F.leaky_relu(t(L, MAT), 0.2, inplace=True),
    "net.apply(weights_init)": lambda L: small_net(L)(t(L, IMG)),
    "@torch.no_grad (no parentheses)": no_grad_decorated,
    "with no_grad(): p -= lr * p.grad": manual_sgd,
    "p.data -= lr * p.grad": p_data_update,
    "for p in D.parameters(): p.data.clamp_(-c, c) (WGAN)": wgan_clip_through_data,
    "m.weight.data.normal_(0.0, 0.02); m.bias.data.fill_(0) (DCGAN)": dcgan_init_through_data,
    "p.data.mul_().add_(), copy_, zero_, +=, *=": data_inplace_chain,
    "fake.data.cpu().numpy(), p.data.numpy()": lambda L: (
        (L.nn.Linear(5, 3).weight.data.cpu().numpy().shape, type(t(L, MAT).data.cpu().numpy()).__name__,
         t(L, MAT).data.numpy())),
    "WGAN-GP: grad(..., only_inputs=True), norm(2, dim=1)": wgan_gp_penalty,
    "x.item(), float(x.mean()), x.detach().cpu().numpy()": lambda L: (
        t(L, MAT).sum().item(), float(t(L, MAT).mean()), t(L, MAT).detach().cpu().numpy()),
    "net.double(), net.float()": lambda L: (next(L.nn.Linear(2, 2).double().parameters()).dtype == L.T.float64,
                                            next(L.nn.Linear(2, 2).double().float().parameters()).dtype == L.T.float32),
    "with no_grad(): p.clamp_(-c, c) (WGAN clipping)": lambda L: wgan_clip(L),
    "nn.utils.spectral_norm(nn.Linear(...)) (SNGAN)": lambda L: (
        lambda m: (L.nn.init.constant_(m.weight_orig.data, 0.1), L.nn.init.constant_(m.bias.data, 0),
                   sorted(k for k, _ in m.named_parameters()), m(t(L, MAT)))[2:])(
        L.nn.utils.spectral_norm(L.nn.Linear(5, 3))),
    "ema: p_ema.mul_(0.9).add_(p, alpha=0.1)": lambda L: t(L, MAT).mul_(0.9).add_(t(L, MAT2), alpha=0.1),
}

# name -> (tinygan code, exception, message naming the tinygan way).  PyTorch runs these (or refuses too).
RAISES = {
    "F.interpolate(mode='bicubic')": (lambda: F.interpolate(tg.tensor(IMG), scale_factor=2, mode="bicubic"),
                                      ValueError, "interpolate: mode must be 'nearest' or 'bilinear'"),
    "p -= lr * p.grad outside no_grad": (lambda: nn.Parameter(MAT).__isub__(1.0), RuntimeError,
                                         r"a leaf Variable that requires grad.*with tinygan.no_grad\(\)"),
    "p.data = [list]": (lambda: setattr(nn.Parameter(MAT), "data", MAT.tolist()), TypeError,
                        r"Tensor.data: expected a NumPy/CuPy array.*t.copy_\(values\)"),
    "nn.Conv2d(padding='same', stride=2)": (lambda: nn.Conv2d(3, 2, 3, stride=2, padding="same"), ValueError,
                                            "padding='same' is not supported for strided convolutions"),
    "if a == b: (several elements)": (lambda: bool(tg.tensor(MAT) == tg.tensor(MAT2)), ValueError,
                                      r"ambiguous; use \(t == u\).all\(\).*`t is u`"),
    "torch.mean(array)": (lambda: tg.mean(MAT), TypeError, "tinygan.mean: expected a Tensor.*tinygan.tensor"),
    "x.max(dim=(0, 1))": (lambda: tg.tensor(MAT).max(dim=(0, 1)), TypeError, r"max: dim must be an int.*amax"),
    "grad(only_inputs=False)": (lambda: tg.grad(tg.tensor(MAT, requires_grad=True).sum(),
                                                tg.tensor(MAT, requires_grad=True), only_inputs=False),
                                ValueError, "only_inputs=False is not supported"),
}


def to_numpy(v):
    """A comparable form of a result: arrays for tensors (dtype kept), lists for tuples, the rest as is."""
    if isinstance(v, torch.Tensor):
        return v.detach().numpy()
    if isinstance(v, tg.Tensor):
        return v.numpy()
    if isinstance(v, (tuple, list)):
        return [to_numpy(x) for x in v]
    return v


def assert_same(a, b, where: str):
    if isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), f"{where}: {a!r} vs {b!r}"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray), f"{where}: tinygan gave {type(a).__name__}, torch {type(b).__name__}"
        assert a.dtype == b.dtype and a.shape == b.shape, f"{where}: {a.dtype}{a.shape} vs {b.dtype}{b.shape}"
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=where)
    elif isinstance(a, float):
        assert a == pytest.approx(b, rel=1e-5, abs=1e-6), where
    else:
        assert a == b, f"{where}: tinygan {a!r} vs torch {b!r}"


def test_the_table_is_long_enough():
    assert len(IDIOMS) + len(RAISES) >= 40


@pytest.mark.parametrize("name", IDIOMS)
def test_idiom_gives_torchs_result(name):
    code = IDIOMS[name]
    ours, theirs = to_numpy(code(TG)), to_numpy(code(TORCH))
    assert_same(ours, theirs, name)


@pytest.mark.parametrize("name", RAISES)
def test_idiom_raises_an_error_naming_the_tinygan_way(name):
    call, exc, match = RAISES[name]
    with pytest.raises(exc, match=match):
        call()


# ---------------------------------------------------------------------------
# the four silent traps (each of these failed before its fix)
# ---------------------------------------------------------------------------

def test_trap_a_no_grad_minus_equals_moves_the_parameters():
    D = nn.Linear(3, 2)
    D(tg.randn(4, 3)).sum().backward()
    before = [p.numpy().copy() for p in D.parameters()]
    with tg.no_grad():
        for p in D.parameters():
            p -= 0.1 * p.grad                           # used to rebind the loop variable: a step of exactly 0
    for p, b in zip(D.parameters(), before):
        np.testing.assert_allclose(p.numpy(), b - 0.1 * p.grad.numpy(), rtol=1e-6)
        assert p.is_leaf and p.requires_grad


def test_trap_b_p_data_minus_equals_keeps_an_array():
    conv = nn.Conv2d(1, 2, 3)
    x = tg.randn(2, 1, 5, 5)
    conv(x).sum().backward()
    arrays = [p._data for p in conv.parameters()]
    expected = [p.numpy() - 0.1 * p.grad.numpy() for p in conv.parameters()]
    for p in conv.parameters():
        p.data -= 0.1 * p.grad                          # used to leave a Tensor in p.data
    for p, a, e in zip(conv.parameters(), arrays, expected):
        assert type(p._data) is np.ndarray and p._data is a      # the same array, written in place
        assert isinstance(p.data, np.ndarray)
        np.testing.assert_allclose(p.numpy(), e, rtol=1e-6)
    conv(x).sum().backward()                            # which crashed here, deep in kernels/conv.py


def test_data_is_an_array_with_torchs_inplace_methods():
    """``p.data`` on the CPU: a NumPy view of p's memory; NumPy maths on it gives plain arrays."""
    p = nn.Parameter(tg.tensor(MAT))
    d = p.data
    assert isinstance(d, np.ndarray) and np.shares_memory(d, p._data)
    for value in (d * 2, d + d, np.exp(d), d.sum(axis=0), d - MAT):
        assert type(value) is np.ndarray
    assert d.clamp_(-0.1, 0.1) is d                     # returns itself, as torch's methods do
    assert d.cpu() is d and type(d.numpy()) is np.ndarray and np.shares_memory(d.numpy(), p._data)
    np.testing.assert_array_equal(p.numpy(), np.clip(MAT, -0.1, 0.1))
    assert type(tg.Tensor(p.data)._data) is np.ndarray and np.shares_memory(tg.Tensor(p.data)._data, p._data)
    q = nn.Parameter(tg.tensor(MAT2))
    q.data = p.data                                     # shares p's memory, as in torch
    assert type(q._data) is np.ndarray and np.shares_memory(q._data, p._data)


def test_writes_through_data_stop_a_stale_backward():
    """Each write through ``.data`` bumps the memory's version: a graph that saved the old values refuses to
    backward (PyTorch's ``.data`` escapes its version counter and would give a wrong gradient)."""
    for write in (lambda d: d.mul_(2), lambda d: d.clamp_(-0.1, 0.1), lambda d: d.normal_(),
                  lambda d: d.__isub__(1.0), lambda d: np.add(d, 1.0, out=d), lambda d: d.__setitem__(0, 5.0),
                  lambda d: d[1:].__setitem__(Ellipsis, 0.0)):
        x = tg.tensor(MAT, requires_grad=True)
        y = (x * x).sum()
        version = x._version
        write(x.data)
        assert x._version > version
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            y.backward()


def test_trap_c_equality_is_element_wise():
    a, b = tg.tensor([1.0, 2.0, 3.0]), tg.tensor([1.0, 0.0, 3.0])
    eq = a == b                                         # used to be False (identity)
    assert isinstance(eq, tg.Tensor) and eq.dtype == np.bool_ and eq.tolist() == [True, False, True]
    assert (a != b).tolist() == [False, True, False]
    assert (a == 1.0).tolist() == [True, False, False]
    assert len({a, b}) == 2 and {a: 1}[a] == 1          # still hashable, by identity


def test_trap_d_max_over_a_dim_returns_values_and_indices():
    x = tg.tensor([[1.0, 5.0, 2.0], [7.0, 0.0, 3.0]])
    values, indices = x.max(dim=1)                      # x.max(dim=1)[0] used to be row 0 of the values
    assert values.tolist() == [5.0, 7.0] and indices.tolist() == [1, 0]
    assert x.max(dim=1)[0].tolist() == [5.0, 7.0] and x.max(1).values.tolist() == [5.0, 7.0]
    assert x.min(dim=0).indices.tolist() == [0, 1, 0]
    assert x.max().item() == 7.0 and x.max(axis=1).tolist() == [5.0, 7.0]     # no dim / NumPy's axis: values


def test_the_engine_never_compares_tensors_with_eq(monkeypatch, tmp_path):
    """``==`` is element-wise now: nothing inside tinygan may use it (or ``in``, ``index``) on tensors."""
    def refuse(self, other):
        raise AssertionError("tinygan compared tensors with ==")
    monkeypatch.setattr(tg.Tensor, "__eq__", refuse)
    monkeypatch.setattr(tg.Tensor, "__ne__", refuse)
    from tinygan.run import TrainConfig, train
    trainer = train(TrainConfig(model="mlp", dataset="ring8", loss="wgan-gp", steps=2, batch_size=16, nz=4,
                                out=str(tmp_path / "run"), progress=False, sample_every=2, checkpoint_every=2))
    G = trainer.G
    opt = optim.Adam([{"params": G.parameters()}], lr=1e-3)
    opt.load_state_dict(opt.state_dict())
    G.load_state_dict(G.state_dict())
    with nn.frozen(G.parameters()):
        pass


# ---------------------------------------------------------------------------
# the new ops: float64 gradients (first and second order) and parity with PyTorch
# ---------------------------------------------------------------------------

def _x(*shape, seed=1, lo=0.3):
    """float64 values with |x| >= lo and distinct (no ties for max/min, no kink of abs at 0)."""
    rng = np.random.default_rng(seed)
    mags = lo + np.linspace(0, 1, int(np.prod(shape)))
    rng.shuffle(mags)
    return (rng.choice([-1.0, 1.0], size=mags.size) * mags).reshape(shape)


TW, TT = tg.functional, torch.nn.functional

# name -> (tinygan fn, torch fn, input arrays); each fn takes the inputs as tensors of its framework
OPS = {
    "norm2 dim": (lambda x: x.norm(2, dim=1, keepdim=True), lambda x: x.norm(2, dim=1, keepdim=True), [_x(3, 4)]),
    "norm2 all": (lambda x: x.norm(), lambda x: x.norm(), [_x(2, 3)]),
    "norm1": (lambda x: x.norm(1, dim=0), lambda x: x.norm(1, dim=0), [_x(3, 4)]),
    "norm3": (lambda x: x.norm(3, dim=1), lambda x: x.norm(3, dim=1), [_x(3, 4)]),
    "std": (lambda x: x.std(dim=1), lambda x: x.std(dim=1), [_x(3, 4)]),
    "std all biased": (lambda x: x.std(unbiased=False), lambda x: x.std(unbiased=False), [_x(3, 4)]),
    "clone": (lambda x: x.clone() * x, lambda x: x.clone() * x, [_x(3, 2)]),
    "pow": (lambda x: x.abs().pow(1.5), lambda x: x.abs().pow(1.5), [_x(3, 2)]),
    "max dim": (lambda x: x.max(dim=1)[0], lambda x: x.max(dim=1)[0], [_x(3, 4)]),
    "min dim keepdim": (lambda x: x.min(0, keepdim=True).values, lambda x: x.min(0, keepdim=True).values, [_x(3, 4)]),
    "amax amin": (lambda x: x.amax(dim=(0, 2)) * x.amin(dim=1).sum(),
                  lambda x: x.amax(dim=(0, 2)) * x.amin(dim=1).sum(), [_x(2, 3, 2)]),
    "maximum minimum": (lambda a, b: tg.maximum(a, b) * tg.minimum(a, b), lambda a, b: torch.maximum(a, b) *
                        torch.minimum(a, b), [_x(3, 4), _x(3, 4, seed=2) * 1.01]),
    "chunk": (lambda x: x.chunk(3, dim=1)[1] * x.chunk(3, dim=1)[2], lambda x: x.chunk(3, dim=1)[1] *
              x.chunk(3, dim=1)[2], [_x(2, 6)]),
    "split": (lambda x: tg.cat(x.split([1, 3], 1)[::-1], 1) ** 2, lambda x: torch.cat(x.split([1, 3], 1)[::-1], 1) ** 2,
              [_x(2, 4)]),
    "repeat": (lambda x: x.repeat(2, 1, 3) ** 2, lambda x: x.repeat(2, 1, 3) ** 2, [_x(3, 2)]),
    "expand_as": (lambda x, y: x.expand_as(y) * y, lambda x, y: x.expand_as(y) * y, [_x(2, 1, 1), _x(2, 3, 2)]),
    "softmax": (lambda x: TW.softmax(x, dim=1), lambda x: TT.softmax(x, dim=1), [_x(3, 4)]),
    "log_softmax": (lambda x: TW.log_softmax(x, dim=0), lambda x: TT.log_softmax(x, dim=0), [_x(3, 4)]),
    "pad constant crop": (lambda x: TW.pad(x, (1, -1, 2, 0), value=0.5), lambda x: TT.pad(x, (1, -1, 2, 0), value=0.5),
                          [_x(1, 2, 3, 4)]),
    "pad reflect": (lambda x: TW.pad(x, (2, 1, 1, 2), mode="reflect"),
                    lambda x: TT.pad(x, (2, 1, 1, 2), mode="reflect"), [_x(1, 2, 3, 4)]),
    "pad replicate": (lambda x: TW.pad(x, (2, 1, 1, 2), mode="replicate"),
                      lambda x: TT.pad(x, (2, 1, 1, 2), mode="replicate"), [_x(1, 2, 3, 4)]),
    "pad circular": (lambda x: TW.pad(x, (2, 1, 1, 2), mode="circular"),
                     lambda x: TT.pad(x, (2, 1, 1, 2), mode="circular"), [_x(1, 2, 3, 4)]),
    "interpolate nearest x2": (lambda x: TW.interpolate(x, scale_factor=2) ** 2,
                               lambda x: TT.interpolate(x, scale_factor=2) ** 2, [_x(1, 2, 2, 3)]),
    "interpolate nearest size": (lambda x: TW.interpolate(x, size=(3, 5)) ** 2,
                                 lambda x: TT.interpolate(x, size=(3, 5)) ** 2, [_x(1, 2, 4, 3)]),
    "interpolate bilinear": (lambda x: TW.interpolate(x, scale_factor=1.7, mode="bilinear", align_corners=False) ** 2,
                             lambda x: TT.interpolate(x, scale_factor=1.7, mode="bilinear", align_corners=False) ** 2,
                             [_x(1, 2, 3, 3)]),
    "interpolate bilinear corners": (
        lambda x: TW.interpolate(x, size=(5, 2), mode="bilinear", align_corners=True) ** 2,
        lambda x: TT.interpolate(x, size=(5, 2), mode="bilinear", align_corners=True) ** 2, [_x(1, 2, 3, 4)]),
    "conv2d same, even kernel": (lambda x, w: TW.conv2d(x, w, padding="same"),
                                 lambda x, w: TT.conv2d(x, w, padding="same"),
                                 [_x(1, 2, 4, 5), _x(3, 2, 2, 3, seed=3)]),
    "setitem in the graph": (lambda x, v: _setitem(x * 1.0, v) ** 2, lambda x, v: _setitem(x * 1.0, v) ** 2,
                             [_x(3, 4), _x(4, seed=4)]),
}


def _setitem(h, v):
    h[1] = v
    return h


@pytest.mark.parametrize("name", OPS)
def test_new_op_gradcheck_first_and_second_order(name):
    fn, _, arrays = OPS[name]
    inputs = [tg.tensor(a, requires_grad=True) for a in arrays]
    assert gradcheck(fn, inputs)
    assert gradgradcheck(fn, inputs)


@pytest.mark.parametrize("name", OPS)
def test_new_op_matches_torch(name):
    fn, torch_fn, arrays = OPS[name]
    ours = [tg.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    y, ty = fn(*ours), torch_fn(*theirs)
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-12, atol=1e-12, err_msg=name)
    r = np.random.default_rng(5).standard_normal(y.shape)
    (y * tg.tensor(r)).sum().backward()
    (ty * torch.tensor(r)).sum().backward()
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=name)


def test_norm_has_a_zero_gradient_at_zero(torch):
    x, tx = tg.zeros(2, 3, requires_grad=True, dtype=np.float64), torch.zeros(2, 3, requires_grad=True,
                                                                             dtype=torch.float64)
    x.norm(dim=1).sum().backward()
    tx.norm(dim=1).sum().backward()
    assert np.array_equal(x.grad.numpy(), tx.grad.numpy()) and np.isfinite(x.grad.numpy()).all()


def test_max_dim_sends_the_gradient_to_the_index_only():
    x = tg.tensor([[2.0, 2.0, 1.0]], requires_grad=True)   # a tie: PyTorch picks one index
    tx = torch.tensor([[2.0, 2.0, 1.0]], requires_grad=True)
    x.max(dim=1).values.sum().backward()
    tx.max(dim=1).values.sum().backward()
    assert x.grad.tolist() == tx.grad.tolist() == [[1.0, 0.0, 0.0]]


@pytest.mark.parametrize("name", OPS)
def test_new_op_on_the_device_matches_the_cpu(device, name):
    fn, _, arrays = OPS[name]
    results = []
    for dev in ("cpu", device):
        xs = [tg.tensor(a, requires_grad=True, device=dev) for a in arrays]
        y = fn(*xs)
        r = tg.tensor(np.random.default_rng(5).standard_normal(y.shape), device=dev)
        (y * r).sum().backward()
        assert y.device == dev
        results.append([y.numpy()] + [x.grad.numpy() for x in xs])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12, err_msg=name)


def test_max_min_and_comparisons_on_the_device(device):
    x = tg.tensor(MAT, device=device)
    values, indices = x.max(dim=1)
    assert values.device == device and values.tolist() == MAT.max(1).tolist()
    assert indices.tolist() == MAT.argmax(1).tolist() and x.min(0).indices.tolist() == MAT.argmin(0).tolist()
    assert (x == tg.tensor(MAT2, device=device)).tolist() == (MAT == MAT2).tolist()
    assert ((x > 0) & (x < 1)).tolist() == ((MAT > 0) & (MAT < 1)).tolist()
