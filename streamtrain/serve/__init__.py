"""Serving: the vectorizer as a TensorFlow graph, the SavedModel export, the serving check, TF Serving's layout."""
