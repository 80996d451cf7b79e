"""Bad input gives a tinygan error that names the op, the argument and the shapes involved
(never a raw NumPy message): checked with ``pytest.raises(..., match=...)``."""
from __future__ import annotations

import re

import numpy as np
import pytest

import tinygan
import tinygan.functional as F
from tinygan import nn, optim


def randn(*shape, dtype=np.float32):
    return tinygan.tensor(np.random.default_rng(0).standard_normal(shape).astype(dtype))


def shp(*s):
    """A regex matching the printed shape tuple ``s``."""
    return re.escape(str(tuple(s)))


# ---------------------------------------------------------------------------
# convolutions
# ---------------------------------------------------------------------------

def test_conv2d_channel_mismatch():
    with pytest.raises(ValueError, match=rf"conv2d: input has 3 channels \(shape {shp(2, 3, 5, 5)}\).*"
                                         rf"weight.*{shp(4, 2, 3, 3)} expects 2"):
        F.conv2d(randn(2, 3, 5, 5), randn(4, 2, 3, 3))


def test_conv_transpose2d_channel_mismatch():
    # transposed weights are (in, out, kh, kw): the input's channels must equal weight.shape[0]
    with pytest.raises(ValueError, match=rf"conv_transpose2d: input has 3 channels.*\(in, out, kh, kw\).*"
                                         rf"{shp(2, 4, 3, 3)} expects 2"):
        F.conv_transpose2d(randn(2, 3, 5, 5), randn(2, 4, 3, 3))
    # the layer's error is the op's, in full (an alternation "ConvTranspose2d|..." matched any message naming the layer)
    with pytest.raises(ValueError, match=rf"^conv_transpose2d: input has 4 channels \(shape {shp(1, 4, 2, 2)}\) but "
                                         rf"weight \(in, out, kh, kw\) of shape {shp(3, 4, 3, 3)} expects 3$"):
        nn.ConvTranspose2d(3, 4, 3)(randn(1, 4, 2, 2))


def test_conv2d_kernel_larger_than_padded_input():
    with pytest.raises(ValueError, match=rf"conv2d: kernel size \(7, 3\) is larger than the padded input "
                                         rf"\(6, 7\) \(input {shp(2, 3, 4, 5)}, padding \(1, 1\)\)"):
        F.conv2d(randn(2, 3, 4, 5), randn(4, 3, 7, 3), padding=1)


def test_conv_bad_hyper_parameters():
    x, w = randn(1, 3, 5, 5), randn(4, 3, 3, 3)
    with pytest.raises(ValueError, match=r"conv2d: stride must be >= 1.*stride \(0, 0\)"):
        F.conv2d(x, w, stride=0)
    with pytest.raises(ValueError, match=r"conv2d: stride must be >= 1 and padding >= 0.*padding \(-1, -1\)"):
        F.conv2d(x, w, padding=-1)
    with pytest.raises(ValueError, match=r"conv2d: stride must be an int or a pair of ints, got \(1, 2, 3\)"):
        F.conv2d(x, w, stride=(1, 2, 3))
    with pytest.raises(TypeError, match=r"conv2d: stride must be an int or a pair of ints, got 1.5 \(float\)"):
        F.conv2d(x, w, stride=1.5)
    with pytest.raises(TypeError, match=r"conv2d: padding must be an int or a pair of ints, got \(1, True\)"):
        F.conv2d(x, w, padding=(1, True))
    with pytest.raises(ValueError, match=rf"conv2d: bias of shape \(3,\) does not match 4 output channels"):
        F.conv2d(x, w, bias=randn(3))
    with pytest.raises(ValueError, match=rf"conv2d: expected a 4-D input.*got input {shp(3, 5, 5)}"):
        F.conv2d(randn(3, 5, 5), w)
    with pytest.raises(ValueError, match=r"conv_transpose2d: output_padding \(2, 2\) must be >= 0 and smaller "
                                         r"than stride \(2, 2\)"):
        F.conv_transpose2d(randn(1, 4, 3, 3), w, stride=2, output_padding=2)


