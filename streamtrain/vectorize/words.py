"""Word tokens of raw text as 64-bit hashes, computed in bulk: the base of hashed n-grams and of the split.

- ``word_hashes``: texts -> each text's word tokens, in order, as uint64
  hashes (CSR-style ``offsets`` + ``hashes``); a hash depends on its token only.
- ``word_spans``: the same tokens as byte spans of the normalized text.
- ``splitmix64``: the 64-bit mixing function, vectorized; n-gram, split and
  band keys fold hashes as ``splitmix64(a * GOLDEN_GAMMA ^ b)``.

Tokens are sklearn's for ``HashingVectorizer(lowercase=True,
strip_accents='unicode')`` with its default ``token_pattern`` (lowercased,
NFKD, combining marks dropped, runs of 2+ word characters), but for a capital
sigma ending a word: ``σ`` here, ``ς`` in sklearn. A token's hash is
``splitmix64(FNV-1a-64(its UTF-8 bytes))``, integer arithmetic that a serving
graph repeats with TensorFlow ops.

How it works and what it costs: docs/design/hashing.md
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from functools import cache
from itertools import pairwise

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

FNV_OFFSET = np.uint64(0xCBF29CE484222325)
FNV_PRIME = np.uint64(0x100000001B3)
GOLDEN_GAMMA = np.uint64(0x9E3779B97F4A7C15)  # 2**64 / golden ratio, odd: splitmix64's increment, and the
# multiplier that folds one hash into another (splitmix64(a * GOLDEN_GAMMA ^ b): n-grams, near-dups, the split)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)

_SPACE = 0x20
_PAD = 8  # bytes after the last text, so an 8-byte load at any token start stays inside the buffer
# Every ASCII byte that is not a word character becomes a space; the rest, non-ASCII included, is kept.
_SEPARATE = bytes(b if b >= 0x80 or b == ord("_") or chr(b).isalnum() else _SPACE for b in range(256))
# Token length in bytes -> mask of its bytes in an 8-byte load; 9 stands for longer tokens, keyed 0.
_KEY_MASK = np.array([(1 << (8 * k)) - 1 for k in range(8)] + [2**64 - 1, 0], dtype=np.uint64)
_FNV_PRIME_INT, _MASK64 = int(FNV_PRIME), 2**64 - 1
_BATCH_CHARS = 1_000_000  # word_hashes works through this many characters at a time (about 750 reviews)
_FEW, _TAIL = 2, 64  # _fnv1a64 finishes the last _FEW spans in Python when _TAIL+ bytes are left
_WORD_CHAR = re.compile(r"\w")


def splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 of each value: add the golden gamma, then Stafford's mix 13.

    A bijection of the 64-bit integers in which every output bit depends on
    every input bit; ``splitmix64(0)`` is not 0.

    Args:
        x: uint64 values (an array or a scalar).

    Returns:
        uint64, of ``x``'s shape.
    """
    z = np.array(x, dtype=np.uint64, ndmin=1)
    with np.errstate(over="ignore"):
        z += GOLDEN_GAMMA
        z ^= z >> np.uint64(30)
        z *= _MIX1
        z ^= z >> np.uint64(27)
        z *= _MIX2
        z ^= z >> np.uint64(31)
    return z.reshape(np.shape(x))


@cache
def _folded(cp: int) -> bytes:
    """What sklearn's preprocessing makes of code point ``cp``: lowercased, NFKD, combining marks dropped.

    As UTF-8, with every run of non-word characters as one space. The same
    as within a text: NFKD decomposes character by character, and the
    reordering of combining marks it adds does not matter once they are all
    dropped; ``str.lower`` looks at the context only for a final sigma.
    """
    out: list[str] = []
    for char in unicodedata.normalize("NFKD", chr(cp).lower()):
        if unicodedata.combining(char):
            continue
        if _WORD_CHAR.match(char):
            out.append(char)
        elif not out or out[-1] != " ":
            out.append(" ")
    return "".join(out).encode("utf-8")


def _texts_bytes(arr: pa.LargeStringArray) -> tuple[np.ndarray, np.ndarray]:
    """The texts' UTF-8 bytes end to end, ASCII non-word bytes turned into spaces, then ``_PAD`` spaces.

    Returns the bytes (a writable array) and the texts' offsets into them.
    """
    bounds = np.frombuffer(arr.buffers()[1], dtype=np.int64)[arr.offset : arr.offset + len(arr) + 1]
    chars = arr.buffers()[2]
    raw = memoryview(chars)[bounds[0] : bounds[-1]] if chars is not None else b""
    data = np.frombuffer((bytearray(raw) + bytearray(_PAD)).translate(_SEPARATE), dtype=np.uint8)
    return data, bounds - bounds[0]


