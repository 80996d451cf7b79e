"""``tinygan eval``: sample a checkpoint's generator and print (and save) its metrics.

    tinygan eval --checkpoint runs/dcgan/checkpoint.npz [--n 2500] [--json OUT] [--seed 0] [--device cpu]

The first image evaluation trains the digit classifier (under a minute on
2 cores) and caches it in ``$TINYGAN_CACHE`` or ``~/.cache/tinygan``.
"""
from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

from tinygan.metrics.evaluate import DEFAULT_N, default_json_path, evaluate_checkpoint, format_table


def add_parser(subparsers, common=None) -> None:
    """Register the ``eval`` sub-command (``tinygan.cli`` calls this when the module exists)."""
    p = subparsers.add_parser(
        "eval", parents=[common] if common else [], help="sample-quality metrics of a checkpoint (docs/metrics.md)",
        description="Draw N samples from a checkpoint's generator and compute the metrics that fit it: "
                    "modes captured / high-quality samples / reverse KL for the toy mixtures; a Frechet distance, "
                    "Inception-style score, class histogram and k-NN precision/recall in the feature space of "
                    "tinygan's small MNIST classifier (not Inception) for digits; conditional accuracy for CGAN and ACGAN; "
                    "code agreement for InfoGAN. Prints a table and writes JSON.")
    p.add_argument("--checkpoint", required=True, help="a checkpoint.npz written by tinygan train")
    p.add_argument("--n", type=int, default=DEFAULT_N, help=f"samples to draw (default {DEFAULT_N})")
    p.add_argument("--json", default=None, metavar="OUT",
                   help="where to write the results (default: eval.json beside the checkpoint)")
    p.add_argument("--seed", type=int, default=0, help="seed of the generator's inputs and of the real subsets")
    p.add_argument("--classifier-cache", default=None, metavar="DIR",
                   help="folder of the cached digit classifier (default $TINYGAN_CACHE or ~/.cache/tinygan)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.set_defaults(func=_cmd_eval)


def _cmd_eval(args) -> int:
    log = lambda msg: print(msg, file=sys.stderr)       # noqa: E731  (progress goes to stderr)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")                  # listed in the table and the JSON instead
        result = evaluate_checkpoint(args.checkpoint, n=args.n, device=args.device, seed=args.seed,
                                     classifier_dir=args.classifier_cache, log=log)
    print(format_table(result))
    out = Path(default_json_path(args.checkpoint) if args.json is None else args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")
    return 0
