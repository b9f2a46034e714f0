r"""``report.md``: a model version described for people, in GitHub-flavoured Markdown (``write_report``, ``per_class``).

The report is what a person opens first in a version directory, on disk or
on a code-hosting site: whether the version was promoted and why, the data
it was trained on (rows per split and class, shards, the vectorizer choice
and the numbers behind it, rejected rows, appends), the model and its
options, the metrics, per-class precision / recall / F1 from the test
confusion matrix, and the two pictures ``train.plots`` draws beside it.
Everything in it is also in the version's JSON files; the report only
arranges it, in sections; every value goes through ``train.markdown``:
missing numbers (no validation rows) read "n/a", and class names and other
free text are escaped, so a ``|`` or ``*`` in a label cannot break a table
or turn into emphasis, and a control character (an ANSI escape, ``\r``, a
newline) shows as its escape (``streamtrain.visible``) instead of reaching a
terminal that prints the file or breaking a row.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from streamtrain.dataset.manifest import Manifest
from streamtrain.dataset.records import Choice
from streamtrain.fs.atomic import atomic_write_text
from streamtrain.train import markdown as md
from streamtrain.train.metrics import Metrics
from streamtrain.train.plots import CONFUSION_NAME, TRAINING_NAME
from streamtrain.train.tune import Selection

REPORT_NAME = "report.md"
SHAPE_OPTIONS = {"linear": (), "mlp": ("units", "layers"), "sepcnn": ("blocks", "filters", "embedding_dim")}
COMMON_OPTIONS = (
    "dropout",
    "learning_rate",
    "batch_size",
    "epochs",
    "patience",
    "min_delta",
    "seed",
    "warm_start_from",
)
HISTORY_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy")


def per_class(confusion: Sequence[Sequence[int]], labels: Sequence[str]) -> list[dict]:
    """Precision, recall, F1 and support (test rows) of every class, in label order; 0.0 where undefined.

    Args:
        confusion: ``confusion[i][j]`` counts rows of true class ``i`` predicted as ``j``.
        labels: the class names, in label order.

    Returns:
        Per class: ``label``, ``precision``, ``recall``, ``f1``, ``support`` and ``predicted`` (the column
        total: how often the model chose the class).

    Raises:
        ValueError: ``confusion`` is not ``len(labels)`` square.
    """
    n = len(labels)
    rows = [[int(c) for c in row] for row in confusion]
    if len(rows) != n or any(len(row) != n for row in rows):
        raise ValueError(f"a confusion matrix of {n} classes must be {n}x{n}")
    out = []
    for i, label in enumerate(labels):
        right = rows[i][i]
        support = sum(rows[i])
        predicted = sum(row[i] for row in rows)
        precision = right / predicted if predicted else 0.0
        recall = right / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out.append(
            {
                "label": label,
                "precision": precision,
                "recall": recall,
                "f1": f1,
                "support": support,
                "predicted": predicted,
            }
        )
    return out


def write_report(directory: str | os.PathLike[str], **parts: Any) -> None:
    """Write ``report.md`` into ``directory`` (a version being built), by an atomic rename.

    Args:
        directory: the version's directory.
        **parts: ``render_report``'s arguments.
    """
    atomic_write_text(Path(directory) / REPORT_NAME, render_report(**parts))


def render_report(
    *,
    metrics: Metrics,
    history: dict,
    config: dict,
    promotion: dict,
    manifest: Manifest,
    version: str,
    selection: Selection | None = None,
) -> str:
    """The text of ``report.md``.

    Args:
        metrics: the version's ``metrics.json``.
        history: its ``history.json`` (per validation round).
        config: its ``fit_config.json``.
        promotion: its ``promotion.json``.
        manifest: the dataset's manifest.
        version: the version's id.
        selection: its model selection (None: not recorded).

    Returns:
        The Markdown, section by section.
    """
    labels = list(metrics.classes or manifest.labels)
    parts = [
        _title(version, metrics, config, promotion),
        _data(config, manifest),
        _model(config, manifest),
        _selection(selection),
        _metrics(metrics, history),
        _per_class(metrics, labels),
        _promotion(promotion),
        _pictures(history),
    ]
    return "\n".join(parts)


# --- sections ---


def _title(version: str, metrics: Metrics, config: dict, promotion: dict) -> str:
    if promotion.get("promoted"):
        state = "promoted to current" + (" (forced)" if promotion.get("forced") else "")
    else:
        state = f"not promoted (current stays {md.code(promotion.get('current_version') or 'nothing')})"
    model = config.get("model") or metrics.model or "model"
    encoding = config.get("encoding")
    summary = (
        f"**Test accuracy {md.num(metrics.test_accuracy)}** on {md.count(metrics.test_rows)} rows "
        f"({len(metrics.classes or [])} classes); {md.esc(model)}"
        + (f" on {md.esc(encoding)} features" if encoding else "")
        + f", {_epoch(metrics.epochs)} epoch(s), best epoch {_epoch(metrics.best_epoch)}."
    )
    return f"# Model version {md.code(version)}: {state}\n\n{summary}\n"


def _data(config: dict, manifest: Manifest) -> str:
    stats = manifest.stats
    rows = stats.rows
    features = f"{manifest.encoding}: {md.count(manifest.n_features)} features"
    if manifest.encoding == "sequence":
        features = (
            f"sequence: token ids below {md.count(manifest.n_features)}, "
            f"sequences of {md.count(manifest.sequence_length)}"
        )
    lines = [
        "## Data\n",
        md.table(
            ["", ""],
            [
                ["Dataset", md.code(config.get("data", md.NA))],
                ["Rows", ", ".join(f"{md.esc(split)} {md.count(n)}" for split, n in rows.items()) or md.NA],
                ["Classes", str(len(manifest.labels))],
                ["Encoding", features],
                ["Shards", f"{len(manifest.shards)} {md.esc(manifest.shard_format)} shard(s)"],
                ["Rejected rows", _rejected(stats.rejected.to_json())],
                ["Appends", str(len(manifest.appends)) if manifest.appends else "none"],
            ],
        ),
        "### Vectorizer choice\n",
        _choice(manifest.choice),
        "### Rows per class\n",
        _rows_per_class(manifest),
    ]
    if manifest.appends:
        lines += ["### Appends\n", _appends([a.to_json() for a in manifest.appends])]
    return "\n".join(lines)


def _choice(record: Choice | None) -> str:
    """The vectorizer choice as a sentence: ``Choice``'s own wording, as inspect and prepare's log line say it."""
    if record is None:
        return "Not recorded (a dataset prepared before the choice was recorded)."
    return (
        f"Requested **{md.esc(record.requested)}**, chosen **{md.esc(record.chosen)}** ({md.esc(record.reason())}): "
        f"{md.esc(record.numbers())}.\n"
    )


def _rows_per_class(manifest: Manifest) -> str:
    per = manifest.stats.rows_per_class
    splits = list(per)
    if not splits:
        return "Not recorded.\n"
    body = [
        [md.esc(label)] + [md.count(md.at(per[split], i)) for split in splits]
        for i, label in enumerate(manifest.labels)
    ]
    body.append(["**total**"] + [f"**{md.count(sum(int(n) for n in per[split]))}**" for split in splits])
    return md.table(["Class", *map(md.esc, splits)], body, align="l" + "r" * len(splits))


def _appends(appends: list[dict]) -> str:
    body = []
    for entry in appends:
        rows = entry.get("rows") or {}
        drift = entry.get("drift") or {}
        share, baseline = drift.get("outside_share"), drift.get("baseline")
        body.append(
            [
                md.esc(entry.get("night", md.NA)),
                md.esc(entry.get("at", md.NA)),
                " / ".join(md.count(n) for n in rows.values()) or md.NA,
                md.count((entry.get("rejected") or {}).get("rows")),
                md.count(entry.get("shards")),
                f"{md.pct(share)} (baseline {md.pct(baseline)})" if drift else md.NA,
            ]
        )
    splits = " / ".join(appends[-1].get("rows") or {}) or "rows"
    return md.table(["Night", "At", f"Rows ({splits})", "Rejected", "Shards", "Outside the vocabulary"], body, "llrrrl")


def _model(config: dict, manifest: Manifest) -> str:
    family = config.get("model") or md.NA
    keys = (*SHAPE_OPTIONS.get(family, tuple(k for ks in SHAPE_OPTIONS.values() for k in ks)), *COMMON_OPTIONS)
    body = [["family", f"**{md.esc(family)}**"]] + [[k, md.cell(config.get(k))] for k in keys if k in config]
    return "## Model\n\n" + md.table(["Option", "Value"], body)


def _selection(selection: Selection | None) -> str:
    """The model selection: every trial, its validation accuracy, rounds and seconds, and the winner."""
    if selection is None:
        return ""
    out = ["## Model selection", ""]
    if selection.reused_from is not None:
        out.append(
            f"Reused the selection of version {md.code(selection.reused_from)}: {md.esc(selection.chosen.name)} "
            "(`--retune` searches again)."
        )
        return "\n".join(out) + "\n"
    budget = "" if selection.budget_seconds is None else f" within a budget of {selection.budget_seconds:.0f} s"
    out.append(
        f"Candidates trained in the prior's order{budget}, a later one at most the leader's rounds unless it beats "
        "the leader's validation loss; the lowest validation loss wins."
    )
    out.append("")
    body = []
    for i, t in enumerate(selection.trials):
        body.append(
            [
                md.esc(t.candidate.name) + (" **(chosen)**" if i == selection.winner else ""),
                md.num(t.val_loss),
                md.num(t.val_accuracy),
                str(t.rounds),
                str(t.best_round),
                f"{t.seconds:.1f}",
                md.esc(t.ended_by),
            ]
        )
    out.append(
        md.table(
            ["candidate", "val loss", "val accuracy", "rounds", "best round", "seconds", "ended by"], body, "lrrrrrl"
        )
    )
    return "\n".join(out) + "\n"


def _validating(metrics: Metrics) -> str:
    """The share of the training time its validations took, as ``(N% validating)``; empty when unrecorded."""
    spent, total = metrics.validation_seconds, metrics.train_seconds
    if not spent or not total:
        return ""
    return f" ({100 * spent / total:.0f}% validating)"


def _metrics(metrics: Metrics, history: dict) -> str:
    speed = metrics.train_samples_per_second
    table = md.table(
        ["", "Validation", "Test"],
        [
            ["Accuracy", md.num(metrics.val_accuracy), md.num(metrics.test_accuracy)],
            ["Loss", md.num(metrics.val_loss), md.num(metrics.test_loss)],
            ["Rows", md.count(metrics.val_rows), md.count(metrics.test_rows)],
        ],
        align="lrr",
    )
    facts = md.table(
        ["", ""],
        [
            ["Training rows", md.count(metrics.train_rows)],
            ["Epochs run", _epoch(metrics.epochs)],
            ["Best epoch", _epoch(metrics.best_epoch)],
            ["Validations per epoch", md.count(metrics.validations_per_epoch or 1)],
            *_sampled(metrics),
            ["Training time", f"{md.num(metrics.train_seconds, 1)} s{_validating(metrics)}"],
            ["Training speed", f"{md.count(speed)} samples/s" if md.finite(speed) else md.NA],
        ],
    )
    per_epoch = int(metrics.validations_per_epoch or 1)
    best = metrics.best_validation
    return "## Metrics\n\n" + table + "\n" + facts + "\n" + _rounds(history, best, per_epoch)


def _epoch(value: Any) -> str:
    """An epoch count or position, which validation rounds make fractional (1.25)."""
    return f"{value:g}" if isinstance(value, int | float) and md.finite(value) else md.NA


def _rounds(history: dict, best: int | None, per_epoch: int = 1) -> str:
    """A row per validation round (``per_epoch`` of them per epoch); ``best``: the 1-based round kept."""
    keys = [k for k in HISTORY_KEYS if history.get(k)] + sorted(
        k for k in history if k not in HISTORY_KEYS and history.get(k)
    )
    rounds = max((len(history[k]) for k in keys), default=0)
    if not rounds:
        return "No per-epoch history was recorded.\n"
    body = []
    for r in range(rounds):
        at = f"{(r + 1) / per_epoch:g}"  # the epoch the round ends in
        mark = f"**{at}** (best)" if best == r + 1 else at
        body.append([mark] + [md.num(md.at(history[k], r)) for k in keys])
    title = "### Per epoch" if per_epoch == 1 else f"### Per validation ({per_epoch} per epoch)"
    return f"{title}\n\n" + md.table(["Epoch", *map(md.esc, keys)], body, align="r" * (len(keys) + 1))


def _per_class(metrics: Metrics, labels: list[str]) -> str:
    confusion = metrics.test_confusion
    if not confusion:
        return "## Per class (test)\n\nNo test confusion matrix was recorded.\n"
    scores = per_class(confusion, labels)
    body = [
        [md.esc(s["label"]), md.num(s["precision"]), md.num(s["recall"]), md.num(s["f1"]), md.count(s["support"])]
        for s in scores
    ]
    n = len(scores) or 1
    body.append(
        [
            "*macro average*",
            *(f"*{md.num(sum(s[k] for s in scores) / n)}*" for k in ("precision", "recall", "f1")),
            f"*{md.count(sum(s['support'] for s in scores))}*",
        ]
    )
    empty = [s["label"] for s in scores if not s["support"]]
    note = (
        f"\nNo test rows of {', '.join(md.esc(x) for x in empty)}: recall and F1 are 0 there by convention.\n"
        if empty
        else ""
    )
    return (
        "## Per class (test)\n\nPrecision: of the rows predicted as the class, the share that were. "
        "Recall: of the class's rows, the share found. Support: the class's test rows.\n\n"
        + md.table(["Class", "Precision", "Recall", "F1", "Support"], body, align="lrrrr")
        + note
    )


def _promotion(promotion: dict) -> str:
    promoted = promotion.get("promoted")
    decision = "**yes**" if promoted else "**no**"
    if promotion.get("forced"):
        decision += " (--force)"
    body = [
        ["Promoted", decision],
        ["Reason", md.esc(promotion.get("reason") or md.NA)],
        ["Compared on", md.esc(promotion.get("compared_on") or md.NA)],
        ["Candidate accuracy", md.num(promotion.get("candidate_accuracy"))],
        ["Current accuracy", md.num(promotion.get("current_accuracy"))],
        ["Floor (majority-class rate)", _floor(promotion.get("floor"))],
        [
            "Current version (before)",
            md.code(promotion["current_version"]) if promotion.get("current_version") else md.NA,
        ],
        ["Allowed regression", md.num(promotion.get("max_regression"))],
        ["Decided at", md.esc(promotion.get("at") or md.NA)],
    ]
    return "## Promotion\n\n" + md.table(["", ""], body)


def _floor(floor: dict | None) -> str:
    """The promotion floor: the validation split's majority-class rate, its class, and whether it was beaten."""
    if not floor:
        return md.NA
    beaten = "beaten" if floor.get("beaten") else "**not beaten**"
    return f"{md.num(floor.get('majority_class_rate'))} ({md.esc(floor.get('majority_class'))}): {beaten}"


