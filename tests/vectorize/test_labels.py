"""``vectorize.labels``: provisional ids in order of first sight, a final map in sorted order (numerically when
every label is an integer), -1 for a label first seen once frozen, and a limit on distinct labels."""

from __future__ import annotations

import numpy as np
import pytest

from streamtrain.errors import DataError
from streamtrain.io.readers import RawChunk
from streamtrain.vectorize.labels import MAX_CLASSES, LabelIndex, sort_labels


def chunk(labels: list[str], path: str = "in.csv", first_row: int = 2) -> RawChunk:
    c = RawChunk(path)
    for i, label in enumerate(labels):
        c.append(f"text {i}", label, first_row + i)
    return c


def test_integer_labels_sort_as_numbers_any_other_as_strings():
    assert sort_labels(["10", "9", "-1", "0"]) == ["-1", "0", "9", "10"]
    assert sort_labels(["b", "a", "B"]) == ["B", "a", "b"]
    assert sort_labels(["10", "9", "x"]) == ["10", "9", "x"]  # one non-integer: all as strings
    assert sort_labels(["1.5", "10"]) == ["1.5", "10"]


def test_ids_are_given_in_order_of_first_sight_across_chunks():
    index = LabelIndex()
    assert index.encode(chunk(["pos", "neg", "pos"])).tolist() == [0, 1, 0]
    second = index.encode(chunk(["neutral", "neg"]))
    assert second.tolist() == [2, 1] and second.dtype == np.int32
    assert index.encode(chunk([])).tolist() == []


def test_the_final_map_is_sorted_and_remaps_every_provisional_id():
    index = LabelIndex()
    seen = ["10", "2", "33", "2", "1", "10"]
    provisional = index.encode(chunk(seen))
    names, remap = index.finalize()
    assert names == ["1", "2", "10", "33"]
    assert remap.dtype == np.int32
    assert [names[i] for i in remap[provisional]] == seen  # each row keeps its label under its final id


def test_a_frozen_index_gives_minus_one_to_labels_it_never_saw():
    index = LabelIndex()
    index.encode(chunk(["a", "b"]))
    index.freeze()
    assert index.encode(chunk(["b", "c", "a", "c"])).tolist() == [1, -1, 0, -1]
    assert index.finalize()[0] == ["a", "b"]  # the test-only label is not a class


def test_a_frozen_map_has_the_given_final_ids():
    index = LabelIndex.frozen_map(["neg", "pos", "zzz"])
    assert index.encode(chunk(["zzz", "pos", "other"])).tolist() == [2, 1, -1]
    names, remap = index.finalize()
    assert names == ["neg", "pos", "zzz"] and remap.tolist() == [0, 1, 2]


def test_too_many_distinct_labels_are_refused_at_the_first_one_too_many():
    index = LabelIndex()
    labels = [f"L{i}" for i in range(MAX_CLASSES)]
    index.encode(chunk(labels))
    index.encode(chunk(labels[:5]))  # labels already known are fine
    with pytest.raises(DataError, match=f"more than {MAX_CLASSES} distinct labels") as caught:
        index.encode(chunk(["L0", "one too many"], path="big.csv", first_row=70))
    assert caught.value.path == "big.csv" and caught.value.row == 71
    assert str(caught.value).startswith("big.csv, row 71: ")
