"""Figures that show *why* a model scores as it does: confusion, attention, worst errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from storage.track_reader import TrackSource
from tp_models.core.batch import TrackBatch
from tp_models.core.scorer import PersistenceScorer
from tp_models.evaluation.metrics import scores_at
from tp_models.evaluation.plots import plot_attention, plot_confusion
from tp_models.evaluation.visualize import contact_sheet, draw_positions, save_png
from tp_models.model import ModularTrackingPipeline

GOOD, BAD = (60, 255, 60), (255, 60, 60)


def full_length_decisions(
    model: PersistenceScorer, test: TrackBatch, threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(scores at full length, labels, predictions) of the labelled test tracks."""
    values, valid = scores_at(model.score(test), test.observed, "full")
    valid &= test.label >= 0
    index = np.flatnonzero(valid)
    return index, values[valid], values[valid] >= threshold


def confusion_figure(
    test: TrackBatch, index: np.ndarray, predicted: np.ndarray, path: Path
) -> Path:
    truth = test.label[index] == 1
    matrix = np.array(
        [
            [np.sum(~truth & ~predicted), np.sum(~truth & predicted)],
            [np.sum(truth & ~predicted), np.sum(truth & predicted)],
        ]
    )
    return plot_confusion(matrix, path, "model at full length (test split)")


def attention_figures(
    model: PersistenceScorer, test: TrackBatch, tracks: np.ndarray, out: Path
) -> list[Path]:
    """Last-layer attention of a few tracks (one persistent, one transient when possible);
    none for a model without attention (the GRU, a classical family)."""
    if not isinstance(model, ModularTrackingPipeline):
        return []
    model.eval()
    # Inputs of the whole test batch first: some read other tracks of the same video.
    inputs = {k: v[torch.as_tensor(tracks)] for k, v in model.tensors(test).items()}
    with torch.inference_mode():
        outputs = model(inputs, return_intermediates=True)
    layers = [int(k.split("_")[1]) for k in outputs if k.startswith("attention_")]
    if not layers:
        return []
    last = max(layers)
    weights = outputs[f"attention_{last}"].float().numpy()
    figures = []
    for row, track in enumerate(tracks):
        kind = "persistent" if test.label[track] == 1 else "transient"
        title = f"track {int(track)} ({kind}, video {int(test.video[track])}), last layer"
        figures.append(
            plot_attention(
                weights[row], test.observed[track], out / f"attention_{kind}_{row}.png", title
            )
        )
    return figures


def error_gallery(
    source: TrackSource,
    test: TrackBatch,
    index: np.ndarray,
    scores: np.ndarray,
    truth: np.ndarray,
    threshold: float,
    out: Path,
    per_side: int = 4,
) -> list[Path]:
    """Frames of the worst false positives and false negatives with the track drawn on them."""
    figures = []
    predicted = scores >= threshold
    for name, wrong, order in (
        ("false_positives", ~truth & predicted, -scores),  # worst: transient, most persistent
        ("false_negatives", truth & ~predicted, scores),  # worst: persistent, least persistent
    ):
        candidates = np.flatnonzero(wrong)
        worst = candidates[np.argsort(order[candidates])][:per_side]
        if worst.size == 0:
            continue
        rows, labels = [], []
        for pick in worst:
            track = int(index[pick])
            video = int(test.video[track])
            frames = source.store.dataset.read("videos", video, video + 1)[0]
            drawn = draw_positions(
                frames,
                test.position[track][None],
                colors=[GOOD if truth[pick] else BAD],
                visible=test.observed[track][None],
                scale=2,
            )
            rows.append(drawn)
            labels.append(f"video {video} score {scores[pick]:.2f}")
        sheet = contact_sheet(np.stack(rows), labels=labels)
        figures.append(save_png(sheet, out / f"gallery_{name}.png"))
    return figures


def model_figures(
    model: PersistenceScorer,
    source: TrackSource,
    test: TrackBatch,
    report: dict[str, Any],
    out: Path,
) -> list[Path]:
    threshold = report["scorers"]["model"]["k"]["full"].get("threshold")
    if threshold is None or len(test) == 0:
        return []
    index, scores, predicted = full_length_decisions(model, test, threshold)
    truth = test.label[index] == 1
    samples = [
        index[np.flatnonzero(truth == value)[0]]
        for value in (True, False)
        if (truth == value).any()
    ]
    gallery = (source, test, index, scores, truth, threshold, out)
    return [
        confusion_figure(test, index, predicted, out / "confusion_full.png"),
        *attention_figures(model, test, np.array(samples), out),
        # Imported tracks have no video to draw them on.
        *([] if source.store.imported else error_gallery(*gallery)),
    ]
