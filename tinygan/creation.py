"""Tensor constructors: ``tensor``, ``zeros``, ``ones``, ``randn``, ``rand``, ``cat``, ``stack``."""
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
        data = data.data
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
    return Tensor(get_array_module(t.data).zeros_like(t.data), requires_grad=requires_grad)


def ones_like(t: Tensor, requires_grad=False) -> Tensor:
    return Tensor(get_array_module(t.data).ones_like(t.data), requires_grad=requires_grad)


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
