"""The guide's S/W rule picks the vectorizer: n-grams below 1500 samples per median word, sequences above."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import REPO

from streamtrain.vectorize.choice import choose_vectorizer
from streamtrain.vectorize.defaults import SW_THRESHOLD


def test_rule_boundaries():
    assert SW_THRESHOLD == 1500
    assert choose_vectorizer("auto", 1500, 1.0)["chosen"] == "sequence"
    assert choose_vectorizer("auto", 1499, 1.0)["chosen"] == "ngram"
    assert choose_vectorizer("auto", 30_000, 20.0)["chosen"] == "sequence"
    assert choose_vectorizer("auto", 25_000, 174.0)["chosen"] == "ngram"  # IMDB
    assert choose_vectorizer("ngram", 10**7, 1.0)["chosen"] == "ngram"  # forced choices win
    assert choose_vectorizer("sequence", 10, 100.0)["chosen"] == "sequence"
    c = choose_vectorizer("auto", 7600, 37.0)
    assert c["samples_per_word"] == pytest.approx(205.405, abs=1e-3) and c["requested"] == "auto"


def test_auto_picks_sequences_for_ag_news_repeated_40_times(ag_news_csv, tmp_path):
    grown = tmp_path / "ag_x40.csv.gz"
    subprocess.run(
        [
            sys.executable,
            REPO / "tools" / "grow.py",
            ag_news_csv,
            grown,
            "--factor",
            "40",
            "--dropout",
            "0",
            "--csv-label-col",
            "0",
            "--csv-text-cols",
            "1",
            "2",
        ],
        check=True,
        capture_output=True,
    )
    out = tmp_path / "data"
    proc = subprocess.run(
        [sys.executable, "-m", "streamtrain", "prepare", grown, "--data", out, "--max-length", "64"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (
        "S = 304000 samples, W = 37 median words per sample, S/W = 8216.2 -> sequence (threshold 1500)" in proc.stderr
    )
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["encoding"] == "sequence" and manifest["sequence_length"] == 64
    assert manifest["choice"] == {
        "requested": "auto",
        "chosen": "sequence",
        "samples": 304_000,
        "median_words_per_sample": 37.0,
        "samples_per_word": pytest.approx(304_000 / 37),
        "threshold": 1500.0,
    }
    assert manifest["stats"]["rows"]["train"] + manifest["stats"]["rows"]["val"] == 304_000
