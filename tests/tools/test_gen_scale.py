"""tools/gen_scale.py: the nightly-scale corpus is the same bytes per seed, has the shape it promises, and reads
through streamtrain's own CSV reader without a reject."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
from helpers import load_tool

from streamtrain.io.readers import ColumnSpec, read_chunks

gen = load_tool("gen_scale")


def test_same_seed_same_bytes_other_seed_other_rows(tmp_path: Path) -> None:
    shape = gen.Shape()
    gen.write(tmp_path / "a.csv", 3_000, 7, 0, shape)
    gen.write(tmp_path / "b.csv", 3_000, 7, 0, shape)
    gen.write(tmp_path / "c.csv", 3_000, 8, 0, shape)
    gen.write(tmp_path / "t.csv", 3_000, 7, 1, shape)  # the test stream of the same seed
    a = (tmp_path / "a.csv").read_bytes()
    assert a == (tmp_path / "b.csv").read_bytes()
    assert a != (tmp_path / "c.csv").read_bytes() and a != (tmp_path / "t.csv").read_bytes()


def test_rows_have_the_promised_shape(tmp_path: Path) -> None:
    shape = gen.Shape()
    path = tmp_path / "train.csv"
    gen.write(path, 20_000, 0, 0, shape)
    lines = path.read_text(encoding="ascii").splitlines()
    assert lines[0] == "label,text" and len(lines) == 20_001
    labels, texts = zip(*(line.split(",", 1) for line in lines[1:]))
    assert len(set(texts)) == len(texts)  # distinct rows
    counts = Counter(labels)
    assert sorted(counts) == [f"class{c}" for c in range(4)] and min(counts.values()) > 4_500
    kept, words = [], Counter()
    for label, text in zip(labels, texts):
        tokens = text.split()
        markers = [t for t in tokens if t.startswith("marker")]
        assert all(m.startswith(f"marker{label[-1]}x") for m in markers)  # a class's markers only
        assert 15 <= len(tokens) - len(markers) <= 60
        kept.append(len(markers))
        words.update(t for t in tokens if not t.startswith("marker"))
    assert abs(np.mean(kept) / shape.markers - shape.keep) < 0.01
    # Zipf's law: the top word is 2**1.05 times as frequent as the second, 3**1.05 times the third
    (_, first), (_, second), (_, third) = words.most_common(3)
    assert abs(first / second - 2**1.05) < 0.1 and abs(first / third - 3**1.05) < 0.15


def test_streamtrain_reads_it_without_a_reject(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    gen.write(path, 5_000, 0, 0, gen.Shape())
    chunks = list(read_chunks([path], ColumnSpec(), chunk_rows=1_000))
    assert sum(len(c.texts) for c in chunks) == 5_000
    assert not any(c.rejected for c in chunks)
