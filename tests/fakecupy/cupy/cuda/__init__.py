"""``cupy.cuda`` of the CPU stand-in: one fake device, synchronous streams, events on the host clock.

Environment (stand-in only):

``FAKECUPY_GPUS``    how many devices ``is_available``/``getDeviceCount`` report (default 1;
                     0 plays a machine whose driver sees no GPU).
``FAKECUPY_BROKEN``  comma-separated CUDA libraries that "fail to load", as on a machine with
                     the driver but without the toolkit wheels: ``nvrtc`` (every kernel
                     compile and ``nvrtc.getVersion()`` raise) and/or ``cublas`` (every
                     matmul raises).
"""
from __future__ import annotations

import os
import time
import types

from cupy import MemoryPool, get_default_memory_pool  # noqa: F401


def _gpus() -> int:
    return int(os.environ.get("FAKECUPY_GPUS", "1"))


def _broken(lib: str) -> bool:
    return lib in {s.strip() for s in os.environ.get("FAKECUPY_BROKEN", "").split(",")}


class CUDARuntimeError(RuntimeError):
    pass


class CUDADriverError(RuntimeError):
    pass


def is_available() -> bool:
    return _gpus() > 0


# --- runtime ---------------------------------------------------------------------------

def _device_properties(i: int) -> dict:
    _check_device(i)
    return {"name": b"CPU stand-in for CuPy (tests/fakecupy)", "totalGlobalMem": 8 << 30,
            "major": 9, "minor": 0, "multiProcessorCount": 1, "clockRate": 0,
            "memoryClockRate": 0, "memoryBusWidth": 0, "l2CacheSize": 0}


def _check_device(i: int) -> None:
    if not 0 <= i < _gpus():
        raise CUDARuntimeError("cudaErrorInvalidDevice: invalid device ordinal")


runtime = types.SimpleNamespace(
    CUDARuntimeError=CUDARuntimeError,
    getDeviceCount=_gpus,
    getDeviceProperties=_device_properties,
    runtimeGetVersion=lambda: 13000,
    driverGetVersion=lambda: 13000,
    deviceSynchronize=lambda: None,
    memGetInfo=lambda: (8 << 30, 8 << 30),
    getDevice=lambda: Device().id,
    is_hip=False,
)


def _nvrtc_version():
    if _broken("nvrtc"):
        raise RuntimeError("CuPy failed to load libnvrtc.so.13: OSError: libnvrtc.so.13: cannot open shared "
                           "object file: No such file or directory (FAKECUPY_BROKEN)")
    return (13, 0)


nvrtc = types.SimpleNamespace(getVersion=_nvrtc_version)
compiler = types.SimpleNamespace()


# --- devices ---------------------------------------------------------------------------

class Device:
    """``cupy.cuda.Device``: selects nothing (there is one host), but checks the ordinal on use."""

    _current = 0

    def __init__(self, device=None):
        self.id = Device._current if device is None else int(device)
        self._prev = []

    def use(self):
        _check_device(self.id)
        Device._current = self.id

    def __enter__(self):
        _check_device(self.id)
        self._prev.append(Device._current)
        Device._current = self.id
        return self

    def __exit__(self, *exc):
        Device._current = self._prev.pop()
        return False

    def synchronize(self):
        pass

    @property
    def compute_capability(self) -> str:
        return "90"

    @property
    def mem_info(self):
        return runtime.memGetInfo()

    def __eq__(self, other):
        return isinstance(other, Device) and other.id == self.id

    def __hash__(self):
        return hash(self.id)

    def __repr__(self):
        return f"<CUDA Device {self.id} (stand-in)>"


# --- streams and events (everything is synchronous on the host) ----------------------------

class Stream:
    null = None

    def __init__(self, null=False, non_blocking=False, ptds=False):
        self.ptr = 0 if null else id(self)

    def synchronize(self):
        pass

    def use(self):
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def record(self, event=None):
        event = event or Event()
        event.record(self)
        return event

    def wait_event(self, event):
        pass

    @property
    def done(self) -> bool:
        return True


Stream.null = Stream(null=True)


def get_current_stream(device_id=None) -> Stream:
    return Stream.null


class Event:
    """Records the host clock: with synchronous kernels that is when the work before it ended."""

    def __init__(self, block=False, disable_timing=False, interprocess=False):
        self.disable_timing = disable_timing
        self._t = None

    def record(self, stream=None):
        self._t = time.perf_counter()

    def synchronize(self):
        pass

    def query(self) -> bool:
        return True

    @property
    def done(self) -> bool:
        return True


def get_elapsed_time(start_event: Event, end_event: Event) -> float:
    """Milliseconds between two recorded events."""
    if start_event._t is None or end_event._t is None:
        raise CUDARuntimeError("cudaErrorInvalidResourceHandle: an event was not recorded")
    if start_event.disable_timing or end_event.disable_timing:
        raise CUDARuntimeError("cudaErrorInvalidResourceHandle: event created with disable_timing")
    return (end_event._t - start_event._t) * 1e3


# --- memory -------------------------------------------------------------------------------

_allocator = None


def set_allocator(allocator=None):
    global _allocator
    _allocator = allocator


def get_allocator():
    return _allocator


def set_pinned_memory_allocator(allocator=None):
    pass


class PinnedMemoryPool(MemoryPool):
    pass


def alloc_pinned_memory(size: int):
    return bytearray(size)


def get_cublas_handle():
    if _broken("cublas"):
        raise RuntimeError("CuPy failed to load libcublas.so.13 (FAKECUPY_BROKEN)")
    return 1


class profiler:  # noqa: N801  cupy.cuda.profiler
    @staticmethod
    def start():
        pass

    @staticmethod
    def stop():
        pass
