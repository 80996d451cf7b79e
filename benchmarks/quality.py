"""Training quality side by side: tinygan and PyTorch's DCGAN example recipe on the bundled digits.

    python benchmarks/quality.py --mode steps --seeds 0 1 2 --steps 2000      (b) same steps, same networks, no EMA
    python benchmarks/quality.py --mode time --seeds 0 1 2 --seconds 540      (a) same wall-clock, each its own recipe
    python benchmarks/quality.py --quick                                      a smoke test (CI)
    python benchmarks/quality.py --render benchmarks/results/quality-time.json   the table and plot again, no training

Each run trains in its own process (one framework per process: neither's worker threads
slow the other) and saves snapshots of G's weights with the step and the training seconds
so far (time spent saving and scoring is not counted).  The parent then scores every
snapshot with tinygan's digit-classifier metrics (``tinygan.metrics``: Frechet distance in
the classifier's feature space, class counts) from 2,500 samples, and writes a markdown
table (mean +- standard error over seeds) and a plot of FD against time or steps.

* **PyTorch**: ``examples/dcgan/main.py``'s recipe on the same 28x28 networks (the
  benchmark's layer-by-layer mirror of tinygan's DCGAN, so PyTorch's weights load into
  tinygan's G for scoring): its ``weights_init``, BCE on D's logits with real label 1 and
  fake 0, Adam 2e-4 (0.5, 0.999), batch 64, the fake batch reused for G's step.
* **tinygan**: in ``--mode steps`` exactly that recipe (``tinygan train --lr 2e-4 --ema 0 --r1 0``); in
  ``--mode time`` the default job, ``tinygan train`` with no flags, for as long as PyTorch.

PyTorch comes from the ``bench`` extra: ``pip install -e ".[bench]"``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from tinygan.benchmark.report import git_commit
from tinygan.gan.ema import TF_WARMUP

ROOT = Path(__file__).resolve().parents[1]
N_SAMPLES = 2500


# ----------------------------------------------------------------------------- workers (child processes)

def _snapshot_times(args) -> list[float]:
    if args.mode == "steps":
        return [float(s) for s in range(args.eval_every, args.steps + 1, args.eval_every)]
    return [args.seconds * (i + 1) / args.points for i in range(args.points)]


def worker_tinygan(args) -> None:
    from tinygan.gan.recipes import DCGAN
    from tinygan.kernels.memory import reuse_freed_memory
    reuse_freed_memory()                             # as `tinygan train` (the job --mode time stands for) does
    from tinygan.run import TrainConfig, Trainer
    cfg = TrainConfig(seed=args.seed, out=str(Path(args.work) / "unused"), progress=False,
                      **({"ema": 0.0, "lr": DCGAN.lr, "r1": 0.0} if args.mode == "steps" else {}))
    t = Trainer(cfg)
    snaps, marks, spent = {}, _snapshot_times(args), 0.0
    while marks:
        start = time.perf_counter()
        t.train_step()
        t.step += 1
        spent += time.perf_counter() - start
        clock = t.step if args.mode == "steps" else spent
        if clock >= marks[0]:
            marks.pop(0)
            for k, v in t.sampler.state_dict().items():
                snaps[f"{t.step}/{k}"] = np.array(v)
            snaps[f"{t.step}/seconds"] = np.array(spent)
    np.savez(args.snapshots, config=np.frombuffer(json.dumps(t.config.to_dict()).encode(), np.uint8), **snaps)


def worker_torch(args) -> None:
    import torch
    from tinygan.benchmark.step import torch_mirror, torch_weights_init
    from tinygan.data import DataLoader, get_dataset
    from tinygan.gan import DCGANDiscriminator, DCGANGenerator
    from tinygan.gan.recipes import DCGAN
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    nz, ngf, ndf, batch = 100, 64, 64, 64
    G = torch_mirror(DCGANGenerator(nz=nz, ngf=ngf, nc=1, image_size=28), "G")
    D = torch_mirror(DCGANDiscriminator(nc=1, ndf=ndf, image_size=28), "D")
    G.apply(torch_weights_init)
    D.apply(torch_weights_init)
    criterion = torch.nn.BCEWithLogitsLoss()          # the example's BCELoss after a Sigmoid, in the stable form
    opt_d = torch.optim.Adam(D.parameters(), lr=DCGAN.lr, betas=DCGAN.betas)
    opt_g = torch.optim.Adam(G.parameters(), lr=DCGAN.lr, betas=DCGAN.betas)
    loader = DataLoader(get_dataset("mnist"), batch_size=batch, shuffle=True, seed=args.seed, drop_last=True)
    snaps, marks, spent, step, epoch = {}, _snapshot_times(args), 0.0, 0, 0
    while marks:
        for x, _ in loader.epoch_batches(epoch):
            start = time.perf_counter()
            real = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
            fake = G(torch.randn(batch, nz))
            # (1) Update D: maximize log(D(x)) + log(1 - D(G(z)))
            D.zero_grad()
            err_d = criterion(D(real), torch.ones(batch)) + criterion(D(fake.detach()), torch.zeros(batch))
            err_d.backward()
            opt_d.step()
            # (2) Update G: maximize log(D(G(z)))
            G.zero_grad()
            err_g = criterion(D(fake), torch.ones(batch))
            err_g.backward()
            opt_g.step()
            step += 1
            spent += time.perf_counter() - start
            clock = step if args.mode == "steps" else spent
            if marks and clock >= marks[0]:
                marks.pop(0)
                for k, v in G.state_dict().items():
                    snaps[f"{step}/{k}"] = v.detach().numpy().copy()
                snaps[f"{step}/seconds"] = np.array(spent)
            if not marks:
                break
        epoch += 1
    config = {"model": "dcgan", "dataset": "mnist", "nz": nz, "ngf": ngf, "ndf": ndf, "batch_size": batch,
              "recipe": "pytorch examples/dcgan"}
    np.savez(args.snapshots, config=np.frombuffer(json.dumps(config).encode(), np.uint8), **snaps)


# ----------------------------------------------------------------------------- scoring (parent)

class Scorer:
    """FD and class balance of a G's samples, in tinygan's digit-classifier feature space."""

    def __init__(self, seed: int = 0):
        from tinygan.data import get_dataset
        from tinygan.metrics.classifier import classify, load_classifier
        self.classify = classify
        self.model, _ = load_classifier(log=lambda m: print(m, file=sys.stderr))
        images = get_dataset("mnist").images
        order = np.random.default_rng([seed, 9]).permutation(len(images))
        self.real, _ = classify(self.model, images[order])                # (10000, 128)

    def score(self, state: dict, seed: int) -> dict:
        from tinygan.gan import DCGANGenerator
        from tinygan.gan.sampling import generate
        from tinygan.metrics.image_metrics import frechet_distance
        G = DCGANGenerator(nz=100, ngf=64, nc=1, image_size=28)
        G.load_state_dict(state)
        fake = generate(G, G.sample_inputs(N_SAMPLES, np.random.default_rng([seed, 7])))
        feat, probs = self.classify(self.model, fake)
        share = np.bincount(probs.argmax(1), minlength=10) / len(fake)
        return {"fd": frechet_distance(feat, self.real), "class_min": float(share.min()),
                "class_max": float(share.max())}


def _load_snapshots(path) -> tuple[dict, list[tuple[int, float, dict]]]:
    with np.load(path) as z:
        config = json.loads(z["config"].tobytes())
        steps = sorted({int(k.split("/")[0]) for k in z.files if "/" in k})
        out = []
        for s in steps:
            state = {k.split("/", 1)[1]: z[k] for k in z.files if k.startswith(f"{s}/") and not k.endswith("/seconds")}
            out.append((s, float(z[f"{s}/seconds"]), state))
    return config, out


def _mean_se(values) -> str:
    v = np.asarray(values, dtype=np.float64)
    if len(v) < 2:
        return f"{v.mean():.1f}"
    return f"{v.mean():.1f} +- {v.std(ddof=1) / np.sqrt(len(v)):.1f}"


def run(args) -> int:
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": str(args.threads),
           "OPENBLAS_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    started = time.time()
    meta = {"command": "python benchmarks/quality.py " + " ".join(sys.argv[1:]),
            "taken": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)), "commit": git_commit(),
            "samples": N_SAMPLES}
    runs, cmds = [], []
    for seed in args.seeds:
        for fw in args.frameworks:
            snap = work / f"{fw}_seed{seed}.npz"
            cmds.append([sys.executable, __file__, "worker", "--framework", fw, "--seed", str(seed), "--mode",
                         args.mode, "--steps", str(args.steps), "--eval-every", str(args.eval_every), "--seconds",
                         str(args.seconds), "--points", str(args.points), "--threads", str(args.threads),
                         "--snapshots", str(snap), "--work", str(work)])
            runs.append((fw, seed, snap))

    def train(cmd: list[str]) -> None:
        print(f"training {cmd[4]} seed {cmd[6]} ({args.mode})", file=sys.stderr, flush=True)
        subprocess.run(cmd, check=True, env=env)

    # --jobs > 1 trains several runs at once (each with --threads threads): fair for --mode steps, whose
    # result does not depend on speed; --mode time wants one run at a time on an otherwise idle machine.
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        list(pool.map(train, cmds))
    scorer = Scorer()
    rows = []
    for fw, seed, snap in runs:
        config, snaps = _load_snapshots(snap)
        for step, seconds, state in snaps:
            rows.append({"framework": fw, "seed": seed, "step": step, "seconds": seconds,
                         **scorer.score(state, seed), "config": config})
            print(json.dumps({k: v for k, v in rows[-1].items() if k != "config"}), file=sys.stderr, flush=True)
    wall = time.time() - started
    _report(args, rows, wall, meta)
    return 0


def _recipe(config: dict) -> str:
    """The table's recipe cell: PyTorch's names itself; tinygan's is read off its run config."""
    if config.get("recipe"):
        return config["recipe"]
    text = f"tinygan train: lr {config.get('lr'):g}, ema {config.get('ema'):g}"
    if config.get("ema"):                             # runs before --ema-warmup existed recorded none
        text += f" (warm-up {config.get('ema_warmup') or TF_WARMUP})"
    if config.get("r1"):
        every = config.get("r1_every") or 1
        text += f", R1 gamma {config['r1']:g}" + (f" every {every} D steps" if every > 1 else "")
    return text


