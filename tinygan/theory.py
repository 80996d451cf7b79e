"""The GAN paper's theory, checked with numbers on a discretised 1-D problem.

Goodfellow et al. (2014) prove two things about the value function::

    V(D, G) = E_{x~p_data}[log D(x)] + E_{z~p_z}[log(1 - D(G(z)))]
            = sum_x p_data(x) log D(x) + p_g(x) log(1 - D(x))           (x = G(z) has law p_g)

1. For a fixed G the best discriminator is (Proposition 1)::

       D*(x) = p_data(x) / (p_data(x) + p_g(x))

   because y -> a log y + b log(1 - y) is maximised on [0, 1] at y = a / (a + b).

2. Plugged back in, the value is a Jensen-Shannon divergence (Theorem 1)::

       C(G) = max_D V(D, G) = -log 4 + 2 JSD(p_data || p_g)
       JSD(p || q) = 1/2 KL(p || m) + 1/2 KL(q || m),   m = (p + q) / 2

   so the generator's best response is p_g = p_data, where C(G) = -log 4.

Here x lives on a grid of M points and p_data, p_g are probability vectors on
it (densities times the grid spacing, renormalised), so every expectation is
an exact finite sum.  :func:`train_discriminator` trains a discriminator (a
free table of logits, one per grid point, or a small tinygan MLP) by gradient
*ascent* on V with tinygan's autograd and Adam; the tests check that it lands
on D* and that V(D*, G) equals -log 4 + 2 JSD computed from the definition
(:func:`js_divergence`), not from V.

The third part is the generator's gradient when D rejects its samples
(``D(G(z)) -> 0``), the reason for the non-saturating loss:
:func:`generator_gradients` differentiates tinygan's own generator losses
(``tinygan.gan.losses.get_loss``) with respect to the logit l, D = sigmoid(l)::

    minimax         L_G = log(1 - D)   dL_G/dl = -D         -> 0  as D -> 0  (saturates)
    non-saturating  L_G = -log D       dL_G/dl = -(1 - D)   -> -1 as D -> 0  (does not)
"""
from __future__ import annotations

import numpy as np

from tinygan import functional as F
from tinygan import nn, optim
from tinygan import random as _random
from tinygan.autograd import Tensor, grad, no_grad
from tinygan.data import toy_density
from tinygan.gan.losses import get_loss

LOG4 = float(np.log(4.0))


# --------------------------------------------------------------------------- distributions on a grid

def make_grid(lo: float = -6.0, hi: float = 6.0, m: int = 241) -> np.ndarray:
    """M equally spaced points x_1..x_M in [lo, hi], float64 (M,)."""
    if m < 2 or not hi > lo:
        raise ValueError(f"make_grid: need m >= 2 and hi > lo, got m={m}, [{lo}, {hi}]")
    return np.linspace(lo, hi, m)


def normalise(weights) -> np.ndarray:
    """A probability vector p (M,): non-negative weights divided by their sum."""
    w = np.asarray(weights, np.float64)
    if np.any(w < 0) or not np.isfinite(w).all() or w.sum() <= 0:
        raise ValueError("normalise: weights must be finite, non-negative and not all zero")
    return w / w.sum()


def gaussian_mixture_on_grid(x: np.ndarray, means, std: float, weights=None) -> np.ndarray:
    """p(x_i) proportional to sum_k w_k N(x_i; mu_k, std^2), normalised on the grid (M,)."""
    means = np.atleast_1d(np.asarray(means, np.float64))
    w = np.full(len(means), 1 / len(means)) if weights is None else np.asarray(weights, np.float64)
    dens = (w[None, :] * np.exp(-0.5 * ((x[:, None] - means[None, :]) / std) ** 2)).sum(axis=1)   # (M,)
    return normalise(dens)


def toy_on_grid(name: str, x: np.ndarray) -> np.ndarray:
    """A 1-D toy target of ``tinygan.data`` (``gauss1d``, ``bimodal1d``) as a probability vector on ``x``."""
    return normalise(toy_density(name, x))


# --------------------------------------------------------------------------- divergences, from their definitions

def kl_divergence(p, q) -> float:
    """KL(p || q) = sum_x p(x) log(p(x) / q(x)), with 0 log 0 = 0; inf when q = 0 where p > 0."""
    p, q = np.asarray(p, np.float64), np.asarray(q, np.float64)
    support = p > 0
    if np.any(q[support] == 0):
        return float("inf")
    return float(np.sum(p[support] * np.log(p[support] / q[support])))


