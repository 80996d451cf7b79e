"""Per-module mutation scores from mutmut 3's results (called by scripts/mutation.sh score).

    python scripts/mutation_score.py build/mutation [GROUP ...] [--survivors]

Reads ``build/mutation/GROUP/mutants/**/*.py.meta`` (mutmut's exit code per mutant; a mutant
the stand-in pass in ``build/mutation/GROUP+standin/`` killed counts as killed) and the
equivalent mutants listed in docs/testing.md (any `tinygan.x.y__mutmut_N` name written in code
in its "Equivalent mutants" section).  Score = killed / (mutants - equivalent), where killed
includes timeouts; a mutant with no test reaching it counts as not killed.
"""
from __future__ import annotations

import json
import re
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KILLED = {1, 3, -24, 24, 152, 255, 36}          # mutmut's "killed" and "timeout" exit codes
SURVIVED = {0}
NO_TESTS = {5, 33}


def equivalent_mutants() -> set[str]:
    doc = ROOT / "docs" / "testing.md"
    text = doc.read_text() if doc.is_file() else ""
    section = text.split("### Equivalent mutants", 1)[-1].split("\n## ", 1)[0] if "### Equivalent mutants" in text else ""
    return set(re.findall(r"`(tinygan\.[\w.]+__mutmut_\d+)`", section))


def main(argv: list[str]) -> int:
    show = "--survivors" in argv
    args = [a for a in argv if not a.startswith("--")]
    work = Path(args[0])
    groups = args[1:] or (sorted(p.name for p in work.iterdir() if (p / "mutants").is_dir() and "+" not in p.name)
                          if work.is_dir() else [])
    equivalent = equivalent_mutants()
    rows, lost = [], []
    for group in groups:
        mutants = work / group / "mutants"
        standin = work / f"{group}+standin" / "mutants"
        for meta in sorted(mutants.glob("tinygan/**/*.py.meta")):
            codes = json.loads(meta.read_text())["exit_code_by_key"]
            if not codes:
                continue
            other = standin / meta.relative_to(mutants)
            if other.is_file():        # killed on the stand-in (a "cuda" case) counts
                for name, code in json.loads(other.read_text())["exit_code_by_key"].items():
                    if code in KILLED and name in codes:
                        codes[name] = code
            c = Counter()
            for name, code in codes.items():
                if name in equivalent:
                    c["equivalent"] += 1
                elif code in KILLED:
                    c["killed"] += 1
                elif code is None:
                    c["not checked"] += 1
                    lost.append((name, "not checked"))
                else:
                    c["survived" if code in SURVIVED else "no tests" if code in NO_TESTS else "other"] += 1
                    lost.append((name, {0: "survived", 5: "no tests", 33: "no tests"}.get(code, f"exit {code}")))
            module = str(meta.relative_to(mutants))[:-len(".meta")]
            rows.append((group, module, len(codes), c))
    if not rows:
        print(f"no mutmut results under {work}; run scripts/mutation.sh GROUP first")
        return 1
    print(f"{'group':<10} {'module':<34} {'mutants':>7} {'killed':>6} {'surv.':>5} {'no test':>7} "
          f"{'unchk':>5} {'equiv.':>6} {'score':>7}")
    for group, module, total, c in rows:
        denom = total - c["equivalent"] - c["not checked"]
        score = f"{100 * c['killed'] / denom:6.1f}%" if denom else "    -"
        print(f"{group:<10} {module:<34} {total:>7} {c['killed']:>6} {c['survived'] + c['other']:>5} "
              f"{c['no tests']:>7} {c['not checked']:>5} {c['equivalent']:>6} {score:>7}")
    if show:
        for name, why in lost:
            print(f"  {why:<12} {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
