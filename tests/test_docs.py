"""The docs' links to code lines stay true: ``[`symbol`](../tinygan/file.py#Lnn)`` must point at ``symbol``.

When code moves, run ``python tests/test_docs.py`` to rewrite every such link in docs/*.md
to the symbol's current line.
"""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted((ROOT / "docs").glob("*.md"))
LINK = re.compile(r"\[`(?P<token>[^`]+)`\]\(\.\./(?P<path>[^)#]+)#L(?P<line>\d+)\)")


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
            actual = resolve_symbol(path, m["token"])
            if actual != int(m["line"]):
                wrong.append(f"{doc.name}: {m['token']} in {m['path']}: line {m['line']} in the doc, now {actual}")
    assert count > 40
    assert not wrong, "links point at moved lines; run `python tests/test_docs.py` to rewrite them:\n" + \
        "\n".join(wrong)


def fix_doc_links() -> int:
    """Rewrite every link of docs/*.md to its symbol's current line; returns how many changed."""
    changed = 0
    for doc in DOCS:
        text = doc.read_text()
        fixed = LINK.sub(lambda m: f"[`{m['token']}`](../{m['path']}#L{resolve_symbol(ROOT / m['path'], m['token'])})",
                         text)
        changed += sum(a.group(0) != b.group(0) for a, b in zip(LINK.finditer(text), LINK.finditer(fixed)))
        doc.write_text(fixed)
    return changed


if __name__ == "__main__":  # python tests/test_docs.py: bring the docs' line numbers up to date
    print(f"docs: {fix_doc_links()} link(s) updated")