def _report(args, rows: list[dict], wall: float, meta: dict) -> None:
    out = Path(args.markdown)
    out.parent.mkdir(parents=True, exist_ok=True)
    last = {}
    for r in rows:                                   # the last snapshot of each (framework, seed)
        last[(r["framework"], r["seed"])] = r
    lines = [f"# Training quality: tinygan vs PyTorch ({'same steps' if args.mode == 'steps' else 'same wall-clock'})",
             "", f"Command: `{meta['command']}`", "",
             f"Taken {meta['taken']} at tinygan commit {meta['commit']}.", "",
             f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, {args.threads} threads "
             f"per run, {args.jobs} run(s) at a time; "
             f"Python {platform.python_version()}, NumPy {np.__version__}, PyTorch {_torch_version()}; "
             f"wall time {wall / 60:.1f} min.", "",
             "Scores: tinygan's digit-classifier Frechet distance (not Inception FID; real-vs-real floor about 4) "
             f"from {meta['samples']} samples, and the smallest and largest class share (fair: 10%). "
             "Mean +- standard error over seeds; the class columns are the extremes over the seeds' last snapshots.",
             "",
             "| framework | recipe | seeds | steps | training seconds | FD | smallest class | largest class |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for fw in args.frameworks:
        rs = [r for (f, _), r in last.items() if f == fw]
        if not rs:
            continue
        lines.append(f"| {fw} | {_recipe(rs[0]['config'])} | {len(rs)} | {_mean_se([r['step'] for r in rs])} | "
                     f"{_mean_se([r['seconds'] for r in rs])} | {_mean_se([r['fd'] for r in rs])} | "
                     f"{100 * min(r['class_min'] for r in rs):.1f}% | "
                     f"{100 * max(r['class_max'] for r in rs):.1f}% |")
    lines += ["", "Every snapshot (FD against " + ("steps" if args.mode == "steps" else "training seconds") + "):", "",
              "| framework | seed | step | seconds | FD | smallest class | largest class |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {r['framework']} | {r['seed']} | {r['step']} | {r['seconds']:.0f} | {r['fd']:.1f} | "
              f"{100 * r['class_min']:.1f}% | {100 * r['class_max']:.1f}% |" for r in rows]
    plot = out.with_suffix(".png")
    _plot(rows, plot, "step" if args.mode == "steps" else "seconds")
    lines += ["", f"![FD against {'steps' if args.mode == 'steps' else 'time'}]({plot.name})", ""]
    out.write_text("\n".join(lines))
    (out.with_suffix(".json")).write_text(json.dumps({"args": vars(args), "wall_s": wall, **meta, "rows": rows},
                                                     indent=1, default=str))
    print(f"wrote {out}, {plot}", file=sys.stderr)


def render(path: str, markdown: str | None, p: argparse.ArgumentParser) -> int:
    """``--render``: the markdown table and the plot again from a results .json that this script wrote."""
    try:
        saved = json.loads(Path(path).read_text())
        args = argparse.Namespace(**saved["args"])
        missing = [k for k in ("command", "taken", "commit", "samples") if k not in saved]
        if missing:
            p.error(f"--render {path}: has no {', '.join(missing)} (written by an older quality.py)")
        meta = {k: saved[k] for k in ("command", "taken", "commit", "samples")}
        rows, wall = saved["rows"], float(saved["wall_s"])
    except OSError as e:
        p.error(f"--render {path}: {e.strerror or e}")
    except (ValueError, KeyError, TypeError) as e:
        p.error(f"--render {path}: not a results file of this script ({type(e).__name__}: {e})")
    args.markdown = markdown or str(ROOT / "benchmarks" / "results" / f"quality-{args.mode}.md")
    _report(args, rows, wall, meta)
    return 0


def _torch_version() -> str:
    try:
        import torch
        return torch.__version__
    except ImportError:
        return "not installed"


def _plot(rows: list[dict], path: Path, x: str) -> None:
    from tinygan.viz import save_loss_curves
    series = {}
    for r in rows:
        series.setdefault(f"{r['framework']} seed {r['seed']}", []).append((r[x], r["fd"]))
    xs = sorted({r[x] for r in rows})
    curves = {k: [dict(v).get(t, np.nan) for t in xs] for k, v in series.items()}
    if x == "seconds":    # seconds differ per run: plot each against its own times
        xs = list(range(len(next(iter(series.values())))))
        curves = {k: [fd for _, fd in v] for k, v in series.items()}
    save_loss_curves(xs, curves, path, title=f"FD (digit classifier) against {x}",
                     xlabel="generator step" if x == "step" else "snapshot (training time, see the table)",
                     ylabel="Frechet distance (digit classifier)")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("role", nargs="?", default="run", choices=["run", "worker"])
    p.add_argument("--mode", choices=["steps", "time"], default="steps")
    p.add_argument("--frameworks", nargs="+", default=["tinygan", "torch"], choices=["tinygan", "torch"])
    p.add_argument("--framework", choices=["tinygan", "torch"], help="worker: which one")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--seed", type=int, default=0, help="worker: the seed")
    p.add_argument("--steps", type=int, default=2000, help="--mode steps: generator updates per run")
    p.add_argument("--eval-every", type=int, default=250, help="--mode steps: steps between snapshots")
    p.add_argument("--seconds", type=float, default=540.0, help="--mode time: training seconds per run")
    p.add_argument("--points", type=int, default=9, help="--mode time: snapshots per run")
    p.add_argument("--threads", type=int, default=2, help="BLAS/PyTorch threads per run")
    p.add_argument("--jobs", type=int, default=1, help="runs trained at once (--mode steps; --mode time wants 1)")
    p.add_argument("--work", default="runs/quality", help="folder for the snapshots")
    p.add_argument("--snapshots", default=None, help="worker: output file")
    p.add_argument("--markdown", default=None, help="results file (default benchmarks/results/quality-<mode>.md)")
    p.add_argument("--quick", action="store_true", help="a smoke test: 1 seed, 4 steps, tiny scoring")
    p.add_argument("--render", metavar="JSON", default=None,
                   help="write the table and plot again from a results .json (no training, no scoring)")
    args = p.parse_args(argv)
    if args.render:
        return render(args.render, args.markdown, p)
    if args.role == "worker":
        (worker_tinygan if args.framework == "tinygan" else worker_torch)(args)
        return 0
    if args.jobs < 1:
        p.error(f"--jobs must be at least 1, got {args.jobs}")
    if args.mode == "time" and args.jobs > 1:
        p.error("--jobs > 1 with --mode time: runs sharing the CPU would not get the same wall-clock; use --jobs 1")
    if args.quick:
        global N_SAMPLES
        N_SAMPLES = 200
        args.seeds, args.steps, args.eval_every, args.seconds, args.points = [0], 4, 2, 2.0, 2
    args.markdown = args.markdown or str(ROOT / "benchmarks" / "results" / f"quality-{args.mode}.md")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
