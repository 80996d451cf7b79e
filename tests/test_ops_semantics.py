"""tinygan.ops' Tensor methods and primitives (outside the in-place part) against NumPy references (torch-free).

One of the ``ops`` mutation group's files (scripts/mutation.sh): each promise below is PyTorch's
documented rule written out in NumPy, and every gradient is checked by ``tinygan.testing.gradcheck``
in float64 or against an explicit expected array.  Covered: ``split``/``chunk`` (piece sizes, the
empty dim, errors), ``repeat`` (NumPy's ``tile``), ``var``/``std`` (``unbiased``, ``correction``,
n - c <= 0 is NaN, both keyword spellings), ``norm`` (p = 2/'fro', 1, inf, other p, the zero vector's
gradient), ``max``/``min`` in their four forms (the ``(values, indices)`` named tuple, first index at
ties), ``amax``/``amin`` (ties share the gradient), ``argmax``/``argmin``, ``softmax``/``log_softmax``,
``maximum``/``minimum`` (ties split the gradient 1/2), comparisons and logic (bool constants, ``t == None``
is False, the messages naming the op), ``equal``/``any``/``all``, ``to``/``cpu``/``cuda`` and the dtype
casts, ``t()``, ``__rmatmul__``, ``add``/``sub`` with ``alpha``, ``MatMul``, ``Concat``, ``GetItem``
(repeated indices add up in the gradient), the ``tinygan.<name>`` function forms, the installation of
the methods onto Tensor, and the small helpers (``_axis``, ``_count``, ``sum_to``, ...).  The in-place
part of ops.py has its own file, tests/test_ops_inplace_semantics.py.
"""
from __future__ import annotations

import math
import re

import numpy as np
import pytest

import tinygan as tg
from tinygan import ops
from tinygan.autograd import Tensor
from tinygan.testing import gradcheck, gradgradcheck

RNG = np.random.default_rng(0)


def _t(a, grad=False, dtype=np.float64):
    return tg.Tensor(np.asarray(a, dtype=dtype), requires_grad=grad)


def _vjp(f, x_np, g=None, dtype=np.float64):
    """y = f(x) and dL/dx for L = <y, g> (g random when not given)."""
    x = _t(x_np, grad=True, dtype=dtype)
    y = f(x)
    g = RNG.standard_normal(y.shape) if g is None else np.asarray(g, dtype=np.float64)
    (gx,) = tg.grad((y * _t(g, dtype=y.dtype)).sum(), x)
    return y.numpy(), g, gx.numpy()


def _msg(text: str) -> str:
    """A whole-message regex for pytest.raises(match=...)."""
    return "^" + re.escape(text) + "$"


# ---------------------------------------------------------------------------- split, chunk

@pytest.mark.parametrize("n,size,sizes", [(7, 3, [3, 3, 1]), (6, 3, [3, 3]), (5, 1, [1] * 5), (4, 9, [4]),
                                          (7, 2, [2, 2, 2, 1])])
def test_split_by_size(n, size, sizes):
    x_np = RNG.standard_normal((n, 2))
    x = _t(x_np)
    pieces = x.split(size)                                        # dim 0 by default
    assert isinstance(pieces, tuple)
    assert [p.shape for p in pieces] == [(k, 2) for k in sizes]
    starts = np.cumsum([0] + sizes)
    for p, lo, hi in zip(pieces, starts, starts[1:]):
        np.testing.assert_array_equal(p.numpy(), x_np[lo:hi])
    # the same along the last dim, by dim=1 and dim=-1, and by the function form
    y_np = x_np.T.copy()
    for pieces in (_t(y_np).split(size, dim=1), _t(y_np).split(size, -1), tg.split(_t(y_np), size, 1)):
        assert [p.shape for p in pieces] == [(2, k) for k in sizes]
        for p, lo, hi in zip(pieces, starts, starts[1:]):
            np.testing.assert_array_equal(p.numpy(), y_np[:, lo:hi])


@pytest.mark.parametrize("sections", [[2, 0, 5], (1, 6), [7], (np.int64(3), np.int64(4)), [0, 7, 0]])
def test_split_by_sections(sections):
    x_np = RNG.standard_normal((3, 7))
    pieces = _t(x_np).split(sections, dim=-1)
    sizes = [int(k) for k in sections]
    assert [p.shape for p in pieces] == [(3, k) for k in sizes]
    starts = np.cumsum([0] + sizes)
    for p, lo, hi in zip(pieces, starts, starts[1:]):
        np.testing.assert_array_equal(p.numpy(), x_np[:, lo:hi])


def test_split_gradient_puts_each_piece_back():
    x_np = RNG.standard_normal((2, 7, 3))
    x = _t(x_np, grad=True)
    pieces = x.split([2, 4, 1], dim=1)
    gs = [RNG.standard_normal(p.shape) for p in pieces]
    loss = sum(((p * _t(g)).sum() for p, g in zip(pieces, gs)), _t(0.0))
    (gx,) = tg.grad(loss, x)
    np.testing.assert_array_equal(gx.numpy(), np.concatenate(gs, axis=1))
    assert all(p.requires_grad for p in pieces)
    gradcheck(_split_and_mix, [_t(x_np, grad=True)])


def _split_and_mix(t):
    a, b = t.split(4, dim=1)                                      # (2, 4, 3) and (2, 3, 3)
    return a[:, :3] * 2.0 - b


def test_split_of_an_empty_dim_is_one_empty_piece():
    """torch.split of a length-0 dim returns one empty piece."""
    pieces = _t(np.zeros((0, 3))).split(2)
    assert len(pieces) == 1 and pieces[0].shape == (0, 3)
    pieces = _t(np.zeros((2, 0))).split(1, dim=1)
    assert len(pieces) == 1 and pieces[0].shape == (2, 0)


@pytest.mark.parametrize("sections,text", [
    ([2, 2], "split: sizes [2, 2] must add up to 5, the size of dim 1 (shape (3, 5))"),
    ((4, 2), "split: sizes [4, 2] must add up to 5, the size of dim 1 (shape (3, 5))"),
    ([-1, 6], "split: sizes [-1, 6] must add up to 5, the size of dim 1 (shape (3, 5))"),
    ([6, -1], "split: sizes [6, -1] must add up to 5, the size of dim 1 (shape (3, 5))"),
])
def test_split_bad_sections(sections, text):
    with pytest.raises(ValueError, match=_msg(text)):
        _t(np.zeros((3, 5))).split(sections, 1)


@pytest.mark.parametrize("size", [0, -2])
def test_split_bad_size(size):
    with pytest.raises(ValueError, match=_msg(f"split: split_size must be a positive int, got {size}")):
        _t(np.zeros(4)).split(size)


@pytest.mark.parametrize("n,chunks,sizes", [(7, 3, [3, 3, 1]), (6, 4, [2, 2, 2]), (8, 4, [2, 2, 2, 2]),
                                            (3, 5, [1, 1, 1]), (5, 1, [5]), (6, 2, [3, 3]), (0, 2, [0])])
def test_chunk_sizes_are_ceil_n_over_chunks(n, chunks, sizes):
    """torch.chunk: pieces of ceil(n / chunks), the last smaller, possibly fewer than ``chunks``."""
    x_np = RNG.standard_normal((2, n))
    for pieces in (_t(x_np).chunk(chunks, 1), _t(x_np).chunk(chunks, dim=-1), tg.chunk(_t(x_np), chunks, 1)):
        assert [p.shape for p in pieces] == [(2, k) for k in sizes]
    assert [p.shape for p in _t(x_np.T.copy()).chunk(chunks)] == [(k, 2) for k in sizes]     # dim 0 by default
    starts = np.cumsum([0] + sizes)
    for p, lo, hi in zip(_t(x_np).chunk(chunks, 1), starts, starts[1:]):
        np.testing.assert_array_equal(p.numpy(), x_np[:, lo:hi])


@pytest.mark.parametrize("chunks", [0, -1])
def test_chunk_bad_count(chunks):
    with pytest.raises(ValueError, match=_msg(f"chunk: chunks must be a positive int, got {chunks}")):
        _t(np.zeros(4)).chunk(chunks)


# ---------------------------------------------------------------------------- repeat

@pytest.mark.parametrize("shape,reps", [((2, 3), (2, 3)), ((2, 3), (1, 1)), ((2, 3), (3, 1, 2)), ((3,), (2, 2)),
                                        ((2, 1, 2), (1, 3, 2)), ((), (3,)), ((2, 3), (0, 2)), ((2,), (4, 1, 3))])
def test_repeat_is_np_tile(shape, reps):
    x_np = RNG.standard_normal(shape)
    ref = np.tile(x_np, reps)
    for y in (_t(x_np).repeat(*reps), _t(x_np).repeat(reps), _t(x_np).repeat(list(reps)),
              _t(x_np).repeat(*(np.int64(r) for r in reps))):
        assert y.shape == ref.shape
        np.testing.assert_array_equal(y.numpy(), ref)


def test_repeat_gradient_sums_the_copies():
    x_np = RNG.standard_normal((2, 3))
    y, g, gx = _vjp(lambda t: t.repeat(2, 1, 2), x_np)
    assert y.shape == (2, 2, 6)
    np.testing.assert_allclose(gx, _tile_adjoint(g, (2, 3), (2, 1, 2)), rtol=1e-12)
    gradcheck(lambda t: t.repeat(2, 3), [_t(x_np, grad=True)])


def _tile_adjoint(g, shape, reps):
    """The adjoint of np.tile by a loop over the copies."""
    full = (1,) * (len(reps) - len(shape)) + shape
    out = np.zeros(full)
    for idx in np.ndindex(*reps):
        sl = tuple(slice(i * n, (i + 1) * n) for i, n in zip(idx, full))
        out += g[sl]
    return out.reshape(shape)


@pytest.mark.parametrize("reps,text", [
    ((2,), "repeat: got 1 repeat counts (2,) for a tensor of shape (2, 3); pass at least one per dimension"),
    ((), "repeat: got 0 repeat counts () for a tensor of shape (2, 3); pass at least one per dimension"),
])
def test_repeat_needs_one_count_per_dim(reps, text):
    with pytest.raises(ValueError, match=_msg(text)):
        _t(np.zeros((2, 3))).repeat(*reps)


