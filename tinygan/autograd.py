"""The autograd engine: ``Tensor``, ``Function``, ``backward`` and ``grad``.

Reverse-mode automatic differentiation over a dynamic graph, in the style of
micrograd and Chainer's ``FunctionNode``:

* A :class:`Function` computes its forward on raw arrays (NumPy or CuPy) and
  its backward on :class:`Tensor` objects, using other differentiable
  Functions.  The backward therefore records a graph of its own whenever
  ``create_graph=True`` asks for one, which is how second derivatives (the
  WGAN-GP and R1 gradient penalties) come out with no hand-derived Hessians.
* Each output Tensor remembers the Function that made it (``grad_fn``); each
  Function remembers its inputs.  ``backward`` walks that graph in reverse
  topological order (iteratively: no recursion limit) and *adds* gradient
  contributions, so a tensor used twice receives the sum of both.
* After a backward pass the saved tensors are freed unless
  ``retain_graph=True``; a second pass through a freed graph is an error.
* In-place updates (``t += 1``, ``p.sub_(lr * g)``, ``t.zero_()``, defined in
  :mod:`tinygan.ops`) are checked as PyTorch checks them: every array's
  memory has a *version*, bumped by each in-place write; a Function records
  the versions of what it saved for backward, and backward refuses to run
  when one has changed since (:func:`bump_version`, :meth:`Function.check_saved`).

The chain rule, as this file implements it: for ``y = f(x_1, ..., x_k)`` and a
scalar loss ``L``, ``dL/dx_i = J_{f,i}^T dL/dy`` where ``J_{f,i}^T`` is applied
by ``f.backward`` (a vector-Jacobian product).

Layering (imports flow one way: ``backend <- autograd <- ops <- functional``):
this module imports nothing of tinygan but :mod:`tinygan.backend`.  The
methods that *compute* with a Tensor (``+``, ``@``, ``reshape``, ``sum``,
``exp``, ``to``, ...) are defined in :mod:`tinygan.ops`, next to the Functions
behind them, and ops installs them onto :class:`Tensor` when it is imported
(the way Chainer's ``basic_math`` installs ``Variable``'s operators).
``import tinygan`` imports ops, so every Tensor a user meets has them.
"""
from __future__ import annotations

import contextlib
import weakref
from typing import Any, Iterable, Sequence

import numpy as np

from tinygan.backend import device_of, get_array_module, scalar_constant, to_device, to_numpy

# ---------------------------------------------------------------------------
# Grad mode
# ---------------------------------------------------------------------------

_grad_enabled = True


def is_grad_enabled() -> bool:
    """True when operations record the graph needed for backward."""
    return _grad_enabled


@contextlib.contextmanager
def _set_grad_enabled(mode: bool):
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, bool(mode)
    try:
        yield
    finally:
        _grad_enabled = previous


class _GradMode(contextlib.ContextDecorator):
    """Sets grad mode to ``_mode`` on enter and restores the previous mode on exit.

    Three spellings, as in PyTorch: ``with no_grad():``, ``@no_grad()`` and
    ``@no_grad`` (no parentheses: then the class is called with the function
    and returns it decorated).

    The previous modes are kept on a per-instance *stack*, so one instance may
    be entered re-entrantly: a recursive function decorated with
    ``@no_grad()``, or ``ng = no_grad()`` used in nested ``with ng:`` blocks.
    (Keeping a single saved context in an attribute was wrong there: the
    inner enter dropped the outer context, whose generator, once garbage
    collected, ran its ``finally`` and switched grad mode back on early.)
    """

    _mode = True

    def __new__(cls, func=None):
        if func is None:
            return super().__new__(cls)
        if not callable(func):
            raise TypeError(f"{cls.__name__}: expected no argument (with {cls.__name__}(): ...) or a function "
                            f"to decorate (@{cls.__name__}), got {type(func).__name__}")
        return cls()(func)                             # @no_grad without parentheses

    def __init__(self, func=None):
        self._previous: list[bool] = []

    def __enter__(self):
        global _grad_enabled
        self._previous.append(_grad_enabled)
        _grad_enabled = self._mode
        return self

    def __exit__(self, *exc):
        global _grad_enabled
        _grad_enabled = self._previous.pop()
        return False


class no_grad(_GradMode):
    """Context manager (and decorator) that stops graph recording, as ``torch.no_grad``."""

    _mode = False


class enable_grad(_GradMode):
    """Context manager that turns graph recording back on inside ``no_grad``."""

    _mode = True


# ---------------------------------------------------------------------------
# Function: one node of the graph
# ---------------------------------------------------------------------------

