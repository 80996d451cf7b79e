"""The CuPy path without a GPU: the launchers' arithmetic, GPU behaviour checks, and a stand-in pass.

Three parts:

1. **Host-side arithmetic** of ``tinygan/kernels/cuda/launch.py`` (grid sizes,
   the index width, the raw kernels' integer arguments, the optimizers' folded
   scalars, batch norm's counts and two-stage split, the memory order of the
   fused kernels): pure functions, run everywhere, against the NumPy twins --
   the raw and optimizer kernels through their host builds
   (``tests/fakecupy/hostbuild.py``) with exactly the arguments the launchers
   compute.  Plus the device-name rule and the host label check.
2. **GPU behaviour** (marked ``gpu``): a float64 gradient on a float32
   parameter, out-of-range labels already on the GPU, the 0-d constant cache,
   sec_per_iter from CUDA events, the first training steps on the GPU against
   the CPU.  They run with ``pytest -m gpu`` on a GPU and on the CPU stand-in
   for CuPy; the ones that read the stand-in's counters (copies, launches,
   the operands' layouts) only there.
3. **The stand-in pass** (default ``pytest``, no GPU): a subprocess runs
   ``TINYGAN_FAKE_CUPY=1 pytest -m "gpu and not slow" tests/`` -- every
   gpu-marked test of the suite (test_cuda.py's kernel/twin comparisons, the
   ``cuda`` cases of the gradchecks, autograd and PyTorch-parity tests, and
   part 2 above) on NumPy arrays posing as device arrays -- and
   ``benchmarks/gpu_check.sh --dry``.  About a minute on 2 cores.
"""
from __future__ import annotations

import ctypes
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tinygan
from tinygan import backend, nn
from tinygan import optim as toptim
from tinygan.kernels import conv
from tinygan.kernels import optim as kopt
from tinygan.kernels.cuda import launch as L
from tinygan.kernels.cuda import sources as S

from conftest import FAKE_CUPY  # noqa: E402  (tests/ is on sys.path)
from fakecupy import hostbuild  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
GPU = backend.gpu_available()
gpu = pytest.mark.gpu
standin_only = pytest.mark.skipif(not FAKE_CUPY, reason="reads the CPU stand-in's counters (TINYGAN_FAKE_CUPY=1)")
_NO_CXX = pytest.mark.skipif(hostbuild.host_compiler() is None, reason="no C++ compiler for the host build")


@pytest.fixture(scope="module")
def cp():
    if not GPU:
        pytest.skip("needs CuPy and a visible GPU (or TINYGAN_FAKE_CUPY=1)")
    import cupy
    return cupy


@pytest.fixture(scope="module")
def lib():
    """Every registry kernel compiled for the host, with ``<name>__launch(grid, block, ...)``."""
    if hostbuild.host_compiler() is None:
        pytest.skip("no C++ compiler for the host build")
    source, _ = hostbuild.translation_unit(host_launchers=True)
    return hostbuild.host_library(source)


def _ptr(a: np.ndarray):
    return ctypes.c_void_p(a.__array_interface__["data"][0])


# =============================================================================
# 1. host-side arithmetic, on the CPU
# =============================================================================

def test_grid_size_covers_every_element_and_caps_at_the_grid_limit():
    assert [L.grid_size(n) for n in (1, 255, 256, 257, 512, 513)] == [1, 1, 1, 2, 2, 3]
    assert L.grid_size(10, block=4) == 3
    assert L.grid_size(2**50) == 2**31 - 1            # grid-stride loops cover the rest
    with pytest.raises(ValueError, match="positive"):
        L.grid_size(0)


def test_index_type_switches_to_64_bit_at_2_to_the_30():
    assert L.index_type(2**30 - 1) == "int32"
    assert L.index_type(2**30) == "int64"
    assert L.index_type(10, limit=10) == "int64"


def _c_strides(shape):
    return tuple(int(s) for s in np.cumprod((1,) + tuple(shape[:0:-1]))[::-1])


def test_raw_kernel_plans_choose_the_index_width_at_the_32_bit_limit():
    # im2col of a 67x67x64 image, 4x4 windows at stride 1: 64*64 rows * 1024 columns per image
    per_image = 64 * 64 * 4 * 4 * 64                                  # 2^24 elements of cols
    n_below = (2**30 - 2 * L._BLOCK) // per_image                    # 63 images: below the limit
    for n, want in ((n_below, "int32"), (n_below + 1, "int64")):
        shape = (n, 67, 67, 64)
        plan = L.im2col_plan("im2col_nhwc", shape, _c_strides(shape), (4, 4), (1, 1), (64, 64))
        assert plan["total"] == n * per_image and plan["index_type"] == want, (n, plan["total"])
    # the input's extent counts too: a small window of a huge strided view needs 64-bit offsets
    plan = L.im2col_plan("im2col_nhwc", (2, 5, 5, 3), (2**30, 2**20, 2**10, 1), 2, 1, 4)
    assert plan["total"] < 1000 and plan["index_type"] == "int64"
    plan = L.col2im_plan("col2im_nhwc", (2**16, 2**14 + 1), (2**14 + 1, 1), (257, 257), (1, 1), (1, 1),
                         (256, 256))
    assert plan["index_type"] == "int64" and plan["dx_shape"] == (1, 257, 257, 2**14 + 1)


def test_raw_kernel_plans_check_their_arguments():
    with pytest.raises(ValueError, match="im2col_nhwc.*4-D"):
        L.im2col_plan("im2col_nhwc", (5, 5, 2), (10, 2, 1), 2, 1, 4)
    with pytest.raises(ValueError, match="im2col_nhwc.*do not fit"):
        L.im2col_plan("im2col_nhwc", (1, 5, 5, 2), (50, 10, 2, 1), 2, 1, 5)
    with pytest.raises(ValueError, match="im2col_nhwc: stride must be positive"):
        L.im2col_plan("im2col_nhwc", (1, 5, 5, 2), (50, 10, 2, 1), 2, (1, 0), 4)
    with pytest.raises(TypeError, match="im2col_nhwc.*stride"):
        L.im2col_plan("im2col_nhwc", (1, 5, 5, 2), (50, 10, 2, 1), 2, 1.5, 4)
    with pytest.raises(ValueError, match="col2im_nhwc.*is not"):
        L.col2im_plan("col2im_nhwc", (7, 8), (8, 1), (5, 5), (2, 2), (1, 1), (4, 4))


