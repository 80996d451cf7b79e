"""Behaviour of the autograd engine (tinygan/autograd.py): accumulation, graph lifetime,
grad modes, ``grad()``'s options, dtypes, and the Tensor basics."""
from __future__ import annotations

import numpy as np
import pytest

import tinygan
import tinygan.functional as F
from tinygan import nn
from tinygan.backend import xp_for


def leaf(a, device="cpu", dtype=np.float64):
    return tinygan.tensor(np.asarray(a, dtype=dtype), requires_grad=True, device=device)


# ---------------------------------------------------------------------------
# gradient accumulation
# ---------------------------------------------------------------------------

def test_tensor_used_twice_in_one_op(device):
    x = leaf([1.0, -2.0, 3.0], device)
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, -4.0, 6.0])  # d(x^2)/dx = 2x, both paths added
    x.grad = None
    (x + x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0, 2.0])
    x.grad = None
    (x - x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0, 0.0])


def test_shared_subgraph(device):
    x = leaf([0.5, 2.0], device)
    y = x * 3.0             # shared by both branches below
    z = (y * y + y.exp() + y).sum()
    z.backward()
    expected = 3.0 * (2 * 3.0 * np.array([0.5, 2.0]) + np.exp(3.0 * np.array([0.5, 2.0])) + 1)
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-14)


def test_diamond_is_visited_once(device):
    """Each Function's backward runs once, after all contributions to its output arrived."""
    calls = []

    class Count(tinygan.Function):
        def forward(self, x):
            return x * 1

        def backward(self, g):
            calls.append(g.numpy().copy())
            return g

    x = leaf([1.0, 2.0], device)
    y = Count()(x)
    (y * 2.0 + y * 5.0).sum().backward()
    assert len(calls) == 1
    np.testing.assert_array_equal(calls[0], [7.0, 7.0])
    np.testing.assert_array_equal(x.grad.numpy(), [7.0, 7.0])


def test_grad_accumulates_across_backward_calls(device):
    x = leaf([1.0, 2.0], device)
    (x * 3.0).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0 + 2.0, 3.0 + 4.0])
    first = x.grad
    (x * 1.0).sum().backward()
    np.testing.assert_array_equal(first.numpy(), [5.0, 7.0])  # accumulation is not in place


def test_backward_on_a_leaf_sets_its_grad(device):
    """Regression: x.backward(g) on a leaf (e.g. the output of nn.Identity) used to leave x.grad None."""
    x = leaf([1.0, 2.0], device)
    x.backward(tinygan.tensor([3.0, 4.0], dtype=np.float64, device=device))
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 4.0])
    s = leaf(2.0, device)
    s.backward()
    s.backward()
    assert s.grad.item() == 2.0
    y = nn.Identity()(x)
    y.backward(tinygan.ones_like(y))
    np.testing.assert_array_equal(x.grad.numpy(), [4.0, 5.0])


def test_deep_graph_has_no_recursion_limit(device):
    x = leaf(1.0, device)
    y = x
    for _ in range(5000):
        y = y + 1.0
    y.backward()
    assert x.grad.item() == 1.0
    assert y.item() == 5001.0
    z = x * x
    for _ in range(5000):
        z = z * 1.0001
    (g,) = tinygan.grad(z, x, create_graph=True)      # 2 x 1.0001^5000, itself 5000 nodes deep
    np.testing.assert_allclose(g.item(), 2 * 1.0001 ** 5000, rtol=1e-10)
    (gg,) = tinygan.grad(g, x)
    np.testing.assert_allclose(gg.item(), 2 * 1.0001 ** 5000, rtol=1e-10)


# ---------------------------------------------------------------------------
# graph lifetime
# ---------------------------------------------------------------------------

def test_second_backward_through_a_freed_graph_raises(device):
    x = leaf([1.0, 2.0], device)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match=r"backward through the graph a second time.*retain_graph=True"):
        y.backward()
    z = (x.exp()).sum()
    tinygan.grad(z, x)
    with pytest.raises(RuntimeError, match="second time"):
        tinygan.grad(z, x)


def test_retain_graph_allows_a_second_backward(device):
    x = leaf([1.0, 2.0], device)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [4.0, 8.0])
    z = (x * x * x).sum()
    (g1,) = tinygan.grad(z, x, retain_graph=True)
    (g2,) = tinygan.grad(z, x)
    np.testing.assert_array_equal(g1.numpy(), g2.numpy())


