"""Prefect artifacts: what a flow run found, on its Artifacts tab (and in the API).

Every evaluation publishes the model-vs-baselines table with the MLflow run behind it;
generate-data publishes the store summary `tp info` prints; a promotion decision publishes
the gate, both models' metrics and the outcome.
"""

from __future__ import annotations

import re
from typing import Any

from prefect.artifacts import create_markdown_artifact

from storage.registry import Decision
from tp_models.evaluation.glossary import flat_metrics

TABLE_COLUMNS = ("roc_auc_k3", "roc_auc_k5", "recall_k3", "recall_k5", "f1_full", "roc_auc_full")


def _key(text: str) -> str:
    """An artifact key: lowercase letters, digits and dashes only."""
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:100]


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def report_markdown(report: dict[str, Any]) -> str:
    """One row per scorer (the model first), one column per key metric."""
    names = sorted(report["scorers"], key=lambda name: name != "model")
    lines = [
        "| scorer | " + " | ".join(TABLE_COLUMNS) + " |",
        "|---" * (len(TABLE_COLUMNS) + 1) + "|",
    ]
    for name in names:
        values = flat_metrics(report["scorers"][name])
        lines.append(
            f"| {name} | " + " | ".join(_cell(values.get(c)) for c in TABLE_COLUMNS) + " |"
        )
    return "\n".join(lines)


def publish_evaluation(report: dict[str, Any], title: str, run_link: str) -> None:
    data = report.get("data", {})
    markdown = (
        f"## {title}\n\nTest split of `{data.get('store')}` (fingerprint "
        f"`{data.get('fingerprint')}`, tracks `{data.get('tracks')}`, split_seed "
        f"{data.get('split_seed')}); thresholds chosen on validation.\n\n"
        f"{report_markdown(report)}\n\nMLflow run: {run_link}\n"
    )
    create_markdown_artifact(markdown, key=_key(f"evaluation-{title}"), description=title)


def publish_store_summary(info_text: str, fingerprint: str | None) -> None:
    create_markdown_artifact(
        f"## Store\n\n```\n{info_text}\n```\n",
        key=_key(f"store-{fingerprint or 'incomplete'}"),
        description="the store summary `tp info` prints",
    )


def publish_decision(decision: Decision) -> None:
    rows = ["| metric | " + " | ".join(f"v{v}" for v in decision.metrics) + " |"]
    rows.append("|---" * (len(decision.metrics) + 1) + "|")
    names = sorted({name for values in decision.metrics.values() for name in values})
    for name in names:
        cells = [_cell(values.get(name)) for values in decision.metrics.values()]
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    markdown = f"## {decision.outcome}\n\n{decision.description()}\n\n" + "\n".join(rows) + "\n"
    create_markdown_artifact(
        markdown, key="promotion-decision", description=decision.description()[:500]
    )