def test_sizes_helper():
    assert ops._sizes(((2, 3),)) == (2, 3)
    assert ops._sizes(([2, 3],)) == (2, 3)
    assert ops._sizes((2, 3)) == (2, 3)
    assert ops._sizes((4,)) == (4,)
    out = ops._sizes((np.int64(2), 3.0))
    assert out == (2, 3) and all(type(s) is int for s in out)
    assert all(type(s) is int for s in ops._sizes(([np.int64(2)],)))


# ---------------------------------------------------------------------------- var, std

@pytest.mark.parametrize("dim", [None, 0, 1, -1, (0, 2), [0, 2], (1,)])
@pytest.mark.parametrize("keepdim", [False, True])
def test_var_std_default_is_unbiased(dim, keepdim):
    x_np = RNG.standard_normal((3, 4, 2))
    axis = tuple(dim) if isinstance(dim, list) else dim
    ref = np.var(x_np, axis=axis, ddof=1, keepdims=keepdim)
    for v in (_t(x_np).var(dim=dim, keepdim=keepdim), _t(x_np).var(axis=dim, keepdims=keepdim),
              _t(x_np).var(dim, keepdim), tg.var(_t(x_np), dim=dim, keepdim=keepdim)):
        assert v.shape == ref.shape
        np.testing.assert_allclose(v.numpy(), ref, rtol=1e-12)
    for s in (_t(x_np).std(dim, keepdim=keepdim), _t(x_np).std(dim=dim, keepdim=keepdim),
              _t(x_np).std(axis=dim, keepdims=keepdim), tg.std(_t(x_np), dim, True, keepdim)):
        assert s.shape == ref.shape
        np.testing.assert_allclose(s.numpy(), np.sqrt(ref), rtol=1e-12)


@pytest.mark.parametrize("kw,ddof", [(dict(unbiased=False), 0), (dict(unbiased=True), 1), (dict(correction=0), 0),
                                     (dict(correction=2), 2), (dict(unbiased=True, correction=0), 0),
                                     (dict(unbiased=False, correction=1), 1), (dict(correction=1), 1)])
def test_var_std_correction(kw, ddof):
    x_np = RNG.standard_normal((5, 4))
    for dim in (None, 0, 1):
        ref = np.var(x_np, axis=dim, ddof=ddof)
        np.testing.assert_allclose(_t(x_np).var(dim=dim, **kw).numpy(), ref, rtol=1e-12)
        np.testing.assert_allclose(_t(x_np).std(dim, **kw).numpy(), np.sqrt(ref), rtol=1e-12)


def test_std_positional_order_is_torchs():
    """torch.std(input, dim, unbiased, keepdim)."""
    x_np = RNG.standard_normal((3, 4))
    s = _t(x_np).std(1, False, True)
    assert s.shape == (3, 1)
    np.testing.assert_allclose(s.numpy(), np.std(x_np, axis=1, keepdims=True), rtol=1e-12)


@pytest.mark.parametrize("shape,kw", [((1, 3), dict(dim=0)), ((4,), dict(correction=4)), ((3,), dict(correction=5)),
                                      ((1,), dict())])
def test_var_with_no_degrees_of_freedom_is_nan(shape, kw):
    """n - c <= 0: NaN, as PyTorch (not a ZeroDivisionError)."""
    x = _t(RNG.standard_normal(shape))
    v = x.var(**kw)
    assert np.all(np.isnan(v.numpy()))
    assert np.all(np.isnan(x.std(**kw).numpy()))


def test_var_of_one_element_biased_is_zero_and_two_elements_is_finite():
    assert _t([3.0]).var(unbiased=False).item() == 0.0
    assert _t([3.0]).var(correction=0).item() == 0.0
    assert _t([1.0, 3.0]).var().item() == 2.0                    # n - 1 = 1
    assert _t([1.0, 3.0]).var(unbiased=False).item() == 1.0
    assert _t([1.0, 3.0, 5.0]).var(correction=2).item() == 8.0  # n - c = 1


def test_var_std_gradients_and_dtype():
    x_np = RNG.standard_normal((3, 4))
    gradcheck(lambda t: t.var(dim=1), [_t(x_np, grad=True)])
    gradcheck(lambda t: t.var(), [_t(x_np, grad=True)])
    gradcheck(lambda t: t.std(0, unbiased=False), [_t(x_np, grad=True)])
    gradgradcheck(lambda t: t.var(dim=0, correction=2), [_t(x_np, grad=True)])
    y, g, gx = _vjp(lambda t: t.var(dim=1), x_np)
    np.testing.assert_allclose(gx, g[:, None] * 2 * (x_np - x_np.mean(1, keepdims=True)) / 3, rtol=1e-10)
    x32 = _t(x_np, dtype=np.float32)
    assert x32.var().dtype == np.float32 and x32.std(1).dtype == np.float32


def test_var_axis_and_dim_together_raise():
    with pytest.raises(TypeError, match=_msg("pass either axis or dim, not both")):
        _t(np.zeros((2, 2))).var(axis=0, dim=1)
    with pytest.raises(TypeError, match=_msg("pass either axis or dim, not both")):
        _t(np.zeros((2, 2))).std(0, axis=1)


# ---------------------------------------------------------------------------- norm

def _np_norm(x, p, axis, keepdims=False):
    a = np.abs(x)
    if p == math.inf:
        return a.max(axis=axis, keepdims=keepdims)
    return (a ** p).sum(axis=axis, keepdims=keepdims) ** (1.0 / p)


@pytest.mark.parametrize("p", [2, 2.0, "fro", 1, 1.0, math.inf, 3, 0.5, 1.5])
@pytest.mark.parametrize("dim", [None, 1, -1, (0, 2), [0, 1]])
@pytest.mark.parametrize("keepdim", [False, True])
def test_norm_is_the_p_norm(p, dim, keepdim):
    x_np = RNG.standard_normal((3, 4, 2))
    axis = tuple(dim) if isinstance(dim, list) else dim
    ref = _np_norm(x_np, 2 if p == "fro" else p, axis, keepdim)
    y = _t(x_np).norm(p, dim, keepdim)
    assert y.shape == ref.shape
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-12)
    y = tg.norm(_t(x_np), p=p, dim=dim, keepdim=keepdim)
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-12)


def test_norm_defaults_are_p2_over_everything():
    x_np = RNG.standard_normal((3, 4))
    y = _t(x_np).norm()
    assert y.shape == ()
    np.testing.assert_allclose(y.item(), np.sqrt((x_np ** 2).sum()), rtol=1e-12)
    assert _t(x_np).norm(dim=1).shape == (3,)


@pytest.mark.parametrize("p", [2, 1, 3, math.inf])
def test_norm_gradients(p):
    x_np = RNG.standard_normal((3, 4)) + np.arange(12).reshape(3, 4) * 0.1    # no ties for inf
    gradcheck(lambda t: t.norm(p, dim=1), [_t(x_np, grad=True)])
    gradcheck(lambda t: t.norm(p, dim=0, keepdim=True), [_t(x_np, grad=True)])
    gradcheck(lambda t: t.norm(p), [_t(x_np, grad=True)])


def test_norm2_gradient_is_x_over_norm_and_zero_at_zero():
    x_np = np.array([[3.0, 4.0], [0.0, 0.0], [-1.0, 0.0]])
    y, g, gx = _vjp(lambda t: t.norm(dim=1), x_np, g=[1.0, 2.0, 3.0])
    np.testing.assert_array_equal(y, [5.0, 0.0, 1.0])
    np.testing.assert_allclose(gx, [[0.6, 0.8], [0.0, 0.0], [-3.0, 0.0]], rtol=1e-15)
    y, g, gx = _vjp(lambda t: t.norm(dim=0, keepdim=True), x_np, g=[[2.0, 1.0]])
    np.testing.assert_allclose(gx, x_np * np.array([[2.0 / np.sqrt(10), 1.0 / 4.0]]), rtol=1e-15)
    y, g, gx = _vjp(lambda t: t.norm(), np.zeros((2, 2)), g=1.0)
    np.testing.assert_array_equal(gx, np.zeros((2, 2)))
    assert y == 0.0


def test_norm2_gradient_never_points_against_x_where_the_norm_underflows():
    """x = +-1e-200: sum x^2 underflows to 0, so y = 0 while x != 0; the gradient must still not flip sign."""
    x_np = np.array([[1e-200, -1e-200], [3.0, 4.0]])
    g = np.array([2.0, 1.0])
    y, _, gx = _vjp(lambda t: t.norm(dim=1), x_np, g=g)
    assert y[0] == 0.0
    assert np.all((np.sign(gx[0]) == np.sign(x_np[0] * g[0])) | (gx[0] == 0))     # (a product would underflow)
    assert np.all(np.abs(gx[0]) <= np.abs(x_np[0] * g[0]))
    np.testing.assert_allclose(gx[1], [0.6, 0.8], rtol=1e-15)


def test_norm2_gradient_is_zero_wherever_the_norm_is_zero():
    """Also where sum x^2 underflows to 0 with x != 0 (the gradient was x g / 1 there before)."""
    x_np = np.array([1e-200, -1e-200])
    y, _, gx = _vjp(lambda t: t.norm(), x_np, g=1.0)
    assert y == 0.0
    np.testing.assert_array_equal(gx, [0.0, 0.0])


def test_norm2_second_derivative():
    """The WGAN-GP penalty differentiates ||grad D|| again."""
    x_np = RNG.standard_normal((3, 4))
    gradgradcheck(lambda t: t.norm(dim=1), [_t(x_np, grad=True)])
    gradgradcheck(lambda t: t.norm(2, (0, 1), True), [_t(x_np, grad=True)])
    gradgradcheck(lambda t: ops.Norm2()(t), [_t(x_np, grad=True)])


