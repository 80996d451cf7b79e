"""``cupy.linalg`` of the CPU stand-in (NumPy's, on device arrays)."""
import numpy as _np

from cupy import _function

norm = _function(_np.linalg.norm)
solve = _function(_np.linalg.solve)
inv = _function(_np.linalg.inv)
svd = _function(_np.linalg.svd)
qr = _function(_np.linalg.qr)
det = _function(_np.linalg.det)
eigh = _function(_np.linalg.eigh)
