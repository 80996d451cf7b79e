"""tinygan.kernels.optim's update kernels against NumPy references of their update equations (torch-free).

One of the ``optim`` mutation group's files (scripts/mutation.sh).  It checks what the kernels promise:

* ``adam_multi_``, ``sgd_multi_`` and ``rmsprop_multi_`` against NumPy references written from the
  update equations of ``torch.optim.Adam`` / ``SGD`` / ``RMSprop`` (in torch's documented order of
  operations, in the parameter's dtype), with 0-d to 3-d parameters, per-parameter step counts, weight
  decay, momentum, dampening, Nesterov, centering, gradients in another layout (a transposed view, a
  strided 1-d view) and parameters of more than one block; and **the same floats** as the one-parameter
  kernels ``adam_step_`` / ``sgd_step_`` / ``rmsprop_step_`` (``array_equal``);
* a state list that the hyper-parameters make unused (SGD/RMSprop buffers without momentum, RMSprop's
  gradient average without ``centered``) is ignored, and a used one is checked;
* every argument check of ``_check_multi``, one argument at a time, each whole message matched;
* ``_param_blocks``: blocks over every parameter, in order, each element once, by rows exactly when the
  gradient is not C-contiguous (and the parameter not 0-d), about ``threads.BLOCK_BYTES`` each;
  ``_block``: flat views of the arrays and a flat gradient block of the parameter's dtype;
* the one-parameter Adam and RMSprop kernels hand a CuPy array to the fused CUDA kernel
  (``tinygan.kernels.cuda``), seen through a stand-in module (no CuPy needed).
"""
from __future__ import annotations

import math
import re

import numpy as np
import pytest

from tinygan.kernels import optim as kopt
from tinygan.kernels import threads

RNG = np.random.default_rng(7)
SHAPES = [(), (5,), (3, 4), (2, 3, 4), (6,), (4, 3)]


# ---------------------------------------------------------------- references (torch.optim's equations)

def adam_ref(p, g, m, v, *, lr, beta1, beta2, eps, step, weight_decay=0.0):
    """torch.optim.Adam, one step, in p's dtype: returns new (p, m, v)."""
    dt = p.dtype.type
    if weight_decay:
        g = g + dt(weight_decay) * p                       # g = g + wd p
    m = dt(beta1) * m + dt(1 - beta1) * g                  # m = b1 m + (1 - b1) g
    v = dt(beta2) * v + dt(1 - beta2) * (g * g)            # v = b2 v + (1 - b2) g^2
    denom = np.sqrt(v) / dt(math.sqrt(1 - beta2 ** step)) + dt(eps)   # sqrt(v_hat) + eps
    return p - dt(lr / (1 - beta1 ** step)) * (m / denom), m, v      # p - lr m_hat / (sqrt(v_hat) + eps)


def sgd_ref(p, g, buf, *, lr, momentum, dampening, weight_decay, nesterov, first):
    """torch.optim.SGD, one step: returns new (p, buf)."""
    dt = p.dtype.type
    if weight_decay:
        g = g + dt(weight_decay) * p
    if momentum:
        buf = g.copy() if first else dt(momentum) * buf + dt(1 - dampening) * g
        g = g + dt(momentum) * buf if nesterov else buf
    return p - dt(lr) * g, buf


def rmsprop_ref(p, g, v, buf, gavg, *, lr, alpha, eps, weight_decay, momentum, centered):
    """torch.optim.RMSprop, one step: returns new (p, v, buf, gavg)."""
    dt = p.dtype.type
    if weight_decay:
        g = g + dt(weight_decay) * p
    v = dt(alpha) * v + dt(1 - alpha) * (g * g)            # v = a v + (1 - a) g^2
    if centered:
        gavg = dt(alpha) * gavg + dt(1 - alpha) * g        # gavg = a gavg + (1 - a) g
        avg = np.sqrt(v - gavg * gavg) + dt(eps)
    else:
        avg = np.sqrt(v) + dt(eps)
    if momentum > 0:
        buf = dt(momentum) * buf + g / avg                 # buf = mu buf + g / avg;  p = p - lr buf
        return p - dt(lr) * buf, v, buf, gavg
    return p - dt(lr) * (g / avg), v, buf, gavg


