"""Neural-network operations, named as in ``torch.nn.functional`` (import as ``F``).

Each op is a :class:`~tinygan.autograd.Function` whose forward calls an
array kernel from :mod:`tinygan.kernels` and whose backward is written with
differentiable tinygan ops, or a composition of such ops.  Shapes use NCHW:
N batch, C channels, H x W pixels.

The three convolutions are one another's derivatives (as in Chainer):

============================  ===================================  ==================================
op                            d/d(first input)                     d/d(second input)
============================  ===================================  ==================================
conv2d(x, w)                  conv_transpose2d(g, w)               conv2d_grad_weight(x, g)
conv_transpose2d(x, w)        conv2d(g, w)                         conv2d_grad_weight(g, x)
conv2d_grad_weight(x, gy)     conv_transpose2d(gy, gw_grad)        conv2d(x, gw_grad)
============================  ===================================  ==================================

so second derivatives of a convolutional critic (WGAN-GP, R1) need nothing more.

Also here: ``pad`` (:class:`Pad`, whose adjoint is itself with negated pads),
``interpolate`` (nearest: an index gather; bilinear: y = A_h x A_w^T with
constant interpolation matrices), ``softmax``/``log_softmax`` and the losses.

Argument checks: each public op checks what the user passed and raises one
``TypeError``/``ValueError`` naming the op and the argument: tensor types and
dtypes here, an int or a pair of ints with :func:`tinygan.kernels.args.pair`
(``stride=1.5`` is refused, as in PyTorch), convolution shapes with
:func:`tinygan.kernels.conv.check_conv_args`.  The Function classes below
take their arguments as checked.
"""
from __future__ import annotations

import contextlib
import threading

import numpy as np

from tinygan.autograd import Function, Tensor, is_grad_enabled
from tinygan.backend import get_array_module
from tinygan.kernels import activations as _act
from tinygan.kernels import batchnorm as _bn
from tinygan.kernels import conv as _conv
from tinygan.kernels.args import pair
from tinygan.kernels.matmul import matmul
from tinygan.ops import GetItem, ReLU, Sigmoid, Tanh

__all__ = [
    "linear", "conv2d", "conv_transpose2d", "conv2d_grad_weight", "batch_norm", "layer_norm",
    "leaky_relu", "relu", "tanh", "sigmoid", "softplus", "logsigmoid", "log_softmax", "softmax",
    "binary_cross_entropy", "binary_cross_entropy_with_logits", "cross_entropy", "mse_loss", "l1_loss",
    "embedding", "one_hot", "pad", "interpolate", "sync_batch_norm",
]


def _check_float(op: str, **tensors) -> None:
    dtypes = set()
    for name, t in tensors.items():
        if t is None:
            continue
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: {name} must be a Tensor, got {type(t).__name__}")
        if t.dtype.kind != "f":
            raise TypeError(f"{op}: {name} must be a floating-point tensor, got dtype {t.dtype} "
                            f"(shape {t.shape})")
        dtypes.add(t.dtype)
    if len(dtypes) > 1:
        desc = ", ".join(f"{n} {t.dtype}" for n, t in tensors.items() if t is not None)
        raise TypeError(f"{op}: all tensors must have the same dtype, got {desc}")


