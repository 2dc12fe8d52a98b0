"""The training loop on a toy problem: it learns, is deterministic and resumes exactly."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from storage.track_reader import concat_batches
from tests.tp_models.model_helpers import MODEL, toy_tracks
from tp_models.core.batch import TrackBatch
from tp_models.model import TrainConfig, build_pipeline, fit, validation_metrics

TRAIN = TrainConfig(lr=3e-3, batch_size=64, max_epochs=4, patience=3, seed=7)


@pytest.fixture(scope="module")
def data() -> tuple[list[TrackBatch], list[TrackBatch]]:
    return [toy_tracks(256, 0), toy_tracks(256, 1)], [toy_tracks(256, 2)]


def losses(history: list[dict[str, float]]) -> list[tuple[float, float]]:
    return [(h["train_loss"], h["val_loss"]) for h in history]


def test_training_learns_the_toy_problem(data) -> None:
    train, val = data
    pipeline = build_pipeline(MODEL, seed=0)
    before = validation_metrics(pipeline, val, TRAIN)
    result = fit(pipeline, train, val, TRAIN)
    history = result.history
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert result.best_val_loss < before["loss"] - 0.2
    after = validation_metrics(pipeline, val, TRAIN)
    assert after["loss"] == pytest.approx(result.best_val_loss)  # best weights restored
    # Half the tracks are positive: always saying "persistent" gives F1 = 0.67.
    assert after["f1_full"] > 0.9
    assert after["f1_k3"] > 0.8
    assert set(history[0]) >= {"val_f1_full", "val_f1_k3", "train_samples_per_s"}


def test_same_seed_gives_identical_losses(data) -> None:
    train, val = data
    config = TrainConfig(**{**TRAIN.to_dict(), "max_epochs": 2})
    first = fit(build_pipeline(MODEL, seed=0), train, val, config)
    second = fit(build_pipeline(MODEL, seed=0), train, val, config)
    assert losses(first.history) == losses(second.history)
    other = fit(
        build_pipeline(MODEL, seed=0), train, val, TrainConfig(**{**config.to_dict(), "seed": 8})
    )
    assert losses(other.history) != losses(first.history)


def test_a_group_of_batches_trains_as_the_batches_joined(data) -> None:
    """A group (a few store chunks) is converted part by part, so its memory is one part's
    frame span; training on it gives the losses of the parts joined into one batch."""
    (first, second), val = data
    second = dataclasses.replace(second, video=second.video + 1)  # another video's tracks
    config = TrainConfig(**{**TRAIN.to_dict(), "max_epochs": 2})
    grouped = fit(build_pipeline(MODEL, seed=0), [[first, second]], val, config)
    joined = fit(build_pipeline(MODEL, seed=0), [concat_batches([first, second])], val, config)
    assert losses(grouped.history) == losses(joined.history)


def test_resume_equals_uninterrupted_run(data, tmp_path) -> None:
    train, val = data
    whole = build_pipeline(MODEL, seed=0)
    uninterrupted = fit(whole, lambda: iter(train), val, TRAIN)

    saved = tmp_path / "state.pt"
    interrupted = TrainConfig(**{**TRAIN.to_dict(), "max_epochs": 2})
    fit(
        build_pipeline(MODEL, seed=0),
        train,
        val,
        interrupted,
        on_epoch=lambda epoch, metrics, state: torch.save(state, saved),
    )
    # A fresh process would rebuild the model from its config, with any initial weights.
    resumed_model = build_pipeline(MODEL, seed=123)
    state = torch.load(saved, weights_only=True)
    resumed = fit(resumed_model, train, val, TRAIN, resume_state=state)

    assert resumed.epochs_run == TRAIN.max_epochs - 2
    assert losses(resumed.history) == losses(uninterrupted.history)
    for key, value in whole.state_dict().items():
        torch.testing.assert_close(resumed_model.state_dict()[key], value, atol=0, rtol=0)


def test_early_stopping_restores_the_best_epoch(data) -> None:
    train, val = data
    seen: dict[int, dict] = {}
    # min_delta so large that no epoch after the first counts as an improvement: the run
    # must stop after `patience` more epochs and come back to the first epoch's weights.
    config = TrainConfig(lr=3e-3, batch_size=64, max_epochs=8, patience=2, min_delta=10.0)
    pipeline = build_pipeline(MODEL, seed=0)
    result = fit(
        pipeline,
        train,
        val,
        config,
        on_epoch=lambda epoch, metrics, state: seen.update({epoch: state}),
    )
    assert result.stopped_early and len(result.history) == 3
    assert result.best_epoch == 0
    last = seen[2]["model"]
    for key, value in pipeline.state_dict().items():
        torch.testing.assert_close(value, seen[0]["model"][key], atol=0, rtol=0)
    assert any(not torch.equal(last[k], v) for k, v in pipeline.state_dict().items())


def test_one_shot_generator_is_refused_after_first_epoch(data) -> None:
    train, val = data
    with pytest.raises(ValueError, match="factory"):
        fit(
            build_pipeline(MODEL, seed=0),
            (b for b in train),
            val,
            TrainConfig(max_epochs=2, batch_size=64),
        )


def test_progress_inside_an_epoch_is_reported_and_changes_nothing(data) -> None:
    train, val = data
    config = TrainConfig(**{**TRAIN.to_dict(), "max_epochs": 2})
    steps: list[tuple[int, int]] = []
    watched = fit(
        build_pipeline(MODEL, seed=0), train, val, config, on_step=lambda *a: steps.append(a)
    )
    plain = fit(build_pipeline(MODEL, seed=0), train, val, config)
    assert losses(watched.history) == losses(plain.history)
    per_epoch = 512 // config.batch_size  # two batches of 256 tracks, 64 a step
    assert [epoch for epoch, _ in steps] == [0] * per_epoch + [1] * per_epoch
    assert [tracks for _, tracks in steps[:per_epoch]] == [64 * (i + 1) for i in range(per_epoch)]
