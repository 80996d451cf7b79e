"""Parity with PyTorch: forward values and gradients of every op and layer, batch norm's
running statistics, optimizer trajectories, a WGAN-GP double backward and state_dict loading.

Error measure (scale-aware relative error), for a tinygan result ``a`` and the
PyTorch result ``b``::

    err(a, b) = max |a - b| / max(1, max |b|)

i.e. an absolute error for values of order one or less and a relative error
for large ones.  Bounds: ``1e-10`` in float64, ``1e-5`` in float32.  Dtypes
must agree too (a float32 op gives float32 values and float32 gradients).
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygan
import tinygan.functional as F
from conftest import conv_cases, dcgan_examples, examples, require_torch
from tinygan import nn, optim
from tinygan.backend import xp_for

torch = require_torch()   # fails without PyTorch unless TINYGAN_ALLOW_NO_TORCH=1 (conftest.py)
TF = torch.nn.functional

torch.set_num_threads(1)  # deterministic reductions; the tests are tiny anyway

TOL = {np.float64: 1e-10, np.float32: 1e-5}
DTYPES = [pytest.param(np.float64, id="float64"), pytest.param(np.float32, id="float32")]
TORCH_DTYPE = {np.float64: torch.float64, np.float32: torch.float32}


def err(a, b) -> float:
    """max |a - b| / max(1, max |b|) (see the module docstring)."""
    a = np.asarray(a.numpy() if hasattr(a, "numpy") and not isinstance(a, np.ndarray) else a, dtype=np.float64)
    if isinstance(b, torch.Tensor):
        b = b.detach().cpu().numpy()
    b = np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, f"shape {a.shape} != torch's {b.shape}"
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b)) / max(1.0, float(np.max(np.abs(b)))))


def assert_close(a, b, dtype, what=""):
    e = err(a, b)
    assert e <= TOL[dtype], f"{what}: error {e:.3e} > {TOL[dtype]:g} ({np.dtype(dtype).name})"


def _tg_np(t):
    return t.numpy() if isinstance(t, tinygan.Tensor) else np.asarray(t)


def run_parity(tg_fn, th_fn, arrays, dtype, device, grad=None, seed=0, what="op"):
    """Compare ``tg_fn(*tensors)`` with ``th_fn(*torch_tensors)`` and the gradients of both.

    ``arrays``: NumPy inputs (float ones cast to ``dtype``); ``grad[i]`` says
    whether input i is differentiated (default: every float input).
    """
    arrays = [a.astype(dtype) if a.dtype.kind == "f" else a for a in arrays]
    grad = [a.dtype.kind == "f" for a in arrays] if grad is None else grad
    tg_in = [tinygan.tensor(a, requires_grad=g, device=device) for a, g in zip(arrays, grad)]
    th_in = [torch.tensor(a, requires_grad=g) for a, g in zip(arrays, grad)]
    y = tg_fn(*tg_in)
    ref = th_fn(*th_in)
    assert y.dtype == dtype, f"{what}: output dtype {y.dtype}, inputs {np.dtype(dtype).name}"
    assert_close(y, ref, dtype, f"{what} forward")
    wrt = [i for i, g in enumerate(grad) if g]
    if not wrt:
        return
    gy = np.random.default_rng(seed).standard_normal(y.shape).astype(dtype)
    g_tg = tinygan.grad(y, [tg_in[i] for i in wrt], grad_outputs=tinygan.tensor(gy, device=device),
                        allow_unused=True)
    g_th = torch.autograd.grad(ref, [th_in[i] for i in wrt], grad_outputs=torch.tensor(gy), allow_unused=True)
    for i, a, b in zip(wrt, g_tg, g_th):
        a_np = np.zeros(arrays[i].shape) if a is None else a.numpy()
        b_np = np.zeros(arrays[i].shape) if b is None else b.numpy()
        if a is not None:
            assert a.dtype == dtype, f"{what}: gradient of input {i} has dtype {a.dtype}"
        assert_close(a_np, b_np, dtype, f"{what} gradient of input {i}")


# ---------------------------------------------------------------------------
# element-wise ops
# ---------------------------------------------------------------------------

def _with_specials(rng, shape, specials):
    """Random values with some entries replaced by exact special values (kinks, bounds)."""
    a = rng.uniform(-2, 2, shape)
    if a.size:
        flat = a.reshape(-1)
        k = rng.integers(0, flat.size, size=min(flat.size, 3))
        flat[k] = rng.choice(specials, size=k.size)
    return a


UNARY = {
    # name: (tinygan, torch, input generator); kinks are *included* here (no finite differences)
    "neg": (lambda x: -x, lambda x: -x, None),
    "exp": (lambda x: x.exp(), torch.exp, None),
    "log": (lambda x: x.log(), torch.log, "positive"),
    "sqrt": (lambda x: x.sqrt(), torch.sqrt, "positive"),
    "abs": (lambda x: x.abs(), torch.abs, [0.0]),
    "square": (lambda x: x.square(), torch.square, None),
    "pow2": (lambda x: x ** 2, lambda x: x ** 2, None),
    "pow3": (lambda x: x ** 3, lambda x: x ** 3, None),
    "pow_half": (lambda x: x ** 0.5, lambda x: x ** 0.5, "positive"),
    "pow_neg": (lambda x: x ** -1.5, lambda x: x ** -1.5, "positive"),
    "rpow": (lambda x: 2.0 ** x, lambda x: 2.0 ** x, None),
    "clip": (lambda x: x.clip(-0.5, 1.0), lambda x: torch.clamp(x, -0.5, 1.0), [-0.5, 1.0]),
    "clip_min": (lambda x: x.clamp(min=0.25), lambda x: torch.clamp(x, min=0.25), [0.25]),
    "clip_max": (lambda x: x.clamp(max=-0.25), lambda x: torch.clamp(x, max=-0.25), [-0.25]),
    "tanh": (F.tanh, torch.tanh, None),
    "sigmoid": (F.sigmoid, torch.sigmoid, None),
    "sigmoid_method": (lambda x: x.sigmoid(), torch.sigmoid, None),
    "relu": (F.relu, TF.relu, [0.0]),
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.2), lambda x: TF.leaky_relu(x, 0.2), [0.0]),
    "leaky_relu_default": (F.leaky_relu, TF.leaky_relu, [0.0]),
    "softplus": (F.softplus, TF.softplus, None),
    "logsigmoid": (F.logsigmoid, TF.logsigmoid, None),
    "scalar_ops": (lambda x: (3.0 - x) * 0.5 / 2.0 + 1.0 - 2.0 / (x * x + 1.0),
                   lambda x: (3.0 - x) * 0.5 / 2.0 + 1.0 - 2.0 / (x * x + 1.0), None),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(UNARY))
@settings(max_examples=examples(5))
@given(shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=5), seed=st.integers(0, 2**32 - 1),
       scale=st.sampled_from([1.0, 10.0]))
def test_unary(device, name, dtype, shape, seed, scale):
    tg_fn, th_fn, gen = UNARY[name]
    rng = np.random.default_rng(seed)
    if gen == "positive":
        a = rng.uniform(0.1, 3.0, shape)
    elif isinstance(gen, list):
        a = _with_specials(rng, shape, gen)
    else:
        a = rng.uniform(-2, 2, shape) * (scale if name in ("tanh", "sigmoid", "softplus", "logsigmoid") else 1)
    run_parity(tg_fn, th_fn, [np.asarray(a)], dtype, device, seed=seed, what=name)


BINARY = {
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b, "pow": lambda a, b: a ** b,
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(BINARY))
@settings(max_examples=examples(8))
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=4),
       seed=st.integers(0, 2**32 - 1))
def test_binary(device, name, dtype, shapes, seed):
    rng = np.random.default_rng(seed)
    sa, sb = shapes.input_shapes
    a = rng.uniform(0.2, 2.0, sa) if name == "pow" else rng.standard_normal(sa)
    b = rng.choice([-1, 1], sb) * rng.uniform(0.3, 2.0, sb) if name == "div" else rng.uniform(-1.5, 1.5, sb)
    fn = BINARY[name]
    run_parity(fn, fn, [np.asarray(a), np.asarray(b)], dtype, device, seed=seed, what=name)


# ---------------------------------------------------------------------------
# reductions and shapes
# ---------------------------------------------------------------------------

@st.composite
def shape_and_axis(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    nd = len(shape)
    axis = draw(st.one_of(st.none(), st.integers(-nd, nd - 1),
                          st.lists(st.integers(0, nd - 1), min_size=1, max_size=nd, unique=True).map(tuple)))
    return shape, axis, draw(st.booleans())


def _torch_dims(axis, nd):
    if axis is None:
        return tuple(range(nd))
    return axis if isinstance(axis, tuple) else (axis,)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["sum", "mean", "var", "var_biased", "max", "max_ties", "log_softmax"])
@settings(max_examples=examples(10))
@given(case=shape_and_axis(), seed=st.integers(0, 2**32 - 1))
def test_reductions(device, name, dtype, case, seed):
    shape, axis, keepdims = case
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(shape)
    dims = _torch_dims(axis, len(shape))
    if name == "max_ties":
        a = np.round(a)  # many ties: the gradient is shared equally, as torch.amax does
    if name.startswith("var"):
        corr = 1 if name == "var" else 0
        if int(np.prod([shape[d] for d in dims])) <= corr:
            return  # torch gives nan/inf with n - 1 = 0
        tg_fn = lambda x: x.var(axis=axis, keepdims=keepdims, unbiased=bool(corr))  # noqa: E731
        th_fn = lambda x: torch.var(x, dim=dims, correction=corr, keepdim=keepdims)  # noqa: E731
    elif name.startswith("max"):
        tg_fn = lambda x: x.max(axis=axis, keepdims=keepdims)  # noqa: E731
        th_fn = lambda x: torch.amax(x, dim=dims, keepdim=keepdims)  # noqa: E731
    elif name == "log_softmax":
        dim = dims[0]
        tg_fn, th_fn = (lambda x: F.log_softmax(x, dim=dim)), (lambda x: TF.log_softmax(x, dim=dim))
    else:
        tg_fn = lambda x: getattr(x, name)(axis=axis, keepdims=keepdims)  # noqa: E731
        th_fn = lambda x: getattr(torch, name)(x, dim=dims, keepdim=keepdims)  # noqa: E731
    run_parity(tg_fn, th_fn, [a], dtype, device, seed=seed, what=name)


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=examples(10))
@given(shape=hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=4), data=st.data())
def test_shape_ops(device, dtype, shape, data):
    perm = tuple(data.draw(st.permutations(range(len(shape))), label="perm"))
    a = np.random.default_rng(len(shape)).standard_normal(shape)
    n = int(np.prod(shape))
    cases = {
        "reshape": (lambda x: x.reshape(n, 1) * 2.0, lambda x: x.reshape(n, 1) * 2.0),
        "permute": (lambda x: x.permute(perm), lambda x: x.permute(perm)),
        "transpose": (lambda x: x.transpose(0, -1), lambda x: x.transpose(0, -1)),
        "flatten": (lambda x: x.flatten(), lambda x: x.flatten()),
        "unsqueeze": (lambda x: x.unsqueeze(1), lambda x: x.unsqueeze(1)),
        "squeeze": (lambda x: x.squeeze(), lambda x: x.squeeze()),
        "expand": (lambda x: x.expand((2,) + shape), lambda x: x.expand((2,) + shape)),
    }
    for name, (tg_fn, th_fn) in cases.items():
        run_parity(tg_fn, th_fn, [a], dtype, device, what=name)


def test_unbiased_var_of_one_value_is_nan_like_torch():
    """Regression: n - 1 = 0 raised a bare ZeroDivisionError."""
    a = np.array([[1.5], [2.0]])
    x = tinygan.tensor(a, requires_grad=True)
    with pytest.warns(UserWarning):   # torch warns about the degrees of freedom
        ref = torch.tensor(a).var(dim=1).numpy()
    np.testing.assert_array_equal(x.var(axis=1).numpy(), ref)      # [nan, nan]
    assert np.isnan(ref).all()
    np.testing.assert_array_equal(x.var(axis=1, unbiased=False).numpy(), [0.0, 0.0])


GETITEM = {
    "slices": lambda s: (slice(1, None), slice(None, None, 2)),
    "int_and_ellipsis": lambda s: (Ellipsis, -1),
    "newaxis": lambda s: (None, 0),
    "array_repeats": lambda s: np.array([2, 0, 2, 2]),
    "array_2d": lambda s: np.array([[1, 1], [0, 2]]),
    "array_pair": lambda s: (np.array([0, 2, 2]), slice(None), np.array([1, 0, 1])),
    "bool_mask": lambda s: np.random.default_rng(1).random(s) > 0.5,
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(GETITEM))
def test_getitem(device, dtype, name):
    shape = (3, 4, 2)
    a = np.random.default_rng(0).standard_normal(shape)
    index = GETITEM[name](shape)
    xp = xp_for(device)

    def conv(i, mod):
        return mod(i) if isinstance(i, np.ndarray) else i

    tg_index = tuple(conv(i, xp.asarray) for i in index) if isinstance(index, tuple) else conv(index, xp.asarray)
    th_index = tuple(conv(i, torch.as_tensor) for i in index) if isinstance(index, tuple) \
        else conv(index, torch.as_tensor)
    run_parity(lambda x: x[tg_index], lambda x: x[th_index], [a], dtype, device, what=f"getitem {name}")


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=examples(10))
@given(base=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=3),
       sizes=st.lists(st.integers(1, 3), min_size=1, max_size=3), data=st.data())
def test_cat_and_stack(device, dtype, base, sizes, data):
    axis = data.draw(st.integers(-len(base), len(base) - 1), label="axis")
    rng = np.random.default_rng(len(sizes))
    shapes = [tuple(s if d != axis % len(base) else k for d, s in enumerate(base)) for k in sizes]
    arrays = [rng.standard_normal(s) for s in shapes]
    run_parity(lambda *xs: tinygan.cat(list(xs), dim=axis), lambda *xs: torch.cat(xs, dim=axis),
               arrays, dtype, device, what="cat")
    same = [rng.standard_normal(base) for _ in sizes]
    run_parity(lambda *xs: tinygan.stack(list(xs), dim=axis), lambda *xs: torch.stack(xs, dim=axis),
               same, dtype, device, what="stack")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sa,sb", [((3, 4), (4, 2)), ((2, 3, 4), (2, 4, 5)), ((2, 3, 4), (4, 5)),
                                   ((3, 4), (2, 4, 1)), ((2, 1, 2, 3), (4, 3, 2))])
def test_matmul(device, dtype, sa, sb):
    rng = np.random.default_rng(0)
    run_parity(lambda a, b: a @ b, torch.matmul, [rng.standard_normal(sa), rng.standard_normal(sb)],
               dtype, device, what="matmul")


# ---------------------------------------------------------------------------
# neural-network ops
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=examples(10))
@given(lead=hnp.array_shapes(min_dims=1, max_dims=2, min_side=1, max_side=4), fin=st.integers(1, 6),
       fout=st.integers(1, 5), bias=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_linear(device, dtype, lead, fin, fout, bias, seed):
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(lead + (fin,)), rng.standard_normal((fout, fin))]
    if bias:
        arrays.append(rng.standard_normal(fout))
    run_parity(F.linear, TF.linear, arrays, dtype, device, seed=seed, what="linear")


def _conv_arrays(case, transposed=False):
    rng = np.random.default_rng(case["seed"])
    x = rng.standard_normal((case["n"], case["c"], case["h"], case["w"]))
    w = rng.standard_normal(((case["c"], case["o"]) if transposed else (case["o"], case["c"])) + case["k"])
    return [x, w] + ([rng.standard_normal(case["o"])] if case["bias"] else [])


@pytest.mark.parametrize("dtype", DTYPES)
@dcgan_examples()
@settings(max_examples=examples(15))
@given(case=conv_cases())
def test_conv2d(device, dtype, case):
    s, p = case["s"], case["p"]
    run_parity(lambda x, w, b=None: F.conv2d(x, w, b, stride=s, padding=p),
               lambda x, w, b=None: TF.conv2d(x, w, b, stride=s, padding=p),
               _conv_arrays(case), dtype, device, seed=case["seed"], what="conv2d")


@pytest.mark.parametrize("dtype", DTYPES)
@dcgan_examples(transposed=True)
@settings(max_examples=examples(15))
@given(case=conv_cases(transposed=True))
def test_conv_transpose2d(device, dtype, case):
    s, p, op = case["s"], case["p"], case["op"]
    run_parity(lambda x, w, b=None: F.conv_transpose2d(x, w, b, stride=s, padding=p, output_padding=op),
               lambda x, w, b=None: TF.conv_transpose2d(x, w, b, stride=s, padding=p, output_padding=op),
               _conv_arrays(case, transposed=True), dtype, device, seed=case["seed"], what="conv_transpose2d")


@pytest.mark.parametrize("dtype", DTYPES)
@dcgan_examples()
@settings(max_examples=examples(10))
@given(case=conv_cases())
def test_conv2d_grad_weight(device, dtype, case):
    s, p, k = case["s"], case["p"], case["k"]
    rng = np.random.default_rng(case["seed"])
    x = rng.standard_normal((case["n"], case["c"], case["h"], case["w"]))
    out_hw = tuple((hh + 2 * pp - kk) // ss + 1 for hh, pp, kk, ss in zip(x.shape[2:], p, k, s))
    gy = rng.standard_normal((case["n"], case["o"]) + out_hw)
    wshape = (case["o"], case["c"]) + k
    run_parity(lambda x, gy: F.conv2d_grad_weight(x, gy, k, stride=s, padding=p),
               lambda x, gy: torch.nn.grad.conv2d_weight(x, wshape, gy, stride=s, padding=p),
               [x, gy], dtype, device, seed=case["seed"], what="conv2d_grad_weight")


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=examples(10))
@given(four_d=st.booleans(), n=st.integers(2, 4), c=st.integers(1, 4), affine=st.booleans(),
       training=st.booleans(), momentum=st.sampled_from([0.1, 0.5, 1.0]), seed=st.integers(0, 2**32 - 1))
def test_batch_norm_functional(device, dtype, four_d, n, c, affine, training, momentum, seed):
    """Output, gradients, and the in-place update of the running statistics."""
    rng = np.random.default_rng(seed)
    shape = (n, c, 3, 2) if four_d else (n, c)
    # a spread along the batch keeps each channel's variance well away from 0 (with two
    # near-equal values 1/sqrt(var + eps) would amplify float32 rounding; see test_layer_norm)
    spread = np.linspace(-2.0, 2.0, n).reshape((n,) + (1,) * (len(shape) - 1))
    arrays = [rng.permuted(np.broadcast_to(spread, shape), axis=0) + rng.standard_normal(shape) * 0.5 + 1]
    if affine:
        arrays += [rng.uniform(0.5, 1.5, c), rng.standard_normal(c)]
    rm, rv = rng.standard_normal(c).astype(dtype), rng.uniform(0.5, 2, c).astype(dtype)
    tg_rm, tg_rv = xp_for(device).asarray(rm.copy()), xp_for(device).asarray(rv.copy())
    th_rm, th_rv = torch.tensor(rm.copy()), torch.tensor(rv.copy())
    run_parity(lambda x, w=None, b=None: F.batch_norm(x, tg_rm, tg_rv, w, b, training=training, momentum=momentum),
               lambda x, w=None, b=None: TF.batch_norm(x, th_rm, th_rv, w, b, training=training, momentum=momentum),
               arrays, dtype, device, seed=seed, what="batch_norm")
    assert_close(tinygan.Tensor(tg_rm).numpy(), th_rm, dtype, "running_mean")
    assert_close(tinygan.Tensor(tg_rv).numpy(), th_rv, dtype, "running_var")


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=examples(10))
@given(lead=hnp.array_shapes(min_dims=1, max_dims=2, min_side=1, max_side=3),
       # at least 2 normalised values: over one value the output is the bias whatever x is,
       # and torch's float32 input gradient is rounding noise times 1/sqrt(eps) ~ 316
       # (see test_layer_norm_of_one_value below)
       norm=hnp.array_shapes(min_dims=1, max_dims=2, min_side=1, max_side=4).filter(lambda s: np.prod(s) >= 2),
       affine=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_layer_norm(device, dtype, lead, norm, affine, seed):
    rng = np.random.default_rng(seed)
    # A fixed spread within each normalised group keeps the variance away from 0: there
    # 1/sqrt(var + eps) amplifies float32 rounding, and torch's float32 gradient (not
    # tinygan's) drifts 2e-5 from the float64 truth for two values 0.09 apart.
    spread = np.linspace(-2.0, 2.0, int(np.prod(norm))).reshape(norm)
    arrays = [rng.permuted(np.broadcast_to(spread, lead + norm), axis=-1) + rng.standard_normal(lead + norm) * 0.3 + 1]
    if affine:
        arrays += [rng.uniform(0.5, 1.5, norm), rng.standard_normal(norm)]
    run_parity(lambda x, w=None, b=None: F.layer_norm(x, norm, w, b),
               lambda x, w=None, b=None: TF.layer_norm(x, norm, w, b), arrays, dtype, device, seed=seed,
               what="layer_norm")


@pytest.mark.parametrize("dtype", DTYPES)
def test_layer_norm_of_one_value(device, dtype):
    """y = bias whatever x is: forward as torch, and an input gradient of exactly zero."""
    x = tinygan.tensor(np.array([[2.5], [-1.0]], dtype), requires_grad=True, device=device)
    w = tinygan.tensor(np.array([1.3], dtype), device=device)
    b = tinygan.tensor(np.array([0.7], dtype), device=device)
    y = F.layer_norm(x, (1,), w, b)
    np.testing.assert_array_equal(y.numpy(), np.full((2, 1), 0.7, dtype))
    y.backward(tinygan.tensor(np.array([[1.0], [-2.0]], dtype), device=device))
    np.testing.assert_array_equal(x.grad.numpy(), [[0.0], [0.0]])


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=examples(8))
@given(num=st.integers(1, 6), dim=st.integers(1, 4),
       idx_shape=hnp.array_shapes(min_dims=1, max_dims=2, min_side=1, max_side=5), seed=st.integers(0, 2**32 - 1))
def test_embedding(device, dtype, num, dim, idx_shape, seed):
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, num, size=idx_shape)
    run_parity(lambda i, w: F.embedding(i, w), lambda i, w: TF.embedding(i, w),
               [idx, rng.standard_normal((num, dim))], dtype, device, grad=[False, True], seed=seed,
               what="embedding")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@settings(max_examples=examples(6))
@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4), seed=st.integers(0, 2**32 - 1))
def test_losses(device, dtype, reduction, shape, seed):
    rng = np.random.default_rng(seed)
    p, t = rng.uniform(0.02, 0.98, shape), rng.uniform(0, 1, shape)
    t_hard = rng.integers(0, 2, shape).astype(np.float64)
    logits = rng.uniform(-8, 8, shape)
    r = reduction
    run_parity(lambda p, t: F.binary_cross_entropy(p, t, reduction=r),
               lambda p, t: TF.binary_cross_entropy(p, t, reduction=r), [p, t], dtype, device,
               grad=[True, False], seed=seed, what="binary_cross_entropy")
    run_parity(lambda p, t: F.binary_cross_entropy(p, t, reduction=r),
               lambda p, t: TF.binary_cross_entropy(p, t, reduction=r), [p, t_hard], dtype, device,
               grad=[True, False], seed=seed, what="binary_cross_entropy hard labels")
    run_parity(lambda x, t: F.binary_cross_entropy_with_logits(x, t, reduction=r),
               lambda x, t: TF.binary_cross_entropy_with_logits(x, t, reduction=r), [logits, t], dtype, device,
               seed=seed, what="binary_cross_entropy_with_logits")
    run_parity(lambda x, t: F.mse_loss(x, t, reduction=r), lambda x, t: TF.mse_loss(x, t, reduction=r),
               [rng.standard_normal(shape), rng.standard_normal(shape)], dtype, device, seed=seed, what="mse_loss")
    n, k = shape[0], shape[-1]
    target = rng.integers(0, k, n)
    run_parity(lambda z, t: F.cross_entropy(z, t, reduction=r), lambda z, t: TF.cross_entropy(z, t, reduction=r),
               [rng.uniform(-4, 4, (n, k)), target], dtype, device, grad=[True, False], seed=seed,
               what="cross_entropy")


def test_binary_cross_entropy_clamps_log_like_torch():
    p = np.array([0.0, 1.0, 0.5, 1e-50])
    t = np.array([1.0, 0.0, 1.0, 1.0])
    tg = F.binary_cross_entropy(tinygan.tensor(p), tinygan.tensor(t), reduction="none").numpy()
    th = TF.binary_cross_entropy(torch.tensor(p), torch.tensor(t), reduction="none").numpy()
    np.testing.assert_allclose(tg, th)  # log clamped at -100: 100, 100, log 2, 100


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_keeps_relative_precision_for_large_negative_logits(dtype):
    """Regression: sigmoid was (1 + tanh(x/2)) / 2, exactly 0 in float32 below x ~ -17."""
    x = np.linspace(-80, 40, 241).astype(dtype)
    a = F.sigmoid(tinygan.tensor(x)).numpy()
    b = torch.sigmoid(torch.tensor(x)).numpy()
    tiny = np.finfo(dtype).tiny                       # compare normal numbers only (torch may flush denormals)
    ok = b > tiny
    rel = np.abs(a[ok] - b[ok]) / b[ok]
    assert rel.max() < (1e-6 if dtype == np.float32 else 1e-14), rel.max()
    # so that a Sigmoid + BCE loss agrees with torch however confident the logit
    ones = np.ones_like(x)
    loss = F.binary_cross_entropy(F.sigmoid(tinygan.tensor(x)), ones, reduction="none")
    ref = TF.binary_cross_entropy(torch.sigmoid(torch.tensor(x)), torch.tensor(ones), reduction="none")
    assert_close(loss, ref, dtype, "BCE of sigmoid")


@pytest.mark.parametrize("dtype", DTYPES)
def test_binary_cross_entropy_gradient_is_finite_at_0_and_1(dtype):
    """Regression: the gradient was NaN at p = 0 or 1, even for a perfect prediction."""
    p = np.array([0.0, 0.0, 1.0, 1.0, 0.5, 1e-30], dtype)
    t = np.array([0.0, 1.0, 1.0, 0.0, 0.3, 1.0], dtype)
    tp = tinygan.tensor(p, requires_grad=True)
    F.binary_cross_entropy(tp, t, reduction="sum").backward()
    hp = torch.tensor(p, requires_grad=True)
    TF.binary_cross_entropy(hp, torch.tensor(t), reduction="sum").backward()
    assert np.isfinite(tp.grad.numpy()).all()
    np.testing.assert_allclose(tp.grad.numpy(), hp.grad.numpy(), rtol=1e-6)   # 0, -1e12, 0, 1e12, ...
    # a saturated discriminator: sigmoid(30) == 1.0 exactly in float32
    logits = tinygan.tensor(np.array([30.0, -30.0, 2.0], dtype), requires_grad=True)
    F.binary_cross_entropy(F.sigmoid(logits), np.array([1.0, 0.0, 1.0], dtype)).backward()
    assert np.isfinite(logits.grad.numpy()).all()


def test_one_hot():
    idx = np.array([2, 0, 1, 2])
    np.testing.assert_array_equal(F.one_hot(idx, 4).numpy(), TF.one_hot(torch.tensor(idx), 4).numpy())
    assert F.one_hot(idx, 4).dtype == np.float32


# ---------------------------------------------------------------------------
# layers (weights copied from torch through load_state_dict)
# ---------------------------------------------------------------------------

def _copy_module(tg_module, th_module, dtype):
    if dtype == np.float64:
        th_module.double()
        tg_module.to(dtype=np.float64)
    tg_module.load_state_dict(th_module.state_dict())
    return tg_module, th_module


LAYERS = {
    "Linear": (lambda: nn.Linear(5, 3), lambda: torch.nn.Linear(5, 3), (4, 5)),
    "Linear_nobias": (lambda: nn.Linear(5, 3, bias=False), lambda: torch.nn.Linear(5, 3, bias=False), (2, 5)),
    "Conv2d": (lambda: nn.Conv2d(3, 4, 3, stride=2, padding=1), lambda: torch.nn.Conv2d(3, 4, 3, 2, 1),
               (2, 3, 7, 6)),
    "Conv2d_rect": (lambda: nn.Conv2d(2, 3, (2, 3), stride=(1, 2), padding=(1, 0), bias=False),
                    lambda: torch.nn.Conv2d(2, 3, (2, 3), (1, 2), (1, 0), bias=False), (2, 2, 5, 7)),
    "ConvTranspose2d": (lambda: nn.ConvTranspose2d(4, 2, 4, stride=2, padding=1),
                        lambda: torch.nn.ConvTranspose2d(4, 2, 4, 2, 1), (2, 4, 3, 5)),
    "ConvTranspose2d_outpad": (lambda: nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1, output_padding=1),
                               lambda: torch.nn.ConvTranspose2d(3, 2, 3, 2, 1, output_padding=1), (1, 3, 4, 3)),
    "BatchNorm1d": (lambda: nn.BatchNorm1d(4), lambda: torch.nn.BatchNorm1d(4), (6, 4)),
    "BatchNorm2d": (lambda: nn.BatchNorm2d(3, momentum=0.3), lambda: torch.nn.BatchNorm2d(3, momentum=0.3),
                    (2, 3, 4, 5)),
    "BatchNorm2d_noaffine": (lambda: nn.BatchNorm2d(3, affine=False),
                             lambda: torch.nn.BatchNorm2d(3, affine=False), (3, 3, 2, 2)),
    "BatchNorm1d_nostats": (lambda: nn.BatchNorm1d(3, track_running_stats=False),
                            lambda: torch.nn.BatchNorm1d(3, track_running_stats=False), (5, 3)),
    "LayerNorm": (lambda: nn.LayerNorm((3, 4)), lambda: torch.nn.LayerNorm((3, 4)), (2, 3, 4)),
    "LeakyReLU": (lambda: nn.LeakyReLU(0.2), lambda: torch.nn.LeakyReLU(0.2), (3, 4)),
    "ReLU": (nn.ReLU, torch.nn.ReLU, (3, 4)),
    "Tanh": (nn.Tanh, torch.nn.Tanh, (3, 4)),
    "Sigmoid": (nn.Sigmoid, torch.nn.Sigmoid, (3, 4)),
    "Flatten": (nn.Flatten, torch.nn.Flatten, (2, 3, 2, 2)),
    "Unflatten": (lambda: nn.Unflatten(1, (2, 3)), lambda: torch.nn.Unflatten(1, (2, 3)), (4, 6)),
    "Identity": (nn.Identity, torch.nn.Identity, (2, 2)),
    "Dropout_eval": (lambda: nn.Dropout(0.5).eval(), lambda: torch.nn.Dropout(0.5).eval(), (3, 3)),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer(device, dtype, name):
    make_tg, make_th, in_shape = LAYERS[name]
    tg, th = _copy_module(make_tg(), make_th(), dtype)
    tg.to(device)
    rng = np.random.default_rng(7)
    for step in range(2):  # two steps: batch norm's running statistics move in between
        x = (rng.standard_normal(in_shape) * 2 + 0.5).astype(dtype)
        tx, hx = tinygan.tensor(x, requires_grad=True, device=device), torch.tensor(x, requires_grad=True)
        y, ref = tg(tx), th(hx)
        assert_close(y, ref, dtype, f"{name} forward, step {step}")
        gy = rng.standard_normal(y.shape).astype(dtype)
        y.backward(tinygan.tensor(gy, device=device))
        ref.backward(torch.tensor(gy))
        assert_close(tx.grad, hx.grad, dtype, f"{name} input gradient")
        th_params = dict(th.named_parameters())
        assert [k for k, _ in tg.named_parameters()] == list(th_params)
        for k, p in tg.named_parameters():
            assert_close(p.grad, th_params[k].grad, dtype, f"{name}.{k} gradient")
        th_state = th.state_dict()
        for k, v in tg.state_dict().items():
            assert_close(v, th_state[k], dtype, f"{name} state {k}")


def test_embedding_layer():
    th = torch.nn.Embedding(5, 3)
    tg = nn.Embedding(5, 3)
    tg.load_state_dict(th.state_dict())
    idx = np.array([[0, 4], [4, 2]])
    assert_close(tg(idx), th(torch.tensor(idx)), np.float32, "Embedding")


@pytest.mark.parametrize("cls", ["BatchNorm1d", "BatchNorm2d"])
@pytest.mark.parametrize("momentum", [0.1, 0.01, 0.9])
@pytest.mark.parametrize("dtype", DTYPES)
def test_batch_norm_running_statistics(device, cls, momentum, dtype):
    """Train for some steps, then eval: running mean/var (unbiased), num_batches_tracked, outputs."""
    th = getattr(torch.nn, cls)(3, momentum=momentum)
    tg = getattr(nn, cls)(3, momentum=momentum)
    tg, th = _copy_module(tg, th, dtype)
    tg.to(device)
    shape = (4, 3) if cls == "BatchNorm1d" else (2, 3, 3, 2)
    rng = np.random.default_rng(3)
    for step in range(6):
        x = (rng.standard_normal(shape) * (step + 1) + step).astype(dtype)
        assert_close(tg(tinygan.tensor(x, device=device)), th(torch.tensor(x)), dtype, f"train output {step}")
    assert int(tg.num_batches_tracked) == int(th.num_batches_tracked) == 6
    assert tg.state_dict()["num_batches_tracked"].dtype == np.int64
    assert_close(tinygan.Tensor(tg.running_mean).numpy(), th.running_mean, dtype, "running_mean")
    assert_close(tinygan.Tensor(tg.running_var).numpy(), th.running_var, dtype, "running_var")
    assert tinygan.Tensor(tg.running_mean).dtype == dtype
    tg.eval()
    th.eval()
    x = rng.standard_normal(shape).astype(dtype)
    assert_close(tg(tinygan.tensor(x, device=device)), th(torch.tensor(x)), dtype, "eval output")
    assert int(tg.num_batches_tracked) == 6  # eval does not count batches
    rm = tinygan.Tensor(tg.running_mean).numpy().copy()
    tg(tinygan.tensor(x, device=device))
    np.testing.assert_array_equal(tinygan.Tensor(tg.running_mean).numpy(), rm)


# ---------------------------------------------------------------------------
# optimizers: 20-step trajectories from identical weights
# ---------------------------------------------------------------------------

OPTIMIZERS = {
    "Adam": dict(),
    "Adam_dcgan": dict(lr=2e-4, betas=(0.5, 0.999)),
    "Adam_wd": dict(lr=1e-2, weight_decay=0.1, eps=1e-6),
    "SGD": dict(lr=0.05),
    "SGD_momentum": dict(lr=0.05, momentum=0.9),
    "SGD_nesterov": dict(lr=0.05, momentum=0.9, nesterov=True),
    "SGD_wd_dampening": dict(lr=0.05, momentum=0.5, dampening=0.3, weight_decay=0.01),
    "RMSprop": dict(),
    "RMSprop_wgan": dict(lr=5e-3),
    "RMSprop_momentum": dict(lr=1e-3, momentum=0.9),
    "RMSprop_centered": dict(lr=1e-3, centered=True),
    "RMSprop_all": dict(lr=1e-3, alpha=0.9, momentum=0.5, centered=True, weight_decay=0.01),
}


def _mlp_pair(dtype):
    th = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.LeakyReLU(0.2), torch.nn.Linear(8, 3),
                             torch.nn.Tanh(), torch.nn.Linear(3, 1))
    tg = nn.Sequential(nn.Linear(4, 8), nn.LeakyReLU(0.2), nn.Linear(8, 3), nn.Tanh(), nn.Linear(3, 1))
    return _copy_module(tg, th, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_optimizer_trajectory(device, name, dtype):
    torch.manual_seed(0)
    tg, th = _mlp_pair(dtype)
    tg.to(device)
    kind = name.split("_")[0]
    hyper = OPTIMIZERS[name]
    opt_tg = getattr(optim, kind)(tg.parameters(), **hyper)
    opt_th = getattr(torch.optim, kind)(th.parameters(), **hyper)
    rng = np.random.default_rng(1)
    th_params = dict(th.named_parameters())
    for step in range(20):
        x, t = rng.standard_normal((8, 4)).astype(dtype), rng.standard_normal((8, 1)).astype(dtype)
        opt_tg.zero_grad()
        opt_th.zero_grad()
        loss_tg = F.mse_loss(tg(tinygan.tensor(x, device=device)), tinygan.tensor(t, device=device))
        loss_th = TF.mse_loss(th(torch.tensor(x)), torch.tensor(t))
        loss_tg.backward()
        loss_th.backward()
        opt_tg.step()
        opt_th.step()
        assert_close(loss_tg, loss_th, dtype, f"loss at step {step}")
        for k, p in tg.named_parameters():
            assert p.dtype == dtype
            assert_close(p, th_params[k], dtype, f"{name}: {k} after step {step + 1}")


# ---------------------------------------------------------------------------
# WGAN-GP: a double backward through a conv critic
# ---------------------------------------------------------------------------

def _critic(lib, norm):
    n = lib.nn if lib is torch else nn
    layers = [n.Conv2d(1, 4, 3, stride=2, padding=1), n.LeakyReLU(0.2)]
    if norm == "layer":
        layers.append(n.LayerNorm((4, 4, 4)))
    elif norm == "batch":
        layers.append(n.BatchNorm2d(4))
    layers += [n.Conv2d(4, 4, 4, stride=2, padding=1), n.LeakyReLU(0.2), n.Flatten(), n.Linear(4 * 2 * 2, 1)]
    return n.Sequential(*layers)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("norm", ["none", "layer", "batch"])
def test_wgan_gp_double_backward(device, norm, dtype):
    torch.manual_seed(1)
    th = _critic(torch, norm)
    tg, th = _copy_module(_critic(tinygan, norm), th, dtype)
    tg.to(device)
    rng = np.random.default_rng(2)
    real, fake = rng.standard_normal((3, 1, 8, 8)).astype(dtype), rng.standard_normal((3, 1, 8, 8)).astype(dtype)
    eps = rng.uniform(size=(3, 1, 1, 1)).astype(dtype)
    x_hat = (eps * real + (1 - eps) * fake).astype(dtype)

    # tinygan
    xt = tinygan.tensor(x_hat, requires_grad=True, device=device)
    d = tg(xt)
    (g,) = tinygan.grad(d, xt, grad_outputs=tinygan.ones_like(d), create_graph=True)
    norms = (g.reshape(g.shape[0], -1).square().sum(axis=1) + 1e-12).sqrt()
    penalty = ((norms - 1.0) ** 2).mean() * 10.0
    loss = d.mean() + penalty
    loss.backward()

    # torch
    xh = torch.tensor(x_hat, requires_grad=True)
    dh = th(xh)
    (gh,) = torch.autograd.grad(dh, xh, grad_outputs=torch.ones_like(dh), create_graph=True)
    norms_h = (gh.reshape(gh.shape[0], -1).square().sum(dim=1) + 1e-12).sqrt()
    penalty_h = ((norms_h - 1.0) ** 2).mean() * 10.0
    (dh.mean() + penalty_h).backward()

    assert_close(g, gh, dtype, "grad of D w.r.t. x_hat")
    assert_close(penalty, penalty_h, dtype, "penalty")
    assert_close(xt.grad, xh.grad, dtype, "d(loss)/d(x_hat)")
    th_params = dict(th.named_parameters())
    for k, p in tg.named_parameters():
        assert p.grad is not None, k
        assert p.grad.dtype == dtype
        assert not p.grad.requires_grad  # backward() without create_graph leaves plain gradients
        assert_close(p.grad, th_params[k].grad, dtype, f"penalty gradient of {k}")


# ---------------------------------------------------------------------------
# loading a PyTorch state_dict into the same architecture
# ---------------------------------------------------------------------------

def _dcgan_like(lib):
    n = lib.nn if lib is torch else nn
    generator = n.Sequential(
        n.Linear(6, 8 * 2 * 2), n.Unflatten(1, (8, 2, 2)),
        n.ConvTranspose2d(8, 4, 4, 2, 1, bias=False), n.BatchNorm2d(4), n.LeakyReLU(0.2),
        n.ConvTranspose2d(4, 2, 3, 2, 1, output_padding=1), n.BatchNorm2d(2), n.ReLU(),
        n.Conv2d(2, 1, 3, 1, 1), n.Tanh())
    discriminator = n.Sequential(
        n.Conv2d(1, 4, 4, 2, 1), n.LeakyReLU(0.2), n.Conv2d(4, 8, 3, 2, 1, bias=False), n.BatchNorm2d(8),
        n.LeakyReLU(0.2), n.Flatten(), n.Linear(8 * 2 * 2, 1), n.Sigmoid())
    return n.Sequential(generator, discriminator)


def test_load_torch_state_dict():
    torch.manual_seed(3)
    th = _dcgan_like(torch)
    # train torch's batch norms a little so that running statistics are not the defaults
    with torch.no_grad():
        for _ in range(3):
            th(torch.randn(5, 6))
    th_state = th.state_dict()
    tg = _dcgan_like(tinygan)
    assert list(tg.state_dict()) == list(th_state)  # same keys, same order
    tg.load_state_dict(th_state)
    for k, v in tg.state_dict().items():
        np.testing.assert_array_equal(v, th_state[k].numpy(), err_msg=k)
        assert v.dtype == th_state[k].numpy().dtype, k
    z = np.random.default_rng(0).standard_normal((4, 6)).astype(np.float32)
    for mode in ("eval", "train"):
        getattr(tg, mode)()
        getattr(th, mode)()
        with torch.no_grad():
            ref = th(torch.tensor(z))
            ref_g = th[0](torch.tensor(z))
        assert_close(tg[0](tinygan.tensor(z)), ref_g, np.float32, f"generator ({mode})")
        assert_close(tg(tinygan.tensor(z)), ref, np.float32, f"GAN ({mode})")
    # after identical train-mode passes the running statistics still agree
    for k, v in tg.state_dict().items():
        assert_close(v, th.state_dict()[k], np.float32, k)
