"""Flow `cache-features`: encode every video with a registered tokenizer, on Dask, into Zarr."""

from __future__ import annotations

import time
from typing import Any

from prefect import flow, get_run_logger

from flows.runner import dask_runner, map_chunks
from storage.mlflow_store import connect, require_model, tokenizer_checkpoint
from storage.store import Store
from tasks.features import EncodeVideos
from tasks.specs import FeaturesSpec, checked_device
from tp_models.magvit import load_tokenizer

TASKS_PER_WORKER = 2  # encoding a chunk takes seconds: fewer, larger tasks


def check(spec: FeaturesSpec) -> None:
    """Refuse a missing store or tokenizer before any service starts."""
    checked_device(spec.device)
    Store.open(spec.store).fingerprint  # noqa: B018 - raises a clear error if incomplete
    connect()
    require_model(spec.tokenizer_uri)


def latent_shape(checkpoint: str, frames: int, size: int) -> tuple[int, int, int, int]:
    config = load_tokenizer(checkpoint).config
    cells = size // config.spatial_downsample
    return (config.latent_steps(frames), config.latent_dim, cells, cells)


@flow(name="cache-features", log_prints=True)
def cache_features(spec: FeaturesSpec = FeaturesSpec()) -> dict[str, Any]:
    """Resumable: chunks done and intact are skipped; a finished cache starts no Dask cluster."""
    logger = get_run_logger()
    began = time.perf_counter()
    connect()
    checkpoint, digest = tokenizer_checkpoint(spec.tokenizer_uri, spec.checkpoints)
    store = Store.open(spec.store)
    shape = latent_shape(str(checkpoint), store.frames, store.frame_size)
    features = store.create_features(digest, shape, spec.overwrite)
    features.group.attrs["tokenizer_uri"] = spec.tokenizer_uri  # informational: the hash is key
    todo = features.stale_chunks(store.dataset)  # not done, damaged, or from other videos
    encoded = []
    if todo:
        stage = EncodeVideos(str(checkpoint), digest, spec.batch_size, spec.device)
        workers = spec.compute.n_workers()
        with dask_runner(spec.compute) as runner:
            results = map_chunks(runner, stage, store, todo, workers, TASKS_PER_WORKER)
        encoded = [r for r in results if not r.skipped]
    if not features.group.attrs.get("complete"):  # also after a kill between last chunk and here
        features.finalize()
    store.consolidate()
    seconds = time.perf_counter() - began
    summary = {
        "features_group": features.group.path,
        "checkpoint_hash": digest,
        "latent_shape": list(shape),
        "videos_encoded": sum(r.items for r in encoded),
        "seconds": round(seconds, 2),
        "stored_mb": round(features.stored_bytes() / 1e6, 1),
        "raw_mb": round(features.raw_bytes() / 1e6, 1),
    }
    if encoded:
        summary["videos_per_s"] = round(summary["videos_encoded"] / seconds, 1)
    logger.info("cache-features done: %s", summary)
    return summary
