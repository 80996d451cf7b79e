"""``cupy.lib`` of the CPU stand-in."""
from cupy.lib import stride_tricks  # noqa: F401
