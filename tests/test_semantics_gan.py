"""GAN objectives, InfoGAN's L_I, the penalties and the step helpers against their equations,
written out here in NumPy (torch-free).

tests/test_losses.py and tests/test_steps.py check the same objects through whole models; the
cases here are the small ones a mutation run showed untested (docs/testing.md, "Mutation
testing"): the dtype and input-type handling of ``info_loss``, which terms it adds when only one
code is present, the penalty's weight as ``d_step`` passes it, ``grad_sq_sum`` with no gradient,
an unconditional D that takes no ``labels`` argument, and the error messages.
"""
from __future__ import annotations

import numpy as np
import pytest

import tinygan
from tinygan import optim
from tinygan.gan import d_step, get_loss, info_loss
from tinygan.gan.losses import LOSSES, Hinge, Minimax, NonSaturating, WGAN, WGANGP
from tinygan.gan.penalties import gradient_penalty, r1_penalty, weight_clip_
from tinygan.gan.steps import grad_sq_sum

ALL = sorted(LOSSES) + ["lsgan-pearson"]


def sigmoid(t):
    return 1.0 / (1.0 + np.exp(-t))


def softplus(t):
    return np.log1p(np.exp(t))


# name -> (L_D(lr, lf), dL_D/dlr, dL_D/dlf, L_G(lf), dL_G/dlf), each for (N,) logits and their mean over N
EQUATIONS = {
    "nonsaturating": (lambda r, f: np.mean(softplus(-r)) + np.mean(softplus(f)),
                      lambda r, f: -sigmoid(-r) / r.size, lambda r, f: sigmoid(f) / f.size,
                      lambda f: np.mean(softplus(-f)), lambda f: -sigmoid(-f) / f.size),
    "minimax": (lambda r, f: np.mean(softplus(-r)) + np.mean(softplus(f)),
                lambda r, f: -sigmoid(-r) / r.size, lambda r, f: sigmoid(f) / f.size,
                lambda f: -np.mean(softplus(f)), lambda f: -sigmoid(f) / f.size),
    "lsgan": (lambda r, f: 0.5 * np.mean((r - 1) ** 2) + 0.5 * np.mean(f ** 2),
              lambda r, f: (r - 1) / r.size, lambda r, f: f / f.size,
              lambda f: 0.5 * np.mean((f - 1) ** 2), lambda f: (f - 1) / f.size),
    "lsgan-pearson": (lambda r, f: 0.5 * np.mean((r - 1) ** 2) + 0.5 * np.mean((f + 1) ** 2),
                      lambda r, f: (r - 1) / r.size, lambda r, f: (f + 1) / f.size,
                      lambda f: 0.5 * np.mean(f ** 2), lambda f: f / f.size),
    "wgan": (lambda r, f: np.mean(f) - np.mean(r), lambda r, f: -np.ones_like(r) / r.size,
             lambda r, f: np.ones_like(f) / f.size, lambda f: -np.mean(f), lambda f: -np.ones_like(f) / f.size),
    "hinge": (lambda r, f: np.mean(np.maximum(0, 1 - r)) + np.mean(np.maximum(0, 1 + f)),
              lambda r, f: -(r < 1).astype(float) / r.size, lambda r, f: (f > -1).astype(float) / f.size,
              lambda f: -np.mean(f), lambda f: -np.ones_like(f) / f.size),
}
EQUATIONS["wgan-gp"] = EQUATIONS["wgan"]
EQUATIONS["dragan"] = EQUATIONS["nonsaturating"]    # its penalty is d_step's (test_steps.py)
# The relativistic losses (Jolicoeur-Martineau 2019): L_G and its gradient take (lf, lr); m = mean over the batch.
EQUATIONS["rsgan"] = (lambda r, f: np.mean(softplus(f - r)), lambda r, f: -sigmoid(f - r) / r.size,
                      lambda r, f: sigmoid(f - r) / f.size,
                      lambda f, r: np.mean(softplus(r - f)), lambda f, r: -sigmoid(r - f) / f.size)
EQUATIONS["ragan"] = (
    lambda r, f: np.mean(softplus(f.mean() - r)) + np.mean(softplus(f - r.mean())),
    lambda r, f: (-sigmoid(f.mean() - r) - np.mean(sigmoid(f - r.mean()))) / r.size,
    lambda r, f: (np.mean(sigmoid(f.mean() - r)) + sigmoid(f - r.mean())) / f.size,
    lambda f, r: np.mean(softplus(r.mean() - f)) + np.mean(softplus(r - f.mean())),
    lambda f, r: (-sigmoid(r.mean() - f) - np.mean(sigmoid(r - f.mean()))) / f.size)