RAW_CASES = [
    # N, Hp, Wp, C, kh, kw, sh, sw: odd strides and kernel sizes included
    (2, 6, 7, 3, 3, 3, 1, 1),
    (2, 11, 9, 3, 3, 5, 3, 2),
    (3, 10, 13, 5, 4, 3, 2, 3),
    (1, 17, 16, 2, 5, 4, 5, 3),
    (2, 9, 9, 7, 1, 1, 3, 3),
    (1, 34, 34, 3, 4, 4, 2, 2),
]


def _layout(a: np.ndarray, layout: str) -> np.ndarray:
    if layout == "contiguous":
        return a
    if layout == "cropped":
        big = np.zeros(tuple(n + 3 for n in a.shape), a.dtype)
        view = big[tuple(slice(1, 1 + n) for n in a.shape)]
        view[...] = a
        return view
    perm = (a.ndim - 1,) + tuple(range(a.ndim - 1))
    return np.ascontiguousarray(a.transpose(perm)).transpose(tuple(int(k) for k in np.argsort(perm)))


def _elements(a: np.ndarray):
    return tuple(s // a.itemsize for s in a.strides)


def _launch_plan(lib, name: str, dtype: str, plan: dict, arrays, monkeypatch=None) -> None:
    """Launch the host build of raw kernel ``name`` exactly as the launcher would: its grid, block and args."""
    r = S.render(name, dtype, plan["index_type"])
    fn = getattr(lib, r.function_names[0] + "__launch")
    ityp = ctypes.c_int if plan["index_type"] == "int32" else ctypes.c_longlong
    fn.argtypes = [ctypes.c_uint, ctypes.c_uint] + [ctypes.c_void_p] * len(arrays) + [ityp] * len(plan["args"])
    fn.restype = None
    fn(plan["grid"], L._BLOCK, *[_ptr(a) for a in arrays], *plan["args"])


@_NO_CXX
@pytest.mark.parametrize("index", ["int32", "int64"])
@pytest.mark.parametrize("layout", ["contiguous", "cropped", "transposed"])
@pytest.mark.parametrize("case", RAW_CASES)
def test_raw_kernel_plans_match_numpy_on_host(lib, case, layout, index, monkeypatch):
    """The launchers' grid and integer arguments, fed to the CUDA source's host build, give the NumPy twins."""
    if index == "int64":
        monkeypatch.setattr(L, "_INT32_LIMIT", 0)
    N, Hp, Wp, C, kh, kw, sh, sw = case
    Ho, Wo = (Hp - kh) // sh + 1, (Wp - kw) // sw + 1
    rng = np.random.default_rng(sum(case))
    for dtype in ("float32", "float64"):
        x = _layout(rng.standard_normal((N, Hp, Wp, C)).astype(dtype), layout)
        plan = L.im2col_plan("im2col_nhwc", x.shape, _elements(x), (kh, kw), (sh, sw), (Ho, Wo))
        assert plan["index_type"] == index
        cols = np.full(plan["cols_shape"], np.nan, dtype)
        _launch_plan(lib, "im2col_nhwc", dtype, plan, (x, cols))
        np.testing.assert_array_equal(cols, conv._im2col(x, (kh, kw), (sh, sw), (Ho, Wo)))
        d = _layout(rng.standard_normal(cols.shape).astype(dtype), layout)
        plan = L.col2im_plan("col2im_nhwc", d.shape, _elements(d), (Hp, Wp), (kh, kw), (sh, sw), (Ho, Wo))
        dx = np.full(plan["dx_shape"], np.nan, dtype)
        _launch_plan(lib, "col2im_nhwc", dtype, plan, (d, dx))
        np.testing.assert_array_equal(dx, conv._col2im(d, (Hp, Wp), (kh, kw), (sh, sw), (Ho, Wo)))


def _elementwise_on_host(lib, name: str, dtype: str, values: dict) -> dict:
    """Run registry element-wise kernel ``name`` (host build) on flat arrays/scalars; returns the arrays."""
    r = S.render(name, dtype)
    e = r.source
    ct = {"float32": ctypes.c_float, "float64": ctypes.c_double, "bool": ctypes.c_bool}
    argv, types, n, bufs = [1, 1], [ctypes.c_uint, ctypes.c_uint], None, {}
    for raw, typ, pname in S.parse_params(r.in_params) + S.parse_params(r.out_params):
        v = values[pname]
        if pname in e.scalars:
            argv.append(ct[typ](v))
            types.append(ct[typ])
            continue
        a = np.array(v, dtype=np.dtype(typ), order="C", copy=True).ravel()
        n = a.size if n is None and not raw else n
        bufs[pname] = a
        argv.append(_ptr(a))
        types.append(ctypes.c_void_p)
    fn = getattr(lib, r.function_names[0] + "__launch")
    fn.argtypes, fn.restype = types + [ctypes.c_longlong], None
    fn(*argv, n)
    return bufs


def test_adam_scalars_are_the_folded_bias_corrections():
    s = L.adam_scalars(lr=2e-4, beta1=0.5, beta2=0.999, eps=1e-8, step=3, weight_decay=0.01)
    want = (0.5, 0.5, 0.999, 1 - 0.999, math.sqrt(1 - 0.999**3), 1e-8, 2e-4 / (1 - 0.5**3), 0.01)
    assert s == pytest.approx(want, rel=1e-15, abs=0)
    params = [p for _, _, p in S.parse_params(S.REGISTRY["adam_step"].in_params)]
    assert len(s) == len(S.REGISTRY["adam_step"].scalars) and params[1:] == list(S.REGISTRY["adam_step"].scalars)
    with pytest.raises(ValueError, match="step"):
        L.adam_scalars(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, step=0)


@_NO_CXX
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_adam_launch_arguments_match_the_numpy_twin(lib, dtype, weight_decay):
    """The adam_step source, given adam_scalars' values, steps like tinygan.kernels.optim.adam_step_ on NumPy."""
    rng = np.random.default_rng(3)
    p, m = rng.standard_normal(23).astype(dtype), rng.standard_normal(23).astype(dtype)
    v = np.abs(rng.standard_normal(23)).astype(dtype)
    ref = [a.copy() for a in (p, m, v)]
    names = [n for _, _, n in S.parse_params(S.REGISTRY["adam_step"].in_params)][1:]
    tol = dict(rtol=2e-6, atol=1e-7) if dtype == "float32" else dict(rtol=1e-13, atol=1e-15)
    for step in range(1, 6):
        g = rng.standard_normal(23).astype(dtype)
        hyper = dict(lr=2e-3, beta1=0.5, beta2=0.999, eps=1e-8, step=step, weight_decay=weight_decay)
        kopt.adam_step_(*ref[:1], g, *ref[1:], **hyper)
        out = _elementwise_on_host(lib, "adam_step", dtype,
                                   {"g": g, **dict(zip(names, L.adam_scalars(**hyper))), "p": p, "m": m, "v": v})
        p, m, v = out["p"], out["m"], out["v"]
        for name, a, b in (("p", p, ref[0]), ("m", m, ref[1]), ("v", v, ref[2])):
            np.testing.assert_allclose(a, b, err_msg=f"{name} at step {step}", **tol)


@_NO_CXX
@pytest.mark.parametrize("centered", [False, True])
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_rmsprop_launch_arguments_match_the_numpy_twin(lib, centered, momentum):
    rng = np.random.default_rng(4)
    dtype = "float64"
    p = rng.standard_normal(13)
    v, buf, gavg = np.zeros(13), np.zeros(13), np.zeros(13)
    ref = [a.copy() for a in (p, v, buf, gavg)]
    names = [n for _, _, n in S.parse_params(S.REGISTRY["rmsprop_step"].in_params)][1:]
    hyper = dict(lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.01, momentum=momentum, centered=centered)
    scalars = L.rmsprop_scalars(**hyper)
    assert scalars[-2:] == (momentum > 0, centered)
    for _ in range(3):
        g = rng.standard_normal(13)
        kopt.rmsprop_step_(ref[0], g, ref[1], ref[2] if momentum else None, ref[3] if centered else None, **hyper)
        out = _elementwise_on_host(lib, "rmsprop_step", dtype,
                                   {"g": g, **dict(zip(names, scalars)), "p": p, "v": v, "buf": buf, "gavg": gavg})
        p, v, buf, gavg = out["p"], out["v"], out["buf"], out["gavg"]
        np.testing.assert_allclose(p, ref[0], rtol=1e-13)
        np.testing.assert_allclose(v, ref[1], rtol=1e-13)


def test_batch_norm_counts_and_two_stage_split():
    assert L.reduce_count((64, 128, 16, 16)) == 64 * 16 * 16
    assert L.reduce_count((8, 5)) == 8
    assert L.reduce_count((0, 3, 4, 4)) == 0
    assert L.two_stage_groups(1024, 512) == 32 and L.two_stage_groups(512, 8) == 1   # M = 512: one stage
    for m, c in ((16384, 128), (1024, 512), (64 * 7 * 7, 64), (168, 5), (2**20, 3)):
        g = L.two_stage_groups(m, c)
        assert g == 1 or (m % g == 0 and g >= 4 and g & (g - 1) == 0 and m // g >= L._MIN_GROUP_ROWS
                          and g * c <= max(L._STAGE1_OUTPUTS, c)), (m, c, g)
    assert L.two_stage_groups(16384, 128) == 128                    # 16384 stage-1 outputs of 128 rows
    assert L.two_stage_groups(64 * 7 * 7, 64) == 64                 # 3136 = 64 * 49
    assert L.two_stage_groups(63, 8) == 1                           # odd M: one stage
    assert L.two_stage_groups(32, 8) == 1                           # too few rows to split
    assert L.two_stage_groups(0, 8) == 1


def test_channels_last_rows_and_memory_order():
    nchw = np.zeros((2, 3, 4, 5))
    nhwc_view = np.zeros((2, 4, 5, 3)).transpose(0, 3, 1, 2)
    assert not L.channels_last_rows(nchw.shape, _elements(nchw))
    assert L.channels_last_rows(nhwc_view.shape, _elements(nhwc_view))
    assert L.channels_last_rows((6, 4), (4, 1)) and not L.channels_last_rows((6, 4), (1, 6))
    cropped = np.zeros((2, 5, 5, 3))[:, :4].transpose(0, 3, 1, 2)
    assert not L.channels_last_rows(cropped.shape, _elements(cropped))
    assert L.memory_order(nchw.shape, _elements(nchw)) == (0, 1, 2, 3)
    assert L.memory_order(nhwc_view.shape, _elements(nhwc_view)) == (0, 2, 3, 1)
    assert np.transpose(nhwc_view, L.memory_order(nhwc_view.shape, _elements(nhwc_view))).flags.c_contiguous
    one = np.zeros((1, 4, 5, 3)).transpose(0, 3, 1, 2)               # size-1 axes go first, any stride
    assert np.transpose(one, L.memory_order(one.shape, _elements(one))).flags.c_contiguous


def test_only_cuda_device_0_is_accepted():
    assert backend.normalize_device("cuda:0") == "cuda"
    assert backend.normalize_device("CUDA") == "cuda"
    with pytest.raises(ValueError, match="CUDA_VISIBLE_DEVICES=1"):
        backend.normalize_device("cuda:1")
    with pytest.raises(ValueError, match="unknown device"):
        backend.normalize_device("cuda:x")

    class TorchLikeDevice:
        type, index = "cuda", 2
    with pytest.raises(ValueError, match="CUDA_VISIBLE_DEVICES=2"):
        backend.normalize_device(TorchLikeDevice())
    with pytest.raises(ValueError, match="cuda:3"):
        tinygan.zeros(2, device="cuda:3")


def test_host_labels_are_checked_before_they_move():
    from tinygan.gan.models import ConditionalMLPGenerator, check_class_labels
    G = ConditionalMLPGenerator(nz=4, num_classes=3, out_shape=(2,), hidden=(8,))
    z = tinygan.randn(4, 4)
    for bad in ([0, 1, 2, 3], [0, -1, 1, 2]):
        with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
            G(z, labels=np.array(bad))
        with pytest.raises(ValueError, match=r"\[0, 3\)"):
            check_class_labels(np.array(bad), 4, 3)
    with pytest.raises(ValueError, match="integers of shape"):
        check_class_labels(np.zeros(4), 4, 3)


def test_missing_cuda_libraries_give_a_clear_error(monkeypatch):
    """CuPy imports and sees a GPU but cannot load NVRTC / cuBLAS (a driver-only machine): name the extra."""
    import types

    def broken():
        raise RuntimeError("CuPy failed to load libnvrtc.so.13")
    fake = types.SimpleNamespace(__version__="14.2.0", ndarray=type(None), float32=np.float32,
                                 cuda=types.SimpleNamespace(is_available=lambda: True,
                                                            nvrtc=types.SimpleNamespace(getVersion=broken)))
    monkeypatch.setattr(backend, "_import_cupy", lambda: fake)
    assert not backend.gpu_available()
    reason = backend.gpu_unavailable_reason()
    assert "NVRTC" in reason and "libnvrtc" in reason and "cupy-cuda13x[ctk]" in reason and "tinygan[cuda13]" in reason
    with pytest.raises(RuntimeError, match="NVRTC"):
        tinygan.zeros(2, device="cuda")


# =============================================================================
# 2. GPU behaviour (a GPU, or the stand-in)
# =============================================================================

@gpu
@pytest.mark.parametrize("opt", ["adam", "rmsprop", "sgd"])
def test_float64_gradient_on_float32_parameter_steps_alike_on_both_devices(cp, opt):
    make = {"adam": lambda ps: toptim.Adam(ps, lr=1e-2), "rmsprop": lambda ps: toptim.RMSprop(ps, lr=1e-2),
            "sgd": lambda ps: toptim.SGD(ps, lr=1e-2, momentum=0.9)}[opt]
    rng = np.random.default_rng(0)
    w0 = rng.standard_normal((4, 3)).astype(np.float32)
    grads = [rng.standard_normal((4, 3)) for _ in range(3)]                   # float64
    out = {}
    for device in ("cpu", "cuda"):
        w = nn.Parameter(tinygan.tensor(w0, device=device))
        o = make([w])
        for g in grads:
            w.grad = tinygan.tensor(g, device=device)                        # float64 gradient
            o.step()
        assert w.dtype == np.float32
        out[device] = w.numpy()
    np.testing.assert_allclose(out["cuda"], out["cpu"], rtol=1e-6, atol=1e-7)


@gpu
def test_out_of_range_labels_on_the_gpu_poison_their_rows_instead_of_wrapping(cp):
    from tinygan.gan.models import ConditionalDCGANDiscriminator, ConditionalMLPGenerator
    tinygan.manual_seed(0)
    G = ConditionalMLPGenerator(nz=4, num_classes=3, out_shape=(2,), hidden=(8,)).to("cuda")
    z = tinygan.randn(5, 4, device="cuda")
    labels = backend.to_device(np.array([0, 1, 2, 3, -1]), "cuda")          # 3 and -1 would wrap in CuPy
    bad_rows = np.isnan(G(z, labels=labels).numpy()).any(axis=1)
    assert bad_rows.tolist() == [False, False, False, True, True]
    E = ConditionalMLPGenerator(nz=4, num_classes=3, out_shape=(2,), hidden=(8,), label_embedding=2).to("cuda")
    assert np.isnan(E(z, labels=labels).numpy()).any(axis=1).tolist() == [False, False, False, True, True]
    D = ConditionalDCGANDiscriminator(nc=1, num_classes=3, ndf=4, image_size=8).to("cuda")
    logits = D(tinygan.randn(5, 1, 8, 8, device="cuda"), labels=labels).numpy()
    assert np.isnan(logits).tolist() == [False, False, False, True, True]
    with pytest.raises(ValueError, match=r"\[0, 3\)"):                        # host labels: an error
        G(z, labels=np.array([0, 1, 2, 3, 0]))


@gpu
def test_scalar_constants_are_cached_per_value_dtype_and_device(cp, fake_cupy):
    a = backend.scalar_constant(0.5, np.float32, cp)
    assert a is backend.scalar_constant(0.5, np.float32, cp)
    assert a.dtype == np.float32 and a.shape == () and float(a) == 0.5
    assert backend.scalar_constant(0.5, np.float64, cp) is not a
    assert backend.scalar_constant(0.25, np.float32, cp) is not a
    assert backend.scalar_constant(-0.0, np.float32, cp) is not backend.scalar_constant(0.0, np.float32, cp)
    assert backend.scalar_constant(2, None, cp).dtype == np.int64                # NumPy's type for a Python int
    assert isinstance(backend.scalar_constant(0.5, np.float32, np), np.ndarray)
    if fake_cupy:                                                              # writing into one fails in CI
        with pytest.raises(ValueError, match="read-only"):
            a += 1


@gpu
def test_cuda_step_clock_reads_events_at_float(cp):
    clock = backend.CudaStepClock()
    x = cp.ones((64, 64), dtype=cp.float32)
    (x @ x).sum()
    lap = clock.lap()
    seconds = float(lap)
    assert seconds >= 0 and float(np.asarray(lap)) == seconds


def _small_run(tmp_path, device, **kw):
    from tinygan.run import TrainConfig, train
    base = dict(steps=3, batch_size=8, ngf=8, ndf=8, nz=16, out=str(tmp_path / device), sample_every=100,
                checkpoint_every=100, progress=False, device=device, log_every=1)
    base.update(kw)
    train(TrainConfig(**base))
    return [json.loads(line) for line in (tmp_path / device / "metrics.jsonl").read_text().splitlines()]


@gpu
@pytest.mark.parametrize("model", ["dcgan", "cgan"])
def test_training_on_the_gpu_matches_the_cpu_first_steps(cp, tmp_path, model):
    """The default job's first losses on the GPU equal the CPU's to float32 noise; sec_per_iter from events."""
    rows = {d: _small_run(tmp_path, d, model=model) for d in ("cpu", "cuda")}
    for key in ("Loss_D", "Loss_G", "D_x", "D_G_z1", "D_G_z2"):
        a, b = rows["cuda"][0][key], rows["cpu"][0][key]
        assert abs(a - b) <= 1e-4 * max(1.0, abs(b)), (key, a, b)
    assert all(isinstance(r["sec_per_iter"], float) and r["sec_per_iter"] >= 0 for r in rows["cuda"])
    assert [r["step"] for r in rows["cuda"]] == [1, 2, 3]


# --- on the stand-in only: its counters and launch records ------------------------------------------

@gpu
@standin_only
def test_standin_behaves_like_cupy_where_numpy_differs(cp):
    a = cp.asarray(np.arange(12, dtype=np.float32).reshape(3, 4))
    with pytest.raises(TypeError, match="Implicit conversion"):
        np.asarray(a)
    with pytest.raises(TypeError, match="Unsupported type"):
        a + np.ones(4, np.float32)
    assert (a.T * 2).flags.c_contiguous                                        # element-wise: C order
    assert cp.empty_like(a.T).strides == a.T.strides                           # *_like: order K
    assert a[cp.asarray(np.array([3, -4]))].get().tolist() == a.get()[[0, 2]].tolist()   # indices wrap
    assert isinstance(a.sum(), cp.ndarray) and a.sum().shape == ()
    assert float(a[1, 1]) == 5.0 and a[0, 1].item() == 1.0
    assert np.isnan(cp.empty(3).get()).all()                                   # uninitialised memory shows


@gpu
@standin_only
def test_fused_kernels_walk_channels_last_views_in_memory_order(cp):
    from tinygan.kernels import activations as act
    from tinygan.kernels import batchnorm as bn
    x = (cp.asarray(np.random.default_rng(0).standard_normal((4, 6, 5, 7)).astype(np.float32))
         .transpose(0, 3, 1, 2))                                               # (N, C, H, W) view of NHWC
    gamma, beta = cp.ones(7, dtype=cp.float32), cp.zeros(7, dtype=cp.float32)
    with cp.record_launches() as log:
        y, mask = act.leaky_relu_forward(x, 0.2)
        act.leaky_relu_backward(y, mask, 0.2)
        out = bn.batch_norm_forward(x, gamma, beta, 1e-5)
        bn.batch_norm_backward(y, out[3], out[4], gamma)
    dims = {e["name"]: e["collapsed_ndim"] for e in log if e["kind"] == "elementwise"}
    assert dims["tinygan_leaky_relu_forward_f32"] == 1 and dims["tinygan_leaky_relu_backward_f32"] == 1
    assert dims["tinygan_batch_norm_normalize_f32"] <= 2 and dims["tinygan_batch_norm_backward_f32"] <= 2
    assert y.strides == x.strides and out[0].strides == x.strides              # outputs keep x's layout


@gpu
@standin_only
def test_channels_last_batch_norm_reduces_in_two_stages(cp):
    from tinygan.kernels import batchnorm as bn
    rng = np.random.default_rng(1)
    x0 = (rng.standard_normal((8, 16, 16, 32)) * 2 + 1).transpose(0, 3, 1, 2)  # M = 2048, C = 32
    g0 = rng.standard_normal((8, 16, 16, 32)).transpose(0, 3, 1, 2)
    x = cp.ascontiguousarray(cp.asarray(np.ascontiguousarray(x0.transpose(0, 2, 3, 1)))).transpose(0, 3, 1, 2)
    g = cp.asarray(np.ascontiguousarray(g0.transpose(0, 2, 3, 1))).transpose(0, 3, 1, 2)
    with cp.record_launches() as log:
        out = bn.batch_norm_forward(x, None, None, 1e-5)
        back = bn.batch_norm_backward(g, out[3], out[4], None)
    groups = L.two_stage_groups(2048, 32)
    reductions = [e for e in log if e["kind"] == "reduction"]
    assert groups > 1 and reductions and all(e["out_size"] == groups * 32 for e in reductions)
    ref = bn.batch_norm_forward(np.ascontiguousarray(x0), None, None, 1e-5)
    for a, b in zip(out, ref):
        np.testing.assert_allclose(a.get(), b, rtol=1e-12, atol=1e-12)
    ref_b = bn.batch_norm_backward(np.ascontiguousarray(g0), ref[3], ref[4], None)
    for a, b in zip(back, ref_b):
        np.testing.assert_allclose(a.get(), b, rtol=1e-11, atol=1e-11)


@gpu
@standin_only
def test_a_training_step_copies_only_its_data_to_the_device(cp):
    """Per step: the real batch and z (+ labels); every further host-to-device copy is a 0-d constant."""
    from tinygan.run import TrainConfig, Trainer
    for model, data_copies in (("dcgan", 2), ("cgan", 3)):
        t = Trainer(TrainConfig(model=model, steps=5, batch_size=8, ngf=8, ndf=8, nz=16, device="cuda",
                                progress=False, out="unused"))
        t.train_step()
        cp.stats.reset()
        t.train_step()
        s = cp.stats.snapshot()
        assert s["h2d"] - s["h2d_scalar"] == data_copies, (model, s)
        assert s["d2h"] == 0, (model, s)                                       # no host sync inside a step


@gpu
@standin_only
def test_missing_libraries_on_the_standin(monkeypatch):
    monkeypatch.setenv("FAKECUPY_BROKEN", "cublas")
    monkeypatch.setattr(backend, "_PROBED", {})
    assert not backend.gpu_available()
    assert "cuBLAS" in backend.gpu_unavailable_reason()
    monkeypatch.setenv("FAKECUPY_BROKEN", "")
    monkeypatch.setattr(backend, "_PROBED", {})
    assert backend.gpu_available()


# =============================================================================
# 3. the stand-in pass, from the default run
# =============================================================================

_subprocess_only = pytest.mark.skipif(FAKE_CUPY, reason="already running on the stand-in")


def _standin_env() -> dict:
    env = dict(os.environ)
    env["TINYGAN_FAKE_CUPY"] = "1"
    env.pop("PYTEST_ADDOPTS", None)
    return env


@_subprocess_only
@_NO_CXX
def test_gpu_marked_tests_pass_on_the_standin():
    """``TINYGAN_FAKE_CUPY=1 pytest -m "gpu and not slow" tests/``: the whole gpu-marked suite on the stand-in."""
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "gpu and not slow",
           "-x", "--tb=short", "tests/"]
    proc = subprocess.run(cmd, cwd=ROOT, env=_standin_env(), capture_output=True, text=True, timeout=900)
    tail = (proc.stdout + proc.stderr)[-6000:]
    assert proc.returncode == 0, tail
    m = re.search(r"(\d+) passed", proc.stdout)
    assert m and int(m.group(1)) >= 300, tail                                   # it really ran the suite
    assert " failed" not in proc.stdout and " error" not in proc.stdout, tail


