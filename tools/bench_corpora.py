"""streamtrain with all defaults against in-RAM references, Vowpal Wabbit and fastText on every real corpus.

    STREAMTRAIN_DATASETS=../shared/datasets .venv/bin/python tools/bench_corpora.py --json corpora.json
    .venv/bin/python tools/bench_corpora.py --corpora r8,ohsumed23 --tools streamtrain,logreg --rounds 3

The measurement harness of issue 25: every later change of a default is
judged on all of these corpora at once, never on one.

Corpora (``$STREAMTRAIN_DATASETS``, see its README.md), read in their original
formats through streamtrain's own readers (``streamtrain.io.readers``; the
same column options streamtrain gets on its command line):

imdb           aclImdb train -> test, a directory per class (the archive
               extracted once by ``benchdata.imdb_dir``): 25,000 / 25,000, 2 classes.
agnews         ag_news/test.csv (``class,title,description``, no header): text
               = title + " " + description with the file's backslashes turned
               into spaces, label = the class name, split by a hash of that
               text exactly as ``bench_peers.py`` (``in_test``): 6,019 / 1,581, 4 classes.
agnews-titles  the same rows and split, text = the title only.
banking77      banking77/{train,test}.csv (``text,category``): 10,003 / 3,080, 77 classes.
r8             reuters_r8/{train,test}.txt (``label<TAB>text``, no header; read
               through ``.tsv`` symlinks, as streamtrain tells formats by
               extension): 5,485 / 2,189, 8 classes.
ohsumed23      ohsumed_23.tar.gz extracted once, training/ -> test/, a directory
               per class: 3,357 / 4,043, 23 classes.
sst2           sst2/{train,test}.tsv (header; label column 0, text column 1:
               the two files name the text column differently): 67,349 / 1,821, 2 classes.

streamtrain gets the original files (agnews: the split written as
``text,label`` CSV files); the peers get the same rows, the training rows
shuffled with a fixed seed, as ``text,label`` CSV files. Everything derived
lives under ``$STREAMTRAIN_BENCH_TEXT/corpora`` (default /tmp), never in the
repository.

Tools (each in fresh subprocesses; ``total_s`` is its wall time, interpreter included):

streamtrain  ``streamtrain train TRAIN --test TEST --data D --model-dir M``, all
             defaults (plus the corpus's column flags). Test accuracy from its
             stdout JSON; what it chose from that JSON, the version's
             fit_config.json and metrics.json.
logreg       the guide's n-gram recipe in RAM: TfidfVectorizer(1-2-grams,
             min_df 2, strip_accents unicode), the top 20,000 by F-value
             (SelectKBest f_classif), LogisticRegression(C=10, lbfgs, max_iter 1000).
mlp          the same features, the guide's MLP of 2 x 64 units as
             sklearn's MLPClassifier (Adam 1e-3, batch 128, early_stopping=True:
             10 % of the training rows held out, 2 epochs without improvement
             of their accuracy; L2 alpha 1e-4 instead of the guide's dropout 0.2).
vw           ``bench_peers.run_vw``: --ngram 2 -b 24 --passes 20 -l 0.5
             --loss_function logistic --cache, --oaa K for K > 2.
fasttext     ``bench_peers.run_fasttext``: -lr 1.0 -epoch 25 -dim 50
             -wordNgrams 2; imdb: bench_peers' settings (lr 0.25, epoch 10, dim 10).

Per corpus, the tools run in interleaved rounds (``benchlib.run_rounds``:
each runs every tool once, the order rotated); the table shows medians over
rounds, streamtrain's wall time and choice, and "vs best peer": streamtrain's
accuracy minus the best of logreg, vw and fasttext, in points, marked
"(missed)" below issue 25's bar
(-0.5 points; IMDB also >= 0.905). ``--json`` writes the table, every
measurement (peers' times, streamtrain's fit_config.json) and the corpora.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import sys
import tarfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_peers
import benchdata
import benchlib

TOOLS = ("streamtrain", "logreg", "mlp", "vw", "fasttext")
WORK = benchdata.TEXT_CACHE / "corpora"
SHUFFLE_SEED = 0
FASTTEXT = {"lr": 1.0, "epoch": 25, "dim": 50}
FASTTEXT_IMDB = {"lr": 0.25, "epoch": 10, "dim": 10}  # bench_peers.PEER_SETTINGS, as issue 25's table


@dataclass(frozen=True)
class Corpus:
    """A corpus as streamtrain reads it: input paths, the column flags, and the rows the README documents."""

    name: str
    train: tuple[str, ...]
    test: tuple[str, ...]
    flags: tuple[str, ...] = ()
    rows: tuple[int, int] = (0, 0)  # documented train / test rows
    classes: int = 0

    def spec(self):
        """The ``ColumnSpec`` streamtrain builds from ``flags``."""
        from streamtrain.io.readers import ColumnSpec

        text: list[str | int] = []
        label: str | int = "label"
        header = None
        it = iter(self.flags)
        for flag in it:
            if flag == "--header":
                header = True
            else:
                value = next(it)
                col = int(value) if value.isdigit() else value
                if flag == "--text-column":
                    text.append(col)
                else:
                    label = col
        return ColumnSpec(text=tuple(text) or ("text",), label=label, header=header)


CORPORA = ("imdb", "agnews", "agnews-titles", "banking77", "r8", "ohsumed23", "sst2")
DOCUMENTED = {  # train rows, test rows, classes ($STREAMTRAIN_DATASETS/README.md; agnews: bench_peers' split)
    "imdb": (25_000, 25_000, 2),
    "agnews": (6_019, 1_581, 4),
    "agnews-titles": (6_019, 1_581, 4),
    "banking77": (10_003, 3_080, 77),
    "r8": (5_485, 2_189, 8),
    "ohsumed23": (3_357, 4_043, 23),
    "sst2": (67_349, 1_821, 2),
}
SOURCES = {  # what each corpus reads from $STREAMTRAIN_DATASETS
    "imdb": ("imdb/aclImdb_labeled.tar.gz",),
    "agnews": ("ag_news/test.csv", "ag_news/classes.txt"),
    "agnews-titles": ("ag_news/test.csv", "ag_news/classes.txt"),
    "banking77": ("banking77/train.csv", "banking77/test.csv"),
    "r8": ("reuters_r8/train.txt", "reuters_r8/test.txt"),
    "ohsumed23": ("ohsumed_23/ohsumed_23.tar.gz",),
    "sst2": ("sst2/train.tsv", "sst2/test.tsv"),
}


# ---------------------------------------------------------------- corpora
def read_rows(paths: Sequence[str], spec) -> list[tuple[str, str]]:
    """Every accepted (text, label) of ``paths`` through streamtrain's readers; a reject is an error here."""
    from streamtrain.io.readers import read_chunks

    rows: list[tuple[str, str]] = []
    for chunk in read_chunks(paths, spec):
        if chunk.rejected:
            r = chunk.rejected[0]
            raise SystemExit(f"{r.path}:{r.row}: rejected by streamtrain's reader ({r.reason})")
        rows.extend(zip(chunk.texts, chunk.labels))
    return rows


