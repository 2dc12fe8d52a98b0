"""Flow `train`: the modular persistence model on a store's tracks, recorded in MLflow."""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows.params import TrainParams
from storage.mlflow_store import connect, require_model
from storage.track_reader import TrackSource
from tasks.train import train_model

DEFAULTS = TrainParams()


@flow(name="train", log_prints=True)
def train(params: TrainParams = DEFAULTS) -> dict[str, Any]:
    """Train (or resume training) and register the model as `track-persistence@candidate`."""
    connect()  # an unreachable tracking server fails here, not after an hour of training
    features_hash = tokenizer_hash(params)
    source = TrackSource.open(params.store, params.tracker(), features_hash)  # must exist
    model_config: dict[str, Any] = {"features": params.features}
    if features_hash:
        model_config["extractor_options"] = {"latent_dim": source.latent_dim}
    train_config = {
        "lr": params.lr,
        "batch_size": params.batch_size,
        "max_epochs": params.max_epochs,
        "patience": params.patience,
        "seed": params.seed,
    }
    tags = {"features": params.features, "dataset_fingerprint": source.fingerprint, "flow": "train"}
    return train_model(
        params.store,
        params.tracker(),
        model_config,
        train_config,
        params.split_seed,
        params.checkpoints,
        tags,
        features_hash,
    )


def tokenizer_hash(params: TrainParams) -> str | None:
    """The checkpoint hash of the tokenizer whose cached features the model reads, if any."""
    if params.features == "statistical":
        return None
    return require_model(params.tokenizer_uri).get("tokenizer.checkpoint_hash")