@_subprocess_only
@_NO_CXX
def test_gpu_check_dry_run(tmp_path):
    """``benchmarks/gpu_check.sh --dry``: every stage on the stand-in, at most 8 files, summary last."""
    from tinygan.metrics import classifier
    env = _standin_env()
    del env["TINYGAN_FAKE_CUPY"]                       # the script activates the stand-in itself
    env["PYTHON"] = sys.executable
    if not classifier.classifier_path().is_file():     # eval would first train the digit classifier (~1 min)
        env["GPU_CHECK_EVAL"] = "0"
    out = tmp_path / "results"
    proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--dry", str(out)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)
    tail = (proc.stdout + proc.stderr)[-6000:]
    assert proc.returncode == 0, tail
    files = sorted(p.name for p in out.iterdir())
    assert len(files) <= 8 and {"summary.txt", "versions.txt", "tests.log", "checks.log", "probes.json"} <= set(files)
    assert max(out.iterdir(), key=lambda p: p.stat().st_mtime_ns).name == "summary.txt"
    summary = (out / "summary.txt").read_text()
    assert "DRY RUN" in summary, summary
    for stage in ("tests", "compile-tests", "probes", "train"):
        assert re.search(rf"^{stage}: rc=0,", summary, re.M), summary
    probes = json.loads((out / "probes.json").read_text())
    assert probes["stand_in"] and all(v["ok"] for v in probes.values() if isinstance(v, dict)), probes
    assert "first-step losses" in summary and "ok" in summary.split("first-step losses", 1)[1].splitlines()[0]


