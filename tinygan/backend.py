"""Array-module dispatch: NumPy on the CPU, CuPy on an NVIDIA GPU.

Every op in tinygan asks its inputs which array module they live in
(``xp = get_array_module(x)``) and then writes the same code for both, as
Chainer does.  CuPy is imported lazily and only when asked for, so tinygan
runs on machines where it is not installed.

Device names follow PyTorch: ``"cpu"`` and ``"cuda"``.  tinygan uses one GPU,
CUDA device 0 (the first visible one): ``"cuda:0"`` is accepted as an alias,
any other index is refused with a hint to ``CUDA_VISIBLE_DEVICES``.

The first time CuPy is asked for, a probe checks that the CUDA libraries it
loads at run time are there (NVRTC, which compiles every CuPy kernel, and
cuBLAS): CuPy 14's wheels bring neither, and without them CuPy imports and
sees the GPU but fails at the first kernel.  :func:`gpu_available` is then
False and :func:`cupy_module` raises a ``RuntimeError`` naming the extra.
"""
from __future__ import annotations

import functools
from typing import Any

import numpy as np

_EXTRAS = ('pip install "tinygan[cuda13]" (CUDA 13 drivers) or pip install "tinygan[cuda12]" '
           '(CUDA 12 drivers)')
_CUPY_HINT = (
    'install the CUDA extra matching your driver: pip install "tinygan[cuda12]" '
    'or pip install "tinygan[cuda13]"'
)


_IMPORT_ERROR: list[str] = []     # why ``import cupy`` failed, when it is installed but broken


@functools.lru_cache(maxsize=1)
def _import_cupy():
    """Return the cupy module or None when it is not installed (or fails to import)."""
    try:
        import cupy  # noqa: F401
    except ModuleNotFoundError as e:
        if e.name not in ("cupy", None):          # CuPy is there but one of its modules is not
            _IMPORT_ERROR[:] = [f"{type(e).__name__}: {e}"]
        return None
    except Exception as e:  # ImportError, or a broken CUDA install raising at import
        _IMPORT_ERROR[:] = [f"{type(e).__name__}: {e}"]
        return None
    return cupy


# --- the CUDA-library probe -------------------------------------------------------------

_PROBED: dict[int, tuple[Any, str | None]] = {}     # id(cupy module) -> (module, problem or None)


def _probe_nvrtc(cp) -> None:
    """Load NVRTC (CuPy compiles every kernel with it at run time)."""
    nvrtc = getattr(cp.cuda, "nvrtc", None)
    if nvrtc is not None:
        nvrtc.getVersion()


def _probe_cublas(cp) -> None:
    """One tiny float32 matmul: loads cuBLAS and creates its handle (as the first real matmul would)."""
    a = cp.ones((2, 2), dtype=cp.float32)
    (a @ a).sum().item()


def _library_problem(cp) -> str | None:
    """Why CuPy cannot run kernels here (a missing CUDA library), or None; probed once per module."""
    hit = _PROBED.get(id(cp))
    if hit is not None and hit[0] is cp:
        return hit[1]
    problem = None
    for what, probe in (("NVRTC (libnvrtc, the run-time compiler of every CuPy kernel)", _probe_nvrtc),
                        ("cuBLAS (libcublas, every matmul and convolution)", _probe_cublas)):
        try:
            probe(cp)
        except Exception as e:  # OSError, RuntimeError, CUDA errors: whatever the loader raised
            version = getattr(cp, "__version__", "?")
            problem = (f"device 'cuda': CuPy {version} imports and sees a GPU, but {what} cannot be loaded "
                       f"({type(e).__name__}: {e}). CuPy's wheels do not bring the CUDA libraries; the "
                       f"tinygan extras pull them in (cupy-cuda13x[ctk] / cupy-cuda12x[ctk]): {_EXTRAS}. "
                       "Or install a CUDA toolkit of your driver's major version")
            break
    _PROBED[id(cp)] = (cp, problem)
    return problem


def cupy_module():
    """The cupy module, or a clear error when it is absent, no GPU is visible or its libraries are missing."""
    cp = _import_cupy()
    if cp is None:
        if _IMPORT_ERROR:
            raise RuntimeError(f"device 'cuda' needs CuPy, which is installed but fails to import "
                               f"({_IMPORT_ERROR[0]}): {_CUPY_HINT}")
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
    problem = _library_problem(cp)
    if problem is not None:
        raise RuntimeError(problem)
    return cp


