"""Contracts of the engine layer that span several modules (issue 10, engine side).

* imports flow one way (kernels <- autograd <- ops <- functional <- nn/optim),
  with no ``import tinygan...`` hidden inside a function, and ``import tinygan``
  gives ``nn``/``optim``/``functional`` at once and the upper packages lazily;
* "an int or a pair of ints" means the same everywhere, and a float, a bool or a
  string is refused with the op and the argument named (as PyTorch refuses them);
* the fast batch-norm and LeakyReLU kernels agree with their slow references;
* ``zero_grad(set_to_none=False)``, ``Optimizer.defaults``/``add_param_group``
  and duplicate parameters behave as in PyTorch;
* ``Module.load_state_dict`` reports key and shape problems as PyTorch does.
"""
from __future__ import annotations

import ast
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import tinygan
import tinygan.functional as F
from tinygan import nn, optim
from tinygan.kernels import activations as act
from tinygan.kernels import batchnorm as bn
from tinygan.kernels import conv as kconv
from tinygan.kernels.args import pair

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "tinygan"


def run_fresh(code: str) -> str:
    """Run ``code`` in a fresh interpreter (nothing imported yet); return its stdout, failing on an error."""
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


# ---------------------------------------------------------------------------
# imports
# ---------------------------------------------------------------------------

# What each engine module may import from tinygan (module-level, the only place allowed).
# The order is the layering: nothing may import a module listed to its right.
ALLOWED = {
    "backend": set(),
    "random": set(),
    "kernels": {"backend", "kernels"},
    "autograd": {"backend"},
    "ops": {"backend", "kernels", "autograd"},
    "creation": {"backend", "random", "autograd", "ops"},
    "functional": {"backend", "kernels", "autograd", "ops"},
    "testing": {"backend", "autograd"},
    "nn": {"backend", "random", "kernels", "autograd", "ops", "creation", "functional", "nn"},
    "optim": {"backend", "kernels", "autograd"},
}


def _engine_files():
    for name in ("backend", "random", "autograd", "ops", "creation", "functional", "testing", "optim"):
        yield name, PKG / f"{name}.py"
    for sub in ("kernels", "nn"):
        for path in sorted((PKG / sub).rglob("*.py")):
            yield sub, path


def _tinygan_imports(tree: ast.Module):
    """``(node, top-level module under tinygan, at module level?)`` for every import of tinygan."""
    top_level = set(map(id, tree.body))
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] if node.module != "tinygan" else [f"tinygan.{a.name}" for a in node.names]
        for name in names:
            if name.startswith("tinygan."):
                yield node, name.split(".")[1], id(node) in top_level


def test_engine_imports_flow_one_way_and_sit_at_module_top():
    bad = []
    for layer, path in _engine_files():
        for node, target, at_top in _tinygan_imports(ast.parse(path.read_text())):
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            if not at_top:
                bad.append(f"{where}: import of tinygan.{target} inside a function or block")
            elif target not in ALLOWED[layer]:
                bad.append(f"{where}: {layer} imports tinygan.{target}, a layer above it")
    assert not bad, "\n".join(bad)


def test_autograd_gets_its_operators_from_ops():
    # autograd.py defines Tensor without arithmetic; ops installs it, and `import tinygan` runs ops.
    out = run_fresh("""
        from tinygan.autograd import Tensor
        import tinygan.ops as ops
        x = Tensor([1.0, 2.0], requires_grad=True)
        ((x * x + 1).sum()).backward()
        assert Tensor.__add__ is ops.TensorMethods.__add__ and Tensor.reshape is ops.TensorMethods.reshape
        print(x.grad.tolist())
    """)
    assert out.strip() == "[2.0, 4.0]"


def test_import_tinygan_gives_the_engine_and_the_upper_layers_lazily():
    out = run_fresh("""
        import importlib.util, sys
        import tinygan as tg
        assert tg.nn.Linear and tg.optim.Adam and tg.functional.conv2d and tg.nn.init.normal_
        upper = ["tinygan.gan", "tinygan.data", "tinygan.viz", "tinygan.metrics", "tinygan.run",
                 "tinygan.cli", "PIL", "matplotlib", "torch"]
        assert not [m for m in upper if m in sys.modules], [m for m in upper if m in sys.modules]
        for name in ("gan", "data", "viz", "metrics"):
            assert getattr(tg, name) is sys.modules["tinygan." + name]
        assert hasattr(tg, "run") == (importlib.util.find_spec("tinygan.run") is not None)
        assert not hasattr(tg, "no_such_thing") and "gan" in dir(tg)
        print("ok")
    """)
    assert out.strip() == "ok"


