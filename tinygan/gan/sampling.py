"""Drawing from a trained generator: plain samples, picture grids and latent-space walks."""
from __future__ import annotations

import math

import numpy as np

from tinygan.autograd import Tensor, no_grad
from tinygan.backend import to_device
from tinygan.gan.models import sample_grid_inputs


def generate(G, inputs: dict, device: str = "cpu", batch_size: int = 256) -> np.ndarray:
    """G's outputs for host ``inputs`` (a dict from ``G.sample_inputs``), in batches, eval mode, on the host."""
    G.eval()
    n = len(next(iter(inputs.values())))
    outs = []
    with no_grad():
        for start in range(0, n, batch_size):
            part = {k: Tensor(to_device(np.asarray(v[start:start + batch_size]), device)) for k, v in inputs.items()}
            outs.append(G(**part).numpy())
    return np.concatenate(outs)


def grid_inputs(G, n: int, rng: np.random.Generator, exact: bool = True) -> tuple[dict, int]:
    """Host inputs for a picture of ``n`` samples, and its width (images per row).

    Conditional models get one row per class and InfoGAN one row per
    categorical value, with the first continuous code varied along the row
    (:func:`~tinygan.gan.models.sample_grid_inputs`), so the picture shows
    what each input controls; other models get ``n`` independent draws in a
    square-ish grid.  With ``exact`` the grid is cut to exactly ``n`` samples
    (its last row may be short); without, it keeps whole rows (the trainer's
    fixed batch: 64 asked, 6 per class, 60 drawn).
    """
    if n < 1:
        raise ValueError(f"grid_inputs: n must be at least 1, got {n}")
    rows = getattr(G, "num_categories", None) or (G.num_classes if getattr(G, "conditional", False) else None)
    if not rows:
        return G.sample_inputs(n, rng), max(1, int(math.sqrt(n)))
    cols = max(1, math.ceil(n / rows)) if exact else max(2, n // rows)
    inputs = sample_grid_inputs(G, rows, cols, rng)
    if exact:
        inputs = {k: v[:n] for k, v in inputs.items()}
    return inputs, cols


def slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Spherical interpolation between rows of ``a`` and ``b`` (White 2016), linear when they are parallel."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    cos = np.sum(a64 * b64, axis=1) / (np.linalg.norm(a64, axis=1) * np.linalg.norm(b64, axis=1) + 1e-12)
    omega = np.arccos(np.clip(cos, -1, 1))[:, None]
    so = np.sin(omega)
    safe = np.where(so < 1e-6, 1.0, so)
    out = np.where(so < 1e-6, (1 - t) * a64 + t * b64,
                   np.sin((1 - t) * omega) / safe * a64 + np.sin(t * omega) / safe * b64)
    return out.astype(a.dtype)


def interpolation_inputs(G, rows: int, steps: int, rng: np.random.Generator, spherical: bool = False) -> dict:
    """Inputs for ``rows`` walks of ``steps`` images from one random latent point to another.

    Row r, column s holds z = (1 - t) z_r + t z'_r with t = s / (steps - 1)
    (or the spherical path with ``spherical``); labels and codes, if the model has
    them, stay fixed along a row.
    """
    start, end = G.sample_inputs(rows, rng), G.sample_inputs(rows, rng)
    out = {k: [] for k in start}
    for s in range(steps):
        t = s / max(steps - 1, 1)
        for k in start:
            if start[k].dtype.kind == "f":
                z = slerp(start[k], end[k], t) if spherical else ((1 - t) * start[k] + t * end[k]).astype(start[k].dtype)
            else:
                z = start[k]
            out[k].append(z)
    # (steps, rows, ...) -> (rows * steps, ...): row-major, one walk per grid row
    return {k: np.stack(v, axis=1).reshape((rows * steps,) + v[0].shape[1:]) for k, v in out.items()}

