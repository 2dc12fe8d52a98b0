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
import functools
import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from tp_models.core.batch import TrackBatch
from tp_models.core.device import resolve_device
from tp_models.model.config import TrainConfig as TrainConfig  # re-exported: found here before
from tp_models.model.features import PER_TRACK_INPUTS, start_aligned, valid_step_mask
from tp_models.model.interfaces import ModularTrackingPipeline

# One batch to train on: a TrackBatch, or a group of them (e.g. a few store chunks) that
# is converted part by part and then trained on as one (``_to_device_batch``).
BatchItem = TrackBatch | Sequence[TrackBatch]
# A factory returning a fresh iterable each epoch (e.g. a reader over a Zarr store), or a
# re-iterable collection such as a list. A one-shot generator would be empty in epoch 2.
BatchSource = Callable[[], Iterable[BatchItem]] | Iterable[BatchItem]
EpochCallback = Callable[[int, dict[str, float], dict[str, Any]], None]


@dataclass
class FitResult:
    history: list[dict[str, float]]
    best_epoch: int
    best_val_loss: float
    epochs_run: int  # epochs completed in this call (a resumed call counts its own only)
    stopped_early: bool
    state: dict[str, Any] = field(repr=False)  # final training state (resumable)


def _iterate(source: BatchSource) -> Iterable[BatchItem]:
    return source() if callable(source) else source


def _epoch_seed(seed: int, epoch: int) -> int:
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


def _seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


def labelled_steps(observed: Tensor, label: Tensor, config: TrainConfig) -> Tensor:
    """(B, T) bool: the steps that carry the track's label (``valid_step_mask``) of tracks
    whose label is known (>= 0); every loss and metric counts exactly these steps."""
    until = config.valid_until
    steps = valid_step_mask(observed, until, config.forget_after)  # type: ignore[arg-type]
    return steps & (label >= 0).unsqueeze(1)


def masked_bce(logits: Tensor, label: Tensor, valid: Tensor) -> Tensor:
    """Sum of per-step BCE over the ``valid`` steps (the track label broadcast to its
    steps), as a tensor on the logits' device: reading it would wait for the GPU."""
    target = label.clamp(min=0).unsqueeze(1).expand_as(logits)
    losses = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return (losses * valid).sum()


@dataclass
class _DeviceBatch:
    """One TrackBatch as model inputs (with ``label``) on the training device, plus its
    labelled steps: converted once, then only indexed on the device. Only tracks with
    labelled steps are kept, each start-aligned and cut to its labelled life
    (``start_aligned``). The labelled steps per track are kept on the host, so minibatch
    step counts and lengths never wait for the GPU."""

    inputs: dict[str, Tensor]
    valid: Tensor  # labelled_steps(...), on the device
    steps_per_track: Tensor  # valid.sum(dim=1), on the CPU

    def __len__(self) -> int:
        return int(self.valid.shape[0])


def _to_device_batch(
    batch: BatchItem, pipeline: ModularTrackingPipeline, config: TrainConfig, device: torch.device
) -> _DeviceBatch:
    """A batch, or a group of them, as one device batch. Each part is converted and cut to
    its tracks' labelled lives before the next is made, so converting takes the memory of
    one part's frame span (a few store chunks of 300-scan sequences as one dense batch did
    not fit in 24 GiB), not the group's; the result is the same as for the parts joined."""
    parts = [batch] if isinstance(batch, TrackBatch) else batch
    aligned = []
    for part in parts:
        host = pipeline.tensors(part, with_label=True)
        aligned.append(start_aligned(host, labelled_steps(host["observed"], host["label"], config)))
    host, valid = _joined(aligned)
    return _DeviceBatch(
        inputs={k: v.to(device) for k, v in host.items()},
        valid=valid.to(device),
        steps_per_track=valid.sum(dim=1),
    )


