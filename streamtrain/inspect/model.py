"""inspect of a model directory: its JSON-ready record (``model_record``) and its text (``model_text``).

Who owns what:
- ``model_record``: from the JSON files of ``fs.versions``' layout (or of a
  directory written by streamtrain 0.2): its versions oldest first, which is
  current, each one's metrics (test and validation accuracy, epochs, training
  rows), date (``id_date``), promotion decision, warm start, model selection
  and SavedModel; the versions still being trained (or interrupted) with
  their last checkpoint; a promotion step a killed run left for the next fit
  or promote to complete (``train.promote``).
- ``model_text``: that record as headed sections of aligned columns.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from streamtrain.errors import DataError
from streamtrain.fs.versions import TRAINING, Versions
from streamtrain.inspect.tables import cell, table
from streamtrain.train import modeldir, tune
from streamtrain.train.promote import pending

CHECKPOINT_STATE = "state.json"  # train.checkpoint.STATE_NAME (that module imports Keras)
_ID_TIME = re.compile(r"^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z")
UNVERSIONED = "(unversioned)"

# --- the record -------------------------------------------------------------------------------------------------


def model_record(root: Path) -> dict:
    """A model directory's record (the module docstring), from its JSON files.

    A file that is missing or unreadable is listed under its version's ``problems``, not raised.

    Args:
        root: the model directory (versioned, or flat as streamtrain 0.2 wrote it).

    Returns:
        A JSON-ready dict, ``kind`` ``"model"``.
    """
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


def _read_json(path: Path) -> tuple[dict | None, str | None]:
    """The JSON object in ``path``, or None and what is wrong with the file."""
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
    """The UTC time in a version id, ISO 8601.

    Args:
        version: a version id (``20261121T190501Z-3f2a``).

    Returns:
        Its time (``2026-11-21T19:05:01Z``); None when the id does not start with one.
    """
    m = _ID_TIME.match(version)
    return f"{m[1]}-{m[2]}-{m[3]}T{m[4]}:{m[5]}:{m[6]}Z" if m else None


def _version(directory: Path, version: str | None, current: bool) -> dict:
    """One version's record: metrics, promotion, warm start, selection, serving, problems."""
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
                "val_loss": t.val_loss,
                "val_accuracy": t.val_accuracy,
                "seconds": t.seconds,
                "ended_by": t.ended_by,
            }
            for t in chosen.trials
        ],
    }


def _training(directory: Path) -> dict:
    """A version being trained (or interrupted): its directory, start, last checkpoint and dataset."""
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


def _pending(root: Path) -> dict | None:
    """The interrupted promotion step the next fit or promote completes, if any."""
    try:
        intent = pending(root)
    except DataError as exc:
        return {"problem": str(exc)}
    return None if intent is None else {"version": intent.version, "promote": intent.promote, "by": intent.by}


# --- the text ---------------------------------------------------------------------------------------------------


def model_text(r: dict) -> list[str]:
    """The lines of a model directory's record, unescaped (``render_text`` escapes each).

    Args:
        r: ``model_record``'s result.

    Returns:
        The lines, section by section.
    """
    current = r["current"] or "-"
    if r.get("current_problem"):  # a link readers refuse (streamtrain verify reports it too)
        current += f" (refused: {r['current_problem']})"  # render_text escapes every line
    out = [f"model directory {r['path']}", f"  layout: {r['layout']}", f"  current: {current}", ""]
    out.append(f"versions (oldest first): {len(r['versions'])}")
    if r["versions"]:
        out += _versions_lines(r["versions"])
    return out + _training_lines(r["training"]) + _pending_lines(r.get("pending"))


def _versions_lines(versions: list[dict]) -> list[str]:
    """The versions' table, then per version its promotion decision, model selection, SavedModel and problems."""
    rows = []
    for v in versions:
        m = v["metrics"]
        rows.append(
            [
                v["id"] or UNVERSIONED,
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
    out = table(
        ["version", "date", "current", "test_acc", "val_acc", "epochs", "train_rows", "promoted", "warm_start"],
        rows,
    )
    width = max(len(v["id"] or UNVERSIONED) for v in versions)
    out += ["", "promotion decisions"] + [_decision_line(v, width) for v in versions]
    out += ["", "model selection"] + [_selection_line(v, width) for v in versions]
    out += ["", "serving (SavedModel)"] + [_serving_line(v, width) for v in versions]
    problems = [(v["id"] or UNVERSIONED, p) for v in versions for p in v["problems"]]
    if problems:
        out += ["", "problems"] + [f"  {version}: {p}" for version, p in problems]
    return out


def _decision_line(v: dict, width: int) -> str:
    """A version's promotion decision and its reason."""
    p = v["promotion"]
    verdict = "-" if p["promoted"] is None else ("promoted" if p["promoted"] else "not promoted")
    return f"  {v['id'] or UNVERSIONED:<{width}}  {verdict}: {p['reason'] or '-'}"


def _selection_line(v: dict, width: int) -> str:
    """A version's model selection: what was chosen, from which trials, or whose selection it reused."""
    name = f"  {v['id'] or UNVERSIONED:<{width}}  "
    chosen = v["selection"]
    if chosen is None:
        return name + f"{v['model'] or '-'} (no selection recorded)"
    if "problem" in chosen:
        return name + chosen["problem"]
    if chosen["reused_from"] is not None:
        return name + f"{chosen['chosen']}, the selection of version {chosen['reused_from']} reused"
    trials = ", ".join(
        f"{t['candidate']} {cell(t['val_loss'])} {cell(t['val_accuracy'])}"
        + ("" if t["ended_by"] == "early stopping" else f" ({t['ended_by']})")
        for t in chosen["trials"]
    )
    return name + f"{chosen['chosen']} chosen by validation loss (and accuracy) of: {trials}"


def _serving_line(v: dict, width: int) -> str:
    """Whether a version has a SavedModel, and what its serving check found."""
    name = f"  {v['id'] or UNVERSIONED:<{width}}  "
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


def _training_lines(training: list[dict]) -> list[str]:
    """The versions being trained or interrupted."""
    out = ["", f"being trained or interrupted: {len(training)}"]
    if training:
        rows = [[t["directory"], t["date"], t["epochs_done"], t["step"], t["data"]] for t in training]
        out += table(["directory", "started", "epochs_done", "step", "data"], rows)
        out.append("  fit with the same options and dataset resumes one; a fit with others removes it")
    return out


def _pending_lines(step: dict | None) -> list[str]:
    """The interrupted promotion step, if any."""
    if not step:
        return []
    what = step.get("problem") or (
        f"version {step['version']} was being finished{' and made current' if step['promote'] else ''} "
        f"by a {step['by']} that was killed; the next fit or promote completes it"
    )
    return ["", f"interrupted promotion step: {what}"]
