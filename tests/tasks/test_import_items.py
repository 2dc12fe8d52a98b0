"""Items of an imported sequence: memory follows the rows, never the frame span."""

from __future__ import annotations

import dataclasses

import numpy as np

from tasks.import_tracks import windows
from tests.tp_models.track_files import random_rows


def _cells(rows) -> int:
    return int(np.unique(rows.track_id).size) * int(rows.n_frames)


def test_a_sequence_that_fits_is_one_item_as_before():
    rows = random_rows()
    assert windows(rows, 0, max_cells=_cells(rows)) == [(1, rows)]
    assert windows(rows, 0) == [(1, rows)]


def test_an_id_seen_again_at_frame_1e9_costs_two_small_items():
    rows = random_rows()
    late = rows.take(np.array([0]))
    late = dataclasses.replace(late, frame=np.array([10**9]), n_frames=10**9)
    both = dataclasses.replace(
        rows,
        **{
            name: np.concatenate([getattr(rows, name), getattr(late, name)])
            for name in ("frame", "track_id", "x", "y", "w", "h", "conf")
        },
        n_frames=10**9,
    )
    items = windows(both, 0, max_cells=10_000)
    assert [first for first, _ in items] == [int(rows.frame.min()), 10**9]
    assert sum(len(part) for _, part in items) == len(both)
    assert items[1][1].n_frames == 1 and items[0][1].n_frames <= int(rows.frame.max())


def test_automatic_windows_stay_within_the_budget_and_keep_every_row_once():
    rows = random_rows(seed=3, n_tracks=40)
    budget = _cells(rows) // 4
    items = windows(rows, 0, max_cells=budget)
    assert len(items) > 1
    assert all(_cells(part) <= budget for _, part in items)
    frames = np.concatenate([part.frame + first - 1 for first, part in items])
    ids = np.concatenate([part.track_id for _, part in items])
    order = np.lexsort((rows.track_id, rows.frame))
    again = np.lexsort((ids, frames))
    np.testing.assert_array_equal(frames[again], rows.frame[order])
    np.testing.assert_array_equal(ids[again], rows.track_id[order])


def test_given_windows_without_rows_are_no_items():
    rows = random_rows()
    far = dataclasses.replace(rows, frame=rows.frame + 1000 * (rows.frame > 10), n_frames=2000)
    items = windows(far, 10)
    assert all(len(part) for _, part in items)
    assert [first for first, _ in items] == sorted({(f - 1) // 10 * 10 + 1 for f in far.frame})
