"""Layers: thin Modules holding Parameters and calling :mod:`tinygan.functional`."""
from __future__ import annotations

import math

import numpy as np

from tinygan import functional as F
from tinygan import random as _random
from tinygan.autograd import Tensor
from tinygan.backend import get_array_module
from tinygan.kernels.args import pair
from tinygan.nn import init
from tinygan.nn.module import Module, Parameter


def _empty(*shape, dtype=np.float32) -> np.ndarray:
    return np.zeros(shape, dtype=dtype)


def _default_init(weight: Parameter, bias: Parameter | None) -> None:
    """PyTorch's default: kaiming_uniform(a=sqrt(5)) for weights, U(+-1/sqrt(fan_in)) for bias."""
    init.kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        bound = 1 / math.sqrt(init.fan_in(weight)) if init.fan_in(weight) > 0 else 0
        init.uniform_(bias, -bound, bound)


class Linear(Module):
    """y = x W^T + b;  W (out_features, in_features)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype=np.float32):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(_empty(out_features, in_features, dtype=dtype))
        self.bias = Parameter(_empty(out_features, dtype=dtype)) if bias else None
        _default_init(self.weight, self.bias)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Conv2d(Module):
    """2-D convolution; weight (out_channels, in_channels, kh, kw).

    ``padding`` is an int, a pair, ``"valid"`` or ``"same"`` (stride 1; see :func:`tinygan.functional.conv2d`).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 bias: bool = True, dtype=np.float32):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        op = "Conv2d"
        self.kernel_size = pair(kernel_size, "kernel_size", op)
        self.stride = pair(stride, "stride", op)
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise TypeError(f"{op}: padding must be an int or a pair of ints, got {padding!r} (str); "
                                "the strings it takes are 'same' and 'valid'")
            if padding == "same" and self.stride != (1, 1):
                raise ValueError(f"{op}: padding='same' is not supported for strided convolutions "
                                 f"(stride {self.stride})")
            self.padding = padding
        else:
            self.padding = pair(padding, "padding", op)
        self.weight = Parameter(_empty(out_channels, in_channels, *self.kernel_size, dtype=dtype))
        self.bias = Parameter(_empty(out_channels, dtype=dtype)) if bias else None
        _default_init(self.weight, self.bias)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, bias={self.bias is not None}")


class ConvTranspose2d(Module):
    """Transposed 2-D convolution; weight (in_channels, out_channels, kh, kw) as in PyTorch."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 output_padding=0, bias: bool = True, dtype=np.float32):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        op = "ConvTranspose2d"
        self.kernel_size = pair(kernel_size, "kernel_size", op)
        self.stride, self.padding = pair(stride, "stride", op), pair(padding, "padding", op)
        self.output_padding = pair(output_padding, "output_padding", op)
        self.weight = Parameter(_empty(in_channels, out_channels, *self.kernel_size, dtype=dtype))
        self.bias = Parameter(_empty(out_channels, dtype=dtype)) if bias else None
        _default_init(self.weight, self.bias)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding, self.output_padding)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, bias={self.bias is not None}")


class _BatchNorm(Module):
    """Batch norm with learnable weight/bias and running statistics (buffers)."""

    _ndims: tuple[int, ...] = ()

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, affine: bool = True,
                 track_running_stats: bool = True, dtype=np.float32):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        self.weight = Parameter(np.ones(num_features, dtype=dtype)) if affine else None
        self.bias = Parameter(np.zeros(num_features, dtype=dtype)) if affine else None
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(num_features, dtype=dtype))
            self.register_buffer("running_var", np.ones(num_features, dtype=dtype))
            self.register_buffer("num_batches_tracked", np.zeros((), dtype=np.int64))
        else:
            self.running_mean = self.running_var = None

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim not in self._ndims:
            raise ValueError(f"{type(self).__name__}: expected a {' or '.join(f'{d}-D' for d in self._ndims)} "
                             f"input, got shape {x.shape}")
        momentum = self.momentum
        if self.training and self.track_running_stats:
            self._set_buffer("num_batches_tracked", self.num_batches_tracked + 1)
            if momentum is None:                 # torch: a cumulative average, momentum = 1 / batches seen
                momentum = 1.0 / float(self.num_batches_tracked)
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            training=self.training or not self.track_running_stats,
                            momentum=0.0 if momentum is None else momentum, eps=self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}"


class BatchNorm1d(_BatchNorm):
    """Batch norm over (N, C) inputs."""

    _ndims = (2,)


class BatchNorm2d(_BatchNorm):
    """Batch norm over (N, C, H, W) inputs, statistics per channel over N, H, W."""

    _ndims = (4,)


class LayerNorm(Module):
    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True, dtype=np.float32):
        super().__init__()
        self.normalized_shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.eps = eps
        self.weight = Parameter(np.ones(self.normalized_shape, dtype=dtype)) if elementwise_affine else None
        self.bias = Parameter(np.zeros(self.normalized_shape, dtype=dtype)) if elementwise_affine else None

    def forward(self, x: Tensor) -> Tensor:
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)


class LeakyReLU(Module):
    def __init__(self, negative_slope: float = 0.01, inplace: bool = False):
        super().__init__()
        self.negative_slope = negative_slope  # ``inplace`` is accepted for PyTorch compatibility

    def forward(self, x: Tensor) -> Tensor:
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class ReLU(Module):
    def __init__(self, inplace: bool = False):
        super().__init__()

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x)


class Tanh(Module):
    def forward(self, x: Tensor) -> Tensor:
        return F.tanh(x)


class Sigmoid(Module):
    def forward(self, x: Tensor) -> Tensor:
        return F.sigmoid(x)


class Identity(Module):
    def forward(self, x: Tensor) -> Tensor:
        return x


class Flatten(Module):
    """(N, d1, d2, ...) -> (N, d1 * d2 * ...)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: Tensor) -> Tensor:
        return x.flatten(self.start_dim, self.end_dim)


