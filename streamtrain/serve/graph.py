"""The fitted vectorizer as a TensorFlow graph: raw text in, exactly ``Vectorizer.transform``'s features out.

``VectorizerGraph`` is a ``tf.Module`` whose ``__call__`` takes ``tf.string
[None]`` and uses core TensorFlow ops only (no Python, no tensorflow_text), so
a SavedModel holding it runs in stock TensorFlow Serving. It reproduces what
``serve.support.exportable`` accepts: n-grams hashed by ``ngrams.HASHER`` and
sequences tokenized with ``sequence.CODEPOINT``. The steps: each code point
through a ``codepoints`` table; tokens as byte spans of the result's UTF-8;
token hashes 16 bytes at a time (FNV-1a then splitmix64 for n-grams, CRC-32
for sequences); then n-gram counts, TF-IDF in numpy's float64 order and the
selected columns, or token ids with the last ``length`` kept.

The steps in detail, proof of parity and measurements: docs/design/serving-graph.md
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from streamtrain.serve.codepoints import (
    DROP,
    SEPARATE,
    SEPARATOR,
    SINGLE,
    UNIDATA_VERSION,
    CodepointTable,
    ngram_table,
    sequence_table,
)
from streamtrain.serve.support import exportable
from streamtrain.vectorize.sequence import SequenceState
from streamtrain.vectorize.tfidf import TfidfState, bucket_table
from streamtrain.vectorize.vectorizer import Vectorizer
from streamtrain.vectorize.words import _MIX1, _MIX2, FNV_OFFSET, FNV_PRIME, GOLDEN_GAMMA

BLOCK = 16  # token bytes hashed per unrolled block
LOG_TABLE = 1 << 14  # 1 + ln(count) comes from numpy's np.log for counts below this (TF's log differs by an ulp)
_FAR = 0x200000  # beyond every code point: code offsets encode a range's rule (``_table_variables``)
_CRC_POLY = 0xEDB88320  # zlib's CRC-32, reflected
_MASK64 = (1 << 64) - 1
_TEXTS = tf.TensorSpec([None], tf.string)


class Spans(NamedTuple):
    """Tokens as byte spans: ``data[start[i]:start[i] + size[i]]`` is token ``i`` (int32 bytes), of text ``rows[i]``."""

    data: tf.Tensor
    start: tf.Tensor
    size: tf.Tensor
    rows: tf.Tensor


class VectorizerGraph(tf.Module):
    """``vectorizer.transform`` as TensorFlow ops; its tables are variables of the module (saved with it).

    ``kind``: "ngram" or "sequence"; ``n_features``: the width of an n-gram row (the number of selected buckets)
    or the sequence vocabulary plus padding; ``length``: a sequence row's width (n-grams: None);
    ``unidata_version``: the Unicode of the tables (a string variable, so it is in a SavedModel too).
    Bucket tables are dense (4 bytes per hash bucket each: 8 MB at 2**21), read by a gather, faster than a search
    of the selected buckets (docs/design/serving-graph.md).

    Args:
        vectorizer: a fitted vectorizer.

    Raises:
        ValueError: ``serve.support.exportable`` rejects the vectorizer (the reason is the message).
    """

    def __init__(self, vectorizer: Vectorizer):
        reason = exportable(vectorizer)
        if reason is not None:
            raise ValueError(reason)
        super().__init__(name="vectorizer_graph")
        state = vectorizer.state
        self.kind = vectorizer.kind
        self.n_features = int(state.n_features)
        self.buckets = int(state.config.hash_buckets)
        self.unidata_version = tf.Variable(UNIDATA_VERSION, trainable=False, name="unidata_version")
        self.length: int | None = None
        if isinstance(state, TfidfState):
            self._ngram_tables(state)
        else:
            self._sequence_tables(state)

    def _ngram_tables(self, state: TfidfState) -> None:
        self.ngram_range = tuple(int(n) for n in state.config.ngram_range)
        self.sublinear_tf = bool(state.config.sublinear_tf)
        self.unicode = _table_variables(ngram_table(), "fold")
        self.idf = _variable(state.idf.astype(np.float32), "idf")
        self.columns = _variable(bucket_table(state.selected, self.buckets), "columns")  # -1: not selected
        counts = np.arange(LOG_TABLE, dtype=np.float64)
        with np.errstate(divide="ignore"):
            self.log_tf = _variable(np.log(counts) + 1.0, "log_tf")  # what TfidfState computes, bit for bit

    def _sequence_tables(self, state: SequenceState) -> None:
        self.length = int(state.length)
        self.unicode = _table_variables(sequence_table(), "lower")
        ids = np.zeros(self.buckets, np.int32)
        ids[state.vocab] = np.arange(1, len(state.vocab) + 1, dtype=np.int32)
        self.ids = _variable(ids, "ids")  # 0: not in the vocabulary

    @tf.function(input_signature=[_TEXTS], autograph=False)
    def __call__(self, texts: tf.Tensor) -> tf.Tensor | tf.SparseTensor:
        """The features of ``texts`` (``tf.string [None]``), as ``Vectorizer.transform`` computes them.

        Returns:
            n-grams: ``tf.SparseTensor`` [n, n_features] (row-major indices, float32 values); sequences: int32
            [n, length] token ids, zeros in front.
        """
        if self.kind == "ngram":
            return self._ngrams(texts)
        return self._sequences(texts)

    def bucket_counts(self, texts: tf.Tensor) -> tf.SparseTensor:
        """n-grams: the raw counts per (text, bucket) before TF-IDF and selection, as ``tfidf.hash_counts``.

        For checks, not serving (not a ``tf.function``: not saved).

        Returns:
            float64 ``tf.SparseTensor`` [n, hash_buckets].
        """
        counts, rows, buckets = self._counts(texts)
        indices = tf.stack([rows, buckets], axis=1)
        return tf.SparseTensor(indices, tf.cast(counts, tf.float64), [tf.size(texts, tf.int64), self.buckets])

    def token_buckets(self, texts: tf.Tensor) -> tf.RaggedTensor:
        """Sequences: every token's bucket per text, before the vocabulary (for checks, not serving, not saved).

        Returns:
            A ``tf.RaggedTensor`` of buckets, one row per text.
        """
        buckets, rows = self._token_buckets(texts)
        return tf.RaggedTensor.from_value_rowids(buckets, rows, nrows=tf.size(texts, tf.int64), validate=False)

    def _spans(self, texts: tf.Tensor, shortest: int) -> Spans:
        """The texts' tokens of ``shortest``+ code points, in order."""
        # A space after each text (a separator in both tables), so that every run of word codes ends in its text.
        decoded = tf.strings.unicode_decode(tf.strings.join([texts, " "]), "UTF-8", errors="replace")
        codes, splits = _map_code_points(self.unicode, decoded.values, decoded.row_splits)
        return _runs(codes, splits, shortest)

    def _counts(self, texts: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """Counts (int64) of each text's n-grams per bucket, with their rows and buckets, sorted by both."""
        spans = self._spans(texts, 2)
        keys, rows = _ngram_keys(_splitmix64(_fnv1a64(spans)), spans.rows, self.ngram_range)
        buckets = tf.bitcast(keys % tf.constant(self.buckets, tf.uint64), tf.int64)
        ordered = tf.sort(rows * self.buckets + buckets)  # faster than a hash table's unique + a sort of those
        first = tf.where(ordered != tf.concat([[-1], ordered], axis=0)[:-1])[:, 0]  # of each run of equal keys
        counts = tf.concat([first, tf.shape(ordered, out_type=tf.int64)], axis=0)[1:] - first
        combined = tf.gather(ordered, first)
        rows = combined // self.buckets
        return counts, rows, combined - rows * self.buckets

    def _ngrams(self, texts: tf.Tensor) -> tf.SparseTensor:
        """TF-IDF rows as ``TfidfState.featurize``: float64 steps in its order, then float32."""
        n = tf.size(texts, tf.int64)
        counts, rows, buckets = self._counts(texts)
        if self.sublinear_tf:
            logs = tf.gather(self.log_tf, tf.minimum(counts, LOG_TABLE - 1))
            tf_ = tf.where(counts < LOG_TABLE, logs, tf.math.log(tf.cast(counts, tf.float64)) + 1.0)
        else:
            tf_ = tf.cast(counts, tf.float64)
        values = tf_ * tf.cast(tf.gather(self.idf, buckets), tf.float64)
        norms = tf.sqrt(tf.math.unsorted_segment_sum(values * values, rows, n))  # in entry order, as np.bincount
        norms = tf.where(norms == 0.0, tf.ones_like(norms), norms)
        columns = tf.gather(self.columns, buckets)
        hit = tf.where(columns >= 0)[:, 0]
        rows, values = tf.gather(rows, hit), tf.gather(values, hit)
        indices = tf.stack([rows, tf.cast(tf.gather(columns, hit), tf.int64)], axis=1)
        values = tf.cast(values / tf.gather(norms, rows), tf.float32)
        return tf.SparseTensor(indices, values, tf.stack([n, tf.constant(self.n_features, tf.int64)]))

    def _token_buckets(self, texts: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        spans = self._spans(texts, 1)
        return _crc32(spans) % self.buckets, spans.rows

    def _sequences(self, texts: tf.Tensor) -> tf.Tensor:
        """Token ids as ``SequenceState.encode``: unknown tokens dropped, the last ``length`` kept, zeros in front."""
        assert self.length is not None
        n = tf.size(texts, tf.int64)
        buckets, rows = self._token_buckets(texts)
        ids = tf.gather(self.ids, buckets)
        known = tf.where(ids > 0)[:, 0]
        ids, rows = tf.gather(ids, known), tf.gather(rows, known)
        ends = tf.cumsum(tf.math.unsorted_segment_sum(tf.ones_like(rows), rows, n))
        from_end = tf.gather(ends, rows) - tf.range(tf.size(rows, tf.int64)) - 1  # 0 at each text's last token
        keep = tf.where(from_end < self.length)[:, 0]
        columns = self.length - 1 - tf.gather(from_end, keep)
        indices = tf.stack([tf.gather(rows, keep), columns], axis=1)
        return tf.scatter_nd(indices, tf.gather(ids, keep), tf.stack([n, self.length]))


def _variable(array: np.ndarray, name: str) -> tf.Variable:
    return tf.Variable(array, trainable=False, name=name)


def _table_variables(table: CodepointTable, name: str) -> dict[str, tf.Variable]:
    """``table`` as the graph reads it: one int32 offset per range, code = code point + offset, which says all.

    Code ``c``: ``0 <= c < _FAR`` a word code point; ``-_FAR <= c < 0`` a separator (``SEPARATE``: ``cp - _FAR``);
    ``c < -_FAR`` dropped (``cp - 2 * _FAR``); ``c >= _FAR`` expansion ``c - _FAR``, whose codes are word code
    points and -1 for a separator. Offsets are indexed by ``tf.searchsorted(starts, cp, side="right")`` (one in
    front that no code point gets).
    """
    offsets = np.select(
        [table.kinds == SINGLE, table.kinds == SEPARATE, table.kinds == DROP],
        [table.values, -_FAR, -2 * _FAR],
        table.values + _FAR,
    )
    codes = np.where(table.expansion_codes == SEPARATOR, -1, table.expansion_codes)
    arrays = {
        "starts": table.starts,
        "offsets": np.concatenate([[0], offsets]).astype(np.int32),
        "expansion_splits": table.expansion_splits,
        "expansion_codes": np.append(codes, -1).astype(np.int32),  # never empty
    }
    return {key: _variable(array, f"{name}_{key}") for key, array in arrays.items()}


def _map_code_points(table: dict[str, tf.Variable], cps: tf.Tensor, splits: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Each code point through ``table`` (``_table_variables``).

    Two ops when no code point is dropped or expanded (most text).

    Returns:
        The codes they become (negative: a separator), and the texts' row splits over them.
    """
    codes = cps + tf.gather(table["offsets"], tf.searchsorted(table["starts"], cps, side="right"))
    one_each = tf.reduce_max(tf.bitcast(codes + _FAR, tf.uint32)) < 2 * _FAR  # all in [-F, F); 0 when empty
    return tf.cond(one_each, lambda: (codes, splits), lambda: _expand(table, codes, splits))


def _expand(table: dict[str, tf.Variable], codes: tf.Tensor, splits: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """``_map_code_points``'s codes with dropped ones removed and expansions put in, and the new row splits."""
    expand, drop = codes >= _FAR, codes < -_FAR
    expansion = tf.where(expand, codes - _FAR, 0)
    expansion_splits = table["expansion_splits"]
    starts = tf.gather(expansion_splits, expansion)
    ones = tf.where(drop, 0, 1)
    lengths = tf.where(expand, tf.gather(expansion_splits, expansion + 1) - starts, ones)
    ends = tf.cumsum(lengths)
    out = tf.range(tf.reduce_sum(lengths))
    source = tf.searchsorted(ends, out, side="right")  # output j comes from code point source[j]
    within = out - tf.gather(ends - lengths, source)
    from_table = tf.gather(table["expansion_codes"], tf.gather(starts, source) + within)
    new = tf.where(tf.gather(expand, source), from_table, tf.gather(codes, source))
    new_splits = tf.gather(tf.concat([[0], tf.cast(ends, tf.int64)], axis=0), splits)
    return new, new_splits


def _runs(codes: tf.Tensor, splits: tf.Tensor, shortest: int) -> Spans:
    """Maximal runs of word codes (>= 0) of ``shortest``+ codes, as byte spans of the codes' UTF-8.

    The row of each comes from the row ``splits`` over ``codes``. Each text's codes end in a separator, so no run
    goes from one text into the next.
    """
    word = tf.concat([[False], codes >= 0], axis=0)
    edges = tf.where(word[1:] != word[:-1])[:, 0]  # where runs start and end, alternately
    starts, ends = edges[0::2], edges[1::2]
    if shortest > 1:
        keep = tf.where(ends - starts >= shortest)[:, 0]
        starts, ends = tf.gather(starts, keep), tf.gather(ends, keep)
    rows = tf.searchsorted(splits, starts, side="right", out_type=tf.int64) - 1
    ascii_only = tf.reduce_max(codes) < 0x80  # then a code is its byte
    data, first, last = tf.cond(ascii_only, lambda: (codes, starts, ends), lambda: _utf8(codes, starts, ends))
    return Spans(data, first, tf.cast(last - first, tf.int32), rows)


def _utf8(codes: tf.Tensor, starts: tf.Tensor, ends: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """The codes' UTF-8 (separators as spaces) as int32 bytes, and where code ``starts`` and ``ends`` begin in it."""
    codes = tf.where(codes < 0, SEPARATOR, codes)  # every separator a space (a word code may be below it)
    data = tf.cast(tf.io.decode_raw(tf.strings.unicode_encode(codes, "UTF-8"), tf.uint8), tf.int32)
    size = (
        1 + tf.cast(codes >= 0x80, tf.int64) + tf.cast(codes >= 0x800, tf.int64) + tf.cast(codes >= 0x10000, tf.int64)
    )
    offsets = tf.concat([[0], tf.cumsum(size)], axis=0)
    return data, tf.gather(offsets, starts), tf.gather(offsets, ends)


def _blocks(spans: Spans) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Each token's head: its first 1..16 bytes, so that the rest is whole blocks.

    Returns:
        The heads as [tokens, 16] int32 bytes, zero after the head; the head's length and the number of blocks
        (int32).
    """
    blocks = tf.maximum((spans.size + BLOCK - 1) // BLOCK, 1)
    head = spans.size - BLOCK * (blocks - 1)
    at = tf.minimum(spans.start[:, None] + tf.range(BLOCK, dtype=tf.int64)[None, :], tf.size(spans.data, tf.int64) - 1)
    return tf.where(tf.range(BLOCK)[None, :] < head[:, None], tf.gather(spans.data, at), 0), head, blocks


def _rest(spans: Spans, head: tf.Tensor, blocks: tf.Tensor, state: tf.Tensor, step: Callable) -> tf.Tensor:
    """``state`` after ``step(state, block)`` over every whole block after each token's head.

    A ``while_loop`` over block numbers, over the tokens longer than 16 bytes only.
    """
    longer = tf.where(blocks > 1)[:, 0]
    long_blocks = tf.gather(blocks, longer)
    offset = tf.gather(spans.start, longer) + tf.cast(tf.gather(head, longer) - BLOCK, tf.int64)
    within = tf.range(BLOCK, dtype=tf.int64)[None, :]
    last = tf.size(spans.data, tf.int64) - 1

    def body(k: tf.Tensor, s: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        at = tf.minimum(offset[:, None] + BLOCK * tf.cast(k, tf.int64) + within, last)  # (finished: ignored)
        return k + 1, tf.where(k < long_blocks, step(s, tf.gather(spans.data, at)), s)

    _, final = tf.while_loop(
        lambda k, _: k < tf.reduce_max(long_blocks),
        body,
        (tf.constant(1, tf.int32), tf.gather(state, longer)),
        parallel_iterations=1,
    )
    return tf.tensor_scatter_nd_update(state, longer[:, None], final)


def _uint64(value: int) -> tf.Tensor:
    return tf.constant(value & _MASK64, tf.uint64)


def _splitmix64(x: tf.Tensor) -> tf.Tensor:
    """``words.splitmix64`` on a uint64 tensor."""
    shift = tf.bitwise.right_shift
    z = x + _uint64(int(GOLDEN_GAMMA))
    z = (z ^ shift(z, _uint64(30))) * _uint64(int(_MIX1))
    z = (z ^ shift(z, _uint64(27))) * _uint64(int(_MIX2))
    return z ^ shift(z, _uint64(31))


def _ngram_keys(hashes: tf.Tensor, rows: tf.Tensor, ngram_range: tuple[int, ...]) -> tuple[tf.Tensor, tf.Tensor]:
    """Every n-gram's key and row, n in ``ngram_range``, as ``ngrams.grams`` folds them.

    The order differs from ``grams``'s, which does not matter: they are counted.
    """
    lo, hi = ngram_range
    keys, key_rows = [], []
    key = hashes
    multiplier = _uint64(int(GOLDEN_GAMMA))
    for n in range(1, hi + 1):
        if n > 1:
            key = _splitmix64(key[:-1] * multiplier ^ hashes[n - 1 :])
        if n < lo:
            continue
        if n == 1:
            keys.append(key)
            key_rows.append(rows)
        else:
            whole = rows[: tf.size(key)] == rows[n - 1 :]
            keys.append(tf.boolean_mask(key, whole))
            key_rows.append(tf.boolean_mask(rows[: tf.size(key)], whole))
    return tf.concat(keys, axis=0), tf.concat(key_rows, axis=0)


def _fnv_block(h: tf.Tensor, block: tf.Tensor) -> tf.Tensor:
    """FNV-1a-64 state ``h`` (uint64) after the 16 bytes of each row of ``block`` (int32 [n, 16])."""
    prime = _uint64(int(FNV_PRIME))
    for byte in tf.unstack(tf.cast(block, tf.uint64), num=BLOCK, axis=1):
        h = (h ^ byte) * prime
    return h


def _fnv1a64(spans: Spans) -> tf.Tensor:
    """FNV-1a-64 of each token's bytes (uint64).

    The head is hashed as 16 bytes, zeros after it; each zero byte multiplied the state by the prime, so a
    multiplication by the prime's inverse power (mod 2**64) undoes them.
    """
    first, head, blocks = _blocks(spans)
    h = _fnv_block(tf.fill(tf.shape(head), _uint64(int(FNV_OFFSET))), first)
    h *= tf.gather(tf.constant(_FNV_UNDO, tf.uint64), BLOCK - head)
    return _rest(spans, head, blocks, h, _fnv_block)


def _crc_tables() -> tuple[np.ndarray, np.ndarray]:
    """CRC-32's slicing-by-16 tables.

    Returns:
        ``T[d * 256 + b]``, the CRC register's part from byte ``b`` followed by ``d`` bytes; and the register after
        ``k`` zero bytes from the initial one, k = 0..16.
    """
    byte_table = np.zeros((BLOCK, 256), np.int64)
    for b in range(256):
        reg = b
        for _ in range(8):
            reg = (reg >> 1) ^ (_CRC_POLY if reg & 1 else 0)
        byte_table[0, b] = reg
    for d in range(1, BLOCK):
        prev = byte_table[d - 1]
        byte_table[d] = (prev >> 8) ^ byte_table[0, prev & 0xFF]
    zeros, reg = [0xFFFFFFFF], 0xFFFFFFFF
    for _ in range(BLOCK):
        reg = (reg >> 8) ^ int(byte_table[0, reg & 0xFF])
        zeros.append(reg)
    return byte_table.ravel(), np.array(zeros, np.int64)


_FNV_UNDO = np.array([pow(int(FNV_PRIME), -k, 1 << 64) for k in range(BLOCK + 1)], np.uint64)
_CRC_TABLE, _CRC_ZEROS = _crc_tables()
_CRC_SHIFT = np.array([8 * i if i < 4 else 0 for i in range(BLOCK)], np.int64)
_CRC_BYTE = np.array([0xFF if i < 4 else 0 for i in range(BLOCK)], np.int64)


def _xor_columns(x: tf.Tensor) -> tf.Tensor:
    """The XOR of each row's 16 columns (a tree of 4 steps)."""
    width = BLOCK
    while width > 1:
        width //= 2
        x = x[:, :width] ^ x[:, width:]
    return x[:, 0]


def _crc_block(reg: tf.Tensor, block: tf.Tensor) -> tf.Tensor:
    """The CRC-32 register after 16 bytes (slicing-by-16: the register's 4 bytes XORed into the first four)."""
    block = tf.cast(block, tf.int64) ^ (tf.bitwise.right_shift(reg[:, None], _CRC_SHIFT) & _CRC_BYTE)
    distance = np.arange(BLOCK - 1, -1, -1, dtype=np.int64) * 256
    return _xor_columns(tf.gather(tf.constant(_CRC_TABLE), block + distance))


def _crc32(spans: Spans) -> tf.Tensor:
    """``zlib.crc32`` of each token's bytes (int64).

    The head's byte ``i`` of ``h`` counts as byte ``b`` followed by ``h - 1 - i`` more; the initial register's part
    is the register after ``h`` zero bytes.
    """
    first, head, blocks = _blocks(spans)
    first = tf.cast(first, tf.int64)
    distance = head[:, None] - 1 - tf.range(BLOCK)[None, :]
    index = tf.where(distance >= 0, tf.cast(distance, tf.int64) * 256 + first, 0)  # byte 0 adds nothing
    reg = _xor_columns(tf.gather(tf.constant(_CRC_TABLE), index)) ^ tf.gather(tf.constant(_CRC_ZEROS), head)
    return _rest(spans, head, blocks, reg, _crc_block) ^ 0xFFFFFFFF
