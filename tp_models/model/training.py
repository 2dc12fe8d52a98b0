"""Training loop, kept apart from the model and from data loading.

``fit`` knows a pipeline, batches of ``TrackBatch`` and a ``TrainConfig``; nothing about
Zarr, MLflow or Prefect. The caller logs and checkpoints in the ``on_epoch`` callback,
and resumes an interrupted run from the state that callback received.

Reproducibility: weights come from the caller (``build_pipeline(config, seed=...)``);
inside ``fit`` every epoch reseeds torch and numpy from (seed, epoch), so an epoch's
dropout and shuffling depend only on the seed, the epoch number and the state at its
start. That is what makes a resumed run equal to an uninterrupted one. ``fit`` runs in a
forked torch RNG, so the caller's global RNG is left as it was.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Annotated, Any

import numpy as np
import torch
import torch.nn.functional as F
from annotated_types import Ge, Interval, doc
from torch import Tensor

from tp_models.config import known_fields
from tp_models.model.features import batch_to_tensors, valid_step_mask
from tp_models.model.interfaces import ModularTrackingPipeline
from tp_models.scoring import TrackBatch

# A factory returning a fresh iterable each epoch (e.g. a reader over a Zarr store), or a
# re-iterable collection such as a list. A one-shot generator would be empty in epoch 2.
BatchSource = Callable[[], Iterable[TrackBatch]] | Iterable[TrackBatch]
EpochCallback = Callable[[int, dict[str, float], dict[str, Any]], None]


@dataclass(frozen=True)
class TrainConfig:
    lr: Annotated[float, Interval(gt=0, lt=1), doc("AdamW learning rate")] = 1e-3
    weight_decay: Annotated[float, Ge(0), doc("AdamW weight decay")] = 1e-2
    batch_size: Annotated[int, Ge(1), doc("tracks per optimisation step")] = 256
    max_epochs: Annotated[int, Ge(1), doc("upper bound; early stopping usually ends sooner")] = 40
    patience: Annotated[int, Ge(1), doc("epochs without validation-loss gain before stopping")] = 5
    min_delta: float = 0.0  # an improvement must beat the best loss by more than this
    seed: Annotated[int, Ge(0), doc("weights, dropout and shuffling")] = 0
    grad_clip: float | None = 1.0  # max gradient norm; None to disable
    shuffle: bool = True  # shuffle tracks within each TrackBatch the source yields
    # Steps that carry the track's label: first observation .. end of the video ("end"),
    # or .. last observation. "end" is the default because a causal model can only learn
    # that a track was brief from the frames after it vanished: at its last observation a
    # brief track that moves like a real one looks exactly like a real one.
    valid_until: str = "end"
    online_k: int = 3  # validation F1 also on the score at the k-th observation
    threshold: float = 0.5

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        return cls(**known_fields(cls, data))


@dataclass
class FitResult:
    history: list[dict[str, float]]
    best_epoch: int
    best_val_loss: float
    epochs_run: int  # epochs completed in this call (a resumed call counts its own only)
    stopped_early: bool
    state: dict[str, Any] = field(repr=False)  # final training state (resumable)


def _iterate(source: BatchSource) -> Iterable[TrackBatch]:
    return source() if callable(source) else source


def _epoch_seed(seed: int, epoch: int) -> int:
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


def _seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


def masked_bce(logits: Tensor, label: Tensor, valid: Tensor) -> tuple[Tensor, int]:
    """Sum of per-step BCE over valid steps (the track label broadcast to its steps), and
    the number of valid steps. Tracks with unknown label (< 0) count nowhere."""
    valid = valid & (label >= 0).unsqueeze(1)
    target = label.clamp(min=0).unsqueeze(1).expand_as(logits)
    losses = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return (losses * valid).sum(), int(valid.sum())


def _minibatches(
    batch: TrackBatch, pipeline: ModularTrackingPipeline, config: TrainConfig, device: str
) -> Iterable[dict[str, Tensor]]:
    tensors = batch_to_tensors(batch, keys=pipeline.input_keys, device=device, with_label=True)
    n = len(batch)
    order = torch.randperm(n) if config.shuffle else torch.arange(n)
    for start in range(0, n, config.batch_size):
        index = order[start : start + config.batch_size].to(device)
        yield {k: v.index_select(0, index) for k, v in tensors.items()}


def _train_epoch(
    pipeline: ModularTrackingPipeline,
    optimizer: torch.optim.Optimizer,
    source: BatchSource,
    config: TrainConfig,
    device: str,
) -> tuple[float, int]:
    pipeline.train()
    loss_sum, steps, tracks = 0.0, 0, 0
    for batch in _iterate(source):
        for inputs in _minibatches(batch, pipeline, config, device):
            valid = valid_step_mask(inputs["observed"], config.valid_until)  # type: ignore[arg-type]
            logits = pipeline(inputs)["logits"]
            total, count = masked_bce(logits, inputs["label"], valid)
            if count == 0:
                continue
            loss = total / count
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(pipeline.parameters(), config.grad_clip)
            optimizer.step()
            loss_sum += float(total.detach())
            steps += count
            tracks += len(inputs["label"])
    if tracks == 0:
        raise ValueError(
            "train_batches yielded no labelled steps this epoch; pass a factory (callable) "
            "that returns a fresh iterable every epoch, not a one-shot generator"
        )
    return loss_sum / steps, tracks


def _f1(pred: np.ndarray, label: np.ndarray) -> float:
    tp = float(np.sum(pred & label))
    fp = float(np.sum(pred & ~label))
    fn = float(np.sum(~pred & label))
    return 0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn)


def _last_true_index(mask: Tensor) -> Tensor:
    t = mask.shape[1]
    return (t - 1) - torch.flip(mask, [1]).to(torch.int8).argmax(dim=1)


def _kth_observation_or_last_valid(observed: Tensor, valid: Tensor, k: int) -> Tensor:
    """Frame of the k-th observation, or the last valid frame for tracks with fewer: the
    only decision ever made about a track that never reached k observations."""
    count = torch.cumsum(observed.to(torch.int32), dim=1)
    reached = (count >= k) & observed
    index = reached.to(torch.int8).argmax(dim=1)
    return torch.where(reached.any(dim=1), index, _last_true_index(valid))


@torch.inference_mode()
def evaluate(
    pipeline: ModularTrackingPipeline,
    batches: BatchSource,
    config: TrainConfig,
    device: str = "cpu",
) -> dict[str, float]:
    """Validation metrics: masked per-step BCE loss; F1 and accuracy at ``threshold`` of
    the score at full length (the last valid step: end of video by default) and at the
    k-th observation (tracks with fewer than k observations are read at their last valid
    step). Tracks without a label or without any observation are left out."""
    was_training = pipeline.training
    pipeline.eval()
    loss_sum, steps = 0.0, 0
    labels: list[np.ndarray] = []
    full: list[np.ndarray] = []
    online: list[np.ndarray] = []
    try:
        with pipeline.attention_storage(False):
            for batch in _iterate(batches):
                inputs = batch_to_tensors(
                    batch, keys=pipeline.input_keys, device=device, with_label=True
                )
                valid = valid_step_mask(inputs["observed"], config.valid_until)  # type: ignore[arg-type]
                out = pipeline(inputs)
                total, count = masked_bce(out["logits"], inputs["label"], valid)
                loss_sum += float(total)
                steps += count
                keep = (inputs["label"] >= 0) & valid.any(dim=1)
                rows = torch.arange(len(keep), device=keep.device)
                prob = out["persistence"]
                full_idx = _last_true_index(valid)
                k_idx = _kth_observation_or_last_valid(inputs["observed"], valid, config.online_k)
                labels.append(inputs["label"][keep].cpu().numpy() > 0.5)
                full.append(prob[rows, full_idx][keep].cpu().numpy())
                online.append(prob[rows, k_idx][keep].cpu().numpy())
    finally:
        pipeline.train(was_training)
    if steps == 0:
        raise ValueError("val_batches yielded no labelled steps")
    label = np.concatenate(labels)
    full_pred = np.concatenate(full) >= config.threshold
    online_pred = np.concatenate(online) >= config.threshold
    k = config.online_k
    return {
        "loss": loss_sum / steps,
        "f1_full": _f1(full_pred, label),
        f"f1_k{k}": _f1(online_pred, label),
        "accuracy_full": float(np.mean(full_pred == label)),
        f"accuracy_k{k}": float(np.mean(online_pred == label)),
        "tracks": float(len(label)),
    }


def _clone_state(module_state: dict[str, Tensor]) -> dict[str, Tensor]:
    return {k: v.detach().clone() for k, v in module_state.items()}


def fit(
    pipeline: ModularTrackingPipeline,
    train_batches: BatchSource,
    val_batches: BatchSource,
    config: TrainConfig,
    on_epoch: EpochCallback | None = None,
    resume_state: dict[str, Any] | None = None,
    device: str = "cpu",
) -> FitResult:
    """Train with AdamW and early stopping on validation loss; restore the best weights.

    ``on_epoch(epoch, metrics, state)`` runs after every epoch; ``state`` is plain data
    (tensors, numbers, lists) that ``torch.save`` can write and that ``resume_state``
    accepts to continue after that epoch. Metrics: train_loss, val_loss, val_f1_full,
    val_f1_k{k}, val_accuracy_full, val_accuracy_k{k}, train_samples_per_s, epoch_seconds.
    """
    pipeline.to(device)
    optimizer = torch.optim.AdamW(
        pipeline.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    if resume_state is not None:
        pipeline.load_state_dict(resume_state["model"], strict=True)
        optimizer.load_state_dict(resume_state["optimizer"])
        start_epoch = int(resume_state["epoch"]) + 1
        best_val_loss = float(resume_state["best_val_loss"])
        best_epoch = int(resume_state["best_epoch"])
        best_model = _clone_state(resume_state["best_model"])
        bad_epochs = int(resume_state["bad_epochs"])
        history = [dict(h) for h in resume_state["history"]]
        stopped = bool(resume_state.get("stopped_early", False))
    else:
        start_epoch, best_val_loss, best_epoch, bad_epochs = 0, math.inf, -1, 0
        best_model = _clone_state(pipeline.state_dict())
        history, stopped = [], False

    state: dict[str, Any] = dict(resume_state) if resume_state is not None else {}
    epochs_run = 0
    with torch.random.fork_rng(devices=[]):
        for epoch in range(start_epoch, config.max_epochs):
            if stopped:
                break
            _seed_everything(_epoch_seed(config.seed, epoch))
            began = time.perf_counter()
            # Stored attention is for inspection; the fused attention path trains faster.
            with pipeline.attention_storage(False):
                train_loss, n_tracks = _train_epoch(
                    pipeline, optimizer, train_batches, config, device
                )
            train_seconds = time.perf_counter() - began
            val = evaluate(pipeline, val_batches, config, device)
            if val["loss"] < best_val_loss - config.min_delta:
                best_val_loss, best_epoch, bad_epochs = val["loss"], epoch, 0
                best_model = _clone_state(pipeline.state_dict())
            else:
                bad_epochs += 1
            stopped = bad_epochs >= config.patience
            metrics = {"train_loss": train_loss}
            metrics.update({f"val_{k}": v for k, v in val.items() if k != "tracks"})
            metrics["train_samples_per_s"] = n_tracks / train_seconds
            metrics["epoch_seconds"] = time.perf_counter() - began
            history.append(metrics)
            epochs_run += 1
            state = {
                "epoch": epoch,
                "model": _clone_state(pipeline.state_dict()),
                "optimizer": copy.deepcopy(optimizer.state_dict()),
                "best_model": best_model,
                "best_val_loss": best_val_loss,
                "best_epoch": best_epoch,
                "bad_epochs": bad_epochs,
                "stopped_early": stopped,
                "history": [dict(h) for h in history],
                "train_config": config.to_dict(),
            }
            if on_epoch is not None:
                on_epoch(epoch, dict(metrics), state)

    pipeline.load_state_dict(best_model, strict=True)
    return FitResult(
        history=history,
        best_epoch=best_epoch,
        best_val_loss=best_val_loss,
        epochs_run=epochs_run,
        stopped_early=stopped,
        state=state,
    )
