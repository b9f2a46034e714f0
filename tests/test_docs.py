"""The docs against the code: generated blocks up to date, the walkthrough's record rendered, links that resolve.

Fast checks only. The slow one, a fresh demo run compared with the walkthrough's record, is
``tests/tools/test_walkthrough.py``.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from pathlib import Path

import pytest
from helpers import load_tool

from streamtrain.dataset.manifest import Manifest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = [README, ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").rglob("*.md"))]

reference = load_tool("reference")
walkthrough = load_tool("walkthrough")


def test_generated_blocks_match_the_code():
    """The options and layout of docs/reference.md and the README's exit codes are what the code declares now."""
    assert reference.stale() == [], "run python tools/reference.py"


def test_the_readme_walkthrough_is_the_rendering_of_its_record():
    stale = walkthrough.stale(README.read_text(encoding="utf-8"), walkthrough.Facts.load())
    assert stale == [], "run python tools/walkthrough.py --render"


def test_the_walkthrough_runs_what_make_demo_runs():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    recipe = re.search(r"^demo:.*?\n((?:\t.*\n)+)", makefile, re.M)
    assert recipe is not None
    commands = [line.strip() for line in recipe.group(1).splitlines() if line.strip().startswith("$(ST) ")]
    assert commands == walkthrough.demo_commands()


def test_every_exit_code_of_the_code_is_in_the_readme_once():
    table = reference.block(README.read_text(encoding="utf-8"), "exit-codes")
    codes = [int(m) for m in re.findall(r"^\| (\d+) \|", table, re.M)]
    assert codes == [code for code, _ in reference.TABLE]
    assert README.read_text(encoding="utf-8").count("| code | meaning |") == 1


def test_the_readme_is_short():
    assert len(README.read_text(encoding="utf-8").splitlines()) < 300


def test_every_manifest_key_is_in_the_reference():
    text = (ROOT / "docs" / "reference.md").read_text(encoding="utf-8")
    table = text.split("## The manifest", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| ([^|]+) \|", table, re.M))
    keys = {k for cell in documented for k in re.findall(r"`(\w+)`", cell)}
    fields = {f.name for f in dataclasses.fields(Manifest)}
    assert fields - keys == set()


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
    return {_slug(h) for h in re.findall(r"^#+ (.*)$", text, re.M)}


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_resolve(doc):
    text = re.sub(r"```.*?```", "", doc.read_text(encoding="utf-8"), flags=re.S)
    text = re.sub(r"`[^`\n]*`", "", text)  # code spans: ``f(x)[0](y)`` is no link
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+://", target):
            continue
        path, _, anchor = target.partition("#")
        file = (doc.parent / path).resolve() if path else doc
        missing = not file.exists() or (anchor and file.suffix == ".md" and anchor not in _anchors(file))
        if missing:
            broken.append(target)
    assert broken == []


def test_the_walkthrough_tolerates_what_another_cpu_changes_and_nothing_else():
    recorded = walkthrough.Facts.load()
    noisy = copy.deepcopy(recorded)
    noisy.training.test_accuracy += 0.01
    noisy.training.epochs += 1.0
    noisy.training.test_confusion[0][0] -= 3
    noisy.versions = [["another", "time"], ["other", "time"]]
    assert walkthrough.compare(recorded, noisy) == []

    drifted = copy.deepcopy(recorded)
    drifted.training.test_accuracy -= 0.05
    drifted.data.features += 1
    drifted.training.chosen = "mlp 3 x 7"  # no candidate the record tried
    problems = walkthrough.compare(recorded, drifted)
    assert [p.split(":")[0] for p in problems] == ["data.features", "training.test_accuracy", "training.chosen"]
