"""ChunkedGroup on real Zarr stores: creation, refusal, interrupted creation, resume markers."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

from storage.chunked import ArraySpec, ChunkedGroup
from storage.errors import StoreError

SPECS = {"x": ArraySpec((3,), "float32", float("nan")), "n": ArraySpec((), "int16", -1)}


def _make(path, config=None, overwrite=False) -> ChunkedGroup:
    return ChunkedGroup.open_or_create(
        str(path),
        "",
        kind="dataset",
        config=config or {"seed": 1},
        n_items=10,
        items_per_chunk=4,
        specs=SPECS,
        overwrite=overwrite,
    )


def _chunk(group: ChunkedGroup, chunk: int) -> dict[str, np.ndarray]:
    start, stop = group.bounds(chunk)
    return {
        "x": np.full((stop - start, 3), chunk, "float32"),
        "n": np.arange(start, stop, dtype="int16"),
    }


def test_chunks_are_marked_done_only_after_their_data(tmp_path):
    group = _make(tmp_path / "s.zarr")
    assert group.n_chunks == 3 and group.bounds(2) == (8, 10)
    assert not group.done_chunks().any()
    group.write_chunk(2, _chunk(group, 2))
    assert group.done_chunks().tolist() == [False, False, True]
    assert group.verify_chunk(2) and not group.verify_chunk(0)
    np.testing.assert_array_equal(group.read("n", 8, 10), [8, 9])
    with pytest.raises(StoreError, match="cannot finalize"):
        group.finalize()


def test_reopening_with_same_config_resumes_and_other_config_is_refused(tmp_path):
    group = _make(tmp_path / "s.zarr")
    group.write_chunk(0, _chunk(group, 0))
    again = _make(tmp_path / "s.zarr")
    assert again.done_chunks().tolist() == [True, False, False]
    with pytest.raises(StoreError, match="differs in: seed"):
        _make(tmp_path / "s.zarr", {"seed": 2})
    assert _make(tmp_path / "s.zarr", {"seed": 1}).verify_chunk(0)  # refusal changed nothing
    fresh = _make(tmp_path / "s.zarr", {"seed": 2}, overwrite=True)
    assert not fresh.done_chunks().any() and fresh.config == {"seed": 2}


def test_interrupted_creation_starts_again(tmp_path):
    path = tmp_path / "s.zarr"
    root = zarr.open_group(str(path), mode="w")
    root.attrs.update({"project": "track-persistence", "schema_version": 1})  # no "kind" yet
    group = _make(path)
    assert group.kind == "dataset" and group.n_items == 10


def test_foreign_data_is_never_overwritten(tmp_path):
    other = zarr.open_group(str(tmp_path / "other.zarr"), mode="w")
    other.create_array("keep", data=np.arange(3))
    for overwrite in (False, True):
        with pytest.raises(StoreError, match="not a track-persistence store"):
            _make(tmp_path / "other.zarr", overwrite=overwrite)
    np.testing.assert_array_equal(
        zarr.open_group(str(tmp_path / "other.zarr"))["keep"][:], [0, 1, 2]
    )


def test_tracks_refuse_an_unfinished_dataset(tmp_path):
    from storage.store import Store
    from tp_models.world.config import SceneConfig

    config = {
        "scene": SceneConfig(frames=5, size=32).to_dict(),
        "counts": [2, 2, 0, 0],
        "seed": 0,
        "videos_per_chunk": 2,
    }
    store = Store.create(str(tmp_path / "s.zarr"), config, 4, False)
    with pytest.raises(StoreError, match="not complete"):
        store.create_tracks({"max_misses": 2})
