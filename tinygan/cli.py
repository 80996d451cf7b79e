"""The ``tinygan`` command (also ``python -m tinygan``).

    tinygan train                      DCGAN on the bundled MNIST digits, on the CPU (under 10 minutes)
    tinygan train --resume --out DIR   continue a run exactly where its checkpoint stopped
    tinygan sample --checkpoint PATH --n 64 --out samples.png      (or .npz)
    tinygan interpolate --checkpoint PATH --out walk.png
    tinygan eval --checkpoint PATH     sample-quality metrics (see docs/metrics.md)
    tinygan bench --device cpu         kernels and a whole DCGAN step against PyTorch

``train``'s flags are generated from :class:`tinygan.run.TrainConfig`'s
fields (name, help, check), so the command line and the library cannot
disagree.  Every error a user can cause ends in one line on stderr naming
the flag, file or value, and exit code 2; ``--debug`` (or ``TINYGAN_DEBUG=1``)
shows the traceback instead.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

from tinygan.benchmark import cli as bench_cli
from tinygan.data import TOY_DATASETS
from tinygan.gan.sampling import generate, grid_inputs, interpolation_inputs
from tinygan.io import atomic_write
from tinygan.kernels.memory import reuse_freed_memory
from tinygan.metrics import cli as eval_cli
from tinygan.run import TrainConfig, distributed, load_generator, resume, train
from tinygan.run.config import DEFAULT_STEPS, FIELDS, ConfigError, flag_of, int_in
from tinygan.viz import images_to_uint8, save_image_grid, save_points_plot

DEVICES = ("cpu", "cuda")
FLAG_FIELDS = ("download", "dry_run", "progress")   # booleans: --download, --dry-run, --no-progress


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error: ``tinygan train: error: argument --steps: ...`` (no usage block)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _type(check):
    """An argparse ``type`` from a field's check: its message becomes argparse's one-line error."""
    def parse(text: str):
        try:
            return check(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    parse.__name__ = "value"
    return parse


def _output(path: str, suffixes: tuple[str, ...]) -> Path:
    p = Path(path)
    if p.suffix.lower() not in suffixes:
        raise argparse.ArgumentTypeError(f"expected a {' or '.join(suffixes)} file name, got {path!r}")
    return p


# ---------------------------------------------------------------------------- train

def _add_train(sub, common) -> None:
    p = sub.add_parser("train", parents=[common], help="train a GAN (default: DCGAN on the bundled MNIST digits)",
                       description="Train a GAN. With no options: a DCGAN on the 10,000 bundled MNIST digits at "
                                   f"28x28 for {DEFAULT_STEPS} steps on the CPU, writing to "
                                   f"{TrainConfig().out}/. Flags left out take the loss's paper recipe "
                                   "(tinygan/gan/recipes.py) at 8 times its learning rate, with an average of G's "
                                   "weights (--ema 0.999 --ema-warmup 20) and, for the non-saturating loss, a "
                                   "lazy R1 penalty (--r1 1 on every 16th D step); toy data have their own defaults "
                                   "(docs/training.md).")
    budget = p.add_mutually_exclusive_group()
    for name, f in FIELDS.items():
        meta = f.metadata
        if name == "download":
            p.add_argument("--download", action="store_true", default=argparse.SUPPRESS, help=meta["help"])
        elif name == "dry_run":
            p.add_argument("--dry-run", action="store_true", default=argparse.SUPPRESS, help=meta["help"])
        elif name == "progress":
            p.add_argument("--no-progress", dest="progress", action="store_false", default=argparse.SUPPRESS,
                           help="no progress bar or progress lines")
        elif f.default is False:                                  # other switches (--mbstd, ...): off unless given
            p.add_argument(flag_of(name), dest=name, action="store_true", default=argparse.SUPPRESS,
                           help=meta["help"])
        else:
            target = budget if name in ("steps", "epochs") else p
            shown = f" [default: {f.default}]" if f.default is not None else ""   # None: the help says
            target.add_argument(flag_of(name), dest=name, default=argparse.SUPPRESS, help=meta["help"] + shown,
                                type=_type(meta["check"]), choices=getattr(meta["check"], "choices", None),
                                metavar=meta["metavar"])
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its checkpoint.npz (settings that define the run cannot "
                        "change; --steps, --epochs, --sample-every, --checkpoint-every, --device can)")
    p.add_argument("--overwrite", action="store_true",
                   help="start a new run in an --out that holds one, removing its log, samples and checkpoint")
    p.set_defaults(func=_cmd_train)


def _cmd_train(args) -> int:
    given = {k: v for k, v in vars(args).items() if k in FIELDS}
    if args.resume:
        if args.overwrite:
            raise ValueError("--resume and --overwrite: continue the run or replace it, not both")
        out = given.pop("out", TrainConfig().out)
        t = resume(out, **given)
    else:
        t = train(TrainConfig(**given), overwrite=args.overwrite)
    if t.comm is None or t.comm.rank == 0:                  # a distributed run: rank 0 speaks for all
        print(f"trained {t.step} steps; run folder {t.config.out}/: samples/, progress.gif, losses.png, "
              "metrics.jsonl, config.json, checkpoint.npz")
    return 0


# ---------------------------------------------------------------------------- sample

def _parse_codes(text: str | None, n_cont: int) -> np.ndarray | None:
    if text is None:
        return None
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if len(values) != n_cont or not all(np.isfinite(values)):
        raise ValueError(f"--code: expected {n_cont} comma-separated finite numbers, got {text!r}")
    return np.asarray(values, dtype=np.float32)


def _add_sample(sub, common) -> None:
    p = sub.add_parser("sample", parents=[common], help="draw samples from a trained generator",
                       description="FILE.png writes an image grid (a scatter plot for toy data); FILE.npz writes "
                                   "'images' as uint8 (N, C, H, W) (or 'points' (N, d) float32 for toy data). "
                                   "Exactly --n samples either way.")
    p.add_argument("--checkpoint", required=True, help="a checkpoint.npz written by tinygan train")
    p.add_argument("--n", type=_type(int_in(1, 65536)), default=64, help="number of samples [default: 64]")
    p.add_argument("--out", required=True, type=lambda s: _output(s, (".png", ".npz")), help="FILE.png or FILE.npz")
    p.add_argument("--seed", type=_type(int_in(0, 2**63 - 1)), default=0)
    p.add_argument("--label", type=_type(int_in(0, 100000)), default=None, help="conditional models: the class to draw")
    p.add_argument("--category", type=_type(int_in(0, 100000)), default=None,
                   help="InfoGAN: the categorical code value")
    p.add_argument("--code", default=None, help="InfoGAN: continuous code values, comma-separated (e.g. 0.5,-1)")
    p.add_argument("--nrow", type=_type(int_in(1, 65536)), default=None, help="images per row of the grid")
    p.add_argument("--device", default="cpu", choices=DEVICES)
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.set_defaults(func=_cmd_sample)


def _refuse_existing(path: Path, overwrite: bool, flag: str = "--out") -> None:
    if path.is_dir():
        raise ValueError(f"{flag}: {path} is a folder, not a file name")
    if path.exists() and not overwrite:
        raise ValueError(f"{flag}: {path} exists; add --overwrite to replace it")


def _cmd_sample(args) -> int:
    _refuse_existing(args.out, args.overwrite)
    G, config, _ = load_generator(args.checkpoint, device=args.device)
    rng = np.random.default_rng(args.seed)
    inputs, nrow = G.sample_inputs(args.n, rng), args.nrow
    plain = args.label is None and args.category is None and args.code is None
    if plain and args.out.suffix == ".png" and ("labels" in inputs or "c_cat" in inputs):
        # One row per class (CGAN) or per categorical value, continuous code along the row (InfoGAN).
        inputs, cols = grid_inputs(G, args.n, rng)
        nrow = nrow or cols
    if args.label is not None:
        if "labels" not in inputs:
            raise ValueError(f"--label: the model {config.model!r} is not conditional")
        if not args.label < G.num_classes:
            raise ValueError(f"--label: must be in [0, {G.num_classes}), got {args.label}")
        inputs["labels"] = np.full(args.n, args.label, dtype=np.int64)
    if args.category is not None or args.code is not None:
        if "c_cat" not in inputs:
            raise ValueError(f"--category/--code: the model {config.model!r} is not an InfoGAN")
        if args.category is not None:
            if not args.category < G.num_categories:
                raise ValueError(f"--category: must be in [0, {G.num_categories}), got {args.category}")
            inputs["c_cat"] = np.full(args.n, args.category, dtype=np.int64)
        codes = _parse_codes(args.code, inputs["c_cont"].shape[1])
        if codes is not None:
            inputs["c_cont"] = np.tile(codes, (args.n, 1))
    out = generate(G, inputs, device=args.device)
    _write_output(out, args.out, nrow=nrow)
    print(f"wrote {len(out)} samples to {args.out}")
    return 0


def _write_output(out: np.ndarray, path: Path, nrow=None) -> None:
    toy = out.ndim == 2
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".npz":
        with atomic_write(path) as f:
            if toy:
                np.savez(f, points=out.astype(np.float32))
            else:
                np.savez(f, images=images_to_uint8(out))
    elif toy:
        save_points_plot(None, out, path, title="generated")
    else:
        save_image_grid(out, path, nrow=nrow or int(np.ceil(np.sqrt(len(out)))), scale=2)


# ---------------------------------------------------------------------------- interpolate

def _add_interpolate(sub, common) -> None:
    p = sub.add_parser("interpolate", parents=[common],
                       help="latent-space walks between random points (the DCGAN paper's figure)")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--out", required=True, type=lambda s: _output(s, (".png",)), help="FILE.png")
    p.add_argument("--rows", type=_type(int_in(1, 64)), default=8, help="number of walks [default: 8]")
    p.add_argument("--steps", type=_type(int_in(2, 64)), default=10, help="images along each walk [default: 10]")
    p.add_argument("--slerp", action="store_true", help="spherical instead of linear interpolation")
    p.add_argument("--seed", type=_type(int_in(0, 2**63 - 1)), default=0)
    p.add_argument("--device", default="cpu", choices=DEVICES)
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.set_defaults(func=_cmd_interpolate)


def _cmd_interpolate(args) -> int:
    _refuse_existing(args.out, args.overwrite)
    G, config, _ = load_generator(args.checkpoint, device=args.device)
    if config.dataset in TOY_DATASETS:
        raise ValueError(f"--checkpoint: interpolate draws images; the run trained on the toy set {config.dataset}")
    inputs = interpolation_inputs(G, args.rows, args.steps, np.random.default_rng(args.seed), spherical=args.slerp)
    out = generate(G, inputs, device=args.device)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_image_grid(out, args.out, nrow=args.steps, scale=2)
    print(f"wrote {args.rows} walks of {args.steps} images to {args.out}")
    return 0


# ---------------------------------------------------------------------------- main

def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show Python's traceback when something fails")
    parser = _Parser(prog="tinygan", description=__doc__.split("\n\n")[0], parents=[common])
    sub = parser.add_subparsers(dest="command", required=True)
    _add_train(sub, common)
    _add_sample(sub, common)
    _add_interpolate(sub, common)
    eval_cli.add_parser(sub, common)
    bench_cli.add_parser(sub, common)
    return parser


def _one_line(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror:
        where = e.filename or ""
        return f"{e.strerror}" + (f": {where}" if where else "")
    text = str(e).strip() or type(e).__name__
    return " ".join(text.split())


def main(argv=None) -> int:
    reuse_freed_memory()            # keep freed activations mapped for the next step (kernels/memory.py)
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = getattr(args, "debug", False) or bool(os.environ.get("TINYGAN_DEBUG"))
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print(f"tinygan {args.command}: interrupted; the last checkpoint is intact", file=sys.stderr)
        return 130
    except (ValueError, OSError, RuntimeError, MemoryError) as e:
        # Bad input, a missing or unwritable file, no GPU, a diverged run: one clear line.
        if debug:
            raise
        return _fail(f"tinygan {args.command}: error: {_one_line(e)}", e, 2)
    except Exception as e:  # noqa: BLE001  (anything else: still one line, and how to see more)
        if debug:
            raise
        return _fail(f"tinygan {args.command}: unexpected error: {type(e).__name__}: {_one_line(e)} "
                     "(run again with --debug to see the traceback)", e, 2)


def _fail(line: str, error: BaseException, code: int) -> int:
    """Print ``line`` once and return ``code``; on several ranks, make sure that every rank stops.

    An error that every rank met alike (a setting, a diverged run) is printed
    by rank 0 alone; an error of one rank is printed with its rank, then
    ``MPI_Abort`` ends every rank, as the others may be waiting for it in a
    collective (docs/distributed.md).
    """
    comm = distributed.current()
    if comm is None or comm.size == 1:
        # A ConfigError before MPI starts is met alike by every rank that mpiexec started: rank 0 prints it.
        quiet = comm is None and isinstance(error, ConfigError) and distributed.launch_rank() not in (None, 0)
        if not quiet:
            print(line, file=sys.stderr)
        return code
    # Settings are checked alike on every rank (rank 0's folder and checkpoint go through distributed.agree).
    if getattr(error, "all_ranks", False) or isinstance(error, ConfigError):
        if comm.rank == 0:
            print(line, file=sys.stderr)
        return code
    print(f"{line} [rank {comm.rank} of {comm.size}; stopping every rank]", file=sys.stderr, flush=True)
    comm.abort(code)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
