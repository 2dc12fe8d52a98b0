"""Readers and the scored writer of MOTChallenge and CSV track files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.tp_models.track_files import random_rows
from tp_models.tracks.files import (
    TrackFileError,
    read_ground_truth,
    read_operating_points,
    read_tracks,
    write_scored,
)


def write_mot(path: Path, rows, order=None) -> list[str]:
    order = np.arange(len(rows)) if order is None else order
    lines = [
        f"{rows.frame[i]},{rows.track_id[i]},{rows.x[i] - rows.w[i] / 2:.3f},"
        f"{rows.y[i] - rows.h[i] / 2:.3f},{rows.w[i]:.3f},{rows.h[i]:.3f},-1,-1,-1,-1"
        for i in order
    ]
    path.write_text("\n".join(lines) + "\n")
    return lines


def test_mot_round_trip_keeps_values_and_input_order(tmp_path) -> None:
    rows = random_rows()
    by_id = np.lexsort((rows.frame, rows.track_id))  # files sorted by id are common
    lines = write_mot(tmp_path / "tracks.txt", rows, by_id)
    read = read_tracks(tmp_path / "tracks.txt", frame_size=(480, 640))
    assert read.format == "mot" and read.lines == lines
    np.testing.assert_array_equal(read.rows.frame, rows.frame[by_id])
    np.testing.assert_array_equal(read.rows.track_id, rows.track_id[by_id])
    np.testing.assert_allclose(read.rows.x, rows.x[by_id], atol=2e-3)
    np.testing.assert_allclose(read.rows.h, rows.h[by_id], atol=1e-3)
    assert read.rows.frame_size == (480, 640) and read.rows.n_frames == rows.frame.max()
    np.testing.assert_array_equal(read.rows.conf, -1.0)


def test_scored_copy_has_every_row_once_in_order(tmp_path) -> None:
    rows = random_rows(seed=1)
    lines = write_mot(tmp_path / "tracks.txt", rows)
    read = read_tracks(tmp_path / "tracks.txt")
    p = np.linspace(0, 1, len(lines))
    (tmp_path / "out").mkdir()
    out = write_scored(read, p, p >= 0.5, tmp_path / "out")
    assert out == tmp_path / "out" / "tracks.txt"  # same name as the input
    written = out.read_text().splitlines()
    assert len(written) == len(lines)
    for original, line, value in zip(lines, written, p, strict=True):
        assert line == f"{original},{value:.6f},{int(value >= 0.5)}"
    assert [f.name for f in out.parent.iterdir()] == ["tracks.txt"]  # no temporary left


def test_csv_with_header_points_and_extra_columns(tmp_path) -> None:
    path = tmp_path / "points.csv"
    path.write_text("id,frame,x,y,note\n2,3,10.5,20,a\n1,1,5,6,b\n1,2,7,8,c\n")
    read = read_tracks(path)
    assert read.format == "csv" and read.header == "id,frame,x,y,note"
    np.testing.assert_array_equal(read.rows.frame, [3, 1, 2])
    np.testing.assert_array_equal(read.rows.track_id, [2, 1, 1])
    np.testing.assert_array_equal(read.rows.x, [10.5, 5, 7])
    assert np.isnan(read.rows.w).all() and not read.rows.has_boxes
    assert read.rows.frame_size == (20, 11) and read.rows.n_frames == 3  # extent of rows
    out = write_scored(read, np.array([0.25, 0.5, 1.0]), np.array([0, 1, 1]), tmp_path / "o.csv")
    assert out.read_text().splitlines() == [
        "id,frame,x,y,note,p_persistent,confirmed",
        "2,3,10.5,20,a,0.250000,0",
        "1,1,5,6,b,0.500000,1",
        "1,2,7,8,c,1.000000,1",
    ]


def test_seqinfo_in_the_parent_folder_gives_size_and_length(tmp_path) -> None:
    (tmp_path / "gt").mkdir()
    (tmp_path / "seqinfo.ini").write_text(
        "[Sequence]\nname=X\nimWidth=1920\nimHeight=1080\nseqLength=600\n"
    )
    (tmp_path / "gt" / "gt.txt").write_text(
        "1,1,100,100,50,80,1,1,1.0\n2,1,102,100,50,80,0,1,1.0\n3,1,104,100,50,80,1,1,0.5\n"
    )
    truth = read_ground_truth(tmp_path / "gt" / "gt.txt")
    assert truth.rows.frame_size == (1080, 1920) and truth.rows.n_frames == 600
    np.testing.assert_array_equal(truth.rows.frame, [1, 3])  # consider flag 0 dropped
    np.testing.assert_array_equal(truth.line_numbers, [1, 3])
    assert len(read_tracks(tmp_path / "gt" / "gt.txt").rows) == 3  # as tracks: all rows


def bad(tmp_path: Path, text: str, name: str = "t.txt") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


GOOD = "1,1,10,10,5,5,1\n"


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        (GOOD + "2,1,10,10,5\n", 2, "bb_height"),  # missing column
        (GOOD + "2,1,10,ten,5,5,1\n", 2, "bb_top"),  # non-numeric
        (GOOD + "2,1,10,10,5,nan,1\n", 2, "bb_height"),  # not finite
        (GOOD + "2,1,10,10,0,5,1\n", 2, "bb_width"),  # zero size
        (GOOD + "2,1,10,10,5,-3,1\n", 2, "bb_height"),  # negative size
        (GOOD + "2,1,10,10,5,5,1\n\n1,1,11,10,5,5,1\n", 4, "id"),  # duplicate (frame, id)
        (GOOD + "0,1,10,10,5,5,1\n", 2, "frame"),  # frames are 1-based
        (GOOD + "2.5,1,10,10,5,5,1\n", 2, "frame"),
        (GOOD + "2,9223372036854775808,10,10,5,5,1\n", 2, "id"),  # above the int64 limit
        (GOOD + "2,-9223372036854775809,10,10,5,5,1\n", 2, "id"),
        (GOOD + "2,1.5,10,10,5,5,1\n", 2, "id"),
        (GOOD + "2,1e30,10,10,5,5,1\n", 2, "id"),
        (GOOD + "2,1,1.5e308,10,1e308,5,1\n", 2, "bb_left"),  # finite, but the edge is not
        (GOOD + "2,1,10,10,1e308,1.7e308,1\n", 2, "bb_width"),
        (GOOD + "2,1,10,-3e9,5,5,1\n", 2, "bb_top"),
    ],
)
def test_bad_mot_rows_name_file_line_and_column(tmp_path, text, line, column) -> None:
    path = bad(tmp_path, text)
    with pytest.raises(TrackFileError) as error:
        read_tracks(path)
    message = str(error.value)
    assert message.startswith(f"{path}, line {line}, column {column!r}: "), message
    assert isinstance(error.value, ValueError) and "\n" not in message


def test_ids_are_read_exactly_up_to_the_int64_limit(tmp_path) -> None:
    """Ids above 2**53 were read as float64 and merged different tracks; 2**63 - 1 is the
    largest id there is, and a whole number written with a decimal point is still an id."""
    ids = [2**53, 2**53 + 1, 2**63 - 1, -(2**63), 7]
    text = "".join(f"{f},{i},{10 + f},10,5,5,1\n" for i in ids[:4] for f in (1, 2))
    path = bad(tmp_path, text + "1,7.0,10,10,5,5,1\n")
    read = read_tracks(path)
    assert read.rows.track_id.dtype == np.int64
    assert read.rows.track_id.tolist() == [i for i in ids[:4] for _ in (1, 2)] + [7]
    assert np.unique(read.rows.track_id).size == 5
    csv = bad(tmp_path, f"frame,id,x,y\n1,{2**53},1,1\n1,{2**53 + 1},2,2\n", "t.csv")
    assert read_tracks(csv).rows.track_id.tolist() == [2**53, 2**53 + 1]
    with pytest.raises(TrackFileError, match=r"line 2, column 'id': '9223372036854775808'"):
        read_tracks(bad(tmp_path, f"frame,id,x,y\n1,{2**63},1,1\n", "big.csv"))


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        ("frame,id,x\n1,1,3\n", 1, "y"),
        ("frame,id,x,y,w\n1,1,3,4,5\n", 1, "h"),
        ("frame,id,x,y\n1,1,3\n", 2, "y"),
        ("frame,id,x,y\n", 2, None),
        ("frame,id,x,y,w,h\n1,1,3,4,5,0\n", 2, "h"),
        ("frame,id,x,y\n1,1,3,4\n1,1,3,5\n", 3, "id"),
        ("frame,id,x,y,w,h\n1,1,3,1.7e308,5,1e308\n", 2, "y"),
        ("frame,id,x,y,w,h\n1,1,3,4,1e308,5\n", 2, "w"),
    ],
)
def test_bad_csv_names_file_line_and_column(tmp_path, text, line, column) -> None:
    path = bad(tmp_path, text, "t.csv")
    with pytest.raises(TrackFileError) as error:
        read_tracks(path)
    where = f"{path}, line {line}" + (f", column {column!r}" if column else "")
    assert str(error.value).startswith(where + ": "), str(error.value)


def test_empty_file_directory_and_missing_file(tmp_path) -> None:
    with pytest.raises(TrackFileError, match=r"empty\.txt, line 1: the file is empty"):
        read_tracks(bad(tmp_path, "\n\n", "empty.txt"))
    with pytest.raises(TrackFileError, match="is a directory"):
        read_tracks(tmp_path)
    with pytest.raises(TrackFileError, match="does not exist"):
        read_tracks(tmp_path / "nope.txt")


def test_seqinfo_that_disagrees_with_the_rows(tmp_path) -> None:
    (tmp_path / "seqinfo.ini").write_text("[Sequence]\nimWidth=100\nimHeight=50\nseqLength=3\n")
    path = bad(tmp_path, GOOD + "4,1,10,10,5,5,1\n")
    with pytest.raises(TrackFileError, match=r"line 2, column 'frame': frame 4 is beyond"):
        read_tracks(path)
    path.write_text(GOOD + "2,1,10,400,5,5,1\n")
    assert read_tracks(path).rows.y[1] == 402.5  # outside the frame: kept as reported
    (tmp_path / "seqinfo.ini").write_text("[Sequence]\nimWidth=wide\nimHeight=50\n")
    with pytest.raises(TrackFileError, match=r"seqinfo\.ini, column 'imWidth'"):
        read_tracks(path)


def test_writer_refuses_a_wrong_number_of_scores_and_writes_nothing(tmp_path) -> None:
    read = read_tracks(bad(tmp_path, GOOD + "2,1,11,10,5,5,1\n"))
    with pytest.raises(ValueError, match=r"one p_persistent and one confirmed per row \(2\)"):
        write_scored(read, np.zeros(1), np.zeros(1), tmp_path / "out.txt")
    assert not (tmp_path / "out.txt").exists()


def test_rows_outside_the_frame_are_kept_clipped_or_dropped(tmp_path) -> None:
    """A target leaving the view is normal tracker output: the whole file is not refused,
    the import applies its policy (``--outside``) and reports the count."""
    (tmp_path / "seqinfo.ini").write_text("[Sequence]\nimWidth=100\nimHeight=50\nseqLength=5\n")
    path = bad(tmp_path, GOOD + "2,1,10,400,5,5,1\n3,1,-80,20,5,5,1\n")
    rows = read_tracks(path).rows
    assert rows.outside_frame().tolist() == [False, True, True]
    assert rows.within_frame("keep") is rows
    clipped = rows.within_frame("clip")
    assert (clipped.y[1], clipped.x[2]) == (50.0, 0.0) and len(clipped) == 3
    dropped = rows.within_frame("drop")
    assert dropped.frame.tolist() == [1] and dropped.frame_size == rows.frame_size
    with pytest.raises(ValueError, match="keep"):
        rows.within_frame("ignore")


def test_text_in_a_number_cell_of_line_1_names_that_cell(tmp_path) -> None:
    """It was read as a CSV header, so the error spoke of missing columns instead."""
    path = bad(tmp_path, "1,1,ten,10,5,5,1\n2,1,11,10,5,5,1\n")
    with pytest.raises(TrackFileError, match=r"line 1, column 'bb_left'"):
        read_tracks(path)


@pytest.mark.parametrize(
    "text",
    [
        "1,7,10.5,20,5,8,0.9\n2,7,11,21.25,5,8,0.8,-1,-1,-1\n",  # MOTChallenge, 7 and 10 cols
        "1, 7 ,10.5,20,5,8\n2,7.0,11,21,5,8\n3,1e3,1,1,2,2\n",  # spaces, whole-number floats
        "frame,id,x,y,label,w,h\n1,9223372036854775807,3.5,4,car,2,2\n2,-4,1,1,bus,2,2\n",
        "id,frame,y,x,conf\n5,1,0.1,0.2,0.5\n5,3,1e-3,2E2,1\n",  # CSV, other order, no boxes
    ],
)
def test_the_fast_reader_gives_the_cell_by_cell_numbers(tmp_path, monkeypatch, text) -> None:
    import tp_models.tracks.files as files

    path = tmp_path / "tracks.txt"
    path.write_text(text)
    fast = read_tracks(path)
    monkeypatch.setattr(files, "_parsed", lambda lines, columns: None)
    careful = read_tracks(path)
    for name in ("frame", "track_id", "x", "y", "w", "h", "conf"):
        got, expected = getattr(fast.rows, name), getattr(careful.rows, name)
        assert got.dtype == expected.dtype
        np.testing.assert_array_equal(got, expected)
    assert fast.lines == careful.lines and fast.rows.frame_size == careful.rows.frame_size


def test_operating_points_are_read_by_frame_whatever_the_column_order(tmp_path) -> None:
    text = (
        "clutter_rate,frame,p_detect,note\n2.5,2,0.8,b\n1,1,0.9,a\n3,3,1,c\n4,4,0.5,past the end\n"
    )
    points = read_operating_points(bad(tmp_path, text, "op.csv"), 3)
    np.testing.assert_array_equal(points, [[0.9, 1.0], [0.8, 2.5], [1.0, 3.0]])


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        ("frame,p_detect\n1,0.9\n", 1, "clutter_rate"),
        ("1,0.9,2\n", 1, "frame"),
        ("frame,p_detect,clutter_rate\n", 2, None),
        ("frame,p_detect,clutter_rate\n1,0.9\n", 2, "clutter_rate"),
        ("frame,p_detect,clutter_rate\n1,0.9,2\n2,0,2\n", 3, "p_detect"),
        ("frame,p_detect,clutter_rate\n1,1.5,2\n", 2, "p_detect"),
        ("frame,p_detect,clutter_rate\n1,0.9,-1\n", 2, "clutter_rate"),
        ("frame,p_detect,clutter_rate\n1,0.9,nan\n", 2, "clutter_rate"),
        ("frame,p_detect,clutter_rate\n1.5,0.9,2\n", 2, "frame"),
        ("frame,p_detect,clutter_rate\n1,0.9,2\n2,0.9,2\n1,0.8,2\n", 4, "frame"),
        ("frame,p_detect,clutter_rate\n1,0.9,2\n3,0.9,2\n", None, "frame"),
    ],
)
def test_bad_operating_points_name_file_line_and_column(tmp_path, text, line, column) -> None:
    path = bad(tmp_path, text, "op.csv")
    with pytest.raises(TrackFileError) as error:
        read_operating_points(path, 2)
    where = str(path) + (f", line {line}" if line else "") + f", column {column!r}" * bool(column)
    assert str(error.value).startswith(where + ": "), str(error.value)
    assert "\n" not in str(error.value)
