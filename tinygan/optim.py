"""Optimizers: ``Adam``, ``SGD`` and ``RMSprop``, matching ``torch.optim`` step for step.

The maths of each update lives in :mod:`tinygan.kernels.optim` (in-place
array updates); this module keeps the per-parameter state, the
hyper-parameters and the (PyTorch-shaped) ``state_dict``.

State layout on the CPU: each parameter group keeps its optimizer state in
one flat buffer per state name (:class:`_FlatState`), and each parameter's
``state[id(p)]["exp_avg"]`` (say) is a view of its own slice, shaped like the
parameter.  ``step`` then updates every parameter of the group in one
threaded call (``tinygan.kernels.optim.adam_multi_`` and its siblings), which
computes exactly the floats of the one-parameter kernels.  The parameters'
own arrays stay where their modules put them (``p.data`` is never replaced),
and ``state_dict`` / ``load_state_dict`` see plain per-parameter arrays as
before: a state array that is not a view of the buffer (restored from a
checkpoint, or moved back from a GPU) is copied into it at the next step.
Parameters on a GPU, non-contiguous ones, and ones of another dtype than the
group's first use the one-parameter kernels.
"""
from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from tinygan.autograd import Tensor, zero_grads
from tinygan.backend import get_array_module, to_device, to_numpy
from tinygan.kernels import optim as _k


class _FlatState:
    """One zero-initialised flat buffer per state name for the NumPy parameters of one group."""

    def __init__(self, params, names, dtype):
        self.dtype, self.names = np.dtype(dtype), tuple(names)
        self.ids = tuple(id(p) for p in params)
        offsets, total = {}, 0
        for p in params:
            offsets[id(p)] = (total, total + p._data.size, p.shape)
            total += p._data.size
        self.buffers = {n: np.zeros(total, dtype=self.dtype) for n in names}
        self.views = {pid: {n: buf[s:e].reshape(shape) for n, buf in self.buffers.items()}
                      for pid, (s, e, shape) in offsets.items()}

    def covers(self, p) -> bool:
        return id(p) in self.views and p._data.dtype == self.dtype

    def adopt(self, p, state: dict, name: str):
        """``state[name]`` as a view of this buffer: zeros when new, else the old values copied in."""
        view = self.views[id(p)][name]
        current = state.get(name)
        if current is not view:
            if current is None:
                view.fill(0)
            else:
                view[...] = to_numpy(current)
            state[name] = view
        return view


def _fast(p, g) -> bool:
    """The CPU multi-parameter path applies: a C-contiguous NumPy parameter (and gradient on the host)."""
    return get_array_module(p._data) is np and p._data.flags.c_contiguous and get_array_module(g) is np


def _follow_device(state: dict, p) -> None:
    """Move a parameter's state arrays to the parameter's device (after ``Module.to``), in place."""
    for k, v in state.items():
        if hasattr(v, "shape") and get_array_module(v) is not get_array_module(p._data):
            state[k] = to_device(v, p.device)


