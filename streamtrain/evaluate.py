"""``python -m streamtrain.evaluate``: score a model directory on a prepared dataset's splits.

Prints a JSON object: ``{split}_accuracy``, ``{split}_loss``, ``{split}_rows``
and ``{split}_confusion`` (rows: true class, columns: predicted) for each
split evaluated, plus the class names.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from streamtrain.errors import DataError, run_cli  # noqa: E402
from streamtrain.manifest import Manifest  # noqa: E402
from streamtrain.split import SPLIT_NAMES  # noqa: E402


def evaluate(data: str, model_dir: str, splits: Sequence[str] = ("val", "test"), batch_size: int | None = None) -> dict:
    from streamtrain.modeldir import load_model, load_vectorizer, read_vectorizer_doc
    from streamtrain.scoring import score_split

    manifest = Manifest.load(data)
    if read_vectorizer_doc(model_dir).get("arrays_sha256") != manifest.vectorizer.get("arrays_sha256"):
        raise DataError("the dataset was vectorized with a different vectorizer than the model was trained on", data)
    vectorizer = load_vectorizer(model_dir)
    model = load_model(model_dir)
    out: dict = {"classes": vectorizer.labels}
    for split in splits:
        result = score_split(model, data, manifest, split, batch_size)
        for key, value in result.items():
            out[f"{split}_{key}"] = value
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m streamtrain.evaluate", description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="prepared dataset directory")
    p.add_argument("--model-dir", required=True, help="model directory written by fit")
    p.add_argument("--split", action="append", choices=SPLIT_NAMES, help="split to score; repeatable (default: val and test)")
    p.add_argument("--batch-size", type=int, default=None, help="rows per scoring batch (default 1024 for TF-IDF, 256 for sequences)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from streamtrain.scoring import metrics_json

    print(metrics_json(evaluate(args.data, args.model_dir, args.split or ["val", "test"], args.batch_size)))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