def test_graph_is_released_after_backward(device):
    """After backward the Functions drop their inputs and saved outputs (memory is freed)."""
    x = leaf([1.0, 2.0], device)
    h = x.tanh()
    y = (h * 2.0).sum()
    fn = h.grad_fn
    assert fn.inputs and fn._out_data is not None
    y.backward()
    assert fn.inputs == () and fn._out_data is None


def test_the_graph_keeps_only_what_backward_reads():
    """A DCGAN layer, conv -> batch norm -> LeakyReLU: the graph keeps the conv's input (its backward reads
    it), batch norm's input and the LeakyReLU's output, but not batch norm's output, which only the LeakyReLU
    read (PyTorch keeps the same: its in-place LeakyReLU overwrites it).  The memory goes when the caller
    drops it, and backward is unchanged."""
    import gc
    import weakref
    rng = np.random.default_rng(0)
    x = tinygan.tensor(rng.standard_normal((4, 3, 8, 8)))
    conv, bn = nn.Conv2d(3, 8, 4, 2, 1, bias=False).double(), nn.BatchNorm2d(8).double()
    pre = conv(x)
    h = bn(pre)
    y = F.leaky_relu(h, 0.2)
    kept, freed = weakref.ref(pre._data), weakref.ref(h._data)
    del pre, h
    gc.collect()
    assert freed() is None and kept() is not None
    (y * y).sum().backward()
    expected = [p.grad.numpy().copy() for p in (conv.weight, bn.weight, bn.bias)]
    for p in (conv.weight, bn.weight, bn.bias):
        p.grad = None
    F.leaky_relu(bn(conv(x)), 0.2).pow(2).sum().backward()      # the same, nothing dropped
    for p, e in zip((conv.weight, bn.weight, bn.bias), expected):
        np.testing.assert_allclose(p.grad.numpy(), e, rtol=1e-12)


def test_grad_of_an_intermediate_reaches_it_through_an_unsaved_edge():
    """``h`` is an input that ``+`` does not keep (its backward needs shapes only); grad(y, h) still finds it."""
    x = leaf([1.0, 2.0, 3.0])
    h = x * 2.0
    y = (h + 1.0).sum()
    (gh,) = tinygan.grad(y, h, retain_graph=True)       # h alone: nothing below it is wanted
    np.testing.assert_array_equal(gh.numpy(), [1.0, 1.0, 1.0])
    (gh, gx) = tinygan.grad(y, [h, x])
    np.testing.assert_array_equal(gh.numpy(), [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(gx.numpy(), [2.0, 2.0, 2.0])


def test_a_function_that_reads_what_it_did_not_save_fails_loudly():
    """A wrong ``saved_inputs`` (or a missing ``saves_output``) raises instead of computing with missing values."""

    class Square(tinygan.Function):
        saved_inputs = ()                       # wrong: backward reads x

        def forward(self, x):
            return x * x

        def backward(self, g):
            return g * 2.0 * tinygan.Tensor(self.inputs[0]._data)

    class Exp(tinygan.Function):
        def forward(self, x):
            return np.exp(x)

        def backward(self, g):                  # wrong: reads the output without saves_output = True
            return g * self.saved_output()

    x = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match="saved_inputs leaves out"):
        Square()(x * 1.0).sum().backward()
    with pytest.raises(RuntimeError, match="does not declare saves_output"):
        Exp()(x).sum().backward()


# ---------------------------------------------------------------------------
# grad modes and detach
# ---------------------------------------------------------------------------

def test_no_grad_stops_recording(device):
    x = leaf([1.0, 2.0], device)
    with tinygan.no_grad():
        assert not tinygan.is_grad_enabled()
        y = x * 2.0 + x.exp()
        with tinygan.enable_grad():
            z = x * 2.0
    assert tinygan.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None
    assert z.requires_grad and z.grad_fn is not None
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.sum().backward()


def test_no_grad_as_decorator_and_after_exceptions():
    @tinygan.no_grad()
    def f(x):
        return x * 2.0

    x = leaf([1.0])
    assert not f(x).requires_grad
    assert tinygan.is_grad_enabled()
    with pytest.raises(KeyError):
        with tinygan.no_grad():
            raise KeyError("boom")
    assert tinygan.is_grad_enabled()


def test_no_grad_is_reentrant():
    """Regression: one no_grad instance entered twice (nested, or a recursive decorated
    function) used to switch grad mode back on inside the outer block."""
    ng = tinygan.no_grad()
    with ng:
        with ng:
            pass
        assert not tinygan.is_grad_enabled()
    assert tinygan.is_grad_enabled()

    seen = []

    @tinygan.no_grad()
    def recurse(n):
        if n:
            recurse(n - 1)
        seen.append(tinygan.is_grad_enabled())

    recurse(3)
    assert seen == [False] * 4 and tinygan.is_grad_enabled()


def test_detach(device):
    x = leaf([1.0, 2.0], device)
    y = x * 3.0
    d = y.detach()
    assert not d.requires_grad and d.grad_fn is None and d.is_leaf
    assert d._data is y._data  # shares memory, like torch
    z = (d * x).sum()
    z.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 6.0])  # no gradient through d


