"""In-place updates and their safety: PyTorch's rules, checked against PyTorch.

* ``t += x``, ``add_``, ``sub_``, ``mul_``, ``div_``, ``zero_``, ``fill_``, ``copy_``,
  ``normal_``, ``uniform_``, ``clamp_`` and ``t[i] = v`` change the tensor's own memory;
* a leaf that requires grad may be changed only under ``no_grad`` (torch's "a leaf Variable
  that requires grad is being used in an in-place operation");
* every memory has a version; a backward whose saved tensors changed since the forward raises
  (torch's "one of the variables needed for gradient computation has been modified by an
  inplace operation"), naming the op;
* ``Tensor.data = value`` checks the value;
* the optimizers' own in-place array updates (and a version bump by them) never break the next
  legitimate step.
"""
from __future__ import annotations

import numpy as np
import pytest

import tinygan as tg
import tinygan.functional as F
from tinygan import nn, optim
from tinygan.autograd import bump_version

LEAF_MSG = "a leaf Variable that requires grad is being used in an in-place operation"
MODIFIED_MSG = "modified by an inplace operation"


def arr(*shape, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def both(torch, a, requires_grad=False):
    """The same values as a tinygan and a torch tensor."""
    return tg.tensor(a, requires_grad=requires_grad), torch.tensor(a, requires_grad=requires_grad)


# ---------------------------------------------------------------------------
# values: each in-place op against PyTorch, on plain tensors
# ---------------------------------------------------------------------------

INPLACE_OPS = {
    "+= tensor": lambda t, o: t.__iadd__(o),
    "-= scalar": lambda t, o: t.__isub__(0.5),
    "*= broadcast": lambda t, o: t.__imul__(o[:1]),
    "/= tensor": lambda t, o: t.__itruediv__(o * o + 1),
    "add_ alpha": lambda t, o: t.add_(o, alpha=-0.1),
    "sub_ alpha": lambda t, o: t.sub_(o, alpha=2.0),
    "mul_": lambda t, o: t.mul_(o),
    "div_": lambda t, o: t.div_(2.0),
    "zero_": lambda t, o: t.zero_(),
    "fill_": lambda t, o: t.fill_(0.25),
    "copy_": lambda t, o: t.copy_(o),
    "copy_ broadcast": lambda t, o: t.copy_(o[0]),
    "clamp_": lambda t, o: t.clamp_(-0.1, 0.2),
    "clamp_ min only": lambda t, o: t.clamp_(min=0.0),
    "chain": lambda t, o: t.mul_(0.5).add_(o).clamp_(max=0.3),
}


@pytest.mark.parametrize("name", INPLACE_OPS)
def test_inplace_ops_change_the_tensor_as_torch_does(torch, name):
    op = INPLACE_OPS[name]
    (t, tt), (o, to) = both(torch, arr(3, 4)), both(torch, arr(3, 4, seed=1))
    memory = t._data
    result = op(t, o)
    op(tt, to)
    assert result is t and t._data is memory                   # the same tensor, the same memory
    np.testing.assert_allclose(t.numpy(), tt.numpy(), rtol=1e-6, atol=1e-7)
    assert t._version == tt._version                          # one bump per in-place op, as torch


def test_setitem_writes_in_place_as_torch(torch):
    (t, tt) = both(torch, arr(4, 5))
    for index, value in (((0,), 1.5), ((slice(None), 2), 0.0), ((np.array([1, 3]), np.array([0, 4])), -2.0)):
        t[index] = value
        tt[tuple(torch.as_tensor(i) if isinstance(i, np.ndarray) else i for i in index)] = value
    mask_t, mask_tt = t > 1.0, tt > 1.0
    t[mask_t] = 9.0
    tt[mask_tt] = 9.0
    np.testing.assert_array_equal(t.numpy(), tt.numpy())


def test_random_fills_have_their_distribution_and_follow_the_seed():
    t = tg.zeros(200, 50)
    tg.manual_seed(3)
    t.normal_(1.0, 0.02)
    assert abs(float(t.mean()) - 1.0) < 1e-3 and abs(float(t.std()) - 0.02) < 1e-3
    first = t.numpy().copy()
    tg.manual_seed(3)
    assert np.array_equal(t.normal_(1.0, 0.02).numpy(), first)
    t.uniform_(-0.5, 0.5)
    assert t.numpy().min() >= -0.5 and t.numpy().max() < 0.5 and t.numpy().std() > 0.25
    with pytest.raises(TypeError, match="normal_: expects a floating-point tensor"):
        tg.zeros(3).long().normal_()


def test_views_share_the_write_and_the_version(torch):
    t = tg.zeros(2, 3)
    d = t.detach()
    d.add_(1.0)                                # detach() shares memory, as in PyTorch
    assert t.numpy().sum() == 6 and t._version == d._version == 1
    a = np.zeros(3, np.float32)
    f = tg.from_numpy(a)
    f += 2
    assert a.tolist() == [2, 2, 2]             # from_numpy shares memory; tensor() copies
    c = tg.tensor(a)
    c += 1
    assert a.tolist() == [2, 2, 2]


# ---------------------------------------------------------------------------
# the rules
# ---------------------------------------------------------------------------

LEAF_UPDATES = {
    "-=": lambda p: p.__isub__(1.0),
    "add_": lambda p: p.add_(1.0),
    "zero_": lambda p: p.zero_(),
    "fill_": lambda p: p.fill_(1.0),
    "copy_": lambda p: p.copy_(p.detach() * 2),
    "normal_": lambda p: p.normal_(),
    "clamp_": lambda p: p.clamp_(-1, 1),
    "setitem": lambda p: p.__setitem__(0, 1.0),
}


@pytest.mark.parametrize("name", LEAF_UPDATES)
def test_a_leaf_that_requires_grad_changes_only_under_no_grad(torch, name):
    update = LEAF_UPDATES[name]
    p = nn.Parameter(arr(3))
    with pytest.raises(RuntimeError, match=LEAF_MSG + r".*with tinygan.no_grad\(\)"):
        update(p)
    assert np.array_equal(p.numpy(), arr(3))   # refused before anything was written
    tp = torch.nn.Parameter(torch.tensor(arr(3)))
    with pytest.raises(RuntimeError, match=LEAF_MSG):
        update(tp)                            # torch refuses the same
    with tg.no_grad():
        update(p)                             # and both allow it under no_grad
    with torch.no_grad():
        update(tp)
    if name not in ("normal_",):
        np.testing.assert_allclose(p.numpy(), tp.detach().numpy())
    assert p.is_leaf and p.requires_grad and p.grad_fn is None


def test_backward_refuses_a_saved_tensor_modified_in_place(torch):
    for lib in (tg, torch):
        x = lib.tensor(arr(3), requires_grad=True)
        h = x * 2
        y = (h * h).sum()                     # mul saved h
        with lib.no_grad():
            h.add_(1.0)
        with pytest.raises(RuntimeError, match=MODIFIED_MSG):
            y.backward()


def test_the_error_names_the_op_the_input_and_the_versions():
    x = tg.tensor(arr(2, 3, 5, 5), requires_grad=True)
    w = nn.Parameter(arr(4, 3, 3, 3))
    y = F.conv2d(x, w).sum()
    with tg.no_grad():
        w -= 0.1                              # as a manual SGD step between forward and backward
    with pytest.raises(RuntimeError, match=r"conv2d: one of the variables needed for gradient computation has "
                                           r"been modified by an inplace operation: input 1 of conv2d, a tensor "
                                           r"of shape \(4, 3, 3, 3\), is at version 1; expected version 0"):
        y.backward()


@pytest.mark.parametrize("op", ["exp", "relu"])
def test_a_modified_output_that_backward_reads_is_refused(torch, op):
    for lib in (tg, torch):
        x = lib.tensor(arr(3), requires_grad=True)
        y = getattr(x, op)()                  # exp's and relu's backwards read their output
        loss = y.sum()
        with lib.no_grad():
            y.zero_()
        with pytest.raises(RuntimeError, match=MODIFIED_MSG):
            loss.backward()


def test_replacing_data_of_a_saved_tensor_is_refused():
    x = tg.tensor(arr(3), requires_grad=True)
    w = tg.tensor(arr(3, seed=1))
    y = (x * w).sum()
    w.data = arr(3, seed=2)                   # new memory under a saved tensor
    with pytest.raises(RuntimeError, match="had its memory replaced"):
        y.backward()


def test_changes_to_what_backward_does_not_read_are_fine(torch):
    for lib in (tg, torch):
        x = lib.tensor(arr(3), requires_grad=True)
        b = lib.tensor(arr(3, seed=1))
        y = (x + b).sum()                     # add keeps only shapes
        with lib.no_grad():
            b.zero_()
            x.add_(1.0)                       # a leaf, under no_grad
        y.backward()
        assert np.array_equal(x.grad.numpy(), np.ones(3))


def test_inplace_in_the_graph_gives_torchs_gradients(torch):
    cases = {
        "h += y": lambda h, y: h.__iadd__(y),
        "h *= y": lambda h, y: h.__imul__(y),
        "h.div_(y)": lambda h, y: h.div_(y * y + 1),
        "h.clamp_": lambda h, y: h.clamp_(-0.5, 0.5),
        "h[1] = y[0]": lambda h, y: h.__setitem__(1, y[0]),
        "h.copy_(y)": lambda h, y: h.copy_(y),
        "h.zero_()": lambda h, y: h.zero_().add_(y),
    }
    for name, op in cases.items():
        grads = []
        for lib in (tg, torch):
            x = lib.tensor(arr(4, dtype=np.float64), requires_grad=True)
            y = lib.tensor(arr(4, seed=1, dtype=np.float64), requires_grad=True)
            h = x * 3.0
            op(h, y)
            assert h.requires_grad and not h.is_leaf, name
            (h * h).sum().backward()
            gx = np.zeros(4) if x.grad is None else x.grad.numpy()       # None: no path left to x
            grads.append((h.detach().numpy(), gx, y.grad.numpy() if y.grad is not None else np.zeros(4)))
        for a, b in zip(*grads):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12, err_msg=name)


