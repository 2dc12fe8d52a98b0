"""Imported rows as a TrackBatch, scores back onto the rows, per-track frame sizes."""

from __future__ import annotations

import numpy as np
import torch

from tests.tp_models.batches import track_batch
from tests.tp_models.track_files import random_rows
from tp_models.core.batch import TrackBatch
from tp_models.model import ModelConfig, build_pipeline, kinematic_features
from tp_models.model.features import to_model_frame
from tp_models.perception.detect import detect
from tp_models.perception.tracker import TrackerConfig, innovation_loglik, track_detections
from tp_models.scorers.counting import TrackLength
from tp_models.serving.rows import score_rows
from tp_models.tracks.table import TrackRows, rows_to_batch
from tp_models.world.config import SceneConfig
from tp_models.world.simulate import assign_video_types, simulate

SMALL = ModelConfig(d_model=16, n_heads=2, n_layers=2, ff_dim=32, feature_dim=16)


def test_rows_land_in_their_track_and_frame() -> None:
    rows = random_rows()
    batch, track, frame = rows_to_batch(rows, labels={1: 1, 2: 0})
    ids = np.unique(rows.track_id)
    np.testing.assert_array_equal(ids[track], rows.track_id)
    np.testing.assert_array_equal(frame, rows.frame - 1)
    np.testing.assert_allclose(batch.position[track, frame, 0], rows.x, rtol=1e-6)
    np.testing.assert_allclose(batch.area[track, frame], rows.w * rows.h, rtol=1e-6)
    assert batch.observed.sum() == len(rows) and batch.frames == rows.n_frames
    assert list(batch.label[:3]) == [1, 0, -1]
    np.testing.assert_array_equal(batch.frame_size, np.tile([480, 640], (len(batch), 1)))
    assert np.isnan(batch.color).all()


def test_score_rows_keeps_every_row_in_input_order() -> None:
    rows = random_rows(seed=2)
    scores = score_rows(TrackLength(), rows)
    # TrackLength at a row = the track's rows up to and including that frame.
    expected = [
        np.sum((rows.track_id == rows.track_id[i]) & (rows.frame <= rows.frame[i]))
        for i in range(len(rows))
    ]
    np.testing.assert_array_equal(scores, expected)


def test_loglik_of_imported_tracks_is_the_tracker_s_own() -> None:
    scene = simulate(SceneConfig(), assign_video_types([3, 0, 0, 0], 0), np.arange(3), 0)
    for video in scene.videos:
        tracks = track_detections(detect(video), TrackerConfig())
        again = innovation_loglik(tracks.position, tracks.observed)
        assert np.isfinite(tracks.loglik).sum() > 10
        np.testing.assert_allclose(again, tracks.loglik, rtol=1e-5, equal_nan=True)


def synthetic_batch(seed: int = 0, b: int = 8, t: int = 25) -> TrackBatch:
    rng = np.random.default_rng(seed)
    observed = rng.random((b, t)) < 0.7
    position = (rng.random((b, t, 2)) * 128).astype(np.float32)
    position[~observed] = np.nan
    color = np.full((b, t, 3), 100.0)  # seen or not
    return track_batch(observed, position, area=30.0, color=color, video=np.arange(b))


def test_frame_size_none_leaves_model_outputs_unchanged() -> None:
    batch = synthetic_batch()
    for appearance in (False, True):
        model = build_pipeline(ModelConfig(use_appearance=appearance), seed=0)
        plain = model.score(batch)
        same = batch.select(np.arange(len(batch)))
        same.frame_size = np.tile([128.0, 128.0], (len(batch), 1))
        np.testing.assert_array_equal(model.score(same), plain)
        other = batch.select(np.arange(len(batch)))
        other.frame_size = np.tile([256.0, 512.0], (len(batch), 1))
        assert np.nanmax(np.abs(model.score(other) - plain)) > 1e-4  # the field is read


