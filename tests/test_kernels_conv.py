"""Tests for the array-level convolution kernels (tinygan.kernels.conv).

Every fast kernel is checked against its loop reference, against the adjoint
identities that define the two gradients, and against PyTorch.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygan.kernels import conv as conv_module
from tinygan.kernels import (
    conv2d,
    conv2d_grad_input,
    conv2d_grad_weight,
    conv_output_size,
    conv_transpose2d,
    conv_transpose_output_size,
)
from conftest import dcgan_examples, require_torch
from tinygan.kernels.reference import (
    conv2d_grad_input_ref,
    conv2d_grad_weight_ref,
    conv2d_ref,
    conv_transpose2d_ref,
)

EXAMPLES = settings(max_examples=40, deadline=None)


# ---------------------------------------------------------------------------
# case generation
# ---------------------------------------------------------------------------

@st.composite
def conv_cases(draw, kernel_multiple_of_stride=False):
    """A small valid conv2d problem: shapes, stride, padding, output_padding, seed."""
    n = draw(st.integers(1, 4))
    c = draw(st.integers(1, 5))
    o = draw(st.integers(1, 5))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    if kernel_multiple_of_stride:   # the space-to-depth (sub-pixel) paths apply
        kh, kw = sh * draw(st.integers(1, 6 // sh)), sw * draw(st.integers(1, 6 // sw))
    else:
        kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    # spatial sizes chosen independently (non-square), large enough for one output
    h = draw(st.integers(max(1, kh - 2 * ph), max(1, kh - 2 * ph) + 8))
    w = draw(st.integers(max(1, kw - 2 * pw), max(1, kw - 2 * pw) + 8))
    oph, opw = draw(st.integers(0, sh - 1)), draw(st.integers(0, sw - 1))
    seed = draw(st.integers(0, 2**31 - 1))
    return dict(n=n, c=c, o=o, h=h, w=w, k=(kh, kw), s=(sh, sw), p=(ph, pw),
                op=(oph, opw), seed=seed)


def _transpose_output_hw(case):
    kh, kw = case["k"]
    (sh, sw), (ph, pw), (oph, opw) = case["s"], case["p"], case["op"]
    hin = conv_output_size(case["h"], kh, sh, ph)
    win = conv_output_size(case["w"], kw, sw, pw)
    return (conv_transpose_output_size(hin, kh, sh, ph, oph),
            conv_transpose_output_size(win, kw, sw, pw, opw))


def transpose_cases():
    """conv_cases whose transposed convolution has a non-empty output."""
    return conv_cases().filter(lambda case: min(_transpose_output_hw(case)) >= 1)


def make_conv_arrays(case, dtype=np.float64):
    """x (N,C,H,W), w (O,C,kh,kw) and an output gradient gy (N,O,Ho,Wo)."""
    rng = np.random.default_rng(case["seed"])
    kh, kw = case["k"]
    x = rng.standard_normal((case["n"], case["c"], case["h"], case["w"])).astype(dtype)
    w = rng.standard_normal((case["o"], case["c"], kh, kw)).astype(dtype)
    ho = conv_output_size(case["h"], kh, case["s"][0], case["p"][0])
    wo = conv_output_size(case["w"], kw, case["s"][1], case["p"][1])
    gy = rng.standard_normal((case["n"], case["o"], ho, wo)).astype(dtype)
    return x, w, gy


def make_transpose_arrays(case, dtype=np.float64):
    """u (N,Cin,Hin,Win) and w (Cin,Cout,kh,kw) for conv_transpose2d."""
    rng = np.random.default_rng(case["seed"])
    kh, kw = case["k"]
    hin = conv_output_size(case["h"], kh, case["s"][0], case["p"][0])
    win = conv_output_size(case["w"], kw, case["s"][1], case["p"][1])
    u = rng.standard_normal((case["n"], case["o"], hin, win)).astype(dtype)
    w = rng.standard_normal((case["o"], case["c"], kh, kw)).astype(dtype)
    return u, w


def assert_close64(actual, expected):
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, rtol=1e-10, atol=1e-10)


def max_rel_err(actual, expected):
    expected = np.asarray(expected, dtype=np.float64)
    scale = max(np.abs(expected).max(), 1e-30)
    return np.abs(np.asarray(actual, dtype=np.float64) - expected).max() / scale


# ---------------------------------------------------------------------------
# fast kernels == loop references
# ---------------------------------------------------------------------------

@dcgan_examples()
@EXAMPLES
@given(case=conv_cases())
def test_conv2d_matches_reference(case):
    x, w, _ = make_conv_arrays(case)
    assert_close64(conv2d(x, w, case["s"], case["p"]), conv2d_ref(x, w, case["s"], case["p"]))


@dcgan_examples()
@EXAMPLES
@given(case=conv_cases())
def test_conv2d_grad_input_matches_reference(case):
    x, w, gy = make_conv_arrays(case)
    hw = x.shape[2:]
    assert_close64(conv2d_grad_input(gy, w, hw, case["s"], case["p"]),
                   conv2d_grad_input_ref(gy, w, hw, case["s"], case["p"]))


@dcgan_examples()
@EXAMPLES
@given(case=conv_cases())
def test_conv2d_grad_weight_matches_reference(case):
    x, w, gy = make_conv_arrays(case)
    assert_close64(conv2d_grad_weight(x, gy, case["k"], case["s"], case["p"]),
                   conv2d_grad_weight_ref(x, gy, case["k"], case["s"], case["p"]))


@dcgan_examples()   # (h, w) is the conv input here: 28 -> 14 is transposed back 14 -> 28
@EXAMPLES
@given(case=transpose_cases())
def test_conv_transpose2d_matches_reference(case):
    u, w = make_transpose_arrays(case)
    args = (case["s"], case["p"], case["op"])
    assert_close64(conv_transpose2d(u, w, *args), conv_transpose2d_ref(u, w, *args))


@EXAMPLES
@given(conv_cases(kernel_multiple_of_stride=True), st.sampled_from(["col2im", "scatter", "gather"]))
def test_every_grad_input_algorithm_matches_reference(case, method):
    """conv2d_grad_input picks one of three algorithms by shape; force each one."""
    x, w, gy = make_conv_arrays(case)
    hw = x.shape[2:]
    gx = conv_module._conv2d_grad_input_nhwc(gy, w, hw, case["s"], case["p"], method)
    assert_close64(gx.transpose(0, 3, 1, 2),
                   conv2d_grad_input_ref(gy, w, hw, case["s"], case["p"]))


@pytest.mark.parametrize("dtype,h,w_", [(np.float32, 32, 32), (np.float64, 16, 32)])
def test_4kib_channel_planes(dtype, h, w_):
    """Channel planes 4 KiB apart take the staged NCHW -> NHWC copy."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 8, h, w_)).astype(dtype)
    w = rng.standard_normal((2, 8, 3, 3)).astype(dtype)
    assert x.strides[1] % 4096 == 0
    y = conv2d(x, w, 1, 1)
    assert max_rel_err(y, conv2d_ref(x.astype(np.float64), w.astype(np.float64), 1, 1)) < 1e-6
    gy = rng.standard_normal((1, 8, h, w_)).astype(dtype)       # 4 KiB planes again
    gw = conv2d_grad_weight(x, gy, (1, 1), 1, 0)
    expected = np.einsum("nohw,nchw->oc", gy.astype(np.float64), x.astype(np.float64))
    assert max_rel_err(gw[:, :, 0, 0], expected) < 1e-6


