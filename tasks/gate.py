"""The promotion gate: when a challenger model may replace the champion.

A gate names report metrics the challenger must not be worse in (with a tolerance) and how
much later, in observations, it may confirm persistent tracks. The metric names are the
flat names of a scorer's report section (`roc_auc_k3`, `recall_k5`, `f1_full`,
`latency_median`), the same ones the runs log with a `test_` prefix. This module is plain
Python, so the spec can list the names without importing the training code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

REPORTED_KEYS = ("1", "2", "3", "5", "10", "full")


def _step(key: str) -> str:
    return "k" + key if key != "full" else "full"


BY_K = ("f1", "roc_auc", "precision", "recall", "p_d_at_fcr_1pct")
LATENCY = {"latency_median": "median", "latency_p90": "p90"}  # lower is better
GATE_METRICS = (
    tuple(f"{metric}_{_step(key)}" for key in REPORTED_KEYS for metric in BY_K)
    + tuple(LATENCY)
    + ("ece_full",)
)
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


def flat_metrics(section: dict[str, Any]) -> dict[str, float]:
    """One scorer's report section as flat metrics; missing (None) values are left out."""
    out = {}
    for key in REPORTED_KEYS:
        for metric in BY_K[:-1]:
            value = section["k"][key].get(metric)
            if value is not None:
                out[f"{metric}_{_step(key)}"] = float(value)
        p_d = section.get("toc", {}).get(key, {}).get("fcr_0.01", {}).get("p_d")
        if p_d is not None:
            out[f"p_d_at_fcr_1pct_{_step(key)}"] = float(p_d)
    ece = (section.get("calibration") or {}).get("k", {}).get("full")
    if ece is not None:
        out["ece_full"] = float(ece)
    for name, key in LATENCY.items():
        value = section.get("latency", {}).get(key)
        if value is not None:
            out[name] = float(value)
    return out


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
    """The challenger passes when no `not_worse` metric is lower than the champion's by more
    than `tolerance` and its median confirmation latency is at most `latency_allowance`
    observations longer. A metric the champion lacks cannot be lost; one the challenger
    lacks while the champion has it is lost."""
    reasons: list[str] = []
    passed = True
    rules = [(name, tolerance, False) for name in not_worse]
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