def test_norm2_function_defaults_and_dtype():
    x_np = RNG.standard_normal((2, 3))
    y = ops.Norm2()(_t(x_np))                                       # axis None, keepdims False
    assert y.shape == ()
    np.testing.assert_allclose(y.item(), np.linalg.norm(x_np), rtol=1e-12)
    y = ops.Norm2(1, True)(_t(x_np))
    assert y.shape == (2, 1)
    x32 = _t(x_np, grad=True, dtype=np.float32)
    y = x32.norm(dim=1)
    assert y.dtype == np.float32
    (gx,) = tg.grad(y.sum(), x32)
    assert gx.dtype == np.float32


@pytest.mark.parametrize("p", [0, -1, -2.5, "nuc", None])
def test_norm_bad_p(p):
    with pytest.raises(ValueError, match=_msg(f"norm: p must be 'fro', inf or a number > 0, got {p!r}")):
        _t(np.ones(3)).norm(p)


# ---------------------------------------------------------------------------- max, min (four forms), amax, amin

X_TIES = np.array([[1.0, 5.0, 5.0, -2.0],
                   [7.0, 0.0, 7.0, 7.0],
                   [-1.0, -3.0, -3.0, 2.0]])


def test_max_min_of_everything_share_the_gradient_at_ties():
    for op, ref in (("max", 7.0), ("min", -3.0)):
        y, g, gx = _vjp(lambda t: getattr(t, op)(), X_TIES, g=6.0)
        assert y.shape == () and y == ref
        expected = 6.0 * (X_TIES == ref) / (X_TIES == ref).sum()          # 3 tied maxima, 2 tied minima
        np.testing.assert_array_equal(gx, expected)
        np.testing.assert_array_equal(getattr(tg, op)(_t(X_TIES)).numpy(), ref)


def test_max_min_keepdim_without_dim_keeps_every_dim():
    assert _t(X_TIES).max(keepdim=True).shape == (1, 1)
    assert _t(X_TIES).min(keepdims=True).shape == (1, 1)
    np.testing.assert_array_equal(_t(X_TIES).min(keepdim=True).numpy(), [[-3.0]])


@pytest.mark.parametrize("op", ["max", "min"])
@pytest.mark.parametrize("dim", [0, 1, -1, -2, np.int64(1)])
@pytest.mark.parametrize("keepdim", [False, True])
def test_max_min_dim_are_values_and_first_indices(op, dim, keepdim):
    ref_v = getattr(np, op)(X_TIES, axis=int(dim), keepdims=keepdim)
    ref_i = getattr(np, "arg" + op)(X_TIES, axis=int(dim))                # NumPy: the first at ties, as torch
    if keepdim:
        ref_i = np.expand_dims(ref_i, int(dim))
    for out in (getattr(_t(X_TIES), op)(dim, keepdim), getattr(_t(X_TIES), op)(dim=dim, keepdim=keepdim),
                getattr(tg, op)(_t(X_TIES), dim, keepdim=keepdim)):
        assert isinstance(out, ops.ValuesIndices) and isinstance(out, tuple)
        assert out._fields == ("values", "indices")
        values, indices = out
        assert values is out.values and indices is out.indices and out[0] is values
        assert values.shape == ref_v.shape and indices.shape == ref_v.shape
        np.testing.assert_array_equal(values.numpy(), ref_v)
        assert indices.dtype == np.int64 and not indices.requires_grad
        np.testing.assert_array_equal(indices.numpy(), ref_i)


@pytest.mark.parametrize("op", ["max", "min"])
@pytest.mark.parametrize("dim", [0, 1, 2, -1])
def test_max_min_dim_3d_gradient_goes_to_the_index(op, dim):
    x_np = RNG.integers(-2, 3, size=(3, 4, 2)).astype(np.float64)          # plenty of ties
    y, g, gx = _vjp(lambda t: getattr(t, op)(dim)[0], x_np)
    idx = getattr(np, "arg" + op)(x_np, axis=dim)
    np.testing.assert_array_equal(y, np.take_along_axis(x_np, np.expand_dims(idx, dim), dim).squeeze(dim))
    expected = np.zeros_like(x_np)
    np.put_along_axis(expected, np.expand_dims(idx, dim), np.expand_dims(g, dim), dim)
    np.testing.assert_array_equal(gx, expected)
    y, g, gx = _vjp(lambda t: getattr(t, op)(dim, keepdim=True).values, x_np)
    assert y.shape == tuple(1 if i == dim % 3 else s for i, s in enumerate(x_np.shape))
    np.testing.assert_array_equal(gx, _scatter(x_np, idx, g, dim))


def _scatter(x_np, idx, g_kept, dim):
    out = np.zeros_like(x_np)
    np.put_along_axis(out, np.expand_dims(idx, dim), g_kept, dim)
    return out


def test_max_min_of_a_0d_tensor_along_dim():
    x = _t(3.5, grad=True)
    for op in ("max", "min"):
        v, i = getattr(x, op)(0)
        assert v.shape == () and v.item() == 3.5 and v.requires_grad
        assert i.shape == () and i.dtype == np.int64 and i.item() == 0


@pytest.mark.parametrize("op,np_op", [("max", np.maximum), ("min", np.minimum)])
def test_max_min_of_another_tensor_is_elementwise(op, np_op):
    a_np, b_np = RNG.standard_normal((2, 3)), RNG.standard_normal(3)
    out = getattr(_t(a_np), op)(_t(b_np))
    np.testing.assert_array_equal(out.numpy(), np_op(a_np, b_np))
    out = getattr(_t(a_np), op)(0.25)                                      # a number is "other" too
    np.testing.assert_array_equal(out.numpy(), np_op(a_np, 0.25))
    out = getattr(_t(a_np), op)(b_np)                                      # and an array
    np.testing.assert_array_equal(out.numpy(), np_op(a_np, b_np))


@pytest.mark.parametrize("op", ["max", "min"])
def test_max_min_numpy_axis_keyword_gives_values_only(op):
    ref = getattr(np, op)(X_TIES, axis=1)
    for kw in (dict(axis=1), dict(axis=-1)):
        out = getattr(_t(X_TIES), op)(**kw)
        assert isinstance(out, Tensor) and not isinstance(out, tuple)
        np.testing.assert_array_equal(out.numpy(), ref)
    out = getattr(_t(X_TIES), op)(axis=0, keepdims=True)
    np.testing.assert_array_equal(out.numpy(), getattr(np, op)(X_TIES, axis=0, keepdims=True))
    out = getattr(_t(X_TIES), op)(axis=(0, 1))
    assert out.shape == () and out.item() == getattr(np, op)(X_TIES)
    y, g, gx = _vjp(lambda t: getattr(t, op)(axis=1), X_TIES)
    tie = X_TIES == ref[:, None]
    np.testing.assert_allclose(gx, g[:, None] * tie / tie.sum(axis=1, keepdims=True), rtol=1e-15)


@pytest.mark.parametrize("op", ["max", "min"])
def test_max_min_errors(op):
    with pytest.raises(TypeError, match=_msg(f"{op}: pass either axis or dim, not both")):
        getattr(_t(X_TIES), op)(0, axis=1)
    for dim in ((0, 1), [0, 1]):
        with pytest.raises(TypeError, match=_msg(f"{op}: dim must be an int, got {dim!r}; for the {op} over several "
                                                 f"dims use a{op}(dim=(...)) (values only)")):
            getattr(_t(X_TIES), op)(dim)


@pytest.mark.parametrize("op,np_op", [("amax", np.max), ("amin", np.min)])
@pytest.mark.parametrize("dim", [None, 0, 1, -1, (0, 1), [1, 0]])
@pytest.mark.parametrize("keepdim", [False, True])
def test_amax_amin_share_the_gradient_among_ties(op, np_op, dim, keepdim):
    axis = tuple(dim) if isinstance(dim, list) else dim
    ref = np_op(X_TIES, axis=axis, keepdims=keepdim)
    y, g, gx = _vjp(lambda t: getattr(t, op)(dim, keepdim), X_TIES)
    assert y.shape == ref.shape
    np.testing.assert_array_equal(y, ref)
    full = np_op(X_TIES, axis=axis, keepdims=True)
    tie = X_TIES == full
    g_full = g.reshape(full.shape)
    np.testing.assert_allclose(gx, g_full * tie / tie.sum(axis=axis, keepdims=True), rtol=1e-15)
    np.testing.assert_array_equal(getattr(tg, op)(_t(X_TIES), dim=dim, keepdim=keepdim).numpy(), ref)


def test_amax_amin_defaults():
    assert _t(X_TIES).amax().shape == () and _t(X_TIES).amax().item() == 7.0
    assert _t(X_TIES).amin().shape == () and _t(X_TIES).amin().item() == -3.0
    assert _t(X_TIES).amin(keepdim=True).shape == (1, 1)
    x32 = _t(X_TIES, dtype=np.float32)
    assert x32.amin(1).dtype == np.float32 and x32.amax(0).dtype == np.float32


def test_max_function_defaults_and_gradient_dtype():
    """Max(axis=None, keepdims=False); the shares of the ties keep the input's dtype."""
    y = ops.Max()(_t(X_TIES))
    assert y.shape == () and y.item() == 7.0
    assert ops.Max(1)(_t(X_TIES)).shape == (3,)
    assert ops.Max(1, True)(_t(X_TIES)).shape == (3, 1)
    x32 = _t(X_TIES, grad=True, dtype=np.float32)
    for f in (lambda t: t.amax(1), lambda t: t.amin(), lambda t: t.max(), lambda t: t.norm(math.inf, 0)):
        (gx,) = tg.grad(f(x32).sum(), x32)
        assert gx.dtype == np.float32


# ---------------------------------------------------------------------------- argmax, argmin

@pytest.mark.parametrize("op", ["argmax", "argmin"])
@pytest.mark.parametrize("dim", [None, 0, 1, -1])
@pytest.mark.parametrize("keepdim", [False, True])
def test_argmax_argmin_first_index(op, dim, keepdim):
    ref = getattr(np, op)(X_TIES, axis=dim)
    if keepdim:
        ref = np.expand_dims(ref, dim) if dim is not None else ref.reshape(1, 1)
    for out in (getattr(_t(X_TIES, grad=True), op)(dim, keepdim), getattr(_t(X_TIES), op)(dim=dim, keepdim=keepdim),
                getattr(_t(X_TIES), op)(axis=dim, keepdim=keepdim), getattr(tg, op)(_t(X_TIES), dim, keepdim)):
        assert out.shape == ref.shape and out.dtype == np.int64
        assert not out.requires_grad and out.grad_fn is None
        np.testing.assert_array_equal(out.numpy(), ref)


