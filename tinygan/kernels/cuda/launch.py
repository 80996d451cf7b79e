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

All host-side arithmetic -- grid sizes, the index width, the raw kernels'
integer arguments, the optimizers' folded scalars, batch norm's counts and
its two-stage split, the memory order the element-wise kernels iterate in --
lives in the pure functions of the first section, which take shapes, strides
and numbers (no CuPy) and are tested on the CPU against the NumPy twins
(``tests/test_cuda_standin.py``).  The launchers below only check, allocate
and launch; CI runs them on a CPU stand-in for CuPy (``tests/fakecupy``).
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
    # pure host-side arithmetic
    "grid_size", "index_type", "extent", "im2col_plan", "col2im_plan", "memory_order",
    "adam_scalars", "rmsprop_scalars", "reduce_count", "two_stage_groups", "channels_last_rows",
]

_BLOCK = 256                       # threads per block for the raw kernels
_MAX_GRID = 2**31 - 1              # gridDim.x limit (the kernels loop, grid-stride)
_INT32_LIMIT = 2**30               # int32 indexing when every flat index (+ one grid) fits
_STAGE1_OUTPUTS = 16384            # batch norm: aim stage 1 of a channels-last reduction at this many outputs
_MIN_GROUP_ROWS = 16               # ... each summing at least this many rows
_MIN_TWO_STAGE_ROWS = 1024         # ... and only when M is at least this (a small M is one cheap launch)


# ---------------------------------------------------------------------------
# host-side arithmetic: pure functions of shapes, strides and numbers (no CuPy)
# ---------------------------------------------------------------------------