# ---------------------------------------------------------------------------
# adjoint identities: <conv(x, w), gy> == <x, gx> == <w, gw>
# ---------------------------------------------------------------------------

@dcgan_examples()
@EXAMPLES
@given(case=conv_cases())
def test_adjoint_identities(case):
    x, w, gy = make_conv_arrays(case)
    s, p = case["s"], case["p"]
    y = conv2d(x, w, s, p)
    gx = conv2d_grad_input(gy, w, x.shape[2:], s, p)
    gw = conv2d_grad_weight(x, gy, case["k"], s, p)
    lhs = np.vdot(y, gy)
    scale = np.abs(y).sum() * np.abs(gy).max() + 1.0
    assert abs(lhs - np.vdot(x, gx)) <= 1e-12 * scale
    assert abs(lhs - np.vdot(w, gw)) <= 1e-12 * scale


# ---------------------------------------------------------------------------
# parity with PyTorch
# ---------------------------------------------------------------------------

@dcgan_examples()
@EXAMPLES
@given(case=conv_cases())
def test_conv2d_matches_torch(case):
    torch = require_torch()
    F = torch.nn.functional
    for dtype in (np.float64, np.float32):
        x, w, _ = make_conv_arrays(case, dtype)
        ours = conv2d(x, w, case["s"], case["p"])
        theirs = F.conv2d(torch.from_numpy(x), torch.from_numpy(w),
                          stride=case["s"], padding=case["p"]).numpy()
        assert ours.shape == theirs.shape and ours.dtype == dtype
        if dtype == np.float64:
            assert_close64(ours, theirs)
        else:
            assert max_rel_err(ours, theirs) < 1e-5


