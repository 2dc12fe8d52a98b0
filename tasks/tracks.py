"""Stage: detect and track objects in whole chunks of videos, label tracks via the id masks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from storage.chunked import ChunkedGroup
from storage.store import Store
from storage.tracks import TRACKS, with_quality
from tasks.chunks import ChunkArrays, ChunkStage
from tp_models.perception.tracker import TrackerConfig
from tp_models.tracks.arrays import extract_and_label


@dataclass(frozen=True)
class ExtractTracks(ChunkStage):
    """Tracks of one tracker config (`tracks/<key>`), chunk for chunk with the videos."""

    key: str
    label: str = "tracks"

    def output(self, store: Store) -> ChunkedGroup:
        return store.group(f"{TRACKS}/{self.key}", TRACKS)

    def parent(self, store: Store) -> ChunkedGroup:
        return store.dataset

    def prepare(self, store: Store) -> Callable[[int], ChunkArrays]:
        tracks = self.output(store)
        config = TrackerConfig.from_dict(tracks.config["tracker"])
        capacity = int(tracks.config["capacity"])

        def chunk_arrays(chunk: int) -> ChunkArrays:
            data = store.dataset.read_chunk(chunk, ["videos", "masks", "gt_kind"])
            arrays, quality = extract_and_label(
                data["videos"], data["masks"], data["gt_kind"], config, capacity
            )
            return with_quality(arrays, quality)

        return chunk_arrays
