"""A scoreboard of the GAN family on the bundled digits: every loss and model at one budget, several seeds.

    python benchmarks/scoreboard.py                         # the committed table: 3 seeds, --steps 1000
    python benchmarks/scoreboard.py --only wgan-gp cgan     # some rows
    python benchmarks/scoreboard.py --jobs 2 --threads 1    # two runs at a time, one thread each
    python benchmarks/scoreboard.py --quick                 # a smoke test (CI): 1 seed, 2 steps, 2 rows

Each (row, seed) run is saved as it finishes (``--work``, default ``runs/scoreboard``) and reused
by the next invocation with the same budget, so an interrupted scoreboard picks up where it
stopped; ``--fresh`` trains everything again.

In the spirit of "Are GANs Created Equal?" (Lucic et al. 2018) at laptop scale: each row
trains with ``tinygan.run.Trainer`` (each loss with its paper's recipe,
``tinygan/gan/recipes.py``; the same DCGAN networks, batch, budget in generator steps and
``--ema``), is scored with ``tinygan eval``'s metrics (``docs/metrics.md``: Frechet
distance, Inception-style score, k-NN precision/recall and class coverage in tinygan's
digit-classifier feature space; conditional accuracy for CGAN, code agreement for
InfoGAN) from 2,500 samples at several points of training, and is reported as mean +-
standard error over seeds, with a sample grid per row (seed 0) and FD-against-step
curves.  Writes ``docs/results.md`` (or ``--markdown``) and its figures beside it.

A budget counts generator steps: the critic losses (WGAN, WGAN-GP) do 5 critic updates
per step, so they get 5x the discriminator updates and take longer; the table gives the
seconds too.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from tinygan.benchmark.report import git_commit
from tinygan.gan.recipes import recipe_for
from tinygan.metrics.evaluate import evaluate_generator
from tinygan.run import TrainConfig, Trainer
from tinygan.viz import save_image_grid, save_loss_curves

ROOT = Path(__file__).resolve().parents[1]

# Row name -> TrainConfig settings.  Every row: the DCGAN networks on the bundled digits.
ROWS = {
    "nonsaturating": dict(loss="nonsaturating"),
    "minimax": dict(loss="minimax"),
    "lsgan": dict(loss="lsgan"),
    "hinge": dict(loss="hinge"),
    "wgan": dict(loss="wgan"),
    "wgan-gp": dict(loss="wgan-gp"),
    "rsgan": dict(loss="rsgan"),
    "ragan": dict(loss="ragan"),
    "ralsgan": dict(loss="ralsgan"),
    "dragan": dict(loss="dragan"),
    "sngan (hinge)": dict(model="sngan", loss="hinge"),
    "nonsaturating + spectral norm": dict(spectral_norm=True),
    "nonsaturating + R1": dict(loss="nonsaturating", r1=1.0),
    "cgan": dict(model="cgan"),
    "infogan": dict(model="infogan", nz=62),
    "acgan": dict(model="acgan"),
    "nonsaturating + DiffAugment": dict(diffaugment="translation,cutout,color"),
    "nonsaturating + mbstd": dict(mbstd=True),
    "unrolled GAN (K=2)": dict(unroll=2),
}
COLUMNS = [("frechet_distance", "FD", 1), ("inception_score", "IS", 2), ("precision", "precision", 2),
           ("recall", "recall", 2), ("classes_present", "classes", 1), ("conditional_accuracy", "cond. acc.", 2),
           ("code_agreement", "code agr.", 2)]


def train_row(name: str, settings: dict, seed: int, args, out: Path) -> list[dict]:
    """Train one row for one seed; returns the metrics at each evaluation step."""
    lr = recipe_for(settings.get("loss", "nonsaturating")).lr           # the paper's lr, not the run default's 8x
    cfg = TrainConfig(seed=seed, steps=args.steps, ema=args.ema, progress=False, out=str(out / "unused"),
                      **{"lr": lr, "r1": 0.0, **settings})       # and no R1 unless the row has it
    t = Trainer(cfg)
    points, spent, rows = sorted(set(args.eval_at)), 0.0, []
    for target in points:
        start = time.perf_counter()
        while t.step < target:
            t.train_step()
            t.step += 1
        spent += time.perf_counter() - start
        result = evaluate_generator(t.sampler, t.config, n=args.n, seed=seed)
        rows.append({"row": name, "seed": seed, "step": t.step, "seconds": spent, **result["metrics"]})
        print(json.dumps({k: v for k, v in rows[-1].items() if not isinstance(v, (list, dict))}), file=sys.stderr,
              flush=True)
    if seed == args.seeds[0]:
        grid = out / f"scoreboard_{_slug(name)}.png"
        save_image_grid(t.generate(t.fixed), grid, nrow=t.grid_cols, scale=1)
    return rows


_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _budget(args) -> dict:
    """What a saved run must share with this invocation to be reused."""
    return {"steps": args.steps, "evals": args.evals, "ema": args.ema, "n": args.n}


def _commits(work: Path, args) -> str:
    """The commits of the saved runs this report reads (runs saved by different code are named)."""
    found = set()
    for name in args.only:
        for seed in args.seeds:
            path = _run_file(work, name, seed)
            found.add(json.loads(path.read_text()).get("commit", "unknown") if path.is_file() else "unknown")
    return ", ".join(sorted(found))


def _run_file(work: Path, name: str, seed: int) -> Path:
    return work / f"{_slug(name)}_seed{seed}.json"


def _saved_rows(work: Path, name: str, seed: int, args) -> list[dict] | None:
    """The rows of a finished run with this budget, or None."""
    path = _run_file(work, name, seed)
    if not path.is_file():
        return None
    saved = json.loads(path.read_text())
    return saved["rows"] if saved.get("budget") == _budget(args) else None


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name).strip("_").replace("__", "_")


def _mean_se(values) -> str:
    v = np.asarray([x for x in values if x is not None], dtype=np.float64)
    if v.size == 0:
        return "-"
    if v.size < 2:
        return f"{v.mean():.3g}"
    return f"{v.mean():.3g} +- {v.std(ddof=1) / np.sqrt(v.size):.2g}"


def report(args, rows: list[dict], wall: float, out: Path, commits: str = "unknown") -> Path:
    final = [r for r in rows if r["step"] == max(args.eval_at)]
    lines = ["# Scoreboard: the GAN family on the bundled digits", "",
             f"Command: `python benchmarks/scoreboard.py {shlex.join(sys.argv[1:])}`", "",
             f"Code: tinygan at commit {commits} (each run records the commit that trained it); report written "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.", "",
             f"Machine: {platform.machine()}, {os.cpu_count()} CPUs; Python {platform.python_version()}, NumPy "
             f"{np.__version__}; {args.jobs} run(s) at a time, {args.threads} thread(s) each; wall time of this "
             f"call {wall / 60:.1f} min (runs reused from an earlier call not counted); the runs' own training time, "
             f"summed: {sum(r['seconds'] for r in final) / 3600:.1f} h.  "
             + (f"{args.note}  " if args.note else "") +
             f"Budget: {max(args.eval_at)} generator steps, "
             f"batch 64, 28x28, ema {args.ema}; {len(args.seeds)} seeds; metrics from {args.n} samples in tinygan's "
             "digit-classifier feature space (not Inception; the real-vs-real FD floor is about 4). "
             "Mean +- standard error over seeds.", "",
             "| row | " + " | ".join(c[1] for c in COLUMNS) + " | seconds | samples (seed 0) |",
             "| --- | " + " | ".join("---" for _ in COLUMNS) + " | --- | --- |"]
    for name in args.only:
        rs = [r for r in final if r["row"] == name]
        cells = [_mean_se([r.get(key) for r in rs]) for key, _, _ in COLUMNS]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {_mean_se([r['seconds'] for r in rs])} | "
                     f"![{name}](figures/scoreboard_{_slug(name)}.png) |")
    curves = {}
    for name in args.only:
        per_step = [np.mean([r["frechet_distance"] for r in rows if r["row"] == name and r["step"] == s])
                    for s in sorted(set(args.eval_at))]
        curves[name] = per_step
    save_loss_curves(sorted(set(args.eval_at)), curves, out / "scoreboard_fd.png", title="FD against generator steps",
                     xlabel="generator step", ylabel="Frechet distance (digit classifier)", logy=True)
    lines += ["", "![FD against steps](figures/scoreboard_fd.png)", ""]
    md = Path(args.markdown)
    md.write_text("\n".join(lines))
    (out / "scoreboard.json").write_text(json.dumps({"args": vars(args), "wall_s": wall, "rows": rows}, indent=1,
                                                    default=str))
    return md


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", nargs="+", default=list(ROWS), choices=list(ROWS), metavar="ROW",
                   help=f"rows to run (default all: {', '.join(ROWS)})")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=1000, help="generator steps per run")
    p.add_argument("--evals", type=int, default=4, help="evaluation points per run (the last at --steps)")
    p.add_argument("--ema", type=float, default=0.0, help="--ema of every row")
    p.add_argument("--n", type=int, default=2500, help="samples per evaluation")
    p.add_argument("--markdown", default=str(ROOT / "docs" / "results.md"))
    p.add_argument("--figures", default=None, help="folder of the figures (default: figures/ beside --markdown)")
    p.add_argument("--jobs", type=int, default=1, help="runs trained at once, each in its own process")
    p.add_argument("--threads", type=int, default=2, help="BLAS threads per run (with --jobs 2 on 2 cores: 1)")
    p.add_argument("--work", default="runs/scoreboard",
                   help="folder of the finished runs; a run already there with this budget is reused")
    p.add_argument("--fresh", action="store_true", help="train every run again, even those saved in --work")
    p.add_argument("--note", default="", help="a sentence for the report's header (how the machine was shared)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--quick", action="store_true", help="smoke test: 1 seed, 2 steps, 2 rows, 200 samples")
    args = p.parse_args(argv)
    for flag, value in (("--jobs", args.jobs), ("--threads", args.threads), ("--steps", args.steps),
                        ("--evals", args.evals), ("--n", args.n)):
        if value < 1:
            p.error(f"{flag} must be at least 1, got {value}")
    if args.quick:
        args.seeds, args.steps, args.evals, args.n = [0], 2, 1, 200
        args.only = args.only[:2] if len(args.only) == len(ROWS) else args.only
    args.eval_at = [max(1, round(args.steps * (i + 1) / args.evals)) for i in range(args.evals)]
    out = Path(args.figures) if args.figures else Path(args.markdown).parent / "figures"
    out.mkdir(parents=True, exist_ok=True)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    if args.worker:                                  # one (row, seed) in this process: save it and stop
        name, seed = args.only[0], args.seeds[0]
        rows = train_row(name, ROWS[name], seed, args, out)
        saved = {"budget": _budget(args), "commit": git_commit("tinygan"), "rows": rows}
        _run_file(work, name, seed).write_text(json.dumps(saved, default=str))
        return 0
    started = time.time()
    todo = [(name, seed) for name in args.only for seed in args.seeds
            if args.fresh or _saved_rows(work, name, seed, args) is None]
    env = {**os.environ, "PYTHONPATH": str(ROOT), **{k: str(args.threads) for k in _THREAD_VARS}}

    def train(job: tuple[str, int]) -> None:
        name, seed = job
        cmd = [sys.executable, __file__, "--worker", "--only", name, "--seeds", str(seed), "--steps",
               str(args.steps), "--evals", str(args.evals), "--ema", str(args.ema), "--n", str(args.n),
               "--figures", str(out), "--work", str(work)]
        print(f"training {name}, seed {seed}", file=sys.stderr, flush=True)
        subprocess.run(cmd, check=True, env=env)

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        list(pool.map(train, todo))
    rows = [r for name in args.only for seed in args.seeds for r in _saved_rows(work, name, seed, args)]
    md = report(args, rows, time.time() - started, out, _commits(work, args))
    print(f"wrote {md}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
