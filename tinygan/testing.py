"""Numerical gradient checks for tinygan functions: :func:`gradcheck` and :func:`gradgradcheck`.

Both compare what the autograd engine computes with central finite
differences in float64, the way ``torch.autograd.gradcheck`` and
``chainer.gradient_check.check_backward`` do::

    df/dx_k  ~=  (f(x + h e_k) - f(x - h e_k)) / 2h          (error O(h^2))

for every element ``k`` of every input that requires grad (``e_k`` is the
k-th unit vector, ``h`` is ``eps``).  A function with a non-scalar output
``y`` is reduced to the scalar ``f(x) = <y, r> = sum(y * r)`` with a fixed
random ``r`` (a *random projection*): the autograd side then computes the
vector-Jacobian product ``J^T r`` that backward computes in real use, and a
wrong Jacobian is caught unless ``r`` happens to be orthogonal to the error
(probability zero).

:func:`gradgradcheck` checks second derivatives the same way, on the first
gradient: with ``g_i(x, r) = d<fn(x), r>/dx_i`` computed by
``tinygan.grad(..., create_graph=True)`` and fixed random ``v_i``, it checks
the gradient of the scalar ``h(x, r) = sum_i <g_i(x, r), v_i>`` w.r.t. every
input *and* ``r`` (a Hessian-vector product, plus the derivative of each
backward w.r.t. its incoming gradient) against finite differences of ``h``.
This is the code path of the WGAN-GP and R1 gradient penalties.

Typical use, in a test or at the prompt::

    >>> import numpy as np, tinygan, tinygan.functional as F
    >>> from tinygan.testing import gradcheck, gradgradcheck
    >>> x = tinygan.tensor(np.random.randn(2, 3, 5, 4), requires_grad=True)   # float64
    >>> w = tinygan.tensor(np.random.randn(4, 3, 3, 2), requires_grad=True)
    >>> gradcheck(lambda x, w: F.conv2d(x, w, stride=2, padding=1), [x, w])
    True
    >>> gradgradcheck(lambda x, w: F.conv2d(x, w, stride=2, padding=1), [x, w])
    True

Keep inputs away from kinks (``relu`` at 0, ``abs`` at 0, ``clip`` at its
bounds, ties in ``max``): the finite difference straddling a kink is not a
derivative.  Inputs must be float64 (float32 rounding, ~1e-7, divided by
``2h`` would swamp the comparison) and small: each element costs two
evaluations of ``fn``.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from tinygan.autograd import Tensor, grad
from tinygan.backend import get_array_module, to_numpy

__all__ = ["gradcheck", "gradgradcheck", "numerical_grad"]


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

def _as_inputs(inputs: Sequence[Any]) -> list:
    """Tensors stay as they are; NumPy arrays become float64 leaves that require grad."""
    if isinstance(inputs, (Tensor, np.ndarray)):
        inputs = [inputs]
    out = []
    for x in inputs:
        if isinstance(x, np.ndarray):
            x = Tensor(np.array(x, dtype=np.float64), requires_grad=True)
        out.append(x)
    return out


def _checked(inputs: list, who: str) -> list[int]:
    """Indices of the inputs to differentiate: Tensors with ``requires_grad``, which must be float64."""
    idx = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not idx:
        raise ValueError(f"{who}: no input requires grad; pass Tensors with requires_grad=True")
    for i in idx:
        if inputs[i].dtype != np.float64:
            raise TypeError(f"{who}: input {i} (shape {inputs[i].shape}) has dtype {inputs[i].dtype}; "
                            "finite differences need float64 inputs")
    return idx


def _outputs(result) -> list[Tensor]:
    outs = list(result) if isinstance(result, (tuple, list)) else [result]
    for k, o in enumerate(outs):
        if not isinstance(o, Tensor):
            raise TypeError(f"fn must return a Tensor or a tuple of Tensors; output {k} is {type(o).__name__}")
    return outs


def _projections(outs: list[Tensor], seed: int) -> list:
    """One fixed random array per output (``None`` for a scalar output: no projection needed)."""
    rng = np.random.default_rng(seed)
    proj = []
    for o in outs:
        if o._data.size == 1 and len(outs) == 1:
            proj.append(None)
        else:
            r = rng.standard_normal(o.shape)
            proj.append(get_array_module(o._data).asarray(r.astype(o.dtype)))
    return proj


def _project(outs: list[Tensor], proj: list, r_tensors: Sequence[Tensor] | None = None) -> Tensor:
    """The scalar sum_k <out_k, r_k> (as a graph node), or the single scalar output itself."""
    total = None
    for k, (o, r) in enumerate(zip(outs, proj)):
        if r is None:
            term = o.reshape(())
        else:
            rt = r_tensors[k] if r_tensors is not None else Tensor(r)
            term = (o * rt).sum()
        total = term if total is None else total + term
    return total


def _scalar(t: Tensor) -> float:
    return float(to_numpy(t._data).astype(np.float64).reshape(()))


def numerical_grad(f: Callable[[], float], x: Tensor, eps: float = 1e-6) -> np.ndarray:
    """Central differences of the scalar function ``f()`` w.r.t. every element of ``x``.

    ``x.data`` is perturbed in place, one element at a time, and restored
    (bit for bit) afterwards::

        grad[k] = (f(x + eps e_k) - f(x - eps e_k)) / (2 eps)

    Returns a float64 NumPy array of ``x``'s shape.
    """
    data = x._data
    xp = get_array_module(data)
    original = data
    work = data.copy()  # a writeable, contiguous buffer of our own
    x.data = work
    out = np.zeros(work.shape, dtype=np.float64)
    flat_out = out.reshape(-1)
    try:
        for k in range(work.size):
            idx = np.unravel_index(k, work.shape) if work.ndim else ()
            v = work[idx].copy() if xp is not np else work[idx]
            work[idx] = v + eps
            fp = f()
            work[idx] = v - eps
            fm = f()
            work[idx] = v
            flat_out[k] = (fp - fm) / (2.0 * eps)
    finally:
        x.data = original
    return out


def _compare(who: str, what: str, analytical: np.ndarray, numerical: np.ndarray, atol: float,
             rtol: float, shape: tuple, dtype: Any) -> None:
    """Raise AssertionError unless |a - n| <= atol + rtol |n| everywhere (as numpy.allclose)."""
    if analytical.shape != numerical.shape:
        raise AssertionError(f"{who}: {what}: analytical gradient has shape {analytical.shape}, "
                             f"expected {numerical.shape}")
    err = np.abs(analytical - numerical)
    bad = err > atol + rtol * np.abs(numerical)
    if not np.isfinite(analytical).all():
        bad |= ~np.isfinite(analytical)
    if bad.any():
        where = np.unravel_index(int(np.argmax(np.where(bad, err, -1.0))), err.shape) if err.ndim else ()
        where = tuple(int(i) for i in where)
        raise AssertionError(
            f"{who}: {what} (shape {shape}, dtype {dtype}) does not match finite differences: "
            f"max abs error {float(np.nanmax(err)):.3e}, {int(bad.sum())} of {bad.size} elements "
            f"out of tolerance (atol={atol:g}, rtol={rtol:g}); worst at index {where}: "
            f"analytical {float(analytical[where]):.10g}, numerical {float(numerical[where]):.10g}")


# ---------------------------------------------------------------------------
# first order
# ---------------------------------------------------------------------------

def gradcheck(fn: Callable[..., Any], inputs: Sequence[Any], eps: float = 1e-6, atol: float = 1e-5,
              rtol: float = 1e-4, seed: int = 0) -> bool:
    """Check ``tinygan.grad`` of ``fn`` against central finite differences.

    Args:
        fn: ``fn(*inputs)`` returns a Tensor (or a tuple of Tensors).  A
            non-scalar output ``y`` is reduced to ``<y, r> = sum(y * r)``
            with a fixed random ``r`` drawn from ``seed``.
        inputs: Tensors (or NumPy arrays, made float64 leaves).  Every Tensor
            with ``requires_grad=True`` is checked and must be float64; other
            entries (integer indices, constants) are passed through.
        eps: the finite-difference step ``h`` in
            ``df/dx_k ~= (f(x + h e_k) - f(x - h e_k)) / 2h``.
        atol, rtol: pass when ``|analytical - numerical| <= atol + rtol |numerical|``
            for every element.

    Returns:
        True.  On a mismatch raises AssertionError naming the input, the max
        abs error and the index of the worst element.
    """
    who = f"gradcheck({getattr(fn, '__name__', 'fn')})"
    inputs = _as_inputs(inputs)
    checked = _checked(inputs, who)
    outs = _outputs(fn(*inputs))
    for k, o in enumerate(outs):
        if o.dtype != np.float64:
            raise TypeError(f"{who}: output {k} has dtype {o.dtype}; expected float64 for float64 inputs")
    proj = _projections(outs, seed)
    loss = _project(outs, proj)
    if loss.requires_grad:
        analytical = grad(loss, [inputs[i] for i in checked], allow_unused=True)
    else:
        analytical = (None,) * len(checked)

    def f() -> float:
        # Not under no_grad: fn may itself call tinygan.grad (a create_graph quantity).
        return _scalar(_project(_outputs(fn(*inputs)), proj))

    for i, a in zip(checked, analytical):
        x = inputs[i]
        if a is not None and (a.shape != x.shape or a.dtype != x.dtype):
            raise AssertionError(f"{who}: gradient of input {i} has shape {a.shape} and dtype {a.dtype}, "
                                 f"but the input has shape {x.shape} and dtype {x.dtype}")
        a_np = np.zeros(x.shape) if a is None else to_numpy(a._data).astype(np.float64)
        n_np = numerical_grad(f, x, eps)
        _compare(who, f"gradient of input {i}", a_np, n_np, atol, rtol, x.shape, x.dtype)
    return True


# ---------------------------------------------------------------------------
# second order
# ---------------------------------------------------------------------------

def gradgradcheck(fn: Callable[..., Any], inputs: Sequence[Any], eps: float = 1e-6, atol: float = 1e-5,
                  rtol: float = 1e-4, seed: int = 0, check_grad_outputs: bool = True) -> bool:
    """Check second derivatives of ``fn``: differentiate a ``create_graph`` gradient again.

    With ``r`` a fixed random projection of ``fn``'s output(s) and ``v_i``
    fixed random arrays shaped like the inputs::

        g_i(x, r) = d <fn(x), r> / dx_i          (tinygan.grad, create_graph=True)
        h(x, r)   = sum_i <g_i(x, r), v_i>       (a scalar)

    ``tinygan.grad(h, [x..., r])`` (the Hessian-vector product ``H v`` for the
    inputs; ``J v`` for ``r``) is compared with central differences of ``h``::

        dh/dz_k ~= (h(z + eps e_k) - h(z - eps e_k)) / 2 eps

    where each evaluation of ``h`` runs a fresh first-order ``grad``.  With
    ``check_grad_outputs=False`` only the inputs are checked, not ``r``.

    Arguments and the pass criterion are as in :func:`gradcheck`.  Returns
    True or raises AssertionError naming the variable, the max abs error and
    the index of the worst element.
    """
    who = f"gradgradcheck({getattr(fn, '__name__', 'fn')})"
    inputs = _as_inputs(inputs)
    checked = _checked(inputs, who)
    xs = [inputs[i] for i in checked]
    outs = _outputs(fn(*inputs))
    rng = np.random.default_rng(seed + 1)
    # r: always a projection (even of a scalar output) so that it can be a variable.
    r_tensors = []
    for o in outs:
        r = rng.standard_normal(o.shape).astype(o.dtype)
        r_tensors.append(Tensor(get_array_module(o._data).asarray(r), requires_grad=check_grad_outputs))
    proj = [t._data for t in r_tensors]
    vs = [Tensor(get_array_module(x._data).asarray(rng.standard_normal(x.shape))) for x in xs]

    def h_of(create_graph: bool):
        outs_ = _outputs(fn(*inputs))
        loss = _project(outs_, proj, r_tensors)
        if not loss.requires_grad:
            return None
        gs = grad(loss, xs, create_graph=create_graph, allow_unused=True)
        total = None
        for g, v in zip(gs, vs):
            if g is None:
                continue
            term = (g * v).sum()
            total = term if total is None else total + term
        return total

    h = h_of(create_graph=True)
    variables = list(zip([f"input {i}" for i in checked], xs))
    if check_grad_outputs:
        variables += [(f"grad_output {k} (the projection of output {k})", t) for k, t in enumerate(r_tensors)]
    if h is not None and h.requires_grad:
        analytical = grad(h, [t for _, t in variables], allow_unused=True)
    else:
        analytical = (None,) * len(variables)

    def f() -> float:
        value = h_of(create_graph=False)
        return 0.0 if value is None else _scalar(value)

    for (name, t), a in zip(variables, analytical):
        a_np = np.zeros(t.shape) if a is None else to_numpy(a._data).astype(np.float64)
        n_np = numerical_grad(f, t, eps)
        _compare(who, f"second derivative w.r.t. {name}", a_np, n_np, atol, rtol, t.shape, t.dtype)
    return True
