"""``report.md``: a model version described for people, in GitHub-flavoured Markdown (``write_report``, ``per_class``).

The report is what a person opens first in a version directory, on disk or
on a code-hosting site: whether the version was promoted and why, the data
it was trained on (rows per split and class, shards, the vectorizer choice
and the numbers behind it, rejected rows, appends), the model and its
options, the metrics, per-class precision / recall / F1 from the test
confusion matrix, and the two pictures ``train.plots`` draws beside it.
Everything in it is also in the version's JSON files; the report only
arranges it. Missing numbers (no validation rows) read "n/a". Class names
and other free text are escaped, so a ``|`` or ``*`` in a label cannot
break a table or turn into emphasis, and a control character (an ANSI
escape, ``\\r``, a newline) shows as its escape (``streamtrain.visible``)
instead of reaching a terminal that prints the file or breaking a row.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from streamtrain.dataset.manifest import Manifest
from streamtrain.dataset.records import part_json
from streamtrain.fs.atomic import atomic_write_text
from streamtrain.train.plots import CONFUSION_NAME, TRAINING_NAME
from streamtrain.train.tune import Selection
from streamtrain.visible import visible

REPORT_NAME = "report.md"
NA = "n/a"
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
_SPECIAL = set("\\`*_[]<>|~&#!")  # characters that could start Markdown or HTML inside a line of text


def per_class(confusion: Sequence[Sequence[int]], labels: Sequence[str]) -> list[dict]:
    """Precision, recall, F1 and support (test rows) of every class, in label order; 0.0 where undefined.

    ``confusion[i][j]`` counts rows of true class ``i`` predicted as ``j``.
    ``predicted`` is the column total: how often the model chose the class.
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
    """Write ``report.md`` into ``directory`` (a version being built): ``render_report(**parts)``."""
    atomic_write_text(Path(directory) / REPORT_NAME, render_report(**parts))


def render_report(
    *,
    metrics: dict,
    history: dict,
    config: dict,
    promotion: dict,
    manifest: Manifest,
    version: str,
    selection: Selection | None = None,
) -> str:
    """The text of ``report.md``."""
    labels = list(metrics.get("classes") or manifest.labels)
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


def _title(version: str, metrics: dict, config: dict, promotion: dict) -> str:
    if promotion.get("promoted"):
        state = "promoted to current" + (" (forced)" if promotion.get("forced") else "")
    else:
        state = f"not promoted (current stays {_code(promotion.get('current_version') or 'nothing')})"
    model = config.get("model") or metrics.get("model") or "model"
    encoding = config.get("encoding")
    summary = (
        f"**Test accuracy {_num(metrics.get('test_accuracy'))}** on {_int(metrics.get('test_rows'))} rows "
        f"({len(metrics.get('classes') or [])} classes); {_esc(model)}"
        + (f" on {_esc(encoding)} features" if encoding else "")
        + f", {_epoch(metrics.get('epochs'))} epoch(s), best epoch {_epoch(metrics.get('best_epoch'))}."
    )
    return f"# Model version {_code(version)}: {state}\n\n{summary}\n"


def _data(config: dict, manifest: Manifest) -> str:
    stats = manifest.stats
    rows = stats.rows
    features = f"{manifest.encoding}: {_int(manifest.n_features)} features"
    if manifest.encoding == "sequence":
        features = (
            f"sequence: token ids below {_int(manifest.n_features)}, sequences of {_int(manifest.sequence_length)}"
        )
    lines = [
        "## Data\n",
        _table(
            ["", ""],
            [
                ["Dataset", _code(config.get("data", NA))],
                ["Rows", ", ".join(f"{_esc(split)} {_int(n)}" for split, n in rows.items()) or NA],
                ["Classes", str(len(manifest.labels))],
                ["Encoding", features],
                ["Shards", f"{len(manifest.shards)} {_esc(manifest.shard_format)} shard(s)"],
                ["Rejected rows", _rejected(stats.rejected.to_json())],
                ["Appends", str(len(manifest.appends)) if manifest.appends else "none"],
            ],
        ),
        "### Vectorizer choice\n",
        _choice(part_json(manifest.choice)),
        "### Rows per class\n",
        _rows_per_class(manifest),
    ]
    if manifest.appends:
        lines += ["### Appends\n", _appends([a.to_json() for a in manifest.appends])]
    return "\n".join(lines)


