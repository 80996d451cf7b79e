"""One whole DCGAN training iteration, tinygan against PyTorch, from identical weights and data.

The recipe is the trainer's (:func:`tinygan.gan.steps.d_step` then
:func:`tinygan.gan.steps.g_step`, which tinygan's side calls) with the DCGAN
settings (and PyTorch's ``examples/dcgan/main.py``), mirrored in PyTorch:

1. fake = G(z)
2. (1) update D: maximise log D(x) + log(1 - D(G(z))), i.e. minimise
   ``softplus(-D(x)).mean() + softplus(D(fake.detach())).mean()``; Adam step.
3. (2) update G: maximise log D(G(z)), i.e. minimise ``softplus(-D(fake)).mean()``
   on the *same* fake batch, with D's parameters set ``requires_grad=False``
   (they are constants of this step); Adam step.

Adam(lr=2e-4, betas=(0.5, 0.999)) for both nets; batch norm in training mode.
The PyTorch mirror is built layer by layer from the tinygan model, so the
``state_dict`` keys match and ``G.load_state_dict(torch_G.state_dict())``
starts tinygan from PyTorch's initial weights.  Both sides consume the same
pre-drawn real batches and noise.

:func:`check_parity` compares both nets' losses and gradients from identical
weights (the probe), then runs ``iters`` iterations in both and compares the
losses, every parameter and the running statistics (:class:`Tolerance`); only
then is the step timed (:func:`time_steps`).  :func:`peak_memory` measures the memory of one
step: on the CPU in a fresh child process per framework (the RSS high-water
mark above the resident state, glibc's mmap threshold lowered so freed
buffers leave the RSS), on the GPU from the allocators' statistics.

PyTorch is imported inside functions only.
"""
from __future__ import annotations

import dataclasses
import gc
import itertools
import json
import os
import subprocess
import sys

import numpy as np

from tinygan import optim
from tinygan.autograd import Tensor
from tinygan.backend import xp_for
from tinygan.benchmark import isolated as I
from tinygan.benchmark.kernels import Config, build_tinygan, step_gflop, to_host
from tinygan.benchmark.timing import clock_for, measure_pair
from tinygan.gan.losses import NonSaturating
from tinygan.gan.recipes import DCGAN
from tinygan.gan.steps import d_step, g_step

LR, BETAS = DCGAN.lr, DCGAN.betas          # the DCGAN paper's recipe, for both frameworks
F64_BATCH = 8          # the float64 parity run uses the configuration's layers at this batch