@dcgan_examples()   # (h, w) is the conv input here: 28 -> 14 is transposed back 14 -> 28
@EXAMPLES
@given(case=transpose_cases())
def test_conv_transpose2d_matches_torch(case):
    torch = require_torch()
    F = torch.nn.functional
    for dtype in (np.float64, np.float32):
        u, w = make_transpose_arrays(case, dtype)
        ours = conv_transpose2d(u, w, case["s"], case["p"], case["op"])
        theirs = F.conv_transpose2d(torch.from_numpy(u), torch.from_numpy(w), stride=case["s"],
                                    padding=case["p"], output_padding=case["op"]).numpy()
        assert ours.shape == theirs.shape and ours.dtype == dtype
        if dtype == np.float64:
            assert_close64(ours, theirs)
        else:
            assert max_rel_err(ours, theirs) < 1e-5


@dcgan_examples()
@EXAMPLES
@given(case=conv_cases())
def test_gradients_match_torch(case):
    torch = require_torch()
    grad = torch.nn.grad
    x, w, gy = make_conv_arrays(case)
    s, p = case["s"], case["p"]
    tx, tw, tgy = map(torch.from_numpy, (x, w, gy))
    assert_close64(conv2d_grad_input(gy, w, x.shape[2:], s, p),
                   grad.conv2d_input(x.shape, tw, tgy, stride=s, padding=p).numpy())
    assert_close64(conv2d_grad_weight(x, gy, case["k"], s, p),
                   grad.conv2d_weight(tx, w.shape, tgy, stride=s, padding=p).numpy())


# ---------------------------------------------------------------------------
# the DCGAN layer shapes themselves (the fast paths are tuned for these)
# ---------------------------------------------------------------------------

DCGAN_LIKE = [
    # (N, C, H, W, O, k, s, p)
    (2, 3, 16, 16, 8, 4, 2, 1),    # D first layer, strided 4x4
    (2, 8, 8, 8, 16, 4, 2, 1),     # D middle layer
    (2, 16, 4, 4, 1, 4, 1, 0),     # D last layer: 4x4 -> 1x1
    (2, 5, 9, 7, 6, 4, 2, 1),      # odd sizes: a row and a column never reached
    (2, 4, 10, 10, 3, 3, 3, 2),    # kernel == stride
    (2, 4, 11, 9, 3, 5, 2, 2),     # kernel not a multiple of the stride
]


