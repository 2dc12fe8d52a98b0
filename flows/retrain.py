"""Flow `retrain`: train a challenger, judge it against `@champion` by the gate, and promote
it only if it passes (the nightly deployment). The decision is recorded in the registry
(storage.registry) and published as a Prefect artifact.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger

from flows.artifacts import publish_decision
from flows.evaluate import evaluate
from flows.naming import name_flow_run
from flows.train import check as check_train
from flows.train import train
from storage.registry import Decision, champion_version, record, version_uri
from tasks.promotion import decide
from tasks.specs import EvaluateSpec, RetrainSpec


def check(spec: RetrainSpec) -> None:
    """The training's own checks, before any service starts."""
    check_train(spec.train)


def evaluate_pair(
    challenger: str, champion: str | None, store: str, out: Path, device: str
) -> dict[str, dict[str, Any]]:
    """Both models' evaluation reports on the same tracks and test split (challenger first:
    its tracks are the ones the champion is scored on)."""
    reports = {}
    tracks = None
    for version in [challenger] + ([champion] if champion not in (None, challenger) else []):
        report = evaluate(
            EvaluateSpec(
                store=store,
                tracks=tracks,
                model_uri=version_uri(version),
                out=str(out / f"v{version}"),
                device=device,
            )
        )
        tracks = tracks or report["data"]["tracks"]
        reports[version] = report
    return reports


def conclude(decision: Decision) -> dict[str, Any]:
    """Record the decision in the registry, publish it, and say it."""
    record(decision)
    publish_decision(decision)
    get_run_logger().info("%s", decision.description())
    return {
        "outcome": decision.outcome,
        "promoted": decision.promoted,
        "challenger": decision.challenger,
        "champion_before": decision.champion,
        "champion": champion_version(),
        "reason": decision.reason,
        "metrics": decision.metrics,
    }


@flow(name="retrain", log_prints=True)
def retrain(spec: RetrainSpec = RetrainSpec()) -> dict[str, Any]:
    """Train a challenger; it becomes `@champion` if it passes `spec.gate` (or is the first)."""
    check(spec)  # a deployed run has no CLI to check first
    champion = champion_version()
    trained = train(spec.train.model_copy(update={"retrain": True}))
    challenger = str(trained["model_version"])
    name_flow_run(f"retrain-v{challenger}-vs-" + (f"v{champion}" if champion else "none"))
    reports = evaluate_pair(
        challenger, champion, spec.train.store, Path(spec.out), spec.train.device
    )
    return conclude(decide(challenger, champion, reports, spec.gate))