def test_argmax_argmin_values_and_int_inputs():
    assert _t(X_TIES).argmax().item() == 4                       # flat index of the first 7
    assert _t(X_TIES).argmin().item() == 9                       # flat index of the first -3
    xi = Tensor(np.array([[3, 9, 9], [1, 0, 0]], dtype=np.int32))
    np.testing.assert_array_equal(xi.argmax(1).numpy(), [1, 0])
    np.testing.assert_array_equal(xi.argmin(1).numpy(), [0, 1])
    assert xi.argmax(1).dtype == np.int64 and xi.argmin().dtype == np.int64
    assert _t(2.0).argmax().shape == () and _t(2.0).argmax().item() == 0


@pytest.mark.parametrize("op", ["argmax", "argmin"])
def test_argmax_argmin_errors(op):
    with pytest.raises(TypeError, match=_msg(f"{op}: dim must be an int or None, got (0, 1)")):
        getattr(_t(X_TIES), op)((0, 1))
    with pytest.raises(TypeError, match=_msg(f"{op}: dim must be an int or None, got (0, 1)")):
        getattr(_t(X_TIES), op)([0, 1])
    with pytest.raises(TypeError, match=_msg("pass either axis or dim, not both")):
        getattr(_t(X_TIES), op)(0, axis=1)


# ---------------------------------------------------------------------------- maximum, minimum

@pytest.mark.parametrize("fn,np_fn,lower", [(tg.maximum, np.maximum, False), (tg.minimum, np.minimum, True)])
def test_maximum_minimum_values_and_tie_split_gradient(fn, np_fn, lower):
    a_np = np.array([[1.0, 2.0, 3.0], [4.0, -1.0, 0.5]])
    b_np = np.array([2.0, 2.0, 0.0])                                       # broadcast; one tie in row 0
    a, b = _t(a_np, grad=True), _t(b_np, grad=True)
    y = fn(a, b)
    np.testing.assert_array_equal(y.numpy(), np_fn(a_np, b_np))
    g = RNG.standard_normal((2, 3))
    ga, gb = tg.grad((y * _t(g)).sum(), [a, b])
    first = (a_np < b_np) if lower else (a_np > b_np)
    m = first + 0.5 * (a_np == b_np)
    np.testing.assert_allclose(ga.numpy(), g * m, rtol=1e-15)
    np.testing.assert_allclose(gb.numpy(), (g * (1 - m)).sum(axis=0), rtol=1e-15)
    assert m[0, 1] == 0.5                                                  # the tie really is there
    f = ops.Maximum(lower=lower)
    np.testing.assert_array_equal(f(_t(a_np), _t(b_np)).numpy(), np_fn(a_np, b_np))


def test_maximum_default_is_max_and_minimum_class_flag():
    a, b = _t([1.0, 5.0]), _t([3.0, 2.0])
    np.testing.assert_array_equal(ops.Maximum()(a, b).numpy(), [3.0, 5.0])
    np.testing.assert_array_equal(ops.Maximum(True)(a, b).numpy(), [1.0, 2.0])


@pytest.mark.parametrize("fn", [tg.maximum, tg.minimum])
def test_maximum_minimum_gradcheck_and_scalars(fn):
    a_np, b_np = RNG.standard_normal((3, 1)), RNG.standard_normal((1, 4))
    gradcheck(fn, [_t(a_np, grad=True), _t(b_np, grad=True)])
    gradcheck(lambda t: fn(t, 0.1), [_t(a_np, grad=True)])
    gradcheck(lambda t: fn(0.1, t), [_t(a_np, grad=True)])
    x = _t([-1.0, 0.0, 2.0], grad=True, dtype=np.float32)
    for y in (fn(x, 0.0), fn(0.0, x), fn(np.float32(0.0), x), fn(x, np.zeros(3, np.float32))):
        assert y.dtype == np.float32
        ref = np.maximum([-1.0, 0.0, 2.0], 0.0) if fn is tg.maximum else np.minimum([-1.0, 0.0, 2.0], 0.0)
        np.testing.assert_array_equal(y.numpy(), ref)
        (gx,) = tg.grad(y.sum(), x)
        assert gx.dtype == np.float32
        np.testing.assert_array_equal(gx.numpy(), [0.0, 0.5, 1.0] if fn is tg.maximum else [1.0, 0.5, 0.0])


def test_maximum_gradient_only_to_what_requires_it():
    a = _t([1.0, 3.0], grad=True)
    b = _t([2.0, 2.0])
    (ga,) = tg.grad(tg.maximum(b, a).sum(), a)
    np.testing.assert_array_equal(ga.numpy(), [0.0, 1.0])
    (ga,) = tg.grad(tg.minimum(a, b).sum(), a)
    np.testing.assert_array_equal(ga.numpy(), [1.0, 0.0])


@pytest.mark.parametrize("fn,name", [(tg.maximum, "maximum"), (tg.minimum, "minimum")])
def test_maximum_minimum_errors(fn, name):
    with pytest.raises(ValueError, match=_msg(f"{name}: shapes (2,) and (3,) cannot be broadcast together")):
        fn(_t([1.0, 2.0]), _t([1.0, 2.0, 3.0]))
    with pytest.raises(TypeError, match=_msg("expected at least one Tensor, got float and int")):
        fn(1.0, 2)
    with pytest.raises(TypeError, match=_msg("expected at least one Tensor, got list and ndarray")):
        fn([1.0], np.ones(1))


def test_tensor_pair():
    x = _t([1.0, 2.0], dtype=np.float32)
    a, b = ops._tensor_pair(x, 3)
    assert a is x and isinstance(b, Tensor) and b.dtype == np.float32 and b.item() == 3.0
    a, b = ops._tensor_pair(4, x)
    assert b is x and isinstance(a, Tensor) and a.dtype == np.float32 and a.item() == 4.0
    y = _t([5.0])
    a, b = ops._tensor_pair(x, y)
    assert a is x and b is y


# ---------------------------------------------------------------------------- softmax, log_softmax

@pytest.mark.parametrize("dim", [0, 1, -1, -2])
def test_softmax_log_softmax(dim):
    x_np = RNG.standard_normal((3, 4)) * 3 + np.array([[1000.0], [0.0], [-1000.0]])   # no overflow
    z = x_np - x_np.max(axis=dim, keepdims=True)
    ref_log = z - np.log(np.exp(z).sum(axis=dim, keepdims=True))
    for y in (_t(x_np).log_softmax(dim), tg.log_softmax(_t(x_np), dim=dim)):
        assert y.shape == x_np.shape
        np.testing.assert_allclose(y.numpy(), ref_log, rtol=1e-12, atol=1e-12)
    for y in (_t(x_np).softmax(dim), tg.softmax(_t(x_np), dim)):
        np.testing.assert_allclose(y.numpy(), np.exp(ref_log), rtol=1e-12, atol=1e-300)
        np.testing.assert_allclose(y.numpy().sum(axis=dim), 1.0, rtol=1e-12)
    small = RNG.standard_normal((3, 4))
    gradcheck(lambda t: t.softmax(dim), [_t(small, grad=True)])
    gradcheck(lambda t: t.log_softmax(dim), [_t(small, grad=True)])


def test_softmax_default_dim_is_last():
    x_np = RNG.standard_normal((3, 4))
    e = np.exp(x_np - x_np.max(axis=-1, keepdims=True))
    np.testing.assert_allclose(_t(x_np).softmax().numpy(), e / e.sum(-1, keepdims=True), rtol=1e-12)
    np.testing.assert_allclose(_t(x_np).log_softmax().numpy(), np.log(e / e.sum(-1, keepdims=True)), rtol=1e-12)
    x32 = _t(x_np, dtype=np.float32)
    assert x32.softmax().dtype == np.float32 and x32.log_softmax(0).dtype == np.float32


def test_softmax_gradient_explicit():
    x_np = RNG.standard_normal((2, 3))
    y, g, gx = _vjp(lambda t: t.softmax(1), x_np)
    np.testing.assert_allclose(gx, y * (g - (g * y).sum(1, keepdims=True)), rtol=1e-10)
    y, g, gx = _vjp(lambda t: t.log_softmax(0), x_np)
    np.testing.assert_allclose(gx, g - np.exp(y) * g.sum(0, keepdims=True), rtol=1e-10)


# ---------------------------------------------------------------------------- comparisons and logic

CMP = [("__lt__", "lt", np.less), ("__le__", "le", np.less_equal), ("__gt__", "gt", np.greater),
       ("__ge__", "ge", np.greater_equal), ("__eq__", "eq", np.equal), ("__ne__", "ne", np.not_equal)]


@pytest.mark.parametrize("method,name,np_op", CMP)
def test_comparisons_are_bool_constants(method, name, np_op):
    a_np = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]])
    b_np = np.array([2.0, 2.0, 2.0])
    a = _t(a_np, grad=True)
    for other, ref in ((_t(b_np, grad=True), np_op(a_np, b_np)), (2.0, np_op(a_np, 2.0)), (2, np_op(a_np, 2)),
                       (b_np, np_op(a_np, b_np)), (np.float32(2.0), np_op(a_np, 2.0))):
        out = getattr(a, method)(other)
        assert isinstance(out, Tensor) and out.dtype == np.bool_
        assert not out.requires_grad and out.grad_fn is None
        assert out.shape == ref.shape
        np.testing.assert_array_equal(out.numpy(), ref)
    with pytest.raises(ValueError, match=_msg(f"{name}: shapes (2, 3) and (2,) cannot be broadcast together")):
        getattr(a, method)(_t([1.0, 2.0]))


