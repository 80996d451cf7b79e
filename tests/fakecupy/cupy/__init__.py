"""``cupy``, faked on the CPU: NumPy arrays posing as device arrays (tests/fakecupy).

Not CuPy.  A stand-in that lets CI run tinygan's CuPy code path -- every
``if xp is not numpy:`` branch, the launchers in
``tinygan/kernels/cuda/launch.py`` and the CUDA sources they launch -- on a
machine without a GPU.  Put ``tests/fakecupy`` first on ``sys.path`` (or in
``PYTHONPATH``) and ``import cupy`` finds this package; see
``tests/fakecupy/__init__.py`` and ``docs/gpu.md``.

:class:`ndarray` wraps a NumPy array and is *not* a ``numpy.ndarray``
subclass, so that code cannot mistake it for a host array.  Where CuPy
behaves unlike NumPy, this package behaves like CuPy:

* ``numpy.asarray(device_array)`` (any implicit conversion) raises CuPy's
  ``TypeError``; ``.get()``, ``cupy.asnumpy``, ``float()``, ``int()``,
  ``bool()`` and ``.item()`` are allowed (and counted as device-to-host copies);
* mixing a NumPy array with a device array in an operation raises
  ``TypeError`` (CuPy: "Unsupported type"); scalars are fine;
* element-wise operations return C-ordered new arrays (NumPy keeps the
  input's layout); ``*_like`` and ``astype`` keep it (order ``'K'``), as in CuPy;
* reductions and ``x[i]`` return 0-d arrays, not scalars;
* out-of-range integer-array indices wrap around instead of raising
  (``x[idx]``, ``x[idx] = v``, ``take``, ``cupyx.scatter_add``);
* ``empty``/``empty_like`` memory is filled with NaN (floats), so a kernel
  that leaves elements unwritten shows up;
* ``ElementwiseKernel``, ``ReductionKernel`` and ``RawKernel`` run host builds
  of the CUDA sources they are given (``tests/fakecupy/hostbuild.py``), or,
  without a C++ compiler, the NumPy twins of tinygan's registry kernels
  (``tests/fakecupy/twins.py``); their arguments are checked as CuPy would
  (dtypes, shapes, scalars), and a raw kernel's arguments against the C
  signature (an ``int64`` passed for an ``int`` parameter is an error here,
  silent garbage on a GPU).

Everything runs synchronously.  :data:`stats` counts host-to-device and
device-to-host copies and kernel launches (a launch per element-wise
operation, reduction, advanced index or custom kernel: an estimate of CuPy's
count, not an exact one).
"""
from __future__ import annotations

import builtins
import sys
import weakref
from collections import Counter

import numpy as _np

__version__ = "14.2.0"          # the CuPy version whose behaviour this stand-in follows
FAKE = True                     # how a script tells the stand-in from CuPy: getattr(cupy, "FAKE", False)

from numpy import (  # noqa: E402,F401  dtypes and constants, as CuPy re-exports them
    bool_, complex64, complex128, dtype, e, finfo, float16, float32, float64, floating, iinfo, inf,
    int8, int16, int32, int64, integer, intp, nan, newaxis, number, pi, uint8, uint16, uint32, uint64,
    can_cast, isscalar, issubdtype, promote_types, result_type,
)

bool = bool_  # noqa: A001  numpy 2 / CuPy 14 spell it cupy.bool too


# ---------------------------------------------------------------------------
# counters
# ---------------------------------------------------------------------------

class _Stats:
    """Copies and launches since the last :meth:`reset` (``cupy.stats``)."""

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.h2d = 0                    # host-to-device copies (asarray of host data, set, ...)
        self.h2d_scalar = 0             # ... of which 0-d (a Python scalar made a device array)
        self.d2h = 0                    # device-to-host copies (get, float(), item(), ...)
        self.launches = 0               # kernels (estimated for CuPy's own operations)
        self.kernels: Counter = Counter()   # custom kernels by name
        self.log: list | None = None    # launch records when a list (see record_launches)

    def snapshot(self) -> dict:
        return {"h2d": self.h2d, "h2d_scalar": self.h2d_scalar, "d2h": self.d2h, "launches": self.launches,
                "kernels": dict(self.kernels)}


