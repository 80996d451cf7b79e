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
from tinygan.kernels import jit as _jit
from tinygan.kernels import layout as _layout
from tinygan.kernels import threads as _threads


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


# --- the CPU training path: blocked, threaded, no xhat kept -----------------------
#
# ``BatchNormTrain`` (tinygan/functional.py) calls these two on NumPy arrays.
# They keep no normalised copy of x (backward reads x itself, which the graph
# holds anyway: one activation less per batch-norm layer), and run on every
# core over blocks of about 256 KiB (tinygan/kernels/threads.py), so each
# block's several ufunc calls read it from cache:
#
#   forward   stats:     per block b: S1_b = sum (x - K), S2_b = sum (x - K)^2, K a shift near the
#                        mean (the first line's mean, so nothing cancels); mean = K + S1/M,
#                        var = S2/M - (S1/M)^2  -- x read once from memory
#             normalise: y = x * a + b,  a = gamma invstd,  b = beta - mean a          (as PyTorch's CPU kernel)
#   backward  sums:      dbeta = sum g,  dgamma = invstd sum g (x - mean)
#             dx:        dx = (g - dbeta/M - (x - mean) invstd dgamma/M) gamma invstd
#
# Per-block partial sums are added in block order (in float64), and the
# blocks depend only on the shape: the floats are the same on 1 or 16 threads.
# Layouts without a blocked view (see tinygan/kernels/layout.py) use the plain
# NumPy code below, which is also the fast path's reference in the tests.


def fast_path(x) -> bool:
    """True when :func:`batch_norm_train_forward` / ``_backward`` apply (NumPy arrays; CuPy uses its kernels)."""
    return get_array_module(x) is numpy


def _partials(count: int, c: int, k: int):
    return numpy.zeros((k, count, c), dtype=numpy.float64)


def _shift(spec, xv):
    """A per-channel shift K near the batch mean: the mean of x's first line (or plane), in x's dtype."""
    c = spec.channels
    if spec.kind == "cl":
        line = xv[0, 0]                                    # (T,): T / C values of each channel
        return line.reshape(-1, c).mean(axis=0, dtype=numpy.float64).astype(xv.dtype)
    return xv[0].mean(axis=1, dtype=numpy.float64).astype(xv.dtype)     # (C,): one plane per channel


def _stats(spec, xv, dt):
    """mean, var (C,) in float64 from the blocks of view ``xv``.

    Per block b: S1_b = sum (x - K), S2_b = sum (x - K)^2 with a shift K near
    the mean (the first line's mean), so that var = S2/M - (S1/M)^2 does not
    cancel; x is read once from memory.
    """
    c = spec.channels
    part = _partials(len(spec.blocks), c, 2)              # [S1, S2] per block
    shift = _shift(spec, xv)
    k_v = spec.channel_vector(shift)

    def block(i):
        b = spec.part(xv, i)
        t = _threads.scratch(b.shape, dt)
        local = numpy.empty(c, dtype=dt)
        numpy.subtract(b, spec.for_block(k_v, i), out=t)
        spec.block_sum(t, i, local)
        part[0, i] = local
        numpy.multiply(t, t, out=t)
        spec.block_sum(t, i, local)
        part[1, i] = local

    _threads.run(block, len(spec.blocks), spec.nbytes)
    m = xv.size // c if spec.kind != "flat" else 0
    d = part[0].sum(axis=0) / m                            # mean - K
    var = numpy.maximum(part[1].sum(axis=0) / m - d * d, 0.0)
    return shift.astype(numpy.float64) + d, var


def _plain_forward(x, gamma, beta, eps):
    """The whole-array form of the training forward (small inputs, odd layouts): no xhat kept."""
    dt = x.dtype
    axes = reduce_axes(x.ndim)
    cs = channel_shape(x.ndim, x.shape[1])
    mean = x.mean(axis=axes)                                  # (C,)
    centred = x - mean.reshape(cs)
    var = numpy.multiply(centred, centred).mean(axis=axes)    # (C,)
    invstd = 1 / numpy.sqrt(var + dt.type(eps))
    a = invstd if gamma is None else gamma * invstd           # y = (x - mean) a + beta
    y = numpy.multiply(centred, a.reshape(cs), out=centred)
    if beta is not None:
        y += beta.reshape(cs)
    return y, mean, var, invstd


