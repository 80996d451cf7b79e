"""2-D convolution kernels: arrays in, arrays out, no autograd.

Shapes follow PyTorch (NCHW activations, ``(O, C, kh, kw)`` weights)::

    x  (N, C, H, W)      input
    w  (O, C, kh, kw)    weight
    y  (N, O, Ho, Wo)    output,  Ho = (H + 2 ph - kh) // sh + 1

    y[n, o, i, j] = sum_{c, p, q} x_pad[n, c, i*sh + p, j*sw + q] * w[o, c, p, q]

where ``x_pad`` is ``x`` with ``ph`` zero rows above and below and ``pw``
zero columns left and right.

How: im2col + one matrix product
--------------------------------
Each kernel works channels-last (NHWC) inside and turns the convolution
into ONE matrix product (GEMM):

    cols[(n, i, j), (p, q, c)] = x_pad[n, i*sh + p, j*sw + q, c]    (N*Ho*Wo, kh*kw*C)
    w_rows[o, (p, q, c)]       = w[o, c, p, q]                      (O, kh*kw*C)
    y[(n, i, j), o]            = cols @ w_rows.T                     (N*Ho*Wo, O)

``cols`` starts as a strided *view* of the padded input (no arithmetic);
one copy lays it out as a matrix.  Channels-last matters for speed: the
``kw * C`` numbers of one window row are adjacent in memory, so that copy
moves long contiguous runs, and the GEMM result already is ``(N, Ho, Wo, O)``.
Outputs are returned as NCHW-shaped *views* of NHWC buffers
(``y.transpose(0, 3, 1, 2)``): they are not C-contiguous, which every
NumPy/CuPy operation accepts, and fed back into these kernels they need no
transpose at all.

The two gradients are the adjoints (transposes) of that product:

    w.r.t. w:  gw_rows = gy_rows.T @ cols                            (O, kh*kw*C)
    w.r.t. x:  dcols   = gy_rows @ w_rows, then col2im adds every window
               row back where it came from                           (N, H, W, C)

``conv2d_grad_input`` *is* the forward pass of a transposed convolution
(``conv_transpose2d``), which makes it the generator's main kernel.  When the
kernel size is a multiple of the stride (DCGAN: 4x4, stride 2) it can run in
space-to-depth coordinates, where the strided conv becomes a stride-1 conv
with ``sh*sw`` times more channels (:func:`_grad_input_sub_pixel`), and it
picks between scattering (col2im) and gathering (im2col of ``gy``) by which
one moves less data (:func:`_grad_input_method`).

Big temporaries (padded inputs, im2col matrices) live in per-thread scratch
buffers that are reused from call to call (:func:`_scratch`); results never
do.  The same code runs on NumPy and CuPy: every array call goes through
``xp = get_array_module(x)``.  Floating dtypes are preserved (float32 in,
float32 out); the result dtype is that of ``x @ w``.

Arguments: ``stride``/``padding``/... are an int or a pair of ints
(:func:`tinygan.kernels.args.pair`, which rejects floats and bools), and
shapes and hyper-parameters are checked by :func:`check_conv_args`, the one
place for those rules: these public kernels call it, and so does
:mod:`tinygan.functional` under the op name the user called.
"""
from __future__ import annotations

import numpy
from numpy.lib.stride_tricks import as_strided as _numpy_as_strided

from tinygan.backend import get_array_module
from tinygan.kernels import cuda as _cuda
from tinygan.kernels import threads as _threads
from tinygan.kernels.args import pair
from tinygan.kernels.matmul import matmul

__all__ = [
    "conv2d",
    "conv2d_grad_input",
    "conv2d_grad_weight",
    "conv_transpose2d",
    "conv_output_size",
    "conv_transpose_output_size",
    "check_conv_args",
]


# ---------------------------------------------------------------------------
# sizes, argument checks
# ---------------------------------------------------------------------------

def conv_output_size(h, k, s, p):
    """Output length of a convolution: ``(h + 2p - k) // s + 1``."""
    return (h + 2 * p - k) // s + 1


def conv_transpose_output_size(h, k, s, p, op=0):
    """Output length of a transposed convolution: ``(h - 1) s - 2p + k + op``."""
    return (h - 1) * s - 2 * p + k + op


