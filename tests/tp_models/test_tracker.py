"""Tracker on hand-drawn videos: identity through misses and crossings, gating, track ends."""

from __future__ import annotations

import json

import numpy as np

from tp_models.perception.detect import DetectorConfig
from tp_models.perception.tracker import TrackerConfig, track_video

SIZE = 128


def draw_video(paths: list[list[tuple[float, float] | None]], radius: int = 3) -> np.ndarray:
    """One disc per path; a path gives the (x, y) centre per frame, None = not drawn."""
    frames = len(paths[0])
    video = np.zeros((frames, SIZE, SIZE, 3), np.uint8)
    rows, cols = np.ogrid[:SIZE, :SIZE]
    colours = [(230, 40, 40), (40, 230, 40), (40, 40, 230), (230, 230, 40)]
    for i, path in enumerate(paths):
        for t, centre in enumerate(path):
            if centre is None:
                continue
            inside = (cols - round(centre[0])) ** 2 + (rows - round(centre[1])) ** 2 <= radius**2
            video[t][inside] = colours[i % len(colours)]
    return video


def line(start, velocity, frames: int) -> list[tuple[float, float]]:
    return [(start[0] + velocity[0] * t, start[1] + velocity[1] * t) for t in range(frames)]


def test_keeps_identity_through_a_missed_frame():
    path = line((20, 30), (2, 1), 12)
    path[5] = None
    tracks = track_video(draw_video([path]))

    assert len(tracks) == 1
    expected = np.ones(12, bool)
    expected[5] = False
    np.testing.assert_array_equal(tracks.observed[0], expected)
    np.testing.assert_allclose(tracks.position[0, 6], [32, 36], atol=1e-4)
    assert np.isnan(tracks.position[0, 5]).all()
    # Innovation log-likelihood exists for every update, not for the birth or the miss.
    assert np.isnan(tracks.loglik[0, 0]) and np.isnan(tracks.loglik[0, 5])
    assert np.isfinite(np.delete(tracks.loglik[0], [0, 5])).all()
    assert tracks.area[0, 1] == 29 and np.isnan(tracks.area[0, 5])


def test_keeps_identities_of_two_objects_crossing_at_an_angle():
    frames = 20
    # Both pass through (64, 64) at t = 9.5, at right angles, so the integer frames next to
    # the crossing show them merged into one blob (one of the tracks must coast).
    a = line((64 - 3 * 9.5, 64 - 1 * 9.5), (3, 1), frames)
    b = line((64 + 1 * 9.5, 64 - 3 * 9.5), (-1, 3), frames)
    tracks = track_video(draw_video([a, b], radius=2))

    assert len(tracks) == 2
    first = tracks.position[:, 0]
    last_frame = frames - 1
    for k, path in enumerate((a, b)):
        own = int(np.argmin(np.abs(first - np.round(path[0])).sum(axis=1)))
        np.testing.assert_allclose(tracks.position[own, last_frame], np.round(path[-1]), atol=1e-4)
        np.testing.assert_allclose(tracks.position[own, 0], np.round(path[0]), atol=1e-4)
        assert tracks.observed[own].sum() >= frames - 2, k


def test_gate_rejects_a_far_detection():
    # Static object for 6 frames, then it jumps 50 px: far outside the 99% gate.
    path = [(30.0, 30.0)] * 6 + [(80.0, 80.0)] * 3
    tracks = track_video(draw_video([path]))
    assert len(tracks) == 2
    np.testing.assert_array_equal(tracks.observed[0], [1] * 6 + [0] * 3)
    np.testing.assert_array_equal(tracks.observed[1], [0] * 6 + [1] * 3)


def test_a_near_detection_is_inside_the_gate():
    path = [(30.0, 30.0)] * 6 + [(32.0, 31.0)] * 3
    assert len(track_video(draw_video([path]))) == 1


def test_track_ends_after_more_than_max_misses():
    two_gaps = [(40.0, 40.0)] * 4 + [None] * 2 + [(40.0, 40.0)] * 3
    three_gaps = [(40.0, 40.0)] * 4 + [None] * 3 + [(40.0, 40.0)] * 3
    assert len(track_video(draw_video([two_gaps]))) == 1
    assert len(track_video(draw_video([three_gaps]))) == 2
    assert len(track_video(draw_video([three_gaps]), TrackerConfig(max_misses=3))) == 1


def test_every_unassigned_detection_starts_a_track():
    blip = [None] * 3 + [(90.0, 20.0)] + [None] * 4
    steady = line((20, 100), (1, 0), 8)
    tracks = track_video(draw_video([steady, blip]))
    assert len(tracks) == 2
    lengths = sorted(tracks.observed.sum(axis=1).tolist())
    assert lengths == [1, 8]
    # Detection indices point back into the detection table.
    det = tracks.detections
    for m in range(2):
        frames = np.flatnonzero(tracks.observed[m])
        np.testing.assert_array_equal(det.frame[tracks.detection[m, frames]], frames)
        np.testing.assert_allclose(
            det.centroid[tracks.detection[m, frames]], tracks.position[m, frames]
        )


def test_empty_video_gives_no_tracks():
    tracks = track_video(np.zeros((5, SIZE, SIZE, 3), np.uint8))
    assert len(tracks) == 0
    assert tracks.position.shape == (0, 5, 2)
    assert tracks.bbox.shape == (0, 5, 4)


def test_config_round_trips_through_json():
    config = TrackerConfig(detector=DetectorConfig(threshold=50.0), max_misses=3)
    restored = TrackerConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert restored == config
    assert abs(TrackerConfig().gate - 9.2103) < 1e-3