def test_comparison_operators_and_aliases():
    a, b = _t([1.0, 2.0, 3.0]), _t([3.0, 2.0, 1.0])
    np.testing.assert_array_equal((a < b).numpy(), [True, False, False])
    np.testing.assert_array_equal((a <= b).numpy(), [True, True, False])
    np.testing.assert_array_equal((a > b).numpy(), [False, False, True])
    np.testing.assert_array_equal((a >= b).numpy(), [False, True, True])
    np.testing.assert_array_equal((a == b).numpy(), [False, True, False])
    np.testing.assert_array_equal((a != b).numpy(), [True, False, True])
    np.testing.assert_array_equal(a.eq(b).numpy(), [False, True, False])
    np.testing.assert_array_equal(a.ne(b).numpy(), [True, False, True])
    np.testing.assert_array_equal(tg.eq(a, 2.0).numpy(), [False, True, False])
    np.testing.assert_array_equal(tg.ne(a, 2.0).numpy(), [True, False, True])
    np.testing.assert_array_equal((2.0 < a).numpy(), [False, False, True])        # reflected: a > 2
    np.testing.assert_array_equal((2.0 >= a).numpy(), [True, True, False])


def test_compare_with_none_or_a_string_is_python_equality():
    """t == None is False and t != None True (PyTorch); ordering against None raises TypeError."""
    x = _t([1.0, 2.0])
    assert (x == None) is False  # noqa: E711
    assert (x != None) is True  # noqa: E711
    assert (x == "a") is False
    assert (x != "a") is True
    assert x.__eq__(None) is NotImplemented and x.__lt__("a") is NotImplemented
    for op in (lambda: x < None, lambda: x >= "a", lambda: x > None, lambda: x <= None):
        with pytest.raises(TypeError):
            op()
    assert x in {x} and x is not _t([1.0, 2.0])                             # hashable by identity


@pytest.mark.parametrize("method,name,np_op", [("__and__", "and", np.bitwise_and), ("__or__", "or", np.bitwise_or),
                                               ("__xor__", "xor", np.bitwise_xor)])
def test_logical_operators(method, name, np_op):
    a_np = np.array([True, True, False, False])
    b_np = np.array([True, False, True, False])
    a, b = Tensor(a_np), Tensor(b_np)
    out = getattr(a, method)(b)
    assert out.dtype == np.bool_ and not out.requires_grad
    np.testing.assert_array_equal(out.numpy(), np_op(a_np, b_np))
    i_np, j_np = np.array([6, 5, 12], dtype=np.int64), np.array([3, 3, 10], dtype=np.int64)
    np.testing.assert_array_equal(getattr(Tensor(i_np), method)(Tensor(j_np)).numpy(), np_op(i_np, j_np))
    np.testing.assert_array_equal(getattr(Tensor(i_np), method)(3).numpy(), np_op(i_np, 3))
    with pytest.raises(ValueError, match=_msg(f"{name}: shapes (4,) and (3,) cannot be broadcast together")):
        getattr(a, method)(Tensor(np.array([True, False, True])))
    assert getattr(a, method)(None) is NotImplemented


def test_logical_operator_symbols_and_reflections():
    a, b = Tensor(np.array([True, True, False])), Tensor(np.array([True, False, False]))
    np.testing.assert_array_equal((a & b).numpy(), [True, False, False])
    np.testing.assert_array_equal((a | b).numpy(), [True, True, False])
    np.testing.assert_array_equal((a ^ b).numpy(), [False, True, False])
    np.testing.assert_array_equal((True & a).numpy(), [True, True, False])
    np.testing.assert_array_equal((False | a).numpy(), [True, True, False])
    np.testing.assert_array_equal((True ^ a).numpy(), [False, False, True])
    labels = Tensor(np.array([-1, 0, 5, 10, 11]))
    np.testing.assert_array_equal(((labels >= 0) & (labels < 10)).numpy(), [False, True, True, False, False])


def test_invert():
    a_np = np.array([True, False])
    out = ~Tensor(a_np)
    assert out.dtype == np.bool_ and not out.requires_grad
    np.testing.assert_array_equal(out.numpy(), [False, True])
    np.testing.assert_array_equal((~Tensor(np.array([0, 5, -3]))).numpy(), [-1, -6, 2])
    np.testing.assert_array_equal((~Tensor(np.array([0, 1], dtype=np.uint8))).numpy(), [255, 254])
    for dtype in (np.float32, np.float64):
        with pytest.raises(TypeError, match=_msg(f"invert: ~ needs a bool or integer tensor, got dtype "
                                                 f"{np.dtype(dtype)}")):
            ~_t([1.0], dtype=dtype)


def test_equal_any_all():
    a = _t([[1.0, 2.0], [3.0, 4.0]])
    assert a.equal(_t([[1.0, 2.0], [3.0, 4.0]])) is True
    assert tg.equal(a, _t([[1.0, 2.0], [3.0, 4.0]])) is True
    assert a.equal(_t([[1.0, 2.0], [3.0, 5.0]])) is False
    assert _t([1.0, 1.0]).equal(_t([[1.0, 1.0], [1.0, 1.0]])) is False     # broadcastable, other shape
    assert _t([[1.0, 1.0]]).equal(_t([1.0, 1.0])) is False
    assert a.equal(np.array([[1.0, 2.0], [3.0, 4.0]])) is False              # not a Tensor
    assert a.equal(a) is True
    for t, any_, all_ in ((Tensor(np.array([True, False])), True, False), (Tensor(np.array([True, True])), True, True),
                          (Tensor(np.array([False, False])), False, False), (Tensor(np.zeros(0, bool)), False, True),
                          (_t([[0.0, 2.0]]), True, False), (Tensor(np.array([1, 2])), True, True)):
        for out, ref in ((t.any(), any_), (t.all(), all_), (tg.any(t), any_), (tg.all(t), all_)):
            assert isinstance(out, Tensor) and out.shape == () and out.dtype == np.bool_
            assert bool(out) is ref and out.item() is ref


# ---------------------------------------------------------------------------- to, cpu, cuda, dtype casts

def test_to_the_same_device_and_dtype_is_the_tensor_itself():
    x = _t([1.0, 2.0], grad=True, dtype=np.float32)
    for y in (x.to("cpu"), x.cpu(), x.to(np.float32), x.to(dtype=np.float32), x.to(), x.to(None, None),
              x.to("cpu", np.float32), x.to(x), x.to(device="CPU"), x.float(), x.type_as(x), x.to(np.dtype("float32"))):
        assert y is x


@pytest.mark.parametrize("spelling", ["positional", "keyword", "np.dtype", "device and dtype", "tensor"])
def test_to_a_float_dtype_is_differentiable_and_casts_back(spelling):
    x_np = RNG.standard_normal(3).astype(np.float32)
    x = _t(x_np, grad=True, dtype=np.float32)
    y = {"positional": lambda: x.to(np.float64), "keyword": lambda: x.to(dtype=np.float64),
         "np.dtype": lambda: x.to(np.dtype("float64")), "device and dtype": lambda: x.to("cpu", np.float64),
         "tensor": lambda: x.to(_t([0.0]))}[spelling]()
    assert y.dtype == np.float64 and y.device == "cpu" and y.requires_grad
    np.testing.assert_array_equal(y.numpy(), x_np.astype(np.float64))
    g = RNG.standard_normal(3)
    (gx,) = tg.grad((y * _t(g)).sum(), x)
    assert gx.dtype == np.float32                                          # the gradient comes back as float32
    np.testing.assert_array_equal(gx.numpy(), g.astype(np.float32))


def test_float_double_half_and_type_as():
    x_np = np.array([1.5, -2.25, 3.0])
    x = _t(x_np, grad=True)
    for y, dtype in ((x.float(), np.float32), (x.double(), np.float64), (x.to(np.float32), np.float32),
                     (x.type_as(_t([0.0], dtype=np.float32)), np.float32)):
        assert y.dtype == dtype and y.requires_grad
        np.testing.assert_array_equal(y.numpy(), x_np.astype(dtype))
        (gx,) = tg.grad(y.sum(), x)
        assert gx.dtype == np.float64
        np.testing.assert_array_equal(gx.numpy(), np.ones(3))
    x32 = _t(x_np, grad=True, dtype=np.float32)
    y = x32.to(_t([0.0], dtype=np.float32), dtype=np.float64)              # a dtype given wins over the tensor's
    assert y.dtype == np.float64
    (gx,) = tg.grad(y.sum(), x32)
    assert gx.dtype == np.float32
    assert x32.double().dtype == np.float64 and x32.to(x).dtype == np.float64


def test_to_an_integer_or_bool_dtype_is_a_constant():
    x_np = np.array([1.7, -2.5, 0.0, 3.2])
    x = _t(x_np, grad=True)
    for y, dtype in ((x.long(), np.int64), (x.int(), np.int32), (x.bool(), np.bool_), (x.to(np.int16), np.int16),
                     (x.to(dtype=np.uint8), np.uint8), (x.to(Tensor(np.zeros(1, np.int64))), np.int64),
                     (x.type_as(Tensor(np.zeros(1, bool))), np.bool_)):
        assert y.dtype == dtype
        assert not y.requires_grad and y.grad_fn is None
        np.testing.assert_array_equal(y.numpy(), x_np.astype(dtype))
    xi = Tensor(np.array([1, 2]))
    y = xi.to(np.float32)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y.numpy(), [1.0, 2.0])


class _DeviceLike:
    """What torch.device looks like to tinygan: ``.type`` and ``.index``."""

    type, index = "cpu", None


def test_to_a_device_object_is_a_device_not_a_dtype():
    x = _t([1.0, 2.0], grad=True)
    assert x.to(_DeviceLike()) is x
    y = x.to(_DeviceLike(), np.float32)
    assert y.dtype == np.float32 and y.device == "cpu"


def test_is_dtype():
    for d in (np.float32, "float64", np.dtype("int8"), np.int64, bool, float):
        assert ops._is_dtype(d) is True
    for d in (object(), [1, 2], {"a": 1}):
        assert ops._is_dtype(d) is False


def test_to_device_function_on_the_cpu():
    """ToDevice("cpu") of a CPU array: the same values, and a CPU gradient back."""
    x_np = RNG.standard_normal((2, 3))
    x = _t(x_np, grad=True)
    y = ops.ToDevice("cpu")(x)
    assert y.device == "cpu" and type(y.numpy()) is np.ndarray
    np.testing.assert_array_equal(y.numpy(), x_np)
    g = RNG.standard_normal((2, 3))
    (gx,) = tg.grad((y * _t(g)).sum(), x)
    assert gx.device == "cpu" and type(gx._data) is np.ndarray
    np.testing.assert_array_equal(gx.numpy(), g)
    gradgradcheck(lambda t: ops.ToDevice("cpu")(t) * t, [_t(x_np, grad=True)])


