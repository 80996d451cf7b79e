"""Element-wise activation kernels (arrays in, arrays out).

LeakyReLU with slope ``a``::

    y  = x          if x > 0
         a x        otherwise
    dx = g * s,     s = 1 if x > 0 else a

For 0 < a <= 1 the forward is ``y = max(x, a x)`` (two passes; not for a = 0, where
``0 x`` is NaN at x = +inf and the max with it too: there ``y = x (x > 0)``).  ``s`` is
built with mask arithmetic (``mask * (1 - a) + a``) rather than ``where``: on
these CPUs ``np.where`` was about 6x slower for this (``shared/perf-notes.md``).
"""
from __future__ import annotations

import numpy

from tinygan.backend import get_array_module
from tinygan.kernels import cuda as _cuda
from tinygan.kernels import jit as _jit
from tinygan.kernels import layout as _layout
from tinygan.kernels import threads as _threads


def leaky_relu_forward(x, slope: float):
    """Returns ``y`` and the boolean mask ``x > 0`` that backward needs."""
    if get_array_module(x) is not numpy:  # CuPy: y and mask in one fused kernel (kernels/cuda)
        return _cuda.leaky_relu_forward(x, slope)
    mask = x > 0                                       # (same shape as x), bool
    if 0.0 < slope <= 1.0:
        # y = max(x, a x) for 0 < a <= 1: two passes instead of building s (2.5x faster here).
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


# --- the CPU path: no mask, blocked, threaded --------------------------------------
#
# For a slope a >= 0, y > 0 exactly where x > 0 (y = a x <= 0 elsewhere), so
# backward can read the slope map off the *output*: forward writes y and
# nothing else (no mask pass, no mask memory), and the graph holds y anyway
# as the next layer's input.  PyTorch's in-place LeakyReLU (DCGAN's) also
# keeps its output for backward.  Both passes run over cache-sized blocks on
# every core (tinygan/kernels/threads.py); element-wise, so the result does
# not depend on the blocks or the thread count.


def output_backward(x, slope: float) -> bool:
    """True when :func:`leaky_relu` / :func:`leaky_relu_backward_from_output` apply (NumPy, slope >= 0)."""
    return get_array_module(x) is numpy and slope >= 0


def leaky_relu(x, slope: float):
    """``y = max(x, a x)`` (``min`` for a > 1) on NumPy arrays, a >= 0; y has x's memory layout.

    Below :data:`tinygan.kernels.threads.MIN_PARALLEL_BYTES` (or on one
    thread) two whole-array calls; above, the same two calls per block, on
    every thread.  Element-wise: the floats are the same either way.
    """
    compiled = _jit.leaky_relu(x, slope)                               # numba, when installed
    if compiled is not None:
        return compiled
    y = numpy.empty_like(x)
    a = x.dtype.type(slope)
    pick = numpy.maximum if slope <= 1 else numpy.minimum
    spec = _layout.lines([x, y]) if _threads.parallel(x.nbytes) else None
    if spec is None:
        _leaky_into(x, y, a, pick)
        return y
    xv, yv = spec.views([x, y])

    def block(i):
        _leaky_into(spec.part(xv, i), spec.part(yv, i), a, pick)

    _threads.run(block, len(spec.blocks), spec.nbytes)
    return y


def _leaky_into(xb, yb, a, pick):
    """yb = max(x, a x) (``pick`` = min for a > 1); for a = 0, x (x > 0): 0 x would be NaN at x = +inf."""
    if a == 0:
        numpy.multiply(xb, xb > 0, out=yb)                            # x, or 0 x (-0.0, NaN at -inf: PyTorch's)
        return
    numpy.multiply(xb, a, out=yb)
    pick(xb, yb, out=yb)


def _scale_into(yb, slope, t, m):
    """t = 1 where yb > 0 else slope (t float and m bool scratch, yb's shape).

    Measured on 64K float32 numbers: compare into bool 5 us, the bool -> float
    copy 6 us, a multiply or add by a scalar 6 us each; ``maximum`` with a
    scalar 25 us and ``heaviside`` 340 us, so neither is used.
    """
    numpy.greater(yb, 0, out=m)
    numpy.copyto(t, m)                                                # step(y): 1.0 / 0.0
    numpy.multiply(t, t.dtype.type(1.0 - slope), out=t)               # step (1 - a) + a: 1 or a
    numpy.add(t, t.dtype.type(slope), out=t)


def leaky_relu_backward_from_output(g, y, slope: float):
    """dx = g where y > 0 else slope g (NumPy, slope >= 0; y the forward's output); dx has g's layout."""
    compiled = _jit.leaky_relu_backward_from_output(g, y, slope)      # numba, when installed
    if compiled is not None:
        return compiled
    dt = g.dtype
    if not _threads.parallel(g.nbytes):
        return g * leaky_relu_scale_from_output(y, slope, dt)
    dx = numpy.empty_like(g)
    spec = _layout.lines([y, g, dx])
    if spec is None:
        return g * leaky_relu_scale_from_output(y, slope, dt)
    yv, gv, dv = spec.views([y, g, dx])

    def block(i):
        yb, gb, db = spec.part(yv, i), spec.part(gv, i), spec.part(dv, i)
        t = _threads.scratch(yb.shape, dt)
        _scale_into(yb, slope, t, _threads.scratch(yb.shape, numpy.bool_, slot=1))
        numpy.multiply(gb, t, out=db)

    _threads.run(block, len(spec.blocks), spec.nbytes * 2)
    return dx


def leaky_relu_scale_from_output(y, slope: float, dtype):
    """s = 1 where y > 0 else slope, as ``dtype``, in y's memory layout (NumPy, whole arrays)."""
    s = (y > 0).astype(dtype)                                         # keeps y's layout (order K)
    s *= dtype.type(1.0 - slope)
    s += dtype.type(slope)
    return s


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
