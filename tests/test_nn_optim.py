"""The Module API, optimizer state round trips and the init functions' statistics."""
from __future__ import annotations

import copy
import math
import pickle
import re

import numpy as np
import pytest

import tinygan
import tinygan.functional as F
from tinygan import nn, optim
from tinygan.kernels.optim import adam_step_, adam_step_ref
from tinygan.nn import frozen
from tinygan.nn.init import _fans


class Net(nn.Module):
    """A nested module: parameters, a buffer-holding child and a ModuleList."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.bn = nn.BatchNorm2d(2)
        self.heads = nn.ModuleList([nn.Linear(2 * 4 * 4, 3), nn.Linear(3, 1)])
        self.scale = nn.Parameter(np.ones(1, np.float32))

    def forward(self, x):
        h = F.leaky_relu(self.bn(self.conv(x)), 0.2)
        h = self.heads[0](h.reshape(h.shape[0], -1))
        return self.heads[1](h) * self.scale


EXPECTED_PARAMS = ["scale", "conv.weight", "conv.bias", "bn.weight", "bn.bias", "heads.0.weight", "heads.0.bias",
                   "heads.1.weight", "heads.1.bias"]


def _x(n=3, seed=0):
    return tinygan.tensor(np.random.default_rng(seed).standard_normal((n, 1, 4, 4)).astype(np.float32))


# ---------------------------------------------------------------------------
# Module
# ---------------------------------------------------------------------------

def test_named_parameters_order_and_parameters():
    net = Net()
    names = [k for k, _ in net.named_parameters()]
    # a module's own parameters first, then its children in registration order (as torch)
    assert names == EXPECTED_PARAMS
    params = list(net.parameters())
    assert len(params) == len(names)
    assert all(isinstance(p, nn.Parameter) and p.requires_grad and p.is_leaf for p in params)
    assert net.num_parameters() == sum(p.numel() for p in params) == 1 + 2 * 9 + 2 + 2 + 2 + 32 * 3 + 3 + 3 + 1
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    assert [k for k, _ in seq.named_parameters()] == ["0.weight", "0.bias", "2.weight", "2.bias"]


def test_shared_parameter_is_listed_once():
    lin = nn.Linear(2, 2)
    seq = nn.Sequential(lin, nn.Tanh(), lin)
    assert [k for k, _ in seq.named_parameters()] == ["0.weight", "0.bias"]


def test_buffers_are_state_but_not_parameters():
    bn = nn.BatchNorm1d(3)
    assert [k for k, _ in bn.named_parameters()] == ["weight", "bias"]
    assert list(bn.state_dict()) == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    assert [k for k, _ in bn.named_buffers()] == ["running_mean", "running_var", "num_batches_tracked"]


def test_state_dict_keys_and_values_are_numpy_copies():
    net = Net()
    sd = net.state_dict()
    assert list(sd) == ["scale", "conv.weight", "conv.bias", "bn.weight", "bn.bias", "bn.running_mean",
                        "bn.running_var", "bn.num_batches_tracked", "heads.0.weight", "heads.0.bias",
                        "heads.1.weight", "heads.1.bias"]
    assert all(type(v) is np.ndarray for v in sd.values())
    assert sd["conv.weight"].shape == (2, 1, 3, 3) and sd["conv.weight"].dtype == np.float32
    assert sd["bn.num_batches_tracked"].dtype == np.int64 and sd["bn.num_batches_tracked"].shape == ()
    before = net.conv.weight.numpy().copy()
    sd["conv.weight"][...] = 123.0                 # mutating the copy ...
    sd["bn.running_mean"][...] = 7.0
    np.testing.assert_array_equal(net.conv.weight.numpy(), before)   # ... leaves the model alone
    assert not np.any(net.bn.running_mean == 7.0)
    assert not np.shares_memory(net.state_dict()["heads.0.bias"], net.heads[0].bias.data)


def test_load_state_dict_round_trip():
    tinygan.manual_seed(0)
    a = Net()
    a(_x())                  # move the batch norm statistics away from their defaults
    tinygan.manual_seed(1)
    b = Net()
    assert not np.array_equal(a.conv.weight.numpy(), b.conv.weight.numpy())
    b.load_state_dict(a.state_dict())
    for (k, va), (k2, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert k == k2
        np.testing.assert_array_equal(va, vb, err_msg=k)
        assert va.dtype == vb.dtype
    a.eval()
    b.eval()
    np.testing.assert_array_equal(a(_x(seed=5)).numpy(), b(_x(seed=5)).numpy())
    # the loaded arrays are copies, not views of the dict
    sd = a.state_dict()
    b.load_state_dict(sd)
    sd["conv.weight"][...] = 0
    assert np.any(b.conv.weight.numpy() != 0)


@pytest.mark.parametrize("via", ["pickle", "npz"])
def test_load_state_dict_through_pickle_and_npz(tmp_path, via):
    """A state saved through pickle or np.savez loads into a fresh, differently initialised model."""
    tinygan.manual_seed(0)
    a = Net()
    a(_x())                  # batch norm statistics away from their defaults
    state = a.state_dict()
    if via == "pickle":
        state = pickle.loads(pickle.dumps(state))
    else:
        np.savez(tmp_path / "s.npz", **state)
        with np.load(tmp_path / "s.npz") as f:
            state = {k: f[k] for k in f.files}
    tinygan.manual_seed(1)
    b = Net()
    assert not np.array_equal(b.conv.weight.numpy(), a.conv.weight.numpy())
    b.load_state_dict(state)
    for (k, va), (k2, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert k == k2
        np.testing.assert_array_equal(vb, va, err_msg=k)
        assert va.dtype == vb.dtype, k
    a.eval()
    b.eval()
    np.testing.assert_array_equal(a(_x(seed=5)).numpy(), b(_x(seed=5)).numpy())


def test_load_state_dict_casts_to_the_parameter_dtype():
    m = nn.Linear(2, 2)
    m.load_state_dict({"weight": np.ones((2, 2), np.float64), "bias": [0.5, 0.5]})
    assert m.weight.dtype == np.float32 and m.bias.dtype == np.float32
    np.testing.assert_array_equal(m.bias.numpy(), [0.5, 0.5])


def test_train_eval_propagates_to_children():
    net = Net()
    assert all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    assert not net.heads[1].training and not net.bn.training
    net.train()
    assert all(m.training for m in net.modules())
    net.bn.eval()
    assert net.training and not net.bn.training


def test_eval_mode_changes_batch_norm_behaviour():
    net = Net()
    x = _x()
    net(x)
    tracked = int(net.bn.num_batches_tracked)
    net.eval()
    y1, y2 = net(x).numpy(), net(x).numpy()
    np.testing.assert_array_equal(y1, y2)
    assert int(net.bn.num_batches_tracked) == tracked


def test_zero_grad():
    net = Net()
    net(_x()).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_to_cpu_and_dtype():
    net = Net()
    before = net.state_dict()
    assert net.to("cpu") is net and net.cpu() is net
    assert net.device == "cpu"
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(v, before[k])
    net.to(dtype=np.float64)
    sd = net.state_dict()
    assert all(sd[k].dtype == np.float64 for k in sd if k != "bn.num_batches_tracked")
    assert sd["bn.num_batches_tracked"].dtype == np.int64           # integer buffers are not cast
    x = tinygan.tensor(np.random.default_rng(0).standard_normal((2, 1, 4, 4)))
    assert net(x).dtype == np.float64


@pytest.mark.gpu
def test_to_cuda_and_back():
    if not tinygan.gpu_available():
        pytest.skip("needs CuPy and a visible GPU")
    net = Net()
    before = net.state_dict()
    net.to("cuda")
    assert net.device == "cuda" and all(p.device == "cuda" for p in net.parameters())
    assert all(type(v) is np.ndarray for v in net.state_dict().values())   # host copies
    net.to("cpu")
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(v, before[k], err_msg=k)
    net.to("cuda")
    y = net(_x().to("cuda"))
    assert y.device == "cuda"
    y.sum().backward()
    assert all(p.grad.device == "cuda" for p in net.parameters())


def test_requires_grad_freezes_parameters():
    net = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
    net[0].requires_grad_(False)
    x = tinygan.tensor(np.ones((1, 2), np.float32))
    net(x).sum().backward()
    assert net[0].weight.grad is None and net[1].weight.grad is not None


def test_module_needs_super_init():
    class Bad(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(np.ones(1, np.float32))

    with pytest.raises(RuntimeError, match=r"Bad: call super\(\).__init__\(\) before assigning attributes"):
        Bad()


def test_reassigning_an_attribute_replaces_the_registration():
    m = nn.Linear(2, 2)
    m.bias = None
    assert [k for k, _ in m.named_parameters()] == ["weight"]
    m.extra = nn.Linear(1, 1)
    assert "extra.weight" in m.state_dict()
    m.extra = 3
    assert "extra.weight" not in m.state_dict()


def test_sequential_and_module_list_containers():
    seq = nn.Sequential(nn.Linear(2, 3), nn.Tanh())
    assert len(seq) == 2 and isinstance(seq[1], nn.Tanh) and [type(m) for m in seq] == [nn.Linear, nn.Tanh]
    ml = nn.ModuleList().append(nn.Linear(1, 1))
    assert len(ml) == 1 and "0.weight" in ml.state_dict()
    assert "Linear(in_features=2, out_features=3, bias=True)" in repr(seq)


def test_dropout_train_and_eval():
    tinygan.manual_seed(0)
    d = nn.Dropout(0.5)
    x = tinygan.tensor(np.ones((100, 100), np.float32), requires_grad=True)
    y = d(x)
    vals = np.unique(y.numpy())
    assert set(vals.tolist()) <= {0.0, 2.0} and abs(float((y.numpy() == 0).mean()) - 0.5) < 0.03
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), y.numpy())  # the same mask scales the gradient
    assert d.eval()(x) is x


# ---------------------------------------------------------------------------
# optimizers
# ---------------------------------------------------------------------------

OPTIMIZERS = [
    ("Adam", dict(lr=1e-2, betas=(0.5, 0.999), weight_decay=1e-3)),
    ("SGD", dict(lr=1e-2, momentum=0.9, nesterov=True)),
    ("SGD", dict(lr=1e-2)),
    ("RMSprop", dict(lr=1e-3, momentum=0.5, centered=True)),
]


def _train(model, opt, steps, start):
    for step in range(start, start + steps):
        rng = np.random.default_rng(step)
        x = tinygan.tensor(rng.standard_normal((4, 1, 4, 4)).astype(np.float32))
        t = tinygan.tensor(rng.standard_normal((4, 1)).astype(np.float32))
        opt.zero_grad()
        F.mse_loss(model(x), t).backward()
        opt.step()


@pytest.mark.parametrize("name,hyper", OPTIMIZERS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(OPTIMIZERS)])
@pytest.mark.parametrize("via", ["dict", "pickle"])
def test_optimizer_state_dict_resume_is_bit_for_bit(name, hyper, via):
    tinygan.manual_seed(0)
    model = Net()
    opt = getattr(optim, name)(model.parameters(), **hyper)
    _train(model, opt, 5, 0)
    saved_model, saved_opt = model.state_dict(), opt.state_dict()
    if via == "pickle":
        saved_model, saved_opt = pickle.loads(pickle.dumps((saved_model, saved_opt)))
    saved_opt_copy = copy.deepcopy(saved_opt)
    _train(model, opt, 5, 5)                  # the uninterrupted run
    # the saved state is a snapshot, not a view of the live state
    for k, st in saved_opt["state"].items():
        for name_, v in st.items():
            np.testing.assert_array_equal(v, saved_opt_copy["state"][k][name_])

    tinygan.manual_seed(99)                   # a fresh model and optimizer, different init
    resumed = Net()
    resumed.load_state_dict(saved_model)
    opt2 = getattr(optim, name)(resumed.parameters(), **{**hyper, "lr": 123.0})  # lr restored by loading
    opt2.load_state_dict(saved_opt)
    assert opt2.param_groups[0]["lr"] == hyper["lr"]
    _train(resumed, opt2, 5, 5)
    for (k, a), (_, b) in zip(model.state_dict().items(), resumed.state_dict().items()):
        np.testing.assert_array_equal(a, b, err_msg=k)   # bit for bit
    if name != "SGD" or hyper.get("momentum"):
        assert opt.state_dict()["state"]  # there was state to carry over


def test_optimizer_state_dict_layout():
    model = nn.Linear(2, 1)
    opt = optim.Adam(model.parameters(), lr=1e-3)
    x = tinygan.tensor(np.ones((1, 2), np.float32))
    model(x).sum().backward()
    opt.step()
    sd = opt.state_dict()
    assert sd["param_groups"][0]["params"] == [0, 1] and sd["param_groups"][0]["lr"] == 1e-3
    assert set(sd["state"][0]) == {"step", "exp_avg", "exp_avg_sq"} and sd["state"][0]["step"] == 1
    assert type(sd["state"][0]["exp_avg"]) is np.ndarray


def test_optimizer_skips_parameters_without_grad_and_param_groups():
    a, b = nn.Linear(2, 2), nn.Linear(2, 2)
    opt = optim.SGD([{"params": a.parameters(), "lr": 0.1}, {"params": b.parameters()}], lr=0.01)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.01]
    wa, wb = a.weight.numpy().copy(), b.weight.numpy().copy()
    x = tinygan.tensor(np.ones((1, 2), np.float32))
    a(x).sum().backward()
    opt.step()
    np.testing.assert_allclose(a.weight.numpy(), wa - 0.1 * np.ones((2, 2)), rtol=1e-6)
    np.testing.assert_array_equal(b.weight.numpy(), wb)   # no grad: untouched
    opt.zero_grad()
    assert a.weight.grad is None


def test_optimizer_keeps_dtype_and_updates_in_place():
    m = nn.Linear(3, 1, dtype=np.float32)
    w = m.weight._data
    opt = optim.Adam(m.parameters())
    m(tinygan.tensor(np.ones((2, 3), np.float32))).sum().backward()
    opt.step()
    assert m.weight._data is w and m.weight.dtype == np.float32
    assert opt.state_dict()["state"][0]["exp_avg"].dtype == np.float32


def test_adam_kernel_matches_its_reference():
    rng = np.random.default_rng(0)
    p, g = rng.standard_normal(7), rng.standard_normal(7)
    m, v = rng.standard_normal(7) * 0.1, rng.uniform(0, 0.1, 7)
    ref = adam_step_ref(p, g, m, v, 1e-2, 0.9, 0.99, 1e-8, step=3, weight_decay=0.1)
    p2, m2, v2 = p.copy(), m.copy(), v.copy()
    adam_step_(p2, g, m2, v2, lr=1e-2, beta1=0.9, beta2=0.99, eps=1e-8, step=3, weight_decay=0.1)
    for a, b in zip((p2, m2, v2), ref):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


# ---------------------------------------------------------------------------
# init
# ---------------------------------------------------------------------------

BIG = (256, 128, 3, 3)   # fan_in = 128 * 9 = 1152, fan_out = 256 * 9 = 2304; 294,912 samples


def _param(shape=BIG, dtype=np.float32):
    return nn.Parameter(np.zeros(shape, dtype=dtype))


def test_fans():
    assert _fans((256, 128, 3, 3)) == (1152, 2304)
    assert _fans((10, 20)) == (20, 10)
    assert nn.init.fan_in(_param((4, 5, 2, 1))) == 10


def test_normal_and_uniform_statistics():
    tinygan.manual_seed(0)
    w = nn.init.normal_(_param(), 0.0, 0.02)             # DCGAN's conv init
    a = w.numpy()
    assert w.dtype == np.float32
    n = a.size
    assert abs(a.mean()) < 4 * 0.02 / math.sqrt(n)
    assert abs(a.std() - 0.02) < 0.02 * 0.01
    w = nn.init.normal_(_param((1000, 100)), 1.0, 0.5)
    assert abs(w.numpy().mean() - 1.0) < 0.01 and abs(w.numpy().std() - 0.5) < 0.005
    u = nn.init.uniform_(_param(), -0.3, 0.7).numpy()
    assert u.min() >= -0.3 and u.max() < 0.7
    assert abs(u.mean() - 0.2) < 0.005 and abs(u.std() - 1.0 / math.sqrt(12)) < 0.005


@pytest.mark.parametrize("fn,expected_std", [
    ("xavier_uniform_", math.sqrt(2.0 / (1152 + 2304))),
    ("xavier_normal_", math.sqrt(2.0 / (1152 + 2304))),
    ("kaiming_uniform_relu", math.sqrt(2.0 / 1152)),
    ("kaiming_normal_relu", math.sqrt(2.0 / 1152)),
    ("kaiming_normal_leaky", math.sqrt(2.0 / (1 + 0.2 ** 2) / 1152)),
    ("kaiming_uniform_default", math.sqrt(2.0 / 1152)),         # a = 0: same as relu
])
def test_variance_scaling_inits(fn, expected_std):
    tinygan.manual_seed(1)
    w = _param()
    if fn.startswith("kaiming"):
        kind, mode = fn.split("_")[1], fn.split("_")[2]
        f = getattr(nn.init, f"kaiming_{kind}_")
        if mode == "relu":
            f(w, nonlinearity="relu")
        elif mode == "leaky":
            f(w, a=0.2)
        else:
            f(w)
    else:
        getattr(nn.init, fn)(w)
    a = w.numpy()
    assert abs(a.std() - expected_std) < 0.01 * expected_std, (a.std(), expected_std)
    assert abs(a.mean()) < 5 * expected_std / math.sqrt(a.size)
    if "uniform" in fn:   # U(-b, b) with b = sqrt(3) std
        bound = math.sqrt(3) * expected_std
        assert a.max() <= bound and a.min() >= -bound and a.max() > 0.99 * bound


def test_constant_zeros_ones():
    w = _param((3, 4))
    assert (nn.init.constant_(w, 0.25).numpy() == 0.25).all()
    assert (nn.init.zeros_(w).numpy() == 0).all()
    assert (nn.init.ones_(w).numpy() == 1).all() and w.dtype == np.float32


def test_default_layer_init_matches_torch_bounds():
    """kaiming_uniform(a=sqrt(5)) gives U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases."""
    tinygan.manual_seed(2)
    conv = nn.Conv2d(64, 32, 3)
    bound = 1 / math.sqrt(64 * 9)
    for t in (conv.weight, conv.bias):
        a = t.numpy()
        assert np.abs(a).max() <= bound
    assert conv.weight.numpy().max() > 0.98 * bound
    assert abs(conv.weight.numpy().std() - bound / math.sqrt(3)) < 0.02 * bound
    lin = nn.Linear(100, 50)
    assert np.abs(lin.weight.numpy()).max() <= 0.1 and np.abs(lin.bias.numpy()).max() <= 0.1
    tconv = nn.ConvTranspose2d(8, 4, 4)   # weight (in, out, kh, kw): fan_in = out * 16, as torch
    assert np.abs(tconv.weight.numpy()).max() <= 1 / math.sqrt(4 * 16)
    emb = nn.Embedding(1000, 64)
    assert abs(emb.weight.numpy().std() - 1.0) < 0.02   # N(0, 1), as torch


def test_init_with_generator_is_deterministic():
    a = nn.init.normal_(_param((10, 10)), generator=np.random.default_rng(5)).numpy()
    b = nn.init.normal_(_param((10, 10)), generator=np.random.default_rng(5)).numpy()
    np.testing.assert_array_equal(a, b)
    c = nn.init.xavier_uniform_(_param((10, 10), np.float64), generator=np.random.default_rng(5))
    assert c.dtype == np.float64


def test_frozen_makes_parameters_constants_and_restores_them():
    lin, other = nn.Linear(3, 2), nn.Linear(2, 1)
    other.weight.requires_grad = False                     # already frozen: stays frozen afterwards
    x = tinygan.randn(4, 3)
    with frozen(list(lin.parameters()) + [other.weight]):
        assert not any(p.requires_grad for p in lin.parameters())
        out = other(lin(x)).sum()
    assert out.requires_grad                               # other.bias still trains
    out.backward()
    assert lin.weight.grad is None and other.bias.grad is not None
    assert all(p.requires_grad for p in lin.parameters()) and not other.weight.requires_grad
    try:
        with frozen(lin.parameters()):
            raise KeyError("boom")
    except KeyError:
        pass
    assert all(p.requires_grad for p in lin.parameters())


# ------------------------------------------------------------------------------------ optimizer bookkeeping
# (each of these killed mutants that survived the rest of the suite; docs/testing.md, "Mutation testing")

def _p(*shape, dtype=np.float64, seed=0):
    return nn.Parameter(np.random.default_rng(seed).standard_normal(shape).astype(dtype))


@pytest.mark.parametrize("hyper,ok", [
    (dict(lr=0.0), True), (dict(eps=0.0), True), (dict(betas=(0.0, 0.9)), True), (dict(betas=(0.5, 0.0)), True),
    (dict(lr=-1e-3), False), (dict(eps=-1e-8), False),
    (dict(betas=(1.0, 0.999)), False), (dict(betas=(1.5, 0.999)), False), (dict(betas=(-0.1, 0.999)), False),
    (dict(betas=(0.5, 1.0)), False), (dict(betas=(0.5, 1.5)), False), (dict(betas=(0.5, -0.1)), False),
])
def test_adam_hyper_parameter_bounds(hyper, ok):
    """torch's bounds: lr >= 0, eps >= 0, 0 <= beta < 1 for each beta."""
    if ok:
        optim.Adam([_p(2)], **hyper)
        return
    full = {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, **hyper}
    with pytest.raises(ValueError, match=rf"^Adam: invalid hyper-parameters lr={full['lr']}, "
                                         rf"betas={re.escape(str(tuple(full['betas'])))}, eps={full['eps']}$"):
        optim.Adam([_p(2)], **hyper)


