"""Does this checkout write what an earlier revision wrote? The proof that a refactor changed no output.

Runs the streamtrain of revision REV (its ``streamtrain/`` and ``data/`` read out of git with ``git archive``)
twice and this checkout's once, each on the same inputs: the demo corpus prepared as n-grams in HDF5, as
sequences in Parquet and with every default; fits of the demo with a fixed seed (one model, a sequence model, and
a model selection with no time limit, so every candidate trains to its own early stopping); and, when
``$STREAMTRAIN_DATASETS`` is set, IMDB prepared in HDF5 and in Parquet. Every file of every dataset and model
directory is digested: JSON documents flattened to key paths (long lists hashed), ``.npz`` files array by array,
anything else (shards, the split index, model weights) by sha256. What differs between REV's two runs (times,
paths, zip timestamps) is volatile and skipped; every other difference is printed, and so is a changed
``format_version`` or release name (``created.tool``): allowed, a format may be versioned up.

    python tools/same_outputs.py --against 94ee614          # exit 0: identical apart from volatile fields
    python tools/same_outputs.py --against 94ee614 --no-imdb

Version directories and TensorBoard event files are named by time; their names are normalised. SavedModels and
TensorBoard events are skipped (timestamps inside).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
VERSION = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{4}")
EVENTS = re.compile(r"events\.out\.tfevents\.[\w.]+")
LONG_LIST = 64  # a longer JSON list is digested whole


def flat(value: Any, prefix: str = "") -> dict[str, Any]:
    """A JSON value as {key path: scalar}; a list longer than ``LONG_LIST`` as one sha256."""
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in flat(item, f"{prefix}/{key}").items()}
    if isinstance(value, list) and len(value) > LONG_LIST:
        blob = json.dumps(value, sort_keys=True, default=str).encode()
        return {f"{prefix}/#sha256": hashlib.sha256(blob).hexdigest()}
    if isinstance(value, list):
        out: dict[str, Any] = {f"{prefix}/#len": len(value)}
        for i, item in enumerate(value):
            out.update(flat(item, f"{prefix}/{i}"))
        return out
    return {prefix: value}


def digest_dir(root: Path) -> dict[str, Any]:
    """Every file under ``root`` (not following ``current``), digested as the module docstring says."""
    out: dict[str, Any] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = EVENTS.sub("<events>", VERSION.sub("<version>", str(path.relative_to(root))))
        if rel.startswith("current/") or "tensorboard" in rel or "saved_model" in rel or rel.endswith(".lock"):
            continue
        if path.suffix == ".json":
            try:
                out.update({rel + k: v for k, v in flat(json.loads(path.read_text())).items()})
                continue
            except ValueError:
                pass
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                for name in sorted(z.files):
                    a = z[name]
                    out[f"{rel}:{name}"] = f"{a.dtype}{a.shape}:" + hashlib.sha256(a.tobytes()).hexdigest()
            continue
        out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return {EVENTS.sub("<events>", k): v for k, v in out.items()}


def streamtrain(src: Path, *args: str) -> None:
    """``python -m streamtrain ARGS`` of the tree ``src`` (cwd ``src``: ``-m`` puts it first on the path)."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "streamtrain", *args, "--quiet"], cwd=src, env=env, text=True,
                          capture_output=True)  # fmt: skip
    if done.returncode:
        sys.exit(f"{src}: streamtrain {' '.join(args)}: exit {done.returncode}\n{done.stderr[-3000:]}")
    print(f"  {time.monotonic() - started:5.1f} s  {args[0]} {args[-1] if args[0] == 'fit' else ''}", file=sys.stderr)


