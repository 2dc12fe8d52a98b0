"""fit/evaluate on a device: the same numbers as the plain per-step loop over whole frames,
metrics that agree with scikit-learn, state that loads without a GPU, and what a progress
bar needs."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import accuracy_score, f1_score

from tests.tp_models.model_helpers import MODEL, toy_tracks
from tp_models.core.batch import TrackBatch
from tp_models.core.device import DeviceError
from tp_models.model import (
    TrainConfig,
    build_pipeline,
    checkpoint_dict,
    fit,
    load_pipeline,
    validation_metrics,
)
from tp_models.model.features import valid_step_mask
from tp_models.model.training import _epoch_seed, _seed_everything, packed_minibatches
from tp_models.tracks.features import SCENE_EXTRAS, handmade_scene_features

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
without_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")

# batch_size 48 leaves a short last minibatch, so the padded per-minibatch counts are tested;
# forget_after 2 cuts most tracks' labelled steps well before the end of their frames.
CONFIG = TrainConfig(
    lr=3e-3, batch_size=48, max_epochs=2, patience=5, seed=3, threshold=0.3, forget_after=2
)


@pytest.fixture(scope="module")
def data() -> tuple[list[TrackBatch], list[TrackBatch]]:
    return [toy_tracks(200, 10), toy_tracks(120, 11)], [toy_tracks(150, 12), toy_tracks(70, 13)]


def reference_train_losses(pipeline, train: list[TrackBatch], config: TrainConfig) -> list[float]:
    """The loop fit ran before it kept its sums on the device and packed tracks by life:
    every step runs whole frames and reads its loss and step count on the host. Same
    seeding, minibatches and optimiser as fit."""
    optimizer = torch.optim.AdamW(
        pipeline.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    out = []
    with torch.random.fork_rng(devices=[]):
        for epoch in range(config.max_epochs):
            _seed_everything(_epoch_seed(config.seed, epoch))
            pipeline.train()
            loss_sum, steps = 0.0, 0
            with pipeline.attention_storage(False):
                for batch in train:
                    tensors = pipeline.tensors(batch, with_label=True)
                    labelled = valid_step_mask(
                        tensors["observed"], config.valid_until, config.forget_after
                    ) & (tensors["label"] >= 0).unsqueeze(1)
                    keep = labelled.any(dim=1)
                    tensors = {k: v[keep] for k, v in tensors.items()}
                    labelled = labelled[keep]
                    for index in packed_minibatches(labelled.sum(dim=1), config.batch_size, True):
                        inputs = {k: v[index] for k, v in tensors.items()}
                        valid = labelled[index]
                        logits = pipeline(inputs)["logits"]
                        target = inputs["label"].unsqueeze(1).expand_as(logits)
                        losses = F.binary_cross_entropy_with_logits(
                            logits, target, reduction="none"
                        )
                        total, count = (losses * valid).sum(), int(valid.sum())
                        optimizer.zero_grad(set_to_none=True)
                        (total / count).backward()
                        torch.nn.utils.clip_grad_norm_(pipeline.parameters(), config.grad_clip)
                        optimizer.step()
                        loss_sum += float(total.detach())
                        steps += count
            out.append(loss_sum / steps)
    return out


@pytest.mark.parametrize("sequence", ["transformer", "gru"])
def test_fit_gives_the_whole_frame_loops_numbers(data, sequence) -> None:
    """Packed (start-aligned, cut to each minibatch's longest labelled life) is exact up to
    float rounding: the models are causal and read a track from its first observation."""
    train, val = data
    # No dropout: its masks are drawn per tensor shape, and packing changes the shapes.
    model = dataclasses.replace(MODEL, sequence=sequence, dropout=0.0)
    reference = build_pipeline(model, seed=1)
    expected = reference_train_losses(reference, train, CONFIG)
    trained = build_pipeline(model, seed=1)
    result = fit(trained, train, val, TrainConfig(**{**CONFIG.to_dict(), "min_delta": -1e9}))
    assert [h["train_loss"] for h in result.history] == pytest.approx(expected, rel=1e-5)
    # min_delta < 0: every epoch counts as best, so the final weights are the last epoch's.
    for key, value in reference.state_dict().items():
        torch.testing.assert_close(trained.state_dict()[key], value, atol=1e-4, rtol=1e-4)


def reference_metrics(pipeline, batches: list[TrackBatch], config: TrainConfig) -> dict:
    """The validation metrics from the model's outputs over each whole frame span (every
    step the metrics may read, past a track's last observation too), on the host, read
    with NumPy and sklearn."""
    labels, full, online, bce, steps = [], [], [], 0.0, 0
    pipeline.eval()
    for batch in batches:
        with torch.inference_mode():
            prob = pipeline(pipeline.tensors(batch))["persistence"].double().numpy()
        observed = batch.observed
        first = observed.argmax(axis=1)
        last_seen = batch.frames - 1 - observed[:, ::-1].argmax(axis=1)
        ahead = batch.frames if config.forget_after is None else config.forget_after
        last_valid = np.minimum(last_seen + ahead, batch.frames - 1)
        frames = np.arange(batch.frames)
        valid = (frames >= first[:, None]) & (frames <= last_valid[:, None])
        valid &= observed.any(axis=1)[:, None]  # "end", cut forget_after past the last seen
        label = batch.label.astype(np.float64)
        p = np.clip(prob, 1e-12, 1 - 1e-12)
        step_loss = -(label[:, None] * np.log(p) + (1 - label[:, None]) * np.log(1 - p))
        bce += float(step_loss[valid].sum())
        steps += int(valid.sum())
        kth = np.argmax(np.cumsum(observed, axis=1) >= config.online_k, axis=1)
        reached = observed.sum(axis=1) >= config.online_k
        rows = np.arange(len(batch))
        labels.append(batch.label == 1)
        full.append(prob[rows, last_valid])
        online.append(np.where(reached, prob[rows, kth], prob[rows, last_valid]))
    label = np.concatenate(labels)
    full_pred = np.concatenate(full) >= config.threshold
    online_pred = np.concatenate(online) >= config.threshold
    return {
        "loss": bce / steps,
        "f1_full": f1_score(label, full_pred),
        "f1_k3": f1_score(label, online_pred),
        "accuracy_full": accuracy_score(label, full_pred),
        "accuracy_k3": accuracy_score(label, online_pred),
        "tracks": float(len(label)),
    }


@pytest.mark.parametrize("forget_after", [None, 2])
def test_evaluate_agrees_with_numpy_and_sklearn(data, forget_after) -> None:
    train, val = data
    config = dataclasses.replace(CONFIG, forget_after=forget_after)
    pipeline = build_pipeline(MODEL, seed=2)
    fit(pipeline, train, val, dataclasses.replace(config, max_epochs=3))
    metrics = validation_metrics(pipeline, val, config)
    expected = reference_metrics(pipeline, val, config)
    assert metrics.keys() == expected.keys()
    for key, value in expected.items():
        assert metrics[key] == pytest.approx(value, rel=1e-5), key
    if forget_after is None:  # the scores read at full length and at k differ
        assert 0.0 < metrics["f1_k3"] < 1.0
        assert metrics["accuracy_full"] != metrics["accuracy_k3"]


def test_evaluate_leaves_unlabelled_tracks_out(data) -> None:
    _, val = data
    pipeline = build_pipeline(MODEL, seed=2)
    batch = val[0]
    # Counted on the whole video first: dropping tracks below must not change the others'
    # scene features, only which tracks the metrics read.
    batch.extras[SCENE_EXTRAS] = handmade_scene_features(batch)
    unlabelled = batch.select(np.arange(len(batch)))
    unlabelled.label = batch.label.copy()
    unlabelled.label[:50] = -1
    with_unknown = validation_metrics(pipeline, [unlabelled], CONFIG)
    only_known = validation_metrics(pipeline, [batch.select(np.arange(50, len(batch)))], CONFIG)
    assert with_unknown["tracks"] == len(batch) - 50
    for key, value in only_known.items():
        assert with_unknown[key] == pytest.approx(value, rel=1e-6), key


class CountingList(list):
    """A list that counts how often it is iterated."""

    iterations = 0

    def __iter__(self):
        self.iterations += 1
        return super().__iter__()


def test_lists_are_converted_once_and_progress_is_reported(data, capsys) -> None:
    train, val = CountingList(data[0]), CountingList(data[1])
    seen: list[tuple[int, dict]] = []
    config = TrainConfig(**{**CONFIG.to_dict(), "max_epochs": 3})
    fit(
        build_pipeline(MODEL, seed=0),
        train,
        val,
        config,
        on_epoch=lambda e, m, s: seen.append((e, m)),
    )
    assert (train.iterations, val.iterations) == (1, 1)
    assert [epoch for epoch, _ in seen] == [0, 1, 2]
    elapsed = [m["elapsed_seconds"] for _, m in seen]
    assert elapsed == sorted(elapsed) and elapsed[0] >= seen[0][1]["epoch_seconds"] > 0
    assert {"val_loss", "val_f1_full", "val_f1_k3", "val_accuracy_full"} <= seen[-1][1].keys()
    assert capsys.readouterr() == ("", "")


def test_state_is_plain_cpu_data_and_resumes(data, tmp_path) -> None:
    train, val = data
    saved = tmp_path / "state.pt"
    first = fit(
        build_pipeline(MODEL, seed=0),
        train,
        val,
        TrainConfig(**{**CONFIG.to_dict(), "max_epochs": 1}),
        on_epoch=lambda e, m, state: torch.save(state, saved),
    )

    def tensors(value):
        if isinstance(value, torch.Tensor):
            yield value
        elif isinstance(value, dict | list | tuple):
            for item in value.values() if isinstance(value, dict) else value:
                yield from tensors(item)

    assert all(t.device.type == "cpu" for t in tensors(first.state))
    assert sum(1 for _ in tensors(first.state["optimizer"])) > 10
    state = torch.load(saved, map_location="cpu", weights_only=True)
    resumed = fit(build_pipeline(MODEL, seed=9), train, val, CONFIG, resume_state=state)
    whole = fit(build_pipeline(MODEL, seed=0), train, val, CONFIG)
    assert [h["train_loss"] for h in resumed.history] == [h["train_loss"] for h in whole.history]


@without_cuda
def test_fit_on_a_missing_gpu_fails_before_training(data) -> None:
    train, val = data
    pipeline = build_pipeline(MODEL, seed=0)
    before = {k: v.clone() for k, v in pipeline.state_dict().items()}
    with pytest.raises(DeviceError, match="device parameter"):
        fit(pipeline, train, val, CONFIG, device="cuda")
    assert all(torch.equal(v, pipeline.state_dict()[k]) for k, v in before.items())
    assert fit(pipeline, train, val, CONFIG, device="auto").epochs_run == CONFIG.max_epochs


@needs_cuda
def test_fit_evaluate_and_score_on_a_gpu_match_the_cpu(data, tmp_path) -> None:
    train, val = data
    # Without dropout: a GPU draws dropout masks from its own generator, so only then can
    # both runs follow the same path (shuffling uses the CPU generator on every device).
    no_dropout = dataclasses.replace(MODEL, dropout=0.0)
    on_cpu, on_gpu = build_pipeline(no_dropout, seed=4), build_pipeline(no_dropout, seed=4)
    cpu = fit(on_cpu, train, val, CONFIG, device="cpu")
    gpu = fit(on_gpu, train, val, CONFIG, device="cuda")
    assert next(on_gpu.parameters()).is_cuda
    for a, b in zip(cpu.history, gpu.history, strict=True):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=5e-3)
        assert b["val_loss"] == pytest.approx(a["val_loss"], rel=5e-3)
    metrics = validation_metrics(on_gpu, val, CONFIG)
    assert metrics["loss"] == pytest.approx(gpu.best_val_loss, rel=1e-6)
    scores = on_gpu.score(val[0])
    assert isinstance(scores, np.ndarray) and scores.shape == val[0].observed.shape
    np.testing.assert_allclose(scores, on_cpu.score(val[0]), atol=1e-2)
    # What a GPU run writes loads on the CPU: the per-epoch state and the checkpoint.
    torch.save(gpu.state, tmp_path / "state.pt")
    torch.save(checkpoint_dict(on_gpu), tmp_path / "model.pt")
    state = torch.load(tmp_path / "state.pt", map_location="cpu", weights_only=True)
    fit(build_pipeline(no_dropout, seed=0), train, val, CONFIG, resume_state=state)
    reloaded = load_pipeline(tmp_path / "model.pt", map_location="cpu")
    np.testing.assert_allclose(reloaded.score(val[0]), scores, atol=1e-5)
