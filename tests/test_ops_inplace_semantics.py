"""tinygan.ops' in-place updates against NumPy references of their docstrings and PyTorch's written rules (torch-free).

One of the ``ops`` mutation group's files (scripts/mutation.sh); PyTorch parity for the same methods lives in
tests/test_inplace.py.  It checks ``add_``/``sub_``/``mul_``/``div_`` (with ``alpha``, its default, broadcasting
of the other operand, integer tensors and the casting errors of each), ``clamp_``/``clip_``, ``fill_``/``zero_``,
``fill_values_`` (what ``normal_``/``uniform_`` end in), ``copy_`` and ``t[index] = v`` on both of their paths:

* the plain array write (grad mode off, or nothing requires grad): the tensor's own memory is written, so every
  NumPy view of it sees the change, and its version goes up by exactly one;
* recorded in the graph (grad mode on, and the tensor or the other operand requires grad): the tensor takes a new
  array and ``grad_fn``, views of the old memory keep the old values, gradients by ``gradcheck`` in float64 and by
  explicit arrays (``SetItem``: gx = g where the index did not write, gv = sum_to(g[index]); ``Overwrite``: no
  gradient to the old values; ``copy_``: the gradient flows to the source);

and PyTorch's rules: a leaf that requires grad changes only under ``no_grad``, a broadcast (stride-0) or read-only
array is refused, the result keeps the tensor's shape and dtype, a graph that saved the changed tensor refuses its
backward.  Every error message is matched whole.  The other operand's device is checked with a tensor that says
it lives on ``cuda`` (no GPU needed).
"""
from __future__ import annotations

import re

import numpy as np
import pytest

import tinygan as tg
from tinygan import ops
from tinygan.testing import gradcheck, gradgradcheck

RNG = np.random.default_rng(0)


def _t(a, grad=False, dtype=np.float64):
    return tg.Tensor(np.asarray(a, dtype=dtype), requires_grad=grad)


def _nonleaf(a, dtype=np.float64):
    """x (a leaf that requires grad) and h = x * 1, a non-leaf with x's values that in-place ops may change."""
    x = _t(a, grad=True, dtype=dtype)
    return x, x * 1.0


def _full(msg: str) -> str:
    """A regex matching exactly ``msg``."""
    return "^" + re.escape(msg) + "$"


class _OnOtherDevice(tg.Tensor):
    """A CPU tensor that says it lives on ``cuda``: what the device checks see, without a GPU.

    ``to(device)`` records the device asked for and returns a plain CPU tensor of the same values.
    """

    @property
    def device(self):
        return "cuda"

    def to(self, device=None, dtype=None):
        self.moved_to = device
        return tg.Tensor(self._data.copy())


def _leaf_message(name, shape):
    return _full(f"{name}: a leaf Variable that requires grad is being used in an in-place operation (a tensor of "
                 f"shape {shape}). Parameters are updated under no_grad, as an optimizer does: "
                 "`with tinygan.no_grad(): p -= lr * p.grad`")


# ---------------------------------------------------------------------------- the array path

_BINARY = {"add_": lambda a, b: a + b, "sub_": lambda a, b: a - b, "mul_": lambda a, b: a * b,
           "div_": lambda a, b: a / b}


@pytest.mark.parametrize("name,alpha", [("add_", None), ("add_", 2), ("add_", -0.5), ("sub_", None), ("sub_", 2),
                                        ("sub_", 3.5), ("mul_", None), ("div_", None)])
@pytest.mark.parametrize("kind", ["tensor", "array", "scalar"])
def test_binary_ops_write_the_tensors_own_memory(name, alpha, kind):
    base = RNG.standard_normal((2, 3))
    ref = base.copy()
    row = base[1]                                               # a NumPy view of the tensor's memory
    other = {"tensor": _t(RNG.uniform(1, 2, 3)), "array": RNG.uniform(1, 2, 3), "scalar": 1.75}[kind]
    o = other.numpy() if kind == "tensor" else other
    t = tg.Tensor(base)
    v0 = t._version
    out = getattr(t, name)(other) if alpha is None else getattr(t, name)(other, alpha=alpha)
    expected = _BINARY[name](ref, o * (1 if alpha is None else alpha))
    assert out is t and t._data is base                         # same tensor, same memory
    np.testing.assert_allclose(base, expected, rtol=1e-15)
    np.testing.assert_allclose(row, expected[1], rtol=1e-15)    # the view sees the write
    assert t._version == v0 + 1
    assert t.requires_grad is False and t.grad_fn is None


@pytest.mark.parametrize("name", ["add_", "sub_"])
def test_alpha_defaults_to_one_and_scales_the_other_operand(name):
    for alpha, ref in [((), _BINARY[name](10.0, 4.0)), ((1,), _BINARY[name](10.0, 4.0)),
                       ((2,), _BINARY[name](10.0, 8.0)), ((0.25,), _BINARY[name](10.0, 1.0))]:
        t = _t([10.0])
        getattr(t, name)(_t([4.0]), *alpha)
        assert t.item() == ref


