"""The threaded CPU kernels against their references (issue 13, CPU speed).

* ``tinygan.kernels.threads``: blocks depend on the shape only, every block
  runs once, errors come back, the thread count setting;
* batch norm (``batch_norm_train_forward`` / ``_backward``), LeakyReLU
  (``leaky_relu`` / ``leaky_relu_backward_from_output``) and the optimizers'
  ``*_multi_`` kernels against the slow references (float64) and the plain
  NumPy kernels (float32), in every layout the layers hand over: contiguous
  NCHW, an NCHW view of a dense NHWC buffer, of a cropped one, Fortran order;
* **the same floats on 1, 2 and 3 threads** (the trainer's bit-identical
  resume relies on it);
* the optimizers' flat state: views of one buffer per group, parameters
  updated in place, ``state_dict`` round trips bit for bit, and a float32
  step equal to the one-parameter kernels';
* what the autograd layer keeps: no normalised copy in batch norm, no mask in
  LeakyReLU, and an in-place change of a LeakyReLU output caught at backward;
* the transposed convolution's output is a dense channels-last array.
"""
from __future__ import annotations

import numpy as np
import pytest

import tinygan
import tinygan.functional as F
from tinygan import nn, optim
from tinygan.kernels import activations as act
from tinygan.kernels import batchnorm as bn
from tinygan.kernels import conv as kconv
from tinygan.kernels import layout
from tinygan.kernels import optim as kopt
from tinygan.kernels import threads
from tinygan.kernels import reference as ref
from tinygan.kernels.reference import conv_transpose2d_ref

