"""The promotion gate and the decision, on crafted reports (no services needed)."""

from __future__ import annotations

import pytest

from storage.errors import StoreError
from tasks.gate import GATE_METRICS, judge
from tasks.promotion import choose, decide
from tasks.specs import Gate, ParameterError, RetrainSpec, parse
from tp_models.evaluation.glossary import flat_metrics


def report(roc_auc: float, recall: float, latency: float, fingerprint: str = "abc") -> dict:
    k = {
        key: {"roc_auc": roc_auc, "recall": recall, "f1": None}
        for key in ("1", "2", "3", "5", "10", "full")
    }
    return {
        "data": {"fingerprint": fingerprint, "tracks": "tracks/x", "split_seed": 0},
        "model": {"trained_on_this_data": True},
        "scorers": {"model": {"k": k, "latency": {"median": latency, "p90": None}}},
        "evaluation": {"run_id": f"run-{roc_auc}-{fingerprint}"},
    }


def test_flat_metrics_names_are_gate_metrics_and_skip_missing_values():
    values = flat_metrics(report(0.9, 0.8, 2.0)["scorers"]["model"])
    assert values["roc_auc_k3"] == 0.9 and values["recall_full"] == 0.8
    assert values["latency_median"] == 2.0 and "latency_p90" not in values
    assert "f1_k3" not in values and set(values) <= set(GATE_METRICS)


def test_judge_passes_ties_and_fails_a_drop_beyond_the_tolerance():
    champion = {"roc_auc_k3": 0.90, "recall_k3": 0.80, "latency_median": 2.0}
    assert judge(dict(champion), champion, ("roc_auc_k3", "recall_k3"), 0.0, 0.0).passed
    worse = {**champion, "recall_k3": 0.78}
    verdict = judge(worse, champion, ("roc_auc_k3", "recall_k3"), 0.0, 0.0)
    assert not verdict.passed and verdict.sentence().startswith("recall_k3: challenger 0.7800")
    assert judge(worse, champion, ("roc_auc_k3", "recall_k3"), 0.05, 0.0).passed
    slower = {**champion, "latency_median": 3.0}
    assert not judge(slower, champion, ("roc_auc_k3",), 0.0, 0.5).passed
    assert judge(slower, champion, ("roc_auc_k3",), 0.0, 1.0).passed
    assert not judge({}, champion, ("roc_auc_k3",), 0.0, 0.0).passed  # a metric it lacks


def test_decide_first_champion_gate_and_refusal():
    gate = Gate()
    first = decide("1", None, {"1": report(0.7, 0.7, 2.0)}, gate)
    assert first.promoted and first.outcome == "first champion"
    reports = {"2": report(0.95, 0.9, 2.0), "1": report(0.9, 0.9, 2.0)}
    better = decide("2", "1", reports, gate)
    assert better.promoted and better.tags()["promotion.champion_before"] == "1"
    assert better.evaluation_runs == {"2": "run-0.95-abc", "1": "run-0.9-abc"}
    kept = decide("1", "2", reports, gate)
    assert not kept.promoted and "roc_auc_k3: challenger 0.9000 vs champion 0.9500" in kept.reason
    other = {"2": report(0.95, 0.9, 2.0), "1": report(0.9, 0.9, 2.0, fingerprint="def")}
    with pytest.raises(StoreError, match="refusing to compare: v2 was evaluated with fingerprint"):
        decide("2", "1", other, gate)
    same = decide("2", "2", {"2": reports["2"]}, gate)
    assert not same.promoted and "champion already" in same.reason
    by_hand = decide("1", "2", other, gate, by_hand="a person said so")
    assert by_hand.promoted and "could not compare" in by_hand.reason


def test_choose_ranks_the_families_and_promotes_the_best_that_passes():
    gate = Gate()
    families = {"1": "transformer", "2": "gradient_boosting", "3": "ipda", "9": "transformer"}
    reports = {
        "1": report(0.90, 0.9, 2.0),
        "2": report(0.93, 0.9, 2.0),
        "3": report(0.60, 0.9, 2.0),
        "9": report(0.92, 0.9, 2.0),
    }
    # Against champion v9: the best-ranked (v2) passes and is promoted; v1 would not pass.
    night = choose(["1", "2", "3"], "9", reports, gate, families)
    assert night.promoted and night.challenger == "2" and night.families == families
    assert (
        "(roc_auc_k3: v2 gradient_boosting 0.9300, v1 transformer 0.9000, v3 ipda" in night.reason
    )
    assert "passed the gate: v2." in night.reason
    # None passes: the champion stays, and the decision is the best-ranked's.
    kept = choose(["1", "3"], "9", reports, gate, families)
    assert not kept.promoted and kept.challenger == "1" and "passed the gate: none" in kept.reason
    # No champion: the best-ranked is the first, and nothing claims to have passed a gate.
    first = choose(["1", "2", "3"], None, reports, gate, families)
    assert first.outcome == "first champion" and first.challenger == "2"
    assert "no champion to judge them against" in first.reason and "passed" not in first.reason


def test_gate_naming_an_unknown_metric_is_one_sentence():
    with pytest.raises(ParameterError, match="gate.not_worse names unknown metric 'auc'"):
        parse(RetrainSpec, {"gate": {"not_worse": ["auc"]}})


def test_a_lower_is_better_metric_must_not_rise():
    champion = {"ece_pooled": 0.05, "latency_median": 2.0}
    rose = {"ece_pooled": 0.08, "latency_median": 2.0}
    fell = {"ece_pooled": 0.03, "latency_median": 2.0}
    verdict = judge(rose, champion, ("ece_pooled",), 0.0, 0.0)
    assert not verdict.passed and "may rise by 0" in verdict.sentence()
    assert judge(fell, champion, ("ece_pooled",), 0.0, 0.0).passed