def test_requires_grad_propagation(device):
    a = tinygan.tensor([1.0, 2.0], device=device)
    b = leaf([3.0, 4.0], device)
    assert not (a * 2.0).requires_grad and (a * 2.0).grad_fn is None
    assert (a * b).requires_grad and not (a * b).is_leaf
    assert b.is_leaf and b.grad_fn is None
    with pytest.raises(RuntimeError, match="non-leaf"):
        (a * b).requires_grad_(False)


# ---------------------------------------------------------------------------
# grad()
# ---------------------------------------------------------------------------

def test_grad_with_non_leaf_inputs(device):
    x = leaf([1.0, 2.0], device)
    h = x * 3.0
    y = (h * h).sum()
    gh, gx = tinygan.grad(y, [h, x])
    np.testing.assert_array_equal(gh.numpy(), [6.0, 12.0])      # 2 h
    np.testing.assert_array_equal(gx.numpy(), [18.0, 36.0])     # 2 h * 3


def test_grad_single_input_returns_a_tuple(device):
    x = leaf([1.0], device)
    out = tinygan.grad((x * 2.0).sum(), x)
    assert isinstance(out, tuple) and len(out) == 1


def test_grad_unused_inputs(device):
    x, u = leaf([1.0, 2.0], device), leaf([5.0], device)
    with pytest.raises(RuntimeError, match=r"input 1 \(shape \(1,\)\) was not used.*allow_unused=True"):
        tinygan.grad((x * x).sum(), [x, u])
    gx, gu = tinygan.grad((x * x).sum(), [x, u], allow_unused=True)
    assert gu is None
    np.testing.assert_array_equal(gx.numpy(), [2.0, 4.0])


def test_grad_outputs_and_multiple_outputs(device):
    x = leaf([1.0, 2.0, 3.0], device)
    y = x * x
    v = tinygan.tensor([1.0, 0.5, -1.0], dtype=np.float64, device=device)
    (g,) = tinygan.grad(y, x, grad_outputs=v)
    np.testing.assert_array_equal(g.numpy(), 2 * np.array([1, 2, 3.0]) * [1.0, 0.5, -1.0])
    (g,) = tinygan.grad([x.sum(), (x * 2.0).sum()], x)   # summed over outputs
    np.testing.assert_array_equal(g.numpy(), [3.0, 3.0, 3.0])
    with pytest.raises(RuntimeError, match="only for scalar outputs"):
        tinygan.grad(x * 2.0, x)
    with pytest.raises(ValueError, match=r"grad has shape \(2,\) but the output has shape \(3,\)"):
        tinygan.grad(x * 2.0, x, grad_outputs=tinygan.tensor([1.0, 2.0], device=device))


def test_create_graph_gives_differentiable_grads(device):
    x = leaf([0.5, -1.5], device)
    (g,) = tinygan.grad((x ** 3).sum(), x, create_graph=True)
    assert g.requires_grad and g.grad_fn is not None
    np.testing.assert_allclose(g.numpy(), 3 * np.array([0.5, -1.5]) ** 2)
    (gg,) = tinygan.grad(g.sum(), x, create_graph=True)
    np.testing.assert_allclose(gg.numpy(), 6 * np.array([0.5, -1.5]))
    (ggg,) = tinygan.grad(gg.sum(), x)
    np.testing.assert_allclose(ggg.numpy(), [6.0, 6.0])
    # without create_graph the result is a constant
    (g0,) = tinygan.grad((x ** 3).sum(), x)
    assert not g0.requires_grad and g0.grad_fn is None


