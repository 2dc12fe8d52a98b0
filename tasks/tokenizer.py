"""Task: train the MagVit tokenizer on the train split's videos; log and register it."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import torch
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from storage.chunked import ChunkedGroup
from storage.mlflow_store import (
    CHECKPOINT_DATA,
    finished_summary,
    flat_params,
    git_commit,
    log_and_register,
    log_store_input,
)
from storage.registry import TOKENIZER_NAME, version_uri
from storage.store import Store
from tasks.specs import TokenizerSpec
from tp_models.magvit import (
    MagVitTokenizer,
    checkpoint_hash,
    evaluate_tokenizer,
    fit_tokenizer,
    reconstruction_grid,
    save_tokenizer,
)

HELD_OUT_VIDEOS = 32


def video_batches(
    dataset: ChunkedGroup, videos: np.ndarray, batch_size: int, seed: int
) -> Iterator[np.ndarray]:
    """Endless random batches of `videos`, one store chunk in memory at a time."""
    rng = np.random.default_rng(seed)
    per_chunk = dataset.items_per_chunk
    chunks = np.unique(videos // per_chunk)
    while True:
        chunk = int(rng.choice(chunks))
        start, stop = dataset.bounds(chunk)
        members = videos[(videos >= start) & (videos < stop)] - start
        frames = dataset.read("videos", start, stop)[members]
        for _ in range(max(1, len(members) // batch_size)):
            yield frames[
                rng.choice(len(members), size=min(batch_size, len(members)), replace=False)
            ]


@task(name="train-tokenizer", cache_policy=NO_CACHE)  # its input is a live store handle
def tokenizer_training(
    store: Store, spec: TokenizerSpec, advance: Callable[..., None] | None = None
) -> dict[str, Any]:
    """Train the tokenizer (or return the finished training with the same inputs);
    `advance(n, **latest)` is told of the steps done at every log (a progress bar)."""
    logger = get_run_logger()
    torch.set_num_threads(os.cpu_count() or 1)
    dataset = store.dataset
    config, train_cfg, split_seed = spec.tokenizer, spec.training, spec.split_seed
    splits = store.splits(split_seed)
    key = json.dumps([dataset.fingerprint(), config.to_dict(), train_cfg.to_dict(), split_seed])
    summary_file = (
        Path(spec.checkpoints)
        / f"tokenizer-run-{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"
    )
    finished = finished_summary(summary_file, "tokenizer_uri")
    if finished is not None:
        logger.info("this tokenizer training already finished: %s", finished["tokenizer_uri"])
        return finished
    model = MagVitTokenizer(config)
    held_out = np.sort(splits["val"][:HELD_OUT_VIDEOS])
    held_out_videos = np.stack([dataset.read("videos", i, i + 1)[0] for i in held_out])

    with mlflow.start_run(run_name="train-tokenizer") as run:
        mlflow.set_tags(
            {
                "flow": "train-tokenizer",
                "git_commit": git_commit(),
                "dataset_fingerprint": dataset.group.attrs.get("fingerprint", ""),
            }
        )
        mlflow.log_params(
            {
                **flat_params("tokenizer", config.to_dict()),
                **flat_params("train", train_cfg.to_dict()),
                "data.store": store.url,
                "data.split_seed": split_seed,
                "data.fingerprint": dataset.group.attrs.get("fingerprint", ""),
            }
        )
        log_store_input(
            store.url, store.fingerprint, f"train (split_seed {split_seed})", "training"
        )

        def on_log(step: int, metrics: dict[str, float]) -> None:
            mlflow.log_metrics({f"train_{k}": v for k, v in metrics.items()}, step=step)
            logger.info("step %d: loss %.5f psnr %.2f dB", step, metrics["loss"], metrics["psnr"])
            if advance is not None:
                advance(step + 1 - steps_done[0], loss=metrics["loss"], psnr=metrics["psnr"])
            steps_done[0] = step + 1

        steps_done = [0]

        history = fit_tokenizer(
            model,
            video_batches(dataset, splits["train"], train_cfg.batch_size, train_cfg.seed),
            train_cfg,
            on_log,
            device=spec.device,
        )
        held_out_metrics = evaluate_tokenizer(model, held_out_videos)
        mlflow.log_metrics({f"heldout_{k}": v for k, v in held_out_metrics.items()})
        with torch.inference_mode():
            recon = model.reconstruct(held_out_videos[:4])
        mlflow.log_image(reconstruction_grid(held_out_videos[:4], recon), "reconstructions.png")

        with tempfile.TemporaryDirectory() as staging:
            staged = save_tokenizer(model, Path(staging) / Path(CHECKPOINT_DATA).name)
            digest = checkpoint_hash(staged)
            mlflow.log_param("tokenizer.checkpoint_hash", digest)
            kept = Path(spec.checkpoints) / f"{digest}.pt"  # cache-features finds it by hash
            kept.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(staged, kept)
            version = log_and_register(staged, TOKENIZER_NAME)
    summary = {
        "run_id": run.info.run_id,
        "tokenizer_uri": version_uri(version, TOKENIZER_NAME),
        "checkpoint": str(kept),
        "checkpoint_hash": digest,
        "steps": train_cfg.steps,
        "train_seconds": round(history[-1]["seconds"], 1) if history else 0.0,
        **{f"heldout_{k}": v for k, v in held_out_metrics.items()},
    }
    summary_file.write_text(json.dumps(summary, indent=2))
    logger.info("tokenizer trained: %s", summary)
    return summary