# ---------------------------------------------------------------- inputs

def _arr(shape, dtype, scale=1.0, positive=False):
    a = RNG.standard_normal(shape) * scale
    return np.asarray(np.abs(a) if positive else a, dtype=dtype)


def _grad(shape, dtype, layout):
    """A gradient of ``shape``: C-contiguous, or (for ndim >= 1) a transposed / strided view."""
    g = _arr(shape, dtype)
    if layout == "c" or len(shape) == 0:
        return np.array(g, order="C")
    if len(shape) == 1:
        base = np.zeros(2 * shape[0], dtype=dtype)
        base[::2] = g
        out = base[::2]
    else:
        out = np.asfortranarray(g)
    assert not out.flags.c_contiguous
    return out


def _case(dtype, shapes=SHAPES, layouts=("c", "t")):
    ps = [_arr(s, dtype) for s in shapes]
    gs = [_grad(s, dtype, layouts[k % len(layouts)]) for k, s in enumerate(shapes)]
    return ps, gs


def _copies(arrs):
    return [None if a is None else np.array(a, copy=True) for a in arrs]


def _eq(got, want):
    for a, b in zip(got, want, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)


ADAM = dict(lr=1e-2, beta1=0.8, beta2=0.95, eps=1e-6)


# ---------------------------------------------------------------- Adam

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_adam_multi_is_the_adam_equations(dtype, weight_decay):
    ps, gs = _case(dtype)
    ms = [_arr(p.shape, dtype, 0.1) for p in ps]
    vs = [_arr(p.shape, dtype, 0.1, positive=True) for p in ps]
    steps = [1, 2, 5, 9, 3, 1]
    want = [adam_ref(p, g, m, v, step=t, weight_decay=weight_decay, **ADAM)
            for p, g, m, v, t in zip(ps, gs, ms, vs, steps)]
    one = _copies(ps), _copies(ms), _copies(vs)                   # the one-parameter kernel
    for k, t in enumerate(steps):
        kopt.adam_step_(one[0][k], gs[k], one[1][k], one[2][k], step=t, weight_decay=weight_decay, **ADAM)
    got = _copies(ps), _copies(ms), _copies(vs)
    kopt.adam_multi_(got[0], gs, got[1], got[2], steps, weight_decay=weight_decay, **ADAM)
    for i in range(3):
        _eq(got[i], [w[i] for w in want])
        _eq(got[i], one[i])                                        # the same floats as adam_step_


def test_adam_multi_weight_decay_defaults_to_zero():
    ps, gs = _case(np.float32)
    ms = [np.zeros_like(p) for p in ps]
    vs = [np.zeros_like(p) for p in ps]
    want = [adam_ref(p, g, m, v, step=1, **ADAM) for p, g, m, v in zip(ps, gs, ms, vs)]
    kopt.adam_multi_(ps, gs, ms, vs, [1] * len(ps), **ADAM)
    _eq(ps, [w[0] for w in want])


def test_adam_multi_of_no_parameters_does_nothing():
    kopt.adam_multi_([], [], [], [], [], **ADAM)
    kopt.sgd_multi_([], [], [], lr=0.1, momentum=0.9, dampening=0.0, weight_decay=0.0, nesterov=False, first=[])
    kopt.rmsprop_multi_([], [], [], [], [], lr=0.1, alpha=0.9, eps=1e-8, weight_decay=0.0, momentum=0.5,
                        centered=True)


# ---------------------------------------------------------------- SGD

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("momentum,dampening,nesterov,weight_decay", [
    (0.0, 0.0, False, 0.0), (0.0, 0.0, False, 0.1), (0.9, 0.0, False, 0.0), (0.9, 0.3, False, 0.1),
    (0.9, 0.0, True, 0.0), (0.5, 0.25, True, 0.05)])
