"""Element-wise activation kernels (arrays in, arrays out).

LeakyReLU with slope ``a``::

    y  = x          if x > 0
         a x        otherwise
    dx = g * s,     s = 1 if x > 0 else a

For 0 <= a <= 1 the forward is ``y = max(x, a x)`` (two passes).  ``s`` is
built with mask arithmetic (``mask * (1 - a) + a``) rather than ``where``: on
these CPUs ``np.where`` was about 6x slower for this (``shared/perf-notes.md``).
"""
from __future__ import annotations

import numpy

from tinygan.backend import get_array_module
from tinygan.kernels import cuda as _cuda


def leaky_relu_forward(x, slope: float):
    """Returns ``y`` and the boolean mask ``x > 0`` that backward needs."""
    if get_array_module(x) is not numpy:  # CuPy: y and mask in one fused kernel (kernels/cuda)
        return _cuda.leaky_relu_forward(x, slope)
    mask = x > 0                                       # (same shape as x), bool
    if 0.0 <= slope <= 1.0:
        # y = max(x, a x) for 0 <= a <= 1: two passes instead of building s (2.5x faster here).
        y = numpy.multiply(x, x.dtype.type(slope), out=numpy.empty_like(x))   # a x (keeps x's memory layout)
        numpy.maximum(x, y, out=y)
        return y, mask
    return x * leaky_relu_scale(mask, slope, x.dtype), mask


def leaky_relu_scale(mask, slope: float, dtype):
    """s = 1 where mask else slope, as ``dtype``."""
    if get_array_module(mask) is not numpy:  # CuPy: one fused kernel (kernels/cuda)
        return _cuda.leaky_relu_scale(mask, slope, dtype)
    s = mask.astype(dtype)
    s *= dtype.type(1.0 - slope)
    s += dtype.type(slope)
    return s


def leaky_relu_backward(g, mask, slope: float):
    """dx = g * s, s = 1 where mask else slope (the array form of LeakyReLU's backward)."""
    if get_array_module(g) is not numpy:  # CuPy: one fused kernel (kernels/cuda)
        return _cuda.leaky_relu_backward(g, mask, slope)
    return g * leaky_relu_scale(mask, slope, g.dtype)


# --- slow references (one element at a time), used by the tests -------------------

def leaky_relu_ref(x, slope: float):
    """Slow reference of :func:`leaky_relu_forward`'s ``y``: ``x if x > 0 else slope x``, element by element."""
    x = numpy.asarray(x)
    flat = [v if v > 0 else slope * v for v in x.ravel().tolist()]
    return numpy.array(flat, dtype=x.dtype).reshape(x.shape)


def leaky_relu_backward_ref(g, x, slope: float):
    """Slow reference of :func:`leaky_relu_backward`: ``dx = g if x > 0 else slope g``, element by element."""
    g, x = numpy.asarray(g), numpy.asarray(x)
    flat = [gv if xv > 0 else slope * gv for gv, xv in zip(g.ravel().tolist(), x.ravel().tolist())]
    return numpy.array(flat, dtype=g.dtype).reshape(g.shape)
