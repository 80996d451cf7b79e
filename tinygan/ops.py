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
MatMul         y = a @ b                   ga = g b^T, gb = a^T g
Concat         y = cat(x_1..x_k)           gx_i = g[slice_i]
=============  ==========================  ===================================

Layering: this module imports :mod:`tinygan.autograd` (``Function``,
``Tensor``), never the other way round.  Tensor's computing methods
(``x + y``, ``x @ w``, ``x.reshape``, ``x.sum``, ``x.to``, ...) are written at
the end of this file, in :class:`TensorMethods`, and installed onto ``Tensor``
when the module is imported.
"""
from __future__ import annotations

from types import FunctionType
from typing import Any

import numpy as np

from tinygan.autograd import Function, Tensor, _as_tensor
from tinygan.backend import get_array_module, normalize_device, to_device


def _const(array) -> Tensor:
    """A constant (non-differentiable) tensor, e.g. a mask saved by forward."""
    return Tensor(array)


def sum_to(g: Tensor, shape: tuple[int, ...]) -> Tensor:
    """The adjoint of broadcasting: sum ``g`` down to ``shape``."""
    if g.shape == tuple(shape):
        return g
    return SumTo(tuple(shape))(g)


def _check_broadcast(op: str, a, b) -> None:
    try:
        np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(f"{op}: shapes {tuple(a.shape)} and {tuple(b.shape)} cannot be broadcast together") from None


# --- arithmetic ---------------------------------------------------------------

class Add(Function):
    def forward(self, a, b):
        _check_broadcast("add", a, b)
        return a + b

    def backward(self, g):
        a, b = self.inputs
        return sum_to(g, a.shape), sum_to(g, b.shape)


class Sub(Function):
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
    def forward(self, x):
        return get_array_module(x).sqrt(x)

    def backward(self, g):
        return g / (self.saved_output() * 2.0)


class Abs(Function):
    def forward(self, x):
        self.sign = get_array_module(x).sign(x)
        return abs(x)

    def backward(self, g):
        return g * _const(self.sign)


class Clip(Function):
    """y = min(max(x, lo), hi); the gradient passes where lo <= x <= hi (as torch.clamp)."""

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
    def forward(self, x):
        return get_array_module(x).tanh(x)

    def backward(self, g):
        y = self.saved_output()
        return g * (1.0 - y * y)


class Sigmoid(Function):
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
    def forward(self, x):
        self.mask = x > 0
        return x * self.mask

    def backward(self, g):
        # Linear in g with a constant mask: its own derivative w.r.t. g is itself,
        # and the second derivative w.r.t. x is zero (almost everywhere).
        return g * _const(self.mask.astype(g.dtype))


# --- reductions -----------------------------------------------------------------

def _keepdims_shape(shape, axis) -> tuple[int, ...]:
    if axis is None:
        return (1,) * len(shape)
    axes = axis if isinstance(axis, tuple) else (axis,)
    axes = {a % len(shape) for a in axes}
    return tuple(1 if i in axes else s for i, s in enumerate(shape))


class Sum(Function):
    def __init__(self, axis=None, keepdims: bool = False):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        return x.sum(axis=self.axis, keepdims=self.keepdims)

    def backward(self, g):
        shape = self.inputs[0].shape
        return BroadcastTo(shape)(g.reshape(_keepdims_shape(shape, self.axis)))


class Max(Function):
    """y = max over ``axis``; the gradient is shared equally among tied maxima."""

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

    def __init__(self, index, shape):
        self.index, self.shape = index, tuple(shape)

    def forward(self, g):
        xp = get_array_module(g)
        gx = xp.zeros(self.shape, dtype=g.dtype)
        if _is_basic_index(self.index):
            gx[self.index] = g  # basic slicing never repeats an element
        elif xp is np:
            np.add.at(gx, self.index, g)
        else:
            import cupyx  # only reached for CuPy arrays
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
        return a @ b

    def backward(self, g):
        a, b = self.inputs
        ga = sum_to(g @ b.transpose(-1, -2), a.shape) if self.needs_input_grad[0] else None
        gb = sum_to(a.transpose(-1, -2) @ g, b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class Concat(Function):
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


# --- device and dtype -------------------------------------------------------------

class ToDevice(Function):
    def __init__(self, device: str):
        self.device = device

    def forward(self, x):
        self.source = "cuda" if get_array_module(x) is not np else "cpu"
        return to_device(x, self.device)

    def backward(self, g):
        return ToDevice(self.source)(g)


class AsType(Function):
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

    # Comparisons give constant (non-differentiable) boolean tensors.
    def _compare(self, other, op):
        other = other.data if isinstance(other, Tensor) else other
        return Tensor(op(self.data, other))

    def __lt__(self, other):
        return self._compare(other, lambda a, b: a < b)

    def __le__(self, other):
        return self._compare(other, lambda a, b: a <= b)

    def __gt__(self, other):
        return self._compare(other, lambda a, b: a > b)

    def __ge__(self, other):
        return self._compare(other, lambda a, b: a >= b)

    # --- device and dtype -----------------------------------------------------
    def to(self, device: Any = None, dtype: Any = None) -> "Tensor":
        """A copy on ``device`` (``"cpu"``/``"cuda"``) and/or with ``dtype``; differentiable."""
        out = self
        if device is not None and normalize_device(device) != self.device:
            out = ToDevice(normalize_device(device))(out)
        if dtype is not None and np.dtype(dtype) != out.dtype:
            out = AsType(np.dtype(dtype))(out)
        return out

    def cpu(self) -> "Tensor":
        return self.to("cpu")

    def cuda(self) -> "Tensor":
        return self.to("cuda")

    def float(self) -> "Tensor":
        return self.to(dtype=np.float32)

    def double(self) -> "Tensor":
        return self.to(dtype=np.float64)


    # --- shape ops ----------------------------------------------------------
    def __getitem__(self, index):
        if isinstance(index, Tensor):
            index = index.data
        elif isinstance(index, tuple):
            index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
        return GetItem(index)(self)

    def reshape(self, *shape) -> "Tensor":
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return Reshape(shape)(self)

    view = reshape

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

    @property
    def T(self) -> "Tensor":
        return Transpose(tuple(reversed(range(self.ndim))))(self)

    def unsqueeze(self, dim: int) -> "Tensor":
        shp = list(self.shape)
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
        shape = tuple(s if s != -1 else d for s, d in zip(shape, (1,) * (len(shape) - self.ndim) + self.shape))
        return BroadcastTo(shape)(self)

    # --- reductions ---------------------------------------------------------
    def sum(self, axis=None, keepdims: bool = False, dim=None) -> "Tensor":
        return Sum(_axis(axis, dim), keepdims)(self)

    def mean(self, axis=None, keepdims: bool = False, dim=None) -> "Tensor":
        axis = _axis(axis, dim)
        n = _count(self.shape, axis)
        return self.sum(axis=axis, keepdims=keepdims) * (1.0 / n)

    def var(self, axis=None, keepdims: bool = False, unbiased: bool = True, dim=None) -> "Tensor":
        """Variance: mean((x - mean(x))^2) * n / (n - 1) when ``unbiased`` (PyTorch's default)."""
        axis = _axis(axis, dim)
        n = _count(self.shape, axis)
        centred = self - self.mean(axis=axis, keepdims=True)
        # One value per variance with unbiased=True: NaN, as PyTorch (n - 1 = 0 used to
        # raise a bare ZeroDivisionError here).
        dof = n - 1 if unbiased else n
        return (centred * centred).sum(axis=axis, keepdims=keepdims) * (1.0 / dof if dof > 0 else float("nan"))

    def max(self, axis=None, keepdims: bool = False, dim=None) -> "Tensor":
        return Max(_axis(axis, dim), keepdims)(self)

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

    def argmax(self, axis=None, dim=None) -> "Tensor":
        return Tensor(self.data.argmax(axis=_axis(axis, dim)))


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


def install_tensor_methods() -> None:
    """Copy :class:`TensorMethods`' functions and properties onto ``Tensor`` (and so onto ``Parameter``)."""
    for name, value in vars(TensorMethods).items():
        if isinstance(value, (FunctionType, property)):
            setattr(Tensor, name, value)


install_tensor_methods()
