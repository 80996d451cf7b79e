"""The LeakyReLU array kernels against PyTorch's definition, value by value (torch-free; ``kernels`` group).

``torch.nn.functional.leaky_relu``: y = x if x > 0 else slope * x, computed in x's dtype, so that
+inf stays +inf for every slope (also 0), -inf * 0 is NaN, negative numbers times 0 are -0.0 and NaN stays
NaN; the gradient is g where x > 0 else slope * g.  Checked for every kernel form (with a mask, from the
output, blocked on threads), special values included, bit for bit (sign of zero and NaN positions too),
on every device (``device``: the CuPy kernels too, under the stand-in or on a GPU).
"""
from __future__ import annotations

import numpy as np
import pytest

from tinygan.backend import get_array_module, to_device, to_numpy
from tinygan.kernels import activations as act
from tinygan.kernels import layout, threads

# every test here runs on the NumPy kernels and on the compiled ones (conftest.kernel_path)
pytestmark = pytest.mark.usefixtures("kernel_path")

SLOPES = [0.0, 0.01, 0.2, 1.0, 1.5, -0.5]
SPECIAL = [np.inf, -np.inf, np.nan, 0.0, -0.0, 1.0, -1.0, 3.5, -2.25, 1e-40, -1e-40, 1e30, -1e30]


