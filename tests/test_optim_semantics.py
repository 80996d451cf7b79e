"""tinygan.optim's bookkeeping against NumPy references of torch.optim's documented semantics (torch-free).

One of the ``optim`` mutation group's files (scripts/mutation.sh); tests/test_nn_optim.py and the PyTorch
parity tests check the update maths, this file the state around it, as the module docstring of
tinygan/optim.py promises it: each group keeps one flat buffer per state name for its C-contiguous NumPy
parameters of the group's first dtype, each parameter's state array is a view of its own slice (the same
object from step to step, so a holder of it sees later steps), the buffers are rebuilt when the group's
parameters, their dtype or the state names change (a Fortran-ordered parameter, ``Module.double()``, SGD's
momentum switched on), SGD without momentum keeps no state, ``_fast`` / ``_FlatState.covers`` decide the
path one parameter at a time, ``state_dict`` / ``load_state_dict`` round-trip and cast the state to each
parameter's dtype and device (torch: ``value.to(dtype=param.dtype, device=param.device)``), and a
parameter's state follows it across devices (``Module.to``).  The Adam references are torch.optim.Adam's
documented equations written out in float64.  The ``gpu`` tests run on a GPU and on the CuPy stand-in
(``TINYGAN_FAKE_CUPY=1``).
"""
from __future__ import annotations

import numpy as np
import pytest

import tinygan
from tinygan import backend, nn, optim
from tinygan.optim import _fast, _FlatState

gpu = pytest.mark.gpu


def _p(shape, dtype=np.float32, seed=0):
    return nn.Parameter(np.random.default_rng(seed).standard_normal(shape).astype(dtype))


def _grads(shape, n, seed):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape) for _ in range(n)]


def _set_grad(p, g):
    p.grad = tinygan.tensor(np.asarray(g, dtype=p.dtype), device=p.device)


