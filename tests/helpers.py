"""Small builders shared by tests."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np

from streamtrain.dataset.prepare import PrepareOptions, prepare
from streamtrain.dataset.rows import SparseRows, TokenRows

TOOLS = Path(__file__).resolve().parent.parent / "tools"
BIN = Path(sys.executable).parent / "streamtrain"  # the console script of the venv the tests run in


def streamtrain(*args, cwd=None, stdin: str | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """The real ``streamtrain`` command in a subprocess, as cron runs it."""
    return subprocess.run(
        [str(BIN), *map(str, args)], capture_output=True, text=True, input=stdin, timeout=timeout, cwd=cwd
    )


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
