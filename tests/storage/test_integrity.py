"""Corruption of each group (copy, truncate, delete, garble) and what every reader does with it.

Each case damages a copy of the session's tiny store the way a disk, a careless `cp` or a
kill would, then reads it the way the stages do: a bad chunk is a named `CorruptChunkError`
(never a codec traceback, never silently used), `tp info --verify` lists it with the command
that rewrites it, and a changed parent chunk makes exactly its dependent chunks stale.
"""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from storage.chunked import CorruptChunkError
from storage.errors import StoreError
from storage.inspect import damaged_groups, describe
from storage.store import Store
from storage.track_reader import TrackSource
from tasks.chunks import run_chunks
from tasks.tracks import ExtractTracks


@pytest.fixture
def store(tiny_store, tmp_path) -> Store:
    path = tmp_path / "copy.zarr"
    shutil.copytree(tiny_store, path)
    return Store.open(str(path))


def _chunk_file(store: Store, array: str, chunk: int) -> str:
    ndim = store.dataset.group[array].ndim
    return os.path.join(store.url, *array.split("/"), "c", str(chunk), *["0"] * (ndim - 1))


def test_copied_video_chunk_stops_the_tracks_stage_naming_chunk_and_repair(store):
    shutil.copy(_chunk_file(store, "videos", 0), _chunk_file(store, "videos", 1))
    compute = ExtractTracks(key=store.tracks().group.basename).prepare(store)
    compute(0)  # intact chunks are still read
    with pytest.raises(CorruptChunkError, match=r"chunk 1 \(items 3-5\) no longer matches") as err:
        compute(1)
    assert f"tp generate --store {store.url}" in str(err.value)
    assert damaged_groups(store) == {
        "dataset": {"corrupted": [1], "stale": [], "repair": store.dataset.repair_command()}
    }


def test_truncated_video_chunk_is_a_named_error_not_a_codec_traceback(store):
    path = _chunk_file(store, "videos", 2)
    with open(path, "r+b") as handle:
        handle.truncate(os.path.getsize(path) // 2)
    with pytest.raises(CorruptChunkError, match=r"chunk 2 .* does not decode"):
        store.dataset.read_chunk(2, ["videos"])
    assert describe(store.url, verify=True)["corrupted_chunks"] == [2]


def test_garbled_done_marker_is_not_done_never_a_crash(store):
    with open(os.path.join(store.url, "_chunk_checksum", "c", "3"), "wb") as handle:
        handle.write(b"\x00garbage")
    assert store.dataset.done_chunks().tolist() == [True, True, True, False]
    assert store.dataset.stale_chunks() == [3]
    info = describe(store.url, verify=True)  # reads every marker: must not raise
    assert info["chunks_done"] == 3 and info["corrupted_chunks"] == []


def test_deleted_tracks_chunk_stops_the_reader_and_verify_lists_it(store):
    tracks = store.tracks()
    os.remove(_chunk_file(store, f"tracks/{tracks.group.basename}/position", 1))
    source = TrackSource.open(store)
    with pytest.raises(CorruptChunkError, match=r"chunk 1 .*`tp tracks --store"):
        source.load(np.arange(store.dataset.n_items))
    source.load(np.arange(3))  # chunk 0 alone is intact
    assert damaged_groups(store)[f"tracks/{tracks.group.basename}"]["corrupted"] == [1]


def test_changed_parent_chunk_makes_exactly_its_tracks_chunk_stale_and_is_redone(
    store, prefect_harness
):
    tracks = store.tracks()
    before = TrackSource.open(store).fingerprint
    changed = store.dataset.read_chunk(1)
    changed["videos"] = np.ascontiguousarray(changed["videos"][::-1])  # other, valid videos
    changed["masks"] = np.ascontiguousarray(changed["masks"][::-1])
    store.dataset.write_chunk(1, changed)
    assert tracks.stale_chunks(store.dataset) == [1]
    assert damaged_groups(store)[f"tracks/{tracks.group.basename}"]["stale"] == [1]

    results = run_chunks(ExtractTracks(key=tracks.group.basename), store.url, [0, 1, 2, 3])
    assert [r.chunk for r in results if not r.skipped] == [1]
    assert tracks.stale_chunks(store.dataset) == []
    assert TrackSource.open(store).fingerprint != before  # a model on the old data is not reused


def test_deleted_or_garbled_latents_chunk_is_redone_not_read_as_zeros(store):
    features = store.create_features("ab" * 32, (2, 4, 2, 2))
    for chunk in range(features.n_chunks):
        start, stop = features.bounds(chunk)
        latents = np.full((stop - start, 2, 4, 2, 2), chunk + 1, dtype=np.float16)
        features.write_chunk(chunk, {"latents": latents}, store.dataset.stored_checksum(chunk))
    features.finalize()
    assert features.stale_chunks(store.dataset) == []
    folder = os.path.join(store.url, *features.group.path.split("/"), "latents", "c")
    os.remove(os.path.join(folder, "2", "0", "0", "0", "0"))
    with open(os.path.join(folder, "0", "0", "0", "0", "0"), "wb") as handle:
        handle.write(b"garbled")
    assert features.stale_chunks(store.dataset) == [0, 2]  # what cache-features redoes
    with pytest.raises(CorruptChunkError, match=r"chunk 2 .*`tp cache-features --store"):
        features.read_chunk(2)
    np.testing.assert_array_equal(features.read_chunk(1)["latents"], 2)


def test_verify_after_a_deleted_array_metadata_is_a_damaged_group_not_a_traceback(store, capsys):
    """`tp info --verify` after `rm videos/zarr.json` was a traceback."""
    from flows.cli import main

    os.remove(os.path.join(store.url, "videos", "zarr.json"))
    code = main(["info", "--store", store.url, "--verify"])
    captured = capsys.readouterr()
    assert code in (1, 2), captured
    text = (captured.out + captured.err).strip()
    assert (
        "Traceback" not in text and "videos" in text and f"tp generate --store {store.url}" in text
    )


@pytest.mark.parametrize("edit", ["fingerprint", "config.seed"])
def test_edited_store_attributes_are_a_clear_error_and_verify_names_them(store, edit, capsys):
    """Editing the root zarr.json (the fingerprint, or the seed in the config) went unnoticed
    and training recorded the forged fingerprint as the model's data."""
    import json

    from flows.cli import main

    meta_path = os.path.join(store.url, "zarr.json")
    with open(meta_path) as handle:
        meta = json.load(handle)
    attrs = meta["attributes"]
    if edit == "fingerprint":
        attrs["fingerprint"] = "0123456789abcdef"
    else:
        attrs["config"]["seed"] = attrs["config"]["seed"] + 1
    with open(meta_path, "w") as handle:
        json.dump(meta, handle)
    with pytest.raises(StoreError, match="attributes were edited"):
        Store.open(store.url).fingerprint  # noqa: B018 - what every reader asks first
    assert main(["info", "--store", store.url, "--verify"]) == 1
    assert "EDITED ATTRIBUTES" in capsys.readouterr().out
