"""Per-kernel benchmarks: each op of a DCGAN, forward and backward, tinygan against PyTorch.

The rows are derived from the actual tinygan models, not typed in: :func:`walk_layers`
pushes a small batch through ``DCGANGenerator`` and ``DCGANDiscriminator`` and
records the input of every ConvTranspose2d / Conv2d / BatchNorm2d / LeakyReLU
(its shape, and whether tinygan hands it over channels-last, i.e. as an NCHW
view of an NHWC buffer).  :func:`kernel_cases` turns those into cases:

=================  =====================================================  ========
op                 where it comes from                                    bound by
=================  =====================================================  ========
conv_transpose2d   every G layer                                          GEMM
conv2d             every D layer                                          GEMM
batch_norm         every BatchNorm2d, training mode (batch statistics)    memory
leaky_relu         every LeakyReLU(0.2) of D                              memory
linear             G's first layer on its 1x1 input and D's last layer,   GEMM
                   written as the matrix products they are
adam               one Adam step over all of G's and D's parameters       memory
bce_with_logits    D's logits (N,) against all-ones targets               memory
=================  =====================================================  ========

Each case is run in both frameworks from the same host arrays.  Before any
timing, the outputs (forward) and every input gradient (backward) are
compared: the "agreement" is ``max|a - b| / max|b|`` over all of them, b being
PyTorch's.  Forward times the op as the network calls it (graph recording on);
backward times ``grad(y, inputs, g, retain_graph=True)`` alone, for every input
(conv: data and weight gradients; batch norm: x, gamma, beta).

PyTorch is imported inside the functions that run a benchmark, never at import.
"""
from __future__ import annotations

import dataclasses
import json
import math
import sys
from typing import Callable

import numpy as np

from tinygan import functional as F
from tinygan.autograd import Tensor, grad, no_grad
from tinygan.backend import cupy_module, to_numpy
from tinygan.benchmark import isolated as I
from tinygan.benchmark.timing import clock_for, measure_pair
from tinygan.gan.dcgan import DCGANDiscriminator, DCGANGenerator
from tinygan.nn.module import Parameter
from tinygan.optim import Adam

KERNEL_TOL = 1e-4          # max relative error of a kernel row in float32
KERNEL_TOL_TF32 = 1e-2     # the same with TF32 GEMMs/convolutions on (GPU --tf32)


# ---------------------------------------------------------------------------- configurations

@dataclasses.dataclass(frozen=True)
class Config:
    """One DCGAN configuration: image size, batch and widths (nc: 3 at 64x64, else 1 as for MNIST)."""

    image_size: int = 64
    batch: int = 64
    nz: int = 100
    ngf: int = 64
    ndf: int = 64
    nc: int | None = None

    @property
    def channels(self) -> int:
        return self.nc if self.nc is not None else (3 if self.image_size >= 64 else 1)

    @property
    def name(self) -> str:
        extra = "" if (self.ngf, self.ndf, self.nz) == (64, 64, 100) else f" ngf{self.ngf} ndf{self.ndf} nz{self.nz}"
        return f"dcgan{self.image_size} b{self.batch}{extra}"

    def as_dict(self) -> dict:
        return {**dataclasses.asdict(self), "nc": self.channels, "name": self.name}


def build_tinygan(cfg: Config):
    """tinygan's ``DCGANGenerator`` and ``DCGANDiscriminator`` for ``cfg`` (on the CPU)."""
    G = DCGANGenerator(nz=cfg.nz, ngf=cfg.ngf, nc=cfg.channels, image_size=cfg.image_size)
    D = DCGANDiscriminator(nc=cfg.channels, ndf=cfg.ndf, image_size=cfg.image_size)
    return G, D


@dataclasses.dataclass
class Layer:
    """One layer of a tinygan DCGAN as met in a forward pass."""

    net: str                 # "G" or "D"
    index: str               # position in ``net.main``
    module: object
    in_shape: tuple          # (N, C, H, W) at the configuration's batch
    channels_last: bool      # tinygan hands it an NCHW view of an NHWC buffer

    @property
    def name(self) -> str:
        return f"{self.net}.main.{self.index}"

    @property
    def kind(self) -> str:
        return type(self.module).__name__