@dataclasses.dataclass
class Tolerance:
    """Whole-step parity bounds (defaults: float32).  Two kinds of comparison:

    * **probe**, from identical weights: the D step's loss and D's gradients,
      then the G step's loss and G's gradients through the same (not yet
      updated) D, on the first batch, with no optimizer step (batch-norm
      running statistics are restored afterwards).  This is where "the same
      computation" is checked tightly in float32; rare pre-activations within
      rounding of a ReLU/LeakyReLU kink land on different sides
      (``shared/perf-notes.md``), hence the per-element bound;
    * **drift**, after ``iters`` iterations of the recipe: the losses of every
      iteration, all weights and the running statistics.  In float32 these
      are sanity bounds only: the two frameworks sum convolutions in
      different orders and training amplifies rounding, chiefly through
      Adam's first steps, which move each weight by about ``lr * sign(g)`` so
      that an element whose gradient is within rounding of zero moves the
      other way.  Measured at 64x64, batch 64: after D's first Adam step G's
      gradients already differ by 1-2% (relative L2), and after ten
      iterations the losses by up to 3e-2, while the float64 run of the same
      code agrees to 1e-14.

    :meth:`float64` bounds everything by 1e-9: a float64 run (the
    configuration's layers at a small batch) shows the whole recipe over
    several iterations (Adam state, running statistics, the frozen D in the G
    step, the reused fake batch) is the same in both.
    """

    probe_loss_rel: float = 1e-4       # |loss_tg - loss_pt| / |loss_pt| from identical weights
    # ||g_tg - g_pt|| / ||g_pt|| over all of G's (D's) parameter gradients.  Measured 3.4e-3 for the 64x64
    # DCGAN at batch 128 (more pre-activations within rounding of a ReLU kink than at batch 64, 1.8e-3),
    # while the same step in float64 agrees to 6e-13: rounding, not a different computation.
    probe_grad_rel_l2: float = 5e-3
    probe_grad_max_rel: float = 5e-2   # max |g_tg - g_pt| / max |g_pt| per tensor (rare kink elements)
    loss_rel: float = 1e-1             # drift: losses of every iteration
    weight_rel_l2: float = 5e-2        # drift: ||w_tg - w_pt|| / ||w_pt|| over G's (D's) parameters at the end
    weight_max_abs: float = 1e-2       # drift: max |w_tg - w_pt| over every parameter element (Adam moves
                                       #        each by about lr = 2e-4 per iteration at most)
    buffer_rel_l2: float = 1e-1        # drift: the same as weight_rel_l2 for the running means and variances

    @classmethod
    def float64(cls) -> "Tolerance":
        """Float64 runs: identical computations agree to rounding, every bound 1e-9."""
        return cls(*([1e-9] * len(dataclasses.fields(cls))))

    @classmethod
    def tf32(cls) -> "Tolerance":
        """Looser bounds when both frameworks use TF32 (10-bit mantissa) GEMMs and convolutions."""
        return cls(probe_loss_rel=1e-2, probe_grad_rel_l2=3e-2, probe_grad_max_rel=2e-1, loss_rel=2e-1,
                   weight_rel_l2=1e-1, weight_max_abs=2e-2, buffer_rel_l2=2e-1)


# ---------------------------------------------------------------------------- data

def make_data(cfg: Config, n_batches: int = 4, seed: int = 0) -> tuple[list, list]:
    """``n_batches`` real batches (uniform in [-1, 1]) and noise batches z ~ N(0, 1), host float32."""
    rng = np.random.default_rng(seed)
    reals = [rng.uniform(-1, 1, (cfg.batch, cfg.channels, cfg.image_size, cfg.image_size)).astype(np.float32)
             for _ in range(n_batches)]
    noises = [rng.standard_normal((cfg.batch, cfg.nz, 1, 1), dtype=np.float32) for _ in range(n_batches)]
    return reals, noises


# ---------------------------------------------------------------------------- tinygan side

class _GradientsOnly:
    """An optimizer stand-in for the probe: clears gradients and keeps them, but never moves a weight."""

    def __init__(self, params):
        self.param_groups = [{"params": list(params)}]

    def zero_grad(self) -> None:
        for p in self.param_groups[0]["params"]:
            p.grad = None

    def step(self) -> None:
        pass


