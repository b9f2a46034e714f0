"""prepare's per-chunk work on any executor: the same bytes for any number of workers, in bounded memory."""

from __future__ import annotations

import json
import multiprocessing
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import pytest
from helpers import files_of, streamtrain, without_keys

from streamtrain.dataset.parallel import InlineExecutor, ordered_map, read_ahead
from streamtrain.dataset.prepare import PrepareOptions, prepare

VOLATILE = ("at", "ingested_at", "data", "jobs")  # when and where it ran, and how many workers: not the data


def test_ordered_map_keeps_order_and_bounds_the_work_in_flight():
    running, most, lock = [0], [0], threading.Lock()

    def work(i):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.002 * (i % 3))  # later calls often finish first
        with lock:
            running[0] -= 1
        return i * i

    taken = []

    def items():
        for i in range(60):
            taken.append(i)
            yield i, (i,)

    with ThreadPoolExecutor(4) as pool:
        out = []
        for meta, result in ordered_map(pool, work, items(), window=5):
            assert len(taken) - len(out) <= 5  # never more than the window read ahead
            out.append((meta, result))
    assert out == [(i, i * i) for i in range(60)] and most[0] <= 5
    assert list(ordered_map(InlineExecutor(), work, ((i, (i,)) for i in range(3)), 1)) == [(0, 0), (1, 1), (2, 4)]


def test_a_failing_call_reaches_the_caller():
    def work(i):
        if i == 3:
            raise ValueError("chunk 3 is bad")
        return i

    with ThreadPoolExecutor(2) as pool, pytest.raises(ValueError, match="chunk 3"):
        list(ordered_map(pool, work, ((i, (i,)) for i in range(10)), 4))


def test_read_ahead_keeps_order_stays_within_its_depth_and_raises_where_the_item_failed():
    made: list[int] = []

    def items():
        for i in range(50):
            if i == 40:
                raise ValueError("row 40 is bad")
            made.append(i)
            yield i

    got = []
    with pytest.raises(ValueError, match="row 40"):
        for item in read_ahead(items(), 3, "test-read"):
            time.sleep(0.001)
            assert len(made) - len(got) <= 3 + 2  # the queue's items, the one being put, the one handed out
            got.append(item)
    assert got == list(range(40))
    assert not any(t.name == "test-read" for t in threading.enumerate())  # ended with its items


def test_read_ahead_has_ended_its_thread_when_its_items_end():
    assert list(read_ahead(iter(range(5)), 2, "test-read-end")) == [0, 1, 2, 3, 4]
    assert not any(t.name == "test-read-end" for t in threading.enumerate())


def test_read_ahead_stops_its_producer_and_closes_the_source_when_the_consumer_stops():
    closed = threading.Event()

    def endless():
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.set()

    reader = read_ahead(endless(), 2, "test-read")
    assert [next(reader) for _ in range(5)] == [0, 1, 2, 3, 4]
    reader.close()
    assert closed.wait(5)
    deadline = time.monotonic() + 5
    while any(t.name == "test-read" for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not any(t.name == "test-read" for t in threading.enumerate())


def test_same_dataset_bytes_for_any_number_of_workers(ag_news_csv, tmp_path):
    """--jobs 1 (inline), --jobs 2 (threads) and a process pool handed in: identical datasets."""
    args = [str(ag_news_csv), "--text-column", "1", "--text-column", "2", "--label-column", "0", "--shard-rows", "2000"]
    for jobs in (1, 2):
        proc = streamtrain("prepare", *args, "--data", tmp_path / f"jobs{jobs}", "--jobs", str(jobs), "--quiet")
        assert proc.returncode == 0, proc.stderr
    opts = PrepareOptions(
        inputs=[str(ag_news_csv)], data=str(tmp_path / "threads"), text_column=[1, 2], label_column=0, shard_rows=2000
    )
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("forkserver")) as pool:
        prepare(opts, pool)  # the work and its arguments pickle: any executor can run it
    one, two, threads = (files_of(tmp_path / name) for name in ("jobs1", "jobs2", "threads"))
    assert set(one) == set(two) == set(threads) and len([f for f in one if f.endswith(".h5")]) >= 3
    for name, data in one.items():
        if name == "manifest.json":
            docs = [json.loads(d[name]) for d in (one, two, threads)]
            assert without_keys(docs[0], VOLATILE) == without_keys(docs[1], VOLATILE) == without_keys(docs[2], VOLATILE)
        else:
            assert data == two[name] == threads[name], name