def _is_channels_last(a) -> bool:
    return a.ndim == 4 and a.transpose(0, 2, 3, 1).flags.c_contiguous and not a.flags.c_contiguous


def walk_layers(cfg: Config, probe_batch: int = 2) -> list[Layer]:
    """Every layer of G then D, with the input each receives (G's output feeds D, as for fakes).

    The walk runs at ``probe_batch`` (cheap) and reports shapes at ``cfg.batch``.
    """
    G, D = build_tinygan(cfg)
    G.train()
    D.train()
    rng = np.random.default_rng(0)
    layers = []
    with no_grad():
        x = Tensor(rng.standard_normal((probe_batch, cfg.nz, 1, 1), dtype=np.float32))
        for net, model in (("G", G), ("D", D)):
            for index, module in model.main._modules.items():
                layers.append(Layer(net, index, module, (cfg.batch,) + tuple(x.shape[1:]),
                                    _is_channels_last(x._data)))
                x = module(x)
    return layers


# ---------------------------------------------------------------------------- cases

@dataclasses.dataclass
class Case:
    """One benchmark row family: an op at one shape, with its passes and its place in a training step."""

    config: str
    layer: str
    op: str
    shape: str
    params: dict
    bound: str                           # "gemm" (rate in GFLOP/s) or "memory" (GB/s)
    work: dict                           # pass -> GFLOP (gemm) or GB (memory) per call
    per_step: dict                       # pass -> calls per training iteration (estimated, see step.py)
    channels_last: bool = False

    @property
    def passes(self) -> tuple[str, ...]:
        return tuple(self.work)


def _shape(t) -> str:
    return "x".join(str(int(v)) for v in t)


def _conv_flops(n, c_in, c_out, kh, kw, out_hw) -> float:
    """2 N Ho Wo C_out C_in kh kw for a convolution (a transposed one: its input grid is ``out_hw``)."""
    return 2.0 * n * out_hw[0] * out_hw[1] * c_out * c_in * kh * kw


def conv_counts(net: str, first: bool) -> dict:
    """Per training iteration, in units of the row's fwd and bwd (= data + weight gradient) calls.

    D layers run forward 3 times (real, detached fake, fake in the G step); D's
    step needs weight and data gradients of both batches, the G step only the
    data gradient; D's first layer never needs a data gradient in D's step.
    G layers run once each way; G's first layer needs no data gradient (z).
    """
    if net == "D":
        return {"fwd": 3, "bwd": 1.5 if first else 2.5}
    return {"fwd": 1, "bwd": 0.5 if first else 1}


def layer_fwd_gflop(layer: Layer) -> float:
    """GFLOP of one forward call of a (transposed) convolution layer at the configuration's batch."""
    m = layer.module
    n, c, h, w = layer.in_shape
    kh, kw = m.kernel_size
    if layer.kind == "ConvTranspose2d":
        return _conv_flops(n, m.in_channels, m.out_channels, kh, kw, (h, w)) / 1e9
    ho = (h + 2 * m.padding[0] - kh) // m.stride[0] + 1
    wo = (w + 2 * m.padding[1] - kw) // m.stride[1] + 1
    return _conv_flops(n, m.in_channels, m.out_channels, kh, kw, (ho, wo)) / 1e9


def layer_step_flops(layer: Layer) -> float:
    """GFLOP one training iteration spends in this (transposed) convolution layer (see :func:`conv_counts`)."""
    counts = conv_counts(layer.net, layer.index == "0")
    return (counts["fwd"] + 2 * counts["bwd"]) * layer_fwd_gflop(layer)


def step_gflop(cfg: Config) -> float:
    """Convolution GFLOP of one training iteration (element-wise work not counted)."""
    return sum(layer_step_flops(l) for l in walk_layers(cfg) if l.kind in ("Conv2d", "ConvTranspose2d"))