def test_a_constant_leaf_joins_the_graph_through_an_inplace_op(torch):
    x = tg.tensor(arr(3), requires_grad=True)
    acc = tg.zeros(3)
    acc += x * 2                              # acc becomes a graph node, as in torch
    acc[0] = x[1]
    acc.sum().backward()
    tx = torch.tensor(arr(3), requires_grad=True)
    tacc = torch.zeros(3)
    tacc += tx * 2
    tacc[0] = tx[1]
    tacc.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy())


def test_misuse_gets_one_clear_error(torch):
    i = tg.zeros(3).long()
    with pytest.raises(TypeError, match="div_: result type float64 can't be cast to the desired output type int64"):
        i /= 2
    with pytest.raises(TypeError, match="add_: result type .* can't be cast to the desired output type int64"):
        i += 0.5
    with pytest.raises(RuntimeError, match=r"add_: output with shape \(3,\) doesn't match the broadcast shape "
                                           r"\(2, 3\)"):
        tg.zeros(3).add_(tg.ones(2, 3))
    with pytest.raises(RuntimeError, match=r"more than one element of the written-to tensor refers to a single "
                                           r"memory location.*clone\(\)"):
        tg.ones(3).expand(2, 3).add_(1)
    with pytest.raises(ValueError, match="clamp_: at least one of min and max"):
        tg.zeros(3).clamp_()


