"""The pipeline as a scorer (numpy in, numpy out) and its checkpoints."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from tests.tp_models.batches import track_batch
from tp_models.core.batch import TrackBatch
from tp_models.core.checkpoint import CheckpointMismatchError
from tp_models.model import (
    ModelConfig,
    build_pipeline,
    checkpoint_dict,
    load_pipeline,
    save_checkpoint,
)

CONFIG = ModelConfig(d_model=16, n_heads=2, n_layers=2, ff_dim=32, feature_dim=16)


def make_batch(b: int = 9, t: int = 25, seed: int = 0) -> TrackBatch:
    rng = np.random.default_rng(seed)
    observed = rng.random((b, t)) < 0.6
    observed[0, :10] = False
    observed[1] = False
    position = (rng.random((b, t, 2)) * 128).astype(np.float32)
    position[~observed] = np.nan
    label = rng.random(b) < 0.5
    return track_batch(observed, position, area=40.0, color=120.0, label=label, video=np.arange(b))


def _lives(observed: np.ndarray) -> np.ndarray:
    """(B, T) True from each track's first to its last observation."""
    seen = np.logical_or.accumulate(observed, axis=1)
    return seen & np.logical_or.accumulate(observed[:, ::-1], axis=1)[:, ::-1]


def test_score_is_numpy_probabilities_over_each_life_and_nan_elsewhere() -> None:
    pipeline = build_pipeline(CONFIG, seed=0)
    batch = make_batch()
    scores = pipeline.score(batch)
    assert isinstance(scores, np.ndarray)
    assert scores.shape == (9, 25) and scores.dtype == np.float32
    life = _lives(batch.observed)
    assert np.isfinite(scores[life]).all() and np.isnan(scores[~life]).all()
    assert np.isnan(scores[1]).all()  # never observed
    assert ((scores[life] >= 0) & (scores[life] <= 1)).all()


@pytest.mark.parametrize("sequence", ["transformer", "gru"])
def test_score_over_lives_equals_reading_the_whole_frame_span(sequence: str) -> None:
    """Scoring each track's life alone, start-aligned, changes no value: the model reads
    track positions, masks leading padding and is causal."""
    pipeline = build_pipeline(dataclasses.replace(CONFIG, sequence=sequence), seed=0).eval()
    batch = make_batch(b=30, t=60, seed=2)
    batch.observed[2:, :] &= np.arange(60) < np.linspace(5, 60, 28).astype(int)[:, None]
    with torch.inference_mode():
        whole = pipeline(pipeline.tensors(batch))["persistence"].numpy()
    life = _lives(batch.observed)
    np.testing.assert_allclose(pipeline.score(batch)[life], whole[life], atol=1e-5, rtol=0)


def test_score_uses_eval_mode_and_restores_training_mode() -> None:
    pipeline = build_pipeline(CONFIG, seed=0).train()  # dropout on while training
    batch = make_batch()
    first = pipeline.score(batch)
    assert pipeline.training
    np.testing.assert_array_equal(pipeline.score(batch), first)  # dropout was off


def test_score_batches_internally_without_changing_results() -> None:
    pipeline = build_pipeline(CONFIG, seed=0)
    batch = make_batch(b=23)
    whole = pipeline.score(batch)
    pipeline.score_batch_size = 5
    np.testing.assert_allclose(pipeline.score(batch), whole, atol=1e-6, rtol=0)
    with torch.no_grad():
        one = pipeline.score(batch.select(np.array([4])))
    np.testing.assert_allclose(one[0], whole[4], atol=1e-6, rtol=0)


def test_checkpoint_round_trip_scores_identically(tmp_path) -> None:
    pipeline = build_pipeline(CONFIG, seed=3)
    # Move weights off their initial values so the round trip is not trivially equal.
    with torch.no_grad():
        for p in pipeline.parameters():
            p.add_(0.01 * torch.randn_like(p))
    path = tmp_path / "model.pt"
    save_checkpoint(pipeline, path)
    loaded = load_pipeline(path)
    batch = make_batch()
    np.testing.assert_array_equal(loaded.score(batch), pipeline.score(batch))
    assert loaded.config == pipeline.config
    assert not loaded.training


def test_checkpoint_loading_is_strict() -> None:
    checkpoint = checkpoint_dict(build_pipeline(CONFIG, seed=0))
    wrong_layers = {**checkpoint, "config": {**checkpoint["config"], "n_layers": 3}}
    with pytest.raises(RuntimeError, match="Missing key"):
        load_pipeline(wrong_layers)
    extra = {**checkpoint, "state_dict": {**checkpoint["state_dict"], "stray": torch.zeros(1)}}
    with pytest.raises(RuntimeError, match="Unexpected key"):
        load_pipeline(extra)
    # An earlier version's model read fewer hand-made inputs: its first layer is narrower.
    first = next(k for k, v in checkpoint["state_dict"].items() if v.ndim == 2)
    narrower = dict(checkpoint["state_dict"])
    narrower[first] = narrower[first][:, :-2]
    with pytest.raises(CheckpointMismatchError, match=f"wrong shapes: {first}"):
        load_pipeline({**checkpoint, "state_dict": narrower})
    with pytest.raises(ValueError, match="not a model checkpoint"):
        load_pipeline({"state_dict": checkpoint["state_dict"]})


def test_different_seeds_give_different_models() -> None:
    batch = make_batch()
    a = build_pipeline(CONFIG, seed=0).score(batch)
    b = build_pipeline(CONFIG, seed=0).score(batch)
    c = build_pipeline(CONFIG, seed=1).score(batch)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