def kernel_cases(cfg: Config) -> list[Case]:
    """All kernel rows of one configuration, in network order, then linear, Adam and BCE."""
    layers = walk_layers(cfg)
    cases: list[Case] = []
    name = cfg.name
    elem = 4e-9                                          # GB per float32
    for L in layers:
        m = L.module
        if L.kind in ("Conv2d", "ConvTranspose2d"):
            transposed = L.kind == "ConvTranspose2d"
            w_shape = (m.in_channels, m.out_channels, *m.kernel_size) if transposed \
                else (m.out_channels, m.in_channels, *m.kernel_size)
            f = layer_fwd_gflop(L)
            cases.append(Case(name, L.name, "conv_transpose2d" if transposed else "conv2d",
                              f"x {_shape(L.in_shape)} w {_shape(w_shape)} s{m.stride[0]} p{m.padding[0]}",
                              {"x": L.in_shape, "w": w_shape, "stride": m.stride[0], "padding": m.padding[0]},
                              "gemm", {"fwd": f, "bwd": 2 * f}, conv_counts(L.net, L.index == "0"), L.channels_last))
        elif L.kind == "BatchNorm2d":
            size = math.prod(L.in_shape)
            calls = 3 if L.net == "D" else 1
            cases.append(Case(name, L.name, "batch_norm", f"x {_shape(L.in_shape)}",
                              {"x": L.in_shape, "eps": m.eps, "momentum": m.momentum}, "memory",
                              {"fwd": 2 * size * elem, "bwd": 3 * size * elem}, {"fwd": calls, "bwd": calls},
                              L.channels_last))
        elif L.kind == "LeakyReLU":
            size = math.prod(L.in_shape)
            cases.append(Case(name, L.name, "leaky_relu", f"x {_shape(L.in_shape)} slope {m.negative_slope}",
                              {"x": L.in_shape, "slope": m.negative_slope}, "memory",
                              {"fwd": 2 * size * elem, "bwd": 3 * size * elem}, {"fwd": 3, "bwd": 3},
                              L.channels_last))
    # The first G layer on a 1x1 input and the last D layer on a 4x4 (7x7) one are matrix products.
    g0 = next(l for l in layers if l.net == "G" and l.index == "0")
    d_last = [l for l in layers if l.kind == "Conv2d"][-1]
    kh, kw = g0.module.kernel_size
    products = ((g0, g0.module.in_channels, g0.module.out_channels * kh * kw),
                (d_last, d_last.module.in_channels * math.prod(d_last.module.kernel_size), d_last.module.out_channels))
    for layer, fin, fout in products:
        f = 2.0 * cfg.batch * fin * fout / 1e9
        cases.append(Case(name, f"{layer.name} as linear", "linear", f"x {cfg.batch}x{fin} w {fout}x{fin}",
                          {"x": (cfg.batch, fin), "w": (fout, fin)}, "gemm", {"fwd": f, "bwd": 2 * f},
                          {"fwd": 0, "bwd": 0}))
    # Adam over every parameter of G and D.
    G, D = build_tinygan(cfg)
    shapes = [tuple(p.shape) for p in list(G.parameters()) + list(D.parameters())]
    total = sum(math.prod(s) for s in shapes)
    cases.append(Case(name, "G + D", "adam", f"{len(shapes)} tensors, {total:,} params",
                      {"shapes": shapes, "lr": 2e-4, "betas": (0.5, 0.999)}, "memory",
                      {"step": 7 * total * elem}, {"step": 1}))
    cases.append(Case(name, "D logits", "bce_with_logits", f"logits {cfg.batch}",
                      {"x": (cfg.batch,)}, "memory", {"fwd": 2 * cfg.batch * elem, "bwd": 3 * cfg.batch * elem},
                      {"fwd": 3, "bwd": 3}))
    return cases


# ---------------------------------------------------------------------------- the two implementations

