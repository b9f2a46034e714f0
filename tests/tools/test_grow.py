"""Tests for tools/grow.py on small invented inputs, plus real corpora when STREAMTRAIN_DATASETS is set."""

from __future__ import annotations

import collections
import csv
import gzip
import io
import json
import os
import random
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from helpers import load_tool

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "grow.py"

# Invented documents (never real dataset text); some with commas, quotes, non-ASCII.
TREE_DOCS: dict[str, list[str]] = {
    "pos": [
        "A warm, funny little story about two cooks and a stubborn oven.",
        'The ending made me smile, and the "twist" actually worked.',
        "Lovely music throughout; the café scenes felt real.",
        "Short and sweet.",
    ],
    "neg": [
        "Far too long, and the plot wandered off halfway through.",
        "The dialogue was flat\nand the jokes never landed.",
        "I left early.",
    ],
}
CSV_ROWS: list[tuple[str, str, str]] = [
    ("1", "Harbor festival returns", "Boats, lanterns and music fill the old harbor this weekend."),
    ("2", "Local team wins final", 'Coach says the "quiet" defender made the difference.'),
    ("3", "Bakery chain expands", "The bakery opens four new shops across the valley."),
    ("4", "New telescope online", "Astronomers share first images from the hilltop telescope."),
    ("2", "Marathon moved to Sunday", "Organizers cite heat; runners can switch start times."),
]


grow = load_tool("grow")


