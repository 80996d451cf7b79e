"""Pictures of a toy run: a trained pair (G, D) drawn as the GAN paper's Figure 1 (1-D) or D's field (2-D).

:func:`save_toy_frame` samples G and evaluates D, then calls the drawing
functions of :mod:`tinygan.viz.toy`; :func:`train_with_snapshots` trains a toy
run with :class:`~tinygan.run.trainer.Trainer` and draws it at chosen steps
(one PNG each, a GIF of them and a panel side by side).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from tinygan.data import sample_toy, toy_density, toy_dim
from tinygan.gan.sampling import generate
from tinygan.run.trainer import Trainer
from tinygan.viz import save_gif
from tinygan.viz.toy import discriminator_on, field_grid, save_field_2d, save_figure1, save_panel, toy_extent

__all__ = ["save_toy_frame", "train_with_snapshots"]


def save_toy_frame(G, D, dataset: str, path, title: str = "", probabilistic: bool = True, n: int = 1000,
                   seed: int = 0, device: str = "cpu") -> Path:
    """Sample G and evaluate D for toy target ``dataset``, then draw Figure 1 (1-D) or the field (2-D).

    ``probabilistic``: D's output is a probability through a sigmoid (the
    GAN losses, ``loss.probabilistic``) rather than a raw score (LSGAN, WGAN, hinge).
    """
    rng = np.random.default_rng(seed)
    fake = generate(G, G.sample_inputs(n, rng), device=device)         # (n, d)
    real = sample_toy(dataset, n, np.random.default_rng([seed, 1]))
    lim = toy_extent(dataset)
    if toy_dim(dataset) == 1:
        x = np.linspace(-lim, lim, 400)                                   # (M,) includes 0, where G starts
        d = discriminator_on(D, x[:, None], probabilistic)
        return save_figure1(x, toy_density(dataset, x), fake, d, path, title, real=real, probabilistic=probabilistic)
    points, ticks = field_grid(lim)
    field = discriminator_on(D, points, probabilistic).reshape(len(ticks), len(ticks))
    label = "D(x)" if probabilistic else "critic value"
    return save_field_2d(real, fake, field, lim, path, title, label=label)


def train_with_snapshots(config, snapshot_steps: Sequence[int], out_dir, n: int = 1000, panel_columns=None) -> dict:
    """Train a toy GAN and draw it at ``snapshot_steps``: PNG per step, a GIF and a side-by-side panel.

    ``config`` is a :class:`tinygan.run.TrainConfig` with a toy ``dataset``
    (``model="mlp"``).  Training runs :meth:`Trainer.train_step` directly (no
    checkpoints or logs are written); step 0 is the untrained pair.  Returns
    ``{"frames": [...], "gif": path, "panel": path, "trainer": trainer}``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    trainer = Trainer(config)
    frames = []
    for target in sorted(set(int(s) for s in snapshot_steps)):
        while trainer.step < target:
            trainer.train_step()                     # (1) n_critic D updates, (2) one G update
            trainer.step += 1
        title = f"{config.dataset} / {config.loss}: step {trainer.step}"
        frames.append(save_toy_frame(trainer.G, trainer.D, config.dataset, out / f"step_{trainer.step:06d}.png",
                                     title, trainer.loss.probabilistic, n=n, seed=config.seed,
                                     device=trainer.device))
    gif = save_gif(frames, out / "snapshots.gif", duration_ms=600)
    panel = save_panel(frames, out / "snapshots_panel.png", columns=panel_columns)
    return {"frames": frames, "gif": gif, "panel": panel, "trainer": trainer}
