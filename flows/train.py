"""Flow `train`: the modular persistence model on a store's tracks, recorded in MLflow."""

from __future__ import annotations

import dataclasses
from typing import Any

from prefect import flow

from flows.naming import name_flow_run
from flows.progress import progress
from storage.errors import ParameterError, StoreError
from storage.mlflow_store import connect, require_model
from storage.store import Store
from storage.track_reader import TrackSource
from tasks.specs import TrainSpec, checked_device
from tasks.train import run_name, train_model
from tp_models.families.names import MODEL_FAMILY


def check(spec: TrainSpec) -> TrackSource:
    """Everything the training needs, or a clear error before any work starts."""
    checked_device(spec.device)
    if spec.family != MODEL_FAMILY and spec.model.features != "statistical":
        raise ParameterError(
            f"features: {spec.model.features!r} is what the learned model reads; a classical "
            f"family ({spec.family}) reads the tracks only: drop --features or --family"
        )
    store = Store.open(spec.store)
    if spec.train_videos is not None and spec.train_videos > (
        available := store.splits(spec.split_seed)["train"].size
    ):
        raise ParameterError(
            f"train_videos: {spec.train_videos} is more than the {available} videos of the "
            f"train split (split_seed {spec.split_seed}); give at most {available}, or leave "
            "--train-videos out to train on them all"
        )
    connect()  # an unreachable tracking server fails here, not after an hour of training
    return TrackSource.open(store, spec.tracks, tokenizer_hash(spec, store))


@flow(name="train", log_prints=True)
def train(spec: TrainSpec = TrainSpec()) -> dict[str, Any]:
    """Train (or resume training) and register the model as `track-persistence@candidate`."""
    source = check(spec)
    size = source.store.frame_size
    options = {"latent_dim": source.latent_dim} if source.features is not None else {}
    model = dataclasses.replace(spec.model, frame_size=(size, size), extractor_options=options)
    tags = {"features": model.features, "flow": "train"}
    name_flow_run(run_name(model, spec))
    features_hash = None if source.features is None else source.features.config["checkpoint_hash"]
    with progress(spec.training.max_epochs, f"train-{model.features}", "epoch") as advance:
        return train_model(source, model, spec, tags, features_hash, advance)


def tokenizer_hash(spec: TrainSpec, store: Store) -> str | None:
    """The checkpoint hash of the tokenizer whose cached features the model reads, if any."""
    if spec.model.features == "statistical":
        return None
    tokenizer = require_model(spec.tokenizer_uri)
    trained_on = (tokenizer.get("data.fingerprint"), tokenizer.get("data.split_seed"))
    if trained_on != (store.fingerprint, str(spec.split_seed)):
        raise StoreError(
            f"tokenizer {spec.tokenizer_uri} was trained on data {trained_on[0]} with "
            f"split_seed {trained_on[1]}, this model uses {store.fingerprint} and "
            f"{spec.split_seed}: its training videos could be in this model's test split; run "
            f"`tp train-tokenizer --store {store.url} --split-seed {spec.split_seed}` first."
        )
    return tokenizer.get("tokenizer.checkpoint_hash")