def _x(dtype, shape=(2, 3, 4, 5), seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    flat = x.reshape(-1)
    flat[:len(SPECIAL)] = np.array(SPECIAL, dtype=dtype)
    return x


def _ref(x, slope):
    with np.errstate(all="ignore"):
        return np.where(x > 0, x, x * x.dtype.type(slope))


def _ref_grad(g, x, slope):
    return np.where(x > 0, g, g * g.dtype.type(slope))


def _same(a, b, msg=""):
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape, msg
    np.testing.assert_array_equal(a, b, err_msg=msg)
    real = ~np.isnan(b)                                                  # a NaN's sign bit means nothing
    np.testing.assert_array_equal(np.signbit(a[real]), np.signbit(b[real]), err_msg=msg + " (signs)")


def _channels_last(x):
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("slope", SLOPES)
def test_forward_with_mask(slope, dtype):
    x = _x(dtype)
    with np.errstate(all="ignore"):
        y, mask = act.leaky_relu_forward(x, slope)
    _same(y, _ref(x, slope), f"slope {slope}")
    np.testing.assert_array_equal(mask, x > 0)
    assert mask.dtype == np.bool_
    xl = _channels_last(x)
    with np.errstate(all="ignore"):
        yl, _ = act.leaky_relu_forward(xl, slope)
    _same(yl, _ref(x, slope))
    if 0 < slope <= 1:
        assert yl.strides == xl.strides                                # keeps x's memory layout


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("slope", SLOPES)
def test_scale_and_backward_with_mask(slope, dtype):
    x = _x(dtype)
    mask = x > 0
    s = act.leaky_relu_scale(mask, slope, np.dtype(dtype))
    assert s.dtype == dtype and s.shape == x.shape
    np.testing.assert_allclose(s, np.where(mask, 1.0, slope).astype(dtype), rtol=1e-7, atol=0)
    g = np.random.default_rng(1).standard_normal(x.shape).astype(dtype)
    dx = act.leaky_relu_backward(g, mask, slope)
    assert dx.dtype == dtype
    np.testing.assert_allclose(dx, _ref_grad(g, x, slope), rtol=1e-6, atol=0)


def test_which_slopes_take_the_output_form():
    x = np.zeros(3)
    assert act.output_backward(x, 0.0) and act.output_backward(x, 0.2) and act.output_backward(x, 2.0)
    assert not act.output_backward(x, -0.1)


@pytest.fixture(params=["whole-array", "blocked-1", "blocked-3"])
def form(request, monkeypatch):
    if request.param.startswith("blocked"):
        monkeypatch.setattr(threads, "BLOCK_BYTES", 256)
        monkeypatch.setattr(threads, "MIN_PARALLEL_BYTES", 256)
        monkeypatch.setattr(layout, "LINE_MIN", 16)
        monkeypatch.setattr(layout, "LINE_MAX", 64)
        threads.set_num_threads(int(request.param[-1]) if request.param[-1] != "1" else 2)
    yield request.param
    threads.set_num_threads(None)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("slope", [s for s in SLOPES if s >= 0])
def test_forward_and_backward_from_the_output(slope, dtype, form):
    for name, make in [("contiguous", np.ascontiguousarray), ("channels-last", _channels_last),
                       ("fortran", np.asfortranarray)]:
        x = make(_x(dtype))
        with np.errstate(all="ignore"):
            y = act.leaky_relu(x, slope)
        _same(y, _ref(x, slope), f"{name}, slope {slope}, {form}")
        assert y.strides == x.strides, name                              # y has x's memory layout
        g = make(np.random.default_rng(2).standard_normal(x.shape).astype(dtype))
        dx = act.leaky_relu_backward_from_output(g, y, slope)
        np.testing.assert_allclose(dx, _ref_grad(g, x, slope), rtol=1e-6, atol=0, err_msg=name)
        assert dx.dtype == dtype and dx.strides == g.strides, name
        s = act.leaky_relu_scale_from_output(y, slope, np.dtype(dtype))
        np.testing.assert_allclose(s, np.where(x > 0, 1.0, slope), rtol=1e-7, atol=0)
        assert s.dtype == dtype and s.strides == y.strides


def test_plus_infinity_with_slope_zero_stays_infinite():
    """0 * inf is NaN, so max(x, 0 x) would be NaN at +inf; PyTorch's leaky_relu(inf, 0) is inf, gradient 1."""
    x = np.array([np.inf, -np.inf, 2.0, -2.0], np.float32)
    with np.errstate(all="ignore"):
        for y in (act.leaky_relu(x, 0.0), act.leaky_relu_forward(x, 0.0)[0]):
            _same(y, np.array([np.inf, np.nan, 2.0, -0.0], np.float32))
        y = act.leaky_relu(x, 0.0)
    np.testing.assert_array_equal(act.leaky_relu_backward_from_output(np.ones(4, np.float32), y, 0.0),
                                  [1.0, 0.0, 1.0, 0.0])


@pytest.mark.parametrize("slope", [0.0, 0.2, -0.5, 1.5])
def test_on_every_device(device, slope):
    x = _x(np.float32)
    g = np.random.default_rng(3).standard_normal(x.shape).astype(np.float32)
    xd, gd = to_device(x, device), to_device(g, device)
    xp = get_array_module(xd)
    with np.errstate(all="ignore"):
        y, mask = act.leaky_relu_forward(xd, slope)
    assert get_array_module(y) is xp and get_array_module(mask) is xp
    _same(to_numpy(y), _ref(x, slope))
    np.testing.assert_array_equal(to_numpy(mask), x > 0)
    s = act.leaky_relu_scale(mask, slope, np.dtype(np.float32))
    assert get_array_module(s) is xp and s.dtype == np.float32
    np.testing.assert_allclose(to_numpy(s), np.where(x > 0, 1.0, slope), rtol=1e-7, atol=0)
    dx = act.leaky_relu_backward(gd, mask, slope)
    assert get_array_module(dx) is xp and dx.dtype == np.float32
    np.testing.assert_allclose(to_numpy(dx), _ref_grad(g, x, slope), rtol=1e-6, atol=0)
    assert act.output_backward(xd, 0.2) == (xp is np)


def test_slow_references():
    for dtype in (np.float32, np.float64):
        x = _x(dtype, shape=(3, 5))
        y = act.leaky_relu_ref(x, 0.2)
        assert y.dtype == dtype and y.shape == x.shape
        with np.errstate(all="ignore"):
            np.testing.assert_allclose(y, _ref(x, 0.2), rtol=1e-6, atol=0)     # slope * v in Python floats
        g = np.random.default_rng(4).standard_normal(x.shape).astype(dtype)
        dx = act.leaky_relu_backward_ref(g, x, 0.2)
        assert dx.dtype == dtype and dx.shape == x.shape
        np.testing.assert_allclose(dx, _ref_grad(g, x, 0.2), rtol=1e-6)
