"""tinygan.functional's padding, resizing and small helpers against NumPy references of their docstrings (torch-free).

PyTorch parity for these lives in tests/test_pytorch_idioms.py and tests/test_parity_torch.py; this file
checks the same promises with PyTorch missing, and is one of the ``functional`` mutation group's files:
``F.pad`` in its four modes (NumPy's ``np.pad`` is the reference: constant, reflect, edge, wrap) and its
crop by negative amounts, ``F.interpolate`` (nearest in any number of dims, bilinear with and without
``align_corners``) against loops over PyTorch's documented source coordinates, every gradient by its
adjoint identity <f(x), g> = <x, f^T(g)>, every error message, and ``one_hot``, ``l1_loss``, ``softmax``.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import tinygan as tg
import tinygan.functional as F
from tinygan.testing import gradcheck

RNG = np.random.default_rng(0)


def _t(a, grad=False):
    return tg.Tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def _adjoint(f, x_np):
    """f(x), a random g and f^T(g) by autograd: for a linear f, <f(x), g> must equal <x, f^T(g)>."""
    x = _t(x_np, grad=True)
    y = f(x)
    g = RNG.standard_normal(y.shape)
    (gx,) = tg.grad((y * _t(g)).sum(), x)
    return y.numpy(), g, gx.numpy()


def _check_adjoint(f, x_np):
    """For an affine f (a pad with a value), the identity holds for its linear part f(x) - f(0)."""
    y, g, gx = _adjoint(f, x_np)
    y0 = f(_t(np.zeros_like(x_np))).numpy()
    np.testing.assert_allclose(np.sum((y - y0) * g), np.sum(x_np * gx), rtol=1e-10)
    return y, g, gx


# ---------------------------------------------------------------------------- pad

def _np_pairs(ndim, pad):
    """torch's flat pad tuple (last dim first) -> np.pad's pairs (first dim first)."""
    pairs = [(0, 0)] * ndim
    for k in range(len(pad) // 2):
        pairs[ndim - 1 - k] = (pad[2 * k], pad[2 * k + 1])
    return pairs


@pytest.mark.parametrize("pad", [(1, 2), (0, 3), (2, 0, 1, 1), (1, 1, 0, 2, 1, 0), (0, 0), (3, 1, 0, 0)])
@pytest.mark.parametrize("value", [None, 0.0, -2.5])
def test_constant_pad_is_np_pad(pad, value):
    x = RNG.standard_normal((2, 3, 4))
    y, g, gx = _check_adjoint(lambda t: F.pad(t, pad, value=value), x)
    ref = np.pad(x, _np_pairs(3, pad), constant_values=0.0 if value is None else value)
    assert y.shape == ref.shape
    np.testing.assert_array_equal(y, ref)
    crop = tuple(slice(lo, g.shape[d] - hi) for d, (lo, hi) in enumerate(_np_pairs(3, pad)))
    np.testing.assert_array_equal(gx, g[crop])                       # the gradient crops the border off


@pytest.mark.parametrize("pad", [(-1, 0), (0, -2), (-1, -1, 1, -2), (-1, 2), (2, -3, -1, 0), (6, -1), (-2, -3)])
def test_negative_constant_pad_crops(pad):
    x = RNG.standard_normal((2, 4, 5))
    y, g, gx = _check_adjoint(lambda t: F.pad(t, pad, value=7.0), x)
    ref = x
    for d, (lo, hi) in enumerate(_np_pairs(3, pad)):               # crop the negative sides, then pad
        n = ref.shape[d]
        ref = ref[(slice(None),) * d + (slice(max(0, -lo), n - max(0, -hi)),)]
        ref = np.pad(ref, [(0, 0)] * d + [(max(0, lo), max(0, hi))] + [(0, 0)] * (2 - d), constant_values=7.0)
    assert y.shape == ref.shape
    np.testing.assert_array_equal(y, ref)


@pytest.mark.parametrize("mode,np_mode", [("reflect", "reflect"), ("replicate", "edge"), ("circular", "wrap")])
@pytest.mark.parametrize("shape,pad", [((1, 2, 5), (2, 3)), ((2, 3, 4), (0, 3, 2, 1)), ((1, 1, 3, 3), (2, 2, 2, 2)),
                                       ((1, 2, 6), (5, 0)), ((2, 4), (1, 0, 0, 3)), ((1, 2, 4), (0, 0))])
def test_gather_pads_are_np_pad(mode, np_mode, shape, pad):
    x = RNG.standard_normal(shape)
    room = [n - (mode == "reflect") - max(lo, hi) for n, (lo, hi) in zip(shape, _np_pairs(len(shape), pad))
            if lo or hi]
    if min(room, default=0) < 0:                                       # more than the mode allows: refused
        with pytest.raises(ValueError, match=rf"^pad: mode '{mode}' needs padding between 0 and "):
            F.pad(_t(x), pad, mode=mode)
        return
    y, g, gx = _check_adjoint(lambda t: F.pad(t, pad, mode=mode), x)
    ref = np.pad(x, _np_pairs(len(shape), pad), mode=np_mode)
    assert y.shape == ref.shape
    np.testing.assert_array_equal(y, ref)
    # The gradient adds each output back onto the entry it was read from: the same gather, reversed.
    ids = np.pad(np.arange(x.size).reshape(shape), _np_pairs(len(shape), pad), mode=np_mode)
    ref_gx = np.zeros(x.size)
    np.add.at(ref_gx, ids.ravel(), g.ravel())
    np.testing.assert_allclose(gx, ref_gx.reshape(shape), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mode", ["replicate", "circular"])
def test_replicate_and_circular_pad_a_dim_of_one(mode):
    x = RNG.standard_normal((2, 1))
    np.testing.assert_array_equal(F.pad(_t(x), (1, 1), mode=mode).numpy(), np.repeat(x, 3, axis=1))


@pytest.mark.parametrize("args,kwargs,error,message", [
    (((1,),), {}, TypeError, r"^pad: pad must be a tuple of ints of even length \(left, right, top, bottom, \.\.\.\), "
                             r"got \(1,\)$"),
    (([1, 1.0],), {}, TypeError, r"got \[1, 1\.0\]$"),
    ((3,), {}, TypeError, r"got 3$"),
    (((1, 1, 1, 1, 1, 1, 1, 1),), {}, ValueError,
     r"^pad: pad \(1, 1, 1, 1, 1, 1, 1, 1\) has 4 pairs for an input with 3 dims$"),
    (((-3, -2),), {}, ValueError, r"^pad: padding \(\(0, 0\), \(0, 0\), \(-3, -2\)\) gives a negative output shape "
                                  r"\(2, 3, -1\) for an input of shape \(2, 3, 4\)$"),
    (((1, 1),), {"mode": "wrap"}, ValueError,
     r"^pad: mode must be 'constant', 'reflect', 'replicate' or 'circular', got 'wrap'$"),
    (((1, 1),), {"mode": "reflect", "value": 1.0}, ValueError,
     r"^pad: value is only used by mode='constant', got value=1\.0 with mode='reflect'$"),
    (((4, 0),), {"mode": "reflect"}, ValueError,
     r"^pad: mode 'reflect' needs padding between 0 and 3 for a dim of size 4, got \(4, 0\) for dim 2 "
     r"\(input \(2, 3, 4\)\)$"),
    (((0, 5),), {"mode": "circular"}, ValueError, r"needs padding between 0 and 4 for a dim of size 4, got \(0, 5\)"),
    (((0, 0, -1, 0),), {"mode": "replicate"}, ValueError,
     r"^pad: mode 'replicate' needs padding between 0 and 3 for a dim of size 3, got \(-1, 0\) for dim 1"),
])
def test_pad_errors(args, kwargs, error, message):
    with pytest.raises(error, match=message):
        F.pad(_t(np.zeros((2, 3, 4))), *args, **kwargs)


def test_constant_pad_keeps_the_dtype_and_pads_zeros_by_default():
    x = RNG.standard_normal((2, 3)).astype(np.float32)
    y = F.pad(tg.Tensor(x), (1, 1), value=0.5)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y.numpy(), np.pad(x, [(0, 0), (1, 1)], constant_values=0.5))
    np.testing.assert_array_equal(F.Pad(((1, 0), (0, 2)))(tg.Tensor(x)).numpy(), np.pad(x, [(1, 0), (0, 2)]))


def test_pad_accepts_numpy_ints_and_zero_value_in_gather_modes():
    x = RNG.standard_normal((2, 5))
    got = F.pad(_t(x), (np.int64(1), np.int32(2)), mode="reflect", value=0).numpy()
    np.testing.assert_array_equal(got, np.pad(x, [(0, 0), (1, 2)], mode="reflect"))


def test_pad_refuses_integer_tensors():
    with pytest.raises(TypeError, match=r"^pad: "):
        F.pad(tg.Tensor(np.zeros((2, 3), dtype=np.int64)), (1, 1))


# ---------------------------------------------------------------------------- interpolate

def _nearest_ref(x, out, scales):
    """y[..., i, j, ...] = x[..., src_0(i), src_1(j), ...], src(i) = min(floor(i * s), n_in - 1) in float32 (torch)."""
    y = x
    for d, (n_out, s) in enumerate(zip(out, scales)):
        n_in = y.shape[2 + d]
        s = np.float32(n_in / n_out) if s is None else np.float32(s)
        src = [min(int(math.floor(np.float32(i) * s)), n_in - 1) for i in range(n_out)]
        y = np.take(y, src, axis=2 + d)
    return y


@pytest.mark.parametrize("shape,kwargs,out,scales", [
    ((2, 3, 4, 5), {"scale_factor": 2}, (8, 10), (0.5, 0.5)),
    ((1, 2, 5, 7), {"scale_factor": 0.5}, (2, 3), (2.0, 2.0)),
    ((1, 2, 5, 7), {"scale_factor": (1.5, 3)}, (7, 21), (1 / 1.5, 1 / 3)),
    ((1, 2, 5, 7), {"size": (3, 11)}, (3, 11), (None, None)),
    ((1, 2, 5, 7), {"size": 4}, (4, 4), (None, None)),
    ((1, 2, 5, 7), {"scale_factor": 1.7, "recompute_scale_factor": True}, (8, 11), (None, None)),
    ((1, 2, 5, 7), {"scale_factor": 1.7}, (8, 11), (1 / 1.7, 1 / 1.7)),        # 1/1.7 is not 5/8: i = 5 -> 2, not 3
    ((1, 2, 3, 4), {"scale_factor": 0.4}, (1, 1), (2.5, 2.5)),                # one pixel is enough
    ((1, 2, 14, 3), {"size": (20, 3)}, (20, 3), (None, None)),  # float32: 10 * 0.7f rounds to 7 (float64 gives 6.99...)
    ((2, 3, 6), {"scale_factor": 1.5}, (9,), (1 / 1.5,)),                    # one spatial dim
    ((1, 2, 3, 4, 5), {"size": (6, 2, 5)}, (6, 2, 5), (None, None, None)),    # three
])
def test_nearest_follows_torchs_source_index(shape, kwargs, out, scales):
    x = RNG.standard_normal(shape)
    y, g, gx = _check_adjoint(lambda t: F.interpolate(t, mode="nearest", **kwargs), x)
    assert y.shape == shape[:2] + out
    np.testing.assert_array_equal(y, _nearest_ref(x, out, scales))


def _bilinear_ref(x, out, scales, align_corners):
    """Each output pixel from its 4 neighbours at torch's source coordinate (see F._linear_matrix's docstring)."""
    N, C, H, W = x.shape
    Ho, Wo = out

    def source(dst, n_in, n_out, s):
        if align_corners:
            return dst * (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
        s = n_in / n_out if s is None else s
        return max((dst + 0.5) * s - 0.5, 0.0)

    y = np.zeros((N, C, Ho, Wo))
    for i in range(Ho):
        r = source(i, H, Ho, scales[0])
        r0 = min(int(math.floor(r)), H - 1)
        r1, lr = min(r0 + 1, H - 1), r - r0
        for j in range(Wo):
            c = source(j, W, Wo, scales[1])
            c0 = min(int(math.floor(c)), W - 1)
            c1, lc = min(c0 + 1, W - 1), c - c0
            y[:, :, i, j] = ((1 - lr) * ((1 - lc) * x[:, :, r0, c0] + lc * x[:, :, r0, c1])
                             + lr * ((1 - lc) * x[:, :, r1, c0] + lc * x[:, :, r1, c1]))
    return y


@pytest.mark.parametrize("align_corners", [False, True, None])
@pytest.mark.parametrize("kwargs,out,scales", [
    ({"scale_factor": 2}, (8, 10), (0.5, 0.5)),
    ({"scale_factor": 0.5}, (2, 2), (2.0, 2.0)),
    ({"scale_factor": (1.5, 0.75)}, (6, 3), (1 / 1.5, 1 / 0.75)),
    ({"size": (7, 1)}, (7, 1), (None, None)),
    ({"size": (1, 9)}, (1, 9), (None, None)),
    ({"scale_factor": 1.3, "recompute_scale_factor": True}, (5, 6), (None, None)),
    ({"scale_factor": 1.3}, (5, 6), (1 / 1.3, 1 / 1.3)),                     # 1/1.3 is not 4/5 nor 5/6
])
def test_bilinear_follows_torchs_source_coordinates(align_corners, kwargs, out, scales):
    x = RNG.standard_normal((2, 3, 4, 5))
    y, g, gx = _check_adjoint(lambda t: F.interpolate(t, mode="bilinear", align_corners=align_corners, **kwargs), x)
    assert y.shape == (2, 3) + out
    np.testing.assert_allclose(y, _bilinear_ref(x, out, scales, bool(align_corners)), rtol=1e-12, atol=1e-12)


def test_bilinear_keeps_float32():
    x = RNG.standard_normal((1, 2, 3, 3)).astype(np.float32)
    y = F.interpolate(tg.Tensor(x), scale_factor=2, mode="bilinear")
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.numpy(), _bilinear_ref(x.astype(np.float64), (6, 6), (0.5, 0.5), False), rtol=1e-5,
                               atol=1e-6)


def test_interpolate_refuses_integer_tensors():
    with pytest.raises(TypeError, match=r"^interpolate: "):
        F.interpolate(tg.Tensor(np.zeros((1, 1, 2, 2), dtype=np.int64)), scale_factor=2)


def test_same_size_nearest_is_the_input_itself():
    x = _t(RNG.standard_normal((1, 2, 3, 4)))
    assert F.interpolate(x, size=(3, 4)) is x


@pytest.mark.parametrize("shape,kwargs,message", [
    ((1, 2, 3, 4), {}, r"^interpolate: give exactly one of size and scale_factor$"),
    ((1, 2, 3, 4), {"size": 4, "scale_factor": 2}, r"^interpolate: give exactly one of size and scale_factor$"),
    ((1, 2, 3, 4), {"size": (4, 4, 4)}, r"^interpolate: size \(4, 4, 4\) does not fit an input with spatial shape "
                                        r"\(3, 4\)$"),
    ((1, 2, 3, 4), {"size": (4, 0)}, r"^interpolate: size \(4, 0\) does not fit"),
    ((1, 2, 3, 4), {"scale_factor": (2, 2, 2)}, r"^interpolate: scale_factor \(2, 2, 2\) does not fit an input with "
                                                r"spatial shape \(3, 4\)$"),
    ((1, 2, 3, 4), {"scale_factor": 0}, r"^interpolate: scale_factor 0 does not fit"),
    ((1, 2, 3, 4), {"scale_factor": -1.0}, r"^interpolate: scale_factor -1\.0 does not fit"),
    ((1, 2, 3, 4), {"scale_factor": 0.2}, r"^interpolate: scale_factor 0\.2 gives an empty output for spatial shape "
                                          r"\(3, 4\)$"),
    ((1, 2, 3, 4), {"size": 2, "align_corners": False}, r"^interpolate: align_corners only applies to mode "
                                                        r"'bilinear', not 'nearest'$"),
    ((1, 2, 3, 4), {"size": 2, "mode": "bicubic"}, r"^interpolate: mode must be 'nearest' or 'bilinear', "
                                                   r"got 'bicubic'$"),
    ((1, 2, 3), {"size": 2, "mode": "bilinear"}, r"^interpolate: mode 'bilinear' needs a 4-D input \(N, C, H, W\), "
                                                 r"got shape \(1, 2, 3\)$"),
    ((2, 3), {"size": 2}, r"^interpolate: expected an input \(N, C, \.\.\.\) with at least one spatial dim, "
                          r"got shape \(2, 3\)$"),
])
def test_interpolate_errors(shape, kwargs, message):
    with pytest.raises(ValueError, match=message):
        F.interpolate(_t(np.zeros(shape)), **kwargs)


# ---------------------------------------------------------------------------- one_hot, l1_loss, softmax

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_one_hot(dtype):
    labels = np.array([2, 0, 3, 3, 1])
    for given in (labels, tg.Tensor(labels), labels.tolist()):
        y = F.one_hot(given, 4, dtype=dtype)
        assert y.dtype == dtype and y.shape == (5, 4) and not y.requires_grad
        np.testing.assert_array_equal(y.numpy(), np.eye(4, dtype=dtype)[labels])
    like = _t(np.zeros(1))
    np.testing.assert_array_equal(F.one_hot(labels[:2], 5, like=like).numpy(), np.eye(5)[[2, 0]])


@pytest.mark.parametrize("reduction,ref", [("mean", np.mean), ("sum", np.sum), ("none", lambda a: a)])
def test_l1_loss(reduction, ref):
    x, t = RNG.standard_normal((3, 4)), RNG.standard_normal((3, 4))
    xt = _t(x, grad=True)
    loss = F.l1_loss(xt, _t(t), reduction=reduction)
    if reduction == "mean":                                            # the default
        np.testing.assert_array_equal(F.l1_loss(xt, _t(t)).numpy(), loss.numpy())
    np.testing.assert_allclose(loss.numpy(), ref(np.abs(x - t)), rtol=1e-12)
    (gx,) = tg.grad(loss.sum(), xt)
    np.testing.assert_allclose(gx.numpy(), np.sign(x - t) / (x.size if reduction == "mean" else 1), rtol=1e-12)
    with pytest.raises(ValueError, match=r"^l1_loss: "):
        F.l1_loss(xt, _t(t), reduction="max")
    with pytest.raises(ValueError, match=r"^l1_loss: "):
        F.l1_loss(xt, _t(t[:, :3]))
    with pytest.raises(TypeError, match=r"^l1_loss: "):
        F.l1_loss(tg.Tensor(np.zeros(3, dtype=np.int64)), _t(np.zeros(3)))


@pytest.mark.parametrize("dim", [-1, 0, 1])
def test_softmax(dim):
    x = RNG.standard_normal((3, 4)) + 1000.0                         # stable: the max is subtracted first
    xt = _t(x, grad=True)
    s = F.softmax(xt, dim=dim)
    e = np.exp(x - x.max(axis=dim, keepdims=True))
    ref = e / e.sum(axis=dim, keepdims=True)
    np.testing.assert_allclose(s.numpy(), ref, rtol=1e-12)
    np.testing.assert_allclose(F.log_softmax(xt, dim=dim).numpy(), np.log(ref), rtol=1e-12, atol=1e-12)
    g = RNG.standard_normal(x.shape)
    (gx,) = tg.grad((s * _t(g)).sum(), xt)
    np.testing.assert_allclose(gx.numpy(), ref * (g - (g * ref).sum(axis=dim, keepdims=True)), rtol=1e-10,
                               atol=1e-12)
    with pytest.raises(TypeError, match=r"^softmax: "):
        F.softmax(tg.Tensor(np.zeros(3, dtype=np.int64)))


# ---------------------------------------------------------------------------- conv2d's string padding

@pytest.mark.parametrize("kernel", [(1, 1), (3, 3), (2, 2), (4, 3), (3, 4), (5, 2)])
def test_conv2d_same_padding_is_torchs(kernel):
    """'same': total padding k - 1 per dim, floor half before and the rest after (torch); 'valid': none."""
    from tinygan.kernels.reference import conv2d_ref
    x, w = RNG.standard_normal((2, 3, 6, 7)), RNG.standard_normal((4, 3, *kernel))
    before = [(k - 1) // 2 for k in kernel]
    after = [k - 1 - b for k, b in zip(kernel, before)]
    x_pad = np.pad(x, [(0, 0), (0, 0), (before[0], after[0]), (before[1], after[1])])
    y = F.conv2d(_t(x), _t(w), padding="same").numpy()
    assert y.shape == (2, 4, 6, 7)
    np.testing.assert_allclose(y, conv2d_ref(x_pad, w), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(F.conv2d(_t(x), _t(w), padding="valid").numpy(), conv2d_ref(x, w), rtol=1e-10,
                               atol=1e-12)


def test_conv2d_string_padding_errors():
    x, w = _t(np.zeros((1, 2, 5, 5))), _t(np.zeros((3, 2, 3, 3)))
    with pytest.raises(TypeError, match=r"^conv2d: padding must be an int or a pair of ints, got 'full' \(str\); "
                                        r"the strings it takes are 'same' and 'valid'$"):
        F.conv2d(x, w, padding="full")
    with pytest.raises(ValueError, match=r"^conv2d: padding='same' is not supported for strided convolutions "
                                         r"\(stride \(2, 1\)\)$"):
        F.conv2d(x, w, stride=(2, 1), padding="same")
    with pytest.raises(ValueError, match=r"^conv2d: padding='same' needs a 4-D weight \(O, C, kh, kw\)$"):
        F.conv2d(x, _t(np.zeros((3, 2, 3))), padding="same")


# ---------------------------------------------------------------------------- the losses' defaults and messages

def test_logsigmoid_is_log_of_the_sigmoid():
    x = np.array([-30.0, -2.0, 0.0, 1.5, 30.0])
    np.testing.assert_allclose(F.logsigmoid(_t(x)).numpy(), -np.logaddexp(0.0, -x), rtol=1e-12)


@pytest.mark.parametrize("loss,ref", [
    (F.mse_loss, lambda x, t: np.square(x - t)),
    (F.binary_cross_entropy_with_logits, lambda x, t: np.logaddexp(0.0, x) - t * x),
])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none", None])
def test_pointwise_losses_reduce_and_differentiate(loss, ref, reduction):
    x, t = RNG.standard_normal((3, 4)), RNG.uniform(size=(3, 4))
    xt, tt = _t(x, grad=True), _t(t, grad=True)
    kwargs = {} if reduction is None else {"reduction": reduction}     # None: the default, mean
    out = loss(xt, tt, **kwargs)
    each = ref(x, t)
    expected = each.sum() if reduction == "sum" else each if reduction == "none" else each.mean()
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12)
    gradcheck(lambda a, b: loss(a, b, **kwargs), [xt, tt])           # both gradients, finite differences


@pytest.mark.parametrize("loss,name", [(F.mse_loss, "mse_loss"), (F.l1_loss, "l1_loss"),
                                       (F.binary_cross_entropy_with_logits, "binary_cross_entropy_with_logits")])
def test_pointwise_loss_messages_name_the_loss(loss, name):
    x = _t(np.zeros((2, 3)))
    with pytest.raises(TypeError, match=rf"^{name}: input must be a floating-point tensor"):
        loss(tg.Tensor(np.zeros((2, 3), dtype=np.int64)), x)
    with pytest.raises(ValueError, match=rf"^{name}: reduction must be 'mean', 'sum' or 'none', got 'max'$"):
        loss(x, x, reduction="max")
    with pytest.raises(ValueError, match=rf"^{name}: input of shape \(2, 3\) and target of shape \(3, 2\) must match$"):
        loss(x, _t(np.zeros((3, 2))))


def test_cross_entropy_default_and_messages():
    logits, labels = RNG.standard_normal((4, 3)), np.array([2, 0, 1, 2])
    lt = _t(logits)
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    each = -log_p[np.arange(4), labels]
    np.testing.assert_allclose(F.cross_entropy(lt, labels).numpy(), each.mean(), rtol=1e-12)
    np.testing.assert_allclose(F.cross_entropy(lt, tg.Tensor(labels), reduction="none").numpy(), each, rtol=1e-12)
    with pytest.raises(TypeError, match=r"^cross_entropy: input must be a floating-point tensor"):
        F.cross_entropy(tg.Tensor(labels[:, None].repeat(3, 1)), labels)
    with pytest.raises(ValueError, match=r"^cross_entropy: reduction must be 'mean', 'sum' or 'none', got 'max'$"):
        F.cross_entropy(lt, labels, reduction="max")
    with pytest.raises(ValueError, match=r"^cross_entropy: expected logits \(N, K\) and integer targets \(N,\)"):
        F.cross_entropy(lt, labels.astype(np.float64))
    with pytest.raises(ValueError, match=r"^cross_entropy: targets must lie in \[0, 3\), got min 0 max 3$"):
        F.cross_entropy(lt, np.array([0, 3, 1, 1]))


@pytest.mark.parametrize("create_graph", [False, True])
def test_bce_with_logits_gradient_for_a_constant_target(create_graph):
    """The usual case (labels need no gradient), also under create_graph (a gradient penalty through D's loss)."""
    x, t = RNG.standard_normal(5), np.array([1.0, 0.0, 1.0, 0.0, 0.5])
    xt = _t(x, grad=True)
    (gx,) = tg.grad(F.binary_cross_entropy_with_logits(xt, t), xt, create_graph=create_graph)
    sig = 1.0 / (1.0 + np.exp(-x))
    np.testing.assert_allclose(gx.numpy(), (sig - t) / 5, rtol=1e-12)
    if create_graph:                                                   # d/dx of sum(gx) = sigma'(x) / 5
        (hx,) = tg.grad(gx.sum(), xt)
        np.testing.assert_allclose(hx.numpy(), sig * (1 - sig) / 5, rtol=1e-12)


def test_log_softmax_names_itself():
    with pytest.raises(TypeError, match=r"^log_softmax: input must be a floating-point tensor"):
        F.log_softmax(tg.Tensor(np.zeros(3, dtype=np.int64)))


def test_binary_cross_entropy_clamps_its_logs_at_minus_100():
    """-[t log p + (1 - t) log(1 - p)] with log clamped at -100 (PyTorch), and gradients finite at p = 0 and 1."""
    p = np.array([0.0, 1.0, 0.3, 1e-14, np.exp(-100.5), 0.999])
    t = np.array([1.0, 0.0, 0.6, 0.0, 1.0, 1.0])
    clamp = lambda a: np.maximum(a, -100.0)                            # noqa: E731
    with np.errstate(divide="ignore"):
        each = -(t * clamp(np.log(p)) + (1 - t) * clamp(np.log(1 - p)))
        dt = clamp(np.log(1 - p)) - clamp(np.log(p))
    pt, tt = _t(p, grad=True), _t(t, grad=True)
    np.testing.assert_allclose(F.binary_cross_entropy(pt, tt).numpy(), each.mean(), rtol=1e-12)   # default: mean
    np.testing.assert_allclose(F.binary_cross_entropy(pt, tt, reduction="none").numpy(), each, rtol=1e-12)
    gp, gt = tg.grad(F.binary_cross_entropy(pt, tt, reduction="sum"), [pt, tt])
    np.testing.assert_allclose(gp.numpy(), (p - t) / np.maximum(p * (1 - p), 1e-12), rtol=1e-12)
    np.testing.assert_allclose(gt.numpy(), dt, rtol=1e-12)
    (gp_only,) = tg.grad(F.binary_cross_entropy(pt, t, reduction="sum"), pt)   # a constant target
    np.testing.assert_allclose(gp_only.numpy(), gp.numpy(), rtol=1e-12)
    name = "binary_cross_entropy"
    with pytest.raises(TypeError, match=rf"^{name}: input must be a floating-point tensor"):
        F.binary_cross_entropy(tg.Tensor(np.zeros(3, dtype=np.int64)), t[:3])
    with pytest.raises(ValueError, match=rf"^{name}: input of shape \(6,\) and target of shape \(2,\) must match$"):
        F.binary_cross_entropy(pt, t[:2])
    with pytest.raises(ValueError, match=rf"^{name}: reduction must be 'mean', 'sum' or 'none', got 'max'$"):
        F.binary_cross_entropy(pt, tt, reduction="max")


# ---------------------------------------------------------------------------- batch norm over "several processes"

def _two_ranks():
    """allreduce for two simulated processes that hold the same half batch: the sum is twice each one's part."""
    return lambda a: 2.0 * a


@pytest.mark.parametrize("affine", [True, False])
def test_sync_batch_norm_of_two_equal_halves_is_batch_norm_of_one(affine):
    """Two processes holding the same batch have that batch's statistics: forward and backward equal the plain ones
    (the all-reduce sums counts and sums alike), through F.sync_batch_norm's hook."""
    x, g = RNG.standard_normal((4, 3, 2, 2)), RNG.standard_normal((4, 3, 2, 2))
    w, b = (RNG.standard_normal(3), RNG.standard_normal(3)) if affine else (None, None)
    results = []
    for hook in (None, _two_ranks()):
        xt = _t(x, grad=True)
        wt, bt = (_t(w, grad=True), _t(b, grad=True)) if affine else (None, None)
        if hook is None:
            y = F.batch_norm(xt, None, None, wt, bt, training=True)
        else:
            with F.sync_batch_norm(hook):
                y = F.batch_norm(xt, None, None, wt, bt, training=True)
        grads = tg.grad((y * _t(g)).sum(), [xt] + ([wt, bt] if affine else []))
        results.append([y.numpy()] + [a.numpy() for a in grads])
    for plain, synced in zip(*results):
        np.testing.assert_allclose(synced, plain, rtol=1e-10, atol=1e-12)


def test_sync_batch_norm_refuses_a_second_derivative():
    xt = _t(RNG.standard_normal((4, 3)), grad=True)
    with F.sync_batch_norm(_two_ranks()):
        y = F.batch_norm(xt, None, None, training=True)
    with pytest.raises(RuntimeError, match=r"^batch norm with statistics over several processes \(--sync-bn\) has no "
                                           r"second derivative: a penalty that differentiates D twice \(R1, the "
                                           r"gradient penalty\) needs a critic without batch norm, or a run without "
                                           r"--sync-bn$"):
        tg.grad((y * y).sum(), xt, create_graph=True)


# ---------------------------------------------------------------------------- argument checks of the activations and layers

@pytest.mark.parametrize("fn,name", [(F.relu, "relu"), (F.softplus, "softplus"), (F.leaky_relu, "leaky_relu")])
def test_activations_refuse_integer_tensors_by_name(fn, name):
    with pytest.raises(TypeError, match=rf"^{name}: input must be a floating-point tensor"):
        fn(tg.Tensor(np.zeros(3, dtype=np.int64)))


def test_every_tensor_argument_is_checked_even_after_a_missing_one():
    x = _t(RNG.standard_normal((4, 3)))
    with pytest.raises(TypeError, match=r"^batch_norm: bias must be a floating-point tensor"):
        F.batch_norm(x, None, None, None, tg.Tensor(np.zeros(3, dtype=np.int64)), training=True)
    xs, w = _t(np.zeros((1, 2, 4, 4))), _t(np.zeros((3, 2, 3, 3)))
    with pytest.raises(TypeError, match=r"^conv2d: all tensors must have the same dtype, got input float64, "
                                        r"weight float64, bias float32$"):
        F.conv2d(xs, w, bias=tg.Tensor(np.zeros(3, dtype=np.float32)))


def test_layer_norm_default_eps_is_torchs():
    x = 1e-3 * RNG.standard_normal((2, 5))                          # variance ~1e-6: eps matters
    mu, var = x.mean(axis=1, keepdims=True), x.var(axis=1, keepdims=True)
    np.testing.assert_allclose(F.layer_norm(_t(x), (5,)).numpy(), (x - mu) / np.sqrt(var + 1e-5), rtol=1e-10)


def test_a_plain_target_takes_the_inputs_dtype():
    x = tg.Tensor(RNG.standard_normal(3).astype(np.float32))
    loss = F.mse_loss(x, [0.5, 0.25, 1.0], reduction="none")
    assert loss.dtype == np.float32
    np.testing.assert_allclose(loss.numpy(), np.square(x.numpy() - np.float32([0.5, 0.25, 1.0])), rtol=1e-6)


# ---------------------------------------------------------------------------- linear and the convolutions' arguments

def test_linear_names_each_argument_it_refuses():
    x, w, b = _t(np.zeros((2, 3))), _t(np.zeros((4, 3))), _t(np.zeros(4))
    ints = tg.Tensor(np.zeros(3, dtype=np.int64))
    for kwargs, name in (({"x": ints}, "input"), ({"weight": ints}, "weight"), ({"bias": ints}, "bias")):
        args = {"x": x, "weight": w, "bias": b, **kwargs}
        with pytest.raises(TypeError, match=rf"^linear: {name} must be a floating-point tensor"):
            F.linear(args["x"], args["weight"], args["bias"])
    with pytest.raises(ValueError, match=r"^linear: input of shape \(2, 5\) does not match weight of shape \(4, 3\) "
                                         r"\(need input \(\.\.\., 3\) and weight \(out, in\)\)$"):
        F.linear(_t(np.zeros((2, 5))), w)
    with pytest.raises(ValueError, match=r"\(need input \(\.\.\., in\) and weight \(out, in\)\)$"):
        F.linear(x, _t(np.zeros(3)))                                 # a 1-D weight has no "in" to name
    with pytest.raises(ValueError, match=r"^linear: input of shape \(\) does not match"):
        F.linear(_t(1.0), w)                                         # a scalar input, even with a 2-D weight


def test_linear_takes_a_vector_input_as_torch():
    x, w, b = RNG.standard_normal(3), RNG.standard_normal((4, 3)), RNG.standard_normal(4)
    np.testing.assert_allclose(F.linear(_t(x), _t(w), _t(b)).numpy(), w @ x + b, rtol=1e-12)
    gradcheck(F.linear, [_t(x, grad=True), _t(w, grad=True), _t(b, grad=True)])
    x3 = RNG.standard_normal((2, 5, 3))                              # any leading axes
    np.testing.assert_allclose(F.linear(_t(x3), _t(w)).numpy(), x3 @ w.T, rtol=1e-12)


def test_conv_transpose2d_defaults_and_argument_names():
    x, w = RNG.standard_normal((1, 2, 3, 3)), RNG.standard_normal((2, 1, 2, 2))
    y = F.conv_transpose2d(_t(x), _t(w)).numpy()                     # stride 1, padding 0: 3 + 2 - 1 = 4
    ref = np.zeros((1, 1, 4, 4))
    for c, i, j, p, q in np.ndindex(2, 3, 3, 2, 2):
        ref[0, 0, i + p, j + q] += x[0, c, i, j] * w[c, 0, p, q]
    np.testing.assert_allclose(y, ref, rtol=1e-12)
    for name in ("stride", "padding", "output_padding"):
        with pytest.raises(TypeError, match=rf"^conv_transpose2d: {name} must be an int or a pair of ints"):
            F.conv_transpose2d(_t(x), _t(w), **{name: 1.5})
    with pytest.raises(ValueError, match=r"^conv_transpose2d: bias of shape \(2,\) does not match 1 output channels"):
        F.conv_transpose2d(_t(x), _t(w), bias=_t(np.zeros(2)))


def test_conv2d_grad_weight_defaults_and_argument_names():
    x, gy = RNG.standard_normal((2, 2, 4, 4)), RNG.standard_normal((2, 3, 3, 3))
    gw = F.conv2d_grad_weight(_t(x), _t(gy), 2).numpy()              # stride 1, padding 0: 4 - 2 + 1 = 3
    ref = np.einsum("ncijpq,noij->ocpq",
                    np.lib.stride_tricks.sliding_window_view(x, (2, 2), axis=(2, 3)), gy)
    np.testing.assert_allclose(gw, ref, rtol=1e-12)
    ints = tg.Tensor(np.zeros((2, 2, 4, 4), dtype=np.int64))
    with pytest.raises(TypeError, match=r"^conv2d_grad_weight: input must be a floating-point tensor"):
        F.conv2d_grad_weight(ints, _t(gy), 2)
    with pytest.raises(TypeError, match=r"^conv2d_grad_weight: grad_output must be a floating-point tensor"):
        F.conv2d_grad_weight(_t(x), ints, 2)
    for name in ("stride", "padding", "kernel_size"):
        kwargs = {"kernel_size": 2, name: 1.5}
        with pytest.raises(TypeError, match=rf"^conv2d_grad_weight: {name} must be an int or a pair of ints"):
            F.conv2d_grad_weight(_t(x), _t(gy), **kwargs)


# ---------------------------------------------------------------------------- backward computes only what is asked

_CONV_KERNELS = ("conv2d", "conv2d_grad_input", "conv2d_grad_weight")


@pytest.fixture
def kernel_calls(monkeypatch):
    """Counts the calls of each convolution kernel made through tinygan.functional."""
    from tinygan.kernels import conv as kernels
    calls = dict.fromkeys(_CONV_KERNELS, 0)
    for name in _CONV_KERNELS:
        def counted(*args, _name=name, _f=getattr(kernels, name), **kwargs):
            calls[_name] += 1
            return _f(*args, **kwargs)
        monkeypatch.setattr(kernels, name, counted)
    return calls


@pytest.mark.parametrize("op,shapes,wrt,kernel", [
    # conv2d: dL/dx is a transposed convolution, dL/dw a weight gradient
    (lambda a, b: F.conv2d(a, b, stride=2, padding=1), ((2, 3, 6, 6), (4, 3, 4, 4)), 0, "conv2d_grad_input"),
    (lambda a, b: F.conv2d(a, b, stride=2, padding=1), ((2, 3, 6, 6), (4, 3, 4, 4)), 1, "conv2d_grad_weight"),
    # conv_transpose2d: dL/dx is a convolution, dL/dw a weight gradient with g and x swapped
    (lambda a, b: F.conv_transpose2d(a, b, stride=2, padding=1), ((2, 3, 3, 3), (3, 4, 4, 4)), 0, "conv2d"),
    (lambda a, b: F.conv_transpose2d(a, b, stride=2, padding=1), ((2, 3, 3, 3), (3, 4, 4, 4)), 1,
     "conv2d_grad_weight"),
    # conv2d_grad_weight is bilinear in (x, gy): dL/dx a transposed convolution, dL/dgy a convolution
    (lambda a, b: F.conv2d_grad_weight(a, b, 4, stride=2, padding=1), ((2, 3, 6, 6), (2, 4, 3, 3)), 0,
     "conv2d_grad_input"),
    (lambda a, b: F.conv2d_grad_weight(a, b, 4, stride=2, padding=1), ((2, 3, 6, 6), (2, 4, 3, 3)), 1, "conv2d"),
])
def test_conv_backward_runs_one_kernel_for_one_input(kernel_calls, op, shapes, wrt, kernel):
    """With one input needing a gradient, backward runs that input's kernel alone (D's first layer on images
    needs no dL/dx), and the gradient is right: checked against finite differences of the other input fixed."""
    a, b = (_t(RNG.standard_normal(s), grad=(i == wrt)) for i, s in enumerate(shapes))
    y = op(a, b)
    g = _t(RNG.standard_normal(y.shape))
    before = dict(kernel_calls)
    (grad,) = tg.grad((y * g).sum(), (a, b)[wrt])
    ran = {k: kernel_calls[k] - before[k] for k in _CONV_KERNELS}
    assert ran == {k: int(k == kernel) for k in _CONV_KERNELS}
    other = (a, b)[1 - wrt]
    gradcheck(lambda t: (op(t, other) if wrt == 0 else op(other, t)) * g, [(a, b)[wrt]])
    assert grad.shape == (a, b)[wrt].shape


# ---------------------------------------------------------------------------- batch norm's arguments and paths

def test_batch_norm_defaults_to_evaluation_with_torchs_eps():
    x = RNG.standard_normal((4, 3))
    rm, rv = RNG.standard_normal(3), np.full(3, 1e-4)               # a variance where eps matters
    y = F.batch_norm(_t(x), rm.copy(), rv.copy()).numpy()
    np.testing.assert_allclose(y, (x - rm) / np.sqrt(rv + 1e-5), rtol=1e-12)


@pytest.mark.parametrize("name", ["input", "weight", "bias"])
def test_batch_norm_names_the_integer_tensor(name):
    args = {"input": _t(RNG.standard_normal((4, 3))), "weight": _t(np.ones(3)), "bias": _t(np.zeros(3))}
    args[name] = tg.Tensor(np.ones(args[name].shape, dtype=np.int64))
    with pytest.raises(TypeError, match=rf"^batch_norm: {name} must be a floating-point tensor"):
        F.batch_norm(args["input"], None, None, args["weight"], args["bias"], training=True)


@pytest.mark.parametrize("momentum", [1.5, -0.1, True, "0.1", None])
def test_batch_norm_momentum_must_be_a_number_in_0_1(momentum):
    with pytest.raises(ValueError, match=r"^batch_norm: momentum must be a number in \[0, 1\], got .* "
                                         r"\(nn\.BatchNorm\*d\(momentum=None\) is the cumulative average\)$"):
        F.batch_norm(_t(RNG.standard_normal((4, 3))), np.zeros(3), np.ones(3), training=True, momentum=momentum)


@pytest.mark.parametrize("name", ["weight", "bias", "running_mean", "running_var"])
def test_batch_norm_names_the_argument_of_the_wrong_shape(name):
    args = {"weight": _t(np.ones(3)), "bias": _t(np.zeros(3)), "running_mean": np.zeros(3), "running_var": np.ones(3)}
    args[name] = _t(np.ones(2)) if name in ("weight", "bias") else np.ones(2)
    with pytest.raises(ValueError, match=rf"^batch_norm: {name} of shape \(2,\) does not match the input's 3 channels"):
        F.batch_norm(_t(RNG.standard_normal((4, 3))), args["running_mean"], args["running_var"],
                     args["weight"], args["bias"], training=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batch_norm_takes_tensor_running_statistics_and_keeps_the_dtype(dtype):
    x = RNG.standard_normal((6, 3, 2, 2)).astype(dtype)
    rm, rv = tg.Tensor(np.zeros(3, dtype)), tg.Tensor(np.ones(3, dtype))
    y = F.batch_norm(tg.Tensor(x), rm, rv, training=True, momentum=0.25)
    assert y.dtype == dtype
    m = x.size // 3
    mean, var = x.mean(axis=(0, 2, 3), dtype=np.float64), x.var(axis=(0, 2, 3), dtype=np.float64)
    tol = 1e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(rm.numpy(), 0.25 * mean, rtol=tol, atol=tol)       # the Tensors updated in place
    np.testing.assert_allclose(rv.numpy(), 0.75 + 0.25 * var * m / (m - 1), rtol=tol)
    y = F.batch_norm(tg.Tensor(x), rm, rv)                           # evaluation reads the Tensors
    assert y.dtype == dtype and rm.dtype == dtype and rv.dtype == dtype
    ref = (x - rm.numpy().reshape(1, 3, 1, 1)) / np.sqrt(rv.numpy().reshape(1, 3, 1, 1) + 1e-5)
    np.testing.assert_allclose(y.numpy(), ref, rtol=tol, atol=tol)


def test_batch_norm_in_a_thread_that_never_synced():
    """Batch norm reads sync_batch_norm's all-reduce from a thread-local; a fresh thread has none set."""
    import threading
    out = {}

    def train():
        try:
            out["y"] = F.batch_norm(_t(RNG.standard_normal((4, 3))), None, None, training=True).numpy()
        except Exception as e:                                       # noqa: BLE001 - reported below
            out["error"] = e

    thread = threading.Thread(target=train)
    thread.start()
    thread.join()
    assert "error" not in out, out.get("error")
    np.testing.assert_allclose(out["y"].mean(axis=0), 0, atol=1e-12)


@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("shape", [(8, 3), (4, 3, 5, 5)])
def test_batch_norm_gpu_path_on_numpy_equals_the_fast_path(monkeypatch, affine, shape):
    """The generic path (CuPy's: forward keeps xhat, backward reads it) run on NumPy arrays equals the
    NumPy fast path (keeps no xhat), forward and both gradients; the first is checked by finite differences."""
    x = RNG.standard_normal(shape) * 3 + 1
    w, b = (RNG.standard_normal(3), RNG.standard_normal(3)) if affine else (None, None)
    g = RNG.standard_normal(shape)

    def run():
        xt = _t(x, grad=True)
        wt, bt = (_t(w, grad=True), _t(b, grad=True)) if affine else (None, None)
        y = F.batch_norm(xt, None, None, wt, bt, training=True)
        (y * _t(g)).sum().backward()
        return [y.numpy(), xt.grad.numpy()] + ([wt.grad.numpy(), bt.grad.numpy()] if affine else [])

    fast = run()
    monkeypatch.setattr(F._bn, "fast_path", lambda a: False)
    generic = run()
    for f, s in zip(fast, generic):
        np.testing.assert_allclose(s, f, rtol=1e-10, atol=1e-12)
    args = [_t(x, grad=True)] + ([_t(w, grad=True), _t(b, grad=True)] if affine else [])
    gradcheck(lambda xt, *wb: F.batch_norm(xt, None, None, *(wb or (None, None)), training=True) * _t(g), args)


# ---------------------------------------------------------------------------- leaky_relu with a negative slope

@pytest.mark.parametrize("slope", [-0.5, 1.5])
def test_leaky_relu_mask_path_first_and_second_order(slope):
    """A negative slope (or one above 1) cannot read the slope map off the output: forward keeps a mask."""
    from tinygan.testing import gradgradcheck
    x = RNG.standard_normal((3, 4))
    x[np.abs(x) < 0.05] = 0.5                                        # away from the kink
    y = F.leaky_relu(_t(x), slope).numpy()
    np.testing.assert_array_equal(y, np.where(x > 0, x, slope * x))
    gradcheck(lambda t: F.leaky_relu(t, slope), [_t(x, grad=True)])
    g = RNG.standard_normal(x.shape)
    xt, gt = _t(x, grad=True), _t(g, grad=True)
    (gx,) = tg.grad((F.leaky_relu(xt, slope) * gt).sum(), xt, create_graph=True)
    np.testing.assert_array_equal(gx.numpy(), g * np.where(x > 0, 1.0, slope))
    (ggt,) = tg.grad((gx * _t(x)).sum(), gt)                         # d/dg <g s, x> = s x
    np.testing.assert_array_equal(ggt.numpy(), np.where(x > 0, 1.0, slope) * x)
    gradgradcheck(lambda t: F.leaky_relu(t, slope), [_t(x, grad=True)])


# ---------------------------------------------------------------------------- linear: the fused op vs its composition

@pytest.mark.parametrize("lead", [(), (5,), (2, 3)])
@pytest.mark.parametrize("bias", [False, True])
def test_linear_matches_its_composition(lead, bias):
    """F.linear (one Linear Function) gives the values and gradients of x @ W.T + b (F.linear_ref), float32."""
    x = RNG.standard_normal(lead + (4,)).astype(np.float32)
    w = RNG.standard_normal((3, 4)).astype(np.float32)
    b = RNG.standard_normal(3).astype(np.float32) if bias else None
    g = RNG.standard_normal(lead + (3,)).astype(np.float32)
    results = []
    for fn in (F.linear, F.linear_ref):
        ts = [tg.Tensor(a, requires_grad=True) for a in (x, w) + (() if b is None else (b,))]
        y = fn(*ts)
        (y * tg.Tensor(g)).sum().backward()
        results.append([y.numpy()] + [t.grad.numpy() for t in ts])
        assert y.shape == lead + (3,) and y.dtype == np.float32
    for fused, composed in zip(*results):
        assert fused.dtype == composed.dtype and fused.shape == composed.shape
        np.testing.assert_allclose(fused, composed, rtol=1e-5, atol=1e-5)
    w_t = tg.Tensor(w, requires_grad=True)
    F.linear(tg.Tensor(x), w_t).sum().backward()
    assert w_t.grad._data.flags.c_contiguous            # W's layout: the optimizer reads it without a copy
