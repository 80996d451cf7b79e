"""Array-module dispatch: NumPy on the CPU, CuPy on an NVIDIA GPU.

Every op in tinygan asks its inputs which array module they live in
(``xp = get_array_module(x)``) and then writes the same code for both, as
Chainer does.  CuPy is imported lazily and only when asked for, so tinygan
runs on machines where it is not installed.

Device names follow PyTorch: ``"cpu"`` and ``"cuda"`` (``"cuda:0"`` is
accepted as an alias of the current device).
"""
from __future__ import annotations

import functools
from typing import Any

import numpy as np

_CUPY_HINT = (
    'install the CUDA extra matching your driver: pip install "tinygan[cuda12]" '
    'or pip install "tinygan[cuda13]"'
)


@functools.lru_cache(maxsize=1)
def _import_cupy():
    """Return the cupy module or None when it is not installed."""
    try:
        import cupy  # noqa: F401
    except Exception:  # ImportError, or a broken CUDA install raising at import
        return None
    return cupy


def cupy_module():
    """The cupy module, or a clear error when it is absent or no GPU is visible."""
    cp = _import_cupy()
    if cp is None:
        raise RuntimeError(f"device 'cuda' needs CuPy, which is not installed: {_CUPY_HINT}")
    try:
        available = cp.cuda.is_available()
    except Exception:  # driver missing or mismatched
        available = False
    if not available:
        raise RuntimeError(
            "device 'cuda': CuPy is installed but no GPU is visible "
            "(cupy.cuda.is_available() is False); check the driver, "
            f"CUDA_VISIBLE_DEVICES, or {_CUPY_HINT}")
    return cp


def gpu_available() -> bool:
    """True when CuPy imports and sees at least one GPU."""
    cp = _import_cupy()
    if cp is None:
        return False
    try:
        return bool(cp.cuda.is_available())
    except Exception:
        return False


def is_cupy_array(a: Any) -> bool:
    cp = _import_cupy()
    return cp is not None and isinstance(a, cp.ndarray)


def get_array_module(*arrays: Any):
    """``numpy`` or ``cupy``: the module of the first CuPy array among ``arrays``."""
    for a in arrays:
        if is_cupy_array(a):
            return _import_cupy()
    return np


def normalize_device(device: Any) -> str:
    """Map ``"cpu"``, ``"cuda"``, ``"cuda:0"`` (or an object with ``.type``) to a name."""
    if device is None:
        return "cpu"
    name = getattr(device, "type", device)
    if not isinstance(name, str):
        raise TypeError(f"device must be 'cpu' or 'cuda', got {device!r}")
    name = name.lower()
    if name == "cpu":
        return "cpu"
    if name == "cuda" or name.startswith("cuda:"):
        return "cuda"
    if name == "gpu":
        return "cuda"
    raise ValueError(f"unknown device {device!r}: expected 'cpu' or 'cuda'")


def device_of(a: Any) -> str:
    """``"cuda"`` for a CuPy array, ``"cpu"`` otherwise."""
    return "cuda" if is_cupy_array(a) else "cpu"


def xp_for(device: Any):
    """The array module that holds arrays on ``device``."""
    return cupy_module() if normalize_device(device) == "cuda" else np


def to_device(a: Any, device: Any):
    """Copy array ``a`` to ``device`` (no copy when it is already there)."""
    dev = normalize_device(device)
    if dev == "cpu":
        return a.get() if is_cupy_array(a) else np.asarray(a)
    cp = cupy_module()
    return cp.asarray(a)


def to_numpy(a: Any) -> np.ndarray:
    """A host (NumPy) copy or view of ``a``."""
    return a.get() if is_cupy_array(a) else np.asarray(a)