def test_to_device_unknown_name_raises():
    with pytest.raises(ValueError, match="unknown device"):
        _t([1.0]).to("cuda:x")
    with pytest.raises(ValueError, match="unknown device"):
        _t([1.0]).to("float64")                                            # a string is a device, as in PyTorch


@pytest.mark.gpu
@pytest.mark.parametrize("way", ["to", "cuda", "tensor"])
def test_to_cuda_and_back(way, device):
    if device != "cuda":
        pytest.skip("the cuda case of the device fixture")
    x_np = RNG.standard_normal((2, 3)).astype(np.float32)
    x = _t(x_np, grad=True, dtype=np.float32)
    on_gpu = Tensor(np.zeros(1, np.float64)).to("cuda")
    y = {"to": lambda: x.to("cuda"), "cuda": lambda: x.cuda(), "tensor": lambda: x.to(on_gpu)}[way]()
    assert y.device == "cuda" and y.requires_grad
    assert y.dtype == (np.float64 if way == "tensor" else np.float32)
    np.testing.assert_array_equal(tg.backend.to_numpy(y._data), x_np)
    assert y.to("cuda") is y and y.cuda() is y
    back = y.cpu()
    assert back.device == "cpu" and type(back._data) is np.ndarray
    g = RNG.standard_normal((2, 3)).astype(back.dtype)
    (gx,) = tg.grad((back * Tensor(g)).sum(), x)
    assert gx.device == "cpu" and gx.dtype == np.float32 and type(gx._data) is np.ndarray
    np.testing.assert_allclose(gx.numpy(), g.astype(np.float32))
    z = Tensor(tg.backend.to_device(g, "cuda"), requires_grad=True)
    (gz,) = tg.grad((z.cpu() * Tensor(g)).sum(), z)                        # CPU -> back to the GPU source
    assert gz.device == "cuda"
    np.testing.assert_array_equal(tg.backend.to_numpy(gz._data), g)
    with pytest.raises(ValueError, match=_msg("lt: all tensors must be on the same device, got cpu tensor of shape "
                                              "(2, 3), cuda tensor of shape (2, 3)")):
        _ = x < y
    with pytest.raises(ValueError, match=_msg("eq: all tensors must be on the same device, got cpu tensor of shape "
                                              "(2, 3), cuda tensor of shape (2, 3)")):
        _ = x == y


@pytest.mark.gpu
@pytest.mark.parametrize("op", ["max", "min"])
def test_max_min_dim_on_the_gpu(op, device):
    """The gather of the values indexes a device array with device aranges."""
    if device != "cuda":
        pytest.skip("the cuda case of the device fixture")
    x = Tensor(X_TIES).to("cuda")
    for dim in (0, 1):
        values, indices = getattr(x, op)(dim, keepdim=True)
        assert values.device == "cuda" and indices.device == "cuda"
        np.testing.assert_array_equal(tg.backend.to_numpy(values._data), getattr(np, op)(X_TIES, dim, keepdims=True))
        np.testing.assert_array_equal(tg.backend.to_numpy(indices._data),
                                      np.expand_dims(getattr(np, "arg" + op)(X_TIES, dim), dim))
        arg = getattr(x, "arg" + op)(dim, keepdim=True)
        assert arg.device == "cuda" and arg.dtype == np.int64
        np.testing.assert_array_equal(tg.backend.to_numpy(arg._data),
                                      np.expand_dims(getattr(np, "arg" + op)(X_TIES, dim), dim))


@pytest.mark.gpu
def test_device_results_stay_on_the_gpu(device):
    """Gradients of indexing and of maximum, and any/all, are device arrays for device inputs."""
    if device != "cuda":
        pytest.skip("the cuda case of the device fixture")
    x = Tensor(X_TIES).to("cuda").requires_grad_(True)
    (gx,) = tg.grad(x[[0, 0, 2]].sum(), x)
    assert gx.device == "cuda"
    np.testing.assert_array_equal(tg.backend.to_numpy(gx._data), [[2.0] * 4, [0.0] * 4, [1.0] * 4])
    (gx,) = tg.grad(x[1:, ::2].sum(), x)
    assert gx.device == "cuda"
    y = tg.maximum(x, 0.0)
    assert y.device == "cuda"
    (gx,) = tg.grad(y.sum(), x)
    assert gx.device == "cuda"
    np.testing.assert_array_equal(tg.backend.to_numpy(gx._data), (X_TIES > 0) + 0.5 * (X_TIES == 0))
    n = x.norm(dim=1)
    assert n.device == "cuda"
    np.testing.assert_allclose(tg.backend.to_numpy(n._data), np.linalg.norm(X_TIES, axis=1), rtol=1e-12)
    for out, ref in (((x > 0).any(), True), ((x > 0).all(), False)):
        assert out.device == "cuda" and out.dtype == np.bool_ and bool(out) is ref


# ---------------------------------------------------------------------------- t, __rmatmul__, add, sub

def test_t_of_a_matrix_vector_and_scalar():
    m_np = RNG.standard_normal((2, 3))
    m = _t(m_np, grad=True)
    np.testing.assert_array_equal(m.t().numpy(), m_np.T)
    y, g, gx = _vjp(lambda t: t.t(), m_np)
    np.testing.assert_array_equal(gx, g.T)
    v = _t([1.0, 2.0])
    assert v.t() is v
    s = _t(3.0)
    assert s.t() is s
    with pytest.raises(ValueError, match=_msg("t: expects a tensor with at most 2 dimensions, got shape (2, 1, 3); "
                                              "use transpose(dim0, dim1) or permute")):
        _t(np.zeros((2, 1, 3))).t()


def test_rmatmul():
    a_np, x_np = RNG.standard_normal((4, 2)), RNG.standard_normal((2, 3))
    x = _t(x_np, grad=True)
    for y in (a_np @ x, x.__rmatmul__(a_np), x.__rmatmul__(_t(a_np))):
        assert isinstance(y, Tensor) and y.requires_grad
        np.testing.assert_allclose(y.numpy(), a_np @ x_np, rtol=1e-12)
        g = RNG.standard_normal((4, 3))
        (gx,) = tg.grad((y * _t(g)).sum(), x)
        np.testing.assert_allclose(gx.numpy(), a_np.T @ g, rtol=1e-12)
    with pytest.raises(ValueError, match=_msg("matmul: shapes (4, 3) and (2, 3) are not aligned "
                                              "(need (..., n, k) @ (..., k, m))")):
        x.__rmatmul__(np.zeros((4, 3)))


@pytest.mark.parametrize("method,sign", [("add", 1.0), ("sub", -1.0)])
def test_add_sub_with_alpha(method, sign):
    a_np, b_np = RNG.standard_normal((2, 3)), RNG.standard_normal(3)
    for alpha in (1, 2, 0.5, -3.0, 0):
        a, b = _t(a_np, grad=True), _t(b_np, grad=True)
        y = getattr(a, method)(b, alpha=alpha)
        np.testing.assert_allclose(y.numpy(), a_np + sign * alpha * b_np, rtol=1e-15)
        ga, gb = tg.grad(y.sum(), [a, b])
        np.testing.assert_array_equal(ga.numpy(), np.ones((2, 3)))
        np.testing.assert_allclose(gb.numpy(), np.full(3, 2.0 * sign * alpha), rtol=1e-15)
        y = getattr(tg, method)(_t(a_np), b_np, alpha=alpha)                 # an array other
        np.testing.assert_allclose(y.numpy(), a_np + sign * alpha * b_np, rtol=1e-15)
        y = getattr(_t(a_np), method)(2.5, alpha)                            # a number, alpha positional
        np.testing.assert_allclose(y.numpy(), a_np + sign * alpha * 2.5, rtol=1e-15)
    y = getattr(_t(a_np), method)(b_np)                                      # alpha 1 by default
    np.testing.assert_allclose(y.numpy(), a_np + sign * b_np, rtol=1e-15)
    x32 = _t(a_np, dtype=np.float32)
    assert getattr(x32, method)(1.5, alpha=2).dtype == np.float32


@pytest.mark.parametrize("method", ["add", "sub"])
@pytest.mark.parametrize("dtype", [np.int32, np.int16, np.uint8])
def test_add_sub_keep_a_narrow_integer_dtype(method, dtype):
    """int32 + int32 is int32 (as PyTorch): alpha = 1 adds ``other`` as it is, no int64 factor in between."""
    a, b = Tensor(np.array([5, 7], dtype=dtype)), Tensor(np.array([1, 2], dtype=dtype))
    y = getattr(a, method)(b)
    assert y.dtype == dtype
    np.testing.assert_array_equal(y.numpy(), [6, 9] if method == "add" else [4, 5])


def test_rpow_square_abs_view_as_expand_as():
    x_np = np.array([-1.5, 0.0, 2.0])
    y, g, gx = _vjp(lambda t: 3.0 ** t, x_np)
    np.testing.assert_allclose(y, 3.0 ** x_np, rtol=1e-14)
    np.testing.assert_allclose(gx, g * np.log(3.0) * 3.0 ** x_np, rtol=1e-14)
    y, g, gx = _vjp(lambda t: t.square(), x_np)
    np.testing.assert_array_equal(y, x_np ** 2)
    np.testing.assert_allclose(gx, 2 * g * x_np, rtol=1e-15)
    y, g, gx = _vjp(lambda t: t.abs(), x_np)                                  # torch: d|x|/dx = 0 at 0
    np.testing.assert_array_equal(gx, g * np.sign(x_np))
    m = _t(np.arange(6.0))
    assert m.view_as(_t(np.zeros((2, 3)))).shape == (2, 3)
    assert m.reshape_as(_t(np.zeros((3, 2)))).shape == (3, 2)
    v = _t([[1.0], [2.0]])
    np.testing.assert_array_equal(v.expand_as(_t(np.zeros((2, 3)))).numpy(), [[1.0] * 3, [2.0] * 3])


