"""Unrolled GAN (Metz, Poole, Pfau & Sohl-Dickstein 2017): G's loss through K differentiable steps of D.

G is trained against the discriminator it *would* face after D reacted to
it for K more optimizer steps (paper, eq. 2-4):

    theta_D^0     = theta_D                                  D's current weights (after its own update)
    theta_D^{k+1} = theta_D^k - opt_step(grad_{theta_D^k} L_D(theta_G, theta_D^k))       k = 0 .. K-1
    f_K(theta_G)  = L_G(theta_G, theta_D^K(theta_G))

and G descends the *total* derivative df_K/dtheta_G, which holds the term
(dL_G/dtheta_D^K)(dtheta_D^K/dtheta_G) that lets G anticipate D (eq. 4):
the steps are recorded with ``create_graph=True``, so ``backward`` of f_K
goes back through every one of them.  The copies theta_D^k are functional:
D's own parameters, its optimizer's state and its batch-norm statistics are
left exactly as they were (D is only *evaluated* at theta_D^k, through
:func:`substituted`).

The optimizer of the unrolled steps is D's own, with its hyper-parameters
and its current state (Adam's moments and step count continue inside the
unroll and are thrown away after it, as in the paper's code):

    SGD:   theta <- theta - lr (g + wd theta)
    Adam:  m <- b1 m + (1 - b1) g,   v <- b2 v + (1 - b2) g^2,   t <- t + 1
           theta <- theta - lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)

L_D in the unrolled steps is the adversarial loss alone (no gradient
penalty, R1 or clipping), on the batch D was just trained on: the real
batch and the generator's fakes *with* their graph (they carry theta_G).
"""
from __future__ import annotations

import contextlib
from typing import Callable, Sequence

from tinygan import optim
from tinygan.autograd import Tensor, grad
from tinygan.backend import get_array_module

__all__ = ["substituted", "unrolled_parameters", "unrolled_step"]


@contextlib.contextmanager
def substituted(module, params: Sequence, values: Sequence[Tensor]):
    """Inside the block, ``module`` computes with ``values[i]`` in place of parameter ``params[i]``.

    A functional call (``torch.func.functional_call``): the attributes that hold
    the parameters are pointed at the given Tensors, which may be non-leaf
    nodes of a graph, then restored; buffers (batch-norm statistics) are
    copied before and written back after, so the block leaves no trace.
    """
    where = {id(p): i for i, p in enumerate(params)}
    swapped, saved_buffers = [], []
    for m in module.modules():
        for name, p in list(m._parameters.items()):
            if p is not None and id(p) in where:
                swapped.append((m, name, p))
                object.__setattr__(m, name, values[where[id(p)]])
        for name, b in list(m._buffers.items()):
            if b is not None and hasattr(b, "copy"):
                saved_buffers.append((m, name, b, b.copy()))
    try:
        yield
    finally:
        for m, name, p in swapped:
            object.__setattr__(m, name, p)
        for m, name, b, copy in saved_buffers:
            if isinstance(b, type(copy)) and getattr(b, "ndim", 0):     # the same array again, values restored
                get_array_module(b).copyto(b, copy)
                m._set_buffer(name, b)
            else:                                                       # scalars (a step count)
                m._set_buffer(name, copy)


def _opt_settings(opt, params) -> tuple[str, list[dict], list[dict]]:
    """(kind, per-parameter hyper-parameters, per-parameter state copies) of D's optimizer.

    A wrapper that keeps the optimizer as ``.opt`` (``--distributed``'s
    gradient-averaging one) is looked through: the unrolled steps of a rank
    use its own batch's gradients.
    """
    opt = getattr(opt, "opt", opt)
    if isinstance(opt, optim.Adam):
        kind = "adam"
    elif type(opt) is optim.SGD:
        kind = "sgd"
    else:
        raise ValueError(f"unrolled steps: D's optimizer must be Adam or SGD, got {type(opt).__name__}")
    group_of = {id(p): g for g in opt.param_groups for p in g["params"]}
    hyper, states = [], []
    for p in params:
        g = group_of.get(id(p))
        if g is None:
            raise ValueError("unrolled steps: a parameter of D is not in D's optimizer")
        if kind == "sgd" and g.get("momentum", 0.0):
            raise ValueError("unrolled steps: SGD with momentum is not unrolled (use momentum 0 or Adam)")
        hyper.append(g)
        st = opt.state.get(id(p), {})
        states.append({k: (v.copy() if hasattr(v, "copy") else v) for k, v in st.items()})
    return kind, hyper, states


def unrolled_step(kind: str, theta: Tensor, g: Tensor, hyper: dict, state: dict) -> Tensor:
    """One differentiable optimizer step theta -> theta' (``state`` is advanced in the dict, as Tensors)."""
    wd = hyper.get("weight_decay", 0.0)
    if wd:
        g = g + wd * theta
    if kind == "sgd":
        return theta - hyper["lr"] * g
    b1, b2 = hyper["betas"]
    m, v = state.get("exp_avg"), state.get("exp_avg_sq")
    m = (1 - b1) * g if m is None else b1 * _const(m) + (1 - b1) * g                # (1 - b1) g + b1 m
    v = (1 - b2) * g.square() if v is None else b2 * _const(v) + (1 - b2) * g.square()
    t = int(state.get("step", 0)) + 1
    state.update(exp_avg=m, exp_avg_sq=v, step=t)
    m_hat = m / (1 - b1 ** t)
    v_hat = v / (1 - b2 ** t)
    return theta - hyper["lr"] * m_hat / (_sqrt_flat_at_zero(v_hat) + hyper["eps"])


def _sqrt_flat_at_zero(v: Tensor) -> Tensor:
    """sqrt(v), the same values, but with derivative 0 instead of inf where v = 0.

    v = 0 where D's gradient has been exactly 0 at every step, as for the last
    bias under a relativistic loss (it cancels in D(x_r) - D(x_f)); there
    dv/dtheta_G = 2 (1 - b2) g dg/dtheta_G = 0 too, and the plain chain rule
    would give inf * 0 = nan.  sqrt(v + 1[v = 0]) - 1[v = 0] is sqrt(v) everywhere
    and has a finite slope (1/2) at those points, so their term is 0: a valid
    (sub)gradient of the kink sqrt(v(theta)) ~ |g(theta)| there.
    """
    zero = Tensor((v._data == 0).astype(v.dtype))           # a constant mask: 1 where v = 0
    return (v + zero).sqrt() - zero


def _const(a) -> Tensor:
    return a if isinstance(a, Tensor) else Tensor(a)


def unrolled_parameters(D, params: Sequence, opt_d, d_loss: Callable[[], Tensor], k: int) -> list[Tensor]:
    """theta_D^K: ``k`` differentiable steps of ``opt_d`` on ``d_loss()`` from D's current ``params``.

    ``d_loss`` is called inside :func:`substituted` (D computing with theta_D^k)
    and returns L_D; its graph may reach G's parameters (through the fakes),
    and so will the returned Tensors.  D itself is not changed.
    """
    kind, hyper, states = _opt_settings(opt_d, params)
    theta = [Tensor(p._data, requires_grad=True) for p in params]      # theta_D^0: D's values, new leaves
    for _ in range(int(k)):
        with substituted(D, params, theta):
            loss = d_loss()                                            # L_D(theta_G, theta_D^k)
        grads = grad(loss, theta, create_graph=True)                   # recorded: differentiable in theta_G
        theta = [unrolled_step(kind, t, g, h, s) for t, g, h, s in zip(theta, grads, hyper, states)]
    return theta
