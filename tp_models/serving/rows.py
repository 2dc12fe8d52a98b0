"""Every row of a tracker's table scored at its own frame: ``score_rows``, the batch form of
what the online scorer does one frame at a time.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from tp_models.core.scorer import PersistenceScorer
from tp_models.tracks.features import SCENE_EXTRAS, detection_scene_features
from tp_models.tracks.table import DEFAULT_FORGET_AFTER, TrackRows, rows_to_batch

# A bucket holds at most this many (track, frame) cells, unless one track alone is longer:
# 64 tracks of up to 512 frames (any life the default model encodes) are batched as before,
# while a track of 200,000 frames is scored alone instead of padding 63 others to its life.
CELLS_PER_BATCH = 64 * 512
# Scorers read every frame of a track's life, gaps included: a track alone costs ~60 bytes
# a frame here. Beyond this life (~39 hours at 30 fps; ~250 MB) an id is refused, not
# allocated (an id reused at frame 10^9 asked for 12.1 GiB).
MAX_LIFE = 2**22


class TrackLifeError(ValueError):
    """A track whose life (first to last frame) is longer than ``MAX_LIFE`` frames."""


def score_rows(
    scorer: PersistenceScorer,
    rows: TrackRows,
    tracks_per_batch: int = 64,
    cells_per_batch: int = CELLS_PER_BATCH,
    forget_after: int | None = DEFAULT_FORGET_AFTER,
) -> np.ndarray:
    """(N,) float64: the scorer's score of each row's track at that row's frame, in input
    order. Online: a row's score uses frames <= its own frame only (the scorer contract).

    Scorers read a track from its first observation on (frames before it are masked
    padding), so each track is scored over its own life only, start-aligned, and tracks of
    similar life are scored together. Each bucket's batch is built from that bucket's rows
    alone (at most ``tracks_per_batch`` tracks and, unless one track is longer by itself,
    ``cells_per_batch`` tracks x frames): memory follows the rows and the longest life of a
    bucket, never the sequence's frame span, and a lone long-lived track costs its own life.

    A track unseen for more than ``forget_after`` frames is a new track when its id comes
    back (``TrackRows.split_at_gaps``), as in the online scorer; None keeps every id whole.
    """
    given = rows.track_id
    rows = rows.split_at_gaps(forget_after)
    ids, track_index = np.unique(rows.track_id, return_inverse=True)
    first = np.full(ids.size, np.iinfo(np.int64).max)
    np.minimum.at(first, track_index, rows.frame)
    last = np.zeros(ids.size, dtype=np.int64)
    np.maximum.at(last, track_index, rows.frame)
    life = last - first + 1
    longest = int(np.argmax(life)) if ids.size else 0
    # A model may read fewer steps of a life than scoring does (the transformer's max_len).
    model_steps = getattr(scorer, "max_steps", None)
    limit = MAX_LIFE if model_steps is None else min(MAX_LIFE, model_steps)
    if ids.size and life[longest] > limit:
        track = given[track_index == longest][0]
        span = (
            f"track {track} spans frames {first[longest]} to {last[longest]}, a life of "
            f"{life[longest]} frames"
        )
        if limit < MAX_LIFE:
            raise TrackLifeError(
                f"{span}, and this model reads at most {limit} steps of a life (a "
                "transformer's max_len); score with a GRU model (tp train --sequence gru)"
            )
        raise TrackLifeError(
            f"{span}, and scoring reads every frame of a life (at most {MAX_LIFE}); give "
            "the rows after a long gap an id of their own"
        )
    # The scene features compare tracks at the same frame: make them before aligning.
    scene = detection_scene_features(
        np.column_stack([rows.x, rows.y]),
        rows.frame,
        np.zeros(len(rows)),
        rows.track_id,
        rows.frame_size,
    )
    scores = np.empty(len(rows), dtype=np.float64)
    by_life = np.argsort(life, kind="stable")
    rank = np.empty(ids.size, dtype=np.int64)
    rank[by_life] = np.arange(ids.size)
    row_rank = rank[track_index]  # each row's track, in life order
    row_order = np.argsort(row_rank, kind="stable")
    sorted_rank = row_rank[row_order]
    for start, stop in _buckets(life[by_life], tracks_per_batch, cells_per_batch):
        lo, hi = np.searchsorted(sorted_rank, [start, stop])
        mine = row_order[lo:hi]
        # Tracks renumbered by life rank: the bucket's batch holds them in life order.
        part_rows = dataclasses.replace(
            rows.take(mine),
            track_id=row_rank[mine] - start,
            frame=rows.frame[mine] - first[track_index[mine]] + 1,
            n_frames=int(life[by_life[stop - 1]]),
        )
        part, track, frame = rows_to_batch(part_rows)
        part_scene = np.zeros((*part.observed.shape, scene.shape[1]))
        part_scene[track, frame] = scene[mine]
        part.extras[SCENE_EXTRAS] = part_scene
        values = np.asarray(scorer.score(part), dtype=np.float64)
        scores[mine] = values[track, frame]
    return scores


def _buckets(
    sorted_life: np.ndarray, tracks_per_batch: int, cells_per_batch: int
) -> list[tuple[int, int]]:
    """[start, stop) ranges of tracks in ascending life: at most ``tracks_per_batch`` each,
    and at most ``cells_per_batch`` tracks x longest life unless a track is alone."""
    buckets = []
    start, n = 0, sorted_life.size
    while start < n:
        stop = min(start + tracks_per_batch, n)
        # Lives ascend: the bucket [start, stop) costs (stop - start) * life[stop - 1].
        while stop - start > 1 and (stop - start) * int(sorted_life[stop - 1]) > cells_per_batch:
            limit = max(cells_per_batch // int(sorted_life[stop - 1]), 1)
            stop = start + min(limit, stop - start - 1)
        buckets.append((start, stop))
        start = stop
    return buckets
