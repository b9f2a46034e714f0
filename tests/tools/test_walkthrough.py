"""tools/walkthrough.py: a fresh demo run agrees with the facts the README's walkthrough shows.

Slow (the demo trains two model versions: about a minute on 2 cores), so ``make check`` leaves it out.
What prepare computes must be equal; what TensorFlow computes may differ within ``walkthrough.TOLERANCE``.
"""

from __future__ import annotations

from helpers import load_tool

walkthrough = load_tool("walkthrough")


def test_a_fresh_demo_run_agrees_with_the_walkthrough(tmp_path):
    pictures = tmp_path / "pictures"
    pictures.mkdir()
    fresh = walkthrough.run(tmp_path / "run", pictures)
    assert walkthrough.compare(walkthrough.Facts.load(), fresh) == [], "run python tools/walkthrough.py"
    assert sorted(p.name for p in pictures.iterdir()) == sorted(walkthrough.IMAGES)
