"""Stage: tracker files (and ground truth) as the padded per-item arrays of a store.

Each file is one sequence; labels come from its ground truth by matching
(`tp_models.tracks.matching`, over the whole sequence), then the sequence is cut into items (one,
or windows of `window` frames) and every item's tracks become one row of the same padded
arrays the tracker writes (`tp_models.tracks.arrays`), so every reader of tracks reads them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from storage.imported import IMPORTED_TYPES
from tasks.score import TrackInputError
from tp_models.perception.labels import KIND_EMPTY, KIND_PERSISTENT
from tp_models.tracks.arrays import empty_track_arrays
from tp_models.tracks.files import TrackFile, TrackFileError, read_ground_truth, read_tracks
from tp_models.tracks.matching import MatchConfig, TrackMatches, label_by_matching
from tp_models.tracks.table import TrackRows, rows_to_batch


@dataclass(frozen=True)
class Sequence:
    """One tracker file read, with its ground-truth matches when given."""

    name: str
    track_file: TrackFile
    rows: TrackRows  # the file's rows under the outside-the-frame policy
    outside: int  # rows whose centre lay outside the frame
    matches: TrackMatches | None
    sha256: str
    gt_sha256: str | None


def file_hash(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def read_sequence(path: str, gt: str | None, match: MatchConfig, outside: str = "keep") -> Sequence:
    """A tracker file and its labels; a bad file is one sentence (file, line, column).
    `outside`: what becomes of rows outside the frame (`TrackRows.within_frame`)."""
    try:
        track_file = read_tracks(path)
        truth = None
        if gt is not None:
            rows = track_file.rows
            truth = read_ground_truth(gt, frame_size=rows.frame_size, n_frames=rows.n_frames)
    except TrackFileError as exc:
        raise TrackInputError(str(exc)) from None
    rows = track_file.rows.within_frame(outside)
    matches = None if truth is None else label_by_matching(rows, truth.rows, match)
    return Sequence(
        name=f"{Path(path).parent.name}/{Path(path).name}",
        track_file=track_file,
        rows=rows,
        outside=int(track_file.rows.outside_frame().sum()),
        matches=matches,
        sha256=file_hash(path),
        gt_sha256=None if gt is None else file_hash(gt),
    )


def windows(rows: TrackRows, window: int) -> list[tuple[int, TrackRows]]:
    """(first frame, rows renumbered from 1) of each item of a sequence."""
    length = window or rows.n_frames
    items = []
    for first in range(1, rows.n_frames + 1, length):
        n_frames = min(length, rows.n_frames - first + 1)
        inside = (rows.frame >= first) & (rows.frame < first + n_frames)
        part = rows.take(inside)
        items.append((first, part.renumbered(first - 1, n_frames)))
    return items


def item_type(label: np.ndarray) -> int:
    """Index into IMPORTED_TYPES of an item whose tracks have these labels."""
    known = label[label >= 0]
    if known.size == 0:
        return IMPORTED_TYPES.index("unlabelled")
    if known.all():
        return IMPORTED_TYPES.index("persistent")
    return IMPORTED_TYPES.index("mixed" if known.any() else "false")


def item_arrays(
    rows: TrackRows, matches: TrackMatches | None, capacity: int, frames: int
) -> dict[str, np.ndarray]:
    """One item's tracks as one row of the store's padded track arrays."""
    arrays = empty_track_arrays(1, capacity, frames)
    if len(rows) == 0:
        return arrays
    batch, _, _ = rows_to_batch(rows, None if matches is None else matches.labels())
    n, t = len(batch), batch.frames
    for name in ("position", "observed", "area", "color", "loglik"):
        arrays[name][0, :n, :t] = getattr(batch, name)
    arrays["label"][0, :n] = batch.label
    arrays["kind"][0, :n] = np.where(batch.label == 1, KIND_PERSISTENT, KIND_EMPTY)
    arrays["n_tracks"][0] = n
    if matches is not None:  # per track, ascending id: the order of rows_to_batch
        index = np.searchsorted(matches.track_id, np.unique(rows.track_id))
        limits = np.iinfo(np.int16)
        arrays["object"][0, :n] = np.clip(matches.gt_id[index], limits.min, limits.max)
        arrays["purity"][0, :n] = matches.fraction[index]
    return arrays


def plan_items(sequences: list[Sequence], window: int) -> list[dict[str, Any]]:
    """Every item of every sequence: its source, first frame and rows."""
    items = []
    for source, sequence in enumerate(sequences):
        for first, rows in windows(sequence.rows, window):
            items.append({"source": source, "first_frame": first, "rows": rows})
    return items
