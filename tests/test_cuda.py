"""tinygan on the GPU (CuPy): every custom kernel against its NumPy twin, ops, models, devices.

Tests marked ``gpu`` need CuPy and a visible GPU and are skipped otherwise
(run them with ``pytest -m gpu``).  The tests at the top check the error a
user gets when asking for ``device='cuda'`` without one; they run everywhere.
The gpu tests also run on the CPU stand-in for CuPy (``TINYGAN_FAKE_CUPY=1``,
``tests/fakecupy``), which the default ``pytest`` does once through
``tests/test_cuda_standin.py``: there they check the launchers and the CUDA
sources (host builds), not CuPy's numerics.

Tolerances: float64 to ~1e-12; float32 to a few ulp for the element-wise
kernels (NVRTC contracts a*b + c into FMAs, CuPy flushes float32 subnormals
to zero) and ~1e-5 relative for GEMM-based results (cuBLAS sums in another
order).  With ``CUPY_TF32=1`` float32 matmuls use TensorFloat-32 (10-bit
mantissa); the float32 GEMM tolerances then widen to 1e-2.
"""
from __future__ import annotations

import os
import types

import numpy as np
import pytest

import tinygan
import tinygan.functional as F
from tinygan import backend, nn
from tinygan import optim as toptim
from tinygan.kernels import activations as act
from tinygan.kernels import batchnorm as bn
from tinygan.kernels import conv
from tinygan.kernels import optim as kopt

GPU = backend.gpu_available()
gpu = pytest.mark.gpu          # selected by `pytest -m gpu`; skipped (conftest and the cp fixture) without a GPU
DTYPES = ["float32", "float64"]
TF32 = os.environ.get("CUPY_TF32", "0") not in ("", "0")


def _gemm_tol(dtype) -> dict:
    """Tolerance for results that went through a GEMM (cuBLAS vs NumPy's BLAS)."""
    if np.dtype(dtype) == np.float64:
        return dict(rtol=1e-10, atol=1e-12)
    return dict(rtol=1e-2, atol=1e-2) if TF32 else dict(rtol=2e-5, atol=2e-5)


def _ew_tol(dtype) -> dict:
    """Tolerance for the fused element-wise kernels (FMA contraction, a few ulp)."""
    return dict(rtol=1e-12, atol=1e-14) if np.dtype(dtype) == np.float64 else dict(rtol=2e-6, atol=1e-6)


@pytest.fixture(scope="module")
def cp():
    if not GPU:
        pytest.skip("needs CuPy and a visible GPU")
    import cupy
    return cupy


def _host(a):
    return backend.to_numpy(a)