class TinyganSide:
    """tinygan's G, D, optimizers and the training iteration."""

    name = "tinygan"

    def __init__(self, cfg: Config, device: str = "cpu", state: dict | None = None, dtype=np.float32):
        self.cfg, self.device, self.dtype = cfg, device, np.dtype(dtype)
        self.xp = xp_for(device)
        self.G, self.D = build_tinygan(cfg)
        if state is not None:
            self.G.load_state_dict(state["G"])
            self.D.load_state_dict(state["D"])
        self.G.to(device, dtype=self.dtype)
        self.D.to(device, dtype=self.dtype)
        self.G.train()
        self.D.train()
        self.opt_g = optim.Adam(self.G.parameters(), lr=LR, betas=BETAS)
        self.opt_d = optim.Adam(self.D.parameters(), lr=LR, betas=BETAS)
        self.loss = NonSaturating()
        self.reals = self.noises = []

    def set_data(self, reals, noises) -> None:
        self.reals = [Tensor(self.xp.asarray(r, dtype=self.dtype)) for r in reals]
        self.noises = [Tensor(self.xp.asarray(z, dtype=self.dtype)) for z in noises]

    def step(self, i: int):
        """One iteration on batch ``i`` (cyclic); returns the device scalars (Loss_D, Loss_G)."""
        real, z = self.reals[i % len(self.reals)], self.noises[i % len(self.noises)]
        fake = self.G(z)                                                          # (N, nc, S, S)
        d = d_step(self.D, self.opt_d, self.loss, real, fake, stats=False)        # (1) update D
        g = g_step(self.D, self.opt_g, self.loss, fake, stats=False)              # (2) update G, same fake batch
        return d["Loss_D"], g["Loss_G"]

    def probe(self, i: int = 0) -> tuple[list, dict]:
        """Losses and gradients of both steps from the current weights, without updating them.

        D's gradients of the D-step loss, then G's gradients of the G-step loss
        through the same D (frozen); the running statistics the forward passes
        touch are restored.  Returns ``([Loss_D, Loss_G], {"G": grads, "D": grads})``.
        """
        saved = self.state_dicts()
        real, z = self.reals[i % len(self.reals)], self.noises[i % len(self.noises)]
        fake = self.G(z)
        # The trainer's two steps with optimizers that keep the gradients but move no weight.
        d = d_step(self.D, _GradientsOnly(self.D.parameters()), self.loss, real, fake, stats=False)
        grads = {"D": {k: to_host(p.grad) for k, p in self.D.named_parameters()}}
        g = g_step(self.D, _GradientsOnly(self.G.parameters()), self.loss, fake, stats=False)
        grads["G"] = {k: to_host(p.grad) for k, p in self.G.named_parameters()}
        self.G.zero_grad()
        self.D.zero_grad()
        self.G.load_state_dict(saved["G"])
        self.D.load_state_dict(saved["D"])
        return [float(to_host(d["Loss_D"])), float(to_host(g["Loss_G"]))], grads

    def state_dicts(self) -> dict:
        return {"G": self.G.state_dict(), "D": self.D.state_dict()}

    def synchronize(self) -> None:
        if self.device != "cpu":
            self.xp.cuda.get_current_stream().synchronize()


# ---------------------------------------------------------------------------- PyTorch side

def _torch_layer(torch, m):
    """The ``torch.nn`` twin of one tinygan layer."""
    nn = torch.nn
    kind = type(m).__name__
    if kind in ("Conv2d", "ConvTranspose2d"):
        cls = getattr(nn, kind)
        return cls(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding, bias=m.bias is not None)
    if kind == "BatchNorm2d":
        return nn.BatchNorm2d(m.num_features, eps=m.eps, momentum=m.momentum)
    if kind == "LeakyReLU":
        return nn.LeakyReLU(m.negative_slope, inplace=True)
    if kind == "ReLU":
        return nn.ReLU(True)
    if kind == "Tanh":
        return nn.Tanh()
    raise ValueError(f"no PyTorch twin for layer {kind}")


