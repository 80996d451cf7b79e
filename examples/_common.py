"""Shared argument parsing for the variant examples (each one stays a few lines of settings)."""
import argparse


def parse(default_steps: int, default_out: str):
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=default_steps)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default=default_out)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true", help="replace an earlier run in --out")
    return p.parse_args()
