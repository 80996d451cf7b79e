"""Finite-difference checks of every differentiable op, first and second order.

Each test draws a small float64 case with hypothesis (shapes, hyper-parameters
and a seed for the values) and runs :func:`tinygan.testing.gradcheck` (the
backward of every input against central differences) and, for the ops a GAN
critic uses, :func:`tinygan.testing.gradgradcheck` (the derivative of a
``create_graph=True`` gradient, the WGAN-GP / R1 path).

Kinks are avoided by construction: inputs of relu/leaky_relu/abs are at
least 0.05 from 0, clip inputs 0.05 from the bounds, max inputs have no ties
(distinct values 0.1 apart), so a central difference with h = 1e-6 never
straddles a kink.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygan
import tinygan.functional as F
from conftest import conv_cases, dcgan_examples, examples, seeds
from tinygan.backend import xp_for
from tinygan.testing import gradcheck, gradgradcheck, numerical_grad

small_shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)


def leaf(a, device, requires_grad=True):
    """A float64 leaf on ``device``."""
    return tinygan.tensor(np.asarray(a, dtype=np.float64), requires_grad=requires_grad, device=device)


def away_from(a: np.ndarray, points, gap: float = 0.05) -> np.ndarray:
    """Shift the entries of ``a`` lying within ``gap`` of any of ``points`` by 2 gap (points >= 6 gap apart)."""
    a = np.array(a, dtype=np.float64)
    for _ in range(3):
        for p in points:
            near = np.abs(a - p) < gap
            a[near] += 2 * gap
    return a


def nonzero(rng, shape, lo=0.05, hi=2.0):
    """Values with |v| in [lo, hi] and a random sign: no kink at 0, safe to divide by."""
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(lo, hi, size=shape)


def positive(rng, shape, lo=0.2, hi=2.0):
    return rng.uniform(lo, hi, size=shape)


# ---------------------------------------------------------------------------
# the checker itself can fail
# ---------------------------------------------------------------------------

class _WrongSquare(tinygan.Function):
    """y = x^2 with a backward that forgets the factor 2."""

    def forward(self, x):
        return x * x

    def backward(self, g):
        return g * self.inputs[0]


class _ConstantBackwardSquare(tinygan.Function):
    """y = x^2 with a correct first derivative built from a *constant* copy of x.

    First order is right; the second derivative (2 g) is lost because the
    backward is not written with differentiable ops of x.
    """

    def forward(self, x):
        return x * x

    def backward(self, g):
        return g * tinygan.Tensor(self.inputs[0].data * 2.0)


def test_gradcheck_catches_a_wrong_backward():
    x = leaf(np.arange(1.0, 7.0).reshape(2, 3), "cpu")
    with pytest.raises(AssertionError, match=r"gradient of input 0 \(shape \(2, 3\).*max abs error.*index"):
        gradcheck(lambda x: _WrongSquare()(x), [x])
    # The same check passes for the correct op.
    assert gradcheck(lambda x: x * x, [x])


def test_gradgradcheck_catches_a_non_differentiable_backward():
    x = leaf(np.arange(1.0, 7.0).reshape(2, 3), "cpu")
    assert gradcheck(lambda x: _ConstantBackwardSquare()(x), [x])  # first order is fine
    with pytest.raises(AssertionError, match=r"second derivative w\.r\.t\. input 0"):
        gradgradcheck(lambda x: _ConstantBackwardSquare()(x), [x])
    assert gradgradcheck(lambda x: x * x, [x])


def test_gradcheck_rejects_float32_and_no_grad_inputs():
    x32 = tinygan.tensor(np.ones((2, 2), np.float32), requires_grad=True)
    with pytest.raises(TypeError, match="input 0.*float32.*float64"):
        gradcheck(lambda x: x * 2.0, [x32])
    with pytest.raises(ValueError, match="no input requires grad"):
        gradcheck(lambda x: x * 2.0, [leaf(np.ones(2), "cpu", requires_grad=False)])


def test_numerical_grad_restores_the_input():
    a = np.random.default_rng(0).standard_normal((3, 4))
    x = leaf(a, "cpu")
    before = x._data
    g = numerical_grad(lambda: float((x.data ** 3).sum()), x)
    np.testing.assert_allclose(g, 3 * a ** 2, rtol=1e-6)
    assert x._data is before and np.array_equal(x.data, a)


def test_gradcheck_accepts_numpy_inputs_and_tuple_outputs():
    a = np.random.default_rng(1).standard_normal((2, 3))
    assert gradcheck(lambda x: (x.exp(), x.sum(axis=0)), [a])


# ---------------------------------------------------------------------------
# element-wise arithmetic with broadcasting
# ---------------------------------------------------------------------------

BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
}


@pytest.mark.parametrize("op", sorted(BINARY))
@settings(max_examples=examples(15))
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=4), seed=seeds)
def test_binary_broadcasting(device, op, shapes, seed):
    rng = np.random.default_rng(seed)
    sa, sb = shapes.input_shapes
    a = leaf(rng.standard_normal(sa), device)
    b = leaf(nonzero(rng, sb, lo=0.3) if op == "div" else rng.standard_normal(sb), device)
    fn = BINARY[op]
    gradcheck(fn, [a, b])
    gradgradcheck(fn, [a, b])


@pytest.mark.parametrize("expr", [
    "x + 1.5", "2.0 + x", "x - 0.5", "3.0 - x", "x * -2.5", "0.5 * x", "x / 3.0", "2.0 / x",
    "-x", "+x", "x ** 2", "x ** 3", "x.square()", "(x * x).sum() * x",
])
@settings(max_examples=examples(4))
@given(shape=small_shapes, seed=seeds)
def test_scalar_arithmetic(device, expr, shape, seed):
    rng = np.random.default_rng(seed)
    x = leaf(nonzero(rng, shape, lo=0.3), device)
    fn = eval(f"lambda x: {expr}")  # noqa: S307 - fixed expressions above
    gradcheck(fn, [x])
    gradgradcheck(fn, [x])


# ---------------------------------------------------------------------------
# element-wise functions
# ---------------------------------------------------------------------------

# name -> (fn, input generator).  Inputs avoid kinks and domain edges.
UNARY = {
    "exp": (lambda x: x.exp(), lambda r, s: r.uniform(-2, 2, s)),
    "log": (lambda x: x.log(), positive),
    "sqrt": (lambda x: x.sqrt(), positive),
    "abs": (lambda x: x.abs(), nonzero),
    "pow_half": (lambda x: x ** 0.5, positive),
    "pow_neg": (lambda x: x ** -1.5, positive),
    "pow_tensor_exponent": (lambda x: x ** (x * 0.5), positive),
    "rpow": (lambda x: 2.0 ** x, lambda r, s: r.uniform(-2, 2, s)),
    "tanh": (lambda x: x.tanh(), lambda r, s: r.uniform(-3, 3, s)),
    "F.tanh": (F.tanh, lambda r, s: r.uniform(-3, 3, s)),
    "sigmoid": (F.sigmoid, lambda r, s: r.uniform(-4, 4, s)),
    "relu": (F.relu, nonzero),
    "relu_method": (lambda x: x.relu(), nonzero),
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.2), nonzero),
    "leaky_relu_default": (F.leaky_relu, nonzero),
    "leaky_relu_steep": (lambda x: F.leaky_relu(x, 1.7), nonzero),
    "softplus": (F.softplus, lambda r, s: r.uniform(-5, 5, s)),
    "softplus_large": (F.softplus, lambda r, s: r.uniform(-40, 40, s)),
    "logsigmoid": (F.logsigmoid, lambda r, s: r.uniform(-5, 5, s)),
}

# Second order for the ones a critic (or its loss) uses; the rest have it too.
SECOND_ORDER_UNARY = set(UNARY) - {"softplus_large"}


@pytest.mark.parametrize("name", sorted(UNARY))
@settings(max_examples=examples(6))
@given(shape=small_shapes, seed=seeds)
def test_unary(device, name, shape, seed):
    fn, gen = UNARY[name]
    x = leaf(gen(np.random.default_rng(seed), shape), device)
    gradcheck(fn, [x])
    if name in SECOND_ORDER_UNARY:
        gradgradcheck(fn, [x])


@settings(max_examples=examples(10))
@given(shape=small_shapes, seed=seeds,
       lo=st.one_of(st.none(), st.floats(-1.0, -0.1)), hi=st.one_of(st.none(), st.floats(0.2, 1.0)))
def test_clip(device, shape, seed, lo, hi):
    rng = np.random.default_rng(seed)
    bounds = [b for b in (lo, hi) if b is not None]
    x = leaf(away_from(rng.uniform(-1.5, 1.5, shape), bounds, gap=0.01), device)
    gradcheck(lambda x: x.clip(lo, hi), [x])
    gradgradcheck(lambda x: x.clamp(min=lo, max=hi), [x])


@settings(max_examples=examples(12))
@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5), seed=seeds,
       data=st.data())
def test_log_softmax(device, shape, seed, data):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1), label="dim")
    x = leaf(np.random.default_rng(seed).uniform(-3, 3, shape), device)
    gradcheck(lambda x: F.log_softmax(x, dim=dim), [x])
    gradgradcheck(lambda x: F.log_softmax(x, dim=dim), [x])


# ---------------------------------------------------------------------------
# reductions
# ---------------------------------------------------------------------------

@st.composite
def shape_and_axis(draw, min_dims=1, max_dims=3):
    shape = draw(hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=1, max_side=4))
    nd = len(shape)
    axis = draw(st.one_of(
        st.none(),
        st.integers(-nd, nd - 1),
        st.lists(st.integers(0, nd - 1), min_size=1, max_size=nd, unique=True).map(tuple),
    ))
    keepdims = draw(st.booleans())
    return shape, axis, keepdims


def _count(shape, axis):
    if axis is None:
        return int(np.prod(shape))
    axes = axis if isinstance(axis, tuple) else (axis,)
    return int(np.prod([shape[a] for a in axes]))


@pytest.mark.parametrize("reduction", ["sum", "mean", "var", "var_biased", "max"])
@settings(max_examples=examples(12))
@given(case=shape_and_axis(), seed=seeds)
def test_reductions(device, reduction, case, seed):
    shape, axis, keepdims = case
    rng = np.random.default_rng(seed)
    if reduction == "max":
        # distinct values 0.1 apart: no ties within the finite-difference step
        x = leaf(rng.permutation(int(np.prod(shape))).reshape(shape) * 0.1 + rng.uniform(-0.01, 0.01), device)
        fn = lambda x: x.max(axis=axis, keepdims=keepdims)  # noqa: E731
    elif reduction.startswith("var"):
        unbiased = reduction == "var"
        if unbiased and _count(shape, axis) < 2:
            shape = shape[:-1] + (shape[-1] + 1,)  # need 2 values per variance for n - 1
            if _count(shape, axis) < 2:
                axis = None
        x = leaf(rng.standard_normal(shape), device)
        fn = lambda x: x.var(axis=axis, keepdims=keepdims, unbiased=unbiased)  # noqa: E731
    else:
        x = leaf(rng.standard_normal(shape), device)
        fn = lambda x: getattr(x, reduction)(axis=axis, keepdims=keepdims)  # noqa: E731
    gradcheck(fn, [x])
    gradgradcheck(fn, [x])


def test_max_shares_the_gradient_among_ties():
    x = leaf([[1.0, 3.0, 3.0], [2.0, 0.0, 2.0]], "cpu")
    (g,) = tinygan.grad(x.max(axis=1).sum(), x)
    np.testing.assert_array_equal(g.numpy(), [[0, 0.5, 0.5], [0.5, 0, 0.5]])
    (g,) = tinygan.grad(x.max(), x)
    np.testing.assert_array_equal(g.numpy(), [[0, 0.5, 0.5], [0, 0, 0]])


def test_dim_keyword_matches_axis():
    x = leaf(np.random.default_rng(0).standard_normal((2, 3, 4)), "cpu")
    for name in ("sum", "mean", "var"):
        np.testing.assert_array_equal(getattr(x, name)(dim=1).numpy(), getattr(x, name)(axis=1).numpy())
    np.testing.assert_array_equal(x.max(dim=1).values.numpy(), x.max(axis=1).numpy())   # torch: (values, indices)
    np.testing.assert_array_equal(x.amax(dim=1).numpy(), x.max(axis=1).numpy())
    gradcheck(lambda x: x.mean(dim=(0, 2), keepdims=True), [x])


# ---------------------------------------------------------------------------
# shapes: reshape, permute, getitem, cat, stack, expand
# ---------------------------------------------------------------------------

@st.composite
def shape_and_permutation(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=4))
    perm = draw(st.permutations(range(len(shape))))
    return shape, tuple(perm)


@settings(max_examples=examples(12))
@given(case=shape_and_permutation(), seed=seeds)
def test_reshape_and_permute(device, case, seed):
    shape, perm = case
    x = leaf(np.random.default_rng(seed).standard_normal(shape), device)
    n = int(np.prod(shape))
    fns = [
        lambda x: x.reshape(n),
        lambda x: x.reshape(-1, shape[-1]),
        lambda x: x.view(tuple(reversed(shape))) * 1.0,
        lambda x: x.permute(*perm),
        lambda x: x.permute(perm) * x.permute(perm),          # both uses feed back
        lambda x: x.transpose(0, -1),
        lambda x: x.T,
        lambda x: x.flatten(),
        lambda x: x.unsqueeze(0).unsqueeze(-1).squeeze(0),
        lambda x: x.squeeze(),
        lambda x: x.expand((3,) + shape),
    ]
    for fn in fns:
        gradcheck(fn, [x])
    gradgradcheck(lambda x: x.permute(perm).reshape(-1) * x.reshape(-1), [x])


INDICES = {
    "int": lambda s: 1,
    "negative_int": lambda s: -1,
    "slice": lambda s: slice(1, 3),
    "step": lambda s: slice(None, None, 2),
    "reverse": lambda s: slice(None, None, -1),
    "tuple": lambda s: (slice(0, 2), 1),
    "ellipsis": lambda s: (Ellipsis, 0),
    "newaxis": lambda s: (None, slice(1, None), None),
    "array_repeats": lambda s: np.array([0, 2, 2, 1, 0, 2]),
    "list_repeats": lambda s: [1, 1, 0],
    "array_2d": lambda s: np.array([[0, 1], [1, 1]]),
    "array_then_slice": lambda s: (np.array([2, 0, 2]), slice(1, 3)),
    "slice_then_array": lambda s: (slice(None), np.array([3, 3, 0])),
    "two_arrays": lambda s: (np.array([0, 2, 0]), slice(None), np.array([1, 1, 0])),
    "bool_mask": lambda s: np.random.default_rng(5).random(s) > 0.4,
}


@pytest.mark.parametrize("name", sorted(INDICES))
def test_getitem(device, name):
    shape = (3, 4, 2)
    x = leaf(np.random.default_rng(0).standard_normal(shape), device)
    index = INDICES[name](shape)
    xp = xp_for(device)
    if isinstance(index, np.ndarray):
        index = xp.asarray(index)
    elif isinstance(index, tuple):
        index = tuple(xp.asarray(i) if isinstance(i, np.ndarray) else i for i in index)
    fn = lambda x: x[index]  # noqa: E731
    assert fn(x).shape == x.numpy()[INDICES[name](shape)].shape
    gradcheck(fn, [x])
    gradgradcheck(lambda x: x[index] * x[index], [x])


@settings(max_examples=examples(12))
@given(rows=st.integers(1, 5), cols=st.integers(1, 3), k=st.integers(1, 10), seed=seeds)
def test_getitem_integer_array_repeats(device, rows, cols, k, seed):
    """Repeated indices must add their gradients (np.add.at, not assignment)."""
    rng = np.random.default_rng(seed)
    x = leaf(rng.standard_normal((rows, cols)), device)
    idx = xp_for(device).asarray(rng.integers(0, rows, size=k))
    gradcheck(lambda x: x[idx], [x])
    (g,) = tinygan.grad(x[idx].sum(), x)
    counts = np.bincount(tinygan.Tensor(idx).numpy(), minlength=rows)
    np.testing.assert_array_equal(g.numpy(), np.repeat(counts[:, None], cols, axis=1).astype(float))


@st.composite
def cat_case(draw):
    nd = draw(st.integers(1, 3))
    base = list(draw(hnp.array_shapes(min_dims=nd, max_dims=nd, min_side=1, max_side=3)))
    axis = draw(st.integers(-nd, nd - 1))
    sizes = draw(st.lists(st.integers(1, 3), min_size=1, max_size=3))
    shapes = []
    for s in sizes:
        shp = list(base)
        shp[axis] = s
        shapes.append(tuple(shp))
    return shapes, axis


@settings(max_examples=examples(12))
@given(case=cat_case(), seed=seeds)
def test_cat(device, case, seed):
    shapes, axis = case
    rng = np.random.default_rng(seed)
    xs = [leaf(rng.standard_normal(s), device) for s in shapes]
    fn = lambda *xs: tinygan.cat(list(xs), dim=axis)  # noqa: E731
    gradcheck(fn, xs)
    gradgradcheck(lambda *xs: fn(*xs) * fn(*xs), xs)


@settings(max_examples=examples(12))
@given(shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=3), n=st.integers(1, 3),
       seed=seeds, data=st.data())
def test_stack(device, shape, n, seed, data):
    axis = data.draw(st.integers(-len(shape) - 1, len(shape)), label="axis")
    rng = np.random.default_rng(seed)
    xs = [leaf(rng.standard_normal(shape), device) for _ in range(n)]
    fn = lambda *xs: tinygan.stack(list(xs), dim=axis)  # noqa: E731
    gradcheck(fn, xs)
    gradgradcheck(lambda *xs: fn(*xs) * fn(*xs), xs)


# ---------------------------------------------------------------------------
# matmul and linear
# ---------------------------------------------------------------------------

MATMUL_SHAPES = [((3, 4), (4, 2)), ((1, 1), (1, 1)), ((2, 3, 4), (2, 4, 5)), ((2, 3, 4), (4, 5)),
                 ((3, 4), (2, 4, 1)), ((2, 1, 2, 3), (4, 3, 2))]


@pytest.mark.parametrize("sa,sb", MATMUL_SHAPES)
def test_matmul(device, sa, sb):
    rng = np.random.default_rng(len(sa) * 10 + len(sb))
    a, b = leaf(rng.standard_normal(sa), device), leaf(rng.standard_normal(sb), device)
    gradcheck(lambda a, b: a @ b, [a, b])
    gradgradcheck(lambda a, b: a @ b, [a, b])


@settings(max_examples=examples(12))
@given(lead=hnp.array_shapes(min_dims=1, max_dims=2, min_side=1, max_side=3), fin=st.integers(1, 5),
       fout=st.integers(1, 4), bias=st.booleans(), seed=seeds)
def test_linear(device, lead, fin, fout, bias, seed):
    rng = np.random.default_rng(seed)
    x = leaf(rng.standard_normal(lead + (fin,)), device)
    w = leaf(rng.standard_normal((fout, fin)), device)
    b = leaf(rng.standard_normal(fout), device) if bias else None
    inputs = [x, w] + ([b] if bias else [])
    fn = lambda x, w, b=None: F.linear(x, w, b)  # noqa: E731
    gradcheck(fn, inputs)
    gradgradcheck(fn, inputs)


# ---------------------------------------------------------------------------
# convolutions
# ---------------------------------------------------------------------------

def _conv_inputs(case, device, transposed=False):
    rng = np.random.default_rng(case["seed"])
    x = leaf(rng.standard_normal((case["n"], case["c"], case["h"], case["w"])), device)
    wshape = (case["c"], case["o"]) if transposed else (case["o"], case["c"])
    w = leaf(rng.standard_normal(wshape + case["k"]), device)
    b = leaf(rng.standard_normal(case["o"]), device) if case["bias"] else None
    return x, w, b


@dcgan_examples(light_only=True)
@settings(max_examples=examples(15))
@given(case=conv_cases())
def test_conv2d(device, case):
    x, w, b = _conv_inputs(case, device)
    fn = lambda x, w, b=None: F.conv2d(x, w, b, stride=case["s"], padding=case["p"])  # noqa: E731
    gradcheck(fn, [x, w] + ([b] if b is not None else []))


@dcgan_examples(transposed=True, light_only=True)
@settings(max_examples=examples(15))
@given(case=conv_cases(transposed=True))
def test_conv_transpose2d(device, case):
    x, w, b = _conv_inputs(case, device, transposed=True)
    fn = lambda x, w, b=None: F.conv_transpose2d(  # noqa: E731
        x, w, b, stride=case["s"], padding=case["p"], output_padding=case["op"])
    gradcheck(fn, [x, w] + ([b] if b is not None else []))


@dcgan_examples(light_only=True)
@settings(max_examples=examples(15))
@given(case=conv_cases())
def test_conv2d_grad_weight(device, case):
    rng = np.random.default_rng(case["seed"])
    x = leaf(rng.standard_normal((case["n"], case["c"], case["h"], case["w"])), device)
    out_hw = [(hh + 2 * p - k) // s + 1 for hh, p, k, s in
              zip((case["h"], case["w"]), case["p"], case["k"], case["s"])]
    gy = leaf(rng.standard_normal((case["n"], case["o"], *out_hw)), device)
    fn = lambda x, gy: F.conv2d_grad_weight(x, gy, case["k"], stride=case["s"], padding=case["p"])  # noqa: E731
    assert fn(x, gy).shape == (case["o"], case["c"]) + case["k"]
    gradcheck(fn, [x, gy])


def test_conv2d_grad_weight_is_the_weight_gradient_of_conv2d():
    rng = np.random.default_rng(3)
    x = leaf(rng.standard_normal((2, 3, 7, 6)), "cpu")
    w = leaf(rng.standard_normal((4, 3, 3, 2)), "cpu")
    y = F.conv2d(x, w, stride=(2, 1), padding=(1, 2))
    gy = rng.standard_normal(y.shape)
    (gw,) = tinygan.grad(y, w, grad_outputs=tinygan.tensor(gy))
    direct = F.conv2d_grad_weight(x.detach(), tinygan.tensor(gy), (3, 2), stride=(2, 1), padding=(1, 2))
    np.testing.assert_allclose(direct.numpy(), gw.numpy(), rtol=1e-12, atol=1e-12)


# Second order: smaller cases (every evaluation of h runs a forward and a backward).
@dcgan_examples(light_only=True, max_hw=4)
@settings(max_examples=examples(10))
@given(case=conv_cases(max_batch=2, max_ch=3, max_k=3, extra=3))
def test_conv2d_second_order(device, case):
    x, w, b = _conv_inputs(case, device)
    fn = lambda x, w, b=None: F.conv2d(x, w, b, stride=case["s"], padding=case["p"])  # noqa: E731
    gradgradcheck(fn, [x, w] + ([b] if b is not None else []))


@dcgan_examples(transposed=True, light_only=True, max_hw=7)
@settings(max_examples=examples(10))
@given(case=conv_cases(max_batch=2, max_ch=3, max_k=3, extra=2, transposed=True))
def test_conv_transpose2d_second_order(device, case):
    x, w, b = _conv_inputs(case, device, transposed=True)
    fn = lambda x, w, b=None: F.conv_transpose2d(  # noqa: E731
        x, w, b, stride=case["s"], padding=case["p"], output_padding=case["op"])
    gradgradcheck(fn, [x, w] + ([b] if b is not None else []))


@dcgan_examples(light_only=True, max_hw=4)
@settings(max_examples=examples(10))
@given(case=conv_cases(max_batch=2, max_ch=3, max_k=3, extra=3))
def test_conv2d_grad_weight_second_order(device, case):
    rng = np.random.default_rng(case["seed"])
    x = leaf(rng.standard_normal((case["n"], case["c"], case["h"], case["w"])), device)
    out_hw = [(hh + 2 * p - k) // s + 1 for hh, p, k, s in
              zip((case["h"], case["w"]), case["p"], case["k"], case["s"])]
    gy = leaf(rng.standard_normal((case["n"], case["o"], *out_hw)), device)
    fn = lambda x, gy: F.conv2d_grad_weight(x, gy, case["k"], stride=case["s"], padding=case["p"])  # noqa: E731
    gradgradcheck(fn, [x, gy])


# ---------------------------------------------------------------------------
# normalisation
# ---------------------------------------------------------------------------

@st.composite
def bn_cases(draw, max_n=4):
    four_d = draw(st.booleans())
    n = draw(st.integers(2 if not four_d else 1, max_n))
    c = draw(st.integers(1, 3))
    spatial = (draw(st.integers(1, 3)), draw(st.integers(2, 3))) if four_d else ()
    affine = draw(st.booleans())
    return (n, c) + spatial, affine, draw(seeds)


def _bn_inputs(case, device):
    shape, affine, seed = case
    rng = np.random.default_rng(seed)
    x = leaf(rng.standard_normal(shape) * 2 + 0.5, device)
    if not affine:
        return [x]
    return [x, leaf(rng.uniform(0.5, 1.5, shape[1]), device), leaf(rng.standard_normal(shape[1]), device)]


def _bn_train(x, weight=None, bias=None):
    # running statistics None: training statistics, nothing updated in place
    return F.batch_norm(x, None, None, weight, bias, training=True)


@settings(max_examples=examples(12), suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=bn_cases())
def test_batch_norm_train_plain_backward(device, case, kernel_path):
    """First order through the array kernel (kernels.batchnorm.batch_norm_backward)."""
    gradcheck(_bn_train, _bn_inputs(case, device))


@settings(max_examples=examples(12), suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=bn_cases())
def test_batch_norm_train_differentiable_backward(device, case, kernel_path):
    """The create_graph backward path: its values equal the kernel's and finite differences,
    and differentiating it again matches finite differences of it (gradgradcheck)."""
    inputs = _bn_inputs(case, device)
    y = _bn_train(*inputs)
    r = tinygan.tensor(np.random.default_rng(0).standard_normal(y.shape), device=device)
    plain = tinygan.grad((y * r).sum(), inputs)
    y = _bn_train(*inputs)
    graph = tinygan.grad((y * r).sum(), inputs, create_graph=True)
    assert all(g.requires_grad for g in graph[:1])  # recorded: the differentiable path ran
    for i, (p, g) in enumerate(zip(plain, graph)):
        np.testing.assert_allclose(g.numpy(), p.numpy(), rtol=1e-9, atol=1e-10, err_msg=f"input {i}")
        fd = numerical_grad(lambda: float((_bn_train(*inputs).detach() * r).sum().item()), inputs[i])
        np.testing.assert_allclose(g.numpy(), fd, rtol=1e-4, atol=1e-5, err_msg=f"input {i}")

    # gradcheck of a create_graph quantity: the gradient, as a function of the inputs.
    def dx_of(*inputs):
        y = _bn_train(*inputs)
        return tinygan.grad((y * r).sum(), list(inputs), create_graph=True)

    gradcheck(dx_of, inputs)
    gradgradcheck(_bn_train, inputs)


@settings(max_examples=examples(12))
@given(case=bn_cases())
def test_batch_norm_eval(device, case):
    inputs = _bn_inputs(case, device)
    c = inputs[0].shape[1]
    rng = np.random.default_rng(case[2] + 1)
    xp = xp_for(device)
    rm, rv = xp.asarray(rng.standard_normal(c)), xp.asarray(rng.uniform(0.5, 2.0, c))
    rm0, rv0 = rm.copy(), rv.copy()

    def fn(x, weight=None, bias=None):
        return F.batch_norm(x, rm, rv, weight, bias, training=False)

    gradcheck(fn, inputs)
    gradgradcheck(fn, inputs)
    assert (rm == rm0).all() and (rv == rv0).all()  # evaluation never updates the statistics


@settings(max_examples=examples(12))
@given(lead=hnp.array_shapes(min_dims=1, max_dims=2, min_side=1, max_side=3),
       norm=hnp.array_shapes(min_dims=1, max_dims=2, min_side=2, max_side=4), affine=st.booleans(), seed=seeds)
def test_layer_norm(device, lead, norm, affine, seed):
    rng = np.random.default_rng(seed)
    x = leaf(rng.standard_normal(lead + norm) * 2 + 1, device)
    inputs = [x] + ([leaf(rng.uniform(0.5, 1.5, norm), device), leaf(rng.standard_normal(norm), device)]
                    if affine else [])
    fn = lambda x, w=None, b=None: F.layer_norm(x, norm, w, b)  # noqa: E731
    gradcheck(fn, inputs)
    gradgradcheck(fn, inputs)


# ---------------------------------------------------------------------------
# embedding and losses
# ---------------------------------------------------------------------------

@settings(max_examples=examples(12))
@given(num=st.integers(1, 5), dim=st.integers(1, 4),
       idx_shape=hnp.array_shapes(min_dims=1, max_dims=2, min_side=1, max_side=5), seed=seeds)
def test_embedding(device, num, dim, idx_shape, seed):
    rng = np.random.default_rng(seed)
    weight = leaf(rng.standard_normal((num, dim)), device)
    idx = xp_for(device).asarray(rng.integers(0, num, size=idx_shape))  # repeats are likely
    fn = lambda w: F.embedding(idx, w)  # noqa: E731
    assert fn(weight).shape == idx_shape + (dim,)
    gradcheck(fn, [weight])
    gradgradcheck(lambda w: F.embedding(idx, w) * F.embedding(idx, w), [weight])


REDUCTIONS = ["mean", "sum", "none"]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@settings(max_examples=examples(8))
@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4), seed=seeds)
def test_binary_cross_entropy(device, reduction, shape, seed):
    rng = np.random.default_rng(seed)
    p = leaf(rng.uniform(0.05, 0.95, shape), device)
    t = leaf(rng.uniform(0, 1, shape), device)
    fn = lambda p, t: F.binary_cross_entropy(p, t, reduction=reduction)  # noqa: E731
    gradcheck(fn, [p, t])
    gradgradcheck(fn, [p, t])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@settings(max_examples=examples(8))
@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4), seed=seeds)
def test_binary_cross_entropy_with_logits(device, reduction, shape, seed):
    rng = np.random.default_rng(seed)
    x = leaf(rng.uniform(-6, 6, shape), device)
    t = leaf(rng.uniform(0, 1, shape), device)
    fn = lambda x, t: F.binary_cross_entropy_with_logits(x, t, reduction=reduction)  # noqa: E731
    gradcheck(fn, [x, t])
    gradgradcheck(fn, [x, t])
    # constant targets given as a NumPy array (labels): only the logits are differentiated
    gradcheck(lambda x: F.binary_cross_entropy_with_logits(x, t.numpy(), reduction=reduction), [x])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@settings(max_examples=examples(8))
@given(n=st.integers(1, 5), k=st.integers(1, 5), seed=seeds)
def test_cross_entropy(device, reduction, n, k, seed):
    rng = np.random.default_rng(seed)
    logits = leaf(rng.uniform(-3, 3, (n, k)), device)
    target = xp_for(device).asarray(rng.integers(0, k, n))
    fn = lambda z: F.cross_entropy(z, target, reduction=reduction)  # noqa: E731
    gradcheck(fn, [logits])
    gradgradcheck(fn, [logits])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@settings(max_examples=examples(8))
@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4), seed=seeds)
def test_mse_loss(device, reduction, shape, seed):
    rng = np.random.default_rng(seed)
    x, t = leaf(rng.standard_normal(shape), device), leaf(rng.standard_normal(shape), device)
    fn = lambda x, t: F.mse_loss(x, t, reduction=reduction)  # noqa: E731
    gradcheck(fn, [x, t])
    gradgradcheck(fn, [x, t])


# ---------------------------------------------------------------------------
# a small critic, end to end, to second order (the WGAN-GP penalty's path)
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("activation", ["leaky_relu", "relu", "tanh", "softplus"])
def test_critic_second_order(device, activation):
    rng = np.random.default_rng(11)
    act = {"leaky_relu": lambda t: F.leaky_relu(t, 0.2), "relu": F.relu, "tanh": F.tanh,
           "softplus": F.softplus}[activation]
    x = leaf(rng.standard_normal((2, 1, 6, 5)), device)
    w1 = leaf(rng.standard_normal((3, 1, 3, 3)) * 0.5, device)
    b1 = leaf(rng.standard_normal(3) * 0.1, device)
    w2 = leaf(rng.standard_normal((2, 3, 2, 2)) * 0.5, device)
    g2, s2 = leaf(rng.uniform(0.5, 1.5, (2, 1, 1)), device), leaf(rng.standard_normal((2, 1, 1)), device)
    wl = leaf(rng.standard_normal((1, 2 * 1 * 2)), device)

    def critic(x, w1, b1, w2, g2, s2, wl):
        h = act(F.conv2d(x, w1, b1, stride=2, padding=1))               # (2, 3, 3, 3)
        h = F.layer_norm(F.conv2d(h, w2, stride=2), (2, 1, 1), None, None) * g2 + s2  # (2, 2, 1, 1)
        h = act(F.conv_transpose2d(h, w2, stride=1))        # tied weight: (2, 3, 2, 2)
        h = F.conv2d(h, w2)                                              # (2, 2, 1, 1)
        flat = h.reshape(h.shape[0], -1)                                 # (2, 2)
        return F.linear(tinygan.cat([flat, flat * 0.5], dim=1), wl)      # (2, 1)

    inputs = [x, w1, b1, w2, g2, s2, wl]
    gradcheck(critic, inputs)
    gradgradcheck(critic, inputs)
