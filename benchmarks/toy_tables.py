"""The papers' toy tables with tinygan: PacGAN's Table 1 and VEEGAN's Table 1 on the 2-D ring and grid.

    python benchmarks/toy_tables.py --dataset ring8 --trials 10                # the papers' protocol (see below)
    python benchmarks/toy_tables.py --dataset grid25 --trials 3 --steps 20000 --jobs 2
    python benchmarks/toy_tables.py --quick                                    # CI: 2 trials, a few steps

For each variant (GAN, PacGAN2, PacGAN3, PacGAN4, WGAN-GP, Unrolled GAN with K = 5) and trial this
trains the papers' toy networks with tinygan's own training step
(:func:`tinygan.gan.steps.d_step` / :func:`~tinygan.gan.steps.g_step`),
draws 2,500 samples and measures them as VEEGAN and PacGAN do
(:func:`tinygan.metrics.mixture_metrics`: modes captured, % high-quality
samples within 3 std of a mode, reverse KL of the mode histogram), then
prints one row per variant, mean +- standard error over the trials, beside
the published rows, and writes them as markdown (``--markdown``) and JSON.

The protocol is PacGAN's released code (github.com/fjxmlzn/PacGAN,
``synthetic_data_experiments/2DRing_GAN&PacGAN/config.py`` and
``.../2DGrid_GAN&PacGAN/pacgan_task.py``), which PacGAN's sec. 5 says follows
VEEGAN's architecture:

* G: z ~ N(0, I_2) -> 4 x [Linear 400, batch norm, ReLU] -> Linear 2;
* D: 3 x [Linear to 200 maxout units of 5 pieces] -> Linear 1, no
  normalisation; PacGAN-M: the same D on M samples concatenated (2M inputs);
* weights N(0, 0.02), biases 0; Adam lr 1e-4, beta1 0.8 (beta2 0.999),
  the non-saturating loss; a batch of 100 packs (100 M samples of each kind);
* 400 epochs of 100,000 packs = 400,000 steps (``--steps``, default).

``--steps`` counts D updates, one per generator step for GAN and PacGAN;
WGAN-GP makes 5 critic updates per generator step, so it gets steps / 5
generator steps: the same number of D updates (its row's ``steps`` column
says how many generator steps it made).

What differs (docs/theory.md, section 12): tinygan alternates the D and G
updates (PacGAN's Blocks code computes both gradients from the same batch and
updates them together); real batches are fresh draws, not epochs over a fixed
set of 100,000; each trial's seed is its index.  The WGAN-GP row (not in the
papers) uses the same networks with WGAN-GP's recipe (Adam 1e-4, betas
(0, 0.9), 5 critic steps, lambda 10).  The unrolled GAN row (VEEGAN's table
has a published one) uses the GAN row's networks and optimiser, with G's
loss taken through K = 5 differentiable Adam steps of D
(:mod:`tinygan.gan.unroll`); each of its generator steps costs roughly 11
plain ones.

Every finished trial is saved as ``OUT/<dataset>/<variant>_trial<k>.json`` at
once, with the CPU and commit of each stretch of its training (``trained_on``),
and a later call with the same settings reuses it (``--overwrite`` redoes it),
so trials can be added across calls and machines; the table's header counts
the trials per CPU and commit.  A trial in flight saves its whole
state (G, D, both Adams, the random generators, its measurements so far) as
``OUT/<dataset>/<variant>_trial<k>.state.npz`` every ``--checkpoint-every``
steps and at its end, atomically and without pickle; a later call resumes it
from there and computes exactly the floats an uninterrupted trial would.  The
end state is kept, so a call with a larger ``--steps`` extends a finished
trial instead of starting it over: the papers' 400,000-step trials can be
trained a few hours at a time.
"""
from __future__ import annotations

import os

# One BLAS thread per process: the networks are small, and a table runs several trials side by side.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import shlex  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import zipfile  # noqa: E402
from collections import Counter  # noqa: E402
from concurrent.futures import ProcessPoolExecutor, as_completed  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

