"""predict: raw text in, labels and probabilities out (``PredictOptions``, ``predict``).

Texts are read (``io.texts``), vectorized by the model directory's own
vectorizer and scored ``score_batch_size`` at a time, so any input size runs
in constant memory. ``predict`` yields one result per input line, in order:
``{"label": ..., "probabilities": {label: p}}``, or for a line that cannot be
scored ``{"line": n, "error": reason, "message": ...}``; either carries the
line's JSONL ``id`` when it has one. Bad lines never abort the run and are
never scored silently; a stream that breaks ends with one error line and a
``DataError`` after everything before it was yielded.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from streamtrain.errors import DataError
from streamtrain.io.rejects import MAX_FIELD_BYTES, REJECT_REASON_TEXT
from streamtrain.io.texts import INPUT_FORMATS, open_texts, read_items
from streamtrain.options import POSITIVE, check_options, option
from streamtrain.train.runtime import import_tensorflow


@dataclass
class PredictOptions:
    """The options of ``streamtrain predict`` (each field's ``help`` says what it means)."""

    model_dir: str = option(path=True, metavar="DIR", help="the model directory written by fit")
    version: str | None = option(None, metavar="ID", help="the version of --model-dir to use; unset: current")
    input: str = option(
        "-", positional=True, path=True, metavar="FILE|-", help="texts to classify, .gz allowed; - is standard input"
    )
    input_format: str = option(
        "auto",
        choices=INPUT_FORMATS,
        help="lines: one text per line; jsonl: one JSON object per line, the text in --text-field; "
        "auto: a line that is a JSON object is JSONL, any other line is text",
    )
    text_field: str = option("text", help="the JSONL field holding the text")
    score_batch_size: int | None = option(
        None,
        **POSITIVE,
        deprecated="--batch-size",
        help="texts read, vectorized and scored at a time; unset: 1024 for n-grams, 256 for sequences",
    )
    max_field_bytes: int = option(
        MAX_FIELD_BYTES, **POSITIVE, help="a longer input line gets an error line instead of a score"
    )


log = logging.getLogger(__name__)


def predict(opts: PredictOptions) -> Iterator[dict]:
    """Classify the texts of ``opts.input`` with a version of ``opts.model_dir``.

    Args:
        opts: the options.

    Yields:
        One result per input line, in order: ``label`` and ``probabilities``, or ``line``, ``error`` and
        ``message``; each with the line's JSONL ``id`` when it has one.

    Raises:
        DataError: no such version, a damaged version, or an input that cannot be read past some line (after
            the results before it).
        UsageError: an option out of range, or no such input file.
    """
    from streamtrain.train.modeldir import check, resolve

    check_options(opts)
    with open_texts(opts.input) as fh:
        path = resolve(opts.model_dir, opts.version)  # read once: a promotion meanwhile changes nothing here
        check(path)
        import_tensorflow()
        from streamtrain.train.modeldir import load_model, load_vectorizer
        from streamtrain.train.scoring import predict_proba, score_batch

        vectorizer = load_vectorizer(path)
        model = load_model(path)
        labels = vectorizer.labels
        batch = score_batch(vectorizer.encoding, opts.score_batch_size)
        errors: Counter[str] = Counter()
        lines = 0
        for items in read_items(fh, opts.input_format, opts.text_field, batch, opts.max_field_bytes):
            good = [item for item in items if item.text is not None]
            scores = iter(
                predict_proba(model, vectorizer.transform([i.text for i in good if i.text is not None]), len(labels))
            )
            for item in items:
                lines += 1
                out: dict = {} if item.id is None else {"id": item.id}
                if item.error is not None:
                    errors[item.error] += 1
                    yield {**out, "line": item.line, "error": item.error, "message": REJECT_REASON_TEXT[item.error]}
                    continue
                p = next(scores)
                out["label"] = labels[int(p.argmax())]
                out["probabilities"] = {label: round(float(v), 6) for label, v in zip(labels, p)}
                yield out
        if errors:
            counts = ", ".join(f"{reason} {n}" for reason, n in sorted(errors.items()))
            log.warning(f"{sum(errors.values())} of {lines} input lines could not be scored: {counts}")
        if errors["unreadable_remainder"]:
            raise DataError(f"cannot read past line {lines}: the rest of the input is lost", opts.input)