stats = _Stats()


def _launch(n: int = 1) -> None:
    stats.launches += n


# ---------------------------------------------------------------------------
# memory "pool": bytes held by live device arrays, and the peak
# ---------------------------------------------------------------------------

class MemoryPool:
    """Tracks the bytes of live device buffers (``used_bytes``) and their peak (stand-in only)."""

    def __init__(self):
        self._used = 0
        self.peak = 0

    def _alloc(self, a: _np.ndarray) -> None:
        n = int(a.nbytes)
        if n == 0:
            return
        self._used += n
        self.peak = builtins.max(self.peak, self._used)
        weakref.finalize(a, self._free, n)

    def _free(self, n: int) -> None:
        self._used -= n

    def used_bytes(self) -> int:
        return self._used

    def total_bytes(self) -> int:
        return self._used

    def free_bytes(self) -> int:
        return 0

    def free_all_blocks(self, stream=None) -> None:
        pass

    def n_free_blocks(self) -> int:
        return 0

    def set_limit(self, size=None, fraction=None) -> None:
        pass

    def get_limit(self) -> int:
        return 0

    def reset_peak(self) -> None:
        """Stand-in only: start a new peak from what is live now."""
        self.peak = self._used


_default_pool = MemoryPool()
_pinned_pool = MemoryPool()


def get_default_memory_pool() -> MemoryPool:
    return _default_pool


def get_default_pinned_memory_pool() -> MemoryPool:
    return _pinned_pool


# ---------------------------------------------------------------------------
# the device array
# ---------------------------------------------------------------------------

_IMPLICIT = ("Implicit conversion to a NumPy array is not allowed. "
             "Please use `.get()` to construct a NumPy array explicitly.")
_SCALAR_TYPES = (int, float, complex, builtins.bool, _np.generic)


_OWNERS: dict = {}       # id(NumPy array owning a buffer) -> weakref to its device array


def _new(a: _np.ndarray) -> "ndarray":
    """Wrap a NumPy array (a fresh buffer or a view) as a device array.

    As in CuPy, a view's ``base`` is the one device array that owns the
    memory (a stable object: tinygan keys in-place-write versions on it), and
    wrapping an owning buffer that already has a device array gives that array.
    """
    root, b = a, a.base
    while b is not None:                      # the NumPy array owning the memory (through as_strided too)
        if isinstance(b, _np.ndarray):
            root = b
        b = getattr(b, "base", None)
    ref = _OWNERS.get(id(root))
    owner = ref() if ref is not None else None
    if owner is not None and owner._a is not root:
        owner = None
    if root is a and owner is not None:
        return owner
    if owner is None:
        owner = ndarray.__new__(ndarray)
        owner._a, owner._base = root, None
        if root.base is None:
            _default_pool._alloc(root)
        key = id(root)
        _OWNERS[key] = weakref.ref(owner, lambda _r, key=key: _OWNERS.pop(key, None)
                                   if _OWNERS.get(key) is _r else None)
        if root is a:
            return owner
    obj = ndarray.__new__(ndarray)
    obj._a, obj._base = a, owner
    return obj


def _unsupported(x) -> TypeError:
    return TypeError(f"Unsupported type {type(x)}")


def _unwrap(x, *, host_ok: builtins.bool = False):
    """Device arrays -> their NumPy arrays (recursively in lists/tuples/dicts); host arrays refused."""
    if isinstance(x, ndarray):
        return x._a
    if isinstance(x, _np.ndarray):
        if host_ok:
            return x
        raise _unsupported(x)
    if isinstance(x, (list, tuple)):
        return type(x)(_unwrap(v, host_ok=host_ok) for v in x)
    if isinstance(x, dict):
        return {k: _unwrap(v, host_ok=host_ok) for k, v in x.items()}
    return x