def _plain_backward(g, x, mean, invstd, gamma):
    """The whole-array form of the training backward, from x."""
    axes = reduce_axes(g.ndim)
    cs = channel_shape(g.ndim, g.shape[1])
    m = g.size // g.shape[1]
    dbeta = g.sum(axis=axes)                                  # (C,)
    centred = x - mean.reshape(cs)
    dgamma = numpy.multiply(g, centred).sum(axis=axes) * invstd
    scale = invstd if gamma is None else gamma * invstd
    k = invstd * dgamma / m                                   # xhat dgamma / M = (x - mean) k
    dx = numpy.multiply(centred, k.reshape(cs), out=centred)
    numpy.subtract(g, dx, out=dx)
    dx -= (dbeta / m).reshape(cs)
    dx *= scale.reshape(cs)
    return dx, dgamma, dbeta


def batch_norm_train_forward(x, gamma, beta, eps):
    """Training-mode forward on NumPy arrays.  Returns ``y, mean, var, invstd`` (no xhat; see above).

    ``y`` has x's memory layout (channels-last stays channels-last); ``mean``,
    ``var`` (biased) and ``invstd`` are (C,) in x's dtype.  Inputs under
    :data:`tinygan.kernels.threads.MIN_PARALLEL_BYTES` (chosen by size alone,
    so the floats never depend on the thread count) take the whole-array
    form, where blocks and threads would cost more than they save.
    """
    compiled = _jit.batch_norm_train_forward(x, gamma, beta, eps)     # numba, when installed
    if compiled is not None:
        return compiled
    dt = x.dtype
    if x.nbytes < _threads.MIN_PARALLEL_BYTES:
        return _plain_forward(x, gamma, beta, eps)
    y = numpy.empty_like(x)
    spec = _layout.lines([x, y], channels=True)
    if spec is None:                                      # an odd layout: the plain code
        return _plain_forward(x, gamma, beta, eps)
    xv, yv = spec.views([x, y])
    mean64, var64 = _stats(spec, xv, dt)
    mean, var = mean64.astype(dt), var64.astype(dt)
    invstd = 1 / numpy.sqrt(var + dt.type(eps))           # as the plain code: in x's dtype
    a = invstd if gamma is None else gamma * invstd       # y = x a + b
    b = -mean * a if beta is None else beta - mean * a
    a_v, b_v = spec.channel_vector(a.astype(dt)), spec.channel_vector(b.astype(dt))

    def block(i):
        xb, yb = spec.part(xv, i), spec.part(yv, i)
        numpy.multiply(xb, spec.for_block(a_v, i), out=yb)
        numpy.add(yb, spec.for_block(b_v, i), out=yb)

    _threads.run(block, len(spec.blocks), spec.nbytes)
    return y, mean, var, invstd


def batch_norm_train_backward(g, x, mean, invstd, gamma):
    """Training-mode backward from x itself.  Returns ``dx, dgamma, dbeta`` (see above).

    ``dx`` has g's memory layout; ``mean``, ``invstd`` are the forward's.
    """
    compiled = _jit.batch_norm_train_backward(g, x, mean, invstd, gamma)   # numba, when installed
    if compiled is not None:
        return compiled
    dt = g.dtype
    if g.nbytes < _threads.MIN_PARALLEL_BYTES:
        return _plain_backward(g, x, mean, invstd, gamma)
    dx = numpy.empty_like(g)
    spec = _layout.lines([x, g, dx], channels=True)
    if spec is None:
        return _plain_backward(g, x, mean, invstd, gamma)
    xv, gv, dxv = spec.views([x, g, dx])
    c = spec.channels
    m = g.size // c
    part = _partials(len(spec.blocks), c, 2)              # [sum g, sum g (x - mean)] per block
    mean_v = spec.channel_vector(mean.astype(dt))

    def sums(i):
        xb, gb = spec.part(xv, i), spec.part(gv, i)
        local = numpy.empty(c, dtype=dt)
        spec.block_sum(gb, i, local)
        part[0, i] = local
        t = _threads.scratch(xb.shape, dt)
        numpy.subtract(xb, spec.for_block(mean_v, i), out=t)
        numpy.multiply(t, gb, out=t)
        spec.block_sum(t, i, local)
        part[1, i] = local

    _threads.run(sums, len(spec.blocks), spec.nbytes * 2)
    invstd64 = invstd.astype(numpy.float64)
    dbeta64 = part[0].sum(axis=0)
    dgamma64 = part[1].sum(axis=0) * invstd64
    scale = invstd64 if gamma is None else gamma.astype(numpy.float64) * invstd64
    # dx = (g - (x - mean) k - c0) scale,  k = invstd dgamma / M,  c0 = dbeta / M
    k_v = spec.channel_vector((invstd64 * dgamma64 / m).astype(dt))
    c_v = spec.channel_vector((dbeta64 / m).astype(dt))
    s_v = spec.channel_vector(scale.astype(dt))

    def grad_x(i):
        xb, gb, db = spec.part(xv, i), spec.part(gv, i), spec.part(dxv, i)
        t = _threads.scratch(xb.shape, dt)
        numpy.subtract(xb, spec.for_block(mean_v, i), out=t)
        numpy.multiply(t, spec.for_block(k_v, i), out=t)
        numpy.subtract(gb, t, out=db)
        numpy.subtract(db, spec.for_block(c_v, i), out=db)
        numpy.multiply(db, spec.for_block(s_v, i), out=db)

    _threads.run(grad_x, len(spec.blocks), spec.nbytes * 2)
    return dx, dgamma64.astype(dt), dbeta64.astype(dt)