import tinygan  # noqa: E402
from tinygan import nn, optim  # noqa: E402
from tinygan import random as _random  # noqa: E402
from tinygan.autograd import Tensor, no_grad  # noqa: E402
from tinygan.benchmark.report import cpu_kernels, git_commit  # noqa: E402
from tinygan.data import sample_toy  # noqa: E402
from tinygan.gan.losses import get_loss  # noqa: E402
from tinygan.gan.models import MLPDiscriminator, MLPGenerator  # noqa: E402
from tinygan.gan.pack import Packed  # noqa: E402
from tinygan.gan.recipes import recipe_for  # noqa: E402
from tinygan.gan.sampling import generate  # noqa: E402
from tinygan.gan.steps import d_step, g_step  # noqa: E402
from tinygan.io import atomic_write, atomic_write_text  # noqa: E402
from tinygan.metrics import mixture_metrics  # noqa: E402
from tinygan.run.checkpoint import flatten_optimizer_state, unflatten_optimizer_state  # noqa: E402

DATASETS = ("ring8", "grid25")
PAPER_STEPS = 400 * 100_000 // 100      # 400 epochs of 100,000 packs in batches of 100 (PacGAN's config.py)
QUICK_STEPS = 5
CHECKPOINT_EVERY = 10_000               # steps between saved states of a trial in flight (about 4 minutes)
STATE_VERSION = 1

# name -> (loss, pack)
VARIANTS = {
    "gan": ("nonsaturating", 1),
    "pacgan2": ("nonsaturating", 2),
    "pacgan3": ("nonsaturating", 3),
    "pacgan4": ("nonsaturating", 4),
    "wgan-gp": ("wgan-gp", 1),
    "unrolled5": ("nonsaturating", 1),
}
LABELS = {"gan": "GAN", "pacgan2": "PacGAN2", "pacgan3": "PacGAN3", "pacgan4": "PacGAN4", "wgan-gp": "WGAN-GP",
          "unrolled5": "Unrolled GAN (K=5)"}
UNROLLED = {"unrolled5": 5}      # variant -> K: G's loss through K differentiable Adam steps of D (Metz et al. 2017)


# The papers' networks and optimiser (PacGAN's released code; VEEGAN's sec. 5.1 sizes).
PROTOCOL = {
    "nz": 2, "g_hidden": (400, 400, 400, 400), "d_hidden": (200, 200, 200), "maxout_pieces": 5,
    "init_std": 0.02, "lr": 1e-4, "betas": (0.8, 0.999), "batch_packs": 100, "n": 2500,
}

# Published numbers: (modes, modes s.e., high quality %, its s.e., reverse KL, its s.e.); None: not reported.
# PacGAN, Table 1 (Lin et al. 2018; also synthetic_data_experiments/results/Table1.png in their repository):
# mean +- standard error over 10 trials.
PACGAN_TABLE1 = {
    "ring8": {"GAN": (6.3, 0.5, 98.2, 0.2, 0.45, 0.09), "ALI": (6.6, 0.3, 97.6, 0.4, 0.36, 0.04),
              "PacGAN2": (7.9, 0.1, 95.6, 2.0, 0.07, 0.03), "PacGAN3": (7.8, 0.1, 97.7, 0.3, 0.10, 0.02),
              "PacGAN4": (7.8, 0.1, 95.9, 1.4, 0.07, 0.02)},
    "grid25": {"GAN": (17.3, 0.8, 94.8, 0.7, 0.70, 0.07), "ALI": (24.1, 0.4, 95.7, 0.6, 0.14, 0.03),
               "PacGAN2": (23.8, 0.7, 91.3, 0.8, 0.13, 0.04), "PacGAN3": (24.6, 0.4, 94.2, 0.4, 0.06, 0.02),
               "PacGAN4": (24.8, 0.2, 93.6, 0.6, 0.04, 0.01)},
}
# VEEGAN, Table 1 (Srivastava et al. 2017; also tab.png in github.com/akashgit/VEEGAN): the mean of 5 runs,
# no error bars, no reverse KL.
VEEGAN_TABLE1 = {
    "ring8": {"GAN": (1.0, None, 99.3, None, None, None), "ALI": (2.8, None, 0.13, None, None, None),
              "Unrolled GAN": (7.6, None, 35.6, None, None, None), "VEEGAN": (8.0, None, 52.9, None, None, None)},
    "grid25": {"GAN": (3.3, None, 0.5, None, None, None), "ALI": (15.8, None, 1.6, None, None, None),
               "Unrolled GAN": (23.6, None, 16.0, None, None, None), "VEEGAN": (24.6, None, 40.0, None, None, None)},
}


