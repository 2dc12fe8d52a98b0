"""Stage: simulate whole chunks of the dataset group."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from storage.chunked import ChunkedGroup
from storage.dataset import scene_arrays
from storage.store import Store
from tasks.chunks import ChunkArrays, ChunkStage
from tp_models.world.config import SceneConfig
from tp_models.world.simulate import assign_video_types, simulate


@dataclass(frozen=True)
class SimulateVideos(ChunkStage):
    """Every chunk is simulated from the store's own config: same seed, same bytes."""

    label: str = "generate"

    def output(self, store: Store) -> ChunkedGroup:
        return store.dataset

    def prepare(self, store: Store) -> Callable[[int], ChunkArrays]:
        config = store.dataset.config
        scene = SceneConfig.from_dict(config["scene"])
        video_types = assign_video_types(config["counts"], config["seed"])

        def chunk_arrays(chunk: int) -> ChunkArrays:
            start, stop = store.dataset.bounds(chunk)
            batch = simulate(scene, video_types[start:stop], np.arange(start, stop), config["seed"])
            return scene_arrays(batch)

        return chunk_arrays