def test_sgd_defaults_and_nesterov_rule():
    assert optim.SGD([_p(2)]).defaults == dict(lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0,
                                               nesterov=False)
    for hyper in (dict(momentum=0.0), dict(momentum=0.9, dampening=0.1), dict(momentum=-0.5)):
        with pytest.raises(ValueError, match=r"^SGD: nesterov momentum needs momentum > 0 and dampening 0$"):
            optim.SGD([_p(2)], nesterov=True, **hyper)
    optim.SGD([_p(2)], nesterov=True, momentum=0.5)


def test_parameter_group_type_errors_name_the_group():
    with pytest.raises(TypeError, match=r"^SGD: parameter group 1 must be a dict with a 'params' entry, got dict$"):
        optim.SGD([{"params": [_p(2)]}, {"lr": 0.1}])
    with pytest.raises(TypeError, match=r"^SGD: parameter group 1 must be a dict with a 'params' entry, got list$"):
        optim.SGD([{"params": [_p(2)]}]).add_param_group([_p(2)])
    with pytest.raises(TypeError, match=r"^SGD: the params of group 0 must be an ordered sequence, not a set "
                                        r"\(a set's order changes from run to run, and the state_dict relies on it\)$"):
        optim.SGD([{"params": {_p(2)}}])
    with pytest.raises(ValueError, match=r"^RMSprop: got an empty parameter list$"):
        optim.RMSprop([])


