"""Mode collapse on the 25-Gaussian grid: the same MLP GAN trained with four losses over several seeds.

The target (``grid25``) is PacGAN's "2D-grid": 25 Gaussians with std 0.05 at
{-4, -2, 0, 2, 4}^2.  For each loss and seed this trains tinygan's MLP GAN
with :class:`tinygan.run.Trainer` (each loss with its paper's
optimizer, betas and n_critic, see ``tinygan/gan/recipes.py``; one learning
rate for all, 1e-3 unless ``--paper-lr``), draws 2,500 samples and
measures them as VEEGAN and PacGAN do (:func:`tinygan.metrics.mixture_metrics`):

* modes captured: modes with at least one sample within 3 std of them;
* high quality: the share of samples within 3 std of their nearest mode;
* reverse KL: KL(mode histogram of the high-quality samples || uniform).

One table (mean +- std over seeds) is printed and saved as ``results.json``;
``samples.png`` shows the last seed's samples for each loss over its
discriminator's (critic's) field.  Each run's folder (checkpoint, samples,
losses) is kept under ``--out``, so ``tinygan eval --checkpoint`` works on it.

What it shows: which losses keep all 25 modes and which collapse onto a few, as numbers
(mean and spread over seeds) and as one picture per loss.

    python examples/mode_collapse.py                  # 4 losses x 2 seeds x 300 steps: about 3 minutes on 2 CPU cores
    python examples/mode_collapse.py --steps 3000 --seeds 3
    python examples/mode_collapse.py --quick          # a smoke test (seconds), used by the slow test

The default budget is far shorter than the papers' (tens of thousands of
steps); the point is to watch the numbers move, then raise ``--steps``.
"""
from __future__ import annotations

import os

# The networks are tiny: a multi-threaded BLAS only adds overhead (and on a
# shared machine, contention).  Set before NumPy is imported; override freely.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from tinygan.gan.sampling import generate  # noqa: E402
from tinygan.run import TrainConfig, train  # noqa: E402
from tinygan.metrics import mixture_metrics  # noqa: E402
from tinygan.run.toy import save_toy_frame  # noqa: E402
from tinygan.viz.toy import save_panel  # noqa: E402

LOSSES = ("minimax", "nonsaturating", "lsgan", "wgan-gp")