# ---------------------------------------------------------------------------
# int-or-pair arguments
# ---------------------------------------------------------------------------

BAD_INTS = [1.5, 0.5, 2.0, True, np.float64(1.5), np.float32(2.0), "2", None, (1, 1.5), [2, True]]


def test_pair_accepts_ints_and_numpy_ints():
    assert pair(3, "stride", "op") == (3, 3)
    assert pair((1, 2), "stride", "op") == (1, 2)
    assert pair([np.int64(2), np.int32(3)], "stride", "op") == (2, 3)
    assert pair(np.int64(4), "stride", "op") == (4, 4)
    assert all(type(v) is int for v in pair(np.uint8(2), "stride", "op"))
    with pytest.raises(ValueError, match=r"op: stride must be an int or a pair of ints, got \(1, 2, 3\)"):
        pair((1, 2, 3), "stride", "op")


@pytest.mark.parametrize("bad", BAD_INTS, ids=repr)
def test_non_integer_conv_arguments_are_refused_with_op_and_name(bad):
    x, w = tinygan.randn(1, 2, 6, 6), tinygan.randn(3, 2, 3, 3)
    calls = [
        (r"conv2d: stride", lambda: F.conv2d(x, w, stride=bad)),
        (r"conv2d: padding", lambda: F.conv2d(x, w, padding=bad)),
        (r"conv_transpose2d: stride", lambda: F.conv_transpose2d(x, tinygan.randn(2, 3, 3, 3), stride=bad)),
        (r"conv_transpose2d: output_padding", lambda: F.conv_transpose2d(
            x, tinygan.randn(2, 3, 3, 3), stride=2, output_padding=bad)),
        (r"conv2d_grad_weight: kernel_size", lambda: F.conv2d_grad_weight(x, tinygan.randn(1, 3, 4, 4), bad)),
        (r"Conv2d: stride", lambda: nn.Conv2d(2, 3, 3, stride=bad)),
        (r"Conv2d: kernel_size", lambda: nn.Conv2d(2, 3, bad)),
        (r"ConvTranspose2d: padding", lambda: nn.ConvTranspose2d(2, 3, 3, padding=bad)),
        (r"conv2d: stride", lambda: kconv.conv2d(x.numpy(), w.numpy(), stride=bad)),  # the array kernel too
    ]
    for prefix, call in calls:
        with pytest.raises(TypeError, match=prefix + r" must be an int or a pair of ints, got "):
            call()


@pytest.mark.parametrize("bad", [1.5, 2.0, True, np.float64(1.5), np.float64(2.0)], ids=repr)
def test_conv_arguments_refused_as_torch_refuses_them(torch, bad):
    for conv2d, zeros in ((torch.nn.functional.conv2d, torch.zeros), (F.conv2d, tinygan.zeros)):
        with pytest.raises(TypeError):
            conv2d(zeros(1, 2, 6, 6), zeros(3, 2, 3, 3), stride=bad)
    assert F.conv2d(tinygan.zeros(1, 2, 6, 6), tinygan.zeros(3, 2, 3, 3), stride=np.int64(2)).shape == \
        tuple(torch.nn.functional.conv2d(torch.zeros(1, 2, 6, 6), torch.zeros(3, 2, 3, 3), stride=np.int64(2)).shape)


def test_integral_numpy_arguments_give_the_int_result():
    rng = np.random.default_rng(0)
    x, w = tinygan.tensor(rng.standard_normal((1, 2, 7, 7))), tinygan.tensor(rng.standard_normal((3, 2, 3, 3)))
    expected = F.conv2d(x, w, stride=2, padding=1).numpy()
    got = F.conv2d(x, w, stride=np.int64(2), padding=(np.int32(1), 1)).numpy()
    np.testing.assert_array_equal(got, expected)
    layer = nn.Conv2d(2, 3, np.int64(3), stride=np.int64(2))
    assert layer.stride == (2, 2) and all(type(v) is int for v in layer.kernel_size)