def test_step_skips_a_parameter_without_gradient_and_goes_on():
    a, b = _p(2, seed=1), _p(3, seed=2)
    a0, b0 = a.numpy().copy(), b.numpy().copy()
    opt = optim.SGD([a, b], lr=0.5)
    b.grad = tinygan.tensor(np.ones(3))
    opt.step()
    np.testing.assert_array_equal(a.numpy(), a0)
    np.testing.assert_array_equal(b.numpy(), b0 - 0.5)


@pytest.mark.parametrize("name", ["Adam", "SGD", "RMSprop"])
def test_a_float64_gradient_is_cast_to_the_float32_parameter_first(name):
    """Bit for bit the step of the same gradient rounded to float32 beforehand (torch casts too)."""
    hyper = {"Adam": dict(lr=0.1), "SGD": dict(lr=0.1, momentum=0.9), "RMSprop": dict(lr=0.01, centered=True)}[name]
    rng = np.random.default_rng(3)
    p64, p32 = _p(1000, dtype=np.float32, seed=4), _p(1000, dtype=np.float32, seed=4)
    o64, o32 = getattr(optim, name)([p64], **hyper), getattr(optim, name)([p32], **hyper)
    for _ in range(3):
        g = rng.standard_normal(1000) * (1 + 1e-9)
        p64.grad = tinygan.tensor(g)                                   # float64
        p32.grad = tinygan.tensor(g.astype(np.float32))
        o64.step()
        o32.step()
        assert p64.dtype == np.float32
        np.testing.assert_array_equal(p64.numpy(), p32.numpy())


