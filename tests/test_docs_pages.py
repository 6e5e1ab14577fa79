"""The README and docs/ as pages: a short README that opens with the two set-up commands CI runs,
links between pages that resolve, no overlong lines, and a module map that names real modules."""

from __future__ import annotations

import re
from pathlib import Path

from test_docs_commands import PAGES, ROOT, code_blocks

README_MAX_LINES = 200
LINE_MAX = 200
# Pages whose long lines stay: why.
LONG_LINES = {"docs/learning.md": "its results table, kept as issue 16's runs write it"}


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    _, prose = code_blocks(page.read_text())
    seen: dict[str, int] = {}
    out = set()
    for _, line in prose:
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match:
            base = slug(match.group(1))
            out.add(base if base not in seen else f"{base}-{seen[base]}")
            seen[base] = seen.get(base, 0) + 1
    return out


def links(page: Path):
    """(line, target) of every link and image in the prose, inline code left out."""
    _, prose = code_blocks(page.read_text())
    for n, line in prose:
        line = re.sub(r"`[^`]*`", "", line)
        for match in re.finditer(r"!?\[[^\]]*\]\(([^)\s]+)\)", line):
            yield n, match.group(1)


def test_readme_opens_with_the_two_set_up_commands_and_is_short():
    text = (ROOT / "README.md").read_text()
    blocks, _ = code_blocks(text)
    first_line, language, lines = blocks[0]
    assert language == "bash" and len([line for line in lines if line.strip()]) == 2, "the first block is what .ci/run runs"
    assert text.split("\n")[first_line - 2] == "```bash"
    assert len(text.splitlines()) <= README_MAX_LINES


def test_links_between_pages_resolve():
    errors = []
    for name in PAGES:
        page = ROOT / name
        for n, target in links(page):
            if re.match(r"^[a-z]+:", target):  # https:, mailto:
                continue
            path, _, anchor = target.partition("#")
            resolved = (page.parent / path).resolve() if path else page
            if not resolved.exists():
                errors.append(f"{name}:{n}: {target}: no such file")
            elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
                errors.append(f"{name}:{n}: {target}: no heading with that anchor in {resolved.relative_to(ROOT)}")
    assert not errors, "\n".join(errors)


def test_every_page_is_linked_from_the_readme_or_another_page():
    linked = set()
    for name in PAGES:
        page = ROOT / name
        linked |= {(page.parent / t.partition("#")[0]).resolve() for _, t in links(page) if not re.match(r"^[a-z]+:", t)}
    orphans = [p.relative_to(ROOT).as_posix() for p in sorted((ROOT / "docs").glob("*.md")) if p.resolve() not in linked]
    assert not orphans


def test_no_line_is_longer_than_200_characters():
    long = [
        f"{name}:{n}: {len(line)} characters"
        for name in PAGES
        if name not in LONG_LINES
        for n, line in enumerate((ROOT / name).read_text().splitlines(), 1)
        if len(line) > LINE_MAX
    ]
    assert not long, "\n".join(long)


def test_the_module_map_names_modules_that_exist():
    """Each row of the README's module table: its paths, and bare file names in it, which are
    taken in the folder of the path before them."""
    text = (ROOT / "README.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith(("| `ssl4rl/", "| `configs/"))]
    assert len(rows) > 10
    missing = []
    for row in rows:
        folder = None
        for name in re.findall(r"`([\w./*-]+)`", row):
            if not re.search(r"(\.py|/)$", name):
                continue
            if "/" in name.rstrip("/"):
                folder = name if name.endswith("/") else name.rsplit("/", 1)[0] + "/"
                paths = list(ROOT.glob(name.rstrip("/")))
            else:
                paths = [ROOT / folder / name] if folder else []
            if not paths or not all(p.exists() for p in paths):
                missing.append(f"{name} (in the row {row[:60]}...)")
    assert not missing, "\n".join(missing)