def test_augmented_assignment_is_the_inplace_method():
    base = np.array([1.0, 2.0, 4.0])
    t = tg.Tensor(base)
    t0 = t
    t += 1.0
    t -= np.array([0.5, 0.5, 1.0])
    t *= 4.0
    t /= _t([2.0, 4.0, 8.0])
    assert t is t0 and t._data is base and t._version == 4
    np.testing.assert_array_equal(base, [3.0, 2.5, 2.0])


def test_integer_tensors_stay_integers_and_uint8_bool_arrays_are_writable():
    base = np.array([1, 2, 3], dtype=np.int32)
    t = tg.Tensor(base)
    t.add_(4).mul_(np.array([2, 3, 4], dtype=np.int32)).sub_(1, alpha=3)
    assert t.dtype == np.int32 and t._data is base
    np.testing.assert_array_equal(base, [7, 15, 25])
    u = tg.Tensor(np.array([1, 2, 3], dtype=np.uint8))          # strides of 1 byte
    u.add_(np.uint8(2))
    np.testing.assert_array_equal(u.numpy(), [3, 4, 5])
    b = tg.Tensor(np.zeros(3, dtype=bool))
    b[1] = True
    np.testing.assert_array_equal(b.numpy(), [False, True, False])


# Casting follows NumPy's same_kind rule; the message names NumPy's result type of the out-of-place op.
@pytest.mark.parametrize("dtype,name,other,result,symbol", [
    (np.int16, "add_", np.array([0.5, 1.5], np.float32), "float32", "+"),
    (np.int8, "sub_", np.array([0.5, 1.5], np.float64), "float64", "-"),
    (np.int32, "mul_", np.array([0.5, 1.5], np.float32), "float64", "*"),
    (np.int32, "div_", 2, "float64", "/"),
    (np.int16, "div_", 2, "float32", "/"),
    (np.int64, "add_", 0.5, "float64", "+"),
])
def test_a_wider_result_type_cannot_be_written_into_an_integer_tensor(dtype, name, other, result, symbol):
    base = np.array([3, 4], dtype=dtype)
    t = tg.Tensor(base)
    with pytest.raises(TypeError, match=_full(
            f"{name}: result type {result} can't be cast to the desired output type {np.dtype(dtype)}; use the "
            f"out-of-place form (t = t {symbol} x), which keeps the wider type")):
        getattr(t, name)(other)
    np.testing.assert_array_equal(base, [3, 4])
    assert t._version == 0


def test_a_float32_tensor_takes_float64_operands_in_place():
    base = np.array([1.0, 2.0], np.float32)
    t = tg.Tensor(base)
    t.add_(np.array([0.25, 0.5]))
    t.div_(_t([2.0, 4.0]))
    assert t.dtype == np.float32 and t._data is base
    np.testing.assert_array_equal(base, np.array([0.625, 0.625], np.float32))


@pytest.mark.parametrize("name", list(_BINARY))
def test_the_result_must_keep_the_tensors_shape(name):
    t = _t(np.ones(3))
    with pytest.raises(RuntimeError, match=_full(f"{name}: output with shape (3,) doesn't match the broadcast "
                                                 "shape (2, 3)")):
        getattr(t, name)(np.ones((2, 3)))
    with pytest.raises(ValueError, match=_full(f"{name}: shapes (3,) and (4,) cannot be broadcast together")):
        getattr(t, name)(np.ones(4))
    with pytest.raises(ValueError, match=_full(f"{name}: shapes (3,) and (2, 1, 2) cannot be broadcast together")):
        getattr(t, name)(_t(np.ones((2, 1, 2))))
    np.testing.assert_array_equal(t.numpy(), np.ones(3))
    assert t._version == 0
    getattr(t, name)(np.full((1, 3), 2.0)[0])                   # a broadcastable one is fine
    getattr(t, name)(_t(2.0))
    assert t._version == 2


@pytest.mark.parametrize("name", list(_BINARY))
def test_the_other_operand_must_be_on_the_tensors_device(name):
    t = _t([1.0, 2.0])
    other = _OnOtherDevice(np.ones(2))
    with pytest.raises(ValueError, match=_full(f"{name}: the other operand is on cuda, the tensor on cpu; move "
                                               "one of them with .to()")):
        getattr(t, name)(other)
    np.testing.assert_array_equal(t.numpy(), [1.0, 2.0])


# ---------------------------------------------------------------------------- writable arrays

_WRITES = {
    "add_": lambda t: t.add_(1.0), "sub_": lambda t: t.sub_(1.0), "mul_": lambda t: t.mul_(2.0),
    "div_": lambda t: t.div_(2.0), "clamp_": lambda t: t.clamp_(0.0, 1.0), "fill_": lambda t: t.fill_(3.0),
    "zero_": lambda t: t.zero_(), "copy_": lambda t: t.copy_(np.ones(3)),
    "setitem": lambda t: t.__setitem__(0, 5.0), "normal_": lambda t: t.fill_values_("normal_", np.ones(3)),
}
_NAME = {"zero_": "fill_"}                                      # zero_ is fill_(0)