def _run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run grow.py as a script; return the finished process (not checked)."""
    return subprocess.run([sys.executable, str(TOOL), *map(str, args)], capture_output=True, text=True)


def _ok(*args: str | Path) -> str:
    """Run grow.py, assert success and return its stdout."""
    proc = _run(*args)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _read_rows(path: Path) -> list[tuple[str, str]]:
    """Read (text, label) rows back from any output format grow.py writes."""
    raw = path.read_bytes()
    if path.name.endswith(".gz"):
        raw = gzip.decompress(raw)
    text = raw.decode("utf-8")
    if ".jsonl" in path.name:
        records = [json.loads(line) for line in text.splitlines()]
        assert all(set(r) == {"text", "label"} for r in records)
        return [(r["text"], r["label"]) for r in records]
    reader = csv.DictReader(io.StringIO(text, newline=""))
    assert reader.fieldnames == ["text", "label"]
    return [(r["text"], r["label"]) for r in reader]


def _originals_tree() -> list[tuple[str, str]]:
    """The (text, label) rows of TREE_DOCS."""
    return [(t, label) for label, docs in TREE_DOCS.items() for t in docs]


def _originals_csv() -> list[tuple[str, str]]:
    """The (text, label) rows of CSV_ROWS with title and description joined."""
    return [(f"{title} {desc}", label) for label, title, desc in CSV_ROWS]


def _check_copies(rows: list[tuple[str, str]], originals: list[tuple[str, str]], factor: int) -> None:
    """Check row count, labels, copy 0 and that every copy is a token subsequence of an original."""
    assert len(rows) == factor * len(originals)
    want = collections.Counter(label for _, label in originals)
    assert collections.Counter(label for _, label in rows) == {k: v * factor for k, v in want.items()}
    counts = collections.Counter(rows)
    for row in originals:  # copy 0 of every input row is there verbatim
        assert counts[row] >= 1, row
    for text, label in rows:
        tokens = text.split()
        assert tokens, "empty perturbed text"
        assert any(_is_subsequence(tokens, o.split()) for o, lab in originals if lab == label), text


def _is_subsequence(small: list[str], big: list[str]) -> bool:
    """True when ``small`` is ``big`` with some items removed."""
    it = iter(big)
    return all(any(s == b for b in it) for s in small)


@pytest.fixture()
def tree(tmp_path: Path) -> Path:
    """A small directory-per-class tree like aclImdb/train (plus a non-class file to ignore)."""
    root = tmp_path / "train"
    for label, docs in TREE_DOCS.items():
        (root / label).mkdir(parents=True)
        for i, text in enumerate(docs):
            (root / label / f"{i}_7.txt").write_text(text, encoding="utf-8")
    (root / "urls_pos.txt").write_text("not a document", encoding="utf-8")
    (root / "pos" / "notes.md").write_text("not a .txt document", encoding="utf-8")
    return root


@pytest.fixture()
def news_csv(tmp_path: Path) -> Path:
    """A tiny AG-News-like CSV without header: class,title,description, all quoted."""
    path = tmp_path / "news.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh, quoting=csv.QUOTE_ALL).writerows(CSV_ROWS)
    return path


def _make_tar(path: Path, prefix: str = "aclImdb/") -> Path:
    """Write a tar.gz holding TREE_DOCS under <prefix>train/ and decoys elsewhere."""

    def add(tar: tarfile.TarFile, name: str, text: str) -> None:
        data = text.encode("utf-8")
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))

    with tarfile.open(path, "w:gz") as tar:
        add(tar, f"{prefix}imdb.vocab", "the\nand\n")
        for label, docs in TREE_DOCS.items():
            for i, text in enumerate(docs):
                add(tar, f"{prefix}train/{label}/{i}_8.txt", text)
                add(tar, f"{prefix}test/{label}/{i}_2.txt", "decoy test document " + text)
        add(tar, f"{prefix}train/urls_pos.txt", "not a document")
        add(tar, f"{prefix}train/pos/deeper/x.txt", "too deep to count")
    return path


# --------------------------------------------------------------------------
# Unit tests of the building blocks.
# --------------------------------------------------------------------------
def test_token_dropout_keeps_order_and_never_empties() -> None:
    rng = random.Random(0)
    text = "one two three four five six seven eight nine ten"
    for _ in range(200):
        out = grow.token_dropout(text, 0.5, rng)
        assert out and _is_subsequence(out.split(), text.split())
    assert grow.token_dropout(text, 0.0, rng) == text
    assert grow.token_dropout("solo", 0.99, rng) == "solo"


def test_shuffle_buffer_is_a_bounded_permutation() -> None:
    rows = [(str(i), "x") for i in range(1000)]
    out = list(grow.shuffle_buffer(iter(rows), 50, random.Random(1)))
    assert sorted(out) == sorted(rows)
    assert out != rows
    positions = [int(text) for text, _ in out]
    # no row can be emitted before the buffer has seen it
    assert all(pos <= i + 50 for i, pos in enumerate(positions))


def test_output_kind_by_extension() -> None:
    assert grow.output_kind("a/b.jsonl") == ("jsonl", False)
    assert grow.output_kind("b.JSONL.gz") == ("jsonl", True)
    assert grow.output_kind("b.csv") == ("csv", False)
    assert grow.output_kind("b.csv.gz") == ("csv", True)
    with pytest.raises(grow.GrowError):
        grow.output_kind("b.parquet")


# --------------------------------------------------------------------------
# End to end on invented inputs.
# --------------------------------------------------------------------------
def test_dir_tree_to_jsonl(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "grown.jsonl"
    stdout = _ok(tree, out, "--factor", "3", "--seed", "5")
    assert f"rows in 7, rows out 21, bytes out {out.stat().st_size}" in stdout
    _check_copies(_read_rows(out), _originals_tree(), 3)
    assert not list(out.parent.glob("*.partial-*"))


def test_csv_to_csv(news_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "grown.csv"
    _ok(news_csv, out, "--factor", "4", "--csv-label-col", "0", "--csv-text-cols", "1", "2")
    _check_copies(_read_rows(out), _originals_csv(), 4)


def test_csv_text_cols_default_to_all_but_label(news_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "grown.jsonl"
    _ok(news_csv, out)
    assert sorted(_read_rows(out)) == sorted(_originals_csv())


def test_csv_with_header_and_other_columns(tmp_path: Path) -> None:
    src = tmp_path / "tickets.csv"
    src.write_text('text,label\n"Hello, world",greet\nBye now,leave\n', encoding="utf-8")
    out = tmp_path / "grown.jsonl"
    _ok(src, out, "--csv-header", "--csv-label-col", "1", "--csv-text-cols", "0", "--factor", "2")
    _check_copies(_read_rows(out), [("Hello, world", "greet"), ("Bye now", "leave")], 2)


@pytest.mark.parametrize("name", ["grown.jsonl.gz", "grown.csv.gz"])
def test_gzip_outputs(tree: Path, tmp_path: Path, name: str) -> None:
    out = tmp_path / name
    _ok(tree, out, "--factor", "2")
    assert out.read_bytes()[:2] == b"\x1f\x8b"
    _check_copies(_read_rows(out), _originals_tree(), 2)


def test_tar_stream_with_member_prefix(tmp_path: Path) -> None:
    archive = _make_tar(tmp_path / "corpus.tar.gz")
    out = tmp_path / "grown.jsonl"
    stdout = _ok(archive, out, "--member-prefix", "aclImdb/train/", "--factor", "2")
    assert "rows in 7, rows out 14" in stdout
    _check_copies(_read_rows(out), _originals_tree(), 2)


def test_tar_classes_filter(tmp_path: Path) -> None:
    archive = _make_tar(tmp_path / "corpus.tgz")
    out = tmp_path / "grown.csv"
    _ok(archive, out, "--member-prefix", "aclImdb/test", "--classes", "neg")
    rows = _read_rows(out)
    assert len(rows) == len(TREE_DOCS["neg"]) and {label for _, label in rows} == {"neg"}
    assert all(text.startswith("decoy test document ") for text, _ in rows)


def test_same_seed_same_bytes_other_seed_other_order(tree: Path, tmp_path: Path) -> None:
    paths = [tmp_path / f"{name}.csv.gz" for name in ("a", "b", "c")]
    for path, seed in zip(paths, ("1", "1", "2"), strict=True):
        _ok(tree, path, "--factor", "5", "--seed", seed)
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert _read_rows(paths[0]) != _read_rows(paths[2])


def test_output_order_is_shuffled(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "grown.jsonl"
    _ok(tree, out, "--factor", "4", "--dropout", "0")
    rows = _read_rows(out)
    in_order = grow.iter_dir_tree(str(tree))
    assert rows != list(in_order) * 4
    assert sorted(rows) == sorted(_originals_tree() * 4)


# --------------------------------------------------------------------------
# Failures are loud and name the culprit.
# --------------------------------------------------------------------------
def test_bad_utf8_file_is_named(tree: Path, tmp_path: Path) -> None:
    bad = tree / "neg" / "9_1.txt"
    bad.write_bytes(b"broken \xff\xfe bytes")
    out = tmp_path / "grown.jsonl"
    proc = _run(tree, out)
    assert proc.returncode == 2
    assert str(bad) in proc.stderr and "UTF-8" in proc.stderr
    assert not out.exists()
    assert not list(tmp_path.glob("*.partial-*"))


def test_missing_input_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"
    proc = _run(missing, tmp_path / "grown.jsonl")
    assert proc.returncode == 2 and str(missing) in proc.stderr


def test_truncated_archive_is_named(tmp_path: Path) -> None:
    archive = _make_tar(tmp_path / "corpus.tar.gz")
    broken = tmp_path / "broken.tar.gz"
    broken.write_bytes(archive.read_bytes()[:-60])
    proc = _run(broken, tmp_path / "grown.jsonl", "--member-prefix", "aclImdb/train/")
    assert proc.returncode == 2 and str(broken) in proc.stderr


def test_short_csv_row_is_named(news_csv: Path, tmp_path: Path) -> None:
    with news_csv.open("a", encoding="utf-8") as fh:
        fh.write('"3","only a title"\n')
    proc = _run(news_csv, tmp_path / "grown.jsonl", "--csv-text-cols", "1", "2")
    assert proc.returncode == 2
    assert f"{news_csv}:{len(CSV_ROWS) + 1}" in proc.stderr


def test_bad_arguments(tree: Path, tmp_path: Path) -> None:
    assert _run(tree, tmp_path / "x.jsonl", "--factor", "0").returncode == 2
    assert _run(tree, tmp_path / "x.jsonl", "--dropout", "1.0").returncode == 2
    proc = _run(tree, tmp_path / "x.parquet")
    assert proc.returncode == 2 and ".jsonl" in proc.stderr
    archive = _make_tar(tmp_path / "corpus.tar.gz")
    proc = _run(archive, tmp_path / "x.jsonl")
    assert proc.returncode == 2 and "--member-prefix" in proc.stderr
    proc = _run(archive, tmp_path / "x.jsonl", "--member-prefix", "elsewhere/")
    assert proc.returncode == 2 and "no rows" in proc.stderr


# --------------------------------------------------------------------------
# Real corpora (read from shared/datasets, never copied into the repo).
# --------------------------------------------------------------------------
def _datasets() -> Path:
    """The real-datasets directory from STREAMTRAIN_DATASETS, or skip."""
    value = os.environ.get("STREAMTRAIN_DATASETS")
    if not value:
        pytest.skip("STREAMTRAIN_DATASETS is not set (point it at shared/datasets to run real-data tests)")
    return Path(value)


def test_real_ag_news_doubles(tmp_path: Path) -> None:
    src = _datasets() / "ag_news" / "test.csv"
    if not src.exists():
        pytest.skip(f"{src} not present")
    out = tmp_path / "ag_x2.jsonl"
    stdout = _ok(src, out, "--factor", "2", "--csv-label-col", "0", "--csv-text-cols", "1", "2")
    assert "rows in 7600, rows out 15200" in stdout
    rows = _read_rows(out)
    assert len(rows) == 15_200
    assert collections.Counter(label for _, label in rows) == {"1": 3800, "2": 3800, "3": 3800, "4": 3800}


def test_real_imdb_archive_stream(tmp_path: Path) -> None:
    src = _datasets() / "imdb" / "aclImdb_labeled.tar.gz"
    if not src.exists():
        pytest.skip(f"{src} not present")
    out = tmp_path / "imdb_train.jsonl"
    stdout = _ok(src, out, "--member-prefix", "aclImdb/train/", "--buffer-size", "1000")
    assert "rows in 25000, rows out 25000" in stdout
    with out.open(encoding="utf-8") as fh:
        labels = collections.Counter(json.loads(line)["label"] for line in fh)
    assert labels == {"pos": 12_500, "neg": 12_500}