@pytest.mark.parametrize("layout", ["contiguous", "strided"])
def test_optimizer_state_types_and_keys_follow_torch(layout):
    """The same state on the group's flat path (contiguous) and the one-parameter path (a strided view)."""
    p = _p(3) if layout == "contiguous" else nn.Parameter(np.arange(6.0)[::2])
    p.grad = tinygan.tensor(np.ones(3))
    for name, hyper, keys in [("RMSprop", {}, {"step", "square_avg"}),
                              ("RMSprop", dict(momentum=0.5), {"step", "square_avg", "momentum_buffer"}),
                              ("RMSprop", dict(centered=True), {"step", "square_avg", "grad_avg"}),
                              ("Adam", {}, {"step", "exp_avg", "exp_avg_sq"}),
                              ("SGD", dict(momentum=0.5), {"momentum_buffer"}), ("SGD", {}, set())]:
        opt = getattr(optim, name)([p], **hyper)
        opt.step()
        opt.step()
        state = opt.state_dict()["state"]
        assert set(state.get(0, {})) == keys, (name, hyper)
        if "step" in keys:
            assert type(state[0]["step"]) is int and state[0]["step"] == 2, (name, hyper)


@pytest.mark.gpu
def test_a_gradient_on_another_device_is_refused():
    p = nn.Parameter(tinygan.backend.xp_for("cuda").ones(2))
    p.grad = tinygan.tensor(np.ones(2))                      # on the CPU
    with pytest.raises(ValueError, match=r"^SGD.step: gradient on a different device from its parameter "
                                         r"of shape \(2,\)$"):
        optim.SGD([p], lr=0.1).step()


