"""The promotion gate: when a challenger model may replace the champion.

A gate names report metrics the challenger must not be worse in (with a tolerance) and how
much later, in observations, it may confirm persistent tracks. The metric names, their
direction (higher or lower is better) and where their values sit in a report are the
glossary's (`tp_models.evaluation.glossary`): `roc_auc_k3`, `recall_k5`, `ece_pooled`,
`latency_median`, ... This module is plain Python, so the spec can list the names without
importing the training code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tp_models.evaluation.glossary import METRICS

GATE_METRICS = tuple(METRICS)
# The tracking engineer's currency: ranking, true tracks confirmed at 1 % false ones, and
# recall at the validated operating threshold (on small test splits the 1 % point is often
# not resolvable, and recall still tells a weak challenger apart), after 3 and 5 observations.
DEFAULT_NOT_WORSE = (
    "roc_auc_k3",
    "roc_auc_k5",
    "p_d_at_fcr_1pct_k3",
    "p_d_at_fcr_1pct_k5",
    "recall_k3",
    "recall_k5",
)


def unknown_metrics(names: tuple[str, ...]) -> list[str]:
    return [name for name in names if name not in GATE_METRICS]


@dataclass
class Verdict:
    """Whether the challenger passed, and one reason per gate rule (passed or failed)."""

    passed: bool
    reasons: list[str] = field(default_factory=list)

    def sentence(self) -> str:
        failed = [r for r in self.reasons if not r.startswith("ok:")]
        return "; ".join(failed or self.reasons)


def judge(
    challenger: dict[str, float],
    champion: dict[str, float],
    not_worse: tuple[str, ...],
    tolerance: float,
    latency_allowance: float,
) -> Verdict:
    """The challenger passes when no `not_worse` metric is worse than the champion's (lower,
    or higher for a lower-is-better one) by more than `tolerance` and its median
    confirmation latency is at most `latency_allowance` observations longer. A metric the
    champion lacks cannot be lost; one the challenger lacks while the champion has it is
    lost."""
    reasons: list[str] = []
    passed = True
    rules = [(name, tolerance, not METRICS[name].higher_is_better) for name in not_worse]
    rules.append(("latency_median", latency_allowance, True))
    for name, allowance, lower_is_better in rules:
        theirs, ours = champion.get(name), challenger.get(name)
        if theirs is None:
            reasons.append(f"ok: {name} (champion has none)")
            continue
        if ours is None:
            passed = False
            reasons.append(f"{name}: challenger has none, champion {theirs:.4f}")
            continue
        worse = ours - theirs if lower_is_better else theirs - ours
        if worse > allowance + 1e-12:
            passed = False
            reasons.append(
                f"{name}: challenger {ours:.4f} vs champion {theirs:.4f} "
                f"(may {'rise' if lower_is_better else 'drop'} by {allowance:g})"
            )
        else:
            reasons.append(f"ok: {name} {ours:.4f} vs {theirs:.4f}")
    return Verdict(passed, reasons)
