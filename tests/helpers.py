"""Small builders shared by tests."""

from __future__ import annotations

import csv
import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np

from streamtrain.dataset.prepare import PrepareOptions
from streamtrain.prepare import prepare
from streamtrain.vectorize.rows import SparseRows, TokenRows

TOOLS = Path(__file__).resolve().parent.parent / "tools"
BIN = Path(sys.executable).parent / "streamtrain"  # the console script of the venv the tests run in


def streamtrain(*args, cwd=None, stdin: str | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """The real ``streamtrain`` command in a subprocess, as cron runs it."""
    return subprocess.run(
        [str(BIN), *map(str, args)], capture_output=True, text=True, input=stdin, timeout=timeout, cwd=cwd
    )


def write_csv(path: Path, rows) -> Path:
    """``rows`` of (text, label) as a CSV file with the header ``text,label``."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    return path


def files_of(root: Path) -> dict[str, bytes]:
    """Every file under ``root``, by relative path, with its bytes."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def without_keys(doc, volatile: tuple[str, ...]):
    """A JSON document without the keys ``volatile`` at any depth (when and where a run ran: not the data)."""
    if isinstance(doc, dict):
        return {k: without_keys(v, volatile) for k, v in doc.items() if k not in volatile}
    if isinstance(doc, list):
        return [without_keys(v, volatile) for v in doc]
    return doc


def checkpoint_state(model: Path) -> dict:
    """The committed checkpoint state of the version being trained in ``model`` (``epochs_done`` 0 before one)."""
    import json

    from streamtrain.fs.versions import Versions

    for building in Versions(model).training():  # one model: checkpoint/; a model selection: checkpoint/trial-I/
        paths = [building / "checkpoint" / "state.json", *sorted(building.glob("checkpoint/trial-*/state.json"))]
        for path in reversed(paths):
            if path.exists():
                return json.loads(path.read_text())
    return {"epochs_done": 0}


def load_tool(name: str) -> ModuleType:
    """Import ``tools/{name}.py`` by file path (tools/ is not a package)."""
    spec = importlib.util.spec_from_file_location(f"{name}_tool", TOOLS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def random_rows(n: int, n_cols: int = 50, seed: int = 0, first_id: int = 0) -> SparseRows:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(0, 8, n)
    indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    indices = np.concatenate([np.sort(rng.choice(n_cols, k, replace=False)) for k in lengths] or [[]]).astype(np.int32)
    values = rng.random(len(indices)).astype(np.float32)
    return SparseRows(
        indptr, indices, values, rng.integers(0, 3, n).astype(np.int32), np.arange(first_id, first_id + n), n_cols
    )


def random_tokens(n: int, width: int = 12, vocab: int = 40, seed: int = 0) -> TokenRows:
    rng = np.random.default_rng(seed)
    tokens = rng.integers(1, vocab, (n, width)).astype(np.int32)
    tokens[np.arange(width)[None, :] < rng.integers(0, width, n)[:, None]] = 0  # front padding
    return TokenRows(tokens, rng.integers(0, 3, n).astype(np.int32), np.arange(n, dtype=np.int64))


def prepare_csv(train: Path, out: Path, test: Path | None = None, **kw) -> Path:
    """Prepare a text,label CSV (the demo corpus layout) into ``out``."""
    prepare(PrepareOptions(inputs=[str(train)], test=[str(test)] if test else [], data=str(out), **kw))
    return out


def sigint_as_a_terminal_sends_it() -> None:
    """``preexec_fn`` of a child a test sends SIGINT: SIGINT at its default disposition, as under a shell.

    An ignored signal stays ignored across ``exec``, so a child inherits whatever the pytest worker's
    earlier tests left. Once, under xdist, four children went on to exit 0 after the test's SIGINT (the cause
    was not found: a plain and a ``-n 1`` run both show Python's default handler in the worker). This makes
    the child's disposition the one a shell gives it, whatever the worker's.
    """
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
