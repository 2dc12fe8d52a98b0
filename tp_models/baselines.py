"""Classical track-confirmation rules as online persistence scorers.

Every scorer returns (B, T) scores where entry t uses frames <= t only, and NaN before the
track's first observation (the track does not exist yet; metrics never read those entries).
Each scorer exposes ``threshold``: its canonical (textbook) operating point, i.e. a track
counts as confirmed when ``score >= threshold``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tp_models.scoring import PersistenceScorer, TrackBatch


def _born(observed: np.ndarray) -> np.ndarray:
    """(B, T) True from the track's first observation on."""
    return np.logical_or.accumulate(observed, axis=1)


@dataclass
class TrackLength:
    """Number of observations so far (SORT's ``min_hits`` rule is ``score >= min_hits``)."""

    threshold: float = 3.0
    name: str = "track_length"

    def score(self, batch: TrackBatch) -> np.ndarray:
        observed = batch.observed
        hits = np.cumsum(observed, axis=1, dtype=np.float64)
        return np.where(_born(observed), hits, np.nan)


@dataclass
class MOfN:
    """M-of-N: confirmed when at least m of the last n frames of the track's life were hits.

    The score is ``hits in the window (t - n, t]`` plus ``observations so far / (T + 1)``:
    the second term is always < 1, so ``score >= m`` is exactly the M-of-N rule, while ties
    among equal window counts are broken by track length so ROC/PR curves are informative.
    Frames before the track's birth are not part of its life and never count as hits anyway.
    """

    m: int
    n: int

    def __post_init__(self) -> None:
        if not 1 <= self.m <= self.n:
            raise ValueError(f"MOfN needs 1 <= m <= n, got m={self.m}, n={self.n}")
        self.name = f"m_of_n_{self.m}_{self.n}"
        self.threshold = float(self.m)

    def score(self, batch: TrackBatch) -> np.ndarray:
        observed = batch.observed
        frames = observed.shape[1]
        hits = np.cumsum(observed, axis=1, dtype=np.float64)
        shifted = np.zeros_like(hits)
        if self.n < frames:
            shifted[:, self.n :] = hits[:, : frames - self.n]
        window = hits - shifted
        return np.where(_born(observed), window + hits / (frames + 1), np.nan)


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
        observed = batch.observed
        born = _born(observed)
        first = observed & ~np.concatenate(
            [np.zeros((observed.shape[0], 1), dtype=bool), born[:, :-1]], axis=1
        )
        loglik = batch.loglik.astype(np.float64)
        log_pd = np.log(self.p_detect)
        log_fa = np.log(self.false_alarm_density)
        first_term = log_pd + np.log(self.new_target_density) - log_fa
        # An update without an innovation likelihood (should only be the first) restarts
        # nothing; it is scored like a first observation.
        hit_term = np.where(np.isfinite(loglik), log_pd - log_fa + loglik, first_term)
        step = np.where(
            observed,
            np.where(first, first_term, hit_term),
            np.where(born, np.log1p(-self.p_detect), 0.0),
        )
        total = np.cumsum(step, axis=1)
        deleted = np.logical_or.accumulate(born & (total <= self.delete_threshold), axis=1)
        if deleted.any():
            frames = observed.shape[1]
            first_deleted = np.where(deleted.any(axis=1), deleted.argmax(axis=1), frames - 1)
            frozen = total[np.arange(total.shape[0]), first_deleted]
            total = np.where(deleted, frozen[:, None], total)
        return np.where(born, total, np.nan)


def default_baselines() -> list[PersistenceScorer]:
    """The classical sweep reported next to the model."""
    return [
        MOfN(2, 3),
        MOfN(3, 5),
        MOfN(4, 6),
        MOfN(5, 8),
        TrackScore(),
        TrackLength(),
    ]
