"""Deterministic train / validation / test split by video (never by track).

Tracks of one video share its objects and its clutter, so splitting tracks would leak test
information into training. The split is stratified by video type so that every part keeps
the dataset's mix, and drawn from its own tagged random stream (video streams use
spawn_key=(index,); a tag keeps this one from ever coinciding with theirs).

Videos from the simulator's held-out operating-point region (``op_heldout``) go to a split of
their own, ``"heldout"``, never to train, validation or test: they measure how a model does
on operating points it was never tuned on.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

SPLITS = ("train", "val", "test")
HELDOUT = "heldout"
DEFAULT_FRACTIONS = (0.70, 0.15, 0.15)
_SPLIT_TAG = 0x73706C74  # "splt"
_SUBSET_TAG = 0x73756273  # "subs"


def split_videos(
    video_types: np.ndarray,
    seed: int,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    heldout: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Sorted video indices of each split; every video lands in exactly one.

    heldout: optional (N,) bool, the store's ``op_heldout``. When given, those videos form
    the ``"heldout"`` split and the others are split into train / val / test as usual.
    """
    if len(fractions) != 3 or any(f < 0 for f in fractions) or not np.isclose(sum(fractions), 1):
        raise ValueError(
            f"split fractions must be three non-negative numbers summing to 1 (got {fractions})."
        )
    video_types = np.asarray(video_types)
    held = np.zeros(video_types.shape, bool) if heldout is None else np.asarray(heldout, bool)
    if held.shape != video_types.shape:
        raise ValueError(
            f"heldout must have one flag per video: shape {video_types.shape} (got {held.shape})."
        )
    rng = np.random.default_rng(np.random.SeedSequence([seed, _SPLIT_TAG]))
    parts: dict[str, list[np.ndarray]] = {name: [] for name in SPLITS}
    for video_type in np.unique(video_types):
        members = rng.permutation(np.flatnonzero((video_types == video_type) & ~held))
        cuts = np.round(np.cumsum(fractions)[:2] * members.size).astype(int)
        for name, part in zip(SPLITS, np.split(members, cuts), strict=True):
            parts[name].append(part)
    splits = {
        name: np.sort(np.concatenate(chunks)).astype(np.int64) for name, chunks in parts.items()
    }
    if heldout is not None:
        splits[HELDOUT] = np.flatnonzero(held).astype(np.int64)
    return splits


def nested_subset(videos: np.ndarray, video_types: np.ndarray, count: int, seed: int) -> np.ndarray:
    """The first `count` of `videos` (sorted indices) in a seeded order that keeps the type mix
    at every length, so that the subsets of one seed are nested (1k inside 4k inside 16k):
    a learning curve then adds data and changes nothing else.

    video_types: (N,) the type of every video of the store, indexed by `videos`.
    """
    videos = np.asarray(videos, np.int64)
    if count >= videos.size:
        return videos
    rng = np.random.default_rng(np.random.SeedSequence([seed, _SUBSET_TAG]))
    order = rng.permutation(videos.size)
    types = np.asarray(video_types)[videos[order]]
    # Each video's place within its own type, as a fraction: interleaves the types in
    # proportion, so any prefix holds them in the whole's shares (to one video).
    place = np.empty(videos.size)
    for video_type in np.unique(types):
        members = np.flatnonzero(types == video_type)
        place[members] = (np.arange(members.size) + 0.5) / members.size
    return np.sort(videos[order[np.argsort(place, kind="stable")[:count]]])
