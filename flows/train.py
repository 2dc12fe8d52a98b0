"""Flow `train`: the modular persistence model on a store's tracks, recorded in MLflow."""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows.params import TrainParams
from storage.mlflow_store import connect
from storage.track_reader import TrackSource
from tasks.train import train_model

DEFAULTS = TrainParams()


@flow(name="train", log_prints=True)
def train(params: TrainParams = DEFAULTS) -> dict[str, Any]:
    """Train (or resume training) and register the model as `track-persistence@candidate`."""
    connect()  # an unreachable tracking server fails here, not after an hour of training
    source = TrackSource.open(params.store, params.tracker())  # tracks must exist
    model_config = {"features": params.features}
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
    )
