"""Spectral normalisation without PyTorch: ``nn.spectral_norm`` against a NumPy reference of its definition.

The reference (``_ref_*`` below) is Miyato et al.'s Algorithm 1 as ``torch.nn.utils.spectral_norm`` documents
and implements it, written out with NumPy in float64:

* W as a matrix: axis ``dim`` first, the rest flattened in C order (``dim`` = 1 for ConvTranspose, else 0);
* u ~ N(0, I_h), then v ~ N(0, I_k), drawn from tinygan's global generator and normalised with
  ``x / max(||x||, eps)`` (``F.normalize``'s eps);
* each training forward runs ``n_power_iterations`` steps ``v <- normalize(W^T u)``, ``u <- normalize(W v)``
  and stores u, v in the buffers ``weight_u``/``weight_v``; eval mode uses them as they are;
* ``weight = weight_orig / sigma``, ``sigma = u^T W v``;
* ``remove_spectral_norm`` turns ``weight`` back into a parameter holding the eval-mode value.

Also: the module's parameters, buffers and state_dict keys, several normalised parameters on one module,
arguments reaching the wrapped forward, and the errors (with PyTorch's messages where PyTorch has one).
These tests are in the ``nn`` group of ``scripts/mutation.sh``.
"""
from __future__ import annotations

import copy

import numpy as np
import pytest

import tinygan as tg
from tinygan import nn
from tinygan import random as tg_random
from tinygan.autograd import Tensor
from tinygan.nn.spectral_norm import SpectralNorm


# ---------------------------------------------------------------------------- the NumPy reference

def _ref_matrix(w, dim):
    """Row i = every entry of w with index i along ``dim``, in C order of the remaining axes."""
    w = np.asarray(w, dtype=np.float64)
    return np.stack([np.take(w, i, axis=dim).reshape(-1) for i in range(w.shape[dim])])


def _ref_normalize(x, eps):
    x = np.asarray(x, dtype=np.float64)
    return x / max(np.sqrt(np.sum(x * x)), eps)


def _ref_iterate(W, u, v, n, eps=1e-12):
    for _ in range(n):
        v = _ref_normalize(W.T @ u, eps)
        u = _ref_normalize(W @ v, eps)
    return u, v


def _ref_sigma(W, u, v):
    return float(sum(u[i] * W[i, j] * v[j] for i in range(W.shape[0]) for j in range(W.shape[1])))


def _close(a, b, rtol=1e-5, atol=1e-6, msg=""):
    np.testing.assert_allclose(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64),
                               rtol=rtol, atol=atol, err_msg=msg)


class Cube(nn.Module):
    """A module with a 3-D parameter and a forward taking a keyword argument."""

    def __init__(self, shape=(2, 3, 4), seed=0):
        super().__init__()
        self.weight = nn.Parameter(np.random.default_rng(seed).standard_normal(shape).astype(np.float32))

    def forward(self, x, gain=1.0):
        return self.weight * x * gain


def _linear(seed=0, dtype=np.float32, **kw):
    tg.manual_seed(seed)
    lin = nn.Linear(5, 3).to(dtype=dtype)
    return nn.spectral_norm(lin, **kw)


# ---------------------------------------------------------------------------- construction

@pytest.mark.parametrize("eps", [1e-12, 10.0])
@pytest.mark.parametrize("make,h,k", [(lambda: nn.Linear(5, 3), 3, 5),
                                      (lambda: nn.Conv2d(2, 4, 3), 4, 18),
                                      (lambda: nn.ConvTranspose2d(3, 2, 4), 2, 48)],
                         ids=["linear", "conv", "convT"])
def test_u_then_v_drawn_from_the_global_generator_and_normalised_with_eps(make, h, k, eps):
    tg.manual_seed(11)
    m = make()
    gen = copy.deepcopy(tg_random.default_generator())      # the generator as spectral_norm will find it
    W = m.weight.numpy().copy()
    nn.spectral_norm(m, eps=eps)
    z_u, z_v = gen.standard_normal(h), gen.standard_normal(k)
    assert m.weight_u.shape == (h,) and m.weight_v.shape == (k,)
    assert m.weight_u.dtype == np.float32 and m.weight_v.dtype == np.float32
    _close(m.weight_u, _ref_normalize(z_u.astype(np.float32), eps))
    _close(m.weight_v, _ref_normalize(z_v.astype(np.float32), eps))
    if eps == 1e-12:
        _close(np.linalg.norm(m.weight_u), 1.0)
        _close(np.linalg.norm(m.weight_v), 1.0)
    assert tg_random.default_generator().standard_normal() == gen.standard_normal()   # h + k draws, no more
    # before the first forward, weight is the unnormalised W, a plain tensor (not a parameter)
    assert not isinstance(m.weight, nn.Parameter)
    np.testing.assert_array_equal(m.weight.numpy(), W)


