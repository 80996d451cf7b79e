"""Optimizers: ``Adam``, ``SGD`` and ``RMSprop``, matching ``torch.optim`` step for step.

The maths of each update lives in :mod:`tinygan.kernels.optim` (in-place
array updates); this module keeps the per-parameter state, the
hyper-parameters and the (PyTorch-shaped) ``state_dict``.
"""
from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from tinygan.backend import get_array_module, to_device, to_numpy
from tinygan.kernels import optim as _k


def _follow_device(state: dict, p) -> None:
    """Move a parameter's state arrays to the parameter's device (after ``Module.to``), in place."""
    for k, v in state.items():
        if hasattr(v, "shape") and get_array_module(v) is not get_array_module(p.data):
            state[k] = to_device(v, p.device)


class Optimizer:
    """Holds ``param_groups`` (lists of Parameters with hyper-parameters) and per-parameter state."""

    defaults: dict[str, Any] = {}

    def __init__(self, params: Iterable, **hyper):
        params = list(params)
        if not params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        if isinstance(params[0], dict):
            groups = [dict(g) for g in params]
        else:
            groups = [{"params": params}]
        self.param_groups = []
        for g in groups:
            group = {**hyper, **{k: v for k, v in g.items() if k != "params"}}
            group["params"] = list(g["params"])
            self.param_groups.append(group)
        self.state: dict[int, dict[str, Any]] = {}  # keyed by id(param)

    def params(self):
        for group in self.param_groups:
            for p in group["params"]:
                yield group, p

    def zero_grad(self, set_to_none: bool = True) -> None:
        for _, p in self.params():
            p.grad = None

    def step(self) -> None:
        for group, p in self.params():
            if p.grad is None:
                continue
            g = p.grad.data
            if get_array_module(g) is not get_array_module(p.data):
                raise ValueError(f"{type(self).__name__}.step: gradient on a different device from its "
                                 f"parameter of shape {p.shape}")
            state = self.state.setdefault(id(p), {})
            _follow_device(state, p)
            self._update(group, p, g, state)

    def _update(self, group, p, g, state) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    # --- state ------------------------------------------------------------------
    def state_dict(self) -> dict:
        """``{"state": {index: {name: value}}, "param_groups": [...]}`` with host NumPy arrays."""
        index = {}
        groups = []
        for group in self.param_groups:
            ids = []
            for p in group["params"]:
                index[id(p)] = len(index)
                ids.append(index[id(p)])
            groups.append({**{k: v for k, v in group.items() if k != "params"}, "params": ids})
        state = {}
        for pid, st in self.state.items():
            if pid in index:
                state[index[pid]] = {k: (np.array(to_numpy(v)) if hasattr(v, "shape") else v)
                                     for k, v in st.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore a state from :meth:`state_dict`; arrays move to each parameter's device."""
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups) or any(
                len(a["params"]) != len(b["params"]) for a, b in zip(groups, self.param_groups)):
            raise ValueError(f"{type(self).__name__}.load_state_dict: the saved parameter groups do not match "
                             "this optimizer's (different model?)")
        params = [p for _, p in self.params()]
        for saved, group in zip(groups, self.param_groups):
            group.update({k: (tuple(v) if isinstance(v, list) else v) for k, v in saved.items() if k != "params"})
        self.state = {}
        for key, st in state_dict["state"].items():
            p = params[int(key)]
            restored = {}
            for k, v in st.items():
                if hasattr(v, "shape") and np.ndim(v) > 0:
                    if tuple(v.shape) != p.shape:
                        raise ValueError(f"{type(self).__name__}.load_state_dict: state {k!r} of parameter {key} "
                                         f"has shape {tuple(v.shape)}, the parameter {p.shape}")
                    restored[k] = to_device(np.asarray(v).astype(p.dtype), p.device)
                else:
                    restored[k] = v.item() if hasattr(v, "item") else v
            self.state[id(p)] = restored


class Adam(Optimizer):
    """Adam, as ``torch.optim.Adam`` (see :func:`tinygan.kernels.optim.adam_step_`).

    DCGAN's recipe: ``Adam(params, lr=2e-4, betas=(0.5, 0.999))``.
    """

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        if lr < 0 or eps < 0 or not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
            raise ValueError(f"Adam: invalid hyper-parameters lr={lr}, betas={betas}, eps={eps}")
        super().__init__(params, lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay)

    def _update(self, group, p, g, state):
        if not state:
            xp = get_array_module(p.data)
            state["step"] = 0
            state["exp_avg"] = xp.zeros_like(p.data)       # m
            state["exp_avg_sq"] = xp.zeros_like(p.data)    # v
        state["step"] += 1
        b1, b2 = group["betas"]
        _k.adam_step_(p.data, g, state["exp_avg"], state["exp_avg_sq"], lr=group["lr"], beta1=b1, beta2=b2,
                      eps=group["eps"], step=state["step"], weight_decay=group["weight_decay"])


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum, as ``torch.optim.SGD``."""

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False):
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: nesterov momentum needs momentum > 0 and dampening 0")
        super().__init__(params, lr=lr, momentum=momentum, dampening=dampening,
                         weight_decay=weight_decay, nesterov=nesterov)

    def _update(self, group, p, g, state):
        first = "momentum_buffer" not in state
        buf = _k.sgd_step_(p.data, g, state.get("momentum_buffer"), lr=group["lr"], momentum=group["momentum"],
                           dampening=group["dampening"], weight_decay=group["weight_decay"],
                           nesterov=group["nesterov"], first=first)
        if buf is not None:
            state["momentum_buffer"] = buf


class RMSprop(Optimizer):
    """RMSprop, as ``torch.optim.RMSprop`` (WGAN's optimizer: ``RMSprop(params, lr=5e-5)``)."""

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False):
        super().__init__(params, lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                         momentum=momentum, centered=centered)

    def _update(self, group, p, g, state):
        if not state:
            xp = get_array_module(p.data)
            state["step"] = 0
            state["square_avg"] = xp.zeros_like(p.data)
            if group["momentum"] > 0:
                state["momentum_buffer"] = xp.zeros_like(p.data)
            if group["centered"]:
                state["grad_avg"] = xp.zeros_like(p.data)
        state["step"] += 1
        _k.rmsprop_step_(p.data, g, state["square_avg"], state.get("momentum_buffer"), state.get("grad_avg"),
                         lr=group["lr"], alpha=group["alpha"], eps=group["eps"],
                         weight_decay=group["weight_decay"], momentum=group["momentum"],
                         centered=group["centered"])
