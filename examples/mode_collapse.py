"""Mode collapse and its cure, side by side: a GAN and PacGAN2 on the 25-Gaussian grid.

The target (``grid25``) is PacGAN's "2D-grid": 25 Gaussians with std 0.05 at
{-4, -2, 0, 2, 4}^2.  Both rows train the networks of the VEEGAN/PacGAN toy
experiments (G: 4 x [400 ReLU, batch norm]; D: 3 x [200 maxout units of 5
pieces]; weights N(0, 0.02)) with tinygan's training step
(:func:`tinygan.gan.steps.d_step`, :func:`~tinygan.gan.steps.g_step`), the
non-saturating loss and Adam (beta1 0.8, as PacGAN's code), from the same
seed.  The only difference is the discriminator's input: PacGAN2 (Lin et al.
2018) judges *pairs* of samples, all real or all generated
(:class:`tinygan.gan.pack.Packed`; ``tinygan train --pack 2`` does the same for
any model).  A generator that drops modes makes pairs that look alike, which
a packed D sees; the plain D cannot.  Then each row draws 2,500 samples and
measures them as VEEGAN and PacGAN do (:func:`tinygan.metrics.mixture_metrics`):

* modes captured: modes with at least one sample within 3 std of them;
* high quality: the share of samples within 3 std of their nearest mode;
* reverse KL: KL(mode histogram of the high-quality samples || uniform): 0 when
  every mode gets its share, log 25 = 3.2 when one mode gets everything.

One table (mean +- std over seeds) is printed and saved as ``table.md`` and
``results.json``; ``samples.png`` shows each row's samples (red) over its
discriminator's field (a packed D scores a pair of copies of each point).

    python examples/mode_collapse.py        # GAN vs PacGAN2, 1 seed, 3,000 steps, 2 rows side by side:
                                            # about 5 minutes on 2 idle CPU cores
    python examples/mode_collapse.py --seeds 3 --packs 1 2 4
    python examples/mode_collapse.py --losses nonsaturating wgan-gp
    python examples/mode_collapse.py --quick           # a smoke test (seconds)

The default budget is the papers' networks with a 10x larger learning rate
(1e-3) for 3,000 steps instead of 1e-4 for 400,000: long enough for the plain
GAN to pile its samples onto a few modes while PacGAN2 spreads over nearly all
of them, far from the papers' sharp final samples (docs/theory.md, section 12,
has both this example's numbers and the papers' table, made by
``benchmarks/toy_tables.py``).
"""
from __future__ import annotations

import os

# The networks are small: a multi-threaded BLAS only adds overhead (and on a
# shared machine, contention).  Set before NumPy is imported; override freely.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from tinygan import nn, optim  # noqa: E402
from tinygan import random as _random  # noqa: E402
from tinygan.autograd import Tensor, no_grad  # noqa: E402
from tinygan.data import sample_toy  # noqa: E402
from tinygan.gan.losses import get_loss  # noqa: E402
from tinygan.gan.models import MLPDiscriminator, MLPGenerator  # noqa: E402
from tinygan.gan.pack import Packed  # noqa: E402
from tinygan.gan.recipes import recipe_for  # noqa: E402
from tinygan.gan.sampling import generate  # noqa: E402
from tinygan.gan.steps import d_step, g_step  # noqa: E402
from tinygan.metrics import mixture_metrics  # noqa: E402
from tinygan.run.toy import save_toy_frame  # noqa: E402
from tinygan.viz.toy import save_panel  # noqa: E402

LOSSES = ("minimax", "nonsaturating", "lsgan", "wgan", "wgan-gp", "hinge")


def networks(pack: int):
    """The VEEGAN/PacGAN toy networks; with pack M the discriminator judges M samples at once."""
    G = MLPGenerator(nz=2, out_shape=(2,), hidden=(400, 400, 400, 400), batch_norm=True)
    D = MLPDiscriminator((2 * pack,), hidden=(200, 200, 200), activation="maxout", maxout_pieces=5)
    for m in list(G.modules()) + list(D.modules()):                 # weights N(0, 0.02), biases 0
        if isinstance(m, nn.Linear):
            m.weight.data[...] = 0.02 * _random.default_generator().standard_normal(m.weight.shape)
            m.bias.data[...] = 0
    return G, (D if pack == 1 else Packed(D, pack))


