"""Serving: the fitted vectorizer as a TensorFlow graph that takes raw text."""
