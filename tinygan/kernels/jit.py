"""Compiled CPU kernels for batch norm and LeakyReLU (optional: numba, ``pip install -e ".[fast]"``).

NumPy runs one pass over memory per ufunc call, so batch norm's training
forward (shift, sum, square, sum, multiply, add) and backward take six or
more passes even when :mod:`tinygan.kernels.threads` keeps each block in
cache.  With numba installed, the functions below do the same maths in one
loop nest per pass over x, on every core (``prange``), and the NumPy kernels
in ``batchnorm.py`` and ``activations.py`` call them first; without numba, or
with ``TINYGAN_NUMBA=0`` (or :func:`set_enabled`\\ ``(False)``), nothing here
runs and the NumPy code is what computes.  Measured gains and the command:
``docs/benchmarks.md`` (The compiled kernels).

The maths is the NumPy kernels' (see the block comment in ``batchnorm.py``):

    forward   S1 = sum (x - K),  S2 = sum (x - K)^2  per channel, K the first line's mean
              mean = K + S1/M,  var = S2/M - (S1/M)^2,  y = x a + b,  a = gamma invstd, b = beta - mean a
    backward  dbeta = sum g,  dgamma = invstd sum g (x - mean)
              dx = (g - (x - mean) k - c0) s,  k = invstd dgamma / M,  c0 = dbeta / M,  s = gamma invstd
    LeakyReLU y = x if x > 0 else a x;  dx = g if y > 0 else a g   (0 <= a <= 1)

Sums are taken in float64 per chunk of rows, and the chunks come from the
shape alone and are added in order, so the floats do not depend on the number
of threads.  They are not bit for bit the NumPy kernels' (another order of
additions; the tests compare both with the slow references).

Two memory layouts are compiled: channels-last ("cl": (N, C, H, W) with C
fastest, or (N, C), seen as an (M, C) matrix) and planes ("pl": C-contiguous
NCHW, seen as (N, C, H W)).  Anything else returns None and the caller's NumPy
code runs.
"""
from __future__ import annotations

import os
import threading

import numpy

from tinygan.kernels import threads as _threads

try:                                        # optional: the [fast] extra
    import numba
    from numba import prange
except ImportError:                         # pragma: no cover - exercised where numba is absent
    numba = None

_ENABLED = numba is not None and os.environ.get("TINYGAN_NUMBA", "1").strip() != "0"

# numba runs its parallel loops on OpenMP where it can (its "omp" layer: about 4x cheaper to start a
# loop than its own "workqueue" pool, which matters at these sizes; see _launch for its threads' wait
# policy).  GNU OpenMP does not survive
# fork(): a child forked after the parent's threads started would hang in its first parallel loop.
# So a process forked after a compiled call computes with the NumPy kernels (_after_fork), and one
# compiled call runs at a time (_LOCK: numba's workqueue layer is not safe for two Python threads).
_LOCK = threading.Lock()
_LAUNCHED = False                   # a compiled call has run in this process: numba's threads exist


def _after_fork() -> None:
    global _ENABLED, _LOCK
    _LOCK = threading.Lock()
    if _LAUNCHED:
        _ENABLED = False


if numba is not None and hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)

# Rows of the (M, C) view per chunk of the channels-last reductions: enough work per chunk to
# amortise a thread's start, few enough chunks to keep every core busy; from the shape alone.
CHUNK_ELEMENTS = 1 << 16
MAX_CHUNKS = 64


def available() -> bool:
    """True when numba imports here."""
    return numba is not None


def enabled() -> bool:
    """True when the compiled kernels run (numba installed, not turned off)."""
    return _ENABLED


def set_enabled(flag: bool) -> bool:
    """Turn the compiled kernels on or off (on needs numba); returns the previous setting."""
    global _ENABLED
    previous = _ENABLED
    if flag and numba is None:
        raise RuntimeError('the compiled kernels need numba: pip install -e ".[fast]"')
    _ENABLED = bool(flag)
    return previous


_THREADS_SET = (None, None)         # (Python thread, count) of the last numba.set_num_threads