def test_conv_non_float_dtypes():
    xi = tinygan.tensor(np.ones((1, 1, 3, 3), np.int64))
    with pytest.raises(TypeError, match=rf"conv2d: input must be a floating-point tensor, got dtype int64 "
                                        rf"\(shape {shp(1, 1, 3, 3)}\)"):
        F.conv2d(xi, randn(1, 1, 2, 2))
    with pytest.raises(TypeError, match=r"conv_transpose2d: weight must be a floating-point tensor, got dtype int32"):
        F.conv_transpose2d(randn(1, 1, 3, 3), tinygan.tensor(np.ones((1, 1, 2, 2), np.int32)))
    with pytest.raises(TypeError, match=r"conv2d: all tensors must have the same dtype, got input float32, "
                                        r"weight float64"):
        F.conv2d(randn(1, 1, 3, 3), randn(1, 1, 2, 2, dtype=np.float64))
    with pytest.raises(TypeError, match=r"conv2d: weight must be a Tensor, got ndarray"):
        F.conv2d(randn(1, 1, 3, 3), np.ones((1, 1, 2, 2), np.float32))


def test_requires_grad_on_int_tensor():
    with pytest.raises(TypeError, match=rf"requires_grad: only floating-point tensors can require gradients, "
                                        rf"got dtype int64 for a tensor of shape \(2,\)"):
        tinygan.tensor([1, 2], requires_grad=True)
    with pytest.raises(TypeError, match="only floating-point tensors"):
        tinygan.tensor(np.ones(3, np.int32)).requires_grad_()
    with pytest.raises(TypeError, match="leaky_relu: input must be a floating-point tensor, got dtype int64"):
        F.leaky_relu(tinygan.tensor([1, 2]))


# ---------------------------------------------------------------------------
# devices
# ---------------------------------------------------------------------------

class _FakeCudaTensor(tinygan.Tensor):
    """A CPU tensor that reports device 'cuda': exercises the device check without a GPU."""

    @property
    def device(self) -> str:
        return "cuda"


def test_tensors_on_different_devices_simulated():
    a = randn(2, 3)
    b = _FakeCudaTensor(np.ones((2, 3), np.float32))
    with pytest.raises(ValueError, match=rf"add: all tensors must be on the same device, got cpu tensor of "
                                         rf"shape {shp(2, 3)}, cuda tensor of shape {shp(2, 3)}"):
        a + b
    with pytest.raises(ValueError, match=r"conv2d: all tensors must be on the same device"):
        F.conv2d(randn(1, 1, 3, 3), _FakeCudaTensor(np.ones((1, 1, 2, 2), np.float32)))


@pytest.mark.gpu
def test_tensors_on_different_devices_gpu():
    if not tinygan.gpu_available():
        pytest.skip("needs CuPy and a visible GPU")
    a = tinygan.tensor(np.ones((2, 3), np.float32))
    b = tinygan.tensor(np.ones((2, 3), np.float32), device="cuda")
    with pytest.raises(ValueError, match=r"mul: all tensors must be on the same device, got cpu tensor"):
        a * b
    with pytest.raises(ValueError, match=r"matmul: all tensors must be on the same device"):
        a @ b.T


def test_unknown_device():
    with pytest.raises(ValueError, match=r"unknown device 'tpu': expected 'cpu' or 'cuda'"):
        tinygan.tensor(np.ones(2), device="tpu")


@pytest.mark.skipif(tinygan.gpu_available(), reason="checks the message given when no GPU is usable")
def test_cuda_without_gpu_explains_itself():
    with pytest.raises(RuntimeError, match=r"device 'cuda'.*(not installed|no GPU is visible).*pip install"):
        tinygan.tensor(np.ones(2), device="cuda")


# ---------------------------------------------------------------------------
# backward
# ---------------------------------------------------------------------------

def test_backward_on_non_scalar_without_grad():
    y = tinygan.tensor(np.ones(3), requires_grad=True) * 2.0
    with pytest.raises(RuntimeError, match=r"backward: grad can be implicitly created only for scalar outputs; "
                                           r"got an output of shape \(3,\)"):
        y.backward()
    with pytest.raises(ValueError, match=r"backward: grad has shape \(2,\) but the output has shape \(3,\)"):
        y.backward(tinygan.tensor(np.ones(2)))


