"""The GAN training loop: the DCGAN recipe, logging, samples and exact resume.

One *step* is one generator update, preceded by ``n_critic`` discriminator
(critic) updates, each on a fresh real batch:

    # (1) update D: maximise log D(x) + log(1 - D(G(z)))      [or the chosen loss's critic objective]
    # (2) update G: maximise log D(G(z))                      [non-saturating; or the chosen loss]

as in PyTorch's ``examples/dcgan/main.py`` and the DCGAN paper (Adam, lr 2e-4,
betas (0.5, 0.999), batch 64).  Everything random that the loop draws comes
from its own NumPy generator (noise) or from a stateless function of
``(seed, epoch)`` (data order), and all of it is saved in the checkpoint, so a
resumed run continues bit for bit on the CPU.

A run directory holds ``config.json``, ``metrics.jsonl`` (one line per step),
``samples/step_XXXXXX.png`` (the fixed noise batch every ``sample_every``
steps), ``checkpoint.npz``, and at the end ``progress.gif`` and ``losses.png``.
"""
from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from tinygan import functional as F
from tinygan import optim
from tinygan import random as _random
from tinygan.autograd import Tensor, no_grad
from tinygan.backend import normalize_device, to_device, to_numpy, xp_for
from tinygan.gan import checkpoint as ckpt
from tinygan.gan.losses import get_loss
from tinygan.nn import frozen


class NonFiniteError(RuntimeError):
    """A loss or gradient became NaN or infinite; the last good checkpoint is kept."""


@dataclasses.dataclass
class TrainConfig:
    """Every setting of a run; saved as ``config.json`` and inside each checkpoint.

    ``None`` for ``lr``, ``beta1``, ``beta2`` or ``n_critic`` means "the loss's
    paper default" (DCGAN: Adam 2e-4, (0.5, 0.999), 1; WGAN: RMSprop 5e-5, 5; ...).
    """

    model: str = "dcgan"                # dcgan | mlp | cgan | cgan-mlp | infogan
    loss: str = "nonsaturating"         # minimax | nonsaturating | lsgan | wgan | wgan-gp | hinge
    dataset: str = "mnist"              # mnist (bundled) | fashion-mnist | cifar10 | folder | toy names
    data_dir: str | None = None
    download: bool = False
    image_size: int | None = None       # None: the dataset's own size (28 for MNIST)
    batch_size: int = 64
    steps: int | None = None            # generator updates; None: from epochs, or the default budget
    epochs: float | None = None
    lr: float | None = None
    beta1: float | None = None
    beta2: float | None = None
    n_critic: int | None = None
    nz: int = 100
    ngf: int = 64
    ndf: int = 64
    r1: float = 0.0                     # R1 penalty weight gamma (0: off)
    info_lambda: float = 1.0            # InfoGAN: weight of the mutual-information term
    num_categories: int = 10            # InfoGAN: k of the categorical code
    num_continuous: int = 2             # InfoGAN: number of continuous codes
    seed: int = 0
    out: str = "runs/dcgan"
    sample_every: int = 200
    checkpoint_every: int = 500
    log_every: int | None = None        # steps between host syncs for logging (None: 1 on CPU, 50 on GPU)
    num_samples: int = 64               # size of the fixed noise batch
    device: str = "cpu"
    progress: bool = True               # tqdm progress bar
    dry_run: bool = False               # two steps on random data

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


DEFAULT_STEPS = 2000   # the default budget: under 10 minutes for the 28x28 DCGAN on 2 CPU cores (~0.17 s a step)


def _loss_setting(loss, name: str, default):
    return getattr(loss, name, default)