# ----------------------------------------------------------------------------- one trial

def paper_init_(module: nn.Module, std: float) -> None:
    """Every Linear weight ~ N(0, std^2) and bias 0 (Blocks' IsotropicGaussian(0.02), Constant(0)); batch norm 1, 0."""
    rng = _random.default_generator()
    for m in module.modules():
        if isinstance(m, nn.Linear):
            m.weight.data[...] = (std * rng.standard_normal(m.weight.shape)).astype(m.weight.dtype)
            if m.bias is not None:
                m.bias.data[...] = 0


def build_networks(variant: str, protocol: dict = PROTOCOL):
    """(G, D) of the papers' toy experiments for ``variant`` (PacGAN-M: D on packs of M)."""
    _, pack = VARIANTS[variant]
    G = MLPGenerator(protocol["nz"], (2,), protocol["g_hidden"], output="linear", batch_norm=True)
    D = MLPDiscriminator((2 * pack,), protocol["d_hidden"], activation="maxout",
                         maxout_pieces=protocol["maxout_pieces"])
    paper_init_(G, protocol["init_std"])
    paper_init_(D, protocol["init_std"])
    return G, (D if pack == 1 else Packed(D, pack))


def _optimizers(G, D, loss_name: str, protocol: dict):
    """PacGAN's Adam for GAN/PacGAN; WGAN-GP's own recipe for WGAN-GP."""
    if loss_name == "wgan-gp":
        r = recipe_for(loss_name)
        return (optim.Adam(G.parameters(), lr=r.lr, betas=r.betas), optim.Adam(D.parameters(), lr=r.lr, betas=r.betas),
                r.n_critic, r.gp_weight)
    lr, betas = protocol["lr"], tuple(protocol["betas"])
    return optim.Adam(G.parameters(), lr=lr, betas=betas), optim.Adam(D.parameters(), lr=lr, betas=betas), 1, None


def evaluate(G, dataset: str, n: int, seed: int) -> dict:
    """2,500 samples of G (eval mode, z ~ N(0, I)) measured by :func:`mixture_metrics`."""
    samples = generate(G, G.sample_inputs(n, np.random.default_rng([seed, 100])))          # (n, 2)
    m = mixture_metrics(samples, dataset, n=n)
    G.train()
    return {k: m[k] for k in ("modes_captured", "num_modes", "high_quality", "reverse_kl", "mode_counts")}


