"""CuPy's private compute-type switch (what ``CUPY_TF32=1`` sets), kept as state only."""
import os

COMPUTE_TYPE_TBD = 0
COMPUTE_TYPE_DEFAULT = 1
COMPUTE_TYPE_PEDANTIC = 2
COMPUTE_TYPE_FP16 = 3
COMPUTE_TYPE_FP32 = 4
COMPUTE_TYPE_FP64 = 5
COMPUTE_TYPE_BF16 = 6
COMPUTE_TYPE_TF32 = 7

_modes = {}


def set_compute_type(dtype, compute_type):
    _modes[str(dtype)] = compute_type


def get_compute_type(dtype):
    default = COMPUTE_TYPE_TF32 if os.environ.get("CUPY_TF32", "0") not in ("", "0") else COMPUTE_TYPE_DEFAULT
    return _modes.get(str(dtype), default)
