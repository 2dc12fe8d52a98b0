"""Flow `cache-features`: encode every video with a registered tokenizer, on Dask, into Zarr."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from prefect import flow, get_run_logger

from flows.params import FeaturesParams
from flows.runner import dask_runner, run_all, split
from storage.dataset import open_dataset
from storage.features import open_or_create_features
from storage.mlflow_store import connect, tokenizer_checkpoint
from tasks.features import encode_chunks
from tp_models.magvit import load_tokenizer

TASKS_PER_WORKER = 2
DEFAULTS = FeaturesParams()


def latent_shape(checkpoint: str, frames: int, size: int) -> tuple[int, int, int, int]:
    config = load_tokenizer(checkpoint).config
    cells = size // config.spatial_downsample
    return (config.latent_steps(frames), config.latent_dim, cells, cells)


@flow(name="cache-features", log_prints=True)
def cache_features(params: FeaturesParams = DEFAULTS) -> dict[str, Any]:
    """Resumable: chunks done and intact are skipped; a finished cache returns at once."""
    logger = get_run_logger()
    began = time.perf_counter()
    connect()
    checkpoint, digest = tokenizer_checkpoint(params.tokenizer_uri, params.checkpoints)
    videos = open_dataset(params.store).group["videos"]
    shape = latent_shape(str(checkpoint), videos.shape[1], videos.shape[2])
    features = open_or_create_features(
        params.store, digest, shape, params.tokenizer_uri, params.overwrite
    )
    todo = [int(c) for c in np.flatnonzero(~features.done_chunks())]
    encoded: list[int] = []
    if todo:
        with dask_runner(params.n_workers(), params.dask_address) as runner:
            calls = [
                {
                    "store": params.store,
                    "checkpoint": str(checkpoint),
                    "checkpoint_hash": digest,
                    "chunks": part,
                    "batch_size": params.batch_size,
                }
                for part in split(todo, params.n_workers() * TASKS_PER_WORKER)
            ]
            encoded = [
                c for chunks in run_all(runner, encode_chunks, calls, "features") for c in chunks
            ]
    if not features.group.attrs.get("complete"):  # also after a kill between last chunk and here
        features.finalize()
    seconds = time.perf_counter() - began
    summary = {
        "features_group": features.group.path,
        "checkpoint_hash": digest,
        "latent_shape": list(shape),
        "videos_encoded": sum(b - a for a, b in map(features.bounds, encoded)),
        "seconds": round(seconds, 2),
        "stored_mb": round(features.stored_bytes() / 1e6, 1),
        "raw_mb": round(features.raw_bytes() / 1e6, 1),
    }
    if encoded:
        summary["videos_per_s"] = round(summary["videos_encoded"] / seconds, 1)
    logger.info("cache-features done: %s", summary)
    return summary
