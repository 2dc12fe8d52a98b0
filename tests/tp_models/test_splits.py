"""Video splits: stratified, deterministic, and the held-out region kept out of training."""

from __future__ import annotations

import numpy as np
import pytest

from tp_models.world.config import SceneConfig
from tp_models.world.simulate import assign_video_types, simulate
from tp_models.world.splits import HELDOUT, SPLITS, nested_subset, split_videos


def test_every_video_in_exactly_one_split_with_the_type_mix() -> None:
    types = assign_video_types((400, 400, 100, 100), seed=0)
    splits = split_videos(types, seed=0)
    assert set(splits) == set(SPLITS)
    together = np.concatenate(list(splits.values()))
    assert np.array_equal(np.sort(together), np.arange(types.size))
    assert [len(splits[name]) for name in SPLITS] == [700, 150, 150]
    assert np.bincount(types[splits["test"]], minlength=4).tolist() == [60, 60, 15, 15]
    again = split_videos(types, seed=0)
    assert all(np.array_equal(splits[name], again[name]) for name in SPLITS)
    assert not np.array_equal(splits["test"], split_videos(types, seed=1)["test"])


def test_heldout_videos_get_their_own_split_and_never_train() -> None:
    types = assign_video_types((40, 40, 10, 10), seed=0)
    batch = simulate(SceneConfig(frames=4, size=64), types, np.arange(types.size), seed=5)
    held = batch.op_heldout
    assert 0 < held.sum() < types.size
    splits = split_videos(types, seed=0, heldout=held)
    assert set(splits) == {*SPLITS, HELDOUT}
    assert np.array_equal(splits[HELDOUT], np.flatnonzero(held))
    for name in SPLITS:
        assert not held[splits[name]].any(), name
    together = np.sort(np.concatenate(list(splits.values())))
    assert np.array_equal(together, np.arange(types.size))
    share = len(splits["train"]) / (~held).sum()
    assert abs(share - 0.7) < 0.05


def test_heldout_flags_must_match_the_videos() -> None:
    with pytest.raises(ValueError, match="heldout must have one flag per video"):
        split_videos(np.zeros(10, np.int8), seed=0, heldout=np.zeros(9, bool))


def test_train_subsets_are_nested_and_keep_the_type_mix() -> None:
    types = assign_video_types((400, 400, 100, 100), seed=0)
    train = split_videos(types, seed=0)["train"]
    small, large = (nested_subset(train, types, n, seed=0) for n in (100, 400))
    assert (small.size, large.size) == (100, 400)
    assert np.isin(small, large).all() and np.isin(large, train).all()
    assert np.all(np.diff(large) > 0)
    shares = np.bincount(types[train], minlength=4) / train.size
    for subset in (small, large):
        counts = np.bincount(types[subset], minlength=4)
        assert np.abs(counts - shares * subset.size).max() <= 1, counts
    assert np.array_equal(small, nested_subset(train, types, 100, seed=0))
    assert not np.array_equal(small, nested_subset(train, types, 100, seed=1))
    assert np.array_equal(nested_subset(train, types, train.size + 5, seed=0), train)
