"""Which vectorizers the serving graph reproduces (``exportable``, ``config_exportable``).

Owned here, below both ``serve.graph`` (which refuses what is not exportable) and ``serve.export`` (which writes
the SavedModel), so neither imports the other to ask; no TensorFlow is imported.
"""

from __future__ import annotations

from streamtrain.vectorize.ngrams import HASHER
from streamtrain.vectorize.sequence import CODEPOINT, SequenceConfig
from streamtrain.vectorize.tfidf import SKLEARN_HASHER, NgramConfig
from streamtrain.vectorize.vectorizer import Vectorizer


def exportable(vectorizer: Vectorizer) -> str | None:
    """Whether ``serve.graph.VectorizerGraph`` reproduces ``vectorizer`` exactly.

    Returns:
        None when it does; else one short reason why not.
    """
    return config_exportable(vectorizer.state.config)


def config_exportable(config: NgramConfig | SequenceConfig) -> str | None:
    """``exportable`` from a vectorizer's configuration alone (no TensorFlow, no arrays).

    n-grams hashed by ``ngrams.HASHER`` (datasets since 0.4) and sequences lowered per code point
    (``sequence.CODEPOINT``, datasets since 0.12) can be exported.

    Args:
        config: an ``NgramConfig`` or a ``SequenceConfig``.

    Returns:
        None when it can be exported; else one short reason why not.
    """
    if isinstance(config, NgramConfig):
        if config.hasher == SKLEARN_HASHER:
            return "made before 0.4: murmur3 n-gram hashes (prepare the dataset again to serve it)"
        if config.hasher != HASHER:
            return f"unknown n-gram hasher {config.hasher!r}"
        return None
    if config.lowercase != CODEPOINT:
        return "made before 0.12: sequence tokens lowered in context (prepare the dataset again to serve it)"
    return None