@pytest.mark.parametrize("op", list(_WRITES))
def test_a_broadcast_view_is_refused(op):
    t = _t([1.0, 2.0, 3.0]).expand(2, 3)                        # stride 0 along a dim of size 2
    with pytest.raises(RuntimeError, match=_full(
            f"{_NAME.get(op, op)}: unsupported operation: more than one element of the written-to tensor refers to "
            "a single memory location (a broadcast view of shape (2, 3), as expand() makes). Please clone() the "
            "tensor before performing the operation.")):
        _WRITES[op](t)
    c = t.clone()                                               # the advice works
    _WRITES[op](c)
    assert c._version == 1


@pytest.mark.parametrize("op", list(_WRITES))
def test_a_read_only_array_is_refused_and_a_stride_0_dim_of_size_1_is_not(op):
    a = np.array([1.0, 2.0, 3.0])
    a.flags.writeable = False
    with pytest.raises(RuntimeError, match=_full(f"{_NAME.get(op, op)}: the tensor's array (shape (3,)) is "
                                                 "read-only; clone() the tensor first")):
        _WRITES[op](tg.Tensor(a))
    np.testing.assert_array_equal(a, [1.0, 2.0, 3.0])
    base = np.array([1.0, 2.0, 3.0])
    t = tg.Tensor(base[None])                                   # shape (1, 3), strides (0, 8): writable
    assert t._data.strides[0] == 0
    _WRITES[op](t)
    assert t._version == 1 and not np.array_equal(base, [1.0, 2.0, 3.0])


# ---------------------------------------------------------------------------- the leaf rule

_LEAF_OPS = dict(_WRITES, copy_grad=lambda t: t.copy_(_t(np.ones(3), grad=True)),
                 setitem_grad=lambda t: t.__setitem__(0, _t(5.0, grad=True)),
                 add_grad=lambda t: t.add_(_t(np.ones(3), grad=True)),
                 uniform_=lambda t: t.fill_values_("uniform_", np.ones(3)))


@pytest.mark.parametrize("op", list(_LEAF_OPS))
def test_a_leaf_that_requires_grad_changes_only_under_no_grad(op):
    name = _NAME.get(op, op).replace("_grad", "")
    name = {"copy": "copy_", "add": "add_"}.get(name, name)
    base = np.array([0.5, 2.0, 3.0])
    p = tg.Tensor(base, requires_grad=True)
    with pytest.raises(RuntimeError, match=_leaf_message(name, (3,))):
        _LEAF_OPS[op](p)
    np.testing.assert_array_equal(base, [0.5, 2.0, 3.0])
    assert p._version == 0
    with tg.no_grad():
        out = _LEAF_OPS[op](p)
    assert out is None or out is p
    assert p._data is base and p._version == 1                  # written in place, not recorded
    assert not np.array_equal(base, [0.5, 2.0, 3.0])
    assert p.requires_grad and p.grad_fn is None and p.is_leaf


def test_a_non_leaf_or_a_constant_is_changed_in_grad_mode():
    x, h = _nonleaf([1.0, 2.0])
    h.add_(1.0)                                                 # a non-leaf: recorded, no error
    c = _t([1.0, 2.0])
    c.add_(1.0)                                                 # a constant: a plain write
    np.testing.assert_array_equal(h.numpy(), [2.0, 3.0])
    np.testing.assert_array_equal(c.numpy(), [2.0, 3.0])


# ---------------------------------------------------------------------------- the graph path

@pytest.mark.parametrize("name,alpha", [("add_", 1), ("add_", 2), ("sub_", 1), ("sub_", -3), ("mul_", 1),
                                        ("div_", 1)])
def test_recorded_binary_ops_are_differentiable(name, alpha):
    def f(x, w):
        h = x * 1.0
        if alpha == 1:
            getattr(h, name)(w)
        else:
            getattr(h, name)(w, alpha=alpha)
        return h * h
    x = _t(RNG.uniform(1, 2, (2, 3)), grad=True)
    w = _t(RNG.uniform(1, 2, 3), grad=True)                   # broadcast over the rows
    assert gradcheck(f, [x, w])
    assert gradgradcheck(f, [x, w])
    y = f(x, w)
    np.testing.assert_allclose(y.numpy(), _BINARY[name](x.numpy(), alpha * w.numpy()) ** 2, rtol=1e-14)