def test_positions_are_normalised_by_each_track_s_own_frame() -> None:
    batch = synthetic_batch()
    position = torch.as_tensor(np.nan_to_num(batch.position))
    observed = torch.as_tensor(batch.observed)
    small = kinematic_features(position, observed, (128, 128))
    sizes = torch.tensor([[1080.0, 1920.0]]).repeat(len(batch), 1)
    mapped, _ = to_model_frame(position * torch.tensor([15.0, 1080 / 128]), None, sizes, (128, 128))
    big = kinematic_features(mapped, observed, (128, 128))
    torch.testing.assert_close(big[..., :2], small[..., :2])  # x, y in -1..1 either way
    assert batch.select(np.array([1, 3])).frame_size is None


def test_score_rows_memory_follows_rows_not_a_long_life() -> None:
    # The 0.7 MB file: 20,000 one-row tracks and one id seen at frames 1 and
    # 200,000. One dense (tracks x longest life) batch asked for ~60 GiB; per-bucket
    # batches cost the rows of a bucket times its own longest life.
    import tracemalloc

    rng = np.random.default_rng(0)
    n = 20_000
    frame = np.concatenate([rng.integers(1, 200_001, n), [1, 200_000]])
    track_id = np.concatenate([np.arange(1, n + 1), [n + 1, n + 1]])
    rows = TrackRows(
        frame=frame,
        track_id=track_id,
        x=rng.random(n + 2) * 1900,
        y=rng.random(n + 2) * 1060,
        w=np.full(n + 2, 30.0),
        h=np.full(n + 2, 60.0),
        conf=np.full(n + 2, np.nan),
        frame_size=(1080, 1920),
        n_frames=200_000,
    )
    tracemalloc.start()
    try:
        # Kept whole across its gap (no forgetting), the long track costs its own life.
        scores = score_rows(TrackLength(), rows, forget_after=None)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(scores[:n], 1.0)
    np.testing.assert_array_equal(scores[n:], [1.0, 2.0])
    assert peak < 200e6, f"score_rows peaked at {peak / 1e6:.0f} MB"
    # By default the id after its 199,998 unseen frames is a new track, as online.
    np.testing.assert_array_equal(score_rows(TrackLength(), rows)[n:], [1.0, 1.0])


def test_split_at_gaps_makes_a_new_track_after_more_than_max_gap_unseen_frames() -> None:
    rows = TrackRows(
        frame=np.array([1, 2, 33, 65, 5, 10**9]),
        track_id=np.array([7, 7, 7, 7, 8, 8]),
        x=np.zeros(6),
        y=np.zeros(6),
        w=np.ones(6),
        h=np.ones(6),
        conf=np.ones(6),
        frame_size=(10, 10),
        n_frames=10**9,
    )
    # 7: frames 2 -> 33 leave 30 unseen (kept), 33 -> 65 leave 31 (cut); 8: cut at 10^9.
    assert rows.split_at_gaps(30).track_id.tolist() == [1, 1, 1, 2, 3, 4]
    assert rows.split_at_gaps(None) is rows


def test_a_cut_selects_each_track_at_its_own_frames_without_the_whole_span():
    rng = np.random.default_rng(0)
    observed = rng.random((6, 9)) < 0.5
    batch = track_batch(observed, position=rng.normal(size=(6, 9, 2)), loglik=-2.0, label=1)
    batch.extras = {"scene": rng.normal(size=(6, 9, 5)), "p": rng.random(6)}
    batch.frame_size = rng.random((6, 2))
    for index in (np.array([4, 1, 2]), np.array([False, True, True, False, True, False])):
        rows = np.flatnonzero(index) if index.dtype == bool else index
        frames = rng.integers(0, 9, (len(rows), 4))
        cut, whole = batch.select(index, frames), batch.select(index)
        at = np.arange(len(rows))[:, None], frames
        for name in ("position", "observed", "area", "color", "loglik"):
            np.testing.assert_array_equal(getattr(cut, name), getattr(whole, name)[at])
        np.testing.assert_array_equal(cut.extras["scene"], whole.extras["scene"][at])
        for name in ("label", "video", "frame_size"):
            np.testing.assert_array_equal(getattr(cut, name), getattr(whole, name))
        np.testing.assert_array_equal(cut.extras["p"], whole.extras["p"])