@pytest.mark.parametrize("n,c,h,w_,o,k,s,p", DCGAN_LIKE)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_dcgan_like_shapes(n, c, h, w_, o, k, s, p, dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c, h, w_)).astype(dtype)
    w = rng.standard_normal((o, c, k, k)).astype(dtype)
    gy = rng.standard_normal((n, o, conv_output_size(h, k, s, p),
                              conv_output_size(w_, k, s, p))).astype(dtype)
    tol = 1e-10 if dtype == np.float64 else 1e-5
    x64, w64, gy64 = (a.astype(np.float64) for a in (x, w, gy))
    pairs = [
        (conv2d(x, w, s, p), conv2d_ref(x64, w64, s, p)),
        (conv2d_grad_input(gy, w, (h, w_), s, p), conv2d_grad_input_ref(gy64, w64, (h, w_), s, p)),
        (conv2d_grad_weight(x, gy, (k, k), s, p), conv2d_grad_weight_ref(x64, gy64, (k, k), s, p)),
        (conv_transpose2d(gy, w, s, p), conv_transpose2d_ref(gy64, w64, s, p)),
    ]
    for ours, ref in pairs:
        assert ours.dtype == dtype and ours.shape == ref.shape
        assert max_rel_err(ours, ref) < tol


# ---------------------------------------------------------------------------
# dtypes, layouts, errors, size helpers
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_preserved(dtype):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 8, 6)).astype(dtype)
    w = rng.standard_normal((4, 3, 3, 3)).astype(dtype)
    y = conv2d(x, w, 2, 1)
    gy = np.ones(y.shape, dtype)
    assert y.dtype == dtype
    assert conv2d_grad_input(gy, w, (8, 6), 2, 1).dtype == dtype
    assert conv2d_grad_weight(x, gy, (3, 3), 2, 1).dtype == dtype
    assert conv_transpose2d(y, w, 2, 1, 1).dtype == dtype