@pytest.mark.parametrize("name", list(_BINARY))
def test_a_recorded_op_takes_new_memory_and_bumps_the_version_once(name):
    x, h = _nonleaf([1.0, 2.0, 4.0])
    old = h._data
    kept = h.detach()                                           # a view of the old memory
    v0 = h._version
    w = _t([2.0, 2.0, 2.0], grad=True)
    out = getattr(h, name)(w)
    assert out is h and h._data is not old
    assert type(h.grad_fn).__name__ == {"add_": "Add", "sub_": "Sub", "mul_": "Mul", "div_": "Div"}[name]
    assert h.requires_grad and not h.is_leaf
    assert h._version == v0 + 1
    np.testing.assert_array_equal(kept.numpy(), [1.0, 2.0, 4.0])  # old views keep the old values
    np.testing.assert_array_equal(h.numpy(), _BINARY[name](np.array([1.0, 2.0, 4.0]), 2.0))
    getattr(h, name)(1.0)                                       # a second one: version v0 + 2
    assert h._version == v0 + 2
    gx, gw = tg.grad(h.sum(), [x, w])
    d = {"add_": (1.0, 1.0), "sub_": (1.0, -1.0), "mul_": (2.0, np.array([1.0, 2.0, 4.0])),
         "div_": (0.5, -np.array([1.0, 2.0, 4.0]) / 4.0)}[name]
    np.testing.assert_allclose(gx.numpy(), np.broadcast_to(d[0], (3,)), rtol=1e-15)
    np.testing.assert_allclose(gw.numpy(), np.broadcast_to(d[1], (3,)), rtol=1e-15)


@pytest.mark.parametrize("name", list(_BINARY))
def test_a_constant_joins_the_graph_through_an_op_with_an_operand_that_requires_grad(name):
    base = np.array([3.0, 6.0])
    c = tg.Tensor(base)
    w = _t([1.5, 2.0], grad=True)
    getattr(c, name)(w)
    assert c.requires_grad and c.grad_fn is not None
    assert c._data is not base and c._version == 1
    np.testing.assert_array_equal(base, [3.0, 6.0])             # the old memory is left intact
    (gw,) = tg.grad(c.sum(), w)
    ref = {"add_": [1.0, 1.0], "sub_": [-1.0, -1.0], "mul_": [3.0, 6.0], "div_": [-3.0 / 1.5 ** 2, -6.0 / 4.0]}
    np.testing.assert_allclose(gw.numpy(), ref[name], rtol=1e-15)


def test_a_recorded_result_keeps_the_tensors_shape_and_dtype():
    x, h = _nonleaf(np.ones(3))
    with pytest.raises(RuntimeError, match=_full("add_: output with shape (3,) doesn't match the broadcast shape "
                                                 "(2, 3)")):
        h.add_(_t(np.ones((2, 3)), grad=True))
    x32, h32 = _nonleaf([1.0, 2.0], dtype=np.float32)
    w = _t([0.5, 0.25], grad=True)                              # float64
    h32.mul_(w)
    assert h32.dtype == np.float32
    np.testing.assert_array_equal(h32.numpy(), np.array([0.5, 0.5], np.float32))
    gx, gw = tg.grad(h32.sum(), [x32, w])
    assert gw.dtype == np.float64
    np.testing.assert_allclose(gw.numpy(), [1.0, 2.0])
    np.testing.assert_allclose(gx.numpy(), [0.5, 0.25])
    c = tg.Tensor(np.array([1, 2], dtype=np.int64))             # an integer tensor cannot take a float result
    with pytest.raises(TypeError, match=_full("sub_: result type float64 can't be cast to the desired output type "
                                              "int64")):
        c.sub_(_t([0.5, 0.5], grad=True))
    np.testing.assert_array_equal(c.numpy(), [1, 2])


def test_a_graph_that_saved_the_tensor_refuses_its_backward():
    w = _t([1.0, 2.0, 3.0], grad=True)
    c = _t([4.0, 5.0, 6.0])
    y = c * w                                                   # mul saves c
    c.add_(1.0)                                                 # a plain write: c's version 0 -> 1
    with pytest.raises(RuntimeError, match=_full(
            "mul: one of the variables needed for gradient computation has been modified by an inplace operation: "
            "input 0 of mul, a tensor of shape (3,), is at version 1; expected version 0 instead. Do the in-place "
            "update after backward(), or write it out of place (x = x + 1 instead of x += 1), or clone() the "
            "tensor before changing it")):
        y.sum().backward()
    x, h = _nonleaf([1.0, 2.0])
    z = h * h                                                   # mul saves h
    h.add_(1.0)                                                 # recorded: h's memory is replaced
    with pytest.raises(RuntimeError, match="had its memory replaced"):
        z.sum().backward()
    x, h = _nonleaf([1.0, 2.0])
    h.add_(1.0)                                                 # a graph built after the change is fine
    (gx,) = tg.grad((h * h).sum(), x)
    np.testing.assert_array_equal(gx.numpy(), [4.0, 6.0])


def test_a_write_through_a_view_reaches_the_base_and_its_version():
    base = np.arange(6.0).reshape(2, 3)
    t = tg.Tensor(base)
    y = t * _t(np.ones(3), grad=True)                           # mul saves t
    row = t[1]                                                  # a view of t's memory
    assert row.mul_(10.0) is row
    np.testing.assert_array_equal(base, [[0.0, 1.0, 2.0], [30.0, 40.0, 50.0]])
    assert t._version == 1 and row._version == 1                # one memory, one version
    with pytest.raises(RuntimeError, match=r"^mul: .* input 0 of mul, a tensor of shape \(2, 3\), is at version 1; "
                                           r"expected version 0 instead\. "):
        y.sum().backward()
    p = tg.Tensor(np.zeros(3), requires_grad=True)
    with tg.no_grad():
        p[1:].add_(1.0)                                         # an optimizer-style write into part of a leaf
        p[:2][0] = 5.0
    np.testing.assert_array_equal(p.numpy(), [5.0, 1.0, 1.0])
    assert p._version == 2 and p.is_leaf and p.requires_grad


