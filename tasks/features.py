"""Stage: encode whole chunks of videos with the tokenizer into the Zarr feature cache."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from storage.chunked import ChunkedGroup
from storage.features import FEATURES, LATENTS, features_path
from storage.store import Store
from tasks.chunks import ChunkArrays, ChunkStage
from tp_models.magvit import load_tokenizer


@dataclass(frozen=True)
class EncodeVideos(ChunkStage):
    """Latents of one tokenizer checkpoint (a local file, verified by its hash beforehand)."""

    checkpoint: str
    checkpoint_hash: str
    batch_size: int
    device: str = "cpu"
    label: str = "features"

    def output(self, store: Store) -> ChunkedGroup:
        return store.group(features_path(store.fingerprint, self.checkpoint_hash), FEATURES)

    def parent(self, store: Store) -> ChunkedGroup:
        return store.dataset

    def prepare(self, store: Store) -> Callable[[int], ChunkArrays]:
        torch.set_num_threads(1)  # one Dask worker per core already
        tokenizer = load_tokenizer(
            self.checkpoint, map_location=self.device
        )  # strict: a checkpoint that does not fit raises

        def chunk_arrays(chunk: int) -> ChunkArrays:
            videos = store.dataset.read_chunk(chunk, ["videos"])["videos"]
            return {LATENTS: tokenizer.encode_latents(videos, self.batch_size, torch.float16)}

        return chunk_arrays