def test_backward_create_graph(device):
    x = leaf([1.0, 2.0], device)
    (x ** 3).sum().backward(create_graph=True)
    g = x.grad
    assert g.requires_grad
    x.grad = None
    g.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [6.0, 12.0])


def test_grad_does_not_touch_leaf_grads(device):
    x, w = leaf([1.0, 2.0], device), leaf([3.0, 4.0], device)
    x.grad = tinygan.tensor([10.0, 10.0], dtype=np.float64, device=device)
    tinygan.grad((x * w).sum(), x)
    np.testing.assert_array_equal(x.grad.numpy(), [10.0, 10.0])
    assert w.grad is None


def test_grad_prunes_branches_it_does_not_need(device):
    """grad(D(x), x) must not run the backward that only leads to D's weights."""
    ran = []

    class Tag(tinygan.Function):
        def __init__(self, tag):
            self.tag = tag

        def forward(self, a):
            return a * 1

        def backward(self, g):
            ran.append(self.tag)
            return g

    x, w = leaf([1.0, 2.0], device), leaf([3.0, 4.0], device)
    y = (Tag("x")(x) * Tag("w")(w)).sum()
    tinygan.grad(y, x)
    assert ran == ["x"]
    ran.clear()
    y = (Tag("x")(x) * Tag("w")(w)).sum()
    y.backward()
    assert sorted(ran) == ["w", "x"]


def test_grad_input_must_require_grad(device):
    x = tinygan.tensor([1.0], device=device)
    w = leaf([1.0], device)
    with pytest.raises(RuntimeError, match="input 0 does not require grad"):
        tinygan.grad((x * w).sum(), x)
    with pytest.raises(RuntimeError, match="output 0 .* does not require grad"):
        tinygan.grad(x.sum(), w)


# ---------------------------------------------------------------------------
# dtypes
# ---------------------------------------------------------------------------

FLOAT32_EXPRS = [
    "x + 1", "1 + x", "x - 0.5", "2.5 - x", "x * 0.5", "3 * x", "x / 3.0", "1.0 / x", "-x", "x ** 2",
    "x ** 0.5", "2.0 ** x", "x ** x", "x.exp()", "x.log()", "x.sqrt()", "x.abs()", "x.clip(0.2, 0.8)",
    "x.tanh()", "x.sigmoid()", "x.relu()", "x.sum()", "x.mean()", "x.var()", "x.max(axis=0)",
    "x.mean(axis=1, keepdims=True)", "x.reshape(-1)", "x.T", "x[0]", "x[np.array([1, 1])]", "x @ x.T",
    "x * np.float64(2.0)", "x + np.int64(3)", "F.leaky_relu(x, 0.2)", "F.softplus(x)", "F.logsigmoid(x)",
    "F.log_softmax(x, dim=1)", "F.layer_norm(x, (3,))", "F.linear(x, x)",
    "F.batch_norm(x, None, None, training=True)", "F.mse_loss(x, np.ones((2, 3)))",
    "F.binary_cross_entropy(x, np.ones((2, 3)))", "F.binary_cross_entropy_with_logits(x, np.zeros((2, 3)))",
    "F.cross_entropy(x, np.array([0, 2]))", "tinygan.cat([x, x], dim=1)", "tinygan.stack([x, x])",
    "F.conv2d(x.reshape(1, 1, 2, 3), x.reshape(1, 1, 2, 3))",
    "F.conv_transpose2d(x.reshape(1, 1, 2, 3), x.reshape(1, 1, 2, 3), stride=2)",
]


@pytest.mark.parametrize("expr", FLOAT32_EXPRS)
def test_float32_stays_float32(device, expr):
    x = tinygan.tensor(np.array([[0.3, 0.5, 0.7], [0.2, 0.4, 0.9]], np.float32), requires_grad=True,
                       device=device)
    y = eval(expr, {"x": x, "np": np, "F": F, "tinygan": tinygan})  # noqa: S307 - fixed expressions
    assert y.dtype == np.float32, f"{expr} gave {y.dtype}"
    (g,) = tinygan.grad(y.sum(), x, create_graph=True)
    assert g.dtype == np.float32, f"gradient of {expr} is {g.dtype}"
    (gg,) = tinygan.grad(g.sum(), x, allow_unused=True) if g.requires_grad else (None,)
    assert gg is None or gg.dtype == np.float32, f"second gradient of {expr} is {gg.dtype}"


