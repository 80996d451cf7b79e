"""A run's settings: one dataclass, each field with its flag, help text, check and role; nothing else.

:class:`TrainConfig` is the single list of what a run can be told.  The
command line (``tinygan train``) is generated from it, ``config.json`` and
the checkpoint store it, ``--resume`` compares against it, and
:meth:`TrainConfig.validate` checks every value before any data is loaded or
memory allocated, with a message that names the flag.

Each field's ``role``:

* ``"defines"``: what the run *is* (model, loss, data, optimizer settings,
  seed, ...).  A resume cannot change it: asking for another value is refused.
* ``"cadence"``: how long and how often (``steps``, ``epochs``,
  ``sample_every``, ...).  A resume may change it, and the new value applies.
* ``"place"``: where and how it runs (``out``, ``device``, ``data_dir``,
  the progress bar).  A resume may change it; nothing about the run changes.

``None`` for ``beta1``, ``beta2`` and ``n_critic`` means "the loss's recipe"
(:data:`tinygan.gan.recipes.RECIPES`); for ``lr`` the recipe's lr times
``lr_scale``, and for ``batch_size``, ``nz``, ``ema``, ``ema_warmup`` and
``steps`` the value of :data:`RUN_DEFAULTS`, which has a column for images
and one for the toy datasets (``ema_warmup`` stays None in a run without an
average);
:meth:`TrainConfig.resolved` fills them in, and that resolved config is what
``config.json`` records.
"""
from __future__ import annotations

import dataclasses
import math
import operator
from typing import Any, Callable

from tinygan.data import DATASET_NAMES, TOY_DATASETS
from tinygan.gan.dcgan import stages
from tinygan.gan.ema import TF_WARMUP
from tinygan.gan.losses import LOSS_PRESETS, LOSSES
from tinygan.gan.augment import parse_policy
from tinygan.gan.models import CLASS_MODELS, MODELS
from tinygan.gan.recipes import recipe_for

__all__ = ["TrainConfig", "ConfigError", "DEFAULT_STEPS", "RUN_DEFAULTS", "FIELDS", "flag_of"]

DEFAULT_STEPS = 4500       # the default budget: about 8.5 minutes for the 28x28 DCGAN on 2 idle CPU cores
LEGACY_DEFAULT_STEPS = 2000   # runs written before 2026-11-30 recorded no budget (steps null): theirs was this

# Where a flag is left out (None), a run takes these values; on the toy datasets the second column.
# Images: the DCGAN recipe at 8x its lr (1.6e-3) with an average of G's weights; at 2,000 steps this reaches
# classifier FD 31.5 where 2x reaches 46.6 and the paper's plain recipe 59-68, at the same cost per step
# (benchmarks/results/default-run-sweep.md).  With the non-saturating loss, also a lazy R1 penalty (gamma 1 on
# every 16th D step, LAZY_R1_EVERY): 27.4 and 25.4 instead of 31.5 and 28.3 at 2,000 steps (seeds 0, 1), 19.2
# instead of 23.8 at 3,000 (seed 1), at no measurable cost per step; and an average that lags a twentieth of the
# run behind G, not a tenth (ema_warmup 20): 14.24 / 13.90 / 13.26 instead of 15.00 / 14.31 / 13.55 at 4,500 steps
# (seeds 0-2).  Toy data: the DCGAN recipe leaves the MLP GAN on ring8 with 0/8 modes within 3 std; these settings
# reach 8/8 modes with >= 90% high-quality samples (PacGAN's protocol) in 4,000 steps, about a minute of CPU:
# docs/theory.md, section 12.  lr_scale multiplies the loss's recipe lr (RECIPES); explicit flags always win (the
# paper's plain recipe: tinygan train --lr 2e-4 --ema 0 --r1 0); config.json records the values used.
#                    name          images    toy data
RUN_DEFAULTS = {"batch_size": (64, 256),
                "nz": (100, 2),
                "ema": (0.999, 0.999),
                "ema_warmup": (20, TF_WARMUP),     # the average lags ~1/20 of the run behind G, not 1/10 (the sweep)
                "lr_scale": (8.0, 5.0),            # lr = lr_scale x the recipe's: DCGAN 1.6e-3 on images, 1e-3 on toy data
                "r1": (1.0, 0.0),                  # R1's gamma, for the non-saturating loss only (resolved())
                "steps": (DEFAULT_STEPS, 4000)}    # recorded in config.json, so a resume keeps the run's budget