def _link(target: Path, link: Path) -> str:
    """A symlink ``link`` -> ``target`` (streamtrain tells a format by the extension); absolute, since
    ``$STREAMTRAIN_DATASETS`` may be relative (CI's ``../shared/datasets``) and the link lives elsewhere."""
    target = target.resolve()
    link.parent.mkdir(parents=True, exist_ok=True)
    if not (link.is_symlink() and os.readlink(link) == str(target)):
        link.unlink(missing_ok=True)
        link.symlink_to(target)
    return str(link)


def _extract_once(archive: Path, out: Path) -> Path:
    """``archive`` extracted into ``out`` (a sibling temp dir renamed into place: never half there)."""
    if not out.is_dir():
        tmp = out.with_name(out.name + f".partial-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(tmp, filter="data")
        tmp.replace(out)
    return out


def _ag_news(root: Path, titles: bool) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """AG News split by ``bench_peers.in_test`` of title + " " + description, written as text,label CSVs."""
    from streamtrain.io.readers import ColumnSpec

    out = WORK / "text" / ("agnews-titles" if titles else "agnews")
    train, test = out / "train.csv", out / "test.csv"
    if not (train.is_file() and test.is_file()):
        src = [str(root / "ag_news" / "test.csv")]
        names = (root / "ag_news" / "classes.txt").read_text().split()
        full = read_rows(src, ColumnSpec(text=(1, 2), label=0, header=False))
        title = read_rows(src, ColumnSpec(text=(1,), label=0, header=False))
        rows = []
        for (text, label), (head, _) in zip(full, title, strict=True):
            text = text.replace("\\", " ")
            rows.append((head.replace("\\", " ") if titles else text, names[int(label) - 1], bench_peers.in_test(text)))
        bench_peers.write_csv(train, [(t, y) for t, y, held in rows if not held])
        bench_peers.write_csv(test, [(t, y) for t, y, held in rows if held])
    return (str(train),), (str(test),)


def corpus(name: str, root: Path) -> Corpus:
    """Corpus ``name`` of ``root`` ($STREAMTRAIN_DATASETS), its archives extracted and links made once."""
    n_train, n_test, classes = DOCUMENTED[name]
    kw: dict = {"rows": (n_train, n_test), "classes": classes}
    if name == "imdb":
        acl = benchdata.imdb_dir()
        return Corpus(name, (str(acl / "train"),), (str(acl / "test"),), **kw)
    if name in ("agnews", "agnews-titles"):
        train, test = _ag_news(root, titles=name == "agnews-titles")
        return Corpus(name, train, test, **kw)
    if name == "banking77":
        d = root / "banking77"
        return Corpus(name, (str(d / "train.csv"),), (str(d / "test.csv"),), ("--label-column", "category"), **kw)
    if name == "r8":
        d, links = root / "reuters_r8", WORK / "text" / "r8"
        train, test = _link(d / "train.txt", links / "train.tsv"), _link(d / "test.txt", links / "test.tsv")
        return Corpus(name, (train,), (test,), ("--text-column", "1", "--label-column", "0"), **kw)
    if name == "ohsumed23":
        top = _extract_once(root / "ohsumed_23" / "ohsumed_23.tar.gz", WORK / "text" / "ohsumed23") / "ohsumed_23"
        return Corpus(name, (str(top / "training"),), (str(top / "test"),), **kw)
    if name == "sst2":
        d = root / "sst2"
        flags = ("--text-column", "1", "--label-column", "0", "--header")
        return Corpus(name, (str(d / "train.tsv"),), (str(d / "test.tsv"),), flags, **kw)
    raise SystemExit(f"unknown corpus {name!r}; known: {', '.join(CORPORA)}")


@dataclass
class PeerFiles:
    """The rows the peers get: ``text,label`` CSVs (train shuffled with SHUFFLE_SEED) and the sorted labels."""

    train: Path
    test: Path
    labels: list[str]
    train_rows: int
    test_rows: int


def peer_files(c: Corpus) -> PeerFiles:
    """The corpus's rows as streamtrain reads them, written once for the peers; rebuilt when the inputs change."""
    out = WORK / "text" / c.name / "peers"
    key = hashlib.sha256(json.dumps([c.train, c.test, c.flags, SHUFFLE_SEED]).encode()).hexdigest()
    meta = out / "meta.json"
    if meta.is_file() and json.loads(meta.read_text()).get("key") == key:
        return PeerFiles(out / "train.csv", out / "test.csv", **json.loads(meta.read_text())["files"])
    train, test = read_rows(c.train, c.spec()), read_rows(c.test, c.spec())
    random.Random(SHUFFLE_SEED).shuffle(train)
    files = {"labels": sorted({y for _, y in train}), "train_rows": len(train), "test_rows": len(test)}
    bench_peers.write_csv(out / "train.csv", train)
    bench_peers.write_csv(out / "test.csv", test)
    partial = meta.with_name(f"meta.json.partial-{os.getpid()}")
    partial.write_text(json.dumps({"key": key, "files": files}))
    partial.replace(meta)  # written last and whole: the CSVs above are complete when it names them
    return PeerFiles(out / "train.csv", out / "test.csv", **files)


# ---------------------------------------------------------------- the in-RAM references (in the child)
def guide_features(train_text: list[str], train_y: list[str], test_text: list[str]):
    """The guide's n-gram vectors: TF-IDF of 1-2-grams (min_df 2), the top 20,000 by ANOVA F-value."""
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.feature_selection import SelectKBest, f_classif

    vec = TfidfVectorizer(
        ngram_range=(1, 2), min_df=2, strip_accents="unicode", decode_error="replace", dtype=np.float32
    )
    x_train, x_test = vec.fit_transform(train_text), vec.transform(test_text)
    select = SelectKBest(f_classif, k=min(20_000, x_train.shape[1])).fit(x_train, train_y)
    return select.transform(x_train), select.transform(x_test)


def run_reference(tool: str, train: str, test: str) -> dict:
    """``logreg`` or ``mlp`` on the guide's features: test accuracy and the seconds of each step."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    t0 = time.perf_counter()
    train_text, train_y = map(list, zip(*bench_peers.read_csv(train)))
    test_text, test_y = map(list, zip(*bench_peers.read_csv(test)))
    x_train, x_test = guide_features(train_text, train_y, test_text)
    t1 = time.perf_counter()
    if tool == "logreg":
        clf = LogisticRegression(C=10.0, max_iter=1000)
    else:
        clf = MLPClassifier(
            hidden_layer_sizes=(64, 64),
            batch_size=128,
            learning_rate_init=1e-3,
            max_iter=1000,
            early_stopping=True,
            validation_fraction=0.1,
            n_iter_no_change=2,
            random_state=0,
        )
    clf.fit(x_train, train_y)
    correct = int(sum(p == y for p, y in zip(clf.predict(x_test), test_y)))
    out = {"prepare_s": t1 - t0, "train_s": time.perf_counter() - t1, "test_accuracy": correct / len(test_y)}
    out.update(test_rows=len(test_y), features=x_train.shape[1])
    if tool == "mlp":
        out["epochs"] = clf.n_iter_
    return out


def child(tool: str, corpus_name: str, train: str, test: str, work: str, labels_json: str) -> dict:
    """One peer on one corpus, in this (child) process."""
    labels = json.loads(labels_json)
    if tool in ("logreg", "mlp"):
        return run_reference(tool, train, test)
    if tool == "vw":
        return bench_peers.run_vw(train, test, Path(work), labels, l=0.5, passes=20)
    settings = FASTTEXT_IMDB if corpus_name == "imdb" else FASTTEXT
    return bench_peers.run_fasttext(train, test, Path(work), labels, **settings) | {"settings": settings}


# ---------------------------------------------------------------- running (parent)
def run_peer(tool: str, c: Corpus, files: PeerFiles, work: Path, timeout: float) -> dict:
    argv = [sys.executable, __file__, "--child", tool, c.name, str(files.train), str(files.test), str(work)]
    log = work / "child"
    m = bench_peers.measured([*argv, json.dumps(files.labels)], log, timeout)
    if m["rc"] != 0:
        return bench_peers._failed(tool, m, log)
    res = benchlib.result_in(m["stdout"]) or {"error": f"{tool}: no result"}
    return res | {"total_s": m["wall_s"], "peak_rss_mib": m["peak_rss_mib"]}


@dataclass
class Choice:
    """What streamtrain chose, from train's stdout JSON and the version's fit_config.json."""

    encoding: str | None = None
    encoding_choice: dict = field(default_factory=dict)  # prepare's reason for the encoding (a bake-off's scores)
    model: str | None = None
    width: str | None = None  # mlp: layers x units; sepcnn: blocks x filters, embedding
    epochs: float | None = None  # epochs run
    best_epoch: float | None = None
    max_epochs: int | None = None
    learning_rate: float | None = None
    fit_config: dict = field(default_factory=dict)
    trials: list = field(default_factory=list)  # the selection's trials: candidate, val loss and accuracy, or why not

    def summary(self) -> str:
        epochs = f"{self.epochs:g}/{self.max_epochs} epochs (best {self.best_epoch:g})"
        tried = f"; of {', '.join(self.trials)}" if len(self.trials) > 1 else ""
        return f"{self.encoding}, {self.model} {self.width}, {epochs}{tried}"


def choice_of(out: dict, model_dir: Path) -> Choice:
    """From ``streamtrain train``'s stdout JSON ``out`` and the fit_config.json of the version it wrote."""
    prep, fit = out.get("prepare", {}), out["fit"]
    config = json.loads((model_dir / "versions" / fit["version"] / "fit_config.json").read_text())
    if config.get("model") == "sepcnn":
        width = f"{config.get('blocks')} blocks x {config.get('filters')} filters, emb {config.get('embedding_dim')}"
    elif config.get("model") == "linear":
        width = ""
    else:
        width = f"{config.get('layers')} x {config.get('units')}"
    selection = model_dir / "versions" / fit["version"] / "selection.json"
    trials = []
    if selection.exists():  # 0.11 on
        for t in json.loads(selection.read_text())["trials"]:
            scored = f"loss {t['val_loss']:.4f} acc {t['val_accuracy']:.4f}" if t.get("val_loss") is not None else None
            score = t.get("skipped") or scored or f"{t['val_accuracy']:.4f}"
            score += " cut" if t.get("cut") else ""
            score += " behind" if t.get("behind") else ""
            trials.append(f"{t['candidate']['name']} {score}")
    return Choice(
        encoding=prep.get("encoding", config.get("encoding")),
        encoding_choice=prep.get("choice") or {},
        model=fit.get("model", config.get("model")),
        width=width,
        epochs=fit.get("epochs"),
        best_epoch=fit.get("best_epoch"),
        max_epochs=config.get("epochs"),
        learning_rate=config.get("learning_rate"),
        fit_config=config,
        trials=trials,
    )


def run_streamtrain(c: Corpus, work: Path, timeout: float) -> dict:
    """``streamtrain train`` with all defaults on the corpus's original files."""
    data, model = work / "data", work / "model"
    argv = [str(bench_peers.STREAMTRAIN), "train", *c.train, "--test", *c.test, *c.flags]
    argv += ["--data", str(data), "--model-dir", str(model)]
    log = work / "train"
    m = bench_peers.measured(argv, log, timeout)
    if m["rc"] != 0:
        return bench_peers._failed("streamtrain train", m, log)
    out = bench_peers.parse_json_out(m["stdout"])
    ch = choice_of(out, model)
    return {
        "total_s": m["wall_s"],
        "cpu_s": m["cpu_s"],
        "peak_rss_mib": m["peak_rss_mib"],
        "test_accuracy": out["fit"]["test_accuracy"],
        "val_accuracy": out["fit"].get("val_accuracy"),
        "train_seconds": out["fit"].get("train_seconds"),
        "rows": out.get("prepare", {}).get("rows"),
        "features": out.get("prepare", {}).get("features"),
        "choice": asdict(ch),
        "chose": ch.summary(),
    }


# ---------------------------------------------------------------- table
BAR_PEERS = ("logreg", "vw", "fasttext")  # issue 25: streamtrain >= the best of these - BAR_POINTS
BAR_POINTS = 0.5
BAR_FLOOR = {"imdb": 0.905}


def table_rows(results: list[dict], corpora: dict[str, tuple[Corpus, PeerFiles]], tools: Sequence[str]) -> list[dict]:
    """Per corpus: each tool's median test accuracy, streamtrain's median time and last choice, and issue 25's bar.

    ``gap_points``: streamtrain's accuracy minus the best of the BAR_PEERS that
    ran, in points; ``bar_met``: the gap is at least -BAR_POINTS and the
    corpus's BAR_FLOOR is reached (None when streamtrain or every BAR_PEER is
    missing).
    """
    rows = []
    for name, (_, files) in corpora.items():
        row: dict = {"corpus": name, "classes": len(files.labels), "train_rows": files.train_rows}
        row["test_rows"] = files.test_rows
        for tool in tools:
            ok = [r for r in results if r["corpus"] == name and r["tool"] == tool and "error" not in r]
            row[tool] = benchlib.median_of(r["test_accuracy"] for r in ok)
            if tool == "streamtrain":
                row["streamtrain_s"] = benchlib.median_of(r["total_s"] for r in ok)
                row["streamtrain_chose"] = ok[-1]["chose"] if ok else None
        peers = [row[t] for t in BAR_PEERS if row.get(t) is not None]
        mine = row.get("streamtrain")
        row["gap_points"] = None if mine is None or not peers else 100 * (mine - max(peers))
        row["bar_met"] = None
        if row["gap_points"] is not None:
            row["bar_met"] = row["gap_points"] >= -BAR_POINTS - 1e-9 and mine >= BAR_FLOOR.get(name, 0.0)
        rows.append(row)
    return rows


def print_rows(rows: list[dict], tools: Sequence[str], file=None) -> None:
    """The table, and (when it was measured) on how many corpora streamtrain meets issue 25's bar."""
    headers = ["corpus", "classes", "train rows", "test rows", *tools]
    if "streamtrain" in tools:
        headers += ["streamtrain s", "vs best peer", "streamtrain chose"]
    cells = []
    for r in rows:
        accs = ["FAILED" if r[t] is None else f"{r[t]:.4f}" for t in tools]
        line = [r["corpus"], r["classes"], f"{r['train_rows']:,}", f"{r['test_rows']:,}", *accs]
        if "streamtrain" in tools:
            gap = "-" if r["gap_points"] is None else f"{r['gap_points']:+.2f}" + ("" if r["bar_met"] else " (missed)")
            line += [benchlib.fmt(r["streamtrain_s"], 0), gap, r["streamtrain_chose"] or "-"]
        cells.append(line)
    benchlib.print_table(headers, cells, file=file)
    judged = [r for r in rows if r.get("bar_met") is not None]
    if judged:
        met = [r["corpus"] for r in judged if r["bar_met"]]
        floors = ", ".join(f"{k} >= {v}" for k, v in BAR_FLOOR.items())
        print(
            f"issue 25's bar (streamtrain >= best of {', '.join(t for t in BAR_PEERS if t in tools)} "
            f"- {BAR_POINTS} points; {floors}): met on {len(met)} of {len(judged)} corpora"
            + (f" ({', '.join(met)})" if met else ""),
            file=file,
        )


# ---------------------------------------------------------------- main
def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--corpora", default=",".join(CORPORA), help=f"comma-separated, of {','.join(CORPORA)}")
    p.add_argument("--tools", default=",".join(TOOLS), help=f"comma-separated, of {','.join(TOOLS)}")
    benchlib.add_common_flags(p, rounds=1, json=True)
    p.add_argument("--timeout", type=float, default=3600, help="seconds allowed to one tool on one corpus")
    p.add_argument("--child", nargs=6, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        benchlib.emit(child(*args.child))
        return 0
    names = bench_peers.parse_list(args.corpora, CORPORA, "corpus")
    tools = bench_peers.parse_list(args.tools, TOOLS, "tool")
    root = bench_peers.datasets_root()
    if root is None:
        print("skipped: STREAMTRAIN_DATASETS is unset or not a directory (e.g. ../shared/datasets)")
        return 0
    corpora = {}
    for name in names:
        missing = [s for s in SOURCES[name] if not (root / s).exists()]
        if missing:
            print(f"[corpora] {name}: skipped, not in {root}: {', '.join(missing)}", file=sys.stderr, flush=True)
            continue
        c = corpus(name, root)
        corpora[name] = (c, peer_files(c))
    source = benchlib.source_state()
    print(f"streamtrain at {source}; {os.cpu_count()} cores", flush=True)
    results = run_rounds(corpora, tools, args.rounds, args.timeout)
    rows = table_rows(results, corpora, tools)
    print(f"\ntest accuracy, medians over {args.rounds} round(s); streamtrain s = wall time of `streamtrain train`;")
    print("vs best peer = streamtrain - the best of logreg, vw and fasttext (those run), in points")
    print_rows(rows, tools)
    if args.json:
        doc = {"commit": source, "argv": sys.argv[1:], "rounds": args.rounds, "table": rows, "results": results}
        doc["corpora"] = {n: {"corpus": asdict(c), "peer_files": asdict(f)} for n, (c, f) in corpora.items()}
        benchlib.write_json(args.json, doc)
    return 0


def run_rounds(corpora: dict[str, tuple[Corpus, PeerFiles]], tools: Sequence[str], rounds: int, timeout: float):
    """Per corpus, the tools in ``benchlib.run_rounds``' interleaved rounds; every run as a flat record."""
    results: list[dict] = []
    for name, (c, files) in corpora.items():
        runs = benchlib.run_rounds(tools, rounds, partial(run_tool, c, files, timeout), "corpora", said)
        results += [r.record("tool", corpus=name) for r in runs]
    return results


def run_tool(c: Corpus, files: PeerFiles, timeout: float, tool: str, _round: int) -> dict:
    """One tool on one corpus, in a fresh work directory."""
    work = WORK / "runs" / c.name / tool
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    return run_streamtrain(c, work, timeout) if tool == "streamtrain" else run_peer(tool, c, files, work, timeout)


def said(res: dict) -> str:
    """One round's line."""
    return f"test acc {res['test_accuracy']:.4f}  total {res['total_s']:6.1f} s" + (
        f"  {res['chose']}" if "chose" in res else ""
    )


if __name__ == "__main__":
    raise SystemExit(main())