@gpu
@standin_only
def test_standin_without_a_compiler_runs_the_numpy_twins(cp, monkeypatch):
    """FAKECUPY_KERNELS=twins (what a machine without a C++ compiler gets): same results as the host builds."""
    from tinygan.kernels import activations as act
    from tinygan.kernels import batchnorm as bn
    rng = np.random.default_rng(2)
    x_pad = rng.standard_normal((2, 9, 8, 3))
    x4 = rng.standard_normal((4, 3, 16, 16))
    p, g = rng.standard_normal(10), rng.standard_normal(10)

    def run():
        cols = L.im2col_nhwc(cp.asarray(x_pad), (3, 2), (2, 3), (4, 3))
        dx = L.col2im_nhwc(cols, (9, 8), (3, 2), (2, 3), (4, 3))
        xg = cp.asarray(x4)
        y, mask = act.leaky_relu_forward(xg, 0.2)
        out = bn.batch_norm_forward(xg, None, None, 1e-5)
        back = bn.batch_norm_backward(y, out[3], out[4], None)
        pa, m, v = cp.asarray(p), cp.zeros(10), cp.zeros(10)
        kopt.adam_step_(pa, cp.asarray(g), m, v, lr=1e-2, beta1=0.5, beta2=0.999, eps=1e-8, step=1)
        pr, sq, buf, gavg = cp.asarray(p), cp.zeros(10), cp.zeros(10), cp.zeros(10)
        kopt.rmsprop_step_(pr, cp.asarray(g), sq, buf, gavg, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0,
                           momentum=0.9, centered=True)
        return [a.get() for a in (cols, dx, y, mask, *out, *back, pa, m, v, pr, sq, buf, gavg)]

    host = run()
    monkeypatch.setenv("FAKECUPY_KERNELS", "twins")
    twins = run()
    for a, b in zip(twins, host):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