def _joined(
    parts: Sequence[tuple[dict[str, Tensor], Tensor]],
) -> tuple[dict[str, Tensor], Tensor]:
    """Start-aligned inputs and labelled steps of several batches as one, their steps padded
    to the longest (past a track's run: misses, never read)."""
    if len(parts) == 1:
        return parts[0]
    length = max(valid.shape[1] for _, valid in parts)

    def padded(value: Tensor) -> Tensor:
        out = value.new_zeros((value.shape[0], length, *value.shape[2:]))
        out[:, : value.shape[1]] = value
        return out

    inputs = {
        key: torch.cat(
            [p[key] if key in PER_TRACK_INPUTS else padded(p[key]) for p, _ in parts], dim=0
        )
        for key in parts[0][0]
    }
    return inputs, torch.cat([padded(valid) for _, valid in parts], dim=0)


def _device_batches(
    source: BatchSource,
    pipeline: ModularTrackingPipeline,
    config: TrainConfig,
    device: torch.device,
) -> Callable[[], Iterable[_DeviceBatch]]:
    """Per-epoch iterables of device batches. A re-iterable collection (a list) is converted
    once and kept on the device for every epoch; a factory's batches (e.g. read from a
    store) are converted as they come; a one-shot iterator is passed through as it is."""
    if callable(source) or isinstance(source, Iterator):

        def convert() -> Iterable[_DeviceBatch]:
            return (_to_device_batch(b, pipeline, config, device) for b in _iterate(source))

        return convert
    cached = [_to_device_batch(b, pipeline, config, device) for b in source]
    return lambda: cached


# Minibatches are packed by life within pools of this many, drawn at random: each costs
# its longest labelled life, not its sequence's length, and still mixes tracks of the pool.
PACKING_POOL = 32


def packed_minibatches(steps_per_track: Tensor, size: int, shuffle: bool) -> list[Tensor]:
    """Track indices of each minibatch of ``size`` tracks, packed by labelled life so that
    a minibatch costs its longest life, not its sequence's length. Shuffled: tracks in
    random pools of ``PACKING_POOL`` minibatches are sorted by life, cut into minibatches,
    and those come in random order (drawn from the CPU generator: the same on every
    device). Not shuffled: in order of life."""
    n = len(steps_per_track)
    order = torch.randperm(n) if shuffle else torch.arange(n)
    pool = size * PACKING_POOL if shuffle else max(n, 1)
    parts = [p[torch.argsort(steps_per_track[p], stable=True)] for p in torch.split(order, pool)]
    chunks = list(torch.cat(parts).split(size)) if parts else []
    if shuffle:
        chunks = [chunks[i] for i in torch.randperm(len(chunks)).tolist()]
    return chunks


def _minibatches(
    batch: _DeviceBatch, size: int, shuffle: bool
) -> Iterable[tuple[dict[str, Tensor], Tensor, int]]:
    """(inputs, labelled steps, number of labelled steps) per minibatch
    (``packed_minibatches``), each cut to its longest labelled life. Counts and lengths come
    from the host copy; indices go to the device once per minibatch."""
    steps = batch.steps_per_track
    for index in packed_minibatches(steps, size, shuffle):
        length, count = int(steps[index].max()), int(steps[index].sum())
        on_device = index.to(batch.valid.device)
        inputs = {
            k: v.index_select(0, on_device) if k in PER_TRACK_INPUTS else v[on_device, :length]
            for k, v in batch.inputs.items()
        }
        yield inputs, batch.valid[on_device, :length], count


def _train_epoch(
    pipeline: ModularTrackingPipeline,
    optimizer: torch.optim.Optimizer,
    batches: Iterable[_DeviceBatch],
    config: TrainConfig,
    on_step: Callable[[int], None] | None = None,
) -> tuple[float, int]:
    """One pass over the training batches; returns (mean loss per labelled step, tracks).

    Nothing here waits for the device: the loss is summed on it and read once at the end.
    A minibatch without labelled steps is skipped before its forward pass (it has no loss).
    """
    pipeline.train()
    loss_sum: Tensor | float = 0.0
    steps, tracks = 0, 0
    for batch in batches:
        for inputs, valid, count in _minibatches(batch, config.batch_size, config.shuffle):
            if count == 0:
                continue
            total = masked_bce(pipeline(inputs)["logits"], inputs["label"], valid)
            loss = total / count
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(pipeline.parameters(), config.grad_clip)
            optimizer.step()
            # Summed in float64 as Python floats were: the same numbers, without a sync.
            loss_sum = loss_sum + total.detach().double()
            steps += count
            tracks += len(valid)
            if on_step is not None:
                on_step(tracks)
    if tracks == 0:
        raise ValueError(
            "train_batches yielded no labelled steps this epoch; pass a factory (callable) "
            "that returns a fresh iterable every epoch, not a one-shot generator"
        )
    return float(loss_sum) / steps, tracks


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


