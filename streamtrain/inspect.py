"""inspect: what a dataset or a model directory holds, from its JSON records alone (``InspectOptions``, ``inspect``).

A dataset directory (``manifest.json``): its splits (rows, shards, bytes),
class balance per split, the vectorizer choice and the numbers behind it,
rejected rows by reason, appends (night, date, rows, drift), the validation
sample, and for n-grams the top features of each class as readable n-gram
strings (``feature_names.json``, ``vectorize.ngram_names``).

A model directory (``fs.versions``, or one written by streamtrain 0.2): its
versions oldest first, which is current, each one's metrics (test and
validation accuracy, epochs, training rows), date (from its id), promotion
decision and warm start, the versions still being trained (or
interrupted) with their last checkpoint, and a promotion step a killed run
left for the next fit or promote to complete (``train.promote``).

``inspect`` returns one JSON-ready dict (labels exactly as recorded),
``render_text`` turns it into aligned plain-text tables for people, with
control characters in labels and other free text shown as escapes
(``visible``: ``\\x1b``, ``\\r``, ``\\n``), so data cannot drive the terminal
or break a table's rows. Only JSON files are read (never a
shard or a model, never TensorFlow), so it is fast on any size; it checks
nothing but the feature names file it shows (``streamtrain verify`` checks
everything).
"""

from __future__ import annotations

import json
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streamtrain.dataset.manifest import MANIFEST_NAME, Manifest
from streamtrain.errors import DataError, UsageError
from streamtrain.fs.versions import TRAINING, Versions
from streamtrain.options import option
from streamtrain.train import modeldir, tune
from streamtrain.train.promote import pending
from streamtrain.vectorize import ngram_names
from streamtrain.vectorize.split import SPLIT_NAMES
from streamtrain.visible import visible

CHECKPOINT_STATE = "state.json"  # train.checkpoint.STATE_NAME (that module imports Keras)
_ID_TIME = re.compile(r"^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z")


@dataclass
class InspectOptions:
    path: str = option(positional=True, path=True, metavar="DIR", help="a dataset directory or a model directory")
    json: bool = option(False, help="print one JSON document instead of text tables")


def inspect(opts: InspectOptions) -> dict:
    """What the dataset or model directory ``opts.path`` holds; ``UsageError`` when it is neither."""
    root = Path(opts.path)
    if not root.is_dir():
        raise UsageError(f"not a directory: {root}")
    if (root / MANIFEST_NAME).exists():
        return _dataset(root)
    if Versions(root).exists() or (root / modeldir.CHECKSUMS_NAME).exists() or (root / modeldir.MODEL_NAME).exists():
        return _model(root)
    raise UsageError(f"{root} is neither a dataset directory ({MANIFEST_NAME}) nor a model directory")


# --- datasets ---------------------------------------------------------------------------------------------------


def _dataset(root: Path) -> dict:
    manifest = Manifest.load(root)
    splits = {}
    for split in SPLIT_NAMES:
        shards = manifest.shards_for(split)
        splits[split] = {
            "rows": sum(s.rows for s in shards),
            "shards": len(shards),
            "bytes": sum(s.bytes for s in shards),
        }
    total = {key: sum(s[key] for s in splits.values()) for key in ("rows", "shards", "bytes")}
    balance = {}
    for split, counts in manifest.stats.get("rows_per_class", {}).items():
        n = sum(counts)
        balance[split] = {
            label: {"rows": int(c), "share": round(c / n, 4) if n else None}
            for label, c in zip(manifest.labels, counts)
        }
    rejected = manifest.stats.get("rejected", {})
    sample = manifest.val_sample
    return {
        "path": str(root),
        "kind": "dataset",
        "encoding": manifest.encoding,
        "features": manifest.n_features,
        "sequence_length": manifest.sequence_length,
        "classes": manifest.labels,
        "shard_format": manifest.shard_format,
        "created": {k: manifest.created.get(k) for k in ("at", "tool")},
        "inputs": len(manifest.sources),
        "splits": splits,
        "total": total,
        "class_balance": balance,
        "choice": manifest.choice,
        "rejected": {
            "rows": int(rejected.get("rows", 0)),
            "by_reason": rejected.get("by_reason", {}),
            "estimated_lost_rows": int(rejected.get("estimated_lost_rows", 0)),
        },
        "coverage": manifest.stats.get("coverage", {}).get("outside_share"),
        "appends": [_append(a) for a in manifest.appends],
        "val_sample": {k: sample[k] for k in ("rows", "bytes", "text_bytes") if k in sample} if sample else {},
        "top_features": _top_features(root, manifest),
        "serving": _exportable(root),
    }


