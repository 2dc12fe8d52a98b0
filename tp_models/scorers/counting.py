"""Hit-counting and motion rules, the confirmation logic of every open tracker: M-of-N
(SORT's ``min_hits``, DeepSORT's ``n_init``), track length and an MTI-style motion gate.

Every scorer returns (B, T) scores where entry t uses frames <= t only, and NaN before the
track's first observation. ``threshold`` is the rule's textbook operating point and
``rule(threshold)`` says in words what a threshold chosen on validation applies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tp_models.core.batch import TrackBatch
from tp_models.tracks.features import born, hits_so_far, net_displacement, window_hits


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
class WindowHits:
    """Hits in the last ``n`` frames of the track's life: the score of every M-of-N rule with
    this N (``score >= m`` is m-of-n), so validation chooses M as the threshold."""

    n: int = 3
    probabilistic = False

    def __post_init__(self) -> None:
        _check_m_n(1, self.n)

    @property
    def name(self) -> str:
        return f"window_hits_{self.n}"

    @property
    def threshold(self) -> float:
        return float(math.ceil(self.n / 2))

    def score(self, batch: TrackBatch) -> np.ndarray:
        observed = batch.observed
        return np.where(born(observed), window_hits(observed, self.n), np.nan).astype(np.float64)

    def rule(self, threshold: float) -> str:
        return f"{max(math.ceil(threshold), 0)}-of-{self.n}"


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
