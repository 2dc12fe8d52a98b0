"""Flow `train`: the modular persistence model on a store's tracks, recorded in MLflow."""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows.params import TrainParams
from storage.dataset import open_dataset
from storage.errors import StoreError
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
        params.retrain,
    )


def tokenizer_hash(params: TrainParams) -> str | None:
    """The checkpoint hash of the tokenizer whose cached features the model reads, if any."""
    if params.features == "statistical":
        return None
    tokenizer = require_model(params.tokenizer_uri)
    fingerprint = open_dataset(params.store).group.attrs.get("fingerprint")
    if (tokenizer.get("data.fingerprint"), tokenizer.get("data.split_seed")) != (
        fingerprint,
        str(params.split_seed),
    ):
        trained_on = (tokenizer.get("data.fingerprint"), tokenizer.get("data.split_seed"))
        raise StoreError(
            f"tokenizer {params.tokenizer_uri} was trained on data {trained_on[0]} with "
            f"split_seed {trained_on[1]}, this model uses {fingerprint} and "
            f"{params.split_seed}: its training videos could be in this model's test split; run "
            f"`tp train-tokenizer --store {params.store} --split-seed {params.split_seed}` first."
        )
    return tokenizer.get("tokenizer.checkpoint_hash")