def _exportable(root: Path) -> dict:
    """Whether models trained on this dataset get a SavedModel (``serve.export.config_exportable``), and why not."""
    from streamtrain.serve.export import config_exportable
    from streamtrain.vectorize.vectorizer import load_config

    try:
        why = config_exportable(load_config(root)[0])
    except (DataError, OSError, KeyError, TypeError, ValueError) as exc:
        return {"exportable": None, "why": f"vectorizer.json unreadable: {exc}"}
    return {"exportable": why is None, "why": why}


def _append(entry: dict) -> dict:
    drift = entry.get("drift", {})
    return {
        "night": entry.get("night"),
        "date": entry.get("at"),
        "rows": entry.get("rows", {}),
        "rejected": entry.get("rejected", {}).get("rows", 0),
        "drift": drift.get("outside_share"),
        "baseline": drift.get("baseline"),
    }


def _top_features(root: Path, manifest: Manifest) -> dict:
    """Per class its top features as readable strings, and what the names file records; why not, when absent."""
    record = manifest.feature_names
    if manifest.encoding != "ngram":
        return {"status": "none: the features are token ids of a sequence dataset"}
    if not record:
        return {"status": f"none: {ngram_names.FEATURE_NAMES} not recorded (prepared before it was kept)"}
    try:
        doc = ngram_names.load(root, record)
    except DataError as exc:
        return {"status": f"unavailable: {exc} (streamtrain verify checks the dataset)"}
    assert doc is not None, "a recorded names file loads or raises"
    top = doc.get("top_features", {})
    shares = doc.get("shares", [])
    classes = {
        label: [{**f, "share": shares[f["column"]] if f["column"] < len(shares) else None} for f in features]
        for label, features in top.get("classes", {}).items()
    }
    return {
        "status": "ok",
        "rule": top.get("rule"),
        "columns": record.get("columns"),
        "named": record.get("named"),
        "collided": record.get("collided"),
        "sample_texts": record.get("sample", {}).get("texts"),
        "classes": classes,
    }


# --- model directories ------------------------------------------------------------------------------------------


def _read_json(path: Path) -> tuple[dict | None, str | None]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, f"{path.name} missing"
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, f"{path.name} unreadable: {exc}"
    if not isinstance(doc, dict):
        return None, f"{path.name} is not a JSON object"
    return doc, None


def id_date(version: str) -> str | None:
    """The UTC time in a version id, ISO 8601 (``20261121T190501Z-3f2a`` -> ``2026-11-21T19:05:01Z``)."""
    m = _ID_TIME.match(version)
    return f"{m[1]}-{m[2]}-{m[3]}T{m[4]}:{m[5]}:{m[6]}Z" if m else None


def _version(directory: Path, version: str | None, current: bool) -> dict:
    problems = []
    metrics, problem = _read_json(directory / modeldir.METRICS_NAME)
    problems += [problem] if problem else []
    promotion, problem = _read_json(directory / modeldir.PROMOTION_NAME)
    problems += [problem] if problem else []
    config, problem = _read_json(directory / modeldir.CONFIG_NAME)
    problems += [problem] if problem else []
    metrics, promotion, config = metrics or {}, promotion or {}, config or {}
    selection, _ = _read_json(directory / tune.SELECTION_NAME)  # absent before 0.11: no selection ran
    return {
        "id": version,
        "date": id_date(version) if version else None,
        "current": current,
        "metrics": {
            k: metrics.get(k) for k in ("test_accuracy", "val_accuracy", "epochs", "best_epoch", "train_rows", "model")
        },
        "promotion": {k: promotion.get(k) for k in ("promoted", "reason")},
        "warm_start_from": config.get("warm_start_from"),
        "data": config.get("data"),
        "model": config.get("candidate") or config.get("model"),
        "selection": _selection(selection),
        "serving": _serving(directory, promotion),
        "problems": problems,
    }


