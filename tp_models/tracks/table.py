"""Tracks from any tracker as a flat table of rows, and the bridge to ``TrackBatch``.

Tracker output arrives as rows (frame, track id, box or point), in whatever order the file
has them. Scorers work on frame-aligned ``TrackBatch`` arrays. ``rows_to_batch`` builds the
batch and remembers where every row went, so scores come back to the rows in input order:
each row gets exactly one score, nothing is dropped or duplicated.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from tp_models.core.batch import TrackBatch
from tp_models.perception.tracker import TrackerConfig, innovation_loglik, to_tracker_frame

_COLUMNS = ("frame", "track_id", "x", "y", "w", "h", "conf")
# What becomes of rows whose centre lies outside the frame (`TrackRows.within_frame`).
OUTSIDE_POLICIES = ("keep", "clip", "drop")


# Frames a track may go unseen before it is forgotten: should its id come back, it is a new
# track (the online scorer's rule, which ``score_rows`` follows so both give the same scores,
# and training's: steps beyond it carry no label).
DEFAULT_FORGET_AFTER = 30


@dataclass(frozen=True)
class TrackRows:
    """The rows of ONE sequence, in input order.

    frame      (N,) int64    1-based frame number, as in MOTChallenge
    track_id   (N,) int64    the tracker's identity
    x, y       (N,) float64  box centre (or point) in px
    w, h       (N,) float64  box size in px; NaN when the format has no box
    conf       (N,) float64  detection confidence; NaN when absent
    frame_size (height, width) of the sequence's frames in px
    n_frames   sequence length (the largest frame when the source does not say)
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

    def __post_init__(self) -> None:
        n = np.shape(self.frame)[0] if np.ndim(self.frame) == 1 else -1
        for name in _COLUMNS:
            if np.shape(getattr(self, name)) != (n,):
                raise ValueError(
                    f"TrackRows.{name} has shape {np.shape(getattr(self, name))}; every "
                    f"column must be one-dimensional with the same length as frame ({n})"
                )
        if len(self.frame_size) != 2 or min(self.frame_size) <= 0:
            raise ValueError(
                f"TrackRows.frame_size must be (height, width) > 0, got {self.frame_size}"
            )
        if n and (self.frame.min() < 1 or self.frame.max() > self.n_frames):
            raise ValueError(
                f"TrackRows.frame must lie in 1..n_frames={self.n_frames}, got "
                f"{self.frame.min()}..{self.frame.max()}"
            )

    def __len__(self) -> int:
        return int(self.frame.shape[0])

    @property
    def has_boxes(self) -> bool:
        """Every row has a box (IoU matching and box areas need one)."""
        return bool(np.isfinite(self.w).all() and np.isfinite(self.h).all())

    def take(self, index: np.ndarray) -> TrackRows:
        """The rows at ``index`` (or a boolean mask), same sequence."""
        return TrackRows(
            **{name: getattr(self, name)[index] for name in _COLUMNS},
            frame_size=self.frame_size,
            n_frames=self.n_frames,
        )

    def outside_frame(self) -> np.ndarray:
        """(N,) bool: the rows whose centre lies outside the frame (e.g. a target leaving it)."""
        height, width = self.frame_size
        return (self.x < 0) | (self.x > width) | (self.y < 0) | (self.y > height)

    def within_frame(self, policy: str) -> TrackRows:
        """The rows under a policy for those outside the frame (`OUTSIDE_POLICIES`): "keep"
        them as reported, "clip" their centres to the frame's edge, or "drop" them."""
        if policy == "keep":
            return self
        if policy == "clip":
            height, width = self.frame_size
            return dataclasses.replace(
                self, x=np.clip(self.x, 0, width), y=np.clip(self.y, 0, height)
            )
        if policy == "drop":
            return self.take(~self.outside_frame())
        raise ValueError(f"outside policy {policy!r} is not one of {OUTSIDE_POLICIES}")

    def split_at_gaps(self, max_gap: int | None) -> TrackRows:
        """The rows with each track cut where it went unseen for more than ``max_gap``
        frames, every piece a track of its own (ids 1, 2, ... in the order of the original
        ids, then time): what an online scorer does when it forgets a track and its id
        comes back. None: the rows as they are."""
        if max_gap is None or not len(self):
            return self
        order = np.lexsort((self.frame, self.track_id))
        new_piece = np.ones(len(self), dtype=bool)
        same_track = self.track_id[order][1:] == self.track_id[order][:-1]
        close = np.diff(self.frame[order]) <= max_gap + 1  # max_gap unseen frames between
        new_piece[1:] = ~(same_track & close)
        piece = np.empty(len(self), dtype=np.int64)
        piece[order] = np.cumsum(new_piece)
        return dataclasses.replace(self, track_id=piece)

    def renumbered(self, offset: np.ndarray | int, n_frames: int) -> TrackRows:
        """The same rows with ``offset`` subtracted from their frames, in ``n_frames``."""
        return dataclasses.replace(self, frame=self.frame - offset, n_frames=n_frames)


def rows_to_batch(
    rows: TrackRows,
    labels: Mapping[int, int] | None = None,
    video: int = 0,
    tracker_config: TrackerConfig | None = None,
) -> tuple[TrackBatch, np.ndarray, np.ndarray]:
    """The batch with one track per id (ascending id), frame-aligned over the sequence's
    ``n_frames`` frames; and for every input row its (track index, frame index) there.

    area = w * h (NaN without boxes), colour NaN (trackers do not report it), loglik from
    the project tracker's own Kalman filter run along each imported track, scaled into the
    tracker's frame (``tracker.innovation_loglik``, ``tracker_config`` sets its noise), label from
    ``labels`` ({track id: 0/1}) or -1, ``frame_size`` the sequence's for every track.
    A (frame, id) pair present twice is an error: the batch has one slot per pair.
    """
    ids, track_index = np.unique(rows.track_id, return_inverse=True)
    frame_index = rows.frame.astype(np.int64) - 1
    n_tracks, n_frames = ids.size, int(rows.n_frames)
    flat = track_index * n_frames + frame_index
    if np.unique(flat).size != flat.size:
        raise ValueError(
            "TrackRows has a (frame, track_id) pair more than once; each track has at most "
            "one row per frame"
        )
    observed = np.zeros((n_tracks, n_frames), dtype=bool)
    observed[track_index, frame_index] = True
    position = np.full((n_tracks, n_frames, 2), np.nan)
    position[track_index, frame_index] = np.stack([rows.x, rows.y], axis=1)
    area = np.full((n_tracks, n_frames), np.nan, dtype=np.float32)
    area[track_index, frame_index] = rows.w * rows.h
    label = np.full(n_tracks, -1, dtype=np.int8)
    if labels is not None:
        label[:] = [labels.get(int(i), -1) for i in ids]
    height, width = rows.frame_size
    batch = TrackBatch(
        position=position.astype(np.float32),
        observed=observed,
        area=area,
        color=np.full((n_tracks, n_frames, 3), np.nan, dtype=np.float32),
        loglik=innovation_loglik(
            to_tracker_frame(position, rows.frame_size), observed, tracker_config
        ),
        label=label,
        video=np.full(n_tracks, video, dtype=np.int64),
        frame_size=np.tile(np.array([height, width], dtype=np.float64), (n_tracks, 1)),
    )
    return batch, track_index.astype(np.int64), frame_index
