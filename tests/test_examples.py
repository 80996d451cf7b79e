"""Every example runs, with a tiny budget, and writes what its docstring promises into its own --out folder.

Each script runs in a subprocess (as a reader runs it: ``python examples/x.py ...``) into a
temporary folder, from a temporary working directory that must stay empty (no example writes
into the current directory).  Two run at a time.  matplotlib is hidden from the subprocesses
(the figures fall back to Pillow), which saves seconds of start-up per script and runs the
fallback.  ``--help`` of every example must document every flag.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import re
import runpy
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

TINY = ["--steps", "2", "--batch-size", "8"]
TRAIN_FILES = ["config.json", "metrics.jsonl", "checkpoint.npz", "progress.gif", "losses.png", "samples/step_*.png"]

# example -> (tiny-budget arguments, files it must write into --out)
RUNS = {
    "gan_toy": (["--steps", "2", "--batch-size", "16", "--loss", "minimax"], TRAIN_FILES),
    "dcgan_mnist": (TINY + ["--ngf", "8", "--ndf", "8", "--sample-every", "1"],
                    ["samples.png", "samples/step_000001.png", "samples/step_000002.png"]),
    "cgan": (TINY, TRAIN_FILES),
    "acgan": (TINY, TRAIN_FILES),
    "diffaugment": (TINY + ["--policy", "translation,cutout,color"], TRAIN_FILES),
    "mbstd": (["--steps", "2", "--batch-size", "16"], TRAIN_FILES),
    "unrolled_gan": (["--steps", "2", "--batch-size", "16", "--unroll", "2"], TRAIN_FILES),
    "infogan": (TINY, TRAIN_FILES),
    "lsgan": (TINY, TRAIN_FILES),
    "relativistic": (TINY + ["--loss", "rsgan"], TRAIN_FILES),
    "dragan": (TINY, TRAIN_FILES),
    "sngan": (TINY, TRAIN_FILES),
    "wgan": (["--steps", "1", "--batch-size", "8"], TRAIN_FILES),
    "wgan_gp": (["--steps", "1", "--batch-size", "8"], TRAIN_FILES),
    "theory_lab": (["--quick"], ["optimal_discriminator.png", "value_vs_jsd.png", "saturation.png",
                                 "gauss1d/snapshots.gif", "ring8/snapshots_panel.png"]),
    "mode_collapse": (["--seeds", "1", "--steps", "2", "--n", "200", "--batch-size", "32",
                       "--losses", "nonsaturating", "wgan-gp"], ["results.json", "table.md", "samples.png"]),
}


def test_every_example_is_covered():
    scripts = {p.stem for p in EXAMPLES.glob("*.py") if not p.stem.startswith("_")}
    assert scripts == set(RUNS)


def _env(tmp: Path) -> dict:
    """The subprocess environment: matplotlib hidden (a package that refuses to import), one BLAS thread."""
    hide = tmp / "no_matplotlib" / "matplotlib"
    hide.mkdir(parents=True, exist_ok=True)
    (hide / "__init__.py").write_text('raise ImportError("hidden by tests/test_examples.py")\n')
    path = os.pathsep.join([str(hide.parent), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """name -> (completed process, its --out folder), plus the working directory they ran from."""
    tmp = tmp_path_factory.mktemp("examples")
    cwd = tmp / "cwd"
    cwd.mkdir()
    env = _env(tmp)

    def run(name):
        args, _ = RUNS[name]
        out = tmp / "out" / name
        proc = subprocess.run([sys.executable, str(EXAMPLES / f"{name}.py"), *args, "--out", str(out)],
                              capture_output=True, text=True, cwd=cwd, env=env, timeout=300)
        return name, (proc, out)

    with ThreadPoolExecutor(max_workers=2) as pool:
        done = dict(pool.map(run, RUNS))
    return done, cwd, env


@pytest.mark.parametrize("name", RUNS)
def test_example_runs_and_writes_its_files(runs, name):
    done, _, _ = runs
    proc, out = done[name]
    assert proc.returncode == 0, f"{name} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    for pattern in RUNS[name][1]:
        found = sorted(out.glob(pattern))
        assert found, f"{name}: nothing matches {pattern} in {out}"
        for path in found:
            if path.suffix in (".png", ".gif"):
                from PIL import Image
                with Image.open(path) as img:          # decodes: a real image, not an empty file
                    img.load()
                    assert img.size[0] > 8 and img.size[1] > 8, path


def test_no_example_writes_into_the_current_directory(runs):
    _, cwd, _ = runs
    assert list(cwd.iterdir()) == []


def test_gan_toy_trains_with_the_loss_it_was_given(runs):
    done, _, _ = runs
    _, out = done["gan_toy"]
    assert json.loads((out / "config.json").read_text())["loss"] == "minimax"


def test_relativistic_sngan_and_dragan_examples_train_what_they_say(runs):
    done, _, _ = runs
    configs = {name: json.loads((done[name][1] / "config.json").read_text()) for name in ("relativistic", "dragan",
                                                                                            "sngan")}
    assert configs["relativistic"]["loss"] == "rsgan"
    assert (configs["dragan"]["model"], configs["dragan"]["loss"]) == ("dcgan", "dragan")
    assert (configs["sngan"]["model"], configs["sngan"]["loss"]) == ("sngan", "hinge")
    assert "largest singular value of W_orig / sigma = 1.0" in done["sngan"][0].stdout


def test_theory_lab_prints_the_points_it_names(runs):
    done, _, _ = runs
    text = done["theory_lab"][0].stdout
    # dL/dl = -D for minimax, -(1 - D) for non-saturating: exact at the named points, not at grid neighbours
    for d, minimax, nonsat in (("0.5", "-5.00e-01", "-5.00e-01"), ("0.01", "-1.00e-02", "-9.90e-01"),
                               ("1e-06", "-1.00e-06", "-1.00e+00")):
        assert re.search(rf"D = {re.escape(d)}:\s+minimax dL/dl = {re.escape(minimax)}\s+"
                         rf"non-saturating dL/dl = {re.escape(nonsat)}", text), text


def test_an_example_refuses_to_overwrite_a_run(runs):
    done, cwd, env = runs
    _, out = done["dcgan_mnist"]
    proc = subprocess.run([sys.executable, str(EXAMPLES / "dcgan_mnist.py"), "--steps", "1", "--out", str(out)],
                          capture_output=True, text=True, cwd=cwd, env=env, timeout=120)
    assert proc.returncode != 0 and "--overwrite" in proc.stderr
    assert (out / "samples" / "step_000002.png").is_file()      # the earlier run is untouched


def _help_texts() -> dict[str, str]:
    """``--help`` of every example, run in this process (argparse exits before any work is done)."""
    texts = {}
    for name in RUNS:
        stdout = io.StringIO()
        argv, path = sys.argv, sys.path[:]
        sys.argv, sys.path = [f"{name}.py", "--help"], [str(EXAMPLES)] + sys.path
        try:
            with contextlib.redirect_stdout(stdout), pytest.raises(SystemExit):
                runpy.run_path(str(EXAMPLES / f"{name}.py"), run_name="__main__")
        finally:
            sys.argv, sys.path = argv, path
            sys.modules.pop("_common", None)
        texts[name] = stdout.getvalue()
    return texts


def test_every_flag_of_every_example_is_documented():
    for name, text in _help_texts().items():
        assert "about" in text and "minute" in text, f"{name}: the docstring must say how long it runs"
        options = text.split("options:", 1)[1]
        entries = re.split(r"\n(?=  -)", options.strip("\n"))
        flags = []
        for entry in entries:
            parts = re.split(r"\s{2,}", entry.strip(), maxsplit=1)
            assert len(parts) == 2 and parts[1].strip(), f"{name}: {parts[0]} has no help text"
            flags.append(parts[0])
        assert any("--out" in f for f in flags), f"{name}: no --out flag"
        assert any("--overwrite" in f for f in flags), f"{name}: no --overwrite flag"