def test_backward_twice_through_a_freed_graph():
    x = tinygan.tensor(np.ones(3), requires_grad=True)
    y = (x.exp() * 2.0).sum()
    y.backward()
    with pytest.raises(RuntimeError, match=r"sum: trying to backward through the graph a second time.*"
                                           r"retain_graph=True"):
        y.backward()


def test_backward_without_grad():
    with pytest.raises(RuntimeError, match=r"backward: tensor of shape \(2,\) does not require grad"):
        tinygan.tensor(np.ones(2)).backward()


def test_backward_returning_wrong_shapes_is_reported():
    class Broken(tinygan.Function):
        def forward(self, x):
            return x * 2

        def backward(self, g):
            return g.sum()

    x = tinygan.tensor(np.ones(3), requires_grad=True)
    with pytest.raises(RuntimeError, match=r"broken: backward produced a gradient of shape \(\) for an input of "
                                           r"shape \(3,\)"):
        Broken()(x).sum().backward()


# ---------------------------------------------------------------------------
# shapes
# ---------------------------------------------------------------------------

def test_matmul_shape_mismatch():
    with pytest.raises(ValueError, match=rf"matmul: shapes {shp(3, 4)} and {shp(3, 4)} are not aligned"):
        randn(3, 4) @ randn(3, 4)
    with pytest.raises(ValueError, match=rf"linear: input of shape {shp(2, 3)} does not match weight of shape "
                                         rf"{shp(4, 5)}"):
        F.linear(randn(2, 3), randn(4, 5))
    with pytest.raises(ValueError, match=r"linear: bias of shape \(3,\) does not match weight"):
        F.linear(randn(2, 5), randn(4, 5), randn(3))


@pytest.mark.parametrize("op,symbol", [("add", "+"), ("sub", "-"), ("mul", "*"), ("div", "/")])
def test_broadcasting_failure_names_the_op_and_both_shapes(op, symbol):
    a, b = randn(2, 3), randn(4)
    with pytest.raises(ValueError, match=rf"^{op}: shapes {shp(2, 3)} and \(4,\) cannot be broadcast together$"):
        eval(f"a {symbol} b")  # noqa: S307
    with pytest.raises(ValueError, match=rf"^{op}: shapes {shp(2, 3)} and \(4,\) cannot be broadcast"):
        eval(f"a {symbol} np.ones(4, np.float32)")  # noqa: S307 - a NumPy operand too


def test_shape_op_errors():
    with pytest.raises(ValueError, match=rf"reshape: cannot reshape a tensor of shape {shp(2, 3)} \(6 elements\) "
                                         rf"to {shp(4, 2)}"):
        randn(2, 3).reshape(4, 2)
    with pytest.raises(ValueError, match=rf"permute: axes \(0, 0\) do not match a tensor of shape {shp(2, 3)}"):
        randn(2, 3).permute(0, 0)
    with pytest.raises(IndexError, match=rf"getitem: index 5 is invalid for a tensor of shape {shp(2, 3)}"):
        randn(2, 3)[5]
    with pytest.raises(ValueError, match=rf"expand: cannot broadcast shape {shp(2, 3)} to {shp(3, 3)}"):
        randn(2, 3).expand(3, 3)
    with pytest.raises(ValueError, match=rf"cat: tensor 1 has shape {shp(2, 4)}, which does not match shape "
                                         rf"{shp(2, 3)} outside axis 0"):
        tinygan.cat([randn(2, 3), randn(2, 4)])
    with pytest.raises(ValueError, match=r"stack: all tensors must have the same shape"):
        tinygan.stack([randn(2, 3), randn(2, 4)])
    with pytest.raises(ValueError, match="cat: expected a non-empty sequence"):
        tinygan.cat([])
    with pytest.raises(ValueError, match=rf"layer_norm: input of shape {shp(2, 3)} does not end in "
                                         rf"normalized_shape \(4,\)"):
        F.layer_norm(randn(2, 3), 4)
    with pytest.raises(ValueError, match=r"item: only one-element tensors can be converted"):
        randn(2).item()