def generator_steps(variant: str, steps: int) -> int:
    """Generator steps that give ``variant`` ``steps`` D updates (WGAN-GP: 5 critic updates per G step)."""
    loss_name, _ = VARIANTS[variant]
    n_critic = recipe_for(loss_name).n_critic if loss_name == "wgan-gp" else 1
    return max(1, steps // n_critic)


def run_trial(dataset: str, variant: str, trial: int, steps: int, protocol: dict = PROTOCOL,
              eval_every: int = 0, state: Path | None = None, checkpoint_every: int = 0) -> dict:
    """Train one (variant, trial) for ``steps`` generator steps and measure it; returns a JSON-able dict.

    With ``state`` (a path): resume from it if it exists (:func:`load_state`), and save the trial's state
    there every ``checkpoint_every`` steps and at the end.
    """
    loss_name, pack = VARIANTS[variant]
    loss = get_loss(loss_name)
    _random.manual_seed(trial)                                     # the weights: a function of the trial
    G, D = build_networks(variant, protocol)
    opt_g, opt_d, n_critic, gp_weight = _optimizers(G, D, loss_name, protocol)
    rng = np.random.default_rng([trial, 0])                        # noise, data, the penalty's eps
    batch = protocol["batch_packs"] * pack                         # 100 packs of M samples, real and fake
    meta = {"dataset": dataset, "variant": variant, "trial": trial, "protocol": _jsonable(protocol),
            "step": 0, "seconds": 0.0, "history": [], "resumed_at": []}
    if state is not None and Path(state).exists():
        meta = load_state(state, meta, G, D, opt_g, opt_d, rng, max_step=steps)
        meta["resumed_at"].append(meta["step"])
    here = machine()                                               # where this call trains the trial from here on
    meta.setdefault("trained_on", []).append({"from_step": meta["step"], "cpu": here["cpu"],
                                              "cores": here["cores"], "commit": here["commit"],
                                              "kernels": here["kernels"]})
    history, start = meta["history"], time.perf_counter() - meta["seconds"]
    for step in range(meta["step"] + 1, steps + 1):
        for i in range(n_critic):
            real = Tensor(sample_toy(dataset, batch, rng))                                  # (B, 2)
            z = Tensor(rng.standard_normal((batch, G.nz)).astype(np.float32))              # (B, 2)
            if i == n_critic - 1:
                fake = G(z=z)                                                               # kept for step (2)
            else:
                with no_grad():
                    fake = G(z=z)
            d_step(D, opt_d, loss, real, fake, gp_weight=gp_weight, rng=rng, stats=False)
        g_step(D, opt_g, loss, fake, stats=False, real=real, unroll=UNROLLED.get(variant, 0), opt_d=opt_d)
        if eval_every and step % eval_every == 0:
            history.append({"step": step, "seconds": time.perf_counter() - start,
                            **evaluate(G, dataset, protocol["n"], trial)})
        if state is not None and (step == steps or (checkpoint_every and step % checkpoint_every == 0)):
            save_state(state, dict(meta, step=step, seconds=time.perf_counter() - start), G, D, opt_g, opt_d, rng)
    seconds = time.perf_counter() - start
    if history and history[-1]["step"] == steps:                  # measured at the last step already
        result = {k: v for k, v in history[-1].items() if k not in ("step", "seconds")}
    else:
        result = evaluate(G, dataset, protocol["n"], trial)
    finite = all(bool(np.isfinite(p.data).all()) for p in list(G.parameters()) + list(D.parameters()))
    return {"dataset": dataset, "variant": variant, "trial": trial, "steps": steps, "seconds": seconds,
            "finite": finite, **result, "history": [h for h in history if h["step"] < steps],
            "protocol": _jsonable(protocol), **({"resumed_at": meta["resumed_at"]} if meta["resumed_at"] else {}),
            "trained_on": meta["trained_on"]}


# ----------------------------------------------------------------------------- a trial's saved state

class StateError(ValueError):
    """A trial's saved state is unreadable, or belongs to another trial or protocol."""


def save_state(path: Path, meta: dict, G, D, opt_g, opt_d, rng: np.random.Generator) -> None:
    """Everything the trial's next step depends on, as one ``.npz`` written atomically (plain arrays, no pickle).

    ``meta.json`` holds ``meta`` (step, seconds, measurements so far, ...), both random generators' states
    and the optimizers' scalars; ``G/``, ``D/``, ``optG/``, ``optD/`` hold the arrays.
    """
    arrays = {f"G/{k}": v for k, v in G.state_dict().items()}
    arrays.update({f"D/{k}": v for k, v in D.state_dict().items()})
    meta = dict(meta, version=STATE_VERSION, rng=rng.bit_generator.state, tinygan_rng=_random.get_rng_state(),
                optG=flatten_optimizer_state("optG", opt_g.state_dict(), arrays),
                optD=flatten_optimizer_state("optD", opt_d.state_dict(), arrays))
    arrays["meta.json"] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    with atomic_write(path) as f:                  # a trial killed mid-write leaves the previous state whole
        np.savez(f, **arrays)


def read_state_meta(path: Path) -> dict:
    """The ``meta.json`` of a saved state; :class:`StateError` naming the file if it cannot be read."""
    try:
        if not zipfile.is_zipfile(path):
            raise ValueError("not a .npz archive: truncated, or another file")
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(z["meta.json"].tobytes().decode("utf-8"))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
        raise StateError(f"{path}: this trial's saved state cannot be read ({e})") from None
    if not isinstance(meta, dict) or meta.get("version") != STATE_VERSION:
        raise StateError(f"{path}: not a saved trial state of this script (version {STATE_VERSION})")
    return meta


def check_state(path: Path, meta: dict, expected: dict, max_step: int) -> str | None:
    """Why the state ``meta`` read from ``path`` cannot continue the trial ``expected``, or None if it can."""
    for key in ("dataset", "variant", "trial", "protocol"):
        if meta.get(key) != expected[key]:
            return f"{path}: its {key} is {meta.get(key)!r}, this trial's {expected[key]!r}"
    step = meta.get("step")
    if not isinstance(step, int) or step < 0:
        return f"{path}: its step {step!r} is not a step count"
    if step > max_step:
        return f"{path}: it is at step {step}, past this call's {max_step}"
    return None


def load_state(path: Path, expected: dict, G, D, opt_g, opt_d, rng: np.random.Generator, max_step: int) -> dict:
    """Restore a state written by :func:`save_state` into the freshly built trial; returns its meta."""
    meta = read_state_meta(path)
    why = check_state(path, meta, expected, max_step)
    if why:
        raise StateError(why)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files if k != "meta.json"}
        G.load_state_dict({k[2:]: v for k, v in arrays.items() if k.startswith("G/")})
        D.load_state_dict({k[2:]: v for k, v in arrays.items() if k.startswith("D/")})
        opt_g.load_state_dict(unflatten_optimizer_state("optG", meta["optG"], arrays))
        opt_d.load_state_dict(unflatten_optimizer_state("optD", meta["optD"], arrays))
        rng.bit_generator.state = meta["rng"]
        _random.set_rng_state(meta["tinygan_rng"])
    except (OSError, ValueError, KeyError, TypeError, RuntimeError, EOFError, zipfile.BadZipFile) as e:
        raise StateError(f"{path}: this trial's saved state does not fit its networks ({e})") from None
    return meta


