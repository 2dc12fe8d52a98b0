"""Padding tracks into fixed-capacity arrays, overflow, and back to a TrackBatch."""

from __future__ import annotations

import numpy as np
import pytest

from tp_models.perception.labels import summarize_quality
from tp_models.perception.tracker import TrackerConfig, track_video
from tp_models.tracks.arrays import (
    MAX_TRACKS,
    LabelledVideo,
    arrays_to_batch,
    arrays_to_meta,
    extract_and_label,
    tracks_to_arrays,
)

T, SIZE, K = 8, 64, 16


def disc(video, mask, t, cx, cy, slot, colour=(220, 60, 40), r=3):
    rows, cols = np.ogrid[:SIZE, :SIZE]
    inside = (cols - cx) ** 2 + (rows - cy) ** 2 <= r * r
    video[t][inside] = colour
    if mask is not None:
        mask[t][inside] = slot + 1


def two_videos():
    """Video 0: a persistent object (slot 3) moving 2 px/frame, a brief one (slot 0) in frame 4
    and a noise blob on no object in frame 6. Video 1: empty."""
    videos = np.zeros((2, T, SIZE, SIZE, 3), np.uint8)
    masks = np.zeros((2, T, SIZE, SIZE), np.uint8)
    kinds = np.full((2, K), -1, np.int8)
    kinds[0, 3], kinds[0, 0] = 0, 1
    for t in range(T):
        disc(videos[0], masks[0], t, 10 + 2 * t, 20, slot=3)
    disc(videos[0], masks[0], 4, 50, 50, slot=0, colour=(40, 200, 90))
    disc(videos[0], None, 6, 50, 10, slot=-1, colour=(90, 90, 250))
    return videos, masks, kinds


def test_extract_and_label_hand_made_chunk():
    videos, masks, kinds = two_videos()
    arrays, quality = extract_and_label(videos, masks, kinds, TrackerConfig(), capacity=8)

    assert arrays["n_tracks"].tolist() == [3, 0]
    assert arrays["n_dropped"].tolist() == [0, 0]
    np.testing.assert_array_equal(arrays["object"][0, :3], [3, 0, -1])
    np.testing.assert_array_equal(arrays["kind"][0, :3], [0, 1, -1])
    np.testing.assert_array_equal(arrays["label"][0, :3], [1, 0, 0])
    np.testing.assert_array_equal(arrays["purity"][0, :3], [1, 1, 1])
    np.testing.assert_array_equal(arrays["observed"][0, 0], np.ones(T, bool))
    np.testing.assert_allclose(arrays["position"][0, 0, :, 0], 10 + 2 * np.arange(T))
    # Padding: empty slots and the empty video.
    assert (arrays["label"][0, 3:] == -1).all() and (arrays["label"][1] == -1).all()
    assert np.isnan(arrays["position"][1]).all() and not arrays["observed"][1].any()
    assert (arrays["object"][1] == -1).all() and np.isnan(arrays["purity"][1]).all()

    # 9 object-frames, 10 observations: the noise blob is the only error.
    assert {k: v.tolist() for k, v in quality.items()} == {
        "num_gt": [9, 0],
        "num_hyp": [10, 0],
        "matches": [9, 0],
        "fp": [1, 0],
        "fn": [0, 0],
        "idsw": [0, 0],
        "idtp": [9, 0],
    }
    assert summarize_quality(quality)["mota"] == pytest.approx(1 - 1 / 9)


def test_array_dtypes_and_shapes_match_the_store_schema():
    videos, masks, kinds = two_videos()
    arrays, _ = extract_and_label(videos, masks, kinds, TrackerConfig())
    m = MAX_TRACKS
    expected = {
        "position": ((2, m, T, 2), np.float32),
        "observed": ((2, m, T), np.bool_),
        "area": ((2, m, T), np.float32),
        "color": ((2, m, T, 3), np.float32),
        "loglik": ((2, m, T), np.float32),
        "object": ((2, m), np.int16),
        "purity": ((2, m), np.float32),
        "kind": ((2, m), np.int8),
        "label": ((2, m), np.int8),
        "n_tracks": ((2,), np.int16),
        "n_dropped": ((2,), np.int16),
    }
    assert {k: (v.shape, v.dtype) for k, v in arrays.items()} == expected


def test_overflow_keeps_the_longest_tracks_in_birth_order():
    videos, masks, kinds = two_videos()
    tracks = track_video(videos[0])
    arrays = tracks_to_arrays([LabelledVideo(tracks)], capacity=2, frames=T)
    assert arrays["n_tracks"].tolist() == [2] and arrays["n_dropped"].tolist() == [1]
    # Kept: the 8-frame track and the first-born of the two 1-frame tracks (frame 4).
    np.testing.assert_array_equal(arrays["observed"][0].sum(axis=1), [8, 1])
    assert arrays["observed"][0, 1, 4]


def test_arrays_to_batch_flattens_valid_slots_with_video_offset():
    videos, masks, kinds = two_videos()
    arrays, _ = extract_and_label(
        videos[::-1].copy(), masks[::-1].copy(), kinds[::-1].copy(), TrackerConfig(), capacity=8
    )
    batch = arrays_to_batch(arrays, video_offset=100)
    assert len(batch) == 3 and batch.frames == T
    np.testing.assert_array_equal(batch.video, [101, 101, 101])
    np.testing.assert_array_equal(batch.label, [1, 0, 0])
    np.testing.assert_array_equal(batch.observed, arrays["observed"][1, :3])
    np.testing.assert_array_equal(batch.position, arrays["position"][1, :3])
    meta = arrays_to_meta(arrays, np.array([2, 3]), type_names=("p", "b", "noise", "mixed"))
    assert meta.video_type.tolist() == ["mixed"] * 3
    assert meta.kind.tolist() == [0, 1, -1] and meta.n_videos == 2


def test_unlabelled_chunk_keeps_tracks_with_unknown_label():
    videos, _, _ = two_videos()
    arrays, quality = extract_and_label(videos, None, None, TrackerConfig(), capacity=8)
    assert quality == {}
    batch = arrays_to_batch(arrays)
    assert len(batch) == 3 and (batch.label == -1).all()


def test_empty_chunk():
    arrays = tracks_to_arrays([], capacity=4, frames=T)
    assert arrays["position"].shape == (0, 4, T, 2)
    assert len(arrays_to_batch(arrays)) == 0


def test_simulated_chunk_runs_end_to_end():
    scene = pytest.importorskip("tp_models.world.simulate")
    types = scene.assign_video_types([2, 2, 1, 1], seed=0)
    batch = scene.simulate(scene.SceneConfig(noise_sigma=3.0), types, np.arange(6), seed=0)
    arrays, quality = extract_and_label(batch.videos, batch.masks, batch.kind, TrackerConfig())
    valid = arrays["label"] >= 0
    assert valid.sum() == arrays["n_tracks"].sum() > 0
    assert np.nanmean(arrays["purity"][valid]) > 0.9
    assert summarize_quality(quality)["mota"] > 0.8
    tracks = arrays_to_batch(arrays)
    assert set(np.unique(tracks.label)) <= {0, 1}