def run_one(loss: str, seed: int, args) -> tuple[dict, object]:
    """Train one GAN on the grid; return its mixture metrics and the trainer."""
    config = TrainConfig(model="mlp", dataset=args.dataset, loss=loss, steps=args.steps, batch_size=args.batch_size,
                         lr=args.lr, seed=seed, out=str(Path(args.out) / f"{loss}_seed{seed}"), progress=False,
                         sample_every=max(1, args.steps // 4), checkpoint_every=args.steps)
    start = time.perf_counter()
    trainer = train(config, overwrite=args.overwrite)
    seconds = time.perf_counter() - start
    G = trainer.G
    samples = generate(G, G.sample_inputs(args.n, np.random.default_rng([seed, 100])))   # (n, 2)
    metrics = mixture_metrics(samples, args.dataset, n=args.n)
    metrics["seconds"] = seconds
    return metrics, trainer


def summarise(runs: list[dict]) -> dict:
    """Mean and std over seeds of the three numbers."""
    out = {}
    for key in ("modes_captured", "high_quality", "reverse_kl", "seconds"):
        values = np.array([r[key] for r in runs], dtype=np.float64)
        out[key] = (float(values.mean()), float(values.std()))
    return out


def table(summary: dict, num_modes: int, args) -> str:
    lr = "each loss's own lr" if args.lr is None else f"lr {args.lr:g}"
    lines = [f"{args.dataset}: {args.seeds} seed(s) x {args.steps} generator steps, batch {args.batch_size}, {lr}, "
             f"{args.n} samples each",
             "",
             f"| loss          | modes captured (of {num_modes}) | high quality (%) | reverse KL     | s / run |",
             "|---------------|------------------------|------------------|----------------|---------|"]
    for loss, s in summary.items():
        (m, ms), (h, hs), (k, ks), (t, _) = (s[key] for key in ("modes_captured", "high_quality", "reverse_kl",
                                                                 "seconds"))
        lines.append(f"| {loss:<13} | {m:5.1f} +- {ms:<4.1f}          | {100 * h:5.1f} +- {100 * hs:<4.1f}    "
                     f"| {k:5.3f} +- {ks:<5.3f} | {t:7.1f} |")
    return "\n".join(lines)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--losses", nargs="+", default=list(LOSSES), choices=["minimax", "nonsaturating", "lsgan", "wgan",
                                                                       "wgan-gp", "hinge"], metavar="LOSS",
                   help="the losses to compare: minimax, nonsaturating, lsgan, wgan, wgan-gp, hinge "
                        "(default: %(default)s)")
    p.add_argument("--seeds", type=int, default=2, metavar="K", help="seeds per loss: 0, 1, ... (default: %(default)s)")
    p.add_argument("--steps", type=int, default=300, metavar="N",
                   help="generator updates per run (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=256, help="samples per batch (default: %(default)s)")
    p.add_argument("--lr", type=float, default=1e-3,
                   help="one learning rate for every loss (default 1e-3, so that the short default budget shows "
                        "something; betas and n_critic stay each loss's own)")
    p.add_argument("--paper-lr", action="store_true", help="each loss's own learning rate instead of --lr")
    p.add_argument("--n", type=int, default=2500, help="samples per evaluation (2,500 as VEEGAN/PacGAN)")
    p.add_argument("--dataset", default="grid25", choices=["grid25", "ring8"],
                   help="the target: 25 Gaussians on a grid or 8 on a ring (default: %(default)s)")
    p.add_argument("--out", default="runs/mode_collapse", metavar="DIR",
                   help="folder for the table, the picture and one run folder per loss and seed "
                        "(default: %(default)s)")
    p.add_argument("--overwrite", action="store_true", help="replace the runs of an earlier call in --out")
    p.add_argument("--quick", action="store_true", help="1 seed, 20 steps, 500 samples: a smoke test")
    args = p.parse_args(argv)
    if args.quick:
        args.seeds, args.steps, args.n = 1, 20, 500
    if args.paper_lr:
        args.lr = None
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results, frames = {}, []
    for loss in args.losses:
        runs = []
        for seed in range(args.seeds):
            metrics, trainer = run_one(loss, seed, args)
            runs.append(metrics)
            print(f"{loss:<13} seed {seed}: {metrics['modes_captured']:2d} modes, "
                  f"{100 * metrics['high_quality']:5.1f}% high quality, reverse KL {metrics['reverse_kl']:.3f} "
                  f"({metrics['seconds']:.0f} s)", flush=True)
        frames.append(save_toy_frame(trainer.G, trainer.D, args.dataset, out / f"samples_{loss}.png",
                                     title=f"{loss}, seed {args.seeds - 1}, step {args.steps}",
                                     probabilistic=trainer.loss.probabilistic, n=1000, seed=args.seeds - 1))
        results[loss] = {"runs": runs, "summary": summarise(runs)}
    summary = {loss: r["summary"] for loss, r in results.items()}
    num_modes = results[args.losses[0]]["runs"][0]["num_modes"]
    text = table(summary, num_modes, args)
    print()
    print(text)
    save_panel(frames, out / "samples.png", columns=min(4, len(frames)))
    (out / "results.json").write_text(json.dumps({"args": vars(args), "results": results}, indent=2))
    (out / "table.md").write_text(text + "\n")
    print(f"\nwrote {out / 'results.json'}, {out / 'table.md'} and {out / 'samples.png'}")
    return results


if __name__ == "__main__":
    main()
