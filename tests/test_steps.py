"""The D and G steps (``tinygan.gan.steps``) against the papers' equations, written by hand in NumPy.

Every check here compares one optimizer step of :func:`d_step` / :func:`g_step`
on tiny float64 MLPs with a reference that shares no code with tinygan:

* the networks' forward passes re-written in NumPy from their weights
  (Linear = x W^T + b; LeakyReLU(0.2) in D, ReLU in G; one-hot labels
  concatenated for CGAN; InfoGAN's Q head on D's last hidden features);
* each objective written from its paper (log sigmoid, squares, means);
* gradients by central finite differences in float64 of those NumPy
  functions (the penalties' input gradients grad_x D written analytically:
  the MLP's backward pass in closed form, itself checked against finite
  differences);
* the optimizer is plain SGD (momentum 0), so one step is w <- w - lr grad
  and the new weights reveal the gradient the step used.

Then the recipe each loss trains with (optimizer, lr, betas, n_critic, clip,
lambda) as the trainer builds it, and what one ``Trainer.train_step`` calls.
"""
from __future__ import annotations

import copy
import re

import numpy as np
import pytest

from tinygan import optim
from tinygan import random as tg_random
from tinygan.autograd import Tensor
from tinygan.gan import (LOSS_PRESETS, LOSSES, RECIPES, ConditionalMLPDiscriminator, ConditionalMLPGenerator,
                         InfoGANMLPDiscriminator, InfoGANMLPGenerator, MLPDiscriminator, MLPGenerator, d_step,
                         g_step, get_loss)
from tinygan.run import trainer as trainer_module
from tinygan.run.config import RUN_DEFAULTS, ConfigError, TrainConfig
from tinygan.run.trainer import Trainer

ALL_LOSSES = list(LOSSES) + list(LOSS_PRESETS)     # the seven names: six objectives and lsgan-pearson
PROBABILISTIC = ("minimax", "nonsaturating", "dragan")   # D(x) = sigmoid(l(x)) is a probability
N, NZ, K, NCAT, NCONT = 6, 3, 3, 3, 2              # batch, noise size, CGAN classes, InfoGAN codes
LR = 0.1                                           # SGD's step size in every step test
H = 1e-6                                           # finite-difference step (float64)
ATOL = 1e-9                                        # on weights after one step: |lr * FD error| ~ 1e-11


# ============================================================================ NumPy references
# --- the objectives, as the papers write them (D(x) = sigmoid(l(x)) for the probabilistic ones)

def sigmoid(t):
    return 1.0 / (1.0 + np.exp(-t))


def lsgan_abc(name):
    return (-1.0, 1.0, 0.0) if name == "lsgan-pearson" else (0.0, 1.0, 1.0)


def ref_d_loss(name, lr_, lf):
    """L_D from D's logits on the real (N,) and fake (N,) batch."""
    if name in PROBABILISTIC:          # Goodfellow et al. 2014: -E[log D(x)] - E[log(1 - D(G(z)))]
        return -np.mean(np.log(sigmoid(lr_))) - np.mean(np.log(1.0 - sigmoid(lf)))
    if name.startswith("lsgan"):       # Mao et al. 2017, eq. 2: 1/2 E[(l(x) - b)^2] + 1/2 E[(l(G(z)) - a)^2]
        a, b, _ = lsgan_abc(name)
        return 0.5 * np.mean((lr_ - b) ** 2) + 0.5 * np.mean((lf - a) ** 2)
    if name in ("wgan", "wgan-gp"):    # Arjovsky et al. 2017: E[f(G(z))] - E[f(x)]
        return np.mean(lf) - np.mean(lr_)
    if name == "hinge":                # Lim & Ye 2017: E[relu(1 - l(x))] + E[relu(1 + l(G(z)))]
        return np.mean(np.maximum(0.0, 1.0 - lr_)) + np.mean(np.maximum(0.0, 1.0 + lf))
    if name == "rsgan":                # Jolicoeur-Martineau 2019: -E[log sigmoid(l(x_r) - l(x_f))], pairs
        return -np.mean(np.log(sigmoid(lr_ - lf)))
    if name == "ragan":                # -E[log sigmoid(l(x_r) - E l(x_f))] - E[log(1 - sigmoid(l(x_f) - E l(x_r)))]
        return -np.mean(np.log(sigmoid(lr_ - lf.mean()))) - np.mean(np.log(1.0 - sigmoid(lf - lr_.mean())))
    if name == "ralsgan":              # E[(l(x_r) - E l(x_f) - 1)^2] + E[(l(x_f) - E l(x_r) + 1)^2]
        return np.mean((lr_ - lf.mean() - 1.0) ** 2) + np.mean((lf - lr_.mean() + 1.0) ** 2)
    raise AssertionError(name)


def ref_g_loss(name, lf, lr_=None):
    """L_G from D's logits on the fake batch (N,) (and, for the relativistic losses, on the real batch)."""
    if name == "rsgan":                # -E[log sigmoid(l(x_f) - l(x_r))]
        return -np.mean(np.log(sigmoid(lf - lr_)))
    if name == "ragan":                # -E[log sigmoid(l(x_f) - E l(x_r))] - E[log(1 - sigmoid(l(x_r) - E l(x_f)))]
        return -np.mean(np.log(sigmoid(lf - lr_.mean()))) - np.mean(np.log(1.0 - sigmoid(lr_ - lf.mean())))
    if name == "ralsgan":              # E[(l(x_f) - E l(x_r) - 1)^2] + E[(l(x_r) - E l(x_f) + 1)^2]
        return np.mean((lf - lr_.mean() - 1.0) ** 2) + np.mean((lr_ - lf.mean() + 1.0) ** 2)
    if name in ("nonsaturating", "dragan"):   # -E[log D(G(z))]
        return -np.mean(np.log(sigmoid(lf)))
    if name == "minimax":              # E[log(1 - D(G(z)))]
        return np.mean(np.log(1.0 - sigmoid(lf)))
    if name.startswith("lsgan"):       # 1/2 E[(l(G(z)) - c)^2]
        return 0.5 * np.mean((lf - lsgan_abc(name)[2]) ** 2)
    if name in ("wgan", "wgan-gp", "hinge"):   # -E[f(G(z))]
        return -np.mean(lf)
    raise AssertionError(name)