def _jsonable(protocol: dict) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in protocol.items()}


# ----------------------------------------------------------------------------- the table

def mean_se(values) -> tuple[float, float]:
    """Mean and standard error (sample std / sqrt(n); 0 for one value), as the papers report."""
    v = np.asarray(values, dtype=np.float64)
    if len(v) == 0:
        return float("nan"), float("nan")
    se = float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else 0.0
    return float(v.mean()), se


def summarise(results: list[dict]) -> dict:
    """{variant: {"modes": (mean, se), "high_quality": (mean %, se), "reverse_kl": ..., "trials", "seconds"}}."""
    out = {}
    for variant in VARIANTS:
        rows = [r for r in results if r["variant"] == variant]
        if not rows:
            continue
        out[variant] = {"modes": mean_se([r["modes_captured"] for r in rows]),
                        "high_quality": mean_se([100 * r["high_quality"] for r in rows]),
                        "reverse_kl": mean_se([r["reverse_kl"] for r in rows]),
                        "trials": len(rows), "steps": sorted({r["steps"] for r in rows}),
                        "seconds": float(np.mean([r["seconds"] for r in rows])),
                        "num_modes": rows[0]["num_modes"]}
    return out


def _pm(mean, se, fmt: str, suffix: str = "") -> str:
    if mean is None:
        return "-"
    return f"{mean:{fmt}}{suffix}" if se is None else f"{mean:{fmt}} +- {se:{fmt}}{suffix}"