def torch_mirror(model, kind: str):
    """A ``torch.nn.Module`` with ``main`` = the same layers as tinygan's ``model.main``.

    ``kind`` "G": input z (N, nz) is viewed as (N, nz, 1, 1); "D": the output
    (N, 1, 1, 1) is viewed as logits (N,).
    """
    import torch

    class Mirror(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.main = torch.nn.Sequential(*[_torch_layer(torch, m) for m in model.main])

        def forward(self, x):
            if kind == "G":
                return self.main(x.reshape(x.shape[0], -1, 1, 1))
            return self.main(x).reshape(-1)

    return Mirror()


def torch_weights_init(m) -> None:
    """``weights_init`` of PyTorch's DCGAN example: conv ~ N(0, 0.02), BN weight ~ N(1, 0.02), bias 0."""
    import torch
    name = type(m).__name__
    if name.find("Conv") != -1:
        torch.nn.init.normal_(m.weight.data, 0.0, 0.02)
    elif name.find("BatchNorm") != -1:
        torch.nn.init.normal_(m.weight.data, 1.0, 0.02)
        torch.nn.init.constant_(m.bias.data, 0)


class TorchSide:
    """PyTorch's G, D (mirrors of tinygan's), optimizers and the same iteration."""

    name = "torch"

    def __init__(self, cfg: Config, device: str = "cpu", seed: int = 0, dtype=np.float32):
        import torch
        self.torch = torch
        self.cfg, self.device, self.dtype = cfg, device, np.dtype(dtype)
        self.tdtype = torch.float64 if self.dtype == np.float64 else torch.float32
        self.tdev = "cuda" if device != "cpu" else "cpu"
        tg_G, tg_D = build_tinygan(cfg)
        torch.manual_seed(seed)
        self.G = torch_mirror(tg_G, "G")
        self.D = torch_mirror(tg_D, "D")
        self.G.apply(torch_weights_init)
        self.D.apply(torch_weights_init)
        self.G.to(self.tdev, dtype=self.tdtype).train()            # initialised in float32 either way
        self.D.to(self.tdev, dtype=self.tdtype).train()
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=LR, betas=BETAS)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=LR, betas=BETAS)
        self.reals = self.noises = []

    def initial_state(self) -> dict:
        """Host copies of the initial ``state_dict``s, for tinygan to load."""
        return {k: {n: v.detach().cpu().numpy().copy() for n, v in m.state_dict().items()}
                for k, m in (("G", self.G), ("D", self.D))}

    def set_data(self, reals, noises) -> None:
        self.reals = [self.torch.from_numpy(r).to(self.tdev, dtype=self.tdtype) for r in reals]
        self.noises = [self.torch.from_numpy(z).to(self.tdev, dtype=self.tdtype) for z in noises]

    def step(self, i: int):
        F = self.torch.nn.functional
        G, D = self.G, self.D
        real, z = self.reals[i % len(self.reals)], self.noises[i % len(self.noises)]
        fake = G(z)
        # (1) Update D: maximise log D(x) + log(1 - D(G(z)))
        err_d = F.softplus(-D(real)).mean() + F.softplus(D(fake.detach())).mean()
        self.opt_d.zero_grad()
        err_d.backward()
        self.opt_d.step()
        # (2) Update G: maximise log D(G(z)) on the same fake batch; D's weights are constants here
        for p in D.parameters():
            p.requires_grad_(False)
        try:
            err_g = F.softplus(-D(fake)).mean()
            self.opt_g.zero_grad()
            err_g.backward()
        finally:
            for p in D.parameters():
                p.requires_grad_(True)
        self.opt_g.step()
        return err_d.detach(), err_g.detach()

    def probe(self, i: int = 0) -> tuple[list, dict]:
        """The same as :meth:`TinyganSide.probe`."""
        F = self.torch.nn.functional
        G, D = self.G, self.D
        saved = {k: {n: v.clone() for n, v in m.state_dict().items()} for k, m in (("G", G), ("D", D))}
        real, z = self.reals[i % len(self.reals)], self.noises[i % len(self.noises)]
        fake = G(z)
        err_d = F.softplus(-D(real)).mean() + F.softplus(D(fake.detach())).mean()
        D.zero_grad()
        err_d.backward()
        grads = {"D": {k: to_host(p.grad) for k, p in D.named_parameters()}}
        for p in D.parameters():
            p.requires_grad_(False)
        try:
            err_g = F.softplus(-D(fake)).mean()
            G.zero_grad()
            err_g.backward()
        finally:
            for p in D.parameters():
                p.requires_grad_(True)
        grads["G"] = {k: to_host(p.grad) for k, p in G.named_parameters()}
        G.zero_grad()
        D.zero_grad()
        G.load_state_dict(saved["G"])
        D.load_state_dict(saved["D"])
        return [float(err_d.detach()), float(err_g.detach())], grads

    def state_dicts(self) -> dict:
        return {k: {n: v.detach().cpu().numpy() for n, v in m.state_dict().items()}
                for k, m in (("G", self.G), ("D", self.D))}

    def synchronize(self) -> None:
        if self.device != "cpu":
            self.torch.cuda.synchronize()


# ---------------------------------------------------------------------------- setup, parity, timing