class Unflatten(Module):
    """(N, prod(shape)) -> (N, *shape)."""

    def __init__(self, dim: int, unflattened_size):
        super().__init__()
        self.dim, self.unflattened_size = dim, tuple(unflattened_size)

    def forward(self, x: Tensor) -> Tensor:
        shp = x.shape
        dim = self.dim % len(shp)
        return x.reshape(shp[:dim] + self.unflattened_size + shp[dim + 1:])


class Embedding(Module):
    """A lookup table: weight (num_embeddings, embedding_dim), initialised N(0, 1) as in PyTorch."""

    def __init__(self, num_embeddings: int, embedding_dim: int, dtype=np.float32):
        super().__init__()
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.weight = Parameter(_empty(num_embeddings, embedding_dim, dtype=dtype))
        init.normal_(self.weight)

    def forward(self, indices) -> Tensor:
        return F.embedding(indices, self.weight)


class Dropout(Module):
    """Zero each element with probability p in training and scale the rest by 1/(1-p)."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"Dropout: p must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0:
            return x
        keep = _random.default_generator().random(x.shape) >= self.p
        xp = get_array_module(x._data)
        mask = xp.asarray(keep.astype(x.dtype) / x.dtype.type(1 - self.p))
        return x * Tensor(mask)


class Upsample(Module):
    """Resize images (N, C, H, W) by ``scale_factor`` or to ``size``: nearest or bilinear (``torch.nn.Upsample``).

    See :func:`tinygan.functional.interpolate`.
    """

    def __init__(self, size=None, scale_factor=None, mode: str = "nearest", align_corners: bool | None = None):
        super().__init__()
        self.size, self.scale_factor, self.mode, self.align_corners = size, scale_factor, mode, align_corners

    def forward(self, x: Tensor) -> Tensor:
        return F.interpolate(x, self.size, self.scale_factor, self.mode, self.align_corners)

    def extra_repr(self) -> str:
        what = f"size={self.size}" if self.size is not None else f"scale_factor={self.scale_factor}"
        return f"{what}, mode={self.mode!r}"


# ---------------------------------------------------------------------------
# Losses (modules around tinygan.functional's losses, as torch.nn's)
# ---------------------------------------------------------------------------

class _Loss(Module):
    def __init__(self, reduction: str = "mean"):
        super().__init__()
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"{type(self).__name__}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
        self.reduction = reduction

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class BCEWithLogitsLoss(_Loss):
    """-[t log s(x) + (1 - t) log(1 - s(x))] on logits x, computed as softplus(x) - t x (any logit is safe).

    The stable choice for a GAN discriminator that outputs logits.
    """

    def forward(self, logits: Tensor, target) -> Tensor:
        return F.binary_cross_entropy_with_logits(logits, target, self.reduction)


class BCELoss(_Loss):
    """-[t log p + (1 - t) log(1 - p)] on probabilities p (each log clamped at -100, as PyTorch).

    PyTorch's DCGAN example uses it after a Sigmoid; BCEWithLogitsLoss on the logits is the stable form.
    """

    def forward(self, p: Tensor, target) -> Tensor:
        return F.binary_cross_entropy(p, target, self.reduction)


class MSELoss(_Loss):
    """(x - t)^2: LSGAN's loss."""

    def forward(self, x: Tensor, target) -> Tensor:
        return F.mse_loss(x, target, self.reduction)


class L1Loss(_Loss):
    """|x - t| (pix2pix's reconstruction term)."""

    def forward(self, x: Tensor, target) -> Tensor:
        return F.l1_loss(x, target, self.reduction)


class CrossEntropyLoss(_Loss):
    """-log softmax(logits)[target] for logits (N, K) and integer targets (N,) (ACGAN, InfoGAN's code)."""

    def forward(self, logits: Tensor, target) -> Tensor:
        return F.cross_entropy(logits, target, self.reduction)
