"""Text -> features: the split, the label map, corpus statistics, the vectorizer choice, n-grams and sequences."""
