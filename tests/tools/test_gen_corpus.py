"""Tests for tools/gen_corpus.py: determinism, row counts, class balance, CSV round trip."""

from __future__ import annotations

import collections
import csv
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import load_tool

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "gen_corpus.py"


gen_corpus = load_tool("gen_corpus")


def _generate(out: Path, seed: int, train_rows: int = 400, test_rows: int = 100) -> None:
    """Run the tool in-process into ``out``."""
    argv = ["--seed", str(seed), "--out", str(out), "--train-rows", str(train_rows), "--test-rows", str(test_rows)]
    assert gen_corpus.main(argv, log=lambda _msg: None) == 0


def _read(path: Path) -> list[dict[str, str]]:
    """Parse a generated CSV back with the csv module."""
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        assert reader.fieldnames == ["text", "label"]
        return list(reader)


def test_same_seed_gives_identical_bytes(tmp_path: Path) -> None:
    _generate(tmp_path / "a", seed=7)
    _generate(tmp_path / "b", seed=7)
    for name in ("tickets_train.csv", "tickets_test.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_different_seed_gives_different_bytes(tmp_path: Path) -> None:
    _generate(tmp_path / "a", seed=0)
    _generate(tmp_path / "b", seed=1)
    for name in ("tickets_train.csv", "tickets_test.csv"):
        assert (tmp_path / "a" / name).read_bytes() != (tmp_path / "b" / name).read_bytes()


def test_train_and_test_splits_differ(tmp_path: Path) -> None:
    _generate(tmp_path, seed=0)
    train = {r["text"] for r in _read(tmp_path / "tickets_train.csv")}
    test = [r["text"] for r in _read(tmp_path / "tickets_test.csv")]
    assert sum(t in train for t in test) < len(test) * 0.05


def test_default_row_counts_balance_and_size(tmp_path: Path) -> None:
    assert gen_corpus.main(["--out", str(tmp_path)], log=lambda _msg: None) == 0
    n_classes = len(gen_corpus.LABELS)
    assert n_classes >= 4
    for name, n_rows in (("tickets_train.csv", 4000), ("tickets_test.csv", 1000)):
        rows = _read(tmp_path / name)
        assert len(rows) == n_rows
        counts = collections.Counter(r["label"] for r in rows)
        assert set(counts) == set(gen_corpus.LABELS)
        assert all(c == n_rows // n_classes for c in counts.values()), counts
        assert (tmp_path / name).stat().st_size < 800_000


def test_csv_parses_back_with_quoting_and_lengths(tmp_path: Path) -> None:
    _generate(tmp_path, seed=3, train_rows=1000)
    rows = _read(tmp_path / "tickets_train.csv")
    assert len(rows) == 1000
    assert all(len(r) == 2 and None not in r for r in rows)
    lengths = [len(r["text"].split()) for r in rows]
    assert min(lengths) >= gen_corpus.MIN_WORDS
    assert max(lengths) <= gen_corpus.MAX_WORDS
    assert max(lengths) > 80  # a real long tail, not all short
    assert sum("," in r["text"] for r in rows) > 100
    assert sum('"' in r["text"] for r in rows) > 20
    assert not any("\n" in r["text"] for r in rows)


def test_texts_carry_shared_filler_across_classes(tmp_path: Path) -> None:
    """Filler sentences are common to all classes, so words alone do not give the label away."""
    _generate(tmp_path, seed=0, train_rows=1000)
    rows = _read(tmp_path / "tickets_train.csv")
    for phrase in ("I hope you can help me with this.", "Thanks for your patience."):
        labels = {r["label"] for r in rows if phrase in r["text"]}
        assert labels == set(gen_corpus.LABELS), (phrase, labels)


def test_cli_runs_as_script(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(TOOL), "--out", str(tmp_path), "--train-rows", "50", "--test-rows", "20"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "tickets_train.csv" in proc.stdout
    assert len(_read(tmp_path / "tickets_train.csv")) == 50
    assert len(_read(tmp_path / "tickets_test.csv")) == 20


def test_cli_rejects_zero_rows(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(TOOL), "--out", str(tmp_path), "--train-rows", "0"], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert "--train-rows" in proc.stderr


@pytest.mark.parametrize("name", ["tickets_train.csv", "tickets_test.csv"])
def test_shipped_data_matches_generator(tmp_path: Path, name: str) -> None:
    """data/ holds exactly what ``python tools/gen_corpus.py`` (seed 0, defaults) writes."""
    shipped = ROOT / "data" / name
    if not shipped.exists():
        pytest.skip(f"{shipped} not present")
    assert gen_corpus.main(["--out", str(tmp_path)], log=lambda _msg: None) == 0
    assert (tmp_path / name).read_bytes() == shipped.read_bytes()
