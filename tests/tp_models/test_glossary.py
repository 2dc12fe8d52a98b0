"""The glossary: one name, one definition, one place in a report; the README shows it."""

from __future__ import annotations

from pathlib import Path

from tp_models.evaluation.glossary import (
    HEADLINE,
    METRICS,
    best_classical,
    flat_metrics,
    glossary_markdown,
    ranked_scorers,
)

README = Path(__file__).resolve().parents[2] / "README.md"


def section(auc: float, ece_pooled: float | None = None) -> dict:
    k = {key: {"roc_auc": auc, "f1": 0.5} for key in ("1", "2", "3", "5", "10", "full")}
    out = {
        "k": k,
        "toc": {"3": {"fcr_0.01": {"p_d": 0.25}}},
        "time_to_confirm": {"median": 5.0, "p90": 7.0, "never": 0.1},
        "latency": {"median": 3.0, "p90": 4.0},
    }
    if ece_pooled is not None:
        out["calibration"] = {"pooled": {"ece": ece_pooled}, "k": {"full": 0.14}}
    return out


def test_each_name_reads_its_own_place_in_the_report():
    values = flat_metrics(section(0.8, ece_pooled=0.03))
    assert values["ece_pooled"] == 0.03 and values["ece_full"] == 0.14
    assert values["time_to_confirm_median"] == 5.0 and values["latency_median"] == 3.0
    assert values["p_d_at_fcr_1pct_k3"] == 0.25 and "p_d_at_fcr_1pct_k5" not in values
    assert set(HEADLINE) <= set(METRICS) and len(set(HEADLINE)) == len(HEADLINE) == 12
    assert all(m.unit and m.definition for m in METRICS.values())


def test_best_classical_is_the_strongest_non_oracle_rival():
    report = {
        "scorers": {
            "m_of_n_2_3": section(0.6),
            "oracle_track_score": section(0.99),
            "gradient_boosting": section(0.8),
            "model": section(0.9, 0.03),
        }
    }
    assert best_classical(report) == "gradient_boosting"
    assert ranked_scorers(report)[:2] == ["model", "gradient_boosting"]


def test_readme_shows_the_glossary_as_the_code_defines_it():
    assert glossary_markdown() in README.read_text()
