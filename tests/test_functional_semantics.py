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
                                           r"second derivative"):
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
