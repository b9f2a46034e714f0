"""What the benchmarks of tools/ measure on, shared: IMDB's text, datasets prepared once, rows in RAM, Keras helpers.

Who owns what: ``imdb_dir`` (aclImdb extracted once from
``$STREAMTRAIN_DATASETS``), ``ensure_prepared`` / ``imdb_data`` (a streamtrain
dataset prepared once, cached by its inputs, options and streamtrain's source),
``prepare_options`` (n-gram rows unless told), ``load_split_csr`` (a split in
RAM as scipy CSR), ``targets``, ``epoch_timer``, ``steady_rate`` (Keras' side of
bench_fit), ``dir_bytes``. The harness (rounds, medians, ratios, flags, the child
protocol) is ``benchlib``'s.
"""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import sys
import tarfile
import time
from pathlib import Path

from benchlib import REPO

DATASETS = Path(os.environ.get("STREAMTRAIN_DATASETS", "/work/shared/datasets"))
IMDB_ARCHIVE = DATASETS / "imdb" / "aclImdb_labeled.tar.gz"
# Raw text stays outside the repository; only derived shards go to runs/.
TEXT_CACHE = Path(os.environ.get("STREAMTRAIN_BENCH_TEXT", "/tmp/streamtrain-bench"))
IMDB_DATA = REPO / "runs" / "bench" / "imdb-hdf5"  # IMDB train + test, prepare's defaults (``imdb_data``)


def targets(labels, n_classes: int):
    """Label ids in the shape the model's loss expects (sigmoid head for 2 classes), for Keras' own inputs."""
    import numpy as np

    if n_classes == 2:
        return labels.astype(np.float32).reshape(-1, 1)
    return labels.astype(np.int32)


def imdb_dir(explicit: str | None = None) -> Path:
    """An extracted aclImdb directory (train/, test/): ``explicit``, /tmp/imdb/aclImdb, or extract the archive."""
    for cand in [explicit, os.environ.get("STREAMTRAIN_IMDB"), "/tmp/imdb/aclImdb", TEXT_CACHE / "aclImdb"]:
        if cand and (Path(cand) / "train").is_dir() and (Path(cand) / "test").is_dir():
            return Path(cand)
    if explicit:
        raise SystemExit(f"{explicit}: not an aclImdb directory (needs train/ and test/)")
    if not IMDB_ARCHIVE.is_file():
        raise SystemExit(f"no extracted IMDB and no archive at {IMDB_ARCHIVE}; pass --imdb DIR")
    TEXT_CACHE.mkdir(parents=True, exist_ok=True)
    print(f"[bench] extracting {IMDB_ARCHIVE} to {TEXT_CACHE}", file=sys.stderr, flush=True)
    with tarfile.open(IMDB_ARCHIVE, "r:gz") as tar:
        tar.extractall(TEXT_CACHE, filter="data")
    return TEXT_CACHE / "aclImdb"


def prepare_options(**kw):
    """``PrepareOptions(**kw)``, TF-IDF rows unless ``vectorizer`` is given.

    streamtrain's ``--vectorizer auto`` switches to token sequences (and fit to
    sepCNN) once samples / median words >= 1500, e.g. at 16 x IMDB; these
    benchmarks compare like with like, so they ask for n-grams explicitly.
    """
    from streamtrain.dataset.prepare import PrepareOptions

    kw.setdefault("vectorizer", "ngram")
    return PrepareOptions(**kw)


def _prepare_key(inputs: list[str], test_inputs: list[str], options: dict) -> str:
    """What a cached dataset depends on: the inputs, the options and streamtrain's source code."""
    h = hashlib.sha256(json.dumps([inputs, test_inputs, sorted(options.items())], default=str).encode())
    for src in sorted((REPO / "streamtrain").rglob("*.py")):
        h.update(src.read_bytes())
    return h.hexdigest()


def ensure_prepared(out: str | Path, inputs: list[str], test_inputs: list[str], **options) -> Path:
    """Prepare ``inputs`` into ``out`` with streamtrain, unless ``out`` holds this very preparation already."""
    out = Path(out)
    key, stamp = _prepare_key(inputs, test_inputs, options), out / ".bench-key"
    if (out / "manifest.json").is_file() and stamp.is_file() and stamp.read_text() == key:
        return out
    from streamtrain.prepare import prepare

    print(f"[bench] preparing {out} (cached for later runs with the same inputs and code)", file=sys.stderr, flush=True)
    prepare(prepare_options(inputs=list(inputs), data=out, test=list(test_inputs), overwrite=True, **options))
    stamp.write_text(key)
    return out


def load_split_csr(data: str | Path, split: str):
    """Every row of ``split`` in memory as (scipy CSR float32, int labels), read through ``SplitSource``."""
    import numpy as np
    import scipy.sparse as sp

    from streamtrain.dataset.manifest import Manifest
    from streamtrain.train.batches import SplitSource

    manifest = Manifest.load(data)
    src = SplitSource(data, manifest, split)
    parts = [src.read((s, b)) for s, n in enumerate(src.block_counts) for b in range(n)]
    src.close()
    indptr = [np.zeros(1, np.int64)]
    nnz = 0
    for p in parts:
        indptr.append(p.indptr[1:] + nnz)
        nnz += len(p.indices)
    x = sp.csr_matrix(
        (
            np.concatenate([p.values for p in parts]),
            np.concatenate([p.indices for p in parts]),
            np.concatenate(indptr),
        ),
        shape=(sum(len(p) for p in parts), manifest.n_features),
    )
    return x, np.concatenate([p.labels for p in parts])


def epoch_timer():
    """A Keras callback recording wall seconds per epoch in ``.seconds``."""
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds: list[float] = []

        def on_epoch_begin(self, epoch, logs=None):
            self._t = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self._t)

    return EpochTimer()


def steady_rate(rows: int, seconds: list[float]) -> float | None:
    """Median samples/s over epochs 2..N (epoch 1 carries tracing and warm-up); epoch 1 if that is all."""
    later = seconds[1:] or seconds
    return rows / statistics.median(later) if later else None


def imdb_data(imdb: str | None = None) -> Path:
    """IMDB train + test prepared with prepare's defaults into IMDB_DATA, once (``ensure_prepared``)."""
    acl = imdb_dir(imdb)
    return ensure_prepared(IMDB_DATA, [str(acl / "train")], [str(acl / "test")])


def dir_bytes(path: str | Path, pattern: str = "*") -> int:
    return sum(p.stat().st_size for p in Path(path).glob(pattern) if p.is_file())
