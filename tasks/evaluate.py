"""Scoring tracks of the test split with any set of scorers: the report and its figures.

Used by `tp evaluate-baselines` (classical scorers only) and by the `evaluate` flow (the
model beside them), so both produce the same report shape.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from storage.track_reader import TrackSource
from tp_models.core.batch import TrackBatch
from tp_models.core.scorer import PersistenceScorer
from tp_models.evaluation.glossary import (
    HEADLINE,
    METRICS,
    MODEL,
    ORACLE_PREFIX,
    best_classical,
    flat_metrics,
    ranked_scorers,
)
from tp_models.evaluation.metrics import scores_at
from tp_models.evaluation.plots import plot_metric_by_k, plot_reliability, plot_roc
from tp_models.evaluation.report import build_report
from tp_models.world.splits import HELDOUT


@dataclass
class Evaluation:
    report: dict[str, Any]
    files: list[Path]
    test: TrackBatch  # the test tracks scored, for figures that need them


def evaluate_scorers(
    source: TrackSource,
    scorers: Sequence[PersistenceScorer],
    split_seed: int,
    out_dir: str | Path | None = None,
) -> Evaluation:
    """The report on the test split and the figures written.

    Scorers that learn or tune (gradient boosting, the clutter maps, IPDA) are fitted on the
    train split; every threshold is chosen on validation; the test split is only scored.
    """
    splits = source.store.splits(split_seed)
    fittable = any(hasattr(scorer, "fit") for scorer in scorers)
    train = source.load(splits["train"])[0] if fittable else None
    val, val_meta = source.load(splits["val"])
    test, test_meta = source.load(splits["test"])
    report = build_report(
        scorers,
        val,
        test,
        val_meta,
        test_meta,
        source.quality_counts(splits["test"]),
        train=train,
    )
    if len(splits.get(HELDOUT, ())):  # operating points training never saw, scored apart
        heldout, heldout_meta = source.load(splits[HELDOUT])
        report[HELDOUT] = build_report(
            scorers, val, heldout, val_meta, heldout_meta, None, split=HELDOUT
        )
    report["data"] = {
        "store": source.store.url,
        "tracks": source.tracks_key,
        "fingerprint": source.fingerprint,
        "split_seed": split_seed,
        "videos": {name: int(len(index)) for name, index in splits.items()},
        "tracker": source.tracker,
    }
    if out_dir is None:
        return Evaluation(report, [], test)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2))
    figures = [
        plot_metric_by_k(report, "f1", out / "f1_by_k.png"),
        plot_metric_by_k(report, "roc_auc", out / "roc_auc_by_k.png"),
        plot_roc(*roc_at_full(scorers, test, report), out / "roc_full.png"),
    ]
    reliability = plot_reliability(report, out / "reliability.png")
    figures += [reliability] if reliability is not None else []
    return Evaluation(report, [out / "report.json", *figures], test)


def roc_at_full(
    scorers: Sequence[PersistenceScorer], test: TrackBatch, report: dict[str, Any]
) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], dict[str, tuple[float, float]]]:
    """Each scorer's ROC curve at full length and its operating point at the chosen threshold."""
    from sklearn.metrics import roc_curve

    curves, points = {}, {}
    for scorer in scorers:
        values, valid = scores_at(np.asarray(scorer.score(test), float), test.observed, "full")
        valid &= test.label >= 0
        labels = test.label[valid] == 1
        if labels.all() or not labels.any():
            continue
        fpr, tpr, _ = roc_curve(labels, values[valid])
        curves[scorer.name] = (fpr, tpr)
        threshold = report["scorers"][scorer.name]["k"]["full"].get("threshold")
        if threshold is not None:
            predicted = values[valid] >= threshold
            points[scorer.name] = (
                float(predicted[~labels].mean()),
                float(predicted[labels].mean()),
            )
    return curves, points


def comparison(fingerprint: str, tracks: str, split_seed: int) -> str:
    """The tag value shared by every run scored on one test split (train and evaluate runs):
    `tags.comparison = '...'` selects exactly the runs that can be compared."""
    return f"{fingerprint}/{tracks}/{split_seed}"


MODEL_GROUP = "0_model"  # run metric groups: MLflow sorts and groups names by their prefix
BEST_GROUP = "1_best_classical"


def headline_run_metrics(report: dict[str, Any]) -> dict[str, float]:
    """The metrics an evaluate run logs: the glossary's headline metrics of the model
    (`0_model/roc_auc_k3`) and of the best classical scorer (`1_best_classical/...`), each the
    report's value of the same name; every other number stays in the tables and report.json."""
    out = {}
    groups = {MODEL_GROUP: MODEL, BEST_GROUP: best_classical(report)}
    for group, scorer in groups.items():
        if scorer in report["scorers"]:
            values = flat_metrics(report["scorers"][scorer], HEADLINE)
            out.update({f"{group}/{name}": value for name, value in values.items()})
    return out


def role(report: dict[str, Any], scorer: str) -> str:
    if scorer == MODEL:
        return "model"
    if scorer == best_classical(report):
        return "best classical"
    return "oracle (reads the truth)" if scorer.startswith(ORACLE_PREFIX) else "classical"


def comparison_table(
    report: dict[str, Any], names: tuple[str, ...] = HEADLINE
) -> dict[str, list[Any]]:
    """Columns of the comparison: one row per scorer (the model, the best classical scorer,
    then the rest), one column per metric of ``names`` (None where undefined)."""
    scorers = ranked_scorers(report)
    columns: dict[str, list[Any]] = {
        "scorer": scorers,
        "role": [role(report, name) for name in scorers],
    }
    for metric in names:
        columns[metric] = [METRICS[metric].read(report["scorers"][name]) for name in scorers]
    return columns
