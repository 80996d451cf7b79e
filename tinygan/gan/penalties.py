"""Constraints on the critic: the WGAN-GP gradient penalty, the R1 penalty and WGAN's weight clipping.

The two penalties are functions of grad_x D(x), so training the critic on
them needs second derivatives: ``tinygan.grad(..., create_graph=True)``
returns the input gradient as part of the graph, and the penalty's own
backward then reaches D's weights through it (double backpropagation).

All three act on the *critic's* side only.  A penalty returned here is added
to the critic's loss, never to the generator's: the interpolates x_hat below
are new leaves built from the data's values, so no gradient can reach the
generator through them.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from tinygan import random as _random
from tinygan.autograd import Tensor, grad, no_grad
from tinygan.backend import get_array_module, to_device
from tinygan.gan.recipes import DRAGAN, WGAN_GP

__all__ = ["gradient_penalty", "dragan_penalty", "r1_penalty", "weight_clip_"]

# DRAGAN's perturbation: delta = PERTURB_SCALE * std(x) * U[0, 1)^d (Kodali et al.'s reference code).
PERTURB_SCALE = 0.5

# Added under the square root of ||g||^2: the norm's derivative g / ||g|| is
# undefined at g = 0 (a dead critic); with it the penalty's gradient stays finite.
NORM_EPS = 1e-12


def _call(critic: Callable, x: Tensor, labels) -> Tensor:
    """critic(x), or critic(x, labels) for a conditional critic; logits (N,)."""
    return critic(x) if labels is None else critic(x, labels)


def _per_sample_sq_norm(g: Tensor) -> Tensor:
    """||g_n||^2 over all non-batch dims: (N, ...) -> (N,)."""
    return g.square().reshape(g.shape[0], -1).sum(axis=1)


def gradient_penalty(critic: Callable, real: Tensor, fake: Tensor, weight: float = WGAN_GP.gp_weight, labels=None,
                     generator: np.random.Generator | None = None) -> Tensor:
    """WGAN-GP's penalty (Gulrajani et al. 2017, eq. 3), for the critic's loss only.

        eps ~ U[0, 1] per sample,   x_hat = eps x + (1 - eps) G(z)
        GP = lambda E[(||grad_x_hat D(x_hat)||_2 - 1)^2]

    with the 2-norm taken over all non-batch dimensions of each sample.
    ``real`` and ``fake`` are (N, ...) batches of the same shape (``fake``
    is used as a constant: pass ``fake.detach()`` or not, no gradient reaches
    G).  ``eps`` is drawn on the host from ``generator`` (a NumPy Generator)
    or the global :func:`tinygan.random.default_generator`, then moved to the
    data's device.  ``labels`` are passed on to a conditional critic,
    ``critic(x_hat, labels)``.
    """
    if real.shape != fake.shape:
        raise ValueError(f"gradient_penalty: real {real.shape} and fake {fake.shape} must have the same shape")
    rng = _random.default_generator() if generator is None else generator
    n = real.shape[0]
    eps_host = rng.random((n,) + (1,) * (real.ndim - 1)).astype(real.dtype)   # (N, 1, 1, 1)
    eps = to_device(eps_host, real.device)
    # x_hat: a new leaf on the line between each real and fake sample, (N, C, H, W)
    x_hat = Tensor(eps * real._data + (1 - eps) * fake._data, requires_grad=True)
    scores = _call(critic, x_hat, labels)                                      # (N,)
    (g,) = grad(scores.sum(), x_hat, create_graph=True)                        # (N, C, H, W): row n = dD(x_hat_n)/dx_hat_n
    norm = (_per_sample_sq_norm(g) + NORM_EPS).sqrt()                          # (N,)  ||g_n||_2
    return weight * (norm - 1.0).square().mean()                               # lambda E[(||g|| - 1)^2]


def dragan_penalty(critic: Callable, real: Tensor, weight: float = DRAGAN.gp_weight, labels=None,
                   generator: np.random.Generator | None = None, scale: float = PERTURB_SCALE) -> Tensor:
    """DRAGAN's penalty (Kodali et al. 2017) around the real data, for D's loss only.

        delta = scale std(x) u,   u ~ U[0, 1)^d per element,   alpha ~ U[0, 1] per sample
        x_hat = x + alpha delta
        GP = lambda E[(||grad_x_hat D(x_hat)||_2 - 1)^2]

    as the authors' reference code draws it (``x + 0.5 * x.std() * np.random.random(x.shape)``,
    then a random point between x and its perturbation; std over the whole batch,
    lambda = 10).  ``u`` then ``alpha`` are drawn on the host from ``generator``
    (or the global generator) and moved to the data's device.  No fake sample is
    involved, so no gradient reaches G.
    """
    rng = _random.default_generator() if generator is None else generator
    xp = get_array_module(real._data)
    n = real.shape[0]
    u = to_device(rng.random(real.shape).astype(real.dtype), real.device)                 # (N, ...) U[0, 1)
    alpha = to_device(rng.random((n,) + (1,) * (real.ndim - 1)).astype(real.dtype), real.device)   # (N, 1, ...)
    delta = (scale * xp.std(real._data)).astype(real.dtype) * u                                # 0.5 std(x) u
    x_hat = Tensor(real._data + alpha * delta, requires_grad=True)                             # a new leaf near x
    scores = _call(critic, x_hat, labels)                                                      # (N,)
    (g,) = grad(scores.sum(), x_hat, create_graph=True)                                        # (N, ...)
    norm = (_per_sample_sq_norm(g) + NORM_EPS).sqrt()                                          # (N,) ||g_n||_2
    return weight * (norm - 1.0).square().mean()                                               # lambda E[(||g|| - 1)^2]


def r1_penalty(critic: Callable, real: Tensor, gamma: float, labels=None) -> Tensor:
    """The R1 penalty (Mescheder et al. 2018, eq. 9) on real data, for the critic's loss.

        R1 = gamma / 2 E_{x ~ p_data}[ ||grad_x D(x)||^2 ]

    It pushes D's gradient on the data manifold to zero, which makes the
    non-saturating GAN converge locally.  ``labels`` are passed on to a
    conditional critic.
    """
    x = Tensor(real._data, requires_grad=True)                                   # a leaf with the data's values
    scores = _call(critic, x, labels)                                          # (N,)
    (g,) = grad(scores.sum(), x, create_graph=True)                            # (N, ...)
    return (0.5 * gamma) * _per_sample_sq_norm(g).mean()                       # gamma/2 E[||g||^2]


def weight_clip_(params, c: float) -> None:
    """WGAN's Lipschitz constraint (Arjovsky et al. 2017, Algorithm 1, line 7): w <- clip(w, -c, c).

    Clamps in place every parameter of ``params`` (a module, or the list of
    parameters the critic's optimizer updates); batch norm's scale and shift
    are parameters and are clipped too, as the paper's code does; buffers are
    left alone.
    """
    if not c > 0:
        raise ValueError(f"weight_clip_: c must be positive, got {c}")
    params = params.parameters() if hasattr(params, "parameters") else params
    with no_grad():
        for p in params:
            xp = get_array_module(p._data)
            xp.clip(p._data, -c, c, out=p._data)