class Trainer:
    """Builds data, models and optimizers from a :class:`TrainConfig`, then trains."""

    def __init__(self, config: TrainConfig):
        self.config = config
        c = config
        self.device = normalize_device(c.device)
        self.xp = xp_for(self.device)              # a clear error here if 'cuda' is unavailable
        self.out = Path(c.out)
        _random.manual_seed(c.seed)                # model initialisation draws from the global generator
        self.rng = np.random.default_rng([c.seed, 0])   # the loop's noise: z, labels, codes, GP's eps

        self.loss = get_loss(c.loss)
        self.n_critic = int(c.n_critic or _loss_setting(self.loss, "n_critic", 1))
        self._build_data()
        self._build_models()
        self._build_optimizers()

        self.step = 0                               # generator updates done
        self.position = (0, 0)                      # (epoch, batch index) of the next real batch
        self.fixed, self.grid_cols = fixed_inputs(self.G, c.num_samples, np.random.default_rng([c.seed, 1]))
        self._pending: list[dict] = []
        self._history: list[dict] = []

    # ------------------------------------------------------------------ setup
    def _build_data(self) -> None:
        from tinygan.data import TOY_DATASETS, DataLoader, get_dataset, toy_dim
        c = self.config
        self.toy = c.dataset in TOY_DATASETS
        if c.dry_run:
            self.toy_dim = toy_dim(c.dataset) if self.toy else None
            self.image_shape = None if self.toy else (1 if c.dataset in ("mnist", "fashion-mnist") else 3,
                                                      c.image_size or 28, c.image_size or 28)
            self.num_classes = 10
            self.loader = None
            return
        if self.toy:
            self.toy_dim = toy_dim(c.dataset)
            self.image_shape = None
            self.num_classes = 0
            self.loader = None
            return
        ds = get_dataset(c.dataset, data_dir=c.data_dir, image_size=c.image_size, download=c.download)
        self.dataset = ds
        self.image_shape = (ds.channels, ds.image_size, ds.image_size)
        self.num_classes = ds.num_classes
        self.loader = DataLoader(ds, batch_size=c.batch_size, shuffle=True, seed=c.seed, drop_last=True)
        if len(self.loader) == 0:
            raise ValueError(f"dataset {c.dataset!r} has {ds.images.shape[0]} images, fewer than one batch "
                             f"of {c.batch_size}")

    def _build_models(self) -> None:
        from tinygan.gan.models import build_gan
        c = self.config
        self.G, self.D = build_gan(c.model, image_shape=self.image_shape,
                                   data_dim=self.toy_dim if self.toy else None, nz=c.nz, ngf=c.ngf,
                                   ndf=c.ndf, num_classes=self.num_classes, loss=self.loss,
                                   num_categories=c.num_categories, num_continuous=c.num_continuous)
        self.G.to(self.device)
        self.D.to(self.device)
        self.conditional = getattr(self.G, "conditional", False)
        self.infogan = hasattr(self.D, "q_parameters")

    def _build_optimizers(self) -> None:
        c, loss = self.config, self.loss
        lr = c.lr if c.lr is not None else _loss_setting(loss, "lr", 2e-4)
        betas = list(_loss_setting(loss, "betas", (0.5, 0.999)))
        if c.beta1 is not None:
            betas[0] = c.beta1
        if c.beta2 is not None:
            betas[1] = c.beta2
        kind = _loss_setting(loss, "optimizer", "adam")
        # InfoGAN's Q head shares D's body but is trained with G (the MI term is in G's loss).
        q_ids = {id(p) for p in self.D.q_parameters()} if hasattr(self.D, "q_parameters") else set()
        self.d_params = [p for p in self.D.parameters() if id(p) not in q_ids]
        g_params = list(self.G.parameters()) + [p for p in self.D.parameters() if id(p) in q_ids]

        def make(params):
            if kind == "rmsprop":
                return optim.RMSprop(params, lr=lr)
            return optim.Adam(params, lr=lr, betas=tuple(betas))

        self.opt_g, self.opt_d = make(g_params), make(self.d_params)
        self.hyper = {"optimizer": kind, "lr": lr, "betas": betas, "n_critic": self.n_critic,
                      "clip_value": _loss_setting(loss, "clip_value", None),
                      "gp_weight": _loss_setting(loss, "gp_weight", None), "r1": c.r1}

    # ------------------------------------------------------------------ data
    def total_steps(self) -> int:
        c = self.config
        if c.dry_run:
            return 2
        if c.steps is not None:
            return int(c.steps)
        if c.epochs is not None and self.loader is not None:
            return max(1, int(c.epochs * len(self.loader)) // self.n_critic)
        return DEFAULT_STEPS

    def _next_real(self) -> tuple[Tensor, np.ndarray]:
        """The next real batch (on the device) and its labels (host) at ``self.position``; advances it."""
        c, xp = self.config, self.xp
        epoch, index = self.position
        if c.dry_run or self.toy:
            rng = np.random.default_rng([c.seed, 2, epoch, index])
            if self.toy:
                from tinygan.data import sample_toy
                x = sample_toy(c.dataset, c.batch_size, rng)
            else:
                x = rng.uniform(-1, 1, (c.batch_size,) + self.image_shape).astype(np.float32)
            y = rng.integers(0, max(self.num_classes, 1), c.batch_size)
            self.position = (epoch, index + 1)
        else:
            x, y = self.loader.batch(epoch, index)
            self.position = (epoch, index + 1) if index + 1 < len(self.loader) else (epoch + 1, 0)
        # Labels stay on the host: they join G's inputs, which move to the device together.
        return Tensor(to_device(np.ascontiguousarray(x, dtype=np.float32), self.device)), \
            np.asarray(y, dtype=np.int64)

    def _inputs_to_device(self, inputs: dict) -> dict:
        return {k: Tensor(to_device(v, self.device)) for k, v in inputs.items()}

    # ------------------------------------------------------------------ one step
    def _d_value(self, logits: Tensor) -> Tensor:
        """What the log calls D(.): the mean probability for sigmoid losses, the mean raw output otherwise."""
        if getattr(self.loss, "probabilistic", self.loss.name in ("minimax", "nonsaturating")):
            return F.sigmoid(logits).mean()
        return logits.mean()

    def _discriminate(self, x: Tensor, labels) -> Tensor:
        return self.D(x, labels=labels) if self.conditional else self.D(x)

    def train_step(self) -> dict:
        """One generator update preceded by ``n_critic`` critic updates; returns device scalars to log."""
        G, D, loss, hyper = self.G, self.D, self.loss, self.hyper
        G.train()
        D.train()
        record: dict[str, Any] = {}
        for i in range(self.n_critic):
            last = i == self.n_critic - 1
            real, labels = self._next_real()                           # (N, C, H, W) in [-1, 1]
            inputs = self.G.sample_inputs(real.shape[0], self.rng)     # z (N, nz) [+ labels / codes]
            if self.conditional:
                inputs["labels"] = labels                              # fake images of the real batch's classes
            inputs = self._inputs_to_device(inputs)
            # The last critic iteration keeps G's graph so that step (2) reuses this fake batch,
            # as the PyTorch example does; earlier ones need no graph through G.
            if last:
                fake = G(**inputs)
            else:
                with no_grad():
                    fake = G(**inputs)
            cond = inputs.get("labels")

            # (1) Update D: maximise log D(x) + log(1 - D(G(z)))  (the loss object holds the objective
            #     being minimised; for WGAN it is E[D(G(z))] - E[D(x)])
            real_logits = self._discriminate(real, cond)               # (N,)
            fake_logits = self._discriminate(fake.detach(), cond)      # (N,)  no gradient into G here
            err_d = loss.d_loss(real_logits, fake_logits)
            if hyper["gp_weight"]:                                     # WGAN-GP: in the critic's loss only
                from tinygan.gan.penalties import gradient_penalty
                gp = gradient_penalty(self._critic_fn(cond), real, fake.detach(), weight=hyper["gp_weight"],
                                      generator=self.rng)
                err_d = err_d + gp
                record["gp"] = gp.data
            if hyper["r1"]:
                from tinygan.gan.penalties import r1_penalty
                r1 = r1_penalty(self._critic_fn(cond), real, hyper["r1"])
                err_d = err_d + r1
                record["r1"] = r1.data
            self.opt_d.zero_grad()
            err_d.backward()
            record["grad_sq_D"] = self._grad_sq(self.d_params)
            self.opt_d.step()
            if hyper["clip_value"]:                                    # WGAN: clip to [-c, c] after each step
                from tinygan.gan.penalties import weight_clip_
                weight_clip_(D, hyper["clip_value"])
        record["Loss_D"] = err_d.data
        record["D_x"] = self._d_value(real_logits).data
        record["D_G_z1"] = self._d_value(fake_logits).data

        # (2) Update G: maximise log D(G(z))  (non-saturating; minimax minimises log(1 - D(G(z))))
        with frozen(self.d_params):                                    # D's weights are constants in this step
            if self.infogan:
                fake_logits, q = D(fake, return_q=True)
                err_g = loss.g_loss(fake_logits)
                from tinygan.gan.models import info_loss
                info = info_loss(q, inputs)                            # -(lower bound on I(c; G(z, c)))
                err_g = err_g + self.config.info_lambda * info
                record["Loss_Info"] = info.data
            else:
                fake_logits = self._discriminate(fake, cond)
                err_g = loss.g_loss(fake_logits)
            self.opt_g.zero_grad()
            err_g.backward()
        record["grad_sq_G"] = self._grad_sq(self.opt_g_params())
        self.opt_g.step()
        record["Loss_G"] = err_g.data
        record["D_G_z2"] = self._d_value(fake_logits).data
        return record

    def _critic_fn(self, cond):
        return (lambda x: self.D(x, labels=cond)) if self.conditional else (lambda x: self.D(x))

    def opt_g_params(self):
        return [p for g in self.opt_g.param_groups for p in g["params"]]

    @staticmethod
    def _grad_sq(params) -> Any:
        """sum of squared gradients (a device scalar: no host sync here)."""
        total = None
        for p in params:
            if p.grad is not None:
                s = (p.grad.data * p.grad.data).sum()
                total = s if total is None else total + s
        return total if total is not None else np.zeros(())

    # ------------------------------------------------------------------ the loop
    def train(self) -> dict:
        """Train to ``total_steps()``; returns the last logged record."""
        c = self.config
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "samples").mkdir(exist_ok=True)
        self._write_config()
        self._truncate_metrics(self.step)
        total = self.total_steps()
        log_every = c.log_every or (1 if self.device == "cpu" else 50)
        bar = self._progress_bar(total)
        last = {}
        t_last = time.perf_counter()
        while self.step < total:
            record = self.train_step()
            self.step += 1
            now = time.perf_counter()
            record["sec_per_iter"] = now - t_last
            t_last = now
            record["step"], record["epoch"] = self.step, self.position[0]
            self._pending.append(record)
            at_end = self.step == total
            want_sample = self.step % c.sample_every == 0 or self.step == 1 or at_end
            want_ckpt = self.step % c.checkpoint_every == 0 or at_end
            if len(self._pending) >= log_every or want_sample or want_ckpt:
                last = self._flush(bar) or last          # raises NonFiniteError before anything is saved
            if want_sample:
                self.write_samples()
            if want_ckpt:
                self.save(self.out / "checkpoint.npz")
        if bar is not None:
            bar.close()
        self._finish()
        return last

    def _flush(self, bar) -> dict:
        """Bring the pending records to the host (one sync), check them, append to metrics.jsonl."""
        lines, last = [], {}
        for rec in self._pending:
            row = {}
            for k, v in rec.items():
                row[k] = v if isinstance(v, (int, float)) else float(to_numpy(v))
            for key, net in (("Loss_D", "discriminator"), ("grad_sq_D", "discriminator"),
                             ("Loss_G", "generator"), ("grad_sq_G", "generator")):
                if key in row and not math.isfinite(row[key]):
                    self._pending = []
                    what = "loss" if key.startswith("Loss") else "gradient"
                    raise NonFiniteError(
                        f"step {row['step']}: the {net}'s {what} is {row[key]} ({key}); training stopped. "
                        f"The last good checkpoint ({self.out / 'checkpoint.npz'}) is kept; try a lower "
                        "--lr or another loss")
            lines.append(json.dumps(row))
            self._history.append(row)
            last = row
        self._pending = []
        with open(self.out / "metrics.jsonl", "a") as f:
            f.write("".join(line + "\n" for line in lines))
        if bar is not None and last:
            bar.update(len(lines))
            bar.set_postfix({k: f"{last[k]:.4f}" for k in ("Loss_D", "Loss_G", "D_x", "D_G_z1", "D_G_z2")
                             if k in last}, refresh=False)
        return last

    def _progress_bar(self, total):
        if not self.config.progress:
            return None
        try:
            from tqdm import tqdm
        except ImportError:
            return None
        return tqdm(total=total, initial=self.step, desc="train", unit="it", dynamic_ncols=True)

    # ------------------------------------------------------------------ outputs
    def _write_config(self) -> None:
        text = json.dumps(dataclasses.asdict(self.config), indent=2)
        tmp = self.out / "config.json.tmp"
        tmp.write_text(text)
        tmp.replace(self.out / "config.json")

    def _truncate_metrics(self, step: int) -> None:
        """Drop log lines and sample frames written after ``step``: on resume those steps are redone,
        and a new run (step 0) in an old folder starts a fresh log."""
        path = self.out / "metrics.jsonl"
        if not path.exists():
            return
        keep = [line for line in path.read_text().splitlines() if line and json.loads(line)["step"] <= step]
        path.write_text("".join(line + "\n" for line in keep))
        self._history = [json.loads(line) for line in keep]
        for png in (self.out / "samples").glob("step_*.png"):   # frames of the steps being redone
            if int(png.stem.split("_")[1]) > step:
                png.unlink()

    def generate(self, inputs: dict) -> np.ndarray:
        """G's output for host ``inputs`` in eval mode (batch norm uses running statistics)."""
        self.G.eval()
        with no_grad():
            out = self.G(**self._inputs_to_device(inputs))
        self.G.train()
        return out.numpy()

    def write_samples(self) -> Path:
        """The fixed noise batch's samples as ``samples/step_XXXXXX.png``."""
        path = self.out / "samples" / f"step_{self.step:06d}.png"
        samples = self.generate(self.fixed)
        if self.toy:
            from tinygan.viz.points import save_points_plot
            real = self._toy_reference()
            save_points_plot(real, samples, path, title=f"step {self.step}")
        else:
            from tinygan.viz import save_image_grid
            save_image_grid(samples, path, nrow=self.grid_cols, scale=2)
        return path

    def _toy_reference(self) -> np.ndarray:
        from tinygan.data import sample_toy
        return sample_toy(self.config.dataset, 1000, np.random.default_rng([self.config.seed, 3]))

    def _finish(self) -> None:
        from tinygan.viz import save_gif, save_loss_curves
        frames = sorted((self.out / "samples").glob("step_*.png"))
        if frames:
            save_gif(frames, self.out / "progress.gif")
        if self._history:
            steps = [r["step"] for r in self._history]
            series = {k: [r[k] for r in self._history] for k in ("Loss_D", "Loss_G") if k in self._history[0]}
            save_loss_curves(steps, series, self.out / "losses.png",
                             title=f"{self.config.model} / {self.config.loss}: losses",
                             smooth=max(1, len(steps) // 100))

    # ------------------------------------------------------------------ checkpoints
    def save(self, path) -> Path:
        meta = {"step": self.step, "position": list(self.position), "rng": self.rng.bit_generator.state,
                "global_rng": _random.get_rng_state(), "hyper": self.hyper,
                "shapes": {"image_shape": None if self.image_shape is None else list(self.image_shape),
                           "num_classes": self.num_classes}}
        meta["rng"] = json.loads(json.dumps(meta["rng"], default=int))
        return ckpt.save_checkpoint(
            path, config=dataclasses.asdict(self.config), meta=meta,
            generator=self.G.state_dict(), discriminator=self.D.state_dict(),
            opt_g=self.opt_g.state_dict(), opt_d=self.opt_d.state_dict(), fixed=self.fixed)

    def restore(self, state: dict) -> None:
        """Load everything a checkpoint holds, so training continues exactly where it stopped."""
        self.G.load_state_dict(state["generator"])
        self.D.load_state_dict(state["discriminator"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        meta = state["meta"]
        self.step = int(meta["step"])
        self.position = tuple(int(v) for v in meta["position"])
        self.rng.bit_generator.state = meta["rng"]
        _random.set_rng_state(meta["global_rng"])
        self.fixed = {k: np.asarray(v) for k, v in state["fixed"].items()}

    @classmethod
    def from_checkpoint(cls, path, **overrides) -> "Trainer":
        """Rebuild a trainer from a checkpoint's config (``overrides`` may change steps, device, out, ...)."""
        state = ckpt.load_checkpoint(path)
        config = TrainConfig.from_dict({**state["config"], **overrides})
        trainer = cls(config)
        trainer.restore(state)
        return trainer


def fixed_inputs(G, n: int, rng: np.random.Generator) -> tuple[dict, int]:
    """The fixed sampling batch and its grid width.

    Conditional models get one row per class and InfoGAN one row per
    categorical value with the first continuous code varied along the row
    (``sample_grid_inputs``), so the pictures show what each input controls;
    other models get ``n`` independent draws in a square-ish grid.
    """
    from tinygan.gan.models import sample_grid_inputs
    rows = getattr(G, "num_categories", None) or (G.num_classes if getattr(G, "conditional", False) else None)
    if rows:
        cols = max(2, n // rows)
        return sample_grid_inputs(G, rows, cols, rng), cols
    return G.sample_inputs(n, rng), max(1, int(math.sqrt(n)))


def load_generator(path, device: str = "cpu"):
    """The generator of a checkpoint, in eval mode, and the run's config: ``(G, config, fixed_inputs)``."""
    state = ckpt.load_checkpoint(path)
    config = TrainConfig.from_dict({**state["config"], "device": device, "progress": False})
    G, _ = _build_from_state(config, state)
    G.to(normalize_device(device))
    G.load_state_dict(state["generator"])
    G.eval()
    return G, config, {k: np.asarray(v) for k, v in state["fixed"].items()}


def _build_from_state(config: TrainConfig, state: dict):
    """Rebuild (G, D) with the shapes recorded in the checkpoint, without loading any data."""
    from tinygan.gan.models import build_gan
    from tinygan.data import TOY_DATASETS, toy_dim
    meta = state["meta"]
    shapes = meta.get("shapes", {})
    toy = config.dataset in TOY_DATASETS
    return build_gan(config.model, image_shape=None if toy else tuple(shapes["image_shape"]),
                     data_dim=toy_dim(config.dataset) if toy else None, nz=config.nz, ngf=config.ngf,
                     ndf=config.ndf, num_classes=shapes.get("num_classes", 10), loss=get_loss(config.loss),
                     num_categories=config.num_categories, num_continuous=config.num_continuous)


RESUMABLE_OVERRIDES = ("steps", "epochs", "device", "progress", "sample_every", "checkpoint_every", "log_every")


def train(config: TrainConfig) -> Trainer:
    """Train a new run described by ``config``."""
    trainer = Trainer(config)
    trainer.train()
    return trainer


def resume(out, **overrides) -> Trainer:
    """Continue the run in folder ``out`` from its ``checkpoint.npz``, exactly where it stopped.

    ``overrides`` may extend the budget (``steps``/``epochs``) or change where
    and how it runs (``device``, ``progress``, ``sample_every``, ...); the
    model, data and optimizer settings come from the checkpoint.
    """
    path = Path(out) / "checkpoint.npz"
    if not path.exists():
        raise FileNotFoundError(f"--resume: no checkpoint at {path}")
    bad = sorted(set(overrides) - set(RESUMABLE_OVERRIDES))
    if bad:
        raise ValueError(f"--resume: {bad} cannot change when resuming (the checkpoint fixes them); "
                         f"only {list(RESUMABLE_OVERRIDES)} can")
    saved = ckpt.load_checkpoint(path)
    config = TrainConfig.from_dict({**saved["config"], **overrides, "out": str(out)})
    trainer = Trainer(config)
    trainer.restore(saved)
    trainer.train()
    return trainer
