"""CuPy launchers for the kernels in :mod:`tinygan.kernels.cuda.sources`.

Arrays in, arrays out, no autograd; every function here takes CuPy arrays
and has a NumPy twin with the same semantics in ``tinygan/kernels/`` (named in
each docstring), which ``tests/test_cuda.py`` compares it with.

Kernels are built lazily, on first use, and memoised per (entry, dtype[, index
type]) with :func:`functools.lru_cache`, as ``chainer.backends.cuda`` does;
CuPy itself then compiles each one once per device and keeps the binary in its
on-disk cache (``~/.cupy/kernel_cache``).  Before each launch the arguments'
array module, dtype, shape and contiguity are checked, and a mismatch raises a
``TypeError``/``ValueError`` that names the kernel; host scalars are passed as
NumPy scalars of the array dtype, so nothing is promoted to float64 (NEP 50).
"""
from __future__ import annotations

import functools
import math

import numpy as np

from tinygan.backend import cupy_module, is_cupy_array
from tinygan.kernels.args import pair
from tinygan.kernels.cuda import sources as _src

__all__ = [
    "im2col_nhwc", "col2im_nhwc",
    "leaky_relu_forward", "leaky_relu_scale", "leaky_relu_backward",
    "batch_norm_forward", "batch_norm_backward",
    "adam_step_", "rmsprop_step_",
]

_BLOCK = 256                       # threads per block for the raw kernels
_MAX_GRID = 2**31 - 1              # gridDim.x limit (the kernels loop, grid-stride)
_INT32_LIMIT = 2**30               # int32 indexing when every flat index (+ one grid) fits


# ---------------------------------------------------------------------------
# lazily compiled, memoised kernel objects
# ---------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _raw_kernel(name: str, dtype: str, index_type: str):
    cp = cupy_module()
    r = _src.render(name, dtype, index_type)
    (fn,) = r.function_names
    return cp.RawKernel(r.code, fn)


@functools.lru_cache(maxsize=None)
def _elementwise_kernel(name: str, dtype: str):
    cp = cupy_module()
    r = _src.render(name, dtype)
    return cp.ElementwiseKernel(r.in_params, r.out_params, r.source.operation,
                                name=r.function_names[0], preamble=r.preamble)


@functools.lru_cache(maxsize=None)
def _reduction_kernel(name: str, dtype: str):
    cp = cupy_module()
    r = _src.render(name, dtype)
    s = r.source
    return cp.ReductionKernel(r.in_params, r.out_params, s.map_expr, s.reduce_expr,
                              s.post_map_expr, s.identity, name=r.function_names[0],
                              reduce_type=r.reduce_type, preamble=r.preamble)


def clear_cache() -> None:
    """Forget the memoised kernel objects (CuPy's own binary caches are kept)."""
    for f in (_raw_kernel, _elementwise_kernel, _reduction_kernel):
        f.cache_clear()


# ---------------------------------------------------------------------------
# argument checks
# ---------------------------------------------------------------------------

def _check_arrays(kernel: str, **arrays) -> np.dtype:
    """All given (non-None) arrays are CuPy arrays of one float dtype; return that dtype."""
    dtype = None
    for name, a in arrays.items():
        if a is None:
            continue
        if not is_cupy_array(a):
            raise TypeError(f"CUDA kernel {kernel}: {name} must be a cupy.ndarray, "
                            f"got {type(a).__module__}.{type(a).__name__}")
        if a.dtype.name not in _src.DTYPES:
            raise TypeError(f"CUDA kernel {kernel}: {name} has dtype {a.dtype} "
                            f"(shape {tuple(a.shape)}); expected float32 or float64")
        if dtype is None:
            dtype = a.dtype
        elif a.dtype != dtype:
            desc = ", ".join(f"{n} {v.dtype}" for n, v in arrays.items() if v is not None)
            raise TypeError(f"CUDA kernel {kernel}: all arrays must have one dtype, got {desc}")
    return dtype