def test_under_no_grad_a_tensor_that_requires_grad_is_written_in_place():
    x, h = _nonleaf([1.0, 2.0])
    old, fn = h._data, h.grad_fn
    with tg.no_grad():
        h.add_(_t([1.0, 1.0], grad=True))
        h.clamp_(max=2.5)
        h.copy_(_t([7.0, 8.0], grad=True))
        h[0] = _t(1.0, grad=True)
    assert h._data is old and h.grad_fn is fn and h._version == 4
    np.testing.assert_array_equal(old, [1.0, 8.0])


def test_adopt_gives_the_new_grad_fn_the_version_it_leaves():
    """A Function that reads its own output (exp) still accepts it once ``t`` has become that output."""
    x = _t([0.5, 1.0], grad=True)
    t = x * 1.0
    t.add_(1.0)                                                 # t's memory is at version 1
    t.add_(1.0)                                                 # ... 2
    assert t._version == 2
    new = (x * 2.0).exp()
    assert ops._adopt(t, "op_", new) is t
    assert t._version == 3 and t.grad_fn is new.grad_fn and t.requires_grad
    (gx,) = tg.grad(t.sum(), x)                                 # Exp's backward reads its output: no error
    np.testing.assert_allclose(gx.numpy(), 2.0 * np.exp([1.0, 2.0]), rtol=1e-14)
    with pytest.raises(RuntimeError, match=_full("op_: output with shape (2,) doesn't match the broadcast shape "
                                                 "(1, 2)")):
        ops._adopt(t, "op_", x.reshape(1, 2))


# ---------------------------------------------------------------------------- clamp_

@pytest.mark.parametrize("lo,hi", [(-0.5, 0.5), (-0.5, None), (None, 0.5), (0.25, 0.25)])
@pytest.mark.parametrize("method", ["clamp_", "clip_"])
def test_clamp_clips_in_place(lo, hi, method):
    base = np.linspace(-1.0, 1.0, 9).reshape(3, 3)
    ref = np.clip(base, lo, hi)
    t = tg.Tensor(base)
    kwargs = {k: v for k, v in (("min", lo), ("max", hi)) if v is not None}
    assert getattr(t, method)(**kwargs) is t
    assert t._data is base and t._version == 1
    np.testing.assert_array_equal(base, ref)
    x, h = _nonleaf(np.linspace(-1.0, 1.0, 9).reshape(3, 3))
    getattr(h, method)(lo, hi)                                  # positional, recorded
    np.testing.assert_array_equal(h.numpy(), ref)
    assert type(h.grad_fn).__name__ == "Clip"
    (gx,) = tg.grad(h.sum(), x)
    inside = (x.numpy() >= (-np.inf if lo is None else lo)) & (x.numpy() <= (np.inf if hi is None else hi))
    np.testing.assert_array_equal(gx.numpy(), inside.astype(float))


def test_clamp_needs_a_bound():
    t = _t([1.0, 2.0])
    for method in ("clamp_", "clip_"):
        with pytest.raises(ValueError, match=_full("clamp_: at least one of min and max must be given")):
            getattr(t, method)()
    assert t._version == 0


# ---------------------------------------------------------------------------- fill_, zero_, fill_values_

@pytest.mark.parametrize("value", [2.5, -1, _t([4.0]), _t(7.0)])
def test_fill_writes_one_value(value):
    base = np.arange(6.0).reshape(2, 3)
    col = base[:, 1]
    t = tg.Tensor(base)
    assert t.fill_(value) is t
    v = value.item() if isinstance(value, tg.Tensor) else value
    assert t._data is base and t._version == 1
    np.testing.assert_array_equal(base, np.full((2, 3), v))
    np.testing.assert_array_equal(col, [v, v])
    x, h = _nonleaf(np.arange(6.0).reshape(2, 3))
    h.fill_(value)
    assert type(h.grad_fn).__name__ == "Overwrite" and h.requires_grad
    np.testing.assert_array_equal(h.numpy(), np.full((2, 3), v))
    (gx,) = tg.grad(h.sum(), x, allow_unused=True)              # the old values get no gradient
    assert gx is None or not np.any(gx.numpy())


def test_zero_and_fill_keep_the_dtype():
    t = tg.Tensor(np.array([1, 2, 3], np.int32))
    t.fill_(9)
    assert t.dtype == np.int32
    np.testing.assert_array_equal(t.numpy(), [9, 9, 9])
    assert t.zero_() is t and t._version == 2
    np.testing.assert_array_equal(t.numpy(), [0, 0, 0])
    x, h = _nonleaf([1.0, 2.0], dtype=np.float32)
    h.zero_()
    assert h.dtype == np.float32 and type(h.grad_fn).__name__ == "Overwrite"
    np.testing.assert_array_equal(h.numpy(), [0.0, 0.0])


