"""Slow, obviously-correct loop references: convolutions, batch norm, LeakyReLU.

These functions exist only to check the fast kernels in
:mod:`tinygan.kernels` and the ops of :mod:`tinygan.functional` built on them
(and to be read).  Each one is a direct transcription of its defining
equation as Python loops over output positions, kernel taps, channels or
elements, on NumPy arrays, for small inputs; none calls a tinygan kernel, so
a test comparing the two needs nothing else (no PyTorch) to tell a wrong
result.  Shapes follow PyTorch:

* ``x``  input               ``(N, C, H, W)``
* ``w``  conv weight          ``(O, C, kh, kw)``
* ``y``  conv output          ``(N, O, Ho, Wo)``, ``Ho = (H + 2 ph - kh) // sh + 1``

``x_pad`` is ``x`` with ``ph`` zero rows above and below and ``pw`` zero
columns left and right.
"""
from __future__ import annotations

import numpy as np

from tinygan.kernels.args import pair


def _pad_hw(x, ph, pw):
    """Zero-pad the two trailing (spatial) axes of an ``(N, C, H, W)`` array."""
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))


def conv2d_ref(x, w, stride=1, padding=0, bias=None):
    """Cross-correlation, as ``torch.nn.functional.conv2d``.

        y[n, o, i, j] = sum_{c, p, q} x_pad[n, c, i*sh + p, j*sw + q] * w[o, c, p, q]  (+ bias[o])

    Loops over the output positions ``(i, j)``.
    """
    sh, sw = pair(stride, "stride", "conv2d_ref")
    ph, pw = pair(padding, "padding", "conv2d_ref")
    N, C, H, W = x.shape
    O, _, kh, kw = w.shape
    x_pad = _pad_hw(x, ph, pw)
    Ho = (H + 2 * ph - kh) // sh + 1
    Wo = (W + 2 * pw - kw) // sw + 1
    y = np.zeros((N, O, Ho, Wo), dtype=np.result_type(x, w))
    for i in range(Ho):
        for j in range(Wo):
            patch = x_pad[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw]  # (N, C, kh, kw)
            y[:, :, i, j] = np.einsum("ncpq,ocpq->no", patch, w)
    if bias is not None:
        for o in range(O):
            y[:, o] += bias[o]
    return y


def conv2d_grad_input_ref(gy, w, input_hw, stride=1, padding=0):
    """Gradient of ``conv2d`` with respect to its input ``x``.

        gx_pad[n, c, i*sh + p, j*sw + q] += gy[n, o, i, j] * w[o, c, p, q]
        gx = gx_pad[:, :, ph:ph + H, pw:pw + W]

    Each output position ``(i, j)`` scatters its gradient back onto the
    ``kh x kw`` input window it was computed from.
    """
    sh, sw = pair(stride, "stride", "conv2d_grad_input_ref")
    ph, pw = pair(padding, "padding", "conv2d_grad_input_ref")
    H, W = input_hw
    N, O, Ho, Wo = gy.shape
    _, C, kh, kw = w.shape
    gx_pad = np.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=np.result_type(gy, w))
    for i in range(Ho):
        for j in range(Wo):
            gx_pad[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw] += np.einsum(
                "no,ocpq->ncpq", gy[:, :, i, j], w)
    return gx_pad[:, :, ph:ph + H, pw:pw + W]


def conv2d_grad_weight_ref(x, gy, kernel_hw, stride=1, padding=0):
    """Gradient of ``conv2d`` with respect to its weight ``w``.

        gw[o, c, p, q] = sum_{n, i, j} gy[n, o, i, j] * x_pad[n, c, i*sh + p, j*sw + q]

    Loops over the kernel taps ``(p, q)``.
    """
    sh, sw = pair(stride, "stride", "conv2d_grad_weight_ref")
    ph, pw = pair(padding, "padding", "conv2d_grad_weight_ref")
    kh, kw = pair(kernel_hw, "kernel_hw", "conv2d_grad_weight_ref")
    N, C, H, W = x.shape
    _, O, Ho, Wo = gy.shape
    x_pad = _pad_hw(x, ph, pw)
    gw = np.zeros((O, C, kh, kw), dtype=np.result_type(x, gy))
    for p in range(kh):
        for q in range(kw):
            # the input pixels that met tap (p, q), one per output position
            x_tap = x_pad[:, :, p:p + sh * (Ho - 1) + 1:sh, q:q + sw * (Wo - 1) + 1:sw]  # (N, C, Ho, Wo)
            gw[:, :, p, q] = np.einsum("noij,ncij->oc", gy, x_tap)
    return gw


