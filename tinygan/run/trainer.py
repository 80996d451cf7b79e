"""The trainer: a run's networks, optimizers, data and random state, built from a :class:`TrainConfig`.

One *step* is one generator update, preceded by ``n_critic`` discriminator
(critic) updates, each on a fresh real batch (PyTorch's ``examples/dcgan``
and the papers' algorithms):

    (1) update D: maximise log D(x) + log(1 - D(G(z)))      tinygan.gan.steps.d_step
    (2) update G: maximise log D(G(z))                      tinygan.gan.steps.g_step

with the chosen loss's objectives and its paper's recipe
(:data:`tinygan.gan.recipes.RECIPES`; DCGAN: Adam, lr 2e-4, betas (0.5, 0.999)).
Everything random the loop draws comes from its own NumPy generator (noise,
penalty draws) or from a function of ``(seed, position)`` (data order), and
all of it is saved in the checkpoint, so a resumed run continues bit for bit
on the CPU.  The trainer writes no files: :mod:`tinygan.run.loop` runs it
and keeps the run folder.
"""
from __future__ import annotations

import contextlib
import warnings
from typing import Any

import numpy as np

from tinygan import optim
from tinygan import random as _random
from tinygan.autograd import Tensor, no_grad
from tinygan.functional import sync_batch_norm
from tinygan.backend import get_array_module, normalize_device, to_device, xp_for
from tinygan.data import sample_toy
from tinygan.gan.augment import DiffAugment
from tinygan.gan.ema import ema_copy, ema_update_
from tinygan.gan.losses import get_loss
from tinygan.gan.models import build_gan
from tinygan.gan.recipes import recipe_for
from tinygan.gan.sampling import generate, grid_inputs
from tinygan.gan.steps import d_step, g_step
from tinygan.run.checkpoint import CheckpointError, CheckpointFile, save_checkpoint
from tinygan.run.config import TrainConfig
from tinygan.run.data import DataSource
from tinygan.run.distributed import (AveragedOptimizer, Communicator, RankSlice, broadcast_module_, rank_rows)

__all__ = ["Trainer", "build_networks", "load_generator"]


def build_networks(config: TrainConfig, image_shape, data_dim, num_classes: int):
    """(G, D) for a run, on the host, initialised from the global generator (``--pack M``: D on packs of M)."""
    return build_gan(config.model, image_shape=image_shape, data_dim=data_dim, nz=config.nz, ngf=config.ngf,
                     ndf=config.ndf, num_classes=num_classes, loss=config.loss,
                     num_categories=config.num_categories, num_continuous=config.num_continuous,
                     pack=config.pack, spectral_norm=config.spectral_norm, mbstd=config.mbstd)


def make_optimizer(params, config: TrainConfig):
    """The recipe's optimizer for ``params`` with the run's lr and betas (both networks get one each)."""
    if recipe_for(config.loss).optimizer == "rmsprop":
        return optim.RMSprop(params, lr=config.lr)
    return optim.Adam(params, lr=config.lr, betas=(config.beta1, config.beta2))


