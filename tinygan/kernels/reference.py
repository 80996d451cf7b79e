"""Slow, obviously-correct loop references for the convolution kernels.

These functions exist only to check the fast kernels in
:mod:`tinygan.kernels.conv` (and to be read).  Each one is a direct
transcription of its defining equation as Python loops over output positions
or kernel taps, on NumPy arrays, for small inputs.  Shapes follow PyTorch:

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


def conv2d_ref(x, w, stride=1, padding=0):
    """Cross-correlation, as ``torch.nn.functional.conv2d`` without bias.

        y[n, o, i, j] = sum_{c, p, q} x_pad[n, c, i*sh + p, j*sw + q] * w[o, c, p, q]

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


def conv_transpose2d_ref(x, w, stride=1, padding=0, output_padding=0):
    """Transposed convolution, as ``torch.nn.functional.conv_transpose2d`` without bias.

    ``x`` is ``(N, Cin, Hin, Win)`` and ``w`` is ``(Cin, Cout, kh, kw)``
    (PyTorch's layout for transposed convolutions).  Every input pixel stamps
    a scaled copy of the kernel onto the output, ``s`` pixels apart:

        y_full[n, c, i*sh + p, j*sw + q] += x[n, o, i, j] * w[o, c, p, q]
        y = y_full[:, :, ph:ph + Hout, pw:pw + Wout]
        Hout = (Hin - 1)*sh - 2*ph + kh + oph

    Loops over the input positions ``(i, j)``.
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
    return y_full[:, :, ph:ph + Hout, pw:pw + Wout]