class Optimizer:
    """Holds ``param_groups`` (lists of Parameters with hyper-parameters) and per-parameter state.

    As ``torch.optim.Optimizer``: ``defaults`` is the dict of the
    constructor's hyper-parameters (``{"lr": 1e-3, "betas": (0.9, 0.999), ...}``),
    and every parameter group is a dict with ``"params"`` and one value per
    hyper-parameter, its own where the group sets one and ``defaults``'
    otherwise::

        Adam([{"params": G.parameters()}, {"params": head.parameters(), "lr": 1e-3}], lr=2e-4)

    A parameter may appear only once, in one group: listed twice it would be
    updated twice per step, so that is a ``ValueError``, at construction and
    in :meth:`add_param_group`.
    """

    def __init__(self, params: Iterable, **defaults):
        name = type(self).__name__
        if isinstance(params, Tensor):
            raise TypeError(f"{name}: params must be an iterable of Tensors or of dicts (parameter groups), "
                            f"got a single Tensor of shape {params.shape}; pass [tensor]")
        params = list(params)
        if not params:
            raise ValueError(f"{name}: got an empty parameter list")
        self.defaults: dict[str, Any] = dict(defaults)
        self.param_groups: list[dict[str, Any]] = []
        self.state: dict[int, dict[str, Any]] = {}  # keyed by id(param)
        self._flat: dict[int, _FlatState] = {}       # group index -> flat state buffers (CPU)
        for group in (params if isinstance(params[0], dict) else [{"params": params}]):
            self.add_param_group(group)

    def add_param_group(self, param_group: dict) -> None:
        """Add a group: ``{"params": [...], **hyper-parameters}``; missing hyper-parameters come from ``defaults``.

        Raises ``ValueError`` when a parameter is already in this optimizer
        (or twice in the group), ``TypeError`` for anything but Tensors.
        """
        name = type(self).__name__
        index = len(self.param_groups)
        if not isinstance(param_group, dict) or "params" not in param_group:
            raise TypeError(f"{name}: parameter group {index} must be a dict with a 'params' entry, "
                            f"got {type(param_group).__name__}")
        params = param_group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise TypeError(f"{name}: the params of group {index} must be an ordered sequence, not a set "
                            "(a set's order changes from run to run, and the state_dict relies on it)")
        params = list(params)
        owner = {id(p): (g, i) for g, group in enumerate(self.param_groups) for i, p in enumerate(group["params"])}
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"{name}: can only optimize Tensors, but parameter {i} of group {index} "
                                f"is a {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError(f"{name}: can't optimize a non-leaf Tensor (parameter {i} of group {index}, "
                                 f"shape {p.shape}); optimize the leaf it was computed from")
            if id(p) in owner:
                g, j = owner[id(p)]
                where = f"is also parameter {j} of this group" if g == index else \
                    f"is also parameter {j} of group {g}: some parameters appear in more than one parameter group"
                raise ValueError(f"{name}: parameter {i} of group {index} (shape {p.shape}) {where}; "
                                 "each parameter may be listed once (it would be updated twice per step)")
            owner[id(p)] = (index, i)
        group = {**self.defaults, **{k: v for k, v in param_group.items() if k != "params"}}
        group["params"] = params
        self.param_groups.append(group)

    def params(self):
        """``(group, parameter)`` for every parameter, in order."""
        for group in self.param_groups:
            for p in group["params"]:
                yield group, p

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset every parameter's ``.grad``: to None, or (``set_to_none=False``) to zeros in place.

        See :func:`tinygan.autograd.zero_grads`.
        """
        zero_grads((p for _, p in self.params()), set_to_none)

    def step(self) -> None:
        """Update every parameter that has a gradient.

        A gradient of another float dtype than its parameter (float64 on a
        float32 parameter, say) is cast to the parameter's dtype first, on
        the CPU and the GPU alike.  On the CPU the group's parameters are
        updated together (see the module docstring); the floats are those of
        one-parameter updates.
        """
        for index, group in enumerate(self.param_groups):
            batch = []
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad._data
                if get_array_module(g) is not get_array_module(p._data):
                    raise ValueError(f"{type(self).__name__}.step: gradient on a different device from its "
                                     f"parameter of shape {p.shape}")
                if g.dtype != p._data.dtype:
                    # e.g. a float64 gradient on a float32 parameter: step in the parameter's dtype, the same
                    # on both devices (the fused CUDA kernels take one dtype; NumPy would cast in place)
                    g = g.astype(p._data.dtype)
                state = self.state.setdefault(id(p), {})
                _follow_device(state, p)
                if self._state_names and _fast(p, g):
                    batch.append((p, g, state))
                else:
                    self._update(group, p, g, state)
            if batch:
                flat = self._flat_state(index, group, batch[0][0]._data.dtype)
                slow = [item for item in batch if not flat.covers(item[0])]
                for p, g, state in slow:
                    self._update(group, p, g, state)
                batch = [item for item in batch if flat.covers(item[0])]
                if batch:
                    self._update_many(group, batch, flat)

    # The state arrays a parameter has (for the flat buffers); () keeps the one-parameter path.
    _state_names: tuple[str, ...] = ()

    def _flat_state(self, index: int, group: dict, dtype) -> _FlatState:
        """The flat buffers of group ``index`` (rebuilt when its parameters changed)."""
        params = [p for p in group["params"] if get_array_module(p._data) is np and p._data.dtype == dtype
                  and p._data.flags.c_contiguous]
        names = self._state_names_for(group)
        flat = self._flat.get(index)
        if flat is None or flat.ids != tuple(id(p) for p in params) or flat.dtype != np.dtype(dtype) \
                or flat.names != names:
            flat = self._flat[index] = _FlatState(params, names, dtype)
        return flat

    def _state_names_for(self, group: dict) -> tuple[str, ...]:
        return self._state_names

    def _update_many(self, group, batch, flat: _FlatState) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

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

    _state_names = ("exp_avg", "exp_avg_sq")

    def _update(self, group, p, g, state):
        if not state:
            xp = get_array_module(p._data)
            state["step"] = 0
            state["exp_avg"] = xp.zeros_like(p._data)       # m
            state["exp_avg_sq"] = xp.zeros_like(p._data)    # v
        state["step"] += 1
        b1, b2 = group["betas"]
        _k.adam_step_(p._data, g, state["exp_avg"], state["exp_avg_sq"], lr=group["lr"], beta1=b1, beta2=b2,
                      eps=group["eps"], step=state["step"], weight_decay=group["weight_decay"])

    def _update_many(self, group, batch, flat):
        ms, vs, steps = [], [], []
        for p, _, state in batch:
            state.setdefault("step", 0)
            ms.append(flat.adopt(p, state, "exp_avg"))
            vs.append(flat.adopt(p, state, "exp_avg_sq"))
            state["step"] += 1
            steps.append(state["step"])
        b1, b2 = group["betas"]
        _k.adam_multi_([p._data for p, _, _ in batch], [g for _, g, _ in batch], ms, vs, steps, lr=group["lr"],
                       beta1=b1, beta2=b2, eps=group["eps"], weight_decay=group["weight_decay"])


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum, as ``torch.optim.SGD``."""

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False):
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: nesterov momentum needs momentum > 0 and dampening 0")
        super().__init__(params, lr=lr, momentum=momentum, dampening=dampening,
                         weight_decay=weight_decay, nesterov=nesterov)

    _state_names = ("momentum_buffer",)

    def _update(self, group, p, g, state):
        first = "momentum_buffer" not in state
        buf = _k.sgd_step_(p._data, g, state.get("momentum_buffer"), lr=group["lr"], momentum=group["momentum"],
                           dampening=group["dampening"], weight_decay=group["weight_decay"],
                           nesterov=group["nesterov"], first=first)
        if buf is not None:
            state["momentum_buffer"] = buf

    def _state_names_for(self, group):
        return ("momentum_buffer",) if group["momentum"] else ()

    def _update_many(self, group, batch, flat):
        momentum = group["momentum"]
        first, bufs = [], []
        for p, _, state in batch:
            first.append("momentum_buffer" not in state)
            if momentum:
                view = flat.views[id(p)]["momentum_buffer"]
                if not first[-1]:
                    view = flat.adopt(p, state, "momentum_buffer")
                state["momentum_buffer"] = view               # written by the kernel (buf = g) when first
                bufs.append(view)
            else:
                bufs.append(None)
        _k.sgd_multi_([p._data for p, _, _ in batch], [g for _, g, _ in batch], bufs, lr=group["lr"],
                      momentum=momentum, dampening=group["dampening"], weight_decay=group["weight_decay"],
                      nesterov=group["nesterov"], first=first)


