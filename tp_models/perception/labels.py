"""Ground-truth labels for detections and tracks, and tracker quality (MOTA, IDF1).

Everything goes through the simulator's id mask (0 background, k + 1 on the pixels of object
slot k), so a detection is matched to the object whose pixels it covers, without any
distance threshold. Objects are identified by their slot index k; ``NO_OBJECT`` (-1) means a
detection or track lies on no object (e.g. noise).

motmetrics is not used: its 1.4.0 release calls ``np.asfarray``, removed in numpy 2, and the
mask correspondence is exact anyway, so the CLEAR-MOT and ID counts are computed here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tp_models.perception.detect import Detections
from tp_models.perception.tracker import VideoTracks

NO_OBJECT = -1
KIND_PERSISTENT, KIND_BRIEF, KIND_CLUTTER, KIND_EMPTY = 0, 1, 2, -1
KIND_NAMES = {KIND_PERSISTENT: "persistent", KIND_BRIEF: "brief", KIND_CLUTTER: "clutter"}
QUALITY_COUNTS = ("num_gt", "num_hyp", "matches", "fp", "fn", "idsw", "idtp")


def detection_objects(detections: Detections, mask: np.ndarray) -> np.ndarray:
    """(D,) int16: the object slot most of each detection's pixels lie on, NO_OBJECT if none.

    Background pixels (id 0) inside a detection do not vote; ties go to the lower slot.
    """
    n_det = len(detections)
    if n_det == 0:
        return np.zeros(0, dtype=np.int16)
    if mask.shape != detections.labels.shape:
        raise ValueError(f"mask shape {mask.shape} != detection labels {detections.labels.shape}")
    flat = np.flatnonzero(detections.labels)
    det = detections.labels.ravel()[flat].astype(np.int64) - 1
    ids = mask.ravel()[flat].astype(np.int64)
    n_ids = int(ids.max()) + 1 if ids.size else 1
    on_object = ids > 0
    votes = np.bincount(det[on_object] * n_ids + ids[on_object], minlength=n_det * n_ids).reshape(
        n_det, n_ids
    )
    best = votes.argmax(axis=1)
    has_object = votes[np.arange(n_det), best] > 0
    return np.where(has_object, best - 1, NO_OBJECT).astype(np.int16)


@dataclass
class TrackLabels:
    """Ground truth of the M tracks of one video.

    object (M,) int16    majority object slot over the track's detections (NO_OBJECT if most
                         of them lie on no object)
    purity (M,) float32  fraction of the track's detections on that object (or on no object)
    kind   (M,) int8     kind of that object (0 persistent, 1 brief, 2 clutter), -1 if none
    label  (M,) int8     1 if the object is persistent, else 0
    """

    object: np.ndarray
    purity: np.ndarray
    kind: np.ndarray
    label: np.ndarray

    def __len__(self) -> int:
        return int(self.label.shape[0])


def label_tracks(tracks: VideoTracks, det_objects: np.ndarray, kinds: np.ndarray) -> TrackLabels:
    """Label each track by the majority object over its detections."""
    n_tracks = len(tracks)
    n_slots = max(int(kinds.shape[0]), int(det_objects.max(initial=-1)) + 1)
    observed = tracks.observed
    track_index, frame = np.nonzero(observed)
    # Column 0 counts detections on no object, column k + 1 those on slot k.
    column = det_objects[tracks.detection[track_index, frame]].astype(np.int64) + 1
    counts = np.bincount(
        track_index * (n_slots + 1) + column, minlength=n_tracks * (n_slots + 1)
    ).reshape(n_tracks, n_slots + 1)
    best_object = counts[:, 1:].argmax(axis=1) if n_slots else np.zeros(n_tracks, dtype=np.int64)
    best_count = counts[np.arange(n_tracks), best_object + 1]
    # A tie between a real object and "no object" goes to the object.
    on_object = (best_count > 0) & (best_count >= counts[:, 0])
    obj = np.where(on_object, best_object, NO_OBJECT).astype(np.int16)
    n_obs = np.maximum(observed.sum(axis=1), 1)
    purity = np.where(on_object, best_count, counts[:, 0]) / n_obs
    padded_kinds = np.full(n_slots + 1, KIND_EMPTY, dtype=np.int8)
    padded_kinds[: kinds.shape[0]] = kinds
    kind = np.where(on_object, padded_kinds[np.where(on_object, obj, n_slots)], KIND_EMPTY)
    return TrackLabels(
        object=obj,
        purity=purity.astype(np.float32),
        kind=kind.astype(np.int8),
        label=(kind == KIND_PERSISTENT).astype(np.int8),
    )


def tracking_counts(
    tracks: VideoTracks, det_objects: np.ndarray, mask: np.ndarray, n_objects: int
) -> dict[str, int]:
    """CLEAR-MOT and identity counts of one video; sum them over videos, then ``summarize``.

    Per frame the ground truth is every object with at least one pixel in the mask, the
    hypotheses are the tracks observed in that frame, and a hypothesis matches an object
    when its detection lies on it. If several hypotheses lie on one object, the one that
    matched it before is kept (else the first); the others are false positives. An identity
    switch is an object matched to a different track than the last one it was matched to.
    IDTP comes from the optimal one-to-one track <-> object assignment on overlap counts.
    """
    n_frames = mask.shape[0]
    size = max(n_objects, int(mask.max(initial=0))) + 1
    visible = np.stack([np.bincount(mask[t].ravel(), minlength=size) for t in range(n_frames)])
    visible = visible[:, 1:] > 0  # (T, K)
    observed = tracks.observed
    hyp_object = np.full(observed.shape, NO_OBJECT, dtype=np.int64)
    hyp_object[observed] = det_objects[tracks.detection[observed]]

    matches = idsw = 0
    last_match: dict[int, int] = {}
    for t in range(n_frames):
        hyps = np.flatnonzero(observed[:, t])
        matched: dict[int, int] = {}
        for track in hyps:
            obj = int(hyp_object[track, t])
            if obj >= 0 and last_match.get(obj) == track:
                matched[obj] = int(track)
        for track in hyps:
            obj = int(hyp_object[track, t])
            if obj >= 0 and obj not in matched:
                matched[obj] = int(track)
        for obj, track in matched.items():
            if obj in last_match and last_match[obj] != track:
                idsw += 1
            last_match[obj] = track
        matches += len(matched)

    num_gt = int(visible.sum())
    num_hyp = int(observed.sum())
    track_index, frame = np.nonzero(observed & (hyp_object >= 0))
    overlap = np.zeros((len(tracks), size - 1), dtype=np.int64)
    np.add.at(overlap, (track_index, hyp_object[track_index, frame]), 1)
    from scipy.optimize import linear_sum_assignment  # ~0.4 s that `tp score` need not pay

    rows, cols = linear_sum_assignment(overlap, maximize=True)
    idtp = int(overlap[rows, cols].sum())
    return {
        "num_gt": num_gt,
        "num_hyp": num_hyp,
        "matches": matches,
        "fp": num_hyp - matches,
        "fn": num_gt - matches,
        "idsw": idsw,
        "idtp": idtp,
    }


def summarize_quality(counts: dict[str, int | np.ndarray]) -> dict[str, float | None]:
    """MOTA and IDF1 from (possibly per-video arrays of) counts; None when undefined."""
    total = {key: int(np.sum(counts[key])) for key in QUALITY_COUNTS}
    num_gt, num_hyp = total["num_gt"], total["num_hyp"]
    mota = 1.0 - (total["fn"] + total["fp"] + total["idsw"]) / num_gt if num_gt else None
    idf1 = 2.0 * total["idtp"] / (num_gt + num_hyp) if num_gt + num_hyp else None
    return {"mota": mota, "idf1": idf1}
