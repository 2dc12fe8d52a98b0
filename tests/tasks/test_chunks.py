"""The one chunk loop (`run_chunks`) on a real store: done-and-verified chunks are skipped,
a corrupted one is computed again to the same bytes, and nothing is prepared without work."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from storage.store import Store
from tasks.chunks import run_chunks
from tasks.generate import SimulateVideos

pytestmark = pytest.mark.usefixtures("prefect_harness")


@dataclass(frozen=True)
class NeverPrepared(SimulateVideos):
    """The generate stage, refusing to prepare: proves a run had no chunk to compute."""

    def prepare(self, store):
        raise AssertionError("prepared although every chunk was done and intact")


@pytest.fixture
def store_copy(tiny_store, tmp_path) -> str:
    path = tmp_path / "store.zarr"
    shutil.copytree(tiny_store, path)
    return str(path)


def _videos(url: str) -> np.ndarray:
    return Store.open(url).dataset.read("videos")


def test_done_and_intact_chunks_are_skipped_without_preparing(store_copy):
    n_chunks = Store.open(store_copy).dataset.n_chunks
    results = run_chunks(NeverPrepared(), store_copy, list(range(n_chunks)))
    assert [r.chunk for r in results] == list(range(n_chunks))
    assert all(r.skipped and r.seconds == 0.0 for r in results)
    assert [r.items for r in results] == [3] * n_chunks  # TINY: 12 videos, 3 per chunk


def test_a_corrupted_chunk_is_redone_to_the_same_bytes(store_copy):
    before = _videos(store_copy)
    garbled = _chunk_object(store_copy, "videos", 2)
    garbled.write_bytes(b"garbage" + garbled.read_bytes()[7:])
    dataset = Store.open(store_copy).dataset
    assert not dataset.verify_chunk(2) and dataset.verify_chunk(1)

    results = run_chunks(SimulateVideos(), store_copy, [1, 2, 3])
    assert [(r.chunk, r.skipped) for r in results] == [(1, True), (2, False), (3, True)]
    assert results[1].items == 3 and results[1].seconds > 0
    assert Store.open(store_copy).dataset.verify_chunk(2)
    np.testing.assert_array_equal(_videos(store_copy), before)


def _chunk_object(url: str, array: str, chunk: int) -> Path:
    """The file of the first Zarr chunk object of `array` in the store's `chunk`-th chunk."""
    files = sorted((Path(url) / array / "c" / str(chunk)).rglob("*"))
    return next(f for f in files if f.is_file())