def _wrap(r):
    """NumPy results -> device arrays; NumPy scalars -> 0-d device arrays (as CuPy returns)."""
    if isinstance(r, _np.ndarray):
        return _new(r)
    if isinstance(r, _np.generic):
        return _new(_np.asarray(r))
    if isinstance(r, tuple):
        return tuple(_wrap(v) for v in r)
    if isinstance(r, list):
        return [_wrap(v) for v in r]
    return r


def _check_scalar_or_device(x):
    if isinstance(x, ndarray) or isinstance(x, _SCALAR_TYPES):
        return
    raise _unsupported(x)


def _call_ufunc(uf, inputs, kwargs):
    for x in inputs:
        _check_scalar_or_device(x)
    out = kwargs.get("out")
    if out is not None:
        outs = out if isinstance(out, tuple) else (out,)
        if not builtins.all(isinstance(o, ndarray) for o in outs):
            raise TypeError("Output arguments type must be cupy.ndarray")
        kwargs = {**kwargs, "out": tuple(o._a for o in outs)}
    else:
        kwargs = {**kwargs, "order": "C"}            # CuPy allocates C-ordered outputs
    if "where" in kwargs:
        kwargs["where"] = _unwrap(kwargs["where"])
    if uf is _np.matmul:
        cuda.get_cublas_handle()                      # FAKECUPY_BROKEN=cublas: matmuls fail as without libcublas
    _launch()
    r = uf(*[_unwrap(x) for x in inputs], **kwargs)
    if out is not None:                               # the caller's output arrays themselves
        return out[0] if isinstance(out, tuple) and len(out) == 1 else out
    return _wrap(r)


def _should_use_rop(x, y) -> builtins.bool:
    """CuPy's rule: defer to ``y``'s reflected operator when it opts out of ufuncs or has a higher priority."""
    y_ufunc = getattr(y, "__array_ufunc__", _should_use_rop)
    if y_ufunc is not _should_use_rop:
        return y_ufunc is None
    return getattr(x, "__array_priority__", 0) < getattr(y, "__array_priority__", 0)


def _binary(uf, reflected=False):
    def op(self, other):
        if not reflected and not isinstance(other, ndarray) and _should_use_rop(self, other):
            return NotImplemented
        return _call_ufunc(uf, (other, self) if reflected else (self, other), {})
    return op


def _inplace(uf):
    def op(self, other):
        _call_ufunc(uf, (self, other), {"out": (self,)})
        return self
    return op


def _axis_of_keys(key, ndim):
    """For an index tuple, the array axis each item applies to (None for None/Ellipsis/bool arrays)."""
    consumed = 0
    for k in key:
        if k is None or k is Ellipsis:
            continue
        if isinstance(k, _np.ndarray) and k.dtype == _np.bool_:
            consumed += k.ndim
        else:
            consumed += 1
    axes, ax = [], 0
    for k in key:
        if k is None:
            axes.append(None)
        elif k is Ellipsis:
            axes.append(None)
            ax += ndim - consumed
        elif isinstance(k, _np.ndarray) and k.dtype == _np.bool_:
            axes.append(None)
            ax += k.ndim
        else:
            axes.append(ax)
            ax += 1
    return axes


def _index(key, shape, count_host=True):
    """An index as NumPy sees it, integer arrays wrapped modulo their axis (CuPy's behaviour)."""
    items = key if isinstance(key, tuple) else (key,)
    conv, advanced = [], False
    for k in items:
        if isinstance(k, ndarray):
            k = k._a
            advanced = True
        elif isinstance(k, (list, _np.ndarray)):
            if count_host:
                stats.h2d += 1                                   # CuPy copies host indices to the device
            k = _np.asarray(k)
            advanced = True
        conv.append(k)
    axes = _axis_of_keys(conv, len(shape))
    for i, (k, ax) in enumerate(zip(conv, axes)):
        if isinstance(k, _np.ndarray) and k.dtype.kind in "iu" and ax is not None and ax < len(shape):
            n = shape[ax]
            if n > 0:
                conv[i] = k % n
    out = tuple(conv) if isinstance(key, tuple) else conv[0]
    return out, advanced