LAZY_R1_EVERY = 16   # where R1 is on by default it runs lazily, every 16th D step (an explicit --r1: every step)
IMAGE_MODELS = ("dcgan", "cgan", "infogan", "acgan", "sngan")   # models whose image generators are DCGANs (sizes 4*2^k, 7*2^k)
MAX_SEED = 2**63 - 1
# A model that is a paper's networks *and* objective: its loss where --loss is left out (and the only one it takes).
MODEL_LOSS = {"sngan": "hinge"}                # SN-DCGAN with the hinge loss (Miyato et al. 2018)
# Losses that compare each sample's score with a statistic of the whole batch (its mean score, its spread):
# on R processes each would see its own slice, so --distributed refuses them.
BATCH_COUPLED_LOSSES = ("ragan", "ralsgan", "dragan")


class ConfigError(ValueError):
    """A setting is out of range or contradicts another; the message starts with the flag's name."""


# ----------------------------------------------------------------------------- checks
# Each check takes a value and returns it (normalised) or raises ValueError with the reason.

def _integer(v) -> int:
    if isinstance(v, bool):
        raise ValueError(f"must be an integer, got {v!r}")
    if isinstance(v, str):
        try:
            return int(v)
        except ValueError:
            raise ValueError(f"must be an integer, got {v!r}") from None
    try:
        return operator.index(v)
    except TypeError:
        raise ValueError(f"must be an integer, got {v!r}") from None


def _real(v) -> float:
    if isinstance(v, bool):
        raise ValueError(f"must be a number, got {v!r}")
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise ValueError(f"must be a number, got {v!r}") from None
    if not math.isfinite(x):
        raise ValueError(f"must be a finite number, got {v!r}")
    return x


def int_in(lo: int, hi: int) -> Callable[[Any], int]:
    def check(v):
        n = _integer(v)
        if not lo <= n <= hi:
            raise ValueError(f"must be an integer in [{lo}, {hi}], got {n}")
        return n
    check.describe = f"integer in [{lo}, {hi}]"
    return check


def real_in(lo: float, hi: float, lo_open: bool = False, hi_open: bool = False) -> Callable[[Any], float]:
    def check(v):
        x = _real(v)
        if x < lo or x > hi or (lo_open and x == lo) or (hi_open and x == hi):
            raise ValueError(f"must be in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}, got {x:g}")
        return x
    return check


def one_of(*names: str) -> Callable[[Any], str]:
    def check(v):
        if v not in names:
            raise ValueError(f"must be one of {', '.join(names)}; got {v!r}")
        return v
    check.choices = names
    return check


def _text(v) -> str:
    if not isinstance(v, str) or not v or "\x00" in v:
        raise ValueError(f"must be a non-empty path, got {v!r}")
    return v


def _policy(v) -> str:
    try:
        return ",".join(parse_policy(v if isinstance(v, str) else ""))
    except ValueError:
        raise ValueError(f"must be a comma-separated list of distinct names from translation, cutout, color; "
                         f"got {v!r}") from None


def _flag(v) -> bool:
    if not isinstance(v, bool):
        raise ValueError(f"must be true or false, got {v!r}")
    return v


# ----------------------------------------------------------------------------- the fields

def _f(default, check, help: str, role: str = "defines", flag: str | None = None, metavar: str | None = None):
    return dataclasses.field(default=default, metadata={"check": check, "help": help, "role": role,
                                                        "flag": flag, "metavar": metavar})


