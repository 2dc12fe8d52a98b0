"""A clutter map: the false-alarm density where a detection lands, learned online per video.

Stationary clutter fires again and again at the same place; a real object passes. The
classical answer is a spatial map of past detections that raises the false-alarm density
``beta_FA`` of Blackman's track score where detections keep appearing. Here the map of a
video is built from the observations of the *other* tracks of the same video (all tracks
of a video are in the batch; ``batch.video`` groups them) at frames strictly before t:

- strictly before t, so a score at frame t never reads the present of another track;
- other tracks only (by default), because the track's own history is what the track score
  already weighs: counting it as clutter as well would penalise every real object that
  stands still twice. ``include_own_track=True`` gives the plain MTI map (own past too).

The density of the disc of ``radius`` px around the detection after t frames is the
conjugate (gamma-Poisson) estimate
    beta_FA = (prior_density * area * prior_frames + count) / (area * (prior_frames + t)),
i.e. the constant ``prior_density`` worth ``prior_frames`` frames of evidence, then the
observed rate. ``radius`` and ``prior_frames`` are tuned on the training split (``fit``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tp_models.core.batch import TrackBatch
from tp_models.perception.tracker import TRACKER_FRAME
from tp_models.scorers.track_score import P_DETECT_GRID, TrackScore, log_likelihood_ratio
from tp_models.scorers.tuning import grid_search, grid_search_scene_last
from tp_models.tracks.features import (
    handmade_scene_features,
    past_detections_nearby,
    with_scene_features,
)
from tp_models.tracks.running import CLUTTER_CELL, SCENE_COLUMNS, SCENE_DECAY, SCENE_FEATURES


@dataclass
class ClutterMapScore:
    """Blackman's track score with ``beta_FA`` read from the video's clutter map (see module)."""

    radius: float = 4.0
    prior_frames: float = 5.0
    include_own_track: bool = False
    track_score: TrackScore = field(default_factory=TrackScore)
    name: str = "clutter_map"
    probabilistic = False
    grid: dict[str, tuple[Any, ...]] = field(
        default_factory=lambda: {
            "radius": (4.0, 1.0, 1.5, 2.0, 3.0, 6.0),
            "prior_frames": (5.0, 1.0, 25.0, 100.0),
        }
    )
    fitted: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.radius <= 0 or self.prior_frames <= 0:
            raise ValueError(
                f"ClutterMapScore.radius and prior_frames must be > 0, got "
                f"{self.radius} and {self.prior_frames}"
            )

    @property
    def threshold(self) -> float:
        return self.track_score.threshold

    def false_alarm_density(self, batch: TrackBatch) -> np.ndarray:
        """(B, T) beta_FA per pixel^2 per frame where each detection landed (see module)."""
        area = math.pi * self.radius**2
        count = past_detections_nearby(batch, self.radius, self.include_own_track)
        frames_seen = np.arange(batch.frames, dtype=np.float64)[None, :]
        prior = self.track_score.false_alarm_density * area * self.prior_frames
        return (prior + count) / (area * (self.prior_frames + frames_seen))

    def score(self, batch: TrackBatch) -> np.ndarray:
        base = self.track_score
        return log_likelihood_ratio(
            batch.observed,
            batch.loglik,
            p_detect=base.p_detect,
            log_false_alarm=np.log(self.false_alarm_density(batch)),
            log_new_target=np.log(base.new_target_density),
            delete_threshold=base.delete_threshold,
        )

    def fit(self, train: TrackBatch, val: TrackBatch) -> None:
        """Tune radius and prior weight for ranking on ``train`` (``val`` is not read)."""
        del val
        self.fitted = grid_search(self, self.grid, train, "roc_auc")

    def rule(self, threshold: float) -> str:
        return f"clutter-map track score >= {threshold:.2f}"


# The 3 x 3 cells a clutter-map count reads, px^2, and the frames its decayed count
# remembers (the sum of 2^(-age / half-life) over all ages).
GRID_AREA = (3 * CLUTTER_CELL) ** 2
GRID_HORIZON = 1.0 / (1.0 - SCENE_DECAY)
# The scene's birth rate is per frame over the whole tracker's frame, px^2.
FRAME_AREA = float(TRACKER_FRAME[0] * TRACKER_FRAME[1])
_COUNT, _BIRTHS = SCENE_FEATURES.index("clutter_count"), SCENE_FEATURES.index("scene_births")
# The weights of the local and the scene-wide birth rates that tuning tries.
LOCAL_WEIGHT_GRID = (1.0, 0.3, 3.0, 10.0)
SCENE_WEIGHT_GRID = (0.0, 0.5, 1.0, 2.0, 3.0)


def scene_false_alarm_density(
    scene: np.ndarray, base: float, weight: float, scene_weight: float
) -> np.ndarray:
    """beta_FA per px^2 per frame at detections whose ``SCENE_FEATURES`` are ``scene``
    (..., 3): ``base`` plus ``weight`` times the local birth rate of other tracks (the
    clutter-map count over its cells and horizon) plus ``scene_weight`` times the
    scene-wide one (births per frame over the frame's area): the clutter density estimated
    from the stream so far."""
    scene = np.nan_to_num(np.asarray(scene, dtype=np.float64))
    local = weight * scene[..., _COUNT] / (GRID_AREA * GRID_HORIZON)
    return base + local + scene_weight * scene[..., _BIRTHS] / FRAME_AREA


# The weights of the scene's P_D evidence against the prior's that tuning tries (0: off).
P_DETECT_WEIGHT_GRID = (0.0, 0.03, 0.1, 0.3, 1.0)
_HITS, _CHANCES = SCENE_COLUMNS.index("scene_hits"), SCENE_COLUMNS.index("scene_chances")


def scene_p_detect(scene: np.ndarray, prior: float, weight: float) -> np.ndarray:
    """P_D at detections whose ``SCENE_COLUMNS`` are ``scene`` (..., 5): the ``prior`` worth
    one chance, plus the decayed hits and chances of the scene's established tracks times
    ``weight``: (prior + weight hits) / (1 + weight chances), P_D estimated from the stream
    so far (``weight`` 0: the prior)."""
    scene = np.nan_to_num(np.asarray(scene, dtype=np.float64))
    return (prior + weight * scene[..., _HITS]) / (1.0 + weight * scene[..., _CHANCES])


def kept_through_misses(values: float | np.ndarray, observed: np.ndarray) -> float | np.ndarray:
    """(B, T) each track's ``values`` (B, T) at its latest observation at or before each
    frame: what a stream knows at a miss, where the scene tells nothing new (a constant
    stays the constant)."""
    if np.ndim(values) == 0:
        return values
    frames = np.arange(observed.shape[1])
    latest = np.maximum.accumulate(np.where(observed, frames, 0), axis=1)
    return np.take_along_axis(values, latest, axis=1)


@dataclass
class StreamingClutterMap(TrackScore):
    """The clutter map a stream can keep: Blackman's track score with beta_FA raised where
    other tracks were born nearby lately, and where the whole scene has been busy, and P_D
    estimated from the scene's established tracks (``scene_p_detect``, kept through a
    track's misses).

    Both come from the hand-made features' scene memory (``running.SceneGrid``), O(1) per
    row at any stream length, where ``ClutterMapScore`` counts every earlier detection
    within a radius (batch only): the clutter-map count (births of other tracks in the
    3 x 3 cells around the detection, each weighted by 2^(-age / half-life)) and the
    scene's birth rate (births of other tracks per frame, decayed alike), weighed into
    beta_FA by ``scene_false_alarm_density``. P_D, the base density and the three weights
    are tuned for ranking on train (``fit``).
    """

    weight: float = 1.0
    scene_weight: float = 0.0
    p_detect_weight: float = 0.0
    name: str = "clutter_map_streaming"
    grid: dict[str, tuple[Any, ...]] = field(
        default_factory=lambda: {
            "p_detect": P_DETECT_GRID,
            "false_alarm_density": (1.0 / (128 * 128), 1e-5, 1e-3, 1e-2),
            # 0 last: where the local count is noise (a dense scene's clutter is born
            # everywhere) the tuning can turn it off and keep the track score.
            "weight": (*LOCAL_WEIGHT_GRID, 0.0),
            "scene_weight": SCENE_WEIGHT_GRID,
            "p_detect_weight": P_DETECT_WEIGHT_GRID,
        }
    )
    fitted: dict[str, Any] = field(default_factory=dict)

    def fit(self, train: TrackBatch, val: TrackBatch) -> None:
        """Tune P_D, the base density and the weights for ranking on ``train`` (``val`` is
        not read): the track score's parameters and the local weight with the scene-wide
        terms off, then the scene's two weights given them (125 grid points, where every
        combination would be 2,500), each scored on the tracks' lives only (their scene
        features made first, on whole videos): a 300-scan stream costs its tracks' lives,
        not its span."""
        del val
        train = with_scene_features(train)
        scene = ("scene_weight", "p_detect_weight")
        self.fitted = grid_search_scene_last(self, self.grid, scene, train, "roc_auc", True)

    def frame_log_false_alarm(self, scene: np.ndarray) -> np.ndarray:
        """ln beta_FA at detections whose ``SCENE_FEATURES`` are ``scene`` (..., 3)."""
        return np.log(
            scene_false_alarm_density(
                scene, self.false_alarm_density, self.weight, self.scene_weight
            )
        )

    def frame_p_detect(self, scene: np.ndarray) -> np.ndarray:
        """P_D at detections whose ``SCENE_COLUMNS`` are ``scene``."""
        return scene_p_detect(scene, self.p_detect, self.p_detect_weight)

    def score(self, batch: TrackBatch) -> np.ndarray:
        scene = handmade_scene_features(batch)
        return log_likelihood_ratio(
            batch.observed,
            batch.loglik,
            p_detect=kept_through_misses(self.frame_p_detect(scene), batch.observed),
            log_false_alarm=self.frame_log_false_alarm(scene),
            log_new_target=np.log(self.new_target_density),
            delete_threshold=self.delete_threshold,
        )

    def rule(self, threshold: float) -> str:
        return f"streaming clutter-map track score >= {threshold:.2f}"
