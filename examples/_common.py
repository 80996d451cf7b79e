"""Shared argument parsing for the examples (each one stays a few lines of settings).

Every example writes into its own ``--out`` folder (never the current
directory) and refuses a folder that already holds a run unless told
``--overwrite``; ``--help`` lists every flag with its default.  Importing this
module applies :func:`tinygan.kernels.memory.reuse_freed_memory`, as the
``tinygan`` command does.
"""
from __future__ import annotations

import argparse

from tinygan.kernels.memory import reuse_freed_memory

# These scripts are applications, so they make the choice ``tinygan train`` makes: keep freed
# activation memory for the next step instead of faulting fresh pages in (docs/engine.md).
reuse_freed_memory()


def parser(doc: str, default_steps: int, default_out: str, default_batch: int = 64) -> argparse.ArgumentParser:
    """The flags every training example shares; ``doc`` (the script's docstring) becomes ``--help``'s text."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=default_steps, metavar="N",
                   help="generator updates (default: %(default)s; 2 is a smoke test)")
    p.add_argument("--batch-size", type=int, default=default_batch, metavar="N",
                   help="samples per batch (default: %(default)s)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where to train (default: %(default)s)")
    p.add_argument("--out", default=default_out, metavar="DIR",
                   help="the run folder: samples, losses, checkpoint (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, metavar="S",
                   help="seed of the weights, the noise and the data order (default: %(default)s)")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier run in --out")
    return p


def parse(doc: str, default_steps: int, default_out: str, argv=None) -> argparse.Namespace:
    """Parse the shared flags (see :func:`parser`)."""
    return parser(doc, default_steps, default_out).parse_args(argv)
