"""The batch-norm array kernels against the equations (torch-free; the ``kernels`` mutation group).

Training mode, statistics over every axis but the channel axis 1 (PyTorch's BatchNorm1d on (N, C) and
(N, C, L), BatchNorm2d on (N, C, H, W)), biased variance:

    y = (x - mu) / sqrt(var + eps) * gamma + beta
    dx = gamma invstd / M (M g - sum g - xhat sum g xhat),  dgamma = sum g xhat,  dbeta = sum g

* ``batch_norm_forward`` / ``_backward`` on every device (the CuPy kernels too under ``device``'s "cuda");
* the slow references themselves against a vectorised formula and central differences;
* sync batch norm over R simulated processes (threads joined by an all-reduce) equals one process
  holding the whole batch.
"""
from __future__ import annotations

import threading

import numpy as np
import pytest

from tinygan.backend import get_array_module, to_device, to_numpy
from tinygan.kernels import batchnorm as bn

# every test here runs on the NumPy kernels and on the compiled ones (conftest.kernel_path)
pytestmark = pytest.mark.usefixtures("kernel_path")

SHAPES = [(6, 3), (4, 3, 5), (2, 3, 4, 5)]


def _data(shape, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    c = shape[1]
    x = (rng.standard_normal(shape) * 2 + 1).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    gamma = rng.uniform(0.5, 1.5, c).astype(dtype)
    beta = rng.standard_normal(c).astype(dtype)
    return x, g, gamma, beta


def _axes(ndim):
    return (0,) + tuple(range(2, ndim))


def _vector_forward(x, gamma, beta, eps):
    ax = _axes(x.ndim)
    cs = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    mu = x.mean(axis=ax, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=ax, keepdims=True)
    y = (x - mu) / np.sqrt(var + eps)
    if gamma is not None:
        y = y * gamma.reshape(cs)
    if beta is not None:
        y = y + beta.reshape(cs)
    return y, mu.reshape(-1), var.reshape(-1)


def test_reduce_axes_and_channel_shape():
    assert bn.reduce_axes(2) == (0,)
    assert bn.reduce_axes(3) == (0, 2)
    assert bn.reduce_axes(4) == (0, 2, 3)
    assert bn.reduce_axes(5) == (0, 2, 3, 4)
    assert bn.channel_shape(2, 7) == (1, 7) and bn.channel_shape(4, 3) == (1, 3, 1, 1)


@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_forward_and_backward_on_every_device(device, shape, affine):
    x, g, gamma, beta = _data(shape, seed=len(shape))
    if not affine:
        gamma = beta = None
    eps = 1e-3
    dev = lambda a: None if a is None else to_device(a, device)   # noqa: E731
    y, mean, var, xhat, invstd = bn.batch_norm_forward(dev(x), dev(gamma), dev(beta), eps)
    xp = get_array_module(dev(x))
    assert all(get_array_module(a) is xp for a in (y, mean, var, xhat, invstd))
    y_ref, mu_ref, var_ref = _vector_forward(x, gamma, beta, eps)
    np.testing.assert_allclose(to_numpy(y), y_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(to_numpy(y), bn.batch_norm_forward_ref(x, gamma, beta, eps), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(to_numpy(mean), mu_ref, rtol=1e-12)
    np.testing.assert_allclose(to_numpy(var), var_ref, rtol=1e-12)
    np.testing.assert_allclose(to_numpy(invstd), 1 / np.sqrt(var_ref + eps), rtol=1e-12)
    np.testing.assert_allclose(to_numpy(xhat), _vector_forward(x, None, None, eps)[0], rtol=1e-10, atol=1e-12)
    dx, dgamma, dbeta = bn.batch_norm_backward(dev(g), xhat, invstd, dev(gamma))
    assert all(get_array_module(a) is xp for a in (dx, dgamma, dbeta))
    dx_ref, dgamma_ref, dbeta_ref = bn.batch_norm_backward_ref(g, x, gamma, eps)
    np.testing.assert_allclose(to_numpy(dx), dx_ref, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(to_numpy(dgamma), dgamma_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(to_numpy(dbeta), dbeta_ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_the_slow_references_against_the_formula_and_central_differences(shape):
    x, g, gamma, beta = _data(shape, seed=7)
    eps = 1e-2
    y = bn.batch_norm_forward_ref(x, gamma, beta, eps)
    np.testing.assert_allclose(y, _vector_forward(x, gamma, beta, eps)[0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(bn.batch_norm_forward_ref(x, None, None, eps),
                               _vector_forward(x, None, None, eps)[0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(bn.batch_norm_forward_ref(x, gamma, None, eps),
                               _vector_forward(x, gamma, None, eps)[0], rtol=1e-12, atol=1e-12)
    assert bn.batch_norm_forward_ref(x.astype(np.float32), gamma, beta, eps).dtype == np.float64
    for gam in (gamma, None):
        dx, dgamma, dbeta = bn.batch_norm_backward_ref(g, x, gam, eps)
        loss = lambda xx, gg=gam: float((g * bn.batch_norm_forward_ref(xx, gg, beta, eps)).sum())  # noqa: E731
        h = 1e-6
        num = np.zeros_like(x)
        for i in np.ndindex(x.shape):
            e = np.zeros_like(x)
            e[i] = h
            num[i] = (loss(x + e) - loss(x - e)) / (2 * h)
        np.testing.assert_allclose(dx, num, rtol=1e-5, atol=1e-7)
        xhat = _vector_forward(x, None, None, eps)[0]
        np.testing.assert_allclose(dgamma, (g * xhat).sum(axis=_axes(x.ndim)), rtol=1e-12)
        np.testing.assert_allclose(dbeta, g.sum(axis=_axes(x.ndim)), rtol=1e-12)


# ---------------------------------------------------------------------------- sync batch norm

class _Group:
    """R simulated processes: ``allreduce`` returns the element-wise sum over all of them (float64)."""

    def __init__(self, r):
        self.r, self.barrier, self.slots, self.calls = r, threading.Barrier(r, timeout=20), [None] * r, []
        self.local = threading.local()

    def allreduce(self, a):
        rank = self.local.rank
        assert a.dtype == np.float64
        self.calls.append((rank, a.shape))
        self.slots[rank] = np.array(a, copy=True)
        self.barrier.wait()
        total = np.sum(self.slots, axis=0)
        self.barrier.wait()
        return total

    def run(self, fn, parts):
        out, errors = [None] * self.r, []

        def body(rank):
            self.local.rank = rank
            try:
                out[rank] = fn(rank, parts[rank])
            except BaseException as e:          # noqa: BLE001
                errors.append(e)
                self.barrier.abort()

        ts = [threading.Thread(target=body, args=(k,)) for k in range(self.r)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        if errors:
            raise errors[0]
        return out


@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("r,splits", [(1, [6]), (2, [3, 3]), (3, [1, 2, 3])])
@pytest.mark.parametrize("shape", [(6, 3), (6, 3, 5), (6, 3, 2, 4)], ids=str)
def test_sync_batch_norm_over_processes_is_batch_norm_of_the_whole_batch(shape, r, splits, affine):
    x, g, gamma, beta = _data(shape, seed=11)
    if not affine:
        gamma = beta = None
    eps = 1e-3
    cuts = np.cumsum([0] + splits)
    xs = [x[a:b] for a, b in zip(cuts[:-1], cuts[1:])]
    gs = [g[a:b] for a, b in zip(cuts[:-1], cuts[1:])]
    group = _Group(r)
    fwd = group.run(lambda k, xk: bn.batch_norm_sync_forward(xk, gamma, beta, eps, group.allreduce), xs)
    c = shape[1]
    assert sorted(group.calls) == sorted([(k, (c + 1,)) for k in range(r)] + [(k, (c,)) for k in range(r)])
    y_ref, mu_ref, var_ref = _vector_forward(x, gamma, beta, eps)
    m = x.size // c
    for k, (y, mean, var, invstd, count) in enumerate(fwd):
        np.testing.assert_allclose(y, y_ref[cuts[k]:cuts[k + 1]], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(mean, mu_ref, rtol=1e-12)
        np.testing.assert_allclose(var, var_ref, rtol=1e-12)
        np.testing.assert_allclose(invstd, 1 / np.sqrt(var_ref + eps), rtol=1e-12)
        assert mean.dtype == var.dtype == invstd.dtype == y.dtype == x.dtype
        assert np.ndim(count) == 0 and np.asarray(count).dtype == np.float64 and float(count) == m
    group.calls.clear()
    bwd = group.run(lambda k, args: bn.batch_norm_sync_backward(args[0], args[1], fwd[k][1], fwd[k][3], gamma,
                                                                fwd[k][4], group.allreduce),
                    list(zip(gs, xs)))
    assert sorted(group.calls) == [(k, (2 * c,)) for k in range(r)]
    dx_ref, dgamma_ref, dbeta_ref = bn.batch_norm_backward_ref(g, x, gamma, eps)
    dgamma_sum, dbeta_sum = 0, 0
    xhat = _vector_forward(x, None, None, eps)[0]
    for k, (dx, dgamma, dbeta) in enumerate(bwd):
        np.testing.assert_allclose(dx, dx_ref[cuts[k]:cuts[k + 1]], rtol=1e-8, atol=1e-10)
        part = slice(cuts[k], cuts[k + 1])
        np.testing.assert_allclose(dbeta, g[part].sum(axis=_axes(x.ndim)), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(dgamma, (g[part] * xhat[part]).sum(axis=_axes(x.ndim)), rtol=1e-8, atol=1e-10)
        assert dx.dtype == dgamma.dtype == dbeta.dtype == x.dtype
        dgamma_sum, dbeta_sum = dgamma_sum + dgamma, dbeta_sum + dbeta
    np.testing.assert_allclose(dgamma_sum, dgamma_ref, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(dbeta_sum, dbeta_ref, rtol=1e-10, atol=1e-12)


def test_sync_batch_norm_in_float32_keeps_float32():
    x, g, gamma, beta = _data((4, 2, 3, 3), seed=12, dtype=np.float32)
    ident = lambda a: a.copy()                                        # noqa: E731  one process
    y, mean, var, invstd, count = bn.batch_norm_sync_forward(x, gamma, beta, 1e-5, ident)
    assert y.dtype == mean.dtype == var.dtype == invstd.dtype == np.float32 and float(count) == 36
    y_ref = _vector_forward(x.astype(np.float64), gamma, beta, 1e-5)[0]
    np.testing.assert_allclose(y, y_ref, rtol=1e-4, atol=1e-5)
    dx, dgamma, dbeta = bn.batch_norm_sync_backward(g, x, mean, invstd, gamma, count, ident)
    assert dx.dtype == dgamma.dtype == dbeta.dtype == np.float32
    dx_ref, dgamma_ref, dbeta_ref = bn.batch_norm_backward_ref(g, x, gamma, 1e-5)
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(dgamma, dgamma_ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dbeta, dbeta_ref, rtol=1e-5, atol=1e-5)


def test_sync_batch_norm_sums_in_float64():
    """The module's promise: sums taken in float64.  In float32, 2**24 + 1 + 1 + 1 is 2**24 (each +1 rounds
    away); in float64 it is exact, and so is the mean, before its one rounding to float32."""
    big = np.float32(2 ** 24)
    x = np.array([[big, 1.0], [1.0, big], [1.0, 1.0], [1.0, 1.0]], np.float32)       # (N=4, C=2)
    calls = []

    def ident(a):
        calls.append(a.dtype)
        return a.copy()

    y, mean, var, invstd, count = bn.batch_norm_sync_forward(x, None, None, 1e-5, ident)
    exact_mean = (2.0 ** 24 + 3) / 4
    np.testing.assert_array_equal(mean, np.float32(exact_mean))
    exact_var = ((2.0 ** 24 - exact_mean) ** 2 + 3 * (1 - exact_mean) ** 2) / 4
    np.testing.assert_allclose(var, exact_var, rtol=1e-6)
    assert calls == [np.float64, np.float64]
    g = x.copy()
    dx, dgamma, dbeta = bn.batch_norm_sync_backward(g, x, mean, invstd, None, count, ident)
    np.testing.assert_array_equal(dbeta, np.float32(2.0 ** 24 + 3))                 # sum g, exact, then rounded
    centred = x.astype(np.float64) - mean.astype(np.float64)
    exact_dgamma = (g.astype(np.float64) * centred).sum(axis=0) * invstd.astype(np.float64)
    np.testing.assert_allclose(dgamma, exact_dgamma, rtol=1e-6)


def test_the_slow_backward_reference_computes_in_float64():
    """Its docstring's promise, also for float32 arguments: 2**24 + 1 + 1 + 1 is exact in float64 only."""
    big = np.float32(2 ** 24)
    g = np.array([[big, 1.0], [1.0, big], [1.0, 1.0], [1.0, 1.0]], np.float32)
    x = np.arange(8, dtype=np.float32).reshape(4, 2)
    dx, dgamma, dbeta = bn.batch_norm_backward_ref(g, x, None, 1e-5)
    assert dbeta.dtype == dgamma.dtype == dx.dtype == np.float64
    np.testing.assert_array_equal(dbeta, [2.0 ** 24 + 3] * 2)
    ref = bn.batch_norm_backward_ref(g.astype(np.float64), x.astype(np.float64), None, 1e-5)
    for a, b in zip((dx, dgamma, dbeta), ref):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------------- the NumPy fast path, blocked

@pytest.fixture(params=["plain", "blocked-1", "blocked-2", "blocked-3"])
def bn_form(request, monkeypatch):
    """The fast path as a whole-array call, or cut into small blocks on 1 to 3 threads (sizes shrunk so that
    small arrays take the blocked path the default job's layers take)."""
    from tinygan.kernels import layout, threads
    if request.param.startswith("blocked"):
        monkeypatch.setattr(threads, "BLOCK_BYTES", 256)
        monkeypatch.setattr(threads, "MIN_PARALLEL_BYTES", 256)
        monkeypatch.setattr(layout, "LINE_MIN", 16)
        monkeypatch.setattr(layout, "LINE_MAX", 64)
        threads.set_num_threads(int(request.param[-1]))
    yield request.param
    threads.set_num_threads(None)


def _layouts(shape, dtype):
    """x as NCHW (contiguous) and, for 4-D, as an NHWC buffer seen as NCHW (what the conv kernels return)."""
    x, g, gamma, beta = _data(shape, seed=3, dtype=dtype)
    yield "contiguous", x, g, gamma, beta
    if len(shape) == 4:
        nhwc = lambda a: np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)  # noqa: E731
        yield "channels-last", nhwc(x), nhwc(g), gamma, beta


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("shape", [(64, 3), (8, 3, 40), (4, 3, 8, 8)], ids=str)
def test_train_kernels_blocked_equal_the_slow_references(bn_form, shape, affine, dtype):
    tol = dict(rtol=2e-5, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-10)
    for _, x, g, gamma, beta in _layouts(shape, dtype):
        gm, bt = (gamma, beta) if affine else (None, None)
        y, mean, var, invstd = bn.batch_norm_train_forward(x, gm, bt, 1e-5)
        assert y.dtype == dtype and mean.shape == var.shape == invstd.shape == (shape[1],)
        assert y.strides == x.strides                                        # x's layout kept
        ref = bn.batch_norm_forward_ref(x.astype(np.float64), None if gm is None else gm.astype(np.float64),
                                        None if bt is None else bt.astype(np.float64), 1e-5)
        np.testing.assert_allclose(y, ref, **tol)
        np.testing.assert_allclose(mean, x.astype(np.float64).mean(axis=_axes(x.ndim)), **tol)
        np.testing.assert_allclose(var, x.astype(np.float64).var(axis=_axes(x.ndim)), **tol)
        dx, dgamma, dbeta = bn.batch_norm_train_backward(g, x, mean, invstd, gm)
        assert dx.dtype == dgamma.dtype == dbeta.dtype == dtype and dx.strides == g.strides
        rdx, rdgamma, rdbeta = bn.batch_norm_backward_ref(g.astype(np.float64), x.astype(np.float64),
                                                          None if gm is None else gm.astype(np.float64), 1e-5)
        np.testing.assert_allclose(dx, rdx, **tol)
        np.testing.assert_allclose(dgamma, rdgamma, **tol)
        np.testing.assert_allclose(dbeta, rdbeta, **tol)
