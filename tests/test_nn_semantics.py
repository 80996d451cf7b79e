"""The layers of ``tinygan.nn`` without PyTorch: forward values against NumPy references, and
what each layer documents (defaults, dtypes, parameters and state_dict keys, train/eval, errors).

tests/test_semantics.py checks the functional ops and the conv/batch-norm layers against the
loop references of :mod:`tinygan.kernels.reference`; the PyTorch parity tests
(tests/test_parity_torch.py) check the layers against torch.  This file is the torch-free
witness for the layer classes themselves: that each passes its own arguments and defaults to
the right op (a ``LayerNorm`` whose eps or affine parameters were lost, an ``Upsample`` that
drops ``align_corners``, a loss module that ignores ``reduction``, ...), with every expected
value computed here in NumPy from the layer's defining equation (PyTorch's documentation).
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import tinygan
from tinygan import nn
from tinygan.backend import to_numpy
from tinygan.kernels import reference as ref

TOL32 = dict(rtol=1e-5, atol=1e-6)
TOL64 = dict(rtol=1e-10, atol=1e-12)


def randn(*shape, seed=0, dtype=np.float32, scale=1.0, shift=0.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale + shift).astype(dtype)


def T(a, requires_grad=False, device="cpu"):
    return tinygan.tensor(a, requires_grad=requires_grad, device=device)


def keys(m):
    return list(m.state_dict())


# ---------------------------------------------------------------------------
# default initialisation of Linear / Conv2d / ConvTranspose2d
# ---------------------------------------------------------------------------

def _torch_default_draws(seed, w_shape, bias_shape, fan_in):
    """torch's reset_parameters: kaiming_uniform_(a=sqrt(5)), i.e. U(+-1/sqrt(fan_in)), then the bias
    U(+-1/sqrt(fan_in)) (0 when fan_in is 0), both from the same generator, in that order."""
    g = np.random.default_rng(seed)
    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    w = g.uniform(-bound, bound, w_shape) if 0 not in w_shape else np.zeros(w_shape)
    b = None if bias_shape is None else g.uniform(-bound, bound, bias_shape)
    return w, b


@pytest.mark.parametrize("make,w_shape,fan_in", [
    (lambda: nn.Linear(7, 5), (5, 7), 7),
    (lambda: nn.Linear(1, 200), (200, 1), 1),                    # fan_in 1: the bias is U(-1, 1)
    (lambda: nn.Conv2d(3, 4, (3, 2)), (4, 3, 3, 2), 18),
    (lambda: nn.ConvTranspose2d(3, 4, 3), (3, 4, 3, 3), 36),     # weight (in, out, k, k): fan_in = out k^2
])
def test_default_init_is_torchs_reset_parameters(make, w_shape, fan_in):
    tinygan.manual_seed(5)
    m = make()
    w, b = _torch_default_draws(5, w_shape, (w_shape[0] if len(w_shape) == 2 else m.out_channels,), fan_in)
    np.testing.assert_allclose(m.weight.numpy(), w.astype(np.float32), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(m.bias.numpy(), b.astype(np.float32), rtol=1e-5, atol=1e-7)
    bound = 1 / math.sqrt(fan_in)
    assert m.bias.numpy().min() < 0 < m.bias.numpy().max() and np.abs(m.bias.numpy()).max() <= bound


def test_a_linear_layer_without_inputs_is_its_bias():
    """torch allows Linear(0, n): nothing to initialise in the weight, the bias bound 1/sqrt(0) is taken as 0."""
    m = nn.Linear(0, 3)
    assert m.weight.shape == (3, 0)
    np.testing.assert_array_equal(m.bias.numpy(), np.zeros(3, np.float32))
    np.testing.assert_array_equal(m(T(np.zeros((2, 0), np.float32))).numpy(), np.zeros((2, 3), np.float32))


# ---------------------------------------------------------------------------
# Linear
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_linear_parameters_follow_dtype_and_bias(dtype):
    m = nn.Linear(4, 3, dtype=dtype)
    assert m.weight.dtype == dtype and m.bias.dtype == dtype
    assert keys(m) == ["weight", "bias"]
    x = randn(2, 4, dtype=dtype)
    np.testing.assert_allclose(m(T(x)).numpy(), x @ m.weight.numpy().T + m.bias.numpy(), **TOL32)
    nb = nn.Linear(4, 3, bias=False, dtype=dtype)
    assert nb.bias is None and keys(nb) == ["weight"] and nb.weight.dtype == dtype
    np.testing.assert_allclose(nb(T(x)).numpy(), x @ nb.weight.numpy().T, **TOL32)
    assert repr(nb) == "Linear(in_features=4, out_features=3, bias=False)"


# ---------------------------------------------------------------------------
# Conv2d
# ---------------------------------------------------------------------------

def _conv_ref(m, x):
    bias = None if m.bias is None else m.bias.numpy()
    return ref.conv2d_ref(x.astype(np.float64), m.weight.numpy().astype(np.float64), m.stride,
                          m.padding, bias)


def test_conv2d_defaults_are_stride_1_and_no_padding():
    m = nn.Conv2d(2, 3, 3)
    assert (m.kernel_size, m.stride, m.padding) == ((3, 3), (1, 1), (0, 0))
    x = randn(2, 2, 6, 5)
    y = m(T(x)).numpy()
    assert y.shape == (2, 3, 4, 3)
    np.testing.assert_allclose(y, ref.conv2d_ref(x, m.weight.numpy(), 1, 0, m.bias.numpy()), **TOL32)


@pytest.mark.parametrize("kernel,before,after", [
    (3, (1, 1), (1, 1)),
    ((3, 4), (1, 1), (1, 2)),        # an even kernel: torch pads floor((k-1)/2) before, the rest after
    ((2, 5), (0, 2), (1, 2)),
])
def test_conv2d_same_padding_keeps_the_size(kernel, before, after):
    m = nn.Conv2d(2, 3, kernel, padding="same")
    assert m.padding == "same"
    x = randn(2, 2, 6, 7, seed=1)
    y = m(T(x)).numpy()
    assert y.shape == (2, 3, 6, 7)
    xp = np.pad(x, ((0, 0), (0, 0), (before[0], after[0]), (before[1], after[1])))
    np.testing.assert_allclose(y, ref.conv2d_ref(xp, m.weight.numpy(), 1, 0, m.bias.numpy()), **TOL32)


@pytest.mark.parametrize("stride", [1, 2, (2, 1)])
def test_conv2d_valid_padding_is_no_padding(stride):
    m = nn.Conv2d(2, 3, 3, stride=stride, padding="valid")
    assert m.padding == "valid"
    x = randn(1, 2, 7, 6, seed=2)
    expected = ref.conv2d_ref(x, m.weight.numpy(), stride, 0, m.bias.numpy())
    np.testing.assert_allclose(m(T(x)).numpy(), expected, **TOL32)


@pytest.mark.parametrize("stride", [2, (2, 1), (1, 2), (3, 3)])
def test_conv2d_same_padding_is_refused_for_a_strided_convolution(stride):
    s = stride if isinstance(stride, tuple) else (stride, stride)
    with pytest.raises(ValueError, match=rf"^Conv2d: padding='same' is not supported for strided convolutions "
                                         rf"\(stride \({s[0]}, {s[1]}\)\)$"):
        nn.Conv2d(1, 1, 3, stride=stride, padding="same")


@pytest.mark.parametrize("bad", ["full", "SAME", "Valid", ""])
def test_conv2d_refuses_other_padding_strings(bad):
    with pytest.raises(TypeError, match=rf"^Conv2d: padding must be an int or a pair of ints, got {bad!r} \(str\); "
                                        r"the strings it takes are 'same' and 'valid'$"):
        nn.Conv2d(1, 1, 3, padding=bad)


@pytest.mark.parametrize("cls,arg", [(c, a) for c in ("Conv2d", "ConvTranspose2d")
                                      for a in ("kernel_size", "stride", "padding", "output_padding")
                                      if (c, a) != ("Conv2d", "output_padding")])
def test_conv_layer_argument_errors_name_the_layer_and_the_argument(cls, arg):
    kwargs = dict(kernel_size=3)
    with pytest.raises(TypeError, match=rf"^{cls}: {arg} must be an int or a pair of ints, got 1\.5 \(float\)$"):
        getattr(nn, cls)(1, 1, **dict(kwargs, **{arg: 1.5}))
    with pytest.raises(ValueError, match=rf"^{cls}: {arg} must be an int or a pair of ints, got \(1, 1, 1\)$"):
        getattr(nn, cls)(1, 1, **dict(kwargs, **{arg: (1, 1, 1)}))
    with pytest.raises(TypeError, match=rf"^{cls}: {arg} must be an int or a pair of ints, got True \(bool\)$"):
        getattr(nn, cls)(1, 1, **dict(kwargs, **{arg: True}))


@pytest.mark.parametrize("cls", ["Conv2d", "ConvTranspose2d"])
def test_conv_layers_without_bias(cls):
    m = getattr(nn, cls)(2, 3, 3, bias=False)
    assert m.bias is None and keys(m) == ["weight"] and [k for k, _ in m.named_parameters()] == ["weight"]
    x = randn(1, 2, 5, 5, seed=3)
    w = m.weight.numpy()
    expected = ref.conv2d_ref(x, w) if cls == "Conv2d" else ref.conv_transpose2d_ref(x, w)
    np.testing.assert_allclose(m(T(x)).numpy(), expected, **TOL32)
    assert repr(m) == f"{cls}(2, 3, kernel_size=(3, 3), stride=(1, 1), padding=(0, 0), bias=False)"
    assert repr(getattr(nn, cls)(2, 3, 3, stride=2, padding=1)) == \
        f"{cls}(2, 3, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), bias=True)"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cls", ["Conv2d", "ConvTranspose2d"])
def test_conv_layer_parameters_follow_dtype(cls, dtype):
    m = getattr(nn, cls)(2, 3, 3, dtype=dtype)
    assert m.weight.dtype == dtype and m.bias.dtype == dtype


# ---------------------------------------------------------------------------
# ConvTranspose2d
# ---------------------------------------------------------------------------

def test_conv_transpose2d_defaults_are_stride_1_no_padding_no_output_padding():
    m = nn.ConvTranspose2d(2, 3, 3)
    assert (m.kernel_size, m.stride, m.padding, m.output_padding) == ((3, 3), (1, 1), (0, 0), (0, 0))
    assert m.weight.shape == (2, 3, 3, 3)
    x = randn(2, 2, 4, 5, seed=4)
    y = m(T(x)).numpy()
    assert y.shape == (2, 3, 6, 7)                              # (H - 1) + k
    np.testing.assert_allclose(y, ref.conv_transpose2d_ref(x, m.weight.numpy(), bias=m.bias.numpy()), **TOL32)


def test_conv_transpose2d_passes_stride_padding_and_output_padding():
    m = nn.ConvTranspose2d(2, 3, (3, 4), stride=(2, 3), padding=(1, 0), output_padding=(1, 2))
    x = randn(1, 2, 3, 4, seed=5)
    y = m(T(x)).numpy()
    assert y.shape == (1, 3, (3 - 1) * 2 - 2 + 3 + 1, (4 - 1) * 3 + 4 + 2)
    expected = ref.conv_transpose2d_ref(x, m.weight.numpy(), (2, 3), (1, 0), (1, 2), m.bias.numpy())
    np.testing.assert_allclose(y, expected, **TOL32)


# ---------------------------------------------------------------------------
# BatchNorm1d / BatchNorm2d
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batch_norm_state_follows_dtype(dtype):
    bn = nn.BatchNorm2d(3, dtype=dtype)
    sd = bn.state_dict()
    assert list(sd) == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    for k in ("weight", "bias", "running_mean", "running_var"):
        assert sd[k].dtype == dtype and sd[k].shape == (3,), k
    np.testing.assert_array_equal(sd["weight"], np.ones(3))
    np.testing.assert_array_equal(sd["bias"], np.zeros(3))
    np.testing.assert_array_equal(sd["running_mean"], np.zeros(3))
    np.testing.assert_array_equal(sd["running_var"], np.ones(3))
    assert sd["num_batches_tracked"].dtype == np.int64 and sd["num_batches_tracked"] == 0
    x = randn(4, 3, 2, 2, dtype=dtype)
    assert bn(T(x)).dtype == dtype and bn.running_mean.dtype == dtype


@pytest.mark.parametrize("cls,shape", [(nn.BatchNorm1d, (6, 3)), (nn.BatchNorm2d, (4, 3, 2, 3))])
def test_batch_norm_without_affine_has_no_parameters(cls, shape):
    bn = cls(3, affine=False)
    assert bn.weight is None and bn.bias is None and list(bn.parameters()) == []
    assert keys(bn) == ["running_mean", "running_var", "num_batches_tracked"]
    x = randn(*shape, seed=6, scale=2.0, shift=1.0)
    y, rm, rv = ref.batch_norm_ref(x, np.zeros(3), np.ones(3), training=True)
    np.testing.assert_allclose(bn(T(x)).numpy(), y, **TOL32)
    np.testing.assert_allclose(bn.running_mean, rm, **TOL32)
    np.testing.assert_allclose(bn.running_var, rv, **TOL32)


def test_batch_norm_defaults_momentum_and_eps():
    """momentum 0.1 and eps 1e-5 (torch's defaults), seen in the statistics and in a near-constant channel."""
    bn = nn.BatchNorm1d(2, dtype=np.float64)
    assert (bn.eps, bn.momentum, bn.affine, bn.track_running_stats) == (1e-5, 0.1, True, True)
    x = randn(8, 2, seed=7, dtype=np.float64)
    x[:, 1] = 3.0 + 1e-3 * x[:, 1]                  # variance ~1e-6: eps = 1e-5 dominates it
    y, rm, rv = ref.batch_norm_ref(x, np.zeros(2), np.ones(2), np.ones(2), np.zeros(2), training=True,
                                   momentum=0.1, eps=1e-5)
    np.testing.assert_allclose(bn(T(x)).numpy(), y, **TOL64)
    np.testing.assert_allclose(bn.running_mean, rm, **TOL64)
    np.testing.assert_allclose(bn.running_var, rv, **TOL64)
    bn.eval()
    y, _, _ = ref.batch_norm_ref(x, rm, rv, np.ones(2), np.zeros(2), training=False, eps=1e-5)
    np.testing.assert_allclose(bn(T(x)).numpy(), y, **TOL64)


@pytest.mark.parametrize("cls,shape", [(nn.BatchNorm1d, (6, 2)), (nn.BatchNorm2d, (3, 2, 2, 2))])
def test_batch_norm_uses_its_eps_in_training_and_in_eval(cls, shape):
    bn = cls(2, eps=0.5, momentum=0.3, dtype=np.float64)
    x = randn(*shape, seed=27, dtype=np.float64, scale=0.5)
    y, rm, rv = ref.batch_norm_ref(x, np.zeros(2), np.ones(2), np.ones(2), np.zeros(2), training=True,
                                   momentum=0.3, eps=0.5)
    np.testing.assert_allclose(bn(T(x)).numpy(), y, **TOL64)
    np.testing.assert_allclose(bn.running_mean, rm, **TOL64)
    bn.eval()
    y, _, _ = ref.batch_norm_ref(x, rm, rv, np.ones(2), np.zeros(2), training=False, eps=0.5)
    np.testing.assert_allclose(bn(T(x)).numpy(), y, **TOL64)


def test_batch_norm_momentum_none_averages_every_batch_torch_free():
    """momentum=None: the running statistics are the plain mean of each batch's (unbiased) statistics."""
    bn = nn.BatchNorm1d(3, momentum=None, dtype=np.float64)
    xs = [randn(5, 3, seed=s, dtype=np.float64, scale=s + 1.0, shift=s) for s in range(4)]
    for i, x in enumerate(xs, 1):
        bn(T(x))
        assert int(bn.num_batches_tracked) == i
        np.testing.assert_allclose(bn.running_mean, np.mean([b.mean(0) for b in xs[:i]], axis=0), **TOL64)
        # the first batch replaces the initial ones entirely (momentum 1/1)
        np.testing.assert_allclose(bn.running_var, np.mean([b.var(0, ddof=1) for b in xs[:i]], axis=0), **TOL64)
    bn.eval()
    bn(T(xs[0]))
    assert int(bn.num_batches_tracked) == 4


def test_batch_norm_without_running_stats_has_no_buffers():
    bn = nn.BatchNorm2d(2, track_running_stats=False)
    assert bn.running_mean is None and bn.running_var is None
    assert keys(bn) == ["weight", "bias"] and list(bn.named_buffers()) == []
    x = randn(3, 2, 2, 2, seed=8)
    bn.eval()                                       # still normalises with the batch's statistics
    np.testing.assert_allclose(bn(T(x)).numpy(), ref.batch_norm_ref(x, training=True)[0], **TOL32)


@pytest.mark.parametrize("cls,good,bad", [(nn.BatchNorm1d, 2, (4, 3, 5)), (nn.BatchNorm2d, 4, (4, 3, 5))])
def test_batch_norm_names_the_input_rank_it_expects(cls, good, bad):
    with pytest.raises(ValueError, match=rf"^{cls.__name__}: expected a {good}-D input, got shape "
                                         rf"\({bad[0]}, {bad[1]}, {bad[2]}\)$"):
        cls(3)(T(np.zeros(bad, np.float32)))


# ---------------------------------------------------------------------------
# LayerNorm
# ---------------------------------------------------------------------------

def layer_norm_ref(x, ndims, weight=None, bias=None, eps=1e-5):
    """torch.nn.LayerNorm: over the trailing ``ndims`` axes, (x - mean) / sqrt(biased var + eps) * w + b."""
    x = np.asarray(x, np.float64)
    axes = tuple(range(x.ndim - ndims, x.ndim))
    mu = x.mean(axis=axes, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=axes, keepdims=True)
    y = (x - mu) / np.sqrt(var + eps)
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y


@pytest.mark.parametrize("shape,normalized", [((4, 6), 6), ((2, 3, 4), (3, 4)), ((2, 3, 4), [4]), ((5, 2, 3), (2, 3))])
def test_layer_norm_matches_its_equation(shape, normalized):
    ln = nn.LayerNorm(normalized, dtype=np.float64)
    want = (normalized,) if isinstance(normalized, int) else tuple(normalized)
    assert ln.normalized_shape == want
    assert ln.eps == 1e-5 and ln.weight.shape == want and ln.bias.shape == want
    assert ln.weight.dtype == np.float64 and ln.bias.dtype == np.float64
    np.testing.assert_array_equal(ln.weight.numpy(), np.ones(want))
    np.testing.assert_array_equal(ln.bias.numpy(), np.zeros(want))
    assert keys(ln) == ["weight", "bias"] and [k for k, _ in ln.named_parameters()] == ["weight", "bias"]
    x = randn(*shape, seed=9, dtype=np.float64, scale=3.0, shift=2.0)
    np.testing.assert_allclose(ln(T(x)).numpy(), layer_norm_ref(x, len(want)), **TOL64)
    # with trained weight and bias
    w, b = randn(*want, seed=10, dtype=np.float64), randn(*want, seed=11, dtype=np.float64)
    ln.load_state_dict({"weight": w, "bias": b})
    np.testing.assert_allclose(ln(T(x)).numpy(), layer_norm_ref(x, len(want), w, b), **TOL64)


def test_layer_norm_default_dtype_is_float32():
    ln = nn.LayerNorm(3)
    assert ln.weight.dtype == np.float32 and ln.bias.dtype == np.float32
    x = randn(2, 3)
    assert ln(T(x)).dtype == np.float32
    np.testing.assert_allclose(ln(T(x)).numpy(), layer_norm_ref(x, 1), **TOL32)


@pytest.mark.parametrize("eps", [None, 1e-3])
def test_layer_norm_eps_counts_for_a_near_constant_row(eps):
    """Variance ~1e-6, so eps (default 1e-5) decides the output scale."""
    x = randn(3, 8, seed=12, dtype=np.float64, scale=1e-3, shift=5.0)
    ln = nn.LayerNorm(8, dtype=np.float64) if eps is None else nn.LayerNorm(8, eps=eps, dtype=np.float64)
    np.testing.assert_allclose(ln(T(x)).numpy(), layer_norm_ref(x, 1, eps=1e-5 if eps is None else eps), **TOL64)


def test_layer_norm_without_affine_has_no_parameters():
    ln = nn.LayerNorm((2, 3), elementwise_affine=False)
    assert ln.weight is None and ln.bias is None
    assert keys(ln) == [] and list(ln.parameters()) == []
    x = randn(4, 2, 3, seed=13)
    np.testing.assert_allclose(ln(T(x)).numpy(), layer_norm_ref(x, 2), **TOL32)


def test_layer_norm_gradients_reach_weight_and_bias():
    """dL/db = sum of g over the batch; dL/dw = sum of g * x_hat."""
    ln = nn.LayerNorm(4, dtype=np.float64)
    x = randn(3, 4, seed=14, dtype=np.float64)
    g = randn(3, 4, seed=15, dtype=np.float64)
    (ln(T(x)) * T(g)).sum().backward()
    np.testing.assert_allclose(ln.bias.grad.numpy(), g.sum(0), **TOL64)
    np.testing.assert_allclose(ln.weight.grad.numpy(), (g * layer_norm_ref(x, 1)).sum(0), **TOL64)


def test_layer_norm_refuses_an_input_of_another_trailing_shape():
    with pytest.raises(ValueError, match=r"^layer_norm: input of shape \(2, 5\) does not end in normalized_shape "
                                         r"\(4,\)$"):
        nn.LayerNorm(4)(T(np.zeros((2, 5), np.float32)))


# ---------------------------------------------------------------------------
# activations, Identity, Flatten, Unflatten
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_activations_match_their_formulas(dtype):
    x = randn(3, 5, seed=16, dtype=dtype, scale=3.0)
    x[0, 0] = 0.0
    cases = [
        (nn.LeakyReLU(), np.where(x > 0, x, 0.01 * x)),                 # torch's default slope 0.01
        (nn.LeakyReLU(0.2), np.where(x > 0, x, 0.2 * x)),
        (nn.LeakyReLU(negative_slope=0.3, inplace=True), np.where(x > 0, x, 0.3 * x)),
        (nn.ReLU(), np.maximum(x, 0)),
        (nn.ReLU(inplace=True), np.maximum(x, 0)),
        (nn.Tanh(), np.tanh(x)),
        (nn.Sigmoid(), 1 / (1 + np.exp(-x.astype(np.float64)))),
    ]
    for m, expected in cases:
        y = m(T(x))
        assert y.dtype == dtype and y.shape == x.shape
        np.testing.assert_allclose(y.numpy(), expected, rtol=1e-6, atol=1e-7, err_msg=repr(m))
    assert nn.LeakyReLU().negative_slope == 0.01 and repr(nn.LeakyReLU()) == "LeakyReLU(negative_slope=0.01)"


def test_identity_returns_its_input():
    x = T(randn(2, 3))
    assert nn.Identity()(x) is x


@pytest.mark.parametrize("args,shape", [
    ((), (2, 60)),                  # torch's defaults start_dim=1, end_dim=-1
    ((0,), (120,)),
    ((2,), (2, 3, 20)),
    ((1, 2), (2, 12, 5)),
    ((0, -2), (24, 5)),
    ((-3, -2), (2, 12, 5)),
])
def test_flatten_merges_the_dims_from_start_to_end(args, shape):
    x = randn(2, 3, 4, 5, seed=17)
    y = nn.Flatten(*args)(T(x)).numpy()
    assert y.shape == shape
    np.testing.assert_array_equal(y, x.reshape(shape))


@pytest.mark.parametrize("dim,size,in_shape,out_shape", [
    (1, (2, 3), (4, 6, 5), (4, 2, 3, 5)),
    (1, [3, 2], (4, 6), (4, 3, 2)),
    (-1, (2, 3), (4, 5, 6), (4, 5, 2, 3)),
    (-2, (5, 1), (4, 5, 6), (4, 5, 1, 6)),
    (0, (2, 2), (4, 3), (2, 2, 3)),
    (2, (1, 5, 1), (2, 3, 5, 7), (2, 3, 1, 5, 1, 7)),
])
def test_unflatten_splits_one_dim(dim, size, in_shape, out_shape):
    x = randn(*in_shape, seed=18)
    m = nn.Unflatten(dim, size)
    assert m.dim == dim and m.unflattened_size == tuple(size)
    y = m(T(x)).numpy()
    assert y.shape == out_shape
    np.testing.assert_array_equal(y, x.reshape(out_shape))


# ---------------------------------------------------------------------------
# Embedding
# ---------------------------------------------------------------------------

def test_embedding_is_a_lookup_table_initialised_standard_normal():
    tinygan.manual_seed(3)
    e = nn.Embedding(10, 4)
    assert e.weight.shape == (10, 4) and e.weight.dtype == np.float32
    assert (e.num_embeddings, e.embedding_dim) == (10, 4) and keys(e) == ["weight"]
    np.testing.assert_allclose(e.weight.numpy(), np.random.default_rng(3).normal(0.0, 1.0, (10, 4)).astype(np.float32),
                               rtol=1e-6)
    w = e.weight.numpy()
    for idx in (np.array([3, 0, 9, 3]), np.array([[1, 2], [2, 1], [0, 0]]), [4, 5], np.array(7)):
        y = e(idx)
        np.testing.assert_array_equal(y.numpy(), w[np.asarray(idx)])
        assert y.shape == np.asarray(idx).shape + (4,)
    np.testing.assert_array_equal(e(T(np.array([2, 8]))).numpy(), w[[2, 8]])     # integer Tensors too


def test_embedding_dtype_and_gradient():
    e = nn.Embedding(5, 3, dtype=np.float64)
    assert e.weight.dtype == np.float64 and e.weight.shape == (5, 3)
    idx = np.array([[1, 4], [1, 1]])
    g = randn(2, 2, 3, seed=19, dtype=np.float64)
    (e(idx) * T(g)).sum().backward()
    expected = np.zeros((5, 3))
    np.add.at(expected, idx, g)                       # a repeated index receives the sum of its gradients
    np.testing.assert_allclose(e.weight.grad.numpy(), expected, **TOL64)


def test_embedding_refuses_indices_out_of_range():
    with pytest.raises(ValueError, match=r"^embedding: indices must lie in \[0, 4\) for weight \(4, 2\), "
                                         r"got min 0 max 4$"):
        nn.Embedding(4, 2)(np.array([0, 4]))


# ---------------------------------------------------------------------------
# Dropout
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("p", [0.5, 0.2, 0.9])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dropout_keeps_each_element_with_probability_1_minus_p(p, dtype):
    """Training: y = x * keep / (1 - p), keep = (u >= p) for u ~ U[0, 1) from tinygan's global generator."""
    x = randn(40, 50, seed=20, dtype=dtype)
    tinygan.manual_seed(4)
    y = nn.Dropout(p)(T(x))
    keep = np.random.default_rng(4).random(x.shape) >= p
    assert y.dtype == dtype
    np.testing.assert_allclose(y.numpy(), np.where(keep, x / dtype(1 - p), 0), rtol=1e-6)
    assert abs((y.numpy() == 0).mean() - p) < 0.05


def test_dropout_drops_exactly_the_draws_below_p():
    """Drop iff u < p, so P(drop) = p exactly for u uniform on NumPy's grid [0, 1): a draw equal to p is kept."""
    u = np.random.default_rng(9).random(4)
    for p in u:
        tinygan.manual_seed(9)
        y = nn.Dropout(float(p))(T(np.ones(4)))
        np.testing.assert_allclose(y.numpy(), np.where(u >= p, 1 / (1 - p), 0.0), rtol=1e-12)


def test_dropout_default_p_is_one_half():
    d = nn.Dropout()
    assert d.p == 0.5
    tinygan.manual_seed(6)
    y = d(T(np.ones((30, 30), np.float32))).numpy()
    keep = np.random.default_rng(6).random((30, 30)) >= 0.5
    np.testing.assert_array_equal(y, np.where(keep, 2.0, 0.0))


def test_dropout_with_p_zero_or_in_eval_is_the_identity_and_draws_nothing():
    x = T(randn(4, 5, seed=21))
    for d in (nn.Dropout(0.0), nn.Dropout(0), nn.Dropout(0.5).eval()):
        tinygan.manual_seed(7)
        assert d(x) is x
        np.testing.assert_array_equal(tinygan.rand(3).numpy(), np.random.default_rng(7).random(3).astype(np.float32))


@pytest.mark.parametrize("p", [1.0, 1, 1.5, -0.1, -1])
def test_dropout_p_outside_zero_one_is_refused(p):
    with pytest.raises(ValueError, match=rf"^Dropout: p must be in \[0, 1\), got {p}$"):
        nn.Dropout(p)


def test_dropout_on_the_device_of_its_input(device):
    x = T(np.ones((6, 7), np.float32), device=device)
    tinygan.manual_seed(8)
    y = nn.Dropout(0.25)(x)
    assert y.device == device and y.dtype == np.float32
    keep = np.random.default_rng(8).random((6, 7)) >= 0.25
    np.testing.assert_allclose(to_numpy(y._data), np.where(keep, 1 / 0.75, 0.0), rtol=1e-6)


# ---------------------------------------------------------------------------
# Upsample
# ---------------------------------------------------------------------------

def nearest_ref(x, out_hw, scales=None):
    """torch 'nearest': src = min(floor(dst * s), n_in - 1), s = 1 / scale_factor, or n_in / n_out for a size."""
    h, w = x.shape[2:]
    idx = []
    for n_in, n_out, s in zip((h, w), out_hw, scales or (None, None)):
        s = np.float32(n_in / n_out if s is None else 1.0 / s)
        idx.append(np.minimum(np.floor(np.arange(n_out, dtype=np.float32) * s).astype(int), n_in - 1))
    return x[:, :, idx[0]][:, :, :, idx[1]]


def bilinear_ref(x, out_hw, align_corners, scales=None):
    """torch 'bilinear', element by element: each output pixel from its four neighbours."""
    x = np.asarray(x, np.float64)
    n, c, h, w = x.shape
    ho, wo = out_hw

    def src(dst, n_in, n_out, scale):
        if align_corners:
            return dst * (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
        s = n_in / n_out if scale is None else 1.0 / scale
        return max((dst + 0.5) * s - 0.5, 0.0)

    y = np.zeros((n, c, ho, wo))
    for i in range(ho):
        sy = src(i, h, ho, None if scales is None else scales[0])
        y0 = min(int(math.floor(sy)), h - 1)
        y1, ly = min(y0 + 1, h - 1), sy - y0
        for j in range(wo):
            sx = src(j, w, wo, None if scales is None else scales[1])
            x0 = min(int(math.floor(sx)), w - 1)
            x1, lx = min(x0 + 1, w - 1), sx - x0
            y[:, :, i, j] = ((1 - ly) * ((1 - lx) * x[:, :, y0, x0] + lx * x[:, :, y0, x1])
                             + ly * ((1 - lx) * x[:, :, y1, x0] + lx * x[:, :, y1, x1]))
    return y


def test_upsample_default_mode_is_nearest():
    x = randn(2, 3, 3, 4, seed=22)
    m = nn.Upsample(scale_factor=2)
    assert m.mode == "nearest" and m.align_corners is None and m.size is None
    y = m(T(x)).numpy()
    np.testing.assert_array_equal(y, x.repeat(2, axis=2).repeat(2, axis=3))
    assert repr(m) == "Upsample(scale_factor=2, mode='nearest')"


@pytest.mark.parametrize("size", [(5, 7), 6, (2, 3)])
def test_upsample_nearest_to_a_size(size):
    x = randn(1, 2, 3, 4, seed=23)
    m = nn.Upsample(size=size)
    out = (size, size) if isinstance(size, int) else size
    y = m(T(x)).numpy()
    assert y.shape == (1, 2) + out
    np.testing.assert_array_equal(y, nearest_ref(x, out))
    assert repr(m) == f"Upsample(size={size}, mode='nearest')"


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("how", [dict(scale_factor=2), dict(size=(5, 7)), dict(scale_factor=(1.5, 3))])
def test_upsample_bilinear_matches_its_equation(how, align_corners):
    x = randn(2, 2, 3, 4, seed=24, dtype=np.float64)
    m = nn.Upsample(mode="bilinear", align_corners=align_corners, **how)
    assert (m.mode, m.align_corners) == ("bilinear", align_corners)
    if "size" in how:
        out, scales = how["size"], None
    else:
        f = how["scale_factor"]
        scales = (f, f) if isinstance(f, (int, float)) else f
        out = (int(3 * scales[0]), int(4 * scales[1]))
    y = m(T(x)).numpy()
    assert y.shape == (2, 2) + tuple(out)
    np.testing.assert_allclose(y, bilinear_ref(x, out, align_corners, scales), **TOL64)
    what = f"size={how['size']}" if "size" in how else f"scale_factor={how['scale_factor']}"
    assert repr(m) == f"Upsample({what}, mode='bilinear')"


def test_upsample_nearest_with_align_corners_is_refused():
    with pytest.raises(ValueError, match=r"^interpolate: align_corners only applies to mode 'bilinear', "
                                         r"not 'nearest'$"):
        nn.Upsample(scale_factor=2, align_corners=False)(T(np.zeros((1, 1, 2, 2), np.float32)))


# ---------------------------------------------------------------------------
# loss modules
# ---------------------------------------------------------------------------

def _softplus(x):
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def _log_softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


_X = randn(4, 3, seed=25, dtype=np.float64, scale=2.0)
_P = 1 / (1 + np.exp(-_X))
_P[0, 0] = 0.0                                          # log(0) is clamped at -100, as torch
_T = np.random.default_rng(26).random((4, 3))
_LABELS = np.array([2, 0, 1, 2])
LOSSES = {
    "BCEWithLogitsLoss": (_X, _T, _softplus(_X) - _T * _X),
    "BCELoss": (_P, _T, -(_T * np.maximum(np.log(np.where(_P > 0, _P, 1e-300)), -100)
                          + (1 - _T) * np.maximum(np.log1p(-_P), -100))),
    "MSELoss": (_X, _T, (_X - _T) ** 2),
    "L1Loss": (_X, _T, np.abs(_X - _T)),
    "CrossEntropyLoss": (_X, _LABELS, -_log_softmax(_X)[np.arange(4), _LABELS]),
}


@pytest.mark.parametrize("reduction", [None, "mean", "sum", "none"])
@pytest.mark.parametrize("name", list(LOSSES))
def test_loss_modules_compute_their_loss_and_reduce_it(name, reduction):
    x, target, elementwise = LOSSES[name]
    cls = getattr(nn, name)
    m = cls() if reduction is None else cls(reduction=reduction)
    reduction = reduction or "mean"                                 # torch's default
    assert m.reduction == reduction and repr(m) == f"{name}(reduction={reduction!r})"
    expected = {"mean": elementwise.mean(), "sum": elementwise.sum(), "none": elementwise}[reduction]
    xt = T(x, requires_grad=True)
    y = m(xt, target)
    assert y.shape == np.shape(expected)
    np.testing.assert_allclose(y.numpy(), expected, **TOL64)
    # the same loss with a Tensor target
    np.testing.assert_allclose(m(T(x), T(np.asarray(target))).numpy(), expected, **TOL64)


@pytest.mark.parametrize("name", list(LOSSES))
@pytest.mark.parametrize("bad", ["avg", "MEAN", "Sum", "", None])
def test_loss_modules_refuse_an_unknown_reduction(name, bad):
    with pytest.raises(ValueError, match=rf"^{name}: reduction must be 'mean', 'sum' or 'none', "
                                         rf"got {repr(bad).replace('(', '[(]')}$"):
        getattr(nn, name)(reduction=bad)


def test_loss_module_gradient_is_the_losss():
    """MSELoss(mean): d/dx = 2 (x - t) / N."""
    x = T(_X, requires_grad=True)
    nn.MSELoss()(x, _T).backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * (_X - _T) / _X.size, **TOL64)