class _Flags:
    def __init__(self, a):
        self.c_contiguous = builtins.bool(a.flags.c_contiguous)
        self.f_contiguous = builtins.bool(a.flags.f_contiguous)
        self.owndata = a.base is None

    def __getitem__(self, name):
        return {"C_CONTIGUOUS": self.c_contiguous, "F_CONTIGUOUS": self.f_contiguous,
                "OWNDATA": self.owndata}[name]


class _MemoryPointer:
    def __init__(self, a):
        self.ptr = a.__array_interface__["data"][0]
        self.device_id = 0
        self.mem = None


class ndarray:
    """A device array: a NumPy array behind CuPy's interface (see the module docstring)."""

    __array_priority__ = 100
    __slots__ = ("_a", "_base", "__weakref__")
    __hash__ = None

    def __init__(self, shape, dtype=float, memptr=None, strides=None, order="C"):
        if memptr is not None or strides is not None:
            raise NotImplementedError("stand-in: ndarray(memptr=..., strides=...); use cupy.lib.stride_tricks")
        a = _np.empty(shape, dtype=dtype, order=order)
        _poison(a)
        _default_pool._alloc(a)
        self._a, self._base = a, None
        key = id(a)
        _OWNERS[key] = weakref.ref(self, lambda _r, key=key: _OWNERS.pop(key, None)
                                   if _OWNERS.get(key) is _r else None)

    # --- attributes -----------------------------------------------------------
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    strides = property(lambda self: self._a.strides)
    itemsize = property(lambda self: self._a.itemsize)
    nbytes = property(lambda self: self._a.nbytes)
    T = property(lambda self: _new(self._a.T))
    mT = property(lambda self: _new(_np.swapaxes(self._a, -1, -2)))
    flags = property(lambda self: _Flags(self._a))
    data = property(lambda self: _MemoryPointer(self._a))
    device = property(lambda self: cuda.Device(0))

    @property
    def base(self):
        return self._base

    @property
    def real(self):
        return _new(self._a.real)

    @property
    def imag(self):
        return _new(self._a.imag)

    # --- conversions (explicit ones allowed, implicit ones refused) --------------------
    def __array__(self, dtype=None, copy=None):
        raise TypeError(_IMPLICIT)

    def get(self, stream=None, order="C", out=None, blocking=True):
        stats.d2h += 1
        if out is not None:
            out[...] = self._a
            return out
        if order == "A":
            order = "F" if self._a.flags.f_contiguous and not self._a.flags.c_contiguous else "C"
        return _np.array(self._a, order=order, copy=True)

    def set(self, arr, stream=None):
        if isinstance(arr, ndarray):
            raise TypeError("Only numpy.ndarray can be set to cupy.ndarray")
        arr = _np.asarray(arr)
        if arr.shape != self._a.shape:
            raise ValueError(f"Shape mismatch. Old shape: {self._a.shape}, new shape: {arr.shape}")
        if arr.dtype != self._a.dtype:
            raise TypeError(f"{arr.dtype} array cannot be set to {self._a.dtype} array")
        stats.h2d += 1
        self._a[...] = arr

    def item(self, *args):
        stats.d2h += 1
        return self._a.item(*args)

    def tolist(self):
        stats.d2h += 1
        return self._a.tolist()

    def __int__(self):
        return int(self.get())

    def __float__(self):
        return float(self.get())

    def __complex__(self):
        return complex(self.get())

    def __bool__(self):
        if self._a.size == 1:
            return builtins.bool(self.get())
        return builtins.bool(self._a)           # NumPy's errors for empty / several elements

    def __format__(self, spec):
        return format(self.get(), spec)

    def __repr__(self):
        return repr(self._a)

    def __str__(self):
        return str(self._a)

    def __len__(self):
        if self._a.ndim == 0:
            raise TypeError("len() of unsized object")
        return self._a.shape[0]

    def __iter__(self):
        if self._a.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(self._a.shape[0]))

    def __copy__(self):
        return self.copy()

    def __deepcopy__(self, memo):
        return self.copy()

    def __reduce__(self):
        return array, (self.get(order="A"),)

    # --- NumPy protocols: np.add(x, ...) and np.concatenate([x, ...]) dispatch here ------
    def __array_ufunc__(self, uf, method, *inputs, **kwargs):
        if method == "__call__":
            return _call_ufunc(uf, inputs, kwargs)
        if method == "at":
            a, key = inputs[0], inputs[1]
            idx, _ = _index(key, a.shape)
            _launch()
            getattr(uf, "at")(a._a, idx, *[_unwrap(v) for v in inputs[2:]])
            return None
        for x in inputs:
            _check_scalar_or_device(x)
        _launch()
        return _wrap(getattr(uf, method)(*[_unwrap(x) for x in inputs], **_unwrap(kwargs)))

    def __array_function__(self, func, types, args, kwargs):
        impl = _module_function(func)
        if impl is None:
            return NotImplemented
        return impl(*args, **kwargs)

    # --- indexing -------------------------------------------------------------------
    def __getitem__(self, key):
        idx, advanced = _index(key, self._a.shape)
        if advanced:
            _launch()
        return _wrap(self._a[idx])

    def __setitem__(self, key, value):
        idx, advanced = _index(key, self._a.shape)
        if isinstance(value, ndarray):
            value = value._a
        elif isinstance(value, _np.ndarray):
            if not advanced and value.ndim != 0:      # CuPy: basic assignment refuses host arrays
                raise ValueError("non-scalar numpy.ndarray cannot be used for fill")
            stats.h2d += 1
        elif not isinstance(value, _SCALAR_TYPES):
            raise _unsupported(value)
        _launch()
        self._a[idx] = value

    # --- methods --------------------------------------------------------------------
    def copy(self, order="C"):
        _launch()
        return _new(_np.array(self._a, order=order, copy=True))

    def astype(self, dtype, order="K", casting=None, subok=None, copy=True):
        if not copy and _np.dtype(dtype) == self._a.dtype and order in ("K", "A"):
            return self
        _launch()
        kw = {} if casting is None else {"casting": casting}
        return _new(self._a.astype(dtype, order=order, copy=True, **kw))

    def fill(self, value):
        if isinstance(value, ndarray):
            if value.shape != ():
                raise ValueError("non-scalar cupy.ndarray cannot be used for fill")
            value = value._a[()]
        elif isinstance(value, _np.ndarray):
            if value.shape != ():
                raise ValueError("non-scalar numpy.ndarray cannot be used for fill")
        _launch()
        self._a.fill(value)

    def take(self, indices, axis=None, out=None):
        idx = _unwrap(indices, host_ok=True)
        idx = _np.asarray(idx)
        n = self._a.size if axis is None else self._a.shape[axis]
        if idx.dtype.kind in "iu" and n > 0:
            idx = idx % n                                 # CuPy wraps out-of-range indices
        _launch()
        return _wrap(_np.take(self._a, idx, axis=axis))

    def reshape(self, *shape, order="C"):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return _new(self._a.reshape(shape, order=order))

    def view(self, dtype=None):
        return _new(self._a.view() if dtype is None else self._a.view(dtype))

    def sort(self, axis=-1):
        _launch()
        self._a.sort(axis=axis)

    def __dlpack__(self, *args, **kwargs):
        raise NotImplementedError("stand-in: no DLPack")


