"""inspect of a dataset directory: its JSON-ready record (``dataset_record``) and its text (``dataset_text``).

Who owns what:
- ``dataset_record``: from ``manifest.json`` (its format version, when
  older than today's, and ``vectorizer.json``'s configuration,
  ``feature_names.json``): the splits (rows, shards, bytes),
  class balance per split, the vectorizer choice and the numbers behind it,
  rejected rows by reason, appends (night, date, rows, drift), the validation
  sample, for n-grams the top features of each class as readable n-gram
  strings, and whether its models get a SavedModel.
- ``dataset_text``: that record as headed sections of aligned columns.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from streamtrain.dataset.counts import Append
from streamtrain.dataset.manifest import FORMAT_VERSION, Manifest
from streamtrain.dataset.records import Choice, ValSampleRecord, part_json
from streamtrain.errors import DataError
from streamtrain.inspect.tables import percent, size, table
from streamtrain.vectorize import ngram_names
from streamtrain.vectorize.split import SPLIT_NAMES
from streamtrain.visible import visible

# --- the record -------------------------------------------------------------------------------------------------


def dataset_record(root: Path) -> dict:
    """A dataset directory's record (the module docstring), from its JSON files.

    Args:
        root: the dataset directory.

    Returns:
        A JSON-ready dict, ``kind`` ``"dataset"``.

    Raises:
        DataError: the manifest is missing, corrupt, of an unsupported version, or names a missing shard.
    """
    manifest = Manifest.load(root)
    splits = _splits(manifest)
    rejected = manifest.stats.rejected
    sample = manifest.val_sample
    coverage = manifest.stats.coverage
    return {
        "path": str(root),
        "kind": "dataset",
        "encoding": manifest.encoding,
        "features": manifest.n_features,
        "sequence_length": manifest.sequence_length,
        "classes": manifest.labels,
        "shard_format": manifest.shard_format,
        "created": {"at": manifest.created.at, "tool": manifest.created.tool},
        "format_version": manifest.read_from_version,
        "inputs": len(manifest.sources),
        "splits": splits,
        "total": {key: sum(s[key] for s in splits.values()) for key in ("rows", "shards", "bytes")},
        "class_balance": _balance(manifest),
        "choice": part_json(manifest.choice),
        "rejected": {
            "rows": rejected.rows,
            "by_reason": rejected.by_reason,
            "estimated_lost_rows": rejected.estimated_lost_rows,
        },
        "coverage": None if coverage is None else coverage.outside_share,
        "appends": [_append(a) for a in manifest.appends],
        "val_sample": _sample(sample),
        "top_features": _top_features(root, manifest),
        "serving": _exportable(root),
    }


def _sample(sample: ValSampleRecord | None) -> dict:
    """The validation sample's rows and bytes; ``{}`` when there is none."""
    return {} if sample is None else {"rows": sample.rows, "bytes": sample.bytes, "text_bytes": sample.text_bytes}


def _splits(manifest: Manifest) -> dict:
    """Per split: its rows, shards and bytes."""
    splits = {}
    for split in SPLIT_NAMES:
        shards = manifest.shards_for(split)
        splits[split] = {
            "rows": sum(s.rows for s in shards),
            "shards": len(shards),
            "bytes": sum(s.bytes for s in shards),
        }
    return splits


def _balance(manifest: Manifest) -> dict:
    """Per split, per class: its rows and their share of the split."""
    balance = {}
    for split, counts in manifest.stats.rows_per_class.items():
        n = sum(counts)
        balance[split] = {
            label: {"rows": int(c), "share": round(c / n, 4) if n else None}
            for label, c in zip(manifest.labels, counts)
        }
    return balance


def _exportable(root: Path) -> dict:
    """Whether models trained on this dataset get a SavedModel (``serve.export.config_exportable``), and why not."""
    from streamtrain.serve.export import config_exportable
    from streamtrain.vectorize.vectorizer import load_config

    try:
        why = config_exportable(load_config(root)[0])
    except (DataError, OSError, KeyError, TypeError, ValueError) as exc:
        return {"exportable": None, "why": f"vectorizer.json unreadable: {exc}"}
    return {"exportable": why is None, "why": why}


def _append(entry: Append) -> dict:
    """One append's night, date, rows, rejects and drift."""
    return {
        "night": entry.night,
        "date": entry.at,
        "rows": entry.rows,
        "rejected": entry.rejected.rows,
        "drift": entry.drift.outside_share,
        "baseline": entry.drift.baseline,
    }