def build_pair(cfg: Config, device: str = "cpu", seed: int = 0, n_batches: int = 4, dtype=np.float32):
    """(tinygan side, PyTorch side) with identical initial weights and the same data."""
    pt = TorchSide(cfg, device, seed, dtype)
    tg = TinyganSide(cfg, device, state=pt.initial_state(), dtype=dtype)
    reals, noises = make_data(cfg, n_batches, seed)
    tg.set_data(reals, noises)
    pt.set_data(reals, noises)
    return tg, pt


def _rel_l2(pairs) -> float:
    """||a - b|| / ||b|| over a list of (a, b) array pairs taken as one vector."""
    num = sum(float(np.sum((a - b) ** 2)) for a, b in pairs)
    den = sum(float(np.sum(b * b)) for _, b in pairs)
    return (num / den) ** 0.5 if den > 0 else num ** 0.5


def _compare_nets(got: dict, ref: dict, names: dict) -> dict:
    """Per network: relative L2 over the tensors in ``names[net]``; worst per-tensor max-abs and max-rel."""
    out = {"rel_l2": {}, "max_abs": 0.0, "max_abs_at": "", "max_rel": 0.0, "max_rel_at": ""}
    for net in ("G", "D"):
        pairs = []
        for key in names[net]:
            a = np.asarray(got[net][key], dtype=np.float64)
            b = np.asarray(ref[net][key], dtype=np.float64)
            pairs.append((a, b))
            if not b.size:
                continue
            mx = float(np.max(np.abs(a - b)))
            rel = mx / max(float(np.max(np.abs(b))), 1e-30)
            if mx > out["max_abs"]:
                out["max_abs"], out["max_abs_at"] = mx, f"{net}.{key}"
            if rel > out["max_rel"]:
                out["max_rel"], out["max_rel_at"] = rel, f"{net}.{key}"
        out["rel_l2"][net] = _rel_l2(pairs)
    return out


def check_parity(tg: TinyganSide, pt: TorchSide, iters: int = 10, tol: Tolerance | None = None) -> dict:
    """The probe from identical weights, then ``iters`` iterations in both (see :class:`Tolerance`).

    Returns the measured differences next to their bounds, which failed, and ``ok``.
    """
    tol = tol or Tolerance()
    (loss_tg, grads_tg), (loss_pt, grads_pt) = tg.probe(0), pt.probe(0)
    params = {n: [k for k, _ in getattr(pt, n).named_parameters()] for n in ("G", "D")}
    grads = _compare_nets(grads_tg, grads_pt, params)
    losses = []
    for i in range(iters):
        a, b = tg.step(i), pt.step(i)
        losses.append([(float(to_host(x)), float(to_host(y))) for x, y in zip(a, b)])
    ws_tg, ws_pt = tg.state_dicts(), pt.state_dicts()
    buffers = {n: [k for k in ws_pt[n] if k.endswith(("running_mean", "running_var"))] for n in ("G", "D")}
    weights = _compare_nets(ws_tg, ws_pt, params)
    bufs = _compare_nets(ws_tg, ws_pt, buffers)
    measured = {
        "probe_loss_rel": max(abs(x - y) / max(abs(y), 1e-12) for x, y in zip(loss_tg, loss_pt)),
        "probe_grad_rel_l2": max(grads["rel_l2"].values()),
        "probe_grad_max_rel": grads["max_rel"],
        "loss_rel": max((abs(x - y) / max(abs(y), 1e-12) for it in losses for x, y in it), default=0.0),
        "weight_rel_l2": max(weights["rel_l2"].values()),
        "weight_max_abs": weights["max_abs"],
        "buffer_rel_l2": max(bufs["rel_l2"].values()),
    }
    failed = [k for k, v in measured.items() if not v <= getattr(tol, k)]
    return {"iters": iters, "dtype": str(np.dtype(tg.dtype)), "batch": tg.cfg.batch, **measured,
            "ok": not failed, "failed": failed,
            "where": {"probe_grad_max_rel": grads["max_rel_at"], "weight_max_abs": weights["max_abs_at"]},
            "by_net": {"probe_grad_rel_l2": grads["rel_l2"], "weight_rel_l2": weights["rel_l2"],
                       "buffer_rel_l2": bufs["rel_l2"]},
            "tol": dataclasses.asdict(tol), "losses_first_last": [losses[0], losses[-1]] if losses else []}


