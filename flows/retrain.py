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
from storage.registry import Decision, champion_version, record, version_family, version_uri
from tasks.promotion import choose
from tasks.specs import EvaluateSpec, RetrainSpec


def check(spec: RetrainSpec) -> None:
    """The training's own checks, before any service starts."""
    check_train(spec.train)


def evaluate_versions(
    versions: list[str], store: str, out: Path, device: str
) -> dict[str, dict[str, Any]]:
    """Every version's evaluation report on the same tracks and test split (the first
    version's tracks are the ones the others are scored on); a version listed twice is
    evaluated once."""
    reports: dict[str, dict[str, Any]] = {}
    tracks = None
    for version in dict.fromkeys(versions):
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
        "families": decision.families,
    }


@flow(name="retrain", log_prints=True)
def retrain(spec: RetrainSpec = RetrainSpec()) -> dict[str, Any]:
    """Fit a challenger of every family in `spec.families`; the best of them that passes
    `spec.gate` against `@champion` becomes the champion (the best, if there is none)."""
    check(spec)  # a deployed run has no CLI to check first
    champion = champion_version()
    families: dict[str, str] = {}
    for family in spec.families:
        trained = train(spec.train.model_copy(update={"retrain": True, "family": family}))
        families[str(trained["model_version"])] = trained.get("family", family)
    challengers = list(families)
    against = f"v{champion}" if champion else "none"
    name_flow_run(f"retrain-v{'-v'.join(challengers)}-vs-{against}")
    if champion is not None:
        families.setdefault(champion, version_family(champion))
    versions = challengers + ([champion] if champion else [])
    reports = evaluate_versions(versions, spec.train.store, Path(spec.out), spec.train.device)
    return conclude(choose(challengers, champion, reports, spec.gate, families))