def ref_d_value(name, logits):
    """What the log shows as D(.): mean sigmoid for the probabilistic losses, the mean logit otherwise."""
    return np.mean(sigmoid(logits)) if name in PROBABILISTIC else np.mean(logits)


def one_hot(labels, k):
    return np.eye(k)[labels]                                        # (N,) -> (N, k)


def log_softmax(s):
    m = s.max(axis=1, keepdims=True)
    return s - m - np.log(np.exp(s - m).sum(axis=1, keepdims=True))


def ref_info_loss(cat_logits, cont_mean, c_cat, c_cont, lambda_cat=1.0, lambda_cont=0.1):
    """InfoGAN's L_I (Chen et al. 2016): lambda_cat E[-log Q(c_cat|x)] + lambda_cont E[sum_j 1/2 (mu_j - c_j)^2]."""
    ce = -np.mean(log_softmax(cat_logits)[np.arange(len(c_cat)), c_cat])
    return lambda_cat * ce + lambda_cont * np.mean(np.sum(0.5 * (cont_mean - c_cont) ** 2, axis=1))


# --- the networks, from their weights

def lrelu(a):
    return np.where(a > 0, a, 0.2 * a)


def linear_keys(P, prefix):
    """The (weight, bias) names of the Linear layers under ``prefix`` ("main", "q"), in order."""
    idx = sorted(int(m.group(1)) for k in P if (m := re.fullmatch(rf"{prefix}\.(\d+)\.weight", k)))
    return [(f"{prefix}.{i}.weight", f"{prefix}.{i}.bias") for i in idx]


def mlp(P, prefix, h, act):
    """Linear -> act -> ... -> Linear (no activation after the last): h (N, in) -> (N, out)."""
    keys = linear_keys(P, prefix)
    for i, (w, b) in enumerate(keys):
        h = h @ P[w].T + P[b]
        if i < len(keys) - 1:
            h = act(h)
    return h


def d_input(x, labels=None):
    """D's input: flatten(x) (N, d), with one_hot(labels) (N, K) appended for a conditional D."""
    h = x.reshape(len(x), -1)
    return h if labels is None else np.concatenate([h, one_hot(labels, K)], axis=1)


def ref_D(P, x, labels=None):
    """D's logits l(x) (N,): LeakyReLU(0.2) MLP."""
    return mlp(P, "main", d_input(x, labels), lrelu)[:, 0]


def ref_D_input_grad(P, x, labels=None):
    """grad_x l(x) (N, d) in closed form: w_L^T diag(lrelu'(a_L)) W_L ... diag(lrelu'(a_1)) W_1, rows per sample."""
    keys = linear_keys(P, "main")
    h, pre = d_input(x, labels), []
    for w, b in keys[:-1]:
        pre.append(h @ P[w].T + P[b])                               # a_i (N, h_i)
        h = lrelu(pre[-1])
    g = np.repeat(P[keys[-1][0]], len(x), axis=0)                   # dl/dh_L (N, h_L)
    for (w, _), a in zip(reversed(keys[:-1]), reversed(pre)):
        g = (g * np.where(a > 0, 1.0, 0.2)) @ P[w]                  # -> dl/dh_{i-1}
    return g[:, :x.reshape(len(x), -1).shape[1]].reshape(x.shape)   # drop the label columns


def ref_info_D(P, x):
    """InfoGAN D: logits (N,) and Q's (cat_logits (N, k), cont_mean (N, n_cont)) from the shared body."""
    keys = linear_keys(P, "main")
    h = x.reshape(len(x), -1)
    for w, b in keys[:-1]:
        h = lrelu(h @ P[w].T + P[b])                                # the body: (N, h_L)
    logits = (h @ P[keys[-1][0]].T + P[keys[-1][1]])[:, 0]
    q = mlp(P, "q", h, lrelu)                                       # (N, k + n_cont)
    return logits, q[:, :NCAT], q[:, NCAT:]


def ref_G(P, z, labels=None, codes=None):
    """G(z) (N, 2): ReLU MLP with a linear output.

    Its input is z, concat(z, one_hot(labels)) (CGAN) or concat(z, one_hot(c_cat), c_cont) (InfoGAN).
    """
    h = z
    if labels is not None:
        h = np.concatenate([z, one_hot(labels, K)], axis=1)
    if codes is not None:
        h = np.concatenate([z, one_hot(codes["c_cat"], NCAT), codes["c_cont"]], axis=1)
    return mlp(P, "main", h, lambda a: np.maximum(a, 0.0))


# --- finite differences

def fd_grad(f, P, h=H):
    """Central differences of the scalar f(P) w.r.t. every entry of every array in the dict P (float64)."""
    grads = {}
    for k, v in P.items():
        g = np.zeros_like(v)
        for idx in np.ndindex(v.shape):
            old = v[idx]
            v[idx] = old + h
            up = f(P)
            v[idx] = old - h
            down = f(P)
            v[idx] = old
            g[idx] = (up - down) / (2 * h)
        grads[k] = g
    return grads


# ============================================================================ fixtures
def weights(module, prefix=""):
    """{name: float64 copy} of a module's parameters (the reference's own copy)."""
    return {prefix + k: np.array(p.data, dtype=np.float64) for k, p in module.named_parameters()}