def _check_bool(kernel: str, name: str, a) -> None:
    if not is_cupy_array(a) or a.dtype != np.bool_:
        what = f"dtype {a.dtype}" if hasattr(a, "dtype") else type(a).__name__
        raise TypeError(f"CUDA kernel {kernel}: {name} must be a boolean cupy.ndarray, got {what}")


def _check_same_shape(kernel: str, **arrays) -> None:
    shapes = {n: tuple(a.shape) for n, a in arrays.items() if a is not None}
    if len(set(shapes.values())) > 1:
        desc = ", ".join(f"{n} {s}" for n, s in shapes.items())
        raise ValueError(f"CUDA kernel {kernel}: arrays must have the same shape, got {desc}")


def _check_ndim(kernel: str, name: str, a, ndim: int) -> None:
    if a.ndim != ndim:
        raise ValueError(f"CUDA kernel {kernel}: {name} must be {ndim}-D, got shape {tuple(a.shape)}")


def _element_strides(kernel: str, name: str, a) -> tuple[int, ...]:
    """Strides of ``a`` in elements (the raw kernels index memory with them)."""
    if any(s % a.itemsize for s in a.strides):
        raise ValueError(f"CUDA kernel {kernel}: {name} has strides {a.strides} that are not "
                         f"multiples of its item size {a.itemsize}; pass cupy.ascontiguousarray({name})")
    return tuple(s // a.itemsize for s in a.strides)


def _extent(shape, strides) -> int:
    """Largest |flat offset| of an element of a strided array (for the index width)."""
    return sum(abs(st) * (n - 1) for n, st in zip(shape, strides) if n > 0)


def _positive_pair(kernel: str, name: str, v) -> tuple[int, int]:
    """:func:`~tinygan.kernels.args.pair`, and both numbers must be >= 1 (sizes and strides)."""
    a, b = pair(v, name, f"CUDA kernel {kernel}")
    if a < 1 or b < 1:
        raise ValueError(f"CUDA kernel {kernel}: {name} must be positive, got {v!r}")
    return a, b


def _check_windows(kernel, padded_hw, kernel_hw, stride, out_hw) -> None:
    """Every window (i, j) < (Ho, Wo) lies inside the padded image."""
    (Hp, Wp), (kh, kw), (sh, sw), (Ho, Wo) = padded_hw, kernel_hw, stride, out_hw
    if (Ho - 1) * sh + kh > Hp or (Wo - 1) * sw + kw > Wp:
        raise ValueError(f"CUDA kernel {kernel}: {Ho}x{Wo} windows of size {(kh, kw)} with stride "
                         f"{(sh, sw)} do not fit in the padded image {(Hp, Wp)}")


def _launch_raw(name: str, dtype: np.dtype, total: int, largest: int, args) -> None:
    """Launch raw kernel ``name`` over ``total`` elements (grid-stride loop)."""
    index_type = "int32" if largest < _INT32_LIMIT else "int64"
    itype = np.int32 if index_type == "int32" else np.int64
    grid = min((total + _BLOCK - 1) // _BLOCK, _MAX_GRID)
    kern = _raw_kernel(name, dtype.name, index_type)
    kern((grid,), (_BLOCK,), tuple(a if is_cupy_array(a) else itype(a) for a in args))


# ---------------------------------------------------------------------------
# im2col / col2im (twins: tinygan.kernels.conv._im2col / _col2im)
# ---------------------------------------------------------------------------

def im2col_nhwc(x_pad, kernel_hw, stride, out_hw):
    """Windows of a padded NHWC image as a matrix (N*Ho*Wo, kh*kw*C).

    .. math:: cols[(n, i, j), (p, q, c)] = x_{pad}[n, i s_h + p, j s_w + q, c]

    Same arguments and result as ``tinygan.kernels.conv._im2col`` (a new
    C-contiguous array).  ``x_pad`` (N, Hp, Wp, C) may have any strides (the
    kernel reads it through them).  One CUDA thread per element of cols.
    """
    name = "im2col_nhwc"
    dtype = _check_arrays(name, x_pad=x_pad)
    _check_ndim(name, "x_pad", x_pad, 4)
    sN, sH, sW, sC = _element_strides(name, "x_pad", x_pad)
    N, Hp, Wp, C = (int(s) for s in x_pad.shape)
    kh, kw = _positive_pair(name, "kernel_hw", kernel_hw)
    sh, sw = _positive_pair(name, "stride", stride)
    Ho, Wo = _positive_pair(name, "out_hw", out_hw)
    _check_windows(name, (Hp, Wp), (kh, kw), (sh, sw), (Ho, Wo))
    cp = cupy_module()
    with x_pad.device:
        cols = cp.empty((N * Ho * Wo, kh * kw * C), dtype=dtype)      # (N*Ho*Wo, kh*kw*C)
        if cols.size:
            largest = max(cols.size, _extent(x_pad.shape, (sN, sH, sW, sC))) + _BLOCK
            _launch_raw(name, dtype, cols.size, largest,
                        (x_pad, cols, cols.size, sN, sH, sW, sC, C, kh, kw, sh, sw, Ho, Wo))
    return cols


def col2im_nhwc(dcols, padded_hw, kernel_hw, stride, out_hw):
    """Adjoint of :func:`im2col_nhwc`: the padded NHWC gradient (N, Hp, Wp, C).

    .. math:: dx_{pad}[n, y, x, c] = \\sum_{i s_h + p = y,\\ j s_w + q = x} dcols[(n, i, j), (p, q, c)]

    Same arguments and result as ``tinygan.kernels.conv._col2im`` (a new
    C-contiguous array), computed as a gather: one thread per output element,
    no atomics, deterministic and bit-identical to the NumPy slice-adds.
    ``dcols`` (N*Ho*Wo, kh*kw*C) may have any strides.
    """
    name = "col2im_nhwc"
    dtype = _check_arrays(name, dcols=dcols)
    _check_ndim(name, "dcols", dcols, 2)
    sR, sK = _element_strides(name, "dcols", dcols)
    Hp, Wp = _positive_pair(name, "padded_hw", padded_hw)
    kh, kw = _positive_pair(name, "kernel_hw", kernel_hw)
    sh, sw = _positive_pair(name, "stride", stride)
    Ho, Wo = _positive_pair(name, "out_hw", out_hw)
    rows, row_len = (int(s) for s in dcols.shape)
    if rows % (Ho * Wo) or row_len % (kh * kw):
        raise ValueError(f"CUDA kernel {name}: dcols of shape {(rows, row_len)} is not "
                         f"(N*{Ho}*{Wo}, {kh}*{kw}*C)")
    _check_windows(name, (Hp, Wp), (kh, kw), (sh, sw), (Ho, Wo))
    N, C = rows // (Ho * Wo), row_len // (kh * kw)
    cp = cupy_module()
    with dcols.device:
        dx_pad = cp.empty((N, Hp, Wp, C), dtype=dtype)                # (N, Hp, Wp, C)
        if dx_pad.size:
            largest = max(dx_pad.size, _extent(dcols.shape, (sR, sK))) + _BLOCK
            _launch_raw(name, dtype, dx_pad.size, largest,
                        (dcols, dx_pad, dx_pad.size, sR, sK, Hp, Wp, C, kh, kw, sh, sw, Ho, Wo))
    return dx_pad


# ---------------------------------------------------------------------------
# LeakyReLU (twins: tinygan.kernels.activations)
# ---------------------------------------------------------------------------

def leaky_relu_forward(x, slope: float):
    """``y = x if x > 0 else slope x`` and ``mask = x > 0`` in one pass (layout of x kept)."""
    name = "leaky_relu_forward"
    dtype = _check_arrays(name, x=x)
    cp = cupy_module()
    with x.device:
        y = cp.empty_like(x)                                           # same layout as x
        mask = cp.empty_like(x, dtype=np.bool_)
        _elementwise_kernel(name, dtype.name)(x, dtype.type(slope), y, mask)
    return y, mask


def leaky_relu_scale(mask, slope: float, dtype):
    """``s = 1 where mask else slope`` as ``dtype``, in one pass."""
    name = "leaky_relu_scale"
    _check_bool(name, "mask", mask)
    dtype = np.dtype(dtype)
    if dtype.name not in _src.DTYPES:
        raise TypeError(f"CUDA kernel {name}: dtype must be float32 or float64, got {dtype}")
    cp = cupy_module()
    with mask.device:
        s = cp.empty_like(mask, dtype=dtype)
        _elementwise_kernel(name, dtype.name)(mask, dtype.type(slope), s)
    return s


def leaky_relu_backward(g, mask, slope: float):
    """``dx = g * (1 if mask else slope)`` in one pass."""
    name = "leaky_relu_backward"
    dtype = _check_arrays(name, g=g)
    _check_bool(name, "mask", mask)
    _check_same_shape(name, g=g, mask=mask)
    cp = cupy_module()
    with g.device:
        dx = cp.empty_like(g)
        _elementwise_kernel(name, dtype.name)(g, mask, dtype.type(slope), dx)
    return dx


# ---------------------------------------------------------------------------
# batch norm (twins: tinygan.kernels.batchnorm)
# ---------------------------------------------------------------------------

def _channel_vector(kernel, name, v, c, dtype, cs, fill):
    cp = cupy_module()
    if v is None:
        return cp.full(cs, fill, dtype=dtype)
    if tuple(v.shape) not in ((c,), cs):
        raise ValueError(f"CUDA kernel {kernel}: {name} of shape {tuple(v.shape)} does not "
                         f"match {c} channels")
    return v.reshape(cs)


def batch_norm_forward(x, gamma, beta, eps: float, axes, cs):
    """Training-mode batch norm; returns ``y, mean, var, xhat, invstd`` as the NumPy twin.

    ``axes`` are the reduced axes ((0,) or (0, 2, 3)) and ``cs`` the
    broadcastable channel shape ((1, C) or (1, C, 1, 1)).  Statistics come from
    CuPy reductions (the variance from one fused sum of squares, no centred
    temporary); ``xhat`` and ``y`` from one fused kernel that keeps x's layout
    (an NHWC-backed NCHW view stays NHWC).
    """
    name = "batch_norm_forward"
    dtype = _check_arrays(name, x=x, gamma=gamma, beta=beta)
    dt = dtype.type
    c = int(x.shape[1])
    m = x.size // c
    cp = cupy_module()
    with x.device:
        mean = x.mean(axis=axes)                                       # (C,)
        # var = 1/M sum (x - mu_c)^2
        var = _reduction_kernel("batch_norm_centered_sumsq", dtype.name)(
            x, mean.reshape(cs), axis=axes)                            # (C,)
        var /= dt(m)
        invstd = dt(1) / cp.sqrt(var + dt(eps))                        # (C,)
        g = _channel_vector(name, "gamma", gamma, c, dtype, cs, 1)
        b = _channel_vector(name, "beta", beta, c, dtype, cs, 0)
        xhat = cp.empty_like(x)                                        # same layout as x
        # without an affine transform y = xhat * 1 + 0 = xhat exactly: write it in place
        y = xhat if gamma is None and beta is None else cp.empty_like(x)
        _elementwise_kernel("batch_norm_normalize", dtype.name)(
            x, mean.reshape(cs), invstd.reshape(cs), g, b, xhat, y)
    return y, mean, var, xhat, invstd


def batch_norm_backward(g, xhat, invstd, gamma, axes, cs):
    """Training-mode backward; returns ``dx, dgamma, dbeta`` as the NumPy twin.

    .. math:: dx = \\gamma_c\\, invstd_c\\, (g - dbeta_c / M - \\hat{x}\\, dgamma_c / M)
    """
    name = "batch_norm_backward"
    dtype = _check_arrays(name, g=g, xhat=xhat, invstd=invstd, gamma=gamma)
    _check_same_shape(name, g=g, xhat=xhat)
    dt = dtype.type
    c = int(g.shape[1])
    m = g.size // c
    cp = cupy_module()
    with g.device:
        dbeta = g.sum(axis=axes)                                       # (C,)
        dgamma = _reduction_kernel("batch_norm_dot", dtype.name)(g, xhat, axis=axes)   # (C,)
        scale = invstd if gamma is None else gamma * invstd            # (C,)
        dx = cp.empty_like(g)
        _elementwise_kernel("batch_norm_backward", dtype.name)(
            g, xhat, (dbeta / dt(m)).reshape(cs), (dgamma / dt(m)).reshape(cs),
            scale.reshape(cs), dx)
    return dx, dgamma, dbeta


# ---------------------------------------------------------------------------
# optimizers (twins: tinygan.kernels.optim)
# ---------------------------------------------------------------------------

def adam_step_(p, g, m, v, *, lr: float, beta1: float, beta2: float, eps: float, step: int,
               weight_decay: float = 0.0) -> None:
    """One fused in-place Adam step over ``p``, ``m`` and ``v`` (as ``torch.optim.Adam``).

    Bias corrections are folded on the host, exactly as in the NumPy twin::

        step_size = lr / (1 - b1^t),   denom = sqrt(v) / sqrt(1 - b2^t) + eps
    """
    name = "adam_step"
    dtype = _check_arrays(name, p=p, g=g, m=m, v=v)
    _check_same_shape(name, p=p, g=g, m=m, v=v)
    dt = dtype.type
    bias_correction1 = 1 - beta1 ** step
    bias_correction2_sqrt = math.sqrt(1 - beta2 ** step)
    step_size = lr / bias_correction1
    with p.device:
        _elementwise_kernel(name, dtype.name)(
            g, dt(beta1), dt(1 - beta1), dt(beta2), dt(1 - beta2), dt(bias_correction2_sqrt),
            dt(eps), dt(step_size), dt(weight_decay), p, m, v)


def rmsprop_step_(p, g, v, buf, gavg, *, lr: float, alpha: float, eps: float, weight_decay: float,
                  momentum: float, centered: bool) -> None:
    """One fused in-place RMSprop step (as ``torch.optim.RMSprop``); see the NumPy twin.

    ``buf`` is needed when ``momentum > 0`` and ``gavg`` when ``centered``;
    otherwise they may be None (a one-element dummy is passed, never touched).
    """
    name = "rmsprop_step"
    use_momentum = momentum > 0
    if use_momentum and buf is None:
        raise ValueError(f"CUDA kernel {name}: momentum > 0 needs a momentum buffer")
    if centered and gavg is None:
        raise ValueError(f"CUDA kernel {name}: centered=True needs a grad_avg buffer")
    buf = buf if use_momentum else None
    gavg = gavg if centered else None
    dtype = _check_arrays(name, p=p, g=g, v=v, buf=buf, gavg=gavg)
    _check_same_shape(name, p=p, g=g, v=v, buf=buf, gavg=gavg)
    dt = dtype.type
    cp = cupy_module()
    with p.device:
        dummy = cp.empty((1,), dtype=dtype) if buf is None or gavg is None else None
        _elementwise_kernel(name, dtype.name)(
            g, dt(alpha), dt(1 - alpha), dt(eps), dt(lr), dt(weight_decay), dt(momentum),
            np.bool_(use_momentum), np.bool_(centered), p, v,
            dummy if buf is None else buf, dummy if gavg is None else gavg)
