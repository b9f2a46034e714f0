"""Which vectorizer a corpus gets: the guide's samples-per-word rule, with the numbers behind it.

``choose_vectorizer`` returns the choice as the manifest records it under
``choice``: what was requested, what was chosen, and S, W and S/W.
"""

from __future__ import annotations

from streamtrain.vectorize.defaults import SW_THRESHOLD

VECTORIZERS = ("auto", "ngram", "sequence")
# Names written by streamtrain 0.1.0 (encoding "tfidf", vectorizer kind "ngram_tfidf"), read as today's.
LEGACY_NAMES = {"ngram_tfidf": "ngram", "tfidf": "ngram"}


def choose_vectorizer(requested: str, samples: int, median_words: float) -> dict:
    """The guide's rule and the numbers behind it: sequences when S/W >= ``SW_THRESHOLD``."""
    ratio = samples / median_words if median_words else float("inf")
    chosen = requested if requested != "auto" else ("sequence" if ratio >= SW_THRESHOLD else "ngram")
    return {
        "requested": requested,
        "chosen": chosen,
        "samples": samples,
        "median_words_per_sample": median_words,
        "samples_per_word": ratio if ratio != float("inf") else None,
        "threshold": SW_THRESHOLD,
    }
