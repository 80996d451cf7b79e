"""The results commands keep working: tiny versions of benchmarks/quality.py and benchmarks/scoreboard.py.

The long runs are documented commands (docs/results.md, benchmarks/results/); these check that the
commands run end to end and write what they promise."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import require_torch

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def test_scoreboard_quick(tmp_path):
    md = tmp_path / "results.md"
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "scoreboard.py"), "--quick", "--only", "cgan",
                        "infogan", "--markdown", str(md)], capture_output=True, text=True, env=ENV, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    text = md.read_text()
    assert "| cgan |" in text and "| infogan |" in text
    assert (tmp_path / "figures" / "scoreboard_cgan.png").is_file()
    rows = json.loads((tmp_path / "figures" / "scoreboard.json").read_text())["rows"]
    assert {r["row"] for r in rows} == {"cgan", "infogan"}
    assert "conditional_accuracy" in next(r for r in rows if r["row"] == "cgan")
    assert "code_agreement" in next(r for r in rows if r["row"] == "infogan")


def test_quality_quick(tmp_path):
    require_torch()
    md = tmp_path / "q.md"
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "quality.py"), "--quick", "--threads", "1",
                        "--work", str(tmp_path / "w"), "--markdown", str(md)], capture_output=True, text=True,
                       env=ENV, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    text = md.read_text()
    assert "| tinygan |" in text and "| torch |" in text
    rows = json.loads(md.with_suffix(".json").read_text())["rows"]
    assert {(r["framework"], r["step"]) for r in rows} == {("tinygan", 2), ("tinygan", 4), ("torch", 2), ("torch", 4)}