def js_divergence(p, q) -> float:
    """JSD(p || q) = 1/2 KL(p || m) + 1/2 KL(q || m) with m = (p + q)/2; in [0, log 2] nats."""
    p, q = np.asarray(p, np.float64), np.asarray(q, np.float64)
    m = (p + q) / 2
    return 0.5 * kl_divergence(p, m) + 0.5 * kl_divergence(q, m)


# --------------------------------------------------------------------------- the value function and D*

def optimal_discriminator(p_data, p_g) -> np.ndarray:
    """D*(x) = p_data(x) / (p_data(x) + p_g(x)) (M,); 1/2 where both are 0 (any value is optimal there)."""
    p_data, p_g = np.asarray(p_data, np.float64), np.asarray(p_g, np.float64)
    total = p_data + p_g
    return np.divide(p_data, total, out=np.full_like(total, 0.5), where=total > 0)


def value_function(d, p_data, p_g) -> float:
    """V(D, G) = sum_x p_data(x) log D(x) + p_g(x) log(1 - D(x)), with 0 log 0 = 0.

    ``d`` holds probabilities D(x) in [0, 1] on the grid (M,).  A D that is 0
    where p_data > 0 (or 1 where p_g > 0) gives -inf, as it should; so does a
    D within rounding of 1 (1 - D = 0 in float64) where p_g is tiny but
    positive, which :func:`value_at_optimum` avoids by working with ratios.
    """
    d, p_data, p_g = (np.asarray(a, np.float64) for a in (d, p_data, p_g))
    real, fake = p_data > 0, p_g > 0                          # sum over each support only: 0 log 0 = 0
    with np.errstate(divide="ignore"):
        return float(np.sum(p_data[real] * np.log(d[real])) + np.sum(p_g[fake] * np.log1p(-d[fake])))


def value_from_logits(logits: Tensor, p_data: Tensor, p_g: Tensor) -> Tensor:
    """V as a differentiable tinygan scalar, from logits l with D = sigmoid(l)::

        V = sum_x p_data log sigmoid(l) + p_g log(1 - sigmoid(l))
          = sum_x -p_data softplus(-l) - p_g softplus(l)

    (log(1 - sigmoid(l)) = log sigmoid(-l) = -softplus(l): no log of 0, whatever l).
    """
    return -(p_data * F.softplus(-logits) + p_g * F.softplus(logits)).sum()


def value_at_optimum(p_data, p_g) -> float:
    """C(G) = V(D*, G) with no training, D* substituted by hand::

        C(G) = sum_x p_data log(p_data / (p_data + p_g)) + p_g log(p_g / (p_data + p_g))

    Written with the ratios rather than through D* in [0, 1]: where p_g is
    tiny, 1 - D* rounds to 0 in float64 and log(1 - D*) would be -inf,
    though p_g log(1 - D*) is practically 0.
    """
    p_data, p_g = np.asarray(p_data, np.float64), np.asarray(p_g, np.float64)
    total = p_data + p_g
    real, fake = p_data > 0, p_g > 0
    return float(np.sum(p_data[real] * np.log(p_data[real] / total[real]))
                 + np.sum(p_g[fake] * np.log(p_g[fake] / total[fake])))


# --------------------------------------------------------------------------- training D for a fixed G

class TableDiscriminator(nn.Module):
    """A free discriminator: one logit per grid point, l (M,), initialised at 0 (D = 1/2 everywhere)."""

    def __init__(self, m: int):
        super().__init__()
        self.logits = nn.Parameter(np.zeros(m, dtype=np.float64))

    def forward(self, x: Tensor) -> Tensor:
        return self.logits                                  # (M,): the grid is fixed, x is not needed


class MLPDiscriminator1d(nn.Module):
    """A tiny tinygan MLP on the line: x (M, 1) -> Linear(1, h) -> tanh -> Linear(h, h) -> tanh -> Linear(h, 1).

    The input is divided by ``scale`` so that tanh units see values of order 1.
    """

    def __init__(self, hidden: int = 32, scale: float = 4.0):
        super().__init__()
        self.scale = scale
        self.net = nn.Sequential(nn.Linear(1, hidden, dtype=np.float64), nn.Tanh(),
                                 nn.Linear(hidden, hidden, dtype=np.float64), nn.Tanh(),
                                 nn.Linear(hidden, 1, dtype=np.float64))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x * (1.0 / self.scale)).reshape(-1)  # (M,) logits