def _choice(choice: dict) -> str:
    if not choice:
        return "Not recorded (a dataset prepared before the choice was recorded)."
    ratio = choice.get("samples_per_word")
    threshold = choice.get("threshold")
    requested, chosen = choice.get("requested"), choice.get("chosen")
    why = (
        "forced by --vectorizer"
        if requested not in (None, "auto")
        else (
            f"S/W {'≥' if ratio is None or (threshold is not None and ratio >= threshold) else '<'} "
            f"{_num(threshold, 0)}: the guide's rule gives sequences at or above it, n-grams below"
        )
    )
    bakeoff = choice.get("bakeoff")
    if bakeoff:  # the rule said sequences under auto: both families were measured on a sample
        why = (
            f"the rule said {_esc(choice.get('rule') or NA)}; a bake-off on {_int(bakeoff.get('train_rows'))} "
            f"sample rows decided: {_esc(bakeoff.get('why') or NA)}"
        )
    return f"Requested **{_esc(requested or NA)}**, chosen **{_esc(chosen or NA)}** ({why}).\n\n" + _table(
        ["Samples (S)", "Median words per sample (W)", "S/W", "Threshold"],
        [
            [
                _int(choice.get("samples")),
                _num(choice.get("median_words_per_sample"), 1),
                "∞" if ratio is None and choice.get("samples") is not None else _num(ratio, 1),
                _num(threshold, 0),
            ]
        ],
        align="rrrr",
    )


def _rows_per_class(manifest: Manifest) -> str:
    per = manifest.stats.rows_per_class
    splits = list(per)
    if not splits:
        return "Not recorded.\n"
    body = [[_esc(label)] + [_int(_at(per[split], i)) for split in splits] for i, label in enumerate(manifest.labels)]
    body.append(["**total**"] + [f"**{_int(sum(int(n) for n in per[split]))}**" for split in splits])
    return _table(["Class", *map(_esc, splits)], body, align="l" + "r" * len(splits))


def _appends(appends: list[dict]) -> str:
    body = []
    for entry in appends:
        rows = entry.get("rows") or {}
        drift = entry.get("drift") or {}
        share, baseline = drift.get("outside_share"), drift.get("baseline")
        body.append(
            [
                _esc(entry.get("night", NA)),
                _esc(entry.get("at", NA)),
                " / ".join(_int(n) for n in rows.values()) or NA,
                _int((entry.get("rejected") or {}).get("rows")),
                _int(entry.get("shards")),
                f"{_pct(share)} (baseline {_pct(baseline)})" if drift else NA,
            ]
        )
    splits = " / ".join(appends[-1].get("rows") or {}) or "rows"
    return _table(["Night", "At", f"Rows ({splits})", "Rejected", "Shards", "Outside the vocabulary"], body, "llrrrl")


def _model(config: dict, manifest: Manifest) -> str:
    family = config.get("model") or NA
    keys = (*SHAPE_OPTIONS.get(family, tuple(k for ks in SHAPE_OPTIONS.values() for k in ks)), *COMMON_OPTIONS)
    body = [["family", f"**{_esc(family)}**"]] + [[k, _value(config.get(k))] for k in keys if k in config]
    return "## Model\n\n" + _table(["Option", "Value"], body)


def _selection(selection: Selection | None) -> str:
    """The model selection: every trial, its validation accuracy, rounds and seconds, and the winner."""
    if selection is None:
        return ""
    out = ["## Model selection", ""]
    if selection.reused_from is not None:
        out.append(
            f"Reused the selection of version {_code(selection.reused_from)}: {_esc(selection.chosen.name)} "
            "(`--retune` searches again)."
        )
        return "\n".join(out) + "\n"
    budget = "" if selection.budget_seconds is None else f" within a budget of {selection.budget_seconds:.0f} s"
    out.append(f"Candidates trained in the prior's order{budget}; the highest validation accuracy wins.")
    out.append("")
    body = []
    for i, t in enumerate(selection.trials):
        state = t.skipped or ("cut by the budget" if t.cut else "early stopping")
        body.append(
            [
                _esc(t.candidate.name) + (" **(chosen)**" if i == selection.winner else ""),
                _num(t.val_accuracy),
                str(t.rounds),
                str(t.best_round),
                f"{t.seconds:.1f}",
                _esc(state),
            ]
        )
    out.append(_table(["candidate", "val accuracy", "rounds", "best round", "seconds", "ended by"], body, "lrrrrl"))
    return "\n".join(out) + "\n"


