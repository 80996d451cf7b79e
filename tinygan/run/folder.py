"""The run folder: what a training run writes, how it is locked, and what may never be lost.

    OUT/config.json          the run's resolved settings (written atomically)
    OUT/metrics.jsonl        one JSON line per step; only ever appended to
    OUT/samples/step_N.png   the fixed noise batch every ``sample_every`` steps
    OUT/checkpoint.npz       see :mod:`tinygan.run.checkpoint`
    OUT/progress.gif         the sample frames as an animation (at the end)
    OUT/losses.png           the loss curves (at the end)
    OUT/.tinygan.lock        held while a process writes to the folder

Rules kept here:

* A new run into a folder that already holds a run is refused unless the
  caller says ``overwrite`` (``--overwrite``); then only the files above are
  removed, nothing else in the folder.
* One writer at a time: an OS file lock (the ``filelock`` package, ``flock``
  on POSIX), which the OS releases when its process dies, so a killed run's
  lock is simply taken over.
* ``metrics.jsonl`` is appended to whole lines at a time.  When a resume must
  drop lines past its checkpoint, the kept lines go to a new file that is
  renamed over the old one (never truncated in place).  A half-written last
  line (a kill mid-write) is dropped with a warning.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

from filelock import FileLock, Timeout

from tinygan.io import atomic_write_text

__all__ = ["RunFolder", "RunFolderError", "RUN_FILES"]

RUN_FILES = ("config.json", "metrics.jsonl", "checkpoint.npz", "progress.gif", "losses.png")
LOCK_NAME = ".tinygan.lock"


class RunFolderError(ValueError):
    """The run folder cannot be used as asked (it holds another run, is a file, is locked, ...)."""


class RunFolder:
    """The files of one run in folder ``path``."""

    def __init__(self, path):
        self.path = Path(path)
        self._lock: FileLock | None = None

    # ------------------------------------------------------------------ paths
    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def checkpoint_path(self) -> Path:
        return self.path / "checkpoint.npz"

    @property
    def samples_dir(self) -> Path:
        return self.path / "samples"

    def sample_path(self, step: int) -> Path:
        return self.samples_dir / f"step_{step:06d}.png"

    # ------------------------------------------------------------------ opening
    def holds_run(self) -> bool:
        """True when the folder has any file a run writes (or a non-empty samples/)."""
        if any((self.path / name).exists() for name in RUN_FILES):
            return True
        return self.samples_dir.is_dir() and any(self.samples_dir.glob("step_*.png"))

    def make(self) -> None:
        """Create the folder (and ``samples/``) if needed; a file in its place is refused."""
        if self.path.exists() and not self.path.is_dir():
            raise RunFolderError(f"--out: {self.path} is a file, not a folder")
        try:
            self.samples_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise RunFolderError(f"--out: cannot create {self.samples_dir} ({e.strerror or e})") from None

    def check_new(self, overwrite: bool = False) -> None:
        """Refuse a folder that holds a run, unless ``overwrite`` (then :meth:`clear` removes it)."""
        if self.holds_run() and not overwrite:
            raise RunFolderError(
                f"--out: {self.path} already holds a run; continue it with --resume, start over with "
                "--overwrite (removes its log, samples and checkpoint), or choose another --out")

    def clear(self) -> None:
        """Remove the files a run writes (and nothing else in the folder)."""
        for name in RUN_FILES:
            (self.path / name).unlink(missing_ok=True)
        for png in self.samples_dir.glob("step_*.png"):
            png.unlink()

    def remove_if_empty(self) -> None:
        """Undo :meth:`make` for a folder that holds nothing but what it made (``samples/``, the lock file)."""
        (self.path / LOCK_NAME).unlink(missing_ok=True)
        for d in (self.samples_dir, self.path):
            try:
                d.rmdir()
            except OSError:
                return

    def open_existing(self) -> None:
        """Check that the folder holds a run that can be resumed."""
        if not self.path.is_dir():
            raise RunFolderError(f"--resume: {self.path} is not a folder")
        if not self.checkpoint_path.is_file():
            raise RunFolderError(f"--resume: no checkpoint at {self.checkpoint_path}; nothing to resume")
        self.samples_dir.mkdir(exist_ok=True)

    # ------------------------------------------------------------------ the lock
    def lock(self) -> None:
        """Take the folder's lock or refuse: another live process is writing here."""
        lock = FileLock(str(self.path / LOCK_NAME))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            raise RunFolderError(f"--out: another tinygan process is writing to {self.path} "
                                 f"(it holds {self.path / LOCK_NAME}); wait for it or choose another --out") from None
        self._lock = lock

    def unlock(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> "RunFolder":
        self.lock()
        return self

    def __exit__(self, *exc) -> None:
        self.unlock()

    # ------------------------------------------------------------------ config.json
    def write_config(self, config: dict) -> None:
        atomic_write_text(self.config_path, json.dumps(config, indent=2) + "\n")

    # ------------------------------------------------------------------ metrics.jsonl
    def read_metrics(self) -> list[dict]:
        """Every complete line of ``metrics.jsonl``; a torn last line is dropped with a warning."""
        if not self.metrics_path.exists():
            return []
        rows, text = [], self.metrics_path.read_text(encoding="utf-8", errors="replace")
        lines = text.split("\n")
        for i, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                if not isinstance(row, dict) or not isinstance(row.get("step"), int):
                    raise ValueError("no step")
            except ValueError:
                last = i == len(lines) - 1 or all(not s.strip() for s in lines[i + 1:])
                if last:
                    warnings.warn(f"{self.metrics_path}: dropping a half-written last line (the run was "
                                  "stopped while writing it)", stacklevel=2)
                    continue
                raise RunFolderError(f"{self.metrics_path}: line {i + 1} is not a log record; the file was "
                                     "edited or damaged (move it away to resume without the old log)") from None
            rows.append(row)
        return rows

    def keep_metrics_until(self, step: int) -> list[dict]:
        """Drop log lines after ``step`` (they are redone on resume); returns the kept rows.

        When anything must go (lines past ``step`` or a torn line), the kept lines
        are written to a new file that replaces the old one in one rename.
        """
        if not self.metrics_path.exists():
            return []
        raw = self.metrics_path.read_bytes()
        rows = self.read_metrics()
        keep = [r for r in rows if r["step"] <= step]
        text = "".join(json.dumps(r) + "\n" for r in keep)
        if text.encode() != raw:
            atomic_write_text(self.metrics_path, text)
        return keep

    def append_metrics(self, rows: list[dict]) -> None:
        """Append whole lines (one write call) to ``metrics.jsonl``."""
        if rows:
            with open(self.metrics_path, "a", encoding="utf-8") as f:
                f.write("".join(json.dumps(r) + "\n" for r in rows))

    # ------------------------------------------------------------------ samples
    def drop_samples_after(self, step: int) -> None:
        """Remove this run's sample frames after ``step`` (a resume redoes those steps)."""
        for png in self.samples_dir.glob("step_*.png"):
            try:
                if int(png.stem.split("_")[1]) > step:
                    png.unlink()
            except ValueError:
                continue

    def sample_frames(self) -> list[Path]:
        return sorted(self.samples_dir.glob("step_*.png"))
