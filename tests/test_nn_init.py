"""``tinygan.nn.init`` against NumPy: the numbers each initialiser draws, and where it writes them.

Every initialiser draws on the host from a NumPy ``Generator`` (the one passed, else tinygan's
global one, which ``tinygan.manual_seed(s)`` makes ``np.random.default_rng(s)``), so the values
are checked exactly against the same draws made here with PyTorch's formulas
(``torch.nn.init``: the fans, ``calculate_gain``, the bounds and standard deviations), not
statistically.  Then the contract of the module docstring: the write is in place (a view of
the tensor sees it, its version goes up, an earlier graph refuses to backward), into a Tensor,
its ``.data`` or an array; a read-only or self-overlapping array makes the tensor take new
memory (and is refused when passed bare); anything that is not an array is refused.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import tinygan
from tinygan import nn
from tinygan.backend import to_device, to_numpy, xp_for

SEED = 11

# torch.nn.init.calculate_gain(nonlinearity, a), written out from PyTorch's documentation
TORCH_GAIN = {
    "linear": lambda a: 1.0, "conv1d": lambda a: 1.0, "conv2d": lambda a: 1.0, "conv3d": lambda a: 1.0,
    "conv_transpose1d": lambda a: 1.0, "conv_transpose2d": lambda a: 1.0, "conv_transpose3d": lambda a: 1.0,
    "sigmoid": lambda a: 1.0, "tanh": lambda a: 5.0 / 3, "relu": lambda a: math.sqrt(2.0),
    "leaky_relu": lambda a: math.sqrt(2.0 / (1 + a ** 2)), "selu": lambda a: 3.0 / 4,
}


def rng(seed=SEED):
    return np.random.default_rng(seed)


def param(shape, device="cpu", dtype=np.float32):
    return nn.Parameter(to_device(np.zeros(shape, dtype=dtype), device))


def values(t):
    return to_numpy(t._data if isinstance(t, tinygan.Tensor) else t)


# ---------------------------------------------------------------------------
# the numbers
# ---------------------------------------------------------------------------

# (call, reference): reference(g, shape) draws what the call should have drawn from g.
# Shape (5, 4, 3, 2): fan_in = 4 * 6 = 24, fan_out = 5 * 6 = 30 (dims 1 and 0 times the receptive field).
FAN_IN, FAN_OUT = 24, 30
CASES = {
    "normal": (lambda t, g: nn.init.normal_(t, 0.5, 2.0, generator=g),
               lambda g, s: g.normal(0.5, 2.0, s)),
    "normal-default": (lambda t, g: nn.init.normal_(t, generator=g),             # N(0, 1)
                       lambda g, s: g.normal(0.0, 1.0, s)),
    "uniform": (lambda t, g: nn.init.uniform_(t, -1.0, 3.0, generator=g),
                lambda g, s: g.uniform(-1.0, 3.0, s)),
    "uniform-default": (lambda t, g: nn.init.uniform_(t, generator=g),           # U(0, 1)
                        lambda g, s: g.uniform(0.0, 1.0, s)),
    "xavier_uniform": (lambda t, g: nn.init.xavier_uniform_(t, gain=2.0, generator=g),
                       lambda g, s: g.uniform(-2.0 * math.sqrt(6.0 / (FAN_IN + FAN_OUT)),
                                              2.0 * math.sqrt(6.0 / (FAN_IN + FAN_OUT)), s)),
    "xavier_normal": (lambda t, g: nn.init.xavier_normal_(t, gain=0.5, generator=g),
                      lambda g, s: g.normal(0.0, 0.5 * math.sqrt(2.0 / (FAN_IN + FAN_OUT)), s)),
    "xavier_uniform-default": (lambda t, g: nn.init.xavier_uniform_(t, generator=g),   # gain 1
                               lambda g, s: g.uniform(-math.sqrt(6.0 / (FAN_IN + FAN_OUT)),
                                                      math.sqrt(6.0 / (FAN_IN + FAN_OUT)), s)),
    "kaiming_normal-default": (lambda t, g: nn.init.kaiming_normal_(t, generator=g),   # leaky_relu, a = 0
                               lambda g, s: g.normal(0.0, math.sqrt(2.0) / math.sqrt(FAN_IN), s)),
    "kaiming_uniform-default": (lambda t, g: nn.init.kaiming_uniform_(t, generator=g),
                                lambda g, s: g.uniform(-math.sqrt(2.0) * math.sqrt(3.0 / FAN_IN),
                                                       math.sqrt(2.0) * math.sqrt(3.0 / FAN_IN), s)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_an_initialiser_draws_its_numbers_from_the_generator_given(name, device):
    call, reference = CASES[name]
    shape = (5, 4, 3, 2)
    tinygan.manual_seed(SEED + 1)            # the global generator differs from the one passed
    t = param(shape, device)
    assert call(t, rng()) is t
    np.testing.assert_allclose(values(t), reference(rng(), shape).astype(np.float32), rtol=1e-6, atol=1e-7)
    assert t.dtype == np.float32 and t.device == device


@pytest.mark.parametrize("name", list(CASES))
def test_without_a_generator_an_initialiser_draws_from_the_global_one(name):
    call, reference = CASES[name]
    shape = (5, 4, 3, 2)
    tinygan.manual_seed(SEED)                # documented: the global generator is np.random.default_rng(seed)
    t = call(param(shape), None)
    np.testing.assert_allclose(values(t), reference(rng(), shape).astype(np.float32), rtol=1e-6, atol=1e-7)
    tinygan.manual_seed(SEED)
    assert np.array_equal(values(call(param(shape), None)), values(t))       # a seed gives the same weights


@pytest.mark.parametrize("nonlinearity", list(TORCH_GAIN))
@pytest.mark.parametrize("kind", ["uniform", "normal"])
def test_kaiming_gain_is_torchs_calculate_gain(kind, nonlinearity):
    """std = gain / sqrt(fan_in); uniform bound = sqrt(3) std, gain as torch.nn.init.calculate_gain."""
    a = 0.3
    std = TORCH_GAIN[nonlinearity](a) / math.sqrt(FAN_IN)
    t = param((5, 4, 3, 2), dtype=np.float64)
    f = getattr(nn.init, f"kaiming_{kind}_")
    f(t, a=a, nonlinearity=nonlinearity, generator=rng())
    bound = math.sqrt(3.0) * std
    expected = rng().uniform(-bound, bound, t.shape) if kind == "uniform" else rng().normal(0.0, std, t.shape)
    np.testing.assert_allclose(values(t), expected, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("kind", ["uniform", "normal"])
def test_kaiming_refuses_a_nonlinearity_torch_does_not_know(kind):
    t = param((3, 4))
    before = values(t).copy()
    with pytest.raises(ValueError, match=r"^init: unsupported nonlinearity 'gelu'$"):
        getattr(nn.init, f"kaiming_{kind}_")(t, nonlinearity="gelu")
    np.testing.assert_array_equal(values(t), before)


def test_fans_count_the_receptive_field_of_any_rank():
    """torch: fan_in = size(1) * prod(size(2:)), fan_out = size(0) * prod(size(2:)), for 2-D and up."""
    assert nn.init.fan_in(param((7, 3))) == 3                    # Linear (out, in)
    assert nn.init.fan_in(param((4, 3, 5))) == 15                # Conv1d (out, in, k)
    assert nn.init.fan_in(param((4, 3, 5, 2))) == 30             # Conv2d
    assert nn.init.fan_in(param((4, 3, 5, 2, 2))) == 60          # Conv3d
    # xavier uses both: on a 3-D weight, bound = sqrt(6 / (3 * 5 + 4 * 5))
    t = nn.init.xavier_uniform_(param((4, 3, 5), dtype=np.float64), generator=rng())
    b = math.sqrt(6.0 / (15 + 20))
    np.testing.assert_allclose(values(t), rng().uniform(-b, b, (4, 3, 5)), rtol=1e-12)


@pytest.mark.parametrize("fn", ["kaiming_uniform_", "kaiming_normal_"])
def test_kaiming_leaves_a_zero_element_tensor_alone_as_torch(fn):
    """torch: "Initializing zero-element tensors is a no-op"; Linear(0, n) is a valid layer."""
    t = param((3, 0))
    assert getattr(nn.init, fn)(t) is t and t.shape == (3, 0)


def test_constant_zeros_ones_fill_every_element():
    for dtype in (np.float32, np.float64):
        t = param((2, 3), dtype=dtype)
        np.testing.assert_array_equal(values(nn.init.constant_(t, 0.25)), np.full((2, 3), 0.25))
        np.testing.assert_array_equal(values(nn.init.ones_(t)), np.ones((2, 3)))
        np.testing.assert_array_equal(values(nn.init.zeros_(t)), np.zeros((2, 3)))
        assert t.dtype == dtype


# ---------------------------------------------------------------------------
# where the numbers go
# ---------------------------------------------------------------------------

def test_init_writes_in_place_into_the_tensor(device):
    p = param((4, 3), device)
    view = p.data                           # the tensor's memory (a DataView on the CPU, the CuPy array on the GPU)
    before = p._version
    assert nn.init.normal_(p, generator=rng()) is p
    expected = rng().normal(0.0, 1.0, (4, 3)).astype(np.float32)
    np.testing.assert_allclose(values(p), expected, rtol=1e-6)
    np.testing.assert_array_equal(to_numpy(view), values(p))           # the old view sees the new values
    assert p._version == before + 1


def test_an_init_after_a_graph_used_the_weight_is_an_in_place_change():
    """As in PyTorch: backward through a graph that saved the weight before the init refuses."""
    w = param((2, 3))
    nn.init.ones_(w)
    x = tinygan.tensor(np.ones((2, 3), np.float32), requires_grad=True)
    y = (w * x).sum()
    nn.init.normal_(w, generator=rng())
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.backward()
    (w * x).sum().backward()                 # a graph built after the init is fine
    np.testing.assert_array_equal(x.grad.numpy(), values(w))


def test_init_through_dot_data_writes_into_the_parameter():
    """``nn.init.normal_(m.weight.data, ...)``, the other PyTorch spelling, changes the weight itself."""
    m = nn.Linear(3, 2)
    out = nn.init.normal_(m.weight.data, 0.0, 0.02, generator=rng())
    np.testing.assert_allclose(m.weight.numpy(), rng().normal(0.0, 0.02, (2, 3)).astype(np.float32), rtol=1e-6)
    assert isinstance(out, np.ndarray) and np.shares_memory(out, m.weight._data)


def test_init_fills_a_bare_array_in_place_and_returns_it(device):
    xp = xp_for(device)
    a = xp.zeros((3, 4), dtype=np.float32)
    assert nn.init.uniform_(a, -1.0, 1.0, generator=rng()) is a
    np.testing.assert_allclose(to_numpy(a), rng().uniform(-1.0, 1.0, (3, 4)).astype(np.float32), rtol=1e-6)
    assert a.dtype == np.float32


def test_a_unit_axis_view_is_still_written_in_place():
    """``x[None]`` has stride 0 on its size-1 axis, yet no two elements share memory: written in place."""
    base = np.zeros(3, np.float32)
    a = base[None]
    assert a.strides[0] == 0 and a.shape == (1, 3)
    assert nn.init.normal_(a, generator=rng()) is a
    np.testing.assert_allclose(base, rng().normal(0.0, 1.0, (1, 3))[0].astype(np.float32), rtol=1e-6)


def _read_only(dtype=np.float32):
    a = np.arange(6, dtype=dtype).reshape(2, 3)
    a.flags.writeable = False
    return a


def _overlapping(dtype=np.float32):
    """A writeable (2, 3) array whose two rows are the same memory (stride 0), as ``expand`` gives."""
    base = np.arange(3, dtype=dtype)
    return base, np.lib.stride_tricks.as_strided(base, shape=(2, 3), strides=(0, base.itemsize))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["read-only", "overlapping"])
def test_a_tensor_over_memory_it_cannot_write_takes_new_memory(kind, dtype):
    """Each element gets its own draw; the memory the tensor had is left alone."""
    if kind == "read-only":
        old = _read_only(dtype)
        base = old
    else:
        base, old = _overlapping(dtype)
    kept = base.copy()
    t = tinygan.Tensor(old)
    assert nn.init.normal_(t, generator=rng()) is t
    expected = rng().normal(0.0, 1.0, (2, 3)).astype(dtype)
    np.testing.assert_allclose(t.numpy(), expected, rtol=1e-6)
    assert t.dtype == dtype and t.shape == (2, 3)
    assert len(np.unique(t.numpy())) == 6                   # six draws, not one row written twice
    np.testing.assert_array_equal(base, kept)
    assert not np.shares_memory(t._data, base)


@pytest.mark.parametrize("kind", ["read-only", "overlapping"])
def test_a_bare_array_that_cannot_be_written_is_refused(kind):
    a = _read_only() if kind == "read-only" else _overlapping()[1]
    kept = np.array(a)
    with pytest.raises(ValueError, match=r"^nn\.init: the array is read-only; pass the Tensor, "
                                         r"or a writeable array$"):
        nn.init.uniform_(a)
    np.testing.assert_array_equal(a, kept)


@pytest.mark.parametrize("bad", [np.float64(3.0), np.float32(1.0)])
def test_init_refuses_what_is_not_a_tensor_or_an_array(bad):
    """A NumPy scalar has a shape and a dtype, but no memory to write into."""
    with pytest.raises(TypeError, match=rf"^nn\.init: expected a Tensor or an array, got {type(bad).__name__}$"):
        nn.init.zeros_(bad)
    with pytest.raises(TypeError, match=r"expected a Tensor or an array"):
        nn.init.normal_(bad)
