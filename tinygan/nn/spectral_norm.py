"""Spectral normalisation (Miyato et al. 2018) in PyTorch's layout: ``spectral_norm(module)``.

    W_SN = W / sigma(W),    sigma(W) = u^T W v                       (Miyato et al. 2018, eq. 8 and Algorithm 1)

with W the weight seen as a matrix (``dim`` first, the rest flattened: (out,
in*kh*kw) for a convolution, (out, in*kh*kw) with ``dim=1`` for a transposed
one) and u, v its leading singular vectors estimated by power iteration:

    v <- W^T u / ||W^T u||,    u <- W v / ||W v||                    (one iteration per training forward)

:func:`spectral_norm` changes a module in place as
``torch.nn.utils.spectral_norm`` does: the trained parameter becomes
``weight_orig``, u and v are persistent buffers ``weight_u`` and ``weight_v``
(so a checkpoint holds them and a resumed run continues the same power
iteration), and ``weight`` is recomputed before every forward:

* in training mode, one power iteration (no gradient: u and v are constants
  of the graph) updates the buffers, then ``weight = weight_orig / sigma``;
* in eval mode the buffers are used as they are (no iteration).

sigma is part of the graph: the gradient with respect to ``weight_orig``
goes through both the numerator and sigma, as in the paper, and twice
through, for a gradient penalty (``create_graph``).
"""
from __future__ import annotations

import types

from tinygan import random as _random
from tinygan.autograd import Tensor
from tinygan.backend import get_array_module, to_device
from tinygan.nn.module import Module, Parameter

__all__ = ["SpectralNorm", "spectral_norm", "remove_spectral_norm"]


def _normalize(x, eps: float):
    """x / max(||x||_2, eps) (``torch.nn.functional.normalize(x, dim=0, eps=eps)``)."""
    xp = get_array_module(x)
    return x / xp.maximum(xp.linalg.norm(x), x.dtype.type(eps))        # no host sync on the GPU


class SpectralNorm:
    """The state of one spectral normalisation: which parameter, along which dim, how many iterations."""

    def __init__(self, name: str = "weight", n_power_iterations: int = 1, dim: int = 0, eps: float = 1e-12):
        if n_power_iterations < 0:
            raise ValueError(f"spectral_norm: n_power_iterations must be >= 0, got {n_power_iterations}")
        self.name, self.n_power_iterations, self.dim, self.eps = name, n_power_iterations, dim, eps

    def matrix(self, w):
        """The weight array as a matrix: axis ``dim`` first, the others flattened, (h, k)."""
        return get_array_module(w).moveaxis(w, self.dim, 0).reshape(w.shape[self.dim], -1)

    def power_iteration_(self, module: Module) -> None:
        """``n_power_iterations`` steps of v <- W^T u / ||.||, u <- W v / ||.||, written to the buffers."""
        mat = self.matrix(getattr(module, self.name + "_orig").data)                  # (h, k)
        u, v = getattr(module, self.name + "_u"), getattr(module, self.name + "_v")   # (h,), (k,)
        for _ in range(self.n_power_iterations):
            v = _normalize(mat.T @ u, self.eps)                                         # W^T u / ||W^T u||
            u = _normalize(mat @ v, self.eps)                                           # W v / ||W v||
        module._set_buffer(self.name + "_u", u)
        module._set_buffer(self.name + "_v", v)

    def sigma(self, module: Module) -> Tensor:
        """sigma(W) = u^T W v with u, v constants: a scalar Tensor in W's graph."""
        w = getattr(module, self.name + "_orig")
        xp = get_array_module(w._data)
        u, v = getattr(module, self.name + "_u"), getattr(module, self.name + "_v")
        shape = (w.shape[self.dim],) + tuple(s for i, s in enumerate(w.shape) if i != self.dim)
        uv = xp.moveaxis(xp.outer(u, v).reshape(shape), 0, self.dim)                    # u v^T in W's layout
        return (w * Tensor(uv)).sum()                                                   # sum_ij u_i W_ij v_j

    def compute_weight(self, module: Module, do_power_iteration: bool) -> Tensor:
        """W / sigma(W), after a power iteration in training mode."""
        if do_power_iteration:
            self.power_iteration_(module)
        return getattr(module, self.name + "_orig") / self.sigma(module)               # W_SN = W / sigma(W)

    def __repr__(self) -> str:
        return f"SpectralNorm(name={self.name!r}, n_power_iterations={self.n_power_iterations}, dim={self.dim})"


