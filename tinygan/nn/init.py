"""Weight initialisers (``torch.nn.init`` names), drawing from tinygan's global generator.

Each writes in place into a Tensor's array, or into an array itself, and
returns what it was given, so both PyTorch spellings work:
``nn.init.normal_(m.weight, 0.0, 0.02)`` and ``nn.init.normal_(m.weight.data, 0.0, 0.02)``.
Numbers are drawn on the host (so a seed gives the same weights on CPU and
GPU) and copied to the tensor's device.  A write counts as an in-place
update (:func:`tinygan.autograd.bump_version`), as in PyTorch, where the
initialisers run under ``no_grad``.
"""
from __future__ import annotations

import math

import numpy as np

from tinygan import random as _random
from tinygan.autograd import Tensor, bump_version
from tinygan.backend import device_of, get_array_module, to_device


def _fill(t, values: np.ndarray):
    """Write ``values`` into ``t`` (a Tensor or a NumPy/CuPy array) in place; returns ``t``."""
    a = t._data if isinstance(t, Tensor) else t
    if not hasattr(a, "shape") or not hasattr(a, "dtype") or (
            not isinstance(a, np.ndarray) and get_array_module(a) is np):
        raise TypeError(f"nn.init: expected a Tensor or an array, got {type(t).__name__}")
    new = to_device(values.astype(a.dtype), device_of(a))
    if getattr(a.flags, "writeable", True) and not any(st == 0 and n > 1 for st, n in zip(a.strides, a.shape)):
        a[...] = new
        bump_version(a)
    elif isinstance(t, Tensor):
        t.data = new                      # a read-only array (a view): the tensor takes new memory
    else:
        raise ValueError("nn.init: the array is read-only; pass the Tensor, or a writeable array")
    return t


def _fans(shape) -> tuple[int, int]:
    """fan_in, fan_out as PyTorch computes them: dim 1 and dim 0 times the receptive field."""
    if len(shape) < 2:
        raise ValueError(f"init: fan in/out needs a tensor with at least 2 dimensions, got shape {shape}")
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def normal_(t, mean: float = 0.0, std: float = 1.0, generator=None):
    """Fill with N(mean, std^2), e.g. DCGAN's N(0, 0.02) conv weights."""
    gen = generator or _random.default_generator()
    return _fill(t, gen.normal(mean, std, size=t.shape))


def uniform_(t, a: float = 0.0, b: float = 1.0, generator=None):
    gen = generator or _random.default_generator()
    return _fill(t, gen.uniform(a, b, size=t.shape))


def constant_(t, value: float):
    return _fill(t, np.full(t.shape, value))


def zeros_(t):
    return constant_(t, 0.0)


def ones_(t):
    return constant_(t, 1.0)


def xavier_uniform_(t, gain: float = 1.0, generator=None):
    fan_in, fan_out = _fans(t.shape)
    a = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(t, -a, a, generator)


def xavier_normal_(t, gain: float = 1.0, generator=None):
    fan_in, fan_out = _fans(t.shape)
    return normal_(t, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), generator)


_GAIN_ONE = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
             "sigmoid")


def _gain(nonlinearity: str, a: float) -> float:
    """``torch.nn.init.calculate_gain(nonlinearity, a)``: the factor that keeps the activations' variance."""
    if nonlinearity == "leaky_relu":
        return math.sqrt(2.0 / (1 + a * a))
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "selu":
        return 3.0 / 4
    if nonlinearity in _GAIN_ONE:
        return 1.0
    raise ValueError(f"init: unsupported nonlinearity {nonlinearity!r}")


def kaiming_uniform_(t, a: float = 0.0, nonlinearity: str = "leaky_relu", generator=None):
    """U(-b, b), b = gain sqrt(3 / fan_in), gain = sqrt(2 / (1 + a^2)) (PyTorch's layer default with a = sqrt(5)).

    As in PyTorch, a tensor with no elements (``Linear(0, n)``'s weight) is left as it is.
    """
    if 0 in t.shape:
        return t
    fan_in, _ = _fans(t.shape)
    gain = _gain(nonlinearity, a)
    bound = gain * math.sqrt(3.0 / fan_in)
    return uniform_(t, -bound, bound, generator)


def kaiming_normal_(t, a: float = 0.0, nonlinearity: str = "leaky_relu", generator=None):
    if 0 in t.shape:
        return t
    fan_in, _ = _fans(t.shape)
    gain = _gain(nonlinearity, a)
    return normal_(t, 0.0, gain / math.sqrt(fan_in), generator)


def fan_in(t) -> int:
    return _fans(t.shape)[0]