def _fold_non_ascii(data: np.ndarray, bounds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every non-ASCII character replaced by ``_folded`` of it: (data, bounds) after that.

    In place where the replacement fits in the character's own bytes (a
    space fills them all; a shorter one leaves bytes that are cut out); the
    bytes of a longer one (Hangul syllables, ``½``) that do not fit are
    inserted after them. ``data`` is valid UTF-8 and writable; ``bounds``
    are the texts' offsets.
    """
    high = np.flatnonzero(data >= 0x80)
    if not len(high):
        return data, bounds
    lead = high[data[high] >= 0xC0]
    first = data[lead]
    size = 2 + (first >= 0xE0).astype(np.int64) + (first >= 0xF0)
    cp = (first & np.where(size == 2, 0x1F, np.where(size == 3, 0x0F, 0x07))).astype(np.int64)
    for k in (1, 2, 3):
        longer = size > k
        cp[longer] = (cp[longer] << 6) | (data[lead[longer] + k] & 0x3F)
    distinct, which = np.unique(cp, return_inverse=True)
    room = np.where(distinct < 0x800, 2, np.where(distinct < 0x10000, 3, 4))
    replacements = [_folded(c) for c in distinct.tolist()]
    fill = np.array([len(r) for r in replacements], dtype=np.int64)
    fill = np.where([r == b" " for r in replacements], room, fill)  # a separator: all its bytes become spaces
    table = np.full((len(distinct), max(4, int(fill.max()))), _SPACE, dtype=np.uint8)
    for i, replacement in enumerate(replacements):
        table[i, : len(replacement)] = np.frombuffer(replacement, dtype=np.uint8)
    fill = fill[which]
    cut = []
    for k in range(4):
        write = (fill > k) & (size > k)
        data[lead[write] + k] = table[which[write], k]
        cut.append(lead[(fill <= k) & (size > k)] + k)
    drop = np.sort(np.concatenate(cut))
    grow = np.flatnonzero(fill > size)
    if not len(drop) and not len(grow):
        return data, bounds
    keep = np.ones(len(data), dtype=bool)
    keep[drop] = False
    data, bounds = data[keep], bounds - np.searchsorted(drop, bounds)
    if len(grow):  # the rest of each long replacement, right after the character's own bytes
        extra = fill[grow] - size[grow]
        after = np.repeat(lead[grow] + size[grow], extra)
        column = np.repeat(size[grow] - np.cumsum(extra) + extra, extra) + np.arange(int(extra.sum()))
        after -= np.searchsorted(drop, after)
        data = np.insert(data, after, table[np.repeat(which[grow], extra), column])
        bounds = bounds + np.searchsorted(after, bounds, side="right")
    return data, bounds


def _fnv1a64(data: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """64-bit FNV-1a of each byte span ``data[starts[i]:starts[i] + lengths[i]]``.

    Spans are taken longest first, so at byte position ``j`` the spans still
    going are a prefix: one numpy step per byte position of the longest. The
    last few spans of a very long run (a 100 kB "word") finish in plain
    Python, a byte at a time, which is faster than numpy steps of 1 or 2.
    """
    longest = int(lengths.max(initial=0))
    # Longest first; a stable sort of 16-bit keys is a radix sort.
    order = np.argsort((longest - lengths).astype(np.uint16 if longest < 2**16 else np.int64), kind="stable")
    starts, lengths = starts[order], lengths[order]
    going = np.searchsorted(-lengths, -np.arange(longest), side="left")
    h = np.full(len(starts), FNV_OFFSET, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j, k in enumerate(going.tolist()):
            if k <= _FEW and len(going) - j > _TAIL:
                for i in range(k):
                    h[i] = _fnv1a64_python(int(h[i]), data[starts[i] + j : starts[i] + lengths[i]].tobytes())
                break
            head = h[:k]
            head ^= data[starts[:k] + j]
            head *= FNV_PRIME
    out = np.empty_like(h)
    out[order] = h
    return out


def _fnv1a64_python(h: int, data: bytes) -> int:
    """FNV-1a-64 of ``data`` continued from state ``h``, in plain Python."""
    for byte in data:
        h = ((h ^ byte) * _FNV_PRIME_INT) & _MASK64
    return h


def _token_hashes(data: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """``splitmix64(FNV-1a-64)`` of each token span (2+ bytes, no zero byte), each distinct token hashed once.

    A token of up to 8 bytes is keyed by its bytes packed into a uint64
    (little-endian, zero-padded: never 0, as a token holds no zero byte);
    the keys are deduplicated by Arrow's ``dictionary_encode``. Longer tokens
    get key 0 and are hashed where they stand.
    """
    # An 8-byte little-endian load at every byte offset (``data`` is padded), masked to the token's length.
    loads = np.ndarray((len(data) - _PAD,), dtype="<u8", buffer=data, strides=(1,))
    keys = loads[starts] & _KEY_MASK[np.minimum(lengths, 9)]
    encoded = pc.dictionary_encode(pa.array(keys))
    packed = encoded.dictionary.to_numpy().astype("<u8")
    sizes = (packed[:, None] >> (8 * np.arange(8, dtype=np.uint64)) != 0).sum(axis=1)
    distinct = splitmix64(_fnv1a64(packed.view(np.uint8), 8 * np.arange(len(packed)), sizes))
    out = distinct[encoded.indices.to_numpy()]
    long = np.flatnonzero(lengths > 8)
    if len(long):
        out[long] = splitmix64(_fnv1a64(data, starts[long], lengths[long]))
    return out


def word_hashes(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Each text's word tokens, in order, as 64-bit hashes.

    A hash depends on the token only, never on the other texts of the call.
    Many texts are taken ``_BATCH_CHARS`` characters at a time, so that the
    arrays of one step stay in cache.

    Args:
        texts: texts encodable as UTF-8 (no lone surrogates).

    Returns:
        (offsets, hashes): int64 of length n + 1 and uint64; text ``i``'s hashes are
        ``hashes[offsets[i]:offsets[i + 1]]``.
    """
    ends = np.cumsum(np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)))
    cuts = [0, *np.searchsorted(ends, np.arange(_BATCH_CHARS, ends[-1] if len(ends) else 0, _BATCH_CHARS)).tolist()]
    cuts = sorted({*cuts, len(texts)})
    offsets, hashes = [np.zeros(1, dtype=np.int64)], []
    from streamtrain.vectorize import kernels  # numba: imported where tokens are hashed, not by serving

    for a, b in pairwise(cuts):
        if kernels.AVAILABLE:
            part, batch = kernels.token_hashes(*normalized(texts[a:b]))
        else:  # without numba (tests compare the two paths)
            data, part, starts, lengths = word_spans(texts[a:b])
            batch = _token_hashes(data, starts, lengths)
        offsets.append(part[1:] + offsets[-1][-1])
        hashes.append(batch)
    return np.concatenate(offsets), np.concatenate(hashes) if hashes else np.zeros(0, dtype=np.uint64)