def _nhwc_view(cp, a):
    """(N, C, H, W) values held in an NHWC buffer, seen as NCHW (what the conv kernels return)."""
    return cp.ascontiguousarray(cp.asarray(a).transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


# ---------------------------------------------------------------------------
# the clear error without a GPU (runs everywhere)
# ---------------------------------------------------------------------------

def _assert_cuda_hint(excinfo):
    msg = str(excinfo.value)
    assert "tinygan[cuda12]" in msg and "tinygan[cuda13]" in msg, msg


@pytest.mark.skipif(GPU, reason="checks the error raised when no GPU is visible")
def test_device_cuda_without_gpu_raises_a_clear_error():
    with pytest.raises(RuntimeError) as e:
        tinygan.tensor([1.0], device="cuda")
    _assert_cuda_hint(e)
    with pytest.raises(RuntimeError) as e:
        tinygan.zeros(2, 3, device="cuda")
    _assert_cuda_hint(e)
    with pytest.raises(RuntimeError) as e:
        tinygan.tensor([1.0, 2.0]).to("cuda")
    _assert_cuda_hint(e)
    with pytest.raises(RuntimeError) as e:
        nn.Linear(2, 3).to("cuda")
    _assert_cuda_hint(e)


def test_cuda_error_when_cupy_is_not_installed(monkeypatch):
    monkeypatch.setattr(backend, "_import_cupy", lambda: None)
    assert not backend.gpu_available()
    with pytest.raises(RuntimeError, match="not installed") as e:
        tinygan.tensor([1.0], device="cuda")
    _assert_cuda_hint(e)


def test_cuda_error_when_cupy_sees_no_gpu(monkeypatch):
    fake = types.SimpleNamespace(cuda=types.SimpleNamespace(is_available=lambda: False), ndarray=type(None))
    monkeypatch.setattr(backend, "_import_cupy", lambda: fake)
    assert not backend.gpu_available()
    with pytest.raises(RuntimeError, match="no GPU is visible") as e:
        tinygan.randn(3, device="cuda:0")
    _assert_cuda_hint(e)


def test_cuda_kernels_import_without_cupy():
    """The kernel registry and launchers import on machines without CuPy (nothing compiles until used)."""
    import tinygan.kernels.cuda as kc
    assert callable(kc.im2col_nhwc)
    assert kc.sources.REGISTRY


def test_launchers_reject_numpy_arrays_with_the_kernel_name():
    """The argument checks run before CuPy is needed, and name the kernel."""
    from tinygan.kernels import cuda as kc
    x = np.zeros((1, 4, 4, 2), np.float32)
    with pytest.raises(TypeError, match="im2col_nhwc.*cupy.ndarray"):
        kc.im2col_nhwc(x, (2, 2), (1, 1), (3, 3))
    with pytest.raises(TypeError, match="adam_step"):
        kc.adam_step_(x, x, x, x, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, step=1)


# ---------------------------------------------------------------------------
# each custom kernel against its NumPy twin
# ---------------------------------------------------------------------------

CONV_CASES = [
    # N, Hp, Wp, C, kh, kw, sh, sw   (a padded NHWC image and the windows that fit in it)
    (2, 6, 7, 3, 3, 3, 1, 1),
    (4, 34, 34, 3, 4, 4, 2, 2),        # DCGAN: 64 -> 32 after padding 1, here 32 -> 16
    (3, 5, 9, 1, 2, 3, 3, 2),
    (2, 4, 4, 5, 4, 4, 1, 1),
    (1, 11, 6, 4, 1, 2, 2, 3),
]


def _layout(a: np.ndarray, layout: str) -> np.ndarray:
    """The values of ``a`` in another memory layout (same shape): what conv.py may pass."""
    if layout == "contiguous":
        return a
    if layout == "cropped":                 # a window of a bigger buffer (a cropped gradient)
        big = np.zeros(tuple(n + 3 for n in a.shape), a.dtype)
        view = big[tuple(slice(1, 1 + n) for n in a.shape)]
        view[...] = a
        return view
    perm = (a.ndim - 1,) + tuple(range(a.ndim - 1))     # "transposed": last axis outermost
    return np.ascontiguousarray(a.transpose(perm)).transpose(tuple(int(k) for k in np.argsort(perm)))


def _to_gpu_keeping_layout(cp, a: np.ndarray):
    """A CuPy array with ``a``'s values *and* strides (cupy.asarray would make it contiguous)."""
    base = a.base if a.base is not None else a
    while base.base is not None:
        base = base.base
    gbase = cp.asarray(base)
    offset = a.__array_interface__["data"][0] - base.__array_interface__["data"][0]
    from cupy.lib.stride_tricks import as_strided
    return as_strided(gbase.ravel()[offset // a.itemsize:], shape=a.shape, strides=a.strides)


@gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("index", ["int32", "int64"])
@pytest.mark.parametrize("layout", ["contiguous", "cropped", "transposed"])
@pytest.mark.parametrize("case", CONV_CASES)
def test_im2col_col2im_match_numpy(cp, case, layout, index, dtype, monkeypatch):
    from tinygan.kernels import cuda as kc
    from tinygan.kernels.cuda import launch
    if index == "int64":                      # force the 64-bit-index variants on small arrays
        monkeypatch.setattr(launch, "_INT32_LIMIT", 0)
    N, Hp, Wp, C, kh, kw, sh, sw = case
    Ho, Wo = (Hp - kh) // sh + 1, (Wp - kw) // sw + 1
    rng = np.random.default_rng(sum(case))
    x_pad = _layout(rng.standard_normal((N, Hp, Wp, C)).astype(dtype), layout)
    xg = _to_gpu_keeping_layout(cp, x_pad)
    assert xg.strides == x_pad.strides
    np.testing.assert_array_equal(_host(xg), x_pad)
    cols = kc.im2col_nhwc(xg, (kh, kw), (sh, sw), (Ho, Wo))
    assert cols.dtype == np.dtype(dtype) and cols.shape == (N * Ho * Wo, kh * kw * C)
    np.testing.assert_array_equal(_host(cols), conv._im2col(x_pad, (kh, kw), (sh, sw), (Ho, Wo)))

    dcols = _layout(rng.standard_normal(cols.shape).astype(dtype), layout)
    dx_pad = kc.col2im_nhwc(_to_gpu_keeping_layout(cp, dcols), (Hp, Wp), (kh, kw), (sh, sw), (Ho, Wo))
    assert dx_pad.dtype == np.dtype(dtype) and dx_pad.shape == (N, Hp, Wp, C)
    # the gather adds in NumPy's order: bit-identical
    np.testing.assert_array_equal(_host(dx_pad), conv._col2im(dcols, (Hp, Wp), (kh, kw), (sh, sw), (Ho, Wo)))


@gpu
def test_im2col_col2im_check_their_arguments(cp):
    from tinygan.kernels import cuda as kc
    x = cp.zeros((1, 5, 5, 2), cp.float32)
    with pytest.raises(TypeError, match="im2col_nhwc.*float32 or float64"):
        kc.im2col_nhwc(x.astype(cp.float16), (2, 2), (1, 1), (4, 4))
    with pytest.raises(ValueError, match="im2col_nhwc.*4-D"):
        kc.im2col_nhwc(x[0], (2, 2), (1, 1), (4, 4))
    with pytest.raises(ValueError, match="im2col_nhwc.*do not fit"):
        kc.im2col_nhwc(x, (2, 2), (1, 1), (5, 5))
    with pytest.raises(ValueError, match="col2im_nhwc.*is not"):
        kc.col2im_nhwc(cp.zeros((7, 8), cp.float32), (5, 5), (2, 2), (1, 1), (4, 4))
    with pytest.raises(TypeError, match="col2im_nhwc.*one dtype|col2im_nhwc.*cupy"):
        kc.col2im_nhwc(np.zeros((16, 8), np.float32), (5, 5), (2, 2), (1, 1), (4, 4))


@gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", ["nchw", "nhwc_view"])
def test_leaky_relu_kernels_match_numpy(cp, dtype, layout):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 4, 5, 6)).astype(dtype)
    x[0, 0, 0, :3] = [0.0, -0.0, 1e-3]
    xg = cp.asarray(x) if layout == "nchw" else _nhwc_view(cp, x)
    for slope in (0.2, 0.01):
        y, mask = act.leaky_relu_forward(xg, slope)                  # dispatches to the kernel
        y_ref, mask_ref = act.leaky_relu_forward(x, slope)
        assert y.dtype == np.dtype(dtype) and mask.dtype == np.bool_
        assert y.strides == xg.strides                                # layout kept (empty_like)
        np.testing.assert_array_equal(_host(mask), mask_ref)
        np.testing.assert_allclose(_host(y), y_ref, **_ew_tol(dtype))
        s = act.leaky_relu_scale(mask, slope, np.dtype(dtype))
        np.testing.assert_allclose(_host(s), act.leaky_relu_scale(mask_ref, slope, np.dtype(dtype)),
                                   **_ew_tol(dtype))
        g = rng.standard_normal(x.shape).astype(dtype)
        dx = act.leaky_relu_backward(cp.asarray(g), mask, slope)
        np.testing.assert_allclose(_host(dx), act.leaky_relu_backward(g, mask_ref, slope), **_ew_tol(dtype))


@gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", ["nc", "nchw", "nhwc_view"])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_kernels_match_numpy(cp, dtype, layout, affine):
    rng = np.random.default_rng(6)
    shape = (8, 5) if layout == "nc" else (4, 5, 6, 7)
    x = (rng.standard_normal(shape) * 2 + 0.5).astype(dtype)
    gamma = rng.standard_normal(5).astype(dtype) if affine else None
    beta = rng.standard_normal(5).astype(dtype) if affine else None
    xg = _nhwc_view(cp, x) if layout == "nhwc_view" else cp.asarray(x)
    gg = None if gamma is None else cp.asarray(gamma)
    bg = None if beta is None else cp.asarray(beta)
    out = bn.batch_norm_forward(xg, gg, bg, 1e-5)
    ref = bn.batch_norm_forward(x, gamma, beta, 1e-5)
    tol = _ew_tol(dtype) if dtype == "float64" else dict(rtol=1e-5, atol=1e-5)   # float32 sums differ in order
    for name, a, b in zip(("y", "mean", "var", "xhat", "invstd"), out, ref):
        assert a.dtype == np.dtype(dtype), name
        np.testing.assert_allclose(_host(a), b, err_msg=name, **tol)
    assert out[0].strides == xg.strides                               # layout kept
    g = rng.standard_normal(shape).astype(dtype)
    gg_ = cp.asarray(g) if layout != "nhwc_view" else _nhwc_view(cp, g)
    dx, dgamma, dbeta = bn.batch_norm_backward(gg_, out[3], out[4], gg)
    dx_r, dgamma_r, dbeta_r = bn.batch_norm_backward(g, ref[3], ref[4], gamma)
    for name, a, b in (("dx", dx, dx_r), ("dgamma", dgamma, dgamma_r), ("dbeta", dbeta, dbeta_r)):
        assert a.dtype == np.dtype(dtype), name
        np.testing.assert_allclose(_host(a), b, err_msg=name, **tol)


@gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_adam_kernel_matches_numpy(cp, dtype, weight_decay):
    rng = np.random.default_rng(7)
    p, m = (rng.standard_normal((6, 5)).astype(dtype) for _ in range(2))
    v = np.abs(rng.standard_normal((6, 5))).astype(dtype)
    pg, mg, vg = cp.asarray(p), cp.asarray(m), cp.asarray(v)
    for step in range(1, 5):
        g = rng.standard_normal(p.shape).astype(dtype)
        hyper = dict(lr=2e-4, beta1=0.5, beta2=0.999, eps=1e-8, step=step, weight_decay=weight_decay)
        kopt.adam_step_(p, g, m, v, **hyper)
        kopt.adam_step_(pg, cp.asarray(g), mg, vg, **hyper)
        for name, a, b in (("p", pg, p), ("m", mg, m), ("v", vg, v)):
            assert a.dtype == np.dtype(dtype)
            np.testing.assert_allclose(_host(a), b, err_msg=f"{name} at step {step}", **_ew_tol(dtype))


@gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("centered", [False, True])
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_rmsprop_kernel_matches_numpy(cp, dtype, centered, momentum):
    rng = np.random.default_rng(8)
    p = rng.standard_normal((7,)).astype(dtype)
    v, buf, gavg = (np.zeros_like(p) for _ in range(3))
    pg, vg, bufg, gavgg = (cp.asarray(a) for a in (p, v, buf, gavg))
    for step in range(3):
        g = rng.standard_normal(p.shape).astype(dtype)
        hyper = dict(lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.01, momentum=momentum, centered=centered)
        kopt.rmsprop_step_(p, g, v, buf if momentum else None, gavg if centered else None, **hyper)
        kopt.rmsprop_step_(pg, cp.asarray(g), vg, bufg if momentum else None, gavgg if centered else None,
                           **hyper)
        np.testing.assert_allclose(_host(pg), p, **_ew_tol(dtype))
        np.testing.assert_allclose(_host(vg), v, **_ew_tol(dtype))
        np.testing.assert_allclose(_host(bufg), buf, **_ew_tol(dtype))
        np.testing.assert_allclose(_host(gavgg), gavg, **_ew_tol(dtype))


@gpu
@pytest.mark.parametrize("dtype", DTYPES)
def test_fused_kernels_keep_float32(cp, dtype):
    """Host scalars are passed as the array dtype: nothing is promoted to float64 (NEP 50)."""
    x = cp.asarray(np.linspace(-1, 1, 24, dtype=dtype).reshape(2, 3, 2, 2))
    y, mask = act.leaky_relu_forward(x, 0.2)
    assert y.dtype == x.dtype
    out = bn.batch_norm_forward(x, None, None, 1e-5)
    assert all(a.dtype == x.dtype for a in out)


# ---------------------------------------------------------------------------
# convolutions, CuPy vs NumPy
# ---------------------------------------------------------------------------

CONV_OPS = [
    # (N, C, H, W), (O, C, kh, kw), stride, padding
    ((2, 3, 9, 8), (4, 3, 3, 3), (1, 1), (1, 1)),
    ((4, 3, 16, 16), (8, 3, 4, 4), (2, 2), (1, 1)),
    ((3, 2, 7, 11), (5, 2, 2, 3), (3, 2), (0, 2)),
]


@gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CONV_OPS)
def test_conv_kernels_match_numpy(cp, case, dtype):
    xs, ws, s, p = case
    rng = np.random.default_rng(9)
    x = rng.standard_normal(xs).astype(dtype)
    w = rng.standard_normal(ws).astype(dtype)
    y = conv.conv2d(x, w, s, p)
    yg = conv.conv2d(cp.asarray(x), cp.asarray(w), s, p)
    np.testing.assert_allclose(_host(yg), y, **_gemm_tol(dtype))
    gy = rng.standard_normal(y.shape).astype(dtype)
    np.testing.assert_allclose(_host(conv.conv2d_grad_input(cp.asarray(gy), cp.asarray(w), xs[2:], s, p)),
                               conv.conv2d_grad_input(gy, w, xs[2:], s, p), **_gemm_tol(dtype))
    np.testing.assert_allclose(_host(conv.conv2d_grad_weight(cp.asarray(x), cp.asarray(gy), ws[2:], s, p)),
                               conv.conv2d_grad_weight(x, gy, ws[2:], s, p), **_gemm_tol(dtype))
    # a transposed conv with x's shape as its output
    np.testing.assert_allclose(_host(conv.conv_transpose2d(cp.asarray(gy), cp.asarray(w), s, p)),
                               conv.conv_transpose2d(gy, w, s, p), **_gemm_tol(dtype))