def test_overwrite_gives_constant_values_and_no_gradient():
    x = _t([[1.0, 2.0], [3.0, 4.0]], grad=True)
    y = ops.Overwrite(np.array([5.0, 6.0]))(x)                  # broadcast to x's shape
    np.testing.assert_array_equal(y.numpy(), [[5.0, 6.0], [5.0, 6.0]])
    assert y.dtype == x.dtype and y.requires_grad
    x32 = _t([1.5, 2.5], grad=True, dtype=np.float32)
    y32 = ops.Overwrite(3.25)(x32)
    assert y32.dtype == np.float32
    np.testing.assert_array_equal(y32.numpy(), [3.25, 3.25])
    (gx,) = tg.grad((y * y).sum(), x, allow_unused=True)
    assert gx is None or not np.any(gx.numpy())


def test_fill_values_broadcasts_and_casts_to_the_tensors_dtype():
    base = np.zeros((2, 3), np.float32)
    t = tg.Tensor(base)
    vals = np.array([0.1, 0.2, 0.3])                            # float64, one row
    assert t.fill_values_("normal_", vals) is t
    assert t.dtype == np.float32 and t._data is base and t._version == 1
    np.testing.assert_array_equal(base, np.broadcast_to(vals.astype(np.float32), (2, 3)))
    i = tg.Tensor(np.zeros(3, np.int64))
    i.fill_values_("some_fill_", np.array([1.7, -2.7, 3.0]))   # not a random fill: an integer tensor is fine
    assert i.dtype == np.int64
    np.testing.assert_array_equal(i.numpy(), [1, -2, 3])
    big = np.array([2 ** 53 + 1, -(2 ** 62) - 1, 7], np.int64)     # cast to int64 directly, never via float64
    i.fill_values_("some_fill_", big)
    np.testing.assert_array_equal(i.numpy(), big)
    x, h = _nonleaf(np.ones((2, 3)))
    h.fill_values_("uniform_", vals)
    assert type(h.grad_fn).__name__ == "Overwrite"
    np.testing.assert_array_equal(h.numpy(), np.broadcast_to(vals, (2, 3)))
    (gx,) = tg.grad(h.sum(), x, allow_unused=True)
    assert gx is None or not np.any(gx.numpy())


@pytest.mark.parametrize("name", ["normal_", "uniform_"])
@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.bool_])
def test_random_fills_need_a_floating_point_tensor(name, dtype):
    t = tg.Tensor(np.zeros(3, dtype))
    with pytest.raises(TypeError, match=_full(f"{name}: expects a floating-point tensor, got dtype "
                                              f"{np.dtype(dtype)}")):
        t.fill_values_(name, np.ones(3))
    assert t._version == 0


# ---------------------------------------------------------------------------- copy_

@pytest.mark.parametrize("src,ref", [
    (2.5, np.full((2, 3), 2.5)),
    (np.array([1.0, 2.0, 3.0]), np.array([[1.0, 2.0, 3.0]] * 2)),
    (_t([[4.0], [5.0]]), np.array([[4.0] * 3, [5.0] * 3])),
    (np.arange(6, dtype=np.int64).reshape(2, 3), np.arange(6.0).reshape(2, 3)),
])
def test_copy_writes_the_source_broadcast_into_the_tensors_memory(src, ref):
    base = np.full((2, 3), -1.0)
    row = base[0]
    t = tg.Tensor(base)
    assert t.copy_(src) is t
    assert t._data is base and t._version == 1 and t.grad_fn is None
    np.testing.assert_array_equal(base, ref)
    np.testing.assert_array_equal(row, ref[0])


def test_copy_casts_to_the_tensors_dtype_unsafely():
    t = tg.Tensor(np.zeros(4, np.int32))
    t.copy_(np.array([1.7, -2.7, 3.2, 250.9]))                 # NumPy's unsafe cast: toward zero
    assert t.dtype == np.int32
    np.testing.assert_array_equal(t.numpy(), [1, -2, 3, 250])
    f = tg.Tensor(np.zeros(2, np.float32))
    f.copy_(_t([0.1, 1e-3]))
    assert f.dtype == np.float32
    np.testing.assert_array_equal(f.numpy(), np.array([0.1, 1e-3], np.float32))


def test_copy_checks_the_shape():
    t = _t(np.zeros(3))
    with pytest.raises(RuntimeError, match=_full("copy_: output with shape (3,) doesn't match the broadcast shape "
                                                 "(2, 3)")):
        t.copy_(np.ones((2, 3)))
    with pytest.raises(ValueError, match=_full("copy_: shapes (3,) and (2,) cannot be broadcast together")):
        t.copy_(_t([1.0, 2.0]))
    assert t._version == 0
    np.testing.assert_array_equal(t.numpy(), np.zeros(3))