def train_discriminator(x: np.ndarray, p_data, p_g, model: str = "table", steps: int = 3000, lr: float = 0.05,
                        hidden: int = 32, seed: int = 0) -> tuple[np.ndarray, list[float]]:
    """Train D for a fixed G by gradient ascent on V (Adam minimising -V); returns ``(D(x) (M,), V history)``.

    Args:
        x: the grid (M,).
        p_data, p_g: probability vectors on the grid (M,).
        model: ``"table"`` (a logit per grid point: V is then concave and
            separable, and D must reach D* wherever p_data + p_g > 0) or
            ``"mlp"`` (a 1-32-32-1 tanh network: D can only approximate D*).
        steps, lr: Adam steps and learning rate; the rate falls linearly to 0
            over the last half, so the iterate settles instead of hovering.
        seed: the MLP's initial weights (the global generator is restored afterwards).
    """
    xt = Tensor(np.asarray(x, np.float64).reshape(-1, 1))            # (M, 1)
    pd, pg = Tensor(np.asarray(p_data, np.float64)), Tensor(np.asarray(p_g, np.float64))
    if model == "table":
        disc = TableDiscriminator(len(x))
    elif model == "mlp":
        saved = _random.get_rng_state()
        _random.manual_seed(seed)
        disc = MLPDiscriminator1d(hidden)
        _random.set_rng_state(saved)
    else:
        raise ValueError(f"train_discriminator: model must be 'table' or 'mlp', got {model!r}")
    opt = optim.Adam(disc.parameters(), lr=lr)
    history = []
    for step in range(steps):
        opt.param_groups[0]["lr"] = lr * min(1.0, 2.0 * (steps - step) / steps)   # constant, then linear to 0
        v = value_from_logits(disc(xt), pd, pg)        # V(D, G), a scalar
        opt.zero_grad()
        (-v).backward()                                # ascend V = descend -V
        opt.step()
        history.append(v.item())
    with no_grad():
        d = F.sigmoid(disc(xt)).numpy()
    return d, history


# --------------------------------------------------------------------------- saturating vs non-saturating

def generator_gradients(d_values, losses=("minimax", "nonsaturating")) -> dict:
    """dL_G/dl for each generator loss at D(G(z)) = ``d_values``, computed by tinygan's autograd.

    The logits are l = log(D / (1 - D)); each loss is tinygan's own
    ``get_loss(name).g_loss`` (a batch mean, so its gradient is multiplied by
    the batch size to give the per-sample derivative).  Also returned, for the
    picture in the notes: the derivative with respect to D itself,
    d/dD log(1 - D) = -1/(1 - D) and d/dD (-log D) = -1/D.

    Returns a dict of float64 arrays (K,): ``"D"``, ``"logit"``, one
    ``"dl_<loss>"`` per loss, and ``"dD_minimax"``, ``"dD_nonsaturating"``.
    """
    d = np.asarray(d_values, np.float64)
    logits = np.log(d) - np.log1p(-d)                                   # l = sigmoid^-1(D)
    out = {"D": d, "logit": logits}
    for name in losses:
        lt = Tensor(logits.copy(), requires_grad=True)
        (g,) = grad(get_loss(name).g_loss(lt), lt)                      # d mean(L_G) / dl
        out[f"dl_{name}"] = g.numpy() * len(d)                          # per-sample dL_G/dl
    out["dD_minimax"] = -1.0 / (1.0 - d)                                # d/dD log(1 - D)
    out["dD_nonsaturating"] = -1.0 / d                                  # d/dD (-log D)
    return out


def shift_generator_gradient(loss: str, theta: float, z: np.ndarray, slope: float = 4.0,
                             boundary: float = 0.0) -> tuple[float, float]:
    """The gradient reaching a generator *parameter*, for G(z) = theta + z and a fixed D.

    D(x) = sigmoid(slope (x - boundary)) says "real" to the right of the boundary.
    Moving theta to the left pushes the samples into the region D rejects.
    Returns ``(mean D(G(z)), dL_G/dtheta)``; by the chain rule
    dL_G/dtheta = mean(dL_G/dl) * slope, so it inherits the saturation above.
    """
    th = Tensor(np.array(float(theta)), requires_grad=True)
    x = th + Tensor(np.asarray(z, np.float64))                         # G(z) = theta + z   (N,)
    logits = (x - boundary) * slope                                     # D's logit          (N,)
    (g,) = grad(get_loss(loss).g_loss(logits), th)
    return float(F.sigmoid(logits).numpy().mean()), float(g.item())