# ---------------------------------------------------------------------------
# devices: Tensor.to, Module.to, optimizers
# ---------------------------------------------------------------------------

@gpu
@pytest.mark.parametrize("dtype", DTYPES)
def test_tensor_round_trip_and_gradient_through_to(cp, dtype):
    a = np.arange(6, dtype=dtype).reshape(2, 3)
    t = tinygan.tensor(a, requires_grad=True)
    tg = t.to("cuda")
    assert tg.device == "cuda" and backend.is_cupy_array(tg.data) and tg.dtype == np.dtype(dtype)
    back = tg.to("cpu")
    assert back.device == "cpu" and isinstance(back.data, np.ndarray)
    np.testing.assert_array_equal(back.numpy(), a)
    (tg * tg).sum().backward()                       # d/dt sum(t^2) = 2 t, back on the CPU
    assert t.grad.device == "cpu"
    np.testing.assert_allclose(t.grad.numpy(), 2 * a)
    assert tinygan.tensor(a, device="cuda").device == "cuda"
    assert tinygan.zeros(2, 2, device="cuda:0").device == "cuda"
    with pytest.raises(ValueError, match="same device"):
        t + tg


@gpu
def test_module_to_cuda_and_back(cp):
    tinygan.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(3, 4, 3, 1, 1), nn.BatchNorm2d(4), nn.LeakyReLU(0.2), nn.Flatten(),
                      nn.Linear(4 * 5 * 5, 2))
    x = np.random.default_rng(1).standard_normal((2, 3, 5, 5)).astype(np.float32)
    y_cpu = m(tinygan.tensor(x)).numpy()
    state = m.state_dict()
    m.to("cuda")
    assert m.device == "cuda"
    assert all(backend.is_cupy_array(p.data) for p in m.parameters())
    assert all(backend.is_cupy_array(b) for _, b in m.named_buffers())
    m.load_state_dict(state)                          # training-mode BN updated its stats: restore
    y_gpu = m(tinygan.tensor(x, device="cuda"))
    assert y_gpu.device == "cuda"
    np.testing.assert_allclose(y_gpu.numpy(), y_cpu, rtol=1e-2 if TF32 else 1e-4, atol=1e-2 if TF32 else 1e-4)
    sd = m.state_dict()
    assert all(isinstance(v, np.ndarray) for v in sd.values())
    m.to("cpu")
    assert all(isinstance(p.data, np.ndarray) for p in m.parameters())


