"""``cupy._core`` of the CPU stand-in: only the TF32 switch that ``tinygan bench`` uses."""
from cupy._core import _routines_linalg  # noqa: F401
