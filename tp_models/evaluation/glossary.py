"""Every metric name a scorer is judged by, said once: its unit, its definition, whether
higher is better, and where its value sits in a scorer's section of the report.

Whatever shows a metric by name (the MLflow runs, the registry's version tags, the gate,
the Prefect artifact, ``tp report``'s operating-point table, the README's glossary) reads
its value through ``flat_metrics`` and its meaning through ``METRICS``, so one name has one
number and one definition everywhere. ``python -m tp_models.evaluation.glossary`` prints the
glossary as the README shows it (a test keeps the README equal to it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

REPORTED_KEYS = ("1", "2", "3", "5", "10", "full")  # the decision points with flat names
HEADLINE_KEYS = ("1", "2", "3", "5", "full")
MODEL = "model"  # the report section of the model under evaluation
ORACLE_PREFIX = "oracle_"  # scorers that read the simulator's truth: a reference, not a rival


@dataclass(frozen=True)
class Metric:
    name: str
    unit: str
    definition: str
    read: Callable[[dict[str, Any]], Any]  # a scorer's report section -> value (None: undefined)
    higher_is_better: bool = True


def step(key: str) -> str:
    """The suffix of a decision point in a flat name: "3" -> "k3", "full" -> "full"."""
    return "k" + key if key != "full" else "full"


def _ordinal(key: str) -> str:
    n = int(key)
    return f"{n}{'st' if n == 1 else 'nd' if n == 2 else 'rd' if n == 3 else 'th'}"


def _by_k(key: str, field: str) -> Callable[[dict[str, Any]], Any]:
    return lambda section: section["k"].get(key, {}).get(field)


def _p_d(key: str) -> Callable[[dict[str, Any]], Any]:
    return lambda section: section.get("toc", {}).get(key, {}).get("fcr_0.01", {}).get("p_d")


def _path(*keys: str) -> Callable[[dict[str, Any]], Any]:
    def read(section: dict[str, Any]) -> Any:
        value: Any = section
        for key in keys:
            value = (value or {}).get(key)
        return value

    return read


_F1_THRESHOLD = "at the threshold that maximises F1 on the validation split at the same k"
# Metrics read at each decision point k: name prefix -> (unit, definition of "{tracks}").
BY_K: dict[str, tuple[str, str, str]] = {
    "roc_auc": (
        "roc_auc",
        "probability (0.5 = chance)",
        "ROC-AUC of {tracks}: the chance that a persistent track outscores a false one",
    ),
    "p_d_at_fcr_1pct": (
        "p_d",
        "share of persistent tracks",
        "P_D at 1 % false confirmations: among {tracks}, the share of persistent ones whose "
        "score reaches the threshold that confirms 1 % of the validation false tracks at the "
        "same k",
    ),
    "f1": ("f1", "harmonic mean of precision and recall", "F1 of {tracks}, " + _F1_THRESHOLD),
    "precision": (
        "precision",
        "share of confirmed tracks",
        "among {tracks}, the share of confirmed ones that are persistent, " + _F1_THRESHOLD,
    ),
    "recall": (
        "recall",
        "share of persistent tracks",
        "among {tracks}, the share of persistent ones confirmed, " + _F1_THRESHOLD,
    ),
}


def _tracks(key: str) -> str:
    if key == "full":
        return "the test tracks, each scored at its last observation"
    k, kth = ("k", "k-th") if key == "k" else (key, _ordinal(key))
    return f"the test tracks seen at least {k} times, each scored at its {kth} observation"


def _metrics() -> list[Metric]:
    out = []
    for key in REPORTED_KEYS:
        for prefix, (field, unit, definition) in BY_K.items():
            read = _p_d(key) if field == "p_d" else _by_k(key, field)
            text = definition.format(tracks=_tracks(key))
            out.append(Metric(f"{prefix}_{step(key)}", unit, text, read))
    confirm_1pct = (
        "observations until a persistent test track is first confirmed, at the threshold that "
        "lets 1 % of the validation false tracks ever be confirmed (tracks never confirmed "
        "are left out: see never_confirmed)"
    )
    confirm_operating = (
        "observations until a persistent test track is first confirmed, at the scorer's "
        "operating threshold (the one maximising F1 over every validation decision point)"
    )
    ece = "expected calibration error over 10 equal-mass bins (probabilistic scorers only)"
    out += [
        Metric(
            "time_to_confirm_median",
            "observations",
            "median " + confirm_1pct,
            _path("time_to_confirm", "median"),
            higher_is_better=False,
        ),
        Metric(
            "time_to_confirm_p90",
            "observations",
            "90th percentile of the " + confirm_1pct,
            _path("time_to_confirm", "p90"),
            higher_is_better=False,
        ),
        Metric(
            "never_confirmed",
            "share of persistent tracks",
            "share of persistent test tracks never confirmed at the threshold of "
            "time_to_confirm_median",
            _path("time_to_confirm", "never"),
            higher_is_better=False,
        ),
        Metric(
            "latency_median",
            "observations",
            "median " + confirm_operating,
            _path("latency", "median"),
            higher_is_better=False,
        ),
        Metric(
            "latency_p90",
            "observations",
            "90th percentile of the " + confirm_operating,
            _path("latency", "p90"),
            higher_is_better=False,
        ),
        Metric(
            "ece_pooled",
            "probability",
            f"{ece}, over every test decision point (each track at every k it reaches, and "
            "at its last observation); the reliability figure's number",
            _path("calibration", "pooled", "ece"),
            higher_is_better=False,
        ),
        Metric(
            "ece_full",
            "probability",
            f"{ece}, over the test tracks at their last observation only",
            _path("calibration", "k", "full"),
            higher_is_better=False,
        ),
    ]
    return out


METRICS: dict[str, Metric] = {metric.name: metric for metric in _metrics()}

# What a tracking engineer decides on: ranking and P_D at 1 % false confirmations after
# 1, 2, 3, 5 observations and at full length, time to confirm, calibration.
HEADLINE: tuple[str, ...] = (
    *(f"p_d_at_fcr_1pct_{step(key)}" for key in HEADLINE_KEYS),
    *(f"roc_auc_{step(key)}" for key in HEADLINE_KEYS),
    "time_to_confirm_median",
    "ece_pooled",
)

BEST_CLASSICAL_RULE = (
    "the classical scorer (not the model, not an oracle_ scorer, which reads the simulator's "
    "truth) with the highest mean of the headline ROC-AUCs (k = 1, 2, 3, 5, full)"
)


def flat_metrics(section: dict[str, Any], names: tuple[str, ...] | None = None) -> dict[str, float]:
    """One scorer's report section as {metric name: value} (``names``: these only, default
    every metric of ``METRICS``); undefined (None) values are left out."""
    out = {}
    for name in names or tuple(METRICS):
        value = METRICS[name].read(section)
        if value is not None:
            out[name] = float(value)
    return out


def headline_metrics(section: dict[str, Any]) -> dict[str, float]:
    return flat_metrics(section, HEADLINE)


def best_classical(report: dict[str, Any]) -> str | None:
    """The scorer ``BEST_CLASSICAL_RULE`` names in ``report`` (None when there is none)."""
    best, best_score = None, float("-inf")
    for name, section in report["scorers"].items():
        if name == MODEL or name.startswith(ORACLE_PREFIX):
            continue
        aucs = [
            value
            for key in HEADLINE_KEYS
            if (value := METRICS[f"roc_auc_{step(key)}"].read(section)) is not None
        ]
        score = sum(aucs) / len(aucs) if aucs else float("-inf")
        if best is None or score > best_score:
            best, best_score = name, score
    return best


def ranked_scorers(report: dict[str, Any]) -> list[str]:
    """The model first, then the best classical scorer, then the others in report order."""
    names = list(report["scorers"])
    lead = [name for name in (MODEL, best_classical(report)) if name in names]
    return lead + [name for name in names if name not in lead]


def glossary_rows(names: tuple[str, ...] | None = None) -> list[dict[str, str]]:
    """{"metric", "unit", "better", "definition"} per metric, headline metrics first."""
    order = names or HEADLINE + tuple(n for n in METRICS if n not in HEADLINE)
    return [
        {
            "metric": name,
            "unit": METRICS[name].unit,
            "better": "higher" if METRICS[name].higher_is_better else "lower",
            "definition": METRICS[name].definition,
        }
        for name in order
    ]


def glossary_markdown() -> str:
    """The glossary as the README prints it: each family of per-k metrics once (k = 1, 2,
    3, 5, 10 and full), then the others; the headline metrics in bold."""
    lines = ["| metric | unit | better | definition |", "|---|---|---|---|"]
    for prefix, (_, unit, definition) in BY_K.items():
        cell = f"`{prefix}_k<k>`, `{prefix}_full`"
        headline = [step(key) for key in REPORTED_KEYS if f"{prefix}_{step(key)}" in HEADLINE]
        if headline:
            cell = f"**{cell}** (headline: {', '.join(headline)})"
        text = definition.format(tracks=_tracks("k")) + "; full: at the last observation"
        lines.append(f"| {cell} | {unit} | higher | {text} |")
    per_k = {f"{prefix}_{step(key)}" for prefix in BY_K for key in REPORTED_KEYS}
    singles = sorted((n for n in METRICS if n not in per_k), key=lambda n: n not in HEADLINE)
    for row in glossary_rows(tuple(singles)):
        cell = f"**`{row['metric']}`**" if row["metric"] in HEADLINE else f"`{row['metric']}`"
        lines.append(f"| {cell} | {row['unit']} | {row['better']} | {row['definition']} |")
    lines += ["", f"The best classical scorer is {BEST_CLASSICAL_RULE}."]
    return "\n".join(lines)


if __name__ == "__main__":
    print(glossary_markdown())
