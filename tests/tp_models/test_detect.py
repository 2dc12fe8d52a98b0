"""Detector on hand-drawn frames: recall, precision, centroids, touching objects, noise."""

from __future__ import annotations

import numpy as np
import pytest

from tp_models.perception.detect import DetectorConfig, detect

RED, GREEN, BLUE = (220, 30, 30), (40, 200, 60), (30, 60, 240)


def disc(frame: np.ndarray, cx: int, cy: int, r: int, color: tuple[int, int, int]) -> int:
    """Draw a filled disc centred on a pixel; returns its pixel count."""
    rows, cols = np.ogrid[: frame.shape[0], : frame.shape[1]]
    inside = (cols - cx) ** 2 + (rows - cy) ** 2 <= r * r
    frame[inside] = color
    return int(inside.sum())


def square(frame: np.ndarray, x0: int, y0: int, x1: int, y1: int, color) -> None:
    frame[y0:y1, x0:x1] = color


def blank(frames: int = 3, size: int = 64) -> np.ndarray:
    return np.zeros((frames, size, size, 3), np.uint8)


def test_finds_every_object_with_exact_centroid_area_colour_and_bbox():
    video = blank()
    a = disc(video[0], 10, 12, 4, RED)
    b = disc(video[0], 40, 30, 3, GREEN)
    square(video[2], 50, 5, 56, 9, BLUE)  # 6 x 4 pixels, centre (52.5, 6.5)

    det = detect(video)

    assert len(det) == 3
    np.testing.assert_array_equal(det.frame, [0, 0, 2])
    np.testing.assert_array_equal(det.frame_start, [0, 2, 2, 3])
    order = np.argsort(det.centroid[:2, 0])  # raster order within a frame: sort by x here
    np.testing.assert_allclose(det.centroid[:2][order], [[10, 12], [40, 30]], atol=1e-5)
    np.testing.assert_array_equal(det.area[:2][order], [a, b])
    np.testing.assert_allclose(det.color[:2][order], [RED, GREEN], atol=1e-4)
    np.testing.assert_allclose(det.centroid[2], [52.5, 6.5], atol=1e-5)
    assert det.area[2] == 24
    np.testing.assert_array_equal(det.bbox[2], [50, 5, 56, 9])
    np.testing.assert_array_equal(det.bbox[:2][order], [[6, 8, 15, 17], [37, 27, 44, 34]])


def test_label_volume_maps_each_detection_to_its_pixels():
    video = blank()
    disc(video[1], 20, 20, 5, RED)
    disc(video[1], 45, 45, 3, BLUE)
    det = detect(video)
    for d in range(len(det)):
        pixels = det.labels == d + 1
        assert pixels.sum() == det.area[d]
        assert np.all(np.nonzero(pixels)[0] == det.frame[d])
    assert set(np.unique(det.labels)) == {0, 1, 2}


def test_touching_objects_merge_into_one_detection():
    # Documented behaviour: connected components cannot separate touching objects.
    video = blank(frames=1)
    square(video[0], 10, 10, 20, 20, RED)
    square(video[0], 20, 10, 30, 20, GREEN)  # shares the edge x = 19 | 20
    det = detect(video)
    assert len(det) == 1
    assert det.area[0] == 200
    np.testing.assert_allclose(det.centroid[0], [19.5, 14.5], atol=1e-5)
    np.testing.assert_allclose(det.color[0], np.mean([RED, GREEN], axis=0), atol=1e-4)


def test_diagonal_contact_merges_with_8_connectivity_only():
    video = blank(frames=1)
    square(video[0], 10, 10, 15, 15, RED)
    square(video[0], 15, 15, 20, 20, GREEN)  # corners touch diagonally
    assert len(detect(video, DetectorConfig(connectivity=8))) == 1
    assert len(detect(video, DetectorConfig(connectivity=4))) == 2


def test_small_and_dim_blobs_are_rejected():
    video = blank(frames=1)
    square(video[0], 5, 5, 8, 6, RED)  # 3 pixels < min_area 4
    square(video[0], 30, 30, 36, 36, (30, 30, 30))  # below the threshold
    square(video[0], 50, 50, 52, 52, GREEN)  # exactly 4 pixels: kept
    det = detect(video)
    assert len(det) == 1
    np.testing.assert_allclose(det.centroid[0], [50.5, 50.5])
    # Dropped components do not leave holes in the numbering.
    assert set(np.unique(det.labels)) == {0, 1}


@pytest.mark.parametrize("sigma", [3.0, 5.0])
def test_sensor_noise_adds_no_false_detections_and_keeps_centroids(sigma: float):
    clean = blank(frames=5, size=128)
    for t in range(5):
        disc(clean[t], 20 + 5 * t, 30, 3, RED)
        disc(clean[t], 90, 90 - 4 * t, 6, BLUE)
        square(clean[t], 60, 10, 65, 15, GREEN)
    rng = np.random.default_rng(0)
    noisy = np.clip(clean + rng.normal(0, sigma, clean.shape), 0, 255).astype(np.uint8)

    reference, det = detect(clean), detect(noisy)

    assert len(det) == len(reference) == 15
    np.testing.assert_allclose(det.centroid, reference.centroid, atol=1e-5)
    np.testing.assert_allclose(det.color, reference.color, atol=3 * sigma)


def test_empty_video_has_no_detections():
    det = detect(blank(frames=4))
    assert len(det) == 0
    assert det.centroid.shape == (0, 2)
    assert det.color.shape == (0, 3)
    assert det.bbox.shape == (0, 4)
    np.testing.assert_array_equal(det.frame_start, [0, 0, 0, 0, 0])


def test_rejects_bad_input_and_config():
    with pytest.raises(ValueError, match="shape"):
        detect(np.zeros((3, 8, 8), np.uint8))
    with pytest.raises(ValueError, match="connectivity"):
        DetectorConfig(connectivity=6)
    assert DetectorConfig.from_dict(DetectorConfig().to_dict()) == DetectorConfig()
