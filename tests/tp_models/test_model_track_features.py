"""The model reads the hand-made track features: whole videos, causal, the same everywhere."""

from __future__ import annotations

import numpy as np
import pytest

from tests.tp_models.batches import track_batch
from tests.tp_models.track_files import random_rows
from tp_models.model import ModelConfig, build_pipeline, checkpoint_dict, load_pipeline
from tp_models.model.features import TRACK_FEATURE_NAMES, track_feature_inputs
from tp_models.serving.rows import score_rows
from tp_models.tracks.features import earlier_detections_nearby, past_detections_nearby
from tp_models.tracks.running import SCENE_HALF_LIFE
from tp_models.tracks.table import rows_to_batch

SMALL = ModelConfig(d_model=16, n_heads=2, n_layers=1, ff_dim=32, feature_dim=16)
FRAMES = 10


def clutter_scene(neighbour_x: float):
    """Track 0 moves through (40, 40) from frame 4; track 1 of the same video sat at
    (neighbour_x, 40) in frames 0-3 (a clutter spot when it is at 40)."""
    observed = np.zeros((2, FRAMES), dtype=bool)
    observed[0, 4:] = True
    observed[1, :4] = True
    position = np.full((2, FRAMES, 2), np.nan, dtype=np.float32)
    position[0, 4:] = np.column_stack([40.0 + np.arange(6) * 0.5, np.full(6, 40.0)])
    position[1, :4] = (neighbour_x, 40.0)
    return track_batch(observed, position=position, area=20.0, video=[3, 3])


def test_the_clutter_map_count_reaches_the_model_from_other_tracks_of_the_video() -> None:
    near, far = clutter_scene(40.0), clutter_scene(100.0)
    count = TRACK_FEATURE_NAMES.index("clutter_count")
    # One other track born at (40, 40) four frames earlier, its weight decayed since.
    decayed = 0.5 ** (4 / SCENE_HALF_LIFE)
    assert track_feature_inputs(near, (128, 128))[0, 4, count] == pytest.approx(np.log1p(decayed))
    assert track_feature_inputs(far, (128, 128))[0, 4, count] == 0.0
    model = build_pipeline(SMALL, seed=0)
    assert not np.allclose(model.score(near)[0, 4:], model.score(far)[0, 4:])


def test_scores_do_not_depend_on_how_the_batch_is_chunked() -> None:
    # Track features are computed on the whole batch before the model's chunks.
    batch = clutter_scene(40.0)
    model = build_pipeline(SMALL, seed=0)
    whole = model.score(batch)
    model.score_batch_size = 1
    np.testing.assert_allclose(model.score(batch), whole, atol=1e-6)


def test_track_features_are_causal_in_the_model() -> None:
    rows = random_rows(seed=4, n_tracks=10, frame_size=(128, 128))
    batch = rows_to_batch(rows)[0]
    model = build_pipeline(SMALL, seed=0)
    scores = model.score(batch)
    cut = batch.frames // 2
    future = rows_to_batch(rows.take(rows.frame <= cut))[0]
    # The same tracks seen only up to ``cut``: every score up to ``cut`` is unchanged.
    kept = np.isin(np.unique(rows.track_id), rows.track_id[rows.frame <= cut])
    np.testing.assert_allclose(model.score(future)[:, :cut], scores[kept, :cut], atol=1e-5, rtol=0)


def test_score_rows_counts_clutter_before_aligning_tracks() -> None:
    # score_rows scores every track from its own first frame; the clutter-map count must
    # still compare tracks at the same frames, as the frame-aligned batch does.
    rows = random_rows(seed=5, n_tracks=25, frame_size=(128, 128))
    batch, track, frame = rows_to_batch(rows)
    assert past_detections_nearby(batch, 4.0).sum() > 0  # the test has clutter to count
    model = build_pipeline(SMALL, seed=0)
    aligned = model.score(batch)[track, frame]
    np.testing.assert_allclose(score_rows(model, rows), aligned, atol=1e-5, rtol=0)


def test_the_clutter_map_scorer_counts_earlier_detections_of_other_tracks() -> None:
    rng = np.random.default_rng(0)
    n = 200
    position = rng.random((n, 2)) * 20
    frame, video, track = rng.integers(0, 10, n), rng.integers(0, 2, n), rng.integers(0, 30, n)
    every = earlier_detections_nearby(position, frame, video, track, 3.0)
    some = np.array([5, 17, 150])
    by_hand = [
        sum(
            np.hypot(*(position[j] - position[i])) <= 3.0
            and frame[j] < frame[i]
            and video[j] == video[i]
            and track[j] != track[i]
            for j in range(n)
        )
        for i in some
    ]
    assert every[some].tolist() == by_hand


def test_a_checkpoint_from_before_track_features_loads_as_a_model_without_them() -> None:
    old = build_pipeline(ModelConfig(**{**SMALL.to_dict(), "track_features": False}), seed=0)
    checkpoint = checkpoint_dict(old)
    del checkpoint["config"]["track_features"]  # what checkpoints written before look like
    loaded = load_pipeline(checkpoint)
    assert loaded.config.track_features is False
    assert "track_features" not in loaded.input_keys