def _method(name, launches=True):
    def m(self, *args, **kwargs):
        if launches:
            _launch()
        return _wrap(getattr(self._a, name)(*_unwrap(args), **_unwrap(kwargs)))
    m.__name__ = name
    return m


for _name in ("sum", "mean", "max", "min", "prod", "var", "std", "any", "all", "argmax", "argmin", "cumsum",
              "cumprod", "clip", "dot", "repeat", "round", "conj", "conjugate", "diagonal", "trace",
              "argsort", "nonzero", "partition", "argpartition", "compress", "ptp"):
    setattr(ndarray, _name, _method(_name))
for _name in ("transpose", "ravel", "squeeze", "swapaxes", "flatten"):
    setattr(ndarray, _name, _method(_name, launches=_name == "flatten"))

for _op, _uf in (("add", _np.add), ("sub", _np.subtract), ("mul", _np.multiply), ("truediv", _np.true_divide),
                 ("floordiv", _np.floor_divide), ("mod", _np.remainder), ("pow", _np.power),
                 ("matmul", _np.matmul), ("and", _np.bitwise_and), ("or", _np.bitwise_or),
                 ("xor", _np.bitwise_xor), ("lshift", _np.left_shift), ("rshift", _np.right_shift)):
    setattr(ndarray, f"__{_op}__", _binary(_uf))
    setattr(ndarray, f"__r{_op}__", _binary(_uf, reflected=True))
    setattr(ndarray, f"__i{_op}__", _inplace(_uf))