def test_load_state_dict_accepts_saved_forms():
    """What a checkpoint file hands back: lists for tuples, 0-d arrays for ints (np.savez)."""
    p = _p(3)
    opt = optim.Adam([p], lr=0.1, betas=(0.5, 0.9))
    p.grad = tinygan.tensor(np.ones(3))
    opt.step()
    sd = opt.state_dict()
    sd["param_groups"][0]["betas"] = [0.25, 0.75]
    sd["state"][0]["step"] = np.array(7)
    q = _p(3, seed=9)
    opt2 = optim.Adam([q])
    opt2.load_state_dict(sd)
    assert opt2.param_groups[0]["betas"] == (0.25, 0.75) and type(opt2.param_groups[0]["betas"]) is tuple
    st = opt2.state_dict()["state"][0]
    assert type(st["step"]) is int and st["step"] == 7
    np.testing.assert_array_equal(st["exp_avg"], sd["state"][0]["exp_avg"])


def test_load_state_dict_refuses_other_groups_and_shapes():
    a, b = _p(3), _p(2)
    one_group = optim.SGD([a, b], momentum=0.5).state_dict()
    with pytest.raises(ValueError, match=r"^SGD.load_state_dict: the saved parameter groups do not match "
                                         r"this optimizer's \(different model\?\)$"):
        optim.SGD([{"params": [a]}, {"params": [b]}], momentum=0.5).load_state_dict(one_group)
    opt = optim.SGD([a], momentum=0.5)
    a.grad = tinygan.tensor(np.ones(3))
    opt.step()
    sd = opt.state_dict()
    sd["state"][0]["momentum_buffer"] = np.ones(4)
    with pytest.raises(ValueError, match=r"^SGD.load_state_dict: state 'momentum_buffer' of parameter 0 has shape "
                                         r"\(4,\), the parameter \(3,\)$"):
        optim.SGD([a], momentum=0.5).load_state_dict(sd)