# ---------------------------------------------------------------------------
# batch norm
# ---------------------------------------------------------------------------

def test_batch_norm_wrong_channel_count():
    with pytest.raises(ValueError, match=rf"batch_norm: weight of shape \(3,\) does not match the input's 4 "
                                         rf"channels \(input {shp(2, 4, 3, 3)}\)"):
        nn.BatchNorm2d(3)(randn(2, 4, 3, 3))
    with pytest.raises(ValueError, match=r"batch_norm: running_mean of shape \(2,\) does not match the input's 3"):
        F.batch_norm(randn(4, 3), np.zeros(2, np.float32), np.ones(2, np.float32), training=True)
    with pytest.raises(ValueError, match=rf"BatchNorm1d: expected a 2-D input, got shape {shp(2, 3, 3, 3)}"):
        nn.BatchNorm1d(3)(randn(2, 3, 3, 3))
    with pytest.raises(ValueError, match=rf"batch_norm: expected a 2-D \(N, C\) or 4-D \(N, C, H, W\) input, "
                                         rf"got shape {shp(2, 3, 4)}"):
        F.batch_norm(randn(2, 3, 4), None, None, training=True)
    with pytest.raises(ValueError, match=r"batch_norm: expected more than 1 value per channel when training, "
                                         r"got input \(1, 3\)"):
        nn.BatchNorm1d(3)(randn(1, 3))
    with pytest.raises(ValueError, match=r"batch_norm: pass both weight and bias, or neither"):
        F.batch_norm(randn(4, 3), None, None, randn(3), None, training=True)


# ---------------------------------------------------------------------------
# state dicts
# ---------------------------------------------------------------------------

def test_load_state_dict_missing_and_unexpected_keys():
    # PyTorch's type and wording: one RuntimeError listing every problem.
    m = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    state = m.state_dict()
    missing = dict(state)
    del missing["0.bias"]
    with pytest.raises(RuntimeError, match=r'Error\(s\) in loading state_dict for Sequential:\n\t'
                                           r'Missing key\(s\) in state_dict: "0.bias"\.$'):
        m.load_state_dict(missing)
    extra = dict(state, **{"2.weight": np.zeros(2)})
    with pytest.raises(RuntimeError, match=r'Sequential:\n\tUnexpected key\(s\) in state_dict: "2.weight"\.$'):
        m.load_state_dict(extra)
    # non-strict: loads what matches, leaves the rest as it was, and reports the keys
    bias_before = m[0].bias.numpy().copy()
    changed = {k: np.asarray(v) + 1.5 if np.asarray(v).dtype.kind == "f" else np.asarray(v) + 3
               for k, v in missing.items()}
    result = m.load_state_dict(dict(changed, **{"2.weight": np.zeros(2)}), strict=False)
    assert result.missing_keys == ["0.bias"] and result.unexpected_keys == ["2.weight"]
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(v, bias_before if k == "0.bias" else changed[k], err_msg=k)


def test_load_state_dict_wrong_shape():
    m = nn.Sequential(nn.Linear(3, 2))
    state = m.state_dict()
    state["0.weight"] = np.zeros((3, 3), np.float32)
    with pytest.raises(RuntimeError, match=rf"loading state_dict for Sequential:\n\tsize mismatch for 0.weight: "
                                           rf"copying a param with shape {shp(3, 3)} from checkpoint, the shape in "
                                           rf"current model is {shp(2, 3)}\."):
        m.load_state_dict(state)
    before = m[0].weight.numpy().copy()
    with pytest.raises(RuntimeError, match="size mismatch for 0.weight"):
        m.load_state_dict(state, strict=False)
    np.testing.assert_array_equal(m[0].weight.numpy(), before)  # nothing half-loaded
    with pytest.raises(TypeError, match=r"load_state_dict for Sequential: expected a dict of arrays, got list"):
        m.load_state_dict(list(state.items()))


