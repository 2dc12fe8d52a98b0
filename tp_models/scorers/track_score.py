"""Blackman's track score (the SPRT): the log-likelihood ratio of "real target" against
"false alarm" from hits, misses and the Kalman innovation of each update.

``log_likelihood_ratio`` is the running sum every likelihood scorer builds on (the clutter
map and the oracle use it with other parameters).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tp_models.core.batch import TrackBatch
from tp_models.tracks.features import born, first_frames

# The P_D values every likelihood scorer's tuning tries (the textbook 0.9 first).
P_DETECT_GRID = (0.9, 0.5, 0.7, 0.8, 0.95)


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

    def frame_log_false_alarm(self, scene: np.ndarray | None) -> float | np.ndarray:
        """ln beta_FA at detections with these ``running.SCENE_COLUMNS`` (a constant here;
        the streaming clutter map raises it where the scene has been busy)."""
        return float(np.log(self.false_alarm_density))

    def frame_p_detect(self, scene: np.ndarray | None) -> float | np.ndarray:
        """P_D at detections with these ``running.SCENE_COLUMNS`` (a constant here; the
        streaming clutter map estimates it from the scene; a miss keeps the latest)."""
        return self.p_detect

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
    step = llr_increment(observed, first, alive, loglik, p_detect, log_false_alarm, log_new_target)
    total = np.cumsum(step, axis=1)
    deleted = np.logical_or.accumulate(alive & (total <= delete_threshold), axis=1)
    if deleted.any():
        frames = observed.shape[1]
        first_deleted = np.where(deleted.any(axis=1), deleted.argmax(axis=1), frames - 1)
        frozen = total[np.arange(total.shape[0]), first_deleted]
        total = np.where(deleted, frozen[:, None], total)
    return np.where(alive, total, np.nan)


def llr_increment(
    observed: np.ndarray,
    first: np.ndarray,
    alive: np.ndarray,
    loglik: np.ndarray,
    p_detect: float | np.ndarray,
    log_false_alarm: float | np.ndarray,
    log_new_target: float | np.ndarray,
) -> np.ndarray:
    """What one frame adds to the track score, elementwise (any shape: a whole (B, T) batch
    or one frame of live tracks): the first observation's term, a hit's, a miss's (alive,
    not observed), or 0 before birth."""
    loglik = np.asarray(loglik, dtype=np.float64)
    log_pd = np.log(p_detect)
    first_term = log_pd + log_new_target - log_false_alarm
    # An update without an innovation likelihood (should only be the first) restarts
    # nothing; it is scored like a first observation.
    hit_term = np.where(np.isfinite(loglik), log_pd - log_false_alarm + loglik, first_term)
    return np.where(
        observed,
        np.where(first, first_term, hit_term),
        np.where(alive, np.log1p(-np.asarray(p_detect, dtype=np.float64)), 0.0),
    )