def run_one(loss_name: str, pack: int, seed: int, args) -> dict:
    """Train one row from ``seed``; return its mixture metrics and draw its samples over D's field."""
    loss, recipe = get_loss(loss_name), recipe_for(loss_name)
    _random.manual_seed(seed)
    G, D = networks(pack)
    betas = (0.8, 0.999) if loss_name in ("nonsaturating", "minimax") else recipe.betas   # PacGAN's Adam
    make = (lambda p: optim.RMSprop(p, lr=args.lr)) if betas is None else \
        (lambda p: optim.Adam(p, lr=args.lr, betas=betas))
    opt_g, opt_d = make(G.parameters()), make(D.parameters())
    rng = np.random.default_rng([seed, 0])
    n = args.batch_size * pack                                       # batch_size packs of `pack` samples
    start = time.perf_counter()
    for _ in range(args.steps):
        for i in range(recipe.n_critic):                             # (1) update D, n_critic times
            real = Tensor(sample_toy(args.dataset, n, rng))
            z = Tensor(rng.standard_normal((n, G.nz)).astype(np.float32))
            if i < recipe.n_critic - 1:
                with no_grad():
                    fake = G(z=z)
            else:
                fake = G(z=z)                                        # kept with its graph for step (2)
            d_step(D, opt_d, loss, real, fake, gp_weight=recipe.gp_weight, clip_value=recipe.clip_value,
                   rng=rng, stats=False)
        g_step(D, opt_g, loss, fake, stats=False)                    # (2) update G
    seconds = time.perf_counter() - start
    samples = generate(G, G.sample_inputs(args.n, np.random.default_rng([seed, 100])))   # (n, 2)
    metrics = mixture_metrics(samples, args.dataset, n=args.n)
    name = row_name(loss_name, pack)
    frame = save_toy_frame(G, D if pack == 1 else D.on_copies(), args.dataset,
                           Path(args.out) / f"samples_{loss_name}_pack{pack}_seed{seed}.png",
                           title=f"{name}, seed {seed}, step {args.steps}: {metrics['modes_captured']} modes, "
                                 f"KL {metrics['reverse_kl']:.2f}",
                           probabilistic=loss.probabilistic, n=1000, seed=seed)
    return {**{k: metrics[k] for k in ("modes_captured", "num_modes", "high_quality", "reverse_kl", "mode_counts")},
            "seconds": seconds, "row": name, "seed": seed, "frame": str(frame)}


def row_name(loss: str, pack: int) -> str:
    base = {"nonsaturating": "GAN", "minimax": "GAN (minimax)"}.get(loss, loss)
    return base if pack == 1 else f"Pac{base}{pack}" if base == "GAN" else f"{base} pack {pack}"


def summarise(runs: list[dict]) -> dict:
    """Mean and std over seeds of the three numbers and the seconds."""
    out = {}
    for key in ("modes_captured", "high_quality", "reverse_kl", "seconds"):
        values = np.array([r[key] for r in runs], dtype=np.float64)
        out[key] = (float(values.mean()), float(values.std()))
    return out