def test_optimizer_errors():
    p = nn.Linear(2, 2)
    with pytest.raises(ValueError, match="Adam: got an empty parameter list"):
        optim.Adam([])
    with pytest.raises(ValueError, match=r"Adam: invalid hyper-parameters lr=-1"):
        optim.Adam(p.parameters(), lr=-1)
    with pytest.raises(ValueError, match="SGD: nesterov momentum needs momentum > 0"):
        optim.SGD(p.parameters(), nesterov=True)
    saved = optim.Adam(p.parameters()).state_dict()
    with pytest.raises(ValueError, match=r"Adam.load_state_dict: the saved parameter groups do not match"):
        optim.Adam(nn.Linear(2, 2, bias=False).parameters()).load_state_dict(saved)


# ---------------------------------------------------------------------------
# losses and lookups
# ---------------------------------------------------------------------------

def test_cross_entropy_bad_targets():
    logits = randn(4, 3)
    with pytest.raises(ValueError, match=r"cross_entropy: targets must lie in \[0, 3\), got min 0 max 3"):
        F.cross_entropy(logits, np.array([0, 1, 3, 2]))
    with pytest.raises(ValueError, match=r"cross_entropy: targets must lie in \[0, 3\), got min -1"):
        F.cross_entropy(logits, np.array([0, 1, -1, 2]))
    with pytest.raises(ValueError, match=rf"cross_entropy: expected logits \(N, K\) and integer targets \(N,\), "
                                         rf"got {shp(4, 3)} and \(4,\) of dtype float64"):
        F.cross_entropy(logits, np.array([0.0, 1, 1, 2]))
    with pytest.raises(ValueError, match=rf"cross_entropy: .*got {shp(4, 3)} and \(3,\) of dtype int64"):
        F.cross_entropy(logits, np.array([0, 1, 1]))
    with pytest.raises(ValueError, match=rf"cross_entropy: .*got {shp(4, 3, 2)} and \(4,\)"):
        F.cross_entropy(randn(4, 3, 2), np.array([0, 1, 1, 0]))


def test_loss_shape_and_reduction_errors():
    with pytest.raises(ValueError, match=rf"mse_loss: input of shape {shp(2, 3)} and target of shape "
                                         rf"{shp(3, 2)} must match"):
        F.mse_loss(randn(2, 3), randn(3, 2))
    with pytest.raises(ValueError, match=r"binary_cross_entropy_with_logits: input of shape \(2, 3\) and target"):
        F.binary_cross_entropy_with_logits(randn(2, 3), np.ones(3))
    with pytest.raises(ValueError, match=r"binary_cross_entropy: reduction must be 'mean', 'sum' or 'none', "
                                         r"got 'avg'"):
        F.binary_cross_entropy(tinygan.tensor(np.full(3, 0.5, np.float32)), np.ones(3), reduction="avg")


def test_embedding_errors():
    with pytest.raises(ValueError, match=rf"embedding: indices must lie in \[0, 3\) for weight {shp(3, 2)}, "
                                         rf"got min 0 max 5"):
        F.embedding(np.array([0, 5]), randn(3, 2))
    with pytest.raises(TypeError, match=r"embedding: indices must be integers, got dtype float64"):
        F.embedding(np.array([0.0, 1.0]), randn(3, 2))


def test_grad_errors():
    x = tinygan.tensor(np.ones(2), requires_grad=True)
    with pytest.raises(ValueError, match=r"grad: got 2 grad_outputs for 1 outputs"):
        tinygan.grad(x * 2.0, x, grad_outputs=[tinygan.tensor(np.ones(2))] * 2)
    with pytest.raises(RuntimeError, match=r"grad: input 0 does not require grad"):
        tinygan.grad((x * 2.0).sum(), tinygan.tensor(np.ones(2)))


def test_dropout_and_init_arguments():
    with pytest.raises(ValueError, match=r"Dropout: p must be in \[0, 1\), got 1.5"):
        nn.Dropout(1.5)
    with pytest.raises(ValueError, match=r"init: fan in/out needs a tensor with at least 2 dimensions, "
                                         r"got shape \(3,\)"):
        nn.init.xavier_uniform_(randn(3))
