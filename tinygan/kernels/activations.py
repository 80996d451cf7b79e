"""Element-wise activation kernels (arrays in, arrays out).

LeakyReLU with slope ``a``::

    y  = x          if x > 0
         a x        otherwise
    dx = g * s,     s = 1 if x > 0 else a

``s`` is built with mask arithmetic (``mask * (1 - a) + a``) rather than
``where``: on these CPUs ``np.where`` was about 6x slower for this
(``shared/perf-notes.md``).
"""
from __future__ import annotations


def leaky_relu_forward(x, slope: float):
    """Returns ``y`` and the boolean mask ``x > 0`` that backward needs."""
    mask = x > 0                                       # (same shape as x), bool
    scale = leaky_relu_scale(mask, slope, x.dtype)
    return x * scale, mask


def leaky_relu_scale(mask, slope: float, dtype):
    """s = 1 where mask else slope, as ``dtype``."""
    s = mask.astype(dtype)
    s *= dtype.type(1.0 - slope)
    s += dtype.type(slope)
    return s


def leaky_relu_ref(x, slope: float):
    """Slow reference: one element at a time."""
    import numpy as np
    x = np.asarray(x)
    flat = [v if v > 0 else slope * v for v in x.ravel().tolist()]
    return np.array(flat, dtype=x.dtype).reshape(x.shape)
