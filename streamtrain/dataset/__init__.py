"""Datasets: prepare, append and refit (raw text -> shards + manifest), the manifest and its records, shard files."""