def test_copy_in_the_graph_sends_the_gradient_to_the_source():
    def f(x, w):
        h = x * 1.0
        h.copy_(w)                                              # (3,) broadcast to (2, 3)
        return h * x
    x = _t(RNG.standard_normal((2, 3)), grad=True)
    w = _t(RNG.standard_normal(3), grad=True)
    assert gradcheck(f, [x, w])
    assert gradgradcheck(f, [x, w])
    x, h = _nonleaf(np.zeros((2, 3)))
    kept = h.detach()
    w = _t([1.0, 2.0, 3.0], grad=True)
    assert h.copy_(w) is h
    assert h._version == 1 and h.grad_fn is not None
    np.testing.assert_array_equal(h.numpy(), [[1.0, 2.0, 3.0]] * 2)
    np.testing.assert_array_equal(kept.numpy(), np.zeros((2, 3)))
    g = RNG.standard_normal((2, 3))
    gx, gw = tg.grad((h * _t(g)).sum(), [x, w], allow_unused=True)
    np.testing.assert_allclose(gw.numpy(), g.sum(axis=0), rtol=1e-14)
    assert gx is None or not np.any(gx.numpy())                 # not to the old values


def test_copy_into_a_constant_or_a_float32_tensor_in_the_graph():
    base = np.zeros(2, np.float32)
    c = tg.Tensor(base)
    w = _t([0.5, 1.5], grad=True)                               # float64
    c.copy_(w)
    assert c.dtype == np.float32 and c.requires_grad and c._data is not base
    np.testing.assert_array_equal(base, [0.0, 0.0])
    np.testing.assert_array_equal(c.numpy(), [0.5, 1.5])
    (gw,) = tg.grad((c * c).sum(), w)
    assert gw.dtype == np.float64
    np.testing.assert_allclose(gw.numpy(), [1.0, 3.0])
    i = tg.Tensor(np.zeros(2, np.int64))
    with pytest.raises(TypeError, match=_full("copy_: result type float64 can't be cast to the desired output type "
                                              "int64")):
        i.copy_(w)


def test_copy_of_a_constant_into_a_graph_tensor_cuts_the_old_values_off():
    x, h = _nonleaf([1.0, 2.0, 3.0])
    h.copy_(np.array([7.0, 8.0, 9.0]))
    assert type(h.grad_fn).__name__ == "Overwrite" and h._version == 1
    np.testing.assert_array_equal(h.numpy(), [7.0, 8.0, 9.0])
    (gx,) = tg.grad(h.sum(), x, allow_unused=True)
    assert gx is None or not np.any(gx.numpy())


def test_copy_moves_a_source_from_another_device():
    t = _t(np.zeros(3))
    src = _OnOtherDevice(np.array([1.0, 2.0, 3.0]))
    t.copy_(src)
    assert src.moved_to == "cpu"
    np.testing.assert_array_equal(t.numpy(), [1.0, 2.0, 3.0])


# ---------------------------------------------------------------------------- t[index] = v

_INDEXES = [
    (1, 0.5),
    ((slice(None), 0), np.array([1.0, 2.0, 3.0])),
    ((slice(0, 2), slice(1, 3)), np.array([7.0, 8.0])),
    (np.array([2, 0]), np.array([[1.0], [2.0]])),
    ("mask", 9.0),
    ("int_tensor", np.array([5.0, 6.0, 7.0, 8.0])),
    ((Ellipsis, -1), np.array([4.0, 3.0, 2.0])),
]


def _index(key):
    if isinstance(key, str) and key == "mask":
        return tg.Tensor(np.array([[True, False, True, False]] * 3))
    if isinstance(key, str) and key == "int_tensor":
        return tg.Tensor(np.array([1]))
    return key


def _np_index(key):
    return _index(key).numpy() if isinstance(key, str) else key


@pytest.mark.parametrize("key,value", _INDEXES)
def test_setitem_writes_the_tensors_memory(key, value):
    base = np.arange(12.0).reshape(3, 4)
    ref = base.copy()
    ref[_np_index(key)] = value
    t = tg.Tensor(base)
    t[_index(key)] = value
    assert t._data is base and t._version == 1 and t.grad_fn is None
    np.testing.assert_array_equal(base, ref)
    t2 = tg.Tensor(np.arange(12.0).reshape(3, 4))
    t2[_index(key)] = _t(value)                                 # a constant tensor value: the same
    np.testing.assert_array_equal(t2.numpy(), ref)


@pytest.mark.parametrize("key,value", _INDEXES)
def test_setitem_in_the_graph_is_differentiable(key, value):
    value = np.asarray(value, dtype=np.float64)

    def f(x, v):
        h = x * 1.0
        h[_index(key)] = v
        return h * h
    x = _t(RNG.standard_normal((3, 4)), grad=True)
    v = _t(value + 0.5, grad=True)
    assert gradcheck(f, [x, v])
    assert gradgradcheck(f, [x, v])
    g = RNG.standard_normal((3, 4))
    h = x * 1.0
    h[_index(key)] = v
    ref = x.numpy().copy()
    ref[_np_index(key)] = v.numpy()
    np.testing.assert_array_equal(h.numpy(), ref)
    assert type(h.grad_fn).__name__ == "SetItem" and h._version == 1
    gx, gv = tg.grad((h * _t(g)).sum(), [x, v])
    keep = np.ones((3, 4), bool)
    keep[_np_index(key)] = False
    np.testing.assert_array_equal(gx.numpy(), g * keep)        # 0 where the index wrote
    written = g[_np_index(key)]                                 # sum_to(g[index], v.shape)
    lead = written.ndim - value.ndim
    gv_ref = written.sum(axis=tuple(range(lead))) if lead else written
    gv_ref = gv_ref.sum(axis=tuple(d for d in range(value.ndim) if value.shape[d] == 1 and gv_ref.shape[d] != 1),
                        keepdims=True)
    np.testing.assert_allclose(gv.numpy(), gv_ref, rtol=1e-14)


