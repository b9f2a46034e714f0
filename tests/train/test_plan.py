"""``train.plan``: what every worker of a fit derives alike from the options and the manifest (its streams, the
rounds of an epoch, the schedule), on a tiny prepared dataset; and the rules behind it."""

from __future__ import annotations

import dataclasses
import math
import random

import pytest
from helpers import prepare_csv, write_csv

from streamtrain.dataset.manifest import Manifest
from streamtrain.errors import DataError, UsageError
from streamtrain.train.cluster import Cluster
from streamtrain.train.fit import FitOptions
from streamtrain.train.plan import (
    MAX_VALIDATIONS,
    MIN_VALIDATIONS,
    MODELS_FOR_ENCODING,
    VALIDATION_ROWS,
    choose_model,
    make_plan,
    validations_per_epoch,
)


def test_validations_per_epoch_are_the_option_or_one_per_validation_rows_between_the_bounds():
    assert validations_per_epoch(1, 10**9) == 1 and validations_per_epoch(50, 0) == 50
    assert validations_per_epoch(None, 0) == MIN_VALIDATIONS
    assert validations_per_epoch(None, VALIDATION_ROWS * (MIN_VALIDATIONS - 1)) == MIN_VALIDATIONS
    assert validations_per_epoch(None, VALIDATION_ROWS * 10) == 10
    assert validations_per_epoch(None, VALIDATION_ROWS * 7 + VALIDATION_ROWS // 3) == 7  # the nearest count
    assert validations_per_epoch(None, VALIDATION_ROWS * 7 + VALIDATION_ROWS * 2 // 3) == 8
    # IMDB x8 (179k rows) keeps its 32; millions of rows validate 32 times an epoch, not once per 5,600 rows.
    assert validations_per_epoch(None, 178_872) == MAX_VALIDATIONS == 32
    assert validations_per_epoch(None, 2_000_000) == validations_per_epoch(None, 8_000_000) == MAX_VALIDATIONS
    assert validations_per_epoch(500, 8_000_000) == 500  # the option is not capped


def test_a_model_must_read_the_rows_of_the_encoding():
    for encoding, models in MODELS_FOR_ENCODING.items():
        assert choose_model("auto", encoding) == models[0]
        for model in models:
            assert choose_model(model, encoding) == model
    with pytest.raises(UsageError, match="--model sepcnn cannot read ngram rows; use --model mlp or linear or auto"):
        choose_model("sepcnn", "ngram")
    with pytest.raises(UsageError, match="cannot read sequence rows"):
        choose_model("linear", "sequence")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """400 rows of two classes in 4-row blocks: a few hundred training rows, a few blocks of validation rows."""
    rng = random.Random(1)
    words = [f"w{i}" for i in range(500)]  # distinct texts: no near-copies for the split to group
    rows = [(" ".join(rng.choice(words) for _ in range(10)), rng.choice(["neg", "pos"])) for _ in range(400)]
    root = tmp_path_factory.mktemp("tiny")
    data = prepare_csv(write_csv(root / "t.csv", rows), root / "data", shard_rows=100, block_rows=4)
    return str(data), Manifest.load(data)


def plan_of(tiny, cluster: Cluster | None = None, **options):
    data, manifest = tiny
    return make_plan(FitOptions(data, "unused-model-dir", **options), manifest, cluster or Cluster())


def test_the_streams_cover_the_splits_in_batches_of_the_options(tiny):
    _, manifest = tiny
    train_rows, val_rows = manifest.rows("train"), manifest.rows("val")
    assert train_rows > 200 and val_rows > 10
    plan = plan_of(tiny, batch_size=32, validation_rows=0)
    from streamtrain.train.scoring import SCORE_BATCH  # TensorFlow, imported quietly by make_plan

    assert plan.manifest is manifest
    assert plan.train.rows == train_rows and plan.train.batch_size == 32 and plan.train.shuffle
    assert plan.train.steps == math.ceil(train_rows / 32)
    assert plan.val.rows == val_rows and not plan.val.shuffle  # validation_rows 0: the whole split
    assert plan.val.batch_size == SCORE_BATCH["ngram"]  # validation batches are scoring batches
    assert plan_of(tiny, score_batch_size=5).val.batch_size == 5


def test_a_validation_sample_holds_at_least_the_rows_asked_for_and_fewer_than_the_split(tiny):
    _, manifest = tiny
    sampled = plan_of(tiny, validation_rows=9).val
    assert 9 <= sampled.rows < manifest.rows("val")
    assert sampled.blocks is not None
    assert plan_of(tiny, validation_rows=10**6).val.rows == manifest.rows("val")  # more than there are: all


@pytest.mark.parametrize(("validations", "batch_size"), [(3, 16), (4, 32), (1, 8), (100, 64)])
def test_the_rounds_of_an_epoch_cover_its_steps(tiny, validations, batch_size):
    plan = plan_of(tiny, validations=validations, batch_size=batch_size, epochs=3)
    steps = plan.train.steps
    assert plan.per_epoch == min(validations, steps)  # never more rounds than steps
    assert plan.per_epoch * plan.round_steps >= steps > (plan.per_epoch - 1) * plan.round_steps
    assert plan.schedule.epochs == 3 and plan.rounds == 3 * plan.per_epoch


def test_without_validation_rows_an_epoch_is_one_round(tiny):
    data, manifest = tiny
    no_val = dataclasses.replace(manifest, shards=[s for s in manifest.shards if s.split != "val"])
    plan = make_plan(FitOptions(data, "m", validations=5, batch_size=16), no_val, Cluster())
    assert plan.val.rows == 0
    assert plan.per_epoch == 1 and plan.round_steps == plan.train.steps


def test_each_worker_of_a_cluster_takes_its_share_of_the_batch_and_the_same_steps(tiny):
    _, manifest = tiny
    cluster = ("h:1", "h:2", "h:3")
    plans = [plan_of(tiny, Cluster(cluster, i), batch_size=32, validations=4) for i in range(3)]
    train_rows = manifest.rows("train")
    assert [p.train.batch_size for p in plans] == [math.ceil(32 / 3)] * 3
    assert {p.train.steps for p in plans} == {math.ceil(math.ceil(train_rows / 3) / math.ceil(32 / 3))}
    assert sum(p.train.worker_rows for p in plans) == train_rows
    assert len({(p.per_epoch, p.round_steps, p.schedule) for p in plans}) == 1  # no worker has to be told


def test_a_dataset_without_training_rows_or_a_model_that_cannot_read_it_is_refused(tiny):
    data, manifest = tiny
    empty = dataclasses.replace(manifest, shards=[s for s in manifest.shards if s.split != "train"])
    with pytest.raises(DataError, match="no training rows"):
        make_plan(FitOptions(data, "m"), empty, Cluster())
    with pytest.raises(UsageError, match="--model sepcnn cannot read ngram rows"):
        plan_of(tiny, model="sepcnn")


def test_every_trial_that_starts_where_another_did_iterates_its_pipeline_afresh(tiny):
    from streamtrain.train.rounds import pipeline

    plan = plan_of(tiny, batch_size=32)

    def labels(dataset) -> list[list[float]]:
        return [y.numpy().ravel().tolist() for _, y in dataset.take(plan.train.steps + 3)]  # into the next epoch

    first, failed = pipeline(plan, plan.train)
    failed.append(ValueError("a damaged shard, in an earlier trial"))
    again, failures = pipeline(plan, plan.train)
    assert again is first and failures is failed and not failures  # built once; an earlier trial's failure forgotten
    assert labels(again) == labels(first)  # each iteration from the first batch, in the same order
    later, _ = pipeline(plan, plan.train, 1, 2)  # a trial resumed in epoch 1 after 2 batches
    assert later is not first and labels(later)[0] == labels(first)[plan.train.steps + 2]