def conv_transpose2d_ref(x, w, stride=1, padding=0, output_padding=0, bias=None):
    """Transposed convolution, as ``torch.nn.functional.conv_transpose2d``.

    ``x`` is ``(N, Cin, Hin, Win)`` and ``w`` is ``(Cin, Cout, kh, kw)``
    (PyTorch's layout for transposed convolutions).  Every input pixel stamps
    a scaled copy of the kernel onto the output, ``s`` pixels apart:

        y_full[n, c, i*sh + p, j*sw + q] += x[n, o, i, j] * w[o, c, p, q]
        y = y_full[:, :, ph:ph + Hout, pw:pw + Wout]  (+ bias[c])
        Hout = (Hin - 1)*sh - 2*ph + kh + oph

    The ``oph`` output_padding rows at the bottom (and ``opw`` columns at the
    right) are ordinary output rows: when ``ph >= oph`` every one of them is
    reached by some stamp and holds a sum of products, not zeros (the crop
    window simply ends ``oph`` rows lower).  Loops over the input positions
    ``(i, j)``.
    """
    sh, sw = pair(stride, "stride", "conv_transpose2d_ref")
    ph, pw = pair(padding, "padding", "conv_transpose2d_ref")
    oph, opw = pair(output_padding, "output_padding", "conv_transpose2d_ref")
    N, Cin, Hin, Win = x.shape
    _, Cout, kh, kw = w.shape
    Hout = (Hin - 1) * sh - 2 * ph + kh + oph
    Wout = (Win - 1) * sw - 2 * pw + kw + opw
    # big enough for every stamp and for the output_padding rows/columns
    y_full = np.zeros((N, Cout, (Hin - 1) * sh + kh + oph, (Win - 1) * sw + kw + opw),
                      dtype=np.result_type(x, w))
    for i in range(Hin):
        for j in range(Win):
            y_full[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw] += np.einsum(
                "no,ocpq->ncpq", x[:, :, i, j], w)
    y = y_full[:, :, ph:ph + Hout, pw:pw + Wout].copy()
    if bias is not None:
        for c in range(Cout):
            y[:, c] += bias[c]
    return y


def batch_norm_ref(x, running_mean=None, running_var=None, weight=None, bias=None, training=False,
                   momentum=0.1, eps=1e-5):
    """Batch norm as ``torch.nn.functional.batch_norm``, one channel at a time, in float64.

    Returns ``(y, new_running_mean, new_running_var)``; the inputs are not
    modified (the statistics are None when ``running_mean`` is None).  For
    channel ``c`` with its ``M`` values ``v`` (over N, or N*H*W)::

        training (or no running statistics):
            mu    = sum(v) / M
            var_b = sum((v - mu)^2) / M                 biased: normalises the batch
            y     = (v - mu) / sqrt(var_b + eps) * weight[c] + bias[c]
            running_mean[c] <- (1 - momentum) running_mean[c] + momentum mu
            running_var[c]  <- (1 - momentum) running_var[c]  + momentum var_b * M / (M - 1)
                                                        unbiased: what torch stores
        evaluation:
            y     = (v - running_mean[c]) / sqrt(running_var[c] + eps) * weight[c] + bias[c]
    """
    x = np.asarray(x, dtype=np.float64)
    C = x.shape[1]
    rm = None if running_mean is None else np.array(running_mean, dtype=np.float64)
    rv = None if running_var is None else np.array(running_var, dtype=np.float64)
    y = np.empty_like(x)
    for c in range(C):
        v = x[:, c].ravel()
        M = v.size
        if training or rm is None:
            mu = sum(v.tolist()) / M
            var_b = sum((t - mu) ** 2 for t in v.tolist()) / M
            scale, shift = 1.0 / np.sqrt(var_b + eps), mu
            if training and rm is not None:
                rm[c] = (1 - momentum) * rm[c] + momentum * mu
                rv[c] = (1 - momentum) * rv[c] + momentum * var_b * M / (M - 1)
        else:
            scale, shift = 1.0 / np.sqrt(rv[c] + eps), rm[c]
        yc = (x[:, c] - shift) * scale
        if weight is not None:
            yc = yc * float(weight[c])
        if bias is not None:
            yc = yc + float(bias[c])
        y[:, c] = yc
    return y, rm, rv


def leaky_relu_ref(x, negative_slope=0.01):
    """LeakyReLU, element by element: ``x if x > 0 else negative_slope * x`` (float64)."""
    x = np.asarray(x, dtype=np.float64)
    out = [v if v > 0 else negative_slope * v for v in x.ravel().tolist()]
    return np.array(out, dtype=np.float64).reshape(x.shape)


def leaky_relu_grad_ref(g, x, negative_slope=0.01):
    """LeakyReLU's input gradient, element by element: ``g if x > 0 else negative_slope * g`` (float64)."""
    g, x = np.asarray(g, dtype=np.float64), np.asarray(x, dtype=np.float64)
    out = [gv if xv > 0 else negative_slope * gv for gv, xv in zip(g.ravel().tolist(), x.ravel().tolist())]
    return np.array(out, dtype=np.float64).reshape(g.shape)
