"""``fit.prebuild``: the model ``train`` builds and warms up while its prepare runs trains exactly as fit's own."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest
from conftest import DEMO_TEST, DEMO_TRAIN
from helpers import prepare_csv

from streamtrain.cli.train import Announcer, _prebuilt
from streamtrain.dataset.manifest import Manifest, ModelInputs
from streamtrain.train.fit import FitOptions, fit, prebuild
from streamtrain.train.modeldir import load_model


@pytest.mark.parametrize("encoding", ["ngram", "sequence"])
def test_a_prebuilt_model_trains_exactly_as_fits_own(tmp_path, encoding):
    data = prepare_csv(DEMO_TRAIN, tmp_path / "data", DEMO_TEST, vectorizer=encoding, block_rows=64)
    inputs = Manifest.load(data).model_inputs

    def opts(name: str) -> FitOptions:
        return FitOptions(
            export=False, data=str(data), model_dir=str(tmp_path / name), epochs=2, seed=5, filters=16, tune_seconds=0
        )

    own = fit(opts("own"))
    prebuilt = prebuild(opts("prebuilt"), inputs)
    warmed = [w.copy() for w in prebuilt.trainer.model.get_weights()]
    built_ahead = {split: late for split, (_, late, _) in prebuilt.pipelines.items()}
    assert sorted(built_ahead) == ["train", "val"] and all(late.chunks is None for late in built_ahead.values())
    used = fit(opts("prebuilt"), prebuilt)
    # Its pipelines, built before the dataset existed, were bound to the dataset's streams and read.
    assert not prebuilt.pipelines and all(late.chunks is not None for late in built_ahead.values())
    # The warm-up's empty steps left nothing behind: the same losses and the same final weights to the bit.
    for key in ("val_loss", "test_loss", "test_accuracy", "epochs", "best_epoch"):
        assert used[key] == own[key], key
    mine, theirs = (load_model(tmp_path / name / "current").get_weights() for name in ("prebuilt", "own"))
    assert all(np.array_equal(a, b) for a, b in zip(mine, theirs))
    assert not all(np.array_equal(a, b) for a, b in zip(warmed, prebuilt.trainer.model.get_weights()))  # it trained

    # Built for other inputs (another class count): not used; fit builds its own and trains the same.
    other = prebuild(
        opts("other"), ModelInputs(inputs.encoding, inputs.n_features, inputs.row_width, inputs.n_classes + 1)
    )
    untouched = [w.copy() for w in other.trainer.model.get_weights()]
    assert fit(opts("other"), other)["val_loss"] == own["val_loss"]
    assert all(np.array_equal(a, b) for a, b in zip(untouched, other.trainer.model.get_weights()))
    dataset, late, _ = other.pipelines["train"]  # never bound: reading it fails rather than yield nothing
    assert late.chunks is None
    with pytest.raises(Exception, match="before its stream was bound"):
        next(iter(dataset))

    # Built with other options (a seed of its own): not used either.
    seeded = prebuild(dataclasses.replace(opts("seeded"), seed=6), inputs)
    untouched = [w.copy() for w in seeded.trainer.model.get_weights()]
    assert fit(opts("seeded"), seeded)["val_loss"] == own["val_loss"]
    assert all(np.array_equal(a, b) for a, b in zip(untouched, seeded.trainer.model.get_weights()))


def test_train_builds_again_for_a_second_announcement_and_fit_trains_the_last(tmp_path):
    """The bake-off chose sequences after the n-gram stage ran ahead: prepare announced n-gram inputs, then the
    sequence dataset's. ``train`` builds a model for each in turn; fit trains the last, the one it fits."""
    data = prepare_csv(DEMO_TRAIN, tmp_path / "data", DEMO_TEST, vectorizer="sequence", block_rows=64)
    inputs = Manifest.load(data).model_inputs
    opts = FitOptions(
        export=False, data=str(data), model_dir=str(tmp_path / "m"), epochs=2, seed=5, filters=16, tune_seconds=0
    )
    heard, told = os.pipe()
    announcer = Announcer(told)
    announcer(ModelInputs("ngram", 3000, 3000, inputs.n_classes))
    announcer(inputs)
    announcer.close()
    try:
        prebuilt = _prebuilt(opts, heard)
    finally:
        os.close(heard)
    assert prebuilt is not None and prebuilt.inputs == inputs and prebuilt.candidate.model == "sepcnn"
    result = fit(opts, prebuilt)
    assert not prebuilt.pipelines  # its pipelines were bound to the dataset's streams: fit trained this model
    assert result["promoted"]