def float64(module, seed):
    """Cast to float64 and redraw every weight ~ N(0, 0.8^2): D's logits then span roughly [-5, 5]."""
    module.to(dtype=np.float64)
    rng = np.random.default_rng(seed)
    for p in module.parameters():
        p.data[...] = 0.8 * rng.standard_normal(p.shape)
    return module


def tiny_d(kind="mlp"):
    """D: 2-D points -> logits (N,), hidden (5, 4), LeakyReLU(0.2), no norm; the layout the reference assumes."""
    tg_random.manual_seed(1)
    if kind == "mlp":
        D = MLPDiscriminator(in_shape=(2,), hidden=(5, 4))
    elif kind == "cond":
        D = ConditionalMLPDiscriminator(in_shape=(2,), num_classes=K, hidden=(5, 4))
    else:
        D = InfoGANMLPDiscriminator(in_shape=(2,), hidden=(5, 4), num_categories=NCAT, num_continuous=NCONT,
                                    q_hidden=4)
    layout = [type(m).__name__ for m in D.main]
    assert layout == ["Linear", "LeakyReLU", "Linear", "LeakyReLU", "Linear"], layout
    assert all(m.negative_slope == 0.2 for m in D.main if type(m).__name__ == "LeakyReLU")
    return float64(D, 10)


def tiny_g(kind="mlp"):
    """G: z (N, 3) [+ labels / codes] -> points (N, 2), hidden (4,), ReLU, linear output."""
    tg_random.manual_seed(2)
    if kind == "mlp":
        G = MLPGenerator(nz=NZ, out_shape=(2,), hidden=(4,))
    elif kind == "cond":
        G = ConditionalMLPGenerator(nz=NZ, num_classes=K, out_shape=(2,), hidden=(4,))
    else:
        G = InfoGANMLPGenerator(nz=NZ, num_categories=NCAT, num_continuous=NCONT, out_shape=(2,), hidden=(4,))
    layout = [type(m).__name__ for m in G.main]
    assert layout == ["Linear", "ReLU", "Linear"], layout
    return float64(G, 14)


def batch(seed=0):
    """real (N, 2) spread wide enough that D's logits cross 0 and +-1 (every branch of every loss is used);
    z (N, NZ); labels (N,) in [0, K)."""
    rng = np.random.default_rng(seed)
    real = 3.0 * rng.standard_normal((N, 2))
    z = rng.standard_normal((N, NZ))
    labels = rng.integers(0, K, N)
    return real, z, labels


def sgd(params):
    return optim.SGD(list(params), lr=LR, momentum=0.0)


def check_step(module, before, grads, what, prefix=""):
    """Every parameter of ``module`` is now w - LR * grad (the reference gradient)."""
    for k, p in module.named_parameters():
        np.testing.assert_allclose(p.data, before[prefix + k] - LR * grads[prefix + k], rtol=0, atol=ATOL,
                                   err_msg=f"{what}: {k} after one SGD step")


def check_unchanged(module, before, what, prefix=""):
    for k, p in module.named_parameters():
        np.testing.assert_array_equal(p.data, before[prefix + k], err_msg=f"{what}: {k} must not move")


def sq_sum(grads, keys=None):
    return sum(float(np.sum(g ** 2)) for k, g in grads.items() if keys is None or k in keys)


# ============================================================================ the reference itself
def test_reference_input_gradient_matches_finite_differences():
    """The closed-form grad_x l(x) used by the penalties' references equals central differences in x."""
    D = tiny_d("cond")
    P = weights(D)
    real, _, labels = batch()
    g = ref_D_input_grad(P, real, labels)                           # (N, 2)
    fd = np.zeros_like(real)
    for idx in np.ndindex(real.shape):
        up, down = real.copy(), real.copy()
        up[idx] += H
        down[idx] -= H
        fd[idx] = (ref_D(P, up, labels) - ref_D(P, down, labels))[idx[0]] / (2 * H)
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-9)
    # and the NumPy forward is D's forward
    np.testing.assert_allclose(D(Tensor(real), labels=labels).data, ref_D(P, real, labels), rtol=1e-12, atol=1e-12)


# ============================================================================ (1) update D
@pytest.mark.parametrize("name", ALL_LOSSES)
def test_d_step_is_one_descent_step_on_the_papers_L_D(name):
    """w_D <- w_D - lr dL_D/dw_D with L_D the paper's (see ref_d_loss); the record's Loss_D = L_D,
    D_x / D_G_z1 = D's verdict before the update, grad_sq_D = ||dL_D/dw_D||^2; G gets no gradient."""
    loss = get_loss(name)
    D, G = tiny_d(), tiny_g()
    real, z, _ = batch()
    fake = G(Tensor(z))                                              # (N, 2), with G's graph (as the trainer)
    xf = fake.data.copy()
    PD, PG = weights(D), weights(G)

    f = lambda P: ref_d_loss(name, ref_D(P, real), ref_D(P, xf))     # noqa: E731  L_D(w_D)
    lr_, lf = ref_D(PD, real), ref_D(PD, xf)                         # (N,), (N,)
    if name == "hinge":   # the batch exercises both sides of each hinge
        assert (lr_ < 1).any() and (lr_ > 1).any() and (lf > -1).any() and (lf < -1).any()
    grads = fd_grad(f, PD)

    record = d_step(D, sgd(D.parameters()), loss, Tensor(real), fake)
    check_step(D, PD, grads, f"{name} d_step")
    check_unchanged(G, PG, f"{name} d_step")
    for k, p in G.named_parameters():
        assert p.grad is None, f"{name}: d_step sent a gradient to G's {k} (fake must be detached)"
    assert set(record) == {"Loss_D", "D_x", "D_G_z1", "grad_sq_D"}
    np.testing.assert_allclose(record["Loss_D"], f(PD), rtol=1e-12)
    np.testing.assert_allclose(record["D_x"], ref_d_value(name, lr_), rtol=1e-12)
    np.testing.assert_allclose(record["D_G_z1"], ref_d_value(name, lf), rtol=1e-12)
    np.testing.assert_allclose(record["grad_sq_D"], sq_sum(grads), rtol=1e-7)


