"""A CPU stand-in for CuPy, so that CI runs tinygan's GPU code path without a GPU.

Layout::

    tests/fakecupy/
        cupy/, cupyx/     the fake packages (NumPy arrays posing as device arrays; see cupy/__init__.py)
        hostbuild.py      CUDA sources compiled for the host (shared with tests/test_cuda_compile.py)
        twins.py          NumPy twins of the registry kernels (used only without a C++ compiler)

Activate it *before* tinygan first asks for CuPy:

* ``TINYGAN_FAKE_CUPY=1 pytest ...`` or ``pytest --fake-cupy ...`` (tests/conftest.py calls
  :func:`activate`), then ``tinygan.gpu_available()`` is True and every ``device``
  parametrisation gets its ``cuda`` case;
* any other process: ``PYTHONPATH=tests/fakecupy`` (``import cupy`` finds the fake),
  e.g. ``PYTHONPATH=tests/fakecupy tinygan train --device cuda`` or
  ``benchmarks/gpu_check.sh --dry``.

Importing this package (``import fakecupy``) activates nothing.  Never install it.
"""
from __future__ import annotations

import os
import sys

PATH = os.path.dirname(os.path.abspath(__file__))
ENV = "TINYGAN_FAKE_CUPY"


def requested() -> bool:
    """True when ``$TINYGAN_FAKE_CUPY`` asks for the stand-in."""
    return os.environ.get(ENV, "") not in ("", "0")


def active() -> bool:
    """True when ``import cupy`` gives (or gave) the stand-in."""
    mod = sys.modules.get("cupy")
    return bool(mod is not None and getattr(mod, "FAKE", False))


def activate() -> None:
    """Make ``import cupy`` find the stand-in in this process and in its children.

    Puts ``tests/fakecupy`` first on ``sys.path`` and ``$PYTHONPATH``, sets
    ``$TINYGAN_FAKE_CUPY=1`` and forgets tinygan's cached "no CuPy" answer.
    Refuses when the real CuPy is already imported.
    """
    mod = sys.modules.get("cupy")
    if mod is not None and not getattr(mod, "FAKE", False):
        raise RuntimeError("the real CuPy is already imported; the stand-in must be activated first")
    if PATH not in sys.path:
        sys.path.insert(0, PATH)
    parts = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != PATH]
    os.environ["PYTHONPATH"] = os.pathsep.join([PATH] + parts)
    os.environ[ENV] = "1"
    backend = sys.modules.get("tinygan.backend")
    if backend is not None:
        backend._import_cupy.cache_clear()
        for name in ("_probe", "_probe_result"):
            cached = getattr(backend, name, None)
            if hasattr(cached, "cache_clear"):
                cached.cache_clear()