def _f1(tp: int, fp: int, fn: int) -> float:
    return 0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn)


def _confusion(pred: Tensor, label: Tensor, keep: Tensor) -> Tensor:
    """(tp, fp, fn, correct, tracks) over the ``keep`` rows, as one tensor on the device
    (masks instead of boolean indexing, which would wait for the GPU to learn a size)."""
    return torch.stack(
        [
            (pred & label & keep).sum(),
            (pred & ~label & keep).sum(),
            (~pred & label & keep).sum(),
            ((pred == label) & keep).sum(),
            keep.sum(),
        ]
    )


@torch.inference_mode()
def _evaluate_device_batches(
    pipeline: ModularTrackingPipeline, batches: Iterable[_DeviceBatch], config: TrainConfig
) -> dict[str, float]:
    """``validation_metrics`` on batches already on the device: nothing is read back per batch; the
    loss sum and all counts come to the host in one transfer at the end."""
    was_training = pipeline.training
    pipeline.eval()
    loss_sum: Tensor | float = 0.0
    steps = 0
    keeps, labels, full, online = [], [], [], []
    try:
        with pipeline.attention_storage(False):
            for batch in batches:
                for inputs, valid, count in _minibatches(batch, config.batch_size, False):
                    out = pipeline(inputs)
                    bce = masked_bce(out["logits"], inputs["label"], valid)
                    loss_sum = loss_sum + bce.double()  # float64, as Python floats summed it
                    steps += count  # counted on the host copy
                    rows = torch.arange(len(valid), device=valid.device)
                    k_idx = _kth_observation_or_last_valid(
                        inputs["observed"], valid, config.online_k
                    )
                    prob = out["persistence"]
                    keeps.append(valid.any(dim=1))  # labelled tracks with a labelled step
                    labels.append(inputs["label"] > 0.5)
                    full.append(prob[rows, _last_true_index(valid)])
                    online.append(prob[rows, k_idx])
    finally:
        pipeline.train(was_training)
    if steps == 0:
        raise ValueError("val_batches yielded no labelled steps")
    keep, label = torch.cat(keeps), torch.cat(labels)
    counts = [
        _confusion(torch.cat(scores) >= config.threshold, label, keep) for scores in (full, online)
    ]
    # float64 holds every count exactly; one transfer brings the loss and counts back.
    loss, *numbers = torch.cat([torch.as_tensor(loss_sum).view(1), *counts]).double().tolist()
    tp, fp, fn, correct, tracks, k_tp, k_fp, k_fn, k_correct, _ = (int(x) for x in numbers)
    k = config.online_k
    return {
        "loss": loss / steps,
        "f1_full": _f1(tp, fp, fn),
        f"f1_k{k}": _f1(k_tp, k_fp, k_fn),
        "accuracy_full": correct / tracks,
        f"accuracy_k{k}": k_correct / tracks,
        "tracks": float(tracks),
    }


def validation_metrics(
    pipeline: ModularTrackingPipeline,
    batches: BatchSource,
    config: TrainConfig,
    device: str | torch.device | None = None,
) -> dict[str, float]:
    """Validation metrics: masked per-step BCE loss; F1 and accuracy at ``threshold`` of
    the score at full length (the last valid step: end of video by default) and at the
    k-th observation (tracks with fewer than k observations are read at their last valid
    step). Tracks without a label or without any observation are left out.

    Runs where the pipeline's weights are, or moves the pipeline to ``device`` (a name
    ``resolve_device`` accepts) when one is given.
    """
    if device is not None:
        pipeline.to(resolve_device(device))
    where = next(pipeline.parameters()).device
    converted = (_to_device_batch(b, pipeline, config, where) for b in _iterate(batches))
    return _evaluate_device_batches(pipeline, converted, config)