def _serving(directory: Path, promotion: dict) -> dict:
    """Whether a version holds a SavedModel, and what the serving check before its promotion found."""
    from streamtrain.serve.export import SAVED_MODEL_DIR

    return {
        "saved_model": (directory / SAVED_MODEL_DIR).is_dir(),
        "note": promotion.get("serving"),
        "check": promotion.get("serving_check"),
    }


def _selection(doc: dict | None) -> dict | None:
    """A version's model selection (``selection.json``): what was chosen, from which trials or which version."""
    if doc is None:
        return None
    try:
        chosen = tune.Selection.from_json(doc)
    except (KeyError, TypeError, ValueError):
        return {"problem": "selection.json unreadable"}
    return {
        "chosen": chosen.chosen.name,
        "reused_from": chosen.reused_from,
        "budget_seconds": chosen.budget_seconds,
        "trials": [
            {
                "candidate": t.candidate.name,
                "val_accuracy": t.val_accuracy,
                "seconds": t.seconds,
                "ended_by": t.skipped or ("budget" if t.cut else "early stopping"),
            }
            for t in chosen.trials
        ],
    }


def _training(directory: Path) -> dict:
    version = directory.name.removesuffix(TRAINING)
    checkpoint = directory / modeldir.CHECKPOINT_DIR  # one model: its state here; a model selection: per trial
    trials = [p for p in checkpoint.glob("trial-*") if p.name[6:].isdigit()]
    latest = max(trials, key=lambda p: int(p.name[6:]), default=checkpoint)
    state, _ = _read_json(latest / CHECKPOINT_STATE)
    key, _ = _read_json(directory / modeldir.RESUME_NAME)
    state, key = state or {}, key or {}
    return {
        "id": version,
        "directory": f"{directory.parent.name}/{directory.name}",
        "date": id_date(version),
        "epochs_done": state.get("epochs_done", 0),
        "step": state.get("step", 0),
        "data": key.get("data"),
    }


def _model(root: Path) -> dict:
    if modeldir.is_flat(root):
        return {
            "path": str(root),
            "kind": "model",
            "layout": "flat (written by streamtrain 0.2; the next fit adopts it as the first version)",
            "current": None,
            "versions": [_version(root, None, True)],
            "training": [],
        }
    versions = Versions(root)
    current = versions.current()
    return {
        "path": str(root),
        "kind": "model",
        "layout": "versioned",
        "current": current,
        "versions": [_version(versions.dir / v, v, v == current) for v in versions.complete()],
        "training": [_training(d) for d in versions.training()],
        "pending": _pending(root),
        "current_problem": versions.link_problem(),
    }


def _pending(root: Path) -> dict | None:
    """The interrupted promotion step the next fit or promote completes, if any."""
    try:
        intent = pending(root)
    except DataError as exc:
        return {"problem": str(exc)}
    return None if intent is None else {"version": intent.version, "promote": intent.promote, "by": intent.by}


# --- text -------------------------------------------------------------------------------------------------------


def table(headers: list[str], rows: list[list[Any]], indent: str = "  ") -> list[str]:
    """Fixed-width columns: numbers right-aligned, text left-aligned; the last column is not padded."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    numeric = [bool(rows) and all(_is_number(r[i]) or r[i] is None for r in rows) for i in range(len(headers))]

    def line(values: list[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)]
        return (indent + "  ".join(parts)).rstrip()

    return [line(list(headers)), *(line(r) for r in cells)]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4f}"
    return visible(str(value))


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # not reached


def _percent(share: float | None) -> str:
    return "-" if share is None else f"{100 * share:.1f}%"


def render_text(result: dict) -> str:
    """``inspect``'s result as plain text: a few headed sections of aligned columns."""
    lines = _dataset_text(result) if result["kind"] == "dataset" else _model_text(result)
    return "\n".join(visible(line) for line in lines) + "\n"  # table cells were escaped before their widths