def test_float64_stays_float64_and_backward_grads_match_dtype(device):
    x = leaf(np.ones((2, 2)), device)
    y = (x * 0.5 + 1).exp().sum()
    assert y.dtype == np.float64
    y.backward()
    assert x.grad.dtype == np.float64


def test_astype_is_differentiable():
    x = leaf([1.0, 2.0])
    y = x.to(dtype=np.float32)
    assert y.dtype == np.float32
    (y * y).sum().backward()
    assert x.grad.dtype == np.float64
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 4.0])


def test_tensor_dtype_rules(device):
    assert tinygan.tensor(np.zeros(2, np.float64), device=device).dtype == np.float64
    assert tinygan.tensor(np.zeros(2, np.float32), device=device).dtype == np.float32
    assert tinygan.tensor([1.0, 2.0], device=device).dtype == np.float32       # Python floats
    assert tinygan.tensor(1.5, device=device).dtype == np.float32
    assert tinygan.tensor([1, 2], device=device).dtype == np.int64              # ints stay ints
    assert tinygan.tensor(np.array([1, 2], np.int32), device=device).dtype == np.int32
    assert tinygan.tensor([True, False], device=device).dtype == np.bool_
    assert tinygan.tensor([1.0, 2.0], dtype=np.float64, device=device).dtype == np.float64
    assert tinygan.tensor(np.zeros(2), dtype=np.float32, device=device).dtype == np.float32
    assert tinygan.zeros(2, 3, device=device).dtype == np.float32
    assert tinygan.ones((2,), dtype=np.float64, device=device).dtype == np.float64
    assert tinygan.randn(2, device=device).dtype == np.float32
    assert tinygan.rand(2, dtype=np.float64, device=device).dtype == np.float64
    with pytest.raises(TypeError, match="float16"):
        tinygan.tensor(np.zeros(2, np.float16))
    with pytest.raises(TypeError, match="floating-point dtype"):
        tinygan.zeros(2, dtype=np.int32)


def test_tensor_copies_numpy_input():
    a = np.zeros(3)
    t = tinygan.tensor(a)
    a[0] = 1.0
    assert t.numpy()[0] == 0.0


# ---------------------------------------------------------------------------
# random numbers
# ---------------------------------------------------------------------------

def test_manual_seed_reproducibility():
    tinygan.manual_seed(123)
    a = tinygan.randn(3, 4).numpy()
    b = tinygan.rand(5).numpy()
    lin = nn.Linear(3, 2).weight.numpy()
    tinygan.manual_seed(123)
    np.testing.assert_array_equal(tinygan.randn(3, 4).numpy(), a)
    np.testing.assert_array_equal(tinygan.rand(5).numpy(), b)
    np.testing.assert_array_equal(nn.Linear(3, 2).weight.numpy(), lin)
    tinygan.manual_seed(124)
    assert not np.array_equal(tinygan.randn(3, 4).numpy(), a)
    assert ((b >= 0) & (b < 1)).all()


def test_rng_state_round_trip():
    import json
    tinygan.manual_seed(7)
    tinygan.randn(10)
    state = json.loads(json.dumps(tinygan.get_rng_state()))   # JSON-safe
    expected = tinygan.randn(4).numpy()
    tinygan.randn(100)
    tinygan.set_rng_state(state)
    np.testing.assert_array_equal(tinygan.randn(4).numpy(), expected)


# ---------------------------------------------------------------------------
# Tensor basics
# ---------------------------------------------------------------------------

def test_item_numpy_and_conversions(device):
    t = tinygan.tensor([[1.5, 2.0], [3.0, 4.0]], device=device)
    assert t[0, 0].item() == 1.5 and isinstance(t[0, 0].item(), float)
    assert tinygan.tensor([7], device=device).item() == 7
    assert isinstance(tinygan.tensor([7], device=device).item(), int)
    assert float(t.sum()) == 10.5
    with pytest.raises(ValueError, match=r"item: only one-element tensors.*\(2, 2\)"):
        t.item()
    n = t.numpy()
    assert isinstance(n, np.ndarray) and n.dtype == np.float32 and n.shape == (2, 2)
    assert t.tolist() == [[1.5, 2.0], [3.0, 4.0]]
    assert np.asarray(t).shape == (2, 2)
    assert t.shape == (2, 2) and t.ndim == 2 and t.dim() == 2 and len(t) == 2 and t.numel() == 4
    assert t.size() == (2, 2) and t.size(1) == 2
    assert t.device == device