def _metrics(metrics: dict, history: dict) -> str:
    speed = metrics.get("train_samples_per_second")
    table = _table(
        ["", "Validation", "Test"],
        [
            ["Accuracy", _num(metrics.get("val_accuracy")), _num(metrics.get("test_accuracy"))],
            ["Loss", _num(metrics.get("val_loss")), _num(metrics.get("test_loss"))],
            ["Rows", _int(metrics.get("val_rows")), _int(metrics.get("test_rows"))],
        ],
        align="lrr",
    )
    facts = _table(
        ["", ""],
        [
            ["Training rows", _int(metrics.get("train_rows"))],
            ["Epochs run", _epoch(metrics.get("epochs"))],
            ["Best epoch", _epoch(metrics.get("best_epoch"))],
            ["Validations per epoch", _int(metrics.get("validations_per_epoch", 1))],
            *_sampled(metrics),
            ["Training time", f"{_num(metrics.get('train_seconds'), 1)} s"],
            ["Training speed", f"{_int(speed)} samples/s" if _finite(speed) else NA],
        ],
    )
    per_epoch = int(metrics.get("validations_per_epoch") or 1)
    best = metrics.get("best_validation", metrics.get("best_epoch"))
    return "## Metrics\n\n" + table + "\n" + facts + "\n" + _epochs(history, best, per_epoch)


def _epoch(value) -> str:
    """An epoch count or position, which validation rounds make fractional (1.25)."""
    return f"{value:g}" if isinstance(value, int | float) and _finite(value) else NA


def _epochs(history: dict, best: int | None, per_epoch: int = 1) -> str:
    """A row per validation round (``per_epoch`` of them per epoch); ``best``: the 1-based round kept."""
    keys = [k for k in HISTORY_KEYS if history.get(k)] + sorted(
        k for k in history if k not in HISTORY_KEYS and history.get(k)
    )
    epochs = max((len(history[k]) for k in keys), default=0)
    if not epochs:
        return "No per-epoch history was recorded.\n"
    body = []
    for e in range(epochs):
        at = f"{(e + 1) / per_epoch:g}"
        mark = f"**{at}** (best)" if best == e + 1 else at
        body.append([mark] + [_num(_at(history[k], e)) for k in keys])
    title = "### Per epoch" if per_epoch == 1 else f"### Per validation ({per_epoch} per epoch)"
    return f"{title}\n\n" + _table(["Epoch", *map(_esc, keys)], body, align="r" * (len(keys) + 1))


def _per_class(metrics: dict, labels: list[str]) -> str:
    confusion = metrics.get("test_confusion")
    if not confusion:
        return "## Per class (test)\n\nNo test confusion matrix was recorded.\n"
    scores = per_class(confusion, labels)
    body = [
        [_esc(s["label"]), _num(s["precision"]), _num(s["recall"]), _num(s["f1"]), _int(s["support"])] for s in scores
    ]
    n = len(scores) or 1
    body.append(
        [
            "*macro average*",
            *(f"*{_num(sum(s[k] for s in scores) / n)}*" for k in ("precision", "recall", "f1")),
            f"*{_int(sum(s['support'] for s in scores))}*",
        ]
    )
    empty = [s["label"] for s in scores if not s["support"]]
    note = (
        f"\nNo test rows of {', '.join(_esc(x) for x in empty)}: recall and F1 are 0 there by convention.\n"
        if empty
        else ""
    )
    return (
        "## Per class (test)\n\nPrecision: of the rows predicted as the class, the share that were. "
        "Recall: of the class's rows, the share found. Support: the class's test rows.\n\n"
        + _table(["Class", "Precision", "Recall", "F1", "Support"], body, align="lrrrr")
        + note
    )