# --- sync batch norm: statistics over the batches of every process -------------------
#
# Data-parallel training (tinygan/run/distributed.py) splits a global batch of N
# samples over R processes; with --sync-bn each layer normalises with the global
# batch's statistics.  ``allreduce(a)`` returns the element-wise sum of ``a``
# (a float64 vector) over the processes.  Sums are taken in float64; for R = 1
# the maths is the one-process kernels' up to the order of the additions.


def batch_norm_sync_forward(x, gamma, beta, eps, allreduce):
    """Training forward over every process's batch.  Returns ``y, mean, var, invstd, count``.

    With M_r values per channel on process r and M = sum_r M_r::

        mu  = 1/M sum_r sum x              all-reduce 1: [sum x (C,), M_r]
        var = 1/M sum_r sum (x - mu)^2     all-reduce 2: (C,), two passes so nothing cancels
        y   = (x - mu) gamma / sqrt(var + eps) + beta

    ``mean``, ``var`` (biased), ``invstd`` are (C,) in x's dtype, the same on
    every process; ``count`` is M as a 0-d float64 array (for the unbiased
    running variance).
    Works on NumPy and CuPy arrays alike.
    """
    xp = get_array_module(x)
    dt = x.dtype
    axes = reduce_axes(x.ndim)
    cs = channel_shape(x.ndim, x.shape[1])
    c = x.shape[1]
    first = xp.empty(c + 1, dtype=xp.float64)                 # [sum x (C,), M_r]
    first[:c] = x.sum(axis=axes, dtype=xp.float64)
    first[c] = x.size // c
    first = allreduce(first)
    count = first[c]                                          # M, a 0-d float64 array (no host sync on a GPU)
    mean = (first[:c] / count).astype(dt)                     # (C,)
    centred = x - mean.reshape(cs)                            # (N, C, H, W)
    second = allreduce(xp.square(centred).sum(axis=axes, dtype=xp.float64))   # (C,) sum (x - mu)^2
    var = (second / count).astype(dt)
    invstd = 1 / xp.sqrt(var + dt.type(eps))                  # (C,)
    a = invstd if gamma is None else gamma * invstd           # y = (x - mu) a + beta
    y = centred * a.reshape(cs)
    if beta is not None:
        y += beta.reshape(cs)
    return y, mean, var, invstd, count


def batch_norm_sync_backward(g, x, mean, invstd, gamma, count, allreduce):
    """Training backward over every process's batch.  Returns ``dx, dgamma, dbeta``.

    ``g`` = dL_r/dy on this process.  The two gradient sums are all-reduced
    (one call on [sum g, sum g (x - mu)], 2C values), so that ``dx`` is the
    derivative of sum_r L_r, as for one process holding the concatenated batch::

        dx = gamma invstd / M (M g - sum_all g - xhat sum_all g xhat)

    ``dgamma`` and ``dbeta`` are this process's own sums: averaging them over
    the processes (the gradient all-reduce) gives the global batch's gradient.
    """
    xp = get_array_module(g)
    dt = g.dtype
    axes = reduce_axes(g.ndim)
    cs = channel_shape(g.ndim, g.shape[1])
    c = g.shape[1]
    centred = x - mean.reshape(cs)                            # (N, C, H, W)
    local = xp.empty(2 * c, dtype=xp.float64)                 # [sum g, sum g (x - mu)] on this process
    local[:c] = g.sum(axis=axes, dtype=xp.float64)
    local[c:] = (g * centred).sum(axis=axes, dtype=xp.float64)
    dbeta, dgamma = local[:c].astype(dt), (local[c:] * invstd).astype(dt)
    total = allreduce(local.copy())
    sum_g, sum_gxhat = total[:c] / count, total[c:] * invstd / count     # (C,) each, per value
    scale = invstd if gamma is None else gamma * invstd       # (C,)
    dx = g - sum_g.astype(dt).reshape(cs) - centred * (invstd * sum_gxhat).astype(dt).reshape(cs)
    dx *= scale.reshape(cs)
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
