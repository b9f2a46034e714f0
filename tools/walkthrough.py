#!/usr/bin/env python3
"""The README's walkthrough, regenerated from a fresh run of the demo.

Who owns what:
- ``run``: what ``make demo`` runs (``DEMO``: prepare, fit, evaluate on
  ``data/tickets_*.csv``; ``tests/test_docs.py`` checks it against the
  Makefile), then the walkthrough's second night (``NIGHT2``: a new day's
  tickets appended, a warm-started fit), in a temporary directory. It
  returns ``Facts``: every number the README states about them.
- ``docs/walkthrough.json``: the facts of the run the README shows.
- ``render``: the README's walkthrough blocks (``walkthrough-*``) from those
  facts alone; the pictures of that run are ``docs/images/demo-*.png``.
- ``compare``: a fresh run's facts against the recorded ones. What prepare
  computes (rows, features, the S/W numbers, top features, drift) is the
  same on every machine and must be equal; what TensorFlow computes is
  compared within ``TOLERANCE``, because another CPU's kernels can differ in
  the late digits, and a validation loss that differs in the fifth digit
  can move early stopping by a few validations.

``tests/test_docs.py`` checks that the README's blocks are the rendering of
``docs/walkthrough.json`` (fast); ``tests/tools/test_walkthrough.py`` runs
the demo again and compares (slow: about a minute on 2 cores)::

    python tools/walkthrough.py            # run the demo; rewrite the record, the README's blocks, the pictures
    python tools/walkthrough.py --render   # rewrite the README's blocks from docs/walkthrough.json (no run)
    python tools/walkthrough.py --check    # run the demo; exit 1 naming each fact outside its tolerance
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reference import block, replace_block

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
RECORD = ROOT / "docs" / "walkthrough.json"
IMAGES = {
    "training.png": ROOT / "docs/images/demo-training.png",
    "confusion.png": ROOT / "docs/images/demo-confusion.png",
}
RUN, NIGHT, ST = "runs/demo", "/tmp/night2", ".venv/bin/streamtrain"  # as the README shows the commands

DEMO = (  # make demo's commands ({run}: the Makefile's $(RUN))
    ("prepare", "data/tickets_train.csv", "--test", "data/tickets_test.csv", "--data", "{run}/data", "--overwrite"),
    ("fit", "--data", "{run}/data", "--model-dir", "{run}/model", "--quiet"),
    ("evaluate", "--data", "{run}/data", "--model-dir", "{run}/model"),
)
NIGHT2_CORPUS = ("--seed", "1", "--out", "{night}", "--train-rows", "1000", "--test-rows", "10")
NIGHT2 = (
    ("prepare", "--append", "{night}/tickets_train.csv", "--data", "{run}/data"),
    ("fit", "--data", "{run}/data", "--model-dir", "{run}/model", "--warm-start"),
)
# TensorFlow's numbers: the absolute differences allowed. "choice": how far above the best a candidate's recorded
# validation loss may be and still win on another machine; "loss": a trial's recorded validation loss.
TOLERANCE = {"accuracy": 0.02, "epochs": 2.5, "count": 8, "choice": 0.02, "loss": 0.05}


@dataclass
class Data:
    """What prepare computed: the same bytes on every machine, so compared exactly."""

    rows: dict[str, int]
    classes: list[str]
    features: int
    samples: int
    median_words: float
    samples_per_word: float
    top_features: dict[str, list[str]]
    appended: dict[str, int]  # night 2's rows per split
    drift_line: str  # prepare --append's drift line, as printed


@dataclass
class Training:
    """What TensorFlow computed: compared within ``TOLERANCE``."""

    trials: list[list[Any]]  # [candidate, validation loss, validation accuracy], in the selection's order
    chosen: str
    epochs: float
    best_epoch: float
    patience: int
    validations_per_epoch: int
    val_accuracy: float
    test_accuracy: float
    test_confusion: list[list[int]]
    night2_epochs: float
    night2_best_epoch: float
    night2_val_accuracy: float  # the warm-started version, on the grown validation split
    night2_current_accuracy: float  # the first version, on the same rows
    night2_test_accuracy: float
    night2_promoted: bool
    max_regression: float


@dataclass
class Facts:
    data: Data
    training: Training
    versions: list[list[str]]  # [id, date] of the recorded run's versions: never compared

    @classmethod
    def load(cls, path: Path = RECORD) -> Facts:
        doc = json.loads(path.read_text(encoding="utf-8"))
        return cls(Data(**doc["data"]), Training(**doc["training"]), doc["versions"])

    def save(self, path: Path = RECORD) -> None:
        path.write_text(json.dumps(dataclasses.asdict(self), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


# ---------------------------------------------------------------------------------------------------------------
# Running the demo.


def _argv(step: Sequence[str], run: str, night: str) -> list[str]:
    return [a.format(run=run, night=night) for a in step]


def _streamtrain(
    step: Sequence[str], run: Path, night: Path, ok: tuple[int, ...] = (0,)
) -> subprocess.CompletedProcess[str]:
    """Run one step; a ``RuntimeError`` unless it exits with a code in ``ok`` (3: a version kept, not promoted)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    argv = [sys.executable, "-m", "streamtrain", *_argv(step, str(run), str(night))]
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    if done.returncode not in ok:
        raise RuntimeError(f"{' '.join(argv)}: exit {done.returncode}\n{done.stderr[-3000:]}")
    return done


