"""tinygan: a from-scratch GAN library on NumPy (CPU) and CuPy (GPU).

The layers, from the bottom up (imports flow one way):

* ``tinygan.kernels``    array in, array out: im2col/col2im convolution, batch norm, Adam
* ``tinygan.autograd``   ``Tensor``, ``Function``, ``backward``, ``grad`` (with ``create_graph``)
* ``tinygan.ops``        primitive differentiable ops behind Tensor's methods
* ``tinygan.functional`` ``torch.nn.functional``-style ops: conv2d, batch_norm, losses, ...
* ``tinygan.nn`` / ``tinygan.optim``   modules and optimizers
* ``tinygan.gan``        the GAN losses, models (DCGAN, MLP, CGAN, InfoGAN) and trainer
* ``tinygan.cli``        the ``tinygan`` command
"""
from tinygan.autograd import Function, Tensor, enable_grad, grad, is_grad_enabled, no_grad
from tinygan.backend import gpu_available
from tinygan.creation import cat, ones, ones_like, rand, randn, stack, tensor, zeros, zeros_like
from tinygan.random import get_rng_state, manual_seed, set_rng_state

__version__ = "0.1.0"

__all__ = [
    "Tensor", "Function", "tensor", "zeros", "ones", "zeros_like", "ones_like", "randn", "rand",
    "cat", "stack", "no_grad", "enable_grad", "is_grad_enabled", "grad", "manual_seed",
    "get_rng_state", "set_rng_state", "gpu_available",
]