def test_d_step_without_stats_takes_the_same_step_and_records_only_the_loss():
    """stats=False: the same update, and only Loss_D comes back."""
    loss = get_loss("nonsaturating")
    real, z, _ = batch()
    results = []
    for stats in (True, False):
        D, G = tiny_d(), tiny_g()
        rec = d_step(D, sgd(D.parameters()), loss, Tensor(real), G(Tensor(z)), stats=stats)
        results.append((rec, weights(D)))
    assert set(results[1][0]) == {"Loss_D"}
    assert float(results[0][0]["Loss_D"]) == float(results[1][0]["Loss_D"])
    for k in results[0][1]:
        np.testing.assert_array_equal(results[0][1][k], results[1][1][k])


def test_wgan_clip_clamps_every_critic_weight_after_the_step():
    """WGAN (Arjovsky et al. 2017, Alg. 1, line 7): w <- clip(w - lr grad, -c, c), every parameter of D."""
    loss, c = get_loss("wgan"), 0.3
    D, G = tiny_d(), tiny_g()
    real, z, _ = batch()
    fake = G(Tensor(z))
    xf = fake.data.copy()
    PD = weights(D)
    grads = fd_grad(lambda P: ref_d_loss("wgan", ref_D(P, real), ref_D(P, xf)), PD)

    record = d_step(D, sgd(D.parameters()), loss, Tensor(real), fake, clip_value=c)
    clipped = inside = 0
    for k, p in D.named_parameters():
        stepped = PD[k] - LR * grads[k]
        assert np.all(np.abs(p.data) <= c), f"{k} outside [-{c}, {c}]"
        np.testing.assert_allclose(p.data, np.clip(stepped, -c, c), rtol=0, atol=ATOL, err_msg=k)
        clipped += int(np.sum(np.abs(stepped) > c + 1e-6))
        inside += int(np.sum(np.abs(stepped) < c - 1e-6))
    assert clipped and inside, "the test must clip some weights and leave others alone"
    # the loss and the gradient norm are those of the step, before the clip
    np.testing.assert_allclose(record["Loss_D"], ref_d_loss("wgan", ref_D(PD, real), ref_D(PD, xf)), rtol=1e-12)
    np.testing.assert_allclose(record["grad_sq_D"], sq_sum(grads), rtol=1e-7)


def ref_gp(P, real, fake, eps, lam, labels=None):
    """WGAN-GP (Gulrajani et al. 2017, eq. 3): lam E[(||grad_x l(x_hat)||_2 - 1)^2], x_hat = eps x + (1 - eps) G(z)."""
    x_hat = eps * real + (1 - eps) * fake                            # (N, 2), eps (N, 1)
    g = ref_D_input_grad(P, x_hat, labels)                           # (N, 2)
    return lam * np.mean((np.sqrt(np.sum(g ** 2, axis=1)) - 1.0) ** 2)


def ref_r1(P, real, gamma, labels=None):
    """R1 (Mescheder et al. 2018, eq. 9): gamma/2 E[||grad_x l(x)||^2] on the real batch."""
    g = ref_D_input_grad(P, real, labels)
    return 0.5 * gamma * np.mean(np.sum(g ** 2, axis=1))


@pytest.mark.parametrize("kind", ["mlp", "cond"])
def test_wgan_gp_step_descends_on_L_D_plus_the_gradient_penalty(kind):
    """L = E[l(G(z))] - E[l(x)] + lam E[(||grad l(x_hat)|| - 1)^2] with eps drawn from the step's rng; the
    weight update checks the double backward (d/dw of a function of grad_x l); record's gp and Loss_D;
    a conditional critic gets the labels in the penalty too."""
    loss, lam = get_loss("wgan-gp"), 10.0
    D, G = tiny_d(kind), tiny_g(kind)
    real, z, labels = batch()
    labels = labels if kind == "cond" else None
    fake = G(Tensor(z)) if labels is None else G(Tensor(z), labels=labels)
    xf = fake.data.copy()
    PD = weights(D)
    rng = np.random.default_rng(7)
    mirror = copy.deepcopy(rng)
    eps = mirror.random((N, 1))                                      # the same draws as the step's (N, 1)

    def total(P):
        adv = ref_d_loss("wgan-gp", ref_D(P, real, labels), ref_D(P, xf, labels))
        return adv + ref_gp(P, real, xf, eps, lam, labels)

    grads = fd_grad(total, PD)
    gp = ref_gp(PD, real, xf, eps, lam, labels)
    assert gp > 1e-3    # the penalty is not negligible here
    record = d_step(D, sgd(D.parameters()), loss, Tensor(real), fake, labels=labels, gp_weight=lam, rng=rng)
    check_step(D, PD, grads, f"wgan-gp ({kind}) d_step")
    np.testing.assert_allclose(record["gp"], gp, rtol=1e-9)
    np.testing.assert_allclose(record["Loss_D"], total(PD), rtol=1e-9)
    np.testing.assert_allclose(record["grad_sq_D"], sq_sum(grads), rtol=1e-7)
    assert rng.bit_generator.state == mirror.bit_generator.state, "the step drew eps from elsewhere, or more"


