"""Argument normalisation shared by every layer: ``pair`` (PyTorch's ``_pair``, validated).

The lowest layer of tinygan, so that the kernels, ``functional``, ``nn`` and
the CUDA launchers all read "an int or a pair of ints" the same way and
reject the same things with the same message.
"""
from __future__ import annotations

import operator
from typing import Any


def _integer(value: Any, name: str, op: str, whole: Any) -> int:
    """``value`` as an int: a Python or NumPy integer, never a bool or a float (even 2.0)."""
    try:
        if isinstance(value, bool):
            raise TypeError
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {whole!r} "
                        f"({type(value).__name__})") from None


def pair(value: Any, name: str, op: str) -> tuple[int, int]:
    """``3 -> (3, 3)``, ``(1, 2) -> (1, 2)``: an int or a pair of ints, as PyTorch's ``_pair``.

    Integers are Python ints and NumPy integers (anything with ``__index__``).
    As in PyTorch, a float (``1.5``, and also ``2.0``), a bool or a string
    raises ``TypeError`` and a sequence that is not of length 2 raises
    ``ValueError``; both messages name the op and the argument::

        conv2d: stride must be an int or a pair of ints, got 1.5 (float)

    Only the type and length are checked here; the allowed range (stride >= 1,
    padding >= 0, ...) is the caller's to check, with its own message.
    """
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
        return _integer(value[0], name, op, value), _integer(value[1], name, op, value)
    v = _integer(value, name, op, value)
    return v, v