def _host_copy(value: Any) -> Any:
    """A copy of nested dicts/lists/tuples with every tensor detached and on the CPU: the
    training state handed out is plain data that loads on any machine (GPU or not)."""
    if isinstance(value, Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {k: _host_copy(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_host_copy(v) for v in value)
    return copy.deepcopy(value)


def fit(
    pipeline: ModularTrackingPipeline,
    train_batches: BatchSource,
    val_batches: BatchSource,
    config: TrainConfig,
    on_epoch: EpochCallback | None = None,
    resume_state: dict[str, Any] | None = None,
    device: str | torch.device = "cpu",
    on_step: Callable[[int, int], None] | None = None,
) -> FitResult:
    """Train with AdamW and early stopping on validation loss; restore the best weights.

    ``device``: a name ``resolve_device`` accepts ("auto", "cpu", "cuda", "cuda:N"); the
    pipeline is moved there and stays there. Re-iterable sources (lists) are converted to
    tensors on the device once, for all epochs; a factory's batches every epoch.

    ``on_epoch(epoch, metrics, state)`` runs after every epoch; ``state`` is plain data on
    the CPU (tensors, numbers, lists) that ``torch.save`` can write, that loads on a machine
    without a GPU, and that ``resume_state`` accepts to continue after that epoch. Metrics:
    train_loss, val_loss, val_f1_full, val_f1_k{k}, val_accuracy_full, val_accuracy_k{k},
    train_samples_per_s, epoch_seconds, elapsed_seconds (since this call began). For a
    progress bar: the epoch is ``epoch + 1`` of at most ``config.max_epochs`` (early
    stopping may end the run sooner: ``state["stopped_early"]``). ``on_step(epoch, tracks)``
    runs after every optimisation step with the tracks trained so far in the epoch (progress
    inside a long epoch; it changes nothing). ``fit`` prints nothing.
    """
    began_fit = time.perf_counter()
    device = resolve_device(device)
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
        best_model = _host_copy(resume_state["best_model"])
        bad_epochs = int(resume_state["bad_epochs"])
        history = [dict(h) for h in resume_state["history"]]
        stopped = bool(resume_state.get("stopped_early", False))
    else:
        start_epoch, best_val_loss, best_epoch, bad_epochs = 0, math.inf, -1, 0
        best_model = _host_copy(pipeline.state_dict())
        history, stopped = [], False

    train_epoch = _device_batches(train_batches, pipeline, config, device)
    val_epoch = _device_batches(val_batches, pipeline, config, device)
    state: dict[str, Any] = dict(resume_state) if resume_state is not None else {}
    epochs_run = 0
    # Dropout on a GPU draws from its own generator: fork it too, so the caller's stays.
    cuda_rngs = [device.index] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda_rngs):
        for epoch in range(start_epoch, config.max_epochs):
            if stopped:
                break
            _seed_everything(_epoch_seed(config.seed, epoch))
            began = time.perf_counter()
            # Stored attention is for inspection; the fused attention path trains faster.
            with pipeline.attention_storage(False):
                step = None if on_step is None else functools.partial(on_step, epoch)
                train_loss, n_tracks = _train_epoch(
                    pipeline, optimizer, train_epoch(), config, step
                )
            train_seconds = time.perf_counter() - began
            val = _evaluate_device_batches(pipeline, val_epoch(), config)
            if val["loss"] < best_val_loss - config.min_delta:
                best_val_loss, best_epoch, bad_epochs = val["loss"], epoch, 0
                best_model = _host_copy(pipeline.state_dict())
            else:
                bad_epochs += 1
            stopped = bad_epochs >= config.patience
            metrics = {"train_loss": train_loss}
            metrics.update({f"val_{k}": v for k, v in val.items() if k != "tracks"})
            metrics["train_samples_per_s"] = n_tracks / train_seconds
            metrics["epoch_seconds"] = time.perf_counter() - began
            metrics["elapsed_seconds"] = time.perf_counter() - began_fit
            history.append(metrics)
            epochs_run += 1
            state = {
                "epoch": epoch,
                "model": _host_copy(pipeline.state_dict()),
                "optimizer": _host_copy(optimizer.state_dict()),
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
