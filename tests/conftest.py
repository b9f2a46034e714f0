"""Shared fixtures: real corpora from $STREAMTRAIN_DATASETS (skipped with a reason when unset)."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DEMO_TRAIN = REPO / "data" / "tickets_train.csv"
DEMO_TEST = REPO / "data" / "tickets_test.csv"


def datasets_dir() -> Path:
    root = os.environ.get("STREAMTRAIN_DATASETS")
    if not root:
        pytest.skip("STREAMTRAIN_DATASETS is not set: real-corpus tests need ../shared/datasets")
    path = Path(root).resolve()
    if not path.is_dir():
        pytest.skip(f"STREAMTRAIN_DATASETS={root} is not a directory")
    return path


@pytest.fixture(scope="session")
def ag_news_csv() -> Path:
    path = datasets_dir() / "ag_news" / "test.csv"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return path


@pytest.fixture(scope="session")
def imdb_root(tmp_path_factory) -> Path:
    """aclImdb extracted once per session: train/{pos,neg}, test/{pos,neg}."""
    archive = datasets_dir() / "imdb" / "aclImdb_labeled.tar.gz"
    if not archive.is_file():
        pytest.skip(f"{archive} not found")
    out = tmp_path_factory.mktemp("imdb")
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(out, filter="data")
    return out / "aclImdb"


@pytest.fixture(
    scope="session",
    params=[("hdf5", "ngram"), ("parquet", "ngram"), ("hdf5", "sequence"), ("parquet", "sequence")],
    ids=lambda p: "-".join(p),
)
def demo(request, tmp_path_factory) -> Path:
    """The demo corpus prepared in each shard format and encoding, with small shards and blocks."""
    from helpers import prepare_csv

    fmt, vectorizer = request.param
    out = tmp_path_factory.mktemp(f"demo-{fmt}-{vectorizer}") / "data"
    return prepare_csv(DEMO_TRAIN, out, DEMO_TEST, format=fmt, vectorizer=vectorizer, shard_rows=1000, block_rows=64)


def imdb_train_texts(limit: int | None = None) -> list[str]:
    """aclImdb train reviews (the first ``limit`` in archive order), read straight from the archive; skips
    the calling test when the archive is not there."""
    archive = datasets_dir() / "imdb" / "aclImdb_labeled.tar.gz"
    if not archive.is_file():
        pytest.skip(f"{archive} not found")
    texts: list[str] = []
    with tarfile.open(archive, "r|gz") as tar:
        for member in tar:
            if member.isfile() and member.name.startswith("aclImdb/train/") and member.name.endswith(".txt"):
                fh = tar.extractfile(member)
                assert fh is not None
                texts.append(fh.read().decode("utf-8"))
                if limit is not None and len(texts) == limit:
                    break
    return texts