def _top_features(root: Path, manifest: Manifest) -> dict:
    """Per class its top features as readable strings, and what the names file records; why not, when absent."""
    record = manifest.feature_names
    if manifest.encoding != "ngram":
        return {"status": "none: the features are token ids of a sequence dataset"}
    if record is None:
        return {"status": f"none: {ngram_names.FEATURE_NAMES} not recorded (prepared before it was kept)"}
    try:
        doc = ngram_names.load(root, record.to_json())
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
        "columns": record.columns,
        "named": record.named,
        "collided": record.collided,
        "sample_texts": record.sample.texts,
        "classes": classes,
    }


# --- the text ---------------------------------------------------------------------------------------------------


def dataset_text(r: dict) -> list[str]:
    """The lines of a dataset's record, unescaped (``render_text`` escapes each).

    Args:
        r: ``dataset_record``'s result.

    Returns:
        The lines, section by section.
    """
    return [
        *_summary_lines(r),
        *_balance_lines(r),
        *_choice_section(r),
        *_rejects_lines(r),
        *_appends_lines(r),
        *["", "top features per class", *_top_lines(r["top_features"])],
    ]


def _summary_lines(r: dict) -> list[str]:
    """What it is, and its splits' rows, shards and bytes."""
    width = f", sequences of {r['sequence_length']}" if r.get("sequence_length") else ""
    out = [
        f"dataset {r['path']}",
        f"  {r['encoding']} features: {r['features']}{width}; {len(r['classes'])} classes; "
        f"{r['shard_format']} shards; {r['inputs']} input(s)",
        f"  created {r['created'].get('at') or '-'} by {r['created'].get('tool') or '-'}",
        *_format_lines(r),
        "",
        "splits",
    ]
    rows = [[s, v["rows"], v["shards"], v["bytes"], size(v["bytes"])] for s, v in r["splits"].items()]
    t = r["total"]
    rows.append(["total", t["rows"], t["shards"], t["bytes"], size(t["bytes"])])
    return out + table(["split", "rows", "shards", "bytes", "size"], rows)


def _format_lines(r: dict) -> list[str]:
    """For a dataset of an older manifest format: which, and that it reads as today's (``dataset.formats``)."""
    version = r.get("format_version", FORMAT_VERSION)
    return [] if version == FORMAT_VERSION else [f"  format: {version} (read as {FORMAT_VERSION})"]


def _balance_lines(r: dict) -> list[str]:
    """The class balance per split, when recorded."""
    if not r["class_balance"]:
        return []
    splits = list(r["class_balance"])
    rows = []
    for label in r["classes"]:
        row: list[Any] = [label]
        for split in splits:
            entry = r["class_balance"][split].get(label, {})
            row += [entry.get("rows"), percent(entry.get("share"))]
        rows.append(row)
    headers = ["class"] + [h for s in splits for h in (s, "share")]
    return ["", "class balance (rows, share of the split)", *table(headers, rows)]


def _choice_section(r: dict) -> list[str]:
    """The vectorizer choice, the features' coverage, and whether its models get a SavedModel."""
    out = ["", "vectorizer choice", *_choice_lines(r["choice"])]
    if r.get("coverage") is not None:
        out.append(f"  training n-gram occurrences outside the features: {percent(r['coverage'])}")
    serving = r.get("serving") or {}
    if serving.get("exportable"):
        out.append("  serving: models trained on it get a SavedModel that takes raw text")
    elif serving:
        out.append(f"  serving: no SavedModel for models trained on it: {serving['why']}")
    return out


def _choice_lines(choice: dict) -> list[str]:
    """The vectorizer chosen, why, and the numbers behind it (``Choice``'s own wording)."""
    if not choice:
        return ["  not recorded"]
    record = Choice.from_json(choice)
    return [f"  chosen: {record.chosen} ({record.reason()})", f"  {record.numbers()}"]


def _rejects_lines(r: dict) -> list[str]:
    """The rejected rows by reason, and the validation sample."""
    rej = r["rejected"]
    reasons = ", ".join(f"{k} {v}" for k, v in rej["by_reason"].items()) or "none"
    out = ["", f"rejected rows: {rej['rows']} (by reason: {reasons})"]
    if rej.get("estimated_lost_rows"):
        out.append(f"  about {rej['estimated_lost_rows']} more rows lost in unreadable bytes")
    sample = r["val_sample"]
    out.append(
        f"validation sample: {sample['rows']} rows ({sample.get('text_bytes', 0)} bytes of text, "
        f"{sample['bytes']} bytes on disk)"
        if sample
        else "validation sample: none"
    )
    return out


def _appends_lines(r: dict) -> list[str]:
    """The appends' table, when there are any."""
    out = ["", f"appends: {len(r['appends'])}"]
    if not r["appends"]:
        return out
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
    return out


def _top_lines(top: dict) -> list[str]:
    """Each class's top features, or why there are none."""
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
