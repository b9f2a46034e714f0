"""predict: raw text in, labels and probabilities out (``PredictOptions``, ``predict``).

Texts are read (``io.texts``), vectorized by the model directory's own
vectorizer and scored ``score_batch_size`` at a time, so any input size runs
in constant memory. ``predict`` yields one result per input line, in order:
``{"label": ..., "probabilities": {label: p}}``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from streamtrain.io.texts import INPUT_FORMATS, open_texts, read_texts
from streamtrain.options import POSITIVE, check_options, option
from streamtrain.train.runtime import import_tensorflow


@dataclass
class PredictOptions:
    model_dir: str = option(path=True, metavar="DIR", help="the model directory written by fit")
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


def predict(opts: PredictOptions) -> Iterator[dict]:
    """Labels and probabilities for each input line, in order."""
    from streamtrain.train.modeldir import check

    check_options(opts)
    name = "<stdin>" if opts.input == "-" else opts.input
    with open_texts(opts.input) as fh:
        check(opts.model_dir)
        import_tensorflow()
        from streamtrain.train.modeldir import load_model, load_vectorizer
        from streamtrain.train.scoring import SCORE_BATCH, predict_proba

        vectorizer = load_vectorizer(opts.model_dir)
        model = load_model(opts.model_dir)
        labels = vectorizer.labels
        batch = opts.score_batch_size or SCORE_BATCH[vectorizer.encoding]
        for texts in read_texts(fh, name, opts.input_format, opts.text_field, batch):
            for p in predict_proba(model, vectorizer.transform(texts), len(labels)):
                yield {
                    "label": labels[int(p.argmax())],
                    "probabilities": {label: round(float(v), 6) for label, v in zip(labels, p)},
                }