class Function:
    """One differentiable operation.

    Subclasses implement

    * ``forward(self, *arrays) -> array``: the maths on raw arrays (inputs that
      are Tensors arrive as their ``.data``);
    * ``backward(self, gy: Tensor) -> Tensor | None | tuple``: one gradient per
      input, written with differentiable tinygan ops so that it can itself be
      differentiated.  ``self.needs_input_grad[i]`` says whether input ``i``
      needs one (return ``None`` for those that do not).

    Backward reads the inputs as ``self.inputs`` (Tensors) and the output as
    ``self.saved_output()``; arrays that forward computes for backward's sake
    (a LeakyReLU mask on the GPU, batch statistics) are plain attributes set in ``forward``,
    and so are non-tensor parameters (stride, axis, ...) set in ``__init__``.

    Memory and in-place safety: ``saved_inputs`` lists the inputs whose
    *values* backward reads (``None``: all of them; ``()``: none, as for
    ``Add``, whose backward needs only shapes), and ``saves_output`` says
    whether it reads the output (:meth:`saved_output`).  The graph keeps
    only those arrays: an intermediate input that backward does not read is
    kept as an :class:`_Unsaved` edge (its shape, dtype and creator, no
    memory), so a layer's pre-activation is freed once the activation has
    read it, as in PyTorch.  The saved inputs' storage versions are recorded
    at the call, and :meth:`check_saved` refuses to run backward once one of
    them has been modified in place; :meth:`saved_output` checks the output
    the same way.

    Usage: ``y = Exp()(x)``, or ``y = Conv2d(stride, padding)(x, w)``.
    """

    inputs: tuple["Tensor", ...] = ()
    needs_input_grad: tuple[bool, ...] = ()
    saved_inputs: tuple[int, ...] | None = None
    saves_output: bool = False          # True for a backward that reads the output (saved_output())
    _out_data: Any = None
    _out_version: int = 0
    _saved_versions: tuple = ()
    _freed: bool = False

    # The name used in error messages: "conv2d", "add", ...
    @property
    def name(self) -> str:
        return type(self).__name__.lower()

    def forward(self, *arrays):  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, gy: "Tensor"):  # pragma: no cover - abstract
        raise NotImplementedError

    def saved_output(self) -> "Tensor":
        """This Function's output, for backwards written in terms of it (tanh, sigmoid, exp).

        When the backward pass is itself being recorded (``create_graph=True``)
        the output is returned *as a node of the graph* (its ``grad_fn`` is this
        Function), so second derivatives flow through it; otherwise it is a
        constant.  Only the array is stored, so no reference cycle
        output -> Function -> output keeps memory alive.
        """
        self._check_not_freed()
        if self._out_data is None:
            raise RuntimeError(f"{self.name}: backward reads the output, but the Function does not declare "
                               "saves_output = True, so the graph did not keep it")
        now = _storage_state(self._out_data)[1]
        if now != self._out_version:
            raise RuntimeError(_modified_message(self.name, "its output", self._out_data.shape,
                                                 self._out_version, now, replaced=False))
        t = Tensor(self._out_data)
        if _grad_enabled:
            t.requires_grad = True
            t.grad_fn = self
        return t

    def _check_not_freed(self) -> None:
        if self._freed:
            raise RuntimeError(
                f"{self.name}: trying to backward through the graph a second time "
                "(its saved tensors were freed after the first backward); "
                "pass retain_graph=True to the first backward() or grad() call")

    def check_saved(self) -> None:
        """Raise if an input that backward reads was modified in place (or its ``.data`` replaced) since the call.

        PyTorch's check and wording: "one of the variables needed for gradient
        computation has been modified by an inplace operation".
        """
        for i, key, version in self._saved_versions:
            data = self.inputs[i]._data
            now_key, now = _storage_state(data)
            if (now_key, now) != (key, version):
                raise RuntimeError(_modified_message(self.name, f"input {i}", data.shape, version, now,
                                                     replaced=now_key != key))

    def release(self) -> None:
        """Free what backward needed, once it has run (unless ``retain_graph``)."""
        self._freed = True
        self.inputs = ()
        self._out_data = None
        self._saved_versions = ()

    def __call__(self, *inputs: Any) -> "Tensor":
        # Every op of every training step comes through here, so this is written for speed: list
        # comprehensions and plain loops (faster than tuple(generator) in CPython), and the device
        # check by array type unless the arrays' types differ (then by name, for the message).
        tensors = [x if isinstance(x, Tensor) else None for x in inputs]
        arrays = [x if t is None else t._data for x, t in zip(inputs, tensors)]
        if len(inputs) > 1 and not _same_array_type(tensors):
            _check_same_device(self.name, tensors)
        out = self.forward(*arrays)
        requires_grad = False
        if _grad_enabled:
            for t in tensors:
                if t is not None and t.requires_grad:
                    requires_grad = True
                    break
        result = Tensor(out, requires_grad=requires_grad)
        if requires_grad:
            saved = range(len(tensors)) if self.saved_inputs is None else self.saved_inputs
            # What backward reads is kept; an intermediate or constant input it does not read becomes
            # an edge without memory; non-tensor inputs are wrapped as constants so backward can
            # index self.inputs uniformly; leaves that require grad stay themselves (their .grad).
            inputs = []
            for i, t in enumerate(tensors):
                keep = i in saved or (t is not None and t.grad_fn is None and t.requires_grad)
                if t is None:
                    t = Tensor(arrays[i])
                inputs.append(t if keep else _Unsaved(t))
            self.inputs = tuple(inputs)
            self.needs_input_grad = tuple([t.requires_grad for t in inputs])
            if self.saves_output:
                self._out_data = result._data
                self._out_version = _storage_state(result._data)[1]
            self._saved_versions = tuple([(i, *_storage_state(arrays[i])) for i in saved if tensors[i] is not None])
            result.grad_fn = self
        return result


