"""The ``tinygan`` command (also ``python -m tinygan``).

    tinygan train                      DCGAN on the bundled MNIST digits, on the CPU (under 10 minutes)
    tinygan train --resume --out DIR   continue a run exactly where its checkpoint stopped
    tinygan sample --checkpoint PATH --n 64 --out samples.png      (or .npz)
    tinygan interpolate --checkpoint PATH --out walk.png
    tinygan eval --checkpoint PATH     sample-quality metrics (see docs/metrics.md)
    tinygan bench --device cpu         kernels and a whole DCGAN step against PyTorch

Every command takes ``--device {cpu,cuda}``.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np

DEVICES = ("cpu", "cuda")


# ---------------------------------------------------------------------------- train

def _add_train(sub) -> None:
    from tinygan.gan.trainer import DEFAULT_STEPS, TrainConfig
    d = TrainConfig()
    p = sub.add_parser("train", help="train a GAN (default: DCGAN on the bundled MNIST digits)",
                       description="Train a GAN. With no options: a DCGAN on the 10,000 bundled MNIST digits "
                                   f"at 28x28 for {DEFAULT_STEPS} steps on the CPU, writing to {d.out}/.")
    p.add_argument("--model", default=d.model, choices=["dcgan", "mlp", "cgan", "cgan-mlp", "infogan"])
    from tinygan.gan.losses import LOSS_PRESETS, LOSSES
    p.add_argument("--loss", default=d.loss, choices=list(LOSSES) + list(LOSS_PRESETS),
                   help="the GAN objective (lsgan: a=0, b=1, c=1; lsgan-pearson: the paper's a=-1, b=1, c=0)")
    p.add_argument("--r1", type=float, default=d.r1, metavar="GAMMA", help="R1 penalty weight on real data (0: off)")
    p.add_argument("--n-critic", type=int, default=None, metavar="K",
                   help="critic updates per generator update (default: the loss's paper value)")
    p.add_argument("--dataset", default=d.dataset,
                   help="mnist (bundled), fashion-mnist, cifar10, folder, or a toy set: gauss1d, bimodal1d, "
                        "ring8, grid25, swissroll")
    p.add_argument("--data-dir", default=None, help="folder with the dataset's files (or the image folder)")
    p.add_argument("--download", action="store_true", help="download the dataset into the cache if missing")
    p.add_argument("--image-size", type=int, default=None, help="resize images to this size (28, 32, 64, ...)")
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--steps", type=int, default=None, help=f"generator updates (default {DEFAULT_STEPS})")
    budget.add_argument("--epochs", type=float, default=None, help="passes over the data instead of --steps")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default: the loss's, 2e-4 for DCGAN)")
    p.add_argument("--beta1", type=float, default=None, help="Adam beta1 (default 0.5 for DCGAN)")
    p.add_argument("--beta2", type=float, default=None, help="Adam beta2 (default 0.999 for DCGAN)")
    p.add_argument("--nz", type=int, default=d.nz, help="size of the latent vector z")
    p.add_argument("--ngf", type=int, default=d.ngf, help="generator feature maps")
    p.add_argument("--ndf", type=int, default=d.ndf, help="discriminator feature maps")
    p.add_argument("--info-lambda", type=float, default=d.info_lambda, help="InfoGAN: weight of the MI term")
    p.add_argument("--categories", type=int, default=d.num_categories, help="InfoGAN: size of the categorical code")
    p.add_argument("--continuous", type=int, default=d.num_continuous, help="InfoGAN: number of continuous codes")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--out", default=d.out, help="run folder")
    p.add_argument("--sample-every", type=int, default=d.sample_every)
    p.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every)
    p.add_argument("--log-every", type=int, default=None, help="steps between host syncs (default 1 CPU, 50 GPU)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint.npz")
    p.add_argument("--device", default="cpu", choices=DEVICES)
    p.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")
    p.add_argument("--dry-run", action="store_true", help="two iterations on random data (a smoke test)")
    p.set_defaults(func=_cmd_train)


def _cmd_train(args) -> int:
    from tinygan.gan import trainer as T
    if args.resume:
        overrides = {"device": args.device, "progress": not args.no_progress}
        for name in ("steps", "epochs", "log_every"):
            if getattr(args, name) is not None:
                overrides[name] = getattr(args, name)
        t = T.resume(args.out, **overrides)
    else:
        config = T.TrainConfig(
            model=args.model, loss=args.loss, dataset=args.dataset, data_dir=args.data_dir,
            download=args.download, image_size=args.image_size, batch_size=args.batch_size, steps=args.steps,
            epochs=args.epochs, lr=args.lr, beta1=args.beta1, beta2=args.beta2, n_critic=args.n_critic,
            nz=args.nz, ngf=args.ngf, ndf=args.ndf, r1=args.r1, info_lambda=args.info_lambda,
            num_categories=args.categories, num_continuous=args.continuous, seed=args.seed, out=args.out,
            sample_every=args.sample_every, checkpoint_every=args.checkpoint_every, log_every=args.log_every,
            device=args.device, progress=not args.no_progress, dry_run=args.dry_run)
        t = T.train(config)
    out = Path(t.config.out)
    print(f"trained {t.step} steps; run folder {out}/: samples/, progress.gif, losses.png, metrics.jsonl, "
          "config.json, checkpoint.npz")
    return 0


# ---------------------------------------------------------------------------- sample

def _parse_codes(text: str | None, n_cont: int) -> list[float] | None:
    if text is None:
        return None
    values = [float(v) for v in text.split(",") if v.strip()]
    if len(values) != n_cont:
        raise ValueError(f"--code: expected {n_cont} comma-separated continuous code values, got {text!r}")
    return values


def _add_sample(sub) -> None:
    p = sub.add_parser("sample", help="draw samples from a trained generator",
                       description="FILE.png writes an image grid; FILE.npz writes 'images' as uint8 (N, C, H, W) "
                                   "(or 'points' (N, d) float32 for toy data).")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--out", required=True, help="FILE.png or FILE.npz")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--label", type=int, default=None, help="conditional models: the class to draw")
    p.add_argument("--category", type=int, default=None, help="InfoGAN: the categorical code value")
    p.add_argument("--code", default=None, help="InfoGAN: continuous code values, comma-separated (e.g. 0.5,-1)")
    p.add_argument("--nrow", type=int, default=None, help="images per row of the grid")
    p.add_argument("--device", default="cpu", choices=DEVICES)
    p.set_defaults(func=_cmd_sample)


def _cmd_sample(args) -> int:
    from tinygan.gan.trainer import load_generator
    from tinygan.gan.sampling import generate
    G, config, _ = load_generator(args.checkpoint, device=args.device)
    rng = np.random.default_rng(args.seed)
    inputs = G.sample_inputs(args.n, rng)
    nrow = args.nrow
    plain = args.label is None and args.category is None and args.code is None
    if plain and args.out.endswith(".png") and ("labels" in inputs or "c_cat" in inputs):
        # One row per class (CGAN) or per categorical value, continuous code along the row (InfoGAN).
        from tinygan.gan.trainer import fixed_inputs
        inputs, nrow = fixed_inputs(G, args.n, rng)
    if args.label is not None:
        if "labels" not in inputs:
            raise ValueError(f"--label: the model {config.model!r} is not conditional")
        classes = getattr(G, "num_classes", None)
        if classes is not None and not 0 <= args.label < classes:
            raise ValueError(f"--label: must be in [0, {classes}), got {args.label}")
        inputs["labels"] = np.full(args.n, args.label, dtype=np.int64)
    if args.category is not None or args.code is not None:
        if "c_cat" not in inputs:
            raise ValueError(f"--category/--code: the model {config.model!r} is not an InfoGAN")
        if args.category is not None:
            inputs["c_cat"] = np.full(args.n, args.category, dtype=np.int64)
        codes = _parse_codes(args.code, inputs["c_cont"].shape[1])
        if codes is not None:
            inputs["c_cont"] = np.tile(np.asarray(codes, dtype=np.float32), (args.n, 1))
    out = generate(G, inputs, device=args.device)
    _write_output(out, args.out, nrow=nrow, toy=out.ndim == 2)
    print(f"wrote {args.n} samples to {args.out}")
    return 0


def _write_output(out: np.ndarray, path: str, nrow=None, toy=False) -> None:
    from tinygan.viz import images_to_uint8, save_image_grid
    path = Path(path)
    if path.suffix == ".npz":
        path.parent.mkdir(parents=True, exist_ok=True)
        if toy:
            np.savez(path, points=out.astype(np.float32))
        else:
            np.savez(path, images=images_to_uint8(out))
    elif path.suffix == ".png":
        if toy:
            from tinygan.viz.points import save_points_plot
            save_points_plot(out[:0], out, path, title="generated")
        else:
            save_image_grid(out, path, nrow=nrow or int(np.ceil(np.sqrt(len(out)))), scale=2)
    else:
        raise ValueError(f"--out: expected a .png or .npz file name, got {str(path)!r}")


# ---------------------------------------------------------------------------- interpolate

def _add_interpolate(sub) -> None:
    p = sub.add_parser("interpolate", help="latent-space walks between random points (the DCGAN paper's figure)")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--out", required=True, help="FILE.png")
    p.add_argument("--rows", type=int, default=8, help="number of walks")
    p.add_argument("--steps", type=int, default=10, help="images along each walk")
    p.add_argument("--slerp", action="store_true", help="spherical instead of linear interpolation")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", choices=DEVICES)
    p.set_defaults(func=_cmd_interpolate)


def _cmd_interpolate(args) -> int:
    from tinygan.gan.trainer import load_generator
    from tinygan.gan.sampling import generate, interpolation_inputs
    G, _, _ = load_generator(args.checkpoint, device=args.device)
    inputs = interpolation_inputs(G, args.rows, args.steps, np.random.default_rng(args.seed), spherical=args.slerp)
    out = generate(G, inputs, device=args.device)
    if out.ndim != 4:
        raise ValueError("interpolate: the checkpoint's generator does not make images")
    from tinygan.viz import save_image_grid
    save_image_grid(out, args.out, nrow=args.steps, scale=2)
    print(f"wrote {args.rows} walks of {args.steps} images to {args.out}")
    return 0


# ---------------------------------------------------------------------------- main

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tinygan", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    _add_train(sub)
    _add_sample(sub)
    _add_interpolate(sub)
    for module in ("tinygan.metrics.cli", "tinygan.benchmark.cli"):
        try:
            mod = __import__(module, fromlist=["add_parser"])
        except ImportError as e:
            if module.split(".")[1] in str(e):
                continue
            raise
        mod.add_parser(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted; the last checkpoint is intact", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        # Bad input, a missing file, no GPU, a diverged run: one clear line, no traceback.
        # (Set TINYGAN_DEBUG=1 to see where it came from.)
        import os
        if os.environ.get("TINYGAN_DEBUG"):
            raise
        print(f"tinygan {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