EQUATIONS["ralsgan"] = (
    lambda r, f: np.mean((r - f.mean() - 1) ** 2) + np.mean((f - r.mean() + 1) ** 2),
    lambda r, f: (2 * (r - f.mean() - 1) - 2 * np.mean(f - r.mean() + 1)) / r.size,
    lambda r, f: (-2 * np.mean(r - f.mean() - 1) + 2 * (f - r.mean() + 1)) / f.size,
    lambda f, r: np.mean((f - r.mean() - 1) ** 2) + np.mean((r - f.mean() + 1) ** 2),
    lambda f, r: (2 * (f - r.mean() - 1) - 2 * np.mean(r - f.mean() + 1)) / f.size)


@pytest.mark.parametrize("name", ALL)
def test_each_loss_is_its_equation_with_its_logit_gradients(name):
    rng = np.random.default_rng(len(name))
    r, f = rng.uniform(-3, 3, 7), rng.uniform(-3, 3, 7)
    L_D, dr, df, L_G, dg = EQUATIONS[name]
    loss = get_loss(name)
    tr, tf = tinygan.tensor(r, requires_grad=True), tinygan.tensor(f, requires_grad=True)
    d = loss.d_loss(tr, tf)
    np.testing.assert_allclose(d.item(), L_D(r, f), rtol=1e-12)
    gr, gf = tinygan.grad(d, [tr, tf])
    np.testing.assert_allclose(gr.numpy(), dr(r, f), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(gf.numpy(), df(r, f), rtol=1e-12, atol=1e-15)
    tf = tinygan.tensor(f, requires_grad=True)
    g_args = (f, r) if loss.relativistic else (f,)                  # relativistic: L_G compares with l(x)
    g = loss.g_loss(tf, tinygan.tensor(r)) if loss.relativistic else loss.g_loss(tf)
    np.testing.assert_allclose(g.item(), L_G(*g_args), rtol=1e-12)
    np.testing.assert_allclose(tinygan.grad(g, tf)[0].numpy(), dg(*g_args), rtol=1e-12, atol=1e-15)


def test_loss_reprs():
    for cls in (NonSaturating, Minimax, WGAN, WGANGP, Hinge):
        assert repr(cls()) == f"{cls.__name__}()"
    assert repr(get_loss("lsgan-pearson")) == "LSGAN(a=-1, b=1, c=0)"


# ---------------------------------------------------------------------------- InfoGAN's L_I

def _q(rng, n=5, k=4, n_cont=2, dtype=np.float32):
    return {"cat_logits": tinygan.tensor(rng.standard_normal((n, k)).astype(dtype), requires_grad=True),
            "cont_mean": tinygan.tensor(rng.standard_normal((n, n_cont)).astype(dtype), requires_grad=True)}


def _ce(logits, labels):
    m = logits.max(axis=1, keepdims=True)
    logp = logits - m - np.log(np.exp(logits - m).sum(axis=1, keepdims=True))
    return -np.mean(logp[np.arange(len(labels)), labels])


def test_info_loss_terms_one_at_a_time_and_together():
    """L_I = lambda_cat CE + lambda_cont E[sum_j (mu_j - c_j)^2 / 2]; a term needs both its head and its code."""
    rng = np.random.default_rng(0)
    q = _q(rng, dtype=np.float64)
    c_cat = rng.integers(0, 4, 5)
    c_cont = rng.uniform(-1, 1, (5, 2))
    ce = _ce(q["cat_logits"].numpy(), c_cat)
    gauss = 0.5 * np.mean(((q["cont_mean"].numpy() - c_cont) ** 2).sum(axis=1))
    both = {"c_cat": c_cat, "c_cont": c_cont}
    np.testing.assert_allclose(info_loss(q, both, lambda_cat=0.7, lambda_cont=0.3).item(),
                               0.7 * ce + 0.3 * gauss, rtol=1e-12)
    # only the continuous head: the categorical code in `inputs` is ignored (and vice versa)
    np.testing.assert_allclose(info_loss({"cont_mean": q["cont_mean"]}, both, lambda_cont=0.3).item(),
                               0.3 * gauss, rtol=1e-12)
    np.testing.assert_allclose(info_loss({"cat_logits": q["cat_logits"]}, both, lambda_cat=0.7).item(),
                               0.7 * ce, rtol=1e-12)
    # only the continuous code given
    np.testing.assert_allclose(info_loss(q, {"c_cont": c_cont}, lambda_cont=0.3).item(), 0.3 * gauss, rtol=1e-12)
    with pytest.raises(ValueError, match=r"^info_loss: found no code to score; q needs 'cat_logits' "
                                         r"\(with inputs\['c_cat'\]\) or 'cont_mean' \(with inputs\['c_cont'\]\)$"):
        info_loss(q, {})
    with pytest.raises(ValueError, match="info_loss: found no code"):
        info_loss({}, both)


@pytest.mark.parametrize("as_type", ["array64", "list", "tensor64", "tensor32"])
def test_info_loss_takes_codes_of_any_type_and_keeps_the_heads_dtype(as_type):
    """Codes as float64 arrays, lists or Tensors of another dtype: cast to the head's float32."""
    rng = np.random.default_rng(1)
    q = _q(rng)
    c_cat = rng.integers(0, 4, 5)
    c_cont = rng.uniform(-1, 1, (5, 2))
    wrap = {"array64": lambda a: a, "list": lambda a: a.tolist(), "tensor64": tinygan.tensor,
            "tensor32": lambda a: tinygan.tensor(a.astype(np.float32) if a.dtype.kind == "f" else a)}[as_type]
    loss = info_loss(q, {"c_cat": wrap(c_cat), "c_cont": wrap(c_cont)})
    assert loss.dtype == np.float32
    expected = _ce(q["cat_logits"].numpy().astype(np.float64), c_cat) + \
        0.1 * 0.5 * np.mean(((q["cont_mean"].numpy() - c_cont) ** 2).sum(axis=1))
    np.testing.assert_allclose(loss.item(), expected, rtol=1e-5)
    loss.backward()
    assert q["cont_mean"].grad.dtype == np.float32 and q["cat_logits"].grad.dtype == np.float32


# ---------------------------------------------------------------------------- penalties

class LinearCritic:
    """D(x) = <w, x_n> per sample: grad_x D = w for every sample, so ||g|| = ||w||."""

    def __init__(self, w):
        self.w = tinygan.tensor(w, requires_grad=True)

    def __call__(self, x):
        return (x * self.w).reshape(x.shape[0], -1).sum(axis=1)

    def parameters(self):
        return [self.w]


def test_penalties_are_their_equations_on_a_linear_critic():
    rng = np.random.default_rng(2)
    w = rng.standard_normal((1, 2, 3))
    D = LinearCritic(w)
    real, fake = (tinygan.tensor(rng.standard_normal((4, 1, 2, 3))) for _ in range(2))
    norm = np.sqrt((w ** 2).sum())
    gp = gradient_penalty(D, real, fake, weight=2.5, generator=np.random.default_rng(0))
    np.testing.assert_allclose(gp.item(), 2.5 * (norm - 1) ** 2, rtol=1e-10)
    (dgp,) = tinygan.grad(gp, D.w)                     # d/dw lambda (||w|| - 1)^2 = 2 lambda (||w|| - 1) w / ||w||
    np.testing.assert_allclose(dgp.numpy(), 2 * 2.5 * (norm - 1) * w / norm, rtol=1e-9)
    r1 = r1_penalty(D, real, gamma=3.0)
    np.testing.assert_allclose(r1.item(), 1.5 * norm ** 2, rtol=1e-12)
    with pytest.raises(ValueError, match=r"^gradient_penalty: real \(4, 1, 2, 3\) and fake \(3, 1, 2, 3\) "
                                         r"must have the same shape$"):
        gradient_penalty(D, real, fake[:3])


def test_d_step_uses_the_given_penalty_weight_and_an_unconditional_critic():
    """gp_weight reaches the penalty (not the recipe's 10); D(x) is called without a labels argument."""
    rng = np.random.default_rng(3)
    w = rng.standard_normal((1, 2, 2))
    D = LinearCritic(w)
    real, fake = (tinygan.tensor(rng.standard_normal((3, 1, 2, 2))) for _ in range(2))
    opt = optim.SGD(D.parameters(), lr=0.0)
    record = d_step(D, opt, get_loss("wgan-gp"), real, fake, gp_weight=0.5, rng=np.random.default_rng(0))
    norm = np.sqrt((w ** 2).sum())
    np.testing.assert_allclose(float(record["gp"]), 0.5 * (norm - 1) ** 2, rtol=1e-10)
    wgan = np.mean((fake.numpy() * w).reshape(3, -1).sum(1)) - np.mean((real.numpy() * w).reshape(3, -1).sum(1))
    np.testing.assert_allclose(float(record["Loss_D"]), wgan + 0.5 * (norm - 1) ** 2, rtol=1e-10)


def test_grad_sq_sum_with_and_without_gradients():
    a, b = tinygan.tensor(np.ones(3), requires_grad=True), tinygan.tensor(np.ones(2), requires_grad=True)
    none = grad_sq_sum([a, b])
    assert isinstance(none, np.ndarray) and none.shape == () and none.dtype == np.float32 and none == 0
    assert grad_sq_sum([]).dtype == np.float32
    a.grad = tinygan.tensor(np.array([1.0, 2.0, 2.0]))
    assert float(grad_sq_sum([a, b])) == 9.0
    b.grad = tinygan.tensor(np.array([0.5, -0.5]))
    assert float(grad_sq_sum([a, b])) == 9.5


def test_weight_clip_clamps_in_place_and_refuses_a_non_positive_c():
    w = tinygan.tensor(np.array([-0.5, 0.005, 0.5]), requires_grad=True)
    before = w._data
    weight_clip_([w], 0.01)
    assert w._data is before
    np.testing.assert_array_equal(w.numpy(), [-0.01, 0.005, 0.01])
    with pytest.raises(ValueError, match=r"weight_clip_: c must be positive, got 0"):
        weight_clip_([w], 0)
