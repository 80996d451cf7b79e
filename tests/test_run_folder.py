"""The run folder's rules: one writer (a lock a killed run leaves behind is taken over), an append-only log
whose rewrites are renames, torn lines dropped with a warning, and runs never replaced unasked."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tinygan.run import RunFolder, RunFolderError, TrainConfig, train

ROOT = Path(__file__).resolve().parents[1]


def _holder(path: Path) -> subprocess.Popen:
    """A separate process that takes the folder's lock and sleeps (a live run)."""
    code = ("import sys, time; from tinygan.run import RunFolder; f = RunFolder(sys.argv[1]); f.make(); f.lock(); "
            "print('locked', flush=True); time.sleep(120)")
    p = subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert p.stdout.readline().strip() == "locked"
    return p


def test_a_second_writer_is_refused_while_the_first_lives_and_a_dead_ones_lock_is_taken_over(tmp_path):
    out = tmp_path / "run"
    holder = _holder(out)
    try:
        with pytest.raises(RunFolderError, match="another tinygan process is writing"):
            train(TrainConfig(dry_run=True, out=str(out), progress=False))
        assert not (out / "checkpoint.npz").exists()
    finally:
        holder.send_signal(signal.SIGKILL)             # killed: no clean-up code runs
        holder.wait()
    assert (out / ".tinygan.lock").exists()            # the stale lock file is still there ...
    train(TrainConfig(dry_run=True, out=str(out), progress=False))   # ... and is simply taken over
    assert (out / "checkpoint.npz").is_file()


def test_log_rewrites_are_renames_never_truncations(tmp_path, monkeypatch):
    folder = RunFolder(tmp_path)
    folder.make()
    folder.append_metrics([{"step": s, "Loss_D": 1.0} for s in (1, 2, 3, 4)])
    inode = os.stat(folder.metrics_path).st_ino
    seen = {}
    real_replace = os.replace

    def spy(src, dst):
        seen["src"] = Path(src)
        seen["during"] = Path(dst).read_text()         # the old file is whole until the rename
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    kept = folder.keep_metrics_until(2)
    assert [r["step"] for r in kept] == [1, 2]
    assert seen["during"].count("\n") == 4 and seen["src"].parent == tmp_path
    assert os.stat(folder.metrics_path).st_ino != inode
    assert [json.loads(x)["step"] for x in folder.metrics_path.read_text().splitlines()] == [1, 2]
    seen.clear()
    folder.keep_metrics_until(2)                        # nothing to drop: the file is left alone
    assert not seen


def test_a_torn_last_line_is_dropped_with_a_warning_and_a_damaged_middle_is_refused(tmp_path):
    folder = RunFolder(tmp_path)
    folder.make()
    folder.metrics_path.write_text('{"step": 1}\n{"step": 2}\n{"step": 3, "Loss')
    with pytest.warns(UserWarning, match="half-written last line"):
        assert [r["step"] for r in folder.read_metrics()] == [1, 2]
    folder.metrics_path.write_text('{"step": 1}\nnot json\n{"step": 3}\n')
    with pytest.raises(RunFolderError, match="line 2 is not a log record"):
        folder.read_metrics()


def test_holds_run_and_clear_touch_only_run_files(tmp_path):
    folder = RunFolder(tmp_path / "r")
    folder.make()
    assert not folder.holds_run()
    (folder.path / "notes.txt").write_text("mine")
    (folder.samples_dir / "my_picture.png").write_bytes(b"x")
    assert not folder.holds_run()
    folder.metrics_path.write_text('{"step": 1}\n')
    (folder.samples_dir / "step_000001.png").write_bytes(b"x")
    assert folder.holds_run()
    with pytest.raises(RunFolderError, match="already holds a run"):
        folder.check_new(overwrite=False)
    folder.check_new(overwrite=True)
    folder.clear()
    assert not folder.holds_run()
    assert (folder.path / "notes.txt").read_text() == "mine" and (folder.samples_dir / "my_picture.png").exists()


def test_resume_of_a_folder_without_a_checkpoint(tmp_path):
    from tinygan.run import resume
    with pytest.raises(RunFolderError, match="no checkpoint"):
        resume(tmp_path)
    with pytest.raises(RunFolderError, match="not a folder"):
        resume(tmp_path / "missing")


def test_a_failed_start_leaves_no_debris_in_a_new_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="image folder not found"):
        train(TrainConfig(dataset="folder", data_dir=str(tmp_path / "none"), out=str(tmp_path / "new")))
    assert not (tmp_path / "new").exists()


def test_lock_is_released_after_a_run(tmp_path):
    train(TrainConfig(dry_run=True, out=str(tmp_path / "r"), progress=False))
    folder = RunFolder(tmp_path / "r")
    start = time.perf_counter()
    folder.lock()                                      # free again at once
    folder.unlock()
    assert time.perf_counter() - start < 5
