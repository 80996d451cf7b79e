"""The theory of the GAN paper, checked with numbers and drawn (``docs/theory.md`` walks through it).

1. Optimal discriminator.  On a grid of x values, with p_data (the bimodal
   1-D target) and a fixed p_g, train D by gradient ascent on V with tinygan
   (a free table of logits, then a small MLP) and compare it with
   D*(x) = p_data / (p_data + p_g).
2. The value at the optimum is a Jensen-Shannon divergence.  Slide p_g along
   the line; at each position C(G) = V(D*, G) and -log 4 + 2 JSD(p_data || p_g)
   (the JSD from its definition) agree to rounding.
3. Saturation (the GAN paper's non-saturating trick, Goodfellow et al. 2014,
   sec. 3).  The gradient that tinygan's minimax and non-saturating generator
   losses send back through the logit as D(G(z)) -> 0, and through a generator
   parameter, at the values of D(G(z)) it names.
4. Figure 1 of the GAN paper on the 1-D target, and the 2-D ring with D's
   field behind the points, from real training runs (PNG per step, GIF, panel).

What it shows: the GAN paper's propositions as numbers you can check and pictures you
can look at, before any real training.

    python examples/theory_lab.py                  # all four, into runs/theory_lab/: about 1 minute on 2 CPU cores
    python examples/theory_lab.py --skip-training  # parts 1-3 only (about 10 seconds)
    python examples/theory_lab.py --quick          # a smoke test: few steps everywhere (seconds)
    python examples/theory_lab.py --docs           # also copy the figures to docs/figures/
"""
from __future__ import annotations

import os

# Tiny networks: BLAS threads only add overhead.  Set before NumPy is imported.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import shutil  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from tinygan import theory as T  # noqa: E402
from tinygan.run import TrainConfig  # noqa: E402
from tinygan.run.toy import train_with_snapshots  # noqa: E402
from tinygan.viz import toy as V  # noqa: E402

DOCS = Path(__file__).resolve().parent.parent / "docs" / "figures"
FIGURES = ("optimal_discriminator.png", "value_vs_jsd.png", "saturation.png")   # parts 1-3, in --out


def part1_optimal_discriminator(out: Path, table_steps: int = 3000, mlp_steps: int = 2000) -> Path:
    print("1. optimal discriminator D*(x) = p_data / (p_data + p_g)")
    x = T.make_grid(-6, 6, 241)
    p_data = T.toy_on_grid("bimodal1d", x)                        # 1/2 N(-2, .5^2) + 1/2 N(2, .5^2)
    p_g = T.gaussian_mixture_on_grid(x, [0.5], 1.2)                # a generator that has not split in two
    d_star = T.optimal_discriminator(p_data, p_g)
    d_table, v_table = T.train_discriminator(x, p_data, p_g, "table", steps=table_steps, lr=0.05)
    d_mlp, v_mlp = T.train_discriminator(x, p_data, p_g, "mlp", steps=mlp_steps, lr=0.01)
    mass = (p_data + p_g) / 2                                      # where the comparison matters
    for name, d, hist in (("table", d_table, v_table), ("MLP", d_mlp, v_mlp)):
        err = float((mass * np.abs(d - d_star)).sum())
        print(f"   {name:5s} D: E_m |D - D*| = {err:.2e}   V(D, G) = {hist[-1]:.6f}")
    c = T.value_at_optimum(p_data, p_g)
    jsd = T.js_divergence(p_data, p_g)
    print(f"   V(D*, G) = {c:.6f};  -log 4 + 2 JSD = {-T.LOG4 + 2 * jsd:.6f}  (JSD = {jsd:.4f} nats)")
    return V.save_optimal_d_plot(x, p_data, p_g, d_star, {"trained table of logits": d_table, "trained MLP": d_mlp},
                                 out / "optimal_discriminator.png",
                                 title="D trained by gradient ascent on V (tinygan) vs D* = p_data/(p_data+p_g)")


def part2_value_is_jsd(out: Path) -> Path:
    print("2. C(G) = max_D V(D, G) = -log 4 + 2 JSD(p_data || p_g)")
    x = T.make_grid(-4, 12, 321)
    p_data = T.toy_on_grid("gauss1d", x)                           # N(4, 0.5^2)
    shifts = np.linspace(-1, 9, 81)
    values, jsds = [], []
    for mu in shifts:
        p_g = T.gaussian_mixture_on_grid(x, [mu], 0.5)
        values.append(T.value_at_optimum(p_data, p_g))
        jsds.append(T.js_divergence(p_data, p_g))
    gap = np.max(np.abs(np.array(values) - (-T.LOG4 + 2 * np.array(jsds))))
    print(f"   max |C(G) - (-log 4 + 2 JSD)| over {len(shifts)} generators: {gap:.1e}; "
          f"min C(G) = {min(values):.6f} at mean {shifts[int(np.argmin(values))]:.2f} (-log 4 = {-T.LOG4:.6f})")
    return V.save_value_curve(shifts, values, jsds, out / "value_vs_jsd.png",
                              title=r"p_data = N(4, 0.5^2), p_g = N(mean, 0.5^2)")