@dataclasses.dataclass
class TrainConfig:
    """Every setting of a run (see the module docstring); ``TrainConfig()`` is the README's default job."""

    model: str = _f("dcgan", one_of(*MODELS), "the networks: DCGAN, fully connected, conditional, InfoGAN")
    loss: str = _f(None, one_of(*LOSSES, *LOSS_PRESETS),
                   "the GAN objective and its paper's recipe (default: nonsaturating; hinge for --model sngan; "
                   "lsgan: a=0, b=1, c=1; lsgan-pearson: a=-1, b=1, c=0)")
    dataset: str = _f("mnist", one_of(*DATASET_NAMES, *TOY_DATASETS),
                      "mnist (10,000 bundled digits), fashion-mnist, cifar10, folder, or a toy distribution")
    data_dir: str | None = _f(None, _text, "folder with the dataset's files (or the image folder)", "place",
                              metavar="DIR")
    download: bool = _f(False, _flag, "download the dataset into the cache if it is missing", "place")
    image_size: int | None = _f(None, int_in(8, 256),
                                "resize images to S x S (DCGAN models: 4 * 2^k or 7 * 2^k, e.g. 28, 32, 64)",
                                metavar="S")
    batch_size: int | None = _f(None, int_in(1, 8192), "images (or points) per batch (default 64, the DCGAN "
                                "example's; 256 on toy data)", metavar="N")
    steps: int | None = _f(None, int_in(1, 10**9), f"generator updates (default {DEFAULT_STEPS}; "
                           f"{RUN_DEFAULTS['steps'][1]} on toy data)", "cadence", metavar="N")
    epochs: float | None = _f(None, real_in(0, 1e6, lo_open=True), "passes over the data instead of --steps",
                              "cadence", metavar="E")
    lr: float | None = _f(None, real_in(0, 1e30, lo_open=True), "learning rate of both networks "
                          "(default: 8 times the loss's recipe, 1.6e-3 for DCGAN, whose paper used 2e-4; five times "
                          "on toy data, 1e-3)")
    beta1: float | None = _f(None, real_in(0, 1, hi_open=True), "Adam's beta1 (default: the recipe's, 0.5 for DCGAN)")
    beta2: float | None = _f(None, real_in(0, 1, hi_open=True), "Adam's beta2 (default: the recipe's, 0.999)")
    n_critic: int | None = _f(None, int_in(1, 100), "critic updates per generator update (default: the recipe's)",
                              metavar="K")
    nz: int | None = _f(None, int_in(1, 4096), "size of the latent vector z (default 100; 2 on toy data)",
                        metavar="N")
    ngf: int = _f(64, int_in(1, 1024), "generator feature maps (DCGAN models)", metavar="N")
    ndf: int = _f(64, int_in(1, 1024), "discriminator feature maps (DCGAN models)", metavar="N")
    r1: float | None = _f(None, real_in(0, 1e6), "R1 penalty weight gamma on real data (0: off; default: 1.0 "
                          "with the non-saturating loss on images, applied every 16th D step, else 0)",
                          metavar="GAMMA")
    r1_every: int | None = _f(None, int_in(1, 10**6), "lazy R1 (Karras et al. 2020): the penalty on every K-th "
                              "discriminator step only, weighted K x gamma (default: 16 where R1 is on by "
                              "default, 1 with --r1)", metavar="K")
    pack: int = _f(1, int_in(1, 64), "PacGAN (Lin et al. 2018): D judges packs of M samples, all real or all "
                   "generated (1: off); unconditional models only; --batch-size must be a multiple of M",
                   metavar="M")
    diffaugment: str | None = _f(None, _policy, "DiffAugment (Zhao et al. 2020): random differentiable "
                                 "augmentations of every image D sees, real and generated, in D's and G's steps; "
                                 "a comma-separated policy from translation, cutout, color (images only)",
                                 metavar="POLICY")
    mbstd: bool = _f(False, _flag, "the minibatch standard-deviation layer (Karras et al. 2018) before D's last "
                     "layer (groups of 4)")
    unroll: int = _f(0, int_in(0, 100), "Unrolled GAN (Metz et al. 2017): G's loss through K differentiable "
                     "steps of D's optimizer (0: off); about 1 + 2K times the cost of G's step", metavar="K")
    spectral_norm: bool = _f(False, _flag, "spectral normalisation (Miyato et al. 2018) of every layer of D: "
                             "W / sigma(W), one power iteration per training forward (--model sngan has it)")
    info_lambda: float = _f(1.0, real_in(0, 1e6), "InfoGAN: weight lambda of the mutual-information term",
                            metavar="L")
    num_categories: int = _f(10, int_in(1, 1000), "InfoGAN: values of the categorical code", flag="--categories",
                             metavar="K")
    num_continuous: int = _f(2, int_in(0, 64), "InfoGAN: number of continuous codes", flag="--continuous",
                             metavar="N")
    ema: float | None = _f(None, real_in(0, 1, hi_open=True), "decay beta of an exponential moving average of G's "
                           "weights; samples, sample, interpolate and eval use the average (default 0.999; 0: off, "
                           "as the DCGAN paper)", metavar="BETA")
    ema_warmup: int | None = _f(None, int_in(2, 10**6), "warm-up c of the average: beta_t = min(BETA, (1 + t) / "
                                "(c + t)) at G update t, so until BETA caps it the average lags about 1/c of the "
                                "run behind G (default 20; 10, TensorFlow's, on toy data)", metavar="C")
    seed: int = _f(0, int_in(0, MAX_SEED), "seed of the weights, the noise and the data order", metavar="S")
    out: str = _f("runs/dcgan", _text, "the run folder", "place", metavar="DIR")
    sample_every: int = _f(200, int_in(1, 10**9), "steps between sample grids of the fixed noise batch",
                           "cadence", metavar="N")
    checkpoint_every: int = _f(500, int_in(1, 10**9), "steps between checkpoints (and one at the end)",
                               "cadence", metavar="N")
    log_every: int | None = _f(None, int_in(1, 10**6), "steps between host syncs for the log (default: 1 on "
                               "the CPU, 50 on the GPU)", "cadence", metavar="N")
    num_samples: int = _f(64, int_in(1, 1024), "size of the fixed noise batch shown in samples/", metavar="N")
    device: str = _f("cpu", one_of("cpu", "cuda"), "where to train", "place")
    distributed: bool = _f(False, _flag, "data-parallel training over the processes that mpiexec starts (MPI; "
                           "NCCL with --device cuda, one GPU each): each takes its slice of every --batch-size "
                           "batch and the gradients are averaged (docs/distributed.md)", "place")
    sync_bn: bool = _f(False, _flag, "with --distributed: batch norm over the global batch (statistics all-reduced); "
                       "without it each process normalises its own slice, as PyTorch's DDP")
    progress: bool = _f(True, _flag, "a progress bar (a log line every few steps when not on a terminal)", "place")
    dry_run: bool = _f(False, _flag, "two steps on random data: a smoke test")

    def __post_init__(self):
        if self.loss is None:                  # left out: the model's own loss, else the non-saturating GAN
            self.loss = MODEL_LOSS.get(self.model, "nonsaturating")

    # -------------------------------------------------------------------------
    def validate(self, environment: bool = True) -> "TrainConfig":
        """Check every field and how they combine; raises :class:`ConfigError` naming the flag. Returns self.

        ``environment=False`` (a saved config read back, e.g. by ``sample``)
        skips what only a training process needs: for ``--distributed``, that
        MPI is installed and this process was started by ``mpiexec``.
        """
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None and f.default is None:
                continue
            try:
                setattr(self, f.name, f.metadata["check"](value))
            except ValueError as e:
                raise ConfigError(f"{flag_of(f.name)}: {e}") from None
        if self.steps is not None and self.epochs is not None:
            raise ConfigError("--steps and --epochs: give one of them, not both")
        toy = self.dataset in TOY_DATASETS
        if toy and self.image_size is not None:
            raise ConfigError(f"--image-size: the toy dataset {self.dataset!r} has points, not images")
        if toy and self.model in ("dcgan", "sngan"):
            raise ConfigError(f"--model {self.model} needs images; the toy dataset {self.dataset!r} has points "
                              "(use --model mlp)")
        if not toy and self.model in IMAGE_MODELS and self.image_size is not None:
            try:
                stages(self.image_size)
            except ValueError:
                raise ConfigError(f"--image-size: --model {self.model} builds DCGAN networks, which need "
                                  f"4 * 2^k or 7 * 2^k pixels (e.g. 28, 32, 64); got {self.image_size}") from None
        self._refuse_unused(toy)
        self._check_pack()
        self._check_distributed(environment)
        self._check_spectral_norm()
        self._check_beyond(toy)
        recipe = recipe_for(self.loss)
        if recipe.betas is None and (self.beta1 is not None or self.beta2 is not None):
            raise ConfigError(f"--beta1/--beta2: --loss {self.loss} trains with {recipe.optimizer}, which has "
                              "no betas")
        return self

    def _refuse_unused(self, toy: bool) -> None:
        """A setting that this run would ignore is an error, not a silent no-op."""
        default = TrainConfig.__dataclass_fields__
        changed = lambda name: getattr(self, name) != default[name].default   # noqa: E731
        convolutional = self.model in IMAGE_MODELS and not toy
        unused = [(n, f"--model {self.model} has no convolutional layers" + (" on toy data" if toy else ""))
                  for n in ("ngf", "ndf") if not convolutional and changed(n)]
        unused += [(n, f"only --model infogan has codes, not --model {self.model}")
                   for n in ("info_lambda", "num_categories", "num_continuous")
                   if self.model != "infogan" and changed(n)]
        unused += [(n, f"the toy dataset {self.dataset!r} is drawn, not read from files")
                   for n in ("data_dir", "download") if toy and changed(n)]
        if self.ema_warmup is not None and not self._ema_resolved():
            unused.append(("ema_warmup", "there is no average of G's weights (--ema 0)"))
        if self.r1_every not in (None, 1) and not self._r1_resolved():
            unused.append(("r1_every", "there is no R1 penalty to apply lazily: give --r1 GAMMA"))
        if toy and self.epochs is not None:
            unused.append(("epochs", f"the toy dataset {self.dataset!r} has no epochs; give --steps"))
        if self.dry_run and (self.steps is not None or self.epochs is not None):
            unused.append(("steps" if self.steps is not None else "epochs", "--dry-run always runs two steps"))
        if unused:
            name, why = unused[0]
            raise ConfigError(f"{flag_of(name)}: would be ignored: {why}")

    def _check_beyond(self, toy: bool) -> None:
        """--diffaugment needs images; --unroll needs an Adam/SGD recipe and a D without a second head."""
        if self.diffaugment is not None and toy:
            raise ConfigError(f"--diffaugment: the toy dataset {self.dataset!r} has points, not images, and "
                              "translation, cutout and color are image transformations")
        if self.unroll and self.model in ("infogan", "acgan", "acgan-mlp"):
            raise ConfigError(f"--unroll: --model {self.model}'s discriminator has a second head trained on its "
                              "own term, which the unrolled steps do not model; use mlp, dcgan, cgan or cgan-mlp")
        if self.unroll and recipe_for(self.loss).optimizer != "adam":
            raise ConfigError(f"--unroll: --loss {self.loss} trains D with {recipe_for(self.loss).optimizer} and "
                              "weight clipping, which the unrolled steps do not model; use a loss with Adam")

    def _check_spectral_norm(self) -> None:
        """--model sngan is SN-DCGAN with the hinge loss; --spectral-norm is for the other models."""
        if self.model in MODEL_LOSS and self.loss != MODEL_LOSS[self.model]:
            raise ConfigError(f"--loss {self.loss}: --model sngan is SN-DCGAN with the hinge loss (Miyato et al. "
                              "2018): leave --loss out (or give hinge), or use --model dcgan --spectral-norm with another loss")
        if self.spectral_norm and self.model == "sngan":
            raise ConfigError("--spectral-norm: would be ignored: --model sngan's discriminator is spectrally "
                              "normalised already")
        if self.spectral_norm and recipe_for(self.loss).clip_value:
            raise ConfigError(f"--spectral-norm: --loss {self.loss} clips D's weights to keep it Lipschitz; "
                              "spectral normalisation does that instead: use one (e.g. --loss hinge or wgan-gp)")

    def _check_distributed(self, environment: bool) -> None:
        """--sync-bn needs --distributed; --distributed needs MPI, mpiexec, and R (x --pack) dividing the batch."""
        if self.sync_bn and not self.distributed:
            raise ConfigError("--sync-bn: needs --distributed (one process already normalises over the whole batch)")
        if self.sync_bn and self.r1:
            raise ConfigError("--sync-bn and --r1: R1 differentiates D twice, through its batch norm, and batch "
                              "norm over several processes has no second derivative; drop one of them")
        if not self.distributed:
            return
        coupled = [(f"--loss {self.loss}", "compares each score with the batch's mean score or spread")] \
            if self.loss in BATCH_COUPLED_LOSSES else []
        coupled += [(flag_of(n), why) for n, why in (("mbstd", "takes statistics across the batch"),
                                                     ("unroll", "runs D's optimizer inside G's step"),
                                                     ("diffaugment", "draws from a random stream of its own"))
                    if n in FIELDS and getattr(self, n) not in (None, False, 0)]
        if coupled:
            flag, why = coupled[0]
            raise ConfigError(f"{flag}: not available with --distributed yet: it {why}, which each process "
                              "would do on its own slice, so the run would depend on the number of processes")
        if not environment:
            return
        from tinygan.run import distributed   # noqa: PLC0415  (starts MPI: only for a distributed run)
        problem = distributed.environment_problem()
        if problem:
            raise ConfigError(f"--distributed: {problem}")
        ranks = distributed.world().size
        batch = self.batch_size if self.batch_size is not None else self.default_for("batch_size")
        if batch % (ranks * self.pack):
            unit = ranks * self.pack
            raise ConfigError(f"--batch-size {batch}: --distributed splits every batch over the {ranks} processes"
                              + (f" in packs of {self.pack}" if self.pack > 1 else "") +
                              f"; give a multiple of {unit} (e.g. {unit * max(1, batch // unit)})")

    def _check_pack(self) -> None:
        """--pack M: unconditional models only, and whole packs in every batch."""
        if self.pack > 1 and self.model in CLASS_MODELS + ("infogan",):
            raise ConfigError(f"--pack: --model {self.model} gives D a label or asks Q for a code per sample, "
                              "which a pack of M samples does not have; use --model mlp or dcgan")
        batch = self.batch_size if self.batch_size is not None else self.default_for("batch_size")
        if batch % self.pack:
            raise ConfigError(f"--pack {self.pack} and --batch-size {batch}: the batch size must be a multiple "
                              f"of the pack size (e.g. --batch-size {self.pack * max(1, batch // self.pack)})")

    def default_for(self, name: str):
        """The value a left-out ``name`` of :data:`RUN_DEFAULTS` takes in this run (toy data: its own column)."""
        return RUN_DEFAULTS[name][self.dataset in TOY_DATASETS]

    def _ema_resolved(self) -> float:
        """The average's beta in this run: --ema, else RUN_DEFAULTS' (0: no average)."""
        return self.default_for("ema") if self.ema is None else self.ema

    def _r1_resolved(self) -> float:
        """R1's gamma in this run: --r1, else RUN_DEFAULTS' for the non-saturating loss without --sync-bn (R1
        needs batch norm's second derivative, which the all-reduced batch norm has not), else 0."""
        if self.r1 is not None:
            return self.r1
        return self.default_for("r1") if self.loss == "nonsaturating" and not self.sync_bn else 0.0

    def resolved(self) -> "TrainConfig":
        """A copy with every left-out setting filled in: :data:`RUN_DEFAULTS`, then the recipe's lr, betas, n_critic.

        ``steps`` stays None with ``--epochs`` or ``--dry-run`` (the trainer counts those), and ``ema_warmup``
        with ``--ema 0``.
        """
        recipe = recipe_for(self.loss)
        betas = recipe.betas or (None, None)
        filled = {name: self.default_for(name) for name in RUN_DEFAULTS
                  if name not in ("lr_scale", "r1") and getattr(self, name) is None}
        filled["r1"] = self._r1_resolved()
        if not self._ema_resolved():
            filled.pop("ema_warmup", None)                  # no average, no warm-up (left None)
        if self.r1_every is None:
            filled["r1_every"] = LAZY_R1_EVERY if self.r1 is None and filled["r1"] else 1
        if self.epochs is not None or self.dry_run:
            filled.pop("steps", None)
        lr = self.default_for("lr_scale") * recipe.lr if self.lr is None else self.lr
        return dataclasses.replace(
            self, **filled, lr=lr,
            beta1=betas[0] if self.beta1 is None else self.beta1,
            beta2=betas[1] if self.beta2 is None else self.beta2,
            n_critic=recipe.n_critic if self.n_critic is None else self.n_critic)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict, source: str = "config") -> "TrainConfig":
        """Build from a dict (a saved ``config.json``), refusing unknown keys, then validate."""
        if not isinstance(d, dict):
            raise ConfigError(f"{source}: expected a JSON object of settings, got {type(d).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ConfigError(f"{source}: unknown setting(s) {', '.join(unknown)}")
        try:
            return cls(**d).validate(environment=False)
        except ConfigError as e:
            raise ConfigError(f"{source}: {e}") from None

    @staticmethod
    def role(name: str) -> str:
        return FIELDS[name].metadata["role"]


FIELDS: dict[str, dataclasses.Field] = {f.name: f for f in dataclasses.fields(TrainConfig)}


def flag_of(name: str) -> str:
    """The command-line flag of a field: ``sample_every`` -> ``--sample-every`` (or its own ``flag``)."""
    return FIELDS[name].metadata["flag"] or "--" + name.replace("_", "-")
