"""The docs stay true to the repository.

* ``[`symbol`](../tinygan/file.py#Lnn)`` must point at ``symbol`` (a definition, or for a token with
  '(' / ' ' / '#' the first line containing it literally).  When code moves, run
  ``python tests/test_docs.py`` to rewrite every such link in docs/*.md to the symbol's current line.
* Every relative link in docs/*.md and README.md (``../tinygan/x.py``, ``../examples/x.py``,
  ``figures/x.png``, ``other.md#section``) reaches a file (and section, or line) inside the repository,
  and every path named in code (`` `tinygan/gan/steps.py` ``, `` `tests/test_x.py::test_y` ``) exists.
* No page points outside the repository: no absolute local paths (``/home/...``, ``file://``) and no
  references to notes that are not in it (the project's "seed" notes, ``shared/`` notes); cite the
  papers, with their equation or section numbers, instead.
"""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = DOCS + [ROOT / "README.md"]
LINK = re.compile(r"\[`(?P<token>[^`]+)`\]\(\.\./(?P<path>[^)#]+)#L(?P<line>\d+)\)")

# Any markdown link or image: [text](target) / ![alt](target); the target has no spaces.
ANY_LINK = re.compile(r"\[[^\]\n]*\]\((?P<target>[^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)
CODE_SPAN = re.compile(r"`[^`\n]+`")
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
# A path of the repository named in code: `tinygan/gan/steps.py`, `tests/test_x.py::name`, `docs/x.md`.
CODE_PATH = re.compile(r"`(?P<path>(?:tinygan|tests|docs)/[\w./-]*)(?:::[\w.]+)?`")
# Places outside the repository: absolute local paths, and notes that are not part of it.
LOCAL_PATH = re.compile(r"file://|(?<![\w.~$])/(?:work|home|Users|root|mnt)/")
OUTSIDE_NOTES = re.compile(r"\bseeds?/|\bseeds?\s+\d{3}\b|\bseeds?'|\bseeded this project|study notes|"
                           r"(?<![\w./])shared/", re.I)


def resolve_symbol(path: Path, token: str) -> int:
    """The 1-based line of ``token`` in ``path``: a definition (``Outer.inner``: ``inner`` inside ``Outer``),
    or, for a token with '(' / ' ' / '#', the first line containing it literally."""
    lines = path.read_text().splitlines()
    if token.startswith("#") or "(" in token or " " in token:
        return next(i + 1 for i, s in enumerate(lines) if token in s)
    start = 0
    for part in token.split("."):
        pattern = re.compile(rf"^\s*(def|class)\s+{re.escape(part)}\b|^\s*{re.escape(part)}\s*[:=]")
        start = next(i for i in range(start, len(lines)) if pattern.search(lines[i]))
    return start + 1


def test_doc_links_point_at_their_symbols():
    wrong, count = [], 0
    for doc in DOCS:
        for m in LINK.finditer(doc.read_text()):
            count += 1
            path = ROOT / m["path"]
            assert path.is_file(), f"{doc.name}: {m['path']} does not exist"
            try:
                actual = resolve_symbol(path, m["token"])
            except StopIteration:
                wrong.append(f"{doc.name}: {m['token']} is not in {m['path']} any more")
                continue
            if actual != int(m["line"]):
                wrong.append(f"{doc.name}: {m['token']} in {m['path']}: line {m['line']} in the doc, now {actual}")
    assert count > 40
    assert not wrong, "links point at moved lines; run `python tests/test_docs.py` to rewrite them:\n" + \
        "\n".join(wrong)


# ----------------------------------------------------------------------------- every link reaches its file

def prose(text: str) -> str:
    """``text`` without code: fenced blocks emptied, each inline code span blanked to `xxx` (same length),
    so a link written inside code is not a link, while a link whose text is code still is."""
    text = FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    return CODE_SPAN.sub(lambda m: "`" + "x" * (len(m.group(0)) - 2) + "`", text)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    found = set()
    for m in re.finditer(r"^#{1,6}\s+(.+?)\s*#*\s*$", FENCE.sub("", page.read_text()), re.M):
        s, n = slug(m.group(1)), 1
        while s in found:                                  # GitHub numbers repeated headings: x, x-1, x-2
            s, n = f"{slug(m.group(1))}-{n}", n + 1
        found.add(s)
    return found


def link_problems(page: Path, text: str) -> list[str]:
    """What is wrong with the relative links of ``text`` (the content of ``page``)."""
    bad = []
    for m in ANY_LINK.finditer(prose(text)):
        target = m["target"]
        if SCHEME.match(target):                           # https://, mailto: (file:// is refused below)
            continue
        where = f"{page.relative_to(ROOT)}: ({target})"
        if target.startswith("/"):
            bad.append(f"{where}: an absolute path; link relative to the page")
            continue
        path_part, _, fragment = target.partition("#")
        path = (page.parent / path_part).resolve() if path_part else page
        if not path.is_relative_to(ROOT):
            bad.append(f"{where}: outside the repository")
        elif not path.exists():
            bad.append(f"{where}: no such file")
        elif fragment and path.suffix == ".md" and fragment not in anchors(path):
            bad.append(f"{where}: no section #{fragment} in {path.name}")
        elif fragment and re.fullmatch(r"L\d+", fragment) and path.is_file() and \
                int(fragment[1:]) > len(path.read_text().splitlines()):
            bad.append(f"{where}: {path.name} has fewer lines")
    for m in CODE_PATH.finditer(FENCE.sub("", text)):
        if not (ROOT / m["path"].rstrip("/")).exists():
            bad.append(f"{page.relative_to(ROOT)}: `{m['path']}` does not exist")
    return bad


def test_relative_links_reach_files_in_the_repository():
    bad = [p for page in PAGES for p in link_problems(page, page.read_text())]
    assert not bad, "broken links:\n" + "\n".join(bad)


def test_the_link_checker_sees_broken_links():
    page = ROOT / "docs" / "theory.md"
    good = ("[a](../tinygan/gan/steps.py) [b](figures/saturation.png) [c](theory.md#2-the-optimal-discriminator) "
            "[d](#) `[e](nowhere.md)` [`f`, `g`](../tinygan/io.py#L1) [h](https://example.org/x) "
            "`tinygan/gan/recipes.py` `tests/test_docs.py::test_the_link_checker_sees_broken_links`")
    assert link_problems(page, good) == []
    for broken in ("[a](../tinygan/gan/trainer.py)", "[b](figures/nothing.png)", "[c](theory.md#no-such-section)",
                   "[d](../../outside.md)", "[e](/work/main/README.md)", "[`f`](../tinygan/io.py#L99999)",
                   "`tinygan/gan/checkpoint.py`", "`tests/test_nothing.py::test_x`"):
        assert link_problems(page, f"text {broken} text"), broken


# ----------------------------------------------------------------------------- nothing outside the repository

def outside_problems(page: Path, text: str) -> list[str]:
    """Lines of ``text`` that point at a local path or at notes that are not in the repository."""
    bad = []
    for n, line in enumerate(text.splitlines(), 1):
        for pattern, why in ((LOCAL_PATH, "an absolute local path"),
                             (OUTSIDE_NOTES, "notes that are not in the repository; cite the paper instead")):
            m = pattern.search(line)
            if m:
                bad.append(f"{page.relative_to(ROOT)}:{n}: {m.group(0)!r}: {why}")
    return bad


def test_no_page_points_outside_the_repository():
    bad = [p for page in PAGES for p in outside_problems(page, page.read_text())]
    assert not bad, "\n".join(bad)


def test_the_outside_check_sees_local_paths_and_notes():
    page = ROOT / "docs" / "theory.md"
    fine = ("tinygan train --out /tmp/smoke --seed 0; seed 1; two seeds x 300 steps; `~/.cache/tinygan/`; "
            "`$TINYGAN_CACHE/mnist_classifier_v1_seed0.npz`; Goodfellow et al. (2014, eq. 1); runs/dcgan/")
    assert outside_problems(page, fine) == []
    for bad in ("see /work/shared/seeds/000.txt", "/home/me/notes.md", "file:///tmp/x.png", "Seed 003 adds",
                "seeds 000 and 001", "the seeds' equations", "The seed's picture", "`shared/perf-notes.md`",
                "The study notes that seeded this project"):
        assert outside_problems(page, bad), bad


def fix_doc_links() -> int:
    """Rewrite every link of docs/*.md to its symbol's current line; returns how many changed."""
    changed = 0
    for doc in DOCS:
        text = doc.read_text()
        fixed = LINK.sub(lambda m: f"[`{m['token']}`](../{m['path']}#L{resolve_symbol(ROOT / m['path'], m['token'])})",
                         text)
        changed += sum(a.group(0) != b.group(0) for a, b in zip(LINK.finditer(text), LINK.finditer(fixed)))
        if fixed != text:
            doc.write_text(fixed)
    return changed


if __name__ == "__main__":  # python tests/test_docs.py: bring the docs' line numbers up to date
    print(f"docs: {fix_doc_links()} link(s) updated")