@pytest.mark.parametrize("kind", ["mlp", "cond"])
def test_r1_step_descends_on_L_D_plus_the_r1_penalty(kind):
    """L = L_D(non-saturating) + gamma/2 E[||grad_x l(x)||^2] on the real batch; record's r1 and Loss_D."""
    loss, gamma = get_loss("nonsaturating"), 5.0
    D, G = tiny_d(kind), tiny_g(kind)
    real, z, labels = batch(1)
    labels = labels if kind == "cond" else None
    fake = G(Tensor(z)) if labels is None else G(Tensor(z), labels=labels)
    xf = fake.data.copy()
    PD = weights(D)

    def total(P):
        return ref_d_loss("nonsaturating", ref_D(P, real, labels), ref_D(P, xf, labels)) + ref_r1(P, real, gamma,
                                                                                                  labels)

    grads = fd_grad(total, PD)
    record = d_step(D, sgd(D.parameters()), loss, Tensor(real), fake, labels=labels, r1_gamma=gamma)
    check_step(D, PD, grads, f"r1 ({kind}) d_step")
    np.testing.assert_allclose(record["r1"], ref_r1(PD, real, gamma, labels), rtol=1e-9)
    np.testing.assert_allclose(record["Loss_D"], total(PD), rtol=1e-9)
    assert "gp" not in record


def ref_dragan(P, real, u, alpha, lam, labels=None):
    """DRAGAN (Kodali et al. 2017, reference code): lam E[(||grad_x l(x_hat)||_2 - 1)^2] at
    x_hat = x + alpha 0.5 std(x) u, u ~ U[0, 1)^d, alpha ~ U[0, 1] per sample, std over the whole batch."""
    x_hat = real + alpha * (0.5 * real.std() * u)                    # (N, 2), alpha (N, 1)
    g = ref_D_input_grad(P, x_hat, labels)                           # (N, 2)
    return lam * np.mean((np.sqrt(np.sum(g ** 2, axis=1)) - 1.0) ** 2)


@pytest.mark.parametrize("kind", ["mlp", "cond"])
def test_dragan_step_descends_on_L_D_plus_the_penalty_around_the_real_data(kind):
    """DRAGAN: L = L_D(non-saturating) + lam E[(||grad l(x_hat)|| - 1)^2] with x_hat perturbed around the *real*
    batch (u, then alpha, from the step's rng); FD of the NumPy reference checks the double backward; the fake
    batch plays no part in the penalty."""
    loss, lam = get_loss("dragan"), 10.0
    D, G = tiny_d(kind), tiny_g(kind)
    real, z, labels = batch(4)
    labels = labels if kind == "cond" else None
    fake = G(Tensor(z)) if labels is None else G(Tensor(z), labels=labels)
    xf = fake.data.copy()
    PD = weights(D)
    rng = np.random.default_rng(11)
    mirror = copy.deepcopy(rng)
    u, alpha = mirror.random((N, 2)), mirror.random((N, 1))         # the step's draws, in its order

    def total(P):
        adv = ref_d_loss("dragan", ref_D(P, real, labels), ref_D(P, xf, labels))
        return adv + ref_dragan(P, real, u, alpha, lam, labels)

    grads = fd_grad(total, PD)
    gp = ref_dragan(PD, real, u, alpha, lam, labels)
    assert gp > 1e-3
    seen, forward = [], D.forward                                   # the points D is asked about
    D.forward = lambda x, labels=None: (seen.append(x.data.copy()), forward(x, labels=labels))[1]
    record = d_step(D, sgd(D.parameters()), loss, Tensor(real), fake, labels=labels, gp_weight=lam,
                    gp_at="perturbed", rng=rng)
    del D.forward
    assert len(seen) == 3                                           # l(x), l(G(z)), then the penalty's points
    np.testing.assert_allclose(seen[2], real + alpha * (0.5 * real.std() * u), rtol=1e-12, atol=1e-12)
    check_step(D, PD, grads, f"dragan ({kind}) d_step")
    np.testing.assert_allclose(record["gp"], gp, rtol=1e-9)
    np.testing.assert_allclose(record["Loss_D"], total(PD), rtol=1e-9)
    assert rng.bit_generator.state == mirror.bit_generator.state, "the step drew u, alpha from elsewhere, or more"
    # WGAN-GP's interpolates with the same draws would be another penalty: the choice of points matters
    assert abs(ref_gp(PD, real, xf, alpha, lam, labels) - gp) > 1e-3


@pytest.mark.parametrize("name", ["rsgan", "ragan", "ralsgan"])
def test_relativistic_g_step_needs_the_real_batch(name):
    D, G = tiny_d(), tiny_g()
    _, z, _ = batch()
    with pytest.raises(ValueError, match=f"--loss {name} is relativistic.*pass real="):
        g_step(D, sgd(G.parameters()), get_loss(name), G(Tensor(z)))


@pytest.mark.parametrize("name", ["nonsaturating", "hinge"])
def test_conditional_d_step_feeds_the_labels_to_D(name):
    """CGAN (Mirza & Osindero 2014): L_D on D(x, y), D(G(z, y), y); the step with the batch's labels matches
    the reference with those labels, and differs from the one with other labels."""
    loss = get_loss(name)
    D, G = tiny_d("cond"), tiny_g("cond")
    real, z, labels = batch(2)
    other = (labels + 1) % K
    fake = G(Tensor(z), labels=labels)
    xf = fake.data.copy()
    PD = weights(D)
    f = lambda y: lambda P: ref_d_loss(name, ref_D(P, real, y), ref_D(P, xf, y))   # noqa: E731
    grads, wrong = fd_grad(f(labels), PD), fd_grad(f(other), PD)
    assert abs(f(labels)(PD) - f(other)(PD)) > 1e-3 and sq_sum(grads) != pytest.approx(sq_sum(wrong))

    record = d_step(D, sgd(D.parameters()), loss, Tensor(real), fake, labels=labels)
    check_step(D, PD, grads, f"{name} conditional d_step")
    np.testing.assert_allclose(record["Loss_D"], f(labels)(PD), rtol=1e-12)


