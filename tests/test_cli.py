"""The ``tinygan`` command as a user runs it: every sub-command through ``main()``, ``python -m tinygan``,
and a table of bad inputs that must each end in one line naming the flag, file or value, exit code 2.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tinygan.cli import main
from tinygan.run import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--ngf", "8", "--ndf", "8", "--nz", "16", "--batch-size", "8", "--no-progress"]


def run_cli(capsys, *argv):
    """(exit code, stdout, stderr) of ``tinygan *argv`` run in this process."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:             # argparse's own exits (usage errors, --help)
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Small finished runs to sample from: a DCGAN, a CGAN, an InfoGAN and a toy MLP."""
    base = tmp_path_factory.mktemp("runs")
    for name, extra in (("dcgan", []), ("cgan", ["--model", "cgan"]),
                        ("infogan", ["--model", "infogan", "--categories", "3", "--continuous", "2"]),
                        ("toy", ["--model", "mlp", "--dataset", "ring8", "--nz", "4", "--batch-size", "16",
                                 "--no-progress"])):
        args = (TINY if name != "toy" else []) + extra + ["--steps", "2", "--out", str(base / name)]
        assert main(["train", *args]) == 0
    return base


# --------------------------------------------------------------------------- what works

def test_train_then_resume_through_the_cli(tmp_path, capsys):
    out = tmp_path / "run"
    code, stdout, _ = run_cli(capsys, "train", *TINY, "--steps", "3", "--checkpoint-every", "2", "--out", out)
    assert code == 0 and "trained 3 steps" in stdout
    code, stdout, _ = run_cli(capsys, "train", "--resume", "--out", out, "--steps", "5", "--no-progress")
    assert code == 0 and "trained 5 steps" in stdout
    assert [json.loads(r)["step"] for r in (out / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3, 4, 5]
    assert load_checkpoint(out / "checkpoint.npz")["meta"]["step"] == 5


def test_progress_lines_when_not_on_a_terminal(tmp_path, capsys):
    code, _, err = run_cli(capsys, "train", *TINY[:-1], "--steps", "4", "--out", tmp_path / "r")
    assert code == 0
    lines = [line for line in err.splitlines() if line.startswith("[")]
    assert lines[-1].startswith("[4/4] Loss_D ") and "D_G_z2" in lines[-1]


@pytest.mark.parametrize("n", [1, 5, 13])
def test_sample_writes_exactly_n(runs, tmp_path, capsys, n):
    for name in ("dcgan", "cgan", "infogan", "toy"):
        out = tmp_path / f"{name}{n}.npz"
        code, stdout, err = run_cli(capsys, "sample", "--checkpoint", runs / name / "checkpoint.npz", "--n", n,
                                    "--out", out)
        assert code == 0, err
        with np.load(out) as z:
            key = "points" if name == "toy" else "images"
            assert len(z[key]) == n, name
        png = tmp_path / f"{name}{n}.png"
        assert run_cli(capsys, "sample", "--checkpoint", runs / name / "checkpoint.npz", "--n", n, "--out", png)[0] == 0
        assert Image.open(png).size[0] > 0


def test_sample_labels_and_codes(runs, tmp_path, capsys):
    ck = runs / "cgan" / "checkpoint.npz"
    assert run_cli(capsys, "sample", "--checkpoint", ck, "--label", 7, "--n", 4, "--out", tmp_path / "7.npz")[0] == 0
    ck = runs / "infogan" / "checkpoint.npz"
    code, _, err = run_cli(capsys, "sample", "--checkpoint", ck, "--category", 2, "--code", "0.5,-1", "--n", 3,
                           "--out", tmp_path / "c.npz")
    assert code == 0, err


def test_sample_and_eval_need_only_the_generators_weights(runs, tmp_path, capsys):
    """A checkpoint stripped of the optimizer state (a weights-only file) still samples; it cannot resume."""
    src = runs / "dcgan" / "checkpoint.npz"
    with np.load(src) as z:
        keep = {k: z[k] for k in z.files if not k.startswith(("optG/", "optD/", "D/"))}
    meta = json.loads(keep["meta.json"].tobytes())
    del meta["optG"], meta["optD"]
    keep["meta.json"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    (tmp_path / "w").mkdir()
    np.savez(tmp_path / "w" / "checkpoint.npz", **keep)
    code, _, err = run_cli(capsys, "sample", "--checkpoint", tmp_path / "w" / "checkpoint.npz", "--n", 2,
                           "--out", tmp_path / "s.png")
    assert code == 0, err
    code, _, err = run_cli(capsys, "train", "--resume", "--out", tmp_path / "w", "--steps", 4)
    assert code == 2 and "missing" in err and len(err.strip().splitlines()) == 1


def test_interpolate(runs, tmp_path, capsys):
    out = tmp_path / "walk.png"
    code, stdout, err = run_cli(capsys, "interpolate", "--checkpoint", runs / "dcgan" / "checkpoint.npz",
                                "--rows", 2, "--steps", 3, "--slerp", "--out", out)
    assert code == 0, err
    assert Image.open(out).size[0] > 0


def test_python_dash_m_tinygan(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-m", "tinygan", "train", "--dry-run", "--out", str(tmp_path / "d"),
                        "--no-progress"], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "trained 2 steps" in r.stdout
    r = subprocess.run([sys.executable, "-m", "tinygan", "train", "--steps", "-5"], capture_output=True, text=True,
                       env=env, timeout=300)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "--steps" in r.stderr


# --------------------------------------------------------------------------- what is refused

BAD_TRAIN = [
    (["--sample-every", "0"], "--sample-every"),
    (["--checkpoint-every", "0"], "--checkpoint-every"),
    (["--n-critic", "-1"], "--n-critic"),
    (["--epochs", "inf"], "--epochs"),
    (["--epochs", "-2"], "--epochs"),
    (["--steps", "-5"], "--steps"),
    (["--steps", "1.5"], "--steps"),
    (["--ngf", "0"], "--ngf"),
    (["--lr", "nan"], "--lr"),
    (["--lr", "-1"], "--lr"),
    (["--r1", "-5"], "--r1"),
    (["--beta1", "1"], "--beta1"),
    (["--image-size", "1000"], "--image-size"),
    (["--image-size", "30"], "--image-size"),
    (["--batch-size", "0"], "--batch-size"),
    (["--seed", "-1"], "--seed"),
    (["--model", "nope"], "--model"),
    (["--loss", "nope"], "--loss"),
    (["--dataset", "nope"], "--dataset"),
    (["--device", "tpu"], "--device"),
    (["--steps", "3", "--epochs", "1"], "--epochs"),
    (["--model", "mlp", "--ngf", "8"], "--ngf"),
    (["--categories", "3"], "--categories"),
    (["--dataset", "ring8", "--model", "mlp", "--image-size", "32"], "--image-size"),
    (["--dataset", "ring8"], "--model dcgan"),
    (["--loss", "wgan", "--beta1", "0.5"], "--beta1"),
    (["--dry-run", "--steps", "3"], "--steps"),
    (["--resume", "--overwrite"], "--resume"),
    (["--dataset", "folder", "--data-dir", "/nonexistent/images"], "/nonexistent/images"),
]


@pytest.mark.parametrize("argv,names", BAD_TRAIN, ids=[" ".join(a) for a, _ in BAD_TRAIN])
def test_bad_train_flags_give_one_line(tmp_path, capsys, argv, names):
    code, out, err = run_cli(capsys, "train", *argv, "--out", tmp_path / "r")
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert names in err, err
    assert not (tmp_path / "r" / "checkpoint.npz").exists()


def test_a_batch_larger_than_the_data(tmp_path, capsys):
    (tmp_path / "imgs").mkdir()
    for i in range(3):
        Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(tmp_path / "imgs" / f"{i}.png")
    code, _, err = run_cli(capsys, "train", "--dataset", "folder", "--data-dir", tmp_path / "imgs", "--image-size",
                           "8", "--batch-size", "8", "--out", tmp_path / "r")
    assert code == 2 and "--batch-size" in err and "3 images" in err, err
    assert not (tmp_path / "r" / "checkpoint.npz").exists()


def test_out_that_is_a_file(tmp_path, capsys):
    (tmp_path / "f").write_text("mine")
    code, _, err = run_cli(capsys, "train", "--dry-run", "--out", tmp_path / "f")
    assert code == 2 and "is a file" in err and (tmp_path / "f").read_text() == "mine"


def test_read_only_out_folder(tmp_path, capsys):
    if os.geteuid() == 0:
        pytest.skip("root ignores folder permissions")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        code, _, err = run_cli(capsys, "train", "--dry-run", "--out", ro / "run")
    finally:
        ro.chmod(0o700)
    assert code == 2 and "Permission denied" in err and len(err.strip().splitlines()) == 1


def test_a_full_disk_ends_in_one_line_and_keeps_the_last_checkpoint(tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    assert run_cli(capsys, "train", *TINY, "--steps", "2", "--out", out)[0] == 0
    before = (out / "checkpoint.npz").read_bytes()
    import tinygan.run.checkpoint as C

    def full(f, **arrays):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(C.np, "savez", full)
    code, _, err = run_cli(capsys, "train", "--resume", "--out", out, "--steps", "4")
    assert code == 2 and "No space left on device" in err and len(err.strip().splitlines()) == 1
    assert (out / "checkpoint.npz").read_bytes() == before


BAD_SAMPLE = [
    (["--n", "0"], "--n"),
    (["--n", "-3"], "--n"),
    (["--out", "x.jpg"], "--out"),
    (["--label", "3"], "--label"),                 # the DCGAN is not conditional
    (["--category", "1"], "--category"),
    (["--code", "1,2"], "--category/--code"),
]


@pytest.mark.parametrize("argv,names", BAD_SAMPLE, ids=[" ".join(a) for a, _ in BAD_SAMPLE])
def test_bad_sample_flags_give_one_line(runs, tmp_path, capsys, argv, names):
    args = {"--n": "4", "--out": str(tmp_path / "s.png")}
    extra = []
    for i in range(0, len(argv), 2):
        if argv[i] in args:
            args[argv[i]] = argv[i + 1]
        else:
            extra += argv[i:i + 2]
    code, _, err = run_cli(capsys, "sample", "--checkpoint", runs / "dcgan" / "checkpoint.npz",
                           *[x for kv in args.items() for x in kv], *extra)
    assert code == 2 and len(err.strip().splitlines()) == 1 and names in err, err


def test_sample_refuses_to_overwrite_unless_asked(runs, tmp_path, capsys):
    out = tmp_path / "s.png"
    out.write_bytes(b"mine")
    ck = runs / "dcgan" / "checkpoint.npz"
    code, _, err = run_cli(capsys, "sample", "--checkpoint", ck, "--out", out)
    assert code == 2 and "--overwrite" in err and out.read_bytes() == b"mine"
    assert run_cli(capsys, "sample", "--checkpoint", ck, "--out", out, "--overwrite")[0] == 0


def test_sample_label_out_of_range(runs, tmp_path, capsys):
    code, _, err = run_cli(capsys, "sample", "--checkpoint", runs / "cgan" / "checkpoint.npz", "--label", 10,
                           "--out", tmp_path / "s.png")
    assert code == 2 and "--label: must be in [0, 10)" in err


def test_missing_or_corrupt_checkpoint(tmp_path, capsys):
    code, _, err = run_cli(capsys, "sample", "--checkpoint", tmp_path / "none.npz", "--out", tmp_path / "s.png")
    assert code == 2 and "none.npz" in err
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    code, _, err = run_cli(capsys, "eval", "--checkpoint", tmp_path / "bad.npz")
    assert code == 2 and "truncated or corrupt" in err and len(err.strip().splitlines()) == 1


def test_unexpected_errors_are_one_line_unless_debug(tmp_path, capsys, monkeypatch):
    import tinygan.cli as cli

    def boom(args):
        raise KeyError("internal")

    monkeypatch.setattr(cli, "train", lambda *a, **k: boom(None))
    code, _, err = run_cli(capsys, "train", "--dry-run", "--out", tmp_path / "r")
    assert code == 2 and "unexpected error: KeyError" in err and "--debug" in err and "Traceback" not in err
    with pytest.raises(KeyError):
        main(["train", "--dry-run", "--out", str(tmp_path / "r"), "--debug"])
