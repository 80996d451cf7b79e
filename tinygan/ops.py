"""The primitive differentiable operations behind ``Tensor``'s methods.

A small, written-down set of primitives (as in tinygrad); everything else in
tinygan (mean, var, softplus, the GAN losses) is composed from them or from
the neural-network ops in :mod:`tinygan.functional`.

Each class is one node type of the graph: ``forward`` on arrays, ``backward``
on Tensors with differentiable ops, so every backward can be differentiated
again.  Notation in the docstrings: ``g`` is the incoming gradient dL/dy.

=============  ==========================  ===================================
op             forward                     backward (vector-Jacobian product)
=============  ==========================  ===================================
Add            y = a + b                   ga = sum_to(g), gb = sum_to(g)
Sub            y = a - b                   ga = g, gb = -g
Mul            y = a * b                   ga = g b, gb = g a
Div            y = a / b                   ga = g / b, gb = -g a / b^2
Neg            y = -x                      gx = -g
PowScalar      y = x^p                     gx = g p x^(p-1)
Exp            y = e^x                     gx = g y
Log            y = ln x                    gx = g / x
Sqrt           y = sqrt(x)                 gx = g / (2 y)
Abs            y = |x|                     gx = g sign(x)
Clip           y = min(max(x, lo), hi)     gx = g [lo <= x <= hi]
Tanh           y = tanh x                  gx = g (1 - y^2)
Sigmoid        y = 1 / (1 + e^-x)          gx = g y (1 - y)
ReLU           y = max(x, 0)               gx = g [x > 0]
Sum            y = sum_axis x              gx = broadcast(g)
Max            y = max_axis x              gx = broadcast(g) [x == y] / ties
SumTo          y = sum to a shape          gx = broadcast_to(g)
BroadcastTo    y = broadcast x             gx = sum_to(g)
Reshape        y = reshape x               gx = reshape g
Transpose      y = permute x               gx = permute^-1 g
GetItem        y = x[index]                gx = zeros, gx[index] += g
SetItem        y = x; y[index] = v         gx = g [not in index], gv = sum_to(g[index])
MatMul         y = a @ b                   ga = g b^T, gb = a^T g
Concat         y = cat(x_1..x_k)           gx_i = g[slice_i]
Clone          y = copy of x               gx = g
Norm2          y = sqrt(sum_axis x^2)      gx = broadcast(g) x / y   (0 where y = 0)
Maximum        y = max(a, b) element-wise  ga = g m, gb = g (1 - m), m = [a > b] + [a = b] / 2
Overwrite      y = v (constant)            gx = 0 (what fill_/zero_/normal_ leave)
=============  ==========================  ===================================

In-place updates (``t += x``, ``t.add_(x)``, ``t.zero_()``, ``t[i] = v``, ...)
are the methods of the section "in-place updates" below; see
:func:`_inplace_binary` for their two paths and PyTorch's rules they keep.

Layering: this module imports :mod:`tinygan.autograd` (``Function``,
``Tensor``), never the other way round.  Tensor's computing methods
(``x + y``, ``x @ w``, ``x.reshape``, ``x.sum``, ``x.to``, ...) are written at
the end of this file, in :class:`TensorMethods`, and installed onto ``Tensor``
when the module is imported.
"""
from __future__ import annotations

import math
from types import FunctionType
from typing import Any, NamedTuple

import numpy as np

from tinygan.autograd import Function, Tensor, _as_tensor, _check_same_device, bump_version, is_grad_enabled
from tinygan.backend import get_array_module, normalize_device, to_device
from tinygan.kernels.matmul import matmul


def _const(array) -> Tensor:
    """A constant (non-differentiable) tensor, e.g. a mask saved by forward."""
    return Tensor(array)


def sum_to(g: Tensor, shape: tuple[int, ...]) -> Tensor:
    """The adjoint of broadcasting: sum ``g`` down to ``shape``."""
    if g.shape == tuple(shape):
        return g
    return SumTo(tuple(shape))(g)


def _check_broadcast(op: str, a, b) -> None:
    if a.shape == b.shape or not a.shape or not b.shape:      # equal shapes, or a 0-d operand: always fine
        return
    try:
        np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(f"{op}: shapes {tuple(a.shape)} and {tuple(b.shape)} cannot be broadcast together") from None


# --- arithmetic ---------------------------------------------------------------

class Add(Function):
    saved_inputs = ()   # backward needs shapes only

    def forward(self, a, b):
        _check_broadcast("add", a, b)
        return a + b

    def backward(self, g):
        a, b = self.inputs
        return sum_to(g, a.shape), sum_to(g, b.shape)


class Sub(Function):
    saved_inputs = ()   # backward needs shapes only

    def forward(self, a, b):
        _check_broadcast("sub", a, b)
        return a - b

    def backward(self, g):
        a, b = self.inputs
        return sum_to(g, a.shape), (sum_to(-g, b.shape) if self.needs_input_grad[1] else None)