def _use_threads() -> None:
    """numba's thread count := tinygan's (``set_num_threads``, ``$OMP_NUM_THREADS``, ...); call under _LOCK."""
    global _LAUNCHED, _THREADS_SET
    n = max(1, min(_threads.get_num_threads(), numba.config.NUMBA_NUM_THREADS))
    key = (threading.get_ident(), n)
    if _THREADS_SET != key:                 # numba's setting is per Python thread
        if not _LAUNCHED:
            _launch(n)
        numba.set_num_threads(n)
        _THREADS_SET = key
    _LAUNCHED = True


def _launch(n: int) -> None:
    """Start numba's threads with OpenMP's passive wait policy (unless the environment sets one).

    Between two parallel loops OpenMP's threads spin by default, and in a training step they would
    spin while OpenBLAS's threads run the convolutions on the same two cores (measured on the 2-core
    Xeon: the 28 px iteration's GEMMs 80 -> 110-122 ms, docs/benchmarks.md).  GNU OpenMP reads
    OMP_WAIT_POLICY once, when numba loads it here; the variable is set for that moment only, so
    processes started later (PyTorch's, in the bench) keep their own default.
    """
    if os.environ.get("OMP_WAIT_POLICY") or os.environ.get("GOMP_SPINCOUNT"):
        numba.set_num_threads(n)
        return
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    try:
        numba.set_num_threads(n)            # loads the threading layer: OpenMP reads its settings now
    finally:
        del os.environ["OMP_WAIT_POLICY"]