def test_adam_kernel_and_its_slow_reference_follow_the_equations():
    """kernels.optim.adam_step_ without weight decay (its default) and adam_step_ref, in float64,
    against Adam's equations; the reference computes in float64 even from float32 inputs."""
    rng = np.random.default_rng(5)
    p, g = rng.standard_normal(6), rng.standard_normal(6)
    m, v = rng.standard_normal(6) * 0.1, rng.uniform(0.1, 1.0, 6)
    lr, b1, b2, eps, t = 0.01, 0.8, 0.95, 1e-6, 3
    m1 = b1 * m + (1 - b1) * g
    v1 = b2 * v + (1 - b2) * g * g
    p1 = p - lr * (m1 / (1 - b1 ** t)) / (np.sqrt(v1 / (1 - b2 ** t)) + eps)
    pk, mk, vk = p.copy(), m.copy(), v.copy()
    adam_step_(pk, g, mk, vk, lr=lr, beta1=b1, beta2=b2, eps=eps, step=t)
    for got, want in ((pk, p1), (mk, m1), (vk, v1)):
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)
    for got, want in zip(adam_step_ref(p, g, m, v, lr, b1, b2, eps, t), (p1, m1, v1)):
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)
    f32 = [a.astype(np.float32) for a in (p, g, m, v)]
    p1_32 = adam_step_ref(*f32, lr, b1, b2, eps, t)[0]
    assert p1_32.dtype == np.float64
    ex = [a.astype(np.float64) for a in f32]
    m1e = b1 * ex[2] + (1 - b1) * ex[1]
    v1e = b2 * ex[3] + (1 - b2) * ex[1] ** 2
    np.testing.assert_allclose(p1_32, ex[0] - lr * (m1e / (1 - b1 ** t)) / (np.sqrt(v1e / (1 - b2 ** t)) + eps),
                               rtol=1e-13)