def gpu_available() -> bool:
    """True when CuPy imports, sees at least one GPU and can load NVRTC and cuBLAS."""
    return gpu_unavailable_reason() is None


def gpu_unavailable_reason() -> str | None:
    """None when ``device="cuda"`` works here, else the message :func:`cupy_module` would raise."""
    try:
        cupy_module()
    except RuntimeError as e:
        return str(e)
    return None


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
    """Map ``"cpu"``, ``"cuda"``, ``"cuda:0"`` (or an object with ``.type``/``.index``) to a name.

    tinygan uses one GPU, device 0 of those visible: ``"cuda:1"`` raises a
    ``ValueError`` (selecting it would need every op and allocation to run
    under that device); make that GPU the visible one instead
    (``CUDA_VISIBLE_DEVICES=1``, and it is ``cuda:0``).
    """
    if device is None:
        return "cpu"
    name = getattr(device, "type", device)
    if not isinstance(name, str):
        raise TypeError(f"device must be 'cpu' or 'cuda', got {device!r}")
    name = name.lower()
    if name == "cpu":
        return "cpu"
    if name in ("cuda", "gpu") or name.startswith("cuda:"):
        index = None if isinstance(device, str) else getattr(device, "index", None)   # torch.device
        if name.startswith("cuda:"):
            text = name[len("cuda:"):]
            if not text.isdigit():
                raise ValueError(f"unknown device {device!r}: expected 'cpu', 'cuda' or 'cuda:0'")
            index = int(text)
        if index not in (None, 0):
            raise ValueError(
                f"device {device!r}: tinygan runs on one GPU, CUDA device 0 (the first visible one); "
                f"to use GPU {index}, make it the visible one: CUDA_VISIBLE_DEVICES={index} "
                "(it is then device 'cuda')")
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


# --- 0-d constants ----------------------------------------------------------------------------

_CONSTANTS: dict[tuple, Any] = {}
_MAX_CONSTANTS = 4096


def scalar_constant(value: Any, dtype: Any = None, xp: Any = np):
    """A 0-d array holding ``value`` as ``dtype`` (NumPy's type for ``value`` when None), in module ``xp``.

    On the GPU every new 0-d array is a host-to-device copy (``x * 0.5`` would
    copy 0.5 each time), so CuPy constants are cached, one per (value, dtype,
    device): the same read-only array comes back each time.  **Never write
    into the result** (on the CPU stand-in it is read-only, so such a write
    fails in CI).  NumPy constants are made fresh (cheap).
    """
    host = np.asarray(value, dtype=dtype)
    if xp is np or xp is None:
        return host
    key = (xp.cuda.Device().id, host.dtype.str, host.tobytes())
    a = _CONSTANTS.get(key)
    if a is None:
        if len(_CONSTANTS) >= _MAX_CONSTANTS:       # bounded: a run uses a few dozen
            _CONSTANTS.clear()
        a = xp.asarray(host)
        if getattr(xp, "FAKE", False):              # tests/fakecupy: make writes into a shared constant fail
            a._a.flags.writeable = False
        _CONSTANTS[key] = a
    return a


# --- seconds per step on the GPU --------------------------------------------------------------

class CudaStepClock:
    """``sec_per_iter`` on the GPU: the time between CUDA events recorded after consecutive steps.

    Host timers around a step measure how fast the kernels are *queued*;
    events measure when the GPU finished them.  :meth:`lap` records an event
    (no sync) and returns a value that becomes seconds when ``float()`` is
    taken -- at the log flush, which syncs anyway.
    """

    def __init__(self):
        self._cp = cupy_module()
        self._last = self._cp.cuda.Event()
        self._last.record()

    def lap(self) -> "_EventInterval":
        end = self._cp.cuda.Event()
        end.record()
        interval = _EventInterval(self._cp, self._last, end)
        self._last = end
        return interval


class _EventInterval:
    """Seconds between two recorded CUDA events; ``float()`` waits for the later one."""

    __slots__ = ("_cp", "start", "end")

    def __init__(self, cp, start, end):
        self._cp, self.start, self.end = cp, start, end

    def __float__(self) -> float:
        self.end.synchronize()
        return float(self._cp.cuda.get_elapsed_time(self.start, self.end)) / 1e3

    def __array__(self, dtype=None, copy=None):
        return np.asarray(float(self), dtype=dtype)

    def __repr__(self) -> str:
        return "<seconds between two CUDA events (float() to read)>"