# ---------------------------------------------------------------------------
# Tensor.data
# ---------------------------------------------------------------------------

def test_data_assignment_checks_its_value():
    p = nn.Parameter(arr(2, 3))
    p.data = arr(2, 3, seed=1)                                   # an array like it: fine
    p.data = tg.tensor(arr(2, 3, seed=2))                        # a Tensor: its array is taken
    assert isinstance(p.data, np.ndarray) and np.array_equal(p.numpy(), arr(2, 3, seed=2))
    with pytest.raises(TypeError, match=r"Tensor.data: expected a NumPy/CuPy array \(or a Tensor\) of shape "
                                        r"\(2, 3\) and dtype float32, got list.*copy_"):
        p.data = [[1, 2, 3], [4, 5, 6]]
    with pytest.raises(ValueError, match=r"Tensor.data: the new array has shape \(3, 2\) but the tensor has "
                                         r"shape \(2, 3\)"):
        p.data = arr(3, 2)
    with pytest.raises(TypeError, match=r"Tensor.data: the new array has dtype float64 but the tensor has dtype "
                                        r"float32; cast it first"):
        p.data = arr(2, 3, dtype=np.float64)


def test_the_p_data_update_keeps_an_array_and_the_next_forward_runs():
    """Trap (b): ``p.data -= lr * p.grad`` used to leave a Tensor in ``p.data``; the conv kernel then failed."""
    conv = nn.Conv2d(1, 2, 3)
    x = tg.randn(2, 1, 6, 6)
    conv(x).sum().backward()
    before = conv.weight.numpy().copy()
    for p in conv.parameters():
        p.data -= 0.1 * p.grad
        assert type(p._data) is np.ndarray and p.data.dtype == np.float32
    np.testing.assert_allclose(conv.weight.numpy(), before - 0.1 * conv.weight.grad.numpy(), rtol=1e-6)
    conv(x).sum().backward()                                     # the next forward and backward work