def test_sgd_multi_is_the_sgd_equations(dtype, momentum, dampening, nesterov, weight_decay):
    ps, gs = _case(dtype)
    bufs = [_arr(p.shape, dtype) for p in ps]
    first = [k % 2 == 0 for k in range(len(ps))]
    hyper = dict(lr=0.05, momentum=momentum, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov)
    want = [sgd_ref(p, g, b, first=f, **hyper) for p, g, b, f in zip(ps, gs, bufs, first)]
    one_p, one_b = _copies(ps), _copies(bufs)
    for k in range(len(ps)):
        b = kopt.sgd_step_(one_p[k], gs[k], one_b[k], first=first[k], **hyper)
        if momentum:
            one_b[k][...] = b
    got_p, got_b = _copies(ps), _copies(bufs)
    kopt.sgd_multi_(got_p, gs, got_b, first=first, **hyper)
    _eq(got_p, [w[0] for w in want])
    _eq(got_p, one_p)
    if momentum:
        _eq(got_b, [w[1] for w in want])
        _eq(got_b, one_b)
    else:
        _eq(got_b, bufs)                                           # untouched without momentum


@pytest.mark.parametrize("bufs", [[], [None], "short"])
def test_sgd_multi_ignores_bufs_without_momentum(bufs):
    ps, gs = _case(np.float32)
    if bufs == "short":
        bufs = [np.zeros((7, 7), np.float32)]                      # wrong length and shape: unused
    hyper = dict(lr=0.05, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False)
    want = [sgd_ref(p, g, None, first=True, **hyper)[0] for p, g in zip(ps, gs)]
    kopt.sgd_multi_(ps, gs, bufs, first=[True] * len(ps), **hyper)
    _eq(ps, want)


# ---------------------------------------------------------------- RMSprop

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("momentum,centered,weight_decay", [
    (0.0, False, 0.0), (0.0, False, 0.1), (0.0, True, 0.0), (0.5, False, 0.0), (0.5, True, 0.1),
    (1.5, False, 0.0)])
def test_rmsprop_multi_is_the_rmsprop_equations(dtype, momentum, centered, weight_decay):
    ps, gs = _case(dtype)
    vs = [_arr(p.shape, dtype, 1.0, positive=True) + 1 for p in ps]
    bufs = [_arr(p.shape, dtype, 0.1) for p in ps]
    gavgs = [_arr(p.shape, dtype, 0.1) for p in ps]
    hyper = dict(lr=0.01, alpha=0.9, eps=1e-6, weight_decay=weight_decay, momentum=momentum, centered=centered)
    want = [rmsprop_ref(*a, **hyper) for a in zip(ps, gs, vs, bufs, gavgs)]
    one = _copies(ps), _copies(vs), _copies(bufs), _copies(gavgs)
    for k in range(len(ps)):
        kopt.rmsprop_step_(one[0][k], gs[k], one[1][k], one[2][k], one[3][k], **hyper)
    got = _copies(ps), _copies(vs), _copies(bufs), _copies(gavgs)
    kopt.rmsprop_multi_(got[0], gs, got[1], got[2] if momentum > 0 else [None] * len(ps),
                        got[3] if centered else [None] * len(ps), **hyper)
    for i in range(4):
        _eq(got[i], [w[i] for w in want])
        _eq(got[i], one[i])
    if not momentum:
        _eq(got[2], bufs)
    if not centered:
        _eq(got[3], gavgs)


@pytest.mark.parametrize("momentum,centered", [(0.0, False), (0.0, True), (0.5, False)])
def test_rmsprop_multi_ignores_unused_state(momentum, centered):
    ps, gs = _case(np.float32)
    n = len(ps)
    vs = [_arr(p.shape, np.float32, positive=True) for p in ps]
    bufs = [_arr(p.shape, np.float32) for p in ps] if momentum else []
    gavgs = [_arr(p.shape, np.float32, 0.1) for p in ps] if centered else [None] * (n + 2)
    hyper = dict(lr=0.01, alpha=0.9, eps=1e-6, weight_decay=0.0, momentum=momentum, centered=centered)
    want = [rmsprop_ref(p, g, v, bufs[k] if momentum else None, gavgs[k], **hyper)[0]
            for k, (p, g, v) in enumerate(zip(ps, gs, vs))]
    kopt.rmsprop_multi_(ps, gs, vs, bufs, gavgs, **hyper)
    _eq(ps, want)