def time_steps(tg: TinyganSide, pt: TorchSide, budget) -> dict:
    """Median (and spread) of one iteration in each framework, timed in alternating blocks in this process.

    The GPU's method (and ``--same-process`` on the CPU); the CPU default is
    :func:`tinygan.benchmark.isolated.time_steps`, one process per block.
    """
    counters = {"tinygan": itertools.count(), "torch": itertools.count()}
    fns = {"tinygan": (lambda: tg.step(next(counters["tinygan"])), clock_for("tinygan", tg.device)),
           "torch": (lambda: pt.step(next(counters["torch"])), clock_for("torch", pt.device))}
    return measure_pair(fns, budget)


# ---------------------------------------------------------------------------- memory

def _proc_status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def _rss_step_peak(side, warmup: int = 2) -> dict:
    """In this process: resident MiB before a step, process peak MiB, and the step's peak above resident."""
    for i in range(warmup):
        side.step(i)
    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w") as f:     # reset VmHWM to the current RSS
            f.write("5")
    except OSError:
        pass
    base = _proc_status_kb("VmRSS")
    side.step(warmup)
    hwm = _proc_status_kb("VmHWM")
    return {"resident_mib": base / 1024, "peak_mib": hwm / 1024, "step_peak_mib": max(hwm - base, 0) / 1024,
            "method": "RSS high-water mark above the resident set (fresh process, MALLOC_MMAP_THRESHOLD_=65536)"}


def _gpu_step_peak(side, warmup: int = 2) -> dict:
    """The allocator's peak above the live bytes before one step (CuPy pool / torch caching allocator)."""
    for i in range(warmup):
        side.step(i)
    side.synchronize()
    if side.name == "torch":
        torch = side.torch
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        side.step(warmup)
        side.synchronize()
        peak = torch.cuda.max_memory_allocated()
        method = "torch.cuda.max_memory_allocated above memory_allocated before the step"
    else:
        pool = side.xp.get_default_memory_pool()
        pool.free_all_blocks()
        base = pool.used_bytes()
        side.step(warmup)
        side.synchronize()
        peak = pool.total_bytes()
        method = "CuPy pool size after one step from an emptied pool, above the live bytes before it"
    mib = 1 << 20
    return {"resident_mib": base / mib, "peak_mib": peak / mib, "step_peak_mib": max(peak - base, 0) / mib,
            "method": method}


def _memory_child(spec: dict) -> dict:
    """Body of the child process: build one side alone, set threads, measure one step."""
    cfg = Config(**spec["config"])
    if spec["framework"] == "torch":
        import torch
        torch.set_num_threads(spec["threads"])
        side = TorchSide(cfg, "cpu")
    else:
        side = TinyganSide(cfg, "cpu")
    side.set_data(*make_data(cfg, 3))
    try:
        from threadpoolctl import threadpool_limits
        with threadpool_limits(spec["threads"], user_api="blas"):
            return _rss_step_peak(side)
    except ImportError:
        return _rss_step_peak(side)


