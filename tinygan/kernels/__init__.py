"""Array-level kernels: arrays in, arrays out, no autograd.

The autograd layer calls these; they run on NumPy or CuPy arrays alike.

* :mod:`tinygan.kernels.conv` -- fast im2col + GEMM convolutions
  (``conv2d`` and its two gradients, ``conv_transpose2d``).
* :mod:`tinygan.kernels.reference` -- slow loop versions used by the tests.
"""
from tinygan.kernels.conv import (
    conv2d,
    conv2d_grad_input,
    conv2d_grad_weight,
    conv_output_size,
    conv_transpose2d,
    conv_transpose_output_size,
)

__all__ = [
    "conv2d",
    "conv2d_grad_input",
    "conv2d_grad_weight",
    "conv_transpose2d",
    "conv_output_size",
    "conv_transpose_output_size",
]
