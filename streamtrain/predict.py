"""``python -m streamtrain.predict``: raw text in, JSON lines of labels and probabilities out.

Input (a file, ``.gz`` allowed, or ``-`` for standard input): one text per
line, or JSON lines with the text in ``--text-field``. ``--input-format
auto`` treats a line that parses as a JSON object as JSONL. Output: one line
per input line, in order, ``{"label": ..., "probabilities": {label: p}}``.
Texts are read, vectorized and scored ``--batch-size`` at a time, so any
input size runs in constant memory.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import sys
from collections.abc import Iterator, Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from streamtrain.errors import DataError, UsageError, run_cli  # noqa: E402


def _text_of(line: str, mode: str, field: str, where: tuple[str, int]) -> str:
    if mode == "lines":
        return line
    stripped = line.strip()
    if mode == "auto" and not stripped.startswith("{"):
        return line
    try:
        obj = json.loads(stripped)
    except json.JSONDecodeError as exc:
        if mode == "auto":
            return line
        raise DataError(f"invalid JSON: {exc.msg}", *where) from exc
    if not isinstance(obj, dict) or not isinstance(obj.get(field), str):
        if mode == "auto" and not isinstance(obj, dict):
            return line
        raise DataError(f"expected a JSON object with a string field {field!r}", *where)
    return obj[field]


def read_texts(stream: io.TextIOBase, name: str, mode: str, field: str, batch: int) -> Iterator[list[str]]:
    texts: list[str] = []
    for row, line in enumerate(stream, start=1):
        texts.append(_text_of(line.rstrip("\r\n"), mode, field, (name, row)))
        if len(texts) >= batch:
            yield texts
            texts = []
    if texts:
        yield texts


def predict_lines(model_dir: str, batches: Iterator[list[str]]) -> Iterator[dict]:
    """Labels and probabilities for each text, batch by batch."""
    from streamtrain.modeldir import load_model, load_vectorizer
    from streamtrain.scoring import predict_proba

    vectorizer = load_vectorizer(model_dir)
    model = load_model(model_dir)
    labels = vectorizer.labels
    for texts in batches:
        probs = predict_proba(model, vectorizer.transform(texts), len(labels))
        for p in probs:
            yield {"label": labels[int(p.argmax())], "probabilities": {l: round(float(v), 6) for l, v in zip(labels, p)}}


def _open(path: str) -> io.TextIOBase:
    if path == "-":
        return io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace")
    if not os.path.exists(path):
        raise UsageError(f"input not found: {path}")
    raw = gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")
    return io.TextIOWrapper(raw, encoding="utf-8", errors="replace")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m streamtrain.predict", description=__doc__.split("\n")[0])
    p.add_argument("--model-dir", required=True, help="model directory written by fit")
    p.add_argument("input", nargs="?", default="-", metavar="FILE|-", help="texts to classify (default: standard input)")
    p.add_argument("--input-format", choices=("auto", "lines", "jsonl"), default="auto")
    p.add_argument("--text-field", default="text", help="JSONL field holding the text (default: text)")
    p.add_argument("--batch-size", type=int, default=256, help="texts scored at a time (default 256)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    name = "<stdin>" if args.input == "-" else args.input
    with _open(args.input) as fh:
        batches = read_texts(fh, name, args.input_format, args.text_field, args.batch_size)
        out = sys.stdout
        for result in predict_lines(args.model_dir, batches):
            out.write(json.dumps(result) + "\n")
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