def test_mul_div_methods():
    a_np, b_np = RNG.standard_normal((2, 3)), RNG.standard_normal(3) + 3.0
    np.testing.assert_allclose(_t(a_np).mul(_t(b_np)).numpy(), a_np * b_np, rtol=1e-15)
    np.testing.assert_allclose(_t(a_np).div(_t(b_np)).numpy(), a_np / b_np, rtol=1e-15)
    np.testing.assert_allclose(tg.mul(_t(a_np), 2.0).numpy(), a_np * 2.0, rtol=1e-15)
    np.testing.assert_allclose(tg.div(_t(a_np), 2.0).numpy(), a_np / 2.0, rtol=1e-15)


# ---------------------------------------------------------------------------- MatMul

@pytest.mark.parametrize("sa,sb", [((3, 4), (4, 2)), ((2, 3, 4), (4, 5)), ((3, 4), (2, 4, 5)), ((1, 3, 4), (2, 4, 2)),
                                   ((2, 1, 3, 4), (3, 4, 2)), ((1, 1), (1, 1))])
def test_matmul_values_and_gradients(sa, sb):
    a_np, b_np = RNG.standard_normal(sa), RNG.standard_normal(sb)
    a, b = _t(a_np, grad=True), _t(b_np, grad=True)
    y = a @ b
    np.testing.assert_allclose(y.numpy(), a_np @ b_np, rtol=1e-12)
    for z in (a.matmul(b), a.mm(b), tg.matmul(a, b), tg.mm(a, b)):
        np.testing.assert_allclose(z.numpy(), a_np @ b_np, rtol=1e-12)
    g = RNG.standard_normal(y.shape)
    ga, gb = tg.grad((y * _t(g)).sum(), [a, b])
    gb_ref = np.swapaxes(a_np, -1, -2) @ g
    np.testing.assert_allclose(ga.numpy(), _sum_to(g @ np.swapaxes(b_np, -1, -2), sa), rtol=1e-12)
    np.testing.assert_allclose(gb.numpy(), _sum_to(gb_ref, sb), rtol=1e-12)
    gradgradcheck(lambda u, v: u @ v, [_t(a_np, grad=True), _t(b_np, grad=True)])


def _sum_to(g, shape):
    lead = g.ndim - len(shape)
    g = g.sum(axis=tuple(range(lead))) if lead else g
    axes = tuple(i for i, s in enumerate(shape) if s == 1 and g.shape[i] != 1)
    return g.sum(axis=axes, keepdims=True) if axes else g


def test_matmul_gradient_only_where_needed():
    a_np, b_np = RNG.standard_normal((3, 4)), RNG.standard_normal((4, 2))
    a = _t(a_np, grad=True)
    (ga,) = tg.grad((a @ _t(b_np)).sum(), a)
    np.testing.assert_allclose(ga.numpy(), np.ones((3, 2)) @ b_np.T, rtol=1e-12)
    b = _t(b_np, grad=True)
    (gb,) = tg.grad((_t(a_np) @ b).sum(), b)
    np.testing.assert_allclose(gb.numpy(), a_np.T @ np.ones((3, 2)), rtol=1e-12)


@pytest.mark.parametrize("sa,sb", [((3,), (3, 2)), ((2, 3), (3,)), ((2, 3), (2, 3)), ((2, 2, 3), (4, 2))])
def test_matmul_errors(sa, sb):
    with pytest.raises(ValueError, match=_msg(f"matmul: shapes {sa} and {sb} are not aligned "
                                              "(need (..., n, k) @ (..., k, m))")):
        _t(np.zeros(sa)) @ _t(np.zeros(sb))


# ---------------------------------------------------------------------------- Concat

@pytest.mark.parametrize("axis", [0, 1, -1, 2, -3])
def test_concat_values_and_gradient(axis):
    shapes = [(2, 3, 4), (2, 3, 4), (2, 3, 4)]
    shapes = [tuple(k + 1 if d == axis % 3 else s for d, s in enumerate(sh)) for k, sh in enumerate(shapes)]
    xs_np = [RNG.standard_normal(s) for s in shapes]
    xs = [_t(x, grad=True) for x in xs_np]
    for y in (tg.cat(xs, dim=axis), ops.Concat(axis)(*xs)):
        np.testing.assert_array_equal(y.numpy(), np.concatenate(xs_np, axis=axis))
    g = RNG.standard_normal(y.shape)
    grads = tg.grad((y * _t(g)).sum(), xs)
    start = 0
    for gx, s in zip(grads, shapes):
        n = s[axis]
        np.testing.assert_array_equal(gx.numpy(), np.take(g, range(start, start + n), axis=axis))
        start += n
    gradgradcheck(lambda a, b: ops.Concat(axis)(a, b) * 2.0, [_t(xs_np[0], grad=True), _t(xs_np[1], grad=True)])


def test_concat_errors():
    with pytest.raises(ValueError, match=_msg("cat: tensor 1 has shape (2, 4), which does not match shape (3, 3) "
                                              "outside axis 0")):
        tg.cat([_t(np.zeros((3, 3))), _t(np.zeros((2, 4)))], dim=0)
    with pytest.raises(ValueError, match=_msg("cat: tensor 2 has shape (3,), which does not match shape (3, 3) "
                                              "outside axis -1")):
        tg.cat([_t(np.zeros((3, 3))), _t(np.zeros((3, 1))), _t(np.zeros(3))], dim=-1)
    with pytest.raises(ValueError, match=_msg("cat: tensor 1 has shape (4, 3), which does not match shape (3, 3) "
                                              "outside axis 1")):
        tg.cat([_t(np.zeros((3, 3))), _t(np.zeros((4, 3)))], dim=1)
    y = tg.cat([_t(np.zeros((3, 3))), _t(np.ones((3, 1)))], dim=-1)       # only the axis may differ
    assert y.shape == (3, 4)


# ---------------------------------------------------------------------------- GetItem, GetItemGrad

@pytest.mark.parametrize("index", [1, -1, slice(1, 3), (0, slice(None)), (Ellipsis, 1), (None, 0), np.int64(2),
                                   (slice(None), [0, 2, 2]), [3, 0, 3, 3], (np.array([0, 1, 1]), np.array([2, 2, 2])),
                                   np.array([True, False, True, True]), (slice(None, None, -1), 1)])
def test_getitem_values_and_scatter_gradient(index):
    x_np = RNG.standard_normal((4, 3))
    y, g, gx = _vjp(lambda t: t[index], x_np)
    np.testing.assert_array_equal(y, x_np[index])
    ref = np.zeros_like(x_np)
    np.add.at(ref, index, g)                                                 # repeated indices add up
    np.testing.assert_array_equal(gx, ref)
    gradgradcheck(lambda t: t[index] * 3.0, [_t(x_np, grad=True)])


def test_getitem_with_tensor_indices():
    x_np = RNG.standard_normal((4, 3))
    mask = Tensor(np.array([True, False, True, False]))
    rows = Tensor(np.array([3, 3, 1]))
    for index, np_index in ((mask, mask.numpy()), (rows, rows.numpy()), ((rows, 2), (rows.numpy(), 2)),
                            ((slice(None), Tensor(np.array([0, 0]))), (slice(None), np.array([0, 0])))):
        y, g, gx = _vjp(lambda t: t[index], x_np)
        np.testing.assert_array_equal(y, x_np[np_index])
        ref = np.zeros_like(x_np)
        np.add.at(ref, np_index, g)
        np.testing.assert_array_equal(gx, ref)
    arr = np.array([1, 2])
    assert ops._index(arr) is arr
    assert ops._index(3) == 3
    assert ops._index(rows) is rows._data
    out = ops._index((rows, 1, mask))
    assert isinstance(out, tuple) and out[0] is rows._data and out[1] == 1 and out[2] is mask._data
    assert ops._index([0, 1]) == [0, 1]


def test_getitem_gradient_dtype_and_function():
    x = _t([1.0, 2.0, 3.0], grad=True, dtype=np.float32)
    (gx,) = tg.grad(x[[0, 0]].sum(), x)
    assert gx.dtype == np.float32
    np.testing.assert_array_equal(gx.numpy(), [2.0, 0.0, 0.0])
    f = ops.GetItemGrad(([1, 1, 0],), (3,))
    np.testing.assert_array_equal(f(_t([1.0, 2.0, 4.0])).numpy(), [4.0, 3.0, 0.0])
    f = ops.GetItemGrad(slice(0, 2), [3])
    np.testing.assert_array_equal(f(_t([1.0, 2.0])).numpy(), [1.0, 2.0, 0.0])


def test_getitem_error():
    with pytest.raises(IndexError, match=r"^getitem: index 5 is invalid for a tensor of shape \(3,\): "
                                         r"index 5 is out of bounds for axis 0 with size 3$"):
        _t([1.0, 2.0, 3.0])[5]
    with pytest.raises(IndexError, match=r"^getitem: index \(0, 0\) is invalid for a tensor of shape \(3,\): .+$"):
        _t([1.0, 2.0, 3.0])[0, 0]


# ---------------------------------------------------------------------------- function forms, installation

def test_function_forms_call_the_method():
    forms = ops.function_forms()
    assert set(forms) == set(ops.FUNCTION_FORMS) and len(forms) == len(ops.FUNCTION_FORMS)
    for name, fn in forms.items():
        assert fn.__name__ == name and fn.__qualname__ == name
        assert fn.__doc__ == f"``tinygan.{name}(t, ...)`` is ``t.{name}(...)``, as ``torch.{name}``."
        assert getattr(tg, name).__name__ == name
    x_np = RNG.standard_normal((3, 4))
    np.testing.assert_allclose(forms["mean"](_t(x_np), dim=1).numpy(), x_np.mean(1), rtol=1e-12)
    np.testing.assert_allclose(forms["sum"](_t(x_np), 0, True).numpy(), x_np.sum(0, keepdims=True), rtol=1e-12)
    np.testing.assert_array_equal(forms["reshape"](_t(x_np), (4, 3)).numpy(), x_np.reshape(4, 3))
    np.testing.assert_array_equal(forms["transpose"](_t(x_np), 0, 1).numpy(), x_np.T)
    np.testing.assert_allclose(forms["exp"](_t(x_np)).numpy(), np.exp(x_np), rtol=1e-12)
    fn = ops._function_form("amax")
    assert fn.__name__ == "amax" and fn(_t(x_np), dim=0).shape == (4,)


