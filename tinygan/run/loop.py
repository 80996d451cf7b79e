"""Running a trainer into its run folder: ``train`` a new run, ``resume`` one, and the loop between.

The loop, one generator update per turn::

    record = trainer.train_step()                 # (1) update D [n_critic times], (2) update G
    every log_every steps, and before samples or a checkpoint:
        bring the records to the host (one sync), stop on NaN/Inf in a loss, a gradient,
        a weight or a buffer, append them to metrics.jsonl
    every sample_every steps: samples/step_N.png of the fixed noise batch
    every checkpoint_every steps and at the end: checkpoint.npz (atomically)

so no checkpoint is ever written from a diverged state, and the log never runs
ahead of what a resume would redo.  At the end: ``progress.gif`` and ``losses.png``.
"""
from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Any

from tinygan.backend import CudaStepClock, to_numpy
from tinygan.run.checkpoint import CheckpointFile
from tinygan.run.config import ConfigError, TrainConfig, flag_of
from tinygan.run.folder import RunFolder
from tinygan.run.trainer import Trainer
from tinygan.viz import save_gif, save_image_grid, save_loss_curves, save_points_plot

__all__ = ["train", "resume", "NonFiniteError", "run_loop"]

LOGGED = ("Loss_D", "Loss_G", "D_x", "D_G_z1", "D_G_z2")      # the columns of PyTorch's DCGAN example


class NonFiniteError(RuntimeError):
    """A loss, gradient, weight or buffer became NaN or infinite; the last good checkpoint is kept."""


def train(config: TrainConfig, overwrite: bool = False) -> Trainer:
    """Train a new run described by ``config`` into ``config.out``.

    A folder that already holds a run is refused unless ``overwrite``.  Every
    setting is checked before the folder is touched or any data is loaded.
    """
    config = TrainConfig(**config.to_dict()).validate()
    folder = RunFolder(config.out)
    new = not folder.path.exists()
    folder.make()
    try:
        with folder:                        # the lock: one writer per folder
            folder.check_new(overwrite)
            trainer = Trainer(config)       # loads the data and builds the networks before anything is removed
    except BaseException:
        if new:
            folder.remove_if_empty()        # a failed start leaves no empty folder behind
        raise
    with folder:
        folder.clear()
        run_loop(trainer, folder, history=[])
    return trainer


def resume(out, **changes: Any) -> Trainer:
    """Continue the run in folder ``out`` from its ``checkpoint.npz``, exactly where it stopped.

    ``changes`` may set cadence and place settings (``steps``, ``epochs``,
    ``sample_every``, ``checkpoint_every``, ``log_every``, ``device``,
    ``progress``, ``data_dir``, ``download``); a setting that defines the run
    (model, loss, data, optimizer, seed, ...) may be given only with the
    value the run already has; anything else is refused, naming each flag.
    """
    folder = RunFolder(out)
    folder.open_existing()
    with folder:
        with CheckpointFile(folder.checkpoint_path) as ck:
            saved = ck.config
            config = _apply_changes(saved, changes, str(out))
            trainer = Trainer(config)
            trainer.restore(ck)
        history = folder.keep_metrics_until(trainer.step)
        folder.drop_samples_after(trainer.step)
        run_loop(trainer, folder, history=history)
    return trainer


def _apply_changes(saved: TrainConfig, changes: dict, out: str) -> TrainConfig:
    """The saved config with ``changes`` applied; refuses changes to what defines the run."""
    unknown = sorted(set(changes) - set(saved.to_dict()))
    if unknown:
        raise ConfigError(f"--resume: unknown setting(s) {', '.join(unknown)}")
    refused = [f"{flag_of(k)} {v} (the run has {getattr(saved, k)})" for k, v in changes.items()
               if TrainConfig.role(k) == "defines" and v != getattr(saved, k)]
    if refused:
        raise ConfigError("--resume: these settings define the run and cannot change: " + "; ".join(refused) +
                          ". Start a new run (another --out) to change them")
    values = {**saved.to_dict(), **changes, "out": out}
    if "steps" in changes and "epochs" not in changes:
        values["epochs"] = None
    if "epochs" in changes and "steps" not in changes:
        values["steps"] = None
    return TrainConfig(**values).validate()


# ----------------------------------------------------------------------------- the loop