def test_indexing_values(device):
    a = np.arange(24.0).reshape(2, 3, 4)
    t = tinygan.tensor(a, device=device)
    xp = xp_for(device)
    for index in [0, -1, (1, 2), (slice(None), 1), (Ellipsis, 3), (None, 0), (0, slice(None, None, -1))]:
        np.testing.assert_array_equal(t[index].numpy(), a[index])
    np.testing.assert_array_equal(t[xp.asarray([1, 1, 0])].numpy(), a[[1, 1, 0]])
    mask = a > 10
    np.testing.assert_array_equal(t[xp.asarray(mask)].numpy(), a[mask])
    np.testing.assert_array_equal(t[t > 10].numpy(), a[mask])  # a boolean Tensor as index


def test_cat_and_stack_shapes(device):
    a = tinygan.zeros(2, 3, device=device)
    b = tinygan.ones(4, 3, device=device)
    assert tinygan.cat([a, b]).shape == (6, 3)
    assert tinygan.cat([a, a], dim=1).shape == (2, 6)
    assert tinygan.cat([a, a], dim=-1).shape == (2, 6)
    assert tinygan.stack([a, a, a]).shape == (3, 2, 3)
    assert tinygan.stack([a, a], dim=1).shape == (2, 2, 3)
    assert tinygan.stack([a, a], dim=-1).shape == (2, 3, 2)
    out = tinygan.cat([a, b]).numpy()
    np.testing.assert_array_equal(out, np.concatenate([np.zeros((2, 3)), np.ones((4, 3))]))
    x, y = leaf(np.ones((2, 3)), device), leaf(np.ones((1, 3)), device)
    (tinygan.cat([x, y * 2.0]) * tinygan.tensor(np.arange(9.0).reshape(3, 3), device=device)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(y.grad.numpy(), 2 * np.arange(6.0, 9.0).reshape(1, 3))


def test_comparisons_are_constant_boolean_tensors(device):
    x = leaf([1.0, 2.0, 3.0], device)
    m = x > 1.5
    assert m.dtype == np.bool_ and not m.requires_grad
    np.testing.assert_array_equal(m.numpy(), [False, True, True])
    np.testing.assert_array_equal((x <= 2.0).numpy(), [True, True, False])


def test_zeros_like_and_ones_like(device):
    x = leaf(np.ones((2, 2)), device)
    z = tinygan.zeros_like(x)
    assert z.shape == (2, 2) and z.dtype == np.float64 and not z.requires_grad and z.device == device
    assert tinygan.ones_like(x, requires_grad=True).requires_grad


def test_custom_function():
    """The documented way to add an op: forward on arrays, backward with differentiable ops."""

    class Cube(tinygan.Function):
        def forward(self, x):
            return x ** 3

        def backward(self, g):
            (x,) = self.inputs
            return g * 3.0 * x * x

    x = leaf([2.0, -1.0])
    (g,) = tinygan.grad(Cube()(x).sum(), x, create_graph=True)
    np.testing.assert_array_equal(g.numpy(), [12.0, 3.0])
    (gg,) = tinygan.grad(g.sum(), x)
    np.testing.assert_array_equal(gg.numpy(), [12.0, -6.0])


def test_a_gradient_takes_its_inputs_dtype_as_in_pytorch():
    """float32 times float64 is float64, but the float32 input's gradient is float32 (PyTorch casts it back)."""
    a_np, b_np = np.array([1.5, -2.0, 0.25], np.float32), np.array([3.0, 0.5, -1.0])
    a, b = tinygan.Tensor(a_np, requires_grad=True), tinygan.Tensor(b_np, requires_grad=True)
    h = a * 2.0                                               # float32 intermediate, fed into float64 work
    y = (h * b).sum()
    assert y.dtype == np.float64
    y.backward()
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float64
    np.testing.assert_array_equal(a.grad.numpy(), (2.0 * b_np).astype(np.float32))
    np.testing.assert_array_equal(b.grad.numpy(), 2.0 * a_np.astype(np.float64))
    (ga,) = tinygan.grad((a * b * a).sum(), a, create_graph=True)   # also as a graph node, differentiable again
    assert ga.dtype == np.float32
    (gb,) = tinygan.grad(ga.sum(), b)
    assert gb.dtype == np.float64
    np.testing.assert_allclose(gb.numpy(), 2.0 * a_np, rtol=1e-7)