def table(summary: dict, num_modes: int, args) -> str:
    lines = [f"{args.dataset}: {args.seeds} seed(s) x {args.steps} generator steps, {args.batch_size} packs per "
             f"batch, lr {args.lr:g}, {args.n} samples each",
             "",
             f"| row           | modes captured (of {num_modes}) | high quality (%) | reverse KL     | s / run |",
             "|---------------|------------------------|------------------|----------------|---------|"]
    for row, s in summary.items():
        (m, ms), (h, hs), (k, ks), (t, _) = (s[key] for key in ("modes_captured", "high_quality", "reverse_kl",
                                                                 "seconds"))
        lines.append(f"| {row:<14}| {m:5.1f} +- {ms:<4.1f}          | {100 * h:5.1f} +- {100 * hs:<4.1f}    "
                     f"| {k:5.3f} +- {ks:<5.3f} | {t:7.1f} |")
    return "\n".join(lines)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--losses", nargs="+", default=["nonsaturating"], choices=LOSSES, metavar="LOSS",
                   help=f"the losses: {', '.join(LOSSES)} (default: %(default)s); each is trained with every "
                        "--packs value")
    p.add_argument("--packs", nargs="+", type=int, default=[1, 2], metavar="M",
                   help="pack sizes: 1 is the plain GAN, 2 is PacGAN2 (default: %(default)s)")
    p.add_argument("--seeds", type=int, default=1, metavar="K", help="seeds per row: 0, 1, ... (default: %(default)s)")
    p.add_argument("--steps", type=int, default=3000, metavar="N",
                   help="generator updates per run (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=100, metavar="N",
                   help="packs per batch, each of M samples, real and generated alike (default: %(default)s, as "
                        "PacGAN)")
    p.add_argument("--lr", type=float, default=1e-3,
                   help="Adam's learning rate for both networks (default: %(default)s; the papers: 1e-4 for "
                        "400,000 steps)")
    p.add_argument("--n", type=int, default=2500, help="samples per evaluation (default: 2,500 as VEEGAN/PacGAN)")
    p.add_argument("--dataset", default="grid25", choices=["grid25", "ring8"],
                   help="the target: 25 Gaussians on a grid or 8 on a ring (default: %(default)s)")
    p.add_argument("--jobs", type=int, default=2, metavar="J", help="runs trained side by side (default: %(default)s)")
    p.add_argument("--out", default="runs/mode_collapse", metavar="DIR",
                   help="folder for the table, results.json and the pictures (default: %(default)s)")
    p.add_argument("--overwrite", action="store_true", help="replace the results of an earlier call in --out")
    p.add_argument("--quick", action="store_true", help="1 seed, 20 steps, 500 samples: a smoke test")
    args = p.parse_args(argv)
    if args.quick:
        args.seeds, args.steps, args.n = 1, 20, 500
    if min(args.packs) < 1 or args.seeds < 1 or args.steps < 1 or args.batch_size < 1 or args.jobs < 1:
        p.error("--packs, --seeds, --steps, --batch-size and --jobs must be >= 1")
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    out = Path(args.out)
    if (out / "results.json").exists() and not args.overwrite:
        raise SystemExit(f"{out} holds the results of an earlier call; pass --overwrite or another --out")
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(loss, pack, seed) for loss in args.losses for pack in args.packs for seed in range(args.seeds)]
    with ProcessPoolExecutor(max_workers=min(args.jobs, len(jobs))) as pool:
        runs = list(pool.map(run_one, *zip(*jobs), [args] * len(jobs)))
    results = {}
    for r in runs:
        print(f"{r['row']:<13} seed {r['seed']}: {r['modes_captured']:2d} modes, {100 * r['high_quality']:5.1f}% "
              f"high quality, reverse KL {r['reverse_kl']:.3f} ({r['seconds']:.0f} s)", flush=True)
        results.setdefault(r["row"], []).append(r)
    summary = {row: summarise(rs) for row, rs in results.items()}
    text = table(summary, runs[0]["num_modes"], args)
    print()
    print(text)
    last = [rs[-1]["frame"] for rs in results.values()]                    # each row's last seed
    save_panel(last, out / "samples.png", columns=min(4, len(last)))
    (out / "results.json").write_text(json.dumps({"args": vars(args), "results": results, "summary": summary},
                                                 indent=2))
    (out / "table.md").write_text(text + "\n")
    print(f"\nwrote {out / 'results.json'}, {out / 'table.md'} and {out / 'samples.png'}")
    return results


if __name__ == "__main__":
    main()