def run(src: Path, imdb: Path | None) -> dict[str, Any]:
    """The digests of one run of the tree ``src``; input paths inside them read ``<src>``."""
    with tempfile.TemporaryDirectory(prefix="same-outputs-") as tmp:
        t = Path(tmp)
        demo = [str(src / "data" / "tickets_train.csv"), "--test", str(src / "data" / "tickets_test.csv")]
        small = ["--shard-rows", "1000", "--block-rows", "64"]
        streamtrain(
            src, "prepare", *demo, "--data", f"{t}/d-ngram", "--format", "hdf5", "--vectorizer", "ngram", *small
        )
        streamtrain(src, "prepare", *demo, "--data", f"{t}/d-seq", "--format", "parquet", "--vectorizer", "sequence",
                    *small)  # fmt: skip
        streamtrain(src, "prepare", *demo, "--data", f"{t}/d-auto")
        once = ["--seed", "3", "--tune-seconds", "0", "--no-export"]
        streamtrain(src, "fit", "--data", f"{t}/d-ngram", *once, "--model-dir", f"{t}/m-ngram")
        streamtrain(src, "fit", "--data", f"{t}/d-seq", *once, "--epochs", "2", "--model-dir", f"{t}/m-seq")
        streamtrain(src, "fit", "--data", f"{t}/d-ngram", "--seed", "3", "--tune-seconds", "100000", "--no-export",
                    "--model-dir", f"{t}/m-select")  # fmt: skip
        names = ["d-ngram", "d-seq", "d-auto", "m-ngram", "m-seq", "m-select"]
        if imdb is not None:
            for fmt in ("hdf5", "parquet"):
                streamtrain(src, "prepare", str(imdb / "train"), "--test", str(imdb / "test"), "--format", fmt,
                            "--data", f"{t}/imdb-{fmt}")  # fmt: skip
                names.append(f"imdb-{fmt}")
        digests = {f"{name}/{k}": v for name in names for k, v in digest_dir(t / name).items()}
    here = str(src)
    return {k: v.replace(here, "<src>") if isinstance(v, str) else v for k, v in digests.items()}


@contextmanager
def revision(rev: str) -> Iterator[Path]:
    """The tree of ``rev``'s ``streamtrain/`` and ``data/``, in a scratch directory."""
    with tempfile.TemporaryDirectory(prefix=f"rev-{rev}-") as tmp:
        archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "streamtrain", "data"], check=True,
                                 capture_output=True)  # fmt: skip
        subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
        yield Path(tmp)


def differences(before: dict[str, Any], again: dict[str, Any], after: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(keys that differ between ``before`` and ``after`` but not between ``before`` and ``again``, the
    ``format_version`` keys among them)."""
    missing = "<absent>"
    volatile = {k for k in before.keys() | again.keys() if before.get(k, missing) != again.get(k, missing)}
    # a checksummed file whose digest varies (it holds times) varies in length too
    volatile |= {k[: -len("sha256")] + "bytes" for k in volatile if "checksums.json/" in k and k.endswith("/sha256")}
    changed = sorted(
        k for k in before.keys() | after.keys() if k not in volatile and before.get(k, missing) != after.get(k, missing)
    )
    versions = [k for k in changed if k.endswith(("/format_version", "/created/tool"))]  # a release's name
    return [k for k in changed if k not in versions], versions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", required=True, metavar="REV", help="the git revision to compare with")
    parser.add_argument("--no-imdb", action="store_true", help="the demo corpus only")
    args = parser.parse_args()
    datasets = os.environ.get("STREAMTRAIN_DATASETS")
    with tempfile.TemporaryDirectory(prefix="imdb-") as tmp:
        imdb = None
        if datasets and not args.no_imdb:
            with tarfile.open(Path(datasets) / "imdb" / "aclImdb_labeled.tar.gz", "r:gz") as tar:
                tar.extractall(tmp, filter="data")
            imdb = Path(tmp) / "aclImdb"
        with revision(args.against) as old:
            print(f"{args.against} (twice):", file=sys.stderr)
            before, again = run(old, imdb), run(old, imdb)
        print("this checkout:", file=sys.stderr)
        after = run(REPO, imdb)
    changed, versions = differences(before, again, after)
    for key in versions:
        print(f"version {key}: {before.get(key)} -> {after.get(key)}")
    for key in changed:
        print(f"DIFFERS {key}: {str(before.get(key, '<absent>'))[:100]} -> {str(after.get(key, '<absent>'))[:100]}")
    print(f"{len(after)} values compared ({'demo and IMDB' if imdb else 'demo'}), {len(changed)} differ")
    sys.exit(1 if changed else 0)


if __name__ == "__main__":
    main()