def check_conv_args(op, x_shape, w_shape, stride, padding, output_padding=None):
    """Check that a convolution's input, weight and hyper-parameters fit; return its output size.

    The one place where convolution arguments are checked: the public
    kernels below call it, and so does :mod:`tinygan.functional` (under the
    op name the user called), so both layers raise the same ``ValueError``,
    naming ``op``, the argument and the shapes.  ``stride``, ``padding`` and
    ``output_padding`` are pairs of ints already (:func:`~tinygan.kernels.args.pair`).

    * ``output_padding=None``: a convolution, ``x (N, C, H, W)``,
      ``w (O, C, kh, kw)``; returns ``(Ho, Wo)``, ``Ho = (H + 2 ph - kh) // sh + 1``.
    * otherwise a transposed convolution, ``x (N, Cin, H, W)``,
      ``w (Cin, Cout, kh, kw)``, ``0 <= output_padding < stride``; returns
      ``(Hout, Wout)``, ``Hout = (H - 1) sh - 2 ph + kh + oph``.
    """
    x_shape, w_shape = tuple(x_shape), tuple(w_shape)
    transposed = output_padding is not None
    if len(x_shape) != 4 or len(w_shape) != 4:
        raise ValueError(f"{op}: expected a 4-D input (N, C, H, W) and a 4-D weight, "
                         f"got input {x_shape} and weight {w_shape}")
    N, C, H, W = x_shape
    kh, kw = w_shape[2:]
    in_ch = w_shape[0] if transposed else w_shape[1]
    if C != in_ch:
        layout = "(in, out, kh, kw)" if transposed else "(out, in, kh, kw)"
        raise ValueError(f"{op}: input has {C} channels (shape {x_shape}) but weight "
                         f"{layout} of shape {w_shape} expects {in_ch}")
    (sh, sw), (ph, pw) = stride, padding
    if min(sh, sw) < 1 or min(ph, pw) < 0:
        raise ValueError(f"{op}: stride must be >= 1 and padding >= 0, "
                         f"got stride {tuple(stride)}, padding {tuple(padding)}")
    if min(kh, kw) < 1:
        raise ValueError(f"{op}: weight of shape {w_shape} has an empty kernel")
    if not transposed:
        if kh > H + 2 * ph or kw > W + 2 * pw:
            raise ValueError(f"{op}: kernel size {(kh, kw)} is larger than the padded input "
                             f"{(H + 2 * ph, W + 2 * pw)} (input {x_shape}, padding {tuple(padding)})")
        return conv_output_size(H, kh, sh, ph), conv_output_size(W, kw, sw, pw)
    (oph, opw) = output_padding
    if not (0 <= oph < sh and 0 <= opw < sw):
        raise ValueError(f"{op}: output_padding {tuple(output_padding)} must be >= 0 and smaller "
                         f"than stride {tuple(stride)}")
    out_hw = (conv_transpose_output_size(H, kh, sh, ph, oph), conv_transpose_output_size(W, kw, sw, pw, opw))
    if min(out_hw) < 1:
        raise ValueError(f"{op}: output size {out_hw} is empty for input {x_shape}, weight {w_shape}, "
                         f"stride {tuple(stride)}, padding {tuple(padding)}")
    return out_hw


def _check_grad_output(name, gy_shape, expected):
    if tuple(gy_shape) != tuple(expected):
        raise ValueError(f"{name}: grad_output has shape {tuple(gy_shape)} but the "
                         f"convolution output is {tuple(expected)}")


# ---------------------------------------------------------------------------
# layout helpers: NCHW -> NHWC, im2col, col2im, space-to-depth
# ---------------------------------------------------------------------------

def _scratch(xp, slot, shape, dtype):
    """An uninitialised array for a temporary that never leaves a kernel call.

    On NumPy, :func:`tinygan.kernels.threads.scratch`: one growing per-thread
    buffer per call site (``slot``, a name here: slots must differ between
    temporaries alive at the same time), so the pages of a big temporary are
    faulted in once, not on every call (measured: the 67 MB im2col matrix of
    a 64->128 conv on 32x32 maps takes 33 ms into a fresh array, 19 ms into a
    reused one; a batch-64 DCGAN keeps about 130 MB of them for the life of
    the thread).  CuPy has its own memory pool, so there this is plain
    ``xp.empty``.
    """
    if xp.__name__ != "numpy":
        return xp.empty(shape, dtype=dtype)
    return _threads.scratch(shape, dtype, slot=slot)