def _adam_ref(p0, grads, lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
    """torch.optim.Adam's documented update, in float64: (p, exp_avg, exp_avg_sq) after len(grads) steps."""
    b1, b2 = betas
    p, m, v = np.array(p0, np.float64), np.zeros(np.shape(p0)), np.zeros(np.shape(p0))
    for t, g in enumerate(grads, start=1):
        g = np.asarray(g, np.float64) + weight_decay * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        p = p - lr / (1 - b1 ** t) * m / (np.sqrt(v) / np.sqrt(1 - b2 ** t) + eps)
    return p, m, v


def _host(a):
    return backend.to_numpy(a)


def _is_on(a, device):
    return backend.get_array_module(a) is backend.xp_for(device)


# --------------------------------------------------------------------------- flat buffers and their views

def test_state_arrays_are_views_of_one_flat_buffer_per_name_that_lasts():
    a, b = _p((2, 3), seed=1), _p((4,), seed=2)
    p0 = [a.numpy().copy(), b.numpy().copy()]
    ga, gb = _grads((2, 3), 3, 10), _grads((4,), 3, 11)
    opt = optim.Adam([a, b], lr=1e-2)
    held = None
    for t in range(3):
        _set_grad(a, ga[t])
        _set_grad(b, gb[t])
        opt.step()
        flat = opt._flat[0]
        if held is None:
            held = (flat, {n: opt.state[id(a)][n] for n in ("exp_avg", "exp_avg_sq")})
        assert flat is held[0]                                   # not rebuilt while nothing changed
        assert flat.ids == (id(a), id(b)) and flat.dtype == np.float32
        for n in ("exp_avg", "exp_avg_sq"):
            assert opt.state[id(a)][n] is held[1][n]             # the same view, step after step
            buf = flat.buffers[n]
            assert buf.shape == (10,) and buf.dtype == np.float32   # 6 + 4 elements, nothing else
            np.testing.assert_array_equal(buf[:6].reshape(2, 3), opt.state[id(a)][n])
            np.testing.assert_array_equal(buf[6:], opt.state[id(b)][n])
            assert np.shares_memory(opt.state[id(b)][n], buf)
    for p, start, g in ((a, p0[0], ga), (b, p0[1], gb)):
        ref_p, ref_m, ref_v = _adam_ref(start, g)
        np.testing.assert_allclose(p.numpy(), ref_p, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(held[1]["exp_avg"] if p is a else opt.state[id(b)]["exp_avg"], ref_m,
                                   rtol=1e-5, atol=1e-7)
        assert opt.state[id(p)]["step"] == 3


def test_flat_buffer_holds_only_contiguous_numpy_parameters_of_the_first_dtype():
    a = _p((3,), np.float32, 1)
    b = _p((2,), np.float64, 2)                                  # another dtype: one-parameter path
    c = _p((4,), np.float32, 3)
    d = nn.Parameter(np.arange(10, dtype=np.float32)[::2])       # strided: one-parameter path
    params = [a, b, c, d]
    starts = [p.numpy().copy() for p in params]
    grads = [_grads(p.shape, 2, 20 + i) for i, p in enumerate(params)]
    opt = optim.Adam(params, lr=1e-2)
    for t in range(2):
        for p, g in zip(params, grads):
            _set_grad(p, g[t])
        opt.step()
    flat = opt._flat[0]
    assert flat.ids == (id(a), id(c)) and set(flat.views) == {id(a), id(c)}
    assert flat.buffers["exp_avg"].shape == (7,)
    assert opt.state[id(b)]["exp_avg"].dtype == np.float64
    assert not np.shares_memory(opt.state[id(d)]["exp_avg"], flat.buffers["exp_avg"])
    for p, start, g in zip(params, starts, grads):
        np.testing.assert_allclose(p.numpy(), _adam_ref(start, g)[0], rtol=1e-5, atol=1e-6)


def test_flat_buffer_is_rebuilt_when_a_parameter_leaves_the_group_path():
    """Same dtype, same state names, one parameter fewer on the flat path: the buffers follow."""
    a, b = _p((2, 3), seed=1), _p((3, 2), seed=2)
    ga, gb = _grads((2, 3), 3, 30), _grads((3, 2), 3, 31)
    starts = [a.numpy().copy(), b.numpy().copy()]
    opt = optim.Adam([a, b], lr=1e-2)
    for t in range(3):
        if t == 1:
            b.data = np.asfortranarray(b.numpy())                # not C-contiguous any more
        _set_grad(a, ga[t])
        _set_grad(b, gb[t])
        opt.step()
    flat = opt._flat[0]
    assert flat.ids == (id(a),) and flat.buffers["exp_avg"].shape == (6,)
    assert np.shares_memory(opt.state[id(a)]["exp_avg"], flat.buffers["exp_avg"])
    for p, start, g in ((a, starts[0], ga), (b, starts[1], gb)):
        np.testing.assert_allclose(p.numpy(), _adam_ref(start, g)[0], rtol=1e-5, atol=1e-6)


def test_flat_buffer_follows_a_dtype_change_and_keeps_the_state():
    """``Module.double()`` after a step: same parameters, new dtype; the state carries over into float64 buffers."""
    tinygan.manual_seed(0)
    m = nn.Linear(3, 2)
    ps = list(m.parameters())
    starts = [p.numpy().astype(np.float64) for p in ps]
    grads = [_grads(p.shape, 3, 40 + i) for i, p in enumerate(ps)]
    opt = optim.Adam(ps, lr=1e-2)
    for t in range(3):
        if t == 1:
            m.double()
        for p, g in zip(ps, grads):
            _set_grad(p, g[t])
        opt.step()
    flat = opt._flat[0]
    assert flat.dtype == np.float64 and flat.ids == tuple(id(p) for p in ps)
    for p, start, g in zip(ps, starts, grads):
        st = opt.state[id(p)]
        assert st["exp_avg"].dtype == np.float64 and np.shares_memory(st["exp_avg"], flat.buffers["exp_avg"])
        ref_p, ref_m, ref_v = _adam_ref(start, g)
        np.testing.assert_allclose(p.numpy(), ref_p, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(st["exp_avg_sq"], ref_v, rtol=1e-5, atol=1e-9)


def test_sgd_without_momentum_keeps_no_buffer_and_switching_momentum_on_starts_one():
    p = _p((5,), seed=3)
    g = _grads((5,), 3, 50)
    w = p.numpy().astype(np.float64)
    opt = optim.SGD([p], lr=0.1)
    _set_grad(p, g[0])
    opt.step()
    w = w - 0.1 * g[0]
    assert opt._flat[0].names == () and opt._flat[0].buffers == {} and opt.state[id(p)] == {}
    opt.param_groups[0]["momentum"] = 0.9                        # torch: the buffer starts as the gradient
    buf = np.zeros(5)
    for t in (1, 2):
        _set_grad(p, g[t])
        opt.step()
        buf = g[t] if t == 1 else 0.9 * buf + g[t]
        w = w - 0.1 * buf
    flat = opt._flat[0]
    assert flat.names == ("momentum_buffer",)
    assert np.shares_memory(opt.state[id(p)]["momentum_buffer"], flat.buffers["momentum_buffer"])
    np.testing.assert_allclose(opt.state[id(p)]["momentum_buffer"], buf, rtol=1e-6)
    np.testing.assert_allclose(p.numpy(), w, rtol=1e-6)


def test_flat_state_covers_its_own_parameters_of_its_dtype_only():
    a, b = _p((2,), seed=1), _p((2,), seed=2)
    flat = _FlatState([a], ("exp_avg",), np.float32)
    assert flat.covers(a)
    assert not flat.covers(b)                                    # same dtype, not one of its parameters
    a.data = a.numpy()                                           # still float32
    assert flat.covers(a)
    a._set_data(a._data.astype(np.float64))                     # what Module.double() does
    assert not flat.covers(a)                                    # one of its parameters, another dtype


def test_fast_path_needs_a_c_contiguous_numpy_parameter():
    c = _p((2, 3))
    f = nn.Parameter(np.asfortranarray(np.ones((2, 3), np.float32)))
    s = nn.Parameter(np.arange(6, dtype=np.float32)[::2])
    g = np.ones((2, 3), np.float32)
    assert _fast(c, g) is True
    assert not _fast(f, g)
    assert not _fast(s, g[0])


@gpu
def test_fast_path_needs_both_arrays_on_the_host():
    cp = backend.xp_for("cuda")
    host, dev = _p((3,)), nn.Parameter(cp.ones(3, dtype=cp.float32))
    assert _fast(host, np.ones(3, np.float32))
    assert not _fast(dev, cp.ones(3, dtype=cp.float32))
    assert not _fast(dev, np.ones(3, np.float32))                # a GPU parameter, whatever its gradient
    assert not _fast(host, cp.ones(3, dtype=cp.float32))         # a host parameter, a device gradient


@gpu
def test_flat_buffer_leaves_out_a_parameter_on_the_gpu():
    cp = backend.xp_for("cuda")
    a = _p((3,), seed=1)
    b = nn.Parameter(cp.asarray(np.arange(4, dtype=np.float32)))
    ga, gb = _grads((3,), 2, 60), _grads((4,), 2, 61)
    opt = optim.Adam([a, b], lr=1e-2)
    for t in range(2):
        _set_grad(a, ga[t])
        _set_grad(b, gb[t])
        opt.step()
    assert opt._flat[0].ids == (id(a),) and opt._flat[0].buffers["exp_avg"].shape == (3,)
    assert _is_on(opt.state[id(b)]["exp_avg"], "cuda") and _is_on(opt.state[id(b)]["exp_avg_sq"], "cuda")
    np.testing.assert_allclose(_host(b._data), _adam_ref(np.arange(4.0), gb)[0], rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- devices

class _TwoDtypes(nn.Module):
    """A float32 and a float64 parameter: on the CPU the second takes the one-parameter path."""

    def __init__(self):
        super().__init__()
        self.a = _p((2, 3), np.float32, 1)
        self.b = _p((4,), np.float64, 2)


@gpu
@pytest.mark.parametrize("name,hyper", [("Adam", {}), ("RMSprop", dict(momentum=0.5, centered=True)),
                                        ("SGD", dict(momentum=0.9))])
def test_state_follows_the_parameters_to_the_gpu_and_back(name, hyper):
    m, ref = _TwoDtypes(), _TwoDtypes()
    opt = getattr(optim, name)(list(m.parameters()), lr=1e-2, **hyper)
    ref_opt = getattr(optim, name)(list(ref.parameters()), lr=1e-2, **hyper)   # stays on the CPU
    grads = {n: _grads(p.shape, 3, 70 + i) for i, (n, p) in enumerate(m.named_parameters())}
    for t, device in enumerate(["cpu", "cuda", "cpu"]):
        m.to(device)
        for (n, p), q in zip(m.named_parameters(), ref.parameters()):
            _set_grad(p, grads[n][t])
            _set_grad(q, grads[n][t])
        opt.step()
        ref_opt.step()
        for p, q in zip(m.parameters(), ref.parameters()):
            st = opt.state[id(p)]
            assert st and all(_is_on(v, device) for v in st.values() if hasattr(v, "shape")), (t, device)
            np.testing.assert_allclose(_host(p._data), q.numpy(), rtol=1e-6, atol=1e-7)
            for k, v in st.items():
                np.testing.assert_allclose(_host(v), _host(ref_opt.state[id(q)][k]), rtol=1e-6, atol=1e-9)


@gpu
@pytest.mark.parametrize("name", ["Adam", "RMSprop"])
def test_state_of_a_parameter_on_the_gpu_is_made_there(name):
    cp = backend.xp_for("cuda")
    p = nn.Parameter(cp.ones(3, dtype=cp.float32))
    _set_grad(p, np.ones(3))
    opt = getattr(optim, name)([p], lr=1e-2)
    opt.step()
    assert all(_is_on(v, "cuda") and v.dtype == np.float32 for v in opt.state[id(p)].values() if hasattr(v, "shape"))


# --------------------------------------------------------------------------- state_dict round trips

def test_load_state_dict_casts_the_state_to_the_parameter_dtype_and_resumes_exactly():
    p64 = _p((3, 2), np.float64, 5)
    g = _grads((3, 2), 4, 80)
    opt64 = optim.Adam([p64], lr=1e-2)
    for t in range(2):
        _set_grad(p64, g[t])
        opt64.step()
    sd = opt64.state_dict()
    assert sd["state"][0]["exp_avg"].dtype == np.float64
    p32 = nn.Parameter(p64.numpy().astype(np.float32))
    opt32 = optim.Adam([p32], lr=0.5)
    opt32.load_state_dict(sd)
    st = opt32.state[id(p32)]
    assert st["exp_avg"].dtype == np.float32 and st["exp_avg_sq"].dtype == np.float32 and st["step"] == 2
    np.testing.assert_array_equal(st["exp_avg"], sd["state"][0]["exp_avg"].astype(np.float32))
    assert opt32.param_groups[0]["lr"] == 1e-2 and opt32.param_groups[0]["betas"] == (0.9, 0.999)
    # a float32 resume is bit for bit the uninterrupted float32 run from the same state
    q32 = nn.Parameter(p64.numpy().astype(np.float32))
    opt_q = optim.Adam([q32], lr=1e-2)
    opt_q.load_state_dict(opt32.state_dict())
    for t in (2, 3):
        _set_grad(p32, g[t])
        _set_grad(q32, g[t])
        opt32.step()
        opt_q.step()
    np.testing.assert_array_equal(p32.numpy(), q32.numpy())
    np.testing.assert_allclose(opt32.state[id(p32)]["exp_avg"], opt_q.state[id(q32)]["exp_avg"], rtol=0)


def test_state_dict_param_groups_hold_indices_and_hyper_parameters():
    a, b, c = _p((2,), seed=1), _p((3,), seed=2), _p((1,), seed=3)
    opt = optim.SGD([{"params": [a, b], "lr": 0.5, "tag": "G"}, {"params": c}], lr=0.1, momentum=0.9)
    sd = opt.state_dict()
    hyper = {"lr", "momentum", "dampening", "weight_decay", "nesterov"}
    assert [set(g) for g in sd["param_groups"]] == [hyper | {"tag", "params"}, hyper | {"params"}]
    assert sd["param_groups"][0]["params"] == [0, 1] and sd["param_groups"][1]["params"] == [2]
    assert sd["param_groups"][0]["lr"] == 0.5 and sd["param_groups"][1]["lr"] == 0.1
    assert opt.param_groups[1]["params"] == [c] and opt.param_groups[0]["tag"] == "G"


@gpu
def test_load_state_dict_puts_the_state_on_the_parameter_device():
    cp = backend.xp_for("cuda")
    host = _p((4,), seed=4)
    g = _grads((4,), 3, 90)
    opt = optim.Adam([host], lr=1e-2)
    _set_grad(host, g[0])
    opt.step()
    sd = opt.state_dict()
    dev = nn.Parameter(cp.asarray(host.numpy()))
    opt_dev = optim.Adam([dev], lr=1e-2)
    opt_dev.load_state_dict(sd)
    st = opt_dev.state[id(dev)]
    assert _is_on(st["exp_avg"], "cuda") and _is_on(st["exp_avg_sq"], "cuda")
    np.testing.assert_array_equal(_host(st["exp_avg"]), sd["state"][0]["exp_avg"])
    for t in (1, 2):
        _set_grad(host, g[t])
        _set_grad(dev, g[t])
        opt.step()
        opt_dev.step()
    np.testing.assert_allclose(_host(dev._data), host.numpy(), rtol=1e-6, atol=1e-7)