# ---------------------------------------------------------------- more than one block per parameter

@pytest.mark.parametrize("kernel", ["adam", "sgd", "rmsprop"])
def test_multi_kernels_on_parameters_of_several_blocks(kernel):
    shapes = [(3,), (300_001,), (700, 500), (2,)]                   # 1.2 MB flat, 1.4 MB by rows
    ps, gs = _case(np.float32, shapes, layouts=("c", "c", "t", "t"))
    assert sum(1 for k, *_ in kopt._param_blocks(ps, gs) if k == 1) >= 2
    assert sum(1 for k, *_ in kopt._param_blocks(ps, gs) if k == 2) >= 2
    if kernel == "adam":
        ms, vs = [_arr(p.shape, np.float32, 0.1) for p in ps], [_arr(p.shape, np.float32, 0.1, True) for p in ps]
        want = [adam_ref(p, g, m, v, step=2, **ADAM) for p, g, m, v in zip(ps, gs, ms, vs)]
        kopt.adam_multi_(ps, gs, ms, vs, [2] * 4, **ADAM)
        _eq(ps, [w[0] for w in want])
        _eq(ms, [w[1] for w in want])
        _eq(vs, [w[2] for w in want])
    elif kernel == "sgd":
        bufs = [_arr(p.shape, np.float32) for p in ps]
        hyper = dict(lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01, nesterov=True)
        want = [sgd_ref(p, g, b, first=False, **hyper) for p, g, b in zip(ps, gs, bufs)]
        kopt.sgd_multi_(ps, gs, bufs, first=[False] * 4, **hyper)
        _eq(ps, [w[0] for w in want])
        _eq(bufs, [w[1] for w in want])
    else:
        vs = [_arr(p.shape, np.float32, positive=True) for p in ps]
        hyper = dict(lr=0.01, alpha=0.9, eps=1e-6, weight_decay=0.0, momentum=0.0, centered=False)
        want = [rmsprop_ref(p, g, v, None, None, **hyper) for p, g, v in zip(ps, gs, vs)]
        kopt.rmsprop_multi_(ps, gs, vs, [None] * 4, [None] * 4, **hyper)
        _eq(ps, [w[0] for w in want])
        _eq(vs, [w[1] for w in want])