def _as_strided(xp, a, shape, strides):
    """``as_strided`` from NumPy's or CuPy's ``lib.stride_tricks`` (read-only on NumPy)."""
    if xp.__name__ == "numpy":
        return _numpy_as_strided(a, shape=shape, strides=strides, writeable=False)
    from cupy.lib.stride_tricks import as_strided  # CuPy is optional: imported only for CuPy arrays
    return as_strided(a, shape=shape, strides=strides)


def _over_batch(xp, fn, n: int, nbytes: int) -> None:
    """``fn(n0, n1)`` over ranges of the batch axis: on NumPy, blocks of images on tinygan's element-wise
    threads (:mod:`tinygan.kernels.threads`; a copy releases the GIL), else one call.

    For the big copies of these kernels (the padded NHWC input, im2col's
    matrix, col2im's adds, depth-to-space): each image's slab is independent,
    so the result is the same on any number of threads.
    """
    if xp.__name__ != "numpy" or n <= 1 or not _threads.parallel(nbytes):
        fn(0, n)
        return
    cuts = _threads.blocks(n, max(1, nbytes // n))
    _threads.run(lambda i: fn(*cuts[i]), len(cuts), nbytes)


def _transpose_source(x):
    """``x`` (N, C, H, W) seen as (N, H, W, C), ready to be copied channels-last.

    Copying an NCHW array to NHWC reads one number from each channel plane in
    turn.  When those planes are a multiple of 4 KiB apart (32x32 float32
    maps, any power-of-two size from there up) every read lands on the same
    cache set and the copy runs 5-7x slower than a plain copy on x86 CPUs
    (measured: 20 ms instead of 3 ms for 64x64x32x32).  Copying the planes
    first into rows padded by 64 bytes, then transposing, costs 2 cheap copies
    instead (about 9 ms).  Only done for NumPy; on a GPU it would not help.
    """
    xp = get_array_module(x)
    N, C, H, W = x.shape
    plane_bytes = x.strides[1]
    if (xp.__name__ != "numpy" or C < 8 or H * W < 16 or plane_bytes % 4096 != 0
            or x.strides[2:] != (W * x.itemsize, x.itemsize)):
        return x.transpose(0, 2, 3, 1)                                 # (N, H, W, C) view
    skew = 64 // x.itemsize
    planes = _scratch(xp, "planes", (N, C, H * W + skew), x.dtype)[:, :, :H * W]  # 4 KiB + 64 B apart
    src = x.reshape(N, C, H * W)

    def copy(n0, n1):
        planes[n0:n1] = src[n0:n1]

    _over_batch(xp, copy, N, x.nbytes)
    return planes.reshape(N, C, H, W).transpose(0, 2, 3, 1)            # (N, H, W, C) view


def _to_nhwc(x, padding=(0, 0), slot="x"):
    """``x`` (N, C, H, W) -> channels-last, zero-padded (N, H+2ph, W+2pw, C).

    The transpose and the padding happen in one copy, into scratch ``slot``.
    With no padding and an input whose channels already are its innermost
    axis (an NCHW view of an NHWC buffer, as these kernels return) nothing is
    copied.
    """
    xp = get_array_module(x)
    ph, pw = padding
    N, C, H, W = x.shape
    x_nhwc = x.transpose(0, 2, 3, 1)                                   # (N, H, W, C) view
    if ph == 0 and pw == 0 and (x_nhwc.strides[3] == x.itemsize or C == 1):
        return x_nhwc
    x_pad = _scratch(xp, slot, (N, H + 2 * ph, W + 2 * pw, C), x.dtype)  # (N, Hp, Wp, C)
    x_pad[:, :ph] = 0                                                  # the zero border
    x_pad[:, ph + H:] = 0
    x_pad[:, ph:ph + H, :pw] = 0
    x_pad[:, ph:ph + H, pw + W:] = 0
    src = _transpose_source(x)

    def copy(n0, n1):
        x_pad[n0:n1, ph:ph + H, pw:pw + W, :] = src[n0:n1]

    _over_batch(xp, copy, N, x.nbytes)
    return x_pad


def _pixel_rows(a, slot):
    """``a`` (N, C, H, W) -> (N*H*W, C): one row per pixel (a view when ``a`` is NHWC)."""
    N, C, H, W = a.shape
    xp = get_array_module(a)
    a_nhwc = _to_nhwc(a, slot=slot)                                    # (N, H, W, C)
    if not a_nhwc.flags.c_contiguous:      # channels innermost but gaps (a cropped view)
        rows = _scratch(xp, slot, a_nhwc.shape, a.dtype)
        rows[...] = a_nhwc
        a_nhwc = rows
    return a_nhwc.reshape(N * H * W, C)


def _im2col(x_pad, kernel_hw, stride, out_hw):
    """Windows of a padded NHWC array as a matrix (N*Ho*Wo, kh*kw*C).

        cols[(n, i, j), (p, q, c)] = x_pad[n, i*sh + p, j*sw + q, c]

    The 6-D array of windows is a strided view of ``x_pad`` (no copy); one
    copy into scratch lays the windows out as GEMM rows.
    """
    xp = get_array_module(x_pad)
    if xp is not numpy:  # CuPy: one kernel, one thread per element of cols, any x_pad strides (kernels/cuda)
        return _cuda.im2col_nhwc(x_pad, kernel_hw, stride, out_hw)
    N, Hp, Wp, C = x_pad.shape
    kh, kw = kernel_hw
    sh, sw = stride
    Ho, Wo = out_hw
    if (Ho, Wo) == (1, 1) and (Hp, Wp) == (kh, kw) and x_pad.flags.c_contiguous:
        return x_pad.reshape(N, kh * kw * C)       # one window, the whole image: its rows already are cols
    sN, sH, sW, sC = x_pad.strides
    windows = _as_strided(xp, x_pad, (N, Ho, Wo, kh, kw, C),
                          (sN, sh * sH, sw * sW, sH, sW, sC))          # (N, Ho, Wo, kh, kw, C)
    cols = _scratch(xp, "cols", windows.shape, x_pad.dtype)

    def copy(n0, n1):
        cols[n0:n1] = windows[n0:n1]

    _over_batch(xp, copy, N, cols.nbytes)
    return cols.reshape(N * Ho * Wo, kh * kw * C)


def _col2im(dcols, padded_hw, kernel_hw, stride, out_hw, scratch_slot=None):
    """Adjoint of :func:`_im2col`: add every window row back onto a zero image.

        x_pad[n, i*sh + p, j*sw + q, c] += dcols[(n, i, j), (p, q, c)]

    One strided slice-add per kernel tap ``(p, q)``; each adds a whole
    (N, Ho, Wo, C) block, so there is no loop over pixels.
    Returns ``x_pad`` (N, Hp, Wp, C): a new array, or a temporary in
    ``scratch_slot`` when given, or, when the one window is the whole
    image, a view of ``dcols`` itself.
    """
    xp = get_array_module(dcols)
    if xp is not numpy:  # CuPy: gather kernel, one thread per x_pad element, no atomics (kernels/cuda)
        return _cuda.col2im_nhwc(dcols, padded_hw, kernel_hw, stride, out_hw)
    Hp, Wp = padded_hw
    kh, kw = kernel_hw
    sh, sw = stride
    Ho, Wo = out_hw
    N = dcols.shape[0] // (Ho * Wo)
    C = dcols.shape[1] // (kh * kw)
    if (Ho, Wo) == (1, 1) and (Hp, Wp) == (kh, kw):
        # One window that is the whole padded image (a DCGAN's first transposed conv, 1x1 -> 7x7 or 4x4, and
        # the gradient of D's logit layer): its row already is the image, nothing overlaps, nothing to add.
        return dcols.reshape(N, Hp, Wp, C)                             # (N, Hp, Wp, C), a view of dcols
    d = dcols.reshape(N, Ho, Wo, kh, kw, C)
    if scratch_slot is None:
        x_pad = xp.zeros((N, Hp, Wp, C), dtype=dcols.dtype)            # (N, Hp, Wp, C)
    else:
        x_pad = _scratch(xp, scratch_slot, (N, Hp, Wp, C), dcols.dtype)

    def add(n0, n1):
        if scratch_slot is not None:
            x_pad[n0:n1].fill(0)
        for p in range(kh):
            for q in range(kw):
                x_pad[n0:n1, p:p + sh * (Ho - 1) + 1:sh, q:q + sw * (Wo - 1) + 1:sw, :] += d[n0:n1, :, :, p, q, :]

    _over_batch(xp, add, N, dcols.nbytes)
    return x_pad


def _weight_rows(w):
    """``w`` (O, C, kh, kw) -> ``w_rows`` (O, kh*kw*C), columns ordered like im2col's."""
    O = w.shape[0]
    return w.transpose(0, 2, 3, 1).reshape(O, -1)


def _depth_to_space(x_s2d, stride, C, out_hw, padding):
    """Sub-pixel blocks back to pixels, cropped to the unpadded image.

        x_pad[n, sh*I + r, sw*J + t, c] = x_s2d[n, I, J, (r, t, c)]
        x     = x_pad[:, ph:ph + H, pw:pw + W, :]

    ``x_s2d`` is (N, Hs, Ws, sh*sw*C); returns a new *dense* NHWC (N, H, W, C)
    array (pixels whose block lies past ``Hs``, ``Ws`` are zero: no window
    reached them).  One strided copy per sub-pixel phase (r, t) writes the
    crop directly, so the result has no gaps between rows: the batch norm,
    ReLU and LeakyReLU after a transposed convolution (and before a strided
    convolution's input gradient) then run over long contiguous lines
    (tinygan/kernels/layout.py) instead of W*C-long rows.
    """
    xp = get_array_module(x_s2d)
    N, Hs, Ws, _ = x_s2d.shape
    xs = x_s2d.reshape(N, Hs, Ws, stride[0], stride[1], C)             # [n, I, J, r, t, c]
    out = xp.empty((N, *out_hw, C), dtype=x_s2d.dtype)
    _over_batch(xp, lambda n0, n1: _depth_to_space_into(out[n0:n1], xs[n0:n1], stride, padding), N, out.nbytes)
    return out


def _depth_to_space_into(out, xs, stride, padding):
    """The body of :func:`_depth_to_space` for a block of images: ``out`` (n, H, W, C) from ``xs`` [n, I, J, r, t, c]."""
    _, H, W, _ = out.shape
    Hs, Ws = xs.shape[1:3]
    sh, sw = stride
    ph, pw = padding
    for r in range(sh):
        i0 = (r - ph) % sh                                             # first row of phase r: i = sh*I + r - ph
        i_first = (i0 + ph - r) // sh
        n_i = len(range(i0, H, sh))
        n_src_i = max(0, min(n_i, Hs - i_first))
        for t in range(sw):
            j0 = (t - pw) % sw
            j_first = (j0 + pw - t) // sw
            n_j = len(range(j0, W, sw))
            n_src_j = max(0, min(n_j, Ws - j_first))
            dst = out[:, i0::sh, j0::sw, :]                            # (N, n_i, n_j, C)
            dst[:, :n_src_i, :n_src_j] = xs[:, i_first:i_first + n_src_i, j_first:j_first + n_src_j, r, t, :]
            if n_src_i < n_i:
                dst[:, n_src_i:] = 0
            if n_src_j < n_j:
                dst[:, :n_src_i, n_src_j:] = 0


# ---------------------------------------------------------------------------
# conv2d
# ---------------------------------------------------------------------------

def conv2d(x, w, stride=(1, 1), padding=(0, 0)):
    """Cross-correlation of ``x`` with ``w`` (``torch.nn.functional.conv2d``, no bias).

        y[n, o, i, j] = sum_{c, p, q} x_pad[n, c, i*sh + p, j*sw + q] * w[o, c, p, q]

    Args:
        x: input (N, C, H, W).
        w: weight (O, C, kh, kw).
        stride: (sh, sw) or an int.
        padding: (ph, pw) zeros added on both sides, or an int.

    Returns:
        y (N, O, Ho, Wo), Ho = (H + 2 ph - kh) // sh + 1: an NCHW view of
        an NHWC buffer.
    """
    stride, padding = pair(stride, "stride", "conv2d"), pair(padding, "padding", "conv2d")
    Ho, Wo = check_conv_args("conv2d", x.shape, w.shape, stride, padding)
    N = x.shape[0]
    O, C, kh, kw = w.shape
    x_pad = _to_nhwc(x, padding)                                       # (N, Hp, Wp, C)
    cols = _im2col(x_pad, (kh, kw), stride, (Ho, Wo))                  # (N*Ho*Wo, kh*kw*C)
    y = matmul(cols, _weight_rows(w).T)                                # (N*Ho*Wo, O)
    return y.reshape(N, Ho, Wo, O).transpose(0, 3, 1, 2)               # (N, O, Ho, Wo)


# ---------------------------------------------------------------------------
# gradient with respect to the input (= transposed convolution)
# ---------------------------------------------------------------------------

def _grad_input_col2im(gy, w, input_hw, stride, padding):
    """Scatter version, any kernel and stride: one GEMM, then ``kh*kw`` strided adds.

        dcols[(n, i, j), (p, q, c)] = sum_o gy[n, o, i, j] * w[o, c, p, q]
        gx_pad[n, i*sh + p, j*sw + q, c] += dcols[(n, i, j), (p, q, c)]

    Returns NHWC (N, H, W, C).
    """
    N, O, Ho, Wo = gy.shape
    _, C, kh, kw = w.shape
    H, W = input_hw
    ph, pw = padding
    dcols = matmul(_pixel_rows(gy, "gy"), _weight_rows(w))             # (N*Ho*Wo, kh*kw*C)
    gx_pad = _col2im(dcols, (H + 2 * ph, W + 2 * pw), (kh, kw), stride, (Ho, Wo))
    return gx_pad[:, ph:ph + H, pw:pw + W, :]                          # (N, H, W, C)


def _grad_input_method(gy_shape, w_shape, stride):
    """Pick the cheapest grad-input algorithm for this shape.

    * ``"col2im"``: scatter in pixel space -- the only one for kernels that
      are not a multiple of the stride, and the plain form of scatter for
      stride 1;
    * ``"scatter"``: scatter in space-to-depth blocks (stride > 1);
    * ``"gather"``: im2col of the zero-padded ``gy``, no adds.

    Scattering expands the *output* side: ``dcols`` has ``kh*kw*C`` numbers
    per ``gy`` pixel, and is moved about twice (written by the GEMM, then
    read by the slice-adds that update the image).  Gathering expands the
    *input* side, ``ka*kb*O`` numbers per block, moved once, but has
    ``(Ho+ka-1) x (Wo+kb-1)`` blocks for ``Ho x Wo`` pixels: the border
    blocks are wasted GEMM work.  Gather when it moves less and wastes at
    most 35% of the GEMM.  Measured on every DCGAN / MNIST-GAN shape this
    picks the fastest method or one within 10% of it.

    One output channel (an MNIST generator's last layer) scatters in pixel
    space: a space-to-depth block then holds only sh*sw numbers, and the
    sub-pixel scatter's adds and depth-to-space copy move them a few at a
    time (measured, 64x64x14x14 -> 1x28x28, one thread: 0.79 ms col2im,
    1.75 ms sub-pixel scatter, 4.2 ms gather).
    """
    _, O, Ho, Wo = gy_shape
    _, C, kh, kw = w_shape
    sh, sw = stride
    if kh % sh or kw % sw or C == 1:
        return "col2im"
    ka, kb = kh // sh, kw // sw
    blocks, pixels = (Ho + ka - 1) * (Wo + kb - 1), Ho * Wo
    gathered, scattered = blocks * ka * kb * O, pixels * kh * kw * C
    if gathered < 2 * scattered and blocks <= 1.35 * pixels:
        return "gather"
    return "col2im" if (sh, sw) == (1, 1) else "scatter"


def _grad_input_sub_pixel(gy, w, input_hw, stride, padding, method):
    """Grad-input for kernels that are a multiple of the stride (kh = sh*ka, kw = sw*kb).

    Group the padded input into ``sh x sw`` blocks (space-to-depth):

        x_s2d[n, I, J, (r, t, c)] = x_pad[n, sh*I + r, sw*J + t, c]
        w_s2d[o, (r, t, c), a, b] = w[o, c, sh*a + r, sw*b + t]

    Then the strided conv is a stride-1 conv of ``x_s2d`` with the
    ``ka x kb`` kernel ``w_s2d``, and its input gradient is a stride-1
    transposed conv producing all ``sh*sw`` sub-pixels of a block at once:

        gx_s2d[n, I, J, :] = sum_{a, b, o} gy[n, o, I - a, J - b] * w_s2d[o, :, a, b]

    for I < Hs = Ho + ka - 1.  Two ways to compute it with one GEMM:

    * ``"scatter"``: dcols = gy_rows @ w_s2d_rows (N*Ho*Wo, ka*kb*sh*sw*C), then
      ``ka*kb`` slice-adds, each over long contiguous runs of sh*sw*C numbers;
    * ``"gather"``: zero-pad ``gy`` by (ka-1, kb-1), im2col its ``ka x kb``
      windows (N*Hs*Ws, ka*kb*O) and multiply by the flipped kernel; no
      adds at all, the GEMM writes ``gx_s2d`` directly.

    A final depth-to-space copy interleaves the blocks into the image.
    Returns NHWC (N, H, W, C).
    """
    N, O, Ho, Wo = gy.shape
    _, C, kh, kw = w.shape
    sh, sw = stride
    ka, kb = kh // sh, kw // sw
    Hs, Ws = Ho + ka - 1, Wo + kb - 1
    S = sh * sw * C                                                    # channels of a block
    w6 = w.reshape(O, C, ka, sh, kb, sw)                               # [o, c, a, r, b, t]
    # Each new temporary is dropped once used (im2col's cols and scatter's gx_s2d are reused scratch):
    # a D step's memory peak is in here (benchmarks/memory.py).
    if method == "scatter":
        w_s2d_rows = w6.transpose(0, 2, 4, 3, 5, 1).reshape(O, ka * kb * S)  # [o, (a, b, r, t, c)]
        dcols = matmul(_pixel_rows(gy, "gy"), w_s2d_rows)              # (N*Ho*Wo, ka*kb*S)
        del w_s2d_rows
        gx_s2d = _col2im(dcols, (Hs, Ws), (ka, kb), (1, 1), (Ho, Wo), "gx_s2d")  # (N, Hs, Ws, S)
        del dcols
    else:
        gy_full = _to_nhwc(gy, (ka - 1, kb - 1), "gy")                 # (N, Ho+2ka-2, Wo+2kb-2, O)
        cols = _im2col(gy_full, (ka, kb), (1, 1), (Hs, Ws))            # (N*Hs*Ws, ka*kb*O)
        # window tap (a', b') meets gy[I - a, J - b] with a = ka-1-a': flip the taps
        w_flip = w6[:, :, ::-1, :, ::-1, :]
        w_gather = w_flip.transpose(2, 4, 0, 3, 5, 1).reshape(ka * kb * O, S)  # [(a', b', o), (r, t, c)]
        gx_s2d = matmul(cols, w_gather).reshape(N, Hs, Ws, S)          # (N, Hs, Ws, S)
        del cols, w_gather
        if (sh, sw) == (1, 1):       # blocks are pixels: this already is a new gx_pad
            (H, W), (ph, pw) = input_hw, padding
            return gx_s2d[:, ph:ph + H, pw:pw + W, :]                  # (N, H, W, C)
    return _depth_to_space(gx_s2d, stride, C, input_hw, padding)      # (N, H, W, C)


def _conv2d_grad_input_nhwc(gy, w, input_hw, stride, padding, method=None):
    """Dispatch to a grad-input algorithm; returns NHWC (N, H, W, C).

    ``method`` (None: :func:`_grad_input_method` chooses) is one of
    ``"col2im"``, ``"scatter"``, ``"gather"``; the tests force each one.
    """
    (sh, sw), (kh, kw) = stride, w.shape[2:]
    if kh % sh or kw % sw:
        method = "col2im"                # no exact space-to-depth form
    elif method is None:
        method = _grad_input_method(gy.shape, w.shape, stride)
    if method == "col2im":
        return _grad_input_col2im(gy, w, input_hw, stride, padding)
    return _grad_input_sub_pixel(gy, w, input_hw, stride, padding, method)


def conv2d_grad_input(gy, w, input_hw, stride=(1, 1), padding=(0, 0)):
    """Gradient of :func:`conv2d` with respect to ``x`` (its adjoint in ``x``).

        gx_pad[n, c, i*sh + p, j*sw + q] += gy[n, o, i, j] * w[o, c, p, q]
        gx = gx_pad[:, :, ph:ph + H, pw:pw + W]

    This is also the forward pass of a transposed convolution (see
    :func:`conv_transpose2d`).

    Args:
        gy: gradient of the conv output (N, O, Ho, Wo).
        w: weight (O, C, kh, kw).
        input_hw: (H, W) of the conv input; needed because several input
            sizes give the same output size when the stride is > 1.

    Returns:
        gx (N, C, H, W), an NCHW view of an NHWC buffer.
    """
    op = "conv2d_grad_input"
    stride, padding = pair(stride, "stride", op), pair(padding, "padding", op)
    H, W = pair(input_hw, "input_hw", op)
    if gy.ndim != 4 or w.ndim != 4:
        raise ValueError(f"{op}: expected a 4-D grad_output (N, O, Ho, Wo) and a 4-D weight, "
                         f"got grad_output {tuple(gy.shape)} and weight {tuple(w.shape)}")
    N, C = gy.shape[0], w.shape[1]
    Ho, Wo = check_conv_args(op, (N, C, H, W), w.shape, stride, padding)
    _check_grad_output(op, gy.shape, (N, w.shape[0], Ho, Wo))
    gx = _conv2d_grad_input_nhwc(gy, w, (H, W), stride, padding)       # (N, H, W, C)
    return gx.transpose(0, 3, 1, 2)                                    # (N, C, H, W)


def conv_transpose2d(x, w, stride=(1, 1), padding=(0, 0), output_padding=(0, 0)):
    """Transposed convolution (``torch.nn.functional.conv_transpose2d``, no bias).

        y_full[n, c, i*sh + p, j*sw + q] += x[n, o, i, j] * w[o, c, p, q]
        y = y_full[:, :, ph:ph + Hout, pw:pw + Wout]

    i.e. ``conv2d_grad_input(x, w, (Hout, Wout), stride, padding)``.

    Args:
        x: input (N, Cin, Hin, Win).
        w: weight (Cin, Cout, kh, kw) -- PyTorch's transposed-conv layout,
            which is exactly the (O, C, kh, kw) layout of the conv it transposes.
        output_padding: (oph, opw), extra rows/columns at the bottom/right,
            each smaller than the stride; picks one of the input sizes that a
            strided conv maps to the same output size.

    Returns:
        y (N, Cout, Hout, Wout), Hout = (Hin - 1) sh - 2 ph + kh + oph.
    """
    op = "conv_transpose2d"
    stride, padding = pair(stride, "stride", op), pair(padding, "padding", op)
    output_padding = pair(output_padding, "output_padding", op)
    out_hw = check_conv_args(op, x.shape, w.shape, stride, padding, output_padding)
    return conv2d_grad_input(x, w, out_hw, stride, padding)


# ---------------------------------------------------------------------------
# gradient with respect to the weight
# ---------------------------------------------------------------------------

def conv2d_grad_weight(x, gy, kernel_hw, stride=(1, 1), padding=(0, 0)):
    """Gradient of :func:`conv2d` with respect to ``w`` (its adjoint in ``w``).

        gw[o, c, p, q] = sum_{n, i, j} gy[n, o, i, j] * x_pad[n, c, i*sh + p, j*sw + q]

    i.e. ``gw_rows = gy_rows.T @ cols`` with the forward's im2col matrix.
    This kernel keeps no state between calls, so it builds ``cols`` again.

    Args:
        x: conv input (N, C, H, W).
        gy: gradient of the conv output (N, O, Ho, Wo).
        kernel_hw: (kh, kw).

    Returns:
        gw (O, C, kh, kw), a view of a (kh, kw, C, O) or (O, kh, kw, C) buffer.
    """
    op = "conv2d_grad_weight"
    stride, padding = pair(stride, "stride", op), pair(padding, "padding", op)
    kh, kw = pair(kernel_hw, "kernel_size", op)
    if x.ndim != 4 or gy.ndim != 4:
        raise ValueError(f"{op}: expected a 4-D input (N, C, H, W) and a 4-D grad_output (N, O, Ho, Wo), "
                         f"got input {tuple(x.shape)} and grad_output {tuple(gy.shape)}")
    N, C = x.shape[:2]
    O = gy.shape[1]
    Ho, Wo = check_conv_args(op, x.shape, (O, C, kh, kw), stride, padding)
    _check_grad_output(op, gy.shape, (N, O, Ho, Wo))
    x_pad = _to_nhwc(x, padding)                                       # (N, Hp, Wp, C)
    cols = _im2col(x_pad, (kh, kw), stride, (Ho, Wo))                  # (N*Ho*Wo, kh*kw*C)
    gy_rows = _pixel_rows(gy, "gy")                                    # (N*Ho*Wo, O)
    # The same product either way round; with the wider matrix first,
    # two-thread OpenBLAS was up to 6x faster on a busy machine (and equal
    # on an idle one) for these long, thin operands.
    if cols.shape[1] >= O:
        gw_cols = matmul(cols.T, gy_rows)                              # (kh*kw*C, O)
        return gw_cols.reshape(kh, kw, C, O).transpose(3, 2, 0, 1)     # (O, C, kh, kw)
    gw_rows = matmul(gy_rows.T, cols)                                  # (O, kh*kw*C)
    return gw_rows.reshape(O, kh, kw, C).transpose(0, 3, 1, 2)         # (O, C, kh, kw)
