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

import contextlib
import math
import sys
import time
from pathlib import Path
from typing import Any

from tinygan.backend import CudaStepClock, to_numpy
from tinygan.gan.ema import TF_WARMUP
from tinygan.run import distributed
from tinygan.run.checkpoint import CheckpointFile
from tinygan.run.config import LEGACY_DEFAULT_STEPS, ConfigError, TrainConfig, flag_of
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
    if config.distributed:
        return _train_distributed(config, overwrite)
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
    if changes.get("distributed"):
        return _resume_distributed(out, changes)
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
    values["distributed"] = changes.get("distributed", False)     # how this resume was launched, not the run's
    if "steps" in changes and "epochs" not in changes:
        values["epochs"] = None
    if "epochs" in changes and "steps" not in changes:
        values["steps"] = None
    if values["steps"] is None and values["epochs"] is None and not values["dry_run"]:
        values["steps"] = LEGACY_DEFAULT_STEPS      # an older run left its default budget out of config.json
    if values["ema"] and values["ema_warmup"] is None:
        values["ema_warmup"] = TF_WARMUP            # an older run's average: its warm-up was TensorFlow's
    return TrainConfig(**values).validate()


# ----------------------------------------------------------------------------- on several processes

def _train_distributed(config: TrainConfig, overwrite: bool) -> Trainer:
    """:func:`train` on every rank of ``mpiexec``: rank 0 keeps the folder, all ranks train.

    What can fail on some ranks only (rank 0's folder, a rank's data or GPU)
    is agreed on before the first collective of the run, so every rank stops
    with the first failing rank's message; then every rank takes rank 0's
    weights and optimizer state.
    """
    comm = distributed.connect(config.device)
    root = comm.rank == 0
    folder = RunFolder(config.out) if root else None
    new = root and not folder.path.exists()
    with contextlib.ExitStack() as held:
        error, trainer = None, None
        try:
            if root:
                folder.make()
                held.enter_context(folder)             # the lock, held by rank 0 for the whole run
                folder.check_new(overwrite)
            trainer = Trainer(config, comm=comm)
        except Exception as e:   # noqa: BLE001  (agreed on, then raised on every rank)
            error = e
        try:
            distributed.agree(comm, error)
        except BaseException:
            if new:
                held.close()
                folder.remove_if_empty()               # a failed start leaves no empty folder behind
            raise
        if root:
            folder.clear()
        trainer.sync_from_root()
        run_loop(trainer, folder, history=[])
    return trainer


def _resume_distributed(out, changes: dict) -> Trainer:
    """:func:`resume` on every rank: rank 0 reads the folder and checkpoint and sends the others the state."""
    mpi = distributed.world()
    root = mpi.rank == 0
    with contextlib.ExitStack() as held:
        error, config, ck, folder = None, None, None, None
        try:
            if root:
                folder = RunFolder(out)
                folder.open_existing()
                held.enter_context(folder)
                ck = held.enter_context(CheckpointFile(folder.checkpoint_path))
                config = _apply_changes(ck.config, changes, str(out))
        except Exception as e:   # noqa: BLE001
            error = e
        distributed.agree(mpi, error)
        config = TrainConfig(**mpi.bcast(config.to_dict() if root else None)).validate()
        comm = distributed.connect(config.device)
        try:
            trainer = Trainer(config, comm=comm)
            if root:
                trainer.restore(ck)                    # refuses another number of processes
        except Exception as e:   # noqa: BLE001
            error = e
        distributed.agree(comm, error)
        if ck is not None:
            ck.close()                                 # read; the run writes a new checkpoint beside it
        trainer.sync_from_root()
        history = []
        if root:
            history = folder.keep_metrics_until(trainer.step)
            folder.drop_samples_after(trainer.step)
        run_loop(trainer, folder, history=history)
    return trainer


# ----------------------------------------------------------------------------- the loop

def run_loop(trainer: Trainer, folder: RunFolder | None, history: list[dict]) -> dict:
    """Train ``trainer`` to its total steps, writing into ``folder`` (see the module docstring).

    ``folder`` None: a rank other than 0 of a distributed run, which trains
    in step with rank 0 (the same log flushes, as they are collective) and
    writes nothing.
    """
    c = trainer.config
    writes = folder is not None
    if writes:
        folder.write_config(c.to_dict())
    total = trainer.total_steps()
    log_every = c.log_every or (1 if trainer.device == "cpu" else 50)
    progress = _Progress(total, trainer.step, c.progress and writes)
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
            if writes:
                folder.append_metrics(rows)
            history.extend(rows)
            last = rows[-1]
            progress.update(trainer.step, last)
        if want_sample and writes:
            _write_samples(trainer, folder)
        if want_ckpt and writes:
            trainer.save(folder.checkpoint_path)
    progress.close()
    if writes:
        _finish(trainer, folder, history)
    return last


def _host_rows(pending: list[dict], trainer: Trainer, folder: RunFolder | None) -> list[dict]:
    """The pending records as host numbers (one sync); NaN/Inf in a loss, gradient or weight stops the run.

    On several ranks the rows are the global batch's (the ranks' means
    averaged, one allgather) and every rank takes the same decision, so a
    diverged run stops on all ranks at the same step.
    """
    rows = [{k: v if isinstance(v, (int, float)) else float(to_numpy(v)) for k, v in rec.items()}
            for rec in pending]
    bad = trainer.nonfinite_state()
    if trainer.comm is not None:
        rows, bad = distributed.average_rows(trainer.comm, rows, bad)
    try:
        _check_finite(rows, bad, folder)
    except NonFiniteError as e:
        raise distributed.on_all_ranks(e) if trainer.comm is not None else e
    return rows


def _check_finite(rows: list[dict], bad: str | None, folder: RunFolder | None) -> None:
    for row in rows:
        for key, net in (("Loss_D", "discriminator"), ("grad_sq_D", "discriminator"),
                         ("Loss_G", "generator"), ("grad_sq_G", "generator")):
            if key in row and not math.isfinite(row[key]):
                what = "loss" if key.startswith("Loss") else "gradient"
                raise NonFiniteError(f"step {row['step']}: the {net}'s {what} is {row[key]} ({key}); "
                                     f"training stopped. {_kept(folder)}")
    if bad:
        raise NonFiniteError(f"step {rows[-1]['step']}: the {bad} holds NaN or infinite values after its update; "
                             f"training stopped. {_kept(folder)}")


def _kept(folder: RunFolder | None) -> str:
    if folder is None:                       # a rank other than 0: rank 0 says which checkpoint is kept
        return "Rank 0 keeps the last good checkpoint"
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
