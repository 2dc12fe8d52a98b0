"""Task: encode whole chunks of videos with the tokenizer into the Zarr feature cache."""

from __future__ import annotations

import time

import numpy as np
import torch
from prefect import get_run_logger, task

from storage.dataset import open_dataset
from storage.features import LATENTS, open_features
from tp_models.magvit import load_tokenizer


@task(name="cache-features-chunks", retries=2, retry_delay_seconds=1)
def encode_chunks(
    store: str, checkpoint: str, checkpoint_hash: str, chunks: list[int], batch_size: int
) -> list[int]:
    """Encode the given chunks (skipping those done and intact); returns the chunks encoded."""
    logger = get_run_logger()
    torch.set_num_threads(1)  # one Dask worker per core already
    dataset = open_dataset(store)
    features = open_features(store, checkpoint_hash, complete=False)  # created by the flow
    tokenizer = load_tokenizer(checkpoint)  # strict: a checkpoint that does not fit raises
    encoded = []
    for chunk in chunks:
        if features.verify_chunk(chunk):
            continue
        began = time.perf_counter()
        videos = dataset.read_chunk(chunk, ["videos"])["videos"]
        parts = []
        with torch.inference_mode():
            for start in range(0, len(videos), batch_size):
                latents, _ = tokenizer.encode(videos[start : start + batch_size])
                parts.append(latents.to(torch.float16).numpy())
        features.write_chunk(chunk, {LATENTS: np.concatenate(parts)})
        encoded.append(chunk)
        logger.info(
            "features chunk %d/%d: %d videos in %.2f s",
            chunk + 1,
            features.n_chunks,
            len(videos),
            time.perf_counter() - began,
        )
    return encoded
