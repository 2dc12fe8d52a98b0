"""Every classical family, one frame at a time: O(1) state per live track.

A stream keeps, for the live tracks, what its score needs of the past and turns one frame
of them (``running.LiveFrame``: who was observed, each update's innovation log-likelihood,
the hand-made features) into the family's raw score. The per-frame formulas are the batch
scorers' own (``llr_increment``, ``existence_step``, a window of hits, the fitted gradient
boosting), so a stream and its batch scorer compute the same numbers.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
from scipy.special import expit

from tp_models.scorers.boosting import GradientBoostingScorer
from tp_models.scorers.clutter_map import StreamingClutterMap
from tp_models.scorers.counting import WindowHits
from tp_models.scorers.existence import AdaptiveIPDA, IPDAExistence, existence_step
from tp_models.scorers.track_score import TrackScore, llr_increment
from tp_models.tracks.running import LiveFrame


class Stream(Protocol):
    """A family's online state for N live tracks (see module)."""

    needs_features: bool  # reads ``LiveFrame.features``
    needs_loglik: bool  # reads ``LiveFrame.loglik``
    needs_scene: bool  # reads ``LiveFrame.scene``

    def add(self, count: int) -> None: ...

    def keep(self, index: np.ndarray) -> None: ...

    def step(self, frame: LiveFrame) -> np.ndarray: ...

    @property
    def nbytes(self) -> int: ...


class _Arrays:
    """Named per-track arrays that grow (``add``) and shrink (``keep``) together."""

    fields: dict[str, Any] = {}

    def __init__(self) -> None:
        self.state = {k: np.zeros(0, dtype=np.asarray(v).dtype) for k, v in self.fields.items()}

    def add(self, count: int) -> None:
        self.state = {
            k: np.concatenate([v, np.full(count, self.fields[k], dtype=v.dtype)])
            for k, v in self.state.items()
        }

    def keep(self, index: np.ndarray) -> None:
        self.state = {k: v[index] for k, v in self.state.items()}

    @property
    def nbytes(self) -> int:
        return sum(v.nbytes for v in self.state.values())

    def _latest_p_detect(self, frame: LiveFrame, scorer: Any) -> np.ndarray:
        """Each track's P_D after ``frame``: ``scorer.frame_p_detect`` where it was
        observed, its latest elsewhere (the batch's ``kept_through_misses``)."""
        observed = frame.observed
        latest = np.where(observed, scorer.frame_p_detect(frame.scene), self.state["p_detect"])
        self.state["p_detect"] = latest
        return latest

    def _born(self, observed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(alive, first): born by this frame, and seen for the first time now."""
        first = observed & ~self.state["born"]
        self.state["born"] = self.state["born"] | observed
        return self.state["born"], first


class TrackScoreStream(_Arrays):
    """Blackman's track score (``TrackScore``, and the streaming clutter map, which reads
    each frame's scene columns): the running sum, frozen once deleted, and the track's
    latest P_D."""

    needs_features = False
    needs_loglik = True
    fields = {"born": False, "total": 0.0, "deleted": False, "p_detect": np.nan}

    def __init__(self, scorer: TrackScore):
        super().__init__()
        self.scorer = scorer
        self.needs_scene = isinstance(scorer, StreamingClutterMap)

    def step(self, frame: LiveFrame) -> np.ndarray:
        s, scorer = self.state, self.scorer
        alive, first = self._born(frame.observed)
        increment = llr_increment(
            frame.observed,
            first,
            alive,
            frame.loglik,
            self._latest_p_detect(frame, scorer),
            scorer.frame_log_false_alarm(frame.scene),
            np.log(scorer.new_target_density),
        )
        s["total"] = np.where(s["deleted"], s["total"], s["total"] + increment)
        s["deleted"] |= alive & (s["total"] <= scorer.delete_threshold)
        return np.where(alive, s["total"], np.nan)


class ExistenceStream(_Arrays):
    """IPDA's probability of existence (``IPDAExistence``, and ``AdaptiveIPDA``, which reads
    each frame's scene columns): one log-odds and one P_D per track (its latest)."""

    needs_features = False
    needs_loglik = True
    fields = {"born": False, "log_odds": np.nan, "p_detect": np.nan}

    def __init__(self, scorer: IPDAExistence):
        super().__init__()
        self.scorer = scorer
        self.needs_scene = isinstance(scorer, AdaptiveIPDA)

    def step(self, frame: LiveFrame) -> np.ndarray:
        s, scorer = self.state, self.scorer
        alive, first = self._born(frame.observed)
        s["log_odds"] = existence_step(
            s["log_odds"],
            frame.observed,
            first,
            np.exp(np.asarray(frame.loglik, dtype=np.float64)),
            self._latest_p_detect(frame, scorer),
            scorer.frame_clutter_density(frame.scene),
            scorer.survival,
            scorer.initial_existence,
            scorer.gate_probability,
        )
        return np.where(alive, expit(s["log_odds"]), np.nan)


class WindowStream(_Arrays):
    """Hits in the last n frames (``WindowHits``): a bit mask of the window per track."""

    needs_features = False
    needs_loglik = False
    needs_scene = False
    fields = {"born": False, "window": np.int64(0)}

    def __init__(self, scorer: WindowHits):
        super().__init__()
        self.mask = (1 << scorer.n) - 1

    def step(self, frame: LiveFrame) -> np.ndarray:
        s = self.state
        alive, _ = self._born(frame.observed)
        s["window"] = np.where(alive, ((s["window"] << 1) | frame.observed) & self.mask, 0)
        return np.where(alive, _popcount(s["window"]), np.nan)


class BoostingStream(_Arrays):
    """Gradient boosting (``GradientBoostingScorer``) on this frame's running features."""

    needs_features = True
    needs_loglik = True
    needs_scene = True
    fields: dict[str, Any] = {}

    def __init__(self, scorer: GradientBoostingScorer):
        super().__init__()
        self.scorer = scorer

    def step(self, frame: LiveFrame) -> np.ndarray:
        assert frame.features is not None  # needs_features
        alive = ~np.isnan(frame.features[:, 0])  # hits: a number from the first observation
        out = np.full(len(alive), np.nan)
        if alive.any():
            out[alive] = self.scorer.predict(frame.features[alive])
        return out


def _popcount(values: np.ndarray) -> np.ndarray:
    return np.bitwise_count(values).astype(np.float64)


STREAMS = {
    TrackScore: TrackScoreStream,
    IPDAExistence: ExistenceStream,
    WindowHits: WindowStream,
    GradientBoostingScorer: BoostingStream,
}


def stream_of(scorer: Any) -> Stream:
    """The stream of a fitted classical scorer (see ``STREAMS``)."""
    for kind, stream in STREAMS.items():
        if isinstance(scorer, kind):
            return stream(scorer)
    raise ValueError(f"{type(scorer).__name__} has no streaming form")