class Trainer:
    """Builds data, models and optimizers from ``config`` (validated, recipe filled in), then steps."""

    def __init__(self, config: TrainConfig, comm: Communicator | None = None):
        """``comm``: a distributed run's communicator (:mod:`tinygan.run.distributed`), None for one process."""
        config = TrainConfig(**config.to_dict()).validate().resolved()
        self.config = c = config
        self.device = normalize_device(c.device)
        self.xp = xp_for(self.device)                  # a clear error here if 'cuda' is unavailable
        self.loss = get_loss(c.loss)
        self.recipe = recipe_for(c.loss)
        self.data = DataSource(c)                     # loads (or fails on) the data before any model exists

        _random.manual_seed(c.seed)                    # the weights' initialisation draws from the global generator
        self.rng = np.random.default_rng([c.seed, 0])  # the loop's noise: z, labels, codes, GP's eps
        self.comm = comm
        if comm is not None:                           # each rank: its rows of the global batch's draws
            self.rng = RankSlice(self.rng, comm)
        # DiffAugment's draws: a stream of their own (the noise is the same with and without it), checkpointed.
        self.augment = DiffAugment(c.diffaugment, np.random.default_rng([c.seed, 4])) if c.diffaugment else None
        if self.augment is not None and comm is not None:   # each rank: its rows of the global batch's draws
            self.augment.generator = RankSlice(self.augment.generator, comm)
        if c.unroll and (self.data.image_shape is not None and c.model != "mlp"):
            warnings.warn(f"--unroll {c.unroll} with --model {c.model} on images: every generator step runs "
                          f"{c.unroll} differentiable critic steps (double backward through the convolutions), "
                          f"roughly {1 + 2 * c.unroll}x the cost of a plain step; the paper unrolled small "
                          "networks", stacklevel=2)
        self.G, self.D = build_networks(c, self.data.image_shape, self.data.data_dim, self.data.num_classes)
        self.G.to(self.device)
        self.D.to(self.device)
        self.conditional = getattr(self.G, "conditional", False)
        self.infogan = hasattr(self.D, "q_parameters")
        # InfoGAN's Q head shares D's body but is trained with G (the MI term is in G's loss).
        q_ids = {id(p) for p in self.D.q_parameters()} if self.infogan else set()
        d_params = [p for p in self.D.parameters() if id(p) not in q_ids]
        g_params = list(self.G.parameters()) + [p for p in self.D.parameters() if id(p) in q_ids]
        self.opt_d, self.opt_g = make_optimizer(d_params, c), make_optimizer(g_params, c)
        if comm is not None:                           # step() first averages the gradients over the ranks
            self.opt_d, self.opt_g = AveragedOptimizer(self.opt_d, comm), AveragedOptimizer(self.opt_g, comm)
        self.G_ema = ema_copy(self.G) if c.ema else None   # the average of G's weights that samples are drawn from

        self.step = 0                                  # generator updates done
        self.position = (0, 0)                         # (epoch, batch index) of the next real batch
        self.fixed, self.grid_cols = grid_inputs(self.G, c.num_samples, np.random.default_rng([c.seed, 1]),
                                                 exact=False)

    # ------------------------------------------------------------------ budget
    def total_steps(self) -> int:
        c = self.config
        if c.dry_run:
            return 2
        if c.epochs is not None:              # validate() refuses --epochs for data that are drawn
            return max(1, int(c.epochs * self.data.batches_per_epoch) // c.n_critic)
        return c.steps                        # resolved(): --steps, else RUN_DEFAULTS' budget

    # ------------------------------------------------------------------ one step
    def _next_real(self) -> tuple[Tensor, np.ndarray]:
        x, y, self.position = self.data.batch(self.position)
        if self.comm is not None:                            # this rank's rows of the global batch
            rows = rank_rows(len(x), self.comm)
            x, y = x[rows], y[rows]
        return Tensor(to_device(x, self.device)), y          # labels stay on the host until they join G's inputs

    @property
    def world_size(self) -> int:
        """The number of processes training this run (1 unless ``--distributed``)."""
        return 1 if self.comm is None else self.comm.size

    def r1_gamma(self, d_step_index: int) -> float:
        """R1's weight in discriminator step ``d_step_index`` (counted from 0 over the whole run).

        With ``--r1-every K`` (lazy regularization, Karras et al. 2020, section 3.1) the penalty is
        computed on every K-th step only, weighted K x gamma, so that its average over K steps is
        gamma's; the steps in between skip R1's extra forward and double backward through D.
        """
        c = self.config
        return c.r1 * c.r1_every if c.r1 and d_step_index % c.r1_every == 0 else 0.0

    def train_step(self) -> dict:
        """One generator update preceded by ``n_critic`` critic updates; returns device scalars to log.

        On R ranks (``--distributed``) the optimizers average the gradients over
        the ranks before each update, with ``--sync-bn`` batch norm takes its
        statistics over the global batch, and ``grad_sq_D``/``grad_sq_G`` are
        those of the averaged gradients.
        """
        if self.comm is None:
            return self._train_step()
        scope = sync_batch_norm(self.comm.allreduce_sum_) if self.config.sync_bn else contextlib.nullcontext()
        with scope:
            record = self._train_step()
        for key, opt in (("grad_sq_D", self.opt_d), ("grad_sq_G", self.opt_g)):
            if key in record:
                record[key] = opt.grad_sq
        return record

    def _train_step(self) -> dict:
        """The step itself, the same on one process and on each rank."""
        c, G, D = self.config, self.G, self.D
        G.train()
        D.train()
        for i in range(c.n_critic):
            real, labels = self._next_real()                           # (N, C, H, W) in [-1, 1], (N,)
            inputs = G.sample_inputs(real.shape[0], self.rng)          # z (N, nz) [+ labels / codes]
            if self.conditional:
                inputs["labels"] = labels                              # fakes of the real batch's classes
            inputs = {k: Tensor(to_device(v, self.device)) for k, v in inputs.items()}
            # The last critic iteration keeps G's graph, so that step (2) reuses this fake batch
            # as PyTorch's example does; earlier ones need no graph through G.
            last = i == c.n_critic - 1
            with contextlib.nullcontext() if last else no_grad():
                fake = G(**inputs)                                     # (N, C, H, W)
            record = d_step(D, self.opt_d, self.loss, real, fake, labels=inputs.get("labels"),
                            gp_weight=self.recipe.gp_weight, gp_at=self.recipe.gp_at,
                            r1_gamma=self.r1_gamma(self.step * c.n_critic + i),
                            clip_value=self.recipe.clip_value, rng=self.rng, augment=self.augment)
        record.update(g_step(D, self.opt_g, self.loss, fake, real=real, labels=inputs.get("labels"), codes=inputs,
                             info_lambda=c.info_lambda if self.infogan else 0.0, augment=self.augment,
                             unroll=c.unroll, opt_d=self.opt_d))
        if self.G_ema is not None:                                      # theta_ema <- b theta_ema + (1 - b) theta
            ema_update_(self.G_ema, G, c.ema, self.step, c.ema_warmup)
        return record

    def nonfinite_state(self) -> str | None:
        """The first weight or buffer holding a NaN or infinity (``"discriminator main.2.weight"``), else None."""
        for who, net in (("generator", self.G), ("discriminator", self.D)):
            for name, t in list(net.named_parameters()) + list(net.named_buffers()):
                a = t._data if isinstance(t, Tensor) else t
                xp = get_array_module(a)
                if a.dtype.kind == "f" and not bool(xp.isfinite(a).all()):
                    return f"{who} {name}"
        return None

    # ------------------------------------------------------------------ sampling
    @property
    def sampler(self):
        """The generator samples are drawn from: the weight average with ``--ema``, else G itself."""
        return self.G if self.G_ema is None else self.G_ema

    def generate(self, inputs: dict) -> np.ndarray:
        """The sampler's output for host ``inputs``, in eval mode (batch norm uses running statistics)."""
        out = generate(self.sampler, inputs, device=self.device)
        self.G.train()
        return out

    def toy_reference(self, n: int = 1000) -> np.ndarray:
        """``n`` points of the toy target (the same ones at every frame), drawn behind the samples."""
        return sample_toy(self.config.dataset, n, np.random.default_rng([self.config.seed, 3]))

    # ------------------------------------------------------------------ checkpoints
    def save(self, path):
        """Write everything needed to continue exactly here (see :mod:`tinygan.run.checkpoint`)."""
        meta = {"step": self.step, "position": list(self.position),
                "rng": _json_state(self.rng.bit_generator.state), "global_rng": _random.get_rng_state(),
                "data": self.data.fingerprint,
                "shapes": {"image_shape": None if self.data.image_shape is None else list(self.data.image_shape),
                           "data_dim": self.data.data_dim, "num_classes": self.data.num_classes},
                "world_size": self.world_size}
        if self.augment is not None:
            meta["augment_rng"] = _json_state(self.augment.generator.bit_generator.state)
        return save_checkpoint(path, config=self.config.to_dict(), meta=meta,
                               generator=self.G.state_dict(), discriminator=self.D.state_dict(),
                               opt_g=self.opt_g.state_dict(), opt_d=self.opt_d.state_dict(), fixed=self.fixed,
                               generator_ema=None if self.G_ema is None else self.G_ema.state_dict())

    def restore(self, ck: CheckpointFile) -> None:
        """Load everything a checkpoint holds, checked against this trainer's networks and data."""
        ranks = ck.meta.get("world_size", 1)
        if ranks != self.world_size:
            raise CheckpointError(
                f"--resume: the run was trained on {ranks} process(es) and this resume runs on {self.world_size}; "
                f"resume with the same number: mpiexec -n {ranks} tinygan train --resume --distributed ..."
                + (" (or without mpiexec and --distributed)" if ranks == 1 else ""))
        saved = ck.meta.get("data")
        if saved != self.data.fingerprint:
            raise CheckpointError(
                f"--resume: the data differ from the run's: the checkpoint was trained on {_describe(saved)}, "
                f"now {_describe(self.data.fingerprint)} (check --data-dir)")
        self.G.load_state_dict(ck.state_dict("G", self.G.state_dict()))
        self.D.load_state_dict(ck.state_dict("D", self.D.state_dict()))
        if self.G_ema is not None:
            self.G_ema.load_state_dict(ck.state_dict("Gema", self.G_ema.state_dict()))
        self.opt_g.load_state_dict(ck.optimizer_state("optG", self.opt_g))
        self.opt_d.load_state_dict(ck.optimizer_state("optD", self.opt_d))
        meta = ck.meta
        step, position = meta.get("step"), meta.get("position")
        if not (isinstance(step, int) and step >= 0 and isinstance(position, list) and len(position) == 2
                and all(isinstance(v, int) and v >= 0 for v in position)):
            raise CheckpointError(f"checkpoint {ck.path}: step {step!r} / position {position!r} are malformed")
        try:
            self.rng.bit_generator.state = meta["rng"]
            if self.augment is not None:
                self.augment.generator.bit_generator.state = meta["augment_rng"]
            _random.set_rng_state(meta["global_rng"])
        except (KeyError, TypeError, ValueError) as e:
            raise CheckpointError(f"checkpoint {ck.path}: the random-number state is malformed ({e})") from None
        self.step, self.position = step, tuple(position)
        self.fixed = ck.fixed_inputs(self.fixed)

    def sync_from_root(self) -> None:
        """Every rank takes rank 0's state: weights, buffers, optimizer state, step, position, random states.

        Collective: called by every rank once all have built the trainer (and
        rank 0 has restored the checkpoint, on a resume), so the ranks start
        identical whatever each built on its own.  Weights and buffers go as
        one flat broadcast per network, the rest as host objects.
        """
        comm, root = self.comm, self.comm.rank == 0
        for net in (self.G, self.D) + (() if self.G_ema is None else (self.G_ema,)):
            broadcast_module_(net, comm)
        for opt in (self.opt_d, self.opt_g):
            state = comm.bcast(opt.state_dict() if root else None)
            if not root:
                opt.load_state_dict(state)
        host = comm.bcast((self.step, self.position, self.rng.bit_generator.state, _random.get_rng_state())
                          if root else None)
        if not root:
            self.step, self.position, self.rng.bit_generator.state, global_state = host
            _random.set_rng_state(global_state)
        if self.augment is not None:                         # DiffAugment's own generator
            state = comm.bcast(self.augment.generator.bit_generator.state if root else None)
            if not root:
                self.augment.generator.bit_generator.state = state


def _json_state(state: dict) -> dict:
    """A NumPy bit-generator state with plain ints (JSON-safe)."""
    return {k: (_json_state(v) if isinstance(v, dict) else int(v) if isinstance(v, (int, np.integer)) else v)
            for k, v in state.items()}


def _describe(fp: Any) -> str:
    if not isinstance(fp, dict):
        return "unknown data"
    count = f"{fp['count']} samples of " if "count" in fp else ""
    return f"{count}{fp.get('dataset', '?')}" + (f" (digest {fp['digest'][:12]})" if "digest" in fp else "")


def load_generator(path, device: str = "cpu"):
    """A checkpoint's generator in eval mode, its run's config and fixed inputs: ``(G, config, fixed)``.

    Reads only the generator's entries (no optimizer state is needed), each
    checked against the network that the checkpoint's validated config builds;
    for a run with ``--ema`` these are the averaged weights.
    """
    with CheckpointFile(path) as ck:
        image_shape, data_dim, num_classes = _recorded_shapes(ck)
        G, _ = build_networks(ck.config, image_shape, data_dim, num_classes)
        G.load_state_dict(ck.state_dict("Gema" if ck.config.ema else "G", G.state_dict()))
        fixed = ck.fixed_inputs(G.sample_inputs(1, np.random.default_rng(0)))
    G.to(normalize_device(device))
    G.eval()
    return G, ck.config, fixed


def _recorded_shapes(ck: CheckpointFile):
    """(image_shape, data_dim, num_classes) that the run which wrote ``ck`` built its networks for, checked."""
    shapes = ck.meta.get("shapes")
    ok = isinstance(shapes, dict)
    image_shape, data_dim, num_classes = (shapes.get(k) for k in ("image_shape", "data_dim", "num_classes")) \
        if ok else (None, None, None)
    ok = ok and isinstance(num_classes, int) and 0 <= num_classes <= 1000
    if image_shape is not None:
        ok = ok and data_dim is None and isinstance(image_shape, list) and len(image_shape) == 3 and \
            all(isinstance(v, int) for v in image_shape) and 1 <= image_shape[0] <= 4 and \
            8 <= image_shape[1] == image_shape[2] <= 256
    else:
        ok = ok and isinstance(data_dim, int) and 1 <= data_dim <= 16
    if not ok:
        raise CheckpointError(f"checkpoint {ck.path}: the recorded network shapes {shapes!r} are malformed")
    return (tuple(image_shape) if image_shape else None), data_dim, num_classes
