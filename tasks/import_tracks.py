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
from tp_models.perception.tracker import TRACKER_FRAME
from tp_models.tracks.arrays import empty_track_arrays
from tp_models.tracks.files import (
    TrackFile,
    TrackFileError,
    read_ground_truth,
    read_operating_points,
    read_tracks,
)
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
    # (frames, 2) P_D and clutter rate of every frame of the sequence, when given
    operating_point: np.ndarray | None = None
    op_sha256: str | None = None


def file_hash(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def read_sequence(
    path: str,
    gt: str | None,
    match: MatchConfig,
    outside: str = "keep",
    operating_points: str | None = None,
) -> Sequence:
    """A tracker file, its labels and its operating points; a bad file is one sentence (file,
    line, column). `outside`: what becomes of rows outside the frame
    (`TrackRows.within_frame`)."""
    try:
        track_file = read_tracks(path)
        rows = track_file.rows
        truth = point = None
        if gt is not None:
            truth = read_ground_truth(gt, frame_size=rows.frame_size, n_frames=rows.n_frames)
        if operating_points is not None:
            point = read_operating_points(operating_points, int(rows.n_frames))
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
        operating_point=point,
        op_sha256=None if operating_points is None else file_hash(operating_points),
    )


def item_operating_points(sequence: Sequence, first_frame: int, frames: int) -> np.ndarray:
    """(frames, 2) P_D and clutter density (false detections per px^2 of ``TRACKER_FRAME``
    per frame: the units of the imported tracks' innovation likelihoods) of an item's frames
    from `first_frame` on; frames past the sequence's end repeat its last (no track lives
    there)."""
    point = sequence.operating_point
    assert point is not None
    index = np.minimum(np.arange(frames) + first_frame - 1, len(point) - 1)
    p_detect, rate = point[index].T
    return np.stack([p_detect, rate / np.prod(TRACKER_FRAME)], axis=1)


# The store keeps every item dense (tracks x frames; 29 bytes a cell over its arrays) and
# the import builds one chunk of items at a time: a chunk may hold this many cells (~490 MB).
CHUNK_CELLS = 2**24
# Item first frames are stored as int32.
MAX_FIRST_FRAME = int(np.iinfo(np.int32).max)


def item_cells(items_per_chunk: int) -> int:
    """The most (tracks x frames) cells one item may have."""
    return max(1, CHUNK_CELLS // items_per_chunk)


def windows(
    rows: TrackRows, window: int, max_cells: int | None = None
) -> list[tuple[int, TrackRows]]:
    """(first frame, rows renumbered from 1) of each item of a sequence: windows of
    `window` frames that hold rows (frames without rows cost nothing), or the whole sequence.

    Without `window`, a sequence whose one dense item would exceed `max_cells` (tracks x
    frames) is cut automatically into the widest windows that stay within it (as if that
    `window` were given: a track crossing a cut is two tracks), each trimmed to the frames
    of its rows, so an id seen again at frame 10^9 costs two small items, not 10^9 frames.
    """
    n_tracks = int(np.unique(rows.track_id).size)
    if not window and (max_cells is None or n_tracks * int(rows.n_frames) <= max_cells):
        return [(1, rows)]
    trim = not window
    length = window or _widest_window(rows, max_cells or 1)
    index = (rows.frame - 1) // length
    order = np.argsort(index, kind="stable")  # input order within each window
    present, starts = np.unique(index[order], return_index=True)
    items = []
    for k, lo, hi in zip(present, starts, [*starts[1:], len(order)], strict=True):
        part = rows.take(order[lo:hi])
        if trim:
            first = int(part.frame.min())
            n_frames = int(part.frame.max()) - first + 1
        else:
            first = int(k) * length + 1
            n_frames = min(length, rows.n_frames - first + 1)
        items.append((first, part.renumbered(first - 1, n_frames)))
    return items


def _widest_window(rows: TrackRows, max_cells: int) -> int:
    """The widest power-of-two window whose every window has tracks x width <= max_cells."""
    _, track = np.unique(rows.track_id, return_inverse=True)
    width = 1 << max(0, int(rows.n_frames - 1).bit_length())
    while width > 1:
        pairs = np.unique(((rows.frame - 1) // width) * (track.max() + 1) + track)
        busiest = np.bincount(pairs // (track.max() + 1)).max()
        if busiest * width <= max_cells:
            break
        width //= 2
    return width


def item_type(label: np.ndarray) -> int:
    """Index into IMPORTED_TYPES of an item whose tracks have these labels."""
    known = label[label >= 0]
    if known.size == 0:
        return IMPORTED_TYPES.index("unlabelled")
    if known.all():
        return IMPORTED_TYPES.index("persistent")
    return IMPORTED_TYPES.index("mixed" if known.any() else "false")


def item_arrays(
    rows: TrackRows,
    matches: TrackMatches | None,
    capacity: int,
    frames: int,
    out: dict[str, np.ndarray] | None = None,
    index: int = 0,
) -> dict[str, np.ndarray]:
    """One item's tracks as row `index` of the store's padded track arrays `out` (filled in
    place: a chunk's arrays are made once), or as a one-row set of its own."""
    arrays = empty_track_arrays(1, capacity, frames) if out is None else out
    if len(rows) == 0:
        return arrays
    batch, _, _ = rows_to_batch(rows, None if matches is None else matches.labels())
    n, t = len(batch), batch.frames
    for name in ("position", "observed", "area", "color", "loglik"):
        arrays[name][index, :n, :t] = getattr(batch, name)
    arrays["label"][index, :n] = batch.label
    arrays["kind"][index, :n] = np.where(batch.label == 1, KIND_PERSISTENT, KIND_EMPTY)
    arrays["n_tracks"][index] = n
    if matches is not None:  # per track, ascending id: the order of rows_to_batch
        found = np.searchsorted(matches.track_id, np.unique(rows.track_id))
        limits = np.iinfo(np.int16)
        arrays["object"][index, :n] = np.clip(matches.gt_id[found], limits.min, limits.max)
        arrays["purity"][index, :n] = matches.fraction[found]
    return arrays


def plan_items(
    sequences: list[Sequence], window: int, max_cells: int | None = None
) -> list[dict[str, Any]]:
    """Every item of every sequence: its source, first frame and rows (`windows`)."""
    items = []
    for source, sequence in enumerate(sequences):
        for first, rows in windows(sequence.rows, window, max_cells):
            items.append({"source": source, "first_frame": first, "rows": rows})
    return items


def item_labels(rows: TrackRows, matches: TrackMatches | None) -> np.ndarray:
    """(tracks,) int8 label of each of an item's tracks, ascending id (as `item_arrays`)."""
    ids = np.unique(rows.track_id)
    label = np.full(ids.size, -1, dtype=np.int8)
    if matches is None or matches.track_id.size == 0:
        return label
    index = np.minimum(np.searchsorted(matches.track_id, ids), matches.track_id.size - 1)
    found = matches.track_id[index] == ids
    label[found] = matches.label[index[found]]
    return label
