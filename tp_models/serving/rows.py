"""Every row of a tracker's table scored at its own frame: ``score_rows``, the batch form of
what the online scorer does one frame at a time.
"""

from __future__ import annotations

import numpy as np

from tp_models.core.batch import TrackBatch
from tp_models.core.scorer import PersistenceScorer
from tp_models.tracks.features import CLUTTER_COUNT, clutter_map_counts
from tp_models.tracks.table import TrackRows, rows_to_batch


def score_rows(
    scorer: PersistenceScorer, rows: TrackRows, tracks_per_batch: int = 64
) -> np.ndarray:
    """(N,) float64: the scorer's score of each row's track at that row's frame, in input
    order. Online: a row's score uses frames <= its own frame only (the scorer contract).

    Scorers read a track from its first observation on (frames before it are masked
    padding), so each track is scored over its own life only, start-aligned, and tracks of
    similar life are scored together: a long sequence of short tracks costs the rows it
    has, not tracks x sequence length.
    """
    ids, track_index = np.unique(rows.track_id, return_inverse=True)
    first = np.full(ids.size, np.iinfo(np.int64).max)
    np.minimum.at(first, track_index, rows.frame)
    last = np.zeros(ids.size, dtype=np.int64)
    np.maximum.at(last, track_index, rows.frame)
    life = last - first + 1
    offset = first[track_index] - 1  # each row's frame counted from its track's first
    aligned = rows.renumbered(offset, int(life.max()))
    batch, track_index, frame_index = rows_to_batch(aligned)
    # The clutter-map count compares tracks at the same frame: count it before aligning.
    clutter = np.zeros(batch.observed.shape)
    clutter[track_index, frame_index] = clutter_map_counts(
        np.column_stack([rows.x, rows.y]),
        rows.frame,
        np.zeros(len(rows)),
        rows.track_id,
        rows.frame_size,
    )
    batch.extras[CLUTTER_COUNT] = clutter
    scores = np.empty(len(rows), dtype=np.float64)
    by_life = np.argsort(life, kind="stable")
    row_rank = np.argsort(by_life)[track_index]  # each row's track, in life order
    row_order = np.argsort(row_rank, kind="stable")
    sorted_rank = row_rank[row_order]
    for start in range(0, ids.size, tracks_per_batch):
        tracks = by_life[start : start + tracks_per_batch]
        part = batch.select(tracks)
        frames = int(life[tracks].max())
        part = _first_frames(part, frames)
        lo, hi = np.searchsorted(sorted_rank, [start, start + tracks.size])
        mine = row_order[lo:hi]
        values = np.asarray(scorer.score(part), dtype=np.float64)
        scores[mine] = values[row_rank[mine] - start, frame_index[mine]]
    return scores


def _first_frames(batch: TrackBatch, frames: int) -> TrackBatch:
    """The batch cut to its first ``frames`` frames."""
    return TrackBatch(
        position=batch.position[:, :frames],
        observed=batch.observed[:, :frames],
        area=batch.area[:, :frames],
        color=batch.color[:, :frames],
        loglik=batch.loglik[:, :frames],
        label=batch.label,
        video=batch.video,
        extras={k: v[:, :frames] for k, v in batch.extras.items()},
        frame_size=batch.frame_size,
    )