def test_functional_and_kernels_share_one_argument_check():
    # Same rule, same message, whichever layer is called: the one check_conv_args.
    x, w = np.zeros((1, 3, 5, 5)), np.zeros((4, 2, 3, 3))
    t = tinygan.tensor
    pairs = {
        "conv2d: input has 3 channels (shape (1, 3, 5, 5)) but weight (out, in, kh, kw)":
            (lambda: kconv.conv2d(x, w), lambda: F.conv2d(t(x), t(w))),
        "conv_transpose2d: input has 3 channels (shape (1, 3, 5, 5)) but weight (in, out, kh, kw)":
            (lambda: kconv.conv_transpose2d(x, w), lambda: F.conv_transpose2d(t(x), t(w))),
        "conv_transpose2d: output_padding (2, 2) must be >= 0 and smaller than stride (2, 2)":
            (lambda: kconv.conv_transpose2d(x, w.reshape(3, 4, 2, 3)[:, :, :, :2].copy(), 2, 0, 2),
             lambda: F.conv_transpose2d(t(x), t(w.reshape(3, 4, 2, 3)[:, :, :, :2].copy()), None, 2, 0, 2)),
    }
    for start, calls in pairs.items():
        messages = []
        for call in calls:
            with pytest.raises(ValueError) as e:
                call()
            messages.append(str(e.value))
        assert messages[0] == messages[1] and messages[0].startswith(start), messages
    with pytest.raises(ValueError, match=r"conv2d_grad_weight: stride must be >= 1 and padding >= 0"):
        F.conv2d_grad_weight(tinygan.tensor(x), tinygan.tensor(np.zeros((1, 4, 3, 3))), 3, stride=0)


# ---------------------------------------------------------------------------
# fast kernels against their slow references
# ---------------------------------------------------------------------------

def _layouts(a):
    """``a`` as a C-contiguous array and, when 4-D, as an NCHW view of an NHWC buffer (as the conv kernels return)."""
    out = [("contiguous", np.ascontiguousarray(a))]
    if a.ndim == 4:
        out.append(("nchw-view-of-nhwc", np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)))
    return out


@pytest.mark.parametrize("shape", [(7, 3), (3, 5, 7, 2), (2, 1, 5, 3), (5, 4, 1, 1)])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_kernels_match_the_slow_references(shape, affine):
    rng = np.random.default_rng(sum(shape))
    c, eps = shape[1], 1e-5
    gamma = rng.uniform(0.5, 2.0, c) if affine else None
    beta = rng.standard_normal(c) if affine else None
    x_values, g_values = 3.0 + 2.0 * rng.standard_normal(shape), rng.standard_normal(shape)
    for layout, x in _layouts(x_values):
        y, mean, var, xhat, invstd = bn.batch_norm_forward(x, gamma, beta, eps)
        np.testing.assert_allclose(y, bn.batch_norm_forward_ref(x, gamma, beta, eps), rtol=1e-10, atol=1e-12,
                                   err_msg=layout)
        for g_layout, g in _layouts(g_values):
            where = f"x {layout}, g {g_layout}"
            dx, dgamma, dbeta = bn.batch_norm_backward(g, xhat, invstd, gamma)
            dx_ref, dgamma_ref, dbeta_ref = bn.batch_norm_backward_ref(g, x, gamma, eps)
            np.testing.assert_allclose(dx, dx_ref, rtol=1e-9, atol=1e-11, err_msg=where)
            np.testing.assert_allclose(dgamma, dgamma_ref, rtol=1e-10, atol=1e-12, err_msg=where)
            np.testing.assert_allclose(dbeta, dbeta_ref, rtol=1e-10, atol=1e-12, err_msg=where)


@pytest.mark.parametrize("shape", [(7, 3), (3, 5, 7, 2), (1, 1, 1, 1)])
@pytest.mark.parametrize("slope", [0.2, 0.0, 1.0, 1.5, -0.3])
def test_leaky_relu_kernels_match_the_slow_references(shape, slope):
    rng = np.random.default_rng(len(shape))
    x_values = rng.standard_normal(shape)
    x_values.reshape(-1)[::3] = 0.0                            # exact zeros: x > 0 is False there
    for layout, x in _layouts(x_values):
        y, mask = act.leaky_relu_forward(x, slope)
        np.testing.assert_array_equal(y, act.leaky_relu_ref(x, slope), err_msg=layout)
        assert y.dtype == x.dtype
        g = rng.standard_normal(shape)
        np.testing.assert_array_equal(act.leaky_relu_backward(g, mask, slope),
                                      act.leaky_relu_backward_ref(g, x, slope), err_msg=layout)


