"""The store as most scientific Python users look at it: xarray.open_zarr."""

from __future__ import annotations

import numpy as np
import pytest
import xarray
import zarr

from storage.store import Store

pytestmark = pytest.mark.usefixtures("prefect_harness")


def test_xarray_opens_the_store_and_its_tracks(tiny_store):
    store = Store.open(tiny_store)
    data = xarray.open_zarr(tiny_store, consolidated=True)  # fails without consolidation
    assert data["videos"].dims == ("video", "frame", "y", "x", "channel")
    assert dict(data.sizes) | {"video": 12, "frame": 9, "y": 64, "x": 64} == dict(data.sizes)
    np.testing.assert_array_equal(data["videos"][3].values, store.dataset.read("videos", 3, 4)[0])
    tracks = xarray.open_zarr(tiny_store, group=store.tracks().group.path, consolidated=True)
    assert tracks["position"].dims == ("video", "slot", "frame", "xy")
    assert tracks["observed"].shape[0] == 12


def test_dimension_names_change_neither_chunk_bytes_nor_fingerprint(tiny_store, tmp_path):
    group = zarr.open_group(tiny_store, mode="r", use_consolidated=False)
    videos = group["videos"]
    plain = zarr.create_array(
        str(tmp_path / "plain.zarr"),
        shape=videos.shape,
        chunks=videos.chunks,
        dtype=videos.dtype,
        compressors=videos.compressors,
        fill_value=0,
    )
    plain[: videos.chunks[0]] = videos[: videos.chunks[0]]
    key = "c/0/0/0/0/0"
    assert (tmp_path / "plain.zarr" / key).read_bytes() == (
        __import__("pathlib").Path(tiny_store) / "videos" / key
    ).read_bytes()
    dataset = Store.open(tiny_store).dataset
    assert dataset.fingerprint() == group.attrs["fingerprint"]
