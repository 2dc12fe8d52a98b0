"""Classical track-confirmation rules as online persistence scorers.

Every scorer returns (B, T) scores where entry t uses frames <= t only, and NaN before the
track's first observation (the track does not exist yet; metrics never read those entries).
Each scorer exposes ``threshold``: its canonical (textbook) operating point, i.e. a track
counts as confirmed when ``score >= threshold``, and ``rule(threshold)``: in words, the rule
that a threshold chosen on validation actually applies (so a report never calls "3-of-3" a
"2-of-3"). ``probabilistic`` marks scores that are probabilities (calibration is reported
for those only).

The contest set (``classical_baselines``) adds the clutter maps (``clutter_map``), IPDA and
the parameter oracle (``existence``) and gradient boosting (``boosting``) to the rules here.
"""

from __future__ import annotations

from tp_models.core.scorer import PersistenceScorer
from tp_models.scorers.boosting import GradientBoostingScorer
from tp_models.scorers.clutter_map import ClutterMapScore, StreamingClutterMap
from tp_models.scorers.counting import MOfN, MotionGate, PureMOfN, TrackLength
from tp_models.scorers.existence import (
    AdaptiveIPDA,
    IPDAExistence,
    OracleIPDA,
    OracleTrackScore,
)
from tp_models.scorers.track_score import TrackScore


def count_rules() -> list[PersistenceScorer]:
    """Count-only rules: pure M-of-N under their true names, two tie-broken variants, length."""
    return [
        PureMOfN(2, 3),
        PureMOfN(3, 5),
        PureMOfN(4, 6),
        PureMOfN(5, 8),
        MOfN(2, 3),
        MOfN(5, 8),
        TrackLength(),
    ]


def default_baselines(oracles: bool = True) -> list[PersistenceScorer]:
    """The classical scorers that need no training data: count rules, track score, motion
    gate, and the clutter maps (batch and streaming), IPDA (plain and with the clutter
    density estimated from the stream) and parameter oracle at their
    textbook parameters (they are tuned on train only when fitted, e.g. by
    ``build_report(..., train=...)``).
    `oracles`: only where the data knows each track's true operating point (the synthetic
    world's draws); elsewhere an "oracle" would be a guess printed under a false name."""
    return [
        *count_rules(),
        TrackScore(),
        MotionGate(),
        ClutterMapScore(),
        StreamingClutterMap(),
        IPDAExistence(),
        AdaptiveIPDA(),
        *((OracleTrackScore(), OracleIPDA()) if oracles else ()),
    ]


def classical_baselines(oracles: bool = True) -> list[PersistenceScorer]:
    """The full contest set: ``default_baselines`` plus gradient boosting, which (like the
    tuning of the clutter map and IPDA) needs ``fit_scorers`` on a train split first."""
    return [*default_baselines(oracles), GradientBoostingScorer()]