@gpu
@pytest.mark.parametrize("opt", ["adam", "rmsprop", "rmsprop_centered_momentum", "sgd_nesterov"])
def test_optimizer_step_on_cuda_matches_cpu(cp, opt):
    make = {
        "adam": lambda ps: toptim.Adam(ps, lr=1e-2, betas=(0.5, 0.999), weight_decay=1e-3),
        "rmsprop": lambda ps: toptim.RMSprop(ps, lr=1e-2),
        "rmsprop_centered_momentum": lambda ps: toptim.RMSprop(ps, lr=1e-2, momentum=0.9, centered=True),
        "sgd_nesterov": lambda ps: toptim.SGD(ps, lr=1e-2, momentum=0.9, nesterov=True),
    }[opt]
    rng = np.random.default_rng(10)
    w0 = rng.standard_normal((5, 4))
    xs = [rng.standard_normal((8, 5)) for _ in range(4)]
    results = {}
    for device in ("cpu", "cuda"):
        w = nn.Parameter(tinygan.tensor(w0, dtype=np.float64, device=device))
        o = make([w])
        for x in xs:
            o.zero_grad()
            loss = ((tinygan.tensor(x, device=device) @ w).tanh() ** 2).mean()
            loss.backward()
            o.step()
        results[device] = w.numpy()
        state = o.state_dict()                        # host arrays, whatever the device
        assert all(isinstance(v, np.ndarray) for st in state["state"].values()
                   for v in st.values() if hasattr(v, "shape"))
    np.testing.assert_allclose(results["cuda"], results["cpu"], rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------------------
# a small DCGAN, forward and backward, CuPy vs NumPy
# ---------------------------------------------------------------------------

@gpu
@pytest.mark.parametrize("dtype", DTYPES)
def test_small_dcgan_forward_backward_matches_numpy(cp, dtype):
    from tinygan.gan import DCGANDiscriminator, DCGANGenerator, get_loss
    results = {}
    for device in ("cpu", "cuda"):
        tinygan.manual_seed(0)
        G = DCGANGenerator(nz=8, ngf=4, nc=1, image_size=16).to(device, dtype=dtype)
        D = DCGANDiscriminator(nc=1, ndf=4, image_size=16).to(device, dtype=dtype)
        rng = np.random.default_rng(11)
        z = tinygan.tensor(rng.standard_normal((6, 8, 1, 1)).astype(dtype), device=device)
        real = tinygan.tensor(rng.uniform(-1, 1, (6, 1, 16, 16)).astype(dtype), device=device)
        loss = get_loss("nonsaturating")
        fake = G(z)
        assert fake.device == device and fake.dtype == np.dtype(dtype)
        d_loss = loss.d_loss(D(real), D(fake.detach()))           # (1) update D
        d_loss.backward()
        g_loss = loss.g_loss(D(fake))                             # (2) update G
        g_loss.backward()
        results[device] = {
            "fake": fake.numpy(), "d_loss": d_loss.item(), "g_loss": g_loss.item(),
            **{f"G.{k}": p.grad.numpy() for k, p in G.named_parameters()},
            **{f"D.{k}": p.grad.numpy() for k, p in D.named_parameters()},
            **{f"G.{k}": np.asarray(backend.to_numpy(b)) for k, b in G.named_buffers()},
        }
        for _, p in list(G.named_parameters()) + list(D.named_parameters()):
            assert p.grad.dtype == np.dtype(dtype), "a float32 model produced a float64 gradient"
    _assert_close_results(results["cuda"], results["cpu"], dtype)


def _assert_close_results(got: dict, want: dict, dtype) -> None:
    """float64: element-wise; float32: relative L2 error per tensor (a few pre-activations
    within rounding of a ReLU kink may land on the other side, see shared/perf-notes.md)."""
    assert got.keys() == want.keys()
    for k in want:
        a, b = np.asarray(got[k], np.float64), np.asarray(want[k], np.float64)
        if np.dtype(dtype) == np.float64:
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-11, err_msg=k)
        else:
            rel = np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30)
            assert rel < (2e-2 if TF32 else 3e-3), f"{k}: relative L2 error {rel:.2e}"


