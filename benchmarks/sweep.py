"""One training setting, scored along the way: how the default run's settings were chosen.

    python benchmarks/sweep.py lr=0.0016                                  # FD at steps 1000 and 2000
    python benchmarks/sweep.py lr=0.0016 ngf=128 seed=1 --steps 3000 --evals 1000 2000 3000
    python benchmarks/sweep.py lr=0.0004 --decay linear                   # lr falling linearly to 0
    python benchmarks/sweep.py --d-lr-factor 2                            # D's lr twice G's (TTUR)
    python benchmarks/sweep.py --steps 4500 --evals 4500 --ema-warmups 10 40   # averages beside the run's own
    python benchmarks/sweep.py --steps 4 --evals 4 --n 200                # a smoke test (CI)

Every ``key=value`` is a :class:`tinygan.run.TrainConfig` field (the defaults of ``tinygan
train`` for the rest); the run trains with :class:`tinygan.run.Trainer`, as ``tinygan train``
does, and at each ``--evals`` step scores the sampler (the EMA of G when there is one) with
``tinygan eval``'s metrics from ``--n`` samples.  Prints one JSON line per evaluation (and
appends it to ``--jsonl`` when given): the step, training seconds, the Frechet distance, the
smallest and largest class share, precision and recall (and, with ``--ema-warmups``, which
average was scored).  The table of runs behind the defaults
is ``benchmarks/results/default-run-sweep.md``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

from tinygan.data import TOY_DATASETS
from tinygan.gan.ema import ema_copy, ema_update_
from tinygan.metrics.evaluate import evaluate_generator
from tinygan.run import ConfigError, TrainConfig, Trainer


def parse_settings(pairs: list[str]) -> dict:
    """``["lr=0.0016", "ngf=128", "mbstd=true"]`` -> ``{"lr": 0.0016, "ngf": 128, "mbstd": True}``."""
    out = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"expected key=value, got {pair!r}")
        if text.lower() in ("true", "false"):                # the switches: mbstd, spectral_norm, ...
            out[key] = text.lower() == "true"
            continue
        for cast in (int, float):
            try:
                out[key] = cast(text)
                break
            except ValueError:
                continue
        else:
            out[key] = text
    return out


def lr_factor(step: int, steps: int, decay: str) -> float:
    """The lr multiplier before update ``step`` (0-based): 1, or (1 - step/steps) for ``linear``."""
    return 1.0 - step / steps if decay == "linear" else 1.0


def run(settings: dict, steps: int, evals: list[int], n: int = 2500, decay: str = "none", log=print,
        d_lr_factor: float = 1.0, ema_warmups: tuple[int, ...] = ()) -> list[dict]:
    """Train ``settings`` for ``steps`` generator updates; the metrics at each step in ``evals``.

    ``d_lr_factor`` multiplies D's learning rate (two time-scales, Heusel et al. 2017), which
    ``tinygan train`` sets for both networks alike.  ``ema_warmups``: more averages of G, with
    the run's ``--ema`` beta and these warm-ups c, kept beside the run's own and scored at the
    same steps from the same noise (one training compares several averages: the average never
    feeds back into training).
    """
    cfg = TrainConfig(**{"steps": steps, "out": "runs/sweep-unused", "progress": False, **settings})
    t = Trainer(cfg)
    if ema_warmups and not t.config.ema:
        raise ConfigError("--ema-warmups: the run has no average of G (ema=0) to compare with")
    extra = {c: ema_copy(t.G) for c in ema_warmups if c != t.config.ema_warmup}   # c -> average
    opts = (t.opt_d, t.opt_g)
    base = [[g["lr"] * (d_lr_factor if o is t.opt_d else 1.0) for g in o.param_groups] for o in opts]
    rows, spent = [], 0.0
    for step in range(steps):
        start = time.perf_counter()
        f = lr_factor(step, steps, decay)
        for o, lrs in zip(opts, base):
            for g, lr0 in zip(o.param_groups, lrs):
                g["lr"] = lr0 * f
        t.train_step()
        for c, avg in extra.items():                        # as the trainer's own, after the same G update
            ema_update_(avg, t.G, t.config.ema, t.step, c)
        t.step += 1
        spent += time.perf_counter() - start
        if t.step not in evals:
            continue
        for warmup, sampler in [(t.config.ema_warmup, t.sampler), *extra.items()]:
            m = evaluate_generator(sampler, t.config, n=n)["metrics"]
            counts = m.get("class_counts")                  # digits only
            row = {"settings": settings, "decay": decay, "d_lr_factor": d_lr_factor, "step": t.step, "seconds": round(spent, 1),
                   "frechet_distance": round(m["frechet_distance"], 2),
                   "smallest_class": min(counts) / n if counts else None,
                   "largest_class": max(counts) / n if counts else None,
                   "precision": m["precision"], "recall": m["recall"]}
            if extra:
                row["ema_warmup"] = warmup
            rows.append(row)
            log(json.dumps(row))
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("settings", nargs="*", metavar="KEY=VALUE", help="TrainConfig fields, e.g. lr=0.0016 ngf=128")
    p.add_argument("--steps", type=int, default=2000, help="generator updates")
    p.add_argument("--evals", type=int, nargs="+", default=None, metavar="STEP",
                   help="steps at which to score (default: half way and the end)")
    p.add_argument("--n", type=int, default=2500, help="samples per evaluation")
    p.add_argument("--decay", choices=("none", "linear"), default="none", help="lr schedule over the run")
    p.add_argument("--d-lr-factor", type=float, default=1.0, metavar="F",
                   help="D's learning rate is F times G's (default 1: the same, as tinygan train)")
    p.add_argument("--ema-warmups", type=int, nargs="+", default=(), metavar="C",
                   help="also keep averages of G with these --ema-warmup values and score each at every step")
    p.add_argument("--jsonl", default=None, help="append each evaluation's JSON line to this file")
    args = p.parse_args(argv)
    if not args.d_lr_factor > 0:
        p.error(f"--d-lr-factor must be > 0, got {args.d_lr_factor}")
    if any(c < 2 for c in args.ema_warmups):
        p.error(f"--ema-warmups: each warm-up must be an integer >= 2, got {args.ema_warmups}")
    if args.steps < 1 or args.n < 2:
        p.error(f"--steps must be at least 1 and --n at least 2, got {args.steps} and {args.n}")
    evals = sorted(set(args.evals or [max(1, args.steps // 2), args.steps]))
    if evals[0] < 1 or evals[-1] > args.steps:
        p.error(f"--evals: every step must lie in [1, {args.steps}], got {evals}")
    try:
        settings = parse_settings(args.settings)
        unknown = sorted(set(settings) - set(TrainConfig.__dataclass_fields__))
        if unknown:
            raise ValueError(f"unknown setting {unknown[0]!r}: the keys are TrainConfig's fields, as in "
                             "tinygan train's flags with _ for - (lr, ngf, batch_size, ...)")
        if TrainConfig(**{"steps": args.steps, **settings}).validate().dataset in TOY_DATASETS:
            raise ValueError("dataset: sweep.py scores images (Frechet distance); for the toy datasets use "
                             "benchmarks/toy_tables.py or tinygan eval")
    except ValueError as e:
        p.error(str(e))
    try:
        sink = open(args.jsonl, "a") if args.jsonl else None
    except OSError as e:
        p.error(f"--jsonl: cannot write {args.jsonl}: {e.strerror}")

    def log(line: str) -> None:
        print(line, flush=True)
        if sink:
            sink.write(line + "\n")
            sink.flush()

    try:
        run(settings, args.steps, evals, n=args.n, decay=args.decay, log=log, d_lr_factor=args.d_lr_factor,
            ema_warmups=tuple(args.ema_warmups))
    except ConfigError as e:
        p.error(str(e))
    finally:
        if sink:
            sink.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
