"""Forward semantics without PyTorch: each op against its slow loop reference, each optimizer
against its update equations written out here.

The gradchecks (tests/test_gradcheck.py) prove that a backward is the derivative of its
forward, but not that the forward computes the right thing: a conv_transpose2d that fills
its output_padding rows with zeros in the forward *and* the backward, or a batch norm that
stores the biased variance in its running statistics, passes every gradcheck.  The PyTorch
parity tests would see them, so this file is the second, torch-free witness: every
functional op and layer is compared with a loop transcription of its defining equation in
:mod:`tinygan.kernels.reference` (which calls no tinygan kernel), and every optimizer with
torch's documented update algorithm, over several steps.

Both bugs above were planted, one at a time, and these tests failed on each
(docs/testing.md, "Planted bugs").
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygan
import tinygan.functional as F
from conftest import conv_cases, dcgan_examples, examples, seeds
from tinygan import nn, optim
from tinygan.kernels import reference as ref

TOL64 = dict(rtol=1e-10, atol=1e-10)


def leaf(a, device, requires_grad=True, dtype=np.float64):
    return tinygan.tensor(np.asarray(a, dtype=dtype), requires_grad=requires_grad, device=device)


def host(t):
    return tinygan.Tensor(t).numpy() if not isinstance(t, tinygan.Tensor) else t.numpy()


def _conv_arrays(case, transposed=False):
    """x (N, C, H, W), w ((C, O) or (O, C), kh, kw), bias (O,) or None, and an output gradient seed."""
    rng = np.random.default_rng(case["seed"])
    x = rng.standard_normal((case["n"], case["c"], case["h"], case["w"]))
    w = rng.standard_normal(((case["c"], case["o"]) if transposed else (case["o"], case["c"])) + case["k"])
    b = rng.standard_normal(case["o"]) if case["bias"] else None
    return x, w, b, rng


# ---------------------------------------------------------------------------
# convolutions, through functional and autograd
# ---------------------------------------------------------------------------

@dcgan_examples()
@settings(max_examples=examples(15))
@given(case=conv_cases())
def test_conv2d_forward_and_gradients_match_the_loops(device, case):
    x, w, b, rng = _conv_arrays(case)
    s, p = case["s"], case["p"]
    tx, tw = leaf(x, device), leaf(w, device)
    tb = leaf(b, device) if b is not None else None
    y = F.conv2d(tx, tw, tb, stride=s, padding=p)
    np.testing.assert_allclose(y.numpy(), ref.conv2d_ref(x, w, s, p, bias=b), **TOL64)
    g = rng.standard_normal(y.shape)
    y.backward(leaf(g, device, requires_grad=False))
    np.testing.assert_allclose(tx.grad.numpy(), ref.conv2d_grad_input_ref(g, w, x.shape[2:], s, p), **TOL64)
    np.testing.assert_allclose(tw.grad.numpy(), ref.conv2d_grad_weight_ref(x, g, case["k"], s, p), **TOL64)
    if b is not None:
        np.testing.assert_allclose(tb.grad.numpy(), g.sum(axis=(0, 2, 3)), **TOL64)


@dcgan_examples(transposed=True)
@settings(max_examples=examples(15))
@given(case=conv_cases(transposed=True))
def test_conv_transpose2d_forward_and_gradients_match_the_loops(device, case):
    """With bias and output_padding: the output_padding rows hold sums of products, not zeros."""
    x, w, b, rng = _conv_arrays(case, transposed=True)
    s, p, op = case["s"], case["p"], case["op"]
    tx, tw = leaf(x, device), leaf(w, device)
    tb = leaf(b, device) if b is not None else None
    y = F.conv_transpose2d(tx, tw, tb, stride=s, padding=p, output_padding=op)
    expected = ref.conv_transpose2d_ref(x, w, s, p, op, bias=b)
    assert y.shape == expected.shape
    np.testing.assert_allclose(y.numpy(), expected, **TOL64)
    g = rng.standard_normal(y.shape)
    y.backward(leaf(g, device, requires_grad=False))
    # the adjoint of a transposed conv in x is the conv it transposes (output_padding rows included)
    np.testing.assert_allclose(tx.grad.numpy(), ref.conv2d_ref(g, w, s, p), **TOL64)
    np.testing.assert_allclose(tw.grad.numpy(), ref.conv2d_grad_weight_ref(g, x, case["k"], s, p), **TOL64)
    if b is not None:
        np.testing.assert_allclose(tb.grad.numpy(), g.sum(axis=(0, 2, 3)), **TOL64)


@dcgan_examples()
@settings(max_examples=examples(10))
@given(case=conv_cases())
def test_conv2d_grad_weight_op_matches_the_loop(device, case):
    x, _, _, rng = _conv_arrays(case)
    s, p, k = case["s"], case["p"], case["k"]
    out_hw = tuple((hh + 2 * pp - kk) // ss + 1 for hh, pp, kk, ss in zip(x.shape[2:], p, k, s))
    gy = rng.standard_normal((case["n"], case["o"]) + out_hw)
    got = F.conv2d_grad_weight(leaf(x, device), leaf(gy, device), k, stride=s, padding=p)
    np.testing.assert_allclose(got.numpy(), ref.conv2d_grad_weight_ref(x, gy, k, s, p), **TOL64)


def test_output_padding_rows_are_computed_not_zero():
    """A hand-checkable case: 1 -> 2 channels, 2x2 input, k 3, stride 2, padding 1, output_padding 1.

    Output 4x4 = (2 - 1) 2 - 2 + 3 + 1.  The last row and column are the output_padding ones; with
    padding 1 they lie inside the stamps of the second input row/column, so they are not zero."""
    x = np.arange(1.0, 5.0).reshape(1, 1, 2, 2)
    w = np.arange(1.0, 19.0).reshape(1, 2, 3, 3)
    y = F.conv_transpose2d(tinygan.tensor(x), tinygan.tensor(w), stride=2, padding=1, output_padding=1).numpy()
    assert y.shape == (1, 2, 4, 4)
    # y_full[i*2 + p, j*2 + q] += x[i, j] w[p, q], then crop rows/cols 1..4
    full = np.zeros((2, 6, 6))
    for i in range(2):
        for j in range(2):
            full[:, 2 * i:2 * i + 3, 2 * j:2 * j + 3] += x[0, 0, i, j] * w[0]
    np.testing.assert_array_equal(y[0], full[:, 1:5, 1:5])
    assert np.all(y[0, :, 3, :2] != 0) and np.all(y[0, :, :2, 3] != 0)
    # row 3, column 0 of channel 0: only x[1, 0] w[2, 1] reaches it (full row 4, column 1)
    assert y[0, 0, 3, 0] == x[0, 0, 1, 0] * w[0, 0, 2, 1] == 3.0 * 8.0


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_layers_with_bias_and_output_padding_match_the_loops(device, dtype):
    """nn.Conv2d and nn.ConvTranspose2d (bias, output_padding) in both dtypes, a DCGAN-sized batch of 1."""
    tol = dict(rtol=1e-10, atol=1e-10) if dtype == np.float64 else dict(rtol=1e-4, atol=1e-5)
    rng = np.random.default_rng(4)
    for layer, x_shape, fn in [
        (nn.Conv2d(8, 8, 4, stride=2, padding=1, dtype=dtype), (1, 8, 16, 16),
         lambda m, x: ref.conv2d_ref(x, m.weight.numpy(), 2, 1, bias=m.bias.numpy())),
        (nn.ConvTranspose2d(8, 4, 4, stride=2, padding=1, dtype=dtype), (1, 8, 16, 16),
         lambda m, x: ref.conv_transpose2d_ref(x, m.weight.numpy(), 2, 1, 0, bias=m.bias.numpy())),
        (nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1, output_padding=1, dtype=dtype), (2, 3, 7, 7),
         lambda m, x: ref.conv_transpose2d_ref(x, m.weight.numpy(), 2, 1, 1, bias=m.bias.numpy())),
        (nn.ConvTranspose2d(2, 3, (3, 2), stride=(3, 2), padding=(2, 1), output_padding=(2, 1), dtype=dtype),
         (1, 2, 4, 5), lambda m, x: ref.conv_transpose2d_ref(x, m.weight.numpy(), (3, 2), (2, 1), (2, 1),
                                                             bias=m.bias.numpy())),
    ]:
        layer.to(device)
        x = rng.standard_normal(x_shape).astype(dtype)
        y = layer(tinygan.tensor(x, device=device))
        assert y.dtype == dtype
        expected = fn(layer, x.astype(np.float64))
        assert y.shape == expected.shape
        np.testing.assert_allclose(y.numpy(), expected, **tol, err_msg=repr(layer))


# ---------------------------------------------------------------------------
# batch norm: outputs and running statistics (unbiased variance, torch's momentum)
# ---------------------------------------------------------------------------

@st.composite
def bn_cases(draw):
    four_d = draw(st.booleans())
    n = draw(st.integers(1 if four_d else 2, 4))
    c = draw(st.integers(1, 4))
    shape = (n, c, draw(st.integers(1, 3)), draw(st.integers(2, 3))) if four_d else (n, c)
    return dict(shape=shape, affine=draw(st.booleans()), momentum=draw(st.sampled_from([0.1, 0.01, 0.5, 1.0])),
                eps=draw(st.sampled_from([1e-5, 1e-3])), seed=draw(seeds))


@settings(max_examples=examples(20))
@given(case=bn_cases())
def test_batch_norm_train_then_eval_matches_the_loops(device, case):
    rng = np.random.default_rng(case["seed"])
    shape, c, mom, eps = case["shape"], case["shape"][1], case["momentum"], case["eps"]
    x = rng.standard_normal(shape) * 2 + 0.5
    w, b = (rng.uniform(0.5, 1.5, c), rng.standard_normal(c)) if case["affine"] else (None, None)
    rm0, rv0 = rng.standard_normal(c), rng.uniform(0.5, 2.0, c)
    xp = tinygan.backend.xp_for(device)
    rm, rv = xp.asarray(rm0.copy()), xp.asarray(rv0.copy())
    tw = leaf(w, device) if w is not None else None
    tb = leaf(b, device) if b is not None else None
    y = F.batch_norm(leaf(x, device), rm, rv, tw, tb, training=True, momentum=mom, eps=eps)
    y_ref, rm_ref, rv_ref = ref.batch_norm_ref(x, rm0, rv0, w, b, training=True, momentum=mom, eps=eps)
    np.testing.assert_allclose(y.numpy(), y_ref, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(host(rm), rm_ref, **TOL64, err_msg="running_mean")
    np.testing.assert_allclose(host(rv), rv_ref, **TOL64, err_msg="running_var (unbiased, M / (M - 1))")
    # evaluation normalises with the running statistics and leaves them alone
    x2 = rng.standard_normal(shape)
    y2 = F.batch_norm(leaf(x2, device), rm, rv, tw, tb, training=False, momentum=mom, eps=eps)
    np.testing.assert_allclose(y2.numpy(), ref.batch_norm_ref(x2, rm_ref, rv_ref, w, b, eps=eps)[0], **TOL64)
    np.testing.assert_allclose(host(rv), rv_ref, **TOL64)
    # no running statistics: batch statistics, also in "evaluation"
    for training in (True, False):
        y3 = F.batch_norm(leaf(x2, device), None, None, tw, tb, training=training, eps=eps)
        np.testing.assert_allclose(y3.numpy(), ref.batch_norm_ref(x2, None, None, w, b, training=True, eps=eps)[0],
                                   rtol=1e-9, atol=1e-10)


def test_running_variance_is_the_unbiased_one_by_hand():
    """x = [1, 3] in one channel: mean 2, biased variance 1, unbiased 2.

    running_mean = 0.9 * 0 + 0.1 * 2 = 0.2; running_var = 0.9 * 1 + 0.1 * 2 = 1.1 (1.0 if biased)."""
    bn = nn.BatchNorm1d(1, dtype=np.float64)
    y = bn(tinygan.tensor(np.array([[1.0], [3.0]])))
    np.testing.assert_allclose(y.numpy().ravel(), [-1 / np.sqrt(1 + 1e-5), 1 / np.sqrt(1 + 1e-5)], rtol=1e-12)
    np.testing.assert_allclose(host(bn.running_mean), [0.2], rtol=1e-12)
    np.testing.assert_allclose(host(bn.running_var), [1.1], rtol=1e-12)
    assert int(bn.num_batches_tracked) == 1


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cls,shape", [("BatchNorm1d", (5, 3)), ("BatchNorm2d", (2, 3, 4, 3)),
                                       ("BatchNorm2d", (1, 3, 2, 2))])
@pytest.mark.parametrize("momentum", [0.1, 0.7])
def test_batch_norm_layer_statistics_over_several_steps(device, cls, shape, momentum, dtype):
    layer = getattr(nn, cls)(3, momentum=momentum, dtype=dtype).to(device)
    rng = np.random.default_rng(11)
    w, b = rng.uniform(0.5, 1.5, 3).astype(dtype), rng.standard_normal(3).astype(dtype)
    layer.load_state_dict({**layer.state_dict(), "weight": w, "bias": b})
    rm, rv = np.zeros(3), np.ones(3)
    tol = dict(rtol=1e-10, atol=1e-10) if dtype == np.float64 else dict(rtol=2e-5, atol=2e-5)
    for step in range(5):
        x = (rng.standard_normal(shape) * (step + 1) + step).astype(dtype)
        y = layer(tinygan.tensor(x, device=device))
        y_ref, rm, rv = ref.batch_norm_ref(x, rm, rv, w, b, training=True, momentum=momentum)
        np.testing.assert_allclose(y.numpy(), y_ref, **tol, err_msg=f"train output, step {step}")
        np.testing.assert_allclose(host(layer.running_mean), rm, **tol, err_msg=f"running_mean, step {step}")
        np.testing.assert_allclose(host(layer.running_var), rv, **tol, err_msg=f"running_var, step {step}")
    assert int(layer.num_batches_tracked) == 5
    layer.eval()
    x = rng.standard_normal(shape).astype(dtype)
    np.testing.assert_allclose(layer(tinygan.tensor(x, device=device)).numpy(),
                               ref.batch_norm_ref(x, rm, rv, w, b)[0], **tol, err_msg="eval output")
    assert int(layer.num_batches_tracked) == 5
    np.testing.assert_allclose(host(layer.running_var), rv, **tol)


def test_batch_norm_without_tracking_uses_batch_statistics_in_eval():
    layer = nn.BatchNorm2d(2, track_running_stats=False, dtype=np.float64).eval()
    x = np.random.default_rng(2).standard_normal((3, 2, 2, 2))
    np.testing.assert_allclose(layer(tinygan.tensor(x)).numpy(),
                               ref.batch_norm_ref(x, None, None, np.ones(2), np.zeros(2), training=True)[0], **TOL64)


# ---------------------------------------------------------------------------
# LeakyReLU
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("slope", [0.2, 0.01, 0.0, 1.0, 1.7, -0.5])
def test_leaky_relu_matches_the_loops(device, slope, dtype):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 4, 5)).astype(dtype)
    x.ravel()[::7] = 0.0                             # the kink: y = 0 and dy/dx = slope there (x > 0 is False)
    g = rng.standard_normal(x.shape).astype(dtype)
    for fn in (lambda t: F.leaky_relu(t, slope), nn.LeakyReLU(slope)):
        tx = tinygan.tensor(x, requires_grad=True, device=device)
        y = fn(tx)
        assert y.dtype == dtype
        np.testing.assert_allclose(y.numpy(), ref.leaky_relu_ref(x, slope), rtol=1e-6, atol=0)
        y.backward(tinygan.tensor(g, device=device))
        np.testing.assert_allclose(tx.grad.numpy(), ref.leaky_relu_grad_ref(g, x, slope), rtol=1e-6, atol=0)
    assert F.leaky_relu(tinygan.tensor(np.array([-2.0]))).item() == pytest.approx(-0.02)   # default slope 0.01


# ---------------------------------------------------------------------------
# optimizers: torch's documented algorithms, written out, over several steps
# ---------------------------------------------------------------------------

def adam_reference(p, grads, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
    """torch.optim.Adam (amsgrad=False), https://pytorch.org/docs/stable/generated/torch.optim.Adam.html."""
    b1, b2 = betas
    m, v, out = np.zeros_like(p), np.zeros_like(p), []
    for t, g in enumerate(grads, start=1):
        if weight_decay:
            g = g + weight_decay * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat = m / (1 - b1 ** t)
        v_hat = v / (1 - b2 ** t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
        out.append(p)
    return out


def sgd_reference(p, grads, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
    """torch.optim.SGD, https://pytorch.org/docs/stable/generated/torch.optim.SGD.html."""
    b, out = None, []
    for t, g in enumerate(grads, start=1):
        if weight_decay:
            g = g + weight_decay * p
        if momentum:
            b = g if t == 1 else momentum * b + (1 - dampening) * g
            g = g + momentum * b if nesterov else b
        p = p - lr * g
        out.append(p)
    return out


def rmsprop_reference(p, grads, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False):
    """torch.optim.RMSprop, https://pytorch.org/docs/stable/generated/torch.optim.RMSprop.html."""
    v, g_avg, b, out = np.zeros_like(p), np.zeros_like(p), np.zeros_like(p), []
    for g in grads:
        if weight_decay:
            g = g + weight_decay * p
        v = alpha * v + (1 - alpha) * g * g
        v_tilde = v
        if centered:
            g_avg = alpha * g_avg + (1 - alpha) * g
            v_tilde = v - g_avg * g_avg
        if momentum > 0:
            b = momentum * b + g / (np.sqrt(v_tilde) + eps)
            p = p - lr * b
        else:
            p = p - lr * g / (np.sqrt(v_tilde) + eps)
        out.append(p)
    return out


REFERENCES = {"Adam": adam_reference, "SGD": sgd_reference, "RMSprop": rmsprop_reference}
HYPER = [
    ("Adam", {}),
    ("Adam", dict(lr=2e-4, betas=(0.5, 0.999))),
    ("Adam", dict(lr=0.1, betas=(0.0, 0.9), eps=1e-3, weight_decay=0.3)),
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, weight_decay=0.2)),
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.5, dampening=0.3, weight_decay=0.01)),
    ("RMSprop", {}),
    ("RMSprop", dict(lr=5e-3, alpha=0.9)),
    ("RMSprop", dict(lr=1e-2, eps=1e-2, weight_decay=0.1)),
    ("RMSprop", dict(lr=1e-3, momentum=0.9)),
    ("RMSprop", dict(lr=1e-3, centered=True)),
    ("RMSprop", dict(lr=1e-3, alpha=0.8, momentum=0.5, centered=True, weight_decay=0.01)),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name,hyper", HYPER, ids=[f"{n}-{i}" for i, (n, _) in enumerate(HYPER)])