def normalized(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """The texts' normalized UTF-8 bytes end to end and their offsets: what tokens are cut from.

    Each text starts with a space (so that no word runs from one text into the next), is lowercased and
    folded (``_fold_non_ascii``); every byte that is not part of a word is a space; ``_PAD`` spaces end it.
    """
    space, nothing = pa.scalar(" ", type=pa.large_string()), pa.scalar("", type=pa.large_string())
    arr = pc.binary_join_element_wise(space, pc.ascii_lower(pa.array(texts, type=pa.large_string())), nothing)
    data, bounds = _texts_bytes(arr)
    if data.max(initial=0) >= 0x80:
        data, bounds = _fold_non_ascii(data, bounds)
    return data, bounds


def word_spans(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each text's word tokens as byte spans of the normalized text.

    Args:
        texts: texts encodable as UTF-8 (no lone surrogates).

    Returns:
        (data, offsets, starts, lengths): token ``j`` is ``data[starts[j]:starts[j] + lengths[j]]`` (lowercased,
        accents stripped, UTF-8); text ``i``'s tokens are ``offsets[i]:offsets[i + 1]``. ``data`` ends in
        padding that ``_token_hashes`` relies on.
    """
    data, bounds = normalized(texts)
    unicode = bool(data.max(initial=0) >= 0x80)
    # Runs of word bytes: edges alternate start, end, as every text begins with a space and the pad ends them.
    word = data != _SPACE
    edges = np.flatnonzero(word[1:] != word[:-1]) + 1
    starts, ends = edges[0::2], edges[1::2]
    lengths = ends - starts
    keep = lengths >= 2
    if unicode:  # a 2- to 4-byte run may still be one character
        maybe = np.flatnonzero(keep & (lengths <= 4))
        lead = data[starts[maybe]]
        size = np.where(lead >= 0xF0, 4, np.where(lead >= 0xE0, 3, np.where(lead >= 0xC0, 2, 1)))
        keep[maybe[size == lengths[maybe]]] = False
    starts, lengths = starts[keep], lengths[keep]
    return data, np.searchsorted(starts, bounds).astype(np.int64), starts, lengths
