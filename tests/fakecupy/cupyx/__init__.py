"""``cupyx`` of the CPU stand-in: ``scatter_add`` (and max/min) with CuPy's wrap-around indices."""
import numpy as _np

import cupy
from cupy import _index, _launch, _unwrap, ndarray


def _scatter(uf, a, slices, value):
    if not isinstance(a, ndarray):
        raise TypeError(f"Unsupported type {type(a)}")
    idx, _ = _index(slices, a.shape)
    if isinstance(value, _np.ndarray):
        raise TypeError(f"Unsupported type {type(value)}")
    _launch()
    uf.at(a._a, idx, _unwrap(value))


def scatter_add(a, slices, value):
    """``a[slices] += value`` with repeated indices summed (atomics on a GPU; wrap-around indices)."""
    _scatter(_np.add, a, slices, value)


def scatter_max(a, slices, value):
    _scatter(_np.maximum, a, slices, value)


def scatter_min(a, slices, value):
    _scatter(_np.minimum, a, slices, value)


def get_array_module(*args):
    return cupy.get_array_module(*args)
