"""Champion or challenger: compare two evaluations of the same test split and decide.

Both models must have been evaluated on the same data (fingerprint), tracks and split seed,
and trained on that data (else a test video could be one the model trained on); otherwise
the gate refuses to compare. The decision itself is `storage.registry.Decision`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from storage.errors import StoreError
from storage.registry import Decision
from tasks.gate import judge
from tasks.specs import Gate
from tp_models.evaluation.glossary import METRICS, flat_metrics


def incomparable(challenger: dict[str, Any], champion: dict[str, Any], versions: tuple) -> str:
    """Why two evaluation reports cannot be compared ('' when they can)."""
    for key in ("fingerprint", "tracks", "split_seed"):
        ours, theirs = challenger["data"].get(key), champion["data"].get(key)
        if ours != theirs:
            return (
                f"v{versions[0]} was evaluated with {key} {ours} and champion v{versions[1]} "
                f"with {theirs}, so their test splits differ"
            )
    for version, report in zip(versions, (challenger, champion), strict=True):
        if not report.get("model", {}).get("trained_on_this_data", True):
            return (
                f"v{version} was trained on other data than {challenger['data']['fingerprint']}, "
                "so its test split may hold videos it trained on"
            )
    return ""


def decide(
    challenger: str,
    champion: str | None,
    reports: dict[str, dict[str, Any]],
    gate: Gate,
    by_hand: str | None = None,
) -> Decision:
    """The gate's decision about `challenger` (reports: version -> evaluation report).

    `by_hand`: a person's reason; the challenger is promoted whatever the gate says, and
    the record says what the gate would have said. Without it, reports that cannot be
    compared raise StoreError (one sentence)."""
    metrics = {v: flat_metrics(report["scorers"]["model"]) for v, report in reports.items()}
    runs = {v: report["evaluation"]["run_id"] for v, report in reports.items()}
    record = dict(gate=gate.model_dump(mode="json"), metrics=metrics, evaluation_runs=runs)
    decided_by = "hand" if by_hand else "gate"
    if champion is None:
        reason = "There was no champion: the first model becomes the champion."
        if by_hand:
            reason = f"{by_hand}. {reason}"
        return Decision(challenger, None, True, reason, decided_by, **record)
    if champion == challenger:  # e.g. a finished training returned its existing version
        reason = f"v{challenger} is the champion already: nothing to decide."
        return Decision(challenger, champion, False, reason, decided_by, **record)
    why_not = incomparable(reports[challenger], reports[champion], (challenger, champion))
    if why_not and not by_hand:
        raise StoreError(
            f"refusing to compare: {why_not}; evaluate both on one store with one split seed, "
            f"or promote by hand with `tp promote {challenger}`."
        )
    verdict = judge(
        metrics[challenger],
        metrics[champion],
        gate.not_worse,
        gate.tolerance,
        gate.latency_allowance,
    )
    if why_not:
        reason = f"{by_hand}. The gate could not compare them: {why_not}."
    elif by_hand:
        would = "passed" if verdict.passed else f"failed ({verdict.sentence()})"
        reason = f"{by_hand}. The gate would have {would}."
    elif verdict.passed:
        reason = f"The challenger passed the gate: {verdict.sentence()}."
    else:
        reason = f"The champion stays: the challenger failed the gate: {verdict.sentence()}."
    promoted = bool(by_hand) or verdict.passed
    return Decision(challenger, champion, promoted, reason, decided_by, **record)


def choose(
    challengers: list[str],
    champion: str | None,
    reports: dict[str, dict[str, Any]],
    gate: Gate,
    families: dict[str, str],
) -> Decision:
    """The gate's decision among several challengers (one per family): they are ranked by
    the gate's metrics in order (the first decides, ties go to the next; a metric a report
    lacks ranks last), and the best-ranked one that passes the gate against the champion is
    promoted. With no champion, the best-ranked becomes the first; when none passes, the
    decision is the best-ranked's, the champion kept. The reason gives the ranking."""
    metrics = {v: flat_metrics(reports[v]["scorers"]["model"]) for v in challengers}
    ranked = sorted(challengers, key=lambda v: rank_key(metrics[v], gate.not_worse), reverse=True)
    # With no champion there is nothing to judge: the best-ranked is the first.
    judged = ranked if champion is not None else ranked[:1]
    decisions = [decide(version, champion, reports, gate) for version in judged]
    chosen = next((d for d in decisions if d.promoted), decisions[0])
    if len(ranked) > 1:
        first = gate.not_worse[0]
        ranking = ", ".join(
            f"v{v} {families.get(v, '?')} {_value(metrics[v].get(first))}" for v in ranked
        )
        passed = [f"v{d.challenger}" for d in decisions if d.promoted]
        verdict = (
            f"passed the gate: {', '.join(passed) or 'none'}"
            if champion is not None
            else "no champion to judge them against"
        )
        chosen = replace(
            chosen,
            reason=(
                f"Challengers ranked by {', '.join(gate.not_worse)} ({first}: {ranking}); "
                f"{verdict}. v{chosen.challenger}: " + chosen.reason
            ),
        )
    return replace(chosen, families=families)


def rank_key(metrics: dict[str, float], names: tuple[str, ...]) -> tuple[float, ...]:
    """Larger is better in every place (lower-is-better metrics negated; missing: -inf)."""
    key = []
    for name in names:
        value = metrics.get(name)
        if value is None or value != value:  # missing or NaN
            key.append(float("-inf"))
        else:
            key.append(value if METRICS[name].higher_is_better else -value)
    return tuple(key)


def _value(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"