def _pictures(history: dict) -> str:
    kept = (
        "the dashed line is the best epoch (lowest validation loss), whose weights the model keeps"
        if history.get("val_loss")
        else "no validation rows, so no early stopping: the dashed line is the last epoch, whose weights are kept"
    )
    return (
        "## Pictures\n\n"
        f"![training]({TRAINING_NAME})\n\n"
        f"Loss and accuracy per epoch, training and validation; {kept}.\n\n"
        f"![confusion]({CONFUSION_NAME})\n\n"
        "Test rows: true class down, predicted class across; colour is the share of the true class's rows "
        "(grey: a class with no test rows), text the count.\n"
    )


def _sampled(metrics: Metrics) -> list[list[str]]:
    """A row for the validation sample, when each validation during training scored fewer rows than the split."""
    sample, rows = metrics.validation_sample_rows, metrics.val_rows
    if not (isinstance(sample, int) and isinstance(rows, int)) or sample >= rows:
        return []
    return [["Rows per validation", f"{md.count(sample)} of {md.count(rows)} (evenly spaced blocks)"]]


def _rejected(rejected: dict | None) -> str:
    if not rejected or (not rejected.get("rows") and not rejected.get("lost_bytes")):
        return "none"
    reasons = ", ".join(f"{md.esc(r)} {md.count(n)}" for r, n in (rejected.get("by_reason") or {}).items())
    text = f"{md.count(rejected.get('rows'))}" + (f" ({reasons})" if reasons else "")
    if rejected.get("lost_bytes"):
        text += (
            f"; about {md.count(rejected.get('estimated_lost_rows'))} more lost in "
            f"{md.count(rejected['lost_bytes'])} unreadable bytes"
        )
    return text