def test_u_and_v_take_the_weight_dtype():
    m = _linear(dtype=np.float64)
    assert m.weight_u.dtype == np.float64 and m.weight_v.dtype == np.float64
    m(Tensor(np.ones((2, 5))))
    assert m.weight_u.dtype == np.float64 and m.weight.dtype == np.float64


def test_parameters_buffers_and_state_dict_keys():
    tg.manual_seed(0)
    lin = nn.Linear(5, 3)
    w, b = lin.weight, lin.bias
    m = nn.spectral_norm(lin)
    assert m is lin                                          # in place, returned
    assert [n for n, _ in m.named_parameters()] == ["bias", "weight_orig"]
    assert m.weight_orig is w and m.bias is b                # the same Parameter objects (an optimizer keeps them)
    assert [n for n, _ in m.named_buffers()] == ["weight_u", "weight_v"]
    assert list(m.state_dict()) == ["bias", "weight_orig", "weight_u", "weight_v"]   # torch's order
    conv = nn.spectral_norm(nn.Conv2d(2, 4, 3, bias=False))
    assert list(conv.state_dict()) == ["weight_orig", "weight_u", "weight_v"]
    m(Tensor(np.ones((2, 5), np.float32)))
    assert list(m.state_dict()) == ["bias", "weight_orig", "weight_u", "weight_v"]   # weight is never saved
    assert not isinstance(m.weight, nn.Parameter)


def test_default_dim_is_1_for_transposed_convolutions_and_0_otherwise_and_dim_is_honoured():
    tg.manual_seed(0)
    assert nn.spectral_norm(nn.ConvTranspose2d(3, 2, 4)).weight_u.shape == (2,)    # weight (in=3, out=2, 4, 4)
    assert nn.spectral_norm(nn.Conv2d(3, 2, 4)).weight_u.shape == (2,)             # weight (out=2, in=3, 4, 4)
    assert nn.spectral_norm(nn.Linear(5, 3)).weight_u.shape == (3,)
    m = nn.spectral_norm(nn.Linear(5, 3), dim=1)
    assert m.weight_u.shape == (5,) and m.weight_v.shape == (3,)
    m = nn.spectral_norm(nn.ConvTranspose2d(3, 2, 4), dim=0)
    assert m.weight_u.shape == (3,) and m.weight_v.shape == (32,)


def test_spectral_norm_class_defaults_are_torchs():
    fn = SpectralNorm()
    assert (fn.name, fn.n_power_iterations, fn.dim, fn.eps) == ("weight", 1, 0, 1e-12)
    fn = SpectralNorm("bias", 3, 2, 0.5)
    assert (fn.name, fn.n_power_iterations, fn.dim, fn.eps) == ("bias", 3, 2, 0.5)
    assert repr(fn) == "SpectralNorm(name='bias', n_power_iterations=3, dim=2)"
    assert SpectralNorm(n_power_iterations=0).n_power_iterations == 0