def format_history(dataset: str, rows: list[dict]) -> str:
    """Each trial's measurements every --eval-every steps and at its end, one markdown row each."""
    lines = [f"| {dataset} | trial | step | modes | high quality | reverse KL | s |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        for h in r.get("history", []) + [r]:
            step = h.get("step", r["steps"])
            lines.append(f"| {LABELS[r['variant']]} | {r['trial']} | {step} | {h['modes_captured']}/{h['num_modes']} | "
                         f"{100 * h['high_quality']:.1f} % | {h['reverse_kl']:.2f} | {h['seconds']:.0f} |")
    return "\n".join(lines)


def format_table(dataset: str, summary: dict) -> str:
    """One markdown table: tinygan's rows, then PacGAN's and VEEGAN's published rows."""
    k = 8 if dataset == "ring8" else 25
    lines = [f"| {dataset} | modes (max {k}) | high quality | reverse KL | trials | G steps | s / trial |",
             "|---|---|---|---|---|---|---|"]
    for variant, s in summary.items():
        one = s["trials"] == 1                                     # no standard error from one trial
        (m, ms), (h, hs), (kl, kls) = ((v, None if one else e) for v, e in (s["modes"], s["high_quality"],
                                                                           s["reverse_kl"]))
        steps = "/".join(str(v) for v in s["steps"])
        lines.append(f"| tinygan {LABELS[variant]} | {_pm(m, ms, '.1f')} | {_pm(h, hs, '.1f', ' %')} | "
                     f"{_pm(kl, kls, '.2f')} | {s['trials']} | {steps} | {s['seconds']:.0f} |")
    for source, table, note in (("PacGAN Table 1", PACGAN_TABLE1, "10 | 400,000 |"),
                                ("VEEGAN Table 1", VEEGAN_TABLE1, "5 | ? |")):
        for name, (m, ms, h, hs, kl, kls) in table[dataset].items():
            lines.append(f"| {source}: {name} | {_pm(m, ms, '.1f')} | {_pm(h, hs, '.1f', ' %')} | "
                         f"{_pm(kl, kls, '.2f')} | {note} - |")
    return "\n".join(lines)


def trained_on_line(rows: list[dict]) -> str:
    """Where the table's trials were trained: each CPU and commit with its number of trials.

    A trial resumed elsewhere counts under each; trials saved before they recorded it count as "not recorded".
    """
    cpus, commits, kinds = Counter(), Counter(), Counter()
    for r in rows:
        segments = r.get("trained_on") or [{"cpu": "not recorded", "cores": None, "commit": "not recorded"}]
        cpus.update({seg["cpu"] + (f", {seg['cores']} cores" if seg.get("cores") else "") for seg in segments})
        commits.update({seg["commit"] for seg in segments})
        kinds.update({seg.get("kernels", "numpy") for seg in segments})    # before they were recorded: NumPy's
    return ("trials trained on: " + "; ".join(f"{k} ({n})" for k, n in sorted(cpus.items())) +
            "; at commits " + ", ".join(f"{k} ({n})" for k, n in sorted(commits.items())) +
            "; with kernels " + ", ".join(f"{k} ({n})" for k, n in sorted(kinds.items())))


def machine() -> dict:
    """CPU, cores, BLAS threads, versions and the git commit, for the results file."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    commit = git_commit()
    return {"cpu": cpu, "cores": os.cpu_count(), "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
            "python": platform.python_version(), "numpy": np.__version__,
            "tinygan": getattr(tinygan, "__version__", "?"), "commit": commit, "kernels": cpu_kernels()}


# ----------------------------------------------------------------------------- the command

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", nargs="+", default=["ring8"], choices=DATASETS,
                   help="ring8 (PacGAN's 2D-ring), grid25 (2D-grid), or both (default: %(default)s)")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS), metavar="V",
                   help=f"rows to train: {', '.join(VARIANTS)} (default: all)")
    p.add_argument("--trials", type=int, default=None, help="trials per variant, seeds 0..T-1 (default: 10)")
    p.add_argument("--first-trial", type=int, default=0, metavar="K",
                   help="start at trial K (to split trials between calls; default: %(default)s)")
    p.add_argument("--steps", type=int, default=None,
                   help=f"D updates per trial, one per generator step (WGAN-GP: 5 per generator step) "
                        f"(default: {PAPER_STEPS}, PacGAN's 400 epochs)")
    p.add_argument("--jobs", type=int, default=1, help="trials trained side by side, one BLAS thread each")
    p.add_argument("--eval-every", type=int, default=0, metavar="N",
                   help="also measure every N steps (kept in the trial's JSON; default: only at the end)")
    p.add_argument("--checkpoint-every", type=int, default=CHECKPOINT_EVERY, metavar="N",
                   help="save a trial's whole state every N steps and at its end, to resume it exactly in a later "
                        "call (0: only at the end; default: %(default)s)")
    p.add_argument("--out", default="runs/toy_tables", metavar="DIR",
                   help="folder for the trials' JSON files, table.md and results.json (default: %(default)s)")
    p.add_argument("--markdown", default=None, metavar="FILE", help="also write the table(s) to FILE")
    p.add_argument("--overwrite", action="store_true", help="retrain trials whose JSON file exists")
    p.add_argument("--report-only", action="store_true",
                   help="train nothing: the table of the trials already in --out (those missing are left out)")
    p.add_argument("--at-step", type=int, default=None, metavar="S",
                   help="with --report-only: the table at step S (counted as --steps is) of the trials trained "
                        "for --steps, from their measurements every --eval-every steps (finished trials and those "
                        "in flight alike)")
    p.add_argument("--history", action="store_true",
                   help="also list each trial's measurements every --eval-every steps under its table")
    p.add_argument("--note", default="", help="a line added to the markdown under the header (e.g. how and where "
                                              "the trials were trained)")
    p.add_argument("--quick", action="store_true",
                   help=f"a smoke test: 2 trials x {QUICK_STEPS} steps unless given (the numbers mean nothing)")
    args = p.parse_args(argv)
    if args.trials is None:
        args.trials = 2 if args.quick else 10
    if args.steps is None:
        args.steps = QUICK_STEPS if args.quick else PAPER_STEPS
    for name in ("trials", "steps", "jobs"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be >= 1")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        p.error(f"--out {args.out} is a file, not a folder")
    if args.markdown is not None and Path(args.markdown).is_dir():
        p.error(f"--markdown {args.markdown} is a folder, not a file name")
    if args.at_step is not None and not (args.report_only and 1 <= args.at_step <= args.steps):
        p.error(f"--at-step needs --report-only and a step from 1 to --steps ({args.steps}), got {args.at_step}")
    if args.first_trial < 0 or args.eval_every < 0 or args.checkpoint_every < 0:
        p.error("--first-trial, --eval-every and --checkpoint-every must be >= 0")
    return args


def _trial_path(out: Path, dataset: str, variant: str, trial: int) -> Path:
    return out / dataset / f"{variant}_trial{trial}.json"


def _state_path(out: Path, dataset: str, variant: str, trial: int) -> Path:
    return out / dataset / f"{variant}_trial{trial}.state.npz"


def _resumable(state: Path, dataset: str, variant: str, trial: int, steps: int) -> tuple[Path | None, str]:
    """(the state file a job may resume from and save to, or None; a line saying what happens to it).

    A state this trial cannot continue ends the call with one line (``SystemExit``), except one that is
    already past ``steps``: that trial trains from scratch without touching it.
    """
    if not state.exists():
        return state, ""
    expected = {"dataset": dataset, "variant": variant, "trial": trial, "protocol": _jsonable(PROTOCOL)}
    try:
        meta = read_state_meta(state)
    except StateError as e:
        raise SystemExit(f"toy_tables.py: {e}; move it away, or pass --overwrite to train the trial afresh")
    why = check_state(state, meta, expected, steps)
    if why is None:
        return state, f"{dataset} {LABELS[variant]} trial {trial}: resumes at step {meta['step']} ({state})"
    same_trial = all(meta.get(k) == v for k, v in expected.items())
    if same_trial and isinstance(meta.get("step"), int) and meta["step"] > steps:
        return None, f"{dataset} {LABELS[variant]} trial {trial}: trained from scratch; {state} (step " \
                     f"{meta['step']}) is left as it is"
    raise SystemExit(f"toy_tables.py: {why}; move it away, or pass --overwrite to train the trial afresh")


def _measured_at(saved: dict | None, state: Path, at: int) -> dict | None:
    """A trial's measurement at step ``at``, as a row of the table: its end, or an entry of its history (a trial
    in flight: its saved state's); None if it was not measured there.  May raise :class:`StateError`."""
    if saved is not None and saved["steps"] == at:
        return saved
    source = saved if saved is not None else read_state_meta(state) if state.exists() else None
    for h in (source or {}).get("history", []):
        if h["step"] == at:
            return {"dataset": source["dataset"], "variant": source["variant"], "trial": source["trial"],
                    "steps": at, **h}
    return None


def _load(path: Path, steps: int) -> dict | None:
    """A saved trial with the same steps and protocol, else None."""
    try:
        r = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return r if r.get("steps") == steps and r.get("protocol") == _jsonable(PROTOCOL) else None


def main(argv=None) -> dict:
    args = parse_args(argv)
    out = Path(args.out)
    started = time.perf_counter()
    jobs, results = [], {d: [] for d in args.dataset}
    for dataset in args.dataset:
        (out / dataset).mkdir(parents=True, exist_ok=True)
        for variant in args.variants:
            for trial in range(args.first_trial, args.first_trial + args.trials):
                path = _trial_path(out, dataset, variant, trial)
                steps = generator_steps(variant, args.steps)
                saved = None if args.overwrite else _load(path, steps)
                state = _state_path(out, dataset, variant, trial)
                if args.at_step is not None:
                    try:
                        row = _measured_at(saved, state, generator_steps(variant, args.at_step))
                    except StateError as e:
                        print(e)
                        row = None
                    if row is not None:
                        results[dataset].append(row)
                elif saved is not None:
                    results[dataset].append(saved)
                elif args.report_only:
                    if state.exists():
                        try:
                            print(f"{dataset} {LABELS[variant]} trial {trial}: in flight, at step "
                                  f"{read_state_meta(state)['step']} ({state})")
                        except StateError as e:
                            print(e)
                else:
                    if args.overwrite:
                        state.unlink(missing_ok=True)           # asked for: this trial is trained afresh
                    state, line = _resumable(state, dataset, variant, trial, steps)
                    if line:
                        print(line)
                    jobs.append((dataset, variant, trial, state))
    jobs.sort(key=lambda j: (j[2], args.dataset.index(j[0]), args.variants.index(j[1])))   # trial by trial
    print(f"{len(jobs)} trial(s) to train ({sum(map(len, results.values()))} reused), {args.steps} steps each, "
          f"{args.jobs} at a time", flush=True)

    def done(r: dict) -> None:
        path = _trial_path(out, r["dataset"], r["variant"], r["trial"])
        atomic_write_text(path, json.dumps(r, indent=1))         # a call killed mid-write leaves no half a file
        results[r["dataset"]].append(r)
        print(f"{r['dataset']} {LABELS[r['variant']]:<8} trial {r['trial']}: {r['modes_captured']:2d}/"
              f"{r['num_modes']} modes, {100 * r['high_quality']:5.1f}% high quality, reverse KL "
              f"{r['reverse_kl']:.3f} ({r['seconds']:.0f} s)", flush=True)

    def trial_args(dataset, variant, trial, state):
        return (dataset, variant, trial, generator_steps(variant, args.steps), PROTOCOL, args.eval_every, state,
                args.checkpoint_every)

    if args.jobs == 1 or len(jobs) <= 1:
        for job in jobs:
            done(run_trial(*trial_args(*job)))
    else:
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            futures = [pool.submit(run_trial, *trial_args(*job)) for job in jobs]
            for f in as_completed(futures):
                done(f.result())

    wall = time.perf_counter() - started
    tables, summaries, table_rows = [], {}, []
    for dataset in args.dataset:
        rows = sorted((r for r in results[dataset]
                       if r["variant"] in args.variants
                       and args.first_trial <= r["trial"] < args.first_trial + args.trials),
                      key=lambda r: (list(VARIANTS).index(r["variant"]), r["trial"]))
        summaries[dataset] = summarise(rows)
        table_rows += rows
        tables.append(format_table(dataset, summaries[dataset]))
        if args.history and args.at_step is None:
            tables.append(format_history(dataset, rows))
    info = machine()
    command = "python benchmarks/toy_tables.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    trial_seconds = sum(r["seconds"] for rs in results.values() for r in rs)
    wall_line = "this call trained nothing (--report-only)" if args.report_only else \
        f"{wall:.0f} s, {args.jobs} trial(s) at a time"
    header = (f"Command: `{command}`  \nMachine (this call): {info['cpu']}, {info['cores']} cores, "
              f"{info['blas_threads']} BLAS thread(s) per trial; {trained_on_line(table_rows)}  \n"
              f"Versions: Python {info['python']}, NumPy {info['numpy']}, tinygan {info['tinygan']} at "
              f"{info['commit']}  \nWall time: {wall_line}; the trials' own training time, summed: "
              f"{trial_seconds / 3600:.1f} h  \nmean +- standard error over the trials; high quality: within 3 std "
              "of the nearest mode; 2,500 samples per trial"
              + (f"  \nMeasured at step {args.at_step} of trials trained for {args.steps} steps (finished and in "
                 "flight)" if args.at_step is not None else "") + (f"  \n{args.note}" if args.note else ""))
    text = header + "\n\n" + "\n\n".join(tables) + "\n"
    print()
    print(text)
    suffix = "" if args.at_step is None else f"-at{args.at_step}"      # the full table's files stay as they are
    atomic_write_text(out / f"table{suffix}.md", text)
    record = {"args": vars(args), "machine": info, "wall_seconds": wall, "summary": summaries,
              "trials": {d: [{k: v for k, v in r.items() if k != "history"} for r in rs] for d, rs in results.items()}}
    atomic_write_text(out / f"results{suffix}.json", json.dumps(record, indent=1))
    if args.markdown:
        Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.markdown, text)
    return {"summary": summaries, "results": results, "wall_seconds": wall, "text": text}


if __name__ == "__main__":
    main()