def _dataset_text(r: dict) -> list[str]:
    width = f", sequences of {r['sequence_length']}" if r.get("sequence_length") else ""
    out = [
        f"dataset {r['path']}",
        f"  {r['encoding']} features: {r['features']}{width}; {len(r['classes'])} classes; "
        f"{r['shard_format']} shards; {r['inputs']} input(s)",
        f"  created {r['created'].get('at') or '-'} by {r['created'].get('tool') or '-'}",
        "",
        "splits",
    ]
    rows = [[s, v["rows"], v["shards"], v["bytes"], _size(v["bytes"])] for s, v in r["splits"].items()]
    t = r["total"]
    rows.append(["total", t["rows"], t["shards"], t["bytes"], _size(t["bytes"])])
    out += table(["split", "rows", "shards", "bytes", "size"], rows)
    if r["class_balance"]:
        splits = list(r["class_balance"])
        out += ["", "class balance (rows, share of the split)"]
        rows = []
        for label in r["classes"]:
            row: list[Any] = [label]
            for split in splits:
                cell = r["class_balance"][split].get(label, {})
                row += [cell.get("rows"), _percent(cell.get("share"))]
            rows.append(row)
        headers = ["class"] + [h for s in splits for h in (s, "share")]
        out += table(headers, rows)
    out += ["", "vectorizer choice"]
    out += _choice_lines(r["choice"])
    if r.get("coverage") is not None:
        out.append(f"  training n-gram occurrences outside the features: {_percent(r['coverage'])}")
    serving = r.get("serving") or {}
    if serving.get("exportable"):
        out.append("  serving: models trained on it get a SavedModel that takes raw text")
    elif serving:
        out.append(f"  serving: no SavedModel for models trained on it: {serving['why']}")
    rej = r["rejected"]
    reasons = ", ".join(f"{k} {v}" for k, v in rej["by_reason"].items()) or "none"
    out += ["", f"rejected rows: {rej['rows']} (by reason: {reasons})"]
    if rej.get("estimated_lost_rows"):
        out.append(f"  about {rej['estimated_lost_rows']} more rows lost in unreadable bytes")
    sample = r["val_sample"]
    out.append(
        f"validation sample: {sample['rows']} rows ({sample.get('text_bytes', 0)} bytes of text, "
        f"{sample['bytes']} bytes on disk)"
        if sample
        else "validation sample: none"
    )
    out += ["", f"appends: {len(r['appends'])}"]
    if r["appends"]:
        rows = [
            [
                a["night"],
                a["date"],
                *(a["rows"].get(s, 0) for s in SPLIT_NAMES),
                a["rejected"],
                a["drift"],
                a["baseline"],
            ]
            for a in r["appends"]
        ]
        out += table(["night", "date", *SPLIT_NAMES, "rejected", "drift", "baseline"], rows)
        out.append("  drift: share of training n-gram occurrences (or tokens) outside the features; baseline: at fit")
    out += ["", "top features per class", *_top_lines(r["top_features"])]
    return out


def _choice_lines(choice: dict) -> list[str]:
    if not choice:
        return ["  not recorded"]
    sw = choice.get("samples_per_word")
    forced = choice.get("requested") not in (None, "auto")
    why = (
        f"forced by --vectorizer {choice['requested']}"
        if forced
        else f"the guide's rule: sequence when S/W >= {choice.get('threshold', 0):g}"
    )
    bakeoff = choice.get("bakeoff")
    if bakeoff:
        why = f"the rule said {choice.get('rule')}; a bake-off decided"
    lines = [
        f"  chosen: {choice.get('chosen')} ({why})",
        f"  S = {choice.get('samples')} samples, W = {choice.get('median_words_per_sample')} median words per sample, "
        f"S/W = {'inf' if sw is None else f'{sw:.1f}'}",
    ]
    if bakeoff:
        lines.append(f"  bake-off on {bakeoff.get('train_rows')} sample rows: {bakeoff.get('why')}")
    return lines


def _top_lines(top: dict) -> list[str]:
    if top.get("status") != "ok":
        return [f"  {top.get('status')}"]
    out = textwrap.wrap(f"rule: {top['rule']}", 110, initial_indent="  ", subsequent_indent="        ")
    classes = {visible(label): features for label, features in top["classes"].items()}
    width = max((len(c) for c in classes), default=0)
    marked = False
    for label, features in classes.items():
        names = []
        for f in features:
            name = f["name"] if f["name"] is not None else f"#{f['column']}"
            collided = f.get("share") is not None and f["share"] < ngram_names.CLEAR_SHARE
            marked |= collided
            names.append(name + ("*" if collided else ""))
        out.append(f"  {label:<{width}}  {', '.join(names) or '-'}")
    out.append(
        f"  named {top['named']} of {top['columns']} features ({top['collided']} collided) "
        f"from {top['sample_texts']} sampled training texts"
        + (
            f"; * less than {ngram_names.CLEAR_SHARE:.0%} of the sampled n-grams in the feature's hash bucket are it"
            if marked
            else ""
        )
    )
    return out