@EXAMPLES
@given(conv_cases())
def test_non_contiguous_inputs(case):
    x, w, gy = make_conv_arrays(case)
    s, p, k = case["s"], case["p"], case["k"]
    # the same values, stored non-contiguously: every other element of a bigger
    # array, or a transposed (channels-last) buffer
    x_nc = np.repeat(x, 2, axis=3)[..., ::2]
    w_nc = np.ascontiguousarray(w.transpose(1, 0, 3, 2)).transpose(1, 0, 3, 2)
    gy_nc = np.ascontiguousarray(gy.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    assert_close64(conv2d(x_nc, w_nc, s, p), conv2d_ref(x, w, s, p))
    assert_close64(conv2d_grad_input(gy_nc, w_nc, x.shape[2:], s, p),
                   conv2d_grad_input_ref(gy, w, x.shape[2:], s, p))
    assert_close64(conv2d_grad_weight(x_nc, gy_nc, k, s, p),
                   conv2d_grad_weight_ref(x, gy, k, s, p))


def test_outputs_feed_back_in():
    """Kernel outputs are NCHW views of NHWC buffers; they must be valid inputs."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 12, 12))
    w1 = rng.standard_normal((5, 3, 4, 4))
    w2 = rng.standard_normal((6, 5, 3, 3))
    y1 = conv2d(x, w1, 2, 1)
    y2 = conv2d(y1, w2, 1, 0)
    assert_close64(y2, conv2d_ref(conv2d_ref(x, w1, 2, 1), w2, 1, 0))
    g1 = conv2d_grad_input(np.ones_like(y2), w2, y1.shape[2:], 1, 0)
    assert_close64(conv2d_grad_input(g1, w1, (12, 12), 2, 1),
                   conv2d_grad_input_ref(conv2d_grad_input_ref(np.ones(y2.shape), w2, (6, 6), 1, 0),
                                         w1, (12, 12), 2, 1))


def test_outputs_do_not_share_memory_with_later_calls():
    """Temporaries are reused between calls; results must never live in them."""
    rng = np.random.default_rng(6)
    x1, x2 = rng.standard_normal((2, 2, 3, 16, 16))
    w = rng.standard_normal((4, 3, 4, 4))
    gy1, gy2 = rng.standard_normal((2, 2, 4, 8, 8))
    outs = [conv2d(x1, w, 2, 1), conv2d_grad_input(gy1, w, (16, 16), 2, 1),
            conv2d_grad_weight(x1, gy1, (4, 4), 2, 1)]
    saved = [o.copy() for o in outs]
    conv2d(x2, w, 2, 1)
    conv2d_grad_input(gy2, w, (16, 16), 2, 1)
    conv2d_grad_weight(x2, gy2, (4, 4), 2, 1)
    for out, before in zip(outs, saved):
        np.testing.assert_array_equal(out, before)


def test_empty_batch():
    x = np.zeros((0, 3, 8, 8), np.float32)
    w = np.ones((4, 3, 4, 4), np.float32)
    gy = np.zeros((0, 4, 4, 4), np.float32)
    assert conv2d(x, w, 2, 1).shape == (0, 4, 4, 4)
    assert conv2d_grad_input(gy, w, (8, 8), 2, 1).shape == (0, 3, 8, 8)
    np.testing.assert_array_equal(conv2d_grad_weight(x, gy, (4, 4), 2, 1), np.zeros((4, 3, 4, 4)))


def test_inputs_are_not_modified():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 9, 9))
    w = rng.standard_normal((4, 3, 4, 4))
    gy = rng.standard_normal((2, 4, 4, 4))
    copies = [a.copy() for a in (x, w, gy)]
    conv2d(x, w, 2, 1)
    conv2d_grad_input(gy, w, (9, 9), 2, 1)
    conv2d_grad_weight(x, gy, (4, 4), 2, 1)
    for a, b in zip((x, w, gy), copies):
        np.testing.assert_array_equal(a, b)


def test_int_and_pair_arguments_agree():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((1, 2, 7, 7))
    w = rng.standard_normal((3, 2, 3, 3))
    np.testing.assert_array_equal(conv2d(x, w, 2, 1), conv2d(x, w, (2, 2), (1, 1)))
    np.testing.assert_array_equal(conv2d(x, w, [2, 2], [1, 1]), conv2d(x, w, (2, 2), (1, 1)))


def test_errors_name_the_kernel_and_shapes():
    x = np.zeros((1, 3, 5, 5))
    with pytest.raises(ValueError, match=r"conv2d: input has 3 channels .*\(4, 2, 3, 3\)"):
        conv2d(x, np.zeros((4, 2, 3, 3)))
    with pytest.raises(ValueError, match=r"conv2d: kernel size \(7, 7\) is larger than the padded input"):
        conv2d(x, np.zeros((4, 3, 7, 7)), padding=0)
    with pytest.raises(ValueError, match="conv2d_grad_input: grad_output has shape"):
        conv2d_grad_input(np.zeros((1, 4, 2, 2)), np.zeros((4, 3, 3, 3)), (5, 5), 1, 0)
    with pytest.raises(ValueError, match="conv2d_grad_weight: grad_output has shape"):
        conv2d_grad_weight(x, np.zeros((1, 4, 2, 2)), (3, 3), 1, 0)
    with pytest.raises(ValueError, match="conv_transpose2d: output_padding"):
        conv_transpose2d(np.zeros((1, 4, 3, 3)), np.zeros((4, 2, 3, 3)), 2, 0, 2)
    with pytest.raises(ValueError, match=r"conv_transpose2d: input has 4 channels .*\(in, out, kh, kw\)"):
        conv_transpose2d(np.zeros((1, 4, 3, 3)), np.zeros((5, 2, 3, 3)), 2, 0)


def test_output_size_helpers():
    assert conv_output_size(64, 4, 2, 1) == 32
    assert conv_output_size(4, 4, 1, 0) == 1
    assert conv_output_size(7, 3, 2, 0) == 3
    assert conv_transpose_output_size(1, 4, 1, 0, 0) == 4
    assert conv_transpose_output_size(32, 4, 2, 1, 0) == 64
    assert conv_transpose_output_size(3, 3, 2, 0, 1) == 8
    # a strided conv maps H and H + op to the same size; output_padding undoes that
    for h in range(3, 20):
        ho = conv_output_size(h, 3, 2, 1)
        op = h - conv_transpose_output_size(ho, 3, 2, 1, 0)
        assert 0 <= op < 2
        assert conv_transpose_output_size(ho, 3, 2, 1, op) == h
