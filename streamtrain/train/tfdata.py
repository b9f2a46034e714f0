"""Chunks of rows -> a ``tf.data.Dataset`` of batches for the training loop, and single batches -> model inputs.

Python hands tf.data one chunk of whole batches at a time (``BatchStream.forever_chunks``: ``buffer_blocks``
blocks, already shuffled); tf.data cuts it into the same batches ``BatchStream.epoch`` would give, with graph
ops, so the generator runs once per chunk and slicing and COO indices cost no Python. ``prefetch`` keeps
``PREFETCH_BATCHES`` batches ready, so the next chunk is read while the model trains; its depth is fixed and
tf.data's autotuning is off. TF-IDF rows stay sparse all the way into the first layer (``tf.SparseTensor``):
nothing is densified. Token rows go in as int32 matrices. Targets are label ids, a ``[n, 1]`` float column
for a two-class (sigmoid) head. ``keras_dataset`` is fit's stream, ``sparse_dataset``/``token_dataset`` the
cutting of any chunks (the bake-off's; ``batches_of`` picks one), ``LateChunks`` a pipeline's chunks bound after it
is built (``fit.prebuild``), ``model_input`` one batch for scoring.

Measurements: docs/design/training-speed.md
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import tensorflow as tf

from streamtrain.vectorize.rows import PADDING_LABEL, Rows, SparseRows, TokenRows, blank_rows

if TYPE_CHECKING:
    from streamtrain.train.batches import BatchStream

# tf.data traces a map function through autograph unless told not to; these have no Python control flow on
# tensors, and converting them cost time per pipeline (docs/design/training-speed.md).
_plain = tf.autograph.experimental.do_not_convert
PREFETCH_BATCHES = 16  # a quarter of a chunk (``buffer_blocks`` 8 of 1,024 rows, 128 a batch)


def _prefetched(batches: tf.data.Dataset) -> tf.data.Dataset:
    """``batches`` read ahead by a fixed ``PREFETCH_BATCHES``, with tf.data's autotuning off (module docstring)."""
    options = tf.data.Options()
    options.autotune.enabled = False
    return batches.prefetch(PREFETCH_BATCHES).with_options(options)


def _tf_targets(labels: tf.Tensor, n_classes: int) -> tf.Tensor:
    """Label ids in the shape the model's loss expects (sigmoid head for 2 classes)."""
    if n_classes == 2:
        return tf.reshape(tf.cast(labels, tf.float32), [-1, 1])
    return labels


def _batch_starts(labels: tf.Tensor, batch_size: int) -> tf.data.Dataset:
    """First row of each batch of a chunk; an empty chunk is one empty batch.

    ``keras_dataset`` hands a padding row instead of an empty chunk.
    """
    return tf.data.Dataset.range(0, tf.maximum(tf.shape(labels, out_type=tf.int64)[0], 1), batch_size)


def sparse_dataset(
    chunks: Callable[[], Iterator[SparseRows]], batch_size: int, n_features: int, n_classes: int
) -> tf.data.Dataset:
    """(SparseTensor features, targets) batches from a factory of ``SparseRows`` chunks.

    Args:
        chunks: makes an iterator of chunks, each cut into batches of ``batch_size`` rows.
        batch_size: rows per batch (a chunk's last batch may be shorter).
        n_features: the rows' columns.
        n_classes: the classes (2: targets as a float column).

    Returns:
        The batches, prefetched.
    """
    signature = (
        tf.TensorSpec([None], tf.int64),  # indptr
        tf.TensorSpec([None], tf.int32),  # indices
        tf.TensorSpec([None], tf.float32),  # values
        tf.TensorSpec([None], tf.int32),  # labels
    )

    def gen() -> Iterator[tuple[Any, ...]]:
        for c in chunks():
            yield c.indptr, c.indices, c.values, c.labels

    @_plain
    def cut(indptr: tf.Tensor, indices: tf.Tensor, values: tf.Tensor, labels: tf.Tensor) -> tf.data.Dataset:
        n = tf.shape(labels, out_type=tf.int64)[0]

        @_plain
        def batch(start: tf.Tensor) -> tuple[tf.SparseTensor, tf.Tensor]:
            stop = tf.minimum(start + batch_size, n)
            lo, hi = indptr[start], indptr[stop]
            rows = tf.repeat(tf.range(stop - start), indptr[start + 1 : stop + 1] - indptr[start:stop])
            coo = tf.stack([rows, tf.cast(indices[lo:hi], tf.int64)], axis=1)
            x = tf.SparseTensor(coo, values[lo:hi], tf.stack([stop - start, tf.constant(n_features, tf.int64)]))
            return x, _tf_targets(labels[start:stop], n_classes)

        return _batch_starts(labels, batch_size).map(batch)

    ds = tf.data.Dataset.from_generator(gen, output_signature=signature)
    return _prefetched(ds.flat_map(cut))