# --- the launchers' argument checks, one argument at a time ---------------------------------------

def _launcher_calls(cp):
    """Each launcher with good arguments: (kernel name, call(**overrides), its checked array arguments, the names
    of those that must share one shape)."""
    f = lambda *shape: cp.asarray(np.random.default_rng(0).standard_normal(shape).astype(np.float32))  # noqa: E731
    mask = cp.asarray(np.array([[True, False, True], [False, True, True]]))
    adam = dict(p=f(2, 3), g=f(2, 3), m=f(2, 3), v=f(2, 3))
    rms = dict(p=f(2, 3), g=f(2, 3), v=f(2, 3), buf=f(2, 3), gavg=f(2, 3))
    bn_f = dict(x=f(4, 3, 2, 2), gamma=f(3), beta=f(3))
    bn_b = dict(g=f(4, 3, 2, 2), xhat=f(4, 3, 2, 2), invstd=f(3), gamma=f(3))
    return [
        ("adam_step", lambda **a: L.adam_step_(**{**adam, **a}, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, step=1),
         adam, set(adam)),
        ("rmsprop_step", lambda **a: L.rmsprop_step_(**{**rms, **a}, lr=1e-3, alpha=0.99, eps=1e-8, weight_decay=0.0,
                                                     momentum=0.9, centered=True), rms, set(rms)),
        ("batch_norm_forward", lambda **a: L.batch_norm_forward(**{**bn_f, **a}, eps=1e-5, axes=(0, 2, 3),
                                                                cs=(1, 3, 1, 1)), bn_f, set()),
        ("batch_norm_backward", lambda **a: L.batch_norm_backward(**{**bn_b, **a}, axes=(0, 2, 3), cs=(1, 3, 1, 1)),
         bn_b, {"g", "xhat"}),
        ("leaky_relu_forward", lambda **a: L.leaky_relu_forward(**{"x": f(2, 3), **a}, slope=0.2), {"x": f(2, 3)},
         set()),
        ("leaky_relu_backward", lambda **a: L.leaky_relu_backward(**{"g": f(2, 3), "mask": mask, **a}, slope=0.2),
         {"g": f(2, 3)}, set()),
    ]


