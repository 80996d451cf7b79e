"""Array-level kernels: arrays in, arrays out, no autograd.

The bottom layer of tinygan (it imports only :mod:`tinygan.backend`): the
autograd layer calls these, and they run on NumPy or CuPy arrays alike.

* :mod:`tinygan.kernels.args` -- ``pair``: an int or a pair of ints, checked
  (the one such helper, used by every layer above).
* :mod:`tinygan.kernels.conv` -- fast im2col + GEMM convolutions
  (``conv2d`` and its two gradients, ``conv_transpose2d``) and
  ``check_conv_args``, the one place convolution arguments are checked.
* :mod:`tinygan.kernels.matmul` -- ``a @ b``, with a rank-one product (inner
  length 1, every backward pass into a one-unit layer) as a broadcast multiply.
* :mod:`tinygan.kernels.batchnorm`, :mod:`tinygan.kernels.activations`,
  :mod:`tinygan.kernels.optim` -- batch norm, LeakyReLU and optimizer updates;
  on NumPy arrays over cache-sized blocks on every core, with the same floats
  on any number of threads.
* :mod:`tinygan.kernels.jit` -- batch norm and LeakyReLU compiled with numba
  (the optional ``[fast]`` extra), which those NumPy kernels call first.
* :mod:`tinygan.kernels.threads` -- the small persistent thread pool those
  CPU kernels (and the convolutions' big copies) use, and the thread count;
  :mod:`tinygan.kernels.layout` -- the blocked views they work on;
  :mod:`tinygan.kernels.memory` -- glibc settings that keep freed activation
  memory for the next step instead of faulting it in again.
* :mod:`tinygan.kernels.reference` and the ``*_ref`` functions -- slow loop
  versions that the tests compare the fast kernels with.
* :mod:`tinygan.kernels.cuda` -- fused CUDA kernels for the CuPy path.

Argument contract: the convolution kernels check shapes and hyper-parameters
(they are public and take plain arrays); the element-wise, batch-norm and
optimizer kernels assume what :mod:`tinygan.functional` and
:mod:`tinygan.optim` have checked (matching shapes, float dtypes).
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