def _modified_message(op: str, what: str, shape, expected: int, now: int, replaced: bool) -> str:
    if replaced:
        change = ("had its memory replaced (its .data assigned, or an in-place op recorded in the graph) "
                  f"after {op} saved it")
    else:
        change = f"is at version {now}; expected version {expected} instead"
    return (f"{op}: one of the variables needed for gradient computation has been modified by an inplace "
            f"operation: {what} of {op}, a tensor of shape {tuple(shape)}, {change}. Do the in-place update "
            "after backward(), or write it out of place (x = x + 1 instead of x += 1), or clone() the tensor "
            "before changing it")


# ---------------------------------------------------------------------------
# Storage versions (in-place safety)
# ---------------------------------------------------------------------------

# id(memory owner) -> how many in-place writes it has seen.  An entry is made by the first
# write and removed when the owning array is garbage collected (weakref.finalize).
_VERSIONS: dict[int, int] = {}


def _storage_state(a) -> tuple[int, int]:
    """``(key, version)`` of the memory of array ``a``: the key is shared by its views and ``detach()``."""
    owner, base = a, a.base
    while base is not None:
        owner, base = base, getattr(base, "base", None)       # the last owner may be a bytes buffer
    key = id(owner)
    return key, _VERSIONS.get(key, 0)


def version_of(a) -> int:
    """How many in-place writes the memory of array ``a`` has seen (``Tensor._version``)."""
    return _storage_state(a)[1]


def bump_version(a, to: int | None = None) -> None:
    """Record an in-place write into the memory of array (or Tensor) ``a``: its version goes up by one.

    Every in-place Tensor method calls it.  Code that writes a tensor's
    ``.data`` array directly may call it too (an optimizer's step, say): a
    graph built before the write then refuses to backward, as in PyTorch,
    while a graph built after it records the new version and is unaffected.
    """
    if isinstance(a, Tensor):
        a = a._data
    owner = _memory_owner(a)
    key = id(owner)
    if key not in _VERSIONS:
        try:
            weakref.finalize(owner, _VERSIONS.pop, key, None)
        except TypeError:                       # not weakly referenceable: the entry stays (an int)
            pass
    _VERSIONS[key] = _VERSIONS.get(key, 0) + 1 if to is None else to


def _same_array_type(tensors: Sequence["Tensor | None"]) -> bool:
    """True when every tensor's array is of one type (then they are on one device: NumPy, or CuPy's GPU 0).

    The fast path of :func:`_check_same_device`; a Tensor class with its own ``device`` takes the slow one.
    """
    kind = None
    for t in tensors:
        if t is not None:
            if type(t).device is not _TENSOR_DEVICE:
                return False
            if kind is None:
                kind = type(t._data)
            elif type(t._data) is not kind:
                return False
    return True


def _check_same_device(op: str, tensors: Sequence["Tensor | None"]) -> None:
    devices = {t.device for t in tensors if t is not None}
    if len(devices) > 1:
        desc = ", ".join(f"{t.device} tensor of shape {t.shape}" for t in tensors if t is not None)
        raise ValueError(f"{op}: all tensors must be on the same device, got {desc}")


# ---------------------------------------------------------------------------
# Tensor
# ---------------------------------------------------------------------------

_FLOAT_KINDS = ("f",)


class InplaceOperators:
    """``t += x`` is ``t.add_(x)``, and so for ``-=``, ``*=``, ``/=``: one place for Tensor and DataView.

    Python asks ``__iadd__`` first, so for a DataView these run before NumPy
    could defer to a Tensor operand (``p.data -= lr * p.grad``).  The ``*_``
    methods themselves are Tensor's (installed from :mod:`tinygan.ops`) and
    DataView's.
    """

    def __iadd__(self, other):
        return self.add_(other)

    def __isub__(self, other):
        return self.sub_(other)

    def __imul__(self, other):
        return self.mul_(other)

    def __itruediv__(self, other):
        return self.div_(other)