def run_loop(trainer: Trainer, folder: RunFolder, history: list[dict]) -> dict:
    """Train ``trainer`` to its total steps, writing into ``folder`` (see the module docstring)."""
    c = trainer.config
    folder.write_config(c.to_dict())
    total = trainer.total_steps()
    log_every = c.log_every or (1 if trainer.device == "cpu" else 50)
    progress = _Progress(total, trainer.step, c.progress)
    pending: list[dict] = []
    last: dict = {}
    t_last = time.perf_counter()
    gpu_clock = CudaStepClock() if trainer.device == "cuda" else None   # GPU: time the work, not the launches
    while trainer.step < total:
        record = trainer.train_step()
        trainer.step += 1
        now = time.perf_counter()
        record["sec_per_iter"], t_last = now - t_last, now
        if gpu_clock is not None:           # CUDA events recorded per step, read at the log flush (no sync here)
            record["sec_per_iter"] = gpu_clock.lap()
        record["step"], record["epoch"] = trainer.step, trainer.position[0]
        pending.append(record)
        at_end = trainer.step == total
        want_sample = trainer.step % c.sample_every == 0 or trainer.step == 1 or at_end
        want_ckpt = trainer.step % c.checkpoint_every == 0 or at_end
        if len(pending) >= log_every or want_sample or want_ckpt:
            rows = _host_rows(pending, trainer, folder)      # raises NonFiniteError before anything is saved
            pending = []
            folder.append_metrics(rows)
            history.extend(rows)
            last = rows[-1]
            progress.update(trainer.step, last)
        if want_sample:
            _write_samples(trainer, folder)
        if want_ckpt:
            trainer.save(folder.checkpoint_path)
    progress.close()
    _finish(trainer, folder, history)
    return last


def _host_rows(pending: list[dict], trainer: Trainer, folder: RunFolder) -> list[dict]:
    """The pending records as host numbers (one sync); NaN/Inf in a loss, gradient or weight stops the run."""
    rows = [{k: v if isinstance(v, (int, float)) else float(to_numpy(v)) for k, v in rec.items()}
            for rec in pending]
    for row in rows:
        for key, net in (("Loss_D", "discriminator"), ("grad_sq_D", "discriminator"),
                         ("Loss_G", "generator"), ("grad_sq_G", "generator")):
            if key in row and not math.isfinite(row[key]):
                what = "loss" if key.startswith("Loss") else "gradient"
                raise NonFiniteError(f"step {row['step']}: the {net}'s {what} is {row[key]} ({key}); "
                                     f"training stopped. {_kept(folder)}")
    bad = trainer.nonfinite_state()
    if bad:
        raise NonFiniteError(f"step {rows[-1]['step']}: the {bad} holds NaN or infinite values after its update; "
                             f"training stopped. {_kept(folder)}")
    return rows


def _kept(folder: RunFolder) -> str:
    if folder.checkpoint_path.is_file():
        return (f"The last good checkpoint, {folder.checkpoint_path}, is kept; try a lower --lr or another loss "
                "(--resume continues from it)")
    return "No checkpoint had been written yet; try a lower --lr or another loss"


def _write_samples(trainer: Trainer, folder: RunFolder) -> Path:
    """The fixed noise batch's samples as ``samples/step_XXXXXX.png``."""
    path = folder.sample_path(trainer.step)
    samples = trainer.generate(trainer.fixed)
    if trainer.data.kind == "toy":
        save_points_plot(trainer.toy_reference(), samples, path, title=f"step {trainer.step}")
    else:
        save_image_grid(samples, path, nrow=trainer.grid_cols, scale=2)
    return path


def _finish(trainer: Trainer, folder: RunFolder, history: list[dict]) -> None:
    frames = folder.sample_frames()
    if frames:
        save_gif(frames, folder.path / "progress.gif")
    if history:
        steps = [r["step"] for r in history]
        series = {k: [r[k] for r in history] for k in ("Loss_D", "Loss_G") if k in history[0]}
        c = trainer.config
        save_loss_curves(steps, series, folder.path / "losses.png", title=f"{c.model} / {c.loss}: losses",
                         smooth=max(1, len(steps) // 100))


class _Progress:
    """A tqdm bar on a terminal; a plain log line every ~5% of the run otherwise (log files stay short)."""

    def __init__(self, total: int, start: int, enabled: bool):
        self.total, self.bar, self.enabled = total, None, enabled
        self.every = max(1, total // 20)
        if enabled and sys.stderr.isatty():
            from tqdm import tqdm     # noqa: PLC0415  (only on a terminal)
            self.bar = tqdm(total=total, initial=start, desc="train", unit="it", dynamic_ncols=True)
        self.shown = start

    def update(self, step: int, row: dict) -> None:
        if not self.enabled:
            return
        figures = {k: f"{row[k]:.4f}" for k in LOGGED if k in row}
        if self.bar is not None:
            self.bar.update(step - self.shown)
            self.bar.set_postfix(figures, refresh=False)
        elif step // self.every > self.shown // self.every or step == self.total:
            print(f"[{step}/{self.total}] " + " ".join(f"{k} {v}" for k, v in figures.items()),
                  file=sys.stderr, flush=True)
        self.shown = step

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
