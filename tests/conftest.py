"""Shared fixtures: real corpora from $STREAMTRAIN_DATASETS (skipped with a reason when unset), and the ``slow``
marker: the scenario tests (models trained end to end, real corpora, clusters of processes) that ``make check``
leaves out and ``make test`` runs."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DEMO_TRAIN = REPO / "data" / "tickets_train.csv"
DEMO_TEST = REPO / "data" / "tickets_test.csv"
# Test files whose tests train models end to end or start clusters: seconds to minutes each.
FAST_TRAIN = {
    "test_batches.py",
    "test_check_texts.py",
    "test_checkpoint.py",
    "test_guards.py",
    "test_loop.py",
    "test_markdown.py",
    "test_modeldir.py",
    "test_plan.py",
    "test_runtime.py",
    "test_scoring.py",
    "test_stages.py",
    "test_tune.py",
}
SLOW = {
    "cli": {"test_cli.py", "test_commands.py", "test_inspect.py", "test_train.py"},
    "dataset": {"test_dask.py"},
    "vectorize": {"test_choice.py"},
    "tools": {"test_bench_corpora.py", "test_bench_peers.py", "test_bench_workers.py", "test_walkthrough.py"},
    "tests": {"test_old_formats.py"},
}


def _slow(path: Path) -> bool:
    layer, name = path.parent.name, path.name
    if layer == "train":
        return name not in FAST_TRAIN
    return name in SLOW.get(layer, set())


def pytest_collection_modifyitems(config, items) -> None:
    """Mark the tests of the slow files ``slow`` (``pytest -m "not slow"``: lint-speed feedback), and run them first.

    With ``-n auto --dist loadfile`` each worker takes the next file in this order when it is free: the slow
    files first, the many short ones after them, so no worker is left with a long file while the other idles.
    Within a file the order stays as written.
    """
    for item in items:
        if _slow(Path(item.path)):
            item.add_marker(pytest.mark.slow)
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable: slow files first


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
    """aclImdb train reviews (the first ``limit`` in archive order); see ``imdb_texts``."""
    return imdb_texts("train", limit)


def imdb_texts(split: str, limit: int | None = None) -> list[str]:
    """aclImdb reviews of ``split`` (train, test; the first ``limit`` in archive order), read straight from the
    archive; skips the calling test when the archive is not there."""
    archive = datasets_dir() / "imdb" / "aclImdb_labeled.tar.gz"
    if not archive.is_file():
        pytest.skip(f"{archive} not found")
    texts: list[str] = []
    with tarfile.open(archive, "r|gz") as tar:
        for member in tar:
            if member.isfile() and member.name.startswith(f"aclImdb/{split}/") and member.name.endswith(".txt"):
                fh = tar.extractfile(member)
                assert fh is not None
                texts.append(fh.read().decode("utf-8"))
                if limit is not None and len(texts) == limit:
                    break
    return texts