def _json(step: Sequence[str], run: Path, night: Path, ok: tuple[int, ...] = (0,)) -> Any:
    return json.loads(_streamtrain(step, run, night, ok).stdout)


def run(work: Path, pictures: Path | None = None) -> Facts:
    """Run the demo and its second night under ``work``; copy the first version's pictures into ``pictures``."""
    rundir, night = work / "demo", work / "night2"
    prepared, first, scored = (_json(step, rundir, night) for step in DEMO)
    first_dir = rundir / "model" / "versions" / first["version"]
    if pictures is not None:
        for name in IMAGES:
            shutil.copyfile(first_dir / name, pictures / name)
    dataset = _json(("inspect", "--json", "{run}/data"), rundir, night)
    corpus = [sys.executable, str(ROOT / "tools" / "gen_corpus.py"), *_argv(NIGHT2_CORPUS, str(rundir), str(night))]
    subprocess.run(corpus, check=True, capture_output=True, timeout=300)
    appended = _streamtrain(NIGHT2[0], rundir, night)
    second = _json(NIGHT2[1], rundir, night, ok=(0, 3))  # the guard may keep night 2's version unpromoted
    models = _json(("inspect", "--json", "{run}/model"), rundir, night)
    patience = json.loads((first_dir / "fit_config.json").read_text())["patience"]
    drift = next(line for line in appended.stderr.splitlines() if "drift:" in line)
    grown = json.loads(appended.stdout)["rows"]
    data = Data(
        rows=prepared["rows"],
        classes=prepared["classes"],
        features=prepared["features"],
        samples=prepared["choice"]["samples"],
        median_words=prepared["choice"]["median_words_per_sample"],
        samples_per_word=round(prepared["choice"]["samples_per_word"], 1),
        top_features={c: [f["name"] for f in fs] for c, fs in dataset["top_features"]["classes"].items()},
        appended={split: grown[split] - n for split, n in prepared["rows"].items()},
        drift_line=drift.strip(),
    )
    selection = models["versions"][0]["selection"]
    promotion = second["promotion"]
    training = Training(
        trials=[[t["candidate"], round(t["val_loss"], 4), round(t["val_accuracy"], 4)] for t in selection["trials"]],
        chosen=selection["chosen"],
        epochs=first["epochs"],
        best_epoch=first["best_epoch"],
        patience=patience,
        validations_per_epoch=first["validations_per_epoch"],
        val_accuracy=round(first["val_accuracy"], 4),
        test_accuracy=round(scored["test_accuracy"], 4),
        test_confusion=scored["test_confusion"],
        night2_epochs=second["epochs"],
        night2_best_epoch=second["best_epoch"],
        night2_val_accuracy=round(promotion["candidate_accuracy"], 4),
        night2_current_accuracy=round(promotion["current_accuracy"], 4),
        night2_test_accuracy=round(second["test_accuracy"], 4),
        night2_promoted=bool(second["promoted"]),
        max_regression=promotion["max_regression"],
    )
    return Facts(data, training, [[v["id"], v["date"]] for v in models["versions"]])


# ---------------------------------------------------------------------------------------------------------------
# Rendering the README's blocks.


def _shell(step: Sequence[str]) -> str:
    return " ".join([ST, *_argv(step, RUN, NIGHT)])


def _makefile_echoes() -> list[str]:
    """The lines ``make demo`` ends with: its recipe's ``@echo`` lines, $(RUN) and $(ST) as the Makefile sets them."""
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    recipe = re.search(r"^demo:.*?\n((?:\t.*\n)+)", text, re.M)
    assert recipe is not None, "Makefile: no demo target"
    echoes = re.findall(r'^\t@echo "(.*)"$', recipe.group(1), re.M)
    return [e.replace("$(RUN)", RUN).replace("$(ST)", ST) for e in echoes]


