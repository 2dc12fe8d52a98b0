"""Flow `import-tracks`: any tracker's output files as a store that train and evaluate read.

The store's dataset has no videos: one item per sequence (or per window of `window`
frames), its type from the labels, its own frame size; a tracks group keyed by the source
(the files' hashes, the matching rule, the window) holds the tracks as the tracker's own
padded arrays. Items are written a chunk (`items_per_chunk` consecutive items, a group of
sequences or windows) at a time, each chunk with its checksum, so `tp info --verify` and
resuming work as for a generated store. Splits are by item, never by track.

Parsing text is cheap next to the work a Dask cluster's start-up would save, so the flow
runs in one process.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from prefect import flow, get_run_logger

from storage.chunked import ChunkedGroup
from storage.errors import ParameterError
from storage.imported import IMPORTED, IMPORTED_TYPES, ITEM_FRAME_SIZE, ITEM_OPERATING_POINTS
from storage.store import Store, replacing
from storage.tracks import tracker_key
from tasks.import_tracks import (
    MAX_FIRST_FRAME,
    Sequence,
    item_arrays,
    item_cells,
    item_labels,
    item_operating_points,
    item_type,
    plan_items,
    read_sequence,
)
from tasks.specs import ImportSpec
from tp_models.model import ModelConfig
from tp_models.tracks.arrays import empty_track_arrays

MODEL_FRAME = ModelConfig().frame_size[0]  # the frame every item's positions are mapped into


def read_sequences(spec: ImportSpec) -> list[Sequence]:
    """Every file read and labelled; the same content given twice (whose rows could land in
    both train and test) is one sentence."""
    gts = spec.gt or (None,) * len(spec.files)
    points = spec.operating_points or (None,) * len(spec.files)
    sequences = [
        read_sequence(f, g, spec.match, spec.outside, p)
        for f, g, p in zip(spec.files, gts, points, strict=True)
    ]
    first: dict[str, str] = {}
    for path, sequence in zip(spec.files, sequences, strict=True):
        if sequence.sha256 in first:
            raise ParameterError(
                f"files: {path!r} has the same content as {first[sequence.sha256]!r} "
                "(same SHA-256); give each sequence once."
            )
        first[sequence.sha256] = path
    return sequences


def source_config(spec: ImportSpec, sequences: list[Sequence]) -> dict[str, Any]:
    """What defines the imported tracks: the files' contents, the labelling rule, the window,
    and what became of rows outside the frame (named only when not kept, so stores imported
    before the policy existed keep their configuration)."""
    return {
        "sources": [
            {
                "name": s.name,
                "sha256": s.sha256,
                "gt_sha256": s.gt_sha256,
                **({"op_sha256": s.op_sha256} if s.op_sha256 else {}),
            }
            for s in sequences
        ],
        "match": spec.match.to_dict() if spec.gt else None,
        "window": spec.window,
        **({"outside": spec.outside} if spec.outside != "keep" else {}),
    }


def check(spec: ImportSpec) -> list[Sequence]:
    """Every file read and labelled, the store writable: or one sentence, nothing written."""
    sequences = read_sequences(spec)
    for path, sequence in zip(spec.files, sequences, strict=True):
        if len(sequence.rows) and int(sequence.rows.frame.max()) > MAX_FIRST_FRAME:
            raise ParameterError(
                f"files: {path!r} has frame {int(sequence.rows.frame.max())}, beyond the "
                f"{MAX_FIRST_FRAME} a store can number; renumber the file's frames."
            )
    ChunkedGroup.check(
        spec.store, "", kind="dataset", config=_dataset_config(spec, sequences, []), overwrite=True
    )
    return sequences


def _dataset_config(
    spec: ImportSpec, sequences: list[Sequence], items: list[dict[str, Any]]
) -> dict[str, Any]:
    frames = max((int(item["rows"].n_frames) for item in items), default=0)
    return {
        IMPORTED: True,
        **source_config(spec, sequences),
        "frames": frames,
        "frame_size": MODEL_FRAME,
        "items_per_chunk": spec.items_per_chunk,
        "video_type_names": list(IMPORTED_TYPES),
    }


def _operating_points(
    items: list[dict[str, Any]], sequences: list[Sequence], frames: int
) -> dict[str, np.ndarray]:
    """A chunk's items' P_D and clutter density at every frame, as `imported_specs` keeps."""
    values = np.stack(
        [
            item_operating_points(sequences[item["source"]], item["first_frame"], frames)
            for item in items
        ]
    )
    return {name: values[..., i] for i, name in enumerate(ITEM_OPERATING_POINTS)}


@flow(name="import-tracks", log_prints=True)
def import_tracks(spec: ImportSpec) -> dict[str, Any]:
    logger = get_run_logger()
    began = time.perf_counter()
    sequences = check(spec)
    items = plan_items(sequences, spec.window, item_cells(spec.items_per_chunk))
    config = _dataset_config(spec, sequences, items)
    # A failed import leaves no store of its own behind (a replaced one is moved back).
    with replacing(spec.store, spec.overwrite, keep_partial=False):
        store = Store.create_imported(
            spec.store, config, len(items), spec.overwrite, bool(spec.operating_points)
        )
        dataset = store.dataset
        labels = [item_labels(item["rows"], sequences[item["source"]].matches) for item in items]
        capacity = max(1, *(label.size for label in labels))
        for chunk in range(dataset.n_chunks):
            if dataset.verify_chunk(chunk):
                continue
            start, stop = dataset.bounds(chunk)
            part = items[start:stop]
            dataset.write_chunk(
                chunk,
                {
                    "video_type": np.array([item_type(label) for label in labels[start:stop]]),
                    ITEM_FRAME_SIZE: np.array(
                        [item["rows"].frame_size for item in part], dtype=np.float32
                    ),
                    "source": np.array([item["source"] for item in part], dtype=np.int32),
                    "first_frame": np.array([item["first_frame"] for item in part], dtype=np.int32),
                    **(
                        _operating_points(part, sequences, store.frames)
                        if spec.operating_points
                        else {}
                    ),
                },
            )
        dataset.finalize()
        tracker = {"imported": source_config(spec, sequences)}
        tracks = store.create_tracks(tracker, spec.overwrite, capacity=capacity)
        for chunk in range(tracks.n_chunks):
            if tracks.verify_chunk(chunk):
                continue
            start, stop = tracks.bounds(chunk)
            # One chunk of items in memory at a time: the import follows a chunk's cells.
            arrays = empty_track_arrays(stop - start, capacity, store.frames)
            for i, item in enumerate(items[start:stop]):
                matches = sequences[item["source"]].matches
                item_arrays(item["rows"], matches, capacity, store.frames, arrays, i)
            tracks.write_chunk(
                chunk,
                arrays,
                parent_checksum=dataset.stored_checksum(chunk),  # else `--verify` calls it stale
            )
        tracks.finalize()
        store.mark_last_tracks(tracks)
    labels = np.concatenate(labels)
    summary = {
        "store": spec.store,
        "tracks_group": tracks.group.path,
        "tracks_key": tracker_key(tracker),
        "sequences": len(sequences),
        "items": len(items),
        "rows": sum(len(s.track_file.lines) for s in sequences),
        "rows_outside_frame": sum(s.outside for s in sequences),
        "outside_policy": spec.outside,
        "tracks": int(labels.size),
        "persistent": int((labels == 1).sum()),
        "false": int((labels == 0).sum()),
        "unlabelled": int((labels < 0).sum()),
        "item_types": {
            name: int((store.video_types == i).sum()) for i, name in enumerate(IMPORTED_TYPES)
        },
        "seconds": round(time.perf_counter() - began, 3),
    }
    logger.info("import-tracks: %s", summary)
    return summary