# ---------------------------------------------------------------------------
# zero_grad(set_to_none=False)
# ---------------------------------------------------------------------------

def _model_with_grads():
    model = nn.Sequential(nn.Linear(3, 4), nn.LeakyReLU(0.2), nn.Linear(4, 1))
    model(tinygan.randn(5, 3)).sum().backward()
    return model


@pytest.mark.parametrize("owner", ["module", "optimizer"])
def test_zero_grad_set_to_none_false_zeroes_in_place(owner):
    model = _model_with_grads()
    opt = optim.SGD(model.parameters(), lr=0.1)
    before = [(p.grad, p.grad._data) for p in model.parameters()]
    assert all(np.abs(g.numpy()).sum() > 0 for g, _ in before)
    (model if owner == "module" else opt).zero_grad(set_to_none=False)
    for p, (g, data) in zip(model.parameters(), before):
        assert p.grad is g and p.grad._data is data          # the same tensor and the same array
        assert not p.grad.numpy().any()
    (model if owner == "module" else opt).zero_grad()      # default: set_to_none=True
    assert all(p.grad is None for p in model.parameters())


def test_zero_grad_set_to_none_false_keeps_the_parameter_in_the_step(torch):
    # A zero gradient is still a gradient: weight decay moves the parameter (as in PyTorch);
    # a None gradient skips it.
    for set_to_none in (False, True):
        p = nn.Parameter(np.array([1.0, -2.0]))
        tp = torch.nn.Parameter(torch.tensor([1.0, -2.0], dtype=torch.float64))
        opt, topt = optim.SGD([p], lr=0.1, weight_decay=0.5), torch.optim.SGD([tp], lr=0.1, weight_decay=0.5)
        (p * p).sum().backward()
        (tp * tp).sum().backward()
        opt.zero_grad(set_to_none=set_to_none)
        topt.zero_grad(set_to_none=set_to_none)
        opt.step()
        topt.step()
        np.testing.assert_allclose(p.numpy(), tp.detach().numpy(), rtol=1e-15)
        assert (p.grad is None) == (tp.grad is None)


def test_zero_grad_in_place_never_touches_shared_memory():
    # a + b hands the same gradient array to both leaves, and backward(g) hands over the caller's g:
    # a leaf's .grad must be its own array, so zeroing a's leaves b's and the caller's alone.
    a = tinygan.tensor(np.ones(3), requires_grad=True)
    b = tinygan.tensor(np.ones(3), requires_grad=True)
    g = tinygan.tensor(np.array([1.0, 2.0, 3.0]))
    (a + b).backward(g)
    optim.SGD([a], lr=0.1).zero_grad(set_to_none=False)
    assert not a.grad.numpy().any()
    np.testing.assert_array_equal(b.grad.numpy(), [1, 2, 3])
    np.testing.assert_array_equal(g.numpy(), [1, 2, 3])
    # a leaf that is the root itself
    c = tinygan.tensor(np.ones(3), requires_grad=True)
    c.backward(g)
    optim.SGD([c], lr=0.1).zero_grad(set_to_none=False)
    np.testing.assert_array_equal(g.numpy(), [1, 2, 3])
    # x.sum()'s gradient is a read-only broadcast view: the leaf gets its own writeable copy
    x = tinygan.tensor(np.ones((2, 3)), requires_grad=True)
    x.sum().backward()
    optim.SGD([x], lr=0.1).zero_grad(set_to_none=False)
    assert x.grad.shape == (2, 3) and not x.grad.numpy().any()


def test_zero_grad_set_to_none_false_detaches_a_create_graph_gradient():
    x = tinygan.tensor(np.array([1.0, 2.0]), requires_grad=True)
    (x * x * x).sum().backward(create_graph=True)
    assert x.grad.grad_fn is not None
    optim.Adam([x]).zero_grad(set_to_none=False)
    assert x.grad.grad_fn is None and not x.grad.requires_grad and not x.grad.numpy().any()


# ---------------------------------------------------------------------------
# Optimizer.defaults, add_param_group, duplicate parameters
# ---------------------------------------------------------------------------