THREADS = (1, 2, 3)


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of 4 KiB and threads from 4 KiB on: small test arrays take the many-block, many-thread path."""
    monkeypatch.setattr(threads, "BLOCK_BYTES", 4096)
    monkeypatch.setattr(threads, "MIN_PARALLEL_BYTES", 4096)
    monkeypatch.setattr(layout, "LINE_MIN", 64)
    monkeypatch.setattr(layout, "LINE_MAX", 256)
    yield
    threads.set_num_threads(None)


@pytest.fixture(params=["whole-array", "blocked"])
def path(request, monkeypatch):
    """Both forms of each kernel: whole arrays (inputs under MIN_PARALLEL_BYTES) and blocks on threads."""
    if request.param == "blocked":
        monkeypatch.setattr(threads, "BLOCK_BYTES", 4096)
        monkeypatch.setattr(threads, "MIN_PARALLEL_BYTES", 4096)
        monkeypatch.setattr(layout, "LINE_MIN", 64)
        monkeypatch.setattr(layout, "LINE_MAX", 256)
    yield request.param
    threads.set_num_threads(None)


def layouts(a):
    """``a`` as the layers hand arrays over: C-contiguous, channels-last (dense and cropped), Fortran order."""
    out = [("contiguous", np.ascontiguousarray(a))]
    if a.ndim == 4:
        n, c, h, w = a.shape
        out.append(("channels-last", np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)))
        big = np.zeros((n, h + 2, w + 3, c), a.dtype)
        big[:, 1:h + 1, 2:w + 2, :] = a.transpose(0, 2, 3, 1)
        out.append(("cropped channels-last", big[:, 1:h + 1, 2:w + 2, :].transpose(0, 3, 1, 2)))
    out.append(("fortran", np.asfortranarray(a)))
    return out


# ---------------------------------------------------------------------------
# the thread pool
# ---------------------------------------------------------------------------

def test_blocks_depend_on_the_shape_only():
    cuts = threads.blocks(1000, 4, block_bytes=400)
    assert cuts[0] == (0, 100) and cuts[-1] == (900, 1000) and len(cuts) == 10
    assert threads.blocks(10, 4, block_bytes=12, multiple=2) == [(0, 2), (2, 4), (4, 6), (6, 8), (8, 10)]
    assert threads.blocks(0, 4) == []
    assert threads.blocks(3, 10 ** 9) == [(0, 1), (1, 2), (2, 3)]       # a row bigger than a block: one per block


@pytest.mark.parametrize("n_threads", THREADS)
def test_run_calls_every_block_once(small_blocks, n_threads):
    seen = np.zeros(97, dtype=np.int64)

    def fn(i):
        seen[i] += 1
        np.sqrt(np.arange(2000.0))               # releases the GIL: the threads overlap

    threads.run(fn, len(seen), nbytes=1 << 30, threads=n_threads)
    assert (seen == 1).all()


def test_run_reraises_the_first_error_after_all_threads_stop(small_blocks):
    def fn(i):
        if i == 5:
            raise KeyError("block 5")

    with pytest.raises(KeyError, match="block 5"):
        threads.run(fn, 40, nbytes=1 << 30, threads=2)
    threads.run(lambda i: None, 40, nbytes=1 << 30, threads=2)        # the pool still works


def test_run_keeps_nothing_of_its_job_once_it_returns(small_blocks):
    """The arrays a job's closure holds are freed when their last user lets go, not at the pool's next job:
    a worker that kept its last job kept an im2col matrix alive through the next op (a higher peak)."""
    import weakref

    class Held:                                  # stands for the arrays a kernel's closure captures
        pass

    held = Held()
    gone = weakref.ref(held)

    def fn(i, held=held):
        np.sqrt(np.arange(2000.0))               # both threads take blocks

    threads.run(fn, 40, nbytes=1 << 30, threads=2)
    del fn, held
    assert gone() is None


def test_nested_runs_are_serial(small_blocks):
    out = np.zeros((8, 8))

    def inner(i, j):
        out[i, j] = i * 8 + j

    threads.run(lambda i: threads.run(lambda j: inner(i, j), 8, nbytes=1 << 30, threads=2), 8,
                nbytes=1 << 30, threads=2)
    assert (out.ravel() == np.arange(64)).all()


def test_thread_count_setting(monkeypatch):
    monkeypatch.setenv("TINYGAN_NUM_THREADS", "3")
    threads.set_num_threads(None)
    assert threads.get_num_threads() == 3
    monkeypatch.delenv("TINYGAN_NUM_THREADS")
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert threads.get_num_threads() == 2
    threads.set_num_threads(1)
    assert threads.get_num_threads() == 1
    threads.set_num_threads(None)
    with pytest.raises(ValueError, match="at least 1 thread"):
        threads.set_num_threads(0)


# ---------------------------------------------------------------------------
# batch norm
# ---------------------------------------------------------------------------

BN_SHAPES = [(7, 3), (3, 5, 7, 2), (2, 1, 5, 3), (5, 4, 1, 1), (6, 16, 6, 6)]


@pytest.mark.parametrize("shape", BN_SHAPES)
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_fast_path_matches_the_slow_references_float64(path, shape, affine):
    rng = np.random.default_rng(sum(shape))
    c, eps = shape[1], 1e-5
    gamma = rng.uniform(0.5, 2.0, c) if affine else None
    beta = rng.standard_normal(c) if affine else None
    x_values, g_values = 3.0 + 2.0 * rng.standard_normal(shape), rng.standard_normal(shape)
    y_ref = bn.batch_norm_forward_ref(x_values, gamma, beta, eps)
    dx_ref, dgamma_ref, dbeta_ref = bn.batch_norm_backward_ref(g_values, x_values, gamma, eps)
    for layout_name, x in layouts(x_values):
        results = []
        for n in THREADS:
            threads.set_num_threads(n)
            y, mean, var, invstd = bn.batch_norm_train_forward(x, gamma, beta, eps)
            np.testing.assert_allclose(y, y_ref, rtol=1e-10, atol=1e-12, err_msg=layout_name)
            np.testing.assert_allclose(mean, x_values.mean(axis=bn.reduce_axes(len(shape))), rtol=1e-12)
            np.testing.assert_allclose(var, x_values.var(axis=bn.reduce_axes(len(shape))), rtol=1e-10)
            grads = []
            for g_layout, g in layouts(g_values):
                where = f"x {layout_name}, g {g_layout}, {n} threads"
                dx, dgamma, dbeta = bn.batch_norm_train_backward(g, x, mean, invstd, gamma)
                np.testing.assert_allclose(dx, dx_ref, rtol=1e-9, atol=1e-11, err_msg=where)
                np.testing.assert_allclose(dgamma, dgamma_ref, rtol=1e-10, atol=1e-12, err_msg=where)
                np.testing.assert_allclose(dbeta, dbeta_ref, rtol=1e-10, atol=1e-12, err_msg=where)
                grads.append((dx, dgamma, dbeta))
            results.append((y, mean, var, grads))
        for other in results[1:]:                       # the same floats on every thread count
            assert all(np.array_equal(a, b) for a, b in zip(results[0][:3], other[:3])), layout_name
            for ga, gb in zip(results[0][3], other[3]):
                assert all(np.array_equal(a, b) for a, b in zip(ga, gb)), layout_name


@pytest.mark.parametrize("shape", [(64, 32, 7, 7), (16, 8, 14, 14), (32, 64)])
def test_batch_norm_fast_path_agrees_with_the_plain_kernels_float32(path, shape):
    rng = np.random.default_rng(1)
    c = shape[1]
    gamma = (1 + 0.1 * rng.standard_normal(c)).astype(np.float32)
    beta = (0.1 * rng.standard_normal(c)).astype(np.float32)
    x_values = (0.5 + rng.standard_normal(shape)).astype(np.float32)
    g_values = rng.standard_normal(shape).astype(np.float32)
    y0, mean0, var0, xhat0, invstd0 = bn.batch_norm_forward(x_values, gamma, beta, 1e-5)
    dx0, dgamma0, dbeta0 = bn.batch_norm_backward(g_values, xhat0, invstd0, gamma)
    for layout_name, x in layouts(x_values):
        threads.set_num_threads(2)
        y, mean, var, invstd = bn.batch_norm_train_forward(x, gamma, beta, 1e-5)
        assert y.dtype == mean.dtype == var.dtype == invstd.dtype == np.float32
        np.testing.assert_allclose(y, y0, rtol=1e-5, atol=2e-6, err_msg=layout_name)
        dx, dgamma, dbeta = bn.batch_norm_train_backward(g_values, x, mean, invstd, gamma)
        assert dx.dtype == np.float32
        np.testing.assert_allclose(dx, dx0, rtol=1e-4, atol=2e-5, err_msg=layout_name)
        np.testing.assert_allclose(dgamma, dgamma0, rtol=1e-4, atol=1e-3, err_msg=layout_name)
        np.testing.assert_allclose(dbeta, dbeta0, rtol=1e-4, atol=1e-3, err_msg=layout_name)


def test_batch_norm_statistics_do_not_cancel_for_a_large_mean(path):
    # A shift near the mean (the first line's) keeps var = S2/M - (S1/M)^2 accurate for |mean| >> std.
    rng = np.random.default_rng(2)
    x = (1e4 + rng.standard_normal((32, 8, 5, 5))).astype(np.float32)
    _, mean, var, _ = bn.batch_norm_train_forward(x, None, None, 1e-5)
    np.testing.assert_allclose(var, x.astype(np.float64).var(axis=(0, 2, 3)), rtol=2e-3)


def test_batch_norm_outputs_keep_the_input_layout():
    x = np.ascontiguousarray(np.ones((4, 6, 3, 3), np.float32).transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    y, *_ = bn.batch_norm_train_forward(x, None, None, 1e-5)
    assert y.transpose(0, 2, 3, 1).flags.c_contiguous


# ---------------------------------------------------------------------------
# LeakyReLU
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(7, 3), (3, 5, 7, 2), (1, 1, 1, 1), (6, 16, 6, 6)])
@pytest.mark.parametrize("slope", [0.2, 0.0, 1.0, 1.5])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_leaky_relu_fast_path_matches_the_references(path, shape, slope, dtype):
    rng = np.random.default_rng(len(shape))
    x_values = rng.standard_normal(shape).astype(dtype)
    x_values.reshape(-1)[::3] = 0.0                               # exact zeros: x > 0 is False there
    g_values = rng.standard_normal(shape).astype(dtype)
    y0, mask0 = act.leaky_relu_forward(x_values, slope)          # the plain kernel (exact in float32 too)
    dx0 = act.leaky_relu_backward(g_values, mask0, slope)
    if dtype == np.float64:
        np.testing.assert_array_equal(y0, act.leaky_relu_ref(x_values, slope))
        np.testing.assert_array_equal(dx0, act.leaky_relu_backward_ref(g_values, x_values, slope))
    for layout_name, x in layouts(x_values):
        for n in THREADS:
            threads.set_num_threads(n)
            y = act.leaky_relu(x, slope)
            assert y.dtype == x.dtype and y.strides == np.empty_like(x).strides
            np.testing.assert_array_equal(y, y0, err_msg=f"{layout_name}, {n} threads")
            for g_layout, g in layouts(g_values):
                dx = act.leaky_relu_backward_from_output(g, y, slope)
                np.testing.assert_array_equal(dx, dx0, err_msg=f"y {layout_name}, g {g_layout}, {n} threads")


def test_leaky_relu_keeps_no_mask_and_checks_its_output():
    x = tinygan.tensor(np.array([[-1.0, 2.0], [3.0, -4.0]], np.float32), requires_grad=True)
    y = F.leaky_relu(x, 0.2)
    assert y.grad_fn.mask is None                       # backward reads y > 0 off the output
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.array([[0.2, 1.0], [1.0, 0.2]], np.float32))
    z = F.leaky_relu(x, 0.2)
    with tinygan.no_grad():
        z.add_(1.0)                                     # the output backward needs, changed in place
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        z.sum().backward()
    w = F.leaky_relu(x, -0.5)                           # a negative slope keeps a mask
    assert w.grad_fn.mask is not None


def test_batch_norm_keeps_no_normalised_copy_on_the_cpu():
    x = tinygan.tensor(np.random.default_rng(0).standard_normal((4, 3, 2, 2)).astype(np.float32),
                       requires_grad=True)
    layer = nn.BatchNorm2d(3)
    y = layer(x)
    assert y.grad_fn.xhat is None
    (y * y).sum().backward()
    assert x.grad is not None and np.isfinite(x.grad.numpy()).all()


# ---------------------------------------------------------------------------
# optimizers
# ---------------------------------------------------------------------------

def _params(rng, dtype, transposed_grad=True):
    shapes = [(8, 6, 4, 4), (37,), (5, 3), (2, 3, 4, 4), ()]
    ps = [rng.standard_normal(s).astype(dtype) for s in shapes]
    gs = [rng.standard_normal(s).astype(dtype) for s in shapes]
    if transposed_grad:   # a convolution's weight gradient: an (O, C, kh, kw) view of a (kh, kw, C, O) buffer
        gs[0] = np.ascontiguousarray(gs[0].transpose(2, 3, 1, 0)).transpose(3, 2, 0, 1)
    return ps, gs


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_adam_multi_equals_the_one_parameter_kernel(small_blocks, dtype, weight_decay):
    rng = np.random.default_rng(3)
    ps, gs = _params(rng, dtype)
    ms = [0.1 * rng.standard_normal(p.shape).astype(dtype) for p in ps]
    vs = [np.abs(0.1 * rng.standard_normal(p.shape)).astype(dtype) for p in ps]
    steps = [1, 3, 7, 2, 5]
    hyper = dict(lr=2e-3, beta1=0.5, beta2=0.999, eps=1e-8, weight_decay=weight_decay)
    ref = [[a.copy() for a in arrays] for arrays in (ps, ms, vs)]
    for k in range(len(ps)):
        kopt.adam_step_(ref[0][k], gs[k], ref[1][k], ref[2][k], step=steps[k], **hyper)
    for n in THREADS:
        threads.set_num_threads(n)
        got = [[a.copy() for a in arrays] for arrays in (ps, ms, vs)]
        kopt.adam_multi_(got[0], gs, got[1], got[2], steps, **hyper)
        for name, a, b in zip("pmv", got, ref):
            for k in range(len(ps)):
                np.testing.assert_array_equal(a[k], b[k], err_msg=f"{name}[{k}], {n} threads")
    if dtype == np.float64:                              # and the slow reference, element by element
        p, m, v = kopt.adam_step_ref(ps[1], gs[1], ms[1], vs[1], step=steps[1], **{
            "lr": 2e-3, "beta1": 0.5, "beta2": 0.999, "eps": 1e-8, "weight_decay": weight_decay})
        np.testing.assert_allclose(ref[0][1], p, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("momentum,nesterov,weight_decay", [(0.0, False, 0.0), (0.9, False, 0.01), (0.9, True, 0.0)])
def test_sgd_multi_equals_the_one_parameter_kernel(small_blocks, momentum, nesterov, weight_decay):
    rng = np.random.default_rng(4)
    ps, gs = _params(rng, np.float32)
    bufs = [rng.standard_normal(p.shape).astype(np.float32) for p in ps]
    first = [True, False, False, True, False]
    hyper = dict(lr=1e-2, momentum=momentum, dampening=0.0, weight_decay=weight_decay, nesterov=nesterov)
    ref_p, ref_b = [p.copy() for p in ps], [b.copy() for b in bufs]
    for k in range(len(ps)):
        out = kopt.sgd_step_(ref_p[k], gs[k], ref_b[k], first=first[k], **hyper)
        if out is not None:
            ref_b[k] = out
    for n in THREADS:
        threads.set_num_threads(n)
        got_p, got_b = [p.copy() for p in ps], [b.copy() for b in bufs]
        kopt.sgd_multi_(got_p, gs, got_b if momentum else [None] * len(ps), first=first, **hyper)
        for k in range(len(ps)):
            np.testing.assert_array_equal(got_p[k], ref_p[k])
            if momentum:
                np.testing.assert_array_equal(got_b[k], ref_b[k])


@pytest.mark.parametrize("momentum,centered,weight_decay", [(0.0, False, 0.0), (0.5, True, 0.01), (0.0, True, 0.0)])
def test_rmsprop_multi_equals_the_one_parameter_kernel(small_blocks, momentum, centered, weight_decay):
    rng = np.random.default_rng(5)
    ps, gs = _params(rng, np.float64)
    vs = [np.abs(rng.standard_normal(p.shape)) + 1.0 for p in ps]
    bufs = [rng.standard_normal(p.shape) for p in ps]
    gavgs = [0.1 * rng.standard_normal(p.shape) for p in ps]
    hyper = dict(lr=1e-3, alpha=0.99, eps=1e-8, weight_decay=weight_decay, momentum=momentum, centered=centered)
    ref = [[a.copy() for a in arrays] for arrays in (ps, vs, bufs, gavgs)]
    for k in range(len(ps)):
        kopt.rmsprop_step_(ref[0][k], gs[k], ref[1][k], ref[2][k] if momentum else None,
                           ref[3][k] if centered else None, **hyper)
    threads.set_num_threads(2)
    got = [[a.copy() for a in arrays] for arrays in (ps, vs, bufs, gavgs)]
    kopt.rmsprop_multi_(got[0], gs, got[1], got[2] if momentum else [None] * len(ps),
                        got[3] if centered else [None] * len(ps), **hyper)
    for a, b in zip(got, ref):
        for k in range(len(ps)):
            np.testing.assert_array_equal(a[k], b[k])


def _net():
    tinygan.manual_seed(0)
    return nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.LeakyReLU(0.2),
                         nn.Flatten(), nn.Linear(4 * 5 * 5, 1))


def _steps(model, opt, n, start=0):
    for i in range(start, start + n):
        rng = np.random.default_rng(i)
        x = tinygan.tensor(rng.standard_normal((3, 2, 5, 5)).astype(np.float32))
        opt.zero_grad()
        (model(x) ** 2).mean().backward()
        opt.step()


@pytest.mark.parametrize("name,hyper", [("Adam", {"lr": 1e-2, "betas": (0.5, 0.999)}),
                                        ("SGD", {"lr": 1e-2, "momentum": 0.9}),
                                        ("RMSprop", {"lr": 1e-3, "momentum": 0.5, "centered": True})])
def test_flat_state_is_one_buffer_per_group_and_steps_like_one_parameter_updates(name, hyper, monkeypatch):
    model = _net()
    weights = [p._data for p in model.parameters()]
    opt = getattr(optim, name)(model.parameters(), **hyper)
    _steps(model, opt, 3)
    assert all(p._data is w for p, w in zip(model.parameters(), weights))      # updated in place
    flat = opt._flat[0]
    for p in model.parameters():
        for key, value in opt.state[id(p)].items():
            if hasattr(value, "shape"):
                assert value.base is flat.buffers[key], key                    # a view of the group's buffer
                assert value.shape == p.shape
    # the one-parameter path (no flat state) gives the same floats
    reference = _net()
    ref_opt = getattr(optim, name)(reference.parameters(), **hyper)
    monkeypatch.setattr(type(ref_opt), "_state_names", ())
    _steps(reference, ref_opt, 3)
    for a, b in zip(model.parameters(), reference.parameters()):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_flat_state_survives_state_dict_round_trips_and_new_parameters():
    model = _net()
    opt = optim.Adam(model.parameters(), lr=1e-2)
    _steps(model, opt, 2)
    saved_model, saved_opt = model.state_dict(), opt.state_dict()
    _steps(model, opt, 2, start=2)
    resumed = _net()
    resumed.load_state_dict(saved_model)
    opt2 = optim.Adam(resumed.parameters(), lr=1e-2)
    opt2.load_state_dict(saved_opt)                      # plain arrays: copied into the flat buffer at the step
    _steps(resumed, opt2, 2, start=2)
    for a, b in zip(model.parameters(), resumed.parameters()):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    extra = nn.Parameter(np.ones(3, np.float32))
    opt2.add_param_group({"params": [extra]})
    extra.grad = tinygan.tensor(np.ones(3, np.float32))
    opt2.step()                                          # a new group gets its own buffers
    assert opt2.state[id(extra)]["step"] == 1 and 1 in opt2._flat


def test_mixed_dtypes_in_one_group_fall_back_per_parameter():
    a = nn.Parameter(np.ones(4, np.float32))
    b = nn.Parameter(np.ones(4, np.float64))
    opt = optim.Adam([a, b], lr=0.1)
    a.grad = tinygan.tensor(np.ones(4, np.float32))
    b.grad = tinygan.tensor(np.ones(4, np.float64))
    opt.step()
    np.testing.assert_allclose(a.numpy(), 0.9, rtol=1e-6)
    np.testing.assert_allclose(b.numpy(), 1 - 0.1 / (1 + 1e-8), rtol=1e-12)
    assert a.dtype == np.float32 and b.dtype == np.float64


# ---------------------------------------------------------------------------
# convolutions hand over dense channels-last arrays
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("stride,padding", [(2, 1), (2, 0), (4, 1), (2, 3)])
def test_transposed_convolution_output_is_dense_channels_last(stride, padding):
    # kernel a multiple of the stride (DCGAN's 4x4, stride 2): the sub-pixel path writes the crop densely
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 5, 4, 4))
    w = rng.standard_normal((5, 3, 4, 4))
    y = kconv.conv_transpose2d(x, w, stride, padding)
    assert y.transpose(0, 2, 3, 1).flags.c_contiguous
    np.testing.assert_allclose(y, conv_transpose2d_ref(x, w, stride, padding), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("method", ["col2im", "scatter", "gather"])
def test_convolution_copies_on_threads_give_the_same_floats(small_blocks, method):
    # im2col, the padded NHWC copy, col2im's adds and depth-to-space run over blocks of images on threads
    rng = np.random.default_rng(7)
    x = rng.standard_normal((6, 5, 8, 8))
    w = rng.standard_normal((4, 5, 4, 4))
    gy = rng.standard_normal((6, 4, 4, 4))
    results = []
    for n in THREADS:
        threads.set_num_threads(n)
        y = kconv.conv2d(x, w, 2, 1)
        gx = kconv._conv2d_grad_input_nhwc(gy, w, (8, 8), (2, 2), (1, 1), method)
        gw = kconv.conv2d_grad_weight(x, gy, 4, 2, 1)
        results.append((y, gx, gw))

    np.testing.assert_allclose(results[0][0], ref.conv2d_ref(x, w, 2, 1), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(results[0][1].transpose(0, 3, 1, 2), ref.conv2d_grad_input_ref(gy, w, (8, 8), 2, 1),
                               rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(results[0][2], ref.conv2d_grad_weight_ref(x, gy, 4, 2, 1), rtol=1e-10, atol=1e-12)
    for other in results[1:]:
        assert all(np.array_equal(a, b) for a, b in zip(results[0], other))
