"""Labels for imported tracks from ground truth, by matching as CLEAR MOT does.

Per frame, tracker rows are assigned one-to-one to ground-truth rows by the Hungarian
method (``scipy.optimize.linear_sum_assignment``), maximising overlap: boxes must overlap
at IoU >= ``iou_threshold``; rows without boxes (points) must lie within
``distance_gate`` px. A track is persistent (label 1) when it is matched to one and the
same ground-truth identity in more than ``persistent_fraction`` of its rows (its life as
the tracker reported it), a false track (label 0) otherwise.

Deliberately simpler than the CLEAR MOT evaluation in one respect: correspondences of the
previous frame are not preferred, every frame is assigned afresh; a track that switches
between two objects is still judged by the identity it followed the longest. Ground-truth
rows MOTChallenge marks "do not consider" are dropped by ``files.read_ground_truth``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
from annotated_types import Gt, Interval, doc

from tp_models.core.config import known_fields
from tp_models.tracks.table import TrackRows

NO_MATCH = -1


@dataclass(frozen=True)
class MatchConfig:
    """The labelling rule and its thresholds (stored with the labels)."""

    iou_threshold: Annotated[
        float, Interval(gt=0, le=1), doc("a tracker box matches a truth box at this IoU")
    ] = 0.5
    distance_gate: Annotated[float, Gt(0), doc("px between centres, for rows without boxes")] = 20.0
    persistent_fraction: Annotated[
        float, Interval(ge=0, lt=1), doc("share of a track's rows one identity must match")
    ] = 0.5

    def __post_init__(self) -> None:
        if not 0.0 < self.iou_threshold <= 1.0:
            raise ValueError(
                f"MatchConfig.iou_threshold must be in (0, 1], got {self.iou_threshold}"
            )
        if self.distance_gate <= 0:
            raise ValueError(f"MatchConfig.distance_gate must be > 0, got {self.distance_gate}")
        if not 0.0 <= self.persistent_fraction < 1.0:
            raise ValueError(
                f"MatchConfig.persistent_fraction must be in [0, 1), got {self.persistent_fraction}"
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MatchConfig:
        return cls(**known_fields(cls, data))


@dataclass(frozen=True)
class TrackMatches:
    """Per track (ascending track id, the order of ``rows_to_batch``).

    track_id  (M,) int64    the tracker's identity
    label     (M,) int8     1 persistent, 0 false track
    gt_id     (M,) int64    the ground-truth identity matched most often, -1 if none
    fraction  (M,) float64  rows matched to ``gt_id`` / rows of the track
    n_rows    (M,) int64    rows of the track
    n_matched (M,) int64    rows matched to any ground-truth identity
    row_gt_id (N,) int64    per tracker row (input order): its ground-truth match or -1
    """

    track_id: np.ndarray
    label: np.ndarray
    gt_id: np.ndarray
    fraction: np.ndarray
    n_rows: np.ndarray
    n_matched: np.ndarray
    row_gt_id: np.ndarray

    def labels(self) -> dict[int, int]:
        """{track id: label}, as ``table.rows_to_batch`` takes them."""
        return {int(i): int(v) for i, v in zip(self.track_id, self.label, strict=True)}


def _iou(a: TrackRows, ia: np.ndarray, b: TrackRows, ib: np.ndarray) -> np.ndarray:
    """(len(ia), len(ib)) IoU of centre-size boxes."""

    def corners(rows: TrackRows, index: np.ndarray) -> tuple[np.ndarray, ...]:
        x, y, w, h = rows.x[index], rows.y[index], rows.w[index], rows.h[index]
        return x - w / 2, y - h / 2, x + w / 2, y + h / 2, w * h

    ax0, ay0, ax1, ay1, area_a = corners(a, ia)
    bx0, by0, bx1, by1, area_b = corners(b, ib)
    iw = np.clip(np.minimum(ax1[:, None], bx1) - np.maximum(ax0[:, None], bx0), 0, None)
    ih = np.clip(np.minimum(ay1[:, None], by1) - np.maximum(ay0[:, None], by0), 0, None)
    inter = iw * ih
    return inter / (area_a[:, None] + area_b - inter)


def _frame_groups(frame: np.ndarray) -> dict[int, np.ndarray]:
    order = np.argsort(frame, kind="stable")
    frames, starts = np.unique(frame[order], return_index=True)
    return dict(zip(frames.tolist(), np.split(order, starts[1:]), strict=True))


def match_rows(tracks: TrackRows, truth: TrackRows, config: MatchConfig) -> np.ndarray:
    """(N,) int64: for each tracker row, the ground-truth identity it is assigned to in its
    frame, or -1."""
    # Imported here: half a second, which a CLI that only reads MatchConfig never pays.
    from scipy.optimize import linear_sum_assignment

    use_boxes = tracks.has_boxes and truth.has_boxes
    matched = np.full(len(tracks), NO_MATCH, dtype=np.int64)
    truth_by_frame = _frame_groups(truth.frame)
    for frame, rows in _frame_groups(tracks.frame).items():
        gts = truth_by_frame.get(frame)
        if gts is None:
            continue
        if use_boxes:
            similarity = _iou(tracks, rows, truth, gts)
            allowed = similarity >= config.iou_threshold
            cost = 1.0 - similarity
        else:
            dx = tracks.x[rows][:, None] - truth.x[gts]
            dy = tracks.y[rows][:, None] - truth.y[gts]
            cost = np.hypot(dx, dy)
            allowed = cost <= config.distance_gate
        if not allowed.any():
            continue
        # Forbidden pairs cost more than any allowed assignment could gain.
        r, c = linear_sum_assignment(np.where(allowed, cost, cost.size + 1.0))
        ok = allowed[r, c]
        matched[rows[r[ok]]] = truth.track_id[gts[c[ok]]]
    return matched


def label_by_matching(
    tracks: TrackRows, truth: TrackRows, config: MatchConfig | None = None
) -> TrackMatches:
    """Per-track labels and match statistics of one sequence (see module docstring)."""
    config = config or MatchConfig()
    row_gt = match_rows(tracks, truth, config)
    ids, track_index = np.unique(tracks.track_id, return_inverse=True)
    n_tracks = ids.size
    n_rows = np.bincount(track_index, minlength=n_tracks)
    hit = row_gt != NO_MATCH
    n_matched = np.bincount(track_index[hit], minlength=n_tracks)
    gt_id = np.full(n_tracks, NO_MATCH, dtype=np.int64)
    best = np.zeros(n_tracks, dtype=np.int64)
    if hit.any():
        pairs, counts = np.unique(
            np.stack([track_index[hit], row_gt[hit]], axis=1), axis=0, return_counts=True
        )
        # Per track, the identity with the most rows (ties: the smaller ground-truth id).
        order = np.lexsort((pairs[:, 1], -counts, pairs[:, 0]))
        first = np.unique(pairs[order, 0], return_index=True)[1]
        chosen = order[first]
        gt_id[pairs[chosen, 0]] = pairs[chosen, 1]
        best[pairs[chosen, 0]] = counts[chosen]
    fraction = best / n_rows
    return TrackMatches(
        track_id=ids.astype(np.int64),
        label=(fraction > config.persistent_fraction).astype(np.int8),
        gt_id=gt_id,
        fraction=fraction,
        n_rows=n_rows.astype(np.int64),
        n_matched=n_matched.astype(np.int64),
        row_gt_id=row_gt,
    )
