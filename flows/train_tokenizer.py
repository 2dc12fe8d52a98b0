"""Flow `train-tokenizer`: a MagVit tokenizer trained on the store's own train videos."""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows.params import TokenizerParams
from storage.dataset import open_dataset
from storage.mlflow_store import connect
from tasks.tokenizer import train_tokenizer_task

DEFAULTS = TokenizerParams()


@flow(name="train-tokenizer", log_prints=True)
def train_tokenizer(params: TokenizerParams = DEFAULTS) -> dict[str, Any]:
    """Train, evaluate on held-out videos, register as `magvit-tokenizer@candidate`."""
    connect()
    open_dataset(params.store)
    tokenizer_config = {
        "latent_dim": params.latent_dim,
        "codebook_size": params.codebook_size,
        "spatial_downsample": params.spatial_downsample,
    }
    train_config = {
        "steps": params.steps,
        "batch_size": params.batch_size,
        "lr": params.lr,
        "seed": params.seed,
    }
    return train_tokenizer_task(
        params.store, tokenizer_config, train_config, params.split_seed, params.checkpoints
    )