def _forward_with_spectral_norm(self, *args, **kwargs):
    """The module's own forward, with ``weight`` recomputed first (a power iteration when training)."""
    for fn in self._spectral_norms:
        setattr(self, fn.name, fn.compute_weight(self, do_power_iteration=self.training))
    return type(self).forward(self, *args, **kwargs)


def spectral_norm(module: Module, name: str = "weight", n_power_iterations: int = 1, eps: float = 1e-12,
                  dim: int | None = None) -> Module:
    """Spectrally normalise ``module``'s parameter ``name`` in place (``torch.nn.utils.spectral_norm``); returns it.

    ``dim`` defaults to 1 for transposed convolutions (their output channels)
    and 0 otherwise.  u ~ N(0, I) and v ~ N(0, I), normalised, are drawn from
    tinygan's global generator (the trainer seeds it), u first.
    """
    if not isinstance(module, Module):
        raise TypeError(f"spectral_norm: expected a Module, got {type(module).__name__}")
    if any(fn.name == name for fn in module.__dict__.get("_spectral_norms", ())):
        raise RuntimeError(f"spectral_norm: {type(module).__name__}.{name} is already spectrally normalised")
    weight = module._parameters.get(name)
    if weight is None:
        raise ValueError(f"spectral_norm: {type(module).__name__} has no parameter {name!r}")
    if dim is None:
        dim = 1 if type(module).__name__.startswith("ConvTranspose") else 0
    fn = SpectralNorm(name, n_power_iterations, dim, eps)
    w = weight._data
    h, k = w.shape[dim], w.size // w.shape[dim]
    rng = _random.default_generator()
    u = _normalize(to_device(rng.standard_normal(h).astype(w.dtype), weight.device), eps)   # (h,)
    v = _normalize(to_device(rng.standard_normal(k).astype(w.dtype), weight.device), eps)   # (k,)
    del module._parameters[name]
    setattr(module, name + "_orig", weight)                       # the trained parameter, after the others
    object.__setattr__(module, name, Tensor(w))                   # a plain tensor until the first forward
    module.register_buffer(name + "_u", u.astype(w.dtype))
    module.register_buffer(name + "_v", v.astype(w.dtype))
    object.__setattr__(module, "_spectral_norms", module.__dict__.get("_spectral_norms", ()) + (fn,))
    object.__setattr__(module, "forward", types.MethodType(_forward_with_spectral_norm, module))
    return module


def remove_spectral_norm(module: Module, name: str = "weight") -> Module:
    """Undo :func:`spectral_norm`: ``weight`` becomes a parameter again holding W / sigma (eval-mode value)."""
    fns = module.__dict__.get("_spectral_norms", ())
    fn = next((f for f in fns if f.name == name), None)
    if fn is None:
        raise ValueError(f"spectral_norm of {name!r} not found in {type(module).__name__}")
    value = fn.compute_weight(module, do_power_iteration=False)._data
    for key in (name + "_orig",):
        del module._parameters[key]
        object.__delattr__(module, key)
    for key in (name + "_u", name + "_v"):
        del module._buffers[key]
        object.__delattr__(module, key)
    setattr(module, name, Parameter(value.copy()))
    rest = tuple(f for f in fns if f is not fn)
    object.__setattr__(module, "_spectral_norms", rest)
    if not rest:
        object.__delattr__(module, "forward")
    return module