def peak_memory(cfg: Config, device: str, threads: int, pair=None) -> dict:
    """Peak memory of one step for both frameworks: ``{"tinygan": {...}, "torch": {...}}`` (MiB)."""
    if device != "cpu":
        tg, pt = pair
        return {"tinygan": _gpu_step_peak(tg), "torch": _gpu_step_peak(pt)}
    out = {}
    fields = ("image_size", "batch", "nz", "ngf", "ndf", "nc")
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "OMP_NUM_THREADS": str(threads),
           "OPENBLAS_NUM_THREADS": str(threads)}
    for framework in ("tinygan", "torch"):
        spec = {"config": {k: getattr(cfg, k) for k in fields}, "framework": framework, "threads": threads}
        proc = subprocess.run([sys.executable, "-m", "tinygan.benchmark.step", json.dumps(spec)],
                              capture_output=True, text=True, env=env, timeout=900)
        if proc.returncode != 0:
            out[framework] = {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"}
        else:
            out[framework] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


# ---------------------------------------------------------------------------- driver

def run_step(cfg: Config, device: str, budget, threads: int, tf32: bool = False, parity_iters: int = 10,
             f64_iters: int = 3, memory: bool = True, time_it: bool = True, ceilings: dict | None = None,
             isolated: bool | None = None, log=None) -> dict:
    """Parity (float32, and float64 when ``f64_iters``), then timing and memory of one configuration.

    Returns one result row (a dict).  A configuration whose float32 parity
    fails is not timed: the time would not be for the same computation.
    ``isolated`` (default: on the CPU) times each framework in its own
    processes, from the initial weights both started the parity run with.
    """
    isolated = (device == "cpu") if isolated is None else isolated
    row = {"config": cfg.name, "image_size": cfg.image_size, "batch": cfg.batch, "gflop": step_gflop(cfg)}
    if f64_iters and not tf32:                    # the same layers at a small batch: float64 is slow
        tg64, pt64 = build_pair(dataclasses.replace(cfg, batch=min(cfg.batch, F64_BATCH)), device,
                                dtype=np.float64)
        row["parity_f64"] = check_parity(tg64, pt64, f64_iters, Tolerance.float64())
        del tg64, pt64
        gc.collect()
    tg, pt = build_pair(cfg, device)
    initial = pt.initial_state()
    row["parity"] = check_parity(tg, pt, parity_iters, Tolerance.tf32() if tf32 else Tolerance())
    if time_it and row["parity"]["ok"]:
        t = I.time_steps(cfg, initial, budget, threads, log) if isolated else time_steps(tg, pt, budget)
        row["timing"] = "one process per framework, alternating" if isolated else "one process, alternating blocks"
        row["tinygan"], row["torch"] = t["tinygan"].as_dict(), t["torch"].as_dict()
        row["ratio"] = t["tinygan"].median_ms / t["torch"].median_ms
        row["tinygan_gflops"] = row["gflop"] / (t["tinygan"].median_ms * 1e-3)
        row["torch_gflops"] = row["gflop"] / (t["torch"].median_ms * 1e-3)
        if ceilings and ceilings.get("tinygan_gemm_gflops"):
            row["ceiling_share"] = 100.0 * row["tinygan_gflops"] / ceilings["tinygan_gemm_gflops"]
    if memory:
        row["memory"] = peak_memory(cfg, device, threads, pair=(tg, pt))
    return row


def _timing_child(spec: dict) -> dict:
    """Body of a timing child (:mod:`tinygan.benchmark.isolated`): one framework's block of iterations."""
    cfg = Config(**spec["config"])
    budget = I.Budget(**spec["budget"])
    saved = np.load(spec["state"])
    state = {"G": {}, "D": {}}
    for key in saved.files:
        net, name = key.split("/", 1)
        state[net][name] = saved[key]
    if spec["framework"] == "torch":
        import torch
        side = TorchSide(cfg, "cpu")
        for net in ("G", "D"):
            getattr(side, net).load_state_dict({k: torch.from_numpy(v) for k, v in state[net].items()})
    else:
        side = TinyganSide(cfg, "cpu", state=state)
    side.set_data(*make_data(cfg))
    counter = itertools.count()
    for _ in range(3):                     # the parent's parity iterations warmed its copy up likewise
        side.step(next(counter))
    return {"samples": I.block(lambda: side.step(next(counter)), budget, spec["rounds"])}


if __name__ == "__main__":
    # python -m tinygan.benchmark.step '{"config": ..., ...}': the memory child, or (with "mode": "step")
    # a timing child of tinygan.benchmark.isolated
    _spec = json.loads(sys.argv[1])
    if _spec.get("mode") == "step":
        I.child_main(__name__, sys.argv, _timing_child)
    else:
        print(json.dumps(_memory_child(_spec)))