@pytest.mark.parametrize("shape", [(3, 5), (4, 2, 3, 3), (3, 2, 4, 4), (2, 3, 4)])
def test_matrix_puts_dim_first_and_flattens_the_rest(shape):
    w = np.random.default_rng(0).standard_normal(shape)
    for dim in range(len(shape)):
        got = SpectralNorm(dim=dim).matrix(w)
        assert got.shape == (shape[dim], w.size // shape[dim])
        np.testing.assert_array_equal(got, _ref_matrix(w, dim))


# ---------------------------------------------------------------------------- the power iteration and sigma

@pytest.mark.parametrize("n", [0, 1, 2, 3])
@pytest.mark.parametrize("kind", ["linear", "linear-dim1", "conv", "convT", "cube-dim2"])
def test_training_forwards_against_the_reference(kind, n):
    tg.manual_seed(3)
    if kind.startswith("linear"):
        m, dim, x = nn.Linear(5, 3), (1 if kind.endswith("dim1") else 0), np.ones((2, 5), np.float32)
    elif kind == "conv":
        m, dim, x = nn.Conv2d(2, 4, 3), 0, np.ones((1, 2, 5, 5), np.float32)
    elif kind == "convT":
        m, dim, x = nn.ConvTranspose2d(3, 2, 4), 1, np.ones((1, 3, 2, 2), np.float32)
    else:
        m, dim, x = Cube(), 2, np.float32(1.0)
    kw = {} if n == 1 else {"n_power_iterations": n}
    if kind.endswith("dim1") or kind.endswith("dim2"):
        kw["dim"] = dim
    nn.spectral_norm(m, **kw)
    W = _ref_matrix(m.weight_orig.numpy(), dim)
    u, v = m.weight_u.astype(np.float64), m.weight_v.astype(np.float64)
    for step in range(3):
        m(Tensor(x))
        u, v = _ref_iterate(W, u, v, n)
        _close(m.weight_u, u, msg=f"u, step {step}")
        _close(m.weight_v, v, msg=f"v, step {step}")
        sigma = _ref_sigma(W, u, v)
        _close(m.weight.numpy(), m.weight_orig.numpy() / sigma, msg=f"weight, step {step}")
        fn = m._spectral_norms[0]
        _close(fn.sigma(m).item(), sigma)


def test_power_iteration_follows_weight_orig_after_it_changes():
    m = _linear(seed=4)
    x = Tensor(np.ones((2, 5), np.float32))
    m(x)
    W2 = (m.weight_orig.numpy() * np.array([[1.0], [-2.0], [0.5]], np.float32)).astype(np.float32)
    m.weight_orig.data = W2                                  # an optimizer step
    u, v = _ref_iterate(W2.astype(np.float64), m.weight_u.astype(np.float64), m.weight_v, 1)
    m(x)
    _close(m.weight_u, u)
    _close(m.weight.numpy(), W2 / _ref_sigma(W2.astype(np.float64), u, v))


def test_the_output_uses_the_normalised_weight():
    m = _linear(seed=5)
    x = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    for _ in range(2):
        y = m(Tensor(x)).numpy()
        _close(y, x @ m.weight.numpy().T + m.bias.numpy())
        W = m.weight_orig.numpy().astype(np.float64)
        _close(m.weight.numpy(), W / _ref_sigma(W, m.weight_u, m.weight_v))


def test_converges_to_the_largest_singular_value_and_handles_small_weights():
    """With weights of norm 1e-4 every ||W^T u|| is far below 1: eps (1e-12) must not get in the way."""
    m = _linear(seed=6)
    m.weight_orig.data = (m.weight_orig.numpy() * 1e-4).astype(np.float32)
    x = Tensor(np.ones((1, 5), np.float32))
    for _ in range(50):
        m(x)
    _close(np.linalg.norm(m.weight_u), 1.0)
    _close(np.linalg.norm(m.weight_v), 1.0)
    W = m.weight_orig.numpy().astype(np.float64)
    top = np.linalg.svd(W, compute_uv=False)[0]
    _close(_ref_sigma(W, m.weight_u, m.weight_v), top, rtol=1e-4, atol=0)
    _close(np.linalg.svd(m.weight.numpy().astype(np.float64), compute_uv=False)[0], 1.0, rtol=1e-4)


def test_eps_reaches_the_power_iteration():
    """eps = 10 is larger than every ||W^T u|| and ||W v|| here: the 'normalised' vectors are x / eps."""
    m = _linear(seed=7, eps=10.0)
    W = m.weight_orig.numpy().astype(np.float64)
    u, v = m.weight_u.astype(np.float64), m.weight_v.astype(np.float64)
    m(Tensor(np.ones((1, 5), np.float32)))
    v = W.T @ u / 10.0
    u = W @ v / 10.0
    _close(m.weight_v, v)
    _close(m.weight_u, u)


def test_a_zero_weight_gives_zero_u_and_v_not_nan():
    m = _linear(seed=8)
    m.weight_orig.data = np.zeros((3, 5), np.float32)
    with np.errstate(all="ignore"):
        m(Tensor(np.ones((1, 5), np.float32)))
    np.testing.assert_array_equal(m.weight_u, np.zeros(3, np.float32))
    np.testing.assert_array_equal(m.weight_v, np.zeros(5, np.float32))


def test_eval_uses_u_and_v_as_they_are_and_train_resumes_the_iteration():
    m = _linear(seed=9)
    x = Tensor(np.ones((1, 5), np.float32))
    m(x)
    u, v = m.weight_u.copy(), m.weight_v.copy()
    m.eval()
    m(x)
    m(x)
    np.testing.assert_array_equal(m.weight_u, u)
    np.testing.assert_array_equal(m.weight_v, v)
    W = m.weight_orig.numpy().astype(np.float64)
    _close(m.weight.numpy(), W / _ref_sigma(W, u, v))
    m.train()
    m(x)
    u2, v2 = _ref_iterate(W, u.astype(np.float64), v, 1)
    _close(m.weight_u, u2)
    _close(m.weight_v, v2)


def test_a_loaded_state_dict_continues_the_same_iteration():
    a = _linear(seed=10)
    x = Tensor(np.ones((1, 5), np.float32))
    for _ in range(2):
        a(x)
    b = _linear(seed=99)
    b.load_state_dict(a.state_dict())
    a(x)
    b(x)
    for k, v in a.state_dict().items():
        np.testing.assert_array_equal(b.state_dict()[k], v, err_msg=k)
    np.testing.assert_array_equal(a.weight.numpy(), b.weight.numpy())


def test_arguments_reach_the_wrapped_forward():
    m = nn.spectral_norm(Cube(), dim=2)
    out = m(Tensor(np.full((2, 3, 4), 2.0, np.float32)), gain=3.0).numpy()
    _close(out, 6.0 * m.weight.numpy())
    out = m(Tensor(np.float32(1.0)), 0.5).numpy()
    _close(out, 0.5 * m.weight.numpy())


# ---------------------------------------------------------------------------- several parameters, removal

def test_two_normalised_parameters_on_one_module():
    m = _linear(seed=12)
    nn.spectral_norm(m, name="bias")
    assert [n for n, _ in m.named_parameters()] == ["weight_orig", "bias_orig"]
    assert list(m.state_dict()) == ["weight_orig", "bias_orig", "weight_u", "weight_v", "bias_u", "bias_v"]
    assert m.bias_u.shape == (3,) and m.bias_v.shape == (1,)
    W, b = m.weight_orig.numpy().astype(np.float64), m.bias_orig.numpy().astype(np.float64)
    uw, vw = m.weight_u.astype(np.float64), m.weight_v.astype(np.float64)
    ub, vb = m.bias_u.astype(np.float64), m.bias_v.astype(np.float64)
    x = np.random.default_rng(1).standard_normal((2, 5)).astype(np.float32)
    for _ in range(2):
        y = m(Tensor(x)).numpy()
        uw, vw = _ref_iterate(W, uw, vw, 1)
        ub, vb = _ref_iterate(b[:, None], ub, vb, 1)
        _close(m.weight_u, uw)
        _close(m.bias_u, ub)
        _close(m.weight.numpy(), W / _ref_sigma(W, uw, vw))
        _close(m.bias.numpy(), b / _ref_sigma(b[:, None], ub, vb))
        _close(y, x @ m.weight.numpy().T + m.bias.numpy())
    _close(np.linalg.norm(m.bias.numpy()), 1.0)             # a vector's only singular value is its norm


def test_remove_spectral_norm_keeps_the_eval_value_and_restores_a_plain_layer():
    m = _linear(seed=13)                                      # no forward yet: u, v far from converged
    W = m.weight_orig.numpy().astype(np.float64)
    u, v = m.weight_u.copy(), m.weight_v.copy()
    expected = W / _ref_sigma(W, u, v)
    y = nn.remove_spectral_norm(m)
    assert y is m
    assert isinstance(m.weight, nn.Parameter) and m.weight.requires_grad
    _close(m.weight.numpy(), expected)                       # no power iteration on removal
    assert m.weight.dtype == np.float32
    assert list(m.state_dict()) == ["bias", "weight"]        # torch's order after removal
    assert [n for n, _ in m.named_parameters()] == ["bias", "weight"]
    assert list(m.named_buffers()) == []
    for gone in ("weight_orig", "weight_u", "weight_v"):
        assert not hasattr(m, gone), gone
    assert "forward" not in vars(m)                           # the class's forward again, no wrapper left
    x = np.random.default_rng(2).standard_normal((3, 5)).astype(np.float32)
    _close(m(Tensor(x)).numpy(), x @ expected.T + m.bias.numpy())
    m(Tensor(x))
    _close(m.weight.numpy(), expected)                       # a training forward changes nothing now
    nn.spectral_norm(m)                                      # and it can be normalised again
    assert list(m.state_dict()) == ["bias", "weight_orig", "weight_u", "weight_v"]


def test_remove_one_of_two_keeps_the_other_working():
    m = _linear(seed=14)
    nn.spectral_norm(m, name="bias")
    x = Tensor(np.ones((1, 5), np.float32))
    m(x)
    nn.remove_spectral_norm(m, "weight")
    assert isinstance(m.weight, nn.Parameter) and not hasattr(m, "weight_orig")
    assert list(m.state_dict()) == ["bias_orig", "weight", "bias_u", "bias_v"]   # parameters, then buffers
    ub = m.bias_u.astype(np.float64)
    b = m.bias_orig.numpy().astype(np.float64)[:, None]
    m(x)                                                      # bias still normalised, its u still iterated
    ub, vb = _ref_iterate(b, ub, m.bias_v, 1)
    _close(m.bias_u, ub)
    _close(m.bias.numpy(), b[:, 0] / _ref_sigma(b, ub, vb))
    with pytest.raises(ValueError, match="^spectral_norm of 'weight' not found in Linear$"):
        nn.remove_spectral_norm(m, "weight")
    nn.remove_spectral_norm(m, "bias")
    assert list(m.state_dict()) == ["weight", "bias"] and "forward" not in vars(m)


# ---------------------------------------------------------------------------- errors

def test_errors():
    with pytest.raises(TypeError, match="^spectral_norm: expected a Module, got ndarray$"):
        nn.spectral_norm(np.zeros((3, 3)))
    lin = nn.Linear(5, 3)
    with pytest.raises(ValueError, match="^spectral_norm: Linear has no parameter 'kernel'$"):
        nn.spectral_norm(lin, name="kernel")
    with pytest.raises(ValueError, match="^spectral_norm: n_power_iterations must be >= 0, got -1$"):
        nn.spectral_norm(lin, n_power_iterations=-1)
    assert list(lin.state_dict()) == ["weight", "bias"]      # a refused call changes nothing
    with pytest.raises(ValueError, match="^spectral_norm of 'weight' not found in Linear$"):
        nn.remove_spectral_norm(lin)
    nn.spectral_norm(lin)
    with pytest.raises(RuntimeError, match="^spectral_norm: Linear.weight is already spectrally normalised$"):
        nn.spectral_norm(lin)
    with pytest.raises(ValueError, match="^spectral_norm of 'bias' not found in Linear$"):
        nn.remove_spectral_norm(lin, "bias")
    with pytest.raises(ValueError, match="^spectral_norm: n_power_iterations must be >= 0, got -2$"):
        SpectralNorm(n_power_iterations=-2)


# ---------------------------------------------------------------------------- devices

def test_u_v_and_the_iteration_stay_on_the_weights_device(device):
    """On "cuda" (a GPU, or the CuPy stand-in) u and v are drawn on the host and moved to the weight's device,
    and the iteration, sigma and the normalised weight stay there; the values are the CPU ones."""
    from tinygan.backend import get_array_module, to_numpy
    tg.manual_seed(15)
    m = nn.Linear(5, 3)
    gen = copy.deepcopy(tg_random.default_generator())
    m.to(device)
    xp = get_array_module(m.weight._data)
    nn.spectral_norm(m)
    assert get_array_module(m.weight_u) is xp and get_array_module(m.weight_v) is xp
    u = _ref_normalize(gen.standard_normal(3).astype(np.float32), 1e-12)
    v = _ref_normalize(gen.standard_normal(5).astype(np.float32), 1e-12)
    _close(to_numpy(m.weight_u), u)
    _close(to_numpy(m.weight_v), v)
    W = to_numpy(m.weight_orig._data).astype(np.float64)
    x = np.random.default_rng(3).standard_normal((2, 5)).astype(np.float32)
    for _ in range(2):
        y = m(Tensor(x).to(device))
        u, v = _ref_iterate(W, u, v, 1)
        assert y.device == m.weight.device == device
        assert get_array_module(m.weight_u) is xp and get_array_module(m.weight_v) is xp
        _close(to_numpy(m.weight_u), u)
        _close(to_numpy(m.weight.data), W / _ref_sigma(W, u, v))
    nn.remove_spectral_norm(m)
    assert m.weight.device == device
    _close(to_numpy(m.weight.data), W / _ref_sigma(W, u, v))
