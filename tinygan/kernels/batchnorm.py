"""Batch normalisation kernels (arrays in, arrays out) and their slow references.

For an input ``x`` of shape (N, C) or (N, C, H, W), statistics are taken per
channel ``c`` over the M = N (or N*H*W) values of that channel::

    mu_c     = 1/M sum x                       (batch mean)
    var_c    = 1/M sum (x - mu_c)^2            (biased batch variance)
    xhat     = (x - mu_c) / sqrt(var_c + eps)
    y        = gamma_c * xhat + beta_c

Backward, with g = dL/dy (Ioffe & Szegedy 2015, simplified)::

    dbeta_c  = sum g
    dgamma_c = sum g * xhat
    dx       = gamma_c / (M sqrt(var_c + eps)) * (M g - dbeta_c - xhat * dgamma_c)
"""
from __future__ import annotations

import numpy

from tinygan.backend import get_array_module
from tinygan.kernels import cuda as _cuda


def reduce_axes(ndim: int) -> tuple[int, ...]:
    """The axes batch statistics are taken over: (0,) for (N, C), (0, 2, 3) for (N, C, H, W)."""
    return (0,) if ndim == 2 else (0,) + tuple(range(2, ndim))


def channel_shape(ndim: int, c: int) -> tuple[int, ...]:
    """Shape that broadcasts a per-channel vector against the input: (1, C, 1, 1)."""
    return (1, c) + (1,) * (ndim - 2)


def batch_norm_forward(x, gamma, beta, eps):
    """Training-mode forward.  Returns ``y, mean, var, xhat, invstd``.

    ``gamma``/``beta`` may be None (no affine transform).  ``mean`` and ``var``
    (biased) have shape (C,); ``xhat`` has x's shape.
    """
    xp = get_array_module(x)
    axes = reduce_axes(x.ndim)
    cs = channel_shape(x.ndim, x.shape[1])
    if xp is not numpy:  # CuPy: fused sum of squares + one normalise kernel (kernels/cuda)
        return _cuda.batch_norm_forward(x, gamma, beta, eps, axes, cs)
    mean = x.mean(axis=axes)                                  # (C,)
    centred = x - mean.reshape(cs)                            # (N, C, H, W)
    var = (centred * centred).mean(axis=axes)                 # (C,)
    invstd = 1 / xp.sqrt(var + x.dtype.type(eps))             # (C,)
    xhat = centred * invstd.reshape(cs)                       # (N, C, H, W)
    y = xhat
    if gamma is not None:
        y = y * gamma.reshape(cs)
    if beta is not None:
        y = y + beta.reshape(cs)
    return y, mean, var, xhat, invstd


def batch_norm_backward(g, xhat, invstd, gamma):
    """Training-mode backward.  Returns ``dx, dgamma, dbeta`` (see the module docstring)."""
    axes = reduce_axes(g.ndim)
    cs = channel_shape(g.ndim, g.shape[1])
    if get_array_module(g) is not numpy:  # CuPy: fused dgamma reduction + one dx kernel (kernels/cuda)
        return _cuda.batch_norm_backward(g, xhat, invstd, gamma, axes, cs)
    m = g.size // g.shape[1]
    dbeta = g.sum(axis=axes)                                  # (C,)
    dgamma = (g * xhat).sum(axis=axes)                        # (C,)
    scale = invstd if gamma is None else gamma * invstd       # (C,)
    # dx = gamma invstd / M * (M g - dbeta - xhat dgamma)
    dx = (g - (dbeta / m).reshape(cs) - xhat * (dgamma / m).reshape(cs)) * scale.reshape(cs)
    return dx, dgamma, dbeta


# --- slow references (loops over channels, float64 maths), used by the tests ---

def batch_norm_forward_ref(x, gamma, beta, eps):
    """Training-mode ``y`` one channel at a time, in float64 (the equations of the module docstring)."""
    x = numpy.asarray(x, dtype=numpy.float64)
    y = numpy.empty_like(x)
    for c in range(x.shape[1]):
        v = x[:, c]
        mu = v.sum() / v.size
        var = ((v - mu) ** 2).sum() / v.size
        y[:, c] = (v - mu) / numpy.sqrt(var + eps)
        if gamma is not None:
            y[:, c] *= gamma[c]
        if beta is not None:
            y[:, c] += beta[c]
    return y


def batch_norm_backward_ref(g, x, gamma, eps):
    """dx, dgamma, dbeta by the chain rule through mean and variance, one channel at a time (float64)."""
    g = numpy.asarray(g, dtype=numpy.float64)
    x = numpy.asarray(x, dtype=numpy.float64)
    dx = numpy.empty_like(x)
    c_count = x.shape[1]
    dgamma = numpy.zeros(c_count)
    dbeta = numpy.zeros(c_count)
    for c in range(c_count):
        v, gc = x[:, c], g[:, c]
        m = v.size
        mu = v.sum() / m
        var = ((v - mu) ** 2).sum() / m
        s = 1.0 / numpy.sqrt(var + eps)
        xhat = (v - mu) * s
        gam = 1.0 if gamma is None else gamma[c]
        dbeta[c] = gc.sum()
        dgamma[c] = (gc * xhat).sum()
        dxhat = gc * gam
        dvar = (dxhat * (v - mu)).sum() * -0.5 * s ** 3
        dmu = -(dxhat * s).sum() + dvar * (-2.0 / m) * (v - mu).sum()
        dx[:, c] = dxhat * s + dvar * 2.0 * (v - mu) / m + dmu / m
    return dx, dgamma, dbeta