# ---------------------------------------------------------------- _param_blocks and _block

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_param_blocks_cover_every_parameter_in_order(dtype):
    shapes = [(), (5,), (7,), (3, 4), (2, 3, 4), (600, 1000), (300_000,), (4, 5)]
    layouts = ["c", "c", "t", "c", "t", "t", "c", "t"]
    ps = [np.zeros(s, dtype) for s in shapes]
    gs = [_grad(s, dtype, lay) for s, lay in zip(shapes, layouts)]
    blocks = kopt._param_blocks(ps, gs)
    assert [b[0] for b in blocks] == sorted(b[0] for b in blocks)   # parameters in order
    for k, (p, g) in enumerate(zip(ps, gs)):
        mine = [b for b in blocks if b[0] == k]
        by_rows = not g.flags.c_contiguous and p.ndim > 0
        assert {b[3] for b in mine} == {by_rows}
        n = p.shape[0] if by_rows else p.size
        row_bytes = p.itemsize * (p.size // p.shape[0] if by_rows else 1)
        assert [b[1] for b in mine] == [0] + [b[2] for b in mine[:-1]]   # consecutive, each row once
        assert mine[-1][2] == n
        for _, s, e, _ in mine:
            assert s < e
            assert (e - s) * row_bytes <= max(threads.BLOCK_BYTES, row_bytes)
        if n * row_bytes > 2 * threads.BLOCK_BYTES:
            assert len(mine) >= 2


def test_block_gives_flat_views_and_a_flat_gradient_block():
    a = RNG.standard_normal((6, 3, 4)).astype(np.float32)
    b = RNG.standard_normal((6, 3, 4)).astype(np.float32)
    g = _grad((6, 3, 4), np.float32, "t")
    (va, vb), gb = kopt._block((a, b), g, 0, 2, 5, True, np.float32)
    for view, arr in ((va, a), (vb, b)):
        assert view.ndim == 1 and np.shares_memory(view, arr)
        np.testing.assert_array_equal(view, arr[2:5].ravel())
    assert gb.ndim == 1 and gb.dtype == np.float32
    np.testing.assert_array_equal(gb, g[2:5].ravel())
    gc = np.ascontiguousarray(g)
    (va,), gb = kopt._block((a,), gc, 0, 7, 30, False, np.float32)
    assert va.ndim == 1 and np.shares_memory(va, a) and gb.ndim == 1
    np.testing.assert_array_equal(va, a.ravel()[7:30])
    np.testing.assert_array_equal(gb, gc.ravel()[7:30])


# ---------------------------------------------------------------- argument checks

def _adam(ps, gs, ms, vs):
    kopt.adam_multi_(ps, gs, ms, vs, [1] * len(ps), **ADAM)


def _sgd(ps, gs, bufs, momentum=0.9):
    kopt.sgd_multi_(ps, gs, bufs, lr=0.1, momentum=momentum, dampening=0.0, weight_decay=0.0, nesterov=False,
                    first=[True] * len(ps))


def _rms(ps, gs, vs, bufs, gavgs, momentum=0.5, centered=True):
    kopt.rmsprop_multi_(ps, gs, vs, bufs, gavgs, lr=0.1, alpha=0.9, eps=1e-8, weight_decay=0.0,
                        momentum=momentum, centered=centered)


def _pair():
    ps = [np.zeros((2,), np.float32), np.zeros((3, 4), np.float32)]
    return ps, [np.ones_like(p) for p in ps]


def _like(ps):
    return [np.zeros_like(p) for p in ps]


def _call(kernel, arg, value, **kw):
    """Call ``kernel`` on two good parameters with argument ``arg`` replaced by ``value(ps)``."""
    ps, gs = _pair()
    names = {"adam": ("params", "grads", "exp_avgs", "exp_avg_sqs"),
             "sgd": ("params", "grads", "bufs"),
             "rms": ("params", "grads", "square_avgs", "bufs", "grad_avgs")}[kernel]
    args = {"params": ps, "grads": gs}
    args.update({n: _like(ps) for n in names[2:]})
    args[arg] = value(ps)
    fn = {"adam": _adam, "sgd": _sgd, "rms": _rms}[kernel]
    fn(*[args[n] for n in names], **kw)


NAMES = {"adam": "adam_multi_", "sgd": "sgd_multi_", "rms": "rmsprop_multi_"}
LISTS = [("adam", "grads"), ("adam", "exp_avgs"), ("adam", "exp_avg_sqs"), ("sgd", "grads"), ("sgd", "bufs"),
         ("rms", "grads"), ("rms", "square_avgs"), ("rms", "bufs"), ("rms", "grad_avgs")]


@pytest.mark.parametrize("kernel,arg", LISTS)
def test_a_list_of_another_length_is_refused(kernel, arg):
    msg = f"^{NAMES[kernel]}: got 2 parameters and a list of 1$"
    with pytest.raises(ValueError, match=msg):
        _call(kernel, arg, lambda ps: _like(ps)[:1])


@pytest.mark.parametrize("kernel,arg", [x for x in LISTS if x[1] != "grads"])
@pytest.mark.parametrize("bad", ["shape", "layout"])
def test_a_state_of_another_shape_or_layout_is_refused(kernel, arg, bad):
    def value(ps):
        st = _like(ps)
        st[1] = np.zeros((4, 3), np.float32) if bad == "shape" else np.zeros((4, 3), np.float32).T
        return st
    msg = f"^{NAMES[kernel]}: state of parameter 1 must be C-contiguous of shape {re.escape(str((3, 4)))}$"
    with pytest.raises(ValueError, match=msg):
        _call(kernel, arg, value)


@pytest.mark.parametrize("kernel", ["adam", "sgd", "rms"])
def test_a_parameter_not_c_contiguous_is_refused(kernel):
    def value(ps):
        return [ps[0], np.zeros((4, 3), np.float32).T]
    with pytest.raises(ValueError, match=f"^{NAMES[kernel]}: parameter 1 must be a C-contiguous NumPy array$"):
        _call(kernel, "params", value)


class _Device:
    """A stand-in for CuPy: get_array_module answers it for the arrays registered in ``arrays``."""

    def __init__(self, monkeypatch, *arrays):
        self.arrays = arrays
        monkeypatch.setattr(kopt, "get_array_module",
                            lambda *xs: self if any(x is a for x in xs for a in self.arrays) else np)


@pytest.mark.parametrize("kernel", ["adam", "sgd", "rms"])
def test_a_parameter_not_on_numpy_is_refused(kernel, monkeypatch):
    def value(ps):
        _Device(monkeypatch, ps[0])
        return ps
    with pytest.raises(ValueError, match=f"^{NAMES[kernel]}: parameter 0 must be a C-contiguous NumPy array$"):
        _call(kernel, "params", value)


@pytest.mark.parametrize("momentum", [0.5, 2.0])
def test_rmsprop_checks_bufs_with_momentum_only(momentum):
    with pytest.raises(ValueError, match="^rmsprop_multi_: got 2 parameters and a list of 0$"):
        _call("rms", "bufs", lambda ps: [], momentum=momentum, centered=False)
    _call("rms", "bufs", lambda ps: [], momentum=0.0, centered=True)
    _call("rms", "grad_avgs", lambda ps: [], momentum=0.5, centered=False)
    with pytest.raises(ValueError, match="^rmsprop_multi_: got 2 parameters and a list of 0$"):
        _call("rms", "grad_avgs", lambda ps: [], momentum=0.0, centered=True)


def test_sgd_checks_bufs_with_momentum_only():
    with pytest.raises(ValueError, match="^sgd_multi_: got 2 parameters and a list of 3$"):
        _call("sgd", "bufs", lambda ps: _like(ps) + [None], momentum=0.9)
    _call("sgd", "bufs", lambda ps: [], momentum=0.0)


# ---------------------------------------------------------------- CuPy arrays go to the fused kernels

def test_adam_step_hands_a_device_array_to_the_cuda_kernel(monkeypatch):
    p, g, m, v = (np.ones(3, np.float32) for _ in range(4))
    _Device(monkeypatch, p)
    seen = []
    monkeypatch.setattr(kopt._cuda, "adam_step_", lambda *a, **kw: seen.append((a, kw)))
    kopt.adam_step_(p, g, m, v, step=1, weight_decay=0.5, **ADAM)
    assert len(seen) == 1 and seen[0][0][0] is p and seen[0][1]["weight_decay"] == 0.5
    np.testing.assert_array_equal(p, 1.0)                          # not updated by the NumPy path


def test_rmsprop_step_hands_a_device_array_to_the_cuda_kernel(monkeypatch):
    p, g, v = (np.ones(3, np.float32) for _ in range(3))
    _Device(monkeypatch, p)
    seen = []
    monkeypatch.setattr(kopt._cuda, "rmsprop_step_", lambda *a, **kw: seen.append((a, kw)))
    kopt.rmsprop_step_(p, g, v, None, None, lr=0.1, alpha=0.9, eps=1e-8, weight_decay=0.0, momentum=0.0,
                       centered=False)
    assert len(seen) == 1 and seen[0][0][0] is p and seen[0][1]["alpha"] == 0.9
    np.testing.assert_array_equal(p, 1.0)