def token_dataset(
    chunks: Callable[[], Iterator[TokenRows]], batch_size: int, width: int, n_classes: int
) -> tf.data.Dataset:
    """(int32 token ids, targets) batches from a factory of ``TokenRows`` chunks.

    Args:
        chunks: makes an iterator of chunks, each cut into batches of ``batch_size`` rows.
        batch_size: rows per batch (a chunk's last batch may be shorter).
        width: the sequence length.
        n_classes: the classes (2: targets as a float column).

    Returns:
        The batches, prefetched.
    """
    signature = (tf.TensorSpec([None, width], tf.int32), tf.TensorSpec([None], tf.int32))

    def gen() -> Iterator[tuple[Any, ...]]:
        for c in chunks():
            yield c.tokens, c.labels

    @_plain
    def cut(tokens: tf.Tensor, labels: tf.Tensor) -> tf.data.Dataset:
        @_plain
        def batch(start: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            stop = start + batch_size  # slicing clips at the end
            return tokens[start:stop], _tf_targets(labels[start:stop], n_classes)

        return _batch_starts(labels, batch_size).map(batch)

    ds = tf.data.Dataset.from_generator(gen, output_signature=signature)
    return _prefetched(ds.flat_map(cut))


def keras_dataset(
    stream: BatchStream,
    n_classes: int,
    failures: list[BaseException] | None = None,
    first_epoch: int = 0,
    skip_batches: int = 0,
) -> tf.data.Dataset:
    """A ``BatchStream``'s batches, epochs ``first_epoch``, ``first_epoch + 1``, ... without end.

    ``stream.steps`` batches an epoch: the training loop takes a round's worth at a time (``train.rounds``),
    and a resumed fit continues the shuffle plans where the interrupted one stopped. The empty chunk that
    ends a short worker share (``BatchStream.chunks``) comes as one row labelled ``PADDING_LABEL``.

    Args:
        stream: one split's stream, for this worker.
        n_classes: the classes.
        failures: receives the exception of the reading generator, which reaches the caller only as a
            TensorFlow error that has lost its type, so the caller can raise the original instead (a
            ``DataError`` naming the shard).
        first_epoch: the epoch to start in.
        skip_batches: the batches of ``first_epoch`` already trained (a fit resumed inside it).

    Returns:
        The batches, prefetched.
    """
    source = stream.source
    chunks = stream_chunks(stream, failures, first_epoch, skip_batches)
    return batches_of(source.encoding, chunks, stream.batch_size, source.width, n_classes)


def stream_chunks(
    stream: BatchStream, failures: list[BaseException] | None = None, first_epoch: int = 0, skip_batches: int = 0
) -> Callable[[], Iterator[Any]]:
    """The factory of ``stream``'s chunks that ``keras_dataset`` cuts (its arguments are that function's)."""
    source = stream.source
    padding = blank_rows(source.encoding, source.width, PADDING_LABEL)

    def chunks() -> Iterator[Any]:  # SparseRows or TokenRows, as ``batches_of`` expects
        try:
            for chunk in stream.forever_chunks(first_epoch, skip_batches):
                # A worker's padding step: one blank row the steps weigh 0, not a batch of no rows (sepCNN's
                # convolutions fail on one: "Must provide as many biases as the last dimension").
                yield chunk if len(chunk) else padding
        except BaseException as exc:
            if failures is not None:
                failures.append(exc)
            raise

    return chunks


def batches_of(
    encoding: str, chunks: Callable[[], Iterator[Any]], batch_size: int, width: int, n_classes: int
) -> tf.data.Dataset:
    """``sparse_dataset`` or ``token_dataset`` of ``chunks``, as ``encoding`` says."""
    cut = token_dataset if encoding == "sequence" else sparse_dataset
    return cut(chunks, batch_size, width, n_classes)


class LateChunks:
    """A chunk factory bound after its pipeline is built (``fit.prebuild`` builds fit's before the dataset exists).

    Iterating the pipeline before ``bind`` raises ``RuntimeError`` in its reading generator.
    """

    def __init__(self) -> None:
        self.chunks: Callable[[], Iterator[Any]] | None = None

    def bind(self, chunks: Callable[[], Iterator[Any]]) -> None:
        """Read ``chunks()`` from now on (``stream_chunks``)."""
        self.chunks = chunks

    def __call__(self) -> Iterator[Any]:
        """The bound factory's chunks."""
        if self.chunks is None:
            raise RuntimeError("a pipeline built ahead was read before its stream was bound")
        return self.chunks()


def blank_batches(encoding: str, width: int, n_classes: int) -> tf.data.Dataset:
    """One batch of one blank row (``blank_rows``), of the type ``keras_dataset`` gives for such rows.

    A warm-up's input: a step traced on it serves the real batches.

    Args:
        encoding: ``ngram`` or ``sequence``.
        width: the rows' columns or sequence length.
        n_classes: the classes.

    Returns:
        The dataset of that one batch.
    """
    rows = blank_rows(encoding, width)
    if isinstance(rows, TokenRows):
        return token_dataset(lambda: iter([rows]), 1, width, n_classes)
    return sparse_dataset(lambda: iter([rows]), 1, width, n_classes)


def model_input(rows: Rows) -> tf.Tensor | tf.SparseTensor:
    """One batch in the form the model takes (for scoring and predict).

    Args:
        rows: n-gram or token rows.

    Returns:
        A ``tf.SparseTensor`` of n-gram rows, or the int32 token ids.
    """
    if isinstance(rows, TokenRows):
        return tf.constant(rows.tokens)
    return tf.SparseTensor(rows.coo_indices(), rows.values, [len(rows), rows.n_cols])