# ============================================================================ (2) update G
def snapshot_grads(module):
    return {k: (None if p.grad is None else p.grad.data.copy()) for k, p in module.named_parameters()}


@pytest.mark.parametrize("name", ALL_LOSSES)
def test_g_step_is_one_descent_step_on_the_papers_L_G_through_a_fixed_D(name):
    """(1) then (2) as the trainer runs them, on the same fake batch: w_G <- w_G - lr dL_G/dw_G with L_G the
    paper's (ref_g_loss) through the *updated* D; D's weights do not move, D's gradients are left as the D
    step left them (frozen: none computed), requires_grad is restored; Loss_G, D_G_z2, grad_sq_G."""
    loss = get_loss(name)
    D, G = tiny_d(), tiny_g()
    real, z, _ = batch(3)
    opt_d, opt_g = sgd(D.parameters()), sgd(G.parameters())
    fake = G(Tensor(z))                                              # (N, 2), G's graph kept for (2)
    d_step(D, opt_d, loss, Tensor(real), fake)

    PD, PG = weights(D), weights(G)                                  # D after its update
    d_grads = snapshot_grads(D)
    assert all(g is not None for g in d_grads.values())
    lr_ = ref_D(PD, real)                                            # the relativistic losses compare with l(x)
    f = lambda P: ref_g_loss(name, ref_D(PD, ref_G(P, z)), lr_)      # noqa: E731  L_G(w_G), D fixed
    grads = fd_grad(f, PG)
    assert sq_sum(grads) > 1e-8

    record = g_step(D, opt_g, loss, fake, real=Tensor(real))
    check_step(G, PG, grads, f"{name} g_step")
    check_unchanged(D, PD, f"{name} g_step")
    for k, p in D.named_parameters():
        assert p.requires_grad, f"{name}: D's {k} is still frozen after g_step"
        np.testing.assert_array_equal(p.grad.data, d_grads[k], err_msg=f"{name}: g_step touched D's {k}.grad")
    assert set(record) == {"Loss_G", "D_G_z2", "grad_sq_G"}
    np.testing.assert_allclose(record["Loss_G"], f(PG), rtol=1e-12)
    np.testing.assert_allclose(record["D_G_z2"], ref_d_value(name, ref_D(PD, ref_G(PG, z))), rtol=1e-12)
    np.testing.assert_allclose(record["grad_sq_G"], sq_sum(grads), rtol=1e-7)


def test_g_step_computes_no_gradient_for_D():
    """D frozen in (2): starting from no gradient, D's parameters still have none afterwards (not even zeros)."""
    loss = get_loss("nonsaturating")
    D, G = tiny_d(), tiny_g()
    _, z, _ = batch()
    rec = g_step(D, sgd(G.parameters()), loss, G(Tensor(z)), stats=False)
    assert set(rec) == {"Loss_G"}
    for k, p in D.named_parameters():
        assert p.grad is None, f"g_step computed a gradient for D's {k}"
        assert p.requires_grad


@pytest.mark.parametrize("name", ["nonsaturating", "lsgan"])
def test_conditional_g_step_feeds_the_labels_to_D(name):
    """CGAN: L_G on D(G(z, y), y): G's step matches the reference with the batch's labels (and not other labels)."""
    loss = get_loss(name)
    D, G = tiny_d("cond"), tiny_g("cond")
    _, z, labels = batch(4)
    other = (labels + 1) % K
    PD, PG = weights(D), weights(G)
    f = lambda y: lambda P: ref_g_loss(name, ref_D(PD, ref_G(P, z, labels=labels), y))   # noqa: E731
    grads = fd_grad(f(labels), PG)
    assert abs(f(labels)(PG) - f(other)(PG)) > 1e-3

    record = g_step(D, sgd(G.parameters()), loss, G(Tensor(z), labels=labels), labels=labels)
    check_step(G, PG, grads, f"{name} conditional g_step")
    check_unchanged(D, PD, f"{name} conditional g_step")
    np.testing.assert_allclose(record["Loss_G"], f(labels)(PG), rtol=1e-12)


@pytest.mark.parametrize("name", ["nonsaturating", "wgan-gp"])
def test_infogan_g_step_adds_lambda_L_I_and_trains_Q_with_G(name):
    """InfoGAN (Chen et al. 2016, eq. 5): L = L_G + lambda L_I, L_I = CE(Q_cat, c_cat) + 0.1 E[sum 1/2 (mu - c)^2];
    opt_g holds G and the Q head: both step on L, D's body and logit layer stay put; Loss_Info = L_I."""
    loss, lam = get_loss(name), 0.7
    D, G = tiny_d("info"), tiny_g("info")
    rng = np.random.default_rng(5)
    inputs = {k: (Tensor(v.astype(np.float64)) if v.dtype.kind == "f" else v)
              for k, v in G.sample_inputs(N, rng).items()}           # z (N, 3), c_cat (N,), c_cont (N, 2)
    codes = {"c_cat": inputs["c_cat"], "c_cont": inputs["c_cont"].data}
    z = inputs["z"].data
    q_ids = {id(p) for p in D.q_parameters()}
    q_names = {k for k, p in D.named_parameters() if id(p) in q_ids}
    assert q_names == {k for k in weights(D) if k.startswith("q.")}
    PG, PD = weights(G, "G."), weights(D)
    PQ = {"Q." + k: PD[k] for k in q_names}

    def split(P):
        Pd = {**PD, **{k[2:]: v for k, v in P.items() if k.startswith("Q.")}}
        return Pd, {k[2:]: v for k, v in P.items() if k.startswith("G.")}

    def total(P):                                                    # L(w_G, w_Q), D's body fixed
        Pd, Pg = split(P)
        logits, cat_logits, cont_mean = ref_info_D(Pd, ref_G(Pg, z, codes=codes))
        return ref_g_loss(name, logits) + lam * ref_info_loss(cat_logits, cont_mean, codes["c_cat"], codes["c_cont"])

    P = {**PG, **PQ}
    grads = fd_grad(total, P)
    Pd, Pg = split(P)
    _, cat_logits, cont_mean = ref_info_D(Pd, ref_G(Pg, z, codes=codes))
    info = ref_info_loss(cat_logits, cont_mean, codes["c_cat"], codes["c_cont"])

    opt_g = sgd(list(G.parameters()) + D.q_parameters())
    record = g_step(D, opt_g, loss, G(**inputs), codes=inputs, info_lambda=lam)
    check_step(G, P, grads, f"{name} InfoGAN g_step (G)", prefix="G.")
    for k, p in D.named_parameters():
        if k in q_names:
            np.testing.assert_allclose(p.data, PD[k] - LR * grads["Q." + k], rtol=0, atol=ATOL,
                                       err_msg=f"Q head {k} after one SGD step")
        else:
            np.testing.assert_array_equal(p.data, PD[k], err_msg=f"InfoGAN g_step moved D's {k}")
            assert p.grad is None and p.requires_grad
    np.testing.assert_allclose(record["Loss_Info"], info, rtol=1e-10)
    np.testing.assert_allclose(record["Loss_G"], total(P), rtol=1e-10)
    np.testing.assert_allclose(record["grad_sq_G"], sq_sum(grads), rtol=1e-7)