@gpu
@pytest.mark.parametrize("dtype", DTYPES)
def test_gradient_penalty_double_backward_matches_numpy(cp, dtype):
    """create_graph=True on CuPy: grad of a conv/LeakyReLU/batch-norm critic w.r.t. its input,
    then the penalty's gradient w.r.t. the weights (the WGAN-GP / R1 path)."""
    rng = np.random.default_rng(12)
    x0 = rng.standard_normal((4, 2, 6, 6)).astype(dtype)
    w10 = (0.3 * rng.standard_normal((3, 2, 3, 3))).astype(dtype)
    w20 = (0.3 * rng.standard_normal((1, 3, 6, 6))).astype(dtype)
    results = {}
    for device in ("cpu", "cuda"):
        x = tinygan.tensor(x0, device=device, requires_grad=True)
        w1 = tinygan.tensor(w10, device=device, requires_grad=True)
        w2 = tinygan.tensor(w20, device=device, requires_grad=True)
        h = F.leaky_relu(F.conv2d(x, w1, padding=1), 0.2)                 # (4, 3, 6, 6)
        h = F.batch_norm(h, None, None, training=True)
        score = F.conv2d(h, w2).reshape(4)                               # (4,)
        (gx,) = tinygan.grad(score.sum(), x, create_graph=True)          # (4, 2, 6, 6)
        penalty = ((gx * gx).reshape(4, -1).sum(axis=1).sqrt() - 1.0).square().mean()
        penalty.backward()
        results[device] = {"gx": gx.numpy(), "penalty": penalty.numpy(),
                           "w1.grad": w1.grad.numpy(), "w2.grad": w2.grad.numpy()}
    _assert_close_results(results["cuda"], results["cpu"], dtype)


@pytest.mark.gpu
def test_optimizer_state_follows_module_to_cuda_and_back(cp):
    """Adam's m and v move with their parameters when the module changes device mid-run."""
    lin = nn.Linear(4, 3)
    ref = nn.Linear(4, 3)
    ref.load_state_dict(lin.state_dict())
    opt, opt_ref = toptim.Adam(lin.parameters(), lr=1e-2), toptim.Adam(ref.parameters(), lr=1e-2)
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    for step in range(4):
        if step == 2:
            lin.to("cuda")
        xt = tinygan.tensor(x, device=lin.device)
        for model, o, inp in ((lin, opt, xt), (ref, opt_ref, tinygan.tensor(x))):
            o.zero_grad()
            (model(inp) ** 2).sum().backward()
            o.step()
    assert all(backend.is_cupy_array(v) for st in opt.state.values() for v in st.values() if hasattr(v, "shape"))
    lin.to("cpu")
    for a, b in zip(lin.parameters(), ref.parameters()):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)
