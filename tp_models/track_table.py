"""Rows of any tracker's output (one sequence) scored by any ``PersistenceScorer``.

A tracker hands over flat rows (frame, track id, box); scorers take frame-aligned
``TrackBatch`` es. ``score_rows`` builds one batch row per track id over the sequence's
frames, scores it, and reads each input row's score at that row's frame, so every input
row gets exactly one score, in input order, and a score never depends on later frames.

Minimal version, so the served model works on this branch; the import work replaces it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tp_models.scoring import PersistenceScorer, TrackBatch


@dataclass(frozen=True)
class TrackRows:
    """The rows of ONE sequence, in input order.

    frame (N,) int64 1-based; track_id (N,) int64; x, y (N,) float64 box centre px;
    w, h (N,) float64, NaN when no box; conf (N,) float64, NaN when absent;
    frame_size (height, width) px; n_frames the sequence length.
    """

    frame: np.ndarray
    track_id: np.ndarray
    x: np.ndarray
    y: np.ndarray
    w: np.ndarray
    h: np.ndarray
    conf: np.ndarray
    frame_size: tuple[int, int]
    n_frames: int


def _scorer_frame_size(scorer: PersistenceScorer, rows: TrackRows) -> tuple[int, int]:
    """The frame size the scorer was built for (positions are rescaled to it), if any."""
    config = getattr(scorer, "config", None)
    size = getattr(config, "frame_size", None)
    return (int(size[0]), int(size[1])) if size is not None else rows.frame_size


def track_batch(rows: TrackRows, frame_size: tuple[int, int]) -> tuple[TrackBatch, np.ndarray]:
    """The frame-aligned batch (one track per id, positions in ``frame_size`` px) and, per
    row, its track's index in the batch."""
    frame_index = rows.frame - 1
    if rows.frame.size and (frame_index.min() < 0 or frame_index.max() >= rows.n_frames):
        raise ValueError(f"frame must lie in 1..{rows.n_frames} (n_frames); fix the rows' frames")
    ids, track = np.unique(rows.track_id, return_inverse=True)
    if np.unique(track * rows.n_frames + frame_index).size != rows.frame.size:
        raise ValueError("rows repeat a (frame, id) pair; keep one row per track and frame")
    scale_y = frame_size[0] / rows.frame_size[0]
    scale_x = frame_size[1] / rows.frame_size[1]
    shape = (ids.size, rows.n_frames)
    position = np.full(shape + (2,), np.nan, dtype=np.float32)
    position[track, frame_index] = np.stack([rows.x * scale_x, rows.y * scale_y], axis=1)
    observed = np.zeros(shape, dtype=bool)
    observed[track, frame_index] = True
    area = np.full(shape, np.nan, dtype=np.float32)
    area[track, frame_index] = rows.w * rows.h * scale_x * scale_y
    batch = TrackBatch(
        position=position,
        observed=observed,
        area=area,
        color=np.full(shape + (3,), np.nan, dtype=np.float32),
        loglik=np.full(shape, np.nan, dtype=np.float32),
        label=np.full(ids.size, -1, dtype=np.int8),
        video=np.zeros(ids.size, dtype=np.int64),
    )
    return batch, track


def score_rows(scorer: PersistenceScorer, rows: TrackRows) -> np.ndarray:
    """(N,) online score of each row's track at that row's frame, in input order."""
    batch, track = track_batch(rows, _scorer_frame_size(scorer, rows))
    if len(batch) == 0:
        return np.empty(0, dtype=np.float64)
    scores = np.asarray(scorer.score(batch), dtype=np.float64)
    return scores[track, rows.frame - 1]
