"""Deterministic train / validation / test split by video (never by track).

Tracks of one video share its objects and its clutter, so splitting tracks would leak test
information into training. The split is stratified by video type so that every part keeps
the dataset's mix, and drawn from its own tagged random stream (video streams use
spawn_key=(index,); a tag keeps this one from ever coinciding with theirs).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

SPLITS = ("train", "val", "test")
DEFAULT_FRACTIONS = (0.70, 0.15, 0.15)
_SPLIT_TAG = 0x73706C74  # "splt"


def split_videos(
    video_types: np.ndarray, seed: int, fractions: Sequence[float] = DEFAULT_FRACTIONS
) -> dict[str, np.ndarray]:
    """Sorted video indices of each split; every video lands in exactly one."""
    if len(fractions) != 3 or any(f < 0 for f in fractions) or not np.isclose(sum(fractions), 1):
        raise ValueError(
            f"split fractions must be three non-negative numbers summing to 1 (got {fractions})."
        )
    rng = np.random.default_rng(np.random.SeedSequence([seed, _SPLIT_TAG]))
    parts: dict[str, list[np.ndarray]] = {name: [] for name in SPLITS}
    for video_type in np.unique(video_types):
        members = rng.permutation(np.flatnonzero(video_types == video_type))
        cuts = np.round(np.cumsum(fractions)[:2] * members.size).astype(int)
        for name, part in zip(SPLITS, np.split(members, cuts), strict=True):
            parts[name].append(part)
    return {
        name: np.sort(np.concatenate(chunks)).astype(np.int64) for name, chunks in parts.items()
    }
