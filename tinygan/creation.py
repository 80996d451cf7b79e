"""Tensor constructors, named and typed as PyTorch's.

``tensor``, ``from_numpy``, ``zeros``, ``ones``, ``empty``, ``full``, ``eye``,
``arange``, ``linspace``, ``randn``, ``rand``, ``randint``, the ``*_like``
forms, ``cat`` and ``stack``.  Floating-point results are float32 unless a
``dtype`` (a NumPy dtype: ``np.float64``, ``tinygan.float64``) says
otherwise; random numbers come from tinygan's global generator
(:mod:`tinygan.random`), drawn on the host so that a seed gives the same
numbers on the CPU and the GPU.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from tinygan import random as _random
from tinygan.autograd import Tensor
from tinygan.backend import get_array_module, is_cupy_array, normalize_device, to_device, xp_for
from tinygan.ops import Concat

_DEFAULT_FLOAT = np.float32


def _shape(size) -> tuple[int, ...]:
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    return tuple(int(s) for s in size)


def _float_dtype(dtype) -> np.dtype:
    dt = np.dtype(_DEFAULT_FLOAT if dtype is None else dtype)
    if dt.kind != "f":
        raise TypeError(f"expected a floating-point dtype, got {dt}")
    return dt


def tensor(data: Any, requires_grad: bool = False, dtype: Any = None, device: Any = "cpu") -> Tensor:
    """Make a leaf Tensor from ``data`` (a list, NumPy/CuPy array, scalar or Tensor).

    As ``torch.tensor``: with ``dtype=None`` a float array keeps its float32 or
    float64, Python floats become float32 and integers stay integers.
    """
    device = normalize_device(device)
    if isinstance(data, Tensor):
        data = data._data
    if hasattr(data, "__array__") and not isinstance(data, np.ndarray) and not is_cupy_array(data):
        data = np.asarray(data)  # e.g. a PyTorch CPU tensor
    if is_cupy_array(data) or isinstance(data, np.ndarray):
        arr = data
        if dtype is not None:
            arr = arr.astype(dtype)
        arr = arr.copy() if arr is data else arr
    else:
        arr = np.asarray(data)
        if dtype is not None:
            arr = arr.astype(dtype)
        elif arr.dtype == np.float64:  # Python floats: float32, as torch's default dtype
            arr = arr.astype(_DEFAULT_FLOAT)
    if arr.dtype == np.float16:
        raise TypeError("tensor: float16 is not supported; use float32 or float64")
    arr = to_device(arr, device)
    return Tensor(arr, requires_grad=requires_grad)


def zeros(*size, dtype=None, device="cpu", requires_grad=False) -> Tensor:
    xp = xp_for(device)
    return Tensor(xp.zeros(_shape(size), dtype=_float_dtype(dtype)), requires_grad=requires_grad)


def ones(*size, dtype=None, device="cpu", requires_grad=False) -> Tensor:
    xp = xp_for(device)
    return Tensor(xp.ones(_shape(size), dtype=_float_dtype(dtype)), requires_grad=requires_grad)


def randn(*size, dtype=None, device="cpu", requires_grad=False, generator=None) -> Tensor:
    """Standard normal samples from the global generator (drawn on the host)."""
    gen = generator or _random.default_generator()
    arr = gen.standard_normal(_shape(size), dtype=np.float64).astype(_float_dtype(dtype))
    return Tensor(to_device(arr, normalize_device(device)), requires_grad=requires_grad)


def rand(*size, dtype=None, device="cpu", requires_grad=False, generator=None) -> Tensor:
    """Uniform [0, 1) samples from the global generator (drawn on the host)."""
    gen = generator or _random.default_generator()
    arr = gen.random(_shape(size), dtype=np.float64).astype(_float_dtype(dtype))
    return Tensor(to_device(arr, normalize_device(device)), requires_grad=requires_grad)


def zeros_like(t: Tensor, requires_grad=False) -> Tensor:
    return Tensor(get_array_module(t._data).zeros_like(t._data), requires_grad=requires_grad)


def ones_like(t: Tensor, requires_grad=False) -> Tensor:
    return Tensor(get_array_module(t._data).ones_like(t._data), requires_grad=requires_grad)


def empty(*size, dtype=None, device="cpu", requires_grad=False) -> Tensor:
    """A tensor of ``size`` (``torch.empty``); tinygan fills it with zeros rather than leaving garbage."""
    return zeros(*size, dtype=dtype, device=device, requires_grad=requires_grad)


def full(size, fill_value, dtype=None, device="cpu", requires_grad=False) -> Tensor:
    """A tensor of ``size`` filled with ``fill_value`` (``torch.full``).

    dtype as PyTorch infers it: bool for a bool, int64 for an int, float32 for a float.
    """
    if dtype is None:
        dtype = np.bool_ if isinstance(fill_value, bool) else np.int64 if isinstance(
            fill_value, (int, np.integer)) else _DEFAULT_FLOAT
    xp = xp_for(device)
    return Tensor(xp.full(_shape((size,)), fill_value, dtype=np.dtype(dtype)), requires_grad=requires_grad)


def full_like(t: Tensor, fill_value, dtype=None, requires_grad=False) -> Tensor:
    """``t``'s shape and device, filled with ``fill_value`` (dtype: ``t``'s unless given)."""
    xp = get_array_module(t._data)
    return Tensor(xp.full(t.shape, fill_value, dtype=np.dtype(dtype or t.dtype)), requires_grad=requires_grad)


def randn_like(t: Tensor, dtype=None, requires_grad=False, generator=None) -> Tensor:
    """Standard normal samples of ``t``'s shape, device and (float) dtype (``torch.randn_like``)."""
    return randn(*t.shape, dtype=_float_dtype(dtype or t.dtype), device=t.device, requires_grad=requires_grad,
                 generator=generator)


