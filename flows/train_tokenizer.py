"""Flow `train-tokenizer`: a MagVit tokenizer trained on the store's own train videos."""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows.progress import progress
from storage.errors import ParameterError
from storage.mlflow_store import connect
from storage.store import Store
from tasks.specs import TokenizerSpec, checked_device
from tasks.tokenizer import tokenizer_training
from tp_models.magvit.config import check_num_frames


def check(spec: TokenizerSpec) -> Store:
    """The store to train on, or a clear error before any work starts."""
    checked_device(spec.device)
    connect()
    store = Store.open(spec.store)
    try:
        check_num_frames(store.frames, spec.tokenizer.temporal_downsample)
    except ValueError as exc:
        raise ParameterError(f"store {spec.store!r}: {exc}") from None
    if store.frame_size % spec.tokenizer.spatial_downsample:
        raise ParameterError(
            f"spatial_downsample {spec.tokenizer.spatial_downsample} does not divide the "
            f"store's frame size {store.frame_size}; choose a power of two that does."
        )
    return store


@flow(name="train-tokenizer", log_prints=True)
def train_tokenizer(spec: TokenizerSpec = TokenizerSpec()) -> dict[str, Any]:
    """Train, evaluate on held-out videos, register as `magvit-tokenizer@candidate`."""
    store = check(spec)
    with progress(spec.training.steps, "train-tokenizer", "step") as advance:
        return tokenizer_training(store, spec, advance)
