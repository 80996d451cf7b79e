"""The conv kernels' layout helpers against their own docstrings (torch-free; the ``kernels`` mutation group).

The public kernels are checked against slow references elsewhere (tests/test_kernels_conv.py,
tests/test_kernels_semantics.py).  Many helper behaviours cannot change those kernels' numbers
on the inputs the public tests draw, yet each is a promise a later change can break: which
inputs are viewed and which copied (and into a channels-last layout), the zero border written
into a reused, dirty scratch buffer, two scratch slots alive at once, sub-pixel blocks past the
image, the grad-input algorithm chosen for a shape and the one actually run, work cut over the
batch on two threads.  Each is checked here directly.
"""
from __future__ import annotations

import threading
import types

import numpy as np
import pytest
from numpy.lib.stride_tricks import as_strided

from tinygan.kernels import conv, threads

RNG = np.random.default_rng(0)


def _rand(*shape, dtype=np.float32):
    return RNG.standard_normal(shape).astype(dtype)


def _dirty(slot, nbytes=1 << 16):
    """Fill scratch ``slot`` of this thread with NaN: a helper that forgets to write a number shows it."""
    threads.scratch((nbytes // 8,), np.float64, slot=slot)[...] = np.nan


def _nhwc_padded(x, ph, pw):
    """x (N, C, H, W) -> (N, H + 2 ph, W + 2 pw, C) with a zero border: the reference of _to_nhwc."""
    return np.pad(x.transpose(0, 2, 3, 1), ((0, 0), (ph, ph), (pw, pw), (0, 0)))


# ---------------------------------------------------------------------------- _to_nhwc, _pixel_rows

@pytest.mark.parametrize("padding", [(0, 0), (1, 1), (2, 0), (0, 3)])
def test_to_nhwc_copies_channels_last_with_a_zero_border_into_a_dirty_buffer(padding):
    x = _rand(2, 3, 4, 5)                                              # NCHW, C-contiguous: must be copied
    _dirty("x")
    got = conv._to_nhwc(x, padding)
    ref = _nhwc_padded(x, *padding)
    assert got.shape == ref.shape and got.dtype == x.dtype
    np.testing.assert_array_equal(got, ref)
    assert got.strides[3] == x.itemsize and got.flags.c_contiguous   # channels innermost, dense
    assert not np.shares_memory(got, x)


def test_to_nhwc_views_what_already_is_channels_last():
    nhwc = _rand(2, 4, 5, 3)
    x = nhwc.transpose(0, 3, 1, 2)                                     # an NCHW view of an NHWC buffer
    got = conv._to_nhwc(x)
    assert np.shares_memory(got, nhwc) and got.shape == (2, 4, 5, 3)
    np.testing.assert_array_equal(got, nhwc)
    one = _rand(2, 1, 4, 5)                                            # one channel: NCHW is NHWC
    assert np.shares_memory(conv._to_nhwc(one), one)
    for c in (2, 3):                                                   # more channels in NCHW: a copy
        plain = _rand(2, c, 4, 5)
        got = conv._to_nhwc(plain)
        assert not np.shares_memory(got, plain) and got.strides[3] == plain.itemsize
        np.testing.assert_array_equal(got, plain.transpose(0, 2, 3, 1))
    padded = conv._to_nhwc(x, (1, 1))                                  # padding always copies
    assert not np.shares_memory(padded, nhwc)
    np.testing.assert_array_equal(padded, _nhwc_padded(x, 1, 1))


def test_to_nhwc_slots_keep_two_temporaries_apart():
    x, g = _rand(2, 3, 4, 5), _rand(2, 6, 3, 3)
    a = conv._to_nhwc(x, (1, 1))                                       # slot "x"
    b = conv._to_nhwc(g, (1, 1), "gy")
    c = conv._pixel_rows(_rand(2, 4, 3, 3), "rows")
    np.testing.assert_array_equal(a, _nhwc_padded(x, 1, 1))
    np.testing.assert_array_equal(b, _nhwc_padded(g, 1, 1))
    assert c.shape == (2 * 3 * 3, 4)


def test_pixel_rows_one_row_per_pixel_viewed_or_copied():
    nhwc = _rand(2, 4, 5, 3)
    rows = conv._pixel_rows(nhwc.transpose(0, 3, 1, 2), "gy")           # dense channels-last: a view
    assert rows.shape == (40, 3) and np.shares_memory(rows, nhwc)
    np.testing.assert_array_equal(rows, nhwc.reshape(40, 3))

    full = _rand(2, 6, 7, 3)
    crop = full[:, 1:5, 2:6, :]                                        # channels innermost, gaps between rows
    _dirty("gy")
    rows = conv._pixel_rows(crop.transpose(0, 3, 1, 2), "gy")
    assert rows.shape == (32, 3) and rows.dtype == full.dtype and not np.shares_memory(rows, full)
    np.testing.assert_array_equal(rows, crop.reshape(32, 3))

    x = _rand(2, 3, 4, 5)
    x_pad = conv._to_nhwc(x, (1, 1))                                   # alive in slot "x" ...
    g = _rand(2, 4, 3, 3)                                              # ... while an NCHW g is laid out
    rows = conv._pixel_rows(g, "gy")
    np.testing.assert_array_equal(rows, g.transpose(0, 2, 3, 1).reshape(-1, 4))
    np.testing.assert_array_equal(x_pad, _nhwc_padded(x, 1, 1))


# ---------------------------------------------------------------------------- _transpose_source

def _planes(C, H, W, plane_bytes=None, row_bytes=None, dtype=np.float32, N=2):
    """An (N, C, H, W) array whose channel planes lie ``plane_bytes`` apart and rows ``row_bytes`` apart."""
    item = np.dtype(dtype).itemsize
    row_bytes = row_bytes or W * item
    plane_bytes = plane_bytes or H * row_bytes
    base = np.arange(N * C * plane_bytes // item, dtype=dtype)
    return as_strided(base, shape=(N, C, H, W), strides=(C * plane_bytes, plane_bytes, row_bytes, item))


@pytest.mark.parametrize("x,copied", [
    (_planes(8, 32, 32), True),                          # 4 KiB planes, 8 channels: the slow case, copied
    (_planes(16, 32, 32, dtype=np.float64), True),       # 8 KiB planes
    (_planes(7, 32, 32), False),                         # fewer than 8 channels
    (_planes(8, 4, 4, plane_bytes=4096), True),          # 16 pixels, planes 4 KiB apart
    (_planes(8, 4, 8, plane_bytes=8192), True),
    (_planes(8, 3, 5, plane_bytes=4096), False),         # 15 pixels
    (_planes(8, 1, 15, plane_bytes=4096), False),
    (_planes(8, 32, 32, plane_bytes=4096 + 64), False),  # planes not a multiple of 4 KiB apart
    (_planes(8, 32, 32, plane_bytes=2048 * 3), False),
    (_planes(8, 16, 32, plane_bytes=4096), True),        # rows dense, planes 4 KiB apart
    (_planes(8, 16, 32, plane_bytes=4096, row_bytes=256), False),   # gaps between rows
    (_planes(8, 32, 32, plane_bytes=8192, row_bytes=256), False),
], ids=lambda v: "copied" if v is True else "viewed" if v is False else "x")
def test_transpose_source_copies_only_4k_aligned_planes(x, copied):
    got = conv._transpose_source(x)                                    # (N, H, W, C)
    assert got.shape == (x.shape[0], x.shape[2], x.shape[3], x.shape[1]) and got.dtype == x.dtype
    np.testing.assert_array_equal(got, x.transpose(0, 2, 3, 1))
    assert np.shares_memory(got, x) is not copied
    if copied:                                                         # planes 64 bytes more than 4 KiB apart
        assert got.strides[3] == x.shape[2] * x.shape[3] * x.itemsize + 64


# ---------------------------------------------------------------------------- _as_strided, _im2col, _col2im

def test_as_strided_on_numpy_is_a_read_only_view():
    a = np.arange(12, dtype=np.float32)
    v = conv._as_strided(np, a, (3, 4), (16, 4))
    np.testing.assert_array_equal(v, a.reshape(3, 4))
    assert np.shares_memory(v, a) and not v.flags.writeable


def _im2col_ref(x_pad, kh, kw, sh, sw, Ho, Wo):
    N, _, _, C = x_pad.shape
    cols = np.empty((N, Ho, Wo, kh, kw, C), x_pad.dtype)
    for n in range(N):
        for i in range(Ho):
            for j in range(Wo):
                for p in range(kh):
                    for q in range(kw):
                        cols[n, i, j, p, q] = x_pad[n, i * sh + p, j * sw + q]
    return cols.reshape(N * Ho * Wo, kh * kw * C)


def _col2im_ref(dcols, Hp, Wp, kh, kw, sh, sw, Ho, Wo):
    C = dcols.shape[1] // (kh * kw)
    N = dcols.shape[0] // (Ho * Wo)
    d = dcols.reshape(N, Ho, Wo, kh, kw, C)
    x_pad = np.zeros((N, Hp, Wp, C), dcols.dtype)
    for n in range(N):
        for i in range(Ho):
            for j in range(Wo):
                for p in range(kh):
                    for q in range(kw):
                        x_pad[n, i * sh + p, j * sw + q] += d[n, i, j, p, q]
    return x_pad


@pytest.mark.parametrize("k,s", [((3, 2), (2, 1)), ((4, 4), (2, 2)), ((1, 1), (1, 1)), ((2, 3), (1, 3))])
def test_im2col_and_col2im_against_loops(k, s):
    (kh, kw), (sh, sw) = k, s
    x_pad = _rand(2, 7, 8, 3)
    Ho, Wo = (7 - kh) // sh + 1, (8 - kw) // sw + 1
    cols = conv._im2col(x_pad, k, s, (Ho, Wo))
    np.testing.assert_array_equal(cols, _im2col_ref(x_pad, kh, kw, sh, sw, Ho, Wo))
    assert not np.shares_memory(cols, x_pad)

    dcols = _rand(2 * Ho * Wo, kh * kw * 3, dtype=np.float64)
    ref = _col2im_ref(dcols, 7, 8, kh, kw, sh, sw, Ho, Wo)
    new = conv._col2im(dcols, (7, 8), k, s, (Ho, Wo))                  # a new zero image
    np.testing.assert_allclose(new, ref, rtol=1e-12, atol=1e-12)
    _dirty("col2im-test")
    into = conv._col2im(dcols, (7, 8), k, s, (Ho, Wo), "col2im-test")  # a dirty scratch buffer, zeroed first
    np.testing.assert_allclose(into, ref, rtol=1e-12, atol=1e-12)
    assert into.dtype == new.dtype == np.float64


# ---------------------------------------------------------------------------- depth to space

def _depth_to_space_ref(xs, stride, padding, out_hw):
    """out[n, i, j, c] = x_pad[n, i + ph, j + pw, c], x_pad[n, sh*I + r, sw*J + t, c] = xs[n, I, J, r, t, c]
    where the block (I, J) exists, else 0."""
    N, Hs, Ws, sh, sw, C = xs.shape
    out = np.zeros((N, *out_hw, C), xs.dtype)
    for i in range(out_hw[0]):
        I, r = divmod(i + padding[0], stride[0])
        for j in range(out_hw[1]):
            J, t = divmod(j + padding[1], stride[1])
            if I < Hs and J < Ws:
                out[:, i, j] = xs[:, I, J, r, t]
    return out


CASES_D2S = [(s, p, hw, blocks) for s in [(1, 1), (2, 2), (2, 1), (3, 2)] for p in [(0, 0), (1, 1), (3, 0), (2, 3)]
             for hw in [(1, 1), (4, 5), (7, 3)] for blocks in [(1, 1), (2, 3), (4, 4)]]


@pytest.mark.parametrize("stride,padding,out_hw,blocks", CASES_D2S)
def test_depth_to_space_against_its_formula(stride, padding, out_hw, blocks):
    xs = _rand(2, *blocks, *stride, 3)                                 # [n, I, J, r, t, c]
    ref = _depth_to_space_ref(xs, stride, padding, out_hw)
    out = np.full((2, *out_hw, 3), np.nan, np.float32)                 # every number must be written
    conv._depth_to_space_into(out, xs, stride, padding)
    np.testing.assert_array_equal(out, ref)
    got = conv._depth_to_space(xs.reshape(2, *blocks, -1), stride, 3, out_hw, padding)
    np.testing.assert_array_equal(got, ref)
    assert got.flags.c_contiguous and got.dtype == xs.dtype


# ---------------------------------------------------------------------------- which grad-input algorithm

# (gy shape, w shape, stride) -> the method, by the rule in _grad_input_method's docstring.  Numbers:
# blocks = (Ho + ka - 1)(Wo + kb - 1), gathered = blocks ka kb O, scattered = Ho Wo kh kw C.
METHOD_CASES = [
    ((64, 64, 14, 14), (64, 1, 4, 4), (2, 2), "col2im"),        # one output channel (an MNIST G's last layer)
    ((64, 64, 14, 14), (64, 2, 4, 4), (2, 2), "scatter"),       # two: gathered 225*4*64 = 57600 >= 2*196*16*2
    ((8, 8, 6, 6), (8, 8, 3, 4), (2, 2), "col2im"),             # kh not a multiple of the stride
    ((8, 8, 6, 6), (8, 8, 4, 3), (2, 2), "col2im"),             # kw not a multiple of the stride
    ((8, 8, 6, 6), (8, 8, 3, 3), (1, 1), "col2im"),             # 4608 < 2*2592, but blocks 64 > 1.35*36: stride 1
    ((8, 49, 7, 7), (49, 8, 4, 4), (2, 2), "scatter"),          # gathered = 64*4*49 = 12544 = 2*49*16*8: a tie
    ((8, 48, 7, 7), (48, 8, 4, 4), (2, 2), "gather"),           # 12288 < 12544, blocks 64 <= 66.15
    ((8, 8, 5, 8), (8, 8, 4, 4), (2, 2), "gather"),             # blocks 54 = 1.35 * 40 exactly
    ((8, 8, 4, 12), (8, 8, 4, 4), (2, 2), "scatter"),           # blocks 65 > 1.35 * 48 = 64.8
    ((8, 8, 3, 3), (8, 8, 4, 4), (2, 2), "scatter"),            # blocks 16 > 12.15, gathered small
    ((8, 8, 7, 7), (8, 8, 3, 3), (1, 1), "col2im"),             # stride 1 and blocks 81 > 66.15
    ((8, 8, 7, 7), (8, 4, 4, 2), (2, 2), "gather"),             # ka 2, kb 1: 56*2*8 = 896 < 2*49*8*4, 56 <= 66.15
    ((8, 64, 7, 7), (64, 2, 4, 2), (2, 2), "scatter"),          # 56*2*64 = 7168 >= 2*49*8*2 = 1568
    ((8, 30, 4, 4), (30, 2, 4, 4), (4, 2), "scatter"),          # ka 1, kb 2: 20*2*30 = 1200 >= 2*16*16*2 = 1024
    ((8, 16, 4, 4), (16, 2, 4, 4), (4, 2), "gather"),           # 20*2*16 = 640 < 1024, blocks 20 <= 21.6
    ((8, 8, 9, 9), (8, 8, 6, 6), (3, 3), "gather"),             # ka = kb = 2: blocks 100 <= 109.35
    ((8, 8, 9, 9), (8, 8, 6, 6), (3, 2), "scatter"),            # ka 2, kb 3: blocks 110 > 109.35
]


@pytest.mark.parametrize("gy_shape,w_shape,stride,method", METHOD_CASES)
def test_grad_input_method_by_shape(gy_shape, w_shape, stride, method):
    assert conv._grad_input_method(gy_shape, w_shape, stride) == method


def _grad_input_ref(gy, w, input_hw, stride, padding):
    """gx_pad[n, c, i sh + p, j sw + q] += gy[n, o, i, j] w[o, c, p, q]; gx = the crop (NHWC here)."""
    N, O, Ho, Wo = gy.shape
    _, C, kh, kw = w.shape
    (H, W), (sh, sw), (ph, pw) = input_hw, stride, padding
    Hp = max(H + 2 * ph, (Ho - 1) * sh + kh)
    Wp = max(W + 2 * pw, (Wo - 1) * sw + kw)
    gx_pad = np.zeros((N, C, Hp, Wp))
    for i in range(Ho):
        for j in range(Wo):
            gx_pad[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw] += np.einsum("no,ocpq->ncpq", gy[:, :, i, j], w)
    return gx_pad[:, :, ph:ph + H, pw:pw + W].transpose(0, 2, 3, 1)


@pytest.fixture
def spy(monkeypatch):
    """Records which grad-input algorithm runs: ("col2im",) or ("sub_pixel", method), and im2col / col2im calls."""
    calls = []
    for name, tag in (("_grad_input_col2im", None), ("_grad_input_sub_pixel", "sub_pixel"), ("_im2col", "im2col"),
                      ("_col2im", "col2im_adds")):
        real = getattr(conv, name)

        def wrapper(*a, _real=real, _name=name, _tag=tag):
            calls.append(("col2im",) if _tag is None else (_tag, a[5]) if _tag == "sub_pixel" else (_tag,))
            return _real(*a)
        monkeypatch.setattr(conv, name, wrapper)
    return calls


@pytest.mark.parametrize("forced", [None, "col2im", "scatter", "gather"])
@pytest.mark.parametrize("w_shape,stride,input_hw,padding", [
    ((4, 3, 4, 4), (2, 2), (8, 8), (1, 1)),             # a multiple of the stride: every method applies
    ((4, 1, 4, 4), (2, 2), (8, 8), (1, 1)),             # one output channel
    ((4, 3, 4, 3), (2, 2), (8, 7), (1, 1)),             # kw not a multiple: col2im whatever is asked
    ((4, 3, 3, 4), (2, 2), (7, 8), (1, 0)),             # kh not a multiple
    ((4, 3, 3, 3), (1, 1), (6, 6), (1, 1)),
])
def test_grad_input_dispatch_runs_the_chosen_method(spy, forced, w_shape, stride, input_hw, padding):
    w = _rand(*w_shape, dtype=np.float64)
    _, _, kh, kw = w_shape
    Ho = (input_hw[0] + 2 * padding[0] - kh) // stride[0] + 1
    Wo = (input_hw[1] + 2 * padding[1] - kw) // stride[1] + 1
    gy = _rand(2, w_shape[0], Ho, Wo, dtype=np.float64)
    got = conv._conv2d_grad_input_nhwc(gy, w, input_hw, stride, padding, method=forced)
    np.testing.assert_allclose(got, _grad_input_ref(gy, w, input_hw, stride, padding), rtol=1e-10, atol=1e-12)
    multiple = kh % stride[0] == 0 and kw % stride[1] == 0
    method = (forced or conv._grad_input_method(gy.shape, w.shape, stride)) if multiple else "col2im"
    runs = [c for c in spy if c[0] in ("col2im", "sub_pixel")]
    assert runs[0] == (("col2im",) if method == "col2im" else ("sub_pixel", method))
    helpers = [c[0] for c in spy[1:]]
    if method == "scatter":                                            # scatter adds, never gathers
        assert helpers == ["col2im_adds"]
    if method == "gather":                                             # gather gathers, never adds
        assert helpers == ["im2col"]


@pytest.mark.parametrize("method", ["scatter", "gather"])
def test_sub_pixel_grad_input_drops_its_big_temporary_before_the_image_is_allocated(method):
    """A D step's memory peak is in here (benchmarks/memory.py): the fresh temporaries (scatter's GEMM
    output ``dcols``, 4x the image; gather's reordered weights; im2col's ``cols`` is reused scratch) must
    be freed before depth-to-space allocates the image (measured with tracemalloc, which sees NumPy's
    allocations)."""
    import tracemalloc
    N, O, C, Ho = 64, 64, 128, 4                                       # (N, O, 4, 4) -> (N, C, 8, 8)
    gy, w = _rand(N, O, Ho, Ho), _rand(O, C, 4, 4)
    args = (gy, w, (8, 8), (2, 2), (1, 1))
    conv._conv2d_grad_input_nhwc(*args, method=method)                 # scratch buffers exist from here on
    tracemalloc.start()
    try:
        gx = conv._conv2d_grad_input_nhwc(*args, method=method)        # (N, 8, 8, C)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    Hs, S, f32 = Ho + 1, 4 * C, 4                                      # blocks per side, numbers per block
    if method == "scatter":                                            # gx_s2d lives in scratch
        big = N * Ho * Ho * 4 * S * f32                                # dcols (N*Ho*Wo, ka*kb*S), 8 MiB
        allowed, forbidden = max(big + w.nbytes, gx.nbytes), big + gx.nbytes
    else:                                                              # the GEMM writes a new gx_s2d
        w_gather, gx_s2d = 4 * O * S * f32, N * Hs * Hs * S * f32       # (ka*kb*O, S), (N, Hs, Ws, S)
        allowed, forbidden = max(w_gather + gx_s2d, gx_s2d + gx.nbytes), w_gather + gx_s2d + gx.nbytes
    slack = 64 << 10
    assert peak <= allowed + slack < forbidden, (peak, allowed, forbidden)


# ---------------------------------------------------------------------------- work over the batch

@pytest.fixture
def two_threads():
    threads.set_num_threads(2)                                         # beats any thread-count variable
    yield
    threads.set_num_threads(None)


def _record(barrier=None):
    calls, lock = [], threading.Lock()

    def fn(n0, n1):
        with lock:
            calls.append((n0, n1, threading.current_thread().name))
        if barrier is not None:
            barrier.wait()
    return calls, fn


def test_over_batch_cuts_big_work_into_blocks_on_two_threads(two_threads):
    big = 4 * threads.BLOCK_BYTES
    calls, fn = _record(threading.Barrier(2, timeout=5))              # blocks that wait for each other finish
    conv._over_batch(np, fn, 2, big)                                   # only on two threads at once
    assert sorted(c[:2] for c in calls) == [(0, 1), (1, 2)]
    assert len({c[2] for c in calls}) == 2
    calls, fn = _record()
    conv._over_batch(np, fn, 16, big)
    assert sorted(c[:2] for c in calls) == threads.blocks(16, big // 16)
    assert [c[:2] for c in sorted(calls)] == [(a, b) for a, b in threads.blocks(16, big // 16)]


@pytest.mark.parametrize("xp_name,n,nbytes", [
    ("numpy", 1, 4 * threads.BLOCK_BYTES),              # one image
    ("numpy", 8, threads.MIN_PARALLEL_BYTES - 1),       # too little work for a second thread
    ("cupy", 8, 4 * threads.BLOCK_BYTES),               # not NumPy: one call, the device does the rest
])
def test_over_batch_runs_small_or_device_work_in_one_call(two_threads, xp_name, n, nbytes):
    calls, fn = _record()
    conv._over_batch(types.SimpleNamespace(__name__=xp_name), fn, n, nbytes)
    assert calls == [(0, n, threading.current_thread().name)]