def rand_like(t: Tensor, dtype=None, requires_grad=False, generator=None) -> Tensor:
    """Uniform [0, 1) samples of ``t``'s shape, device and (float) dtype (``torch.rand_like``)."""
    return rand(*t.shape, dtype=_float_dtype(dtype or t.dtype), device=t.device, requires_grad=requires_grad,
                generator=generator)


def randint(*args, size=None, dtype=np.int64, device="cpu", generator=None) -> Tensor:
    """Integers uniform in [low, high): ``randint(high, size)`` or ``randint(low, high, size)`` (``torch.randint``).

    CGAN code draws its fake labels this way: ``tinygan.randint(0, 10, (N,))``.
    """
    if size is None and args and isinstance(args[-1], (tuple, list)):
        *args, size = args
    if size is None or len(args) not in (1, 2):
        raise TypeError("randint: call randint(high, size) or randint(low, high, size), size a tuple")
    low, high = (0, args[0]) if len(args) == 1 else args
    gen = generator or _random.default_generator()
    arr = gen.integers(int(low), int(high), size=_shape((size,)), dtype=np.int64).astype(dtype)
    return Tensor(to_device(arr, normalize_device(device)))


def arange(start, end=None, step=1, dtype=None, device="cpu", requires_grad=False) -> Tensor:
    """start, start + step, ... below ``end`` (``torch.arange``): int64 for int arguments, else float32."""
    if end is None:
        start, end = 0, start
    if dtype is None:
        ints = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
        dtype = np.int64 if ints else _DEFAULT_FLOAT
    arr = np.arange(start, end, step, dtype=np.float64 if np.dtype(dtype).kind == "f" else None).astype(dtype)
    return Tensor(to_device(arr, normalize_device(device)), requires_grad=requires_grad)


def linspace(start, end, steps: int, dtype=None, device="cpu", requires_grad=False) -> Tensor:
    """``steps`` evenly spaced values from ``start`` to ``end`` inclusive (``torch.linspace``), float32."""
    arr = np.linspace(start, end, int(steps)).astype(_float_dtype(dtype))
    return Tensor(to_device(arr, normalize_device(device)), requires_grad=requires_grad)


def eye(n: int, m: int | None = None, dtype=None, device="cpu", requires_grad=False) -> Tensor:
    """The (n, m) identity matrix (``torch.eye``): ``eye(10)[labels]`` is a one-hot matrix."""
    xp = xp_for(device)
    return Tensor(xp.eye(n, m, dtype=_float_dtype(dtype)), requires_grad=requires_grad)


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor that *shares memory* with a NumPy array, keeping its dtype (``torch.from_numpy``).

    Writing into one changes the other; :func:`tensor` copies instead.
    """
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected a numpy.ndarray, got {type(array).__name__}; "
                        "use tinygan.tensor(data) for lists and numbers")
    return Tensor(array)


def cat(tensors: Sequence[Tensor], dim: int = 0, axis: int | None = None) -> Tensor:
    """Concatenate along an existing axis (``torch.cat``)."""
    if not tensors:
        raise ValueError("cat: expected a non-empty sequence of tensors")
    return Concat(dim if axis is None else axis)(*tensors)


def stack(tensors: Sequence[Tensor], dim: int = 0, axis: int | None = None) -> Tensor:
    """Stack along a new axis (``torch.stack``)."""
    if not tensors:
        raise ValueError("stack: expected a non-empty sequence of tensors")
    dim = dim if axis is None else axis
    shapes = {t.shape for t in tensors}
    if len(shapes) != 1:
        raise ValueError(f"stack: all tensors must have the same shape, got {sorted(shapes)}")
    return cat([t.unsqueeze(dim) for t in tensors], dim=dim)


# --- in-place random fills, installed as Tensor methods (they need tinygan.random, which ops may not import) ---

def _normal_(self: Tensor, mean: float = 0.0, std: float = 1.0, *, generator=None) -> Tensor:
    """Fill with samples of N(mean, std^2) from tinygan's global generator (drawn on the host), in place.

    ``with tinygan.no_grad(): w.normal_(0.0, 0.02)`` is DCGAN's weight initialisation.
    """
    gen = generator or _random.default_generator()
    return self.fill_values_("normal_", gen.normal(mean, std, size=self.shape))


def _uniform_(self: Tensor, a: float = 0.0, b: float = 1.0, *, generator=None) -> Tensor:
    """Fill with samples of U[a, b) from tinygan's global generator (drawn on the host), in place."""
    gen = generator or _random.default_generator()
    return self.fill_values_("uniform_", gen.uniform(a, b, size=self.shape))


Tensor.normal_ = _normal_
Tensor.uniform_ = _uniform_
