"""Prefect artifacts: what a flow run found, on its Artifacts tab (and in the API).

Every evaluation publishes the model-vs-baselines table (the glossary's headline metrics,
the same values as the MLflow run's) with a link to the MLflow run, under a key of its
own per model version and data (`evaluate-v7-on-<fingerprint>`), so re-evaluations of one
version are that key's history and other versions are not hidden behind the latest;
generate-data publishes the store summary `tp info` prints; a promotion decision publishes
the gate, both models' metrics and the outcome.
"""

from __future__ import annotations

import re
from typing import Any

from prefect.artifacts import create_markdown_artifact

from storage.registry import Decision
from tasks.evaluate import comparison_table


def _key(text: str) -> str:
    """An artifact key: lowercase letters, digits and dashes only."""
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:100]


def _cell(value: Any) -> str:
    if value is None or value != value:  # None or NaN
        return "-"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def report_markdown(report: dict[str, Any]) -> str:
    """One row per scorer (the model, the best classical scorer, then the rest), one column
    per headline metric of the glossary."""
    columns = comparison_table(report)
    names = list(columns)
    lines = ["| " + " | ".join(names) + " |", "|---" * len(names) + "|"]
    for row in zip(*columns.values(), strict=True):
        lead = row[1] in ("model", "best classical")
        cells = [f"**{row[0]}**" if lead else row[0], *map(_cell, row[1:])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def publish_evaluation(report: dict[str, Any], title: str, run_link: str) -> str:
    """The evaluation table under the key `title` names (e.g. `evaluate-v7-on-<fp>`);
    returns the key."""
    data = report.get("data", {})
    markdown = (
        f"## {title}\n\nTest split of `{data.get('store')}` (fingerprint "
        f"`{data.get('fingerprint')}`, tracks `{data.get('tracks')}`, split_seed "
        f"{data.get('split_seed')}); thresholds chosen on validation. Metric names as in the "
        "README's glossary (and the MLflow run's `glossary.json`).\n\n"
        f"{report_markdown(report)}\n\nMLflow run: {run_link}\n"
    )
    key = _key(title)
    create_markdown_artifact(markdown, key=key, description=title)
    return key


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
