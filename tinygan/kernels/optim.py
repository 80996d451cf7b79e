"""Optimizer update kernels: in-place array updates, one parameter tensor at a time.

Each matches its ``torch.optim`` counterpart step for step (same order of
operations, so float32 trajectories agree to rounding).  ``p``, ``g`` and the
state arrays have the parameter's shape and dtype; updates happen in place.
"""
from __future__ import annotations

import math

import numpy

from tinygan.backend import get_array_module
from tinygan.kernels import cuda as _cuda


def adam_step_(p, g, m, v, *, lr: float, beta1: float, beta2: float, eps: float, step: int,
               weight_decay: float = 0.0) -> None:
    """One Adam step (Kingma & Ba 2015, as ``torch.optim.Adam``), in place::

        g     = g + wd p                      (L2 weight decay, if any)
        m     = b1 m + (1 - b1) g             (first moment)
        v     = b2 v + (1 - b2) g^2           (second moment)
        m_hat = m / (1 - b1^t),  v_hat = v / (1 - b2^t)
        p     = p - lr m_hat / (sqrt(v_hat) + eps)
    """
    xp = get_array_module(p)
    if xp is not numpy:  # CuPy: one fused kernel over p, m and v (kernels/cuda)
        return _cuda.adam_step_(p, g, m, v, lr=lr, beta1=beta1, beta2=beta2, eps=eps, step=step,
                                weight_decay=weight_decay)
    dt = p.dtype.type
    if weight_decay:
        g = g + dt(weight_decay) * p
    m *= dt(beta1)                                  # m = b1 m + (1 - b1) g
    m += dt(1 - beta1) * g
    v *= dt(beta2)                                  # v = b2 v + (1 - b2) g^2
    v += dt(1 - beta2) * (g * g)
    bias_correction1 = 1 - beta1 ** step
    bias_correction2_sqrt = math.sqrt(1 - beta2 ** step)
    denom = xp.sqrt(v)                              # sqrt(v_hat) + eps = sqrt(v) / sqrt(1 - b2^t) + eps
    denom /= dt(bias_correction2_sqrt)
    denom += dt(eps)
    step_size = lr / bias_correction1               # lr / (1 - b1^t), folded on the host
    p -= dt(step_size) * (m / denom)                # p = p - lr m_hat / (sqrt(v_hat) + eps)


def sgd_step_(p, g, buf, *, lr: float, momentum: float, dampening: float, weight_decay: float,
              nesterov: bool, first: bool):
    """One SGD step (``torch.optim.SGD``); returns the momentum buffer (None without momentum)::

        g   = g + wd p
        buf = g                              (first step)
        buf = mu buf + (1 - dampening) g     (later steps)
        d   = g + mu buf if nesterov else buf
        p   = p - lr d
    """
    dt = p.dtype.type
    if weight_decay:
        g = g + dt(weight_decay) * p
    if momentum:
        if first:
            buf = g.copy()
        else:
            buf *= dt(momentum)
            buf += dt(1 - dampening) * g
        g = g + dt(momentum) * buf if nesterov else buf
    p -= dt(lr) * g
    return buf


def rmsprop_step_(p, g, v, buf, gavg, *, lr: float, alpha: float, eps: float, weight_decay: float,
                  momentum: float, centered: bool) -> None:
    """One RMSprop step (``torch.optim.RMSprop``), in place::

        v   = a v + (1 - a) g^2
        avg = sqrt(v - gavg^2) + eps  (centered, gavg = a gavg + (1 - a) g)   else sqrt(v) + eps
        buf = mu buf + g / avg;  p = p - lr buf      (momentum)   else   p = p - lr g / avg
    """
    xp = get_array_module(p)
    if xp is not numpy:  # CuPy: one fused kernel over p, v (and buf, gavg) (kernels/cuda)
        return _cuda.rmsprop_step_(p, g, v, buf, gavg, lr=lr, alpha=alpha, eps=eps,
                                   weight_decay=weight_decay, momentum=momentum, centered=centered)
    dt = p.dtype.type
    if weight_decay:
        g = g + dt(weight_decay) * p
    v *= dt(alpha)
    v += dt(1 - alpha) * (g * g)
    if centered:
        gavg *= dt(alpha)
        gavg += dt(1 - alpha) * g
        avg = xp.sqrt(v - gavg * gavg)
    else:
        avg = xp.sqrt(v)
    avg += dt(eps)
    if momentum > 0:
        buf *= dt(momentum)
        buf += g / avg
        p -= dt(lr) * buf
    else:
        p -= dt(lr) * (g / avg)


def adam_step_ref(p, g, m, v, lr, beta1, beta2, eps, step, weight_decay=0.0):
    """Slow reference: the Adam equations element by element in float64; returns new (p, m, v)."""
    p, g, m, v = (numpy.asarray(a, dtype=numpy.float64).ravel().copy() for a in (p, g, m, v))
    for i in range(p.size):
        gi = g[i] + weight_decay * p[i]
        m[i] = beta1 * m[i] + (1 - beta1) * gi
        v[i] = beta2 * v[i] + (1 - beta2) * gi * gi
        m_hat = m[i] / (1 - beta1 ** step)
        v_hat = v[i] / (1 - beta2 ** step)
        p[i] -= lr * m_hat / (math.sqrt(v_hat) + eps)
    return p, m, v