def _promotion(promotion: dict) -> str:
    promoted = promotion.get("promoted")
    decision = "**yes**" if promoted else "**no**"
    if promotion.get("forced"):
        decision += " (--force)"
    body = [
        ["Promoted", decision],
        ["Reason", _esc(promotion.get("reason") or NA)],
        ["Compared on", _esc(promotion.get("compared_on") or NA)],
        ["Candidate accuracy", _num(promotion.get("candidate_accuracy"))],
        ["Current accuracy", _num(promotion.get("current_accuracy"))],
        ["Floor (majority-class rate)", _floor(promotion.get("floor"))],
        ["Current version (before)", _code(promotion["current_version"]) if promotion.get("current_version") else NA],
        ["Allowed regression", _num(promotion.get("max_regression"))],
        ["Decided at", _esc(promotion.get("at") or NA)],
    ]
    return "## Promotion\n\n" + _table(["", ""], body)


def _floor(floor: dict | None) -> str:
    """The promotion floor: the validation split's majority-class rate, its class, and whether it was beaten."""
    if not floor:
        return NA
    beaten = "beaten" if floor.get("beaten") else "**not beaten**"
    return f"{_num(floor.get('majority_class_rate'))} ({_esc(floor.get('majority_class'))}): {beaten}"


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


# --- formatting ---


def _table(header: list[str], body: list[list[str]], align: str = "") -> str:
    """A GFM table; ``align`` is one of l/r/c per column (default: left)."""
    rule = {"l": "---", "r": "---:", "c": ":---:"}
    aligns = [rule[a] for a in align.ljust(len(header), "l")]
    lines = [_row(header), _row(aligns)] + [_row(r) for r in body]
    return "\n".join(lines) + "\n"


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(c if c else " " for c in cells) + " |"


def _esc(value) -> str:
    """Text safe inside a line and a table cell: control characters as escapes (``visible``), Markdown/HTML
    characters backslash-escaped, runs of spaces as one."""
    text = " ".join(visible(str(value)).split())
    return "".join("\\" + ch if ch in _SPECIAL else ch for ch in text)


def _code(value) -> str:
    """An inline code span (``|`` still escaped: GFM splits table cells before code spans)."""
    text = " ".join(visible(str(value)).split()).replace("|", "\\|")
    fence = "``" if "`" in text else "`"
    return f"{fence} {text} {fence}" if fence == "``" else f"`{text}`"


def _finite(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _num(value, digits: int = 4) -> str:
    return f"{value:.{digits}f}" if _finite(value) else NA


def _sampled(metrics: dict) -> list[list[str]]:
    """A row for the validation sample, when each validation during training scored fewer rows than the split."""
    sample, rows = metrics.get("validation_sample_rows"), metrics.get("val_rows")
    if not (isinstance(sample, int) and isinstance(rows, int)) or sample >= rows:
        return []
    return [["Rows per validation", f"{_int(sample)} of {_int(rows)} (evenly spaced blocks)"]]


def _int(value) -> str:
    """A count with thousands separators (a float is rounded); n/a when missing."""
    if isinstance(value, bool) or not _finite(value):
        return NA
    return f"{round(value):,}"


def _pct(value) -> str:
    return f"{100 * value:.2f}%" if _finite(value) else NA


def _value(value) -> str:
    if value is None:
        return "none"
    if isinstance(value, float):
        return f"{value:g}"
    return _code(value) if isinstance(value, str) else _esc(value)


def _at(values: Sequence, i: int):
    return values[i] if i < len(values) else None


def _rejected(rejected: dict | None) -> str:
    if not rejected or (not rejected.get("rows") and not rejected.get("lost_bytes")):
        return "none"
    reasons = ", ".join(f"{_esc(r)} {_int(n)}" for r, n in (rejected.get("by_reason") or {}).items())
    text = f"{_int(rejected.get('rows'))}" + (f" ({reasons})" if reasons else "")
    if rejected.get("lost_bytes"):
        text += (
            f"; about {_int(rejected.get('estimated_lost_rows'))} more lost in "
            f"{_int(rejected['lost_bytes'])} unreadable bytes"
        )
    return text