OPTIMIZERS = [(optim.SGD, dict(lr=0.1, momentum=0.9)), (optim.Adam, dict(lr=0.01, betas=(0.5, 0.9))),
              (optim.RMSprop, dict(lr=0.01, alpha=0.9))]


@pytest.mark.parametrize("cls, hyper", OPTIMIZERS, ids=lambda v: getattr(v, "__name__", ""))
def test_defaults_fill_the_groups_and_add_param_group(cls, hyper):
    a, b, c = (nn.Parameter(np.ones(2)) for _ in range(3))
    opt = cls([{"params": [a]}, {"params": [b], "lr": 0.5}], **hyper)
    assert {k: v for k, v in opt.defaults.items() if k in hyper} == hyper
    assert opt.param_groups[0]["lr"] == hyper["lr"] and opt.param_groups[1]["lr"] == 0.5
    assert set(opt.param_groups[1]) == set(opt.defaults) | {"params"}
    opt.add_param_group({"params": c, "lr": 0.25})             # a single tensor is a group of one
    assert opt.param_groups[2]["params"] == [c] and opt.param_groups[2]["lr"] == 0.25
    assert {k: v for k, v in opt.param_groups[2].items() if k not in ("params", "lr")} == \
        {k: v for k, v in opt.defaults.items() if k != "lr"}


def test_param_groups_with_their_own_lr_match_torch(torch):
    rng = np.random.default_rng(0)
    w0, v0 = rng.standard_normal(3), rng.standard_normal(2)
    w, v = nn.Parameter(w0.copy()), nn.Parameter(v0.copy())
    tw, tv = (torch.nn.Parameter(torch.tensor(a)) for a in (w0, v0))
    opt = optim.Adam([{"params": [w]}], lr=0.1, betas=(0.5, 0.9))
    topt = torch.optim.Adam([{"params": [tw]}], lr=0.1, betas=(0.5, 0.9))
    opt.add_param_group({"params": [v], "lr": 0.01})
    topt.add_param_group({"params": [tv], "lr": 0.01})
    for _ in range(3):
        for o, params in ((opt, (w, v)), (topt, (tw, tv))):
            o.zero_grad()
            ((params[0] ** 2).sum() + (params[1] ** 3).sum()).backward()
            o.step()
    np.testing.assert_allclose(w.numpy(), tw.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(v.numpy(), tv.detach().numpy(), rtol=1e-12)


@pytest.mark.parametrize("cls, hyper", OPTIMIZERS, ids=lambda v: getattr(v, "__name__", ""))
def test_a_parameter_listed_twice_is_refused(cls, hyper):
    p, q = nn.Parameter(np.ones(2)), nn.Parameter(np.ones(3))
    name = cls.__name__
    with pytest.raises(ValueError, match=rf"{name}: parameter 1 of group 0 \(shape \(2,\)\) is also parameter 0 "
                                         r"of this group; each parameter may be listed once"):
        cls([p, p], **hyper)
    with pytest.raises(ValueError, match=rf"{name}: parameter 0 of group 1 .* is also parameter 1 of group 0: "
                                         r"some parameters appear in more than one parameter group"):
        cls([{"params": [q, p]}, {"params": [p]}], **hyper)
    opt = cls([p], **hyper)
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [q, p]})
    assert len(opt.param_groups) == 1                          # the refused group was not added
    # one step updates each parameter once: the same result as an optimizer holding it once
    p.grad = tinygan.tensor(np.ones(2))
    opt.step()
    once = nn.Parameter(np.ones(2))
    once.grad = tinygan.tensor(np.ones(2))
    cls([once], **hyper).step()
    np.testing.assert_array_equal(p.numpy(), once.numpy())


def test_a_parameter_in_two_groups_is_refused_as_torch_refuses_it(torch):
    for lib, p in ((torch, torch.nn.Parameter(torch.zeros(2))), (tinygan, nn.Parameter(np.zeros(2)))):
        with pytest.raises(ValueError, match="some parameters appear in more than one parameter group"):
            lib.optim.Adam([{"params": [p]}, {"params": [p]}])