def test_infogan_d_step_leaves_the_Q_head_to_G():
    """InfoGAN's (1): D's optimizer excludes Q; d_step moves D's body and logit layer only, Q gets no gradient."""
    D, G = tiny_d("info"), tiny_g("info")
    rng = np.random.default_rng(6)
    inputs = {k: (Tensor(v.astype(np.float64)) if v.dtype.kind == "f" else v)
              for k, v in G.sample_inputs(N, rng).items()}
    real, _, _ = batch()
    q_ids = {id(p) for p in D.q_parameters()}
    fake = G(**inputs)
    xf = fake.data.copy()
    PD = weights(D)
    body = {k: v for k, v in PD.items() if not k.startswith("q.")}
    grads = fd_grad(lambda P: ref_d_loss("nonsaturating", ref_info_D({**PD, **P}, real)[0],
                                         ref_info_D({**PD, **P}, xf)[0]), body)
    d_step(D, sgd([p for p in D.parameters() if id(p) not in q_ids]), get_loss("nonsaturating"), Tensor(real), fake)
    for k, p in D.named_parameters():
        if k.startswith("q."):
            np.testing.assert_array_equal(p.data, PD[k])
            assert p.grad is None
        else:
            np.testing.assert_allclose(p.data, PD[k] - LR * grads[k], rtol=0, atol=ATOL, err_msg=k)


def test_consecutive_iterations_start_from_fresh_gradients():
    """Two full iterations (1)+(2): the second iteration's updates use only its own gradients (each step
    zeroes its optimizer's gradients first), so each equals the reference at the weights it starts from."""
    loss = get_loss("nonsaturating")
    D, G = tiny_d(), tiny_g()
    opt_d, opt_g = sgd(D.parameters()), sgd(G.parameters())
    for it in range(2):
        real, z, _ = batch(10 + it)
        PD, PG = weights(D), weights(G)
        fake = G(Tensor(z))
        xf = fake.data.copy()
        d_grads = fd_grad(lambda P: ref_d_loss("nonsaturating", ref_D(P, real), ref_D(P, xf)), PD)
        d_step(D, opt_d, loss, Tensor(real), fake)
        check_step(D, PD, d_grads, f"iteration {it}: d_step")
        PD = weights(D)
        g_grads = fd_grad(lambda P: ref_g_loss("nonsaturating", ref_D(PD, ref_G(P, z))), PG)
        g_step(D, opt_g, loss, fake)
        check_step(G, PG, g_grads, f"iteration {it}: g_step")


# ============================================================================ the recipes, as the trainer applies them
def make_trainer(tmp_path, name, **overrides):
    kw = dict(model="mlp", dataset="ring8", loss=name, batch_size=8, nz=4, steps=1, progress=False,
              out=str(tmp_path / name))
    return Trainer(TrainConfig(**{**kw, **overrides}))


@pytest.mark.parametrize("name", ALL_LOSSES)
def test_trainer_builds_each_losss_recipe(tmp_path, name):
    """RECIPES[name]: optimizer type (Adam / RMSprop) for both networks, lr, betas, n_critic, clip, lambda."""
    r = RECIPES[name]
    t = make_trainer(tmp_path, name, dataset="mnist")          # image data: no toy default replaces the recipe
    expected = optim.RMSprop if r.optimizer == "rmsprop" else optim.Adam
    assert r.optimizer in ("adam", "rmsprop")
    for opt in (t.opt_d, t.opt_g):
        assert type(opt) is expected
        for group in opt.param_groups:
            assert group["lr"] == pytest.approx(RUN_DEFAULTS["lr_scale"][0] * r.lr) == t.config.lr
            if r.betas is None:
                assert "betas" not in group
            else:
                assert tuple(group["betas"]) == r.betas
    assert t.config.n_critic == r.n_critic
    assert t.recipe.clip_value == r.clip_value and t.recipe.gp_weight == r.gp_weight
    assert t.loss.name == ("lsgan" if name == "lsgan-pearson" else name)
    if name == "lsgan-pearson":
        assert (t.loss.a, t.loss.b, t.loss.c) == (-1.0, 1.0, 0.0)
    # each network is in exactly one optimizer
    assert {id(p) for p in optim_params(t.opt_d)} == {id(p) for p in t.D.parameters()}
    assert {id(p) for p in optim_params(t.opt_g)} == {id(p) for p in t.G.parameters()}