class Mul(Function):
    def forward(self, a, b):
        _check_broadcast("mul", a, b)
        return a * b

    def backward(self, g):
        a, b = self.inputs
        ga = sum_to(g * b, a.shape) if self.needs_input_grad[0] else None
        gb = sum_to(g * a, b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class Div(Function):
    def forward(self, a, b):
        _check_broadcast("div", a, b)
        return a / b

    def backward(self, g):
        a, b = self.inputs
        ga = sum_to(g / b, a.shape) if self.needs_input_grad[0] else None
        gb = sum_to(-g * a / (b * b), b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class Neg(Function):
    saved_inputs = ()   # backward needs shapes only

    def forward(self, x):
        return -x

    def backward(self, g):
        return -g


class PowScalar(Function):
    """y = x^p for a constant exponent p."""

    def __init__(self, p: float):
        self.p = p

    def forward(self, x):
        return x ** x.dtype.type(self.p)

    def backward(self, g):
        (x,) = self.inputs
        if self.p == 2.0:
            return g * x * 2.0
        return g * self.p * x ** (self.p - 1.0)


# --- element-wise functions -----------------------------------------------------

class Exp(Function):
    saves_output = True
    saved_inputs = ()   # backward reads the output (checked by saved_output)

    def forward(self, x):
        return get_array_module(x).exp(x)

    def backward(self, g):
        return g * self.saved_output()


class Log(Function):
    def forward(self, x):
        return get_array_module(x).log(x)

    def backward(self, g):
        return g / self.inputs[0]


class Sqrt(Function):
    saves_output = True
    saved_inputs = ()   # backward reads the output (checked by saved_output)

    def forward(self, x):
        return get_array_module(x).sqrt(x)

    def backward(self, g):
        return g / (self.saved_output() * 2.0)


class Abs(Function):
    saved_inputs = ()   # backward reads the mask saved by forward

    def forward(self, x):
        self.sign = get_array_module(x).sign(x)
        return abs(x)

    def backward(self, g):
        return g * _const(self.sign)


class Clip(Function):
    """y = min(max(x, lo), hi); the gradient passes where lo <= x <= hi (as torch.clamp)."""

    saved_inputs = ()   # backward reads the mask saved by forward

    def __init__(self, lo, hi):
        self.lo, self.hi = lo, hi

    def forward(self, x):
        xp = get_array_module(x)
        inside = xp.ones(x.shape, dtype=bool)
        if self.lo is not None:
            inside &= x >= self.lo
        if self.hi is not None:
            inside &= x <= self.hi
        self.inside = inside
        return xp.clip(x, self.lo, self.hi).astype(x.dtype, copy=False)

    def backward(self, g):
        return g * _const(self.inside.astype(g.dtype))


class Tanh(Function):
    saves_output = True
    saved_inputs = ()   # backward reads the output (checked by saved_output)

    def forward(self, x):
        return get_array_module(x).tanh(x)

    def backward(self, g):
        y = self.saved_output()
        return g * (1.0 - y * y)


class Sigmoid(Function):
    saves_output = True
    saved_inputs = ()   # backward reads the output (checked by saved_output)

    def forward(self, x):
        xp = get_array_module(x)
        # sigma(x) = 1 / (1 + e^-|x|) for x >= 0 and e^-|x| / (1 + e^-|x|) for x < 0:
        # exp never overflows, and small outputs keep full *relative* precision.
        # (The former (1 + tanh(x/2)) / 2 rounded every sigma(x) below ~3e-8 to
        # exactly 0 in float32, e.g. sigma(-20) = 0 instead of 2.1e-9, so a
        # Sigmoid + binary_cross_entropy loss read 100 where PyTorch reads 20.)
        e = xp.exp(-abs(x))
        r = 1 / (1 + e)
        return xp.where(x >= 0, r, e * r)

    def backward(self, g):
        y = self.saved_output()
        return g * y * (1.0 - y)


class ReLU(Function):
    """y = max(x, 0);  dx = g * [y > 0].

    The mask [x > 0] is read off the output ([y > 0] is the same set), which
    the graph holds anyway, so forward keeps no mask of its own.
    """
    saves_output = True

    saved_inputs = ()   # backward reads the output only (checked by saved_output)

    def forward(self, x):
        return get_array_module(x).maximum(x, 0)             # x's dtype (0 is a weak scalar)

    def backward(self, g):
        # Linear in g with a constant mask: its own derivative w.r.t. g is itself,
        # and the second derivative w.r.t. x is zero (almost everywhere).
        y = self.saved_output()._data
        return g * _const((y > 0).astype(g.dtype))


# --- reductions -----------------------------------------------------------------

def _keepdims_shape(shape, axis) -> tuple[int, ...]:
    if axis is None:
        return (1,) * len(shape)
    axes = axis if isinstance(axis, tuple) else (axis,)
    axes = {a % len(shape) for a in axes}
    return tuple(1 if i in axes else s for i, s in enumerate(shape))


class Sum(Function):
    saved_inputs = ()   # backward needs shapes only

    def __init__(self, axis=None, keepdims: bool = False):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        return x.sum(axis=self.axis, keepdims=self.keepdims)

    def backward(self, g):
        shape = self.inputs[0].shape
        return BroadcastTo(shape)(g.reshape(_keepdims_shape(shape, self.axis)))


class Max(Function):
    """y = max over ``axis``; the gradient is shared equally among tied maxima."""

    saved_inputs = ()   # backward reads the shares saved by forward

    def __init__(self, axis=None, keepdims: bool = False):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        y = x.max(axis=self.axis, keepdims=True)
        mask = (x == y).astype(x.dtype)
        self.share = mask / mask.sum(axis=self.axis, keepdims=True)
        return y if self.keepdims else y.reshape(_reduced_shape(x.shape, self.axis))

    def backward(self, g):
        shape = self.inputs[0].shape
        return BroadcastTo(shape)(g.reshape(_keepdims_shape(shape, self.axis))) * _const(self.share)


def _reduced_shape(shape, axis) -> tuple[int, ...]:
    keep = _keepdims_shape(shape, axis)
    if axis is None:
        return ()
    axes = axis if isinstance(axis, tuple) else (axis,)
    axes = {a % len(shape) for a in axes}
    return tuple(s for i, s in enumerate(keep) if i not in axes)


class SumTo(Function):
    """Sum a broadcast gradient back down to ``shape`` (the adjoint of BroadcastTo)."""

    saved_inputs = ()   # backward needs shapes only

    def __init__(self, shape):
        self.shape = tuple(shape)

    def forward(self, x):
        lead = x.ndim - len(self.shape)
        axes = tuple(range(lead)) + tuple(
            lead + i for i, s in enumerate(self.shape) if s == 1 and x.shape[lead + i] != 1)
        y = x.sum(axis=axes, keepdims=True) if axes else x
        return y.reshape(self.shape)

    def backward(self, g):
        return BroadcastTo(self.inputs[0].shape)(g)


class BroadcastTo(Function):
    saved_inputs = ()   # backward needs shapes only

    def __init__(self, shape):
        self.shape = tuple(shape)

    def forward(self, x):
        try:
            return get_array_module(x).broadcast_to(x, self.shape)
        except ValueError:
            raise ValueError(f"expand: cannot broadcast shape {tuple(x.shape)} to {self.shape}") from None

    def backward(self, g):
        return sum_to(g, self.inputs[0].shape)


# --- shapes ---------------------------------------------------------------------

class Reshape(Function):
    saved_inputs = ()   # backward needs shapes only

    def __init__(self, shape):
        self.shape = tuple(int(s) for s in shape)

    def forward(self, x):
        try:
            return x.reshape(self.shape)
        except ValueError:
            raise ValueError(f"reshape: cannot reshape a tensor of shape {tuple(x.shape)} "
                             f"({x.size} elements) to {self.shape}") from None

    def backward(self, g):
        return g.reshape(self.inputs[0].shape)


class Transpose(Function):
    saved_inputs = ()   # backward needs shapes only

    def __init__(self, axes):
        self.axes = tuple(axes)

    def forward(self, x):
        if sorted(a % x.ndim for a in self.axes) != list(range(x.ndim)):
            raise ValueError(f"permute: axes {self.axes} do not match a tensor of shape {tuple(x.shape)}")
        return x.transpose(self.axes)

    def backward(self, g):
        return Transpose(tuple(np.argsort([a % len(self.axes) for a in self.axes])))(g)


def _is_basic_index(index) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return all(isinstance(i, (int, slice, type(None), type(Ellipsis))) or np.isscalar(i) for i in items)


class GetItem(Function):
    saved_inputs = ()   # backward needs shapes only

    def __init__(self, index):
        self.index = index

    def forward(self, x):
        try:
            return x[self.index]
        except IndexError as e:
            raise IndexError(f"getitem: index {self.index!r} is invalid for a tensor of shape {tuple(x.shape)}: {e}") from None

    def backward(self, g):
        return GetItemGrad(self.index, self.inputs[0].shape)(g)


class GetItemGrad(Function):
    """Scatter ``g`` into zeros of the input's shape (repeated indices add up)."""

    saved_inputs = ()   # backward needs shapes only

    def __init__(self, index, shape):
        self.index, self.shape = index, tuple(shape)

    def forward(self, g):
        xp = get_array_module(g)
        gx = xp.zeros(self.shape, dtype=g.dtype)
        if _is_basic_index(self.index):
            gx[self.index] = g  # basic slicing never repeats an element
        elif hasattr(xp.add, "at"):
            xp.add.at(gx, self.index, g)          # NumPy, and CuPy >= 13 (cupyx.scatter_add is deprecated there)
        else:
            import cupyx  # only reached for an older CuPy
            cupyx.scatter_add(gx, self.index, g)
        return gx

    def backward(self, gg):
        return GetItem(self.index)(gg)


class MatMul(Function):
    """y = a @ b for 2-D (or batched) operands."""

    def forward(self, a, b):
        if a.ndim < 2 or b.ndim < 2 or a.shape[-1] != b.shape[-2]:
            raise ValueError(f"matmul: shapes {tuple(a.shape)} and {tuple(b.shape)} are not aligned "
                             "(need (..., n, k) @ (..., k, m))")
        return matmul(a, b)                   # a @ b; k = 1 as a broadcast product (kernels/matmul.py)

    def backward(self, g):
        a, b = self.inputs
        ga = sum_to(g @ b.transpose(-1, -2), a.shape) if self.needs_input_grad[0] else None
        gb = sum_to(a.transpose(-1, -2) @ g, b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class Concat(Function):
    saved_inputs = ()   # backward needs shapes only

    def __init__(self, axis: int):
        self.axis = axis

    def forward(self, *xs):
        xp = get_array_module(*xs)
        ref = xs[0].shape
        for i, x in enumerate(xs):
            if x.ndim != len(ref) or any(s != r for d, (s, r) in enumerate(zip(x.shape, ref))
                                         if d != self.axis % len(ref)):
                raise ValueError(f"cat: tensor {i} has shape {tuple(x.shape)}, which does not match "
                                 f"shape {tuple(ref)} outside axis {self.axis}")
        self.sizes = [x.shape[self.axis] for x in xs]
        return xp.concatenate(xs, axis=self.axis)

    def backward(self, g):
        axis = self.axis % g.ndim
        out, start = [], 0
        for size in self.sizes:
            index = (slice(None),) * axis + (slice(start, start + size),)
            out.append(g[index])
            start += size
        return tuple(out)


class SetItem(Function):
    """y = x with y[index] = v (v broadcast to the shape of x[index]): ``t[index] = v`` in a graph.

    gx = g where the index did not write (0 where it did), gv = sum_to(g[index], v.shape).
    """

    saved_inputs = ()   # backward reads the mask saved by forward

    def __init__(self, index):
        self.index = index

    def forward(self, x, v):
        xp = get_array_module(x)
        y = x.copy()
        y[self.index] = v
        self.keep = xp.ones(x.shape, dtype=bool)
        self.keep[self.index] = False                      # the elements the assignment replaced
        return y

    def backward(self, g):
        x, v = self.inputs
        gx = g * _const(self.keep.astype(g.dtype)) if self.needs_input_grad[0] else None
        gv = sum_to(GetItem(self.index)(g), v.shape) if self.needs_input_grad[1] else None
        return gx, gv


class Clone(Function):
    """y = x in new memory (``t.clone()``); gx = g."""

    saved_inputs = ()   # backward needs nothing

    def forward(self, x):
        return x.copy()

    def backward(self, g):
        return g


class Overwrite(Function):
    """y = v, constant values of x's shape: what ``fill_``/``zero_``/``normal_`` leave in a graph; gx = 0.

    The old values no longer influence the result, so no gradient flows to them
    (backward returns None).
    """

    saved_inputs = ()   # backward needs nothing

    def __init__(self, values):
        self.values = values

    def forward(self, x):
        y = get_array_module(x).empty_like(x)
        y[...] = self.values
        return y

    def backward(self, g):
        return None


class Norm2(Function):
    """y = ||x||_2 = sqrt(sum_axis x^2);  gx = broadcast(g) x / y, taken as 0 where y = 0 (as PyTorch).

    Written with differentiable ops of x and of the output y, so that its own
    derivative (the WGAN-GP penalty's ||grad D||) is available to
    ``create_graph``.
    """
    saves_output = True

    def __init__(self, axis=None, keepdims: bool = False):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        xp = get_array_module(x)
        return xp.sqrt((x * x).sum(axis=self.axis, keepdims=self.keepdims))

    def backward(self, g):
        (x,) = self.inputs
        keep = _keepdims_shape(x.shape, self.axis)
        y = self.saved_output().reshape(keep)                        # (..., 1, ...)
        zero = (y._data == 0).astype(y.dtype)                        # 1 where y = 0: x = 0, or x^2 underflowed
        y_safe = y + _const(zero)                                    # y, or 1 where y = 0
        g = g.reshape(keep) * _const(1 - zero)                       # gx = 0 where y = 0
        return BroadcastTo(x.shape)(g) * x / y_safe


class Maximum(Function):
    """y = max(a, b) element-wise (``lower=True``: min(a, b)), broadcasting.

    ga = sum_to(g m), gb = sum_to(g (1 - m)) with m = [a > b] + [a = b] / 2 (ties share, as PyTorch).
    """

    saved_inputs = ()   # backward reads the mask saved by forward

    def __init__(self, lower: bool = False):
        self.lower = lower

    def forward(self, a, b):
        _check_broadcast("minimum" if self.lower else "maximum", a, b)
        xp = get_array_module(a, b)
        first = (a < b) if self.lower else (a > b)                   # where a wins
        self.share = first + 0.5 * (a == b)                          # float64 mask, broadcast shape
        return xp.minimum(a, b) if self.lower else xp.maximum(a, b)

    def backward(self, g):
        a, b = self.inputs
        m = _const(self.share.astype(g.dtype))
        ga = sum_to(g * m, a.shape) if self.needs_input_grad[0] else None
        gb = sum_to(g * (1.0 - m), b.shape) if self.needs_input_grad[1] else None
        return ga, gb


def maximum(a, b) -> Tensor:
    """Element-wise max(a, b) (``torch.maximum``); a tie sends half the gradient to each."""
    a, b = _tensor_pair(a, b)
    return Maximum()(a, b)


def minimum(a, b) -> Tensor:
    """Element-wise min(a, b) (``torch.minimum``); a tie sends half the gradient to each."""
    a, b = _tensor_pair(a, b)
    return Maximum(lower=True)(a, b)


def _tensor_pair(a, b) -> tuple[Tensor, Tensor]:
    if not isinstance(a, Tensor):
        if not isinstance(b, Tensor):
            raise TypeError(f"expected at least one Tensor, got {type(a).__name__} and {type(b).__name__}")
        return _as_tensor(a, b), b
    return a, _as_tensor(b, a)


class ValuesIndices(NamedTuple):
    """What ``t.max(dim)`` and ``t.min(dim)`` return, as PyTorch's ``torch.return_types.max``."""

    values: Tensor
    indices: Tensor


# --- device and dtype -------------------------------------------------------------

class ToDevice(Function):
    saved_inputs = ()   # backward needs shapes only

    def __init__(self, device: str):
        self.device = device

    def forward(self, x):
        self.source = "cuda" if get_array_module(x) is not np else "cpu"
        return to_device(x, self.device)

    def backward(self, g):
        return ToDevice(self.source)(g)


class AsType(Function):
    saved_inputs = ()   # backward needs shapes only

    def __init__(self, dtype: Any):
        self.dtype = np.dtype(dtype)

    def forward(self, x):
        self.source = x.dtype
        return x.astype(self.dtype)

    def backward(self, g):
        return AsType(self.source)(g)


# ---------------------------------------------------------------------------
# Tensor's methods
# ---------------------------------------------------------------------------

class TensorMethods:
    """The methods that compute with a :class:`~tinygan.autograd.Tensor`, on top of the Functions above.

    Never instantiated: :func:`install_tensor_methods` copies every function
    and property defined here onto ``Tensor`` when this module is imported, so
    that ``autograd.py`` (which defines Tensor) needs nothing from this module
    and the imports flow one way, ops -> autograd.  Python scalars and arrays
    mixed into arithmetic become constants of the tensor's dtype and device
    (:func:`tinygan.autograd._as_tensor`).

    Names and keywords follow PyTorch (``dim``, ``keepdim``); NumPy's
    ``axis``/``keepdims`` are accepted too.
    """

    # --- arithmetic (broadcasting as NumPy) ---------------------------------
    def __add__(self, other):
        return Add()(self, _as_tensor(other, self))

    def __radd__(self, other):
        return Add()(_as_tensor(other, self), self)

    def __sub__(self, other):
        return Sub()(self, _as_tensor(other, self))

    def __rsub__(self, other):
        return Sub()(_as_tensor(other, self), self)

    def __mul__(self, other):
        return Mul()(self, _as_tensor(other, self))

    def __rmul__(self, other):
        return Mul()(_as_tensor(other, self), self)

    def __truediv__(self, other):
        return Div()(self, _as_tensor(other, self))

    def __rtruediv__(self, other):
        return Div()(_as_tensor(other, self), self)

    def __neg__(self):
        return Neg()(self)

    def __pos__(self):
        return self

    def __pow__(self, exponent):
        if isinstance(exponent, Tensor):
            # a ** b = exp(b log a) for a > 0
            return (exponent * self.log()).exp()
        return PowScalar(float(exponent))(self)

    def __rpow__(self, base):
        # base ** self = exp(self * log(base))
        return (self * float(np.log(base))).exp()

    def __matmul__(self, other):
        return MatMul()(self, _as_tensor(other, self))

    def __rmatmul__(self, other):
        return MatMul()(_as_tensor(other, self), self)

    def add(self, other, alpha=1) -> "Tensor":
        """self + alpha other (``torch.add``)."""
        return self + (other if alpha == 1 else _as_tensor(other, self) * alpha)

    def sub(self, other, alpha=1) -> "Tensor":
        """self - alpha other (``torch.sub``)."""
        return self - (other if alpha == 1 else _as_tensor(other, self) * alpha)

    def mul(self, other) -> "Tensor":
        return self * other

    def div(self, other) -> "Tensor":
        return self / other

    def pow(self, exponent) -> "Tensor":
        """self^exponent (``torch.pow``): a number, or a tensor (then self > 0: exp(exponent log self))."""
        return self ** exponent

    def matmul(self, other) -> "Tensor":
        return self @ other

    mm = matmul

    # --- comparisons: constant (non-differentiable) boolean tensors, element-wise as in PyTorch ----
    def _compare(self, other, op, name: str):
        if other is None or isinstance(other, str):
            return NotImplemented                     # t == None is False, as in PyTorch
        other = _as_tensor(other, self)
        _check_same_device(name, (self, other))
        _check_broadcast(name, self._data, other._data)
        return Tensor(op(self._data, other._data))

    def __lt__(self, other):
        return self._compare(other, lambda a, b: a < b, "lt")

    def __le__(self, other):
        return self._compare(other, lambda a, b: a <= b, "le")

    def __gt__(self, other):
        return self._compare(other, lambda a, b: a > b, "gt")

    def __ge__(self, other):
        return self._compare(other, lambda a, b: a >= b, "ge")

    def __eq__(self, other):
        """Element-wise ``self == other`` (a bool tensor), as in PyTorch.

        Tensors stay hashable by identity (``__hash__``), so they work in sets
        and as dict keys; to ask whether two names are one tensor write
        ``a is b``; to compare whole tensors ``(a == b).all()``.
        """
        return self._compare(other, lambda a, b: a == b, "eq")

    def __ne__(self, other):
        return self._compare(other, lambda a, b: a != b, "ne")

    eq = __eq__
    ne = __ne__

    # Logic on bool (or integer) tensors: masks such as (labels >= 0) & (labels < 10); constants.
    def __and__(self, other):
        return self._compare(other, lambda a, b: a & b, "and")

    def __or__(self, other):
        return self._compare(other, lambda a, b: a | b, "or")

    def __xor__(self, other):
        return self._compare(other, lambda a, b: a ^ b, "xor")

    __rand__, __ror__, __rxor__ = __and__, __or__, __xor__

    def __invert__(self):
        if self.dtype.kind not in "biu":
            raise TypeError(f"invert: ~ needs a bool or integer tensor, got dtype {self.dtype}")
        return Tensor(~self._data)

    def equal(self, other) -> bool:
        """True when ``other`` has this shape and equal values (``torch.equal``)."""
        return isinstance(other, Tensor) and self.shape == other.shape and bool((self == other).all())

    def all(self) -> "Tensor":
        return Tensor(get_array_module(self._data).asarray(self._data.all()))

    def any(self) -> "Tensor":
        return Tensor(get_array_module(self._data).asarray(self._data.any()))

    # --- device and dtype -----------------------------------------------------
    def to(self, device: Any = None, dtype: Any = None) -> "Tensor":
        """A copy on ``device`` (``"cpu"``/``"cuda"``) and/or with ``dtype``; differentiable.

        As in PyTorch the first argument may also be a dtype (``t.to(np.float64)``)
        or a tensor whose device and dtype to take (``t.to(other)``).  A cast to
        an integer or bool dtype gives a constant (no gradient flows through it).
        """
        if isinstance(device, Tensor):
            device, dtype = device.device, device.dtype if dtype is None else dtype
        elif device is not None and not isinstance(device, str) and _is_dtype(device):
            device, dtype = None, device
        out = self
        if device is not None and normalize_device(device) != self.device:
            out = ToDevice(normalize_device(device))(out)
        if dtype is not None and np.dtype(dtype) != out.dtype:
            if np.dtype(dtype).kind != "f":
                return Tensor(out._data.astype(np.dtype(dtype)))
            out = AsType(np.dtype(dtype))(out)
        return out

    def cpu(self) -> "Tensor":
        return self.to("cpu")

    def cuda(self) -> "Tensor":
        return self.to("cuda")

    def float(self) -> "Tensor":
        """float32 (``torch.float``)."""
        return self.to(dtype=np.float32)

    def double(self) -> "Tensor":
        """float64 (``torch.double``)."""
        return self.to(dtype=np.float64)

    def long(self) -> "Tensor":
        """int64, a constant (``torch.long``)."""
        return self.to(dtype=np.int64)

    def int(self) -> "Tensor":
        """int32, a constant."""
        return self.to(dtype=np.int32)

    def bool(self) -> "Tensor":
        """bool, a constant."""
        return self.to(dtype=np.bool_)

    def type_as(self, other: "Tensor") -> "Tensor":
        return self.to(dtype=other.dtype)

    # --- shape ops ----------------------------------------------------------
    def __getitem__(self, index):
        return GetItem(_index(index))(self)

    def reshape(self, *shape) -> "Tensor":
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return Reshape(shape)(self)

    view = reshape

    def view_as(self, other: "Tensor") -> "Tensor":
        return self.reshape(other.shape)

    reshape_as = view_as

    def contiguous(self) -> "Tensor":
        """The tensor itself: NumPy and CuPy reshape any layout, so there is nothing to do."""
        return self

    def clone(self) -> "Tensor":
        """A copy in new memory, still part of the graph (``torch.clone``): y = x, dy/dx = 1."""
        return Clone()(self)

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> "Tensor":
        shp = self.shape
        end = end_dim % len(shp) if shp else 0
        new = shp[:start_dim] + (int(np.prod(shp[start_dim:end + 1])),) + shp[end + 1:]
        return self.reshape(new)

    def permute(self, *dims) -> "Tensor":
        if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
            dims = tuple(dims[0])
        return Transpose(tuple(dims))(self)

    def transpose(self, dim0: int = 0, dim1: int = 1) -> "Tensor":
        """Swap two axes (``torch.Tensor.transpose``)."""
        axes = list(range(self.ndim))
        axes[dim0], axes[dim1] = axes[dim1], axes[dim0]
        return Transpose(tuple(axes))(self)

    def t(self) -> "Tensor":
        """The transpose of a matrix (``torch.Tensor.t``: at most 2-D)."""
        if self.ndim > 2:
            raise ValueError(f"t: expects a tensor with at most 2 dimensions, got shape {self.shape}; "
                             "use transpose(dim0, dim1) or permute")
        return self.T if self.ndim == 2 else self

    @property
    def T(self) -> "Tensor":
        return Transpose(tuple(reversed(range(self.ndim))))(self)

    def unsqueeze(self, dim: int) -> "Tensor":
        shp = list(self.shape)
        if not -len(shp) - 1 <= dim <= len(shp):
            raise IndexError(f"unsqueeze: dim {dim} is out of range for a tensor of shape {self.shape} "
                             f"(expected -{len(shp) + 1} to {len(shp)})")
        dim = dim if dim >= 0 else dim + len(shp) + 1
        shp.insert(dim, 1)
        return self.reshape(tuple(shp))

    def squeeze(self, dim: int | None = None) -> "Tensor":
        if dim is None:
            return self.reshape(tuple(s for s in self.shape if s != 1))
        if self.shape[dim] != 1:
            return self
        shp = list(self.shape)
        del shp[dim]
        return self.reshape(tuple(shp))

    def expand(self, *shape) -> "Tensor":
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        lead = len(shape) - self.ndim                       # new leading dims
        if lead < 0 or -1 in shape[:lead]:
            raise ValueError(f"expand: sizes {tuple(shape)} for a tensor of shape {self.shape}: give a size for every "
                             "dim (-1 keeps one), and no -1 for a new leading dim (as torch.Tensor.expand)")
        shape = tuple(shape[:lead]) + tuple(s if s != -1 else d for s, d in zip(shape[lead:], self.shape))
        return BroadcastTo(shape)(self)

    def expand_as(self, other: "Tensor") -> "Tensor":
        """Broadcast to ``other``'s shape (``torch.Tensor.expand_as``): x (N, 1, 1, 1) -> (N, C, H, W)."""
        return self.expand(other.shape)

    def repeat(self, *sizes) -> "Tensor":
        """Tile the tensor ``sizes[i]`` times along dim i (``torch.Tensor.repeat``, NumPy's ``tile``).

        Written as reshape -> broadcast -> reshape, so its gradient (a sum over
        the copies) is BroadcastTo's: x (n_0, n_1) -> (1, n_0, 1, n_1) -> (r_0, n_0, r_1, n_1)
        -> (r_0 n_0, r_1 n_1).
        """
        sizes = _sizes(sizes)
        if len(sizes) < self.ndim:
            raise ValueError(f"repeat: got {len(sizes)} repeat counts {sizes} for a tensor of shape {self.shape}; "
                             "pass at least one per dimension")
        shape = (1,) * (len(sizes) - self.ndim) + self.shape              # leading dims added, as PyTorch
        paired = tuple(v for n in shape for v in (1, n))                  # (1, n_0, 1, n_1, ...)
        tiled = tuple(v for r, n in zip(sizes, shape) for v in (r, n))    # (r_0, n_0, r_1, n_1, ...)
        return self.reshape(paired).expand(tiled).reshape(tuple(r * n for r, n in zip(sizes, shape)))

    def split(self, split_size_or_sections, dim: int = 0) -> tuple["Tensor", ...]:
        """Pieces along ``dim`` (``torch.split``): of ``split_size`` each (the last may be smaller), or of the
        given sizes (which must add up to the dim's length)."""
        n = self.shape[dim]
        if isinstance(split_size_or_sections, (list, tuple)):
            sizes = [int(k) for k in split_size_or_sections]
            if sum(sizes) != n or any(k < 0 for k in sizes):
                raise ValueError(f"split: sizes {sizes} must add up to {n}, the size of dim {dim} "
                                 f"(shape {self.shape})")
        else:
            size = int(split_size_or_sections)
            if size <= 0:
                raise ValueError(f"split: split_size must be a positive int, got {split_size_or_sections}")
            sizes = [min(size, n - start) for start in range(0, n, size)] or [0]
        d = dim % self.ndim
        pieces, start = [], 0
        for k in sizes:
            pieces.append(self[(slice(None),) * d + (slice(start, start + k),)])
            start += k
        return tuple(pieces)

    def chunk(self, chunks: int, dim: int = 0) -> tuple["Tensor", ...]:
        """``chunks`` pieces along ``dim`` of ceil(n / chunks) each, the last smaller (``torch.chunk``)."""
        if int(chunks) <= 0:
            raise ValueError(f"chunk: chunks must be a positive int, got {chunks}")
        n = self.shape[dim]
        return self.split(max(1, -(-n // int(chunks))), dim)

    # --- reductions ---------------------------------------------------------
    def sum(self, axis=None, keepdims: bool = False, dim=None, keepdim=None) -> "Tensor":
        return Sum(_axis(axis, dim), _keep(keepdims, keepdim))(self)

    def mean(self, axis=None, keepdims: bool = False, dim=None, keepdim=None) -> "Tensor":
        axis = _axis(axis, dim)
        n = _count(self.shape, axis)
        return self.sum(axis=axis, keepdims=_keep(keepdims, keepdim)) * (1.0 / n)

    def var(self, axis=None, keepdims: bool = False, unbiased: bool = True, dim=None, keepdim=None,
            correction=None) -> "Tensor":
        """Variance: sum((x - mean(x))^2) / (n - c), c = 1 when ``unbiased`` (PyTorch's default), else 0.

        ``correction=c`` (PyTorch's newer keyword) sets c directly.
        """
        axis = _axis(axis, dim)
        n = _count(self.shape, axis)
        centred = self - self.mean(axis=axis, keepdims=True)
        # One value per variance with unbiased=True: NaN, as PyTorch (n - 1 = 0 used to
        # raise a bare ZeroDivisionError here).
        dof = n - (int(unbiased) if correction is None else correction)
        return (centred * centred).sum(axis=axis, keepdims=_keep(keepdims, keepdim)) * (
            1.0 / dof if dof > 0 else float("nan"))

    def std(self, dim=None, unbiased: bool = True, keepdim: bool = False, *, axis=None, keepdims=None,
            correction=None) -> "Tensor":
        """Standard deviation sqrt(var), unbiased (divides by n - 1) by default, as ``torch.std``."""
        return self.var(axis=_axis(axis, dim), keepdims=_keep(keepdim, keepdims), unbiased=unbiased,
                        correction=correction).sqrt()

    def norm(self, p=2, dim=None, keepdim: bool = False) -> "Tensor":
        """The p-norm over ``dim`` (all elements by default), as ``torch.Tensor.norm``.

        ||x||_p = (sum |x|^p)^(1/p): p = 2 (the default, also ``"fro"``) is one
        primitive (:class:`Norm2`, gradient x / ||x||, 0 at x = 0); p = 1, inf
        and other p > 0 are composed from abs, sum, max and powers.  WGAN-GP:
        ``grad.reshape(N, -1).norm(2, dim=1)``.
        """
        axis = _axis(None, dim)
        keep = bool(keepdim)
        if p == "fro" or p == 2:
            return Norm2(axis, keep)(self)
        if p == 1:
            return self.abs().sum(axis=axis, keepdims=keep)
        if p == math.inf:
            return self.abs().amax(dim=axis, keepdim=keep)
        if isinstance(p, (int, float)) and p > 0:
            return (self.abs() ** p).sum(axis=axis, keepdims=keep) ** (1.0 / p)
        raise ValueError(f"norm: p must be 'fro', inf or a number > 0, got {p!r}")

    def max(self, dim=None, keepdim: bool = False, *, axis=None, keepdims=None):
        """The maximum, as ``torch.max``:

        * ``t.max()``: the largest element, a 0-d tensor (ties share the gradient);
        * ``t.max(dim)`` / ``t.max(dim=1)``: a named tuple ``(values, indices)``,
          so ``t.max(1)[0]`` is the values, as in PyTorch (the gradient goes
          to the element at ``indices``);
        * ``t.max(other_tensor)``: the element-wise maximum (:func:`maximum`);
        * ``t.max(axis=1)`` (NumPy's keyword): the values only, as ``t.amax(1)``.
        """
        return _max_or_min(self, "max", dim, keepdim, axis, keepdims)

    def min(self, dim=None, keepdim: bool = False, *, axis=None, keepdims=None):
        """The minimum, as ``torch.min`` (see :meth:`max` for the four forms)."""
        return _max_or_min(self, "min", dim, keepdim, axis, keepdims)

    def amax(self, dim=None, keepdim: bool = False) -> "Tensor":
        """The maximum over ``dim`` (an int, a tuple, or all), values only; ties share the gradient."""
        return Max(_axis(None, dim), bool(keepdim))(self)

    def amin(self, dim=None, keepdim: bool = False) -> "Tensor":
        """min = -max(-x) over ``dim``, values only; ties share the gradient."""
        return -Max(_axis(None, dim), bool(keepdim))(-self)

    def argmax(self, dim=None, keepdim: bool = False, *, axis=None) -> "Tensor":
        """Index of the largest element (of the flattened tensor when ``dim`` is None), int64, constant."""
        return _arg(self, "argmax", _axis(axis, dim), keepdim)

    def argmin(self, dim=None, keepdim: bool = False, *, axis=None) -> "Tensor":
        """Index of the smallest element (of the flattened tensor when ``dim`` is None), int64, constant."""
        return _arg(self, "argmin", _axis(axis, dim), keepdim)

    # --- element-wise maths ---------------------------------------------------
    def exp(self) -> "Tensor":
        return Exp()(self)

    def log(self) -> "Tensor":
        return Log()(self)

    def sqrt(self) -> "Tensor":
        return Sqrt()(self)

    def abs(self) -> "Tensor":
        return Abs()(self)

    def clip(self, min=None, max=None) -> "Tensor":
        return Clip(min, max)(self)

    clamp = clip

    def tanh(self) -> "Tensor":
        return Tanh()(self)

    def sigmoid(self) -> "Tensor":
        return Sigmoid()(self)

    def relu(self) -> "Tensor":
        return ReLU()(self)

    def square(self) -> "Tensor":
        return self * self

    def log_softmax(self, dim: int = -1) -> "Tensor":
        """x - log sum_dim exp x; the row max is subtracted first, as a constant (it cancels)."""
        shift = Tensor(self._data.max(axis=dim, keepdims=True))    # (..., 1, ...)
        z = self - shift
        return z - z.exp().sum(axis=dim, keepdims=True).log()

    def softmax(self, dim: int = -1) -> "Tensor":
        """e^x / sum_dim e^x, with the row max subtracted first (a constant: it cancels)."""
        e = (self - Tensor(self._data.max(axis=dim, keepdims=True))).exp()
        return e / e.sum(axis=dim, keepdims=True)

    # --- in-place updates -----------------------------------------------------
    # Each changes the tensor's own memory and returns the tensor (``t.add_(x).mul_(2)``).
    # The rules, PyTorch's (see _inplace_binary): a leaf that requires grad may be changed only
    # under no_grad (as optimizers do); a change to anything a graph saved for backward makes
    # that backward raise.
    def add_(self, other, alpha=1) -> "Tensor":
        """self += alpha other, in place."""
        return _inplace_binary(self, "add_", other, alpha, lambda t, o: t + o)

    def sub_(self, other, alpha=1) -> "Tensor":
        """self -= alpha other, in place (``p.sub_(lr * p.grad)`` under no_grad is an SGD step)."""
        return _inplace_binary(self, "sub_", other, alpha, lambda t, o: t - o)

    def mul_(self, other) -> "Tensor":
        """self *= other, in place."""
        return _inplace_binary(self, "mul_", other, 1, lambda t, o: t * o)

    def div_(self, other) -> "Tensor":
        """self /= other, in place."""
        return _inplace_binary(self, "div_", other, 1, lambda t, o: t / o)

    # ``t += x`` etc. call these: autograd.InplaceOperators

    def clamp_(self, min=None, max=None) -> "Tensor":
        """Clip into [min, max] in place (WGAN's weight clipping: ``p.clamp_(-c, c)`` under no_grad)."""
        if min is None and max is None:
            raise ValueError("clamp_: at least one of min and max must be given")
        return _inplace_unary(self, "clamp_", lambda t: t.clamp(min, max),
                              lambda a: get_array_module(a).clip(a, min, max, out=a))

    clip_ = clamp_

    def zero_(self) -> "Tensor":
        """Fill with zeros in place."""
        return self.fill_(0)

    def fill_(self, value) -> "Tensor":
        """Fill with ``value`` (a number or a one-element tensor) in place."""
        if isinstance(value, Tensor):
            value = value.item()
        return _inplace_unary(self, "fill_", lambda t: Overwrite(value)(t), lambda a: a.fill(value))

    # normal_ and uniform_ draw from tinygan's global generator, so they live beside the random
    # constructors in tinygan/creation.py (which installs them); they end in fill_values_ below.

    def fill_values_(self, name: str, values) -> "Tensor":
        """Write ``values`` (an array broadcastable to this shape) in place, as the in-place op ``name``."""
        if self.dtype.kind != "f" and name in ("normal_", "uniform_"):
            raise TypeError(f"{name}: expects a floating-point tensor, got dtype {self.dtype}")
        values = to_device(values.astype(self.dtype, copy=False), self.device)
        return _inplace_unary(self, name, lambda t: Overwrite(values)(t), lambda a: a.__setitem__(Ellipsis, values))

    def copy_(self, src) -> "Tensor":
        """Copy ``src`` (a tensor, array or number, broadcast to this shape, cast to this dtype) in place.

        In a graph the gradient flows to ``src`` (and not to the old values), as in PyTorch.
        """
        src_t = src if isinstance(src, Tensor) else _as_tensor(src, self)
        if src_t.device != self.device:
            src_t = src_t.to(self.device)
        if is_grad_enabled() and src_t.requires_grad:
            _check_leaf("copy_", self)
            new = Overwrite(0)(_shadow(self)) + src_t.expand(self.shape)
            return _adopt(self, "copy_", new)
        values = src_t._data

        def write(a):
            _check_fits("copy_", self, values)
            get_array_module(a).copyto(a, values, casting="unsafe")
        return _inplace_unary(self, "copy_", lambda t: Overwrite(values)(t), write)

    def __setitem__(self, index, value) -> None:
        """``t[index] = value`` in place; in a graph, differentiable w.r.t. ``value`` (:class:`SetItem`)."""
        index = _index(index)
        v = _as_tensor(value, self)
        if v.device != self.device:
            raise ValueError(f"setitem: value on {v.device}, tensor on {self.device}; move one of them with .to()")
        if _records_graph("setitem", self, v):
            _adopt(self, "setitem", SetItem(index)(_shadow(self), v))
            return
        a = _writable("setitem", self)
        try:
            a[index] = v._data
        except (ValueError, IndexError, TypeError) as e:
            raise type(e)(f"setitem: cannot assign a value of shape {v.shape} to index {index!r} of a tensor of "
                          f"shape {self.shape}: {e}") from None
        bump_version(a)


def _is_dtype(x) -> bool:
    """True for what NumPy reads as a dtype (np.float32, 'float64', np.dtype(...)), False for devices."""
    try:
        np.dtype(x)
    except TypeError:
        return False
    return True


def _index(index):
    """An index with Tensors replaced by their arrays (boolean masks, integer index tensors)."""
    if isinstance(index, Tensor):
        return index._data
    if isinstance(index, tuple):
        return tuple(i._data if isinstance(i, Tensor) else i for i in index)
    return index


def _sizes(sizes) -> tuple[int, ...]:
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        sizes = tuple(sizes[0])
    return tuple(int(s) for s in sizes)


def _keep(a, b) -> bool:
    """keepdim from either spelling (NumPy's keepdims or PyTorch's keepdim)."""
    return bool(a if b is None else b)


def _max_or_min(x: Tensor, op: str, dim, keepdim, axis, keepdims):
    """The four forms of ``max``/``min`` (see :meth:`TensorMethods.max`)."""
    if isinstance(dim, Tensor) or (dim is not None and not isinstance(dim, (int, np.integer, tuple, list))):
        other = dim
        return maximum(x, other) if op == "max" else minimum(x, other)
    keep = _keep(keepdim, keepdims)
    if axis is not None:                                     # NumPy's keyword: values only
        if dim is not None:
            raise TypeError(f"{op}: pass either axis or dim, not both")
        return x.amax(axis, keep) if op == "max" else x.amin(axis, keep)
    if dim is None:                                          # the whole tensor: one value
        return x.amax(None, keep) if op == "max" else x.amin(None, keep)
    if not isinstance(dim, (int, np.integer)):
        raise TypeError(f"{op}: dim must be an int, got {dim!r}; for the {op} over several dims use "
                        f"a{op}(dim=(...)) (values only)")
    return _values_indices(x, op, int(dim), keep)


def _values_indices(x: Tensor, op: str, dim: int, keepdim: bool) -> ValuesIndices:
    """``(values, indices)`` of the max/min along ``dim``; values are gathered at indices (x[..., i, ...])."""
    if x.ndim == 0:
        return ValuesIndices(x, Tensor(np.zeros((), dtype=np.int64)))
    d = dim % x.ndim
    xp = get_array_module(x._data)
    idx = getattr(x._data, "arg" + op)(axis=d)                # (reduced shape)
    reduced = x.shape[:d] + x.shape[d + 1:]
    index = []
    for i, n in enumerate(x.shape):                          # broadcastable aranges, idx at dim d
        if i == d:
            index.append(idx)
            continue
        j = i if i < d else i - 1
        index.append(xp.arange(n).reshape(tuple(n if k == j else 1 for k in range(len(reduced)))))
    values = GetItem(tuple(index))(x)                        # (reduced shape)
    indices = Tensor(idx.astype(np.int64))
    if keepdim:
        values, indices = values.unsqueeze(d), indices.unsqueeze(d)
    return ValuesIndices(values, indices)


def _arg(x: Tensor, op: str, axis, keepdim: bool) -> Tensor:
    if isinstance(axis, tuple):
        raise TypeError(f"{op}: dim must be an int or None, got {axis!r}")
    idx = getattr(x._data, op)(axis=axis)
    if keepdim and axis is not None:
        idx = get_array_module(idx).expand_dims(idx, axis)
    elif keepdim:
        idx = idx.reshape((1,) * x.ndim)
    return Tensor(get_array_module(x._data).asarray(idx).astype(np.int64))


# --- in-place machinery ---------------------------------------------------------------

def _check_leaf(name: str, t: Tensor) -> None:
    """PyTorch's rule: a leaf that requires grad is changed in place only under no_grad."""
    if is_grad_enabled() and t.requires_grad and t.grad_fn is None:
        raise RuntimeError(f"{name}: a leaf Variable that requires grad is being used in an in-place operation "
                           f"(a tensor of shape {t.shape}). Parameters are updated under no_grad, as an optimizer "
                           "does: `with tinygan.no_grad(): p -= lr * p.grad`")


def _records_graph(name: str, t: Tensor, other: Tensor | None = None) -> bool:
    """Whether an in-place op on ``t`` must be recorded in the graph (else it is a plain array write)."""
    _check_leaf(name, t)
    return is_grad_enabled() and (t.requires_grad or (other is not None and other.requires_grad))


def _shadow(t: Tensor) -> Tensor:
    """A stand-in for ``t`` before an in-place op: its array and its place in the graph."""
    s = Tensor(t._data)
    s.requires_grad, s.grad_fn = t.requires_grad, t.grad_fn
    return s


def _adopt(t: Tensor, name: str, new: Tensor) -> Tensor:
    """Make ``t`` the result ``new`` of an in-place op recorded in the graph.

    ``t`` takes ``new``'s array and ``grad_fn``: a new array, so the old one
    (which the graph may still need) is left intact; other views of the old
    memory keep the old values.  Functions that saved ``t`` itself see its
    memory replaced, and their backward raises (:meth:`Function.check_saved`).
    """
    if new.shape != t.shape:
        raise RuntimeError(f"{name}: output with shape {t.shape} doesn't match the broadcast shape {new.shape}")
    if new.dtype != t.dtype:
        if not np.can_cast(new.dtype, t.dtype, "same_kind"):
            raise TypeError(f"{name}: result type {new.dtype} can't be cast to the desired output type {t.dtype}")
        new = new.to(dtype=t.dtype)
    version = t._version + 1
    t._set_data(new._data)
    t.requires_grad, t.grad_fn = new.requires_grad, new.grad_fn
    bump_version(t._data, to=version)
    if new.grad_fn is not None:
        new.grad_fn._out_version = version
    return t


def _writable(name: str, t: Tensor):
    """``t``'s array, if it can be written in place."""
    a = t._data
    if any(st == 0 and n > 1 for st, n in zip(a.strides, a.shape)):
        raise RuntimeError(f"{name}: unsupported operation: more than one element of the written-to tensor refers "
                           f"to a single memory location (a broadcast view of shape {t.shape}, as expand() makes). "
                           "Please clone() the tensor before performing the operation.")
    if not getattr(a.flags, "writeable", True):
        raise RuntimeError(f"{name}: the tensor's array (shape {t.shape}) is read-only; clone() the tensor first")
    return a


def _check_fits(name: str, t: Tensor, b) -> None:
    """An in-place result keeps ``t``'s shape: ``b`` must broadcast to it, not beyond."""
    try:
        shape = np.broadcast_shapes(t.shape, tuple(b.shape))
    except ValueError:
        raise ValueError(f"{name}: shapes {t.shape} and {tuple(b.shape)} cannot be broadcast together") from None
    if shape != t.shape:
        raise RuntimeError(f"{name}: output with shape {t.shape} doesn't match the broadcast shape {shape}")


_UFUNCS = {"add_": "add", "sub_": "subtract", "mul_": "multiply", "div_": "true_divide"}


def _inplace_binary(t: Tensor, name: str, other, alpha, graph_op) -> Tensor:
    """``t = graph_op(t, alpha other)``, in place.  Two paths:

    * a plain array write (grad mode off, or nothing involved requires grad):
      NumPy's ``ufunc(a, b, out=a)`` on ``t``'s own memory, whose version is
      then bumped.  Optimizers and ``with no_grad(): p -= lr * p.grad`` take it;
    * recorded in the graph (grad mode on, and ``t`` or ``other`` requires
      grad: ``h += x`` inside a network): ``graph_op`` of a stand-in for the
      old ``t`` (:func:`_shadow`) and ``other``, which ``t`` then becomes
      (:func:`_adopt`).

    PyTorch's rules hold on both: an in-place op on a leaf that requires grad
    outside no_grad raises (:func:`_check_leaf`), and a change to a tensor
    that a graph saved makes that graph's backward raise.
    """
    o = _as_tensor(other, t)
    if o.device != t.device:
        raise ValueError(f"{name}: the other operand is on {o.device}, the tensor on {t.device}; "
                         "move one of them with .to()")
    if alpha != 1:
        o = o * alpha
    if _records_graph(name, t, o):
        return _adopt(t, name, graph_op(_shadow(t), o))
    a = _writable(name, t)
    _check_fits(name, t, o._data)
    xp = get_array_module(a)
    try:
        getattr(xp, _UFUNCS[name])(a, o._data, out=a, casting="same_kind")
    except TypeError:                              # NumPy's UFuncTypeError: an int tensor /= 2, say
        result = np.result_type(a.dtype, o._data.dtype) if name != "div_" else np.result_type(a.dtype, np.float32)
        raise TypeError(f"{name}: result type {result} can't be cast to the desired output type {a.dtype}; "
                        f"use the out-of-place form (t = t {_SYMBOLS[name]} x), which keeps the wider type") from None
    bump_version(a)
    return t


_SYMBOLS = {"add_": "+", "sub_": "-", "mul_": "*", "div_": "/"}


def _inplace_unary(t: Tensor, name: str, graph_op, array_op) -> Tensor:
    """``t = graph_op(t)`` in place: ``array_op(array)`` on ``t``'s memory, or recorded (:func:`_inplace_binary`)."""
    if _records_graph(name, t):
        return _adopt(t, name, graph_op(_shadow(t)))
    a = _writable(name, t)
    array_op(a)
    bump_version(a)
    return t


def _axis(axis, dim):
    """The reduction axis from NumPy's ``axis`` or PyTorch's ``dim`` keyword (a list becomes a tuple)."""
    if dim is not None:
        if axis is not None:
            raise TypeError("pass either axis or dim, not both")
        axis = dim
    if isinstance(axis, list):
        axis = tuple(axis)
    return axis


def _count(shape: tuple[int, ...], axis) -> int:
    """How many elements a reduction over ``axis`` combines into each result (``mean``'s n)."""
    if axis is None:
        return int(np.prod(shape)) if shape else 1
    axes = axis if isinstance(axis, tuple) else (axis,)
    return int(np.prod([shape[a] for a in axes]))


# --- torch.* function forms: tinygan.mean(t, dim=1) is t.mean(dim=1) -----------------

FUNCTION_FORMS = (
    "abs", "add", "all", "amax", "amin", "any", "argmax", "argmin", "chunk", "clamp", "clip", "clone", "div",
    "eq", "equal", "exp", "flatten", "log", "log_softmax", "matmul", "max", "mean", "min", "mm", "mul", "ne",
    "norm", "permute", "pow", "relu", "reshape", "sigmoid", "softmax", "split", "sqrt", "square", "squeeze",
    "std", "sub", "sum", "tanh", "transpose", "unsqueeze", "var",
)


def _function_form(name: str):
    """``tinygan.<name>(t, *args, **kwargs)``, which calls ``t.<name>(*args, **kwargs)`` (as ``torch.<name>``)."""
    def fn(input, *args, **kwargs):
        if not isinstance(input, Tensor):
            raise TypeError(f"tinygan.{name}: expected a Tensor as first argument, got {type(input).__name__}; "
                            "make one with tinygan.tensor(...)")
        return getattr(input, name)(*args, **kwargs)
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"``tinygan.{name}(t, ...)`` is ``t.{name}(...)``, as ``torch.{name}``."
    return fn


def function_forms() -> dict:
    """``{name: function}`` for :data:`FUNCTION_FORMS`, which ``tinygan/__init__.py`` exports."""
    return {name: _function_form(name) for name in FUNCTION_FORMS}


def install_tensor_methods() -> None:
    """Copy :class:`TensorMethods`' functions and properties onto ``Tensor`` (and so onto ``Parameter``)."""
    for name, value in vars(TensorMethods).items():
        if isinstance(value, (FunctionType, property)):
            setattr(Tensor, name, value)


install_tensor_methods()