class RMSprop(Optimizer):
    """RMSprop, as ``torch.optim.RMSprop`` (WGAN's optimizer: ``RMSprop(params, lr=5e-5)``)."""

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False):
        super().__init__(params, lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                         momentum=momentum, centered=centered)

    def _update(self, group, p, g, state):
        if not state:
            xp = get_array_module(p._data)
            state["step"] = 0
            state["square_avg"] = xp.zeros_like(p._data)
            if group["momentum"] > 0:
                state["momentum_buffer"] = xp.zeros_like(p._data)
            if group["centered"]:
                state["grad_avg"] = xp.zeros_like(p._data)
        state["step"] += 1
        _k.rmsprop_step_(p._data, g, state["square_avg"], state.get("momentum_buffer"), state.get("grad_avg"),
                         lr=group["lr"], alpha=group["alpha"], eps=group["eps"],
                         weight_decay=group["weight_decay"], momentum=group["momentum"],
                         centered=group["centered"])

    _state_names = ("square_avg", "momentum_buffer", "grad_avg")

    def _state_names_for(self, group):
        return ("square_avg",) + (("momentum_buffer",) if group["momentum"] > 0 else ()) + \
            (("grad_avg",) if group["centered"] else ())

    def _update_many(self, group, batch, flat):
        names = self._state_names_for(group)
        arrays = {n: [] for n in ("square_avg", "momentum_buffer", "grad_avg")}
        for p, _, state in batch:
            state.setdefault("step", 0)
            for n in arrays:
                arrays[n].append(flat.adopt(p, state, n) if n in names else None)
            state["step"] += 1
        _k.rmsprop_multi_([p._data for p, _, _ in batch], [g for _, g, _ in batch], arrays["square_avg"],
                          arrays["momentum_buffer"], arrays["grad_avg"], lr=group["lr"], alpha=group["alpha"],
                          eps=group["eps"], weight_decay=group["weight_decay"], momentum=group["momentum"],
                          centered=group["centered"])