@dataclasses.dataclass
class Bound:
    """An op bound to its inputs in one framework: ``forward()`` returns the output; ``leaves`` get gradients."""

    forward: Callable[[], object]
    leaves: list
    step: Callable[[], None] | None = None              # Adam: the whole update
    params: list | None = None


class _Frameworks:
    """Array conversion for both sides on one device (PyTorch is imported on first use)."""

    def __init__(self, device: str):
        self.device = device
        self._torch = None
        if device == "cpu":
            self.xp = np
        else:
            self.xp = cupy_module()

    @property
    def torch(self):
        if self._torch is None:
            import torch
            self._torch = torch
        return self._torch

    # --- tinygan side
    def tg(self, a: np.ndarray, requires_grad=False, channels_last=False):
        xp = self.xp
        arr = xp.asarray(a)
        if channels_last and arr.ndim == 4:
            arr = xp.ascontiguousarray(arr.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
        return Tensor(arr, requires_grad=requires_grad)

    def tg_like(self, y, a: np.ndarray):
        """A gradient for output ``y`` holding ``a``, laid out as ``y`` is (NHWC views stay NHWC)."""
        g = self.xp.empty_like(y._data)
        g[...] = self.xp.asarray(a)
        return Tensor(g)

    # --- torch side
    def pt(self, a: np.ndarray, requires_grad=False):
        t = self.torch.from_numpy(np.ascontiguousarray(a)).to("cuda" if self.device != "cpu" else "cpu")
        return t.requires_grad_(requires_grad)


def to_host(t) -> np.ndarray:
    """A float64 host copy of a tinygan Tensor, a torch tensor or an array."""
    if isinstance(t, Tensor):
        t = t._data
    elif hasattr(t, "detach"):                          # a torch tensor
        return t.detach().cpu().double().numpy()
    return np.asarray(to_numpy(t), dtype=np.float64)


def rel_err(a, b) -> float:
    """``max|a - b| / max|b|`` (b: the reference); 0 when both are zero."""
    a, b = to_host(a), to_host(b)
    if a.shape != b.shape:
        raise ValueError(f"agreement: shapes differ, {a.shape} vs {b.shape}")
    scale = float(np.max(np.abs(b))) if b.size else 0.0
    diff = float(np.max(np.abs(a - b))) if b.size else 0.0
    return diff / scale if scale > 0 else diff


def _inputs(case: Case, rng) -> dict:
    """Host float32 inputs of a case (same for both frameworks)."""
    p, op = case.params, case.op
    std = np.float32(0.02)
    if op in ("conv2d", "conv_transpose2d", "linear"):
        return {"x": rng.standard_normal(p["x"], dtype=np.float32),
                "w": rng.standard_normal(p["w"], dtype=np.float32) * std}
    if op == "batch_norm":
        c = p["x"][1]
        return {"x": rng.standard_normal(p["x"], dtype=np.float32),
                "weight": (1 + std * rng.standard_normal(c, dtype=np.float32)).astype(np.float32),
                "bias": std * rng.standard_normal(c, dtype=np.float32)}
    if op in ("leaky_relu", "bce_with_logits"):
        return {"x": rng.standard_normal(p["x"], dtype=np.float32)}
    if op == "adam":
        return {"params": [std * rng.standard_normal(s, dtype=np.float32) for s in p["shapes"]],
                "grads": [1e-3 * rng.standard_normal(s, dtype=np.float32) for s in p["shapes"]]}
    raise ValueError(f"unknown op {op!r}")


def bind_tinygan(case: Case, arrays: dict, fw: _Frameworks) -> Bound:
    """The case's op in tinygan, as the network calls it (``tinygan.functional``)."""
    p, op, cl = case.params, case.op, case.channels_last
    if op == "adam":
        params = [Parameter(fw.xp.asarray(a)) for a in arrays["params"]]
        for q, g in zip(params, arrays["grads"]):
            q.grad = Tensor(fw.xp.asarray(g))
        opt = Adam(params, lr=p["lr"], betas=p["betas"])
        return Bound(forward=None, leaves=[], step=opt.step, params=params)
    x = fw.tg(arrays["x"], True, cl)
    if op == "conv2d":
        w = fw.tg(arrays["w"], True)
        return Bound(lambda: F.conv2d(x, w, stride=p["stride"], padding=p["padding"]), [x, w])
    if op == "conv_transpose2d":
        w = fw.tg(arrays["w"], True)
        return Bound(lambda: F.conv_transpose2d(x, w, stride=p["stride"], padding=p["padding"]), [x, w])
    if op == "linear":
        w = fw.tg(arrays["w"], True)
        return Bound(lambda: F.linear(x, w), [x, w])
    if op == "batch_norm":
        c = p["x"][1]
        wt, b = fw.tg(arrays["weight"], True), fw.tg(arrays["bias"], True)
        rm, rv = fw.xp.zeros(c, np.float32), fw.xp.ones(c, np.float32)
        return Bound(lambda: F.batch_norm(x, rm, rv, wt, b, training=True, momentum=p["momentum"], eps=p["eps"]),
                     [x, wt, b])
    if op == "leaky_relu":
        return Bound(lambda: F.leaky_relu(x, p["slope"]), [x])
    if op == "bce_with_logits":
        t = fw.tg(np.ones(p["x"], np.float32))
        return Bound(lambda: F.binary_cross_entropy_with_logits(x, t), [x])
    raise ValueError(f"unknown op {op!r}")


def bind_torch(case: Case, arrays: dict, fw: _Frameworks) -> Bound:
    """The case's op in PyTorch (``torch.nn.functional``, contiguous NCHW as in PyTorch's example)."""
    torch = fw.torch
    F = torch.nn.functional
    p, op = case.params, case.op
    if op == "adam":
        params = [fw.pt(a, True) for a in arrays["params"]]
        for q, g in zip(params, arrays["grads"]):
            q.grad = fw.pt(g)
        opt = torch.optim.Adam(params, lr=p["lr"], betas=p["betas"])
        return Bound(forward=None, leaves=[], step=opt.step, params=params)
    x = fw.pt(arrays["x"], True)
    if op == "conv2d":
        w = fw.pt(arrays["w"], True)
        return Bound(lambda: F.conv2d(x, w, stride=p["stride"], padding=p["padding"]), [x, w])
    if op == "conv_transpose2d":
        w = fw.pt(arrays["w"], True)
        return Bound(lambda: F.conv_transpose2d(x, w, stride=p["stride"], padding=p["padding"]), [x, w])
    if op == "linear":
        w = fw.pt(arrays["w"], True)
        return Bound(lambda: F.linear(x, w), [x, w])
    if op == "batch_norm":
        c = p["x"][1]
        wt, b = fw.pt(arrays["weight"], True), fw.pt(arrays["bias"], True)
        rm, rv = fw.pt(np.zeros(c, np.float32)), fw.pt(np.ones(c, np.float32))
        return Bound(lambda: F.batch_norm(x, rm, rv, wt, b, training=True, momentum=p["momentum"], eps=p["eps"]),
                     [x, wt, b])
    if op == "leaky_relu":
        return Bound(lambda: F.leaky_relu(x, p["slope"]), [x])
    if op == "bce_with_logits":
        t = fw.pt(np.ones(p["x"], np.float32))
        return Bound(lambda: F.binary_cross_entropy_with_logits(x, t), [x])
    raise ValueError(f"unknown op {op!r}")


# ---------------------------------------------------------------------------- running a case

def _row(case: Case, pass_: str, agree: float, tol: float, timings: dict | None, ceilings: dict) -> dict:
    """One table row as a dict (times in ms, rates in GFLOP/s or GB/s, shares of the ceiling in %)."""
    row = {"config": case.config, "layer": case.layer, "op": case.op, "pass": pass_, "shape": case.shape,
           "bound": case.bound, "unit": "GFLOP/s" if case.bound == "gemm" else "GB/s",
           "work": case.work[pass_], "per_step": case.per_step.get(pass_, 0),
           "channels_last": case.channels_last, "agree": agree, "tol": tol, "ok": bool(agree <= tol)}
    if timings:
        tg, pt = timings["tinygan"], timings["torch"]
        row["tinygan"], row["torch"] = tg.as_dict(), pt.as_dict()
        row["ratio"] = tg.median_ms / pt.median_ms if pt.median_ms > 0 else float("inf")
        row["tinygan_rate"] = case.work[pass_] / (tg.median_ms * 1e-3)
        row["torch_rate"] = case.work[pass_] / (pt.median_ms * 1e-3)
        key = "tinygan_gemm_gflops" if case.bound == "gemm" else "tinygan_copy_gbs"
        if ceilings.get(key):
            row["ceiling_share"] = 100.0 * row["tinygan_rate"] / ceilings[key]
    return row


def _backward_callable(y, leaves, g, fw: _Frameworks, framework: str):
    if framework == "tinygan":
        return lambda: grad(y, leaves, g, retain_graph=True)
    return lambda: fw.torch.autograd.grad(y, leaves, g, retain_graph=True)


def _gradient_for(y, rng, fw: _Frameworks, framework: str):
    """The backward pass's incoming gradient for output ``y`` (None for a scalar), drawn from ``rng``."""
    if y.ndim == 0:
        return None
    g_host = rng.standard_normal(tuple(y.shape), dtype=np.float32)
    return fw.tg_like(y, g_host) if framework == "tinygan" else fw.pt(g_host)


def pass_callables(case: Case, fw: _Frameworks, framework: str, seed: int = 0) -> list:
    """``[(pass, callable)]`` timing each pass of ``case`` in one framework, from the same inputs as
    :func:`run_case` (the same seed, the same draws), for the per-process timing."""
    rng = np.random.default_rng(seed)
    arrays = _inputs(case, rng)
    bound = (bind_tinygan if framework == "tinygan" else bind_torch)(case, arrays, fw)
    if case.op == "adam":
        return [("step", bound.step)]
    y = bound.forward()
    g = _gradient_for(y, rng, fw, framework)
    return [("fwd", bound.forward), ("bwd", _backward_callable(y, bound.leaves, g, fw, framework))]


def run_case(case: Case, fw: _Frameworks, budget, ceilings: dict, tol: float = KERNEL_TOL,
             seed: int = 0, time_it: bool = True) -> list[dict]:
    """Check agreement, then (``time_it``: in this process) time each pass of ``case``; one row per pass."""
    rng = np.random.default_rng(seed)
    arrays = _inputs(case, rng)
    tg, pt = bind_tinygan(case, arrays, fw), bind_torch(case, arrays, fw)
    clocks = {"tinygan": clock_for("tinygan", fw.device), "torch": clock_for("torch", fw.device)}
    rows = []

    def timed(fns, agree):
        if not time_it or not agree <= tol:          # a row that disagrees is not timed
            return None
        return measure_pair({k: (fns[k], clocks[k]) for k in ("tinygan", "torch")}, budget)

    if case.op == "adam":
        tg.step()
        pt.step()
        agree = max(rel_err(a, b) for a, b in zip(tg.params, pt.params))
        rows.append(_row(case, "step", agree, tol, timed({"tinygan": tg.step, "torch": pt.step}, agree), ceilings))
        return rows

    # forward: outputs must agree
    y_tg, y_pt = tg.forward(), pt.forward()
    agree = rel_err(y_tg, y_pt)
    rows.append(_row(case, "fwd", agree, tol, timed({"tinygan": tg.forward, "torch": pt.forward}, agree),
                     ceilings))

    # backward: every input gradient must agree; timed on a retained graph
    y_tg, y_pt = tg.forward(), pt.forward()
    state = rng.bit_generator.state
    g_tg = _gradient_for(y_tg, rng, fw, "tinygan")
    rng.bit_generator.state = state                   # the same draw for both
    g_pt = _gradient_for(y_pt, rng, fw, "torch")
    back_tg = _backward_callable(y_tg, tg.leaves, g_tg, fw, "tinygan")
    back_pt = _backward_callable(y_pt, pt.leaves, g_pt, fw, "torch")
    agree = max(rel_err(a, b) for a, b in zip(back_tg(), back_pt()))
    rows.append(_row(case, "bwd", agree, tol, timed({"tinygan": back_tg, "torch": back_pt}, agree), ceilings))
    return rows


def _case_spec(case: Case, cfg: Config, passes) -> dict:
    fields = ("image_size", "batch", "nz", "ngf", "ndf", "nc")
    return {"config": {k: getattr(cfg, k) for k in fields}, "layer": case.layer, "op": case.op,
            "passes": list(passes)}


def run_kernels(configs: list[Config], device: str, budget, ceilings: dict, tf32: bool = False,
                time_it: bool = True, log: Callable[[str], None] | None = None, threads: int | None = None,
                isolated: bool | None = None) -> list[dict]:
    """Every kernel row of every configuration (agreement checked before timing).

    ``isolated`` (default: on the CPU) times each framework in its own
    processes (:mod:`tinygan.benchmark.isolated`), after the agreement checks
    made here; otherwise both are timed in this process, in alternating blocks.
    """
    fw = _Frameworks(device)
    tol = KERNEL_TOL_TF32 if tf32 else KERNEL_TOL
    isolated = (device == "cpu") if isolated is None else isolated
    rows, todo = [], []
    for cfg in configs:
        for case in kernel_cases(cfg):
            case_tol = tol if case.bound == "gemm" else KERNEL_TOL
            new = run_case(case, fw, budget, ceilings, tol=case_tol, time_it=time_it and not isolated)
            rows += [(case, r) for r in new]
            ok = [r["pass"] for r in new if r["ok"]]
            if ok:
                todo.append((case, cfg, ok))
            if log:
                for r in new:
                    ms = (f"{r['tinygan']['median_ms']:.3f} vs {r['torch']['median_ms']:.3f} ms" if "tinygan" in r
                          else "" if r["ok"] else "DISAGREES: not timed")
                    log(f"  {r['config']:>10} {r['layer']:<22} {r['op']:<16} {r['pass']:<4} "
                        f"err {r['agree']:.1e} {ms}")
    if time_it and isolated and todo:
        if log:
            log(f"  timing {sum(len(p) for _, _, p in todo)} rows, each framework in its own processes")
        timings = I.time_kernels([_case_spec(c, cfg, p) for c, cfg, p in todo], budget, threads or 1, log)
        out = []
        for case, r in rows:
            t = timings.get((r["config"], r["layer"], r["op"], r["pass"]))
            if t is not None and r["ok"]:
                r = _row(case, r["pass"], r["agree"], r["tol"], t, ceilings)
            out.append(r)
        return out
    return [r for _, r in rows]


def _timing_child(spec: dict) -> dict:
    """Body of a timing child (:mod:`tinygan.benchmark.isolated`): one framework's block of every kernel row."""
    budget = I.Budget(**spec["budget"])
    fw = _Frameworks("cpu")
    out, cases = {}, {}
    for c in spec["cases"]:
        cfg = Config(**c["config"])
        if cfg not in cases:
            cases[cfg] = kernel_cases(cfg)
        case = next(k for k in cases[cfg] if k.layer == c["layer"] and k.op == c["op"])
        for pass_, fn in pass_callables(case, fw, spec["framework"]):
            if pass_ in c["passes"]:
                out[json.dumps([case.config, case.layer, case.op, pass_])] = I.block(fn, budget, spec["rounds"])
    return {"samples": out}


if __name__ == "__main__":   # a timing child: python -m tinygan.benchmark.kernels '{"mode": "kernels", ...}'
    I.child_main(__name__, sys.argv, _timing_child)
