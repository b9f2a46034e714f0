"""tools/bench_corpora.py: its corpus loaders give the documented rows, and a tiny run puts an accuracy in the table.

The corpus tests need the real corpora (``STREAMTRAIN_DATASETS``) and skip without them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import TOOLS, load_tool

bench_corpora = load_tool("bench_corpora")
bench_peers = load_tool("bench_peers")

ROOT = os.environ.get("STREAMTRAIN_DATASETS")
needs_corpora = pytest.mark.skipif(
    not (ROOT and Path(ROOT).is_dir()), reason="STREAMTRAIN_DATASETS is unset (the real corpora)"
)


@pytest.fixture
def work(tmp_path, monkeypatch) -> Path:
    """The harness's derived files (splits, links, extracted archives) under tmp_path."""
    monkeypatch.setattr(bench_corpora, "WORK", tmp_path / "corpora")
    return tmp_path / "corpora"


def test_column_flags_become_the_reader_spec_streamtrain_builds() -> None:
    spec = bench_corpora.Corpus("r8", ("a.tsv",), ("b.tsv",), ("--text-column", "1", "--label-column", "0")).spec()
    assert (spec.text, spec.label, spec.csv_has_header()) == ((1,), 0, False)
    sst2 = bench_corpora.Corpus("s", (), (), ("--text-column", "1", "--label-column", "0", "--header")).spec()
    assert sst2.csv_has_header() is True
    banking = bench_corpora.Corpus("b", (), (), ("--label-column", "category")).spec()
    assert (banking.text, banking.label, banking.csv_has_header()) == (("text",), "category", True)


@needs_corpora
@pytest.mark.parametrize("name", bench_corpora.CORPORA)
def test_each_corpus_loads_its_documented_rows_and_classes(name: str, work: Path) -> None:
    c = bench_corpora.corpus(name, Path(ROOT))
    files = bench_corpora.peer_files(c)
    assert (files.train_rows, files.test_rows, len(files.labels)) == bench_corpora.DOCUMENTED[name]
    assert sum(1 for _ in bench_peers.read_csv(files.train)) == files.train_rows
    assert work in files.train.parents  # derived text stays out of the repository
    assert not any(Path(p).resolve().is_relative_to(bench_corpora.benchlib.REPO) for p in c.train + c.test)


@needs_corpora
def test_agnews_split_is_bench_peers_split_and_titles_keep_it(work: Path) -> None:
    root = Path(ROOT)
    names = (root / "ag_news" / "classes.txt").read_text().split()
    theirs = list(bench_peers.agnews_rows(root / "ag_news" / "test.csv", names))
    full = bench_corpora.corpus("agnews", root)
    assert list(bench_peers.read_csv(full.train[0])) == [r for r in theirs if not bench_peers.in_test(r[0])]
    assert list(bench_peers.read_csv(full.test[0])) == [r for r in theirs if bench_peers.in_test(r[0])]
    titles = list(bench_peers.read_csv(bench_corpora.corpus("agnews-titles", root).test[0]))
    held = [r for r in theirs if bench_peers.in_test(r[0])]
    assert [y for _, y in titles] == [y for _, y in held]
    assert all(
        full_text.startswith(title) and len(title) < len(full_text) for (title, _), (full_text, _) in zip(titles, held)
    )