def test_optimizer_params_type_errors():
    with pytest.raises(TypeError, match=r"Adam: params must be an iterable .* got a single Tensor"):
        optim.Adam(nn.Parameter(np.ones(2)))
    with pytest.raises(TypeError, match=r"SGD: can only optimize Tensors, but parameter 1 of group 0 is a ndarray"):
        optim.SGD([nn.Parameter(np.ones(2)), np.ones(2)])
    with pytest.raises(TypeError, match=r"SGD: the params of group 0 must be an ordered sequence, not a set"):
        optim.SGD([{"params": {nn.Parameter(np.ones(2))}}])
    x = tinygan.tensor(np.ones(2), requires_grad=True)
    with pytest.raises(ValueError, match=r"RMSprop: can't optimize a non-leaf Tensor"):
        optim.RMSprop([x * 2])


# ---------------------------------------------------------------------------
# load_state_dict
# ---------------------------------------------------------------------------

def _pair_of_models(torch):
    ours = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    theirs = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    return ours, theirs


def _torch_message(e: Exception) -> str:
    """torch's message, with torch.Size([a, b]) printed as the tuple (a, b) and no trailing spaces."""
    text = re.sub(r"torch\.Size\(\[([^\]]*)\]\)", lambda m: str(tuple(int(v) for v in m[1].split(",") if v)),
                  str(e))
    return "\n".join(line.rstrip() for line in text.split("\n"))


def test_load_state_dict_errors_read_as_torch(torch):
    ours, theirs = _pair_of_models(torch)
    state = ours.state_dict()
    bad = {k: v for k, v in state.items() if k not in ("0.bias", "1.running_var")}
    bad["2.weight"] = np.zeros(2, np.float32)
    bad["0.weight"] = np.zeros((3, 3), np.float32)
    before = ours[0].weight.numpy().copy()
    with pytest.raises(RuntimeError) as mine:
        ours.load_state_dict(bad)
    with pytest.raises(RuntimeError) as reference:
        theirs.load_state_dict({k: torch.tensor(v) for k, v in bad.items()})
    assert str(mine.value) == _torch_message(reference.value)
    assert str(mine.value) == (
        'Error(s) in loading state_dict for Sequential:\n'
        '\tMissing key(s) in state_dict: "0.bias", "1.running_var".\n'
        '\tUnexpected key(s) in state_dict: "2.weight".\n'
        '\tsize mismatch for 0.weight: copying a param with shape (3, 3) from checkpoint, '
        'the shape in current model is (2, 3).')
    np.testing.assert_array_equal(ours[0].weight.numpy(), before)     # nothing half-loaded


def test_load_state_dict_non_strict_returns_the_incompatible_keys(torch):
    ours, theirs = _pair_of_models(torch)
    state = ours.state_dict()
    partial = {k: np.full_like(v, 7) for k, v in state.items() if k != "0.bias"}
    partial["extra"] = np.zeros(1)
    result = ours.load_state_dict(partial, strict=False)
    reference = theirs.load_state_dict({k: torch.tensor(v) for k, v in partial.items()}, strict=False)
    assert result == (["0.bias"], ["extra"]) and tuple(result) == tuple(reference)
    assert result.missing_keys == ["0.bias"] and result.unexpected_keys == ["extra"]
    assert (ours[0].weight.numpy() == 7).all()                          # what matched was loaded
    ok = ours.load_state_dict(ours.state_dict())
    assert ok == ([], []) and repr(ok) == repr(theirs.load_state_dict(theirs.state_dict()))
    # a shape mismatch is an error even when not strict, as in PyTorch
    with pytest.raises(RuntimeError, match=r"size mismatch for 0.weight: .* shape \(1, 1\) from checkpoint, "
                                           r"the shape in current model is \(2, 3\)"):
        ours.load_state_dict({"0.weight": np.zeros((1, 1))}, strict=False)


def test_batch_norm_momentum_none_is_a_cumulative_average(torch):
    """torch: momentum=None makes the running statistics the plain average of every batch seen."""
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((8, 3)).astype(np.float32) for _ in range(3)]
    bn, tbn = tinygan.nn.BatchNorm1d(3, momentum=None), torch.nn.BatchNorm1d(3, momentum=None)
    for x in xs:
        bn(tinygan.tensor(x))
        tbn(torch.tensor(x))
    np.testing.assert_allclose(bn.running_mean, tbn.running_mean.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bn.running_var, tbn.running_var.numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="momentum must be a number"):
        tinygan.functional.batch_norm(tinygan.tensor(xs[0]), np.zeros(3, np.float32), np.ones(3, np.float32),
                                      training=True, momentum=None)