def _selection_line(v: dict, width: int) -> str:
    name = f"  {v['id'] or '(unversioned)':<{width}}  "
    chosen = v["selection"]
    if chosen is None:
        return name + f"{v['model'] or '-'} (no selection recorded)"
    if "problem" in chosen:
        return name + chosen["problem"]
    if chosen["reused_from"] is not None:
        return name + f"{chosen['chosen']}, the selection of version {chosen['reused_from']} reused"
    trials = ", ".join(
        f"{t['candidate']} {_cell(t['val_accuracy'])}"
        + ("" if t["ended_by"] == "early stopping" else f" ({t['ended_by']})")
        for t in chosen["trials"]
    )
    return name + f"{chosen['chosen']} chosen by validation accuracy of: {trials}"


def _serving_line(v: dict, width: int) -> str:
    name = f"  {v['id'] or '(unversioned)':<{width}}  "
    serving = v["serving"]
    if not serving["saved_model"]:
        why = serving["note"] or "made before 0.12"
        return name + f"none ({why}); streamtrain export writes one"
    check = serving["check"]
    if not check:
        return name + "saved_model/ (not checked: it was not to be promoted)"
    if check["passed"]:
        return name + f"saved_model/, checked on {check['texts']} texts (max difference {check['max_difference']:.2g})"
    return name + f"saved_model/ FAILED its check: {check['problem']}"


def _model_text(r: dict) -> list[str]:
    current = r["current"] or "-"
    if r.get("current_problem"):  # a link readers refuse (streamtrain verify reports it too)
        current += f" (refused: {r['current_problem']})"  # render_text escapes every line
    out = [f"model directory {r['path']}", f"  layout: {r['layout']}", f"  current: {current}", ""]
    out.append(f"versions (oldest first): {len(r['versions'])}")
    if r["versions"]:
        rows = []
        for v in r["versions"]:
            m = v["metrics"]
            rows.append(
                [
                    v["id"] or "(unversioned)",
                    v["date"],
                    "*" if v["current"] else "",
                    m["test_accuracy"],
                    m["val_accuracy"],
                    m["epochs"],
                    m["train_rows"],
                    v["promotion"]["promoted"],
                    v["warm_start_from"],
                ]
            )
        out += table(
            ["version", "date", "current", "test_acc", "val_acc", "epochs", "train_rows", "promoted", "warm_start"],
            rows,
        )
        out += ["", "promotion decisions"]
        width = max(len(v["id"] or "(unversioned)") for v in r["versions"])
        for v in r["versions"]:
            p = v["promotion"]
            verdict = "-" if p["promoted"] is None else ("promoted" if p["promoted"] else "not promoted")
            out.append(f"  {v['id'] or '(unversioned)':<{width}}  {verdict}: {p['reason'] or '-'}")
        out += ["", "model selection"] + [_selection_line(v, width) for v in r["versions"]]
        out += ["", "serving (SavedModel)"] + [_serving_line(v, width) for v in r["versions"]]
        problems = [(v["id"] or "(unversioned)", p) for v in r["versions"] for p in v["problems"]]
        if problems:
            out += ["", "problems"] + [f"  {version}: {p}" for version, p in problems]
    out += ["", f"being trained or interrupted: {len(r['training'])}"]
    if r["training"]:
        rows = [[t["directory"], t["date"], t["epochs_done"], t["step"], t["data"]] for t in r["training"]]
        out += table(["directory", "started", "epochs_done", "step", "data"], rows)
        out.append("  fit with the same options and dataset resumes one; a fit with others removes it")
    step = r.get("pending")
    if step:
        what = step.get("problem") or (
            f"version {step['version']} was being finished{' and made current' if step['promote'] else ''} "
            f"by a {step['by']} that was killed; the next fit or promote completes it"
        )
        out += ["", f"interrupted promotion step: {what}"]
    return out
