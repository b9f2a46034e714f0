"""``vectorize.band_runs``: a run written to scratch answers lookups as the same run held in memory, whatever
the queries (below its first key, past its last, between, on block bounds) and however many blocks a lookup
reads at a time, and a merge of two is their union."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from streamtrain.errors import DataError
from streamtrain.vectorize import band_runs
from streamtrain.vectorize.band_runs import FENCE_EVERY, PARTITION_STARTS, SortedRun, merge_runs, write_run


def parts_of(keys: np.ndarray, values: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    bounds = np.searchsorted(keys, PARTITION_STARTS)
    return [(keys[lo:hi], values[lo:hi]) for lo, hi in itertools.pairwise(bounds)]


def a_run(tmp_path, name: str, n: int, seed: int, dtype=np.uint8) -> tuple[SortedRun, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    keys = np.unique(rng.integers(1 << 20, (1 << 32) - (1 << 20), n, dtype=np.uint64)).astype(np.uint32)
    values = rng.integers(0, 3, len(keys)).astype(dtype)
    return write_run(tmp_path / name, parts_of(keys, values), len(keys), np.dtype(dtype)), keys, values


@pytest.mark.parametrize("at_a_time", [None, 1, 3])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize(
    "where",
    ["below the first key", "past the last key", "every key", "between keys", "block bounds", "a mix"],
)
def test_a_run_in_a_file_answers_as_the_same_run_held(tmp_path, monkeypatch, where, dtype, at_a_time):
    if at_a_time is not None:  # a lookup reads its blocks in groups of this many
        monkeypatch.setattr(band_runs, "LOOKUP_BLOCKS", at_a_time)
    run, keys, values = a_run(tmp_path, "run", 5000, 1, dtype)
    queries = {
        "below the first key": np.arange(10, dtype=np.uint32),
        "past the last key": np.arange(2**32 - 10, 2**32, dtype=np.uint64).astype(np.uint32),
        "every key": keys,
        "between keys": keys[:-1] + 1,
        "block bounds": keys[FENCE_EVERY - 1 :: FENCE_EVERY],
        "a mix": np.unique(np.concatenate([keys[::7], keys[1::5] + 1, np.arange(5, dtype=np.uint32)])),
    }[where]
    held = SortedRun.held(keys, values)
    (hit, got), (want_hit, want) = run.lookup(queries), held.lookup(queries)
    assert hit.tolist() == want_hit.tolist() and got.tolist() == want.tolist()
    assert hit.sum() == np.isin(queries, keys).sum()
    assert all((run.read(p)[0] == held.read(p)[0]).all() for p in range(len(PARTITION_STARTS) - 1))
    run.close()
    assert not (tmp_path / "run").exists()


def test_a_merge_of_two_runs_is_their_union_and_their_files_go(tmp_path):
    older, k1, v1 = a_run(tmp_path, "a", 3000, 2)
    newer, k2, v2 = a_run(tmp_path, "b", 1000, 3)
    k2, v2 = k2[~np.isin(k2, k1)], v2[~np.isin(k2, k1)]  # a run's keys are new to the index
    newer.close()
    newer = write_run(tmp_path / "b", parts_of(k2, v2), len(k2), np.dtype(np.uint8))
    merged = merge_runs(tmp_path / "c", older, newer)
    keys, values = np.concatenate([k1, k2]), np.concatenate([v1, v2])
    hit, got = merged.lookup(np.sort(keys))
    assert hit.all() and got.tolist() == values[np.argsort(keys)].tolist()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"] and merged.length == len(keys)


def test_a_scratch_run_cut_short_is_named(tmp_path):
    run, keys, _ = a_run(tmp_path, "run", 5000, 4)
    with open(tmp_path / "run", "r+b") as fh:
        fh.truncate(100)
    with pytest.raises(DataError, match="shorter than its run") as caught:
        run.lookup(keys[-10:])
    assert str(tmp_path / "run") in str(caught.value)


def test_the_layout_kept_while_writing_is_the_one_read_from_the_file(tmp_path):
    run, keys, _ = a_run(tmp_path, "run", 5000, 5)
    reread = SortedRun.in_file(tmp_path / "run", run.length, run.dtype)
    assert run.bounds.tolist() == reread.bounds.tolist() == np.searchsorted(keys, PARTITION_STARTS).tolist()
    assert run.fence.tolist() == reread.fence.tolist() == keys[::FENCE_EVERY].tolist()
    reread.close()
