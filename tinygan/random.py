"""The global random number generator behind ``randn``, ``rand`` and ``nn.init``.

One NumPy ``Generator`` (PCG64) draws every random number tinygan makes, on
the host, so a seed gives the same numbers on the CPU and the GPU (GPU tensors
are drawn on the host and copied).  Its state is a JSON-serialisable dict, so
a checkpoint can store it and a resumed run continues the same stream.
"""
from __future__ import annotations

import numpy as np

_generator = np.random.default_rng(0)


def manual_seed(seed: int) -> np.random.Generator:
    """Re-seed the global generator (as ``torch.manual_seed``) and return it."""
    global _generator
    _generator = np.random.default_rng(int(seed))
    return _generator


def default_generator() -> np.random.Generator:
    """The global generator, for code that draws its own numbers (data shuffling, noise)."""
    return _generator


def get_rng_state() -> dict:
    """The generator's state as a plain dict of ints and strings (JSON-safe)."""
    state = _generator.bit_generator.state
    return {"bit_generator": state["bit_generator"],
            "state": {k: int(v) for k, v in state["state"].items()},
            "has_uint32": int(state["has_uint32"]), "uinteger": int(state["uinteger"])}


def set_rng_state(state: dict) -> None:
    """Restore a state returned by :func:`get_rng_state`."""
    if state.get("bit_generator") != "PCG64":
        raise ValueError(f"set_rng_state: expected a PCG64 state, got {state.get('bit_generator')!r}")
    _generator.bit_generator.state = state