def optim_params(opt):
    return [p for g in opt.param_groups for p in g["params"]]


@pytest.mark.parametrize("name", ["nonsaturating", "wgan-gp", "wgan"])
def test_command_line_values_replace_the_recipes(tmp_path, name):
    """--lr, --beta1, --beta2, --n-critic override the recipe; RMSprop (WGAN) refuses betas."""
    if RECIPES[name].betas is None:
        with pytest.raises(ConfigError, match="beta"):
            make_trainer(tmp_path, name, beta1=0.1)
        t = make_trainer(tmp_path, name, lr=1e-3, n_critic=2)
    else:
        t = make_trainer(tmp_path, name, lr=1e-3, beta1=0.1, beta2=0.99, n_critic=2)
    for opt in (t.opt_d, t.opt_g):
        assert opt.param_groups[0]["lr"] == 1e-3
        if RECIPES[name].betas is not None:
            assert tuple(opt.param_groups[0]["betas"]) == (0.1, 0.99)
    assert t.config.n_critic == 2
    assert t.recipe.clip_value == RECIPES[name].clip_value and t.recipe.gp_weight == RECIPES[name].gp_weight


def spy(monkeypatch, t):
    """Record every d_step / g_step call of the trainer and every optimizer step."""
    calls = {"d": [], "g": [], "opt_d": 0, "opt_g": 0}
    real_d, real_g = trainer_module.d_step, trainer_module.g_step

    def d(*args, **kw):
        calls["d"].append((args, kw))
        return real_d(*args, **kw)

    def g(*args, **kw):
        calls["g"].append((args, kw))
        return real_g(*args, **kw)

    monkeypatch.setattr(trainer_module, "d_step", d)
    monkeypatch.setattr(trainer_module, "g_step", g)
    for which in ("opt_d", "opt_g"):
        opt = getattr(t, which)
        step = opt.step

        def counted(step=step, which=which):
            calls[which] += 1
            return step()

        monkeypatch.setattr(opt, "step", counted)
    return calls


@pytest.mark.parametrize("name", ALL_LOSSES)
def test_train_step_runs_n_critic_D_updates_then_one_G_update(tmp_path, monkeypatch, name):
    """One train_step: n_critic D steps, each on a fresh real batch, with the recipe's clip / lambda and the
    trainer's rng, then one G step on the last fake batch; WGAN's critic ends inside [-c, c]."""
    r = RECIPES[name]
    t = make_trainer(tmp_path, name)
    calls = spy(monkeypatch, t)
    start = t.position
    record = t.train_step()
    n = r.n_critic
    assert calls["opt_d"] == n and calls["opt_g"] == 1
    assert len(calls["d"]) == n and len(calls["g"]) == 1
    assert t.position == (start[0], start[1] + n)
    reals = [args[3].data for args, _ in calls["d"]]
    for i, x in enumerate(reals):                                    # batch i of the run, then the next one
        np.testing.assert_array_equal(x, t.data.batch((0, i))[0])
    assert all(not np.array_equal(reals[i], reals[j]) for i in range(n) for j in range(i))
    for args, kw in calls["d"]:
        assert args[0] is t.D and args[1] is t.opt_d and args[2] is t.loss
        assert kw["gp_weight"] == r.gp_weight and kw["clip_value"] == r.clip_value
        assert kw["gp_at"] == r.gp_at                              # DRAGAN: around the real data
        assert kw["r1_gamma"] == 0.0 and kw["rng"] is t.rng
    (g_args, g_kw), = calls["g"]
    assert g_args[0] is t.D and g_args[1] is t.opt_g and g_args[2] is t.loss
    assert g_args[3] is calls["d"][-1][0][4], "G's step must reuse the last fake batch D was trained on"
    assert g_kw["real"] is calls["d"][-1][0][3], "a relativistic G step compares with the last real batch"
    assert g_kw["info_lambda"] == 0.0
    assert ("gp" in record) == (r.gp_weight is not None) and "r1" not in record
    if r.clip_value:
        assert all(np.abs(p.data).max() <= r.clip_value for p in t.D.parameters())


def test_train_step_passes_r1_labels_and_infogan_codes(tmp_path, monkeypatch):
    """--r1 reaches d_step; a conditional model's labels (the real batch's) reach both steps; InfoGAN's
    codes and lambda reach g_step, with the Q head in G's optimizer and out of D's."""
    t = make_trainer(tmp_path, "nonsaturating", r1=2.0)
    calls = spy(monkeypatch, t)
    record = t.train_step()
    assert calls["d"][0][1]["r1_gamma"] == 2.0 and "r1" in record

    t = make_trainer(tmp_path, "hinge", model="cgan-mlp", dataset="mnist", dry_run=True, steps=None)
    calls = spy(monkeypatch, t)
    t.train_step()
    labels = t.data.batch((0, 0))[1]
    np.testing.assert_array_equal(np.asarray(calls["d"][0][1]["labels"]), labels)
    np.testing.assert_array_equal(np.asarray(calls["g"][0][1]["labels"]), labels)

    t = make_trainer(tmp_path, "nonsaturating", model="infogan", info_lambda=0.5)
    q_ids = {id(p) for p in t.D.q_parameters()}
    assert q_ids and q_ids <= {id(p) for p in optim_params(t.opt_g)}
    assert not q_ids & {id(p) for p in optim_params(t.opt_d)}
    calls = spy(monkeypatch, t)
    record = t.train_step()
    (_, kw), = calls["g"]
    assert kw["info_lambda"] == 0.5 and {"c_cat", "c_cont"} <= set(kw["codes"])
    assert "Loss_Info" in record
