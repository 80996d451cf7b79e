"""Custom CUDA kernels for the CuPy path (issue "GPU via CuPy").

* :mod:`tinygan.kernels.cuda.sources` -- every CUDA source string, in one
  registry (plain data: importable and compilable without CuPy or a GPU).
* :mod:`tinygan.kernels.cuda.launch` -- lazily compiled, memoised CuPy
  kernels with argument checks; arrays in, arrays out.

The generic array code in ``tinygan/kernels/*.py`` runs unchanged on CuPy;
these kernels replace it only where a fused kernel saves passes over memory
(im2col/col2im, LeakyReLU, batch norm, Adam, RMSprop), behind a marked
``if xp is not numpy:`` branch next to the NumPy twin.  Importing this package
never imports CuPy.
"""
from tinygan.kernels.cuda.launch import (
    adam_step_,
    batch_norm_backward,
    batch_norm_forward,
    clear_cache,
    col2im_nhwc,
    im2col_nhwc,
    leaky_relu_backward,
    leaky_relu_forward,
    leaky_relu_scale,
    rmsprop_step_,
)

__all__ = [
    "im2col_nhwc", "col2im_nhwc", "leaky_relu_forward", "leaky_relu_scale",
    "leaky_relu_backward", "batch_norm_forward", "batch_norm_backward", "adam_step_",
    "rmsprop_step_", "clear_cache",
]