@needs_corpora
def test_a_tiny_run_prints_a_row_with_an_accuracy(tmp_path: Path) -> None:
    """R8 with LogReg only, as a user runs the script: the table and the JSON both carry its accuracy."""
    out_json = tmp_path / "r8.json"
    env = {**os.environ, "STREAMTRAIN_BENCH_TEXT": str(tmp_path / "text")}
    argv = [sys.executable, str(TOOLS / "bench_corpora.py"), "--corpora", "r8", "--tools", "logreg"]
    proc = subprocess.run([*argv, "--json", str(out_json)], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    row = next(line for line in proc.stdout.splitlines() if line.startswith("| r8 "))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[:4] == ["r8", "8", "5,485", "2,189"]
    assert 0.9 < float(cells[4]) <= 1.0  # issue 25 measured 0.9657
    table = json.loads(out_json.read_text())["table"]
    assert [(r["corpus"], r["train_rows"]) for r in table] == [("r8", 5485)]
    assert table[0]["logreg"] == pytest.approx(float(cells[4]), abs=5e-5)
    assert "streamtrain" not in table[0]
    assert not any(Path(tmp_path / "text").rglob("*.partial-*"))


def test_a_corpus_missing_from_the_datasets_is_skipped_with_a_message(tmp_path, monkeypatch, work, capsys) -> None:
    """A datasets directory without SST-2's files: one line naming them, no crash, the other corpora still run."""
    monkeypatch.setenv("STREAMTRAIN_DATASETS", str(tmp_path))
    assert bench_corpora.main(["--corpora", "sst2", "--tools", "logreg"]) == 0
    out = capsys.readouterr()
    assert f"[corpora] sst2: skipped, not in {tmp_path}: sst2/train.tsv, sst2/test.tsv" in out.err
    assert "| corpus " in out.out and "| sst2 " not in out.out


def _files(labels: int, rows: int = 100):
    return bench_corpora.PeerFiles(Path("train.csv"), Path("test.csv"), [f"c{i}" for i in range(labels)], rows, 10)


def test_the_table_takes_medians_and_judges_issue_25s_bar(capsys) -> None:
    """Medians over rounds; the gap to the best of LogReg/VW/fastText (not the MLP); IMDB's floor; a failure shows."""

    def res(corpus: str, tool: str, rnd: int, acc: float) -> dict:
        return {"corpus": corpus, "tool": tool, "round": rnd, "test_accuracy": acc, "total_s": 10.0 * rnd, "chose": "c"}

    results = [
        *(res("imdb", "streamtrain", i, a) for i, a in enumerate((0.904, 0.908, 0.906), 1)),
        res("imdb", "vw", 1, 0.900),
        res("imdb", "mlp", 1, 0.950),  # not a bar peer
        res("small", "streamtrain", 1, 0.900),
        res("small", "logreg", 1, 0.906),
        res("low", "streamtrain", 1, 0.904),  # above its peer, but IMDB's floor is IMDB's alone
        res("low", "vw", 1, 0.800),
        {"corpus": "broken", "tool": "streamtrain", "round": 1, "error": "exit 65"},
        res("broken", "vw", 1, 0.8),
    ]
    corpora = {n: (None, _files(2)) for n in ("imdb", "small", "low", "broken")}
    rows = {r["corpus"]: r for r in bench_corpora.table_rows(results, corpora, ["streamtrain", "mlp", "vw", "logreg"])}
    assert rows["imdb"]["streamtrain"] == 0.906 and rows["imdb"]["streamtrain_s"] == 20.0
    assert rows["imdb"]["gap_points"] == pytest.approx(0.6) and rows["imdb"]["bar_met"] is True
    assert rows["small"]["gap_points"] == pytest.approx(-0.6) and rows["small"]["bar_met"] is False
    assert rows["low"]["bar_met"] is True
    assert rows["broken"]["streamtrain"] is None and rows["broken"]["bar_met"] is None
    bench_corpora.print_rows(list(rows.values()), ["streamtrain", "mlp", "vw", "logreg"])
    out = capsys.readouterr().out
    assert "-0.60 (missed)" in out and "FAILED" in out
    assert "met on 2 of 3 corpora (imdb, low)" in out

    below_floor = [res("imdb", "streamtrain", 1, 0.904), res("imdb", "vw", 1, 0.900)]
    (row,) = bench_corpora.table_rows(below_floor, {"imdb": (None, _files(2))}, ["streamtrain", "vw"])
    assert row["gap_points"] > 0 and row["bar_met"] is False


def test_streamtrains_choice_is_read_from_the_version_it_wrote(tmp_path: Path) -> None:
    """Encoding from prepare's JSON, width from that version's fit_config.json (not ``current``), epochs from fit's."""
    version = tmp_path / "versions" / "v2"
    version.mkdir(parents=True)
    config = {"model": "sepcnn", "blocks": 2, "filters": 64, "embedding_dim": 200, "epochs": 20, "learning_rate": 1e-3}
    (version / "fit_config.json").write_text(json.dumps(config))
    out = {
        "prepare": {"encoding": "sequence", "choice": {"chosen": "sequence", "why": "bake-off"}},
        "fit": {"version": "v2", "model": "sepcnn", "epochs": 1.727, "best_epoch": 1.545},
    }
    choice = bench_corpora.choice_of(out, tmp_path)
    assert choice.summary() == "sequence, sepcnn 2 blocks x 64 filters, emb 200, 1.727/20 epochs (best 1.545)"
    assert choice.encoding_choice["why"] == "bake-off" and choice.fit_config == config
    (version / "fit_config.json").write_text(json.dumps({"model": "mlp", "layers": 2, "units": 16, "epochs": 20}))
    out = {"prepare": {"encoding": "ngram"}, "fit": {"version": "v2", "model": "mlp", "epochs": 3.0, "best_epoch": 2.5}}
    assert bench_corpora.choice_of(out, tmp_path).summary() == "ngram, mlp 2 x 16, 3/20 epochs (best 2.5)"


def test_the_selections_trials_are_shown_with_their_loss_and_accuracy(tmp_path: Path) -> None:
    """The pick is by validation loss, so the summary shows each trial's loss beside its accuracy, and what cut
    a trial short (the budget, or the leader's rounds)."""
    version = tmp_path / "versions" / "v1"
    version.mkdir(parents=True)
    (version / "fit_config.json").write_text(json.dumps({"model": "mlp", "layers": 2, "units": 16, "epochs": 35}))
    trials = [
        {"candidate": {"name": "mlp 2 x 16"}, "val_loss": 0.2090, "val_accuracy": 0.9140},
        {"candidate": {"name": "linear"}, "val_loss": 0.2099, "val_accuracy": 0.9186, "cut": True},
        {"candidate": {"name": "mlp 2 x 64"}, "skipped": "the budget of 120 s was spent"},
        {"candidate": {"name": "mlp 2 x 128"}, "val_loss": 0.25, "val_accuracy": 0.90, "behind": True},
    ]
    (version / "selection.json").write_text(json.dumps({"trials": trials}))
    out = {"prepare": {"encoding": "ngram"}, "fit": {"version": "v1", "model": "mlp", "epochs": 3.0, "best_epoch": 2.5}}
    assert bench_corpora.choice_of(out, tmp_path).summary() == (
        "ngram, mlp 2 x 16, 3/35 epochs (best 2.5); of mlp 2 x 16 loss 0.2090 acc 0.9140, "
        "linear loss 0.2099 acc 0.9186 cut, mlp 2 x 64 the budget of 120 s was spent, "
        "mlp 2 x 128 loss 0.2500 acc 0.9000 behind"
    )
