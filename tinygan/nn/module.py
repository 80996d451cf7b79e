"""``Module``, ``Parameter`` and the containers ``Sequential`` and ``ModuleList``."""
from __future__ import annotations

import contextlib
from collections import OrderedDict
from typing import Any, Iterator, Mapping, NamedTuple

import numpy as np

from tinygan.autograd import Tensor, zero_grads
from tinygan.backend import get_array_module, normalize_device, to_device, to_numpy


class IncompatibleKeys(NamedTuple):
    """What :meth:`Module.load_state_dict` did not match, as PyTorch's ``_IncompatibleKeys``."""

    missing_keys: list[str]
    unexpected_keys: list[str]

    def __repr__(self) -> str:
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return f"IncompatibleKeys(missing_keys={self.missing_keys}, unexpected_keys={self.unexpected_keys})"


class Parameter(Tensor):
    """A leaf Tensor that a Module registers as trainable (``requires_grad=True``)."""

    def __init__(self, data: Any, requires_grad: bool = True):
        if isinstance(data, Tensor):
            data = data._data
        super().__init__(data, requires_grad=requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


@contextlib.contextmanager
def frozen(params):
    """Treat ``params`` as constants inside the block (``requires_grad = False``), then restore them.

    GAN training uses it for the generator's step: D's weights are constants of
    G's objective, so their gradients are not even computed.
    """
    params = list(params)
    previous = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad = False
    try:
        yield
    finally:
        for p, flag in zip(params, previous):
            p.requires_grad = flag


class Module:
    """Base class of every layer and network.

    Assigning a :class:`Parameter` or a ``Module`` as an attribute registers
    it; :meth:`register_buffer` registers state that is saved but not trained
    (batch norm's running statistics).  ``state_dict`` keys are dotted paths
    (``main.0.weight``), exactly as in PyTorch.
    """

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    # --- registration ---------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}: call super().__init__() before assigning attributes")
        for store in (self._parameters, self._buffers, self._modules):
            store.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def register_buffer(self, name: str, array) -> None:
        """Keep ``array`` (a NumPy/CuPy array or None) in the state_dict, not among parameters."""
        self._buffers[name] = array
        object.__setattr__(self, name, array)

    def _set_buffer(self, name: str, array) -> None:
        self._buffers[name] = array
        object.__setattr__(self, name, array)

    def add_module(self, name: str, module: "Module | None") -> None:
        setattr(self, name, module)

    # --- traversal ------------------------------------------------------------
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, "Module"]]:
        yield prefix, self
        for name, m in self._modules.items():
            if m is not None:
                yield from m.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator["Module"]:
        for _, m in self.named_modules():
            yield m

    def children(self) -> Iterator["Module"]:
        return iter(m for m in self._modules.values() if m is not None)

    def named_children(self) -> Iterator[tuple[str, "Module"]]:
        return iter((name, m) for name, m in self._modules.items() if m is not None)

    def apply(self, fn) -> "Module":
        """Call ``fn(m)`` on every submodule, children first, then on this module; returns self.

        PyTorch's idiom for initialisation, e.g. DCGAN's ``netG.apply(weights_init)``
        (tinygan/gan/dcgan.py::weights_init).
        """
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        seen: set[int] = set()
        for mname, m in self.named_modules(prefix):
            for pname, p in m._parameters.items():
                if p is not None and id(p) not in seen:
                    seen.add(id(p))
                    yield (f"{mname}.{pname}" if mname else pname), p

    def parameters(self) -> Iterator[Parameter]:
        for _, p in self.named_parameters():
            yield p

    def named_buffers(self) -> Iterator[tuple[str, Any]]:
        for mname, m in self.named_modules():
            for bname, b in m._buffers.items():
                if b is not None:
                    yield (f"{mname}.{bname}" if mname else bname), b

    # --- modes ----------------------------------------------------------------
    def train(self, mode: bool = True) -> "Module":
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset every parameter's ``.grad``: to None, or (``set_to_none=False``) to zeros in place.

        See :func:`tinygan.autograd.zero_grads`.
        """
        zero_grads(self.parameters(), set_to_none)

    def requires_grad_(self, requires_grad: bool = True) -> "Module":
        for p in self.parameters():
            p.requires_grad = requires_grad
        return self

    # --- devices --------------------------------------------------------------
    def to(self, device: Any = None, dtype: Any = None) -> "Module":
        """Move parameters and buffers to ``device`` and/or cast floats to ``dtype``, in place."""
        dev = None if device is None else normalize_device(device)
        for m in self.modules():
            for p in m._parameters.values():
                if p is None:
                    continue
                data = p._data if dev is None else to_device(p._data, dev)
                if dtype is not None:
                    data = data.astype(dtype)
                p._set_data(data)                    # a new device or dtype: not what t.data = ... accepts
                p.grad = None
            for name, b in list(m._buffers.items()):
                if b is None:
                    continue
                data = b if dev is None else to_device(b, dev)
                if dtype is not None and data.dtype.kind == "f":
                    data = data.astype(dtype)
                m._set_buffer(name, data)
        return self

    def cpu(self) -> "Module":
        return self.to("cpu")

    def float(self) -> "Module":
        """Cast floating-point parameters and buffers to float32, in place (``torch.nn.Module.float``)."""
        return self.to(dtype=np.float32)

    def double(self) -> "Module":
        """Cast floating-point parameters and buffers to float64, in place (gradcheck-ready)."""
        return self.to(dtype=np.float64)

    def cuda(self) -> "Module":
        return self.to("cuda")

    @property
    def device(self) -> str:
        for p in self.parameters():
            return p.device
        return "cpu"

    # --- state ----------------------------------------------------------------
    def state_dict(self) -> "OrderedDict[str, np.ndarray]":
        """Parameters and buffers as host NumPy arrays (copies), keyed as in PyTorch."""
        out: OrderedDict[str, np.ndarray] = OrderedDict()
        for mname, m in self.named_modules():
            for pname, p in m._parameters.items():
                if p is not None:
                    out[f"{mname}.{pname}" if mname else pname] = np.array(to_numpy(p._data))
            for bname, b in m._buffers.items():
                if b is not None:
                    out[f"{mname}.{bname}" if mname else bname] = np.array(to_numpy(b))
        return out

    def load_state_dict(self, state: Mapping[str, Any], strict: bool = True) -> "IncompatibleKeys":
        """Copy arrays from ``state`` into this module, checking names and shapes, as PyTorch does.

        Values may be anything ``numpy.asarray`` takes (a PyTorch CPU tensor
        too); they are cast to each parameter's dtype and moved to its device.

        * ``strict=True``: the keys of ``state`` must be exactly this module's
          (:meth:`state_dict`'s);
        * ``strict=False``: keys missing from ``state`` keep their values and
          keys this module does not have are ignored.

        Either way every array present must have its entry's shape.  On any
        error a ``RuntimeError`` lists every problem (PyTorch's wording) and
        nothing is loaded::

            Error(s) in loading state_dict for Sequential:
                Missing key(s) in state_dict: "0.bias".
                Unexpected key(s) in state_dict: "2.weight".
                size mismatch for 0.weight: copying a param with shape (3, 3) from checkpoint, ...

        Returns ``IncompatibleKeys(missing_keys, unexpected_keys)``, PyTorch's
        ``_IncompatibleKeys``.
        """
        if not isinstance(state, Mapping):
            raise TypeError(f"load_state_dict for {type(self).__name__}: expected a dict of arrays, "
                            f"got {type(state).__name__}")
        own = self.state_dict()
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        errors = []
        if strict and missing:
            errors.append("Missing key(s) in state_dict: " + ", ".join(f'"{k}"' for k in missing) + ".")
        if strict and unexpected:
            errors.append("Unexpected key(s) in state_dict: " + ", ".join(f'"{k}"' for k in unexpected) + ".")
        converted = {}
        for key, value in state.items():
            if key not in own:
                continue
            arr = np.asarray(value.detach().cpu() if hasattr(value, "detach") else to_numpy(value))
            if arr.shape != own[key].shape:
                errors.append(f"size mismatch for {key}: copying a param with shape {arr.shape} from "
                              f"checkpoint, the shape in current model is {own[key].shape}.")
            converted[key] = arr
        if errors:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t"
                               + "\n\t".join(errors))
        for mname, m in self.named_modules():
            for pname, p in m._parameters.items():
                key = f"{mname}.{pname}" if mname else pname
                if p is not None and key in converted:
                    xp = get_array_module(p._data)
                    p.data = to_device(converted[key].astype(p.dtype), p.device) if xp is not np \
                        else converted[key].astype(p.dtype, copy=True)
            for bname, b in list(m._buffers.items()):
                key = f"{mname}.{bname}" if mname else bname
                if b is not None and key in converted:
                    arr = converted[key].astype(b.dtype, copy=True)
                    m._set_buffer(bname, to_device(arr, "cuda" if get_array_module(b) is not np else "cpu"))
        return IncompatibleKeys(missing, unexpected)

    # --- calling --------------------------------------------------------------
    def forward(self, *args, **kwargs):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} must implement forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        for name, m in self._modules.items():
            body = repr(m).replace("\n", "\n  ")
            lines.append(f"  ({name}): {body}")
        return lines[0] + ")" if len(lines) == 1 else "\n".join(lines) + "\n)"

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


class Sequential(Module):
    """Modules applied in order; children are named ``0``, ``1``, ... as in PyTorch."""

    def __init__(self, *modules: Module):
        super().__init__()
        for i, m in enumerate(modules):
            self.add_module(str(i), m)

    def forward(self, x):
        for m in self._modules.values():
            x = m(x)
        return x

    def __getitem__(self, i: int) -> Module:
        return list(self._modules.values())[i]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())


class ModuleList(Module):
    """A list of modules, registered as ``0``, ``1``, ..."""

    def __init__(self, modules=()):
        super().__init__()
        for m in modules:
            self.append(m)

    def append(self, m: Module) -> "ModuleList":
        self.add_module(str(len(self._modules)), m)
        return self

    def __getitem__(self, i: int) -> Module:
        return list(self._modules.values())[i]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())