def grid_size(total: int, block: int = _BLOCK) -> int:
    """Blocks for ``total`` elements at ``block`` threads each: ceil(total / block), at most gridDim.x's limit.

    The raw kernels loop grid-stride, so a capped grid still covers every
    element; ``total`` must be positive (an empty launch is skipped).
    """
    if total < 1 or block < 1:
        raise ValueError(f"grid_size: total and block must be positive, got {total} and {block}")
    return min((total + block - 1) // block, _MAX_GRID)


def index_type(largest: int, limit: int | None = None) -> str:
    """``"int32"`` when every flat index the kernel computes is below the limit, else ``"int64"``.

    ``largest`` is the largest index the kernel can form: the bigger of the
    element count and the farthest memory offset it reads, plus one grid of
    threads (the grid-stride loop's last increment).  The limit is 2^30,
    leaving headroom below 2^31 for the intermediate products.
    """
    return "int32" if largest < (_INT32_LIMIT if limit is None else limit) else "int64"


def extent(shape, strides) -> int:
    """Largest |flat offset| (in elements) of an element of a strided array."""
    return sum(abs(st) * (n - 1) for n, st in zip(shape, strides) if n > 0)


def im2col_plan(kernel: str, x_shape, x_strides, kernel_hw, stride, out_hw) -> dict:
    """Everything :func:`im2col_nhwc` computes on the host, from ``x_pad``'s shape and element strides.

    Returns ``{"cols_shape", "total", "index_type", "grid", "args"}`` where
    ``args`` are the kernel's integer arguments after the two pointers, in
    its parameter order: ``total, sN, sH, sW, sC, C, kh, kw, sh, sw, Ho, Wo``.
    Checks the window arithmetic (``ValueError`` naming ``kernel``).
    """
    if len(x_shape) != 4:
        raise ValueError(f"CUDA kernel {kernel}: x_pad must be 4-D, got shape {tuple(x_shape)}")
    N, Hp, Wp, C = (int(v) for v in x_shape)
    kh, kw = _positive_pair(kernel, "kernel_hw", kernel_hw)
    sh, sw = _positive_pair(kernel, "stride", stride)
    Ho, Wo = _positive_pair(kernel, "out_hw", out_hw)
    _check_windows(kernel, (Hp, Wp), (kh, kw), (sh, sw), (Ho, Wo))
    cols_shape = (N * Ho * Wo, kh * kw * C)
    total = cols_shape[0] * cols_shape[1]
    largest = max(total, extent(x_shape, x_strides)) + _BLOCK
    sN, sH, sW, sC = (int(v) for v in x_strides)
    return {"cols_shape": cols_shape, "total": total, "index_type": index_type(largest),
            "grid": grid_size(total) if total else 0,
            "args": (total, sN, sH, sW, sC, C, kh, kw, sh, sw, Ho, Wo)}


def col2im_plan(kernel: str, dcols_shape, dcols_strides, padded_hw, kernel_hw, stride, out_hw) -> dict:
    """Everything :func:`col2im_nhwc` computes on the host (see :func:`im2col_plan`).

    ``args``: ``total, sR, sK, Hp, Wp, C, kh, kw, sh, sw, Ho, Wo``; also
    ``"dx_shape"`` (N, Hp, Wp, C).
    """
    if len(dcols_shape) != 2:
        raise ValueError(f"CUDA kernel {kernel}: dcols must be 2-D, got shape {tuple(dcols_shape)}")
    Hp, Wp = _positive_pair(kernel, "padded_hw", padded_hw)
    kh, kw = _positive_pair(kernel, "kernel_hw", kernel_hw)
    sh, sw = _positive_pair(kernel, "stride", stride)
    Ho, Wo = _positive_pair(kernel, "out_hw", out_hw)
    rows, row_len = (int(v) for v in dcols_shape)
    if rows % (Ho * Wo) or row_len % (kh * kw):
        raise ValueError(f"CUDA kernel {kernel}: dcols of shape {(rows, row_len)} is not "
                         f"(N*{Ho}*{Wo}, {kh}*{kw}*C)")
    _check_windows(kernel, (Hp, Wp), (kh, kw), (sh, sw), (Ho, Wo))
    N, C = rows // (Ho * Wo), row_len // (kh * kw)
    dx_shape = (N, Hp, Wp, C)
    total = N * Hp * Wp * C
    largest = max(total, extent(dcols_shape, dcols_strides)) + _BLOCK
    sR, sK = (int(v) for v in dcols_strides)
    return {"dx_shape": dx_shape, "total": total, "index_type": index_type(largest),
            "grid": grid_size(total) if total else 0,
            "args": (total, sR, sK, Hp, Wp, C, kh, kw, sh, sw, Ho, Wo)}


def memory_order(shape, strides) -> tuple[int, ...]:
    """The axes of an array from the largest |stride| to the smallest (size-1 axes first).

    Transposing every operand of an element-wise kernel by this permutation
    makes a dense array (an NHWC buffer seen as NCHW, say) C-contiguous, so
    CuPy's indexer merges its dimensions into one instead of walking a 4-D
    index with stride C in the innermost loop.  The identity for a
    C-contiguous array.
    """
    return tuple(sorted(range(len(shape)), key=lambda d: (shape[d] != 1, -abs(strides[d]), d)))


def adam_scalars(*, lr: float, beta1: float, beta2: float, eps: float, step: int,
                 weight_decay: float = 0.0) -> tuple[float, ...]:
    """The ``adam_step`` kernel's scalar arguments, in its parameter order, as Python floats.

    ``(beta1, 1 - beta1, beta2, 1 - beta2, sqrt(1 - beta2^t), eps, lr / (1 - beta1^t), weight_decay)``:
    the bias corrections folded on the host exactly as the NumPy twin
    (``tinygan.kernels.optim.adam_step_``) and ``torch.optim.Adam`` do::

        p = p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
    """
    if step < 1:
        raise ValueError(f"CUDA kernel adam_step: step must be >= 1, got {step}")
    bias_correction1 = 1 - beta1 ** step
    bias_correction2_sqrt = math.sqrt(1 - beta2 ** step)
    step_size = lr / bias_correction1
    return (beta1, 1 - beta1, beta2, 1 - beta2, bias_correction2_sqrt, eps, step_size, weight_decay)


def rmsprop_scalars(*, lr: float, alpha: float, eps: float, weight_decay: float, momentum: float,
                    centered: bool) -> tuple:
    """The ``rmsprop_step`` kernel's scalar arguments, in its parameter order.

    ``(alpha, 1 - alpha, eps, lr, weight_decay, momentum, use_momentum, centered)``.
    """
    return (alpha, 1 - alpha, eps, lr, weight_decay, momentum, bool(momentum > 0), bool(centered))


def reduce_count(shape) -> int:
    """M, the number of values per channel batch norm averages: size / C for (N, C, ...) inputs."""
    c = int(shape[1])
    return math.prod(int(v) for v in shape) // c if c else 0


def channels_last_rows(shape, strides) -> bool:
    """True when (N, C, *spatial) can be seen as (M, C) rows of a C-contiguous buffer without a copy.

    An NHWC buffer seen as NCHW (what the convolution kernels return), or a
    contiguous (N, C) matrix.  ``strides`` in elements.
    """
    ndim = len(shape)
    perm = (0,) + tuple(range(2, ndim)) + (1,)
    expect = 1
    for d in reversed(perm):
        if shape[d] != 1 and strides[d] != expect:
            return False
        expect *= shape[d]
    return True


@functools.lru_cache(maxsize=256)
def two_stage_groups(m: int, c: int) -> int:
    """How many row groups the first stage of a channels-last batch-norm reduction uses (1: one stage).

    CuPy reduces an (M, C) matrix over its rows with about C/32 blocks: a few
    blocks for a whole GPU.  Splitting the M rows into G groups first (an
    (G, M/G, C) sum over axis 1, G*C outputs, then a G-row sum) gives it work
    for every SM.  G is a power of two dividing M, aiming at
    ``_STAGE1_OUTPUTS`` outputs with at least ``_MIN_GROUP_ROWS`` rows each;
    below 4 groups, or for M < ``_MIN_TWO_STAGE_ROWS``, one stage is kept.
    """
    if m < _MIN_TWO_STAGE_ROWS or c < 1:
        return 1
    g = m & -m                                         # the largest power of two dividing m
    cap = min(max(1, _STAGE1_OUTPUTS // c), m // _MIN_GROUP_ROWS)
    while g > cap:
        g //= 2
    return g if g >= 4 else 1


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


def _launch_raw(name: str, dtype: np.dtype, plan: dict, arrays) -> None:
    """Launch raw kernel ``name`` as ``plan`` says (:func:`im2col_plan`): the arrays, then its integers."""
    itype = np.int32 if plan["index_type"] == "int32" else np.int64
    kern = _raw_kernel(name, dtype.name, plan["index_type"])
    kern((plan["grid"],), (_BLOCK,), tuple(arrays) + tuple(itype(v) for v in plan["args"]))


def _permuted(order, *arrays):
    """Each array (of the order's ndim) transposed by ``order``; others (scalars, None) as they are."""
    if order == tuple(range(len(order))):
        return arrays
    return tuple(a.transpose(order) if getattr(a, "ndim", -1) == len(order) else a for a in arrays)


def _elements(a) -> tuple[int, ...]:
    return tuple(s // a.itemsize for s in a.strides)


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
    plan = im2col_plan(name, x_pad.shape, _element_strides(name, "x_pad", x_pad), kernel_hw, stride, out_hw)
    cp = cupy_module()
    with x_pad.device:
        cols = cp.empty(plan["cols_shape"], dtype=dtype)               # (N*Ho*Wo, kh*kw*C)
        if plan["total"]:
            _launch_raw(name, dtype, plan, (x_pad, cols))
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
    plan = col2im_plan(name, dcols.shape, _element_strides(name, "dcols", dcols), padded_hw, kernel_hw,
                       stride, out_hw)
    cp = cupy_module()
    with dcols.device:
        dx_pad = cp.empty(plan["dx_shape"], dtype=dtype)               # (N, Hp, Wp, C)
        if plan["total"]:
            _launch_raw(name, dtype, plan, (dcols, dx_pad))
    return dx_pad


# ---------------------------------------------------------------------------
# LeakyReLU (twins: tinygan.kernels.activations)
# ---------------------------------------------------------------------------
# Every fused element-wise launch passes its operands transposed into the
# memory order of its main array (memory_order): for an NHWC buffer seen as
# NCHW the kernel then walks memory in order and CuPy's indexer collapses the
# iteration to one dimension (two with per-channel operands), instead of a
# 4-D index with stride C innermost.  The outputs are allocated with
# empty_like (x's layout) and returned untransposed.

def leaky_relu_forward(x, slope: float):
    """``y = x if x > 0 else slope x`` and ``mask = x > 0`` in one pass (layout of x kept)."""
    name = "leaky_relu_forward"
    dtype = _check_arrays(name, x=x)
    cp = cupy_module()
    with x.device:
        y = cp.empty_like(x)                                           # same layout as x
        mask = cp.empty_like(x, dtype=np.bool_)
        order = memory_order(x.shape, _elements(x))
        xo, yo, mo = _permuted(order, x, y, mask)
        _elementwise_kernel(name, dtype.name)(xo, dtype.type(slope), yo, mo)
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
        mo, so = _permuted(memory_order(mask.shape, _elements(mask)), mask, s)
        _elementwise_kernel(name, dtype.name)(mo, dtype.type(slope), so)
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
        go, mo, dxo = _permuted(memory_order(g.shape, _elements(g)), g, mask, dx)
        _elementwise_kernel(name, dtype.name)(go, mo, dtype.type(slope), dxo)
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


def _row_groups(*arrays):
    """``(G, M/G, C)`` views of channels-last (N, C, ...) arrays for a two-stage reduction, or None.

    None when an array is not channels-last (:func:`channels_last_rows`) or
    :func:`two_stage_groups` keeps one stage.
    """
    shape = tuple(arrays[0].shape)
    if len(shape) < 2 or not all(channels_last_rows(a.shape, _elements(a)) for a in arrays):
        return None
    c, m = int(shape[1]), reduce_count(shape)
    g = two_stage_groups(m, c)
    if g == 1:
        return None
    perm = (0,) + tuple(range(2, len(shape))) + (1,)
    return tuple(a.transpose(perm).reshape(g, m // g, c) for a in arrays)


def batch_norm_forward(x, gamma, beta, eps: float, axes, cs):
    """Training-mode batch norm; returns ``y, mean, var, xhat, invstd`` as the NumPy twin.

    ``axes`` are the reduced axes ((0,) or (0, 2, 3)) and ``cs`` the
    broadcastable channel shape ((1, C) or (1, C, 1, 1)).  Statistics come from
    CuPy reductions (the variance from one fused sum of squares, no centred
    temporary), in two stages for a channels-last input (:func:`two_stage_groups`);
    ``xhat`` and ``y`` from one fused kernel that keeps x's layout (an
    NHWC-backed NCHW view stays NHWC) and walks x in memory order.
    """
    name = "batch_norm_forward"
    dtype = _check_arrays(name, x=x, gamma=gamma, beta=beta)
    dt = dtype.type
    c = int(x.shape[1])
    m = reduce_count(x.shape)
    cp = cupy_module()
    sumsq = _reduction_kernel("batch_norm_centered_sumsq", dtype.name)
    with x.device:
        groups = _row_groups(x)
        if groups is None:
            mean = x.sum(axis=axes)                                    # (C,)
            mean /= dt(m)
            # var = 1/M sum (x - mu_c)^2
            var = sumsq(x, mean.reshape(cs), axis=axes)                # (C,)
        else:
            (x3,) = groups                                             # (G, M/G, C)
            mean = x3.sum(axis=1).sum(axis=0)                          # (C,)
            mean /= dt(m)
            var = sumsq(x3, mean.reshape(1, 1, c), axis=1).sum(axis=0)  # (C,)
        var /= dt(m)
        invstd = dt(1) / cp.sqrt(var + dt(eps))                        # (C,)
        g = _channel_vector(name, "gamma", gamma, c, dtype, cs, 1)
        b = _channel_vector(name, "beta", beta, c, dtype, cs, 0)
        xhat = cp.empty_like(x)                                        # same layout as x
        # without an affine transform y = xhat * 1 + 0 = xhat exactly: write it in place
        y = xhat if gamma is None and beta is None else cp.empty_like(x)
        operands = _permuted(memory_order(x.shape, _elements(x)),
                             x, mean.reshape(cs), invstd.reshape(cs), g, b, xhat, y)
        _elementwise_kernel("batch_norm_normalize", dtype.name)(*operands)
    return y, mean, var, xhat, invstd


def batch_norm_backward(g, xhat, invstd, gamma, axes, cs):
    """Training-mode backward; returns ``dx, dgamma, dbeta`` as the NumPy twin.

    .. math:: dx = \\gamma_c\\, invstd_c\\, (g - dbeta_c / M - \\hat{x}\\, dgamma_c / M)
    """
    name = "batch_norm_backward"
    dtype = _check_arrays(name, g=g, xhat=xhat, invstd=invstd, gamma=gamma)
    _check_same_shape(name, g=g, xhat=xhat)
    dt = dtype.type
    m = reduce_count(g.shape)
    cp = cupy_module()
    dot = _reduction_kernel("batch_norm_dot", dtype.name)
    with g.device:
        groups = _row_groups(g, xhat)
        if groups is None:
            dbeta = g.sum(axis=axes)                                   # (C,)
            dgamma = dot(g, xhat, axis=axes)                           # (C,)
        else:
            g3, xhat3 = groups                                         # (G, M/G, C)
            dbeta = g3.sum(axis=1).sum(axis=0)                         # (C,)
            dgamma = dot(g3, xhat3, axis=1).sum(axis=0)                # (C,)
        scale = invstd if gamma is None else gamma * invstd            # (C,)
        dx = cp.empty_like(g)
        operands = _permuted(memory_order(g.shape, _elements(g)),
                             g, xhat, (dbeta / dt(m)).reshape(cs), (dgamma / dt(m)).reshape(cs),
                             scale.reshape(cs), dx)
        _elementwise_kernel("batch_norm_backward", dtype.name)(*operands)
    return dx, dgamma, dbeta


# ---------------------------------------------------------------------------
# optimizers (twins: tinygan.kernels.optim)
# ---------------------------------------------------------------------------

def adam_step_(p, g, m, v, *, lr: float, beta1: float, beta2: float, eps: float, step: int,
               weight_decay: float = 0.0) -> None:
    """One fused in-place Adam step over ``p``, ``m`` and ``v`` (as ``torch.optim.Adam``).

    Bias corrections are folded on the host by :func:`adam_scalars`, exactly
    as in the NumPy twin::

        step_size = lr / (1 - b1^t),   denom = sqrt(v) / sqrt(1 - b2^t) + eps
    """
    name = "adam_step"
    dtype = _check_arrays(name, p=p, g=g, m=m, v=v)
    _check_same_shape(name, p=p, g=g, m=m, v=v)
    dt = dtype.type
    scalars = adam_scalars(lr=lr, beta1=beta1, beta2=beta2, eps=eps, step=step, weight_decay=weight_decay)
    go, po, mo, vo = _permuted(memory_order(p.shape, _elements(p)), g, p, m, v)
    with p.device:
        _elementwise_kernel(name, dtype.name)(go, *(dt(s) for s in scalars), po, mo, vo)


def rmsprop_step_(p, g, v, buf, gavg, *, lr: float, alpha: float, eps: float, weight_decay: float,
                  momentum: float, centered: bool) -> None:
    """One fused in-place RMSprop step (as ``torch.optim.RMSprop``); see the NumPy twin.

    ``buf`` is needed when ``momentum > 0`` and ``gavg`` when ``centered``;
    otherwise they may be None (a one-element dummy is passed, never touched).
    The optional buffers are ``raw`` in the kernel, indexed by the element
    index ``i`` in the C order of the parameter's shape (CuPy reads a raw
    array through its strides), so the operands are *not* permuted into
    memory order here: every layout is correct, a transposed one slower.
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
    alpha_, one_minus_alpha, eps_, lr_, wd, mu, use_mu, centered_ = rmsprop_scalars(
        lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum, centered=centered)
    cp = cupy_module()
    with p.device:
        dummy = cp.empty((1,), dtype=dtype) if buf is None or gavg is None else None
        _elementwise_kernel(name, dtype.name)(
            g, dt(alpha_), dt(one_minus_alpha), dt(eps_), dt(lr_), dt(wd), dt(mu),
            np.bool_(use_mu), np.bool_(centered_), p, v,
            dummy if buf is None else buf, dummy if gavg is None else gavg)
