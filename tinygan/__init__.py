"""tinygan: a from-scratch GAN library on NumPy (CPU) and CuPy (GPU).

The layers, from the bottom up (imports flow one way: a layer imports only
the layers listed above it):

* ``tinygan.kernels``    array in, array out: im2col/col2im convolution, batch norm, Adam
* ``tinygan.io``         ``atomic_write``: files replaced whole or not at all
* ``tinygan.autograd``   ``Tensor``, ``Function``, ``backward``, ``grad`` (with ``create_graph``)
  ``tinygan.ops``        the primitive differentiable ops, installed as Tensor's methods
  ``tinygan.functional`` ``torch.nn.functional``-style ops: conv2d, batch_norm, losses, ...
* ``tinygan.nn`` / ``tinygan.optim``   modules and optimizers
* ``tinygan.data``       datasets (MNIST, image folders, toy mixtures) and the loader
* ``tinygan.gan``        the GAN losses and models (DCGAN, MLP, CGAN, InfoGAN)
* ``tinygan.run``        the trainer, the run folder and its checkpoints
* ``tinygan.viz`` / ``tinygan.metrics`` / ``tinygan.benchmark``   pictures, scores, timings
* ``tinygan.cli``        the ``tinygan`` command

``import tinygan`` loads the engine (everything up to ``nn``/``optim``), so
``tinygan.nn.Linear``, ``tinygan.optim.Adam`` and ``tinygan.functional.conv2d``
work at once.  The packages above it are imported on first attribute access
(``tinygan.gan``, ``tinygan.data``, ...; PEP 562), so that importing the
engine never pulls in Pillow, matplotlib or the training layer.
"""
import importlib as _importlib
import os as _os
import types as _types

# Before NumPy loads OpenBLAS, which reads this once: its idle worker threads spin for about 2^28 cycles
# (0.1 s) after every matrix product before they sleep, and on a 2-core machine that spinning takes the
# second core from tinygan's element-wise threads (tinygan.kernels.threads), which then wait their turn.
# 2^12 cycles keeps them spinning between back-to-back products and lets them sleep during element-wise
# work: one DCGAN training iteration on the 2-core machines went from 136-160 to 122-126 ms at 28 px,
# and the default run from 0.117-0.143 to 0.107-0.109 s per step (docs/benchmarks.md, "OpenBLAS's idle
# threads").  A value already in the environment wins; a program that imported NumPy before tinygan
# keeps OpenBLAS's default.
_os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "12")

import numpy as _np  # noqa: E402  (after the OpenBLAS setting above)

from tinygan import functional, nn, optim
from tinygan.autograd import Function, Tensor, enable_grad, grad, is_grad_enabled, no_grad
from tinygan.backend import gpu_available, normalize_device
from tinygan.creation import (arange, cat, empty, eye, from_numpy, full, full_like, linspace, ones, ones_like, rand,
                              rand_like, randint, randn, randn_like, stack, tensor, zeros, zeros_like)
from tinygan.ops import FUNCTION_FORMS as _FUNCTION_FORMS
from tinygan.ops import function_forms as _function_forms
from tinygan.ops import maximum, minimum
from tinygan.random import get_rng_state, manual_seed, set_rng_state

__version__ = "0.1.0"

# PyTorch's function forms: tinygan.mean(t, dim=1) is t.mean(dim=1), tinygan.max(a, b) the element-wise max, ...
globals().update(_function_forms())

# dtypes are NumPy's; these names let PyTorch code read as it is (dtype=tinygan.float is np.float32).
DTYPES = {"float32": _np.float32, "float64": _np.float64, "float": _np.float32, "double": _np.float64,
          "int64": _np.int64, "long": _np.int64, "int32": _np.int32, "uint8": _np.uint8, "bool": _np.bool_}
globals().update(DTYPES)


def device(name) -> str:
    """``tinygan.device("cuda:0")`` is ``"cuda"``: devices are plain strings, ``"cpu"`` or ``"cuda"``."""
    return normalize_device(name)


# torch.cuda.is_available() -> tinygan.cuda.is_available()
cuda = _types.SimpleNamespace(is_available=gpu_available)

__all__ = [
    "Tensor", "Function", "tensor", "from_numpy", "zeros", "ones", "empty", "full", "eye", "arange", "linspace",
    "zeros_like", "ones_like", "full_like", "randn", "rand", "randint", "randn_like", "rand_like", "cat", "stack",
    "maximum", "minimum", "no_grad", "enable_grad", "is_grad_enabled", "grad", "manual_seed",
    "get_rng_state", "set_rng_state", "gpu_available", "device", "cuda", "functional", "nn", "optim",
    *_FUNCTION_FORMS, *DTYPES,
]

# Sub-packages above the engine: imported by __getattr__ on first use, never eagerly.
_LAZY_SUBMODULES = ("io", "data", "gan", "run", "viz", "metrics", "benchmark", "theory", "testing")


def __getattr__(name: str):
    """``tinygan.gan`` (and the other names in ``_LAZY_SUBMODULES``): import ``tinygan.<name>`` on first access.

    Python calls this only for names the module does not have yet; once
    imported, the sub-package is an ordinary attribute.  A sub-package that is
    not there at all reads as a missing attribute (so ``hasattr`` works);
    any other import error is raised as it is.
    """
    if name not in _LAZY_SUBMODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        return _importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as e:
        if e.name != f"{__name__}.{name}":
            raise                                   # a dependency of that package is missing
        raise AttributeError(f"module {__name__!r} has no attribute {name!r} "
                             f"({__name__}.{name} is not installed)") from e


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_SUBMODULES))
