"""The ``Module`` API as PyTorch documents it: traversal, modes, dtype and device moves,
``load_state_dict``'s corners, ``repr``, containers, and ``Parameter``.

tests/test_nn_optim.py covers the common paths (parameter order, state_dict round trips,
train/eval of a network); this file the rest of ``torch.nn.Module``'s contract that tinygan
follows: what ``prefix`` and ``None`` children do, that a module without ``forward`` says so,
that ``eval()`` sets ``training`` to False (not merely something falsy), that ``.float()``
and ``.double()`` cast parameters *and* floating buffers and drop the old gradients, that a
loaded buffer is a copy, that a non-strict load with missing buffers keeps them, that a
PyTorch tensor that requires grad loads, and that loading into a model on the GPU leaves it
there (the ``cuda`` cases run on the CuPy stand-in too).
"""
from __future__ import annotations

import numpy as np
import pytest

import tinygan
from tinygan import nn, optim
from tinygan.backend import to_numpy


def _net():
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Sequential(nn.ReLU(), nn.Linear(4, 2)))


def _x(n=5, seed=0, dtype=np.float32, device="cpu"):
    return tinygan.tensor(np.random.default_rng(seed).standard_normal((n, 3)).astype(dtype), device=device)


class Leaf(nn.Module):
    """A module with a parameter, a buffer and a forward that takes a keyword."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(np.full(2, 3.0, np.float32))
        self.register_buffer("count", np.zeros((), np.int64))

    def forward(self, x, scale=1.0):
        return x * self.w * scale


# ---------------------------------------------------------------------------
# Parameter and IncompatibleKeys
# ---------------------------------------------------------------------------

def test_parameter_of_a_tensor_shares_its_memory():
    t = tinygan.tensor(np.arange(3, dtype=np.float32))
    p = nn.Parameter(t)
    assert p.requires_grad and p.is_leaf and p.shape == (3,) and p.dtype == np.float32
    assert np.shares_memory(p._data, t._data)
    np.testing.assert_array_equal(p.numpy(), [0, 1, 2])
    q = nn.Parameter(t, requires_grad=False)
    assert not q.requires_grad
    r = nn.Parameter(np.ones((2, 2), np.float64))
    assert r.requires_grad and r.dtype == np.float64


def test_parameter_repr_is_torchs():
    p = nn.Parameter(np.array([1.0, 2.0], np.float32))
    assert repr(p) == "Parameter containing:\n" + tinygan.Tensor.__repr__(p)
    assert repr(p) == "Parameter containing:\ntensor([1., 2.], requires_grad=True)"


@pytest.mark.parametrize("missing,unexpected,text", [
    ([], [], "<All keys matched successfully>"),
    (["a"], [], "IncompatibleKeys(missing_keys=['a'], unexpected_keys=[])"),
    ([], ["b", "c"], "IncompatibleKeys(missing_keys=[], unexpected_keys=['b', 'c'])"),
    (["a"], ["b"], "IncompatibleKeys(missing_keys=['a'], unexpected_keys=['b'])"),
])
def test_incompatible_keys_repr(missing, unexpected, text):
    keys = nn.IncompatibleKeys(missing, unexpected)
    assert repr(keys) == text
    assert keys == (missing, unexpected) and keys.missing_keys == missing and keys.unexpected_keys == unexpected


# ---------------------------------------------------------------------------
# traversal
# ---------------------------------------------------------------------------

def test_children_skip_none_and_keep_order():
    m = Leaf()
    a, b = nn.Linear(1, 1), nn.Tanh()
    m.add_module("a", a)
    m.add_module("gone", None)
    m.add_module("b", b)
    assert list(m.children()) == [a, b]
    assert list(m.named_children()) == [("a", a), ("b", b)]
    assert [name for name, _ in m.named_modules()] == ["", "a", "b"]
    assert list(m.modules()) == [m, a, b]
    assert list(nn.Linear(2, 2).children()) == [] and list(nn.Linear(2, 2).named_children()) == []


def test_apply_visits_children_first_then_the_module_and_returns_it():
    net = _net()
    seen = []
    assert net.apply(lambda m: seen.append(m)) is net
    names = {id(m): n for n, m in net.named_modules()}
    # depth first, each module after its children (torch's order)
    assert [names[id(m)] for m in seen] == ["0", "1", "2.0", "2.1", "2", ""]


def test_apply_initialises_the_way_dcgan_does():
    def weights_init(m):
        if isinstance(m, nn.Linear):
            nn.init.constant_(m.weight, 0.5)
            nn.init.zeros_(m.bias)

    net = _net().apply(weights_init)
    for name in ("0", "2.1"):
        m = dict(net.named_modules())[name]
        assert (m.weight.numpy() == 0.5).all() and (m.bias.numpy() == 0).all()


def test_named_parameters_and_buffers_carry_the_prefix_and_module_path():
    net = _net()
    assert [k for k, _ in net.named_parameters(prefix="gen")] == [
        "gen.0.weight", "gen.0.bias", "gen.1.weight", "gen.1.bias", "gen.2.1.weight", "gen.2.1.bias"]
    assert [k for k, _ in net.named_parameters()] == [
        "0.weight", "0.bias", "1.weight", "1.bias", "2.1.weight", "2.1.bias"]
    assert [k for k, _ in net.named_buffers()] == ["1.running_mean", "1.running_var", "1.num_batches_tracked"]
    nested = nn.Sequential(nn.Sequential(nn.BatchNorm1d(2)))
    assert [k for k, _ in nested.named_buffers()] == [
        "0.0.running_mean", "0.0.running_var", "0.0.num_batches_tracked"]
    m = Leaf()
    m.register_buffer("nothing", None)              # a None buffer is neither listed nor saved
    assert [k for k, _ in m.named_buffers()] == ["count"] and list(m.state_dict()) == ["w", "count"]


# ---------------------------------------------------------------------------
# calling, repr, containers
# ---------------------------------------------------------------------------

def test_a_module_without_forward_says_so():
    class NoForward(nn.Module):
        pass

    with pytest.raises(NotImplementedError, match=r"^NoForward must implement forward\(\)$"):
        NoForward()(tinygan.tensor(np.ones(1, np.float32)))


def test_call_passes_positional_and_keyword_arguments_to_forward():
    m = Leaf()
    x = tinygan.tensor(np.array([1.0, 2.0], np.float32))
    np.testing.assert_array_equal(m(x).numpy(), [3.0, 6.0])
    np.testing.assert_array_equal(m(x, scale=2.0).numpy(), [6.0, 12.0])
    np.testing.assert_array_equal(m(x, 0.5).numpy(), [1.5, 3.0])


def test_repr_is_torchs_nested_layout():
    net = _net()
    assert repr(net) == (
        "Sequential(\n"
        "  (0): Linear(in_features=3, out_features=4, bias=True)\n"
        "  (1): BatchNorm1d(4, eps=1e-05, momentum=0.1, affine=True)\n"
        "  (2): Sequential(\n"
        "    (0): ReLU()\n"
        "    (1): Linear(in_features=4, out_features=2, bias=True)\n"
        "  )\n"
        ")")
    assert repr(nn.Module()) == "Module()" and repr(Leaf()) == "Leaf()" and repr(nn.Sequential()) == "Sequential()"


def test_sequential_and_module_list_index_iterate_and_count():
    a, b, c = nn.Linear(2, 2), nn.Tanh(), nn.Linear(2, 1)
    for container in (nn.Sequential(a, b, c), nn.ModuleList([a, b, c])):
        assert list(container) == [a, b, c] and len(container) == 3
        assert container[0] is a and container[-1] is c and container[1] is b
        assert [n for n, _ in container.named_children()] == ["0", "1", "2"]
    ml = nn.ModuleList()
    assert list(ml) == [] and len(ml) == 0
    assert ml.append(a) is ml and ml.append(c) is ml
    assert list(ml) == [a, c] and [k for k, _ in ml.named_parameters()] == ["0.weight", "0.bias", "1.weight", "1.bias"]
    x = tinygan.tensor(np.ones((1, 2), np.float32))
    np.testing.assert_array_equal(nn.Sequential(a, b, c)(x).numpy(), c(b(a(x))).numpy())


# ---------------------------------------------------------------------------
# modes and requires_grad
# ---------------------------------------------------------------------------

def test_train_and_eval_set_a_bool_on_every_module():
    net = _net()
    assert net.eval() is net
    assert all(m.training is False for m in net.modules())
    assert net.train() is net
    assert all(m.training is True for m in net.modules())
    net.train(False)
    assert all(m.training is False for m in net.modules())


def test_requires_grad_switches_training_of_every_parameter_back_and_forth():
    net = _net()
    assert net.requires_grad_(False) is net
    assert all(p.requires_grad is False for p in net.parameters())
    assert net.requires_grad_() is net                   # the default is True
    assert all(p.requires_grad is True for p in net.parameters())
    net(_x()).sum().backward()
    assert all(p.grad is not None for p in net.parameters())


# ---------------------------------------------------------------------------
# dtype and device moves
# ---------------------------------------------------------------------------

def _dtypes(m):
    return {k: v.dtype for k, v in m.state_dict().items()}


def test_double_and_float_cast_parameters_and_float_buffers_only():
    net = _net()
    net(_x())                                           # running statistics away from their defaults
    before = net.state_dict()
    assert net.double() is net
    for k, dt in _dtypes(net).items():
        assert dt == (np.int64 if k.endswith("num_batches_tracked") else np.float64), k
        np.testing.assert_array_equal(net.state_dict()[k], before[k], err_msg=k)
    assert all(p.dtype == np.float64 for p in net.parameters())
    assert net.float() is net
    for k, dt in _dtypes(net).items():
        assert dt == (np.int64 if k.endswith("num_batches_tracked") else np.float32), k
        np.testing.assert_array_equal(net.state_dict()[k], before[k], err_msg=k)
    assert net.to(dtype=np.float64) is net and net(_x(dtype=np.float64)).dtype == np.float64


def test_to_without_a_dtype_keeps_the_dtypes():
    net = _net().double()
    net.to("cpu")
    net.to()
    net.cpu()
    assert all(dt == (np.int64 if k.endswith("num_batches_tracked") else np.float64)
               for k, dt in _dtypes(net).items())


def test_buffers_after_a_none_buffer_are_cast_too():
    m = Leaf()
    m.register_buffer("empty", None)
    m.register_buffer("stats", np.ones(3, np.float32))
    m.double()
    assert m.stats.dtype == np.float64 and m.w.dtype == np.float64 and m.count.dtype == np.int64
    assert m.empty is None


def test_a_cast_drops_the_gradients_of_the_old_dtype():
    """After .double() the float32 gradients are gone: an optimizer step without a new backward changes nothing."""
    net = nn.Linear(3, 2)
    opt = optim.SGD(net.parameters(), lr=1.0)
    net(_x()).sum().backward()
    net.double()
    assert all(p.grad is None for p in net.parameters())
    before = net.state_dict()
    opt.step()
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(v, before[k], err_msg=k)


def _on(m, device):
    return all(p.device == device for p in m.parameters()) and all(
        tinygan.backend.device_of(b) == device for _, b in m.named_buffers())


def test_to_device_moves_parameters_and_buffers_and_back(device):
    net = _net()
    net(_x())
    before = net.state_dict()
    assert net.to(device) is net and net.device == device and _on(net, device)
    for k, v in net.state_dict().items():                # the state_dict is host arrays wherever the model is
        assert type(v) is np.ndarray
        np.testing.assert_array_equal(v, before[k], err_msg=k)
    assert net.eval()(_x(device=device)).device == device
    assert net.cpu() is net and _on(net, "cpu") and net.device == "cpu"
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(v, before[k], err_msg=k)


@pytest.mark.gpu
def test_cuda_moves_to_the_gpu_and_cpu_moves_back():
    if not tinygan.gpu_available():
        pytest.skip("needs CuPy and a visible GPU (or TINYGAN_FAKE_CUPY=1)")
    net = _net()
    assert net.cuda() is net and _on(net, "cuda") and net.device == "cuda"
    net.double()                                          # a cast on the GPU stays there
    assert _on(net, "cuda") and all(p.dtype == np.float64 for p in net.parameters())
    assert net.cpu() is net and _on(net, "cpu")


# ---------------------------------------------------------------------------
# load_state_dict
# ---------------------------------------------------------------------------

def _changed(state):
    return {k: np.asarray(v + 1.5 if v.dtype.kind == "f" else v + 3) for k, v in state.items()}


def test_a_top_level_module_loads_its_buffers():
    bn = nn.BatchNorm1d(3)
    state = _changed(bn.state_dict())
    bn.load_state_dict(state)
    for k, v in bn.state_dict().items():
        np.testing.assert_array_equal(v, state[k], err_msg=k)
    assert int(bn.num_batches_tracked) == 3


def test_loaded_parameters_and_buffers_are_copies_of_the_arrays_given():
    net = _net()
    state = _changed(net.state_dict())
    net.load_state_dict(state)
    kept = {k: v.copy() for k, v in state.items()}
    for v in state.values():
        v[...] = 0
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(v, kept[k], err_msg=k)


def test_non_strict_load_keeps_what_is_missing_and_skips_what_is_unknown():
    net = _net()
    before = net.state_dict()
    new = _changed(before)
    state = {"extra.weight": np.zeros(2), "0.weight": new["0.weight"], "another": np.ones(1),
             "1.running_mean": new["1.running_mean"]}
    result = net.load_state_dict(state, strict=False)
    assert result.unexpected_keys == ["extra.weight", "another"]
    assert result.missing_keys == [k for k in before if k not in ("0.weight", "1.running_mean")]
    after = net.state_dict()
    for k in before:
        np.testing.assert_array_equal(after[k], new[k] if k in state else before[k], err_msg=k)


def test_every_unexpected_key_is_listed():
    net = nn.Linear(2, 2)
    state = dict(net.state_dict(), a=np.zeros(1), b=np.zeros(1))
    with pytest.raises(RuntimeError, match=r'^Error\(s\) in loading state_dict for Linear:\n\t'
                                           r'Unexpected key\(s\) in state_dict: "a", "b"\.$'):
        net.load_state_dict(state)


def test_a_state_of_pytorch_tensors_that_require_grad_loads(torch):
    """torch's named_parameters() are tensors that require grad: numpy() refuses them, load_state_dict does not."""
    theirs = torch.nn.Linear(3, 2)
    ours = nn.Linear(3, 2)
    state = dict(theirs.named_parameters())
    assert all(v.requires_grad for v in state.values())
    ours.load_state_dict(state)
    for k, v in state.items():
        np.testing.assert_array_equal(ours.state_dict()[k], v.detach().numpy(), err_msg=k)
    assert ours.weight.dtype == np.float32


def test_loading_into_a_model_on_a_device_keeps_it_there(device):
    net = _net().to(device)
    state = _changed(_net().state_dict())
    net.load_state_dict(state)
    assert _on(net, device)
    assert all(p.dtype == np.float32 for p in net.parameters())
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(v, state[k], err_msg=k)
        assert v.dtype == state[k].dtype, k
    net.eval()
    y = net(_x(device=device))                              # usable where it is
    assert y.device == device
    ref = _net()
    ref.load_state_dict(state)
    ref.eval()
    np.testing.assert_allclose(to_numpy(y._data), ref(_x()).numpy(), rtol=1e-5, atol=1e-6)


def test_load_casts_to_the_dtype_of_each_parameter_and_buffer():
    net = _net().double()
    state = {k: v.astype(np.float32) if v.dtype.kind == "f" else v.astype(np.int32)
             for k, v in _changed(net.state_dict()).items()}
    net.load_state_dict(state)
    for k, dt in _dtypes(net).items():
        assert dt == (np.int64 if k.endswith("num_batches_tracked") else np.float64), k