for _op, _uf in (("eq", _np.equal), ("ne", _np.not_equal), ("lt", _np.less), ("le", _np.less_equal),
                 ("gt", _np.greater), ("ge", _np.greater_equal), ("divmod", _np.divmod)):
    setattr(ndarray, f"__{_op}__", _binary(_uf))
ndarray.__neg__ = lambda self: _call_ufunc(_np.negative, (self,), {})
ndarray.__pos__ = lambda self: _call_ufunc(_np.positive, (self,), {})
ndarray.__abs__ = lambda self: _call_ufunc(_np.absolute, (self,), {})
ndarray.__invert__ = lambda self: _call_ufunc(_np.invert, (self,), {})


def _poison(a: _np.ndarray) -> None:
    """Uninitialised device memory: NaN for floats (a kernel that skips elements shows up)."""
    if a.dtype.kind in "fc":
        a.fill(_np.nan)
    elif a.dtype.kind in "iu":
        a.fill(_np.iinfo(a.dtype).max // 3)


# ---------------------------------------------------------------------------
# ufuncs and functions
# ---------------------------------------------------------------------------

class ufunc:
    """A NumPy ufunc with CuPy's argument rules (device arrays and scalars only, C-ordered outputs)."""

    def __init__(self, uf):
        self._uf = uf
        self.__name__ = uf.__name__
        self.nin, self.nout = uf.nin, uf.nout

    def __call__(self, *args, **kwargs):
        return _call_ufunc(self._uf, args, kwargs)

    def reduce(self, a, *args, **kwargs):
        _check_scalar_or_device(a)
        _launch()
        return _wrap(self._uf.reduce(_unwrap(a), *args, **_unwrap(kwargs)))

    def accumulate(self, a, *args, **kwargs):
        _check_scalar_or_device(a)
        _launch()
        return _wrap(self._uf.accumulate(_unwrap(a), *args, **_unwrap(kwargs)))

    def at(self, a, indices, b=None):
        ndarray.__array_ufunc__(a, self._uf, "at", a, indices, *(() if b is None else (b,)))

    def outer(self, a, b, **kwargs):
        return _call_ufunc(self._uf.outer, (a, b), kwargs)

    def __repr__(self):
        return f"<ufunc '{self.__name__}'>"


for _name in dir(_np):
    _obj = getattr(_np, _name)
    if isinstance(_obj, _np.ufunc) and not _name.startswith("_"):
        globals()[_name] = ufunc(_obj)


def _function(npfunc, name=None, launches=True):
    def f(*args, **kwargs):
        a, k = _unwrap(args), _unwrap(kwargs)
        if launches:
            _launch()
        out = kwargs.get("out")
        r = npfunc(*a, **k)
        return out if isinstance(out, ndarray) else _wrap(r)
    f.__name__ = name or npfunc.__name__
    f.__doc__ = f"cupy.{f.__name__} (stand-in: numpy.{npfunc.__name__} on device arrays)"
    return f


for _name in ("concatenate", "stack", "vstack", "hstack", "dstack", "column_stack", "split", "array_split",
              "flip", "fliplr", "flipud", "roll", "rot90", "tile", "repeat", "pad", "where", "clip", "sum",
              "mean", "max", "min", "amax", "amin", "prod", "var", "std", "argmax", "argmin", "any", "all",
              "cumsum", "cumprod", "dot", "vdot", "tensordot", "einsum", "outer", "inner", "kron", "sort",
              "argsort", "unique", "nonzero", "flatnonzero", "argwhere", "count_nonzero", "diag", "diagonal",
              "tril", "triu", "trace", "allclose", "isclose", "array_equal", "around", "round",
              "nan_to_num", "searchsorted", "bincount", "average", "median", "percentile", "quantile",
              "diff", "cross", "take_along_axis", "meshgrid", "nanmax", "nanmin", "nansum", "nanmean",
              "linspace", "logspace", "ptp", "cov", "corrcoef", "histogram", "interp", "convolve",
              "tri", "indices", "logaddexp", "signbit", "copysign", "unravel_index", "ravel_multi_index"):
    if hasattr(_np, _name) and not isinstance(getattr(_np, _name), _np.ufunc):
        globals()[_name] = _function(getattr(_np, _name))
for _name in ("reshape", "transpose", "ravel", "squeeze", "expand_dims", "moveaxis", "swapaxes", "rollaxis",
              "broadcast_to", "broadcast_arrays", "atleast_1d", "atleast_2d", "atleast_3d"):
    globals()[_name] = _function(getattr(_np, _name), launches=False)


def _creation(npfunc):
    def f(*args, **kwargs):
        _launch()
        return _new(npfunc(*args, **kwargs))
    f.__name__ = npfunc.__name__
    return f


zeros = _creation(_np.zeros)
ones = _creation(_np.ones)
full = _creation(_np.full)
arange = _creation(_np.arange)
eye = _creation(_np.eye)
identity = _creation(_np.identity)


def empty(shape, dtype=float, order="C"):
    a = _np.empty(shape, dtype=dtype, order=order)
    _poison(a)
    return _new(a)


def _like(kind):
    def f(a, dtype=None, order="K", subok=None, shape=None, **kw):
        if not isinstance(a, ndarray):
            a = asarray(a)
        src = a._a
        r = getattr(_np, kind)(src, dtype=dtype, order=order, shape=shape, **kw)
        if kind == "empty_like":
            _poison(r)
        else:
            _launch()
        return _new(r)
    f.__name__ = kind
    return f


empty_like = _like("empty_like")
zeros_like = _like("zeros_like")
ones_like = _like("ones_like")


def full_like(a, fill_value, dtype=None, order="K", subok=None, shape=None):
    if not isinstance(a, ndarray):
        a = asarray(a)
    _launch()
    return _new(_np.full_like(a._a, _unwrap(fill_value), dtype=dtype, order=order, shape=shape))


def _contains_device(x) -> builtins.bool:
    if isinstance(x, ndarray):
        return True
    if isinstance(x, (list, tuple)):
        return builtins.any(_contains_device(v) for v in x)
    return False


def array(obj, dtype=None, copy=True, order="K", subok=False, ndmin=0, blocking=False):
    """A device array from device or host data (host data is one host-to-device copy)."""
    if isinstance(obj, ndarray):
        a = obj._a
        if dtype is not None and _np.dtype(dtype) != a.dtype or copy:
            _launch()
            a = a.astype(dtype or a.dtype, order=order if order in "CFAK" else "K", copy=True)
        elif order == "C" and not a.flags.c_contiguous or order == "F" and not a.flags.f_contiguous:
            _launch()
            a = _np.array(a, order=order, copy=True)
        if ndmin > a.ndim:
            a = a.reshape((1,) * (ndmin - a.ndim) + a.shape)
        return obj if a is obj._a else _new(a)
    if _contains_device(obj):                         # a list of device arrays: stacked on the device
        _launch()
        return _new(_np.array(_unwrap(obj), dtype=dtype, ndmin=ndmin))
    if hasattr(obj, "__cuda_array_interface__"):
        raise NotImplementedError("stand-in: __cuda_array_interface__ objects")
    host = _np.asarray(obj, dtype=dtype)
    if host.dtype == object:
        raise ValueError(f"Unsupported dtype {host.dtype}")
    if order in ("K", "A", None):
        order = "F" if host.flags.f_contiguous and not host.flags.c_contiguous else "C"
    stats.h2d += 1
    stats.h2d_scalar += host.ndim == 0
    return _new(_np.array(host, order=order, copy=True, ndmin=ndmin))


def asarray(a, dtype=None, order=None, blocking=False):
    """``a`` itself when it is a device array of that dtype; otherwise a copy (host data: a transfer)."""
    if isinstance(a, ndarray) and (dtype is None or _np.dtype(dtype) == a.dtype) and order in (None, "K", "A"):
        return a
    return array(a, dtype=dtype, copy=not isinstance(a, ndarray), order=order or "K")


asanyarray = asarray


def ascontiguousarray(a, dtype=None):
    if isinstance(a, ndarray) and a._a.flags.c_contiguous and (dtype is None or _np.dtype(dtype) == a.dtype):
        return a
    if isinstance(a, ndarray):
        _launch()
        return _new(_np.ascontiguousarray(a._a, dtype=dtype))
    return array(a, dtype=dtype, order="C")


def asfortranarray(a, dtype=None):
    if isinstance(a, ndarray):
        _launch()
        return _new(_np.asfortranarray(a._a, dtype=dtype))
    return array(a, dtype=dtype, order="F")


def copy(a, order="K"):
    if not isinstance(a, ndarray):
        raise _unsupported(a)
    _launch()
    return _new(_np.array(a._a, order=order, copy=True))


def copyto(dst, src, casting="same_kind", where=True):
    if not isinstance(dst, ndarray):
        raise TypeError("dst must be cupy.ndarray")
    if isinstance(src, _np.ndarray):
        if src.size != 1:
            raise ValueError("non-scalar numpy.ndarray cannot be used for copyto")
        src = src.squeeze()[()]
    _launch()
    _np.copyto(dst._a, _unwrap(src), casting=casting, where=_unwrap(where))


def take(a, indices, axis=None, out=None):
    return a.take(indices, axis=axis)


def asnumpy(a, stream=None, order="C", out=None, blocking=True):
    """A host copy of ``a`` (a device-to-host transfer for a device array)."""
    if isinstance(a, ndarray):
        return a.get(stream=stream, order=order, out=out)
    return _np.asarray(a, order=order)


def get_array_module(*args):
    """This module if any argument is a device array, else numpy."""
    for a in args:
        if isinstance(a, ndarray):
            return sys.modules[__name__]
    return _np


def fuse(*args, **kwargs):
    """``cupy.fuse``: here the function itself (it runs op by op)."""
    if len(args) == 1 and callable(args[0]) and not kwargs:
        return args[0]
    return lambda f: f


def _module_function(func):
    """The function of this module standing for NumPy function ``func`` (``__array_function__``)."""
    impl = globals().get(func.__name__)
    if callable(impl) and not isinstance(impl, type):
        return impl
    return None


def show_config():
    print(f"tinygan's CPU stand-in for CuPy (tests/fakecupy), following CuPy {__version__}")


# submodules (imported last: they use the names above)
from cupy import cuda  # noqa: E402
from cupy import lib  # noqa: E402,F401
from cupy import linalg  # noqa: E402,F401
from cupy._kernels import ElementwiseKernel, RawKernel, RawModule, ReductionKernel, record_launches  # noqa: E402,F401