def test_optimizer_follows_its_update_equations(device, name, hyper, dtype):
    """Six steps from a fixed start with fixed gradients (some of them zero, some large).

    Four parameters in one group: two of ``dtype`` (on the CPU they share the group's flat state
    and its multi-parameter kernel), one of the other float dtype and one non-contiguous (both
    take the one-parameter kernel), each against the equations."""
    rng = np.random.default_rng(7)
    other = np.float32 if dtype == np.float64 else np.float64
    shapes_dtypes = [((3, 4), dtype), ((5,), dtype), ((2, 3), other), ((3, 2), dtype)]
    starts = [rng.standard_normal(s) for s, _ in shapes_dtypes]
    grads = [[rng.standard_normal(s) * scale for s, _ in shapes_dtypes] for scale in (1.0, 0.1, 10.0, 1.0, 0.0, 3.0)]
    params = [leaf(p0, device, dtype=dt) for p0, (_, dt) in zip(starts[:3], shapes_dtypes)]
    strided = tinygan.backend.xp_for(device).zeros((3, 4), dtype=dtype)
    strided[:, ::2] = tinygan.backend.to_device(starts[3].astype(dtype), device)
    params.append(nn.Parameter(strided[:, ::2]))                      # a view: every other column
    assert not params[3].data.flags.c_contiguous
    opt = getattr(optim, name)(params, **hyper)
    expected = [REFERENCES[name](p0, [g[i] for g in grads], **hyper) for i, p0 in enumerate(starts)]
    tols = [dict(rtol=1e-12, atol=1e-13) if dt == np.float64 else dict(rtol=2e-5, atol=2e-6)
            for _, dt in shapes_dtypes]
    for t, g in enumerate(grads, start=1):
        for p, gi, (_, dt) in zip(params, g, shapes_dtypes):
            p.grad = tinygan.tensor(gi.astype(dt), device=device)
        opt.step()
        for i, (p, (_, dt)) in enumerate(zip(params, shapes_dtypes)):
            assert p.dtype == dt
            np.testing.assert_allclose(p.numpy(), expected[i][t - 1], **tols[i],
                                       err_msg=f"{name} {hyper}: parameter {i} ({np.dtype(dt).name}), step {t}")


def test_optimizer_step_count_and_state_follow_the_equations():
    """The state torch keeps: Adam's step, m and v; after a skipped step (grad None) nothing moves."""
    p = leaf(np.array([1.0, -2.0]), "cpu")
    opt = optim.Adam([p], lr=0.1, betas=(0.5, 0.75))
    p.grad = tinygan.tensor(np.array([2.0, 4.0]))
    opt.step()
    st_ = opt.state_dict()["state"][0]
    assert st_["step"] == 1
    np.testing.assert_allclose(st_["exp_avg"], [1.0, 2.0])          # 0.5 * 0 + 0.5 * g
    np.testing.assert_allclose(st_["exp_avg_sq"], [1.0, 4.0])       # 0.25 * g^2
    # m_hat = g, v_hat = g^2: the first step is lr * sign(g) (up to eps)
    np.testing.assert_allclose(p.numpy(), [0.9, -2.1], rtol=1e-7)
    p.grad = None
    opt.step()
    np.testing.assert_allclose(p.numpy(), [0.9, -2.1], rtol=1e-7)
    assert opt.state_dict()["state"][0]["step"] == 1