@gpu
def test_launchers_name_the_argument_they_refuse(cp):
    """A host array, an int array, a second dtype or a second shape: the message names kernel and argument."""
    for kernel, call, arrays, same_shape in _launcher_calls(cp):
        call()                                                                       # the good call runs
        for name, a in arrays.items():
            host = np.zeros(a.shape, np.float32)
            with pytest.raises(TypeError, match=rf"^CUDA kernel {kernel}: {name} must be a cupy\.ndarray, "
                                                r"got numpy\.ndarray$"):
                call(**{name: host})
            with pytest.raises(TypeError, match=rf"^CUDA kernel {kernel}: {name} has dtype int32 \(shape "
                                                rf"{re.escape(str(tuple(a.shape)))}\); expected float32 or float64$"):
                call(**{name: cp.zeros(a.shape, dtype=cp.int32)})
            if not kernel.startswith("leaky_relu"):                                # float arrays beside it
                with pytest.raises(TypeError, match=rf"^CUDA kernel {kernel}: all arrays must have one dtype, got .*"
                                                    rf"{name} float64"):
                    call(**{name: a.astype(cp.float64)})
            if name in same_shape:
                wrong = tuple(s + 1 for s in a.shape)
                with pytest.raises(ValueError, match=rf"^CUDA kernel {kernel}: arrays must have the same shape, got "
                                                     rf".*{name} {re.escape(str(wrong))}"):
                    call(**{name: cp.zeros(wrong, dtype=a.dtype)})


