"""Classical track-confirmation rules as online persistence scorers.

Every scorer returns (B, T) scores where entry t uses frames <= t only, and NaN before the
track's first observation (the track does not exist yet; metrics never read those entries).
Each scorer exposes ``threshold``: its canonical (textbook) operating point, i.e. a track
counts as confirmed when ``score >= threshold``, and ``rule(threshold)``: in words, the rule
that a threshold chosen on validation actually applies (so a report never calls "3-of-3" a
"2-of-3"). ``probabilistic`` marks scores that are probabilities (calibration is reported
for those only).

The contest set (``classical_baselines``) adds the clutter map (``clutter_map``), IPDA and
the parameter oracle (``existence``) and gradient boosting (``boosting``) to the rules here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tp_models.scoring import PersistenceScorer, TrackBatch
from tp_models.track_features import (
    born,
    first_frames,
    hits_so_far,
    net_displacement,
    window_hits,
)


@dataclass
class TrackLength:
    """Number of observations so far (SORT's ``min_hits`` rule is ``score >= min_hits``)."""

    threshold: float = 3.0
    name: str = "track_length"
    probabilistic = False

    def score(self, batch: TrackBatch) -> np.ndarray:
        observed = batch.observed
        return np.where(born(observed), hits_so_far(observed), np.nan)

    def rule(self, threshold: float) -> str:
        return f">= {math.ceil(threshold)} observations"


@dataclass
class MOfN:
    """M-of-N with a track-length tie-break, named ``m_of_n_{m}_{n}+length`` (not pure M-of-N).

    The score is ``hits in the window (t - n, t]`` plus ``observations so far / (T + 1)``:
    the second term is always < 1, so ``score >= m`` is exactly the M-of-N rule, while ties
    among equal window counts are broken by track length so ROC/PR curves are informative.
    The score does not depend on m: a threshold chosen on validation picks its own rule
    (``rule`` says which), e.g. 3-of-3, or "2-of-3 with enough observations".
    """

    m: int
    n: int
    probabilistic = False

    def __post_init__(self) -> None:
        _check_m_n(self.m, self.n)
        self.name = f"m_of_n_{self.m}_{self.n}+length"
        self.threshold = float(self.m)

    def score(self, batch: TrackBatch) -> np.ndarray:
        observed = batch.observed
        frames = observed.shape[1]
        tie_break = hits_so_far(observed) / (frames + 1)
        return np.where(born(observed), window_hits(observed, self.n) + tie_break, np.nan)

    def rule(self, threshold: float) -> str:
        m = math.floor(threshold)
        rest = threshold - m
        if rest == 0:
            return f"{m}-of-{self.n}"
        longer = f"{m}-of-{self.n} with observations/(T+1) >= {rest:.3f}"
        return longer if m >= self.n else f"{m + 1}-of-{self.n}, or {longer}"


@dataclass
class PureMOfN:
    """Pure M-of-N: 1 when at least m of the last n frames of the track's life were hits, else 0.

    A binary score, so the only thresholds validation can choose are the rule itself (1) or
    "confirm every track" (0); ``rule`` names which one was applied.
    """

    m: int
    n: int
    probabilistic = False

    def __post_init__(self) -> None:
        _check_m_n(self.m, self.n)
        self.name = f"m_of_n_{self.m}_{self.n}"
        self.threshold = 1.0

    def score(self, batch: TrackBatch) -> np.ndarray:
        observed = batch.observed
        passed = (window_hits(observed, self.n) >= self.m).astype(np.float64)
        return np.where(born(observed), passed, np.nan)

    def rule(self, threshold: float) -> str:
        if threshold <= 0:
            return "confirm every track"
        return f"{self.m}-of-{self.n}" if threshold <= 1 else "confirm no track"


@dataclass
class MotionGate:
    """MTI-style confirmation: M-of-N *and* net displacement of at least d pixels.

    Score: the net displacement (px, first to latest observation) when the M-of-N test
    passes, else ``hits in window - m`` (< 0: how many hits short). So ``score >= d`` with
    d > 0 is exactly "m-of-n and moved >= d px": the threshold chosen on validation at each k
    *is* d chosen on validation, and the curves still rank the refused tracks by hits.
    A static object is never confirmed whatever its detection count: the classical answer
    to stationary clutter (and a known weakness on real objects that stand still).
    """

    m: int = 2
    n: int = 3
    threshold: float = 1.0
    probabilistic = False

    def __post_init__(self) -> None:
        _check_m_n(self.m, self.n)
        if self.threshold <= 0:
            raise ValueError(f"MotionGate.threshold (d, px) must be > 0, got {self.threshold}")
        self.name = f"motion_gate_{self.m}_{self.n}"

    def score(self, batch: TrackBatch) -> np.ndarray:
        observed = batch.observed
        window = window_hits(observed, self.n)
        moved = net_displacement(batch.position, observed)
        gated = np.where(window >= self.m, moved, window - self.m)
        return np.where(born(observed), gated, np.nan)

    def rule(self, threshold: float) -> str:
        if threshold > 0:
            return f"{self.m}-of-{self.n} and net displacement >= {threshold:.2f} px"
        short = math.ceil(-threshold)
        return f"{max(self.m - short, 0)}-of-{self.n} (no displacement needed)"


def _check_m_n(m: int, n: int) -> None:
    if not 1 <= m <= n:
        raise ValueError(f"M-of-N needs 1 <= m <= n, got m={m}, n={n}")


@dataclass
class TrackScore:
    """Blackman's track score: the log-likelihood ratio true-track vs false-alarm, as an SPRT.

    L starts at ``ln(P_D * beta_NT / beta_FA)`` on the first observation (no innovation yet);
    then each frame of the track's life adds
        hit:  ln P_D - ln beta_FA + (Kalman innovation log-likelihood of the update)
        miss: ln(1 - P_D)
    beta_FA and beta_NT are spatial densities per pixel^2 per frame (false alarms and new
    targets): the innovation log-likelihood is a density over pixel^2 as well, so the hit
    term compares "this detection is the predicted target" against "it is a false alarm
    landing there". Default 1 false alarm per 128x128 frame.
    Wald's thresholds: confirm when L >= A = ln((1 - beta) / alpha), delete when
    L <= B = ln(beta / (1 - alpha)); alpha = P(confirming a false track), beta = P(deleting
    a true one). Deletion is final: from the first frame with L <= B the score stays at
    that value (the SPRT stopped), so later hits cannot revive a deleted track.
    """

    p_detect: float = 0.9
    false_alarm_density: float = 1.0 / (128 * 128)
    new_target_density: float = 1.0 / (128 * 128)
    alpha: float = 0.01
    beta: float = 0.01
    name: str = "track_score"
    probabilistic = False

    def __post_init__(self) -> None:
        if not 0.0 < self.p_detect < 1.0:
            raise ValueError(f"TrackScore.p_detect must be in (0, 1), got {self.p_detect}")
        if not (0.0 < self.alpha < 1.0 and 0.0 < self.beta < 1.0):
            raise ValueError("TrackScore.alpha and beta must be in (0, 1)")
        if self.false_alarm_density <= 0 or self.new_target_density <= 0:
            raise ValueError("TrackScore densities must be > 0")

    @property
    def threshold(self) -> float:
        """Wald's confirmation threshold A."""
        return float(np.log((1.0 - self.beta) / self.alpha))

    @property
    def delete_threshold(self) -> float:
        """Wald's deletion threshold B."""
        return float(np.log(self.beta / (1.0 - self.alpha)))

    def score(self, batch: TrackBatch) -> np.ndarray:
        return log_likelihood_ratio(
            batch.observed,
            batch.loglik,
            p_detect=self.p_detect,
            log_false_alarm=np.log(self.false_alarm_density),
            log_new_target=np.log(self.new_target_density),
            delete_threshold=self.delete_threshold,
        )

    def rule(self, threshold: float) -> str:
        return f"track score >= {threshold:.2f} (Wald A = {self.threshold:.2f})"


def log_likelihood_ratio(
    observed: np.ndarray,
    loglik: np.ndarray,
    p_detect: float | np.ndarray,
    log_false_alarm: float | np.ndarray,
    log_new_target: float | np.ndarray,
    delete_threshold: float,
) -> np.ndarray:
    """Blackman's track score (see ``TrackScore``) with parameters that may vary.

    p_detect, log_false_alarm and log_new_target are scalars or arrays broadcasting to
    (B, T): per track (B, 1) for the parameter oracle, per track and frame for the clutter
    map (the false-alarm density where the track's detection landed at that frame).
    """
    observed = np.asarray(observed, dtype=bool)
    alive = born(observed)
    first = first_frames(observed)
    loglik = np.asarray(loglik, dtype=np.float64)
    log_pd = np.log(p_detect)
    first_term = log_pd + log_new_target - log_false_alarm
    # An update without an innovation likelihood (should only be the first) restarts
    # nothing; it is scored like a first observation.
    hit_term = np.where(np.isfinite(loglik), log_pd - log_false_alarm + loglik, first_term)
    step = np.where(
        observed,
        np.where(first, first_term, hit_term),
        np.where(alive, np.log1p(-np.asarray(p_detect, dtype=np.float64)), 0.0),
    )
    total = np.cumsum(step, axis=1)
    deleted = np.logical_or.accumulate(alive & (total <= delete_threshold), axis=1)
    if deleted.any():
        frames = observed.shape[1]
        first_deleted = np.where(deleted.any(axis=1), deleted.argmax(axis=1), frames - 1)
        frozen = total[np.arange(total.shape[0]), first_deleted]
        total = np.where(deleted, frozen[:, None], total)
    return np.where(alive, total, np.nan)


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


def default_baselines() -> list[PersistenceScorer]:
    """The classical scorers that need no training data: count rules, track score, motion
    gate, and the clutter map, IPDA and parameter oracle at their textbook parameters (they
    are tuned on train only when fitted, e.g. by ``build_report(..., train=...)``)."""
    # Imported here: those modules build on this one (log_likelihood_ratio).
    from tp_models.clutter_map import ClutterMapScore
    from tp_models.existence import IPDAExistence, OracleIPDA, OracleTrackScore

    return [
        *count_rules(),
        TrackScore(),
        MotionGate(),
        ClutterMapScore(),
        IPDAExistence(),
        OracleTrackScore(),
        OracleIPDA(),
    ]


def classical_baselines() -> list[PersistenceScorer]:
    """The full contest set: ``default_baselines`` plus gradient boosting, which (like the
    tuning of the clutter map and IPDA) needs ``fit_scorers`` on a train split first."""
    from tp_models.boosting import GradientBoostingScorer

    return [*default_baselines(), GradientBoostingScorer()]