class Tensor(InplaceOperators):
    """An n-dimensional array that records how it was computed.

    ``_data`` is the NumPy (CPU) or CuPy (GPU) array, which tinygan's code
    reads; ``data`` is the same memory for users (on the CPU a
    :class:`DataView`, an array with PyTorch's in-place methods), not a Tensor
    as in PyTorch; ``grad`` is a Tensor of the same shape filled by
    :meth:`backward`; ``grad_fn`` is the Function that produced it (``None``
    for leaves made by the user).  Assigning ``t.data = value`` checks the
    value (an array of the same shape, dtype and device, or a Tensor, whose
    array is taken).

    This class holds the data and the graph bookkeeping.  Arithmetic,
    comparisons, shape ops, reductions, element-wise maths and device/dtype
    moves are installed from :class:`tinygan.ops.TensorMethods` (see the
    module docstring).
    """

    __array_priority__ = 1000  # numpy scalars defer to Tensor's operators
    __hash__ = object.__hash__  # usable as a dict key, by identity (comparisons return tensors)

    def __init__(self, data: Any, requires_grad: bool = False):
        if type(data) is not np.ndarray:                 # the ops hand back plain arrays: skip this
            if isinstance(data, Tensor):
                data = data._data
            elif isinstance(data, DataView):
                data = data.view(np.ndarray)             # Tensor(p.data): the plain array, same memory
            xp = get_array_module(data)
            if not hasattr(data, "dtype") or not hasattr(data, "shape"):
                data = np.asarray(data)
                xp = np
            if data.ndim == 0 and xp is np:
                data = np.asarray(data)                  # a NumPy scalar (np.float32(1)) -> 0-d array
        if data.dtype == np.float16 or data.dtype.kind not in "fiub":
            raise TypeError(f"tensor: unsupported dtype {data.dtype}")
        self._data = data
        self.grad: Tensor | None = None
        self.grad_fn: Function | None = None
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    # --- the array ------------------------------------------------------------
    @property
    def data(self):
        """The array that holds the values: on the CPU a :class:`DataView` of it, on the GPU the CuPy array.

        A DataView is a NumPy array (a view of the tensor's memory) that also has
        PyTorch's in-place methods, so ``p.data.clamp_(-c, c)`` and
        ``m.weight.data.normal_(0.0, 0.02)`` work as in PyTorch tutorials.  tinygan's
        own code reads ``_data``, the plain array.
        """
        a = self._data
        return a.view(DataView) if type(a) is np.ndarray else a

    @data.setter
    def data(self, value) -> None:
        self._set_data(_checked_data(self, value))

    def _set_data(self, array) -> None:
        """Replace the array, unchecked (``Module.to`` uses it to change dtype or device)."""
        self._data = array

    @property
    def _version(self) -> int:
        """How many in-place writes this tensor's memory has seen (as ``torch.Tensor._version``)."""
        return version_of(self._data)

    # --- basic properties ---------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self._data.shape)

    @property
    def dtype(self):
        return self._data.dtype

    @property
    def ndim(self) -> int:
        return self._data.ndim

    @property
    def device(self) -> str:
        return device_of(self._data)

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    def size(self, dim: int | None = None):
        return self.shape if dim is None else self.shape[dim]

    def numel(self) -> int:
        return int(self._data.size)

    def dim(self) -> int:
        return self.ndim

    def __len__(self) -> int:
        return self.shape[0]

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        if requires_grad and self._data.dtype.kind not in _FLOAT_KINDS:
            raise TypeError(
                f"requires_grad: only floating-point tensors can require gradients, "
                f"got dtype {self._data.dtype} for a tensor of shape {self.shape}")
        if not requires_grad and self.grad_fn is not None:
            raise RuntimeError("requires_grad_: cannot turn off gradients of a non-leaf tensor; use detach()")
        self.requires_grad = bool(requires_grad)
        return self

    # --- conversions --------------------------------------------------------
    def numpy(self) -> np.ndarray:
        """A host NumPy copy (or view, on the CPU) of the data, like ``t.detach().cpu().numpy()``."""
        return to_numpy(self._data)

    def item(self) -> float:
        if self._data.size != 1:
            raise ValueError(f"item: only one-element tensors can be converted, got shape {self.shape}")
        return self._data.reshape(()).item()

    def tolist(self):
        return self.numpy().tolist()

    def detach(self) -> "Tensor":
        """The same data, cut from the graph (shares memory, as in PyTorch)."""
        return Tensor(self._data)

    def __repr__(self) -> str:
        extra = ""
        if self.grad_fn is not None:
            extra = f", grad_fn={type(self.grad_fn).__name__}"
        elif self.requires_grad:
            extra = ", requires_grad=True"
        dev = "" if self.device == "cpu" else f", device='{self.device}'"
        body = np.array2string(self.numpy(), precision=4, separator=", ", threshold=20)
        return f"tensor({body}{dev}{extra})"

    def __bool__(self) -> bool:
        if self._data.size != 1:
            raise ValueError(f"bool: the truth value of a tensor of shape {self.shape} is ambiguous; "
                             "use (t == u).all() or .any() (== compares element-wise, as in PyTorch), "
                             "or `t is u` to ask whether two tensors are the same object")
        return bool(self._data.reshape(()).item())

    def __float__(self) -> float:
        return float(self.item())

    def __array__(self, dtype=None, copy=None):
        a = self.numpy()
        return a if dtype is None else a.astype(dtype)

    # --- autograd -----------------------------------------------------------
    def backward(self, grad: Any = None, retain_graph: bool = False, create_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad``.

        ``grad`` is dL/d(self); it may be omitted only for a one-element tensor
        (it is then 1).  ``create_graph=True`` records the backward pass itself
        so that the resulting ``.grad`` can be differentiated again.
        """
        if not self.requires_grad:
            raise RuntimeError(
                f"backward: tensor of shape {self.shape} does not require grad and has no grad_fn")
        gy = _initial_grad("backward", self, grad)
        run_backward([self], [gy], retain_graph=retain_graph or create_graph,
                     create_graph=create_graph, inputs=None)


class DataView(InplaceOperators, np.ndarray):
    """``Tensor.data`` on the CPU: a NumPy view of the tensor's memory with PyTorch's in-place methods.

    It is an ``np.ndarray`` in every other way; NumPy operations on it return
    plain arrays.  Its in-place methods (``clamp_``, ``normal_``, ``uniform_``,
    ``fill_``, ``zero_``, ``copy_``, ``add_``, ``sub_``, ``mul_``, ``div_``) write
    the tensor's memory as the tensor's own methods do under ``no_grad`` and
    return the view, so ``p.data.clamp_(-c, c)`` (WGAN's weight clipping) and
    ``m.weight.data.normal_(0.0, 0.02)`` (DCGAN's initialisation) read as in
    PyTorch.  Every write bumps the memory's version (:func:`bump_version`): a
    graph that saved the old values refuses to backward, where PyTorch, whose
    ``.data`` escapes its version counter, would give a wrong gradient.
    """

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        out = kwargs.get("out")
        if out is None and any(isinstance(x, Tensor) for x in inputs):
            return NotImplemented                # ``p.data - lr * p.grad``: the Tensor's operator answers
        # ``p.data -= lr * p.grad`` writes in place, as in PyTorch (where ``.data`` is outside the graph)
        plain = tuple(x.view(np.ndarray) if isinstance(x, DataView) else x._data if isinstance(x, Tensor) else x
                      for x in inputs)
        if out is not None:
            kwargs["out"] = tuple(o.view(np.ndarray) if isinstance(o, DataView) else o for o in out)
        result = getattr(ufunc, method)(*plain, **kwargs)
        if out is None:
            return result
        for o in out:                            # ``p.data -= x``: an in-place write into a tensor's memory
            if isinstance(o, DataView):
                bump_version(o)
        return out[0] if len(out) == 1 else out

    def _inplace(self, name: str, *args, **kwargs) -> "DataView":
        with no_grad():
            getattr(Tensor(self), name)(*args, **kwargs)       # Tensor() takes the plain array
        return self

    def clamp_(self, min=None, max=None):
        return self._inplace("clamp_", min, max)

    clip_ = clamp_

    def normal_(self, mean=0.0, std=1.0):
        return self._inplace("normal_", mean, std)

    def uniform_(self, a=0.0, b=1.0):
        return self._inplace("uniform_", a, b)

    def fill_(self, value):
        return self._inplace("fill_", value)

    def zero_(self):
        return self._inplace("zero_")

    def copy_(self, src):
        return self._inplace("copy_", src)

    def add_(self, other, alpha=1):
        return self._inplace("add_", other, alpha=alpha)

    def sub_(self, other, alpha=1):
        return self._inplace("sub_", other, alpha=alpha)

    def mul_(self, other):
        return self._inplace("mul_", other)

    def div_(self, other):
        return self._inplace("div_", other)

    def cpu(self) -> "DataView":
        """Itself: it is on the CPU (``fake.data.cpu().numpy()``, as older tutorials write)."""
        return self

    def numpy(self) -> np.ndarray:
        """The plain NumPy array, sharing this memory (as ``torch.Tensor.numpy``)."""
        return self.view(np.ndarray)

    def __setitem__(self, index, value):                 # ``p.data[0] = 1``: an in-place write too
        np.ndarray.__setitem__(self, index, value._data if isinstance(value, Tensor) else value)
        bump_version(self)


def _checked_data(t: Tensor, value: Any):
    """The array for ``t.data = value``: a Tensor's array, or an array like ``t``'s; anything else is refused."""
    if isinstance(value, Tensor):
        value = value._data
    elif isinstance(value, DataView):
        if _same_memory(value, t._data):
            return t._data                       # ``p.data -= x`` wrote in place and hands the view back
        value = value.view(np.ndarray)
    elif isinstance(value, np.generic):
        value = np.asarray(value)
    if not (isinstance(value, np.ndarray) or get_array_module(value) is not np):
        raise TypeError(f"Tensor.data: expected a NumPy/CuPy array (or a Tensor) of shape {t.shape} and dtype "
                        f"{t.dtype}, got {type(value).__name__}; to change the values in place write "
                        "`with tinygan.no_grad(): t.copy_(values)`")
    if tuple(value.shape) != t.shape:
        raise ValueError(f"Tensor.data: the new array has shape {tuple(value.shape)} but the tensor has shape "
                         f"{t.shape}; make a new tensor for a new shape")
    if value.dtype != t.dtype:
        raise TypeError(f"Tensor.data: the new array has dtype {value.dtype} but the tensor has dtype {t.dtype}; "
                        f"cast it first (array.astype({t.dtype.name!r})) or use t.to(dtype=...)")
    if device_of(value) != t.device:
        raise ValueError(f"Tensor.data: the new array is on {device_of(value)} but the tensor on {t.device}; "
                         f"move it first (tinygan.backend.to_device(array, {t.device!r}))")
    return value


def _same_memory(a, b) -> bool:
    """Whether arrays ``a`` and ``b`` are the same values in the same memory (same start, shape and strides)."""
    return (a.__array_interface__["data"][0] == b.__array_interface__["data"][0] and a.shape == b.shape
            and a.strides == b.strides and a.dtype == b.dtype)


_TENSOR_DEVICE = Tensor.device      # the property _same_array_type relies on


class _Unsaved(Tensor):
    """A graph edge to an input whose values backward does not read: shape, dtype, device and creator, no memory.

    Backward reaches the input's creator through it (``grad_fn``) and may read
    its shape; reading its values is a bug in the Function's ``saved_inputs``
    and raises instead of computing with stale or missing numbers.
    """

    def __init__(self, t: Tensor):                   # not Tensor.__init__: no array is kept
        self.grad = None
        self.grad_fn = t.grad_fn
        self.requires_grad = t.requires_grad
        self._meta = (t.shape, t.dtype, t.device)

    @property
    def _data(self):
        raise RuntimeError("autograd: a backward read the values of an input that its Function's saved_inputs "
                           "leaves out, so the graph did not keep them (add the input's index to saved_inputs)")

    @property
    def shape(self) -> tuple[int, ...]:
        return self._meta[0]

    @property
    def dtype(self):
        return self._meta[1]

    @property
    def ndim(self) -> int:
        return len(self._meta[0])

    @property
    def device(self) -> str:
        return self._meta[2]

    def numel(self) -> int:
        return int(np.prod(self._meta[0], dtype=np.int64))


def _as_tensor(value: Any, like: Tensor) -> Tensor:
    """Wrap a Python/NumPy scalar or array as a constant Tensor beside ``like``.

    Python scalars take ``like``'s dtype so that ``x * 0.5`` stays float32.
    """
    if isinstance(value, Tensor):
        return value
    xp = get_array_module(like._data)
    if isinstance(value, (int, float, bool)) or (np.isscalar(value) and not isinstance(value, str)):
        dtype = like.dtype if like.dtype.kind == "f" else None
        return Tensor(scalar_constant(value, dtype, xp))      # cached on the GPU: no copy per use
    arr = value if get_array_module(value) is xp else to_device(value, like.device)
    return Tensor(xp.asarray(arr))


def _initial_grad(op: str, y: Tensor, grad: Any) -> Tensor:
    if grad is None:
        if y._data.size != 1:
            raise RuntimeError(
                f"{op}: grad can be implicitly created only for scalar outputs; "
                f"got an output of shape {y.shape}: pass grad (dL/d output) of that shape")
        xp = get_array_module(y._data)
        return Tensor(xp.ones_like(y._data))
    g = grad if isinstance(grad, Tensor) else _as_tensor(grad, y)
    if g.shape != y.shape:
        raise ValueError(f"{op}: grad has shape {g.shape} but the output has shape {y.shape}")
    return g


# ---------------------------------------------------------------------------
# The backward pass
# ---------------------------------------------------------------------------

def _topological_order(roots: Iterable[Tensor]) -> list[Function]:
    """Functions reachable from ``roots``, each listed after all of its inputs' creators.

    An iterative depth-first search (an explicit stack instead of recursion),
    so graphs deeper than Python's recursion limit are fine.
    """
    order: list[Function] = []
    visited: set[int] = set()
    stack: list[tuple[Function, bool]] = [(r.grad_fn, False) for r in roots if r.grad_fn is not None]
    while stack:
        fn, expanded = stack.pop()
        if expanded:
            order.append(fn)
            continue
        if id(fn) in visited:
            continue
        visited.add(id(fn))
        stack.append((fn, True))
        for t in fn.inputs:
            if t.grad_fn is not None and id(t.grad_fn) not in visited:
                stack.append((t.grad_fn, False))
    return order


def run_backward(roots: Sequence[Tensor], root_grads: Sequence[Tensor], retain_graph: bool,
                 create_graph: bool, inputs: Sequence[Tensor] | None):
    """Propagate ``root_grads`` back through the graph.

    With ``inputs=None`` (``Tensor.backward``) the gradient of every leaf that
    requires grad is *added* to its ``.grad``.  Otherwise (``tinygan.grad``)
    only the gradients of ``inputs`` are computed, and returned in order.
    """
    order = _topological_order(roots)  # inputs before outputs
    for fn in order:
        fn._check_not_freed()

    # Non-leaf tensors whose gradient grad() must return, by their creator.
    wanted_ids = None if inputs is None else {id(t) for t in inputs}
    by_output: dict[int, Tensor] = {}
    for t in inputs or ():
        if t.grad_fn is not None:
            by_output[id(t.grad_fn)] = t

    # Which Functions lead to a tensor whose gradient we want?  Pruning the
    # others keeps grad(D(x_hat).sum(), x_hat) from computing D's weight gradients.
    needed: dict[int, bool] = {}

    def wants(t: Tensor) -> bool:
        if not t.requires_grad:
            return False
        if wanted_ids is not None and (id(t) in wanted_ids or id(t.grad_fn) in by_output):
            return True                              # (an intermediate may be an _Unsaved edge: by its creator)
        if t.grad_fn is not None:
            return needed.get(id(t.grad_fn), False)
        return wanted_ids is None  # a leaf: wanted by backward(), not by grad()

    for fn in order:
        needed[id(fn)] = any(wants(t) for t in fn.inputs)

    # Gradient w.r.t. each Function's output, accumulated as contributions arrive.
    grads: dict[int, Tensor] = {}
    results: dict[int, Tensor] = {}
    # Memory that a leaf's new .grad must not share: the root gradients (the caller's
    # arrays) and, as the pass goes on, the leaves' gradients (see _add_to_leaf_grad).
    claimed = {id(_memory_owner(g._data)) for g in root_grads}
    for r, g in zip(roots, root_grads):
        if r.grad_fn is not None:
            key = id(r.grad_fn)
            grads[key] = g if key not in grads else grads[key] + g
        elif wanted_ids is not None and id(r) in wanted_ids:  # a root that is a wanted leaf
            results[id(r)] = g if id(r) not in results else results[id(r)] + g
        elif wanted_ids is None and r.requires_grad:
            # backward() called on a leaf itself (e.g. the output of nn.Identity):
            # d(root)/d(root) = 1, so its .grad receives the root gradient, as in
            # PyTorch.  Without this branch the leaf's .grad silently stayed None.
            _add_to_leaf_grad(r, g, create_graph, claimed)

    with _set_grad_enabled(create_graph):
        for fn in reversed(order):
            gy = grads.pop(id(fn), None)
            if gy is not None and id(fn) in by_output:
                # A wanted non-leaf tensor: all contributions have arrived.
                results[id(by_output[id(fn)])] = gy
            if gy is not None and needed[id(fn)]:
                fn.check_saved()                    # nothing it saved was modified in place since
                fn.needs_input_grad = tuple(wants(t) for t in fn.inputs)
                gxs = fn.backward(gy)
                if not isinstance(gxs, tuple):
                    gxs = (gxs,)
                if len(gxs) != len(fn.inputs):
                    raise RuntimeError(
                        f"{fn.name}: backward returned {len(gxs)} gradients for {len(fn.inputs)} inputs")
                for t, gx in zip(fn.inputs, gxs):
                    if gx is not None and wants(t):
                        _accumulate(fn, t, gx, grads, results, wanted_ids, create_graph, claimed)
            if not retain_graph:
                fn.release()

    if inputs is None:
        return None
    return tuple(results.get(id(t)) for t in inputs)


def _accumulate(fn: Function, t: Tensor, gx: Tensor, grads: dict, results: dict,
                wanted_ids: set | None, create_graph: bool, claimed: set[int]) -> None:
    """Add one gradient contribution ``gx`` for input ``t`` of ``fn`` where it belongs.

    As in PyTorch, a gradient takes its input's dtype: a float32 tensor used
    with a float64 one (the result is float64) still gets a float32 gradient.
    """
    if gx.dtype != t.dtype:
        gx = gx.to(t.dtype)
    if gx.shape != t.shape:
        raise RuntimeError(
            f"{fn.name}: backward produced a gradient of shape {gx.shape} "
            f"for an input of shape {t.shape}")
    if t.grad_fn is not None:  # an intermediate tensor: pass it on to its creator
        key = id(t.grad_fn)
        grads[key] = gx if key not in grads else grads[key] + gx
    elif wanted_ids is None:  # a leaf, in backward()
        _add_to_leaf_grad(t, gx, create_graph, claimed)
    elif id(t) in wanted_ids:  # a leaf, in grad()
        results[id(t)] = gx if id(t) not in results else results[id(t)] + gx


def _memory_owner(a):
    """The array that owns ``a``'s memory (``a`` itself unless it is a view)."""
    while getattr(a, "base", None) is not None:
        a = a.base
    return a


def _add_to_leaf_grad(t: Tensor, g: Tensor, create_graph: bool, claimed: set[int]) -> None:
    """``t.grad += g`` for a leaf ``t`` in ``backward()``, never writing into an existing array.

    Outside ``create_graph``, a leaf's gradient array is its own: no other
    tensor, leaf gradient or caller's array shares its memory, so that
    ``zero_grad(set_to_none=False)`` may zero it in place (:func:`zero_grads`).
    A new gradient is therefore copied when it is read-only or overlaps
    itself (a broadcast view, as ``x.sum()`` hands back), or when its memory is
    a root gradient's or another leaf's from this pass (``a + b`` hands the
    same ``g`` to both); other gradients are fresh arrays, used as they are.
    ``t.grad + g`` is always a fresh array.
    """
    if create_graph:
        t.grad = g if t.grad is None else t.grad + g       # graph nodes: zero_grads replaces them
        return
    if t.grad is not None:
        claimed.discard(id(_memory_owner(t.grad._data)))     # freed now: its id may be reused
        t.grad = t.grad + g.detach()
        return
    a = g._data
    owner = id(_memory_owner(a))
    shared = owner in claimed or not getattr(a.flags, "writeable", True) or any(
        st == 0 and n > 1 for st, n in zip(a.strides, a.shape))
    t.grad = Tensor(a.copy()) if shared else g.detach()
    claimed.add(id(_memory_owner(t.grad._data)))


def grad(outputs, inputs, grad_outputs=None, create_graph: bool = False,
         retain_graph: bool | None = None, allow_unused: bool = False, only_inputs: bool = True):
    """Gradients of ``outputs`` with respect to ``inputs``, as ``torch.autograd.grad``.

    Returns a tuple with one Tensor per input.  With ``create_graph=True`` the
    returned gradients are part of the graph and can be differentiated again:
    the WGAN-GP penalty ``(||grad_x D(x)||_2 - 1)^2`` trains the critic
    through them.  Leaves' ``.grad`` are left untouched.  ``only_inputs`` is
    accepted for old PyTorch code (the WGAN-GP reference passes it) and must
    be True, as PyTorch has required since it deprecated it.
    """
    if not only_inputs:
        raise ValueError("grad: only_inputs=False is not supported (PyTorch deprecated it); "
                         "call backward() to fill the leaves' .grad")
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    single = isinstance(inputs, Tensor)
    inputs = [inputs] if single else list(inputs)
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif isinstance(grad_outputs, Tensor):
        grad_outputs = [grad_outputs]
    if len(grad_outputs) != len(outputs):
        raise ValueError(f"grad: got {len(grad_outputs)} grad_outputs for {len(outputs)} outputs")
    for i, t in enumerate(inputs):
        if not isinstance(t, Tensor) or not t.requires_grad:
            raise RuntimeError(f"grad: input {i} does not require grad")
    for i, o in enumerate(outputs):
        if not o.requires_grad:
            raise RuntimeError(f"grad: output {i} (shape {o.shape}) does not require grad and has no grad_fn")
    roots_grads = [_initial_grad("grad", o, g) for o, g in zip(outputs, grad_outputs)]
    if retain_graph is None:
        retain_graph = create_graph
    result = run_backward(outputs, roots_grads, retain_graph=retain_graph,
                          create_graph=create_graph, inputs=inputs)
    out = []
    for i, (t, g) in enumerate(zip(inputs, result)):
        if g is None:
            if not allow_unused:
                raise RuntimeError(
                    f"grad: input {i} (shape {t.shape}) was not used to compute the outputs; "
                    "pass allow_unused=True to get None for it")
        out.append(g)
    return tuple(out)


def zero_grads(tensors: Iterable[Tensor], set_to_none: bool = True) -> None:
    """Reset the ``.grad`` of ``tensors``: ``Module.zero_grad`` and ``Optimizer.zero_grad``, as in PyTorch.

    * ``set_to_none=True`` (the default): ``t.grad = None``.  The next
      backward makes a new gradient, and an optimizer skips a parameter whose
      gradient is None.
    * ``set_to_none=False``: each gradient keeps its tensor and its array,
      filled with zeros in place, so code holding ``p.grad`` sees the zeros,
      and an optimizer still steps the parameter with a zero gradient (weight
      decay and momentum act).  A gradient that is part of a graph (from
      ``backward(create_graph=True)``) is first cut from it, as PyTorch does;
      it is replaced by a new zero tensor, since its array may be shared
      (and so is a read-only one, e.g. a broadcast view set by hand).
    """
    for t in tensors:
        g = t.grad
        if g is None:
            continue
        if set_to_none:
            t.grad = None
        elif g.grad_fn is not None or g.requires_grad or not getattr(g._data.flags, "writeable", True):
            t.grad = Tensor(get_array_module(g._data).zeros_like(g._data))
        else:
            g._data.fill(0)  # the leaf's own array (see _add_to_leaf_grad)