def demo_commands() -> list[str]:
    """``DEMO`` as the Makefile writes it ($(ST) and $(RUN)), for the check against the Makefile."""
    return [" ".join(["$(ST)", *_argv(step, "$(RUN)", NIGHT)]) for step in DEMO]


def _n(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:g}"


def _names(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def block_end(facts: Facts) -> str:
    return "```\n" + "\n".join(_makefile_echoes()) + "\n```"


def block_data(facts: Facts) -> str:
    d = facts.data
    train = d.rows["train"] + d.rows["val"]
    return (
        f"`prepare` read {train:,} training and {d.rows['test']:,} test rows of {len(d.classes)} classes "
        f"({_names(d.classes)}), held {d.rows['val']:,} of the training rows out for validation, and measured "
        f"S = {d.samples:,} samples and W = {_n(d.median_words)} median words per sample: S/W = {d.samples_per_word}, "
        f"below 1,500, so n-grams (TF-IDF of word 1–2-grams), {d.features:,} of them kept."
    )


def block_model(facts: Facts) -> str:
    t = facts.training
    rows = [f"| {c}{' (kept)' if c == t.chosen else ''} | {loss:.4f} | {a:.4f} |" for c, loss, a in t.trials]
    return "\n".join(["| candidate | validation loss | validation accuracy |", "|---|---|---|", *rows])


def block_training(facts: Facts) -> str:
    t = facts.training
    return (
        f"Here the kept weights are those of epoch {_n(t.best_epoch)} ({t.validations_per_epoch} validations an "
        f"epoch); training went on to epoch {_n(t.epochs)}, when {t.patience} validations in a row (`--patience`) "
        f"had not beaten it."
    )


def block_confusion(facts: Facts) -> str:
    t, classes = facts.training, facts.data.classes
    found = [row[i] for i, row in enumerate(t.test_confusion)]
    weak = found.index(min(found))
    row = t.test_confusion[weak]
    worst = max((n, classes[j]) for j, n in enumerate(row) if j != weak)
    strong = [c for c, n in zip(classes, found) if n == max(found)]
    strongest = f"the strongest is {strong[0]} ({max(found)})"
    if len(strong) > 1:
        strongest = f"the strongest are {_names(strong)} ({max(found)} each)"
    return (
        f"Test accuracy {t.test_accuracy:.4f} (validation {t.val_accuracy:.4f}). The weakest class is {classes[weak]} "
        f"({min(found)} of {sum(row)} found), its tickets most often read as {worst[1]} ({worst[0]}); {strongest}."
    )


def block_features(facts: Facts) -> str:
    rows = [f"| {c} | {', '.join(fs)} |" for c, fs in facts.data.top_features.items()]
    return "\n".join(["| class | top features |", "|---|---|", *rows])


def block_night2(facts: Facts) -> str:
    d, t = facts.data, facts.training
    gen = " ".join([".venv/bin/python tools/gen_corpus.py", *_argv(NIGHT2_CORPUS, RUN, NIGHT)])
    drift = d.drift_line.split(";")[0]
    verdict = "promoted to current" if t.night2_promoted else "kept, not promoted"
    lines = [
        "```sh",
        gen,
        _shell(NIGHT2[0]),
        f"# {drift}; ...",
        _shell(NIGHT2[1]),
        f"# [fit] version ... {verdict}: validation accuracy {t.night2_val_accuracy:.4f} against the current "
        f"{t.night2_current_accuracy:.4f} "
        f"({t.night2_val_accuracy - t.night2_current_accuracy:+.4f}; the guard allows -{t.max_regression})",
        _shell(("inspect", "{run}/model")),
        "```",
    ]
    return "\n".join(lines)


def block_versions(facts: Facts) -> str:
    t, d = facts.training, facts.data
    (first, date1), (second, date2) = facts.versions
    current = ("", "*") if t.night2_promoted else ("*", "")  # a version kept, not promoted, leaves current alone
    rows = [
        f"| {first} | {date1} | {current[0]} | {t.test_accuracy:.4f} | {t.val_accuracy:.4f} | {_n(t.epochs)} | "
        f"{d.rows['train']:,} | yes | - |",
        f"| {second} | {date2} | {current[1]} | {t.night2_test_accuracy:.4f} | {t.night2_val_accuracy:.4f} | "
        f"{_n(t.night2_epochs)} | {d.rows['train'] + d.appended.get('train', 0):,} | "
        f"{'yes' if t.night2_promoted else 'no'} | {first} |",
    ]
    head = "| version | date | current | test_acc | val_acc | epochs | train_rows | promoted | warm_start |"
    return "\n".join([head, "|---|---|---|---|---|---|---|---|---|", *rows])


BLOCKS: dict[str, Callable[[Facts], str]] = {
    "walkthrough-end": block_end,
    "walkthrough-data": block_data,
    "walkthrough-model": block_model,
    "walkthrough-training": block_training,
    "walkthrough-confusion": block_confusion,
    "walkthrough-features": block_features,
    "walkthrough-night2": block_night2,
    "walkthrough-versions": block_versions,
}


def render(text: str, facts: Facts) -> str:
    """``text`` (the README) with every walkthrough block rendered from ``facts``."""
    for name, make in BLOCKS.items():
        text = replace_block(text, name, make(facts), tool="walkthrough")
    return text


def stale(text: str, facts: Facts) -> list[str]:
    """The walkthrough blocks of ``text`` that are not the rendering of ``facts``."""
    return [name for name, make in BLOCKS.items() if block(text, name).strip() != make(facts).strip()]


# ---------------------------------------------------------------------------------------------------------------
# Comparing a fresh run with the record.


def compare(recorded: Facts, fresh: Facts) -> list[str]:
    """Each fact of ``fresh`` that differs from ``recorded`` beyond what another machine may explain."""
    problems = [
        f"data.{f.name}: recorded {getattr(recorded.data, f.name)!r}, now {getattr(fresh.data, f.name)!r}"
        for f in dataclasses.fields(Data)
        if getattr(recorded.data, f.name) != getattr(fresh.data, f.name)
    ]
    r, f = recorded.training, fresh.training
    kinds: dict[str, list[str]] = {"accuracy": [], "epochs": [], "exact": []}
    for field in dataclasses.fields(Training):
        name = field.name
        if "accuracy" in name:
            kinds["accuracy"].append(name)
        elif "epoch" in name and name != "validations_per_epoch":
            kinds["epochs"].append(name)
        elif name in ("patience", "validations_per_epoch", "night2_promoted", "max_regression"):
            kinds["exact"].append(name)
    for kind, names in kinds.items():
        for name in names:
            a, b = getattr(r, name), getattr(f, name)
            if a != b if kind == "exact" else abs(a - b) > TOLERANCE[kind]:
                problems.append(f"training.{name}: recorded {a}, now {b}")
    problems += _compare_selection(r, f) + _compare_confusion(r, f)
    return problems


def _compare_selection(r: Training, f: Training) -> list[str]:
    out = []
    if [c for c, *_ in r.trials] != [c for c, *_ in f.trials]:
        out.append(f"training.trials: recorded {r.trials}, now {f.trials}")
    else:
        out += [
            f"training.trials: {c} recorded {a}, now {b}"
            for (c, *a), (_, *b) in zip(r.trials, f.trials)
            if abs(a[0] - b[0]) > TOLERANCE["loss"] or abs(a[1] - b[1]) > TOLERANCE["accuracy"]
        ]
    best = min(loss for _, loss, _ in r.trials)
    near = [c for c, loss, _ in r.trials if loss <= best + TOLERANCE["choice"]]
    if f.chosen not in near:
        out.append(f"training.chosen: now {f.chosen}, recorded {r.chosen} (within tolerance: {near})")
    return out


def _compare_confusion(r: Training, f: Training) -> list[str]:
    if len(r.test_confusion) != len(f.test_confusion):
        return [f"training.test_confusion: {len(f.test_confusion)} classes, recorded {len(r.test_confusion)}"]
    return [
        f"training.test_confusion[{i}][{j}]: recorded {a}, now {b}"
        for i, (ra, fa) in enumerate(zip(r.test_confusion, f.test_confusion))
        for j, (a, b) in enumerate(zip(ra, fa))
        if abs(a - b) > TOLERANCE["count"]
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--render", action="store_true", help="rewrite the README's blocks from the record; no run")
    mode.add_argument("--check", action="store_true", help="run the demo; exit 1 naming each fact that drifted")
    args = parser.parse_args(argv)
    if args.render:
        README.write_text(render(README.read_text(encoding="utf-8"), Facts.load()), encoding="utf-8")
        return 0
    with tempfile.TemporaryDirectory(prefix="walkthrough-") as tmp:
        pictures = Path(tmp) / "pictures"
        pictures.mkdir()
        facts = run(Path(tmp), pictures)
        if args.check:
            problems = compare(Facts.load(), facts)
            for line in problems:
                print(f"drifted: {line} (run python tools/walkthrough.py)", file=sys.stderr)
            return 1 if problems else 0
        for name, target in IMAGES.items():
            shutil.copyfile(pictures / name, target)
    facts.save()
    README.write_text(render(README.read_text(encoding="utf-8"), facts), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