def test_setitem_gradient_to_only_one_side():
    x = _t(np.arange(6.0).reshape(2, 3), grad=True)
    h = x * 1.0
    h[0, 1:] = _t([5.0, 6.0])                                   # a constant value
    (gx,) = tg.grad(h.sum(), x)
    np.testing.assert_array_equal(gx.numpy(), [[1.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    c = _t(np.zeros((2, 3)))                                    # a constant tensor joins the graph
    base = c._data
    v = _t([1.0, 2.0], grad=True)
    c[1, :2] = v
    assert c.requires_grad and type(c.grad_fn).__name__ == "SetItem" and c._data is not base
    np.testing.assert_array_equal(base, np.zeros((2, 3)))
    np.testing.assert_array_equal(c.numpy(), [[0.0, 0.0, 0.0], [1.0, 2.0, 0.0]])
    (gv,) = tg.grad((c * _t([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])).sum(), v)
    np.testing.assert_array_equal(gv.numpy(), [4.0, 5.0])
    x32 = _t(np.ones((2, 2)), grad=True, dtype=np.float32)     # float32 x, float64 value
    h = x32 * 1.0
    v = _t(3.0, grad=True)
    h[0, 0] = v
    assert h.dtype == np.float32
    gx, gv = tg.grad(h.sum(), [x32, v])
    assert gx.dtype == np.float32
    np.testing.assert_array_equal(gx.numpy(), [[0.0, 1.0], [1.0, 1.0]])
    assert gv.item() == 1.0


def test_setitem_class_forward_and_backward():
    x = _t(np.arange(6.0).reshape(2, 3), grad=True)
    v = _t([10.0, 20.0], grad=True)
    y = ops.SetItem((slice(None), 1))(x, v)
    np.testing.assert_array_equal(y.numpy(), [[0.0, 10.0, 2.0], [3.0, 20.0, 5.0]])
    np.testing.assert_array_equal(x.numpy(), np.arange(6.0).reshape(2, 3))   # forward copies
    g = np.arange(1.0, 7.0).reshape(2, 3)
    gx, gv = tg.grad(y, [x, v], grad_outputs=_t(g))
    np.testing.assert_array_equal(gx.numpy(), [[1.0, 0.0, 3.0], [4.0, 0.0, 6.0]])
    np.testing.assert_array_equal(gv.numpy(), [2.0, 5.0])
    xc = _t(np.zeros(3))                                        # only v needs a gradient
    v = _t(2.0, grad=True)
    y = ops.SetItem(np.array([True, False, True]))(xc, v)
    np.testing.assert_array_equal(y.numpy(), [2.0, 0.0, 2.0])
    (gv,) = tg.grad(y, v, grad_outputs=_t([1.0, 10.0, 100.0]))
    assert gv.item() == 101.0


def test_setitem_errors():
    t = _t(np.zeros((2, 3)))
    with pytest.raises(IndexError, match=r"^setitem: cannot assign a value of shape \(\) to index 5 of a tensor of "
                                         r"shape \(2, 3\): .*out of bounds.*$"):
        t[5] = 1.0
    with pytest.raises(ValueError, match=r"^setitem: cannot assign a value of shape \(4,\) to index \(0, "
                                         r"slice\(None, None, None\)\) of a tensor of shape \(2, 3\): "
                                         r".*broadcast.*$"):
        t[0, :] = np.ones(4)
    with pytest.raises(ValueError, match=_full("setitem: value on cuda, tensor on cpu; move one of them with .to()")):
        t[0] = _OnOtherDevice(np.ones(3))
    assert t._version == 0
    np.testing.assert_array_equal(t.numpy(), np.zeros((2, 3)))


# ---------------------------------------------------------------------------- clone

def test_clone_copies_memory_and_passes_the_gradient():
    base = np.array([1.0, 2.0])
    t = tg.Tensor(base)
    c = t.clone()
    assert c._data is not base and not np.shares_memory(c._data, base)
    c.add_(1.0)
    np.testing.assert_array_equal(base, [1.0, 2.0])
    np.testing.assert_array_equal(c.numpy(), [2.0, 3.0])
    x = _t([1.0, 2.0, 3.0], grad=True)
    assert gradcheck(lambda x: x.clone() * x, [x])
    y = x.clone()
    assert type(y.grad_fn).__name__ == "Clone"
    y.mul_(3.0)                                                 # a clone of a leaf can be changed in grad mode
    (gx,) = tg.grad(y.sum(), x)
    np.testing.assert_array_equal(gx.numpy(), [3.0, 3.0, 3.0])