@pytest.mark.parametrize("name", ["mean", "split", "norm"])
def test_function_form_needs_a_tensor(name):
    with pytest.raises(TypeError, match=_msg(f"tinygan.{name}: expected a Tensor as first argument, got list; "
                                             "make one with tinygan.tensor(...)")):
        getattr(tg, name)([1.0, 2.0])
    with pytest.raises(TypeError, match=_msg(f"tinygan.{name}: expected a Tensor as first argument, got ndarray; "
                                             "make one with tinygan.tensor(...)")):
        ops.function_forms()[name](np.ones(2))


def test_install_tensor_methods_copies_functions_and_properties_only():
    ops.install_tensor_methods()                                             # idempotent
    members = vars(ops.TensorMethods)
    copied = [n for n, v in members.items() if isinstance(v, (type(ops.sum_to), property))]
    assert {"split", "norm", "to", "T", "__eq__", "__rmatmul__", "view"} <= set(copied)
    for name in copied:
        assert vars(Tensor)[name] is members[name], name
    assert isinstance(vars(Tensor)["T"], property)
    assert Tensor.__doc__ != ops.TensorMethods.__doc__                       # not the class's own attributes
    assert Tensor.__module__ == "tinygan.autograd"
    assert Tensor.__hash__ is not None
    x_np = RNG.standard_normal((2, 3))
    np.testing.assert_array_equal(_t(x_np).T.numpy(), x_np.T)
    assert [p.shape for p in _t(x_np).split(2, 1)] == [(2, 2), (2, 1)]


# ---------------------------------------------------------------------------- helpers

def test_axis_and_keep_helpers():
    assert ops._axis(None, None) is None
    assert ops._axis(1, None) == 1
    assert ops._axis(None, 2) == 2
    assert ops._axis([0, 1], None) == (0, 1)
    assert ops._axis(None, [1, 2]) == (1, 2)
    assert ops._axis((0, 1), None) == (0, 1)
    with pytest.raises(TypeError, match=_msg("pass either axis or dim, not both")):
        ops._axis(0, 1)
    assert ops._keep(False, None) is False
    assert ops._keep(True, None) is True
    assert ops._keep(0, 1) is True
    assert ops._keep(1, False) is False
    assert ops._keep(1, 0) is False


def test_count_and_shapes_helpers():
    assert ops._count((3, 4, 5), None) == 60
    assert ops._count((), None) == 1
    assert ops._count((3, 4, 5), 1) == 4
    assert ops._count((3, 4, 5), -1) == 5
    assert ops._count((3, 4, 5), (0, 2)) == 15
    assert type(ops._count((3, 4), (0, 1))) is int and type(ops._count((3, 4), None)) is int
    assert ops._keepdims_shape((3, 4, 5), None) == (1, 1, 1)
    assert ops._keepdims_shape((3, 4, 5), 1) == (3, 1, 5)
    assert ops._keepdims_shape((3, 4, 5), -1) == (3, 4, 1)
    assert ops._keepdims_shape((3, 4, 5), (0, -1)) == (1, 4, 1)
    assert ops._reduced_shape((3, 4, 5), None) == ()
    assert ops._reduced_shape((3, 4, 5), 1) == (3, 5)
    assert ops._reduced_shape((3, 4, 5), -3) == (4, 5)
    assert ops._reduced_shape((3, 4, 5), (0, -1)) == (4,)
    assert ops._reduced_shape((3, 1, 5), (2, 1)) == (3,)


def test_sum_to_and_check_broadcast():
    g = _t(RNG.standard_normal((2, 3, 4)))
    assert ops.sum_to(g, (2, 3, 4)) is g
    assert ops.sum_to(g, [2, 3, 4]) is g
    for shape in ((3, 4), (1, 4), (2, 1, 4), (4,), (), (3, 1), (1, 1, 1)):
        out = ops.sum_to(g, shape)
        assert out.shape == shape
        np.testing.assert_allclose(out.numpy(), _sum_to(g.numpy(), shape).reshape(shape), rtol=1e-12)
    out = ops.sum_to(g, [3, 1])
    assert out.shape == (3, 1)
    ops._check_broadcast("add", np.zeros((2, 1)), np.zeros(3))
    with pytest.raises(ValueError, match=_msg("mul: shapes (2, 3) and (4,) cannot be broadcast together")):
        ops._check_broadcast("mul", np.zeros((2, 3)), np.zeros(4))
    with pytest.raises(ValueError, match=_msg("add: shapes (2, 3) and (4,) cannot be broadcast together")):
        _t(np.zeros((2, 3))) + _t(np.zeros(4))


# ------------------------------------------------------------------ shape methods: defaults and PyTorch's rules

def test_flatten_defaults_ranges_and_a_0d_tensor():
    x_np = RNG.standard_normal((2, 3, 4, 5))
    x = _t(x_np)
    assert x.flatten().shape == (120,)                                       # start_dim 0, end_dim -1
    assert x.flatten(1).shape == (2, 60)
    assert x.flatten(1, 2).shape == (2, 12, 5)
    assert x.flatten(0, 1).shape == (6, 4, 5)
    assert x.flatten(-3, -2).shape == (2, 12, 5)
    np.testing.assert_array_equal(x.flatten(1, 2).numpy(), x_np.reshape(2, 12, 5))
    assert _t(3.0).flatten().shape == (1,)                                   # a 0-d tensor becomes (1,), as PyTorch


def test_transpose_defaults_to_the_first_two_dims():
    x_np = RNG.standard_normal((2, 3, 4))
    np.testing.assert_array_equal(_t(x_np).transpose().numpy(), np.swapaxes(x_np, 0, 1))
    np.testing.assert_array_equal(_t(x_np).transpose(-1, 0).numpy(), np.swapaxes(x_np, 2, 0))


def test_permute_with_negative_dims_and_its_gradient():
    x_np = RNG.standard_normal((2, 3, 4))
    y = _t(x_np).permute(-1, 0, -2)
    np.testing.assert_array_equal(y.numpy(), np.transpose(x_np, (2, 0, 1)))
    g = _t(RNG.standard_normal((4, 2, 3)))
    gradcheck(lambda t: t.permute(-1, 0, -2) * g, [_t(x_np, grad=True)])


@pytest.mark.parametrize("dim,shape", [(0, (1, 2, 3)), (1, (2, 1, 3)), (2, (2, 3, 1)),
                                       (-1, (2, 3, 1)), (-2, (2, 1, 3)), (-3, (1, 2, 3))])
def test_unsqueeze_every_position(dim, shape):
    assert _t(np.zeros((2, 3))).unsqueeze(dim).shape == shape


@pytest.mark.parametrize("dim", [3, -4])
def test_unsqueeze_out_of_range(dim):
    with pytest.raises(IndexError, match=_msg(f"unsqueeze: dim {dim} is out of range for a tensor of shape (2, 3) "
                                              "(expected -3 to 2)")):
        _t(np.zeros((2, 3))).unsqueeze(dim)


def test_squeeze_one_dim_only_when_it_is_1():
    x = _t(np.zeros((2, 1, 3)))
    assert x.squeeze(1).shape == (2, 3)
    assert x.squeeze(-2).shape == (2, 3)
    assert x.squeeze(0) is x                                                 # size 2: left alone, as PyTorch
    assert x.squeeze(2) is x
    assert x.squeeze().shape == (2, 3)


def test_expand_sizes_and_minus_one():
    x_np = RNG.standard_normal((3, 1))
    x = _t(x_np)
    assert x.expand(3, 4).shape == (3, 4)
    assert x.expand((3, 4)).shape == (3, 4) and x.expand([3, 4]).shape == (3, 4)
    assert x.expand(-1, 4).shape == (3, 4)                                   # -1 keeps the size
    assert x.expand(2, -1, 4).shape == (2, 3, 4)                             # a new leading dim
    np.testing.assert_array_equal(x.expand(2, -1, 4).numpy(), np.broadcast_to(x_np, (2, 3, 4)))
    assert _t(np.zeros(1)).expand(4).shape == (4,)
    g = _t(RNG.standard_normal((2, 3, 4)))
    gradcheck(lambda t: t.expand(2, -1, 4) * g, [_t(x_np, grad=True)])


@pytest.mark.parametrize("sizes", [(-1, 3, 1), (4,), (3,)])
def test_expand_refuses_a_missing_size_or_a_new_minus_one(sizes):
    with pytest.raises(ValueError, match=_msg(f"expand: sizes {sizes} for a tensor of shape (3, 1): give a size for "
                                              "every dim (-1 keeps one), and no -1 for a new leading dim "
                                              "(as torch.Tensor.expand)")):
        _t(np.zeros((3, 1))).expand(*sizes)


@pytest.mark.parametrize("method,ref", [("sum", np.sum), ("mean", np.mean)])
def test_sum_and_mean_keepdim_in_both_spellings(method, ref):
    x_np = RNG.standard_normal((2, 3, 4))
    x = _t(x_np)
    for kwargs in ({"dim": 1, "keepdim": True}, {"axis": 1, "keepdims": True}):
        y = getattr(x, method)(**kwargs)
        assert y.shape == (2, 1, 4)
        np.testing.assert_allclose(y.numpy(), ref(x_np, axis=1, keepdims=True), rtol=1e-12)
    assert getattr(x, method)(dim=1).shape == (2, 4)
    assert ops.Sum(axis=1)(x).shape == (2, 4)                                # the Function's default: keepdims False


def test_matmul_with_an_array_on_the_right():
    x_np, w = RNG.standard_normal((2, 3)), RNG.standard_normal((3, 4))
    y = _t(x_np) @ w
    np.testing.assert_allclose(y.numpy(), x_np @ w, rtol=1e-12)
    np.testing.assert_allclose((w.T @ _t(x_np).T).numpy(), w.T @ x_np.T, rtol=1e-12)