# ---------------------------------------------------------------------------
# the optimizers and in-place updates live together
# ---------------------------------------------------------------------------

def _gan_like_step(bump: bool):
    """Two D updates and a G update in PyTorch's DCGAN order, with Adam (which writes p.data arrays)."""
    tg.manual_seed(0)
    G, D = nn.Linear(4, 3), nn.Sequential(nn.Linear(3, 8), nn.LeakyReLU(0.2), nn.Linear(8, 1))
    opt_g, opt_d = optim.Adam(G.parameters(), lr=1e-2), optim.Adam(D.parameters(), lr=1e-2)
    real = tg.randn(5, 3)
    for _ in range(2):
        fake = G(tg.randn(5, 4))
        loss_d = F.softplus(-D(real)).mean() + F.softplus(D(fake.detach())).mean()
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        if bump:                                                 # what a version-tracking optimizer would do
            for p in D.parameters():
                bump_version(p)
        loss_g = F.softplus(-D(fake)).mean()                     # a new D forward after D's step
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
    return [p.numpy().copy() for p in (*G.parameters(), *D.parameters())]


def test_a_version_bump_by_the_optimizer_never_breaks_the_next_step():
    plain, bumped = _gan_like_step(bump=False), _gan_like_step(bump=True)
    for a, b in zip(plain, bumped):
        assert np.array_equal(a, b)


def test_a_graph_built_before_the_optimizer_step_is_refused_after_a_bump():
    D = nn.Linear(3, 1)
    opt = optim.SGD(D.parameters(), lr=0.1)
    loss = D(tg.randn(4, 3)).mean()
    loss.backward(retain_graph=True)
    opt.step()
    for p in D.parameters():
        bump_version(p)
    with pytest.raises(RuntimeError, match=r"linear|matmul|" + MODIFIED_MSG):
        loss.backward()                                          # stale weights: PyTorch refuses this too


def test_manual_sgd_equals_optim_sgd():
    """Trap (a): ``with no_grad(): p -= lr * p.grad`` moves the parameters, exactly as optim.SGD does."""
    x, y = tg.randn(8, 3), tg.randn(8, 1)
    nets = []
    for _ in range(2):
        tg.manual_seed(1)
        nets.append(nn.Linear(3, 1))
    manual, reference = nets
    opt = optim.SGD(reference.parameters(), lr=0.1)
    for _ in range(3):
        for net in nets:
            net.zero_grad()
            F.mse_loss(net(x), y).backward()
        with tg.no_grad():
            for p in manual.parameters():
                p -= 0.1 * p.grad
        opt.step()
    for a, b in zip(manual.parameters(), reference.parameters()):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6)


# ---------------------------------------------------------------------------
# the same on the GPU (CuPy arrays take in-place ufuncs as NumPy's do)
# ---------------------------------------------------------------------------

def test_inplace_ops_and_rules_on_the_device(device):
    for name, op in INPLACE_OPS.items():
        results = []
        for dev in ("cpu", device):
            t, o = tg.tensor(arr(3, 4), device=dev), tg.tensor(arr(3, 4, seed=1), device=dev)
            memory = t._data
            assert op(t, o) is t and t._data is memory, name
            results.append((t.numpy(), t._version))
        np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-6, atol=1e-7, err_msg=name)
        assert results[0][1] == results[1][1], name
    p = nn.Parameter(tg.tensor(arr(3), device=device))
    with pytest.raises(RuntimeError, match=LEAF_MSG):
        p -= 1.0
    with tg.no_grad():
        p -= 1.0
        p[0] = 5.0
        p.normal_(0.0, 0.02)
    assert p.device == device and p._version == 3
    x = tg.tensor(arr(3), requires_grad=True, device=device)
    h = x * 2
    y = (h * h).sum()
    with tg.no_grad():
        h.add_(1.0)
    with pytest.raises(RuntimeError, match=MODIFIED_MSG):
        y.backward()
    h = x * 2
    h += x                                                       # recorded in the graph
    h.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.full(3, 3.0))
    if device != "cpu":
        with pytest.raises(ValueError, match="Tensor.data: the new array is on cuda but the tensor on cpu"):
            nn.Parameter(arr(3)).data = tg.tensor(arr(3), device=device).data