@gpu
def test_leaky_relu_launchers_check_the_mask_and_the_dtype(cp):
    g = cp.zeros((2, 3), dtype=cp.float32)
    for call in (lambda m: L.leaky_relu_backward(g, m, 0.2), lambda m: L.leaky_relu_scale(m, 0.2, np.float32)):
        kernel = "leaky_relu_backward" if call.__code__.co_names[-1] == "leaky_relu_backward" else "leaky_relu_scale"
        with pytest.raises(TypeError, match=rf"^CUDA kernel {kernel}: mask must be a boolean cupy\.ndarray, "
                                            r"got dtype float32$"):
            call(cp.zeros((2, 3), dtype=cp.float32))
        with pytest.raises(TypeError, match=rf"^CUDA kernel {kernel}: mask must be a boolean cupy\.ndarray, "
                                            r"got dtype bool$"):
            call(np.zeros((2, 3), dtype=bool))                                       # a host mask
        with pytest.raises(TypeError, match=rf"^CUDA kernel {kernel}: mask must be a boolean cupy\.ndarray, "
                                            r"got list$"):
            call([[True]])
    with pytest.raises(ValueError, match=r"^CUDA kernel leaky_relu_backward: arrays must have the same shape, "
                                         r"got g \(2, 3\), mask \(3, 2\)$"):
        L.leaky_relu_backward(g, cp.zeros((3, 2), dtype=bool), 0.2)
    with pytest.raises(TypeError, match=r"^CUDA kernel leaky_relu_scale: dtype must be float32 or float64, "
                                        r"got int64$"):
        L.leaky_relu_scale(cp.zeros((2, 3), dtype=bool), 0.2, np.int64)
    s = L.leaky_relu_scale(cp.asarray(np.array([True, False])), 0.25, "float64")
    assert s.dtype == np.float64
    np.testing.assert_array_equal(backend.to_numpy(s), [1.0, 0.25])


@gpu
def test_rmsprop_launcher_needs_the_buffers_its_options_use(cp):
    p = cp.zeros((2, 3), dtype=cp.float32)
    kw = dict(lr=1e-3, alpha=0.99, eps=1e-8, weight_decay=0.0)
    with pytest.raises(ValueError, match=r"^CUDA kernel rmsprop_step: momentum > 0 needs a momentum buffer$"):
        L.rmsprop_step_(p, p.copy(), p.copy(), None, None, **kw, momentum=0.9, centered=False)
    with pytest.raises(ValueError, match=r"^CUDA kernel rmsprop_step: centered=True needs a grad_avg buffer$"):
        L.rmsprop_step_(p, p.copy(), p.copy(), None, None, **kw, momentum=0.0, centered=True)
    # without momentum the buffer is never read: one of another shape is no error
    L.rmsprop_step_(p, p.copy(), p.copy(), cp.zeros(1, dtype=cp.float32), None, **kw, momentum=0.0, centered=False)


@gpu
def test_adam_launcher_default_weight_decay_is_zero(cp):
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal((2, 3)).astype(np.float32) for _ in range(3)] + [np.ones((2, 3), np.float32)]
    dev = [cp.asarray(a) for a in arrays]
    L.adam_step_(*dev, lr=1e-2, beta1=0.9, beta2=0.999, eps=1e-8, step=1)
    p, g, m, v = arrays
    kopt.adam_step_(p, g, m, v, lr=1e-2, beta1=0.9, beta2=0.999, eps=1e-8, step=1, weight_decay=0.0)
    np.testing.assert_allclose(backend.to_numpy(dev[0]), p, rtol=1e-6)


@pytest.mark.parametrize("plan", ["im2col", "col2im"])
@pytest.mark.parametrize("name", ["padded_hw", "kernel_hw", "stride", "out_hw"])
def test_conv_plans_name_the_size_they_refuse(plan, name):
    """The host plans of the im2col / col2im launchers: every size named in its message (runs everywhere)."""
    good = {"padded_hw": (6, 6), "kernel_hw": (3, 3), "stride": (1, 1), "out_hw": (4, 4)}
    if plan == "im2col" and name == "padded_hw":
        pytest.skip("im2col reads the padded size off x_pad's shape")

    def run(**bad):
        a = {**good, **bad}
        if plan == "im2col":
            return L.im2col_plan("im2col_nhwc", (2, *a["padded_hw"], 3), (108, 18, 3, 1), a["kernel_hw"],
                                 a["stride"], a["out_hw"])
        return L.col2im_plan("col2im_nhwc", (2 * 16, 27), (27, 1), a["padded_hw"], a["kernel_hw"], a["stride"],
                             a["out_hw"])

    kernel = f"{plan}_nhwc"
    run()
    with pytest.raises(ValueError, match=rf"^CUDA kernel {kernel}: {name} must be positive, got \(0, 1\)$"):
        run(**{name: (0, 1)})
    with pytest.raises(TypeError, match=rf"^CUDA kernel {kernel}: {name} must be an int or a pair of ints"):
        run(**{name: 1.5})


def test_conv_plans_check_the_array_ranks():
    with pytest.raises(ValueError, match=r"^CUDA kernel k: x_pad must be 4-D, got shape \(2, 6, 6\)$"):
        L.im2col_plan("k", (2, 6, 6), (36, 6, 1), 3, 1, 4)
    with pytest.raises(ValueError, match=r"^CUDA kernel k: dcols must be 2-D, got shape \(32, 27, 1\)$"):
        L.col2im_plan("k", (32, 27, 1), (27, 1, 1), 6, 3, 1, 4)


@gpu
def test_conv_launchers_name_their_array(cp):
    x = cp.zeros((2, 6, 6, 3), dtype=cp.float32)
    with pytest.raises(ValueError, match=r"^CUDA kernel im2col_nhwc: x_pad must be 4-D, got shape \(6, 6, 3\)$"):
        L.im2col_nhwc(x[0], 3, 1, 4)
    with pytest.raises(ValueError, match=r"^CUDA kernel col2im_nhwc: dcols must be 2-D, got shape \(2, 6, 6, 3\)$"):
        L.col2im_nhwc(x, 6, 3, 1, 4)


def test_launch_helpers_edges():
    """The small host helpers at their edges: one-thread blocks, empty dims, size-1 axes, zero channels."""
    assert L.grid_size(10, block=1) == 10
    assert L.extent((2, 3), (3, 1)) == 5                     # the last element's offset: 3 * 1 + 1 * 2
    assert L.extent((2, 3), (-3, 1)) == 5                    # |stride|
    assert L.extent((0, 3), (3, 1)) == 2                     # an empty dim adds nothing (not -3)
    assert L.memory_order((2, 1, 3), (3, 3, 1)) == (1, 0, 2)   # size-1 axes first, then by |stride|
    assert L.memory_order((1, 2), (1, 1)) == (0, 1)
    assert L.reduce_count((4, 0, 2, 2)) == 0                 # no channels: nothing to average, no division
    hyper = dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, step=2)
    assert L.adam_scalars(**hyper) == L.adam_scalars(**hyper, weight_decay=0.0)


