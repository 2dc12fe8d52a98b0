"""Streaming: a bounded-state model scores a long sequence online exactly as in batch, its
memory per track does not grow with age, and bad rows leave the scorer working."""

from __future__ import annotations

import numpy as np
import pytest

from tests.tp_models.test_online import online_scores, trained_like
from tests.tp_models.track_files import rows_from_table
from tp_models.model import ModelConfig
from tp_models.serving.online import OnlineScorer
from tp_models.serving.rows import TrackLifeError, score_rows
from tp_models.tracks.features import detection_scene_features
from tp_models.tracks.running import CLUTTER_CELL, SCENE_HALF_LIFE
from tp_models.tracks.table import TrackRows

GRU = ModelConfig(d_model=16, feature_dim=16, sequence="gru")
FRAME_SIZE = (480, 640)


def long_sequence(frames: int = 5000, n_tracks: int = 30, seed: int = 0) -> TrackRows:
    """Tracks over ``frames`` frames that vanish for a while and come back under the same
    id (gaps of up to 300 frames), some living thousands of frames, a box on every row."""
    rng = np.random.default_rng(seed)
    rows = []
    for track in range(1, n_tracks + 1):
        start = int(rng.integers(1, frames // 2))
        end = int(min(frames, start + rng.integers(1, frames)))
        position, velocity = rng.random(2) * [600, 440] + 20, rng.normal(0, 1.5, 2)
        frame = start
        while frame <= end:
            position = np.clip(position + velocity + rng.normal(0, 0.5, 2), 0, [639, 479])
            rows.append((frame, track, *position, 20 + 5 * rng.random(), 40.0))
            frame += 1 if rng.random() < 0.97 else int(rng.integers(2, 300))
    return rows_from_table(np.array(rows), FRAME_SIZE, frames)


def test_online_equals_batch_on_a_sequence_far_longer_than_training() -> None:
    rows = long_sequence()
    assert rows.frame.max() > 4500 and len(rows) > 10_000
    model = trained_like(GRU, seed=2)
    batch = score_rows(model, rows)
    online = online_scores(model, rows)  # gaps over 30 frames: the id is a new track
    np.testing.assert_allclose(online, batch, atol=1e-5, rtol=0)
    assert batch.std() > 1e-3
    # Kept whole across every gap (no forgetting), the two still agree.
    whole = score_rows(model, rows, forget_after=None)
    np.testing.assert_allclose(online_scores(model, rows, forget_after=None), whole, atol=1e-5)
    assert np.abs(whole - batch).max() > 1e-3  # the rule changes scores: the test can fail


def test_memory_per_live_track_does_not_grow_with_age() -> None:
    scorer = OnlineScorer(trained_like(GRU), forget_after=None)
    ids = np.arange(20)
    rng = np.random.default_rng(0)
    sizes = {}
    for frame in range(1, 2001):
        xy = rng.random((2, 20)) * 100
        scorer.update(frame, {"track_id": ids, "x": xy[0], "y": xy[1]})
        if frame in (10, 200, 2000):
            sizes[frame] = scorer.nbytes
    assert scorer.n_live == 20
    assert sizes[10] == sizes[200] == sizes[2000]


def test_the_clutter_count_is_births_of_other_tracks_nearby_decayed() -> None:
    decay = 0.5 ** (1 / SCENE_HALF_LIFE)
    # Track 1 is born at (10, 10) at frame 0 and stays; track 2 is born next to it at frame
    # 5 (counts track 1's birth), track 3 far away at frame 5 (counts nothing), track 4 in
    # the same cell at frame 9, after which track 1 is at (10, 10) again.
    frame = np.array([0, 5, 5, 9, 9, 9])
    track = np.array([1, 2, 3, 4, 1, 2])
    position = np.array(
        [[10, 10], [10 + CLUTTER_CELL, 10], [100, 100], [11, 11], [10, 10], [10 + CLUTTER_CELL, 10]]
    )
    counts = detection_scene_features(position, frame, np.zeros(6), track)[:, 0]
    expected = [0.0, decay**5, 0.0, decay**9 + decay**4, decay**4, decay**9]
    np.testing.assert_allclose(counts, expected, atol=1e-12)


def test_the_scene_rates_are_other_births_and_all_detections_per_frame_decayed() -> None:
    d = 0.5 ** (1 / SCENE_HALF_LIFE)
    # The same video as above: births of 1 track at frame 0, 2 at frame 5, 1 at frame 9.
    frame = np.array([0, 5, 5, 9, 9, 9])
    track = np.array([1, 2, 3, 4, 1, 2])
    position = np.array([[10, 10], [14, 10], [100, 100], [11, 11], [10, 10], [14, 10]])
    scene = detection_scene_features(position, frame, np.zeros(6), track)
    # Frames since the video's first detection, each weighted by decay^(its age).
    frames_5 = sum(d**j for j in range(1, 6))
    frames_9 = sum(d**j for j in range(1, 10))
    births = [0.0, d**5 / frames_5, d**5 / frames_5]
    births += [(d**9 + 2 * d**4) / frames_9, 2 * d**4 / frames_9, (d**9 + d**4) / frames_9]
    detections = [0.0, d**5 / frames_5, d**5 / frames_5] + [(d**9 + 2 * d**4) / frames_9] * 3
    np.testing.assert_allclose(scene[:, 1], births, atol=1e-12)
    np.testing.assert_allclose(scene[:, 2], detections, atol=1e-12)


def test_the_scene_p_detect_counts_hits_and_chances_of_established_tracks() -> None:
    d = 0.5 ** (1 / SCENE_HALF_LIFE)
    # Track 1 is seen at frames 0, 1, 2, 3, 6, 7; track 2 (a one-hit track) at 4, track 3 at
    # 8. Track 1 counts from its 4th observation (3 before it): frame 3 adds a hit and one
    # chance, frame 6 a hit and three chances (missed 4 and 5, then seen), frame 7 a hit and
    # a chance, each after that frame's reads.
    frame = np.array([0, 1, 2, 3, 4, 6, 7, 8])
    track = np.array([1, 1, 1, 1, 2, 1, 1, 3])
    position = np.array([[10.0 + f, 10.0] for f in frame])
    scene = detection_scene_features(position, frame, np.zeros(8), track)
    hits, chances = scene[:, 3], scene[:, 4]
    expected_hits = [0, 0, 0, 0, d, d**3, d**4 + d, d**5 + d**2 + d]
    expected_chances = [0, 0, 0, 0, d, d**3, d**4 + 3 * d, d**5 + 3 * d**2 + d]
    np.testing.assert_allclose(hits, expected_hits, atol=1e-12)
    np.testing.assert_allclose(chances, expected_chances, atol=1e-12)


@pytest.mark.parametrize(
    ("frame", "rows", "message"),
    [
        (3, {"track_id": [1], "x": [1.0], "y": [1.0]}, r"frame 3 is not after the last frame"),
        (6, {"track_id": [1, 1], "x": [1.0, 2.0], "y": [1.0, 2.0]}, r"frame 6 has track_id 1 "),
        (6, {"track_id": [1, 2], "x": [1.0, np.nan], "y": [1.0, 2.0]}, r"frame 6, track_id 2: "),
    ],
)
def test_a_bad_frame_is_refused_and_the_scorer_keeps_working(frame, rows, message) -> None:
    model = trained_like(GRU)
    good = {"track_id": [1, 2], "x": [10.0, 50.0], "y": [10.0, 60.0]}
    scorer, clean = OnlineScorer(model), OnlineScorer(model)
    for f in (4, 5):
        scorer.update(f, good)
        clean.update(f, good)
    with pytest.raises(ValueError, match=message):
        scorer.update(frame, rows)
    assert scorer.update(7, good) == pytest.approx(clean.update(7, good), abs=1e-9)


def test_a_jump_far_ahead_forgets_tracks_without_stepping_every_frame() -> None:
    scorer = OnlineScorer(trained_like(GRU), forget_after=30)
    scorer.update(1, {"track_id": [1], "x": [5.0], "y": [5.0]})
    scorer.update(10**9, {"track_id": [2], "x": [5.0], "y": [5.0]})  # returns at once
    assert scorer.n_live == 1


def test_a_life_longer_than_the_transformer_reads_is_one_sentence_the_gru_scores_it() -> None:
    rows = rows_from_table(
        np.array([(f, 1, 50.0 + f, 60.0, 20.0, 40.0) for f in range(1, 31)]), FRAME_SIZE
    )
    short = ModelConfig(d_model=16, n_heads=2, n_layers=1, ff_dim=32, feature_dim=16, max_len=20)
    with pytest.raises(TrackLifeError, match=r"track 1 spans frames 1 to 30, .* at most 20 steps"):
        score_rows(trained_like(short), rows)
    assert np.isfinite(score_rows(trained_like(GRU), rows)).all()
