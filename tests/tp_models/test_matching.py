"""Labels by CLEAR-MOT-style matching, on a hand-made sequence and on TUD-Campus."""

from __future__ import annotations

import numpy as np
import pytest

from tests.tp_models.track_files import TUD_CAMPUS_FRAME_SIZE, tud_campus
from tp_models.tracks.files import read_ground_truth, read_tracks
from tp_models.tracks.matching import MatchConfig, label_by_matching
from tp_models.tracks.table import TrackRows


def table(rows: list[tuple], boxes: bool = True) -> TrackRows:
    a = np.array(rows, dtype=np.float64)
    nan = np.full(len(a), np.nan)
    return TrackRows(
        frame=a[:, 0].astype(np.int64),
        track_id=a[:, 1].astype(np.int64),
        x=a[:, 2],
        y=a[:, 3],
        w=a[:, 4] if boxes else nan,
        h=a[:, 5] if boxes else nan,
        conf=nan,
        frame_size=(200, 300),
        n_frames=10,
    )


# Ground truth: object 7 walks right along y=50; object 9 stands at (200, 150). 20x40 boxes.
TRUTH = [(f, 7, 20 + 10 * f, 50, 20, 40) for f in range(1, 11)] + [
    (f, 9, 200, 150, 20, 40) for f in range(1, 11)
]
TRACKS = (
    [(f, 1, 22 + 10 * f, 51, 20, 40) for f in range(1, 11)]  # follows 7 all its life
    + [(f, 2, 200, 150 if f <= 4 else 110, 20, 40) for f in range(1, 11)]  # 9 for 4/10 rows
    + [(f, 3, 100, 180, 10, 10) for f in (3, 4)]  # clutter: nothing there
    + [(f, 4, 201, 151, 20, 40) for f in range(5, 11)]  # takes over 9 once track 2 drifts
    + [(2, 5, 46, 50, 20, 40)]  # a duplicate of object 7 in frame 2 (IoU 0.54; track 1: 0.82)
)


def test_hand_made_sequence_gets_the_known_labels() -> None:
    matches = label_by_matching(table(TRACKS), table(TRUTH))
    np.testing.assert_array_equal(matches.track_id, [1, 2, 3, 4, 5])
    np.testing.assert_array_equal(matches.label, [1, 0, 0, 1, 0])
    np.testing.assert_array_equal(matches.gt_id, [7, 9, -1, 9, -1])
    np.testing.assert_allclose(matches.fraction, [1.0, 0.4, 0.0, 1.0, 0.0])
    np.testing.assert_array_equal(matches.n_rows, [10, 10, 2, 6, 1])
    assert matches.labels() == {1: 1, 2: 0, 3: 0, 4: 1, 5: 0}


def test_fraction_and_points_with_a_distance_gate() -> None:
    loose = label_by_matching(table(TRACKS), table(TRUTH), MatchConfig(persistent_fraction=0.3))
    assert loose.labels()[2] == 1  # 4 of 10 rows with object 9 is "most" at 0.3
    points = label_by_matching(
        table(TRACKS, boxes=False), table(TRUTH, boxes=False), MatchConfig(distance_gate=5.0)
    )
    np.testing.assert_array_equal(points.label, [1, 0, 0, 1, 0])
    tight = label_by_matching(
        table(TRACKS, boxes=False), table(TRUTH, boxes=False), MatchConfig(distance_gate=2.0)
    )
    assert tight.labels()[1] == 0 and tight.labels()[4] == 1  # 2.24 px off / 1.41 px off
    assert tight.gt_id[0] == -1 and tight.gt_id[3] == 9


def test_config_round_trips_and_rejects_nonsense() -> None:
    config = MatchConfig(iou_threshold=0.3, distance_gate=12.0, persistent_fraction=0.6)
    assert MatchConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="iou_threshold"):
        MatchConfig(iou_threshold=0.0)
    with pytest.raises(ValueError, match="unknown MatchConfig field"):
        MatchConfig.from_dict({"iou": 0.5})


def test_tud_campus_tracks_are_read_and_labelled() -> None:
    tracks = read_tracks(tud_campus("test"), frame_size=TUD_CAMPUS_FRAME_SIZE).rows
    truth = read_ground_truth(tud_campus("gt"), frame_size=TUD_CAMPUS_FRAME_SIZE).rows
    assert (len(tracks), len(truth), tracks.n_frames) == (222, 359, 71)
    matches = label_by_matching(tracks, truth)
    assert len(matches.track_id) == 13 and matches.label.sum() == 12
    assert matches.labels()[3] == 0  # follows one person for 6 of its 13 rows
    assert matches.n_matched.sum() == 209  # rows matched to any person