@pytest.mark.parametrize("plan", ["im2col", "col2im"])
def test_conv_plans_of_an_empty_batch_launch_nothing(plan):
    if plan == "im2col":
        p = L.im2col_plan("k", (0, 6, 6, 3), (108, 18, 3, 1), 3, 1, 4)
    else:
        p = L.col2im_plan("k", (0, 27), (27, 1), 6, 3, 1, 4)
    assert p["total"] == 0 and p["grid"] == 0


def test_col2im_plan_index_width_keeps_one_grid_of_headroom():
    """largest = max(total, extent) + one block: an extent one block below the limit needs int64."""
    limit, rows = 2**30, 16                                  # dcols (16, 27): extent (rows - 1) sR + 26
    assert L.col2im_plan("k", (rows, 27), (27, 1), 6, 3, 1, 4)["index_type"] == "int32"
    edge = (limit - 256 - 26) // (rows - 1)                  # extent + 256 just below the limit: int32
    assert L.col2im_plan("k", (rows, 27), (edge, 1), 6, 3, 1, 4)["index_type"] == "int32"
    assert L.col2im_plan("k", (rows, 27), (edge + 1, 1), 6, 3, 1, 4)["index_type"] == "int64"


@pytest.mark.parametrize("plan", ["im2col", "col2im"])
@pytest.mark.parametrize("stride,out_hw", [(1, (5, 4)), (1, (4, 5)), (2, (3, 2)), (2, (2, 3))])
def test_conv_plans_refuse_windows_past_the_image(plan, stride, out_hw):
    """6x6 padded image, 3x3 kernel: 4 windows fit at stride 1 and 2 at stride 2; one more in H or W does not."""
    kernel = f"{plan}_nhwc"

    def run(out):
        if plan == "im2col":
            return L.im2col_plan(kernel, (2, 6, 6, 3), (108, 18, 3, 1), 3, stride, out)
        return L.col2im_plan(kernel, (2 * out[0] * out[1], 27), (27, 1), 6, 3, stride, out)

    fit = 4 if stride == 1 else 2
    run((fit, fit))
    with pytest.raises(ValueError, match=rf"^CUDA kernel {kernel}: {out_hw[0]}x{out_hw[1]} windows of size \(3, 3\) "
                                         rf"with stride \({stride}, {stride}\) do not fit in the padded image "
                                         r"\(6, 6\)$"):
        run(out_hw)


@gpu
def test_batch_norm_launcher_checks_gamma_and_beta_and_uses_each(cp):
    rng = np.random.default_rng(2)
    x_np = rng.standard_normal((4, 3, 2, 2)).astype(np.float32)
    x = cp.asarray(x_np)
    kw = dict(eps=1e-5, axes=(0, 2, 3), cs=(1, 3, 1, 1))
    for name in ("gamma", "beta"):
        args = {"gamma": cp.ones(3, dtype=cp.float32), "beta": cp.zeros(3, dtype=cp.float32)}
        args[name] = cp.ones(2, dtype=cp.float32)
        with pytest.raises(ValueError, match=rf"^CUDA kernel batch_norm_forward: {name} of shape \(2,\) does not "
                                             r"match 3 channels$"):
            L.batch_norm_forward(x, **args, **kw)
    from tinygan.kernels import batchnorm as bn
    gamma, beta = rng.standard_normal(3).astype(np.float32), rng.standard_normal(3).astype(np.float32)
    for g_, b_ in ((gamma, None), (None, beta), (gamma, beta), (None, None)):
        out = L.batch_norm_forward(x, None if g_ is None else cp.asarray(g_), None if b_ is None else cp.asarray(b_),
                                   **kw)                                        # y, mean, var, xhat, invstd
        for got, ref in zip(out, bn.batch_norm_forward(x_np, g_, b_, 1e-5)):
            np.testing.assert_allclose(backend.to_numpy(got), ref, rtol=1e-5, atol=1e-6)


@gpu
def test_launchers_check_every_array_after_a_missing_one(cp):
    p = cp.zeros((2, 3), dtype=cp.float32)
    kw = dict(lr=1e-3, alpha=0.99, eps=1e-8, weight_decay=0.0)
    with pytest.raises(TypeError, match=r"^CUDA kernel rmsprop_step: gavg must be a cupy\.ndarray, "
                                        r"got numpy\.ndarray$"):
        L.rmsprop_step_(p, p.copy(), p.copy(), None, np.zeros((2, 3), np.float32), **kw, momentum=0.0, centered=True)
    # not centered: grad_avg is never read, so one of another shape is no error
    L.rmsprop_step_(p, p.copy(), p.copy(), None, cp.zeros(1, dtype=cp.float32), **kw, momentum=0.0, centered=False)
    with pytest.raises(TypeError, match=r"^CUDA kernel adam_step: all arrays must have one dtype, got p float32, "
                                        r"g float64, m float32, v float32$"):
        L.adam_step_(p, p.astype(cp.float64), p.copy(), p.copy(), lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, step=1)


@gpu
@standin_only
def test_batch_norm_stages_for_a_matrix_and_for_nchw(cp):
    """A contiguous (N, C) matrix is channels-last rows too: two stages at M = 2048; an NCHW input keeps one."""
    from tinygan.kernels import batchnorm as bn
    rng = np.random.default_rng(3)
    groups = L.two_stage_groups(2048, 32)
    for x0, stages in ((rng.standard_normal((2048, 32)), groups),                       # (N, C)
                       (rng.standard_normal((8, 32, 16, 16)), 1)):                      # NCHW: not channels-last
        with cp.record_launches() as log:
            out = bn.batch_norm_forward(cp.asarray(x0), None, None, 1e-5)
        reductions = [e for e in log if e["kind"] == "reduction"]
        assert reductions and all(e["out_size"] == stages * 32 for e in reductions), (x0.shape, reductions)
        for a, b in zip(out, bn.batch_norm_forward(x0, None, None, 1e-5)):
            np.testing.assert_allclose(a.get(), b, rtol=1e-12, atol=1e-12)