def _chunks(rows: int, cols: int) -> int:
    """How many chunks of rows a reduction over an (rows, cols) matrix uses (shape alone)."""
    per = max(1, CHUNK_ELEMENTS // max(cols, 1))
    return max(1, min(MAX_CHUNKS, -(-rows // per)))


# --- layouts ---------------------------------------------------------------------------------

def _cl(a):
    """(M, C) view of a channels-last (N, C, H, W) or C-contiguous (N, C) array, else None."""
    if a.ndim == 2:
        return a if a.flags.c_contiguous else None
    if a.ndim == 4:
        t = a.transpose(0, 2, 3, 1)
        if t.flags.c_contiguous:
            return t.reshape(-1, a.shape[1])
    return None


def _pl(a):
    """(N, C, H W) view of a C-contiguous (N, C, H, W) array, else None."""
    if a.ndim == 4 and a.flags.c_contiguous:
        return a.reshape(a.shape[0], a.shape[1], -1)
    return None


def _views(arrays):
    """("cl" | "pl", views) when every array has the same shape and one of the two layouts, else None."""
    a0 = arrays[0]
    if a0.size == 0 or any(a.shape != a0.shape or a.dtype != a0.dtype for a in arrays):
        return None
    for kind, view in (("cl", _cl), ("pl", _pl)):
        vs = [view(a) for a in arrays]
        if all(v is not None for v in vs):
            return kind, vs
    return None


def _flat(arrays):
    """1-D views of same-shaped arrays that share one dense memory order (C order or channels-last), else None."""
    a0 = arrays[0]
    if a0.size == 0 or any(a.shape != a0.shape or a.dtype != a0.dtype for a in arrays):
        return None
    if all(a.flags.c_contiguous for a in arrays):
        return [a.reshape(-1) for a in arrays]
    vs = [_cl(a) for a in arrays] if a0.ndim == 4 else [None]
    if all(v is not None for v in vs):
        return [v.reshape(-1) for v in vs]
    return None


# --- the compiled loops ----------------------------------------------------------------------

if numba is not None:
    _jit = numba.njit(parallel=True, cache=True)

    @_jit
    def _cl_shifted_sums(x, shift, nchunk):                 # x (M, C); -> (nchunk, 2, C) float64
        m, c = x.shape
        part = numpy.zeros((nchunk, 2, c))
        step = (m + nchunk - 1) // nchunk
        for k in prange(nchunk):
            s1 = numpy.zeros(c)
            s2 = numpy.zeros(c)
            for i in range(k * step, min(m, (k + 1) * step)):
                for j in range(c):
                    d = numpy.float64(x[i, j] - shift[j])     # x - K in x's dtype, as the NumPy kernel
                    s1[j] += d
                    s2[j] += d * d
            part[k, 0] = s1
            part[k, 1] = s2
        return part

    @_jit
    def _pl_shifted_sums(x, shift):                         # x (N, C, S); -> (1, 2, C) float64
        n, c, s = x.shape
        part = numpy.zeros((1, 2, c))
        for j in prange(c):
            s1 = 0.0
            s2 = 0.0
            for i in range(n):
                for q in range(s):
                    d = numpy.float64(x[i, j, q] - shift[j])
                    s1 += d
                    s2 += d * d
            part[0, 0, j] = s1
            part[0, 1, j] = s2
        return part

    @_jit
    def _cl_affine(x, a, b, y):                             # y = x a + b per channel, (M, C)
        m, c = x.shape
        for i in prange(m):
            for j in range(c):
                y[i, j] = x[i, j] * a[j] + b[j]

    @_jit
    def _pl_affine(x, a, b, y):                             # (N, C, S)
        n, c, s = x.shape
        for i in prange(n):
            for j in range(c):
                aj, bj = a[j], b[j]
                for q in range(s):
                    y[i, j, q] = x[i, j, q] * aj + bj

    @_jit
    def _cl_grad_sums(g, x, mean, nchunk):                  # -> (nchunk, 2, C): sum g, sum g (x - mean)
        m, c = x.shape
        part = numpy.zeros((nchunk, 2, c))
        step = (m + nchunk - 1) // nchunk
        for k in prange(nchunk):
            s0 = numpy.zeros(c)
            s1 = numpy.zeros(c)
            for i in range(k * step, min(m, (k + 1) * step)):
                for j in range(c):
                    gv = g[i, j]
                    s0[j] += gv
                    s1[j] += numpy.float64(gv * (x[i, j] - mean[j]))
            part[k, 0] = s0
            part[k, 1] = s1
        return part

    @_jit
    def _pl_grad_sums(g, x, mean):
        n, c, s = x.shape
        part = numpy.zeros((1, 2, c))
        for j in prange(c):
            s0 = 0.0
            s1 = 0.0
            for i in range(n):
                for q in range(s):
                    gv = g[i, j, q]
                    s0 += gv
                    s1 += numpy.float64(gv * (x[i, j, q] - mean[j]))
            part[0, 0, j] = s0
            part[0, 1, j] = s1
        return part

    @_jit
    def _cl_grad_x(g, x, mean, k, c0, s, dx):               # dx = (g - (x - mean) k - c0) s
        m, c = x.shape
        for i in prange(m):
            for j in range(c):
                dx[i, j] = (g[i, j] - (x[i, j] - mean[j]) * k[j] - c0[j]) * s[j]

    @_jit
    def _pl_grad_x(g, x, mean, k, c0, s, dx):
        n, c, q_ = x.shape
        for i in prange(n):
            for j in range(c):
                for q in range(q_):
                    dx[i, j, q] = (g[i, j, q] - (x[i, j, q] - mean[j]) * k[j] - c0[j]) * s[j]

    @_jit
    def _leaky(x, y, a):                                    # flat
        for i in prange(x.size):
            v = x[i]
            y[i] = v if v > 0 else v * a

    @_jit
    def _leaky_grad_from_output(g, y, a, dx):               # flat; y the forward's output
        for i in prange(g.size):
            dx[i] = g[i] if y[i] > 0 else g[i] * a


# --- what the NumPy kernels call -------------------------------------------------------------

def _shift(kind, xv):
    """K (C,) in x's dtype: the mean of the first line (cl: the first row block's values; pl: image 0's planes)."""
    if kind == "cl":
        c = xv.shape[1]
        rows = max(1, min(xv.shape[0], -(-4096 // c)))          # about 4096 values, whole rows
        return xv[:rows].mean(axis=0, dtype=numpy.float64).astype(xv.dtype)
    return xv[0].mean(axis=1, dtype=numpy.float64).astype(xv.dtype)


def batch_norm_train_forward(x, gamma, beta, eps):
    """:func:`tinygan.kernels.batchnorm.batch_norm_train_forward` compiled: ``y, mean, var, invstd``, or None."""
    if not _ENABLED or not isinstance(x, numpy.ndarray) or x.dtype.kind != "f":
        return None
    found = _views([x])                                       # before allocating: a fallback needs no y
    if found is None:
        return None
    kind, (xv,) = found
    y = numpy.empty_like(x)                                   # x's memory layout, so the same kind of view
    yv = (_cl if kind == "cl" else _pl)(y)
    dt = x.dtype
    shift = _shift(kind, xv)
    with _LOCK:
        _use_threads()
        if kind == "cl":
            part = _cl_shifted_sums(xv, shift, _chunks(*xv.shape)).sum(axis=0)
            m = xv.shape[0]
        else:
            part = _pl_shifted_sums(xv, shift)[0]
            m = xv.shape[0] * xv.shape[2]
    d = part[0] / m                                           # mean - K
    var64 = numpy.maximum(part[1] / m - d * d, 0.0)
    mean, var = (shift.astype(numpy.float64) + d).astype(dt), var64.astype(dt)
    invstd = 1 / numpy.sqrt(var + dt.type(eps))               # in x's dtype, as the NumPy kernels
    a = invstd if gamma is None else gamma * invstd
    b = -mean * a if beta is None else beta - mean * a
    with _LOCK:
        _use_threads()
        (_cl_affine if kind == "cl" else _pl_affine)(xv, a.astype(dt), b.astype(dt), yv)
    return y, mean, var, invstd


def batch_norm_train_backward(g, x, mean, invstd, gamma):
    """:func:`tinygan.kernels.batchnorm.batch_norm_train_backward` compiled: ``dx, dgamma, dbeta``, or None."""
    if not _ENABLED or not isinstance(g, numpy.ndarray) or g.dtype.kind != "f":
        return None
    found = _views([g, x])
    if found is None:
        return None
    kind, (gv, xv) = found
    dx = numpy.empty_like(g)                                  # g's memory layout
    dxv = (_cl if kind == "cl" else _pl)(dx)
    dt = g.dtype
    mean_ = mean.astype(dt)
    with _LOCK:
        _use_threads()
        if kind == "cl":
            part = _cl_grad_sums(gv, xv, mean_, _chunks(*xv.shape)).sum(axis=0)
            m = xv.shape[0]
        else:
            part = _pl_grad_sums(gv, xv, mean_)[0]
            m = xv.shape[0] * xv.shape[2]
    invstd64 = invstd.astype(numpy.float64)
    dbeta64, dgamma64 = part[0], part[1] * invstd64
    scale = invstd64 if gamma is None else gamma.astype(numpy.float64) * invstd64
    k, c0 = (invstd64 * dgamma64 / m).astype(dt), (dbeta64 / m).astype(dt)
    with _LOCK:
        _use_threads()
        (_cl_grad_x if kind == "cl" else _pl_grad_x)(gv, xv, mean_, k, c0, scale.astype(dt), dxv)
    return dx, dgamma64.astype(dt), dbeta64.astype(dt)


def leaky_relu(x, slope: float):
    """``max(x, a x)`` (0 <= a <= 1) compiled, in x's memory layout; None where it does not apply."""
    if not _ENABLED or not isinstance(x, numpy.ndarray) or not 0 <= slope <= 1 or x.dtype.kind != "f":
        return None
    y = numpy.empty_like(x)
    flat = _flat([x, y])
    if flat is None:
        return None
    with _LOCK:
        _use_threads()
        _leaky(flat[0], flat[1], x.dtype.type(slope))
    return y


def leaky_relu_backward_from_output(g, y, slope: float):
    """dx = g where y > 0 else a g (0 <= a <= 1) compiled, in g's layout; None where it does not apply."""
    if (not _ENABLED or not isinstance(g, numpy.ndarray) or not isinstance(y, numpy.ndarray)
            or not 0 <= slope <= 1 or g.dtype.kind != "f" or y.dtype != g.dtype):
        return None
    dx = numpy.empty_like(g)
    flat = _flat([g, y, dx])
    if flat is None:
        return None
    with _LOCK:
        _use_threads()
        _leaky_grad_from_output(flat[0], flat[1], g.dtype.type(slope), flat[2])
    return dx
