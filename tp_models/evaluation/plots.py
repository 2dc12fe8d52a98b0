"""Evaluation figures (matplotlib, headless): scorers side by side, by k and on ROC axes."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from tp_models.evaluation.metrics import K_KEYS  # noqa: E402

matplotlib.use("Agg")


def _style(name: str) -> dict[str, Any]:
    if name == "model" or name.startswith("model"):
        return {"linewidth": 2.6, "color": "black", "zorder": 5}
    return {"linewidth": 1.2, "alpha": 0.85}


def plot_metric_by_k(report: Mapping[str, Any], metric: str, path: str | Path) -> Path:
    """One line per scorer: `metric` after k = 1..10 observations and at full length."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    positions = np.arange(len(K_KEYS))
    for name, section in report["scorers"].items():
        values = [section["k"][key].get(metric) for key in K_KEYS]
        ys = np.array([np.nan if v is None else v for v in values], dtype=float)
        ax.plot(positions, ys, marker="o", markersize=3, label=name, **_style(name))
    ax.set_xticks(positions, [*K_KEYS[:-1], "full"])
    ax.set_xlabel("observations so far (k)")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} by k on the {report.get('split', 'test')} split")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    return _save(fig, path)


def plot_roc(
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]],
    operating_points: Mapping[str, tuple[float, float]],
    path: str | Path,
    title: str = "ROC at full track length",
) -> Path:
    """ROC curves (fpr, tpr) per scorer with each scorer's chosen operating point marked."""
    fig, ax = plt.subplots(figsize=(5.2, 5))
    for name, (fpr, tpr) in curves.items():
        (line,) = ax.plot(fpr, tpr, label=name, **_style(name))
        if name in operating_points:
            x, y = operating_points[name]
            ax.plot([x], [y], "o", color=line.get_color(), markersize=6, markeredgecolor="k")
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(title)
    ax.legend(fontsize=7, loc="lower right")
    return _save(fig, path)


def plot_reliability(report: Mapping[str, Any], path: str | Path) -> Path | None:
    """Reliability diagram of every probabilistic scorer in ``report`` (pooled decision
    points, equal-mass bins): observed frequency of persistence against the mean predicted
    probability per bin, with each scorer's ECE in the legend. None when no scorer is
    probabilistic (nothing to draw)."""
    sections = {
        name: section["calibration"]["pooled"]
        for name, section in report["scorers"].items()
        if section.get("calibration") and section["calibration"]["pooled"]["bins"]
    }
    if not sections:
        return None
    fig, ax = plt.subplots(figsize=(5.2, 5))
    ax.plot([0, 1], [0, 1], ":", color="grey", label="perfectly calibrated")
    for name, pooled in sections.items():
        predicted = [b["predicted"] for b in pooled["bins"]]
        observed = [b["observed"] for b in pooled["bins"]]
        label = f"{name} (ECE {pooled['ece']:.3f})"
        ax.plot(predicted, observed, marker="o", markersize=4, label=label, **_style(name))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("mean predicted probability (equal-mass bins)")
    ax.set_ylabel("observed frequency of persistent tracks")
    ax.set_title(f"Reliability on the {report.get('split', 'test')} split, all k pooled")
    ax.legend(fontsize=7, loc="upper left")
    return _save(fig, path)


def plot_confusion(matrix: np.ndarray, path: str | Path, title: str) -> Path:
    """2x2 confusion matrix: rows true (transient, persistent), columns predicted."""
    fig, ax = plt.subplots(figsize=(3.6, 3.2))
    ax.imshow(matrix, cmap="Blues")
    labels = ["transient", "persistent"]
    ax.set_xticks([0, 1], labels)
    ax.set_yticks([0, 1], labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for (i, j), value in np.ndenumerate(matrix):
        ax.text(
            j,
            i,
            str(int(value)),
            ha="center",
            va="center",
            color="white" if value > matrix.max() / 2 else "black",
        )
    ax.set_title(title, fontsize=9)
    return _save(fig, path)


def plot_attention(
    attention: np.ndarray, observed: np.ndarray, path: str | Path, title: str
) -> Path:
    """Attention (heads, T, T) of one track, heads side by side; observed frames ticked."""
    heads = attention.shape[0]
    fig, axes = plt.subplots(1, heads, figsize=(2.6 * heads, 2.8))
    for h, ax in enumerate(np.atleast_1d(axes)):
        ax.imshow(attention[h], cmap="viridis", vmin=0, vmax=max(float(attention[h].max()), 1e-6))
        ax.set_title(f"head {h}", fontsize=8)
        ticks = np.flatnonzero(observed)
        ax.set_xticks(ticks, [""] * len(ticks))
        ax.set_yticks([])
        ax.set_xlabel("key frame", fontsize=7)
    fig.suptitle(title, fontsize=9)
    return _save(fig, path)


def _save(fig: plt.Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
