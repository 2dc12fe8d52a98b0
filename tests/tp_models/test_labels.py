"""Labels through the id mask, track purity, and MOTA / IDF1 against hand-counted cases."""

from __future__ import annotations

import numpy as np
import pytest

from tp_models.perception.detect import detect
from tp_models.perception.labels import (
    NO_OBJECT,
    detection_objects,
    label_tracks,
    summarize_quality,
    tracking_counts,
)
from tp_models.perception.tracker import VideoTracks


def stub_tracks(detection: list[list[int]], frames: int = 4) -> VideoTracks:
    """Tracks given only by their per-frame detection indices (-1 = unobserved)."""
    det = np.asarray(detection, dtype=np.int32).reshape(len(detection), -1 if detection else frames)
    shape = det.shape
    nan = np.full(shape, np.nan, np.float32)
    return VideoTracks(
        detections=None,  # type: ignore[arg-type]  # not read by the labeller
        detection=det,
        position=np.full(shape + (2,), np.nan, np.float32),
        area=nan,
        color=np.full(shape + (3,), np.nan, np.float32),
        bbox=np.full(shape + (4,), -1, np.int32),
        loglik=nan,
    )


def test_detection_takes_the_majority_object_of_its_pixels():
    video = np.zeros((1, 16, 16, 3), np.uint8)
    mask = np.zeros((1, 16, 16), np.uint8)
    video[0, 2:5, 2:5] = 200  # 9 pixels: 5 on id 1 (slot 0), 3 on id 2 (slot 1), 1 background
    mask[0, 2:5, 2:5] = [[1, 1, 1], [1, 1, 2], [2, 2, 0]]
    video[0, 10:13, 10:13] = 200  # a blob on no object at all (noise)
    video[0, 2:4, 10:12] = 200  # 4 pixels: 1 on id 3 and 3 background -> still slot 2
    mask[0, 2, 10] = 3

    det = detect(video)
    objects = detection_objects(det, mask)

    by_x = {round(float(x)): int(o) for x, o in zip(det.centroid[:, 0], objects, strict=True)}
    assert by_x == {3: 0, 11: NO_OBJECT, 10: 2}
    assert objects.dtype == np.int16


def test_detection_objects_of_no_detections():
    det = detect(np.zeros((2, 8, 8, 3), np.uint8))
    assert detection_objects(det, np.zeros((2, 8, 8), np.uint8)).shape == (0,)


def test_track_label_purity_on_a_mixed_case():
    # Detections 0..6 lie on objects:   0  0  1  0  -  -  2
    det_objects = np.array([0, 0, 1, 0, NO_OBJECT, NO_OBJECT, 2], np.int16)
    kinds = np.array([0, 1, 2, -1], np.int8)  # slot 0 persistent, 1 brief, 2 clutter
    tracks = stub_tracks(
        [
            [0, 1, 2, 3, 4],  # objects 0 0 1 0 -  -> object 0, purity 3/5, label 1
            [-1, -1, 5, 6, -1],  # objects - 2       -> tie: the real object wins
            [-1, -1, -1, -1, 4],  # object -         -> no object, purity 1, label 0
            [-1, -1, 2, -1, -1],  # object 1 (brief) -> label 0
        ]
    )
    labels = label_tracks(tracks, det_objects, kinds)
    np.testing.assert_array_equal(labels.object, [0, 2, NO_OBJECT, 1])
    np.testing.assert_allclose(labels.purity, [0.6, 0.5, 1.0, 1.0])
    np.testing.assert_array_equal(labels.kind, [0, 2, -1, 1])
    np.testing.assert_array_equal(labels.label, [1, 0, 0, 0])


def test_majority_of_no_object_beats_a_minority_object():
    det_objects = np.array([NO_OBJECT, NO_OBJECT, 0], np.int16)
    labels = label_tracks(stub_tracks([[0, 1, 2]]), det_objects, np.array([0], np.int8))
    assert labels.object[0] == NO_OBJECT and labels.label[0] == 0
    assert labels.purity[0] == pytest.approx(2 / 3)


def test_label_tracks_without_tracks():
    labels = label_tracks(stub_tracks([]), np.zeros(0, np.int16), np.array([0, 1], np.int8))
    assert len(labels) == 0


def hand_case() -> tuple[VideoTracks, np.ndarray, np.ndarray]:
    """4 frames. Object 0 visible in frames 0-3, object 1 in frames 0-1.

    track 0 sees object 0 in frames 0, 1; track 1 takes over object 0 in frames 2, 3 (one
    identity switch); track 2 sees object 1 in frame 0 only (frame 1 missed: one FN);
    track 3 is a noise detection in frame 1 (one FP).
    """
    mask = np.zeros((4, 8, 8), np.uint8)
    mask[:, 1, 1] = 1
    mask[:2, 5, 5] = 2
    # detection index -> object:   0  1  2  3  4   5
    det_objects = np.array([0, 0, 0, 0, 1, NO_OBJECT], np.int16)
    tracks = stub_tracks(
        [
            [0, 1, -1, -1],
            [-1, -1, 2, 3],
            [4, -1, -1, -1],
            [-1, 5, -1, -1],
        ]
    )
    return tracks, det_objects, mask


def test_mota_and_idf1_on_a_hand_counted_case():
    tracks, det_objects, mask = hand_case()
    counts = tracking_counts(tracks, det_objects, mask, n_objects=2)
    assert counts == {
        "num_gt": 6,
        "num_hyp": 6,
        "matches": 5,
        "fp": 1,
        "fn": 1,
        "idsw": 1,
        "idtp": 3,  # best one-to-one: object 0 <-> track 0 (2) and object 1 <-> track 2 (1)
    }
    quality = summarize_quality(counts)
    assert quality["mota"] == pytest.approx(1 - 3 / 6)
    assert quality["idf1"] == pytest.approx(2 * 3 / 12)


def test_two_hypotheses_on_one_object_keep_the_previous_match():
    mask = np.zeros((2, 8, 8), np.uint8)
    mask[:, 1, 1] = 1
    det_objects = np.array([0, 0, 0], np.int16)
    # Track 1 holds the object from frame 0; in frame 1 track 0 also lands on it (a split).
    tracks = stub_tracks([[-1, 1], [0, 2]])
    counts = tracking_counts(tracks, det_objects, mask, n_objects=1)
    assert (counts["matches"], counts["fp"], counts["fn"], counts["idsw"]) == (2, 1, 0, 0)


def test_quality_counts_sum_over_videos_and_degenerate_totals():
    tracks, det_objects, mask = hand_case()
    counts = tracking_counts(tracks, det_objects, mask, n_objects=2)
    per_video = {key: np.array([value, value]) for key, value in counts.items()}
    assert summarize_quality(per_video) == summarize_quality(counts)
    empty = {key: 0 for key in counts}
    assert summarize_quality(empty) == {"mota": None, "idf1": None}