def part3_saturation(out: Path) -> Path:
    print("3. the generator's gradient as D(G(z)) -> 0")
    d = np.logspace(-8, np.log10(0.99), 200)                     # the curve that is drawn
    grads = T.generator_gradients(d)
    points = T.generator_gradients([0.5, 1e-2, 1e-4, 1e-6])        # the points printed, evaluated exactly there
    for k, dk in enumerate(points["D"]):
        label = f"D = {dk:g}:"
        print(f"   {label:<11s} minimax dL/dl = {points['dl_minimax'][k]: .2e}   "
              f"non-saturating dL/dl = {points['dl_nonsaturating'][k]: .2e}")
    z = np.random.default_rng(0).normal(0, 0.3, 256)
    for theta in (0.0, -1.0, -3.0):
        dm, gm = T.shift_generator_gradient("minimax", theta, z)
        _, gn = T.shift_generator_gradient("nonsaturating", theta, z)
        print(f"   G(z) = theta + z, theta = {theta:4.1f}: mean D(G(z)) = {dm:.1e}, "
              f"dL/dtheta minimax {gm: .2e}, non-saturating {gn: .2e}")
    return V.save_saturation_plot(grads, out / "saturation.png")


def part4_training_pictures(out: Path, steps_1d, steps_2d) -> list[Path]:
    print("4. Figure 1 (1-D) and D's field (2-D) during training")
    made = []
    for dataset, steps, lr in (("gauss1d", steps_1d, 1e-3), ("ring8", steps_2d, 1e-3)):
        config = TrainConfig(model="mlp", dataset=dataset, loss="nonsaturating", batch_size=128, lr=lr, seed=0,
                             out=str(out / dataset), progress=False)
        res = train_with_snapshots(config, steps, out / dataset, panel_columns=2 if len(steps) == 4 else None)
        print(f"   {dataset}: {len(res['frames'])} frames, {res['gif']}, {res['panel']}")
        made.append(res["panel"])
    return made


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/theory_lab", metavar="DIR",
                   help="folder for the figures and the training runs of part 4 (default: %(default)s)")
    p.add_argument("--skip-training", action="store_true", help="parts 1-3 only")
    p.add_argument("--steps-1d", type=int, nargs="+", default=[0, 50, 150, 1500], metavar="STEP",
                   help="part 4: the steps drawn for the 1-D run (default: %(default)s)")
    p.add_argument("--steps-2d", type=int, nargs="+", default=[0, 200, 600, 2000], metavar="STEP",
                   help="part 4: the steps drawn for the 2-D ring (default: %(default)s)")
    p.add_argument("--quick", action="store_true",
                   help="a smoke test (seconds): few training steps everywhere, so the numbers are rough")
    p.add_argument("--overwrite", action="store_true", help="replace the training runs of an earlier call in --out")
    p.add_argument("--docs", action="store_true", help="copy the figures into docs/figures/")
    args = p.parse_args(argv)
    if args.quick:
        args.steps_1d, args.steps_2d = [0, 3], [0, 3]
    out = Path(args.out)
    previous = [out / name for name in FIGURES] + sorted(out.glob("*/step_*.png")) + sorted(out.glob("*/snapshots*"))
    if any(f.exists() for f in previous):
        if not args.overwrite:
            p.error(f"--out {out} already holds the figures of an earlier call; add --overwrite or choose "
                    "another --out")
        for f in previous:
            f.unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    d_steps = (60, 40) if args.quick else (3000, 2000)
    figures = [part1_optimal_discriminator(out, *d_steps), part2_value_is_jsd(out), part3_saturation(out)]
    if not args.skip_training:
        panels = part4_training_pictures(out, args.steps_1d, args.steps_2d)
        figures += [panels[0], panels[1]]
    names = ["optimal_discriminator.png", "value_vs_jsd.png", "saturation.png", "figure1_gauss1d.png",
             "ring8_field.png"]
    print("figures:", *figures, sep="\n   ")
    if args.docs:
        DOCS.mkdir(parents=True, exist_ok=True)
        for src, name in zip(figures, names):
            shutil.copyfile(src, DOCS / name)
        print(f"copied to {DOCS}")


if __name__ == "__main__":
    main()