def _reduce(loss: Tensor, reduction: str, op: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


# ---------------------------------------------------------------------------
# Linear
# ---------------------------------------------------------------------------

class Linear(Function):
    """y = x W^T + b:  x (N, in), W (out, in), b (out,) -> y (N, out); one GEMM, the bias added in place.

    Backward, for g = dL/dy (N, out):

        dL/dx = g W        (N, in)
        dL/dW = g^T x      (out, in): computed in W's own layout, so the optimizer reads a contiguous gradient
        dL/db = sum_n g    (out,)

    each written with Tensor ops, so it is itself differentiable (the gradient penalty's double backward).
    The same values as the composition ``x @ weight.T + bias`` (:func:`linear_ref`).
    """

    saved_inputs = (0, 1)   # x and W; b's values are not read

    def forward(self, x, w, b=None):
        y = matmul(x, w.T)                                            # (N, out), a fresh array
        if b is not None:
            y += b                                                    # in place: no second (N, out) array
        return y

    def backward(self, g):
        x, w = self.inputs[0], self.inputs[1]
        gx = g @ w if self.needs_input_grad[0] else None                                  # (N, in)
        gw = g.T @ x if self.needs_input_grad[1] else None                                # (out, in)
        if len(self.inputs) == 2:
            return gx, gw
        return gx, gw, (g.sum(0) if self.needs_input_grad[2] else None)                  # (out,)


def linear_ref(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """:func:`linear` as the composition of ops it fuses (matmul, transpose, add): the slow reference."""
    if x.ndim == 1:
        y = (x.reshape(1, -1) @ weight.T).reshape(-1)
    else:
        y = x @ weight.T                               # (..., out)
    return y if bias is None else y + bias


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y = x W^T + b.   x (..., in), W (out, in), b (out,) -> y (..., out); x may be one vector (in,)."""
    _check_float("linear", input=x, weight=weight, bias=bias)
    if x.ndim < 1 or weight.ndim != 2 or x.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: input of shape {x.shape} does not match weight of shape {weight.shape} "
                         f"(need input (..., {weight.shape[1] if weight.ndim == 2 else 'in'}) and weight (out, in))")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"linear: bias of shape {bias.shape} does not match weight of shape {weight.shape}")
    args = (weight,) if bias is None else (weight, bias)
    if x.ndim == 2:
        return Linear()(x, *args)                                            # (N, out)
    lead = x.shape[:-1]                                                      # (in,) -> (out,), as torch's linear
    return Linear()(x.reshape(-1, x.shape[-1]), *args).reshape(lead + (weight.shape[0],))


# ---------------------------------------------------------------------------
# Convolutions
# ---------------------------------------------------------------------------

class Conv2d(Function):
    """y[n,o,i,j] = sum_{c,p,q} x_pad[n, c, i*sh + p, j*sw + q] w[o, c, p, q]."""

    def __init__(self, stride, padding):
        self.stride, self.padding = stride, padding

    def forward(self, x, w):
        return _conv.conv2d(x, w, self.stride, self.padding)       # (N, O, Ho, Wo)

    def backward(self, g):
        x, w = self.inputs
        gx = gw = None
        if self.needs_input_grad[0]:   # dL/dx = conv_transpose2d(g, w): (N, C, H, W)
            gx = ConvTranspose2d(self.stride, self.padding, x.shape[2:])(g, w)
        if self.needs_input_grad[1]:   # dL/dw = sum over n, i, j of x windows * g: (O, C, kh, kw)
            gw = Conv2dGradWeight(self.stride, self.padding, w.shape[2:])(x, g)
        return gx, gw


class ConvTranspose2d(Function):
    """The adjoint of conv2d w.r.t. its input, with output size ``out_hw``.

    x (N, Cin, H, W), w (Cin, Cout, kh, kw) -> y (N, Cout, *out_hw):
    y[n, c, i*sh + p - ph, j*sw + q - pw] += x[n, o, i, j] w[o, c, p, q].
    """

    def __init__(self, stride, padding, out_hw):
        self.stride, self.padding, self.out_hw = stride, padding, tuple(out_hw)

    def forward(self, x, w):
        return _conv.conv2d_grad_input(x, w, self.out_hw, self.stride, self.padding)

    def backward(self, g):
        x, w = self.inputs
        gx = Conv2d(self.stride, self.padding)(g, w) if self.needs_input_grad[0] else None
        gw = Conv2dGradWeight(self.stride, self.padding, w.shape[2:])(g, x) if self.needs_input_grad[1] else None
        return gx, gw


class Conv2dGradWeight(Function):
    """gw[o,c,p,q] = sum_{n,i,j} x_pad[n, c, i*sh + p, j*sw + q] gy[n, o, i, j] (bilinear in x, gy)."""

    def __init__(self, stride, padding, kernel_hw):
        self.stride, self.padding, self.kernel_hw = stride, padding, tuple(kernel_hw)

    def forward(self, x, gy):
        return _conv.conv2d_grad_weight(x, gy, self.kernel_hw, self.stride, self.padding)

    def backward(self, g):
        x, gy = self.inputs
        gx = ConvTranspose2d(self.stride, self.padding, x.shape[2:])(gy, g) if self.needs_input_grad[0] else None
        ggy = Conv2d(self.stride, self.padding)(x, g) if self.needs_input_grad[1] else None
        return gx, ggy


def _check_conv(op, x, weight, bias, stride, padding, output_padding=None):
    """The checks of a public convolution op; returns its output size (H, W).

    Tensor-level checks (types, dtypes, bias) are made here; the shapes and
    hyper-parameters are checked by :func:`tinygan.kernels.conv.check_conv_args`,
    the one place for those rules, under the op name the user called.
    """
    _check_float(op, input=x, weight=weight, bias=bias)
    out_hw = _conv.check_conv_args(op, x.shape, weight.shape, stride, padding, output_padding)
    out_ch = weight.shape[0] if output_padding is None else weight.shape[1]
    if bias is not None and bias.shape != (out_ch,):
        raise ValueError(f"{op}: bias of shape {bias.shape} does not match {out_ch} output channels "
                         f"(weight {weight.shape})")
    return out_hw


def _add_channel_bias(y: Tensor, bias: Tensor | None) -> Tensor:
    return y if bias is None else y + bias.reshape(1, -1, 1, 1)


def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0) -> Tensor:
    """2-D cross-correlation, as ``torch.nn.functional.conv2d``.

    x (N, C, H, W), weight (O, C, kh, kw), bias (O,) -> (N, O, Ho, Wo),
    Ho = floor((H + 2 ph - kh) / sh) + 1.

    ``padding`` is an int, a pair, ``"valid"`` (0) or ``"same"`` (stride 1:
    Ho = H).  "same" pads k - 1 in all, as PyTorch: floor((k - 1) / 2) before
    and the rest after, so an even kernel gets one more row/column at the
    bottom/right (added by :func:`pad`).
    """
    stride = pair(stride, "stride", "conv2d")
    if isinstance(padding, str):
        x, padding = _string_padding("conv2d", x, weight, stride, padding)
    padding = pair(padding, "padding", "conv2d")
    _check_conv("conv2d", x, weight, bias, stride, padding)
    return _add_channel_bias(Conv2d(stride, padding)(x, weight), bias)


def _string_padding(op: str, x: Tensor, weight: Tensor, stride, padding: str):
    """``(x, (ph, pw))`` for ``padding="valid"`` or ``"same"``; x gains the extra after-padding of even kernels."""
    if padding == "valid":
        return x, (0, 0)
    if padding != "same":
        raise TypeError(f"{op}: padding must be an int or a pair of ints, got {padding!r} (str); "
                        "the strings it takes are 'same' and 'valid'")
    if stride != (1, 1):
        raise ValueError(f"{op}: padding='same' is not supported for strided convolutions (stride {stride})")
    if not isinstance(weight, Tensor) or weight.ndim != 4:
        raise ValueError(f"{op}: padding='same' needs a 4-D weight (O, C, kh, kw)")
    kh, kw = weight.shape[2:]
    before = ((kh - 1) // 2, (kw - 1) // 2)                      # torch: total k - 1, floor half before
    extra_h, extra_w = (kh - 1) - 2 * before[0], (kw - 1) - 2 * before[1]
    if extra_h or extra_w:
        x = pad(x, (0, extra_w, 0, extra_h))                    # (N, C, H + extra_h, W + extra_w)
    return x, before


def conv_transpose2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
                     output_padding=0) -> Tensor:
    """Transposed convolution, as ``torch.nn.functional.conv_transpose2d``.

    x (N, Cin, H, W), weight (Cin, Cout, kh, kw), bias (Cout,) -> (N, Cout, Ho, Wo),
    Ho = (H - 1) sh - 2 ph + kh + output_padding_h.
    """
    op = "conv_transpose2d"
    stride, padding = pair(stride, "stride", op), pair(padding, "padding", op)
    out_hw = _check_conv(op, x, weight, bias, stride, padding, pair(output_padding, "output_padding", op))
    return _add_channel_bias(ConvTranspose2d(stride, padding, out_hw)(x, weight), bias)


def conv2d_grad_weight(x: Tensor, grad_output: Tensor, kernel_size, stride=1, padding=0) -> Tensor:
    """The gradient of conv2d w.r.t. its weight (``torch.nn.grad.conv2d_weight``), differentiable.

    x (N, C, H, W), grad_output (N, O, Ho, Wo) -> (O, C, kh, kw); shapes are
    checked by the kernel (:func:`tinygan.kernels.conv.conv2d_grad_weight`).
    """
    op = "conv2d_grad_weight"
    _check_float(op, input=x, grad_output=grad_output)
    return Conv2dGradWeight(pair(stride, "stride", op), pair(padding, "padding", op),
                            pair(kernel_size, "kernel_size", op))(x, grad_output)


# ---------------------------------------------------------------------------
# Normalisation
# ---------------------------------------------------------------------------

_SYNC = threading.local()     # .allreduce while inside sync_batch_norm() (per thread: one rank per thread in tests)


@contextlib.contextmanager
def sync_batch_norm(allreduce):
    """Within the block, training-mode batch norm takes its statistics over several processes' batches.

    ``allreduce(a)`` returns the element-wise sum of the float64 vector ``a``
    over the processes (every process calls it in the same order).  Forward
    all-reduces the per-channel sums sum x and sum (x - mu)^2, backward the two
    gradient sums sum g and sum g (x - mu) (``kernels/batchnorm.py``), so each
    process normalises with the statistics of the global batch
    (``tinygan.run.distributed``, ``--sync-bn``).  A batch-norm call made in
    the block keeps its ``allreduce`` for its backward.
    """
    previous = getattr(_SYNC, "allreduce", None)
    _SYNC.allreduce = allreduce
    try:
        yield
    finally:
        _SYNC.allreduce = previous


class BatchNormTrain(Function):
    """Training-mode batch norm with batch statistics (see ``kernels/batchnorm.py``).

    On NumPy arrays the forward keeps no normalised copy of x (backward reads
    x, which the graph holds anyway: one activation less per layer) and both
    passes run threaded over cache-sized blocks
    (``batch_norm_train_forward`` / ``batch_norm_train_backward``); on CuPy
    the fused CUDA kernels keep ``xhat``.
    """

    def __init__(self, eps: float, affine: bool):
        self.eps, self.affine = eps, affine
        self.xhat = None
        self.allreduce = getattr(_SYNC, "allreduce", None)   # inside sync_batch_norm(): global statistics
        self.count = None                                    # values per channel the statistics are over

    def forward(self, x, gamma=None, beta=None):
        gamma, beta = (gamma, beta) if self.affine else (None, None)
        self.count = x.size // x.shape[1]
        if self.allreduce is not None:
            y, self.mean, self.var, self.invstd, self.count = _bn.batch_norm_sync_forward(
                x, gamma, beta, self.eps, self.allreduce)
        elif _bn.fast_path(x):
            y, self.mean, self.var, self.invstd = _bn.batch_norm_train_forward(x, gamma, beta, self.eps)
        else:
            y, self.mean, self.var, self.xhat, self.invstd = _bn.batch_norm_forward(x, gamma, beta, self.eps)
        return y

    def backward(self, g):
        x = self.inputs[0]
        gamma = self.inputs[1] if self.affine else None
        if not is_grad_enabled():
            # Plain backward: the array kernel, dx = gamma invstd / M (M g - sum g - xhat sum(g xhat)).
            gamma_data = None if gamma is None else gamma._data
            if self.allreduce is not None:
                dx, dgamma, dbeta = _bn.batch_norm_sync_backward(g._data, x._data, self.mean, self.invstd,
                                                                 gamma_data, self.count, self.allreduce)
            elif self.xhat is None:
                dx, dgamma, dbeta = _bn.batch_norm_train_backward(g._data, x._data, self.mean, self.invstd,
                                                                  gamma_data)
            else:
                dx, dgamma, dbeta = _bn.batch_norm_backward(g._data, self.xhat, self.invstd, gamma_data)
            grads = (Tensor(dx),)
            return grads + ((Tensor(dgamma), Tensor(dbeta)) if self.affine else ())
        if self.allreduce is not None:
            raise RuntimeError("batch norm with statistics over several processes (--sync-bn) has no second "
                               "derivative: a penalty that differentiates D twice (R1, the gradient penalty) "
                               "needs a critic without batch norm, or a run without --sync-bn")
        # create_graph=True: the same equation with differentiable ops, xhat recomputed from x.
        axes = _bn.reduce_axes(x.ndim)
        cs = _bn.channel_shape(x.ndim, x.shape[1])
        m = x.numel() // x.shape[1]
        centred = x - x.mean(axis=axes, keepdims=True)
        invstd = ((centred * centred).mean(axis=axes, keepdims=True) + self.eps) ** -0.5
        xhat = centred * invstd
        dbeta = g.sum(axis=axes)
        dgamma = (g * xhat).sum(axis=axes)
        scale = invstd if gamma is None else gamma.reshape(cs) * invstd
        dx = (g - dbeta.reshape(cs) * (1.0 / m) - xhat * dgamma.reshape(cs) * (1.0 / m)) * scale
        return (dx, dgamma, dbeta) if self.affine else (dx,)


def batch_norm(x: Tensor, running_mean, running_var, weight: Tensor | None = None,
               bias: Tensor | None = None, training: bool = False, momentum: float = 0.1,
               eps: float = 1e-5) -> Tensor:
    """Batch normalisation over (N,) for (N, C) or over (N, H, W) for (N, C, H, W) inputs.

    Training: normalise with the batch's mean and biased variance, and update
    the running statistics in place (PyTorch's convention, unbiased variance)::

        running_mean = (1 - momentum) running_mean + momentum mean
        running_var  = (1 - momentum) running_var  + momentum var * M / (M - 1)

    Evaluation: y = (x - running_mean) / sqrt(running_var + eps) * weight + bias.
    ``running_mean``/``running_var`` are Tensors or arrays of shape (C,), or None
    (then training statistics are always used, as in PyTorch).
    """
    op = "batch_norm"
    _check_float(op, input=x, weight=weight, bias=bias)
    if isinstance(momentum, bool) or not isinstance(momentum, (int, float, np.floating)) or not 0 <= momentum <= 1:
        raise ValueError(f"{op}: momentum must be a number in [0, 1], got {momentum!r} "
                         "(nn.BatchNorm*d(momentum=None) is the cumulative average)")
    if x.ndim not in (2, 4):
        raise ValueError(f"{op}: expected a 2-D (N, C) or 4-D (N, C, H, W) input, got shape {x.shape}")
    c = x.shape[1]
    for name, t in (("weight", weight), ("bias", bias), ("running_mean", running_mean),
                    ("running_var", running_var)):
        if t is not None and tuple(t.shape) != (c,):
            raise ValueError(f"{op}: {name} of shape {tuple(t.shape)} does not match the input's "
                             f"{c} channels (input {x.shape})")
    if (weight is None) != (bias is None):
        raise ValueError(f"{op}: pass both weight and bias, or neither")
    cs = _bn.channel_shape(x.ndim, c)
    rm = running_mean._data if isinstance(running_mean, Tensor) else running_mean
    rv = running_var._data if isinstance(running_var, Tensor) else running_var
    if training or rm is None:
        m = x.numel() // c
        if training and m <= 1:
            raise ValueError(f"{op}: expected more than 1 value per channel when training, got input {x.shape}")
        fn = BatchNormTrain(eps, affine=weight is not None)
        y = fn(x, weight, bias) if weight is not None else fn(x)
        if training and rm is not None:
            mom = x.dtype.type(momentum)
            rm *= 1 - mom                                          # running_mean = (1-m) rm + m mean
            rm += mom * fn.mean.astype(rm.dtype, copy=False)
            rv *= 1 - mom                                          # running_var = (1-m) rv + m var_unbiased
            m = fn.count                                           # all processes' values with sync_batch_norm
            rv += (mom * fn.var * (m / (m - 1))).astype(rv.dtype, copy=False)
        return y
    # Evaluation: a per-channel affine map with constant statistics.
    xp = get_array_module(x._data)
    invstd = 1 / xp.sqrt(rv.astype(x.dtype, copy=False) + x.dtype.type(eps))
    y = (x - Tensor(rm.astype(x.dtype, copy=False).reshape(cs))) * Tensor(invstd.reshape(cs))
    if weight is not None:
        y = y * weight.reshape(cs) + bias.reshape(cs)
    return y


def layer_norm(x: Tensor, normalized_shape, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    """Normalise over the trailing ``normalized_shape`` axes, as ``torch.nn.functional.layer_norm``.

    Composed from primitives, so it is differentiable to any order (the
    WGAN-GP paper's advice for a critic: layer norm instead of batch norm).
    """
    normalized_shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if x.shape[x.ndim - len(normalized_shape):] != normalized_shape:
        raise ValueError(f"layer_norm: input of shape {x.shape} does not end in normalized_shape {normalized_shape}")
    axes = tuple(range(x.ndim - len(normalized_shape), x.ndim))
    centred = x - x.mean(axis=axes, keepdims=True)
    y = centred * ((centred * centred).mean(axis=axes, keepdims=True) + eps) ** -0.5
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y


# ---------------------------------------------------------------------------
# Activations
# ---------------------------------------------------------------------------

class LeakyReLU(Function):
    """y = x if x > 0 else a x.

    Backward multiplies g by the slope map s (1 or a): it is linear in g
    with a constant s, so its own derivative is the same multiplication and
    the second derivative w.r.t. x is zero almost everywhere.  For a >= 0 on
    NumPy arrays s is read off the output (y > 0 exactly where x > 0), which
    the graph holds anyway, so forward writes y alone (as PyTorch's in-place
    LeakyReLU, DCGAN's, keeps its output); otherwise forward keeps a mask.
    """
    saved_inputs = ()   # backward reads the mask saved by forward, or the output (checked by saved_output)

    def __init__(self, slope: float):
        self.slope = slope
        self.mask = None

    def forward(self, x):
        if _act.output_backward(x, self.slope):
            self.saves_output = True            # the graph keeps y (the next layer's input anyway)
            return _act.leaky_relu(x, self.slope)
        y, self.mask = _act.leaky_relu_forward(x, self.slope)
        return y

    def backward(self, g):
        if self.mask is None:                   # NumPy, slope >= 0: s from the output
            y = self.saved_output()._data
            if not is_grad_enabled():
                return Tensor(_act.leaky_relu_backward_from_output(g._data, y, self.slope))
            return g * Tensor(_act.leaky_relu_scale_from_output(y, self.slope, g.dtype))
        if not is_grad_enabled():
            # Plain backward: dx = g * s in one pass (one fused kernel on the GPU).
            return Tensor(_act.leaky_relu_backward(g._data, self.mask, self.slope))
        # create_graph=True: the same product as a graph node, linear in g.
        return g * Tensor(_act.leaky_relu_scale(self.mask, self.slope, g.dtype))


def leaky_relu(x: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """max(x, a x).  ``inplace`` is accepted for PyTorch code and ignored: the result is a new tensor."""
    _check_float("leaky_relu", input=x)
    return LeakyReLU(float(negative_slope))(x)


def relu(x: Tensor, inplace: bool = False) -> Tensor:
    """max(x, 0).  ``inplace`` is accepted for PyTorch code and ignored: the result is a new tensor."""
    _check_float("relu", input=x)
    return ReLU()(x)


def tanh(x: Tensor) -> Tensor:
    return Tanh()(x)


def sigmoid(x: Tensor) -> Tensor:
    return Sigmoid()(x)


def _sigmoid_array(x):
    """sigma(x) on an array, as :class:`tinygan.ops.Sigmoid`'s forward (exp of -|x| only: no overflow)."""
    xp = get_array_module(x)
    e = xp.exp(-abs(x))
    r = 1 / (1 + e)
    return xp.where(x >= 0, r, e * r)


def _softplus_array(x):
    """log(1 + e^x) as max(x, 0) + log1p(e^-|x|) (no overflow)."""
    xp = get_array_module(x)
    return xp.maximum(x, 0) + xp.log1p(xp.exp(-abs(x)))


class Softplus(Function):
    """y = log(1 + e^x), computed as max(x, 0) + log1p(e^-|x|) (no overflow).  dy/dx = sigmoid(x)."""

    def forward(self, x):
        return _softplus_array(x)

    def backward(self, g):
        if not is_grad_enabled():           # plain backward: g sigma(x) on arrays, no graph nodes
            return Tensor(g._data * _sigmoid_array(self.inputs[0]._data))
        return g * Sigmoid()(self.inputs[0])


def softplus(x: Tensor) -> Tensor:
    _check_float("softplus", input=x)
    return Softplus()(x)


def logsigmoid(x: Tensor) -> Tensor:
    """log sigmoid(x) = -softplus(-x), stable for logits of any size."""
    return -softplus(-x)


def log_softmax(x: Tensor, dim: int = -1) -> Tensor:
    """log softmax(x)_i = x_i - log sum_j e^{x_j} along ``dim``; the max is subtracted first for stability.

    Composed of primitives (see ``Tensor.log_softmax`` in tinygan/ops.py), so
    differentiable to any order: d/dx_i = g_i - softmax(x)_i sum_j g_j.
    """
    _check_float("log_softmax", input=x)
    return x.log_softmax(dim)


def softmax(x: Tensor, dim: int = -1) -> Tensor:
    """softmax(x)_i = e^{x_i} / sum_j e^{x_j} along ``dim`` (the row max subtracted first, a constant).

    Composed of primitives; d/dx_i = s_i (g_i - sum_j g_j s_j) with s = softmax(x).
    """
    _check_float("softmax", input=x)
    return x.softmax(dim)


# ---------------------------------------------------------------------------
# Losses
# ---------------------------------------------------------------------------

def _check_pair(op: str, a: Tensor, b: Tensor, names=("input", "target")) -> Tensor:
    if not isinstance(b, Tensor):
        b = Tensor(get_array_module(a._data).asarray(b, dtype=a.dtype))
    if a.shape != b.shape:
        raise ValueError(f"{op}: {names[0]} of shape {a.shape} and {names[1]} of shape {b.shape} must match")
    return b


class BinaryCrossEntropy(Function):
    """Element-wise -[t log p + (1 - t) log(1 - p)], each log clamped at -100 (as PyTorch).

    Backward is PyTorch's, written with differentiable ops::

        dL/dp = g (p - t) / max(p (1 - p), 1e-12)
        dL/dt = g (max(log(1 - p), -100) - max(log p, -100))

    (PyTorch leaves the logs in dL/dt unclamped: +-inf at p = 0 or 1, where
    this gives +-100 g, the derivative of the clamped loss.)

    A composition of log, clip and mul (the former implementation) gave NaN
    gradients whenever p was exactly 0 or 1 (0 * inf in Log's backward), even
    for a perfect prediction; in float32 sigmoid(l) is exactly 1 once l > 17,
    so one confident discriminator output poisoned every gradient with NaN.
    """

    def forward(self, p, t):
        xp = get_array_module(p)
        with np.errstate(divide="ignore"):                 # log(0) = -inf, clamped to -100
            logp = xp.maximum(xp.log(p), -100)
            log1mp = xp.maximum(xp.log(1 - p), -100)
        return -(t * logp + (1 - t) * log1mp)

    def backward(self, g):
        p, t = self.inputs
        gp = gt = None
        if self.needs_input_grad[0]:
            gp = g * (p - t) / (p * (1.0 - p)).clip(min=1e-12)
        if self.needs_input_grad[1]:
            with np.errstate(divide="ignore"):
                gt = g * ((1.0 - p).log().clip(min=-100.0) - p.log().clip(min=-100.0))
        return gp, gt


def binary_cross_entropy(p: Tensor, target, reduction: str = "mean") -> Tensor:
    """-[t log p + (1 - t) log(1 - p)], with each log clamped at -100 as PyTorch does.

    The gradient is finite at p = 0 and p = 1 (see :class:`BinaryCrossEntropy`).
    Prefer :func:`binary_cross_entropy_with_logits`: it never takes log(0).
    """
    _check_float("binary_cross_entropy", input=p)
    t = _check_pair("binary_cross_entropy", p, target)
    return _reduce(BinaryCrossEntropy()(p, t), reduction, "binary_cross_entropy")


class BCEWithLogits(Function):
    """loss_i = softplus(x_i) - t_i x_i, reduced by ``mean``, ``sum`` or not at all, in one graph node.

    The loss of a GAN discriminator is a few hundred logits: there the time
    is Python, not arithmetic, so one node replaces softplus, mul, sub and
    mean (four nodes and their backward passes).  Backward::

        dL/dx_i = g_i (sigma(x_i) - t_i),   dL/dt_i = -g_i x_i      (times 1/N for the mean)

    on arrays in a plain backward, with differentiable ops under
    ``create_graph`` (so second derivatives flow, as through the composition).
    """

    def __init__(self, reduction: str):
        self.reduction = reduction

    def forward(self, x, t):
        loss = _softplus_array(x) - t * x
        if self.reduction == "mean":
            return loss.mean()
        if self.reduction == "sum":
            return loss.sum()
        return loss

    def backward(self, g):
        # x and t have one shape (binary_cross_entropy_with_logits checks it), so g (a scalar for a
        # reduced loss) times an (x, t) expression already has it.
        x, t = self.inputs
        n = x._data.size
        if not is_grad_enabled():
            gd = g._data * (1.0 / n) if self.reduction == "mean" else g._data
            gx = Tensor(gd * (_sigmoid_array(x._data) - t._data)) if self.needs_input_grad[0] else None
            gt = Tensor(-gd * x._data) if self.needs_input_grad[1] else None
            return gx, gt
        gs = g * (1.0 / n) if self.reduction == "mean" else g
        gx = gs * (Sigmoid()(x) - t) if self.needs_input_grad[0] else None
        gt = -(gs * x) if self.needs_input_grad[1] else None
        return gx, gt


def binary_cross_entropy_with_logits(logits: Tensor, target, reduction: str = "mean") -> Tensor:
    """BCE on logits x = log(p / (1 - p)):  -[t log s(x) + (1-t) log(1 - s(x))] = softplus(x) - t x.

    softplus is evaluated as max(x, 0) + log1p(e^-|x|), so any logit is safe.
    One graph node (:class:`BCEWithLogits`), reduction included.
    """
    op = "binary_cross_entropy_with_logits"
    _check_float(op, input=logits)
    t = _check_pair(op, logits, target)
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    return BCEWithLogits(reduction)(logits, t)


def cross_entropy(logits: Tensor, target, reduction: str = "mean") -> Tensor:
    """-log softmax(logits)[target] for logits (N, K) and integer targets (N,)."""
    op = "cross_entropy"
    _check_float(op, input=logits)
    t = target._data if isinstance(target, Tensor) else target
    xp = get_array_module(logits._data)
    t = xp.asarray(t)
    if logits.ndim != 2 or t.shape != (logits.shape[0],) or t.dtype.kind not in "iu":
        raise ValueError(f"{op}: expected logits (N, K) and integer targets (N,), got {logits.shape} "
                         f"and {tuple(t.shape)} of dtype {t.dtype}")
    # Range check on host arrays only: on a GPU it would cost a device-to-host sync per call.
    if xp is np and t.size and (int(t.min()) < 0 or int(t.max()) >= logits.shape[1]):
        raise ValueError(f"{op}: targets must lie in [0, {logits.shape[1]}), got min {int(t.min())} max {int(t.max())}")
    picked = log_softmax(logits, dim=1)[xp.arange(t.shape[0]), t]
    return _reduce(-picked, reduction, op)


def mse_loss(x: Tensor, target, reduction: str = "mean") -> Tensor:
    """(x - t)^2, averaged (``reduction="mean"``), summed (``"sum"``) or element-wise (``"none"``)."""
    _check_float("mse_loss", input=x)
    t = _check_pair("mse_loss", x, target)
    d = x - t
    return _reduce(d * d, reduction, "mse_loss")


def l1_loss(x: Tensor, target, reduction: str = "mean") -> Tensor:
    """|x - t|, averaged (``reduction="mean"``), summed (``"sum"``) or element-wise (``"none"``)."""
    _check_float("l1_loss", input=x)
    t = _check_pair("l1_loss", x, target)
    return _reduce((x - t).abs(), reduction, "l1_loss")


def embedding(indices, weight: Tensor) -> Tensor:
    """Rows of ``weight`` (num, dim) picked by integer ``indices`` (any shape) -> (*indices.shape, dim).

    Backward scatter-adds into the rows used (a repeated index gets the sum).
    """
    idx = indices._data if isinstance(indices, Tensor) else get_array_module(weight._data).asarray(indices)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"embedding: indices must be integers, got dtype {idx.dtype}")
    # Range check on host arrays only (on a GPU it would cost a device-to-host sync per call).
    if isinstance(idx, np.ndarray) and idx.size and (int(idx.min()) < 0 or int(idx.max()) >= weight.shape[0]):
        raise ValueError(f"embedding: indices must lie in [0, {weight.shape[0]}) for weight {weight.shape}, "
                         f"got min {int(idx.min())} max {int(idx.max())}")
    return weight[idx]


def one_hot(indices, num_classes: int, dtype=np.float32, like: Tensor | None = None) -> Tensor:
    """A constant (N, num_classes) one-hot matrix for integer labels (N,)."""
    idx = indices._data if isinstance(indices, Tensor) else indices
    xp = get_array_module(idx, None if like is None else like._data)
    idx = xp.asarray(idx)
    out = xp.zeros((idx.shape[0], num_classes), dtype=dtype)
    out[xp.arange(idx.shape[0]), idx] = 1
    return Tensor(out)



# ---------------------------------------------------------------------------
# Padding and resizing
# ---------------------------------------------------------------------------

class Pad(Function):
    """Constant padding: y = x inside a border of ``value``; a negative pad crops.

    ``pads`` holds one ``(before, after)`` pair per dim of x; along a dim of size n
    the output has n + before + after entries and
    y[before + i] = x[i] (the entries of x a negative pad cuts off are dropped).
    The map is linear in x and its adjoint crops the border back off, which
    is the same op with negated pads and value 0:  gx = Pad(-pads, 0)(g).
    """

    saved_inputs = ()   # backward needs shapes only

    def __init__(self, pads, value: float = 0.0):
        self.pads, self.value = tuple(pads), value

    def forward(self, x):
        xp = get_array_module(x)
        out_shape = tuple(n + lo + hi for n, (lo, hi) in zip(x.shape, self.pads))
        if any(m < 0 for m in out_shape):
            raise ValueError(f"pad: padding {self.pads} gives a negative output shape {out_shape} "
                             f"for an input of shape {tuple(x.shape)}")
        y = xp.full(out_shape, self.value, dtype=x.dtype)                 # (n_0 + lo_0 + hi_0, ...)
        src, dst = [], []
        for n, (lo, hi) in zip(x.shape, self.pads):
            start, stop = max(0, -lo), max(max(0, -lo), n - max(0, -hi))  # the part of x that is kept
            src.append(slice(start, stop))
            dst.append(slice(max(0, lo), max(0, lo) + stop - start))
        y[tuple(dst)] = x[tuple(src)]
        return y

    def backward(self, g):
        return Pad(tuple((-lo, -hi) for lo, hi in self.pads), 0.0)(g)


def _pad_pairs(op: str, ndim: int, pad) -> tuple[tuple[int, int], ...]:
    """PyTorch's flat pad tuple (last dim first: (left, right, top, bottom, ...)) -> one (before, after) per dim."""
    if not isinstance(pad, (tuple, list)) or len(pad) % 2 or not all(isinstance(p, (int, np.integer)) for p in pad):
        raise TypeError(f"{op}: pad must be a tuple of ints of even length (left, right, top, bottom, ...), "
                        f"got {pad!r}")
    if len(pad) // 2 > ndim:
        raise ValueError(f"{op}: pad {tuple(pad)} has {len(pad) // 2} pairs for an input with {ndim} dims")
    pairs = [(0, 0)] * ndim
    for k in range(len(pad) // 2):                    # pair k pads dim -(k + 1)
        pairs[ndim - 1 - k] = (int(pad[2 * k]), int(pad[2 * k + 1]))
    return tuple(pairs)


def _gather_index(n: int, lo: int, hi: int, mode: str, xp):
    """Source index along one dim for output positions -lo .. n + hi - 1 (reflect / replicate / circular)."""
    i = xp.arange(-lo, n + hi)
    if mode == "replicate":
        return xp.clip(i, 0, n - 1)                   # edge values repeated
    if mode == "circular":
        return i % n                                  # wrap around
    period = 2 * (n - 1)                              # reflect: mirror without repeating the edge
    i = xp.abs(i) % period if period else xp.zeros_like(i)
    return xp.where(i >= n, period - i, i)


def pad(x: Tensor, pad, mode: str = "constant", value: float | None = None) -> Tensor:
    """Pad ``x`` as ``torch.nn.functional.pad``: ``pad`` lists (before, after) amounts from the last dim back.

    ``F.pad(x, (1, 2))`` pads the last dim with 1 before and 2 after;
    ``F.pad(x, (1, 1, 2, 0))`` also pads the dim before it with 2 on top.

    * ``mode="constant"``: fill with ``value`` (0); negative amounts crop
      (:class:`Pad`; its gradient crops, or pads, back);
    * ``"reflect"``, ``"replicate"``, ``"circular"``: y = x[index] along each
      padded dim (reflect: ..., x_2, x_1, [x_0, ..., x_{n-1}], x_{n-2}, ...),
      an index gather whose gradient adds each output back to its source.
    """
    op = "pad"
    _check_float(op, input=x)
    pairs = _pad_pairs(op, x.ndim, pad)
    if mode == "constant":
        return Pad(pairs, 0.0 if value is None else float(value))(x)
    if mode not in ("reflect", "replicate", "circular"):
        raise ValueError(f"{op}: mode must be 'constant', 'reflect', 'replicate' or 'circular', got {mode!r}")
    if value not in (None, 0, 0.0):
        raise ValueError(f"{op}: value is only used by mode='constant', got value={value} with mode={mode!r}")
    xp = get_array_module(x._data)
    for d, (lo, hi) in enumerate(pairs):
        if lo == hi == 0:
            continue
        n = x.shape[d]
        limit = n - 1 if mode == "reflect" else n
        if min(lo, hi) < 0 or max(lo, hi) > limit:
            raise ValueError(f"{op}: mode {mode!r} needs padding between 0 and {limit} for a dim of size {n}, "
                             f"got ({lo}, {hi}) for dim {d} (input {x.shape})")
        x = GetItem((slice(None),) * d + (_gather_index(n, lo, hi, mode, xp),))(x)
    return x


def _interp_sizes(op: str, x: Tensor, size, scale_factor) -> tuple[tuple[int, ...], tuple]:
    """Output spatial size and the scale per spatial dim used to map coordinates (None: in / out)."""
    spatial = x.shape[2:]
    if (size is None) == (scale_factor is None):
        raise ValueError(f"{op}: give exactly one of size and scale_factor")
    if size is not None:
        out = (size,) * len(spatial) if isinstance(size, (int, np.integer)) else tuple(size)
        if len(out) != len(spatial) or any(int(o) < 1 for o in out):
            raise ValueError(f"{op}: size {size} does not fit an input with spatial shape {spatial}")
        return tuple(int(o) for o in out), (None,) * len(spatial)
    factors = (scale_factor,) * len(spatial) if isinstance(scale_factor, (int, float)) else tuple(scale_factor)
    if len(factors) != len(spatial) or any(f <= 0 for f in factors):
        raise ValueError(f"{op}: scale_factor {scale_factor} does not fit an input with spatial shape {spatial}")
    out = tuple(int(np.floor(n * float(f))) for n, f in zip(spatial, factors))
    if any(o < 1 for o in out):
        raise ValueError(f"{op}: scale_factor {scale_factor} gives an empty output for spatial shape {spatial}")
    return out, tuple(1.0 / float(f) for f in factors)


def _nearest_index(n_in: int, n_out: int, scale, xp):
    """PyTorch's 'nearest': src = min(floor(dst * s), n_in - 1), s = 1 / scale_factor or n_in / n_out (float32)."""
    s = np.float32(n_in / n_out if scale is None else scale)
    src = np.floor(np.arange(n_out, dtype=np.float32) * s).astype(np.int64)
    return xp.asarray(np.minimum(src, n_in - 1))


def _linear_matrix(n_in: int, n_out: int, scale, align_corners: bool) -> np.ndarray:
    """The (n_out, n_in) matrix of 1-D linear interpolation, PyTorch's source coordinates:

    align_corners:  src = dst (n_in - 1) / (n_out - 1)
    otherwise:      src = max(0, (dst + 1/2) s - 1/2),  s = 1 / scale_factor or n_in / n_out
    row dst: weight 1 - l at i0 = floor(src), l = src - i0 at min(i0 + 1, n_in - 1).
    """
    dst = np.arange(n_out, dtype=np.float64)
    if align_corners:
        src = dst * ((n_in - 1) / (n_out - 1) if n_out > 1 else 0.0)
    else:
        s = n_in / n_out if scale is None else scale
        src = np.maximum((dst + 0.5) * s - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    lam = src - i0
    a = np.zeros((n_out, n_in))
    np.add.at(a, (np.arange(n_out), i0), 1.0 - lam)
    np.add.at(a, (np.arange(n_out), i1), lam)
    return a


def interpolate(x: Tensor, size=None, scale_factor=None, mode: str = "nearest", align_corners: bool | None = None,
                recompute_scale_factor: bool | None = None) -> Tensor:
    """Resize the spatial dims of x (N, C, ...) as ``torch.nn.functional.interpolate``.

    * ``mode="nearest"`` (any number of spatial dims): y[..., i] = x[..., src(i)],
      src(i) = min(floor(i s), n_in - 1) with s = 1 / scale_factor (or n_in / n_out
      when ``size`` is given); an index gather, so the gradient sums each
      output back into the pixel it came from;
    * ``mode="bilinear"`` (N, C, H, W): y = A_h x A_w^T where each row of the
      (H_out, H) matrix A_h holds the two weights 1 - l and l of linear
      interpolation (see :func:`_linear_matrix` for PyTorch's source
      coordinates with ``align_corners`` True or False).  y is linear in x;
      gx = A_h^T g A_w.

    ``recompute_scale_factor=True`` maps coordinates with n_in / n_out instead
    of 1 / scale_factor, as PyTorch.
    """
    op = "interpolate"
    _check_float(op, input=x)
    if x.ndim < 3:
        raise ValueError(f"{op}: expected an input (N, C, ...) with at least one spatial dim, got shape {x.shape}")
    out, scales = _interp_sizes(op, x, size, scale_factor)
    if recompute_scale_factor:
        scales = (None,) * len(out)
    xp = get_array_module(x._data)
    if mode == "nearest":
        if align_corners is not None:
            raise ValueError(f"{op}: align_corners only applies to mode 'bilinear', not 'nearest'")
        for d, (n_in, n_out, s) in enumerate(zip(x.shape[2:], out, scales)):
            if n_in != n_out:
                x = GetItem((slice(None),) * (d + 2) + (_nearest_index(n_in, n_out, s, xp),))(x)
        return x
    if mode != "bilinear":
        raise ValueError(f"{op}: mode must be 'nearest' or 'bilinear', got {mode!r}")
    if x.ndim != 4:
        raise ValueError(f"{op}: mode 'bilinear' needs a 4-D input (N, C, H, W), got shape {x.shape}")
    a_h = _linear_matrix(x.shape[2], out[0], scales[0], bool(align_corners))     # (H_out, H)
    a_w = _linear_matrix(x.shape[3], out[1], scales[1], bool(align_corners))     # (W_out, W)
    a_h, a_w = (Tensor(xp.asarray(a.astype(x.dtype))) for a in (a_h, a_w))
    return a_h @ x @ a_w.T                                                       # (N, C, H_out, W_out)
