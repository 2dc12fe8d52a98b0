"""IPDA-style probability of track existence, and the parameter oracle built on it.

Integrated PDA (Musicki et al. 1994) carries P(the track is a real target) through a
Markov chain (it survives a frame with probability ``survival``) and a Bayes update per
frame. With at most one detection per track and frame (the tracker assigns one):

    miss: delta = P_D P_G
    hit:  delta = P_D P_G - P_D g / rho      (g: Gaussian innovation density of the update,
                                              rho: clutter density per pixel^2 per frame)
    P <- (1 - delta) P- / (1 - delta P-)     i.e. odds <- (1 - delta) odds-

so a miss lowers the odds, and a hit raises them by how much better the detection fits the
prediction than a false alarm landing there would. A new track starts at
``initial_existence``. The output is a probability in [0, 1] (``probabilistic``).
``AdaptiveIPDA`` estimates rho and P_D from the stream so far instead of holding one tuned
value of each.

The oracle runs the same recursion (and Blackman's score) with the simulator's true P_D,
clutter density and motion noise per track, recomputing the innovation likelihoods with a
constant-velocity Kalman filter whose process noise is the true motion noise: the classical
ceiling, what a perfectly tuned classical tracker would reach. On imported tracks with
operating-point files (a simulator's truth, e.g. Stone Soup's drifting sensor) it reads the
true P_D and clutter density at every frame, and the tracks' own innovation likelihoods
(their positions are in their own frames' units, where no true motion noise is known).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.special import expit, log_expit

from tp_models.core.batch import TrackBatch
from tp_models.perception.tracker import TrackerConfig, motion_model
from tp_models.scorers.clutter_map import (
    LOCAL_WEIGHT_GRID,
    P_DETECT_WEIGHT_GRID,
    SCENE_WEIGHT_GRID,
    kept_through_misses,
    scene_false_alarm_density,
    scene_p_detect,
)
from tp_models.scorers.track_score import P_DETECT_GRID, TrackScore, log_likelihood_ratio
from tp_models.scorers.tuning import grid_search, grid_search_scene_last
from tp_models.tracks.features import (
    born,
    first_frames,
    handmade_scene_features,
    with_scene_features,
)
from tp_models.world.config import SceneConfig

# The simulator's truth the oracle reads from ``TrackBatch.extras``, per track (B,) or per
# track and frame (B, T); the first two are what a store must know for an oracle row.
ORACLE_EXTRAS = ("op_p_detect", "op_clutter_density", "op_motion_noise")
ORACLE_NEEDS = ORACLE_EXTRAS[:2]


def existence_probability(
    observed: np.ndarray,
    loglik: np.ndarray,
    p_detect: float | np.ndarray,
    clutter_density: float | np.ndarray,
    survival: float,
    initial_existence: float,
    gate_probability: float,
) -> np.ndarray:
    """(B, T) IPDA existence probability (see module); NaN before birth.

    p_detect and clutter_density: each a scalar, per track (B,) or per track and frame
    (B, T) (estimated from the stream, ``AdaptiveIPDA``).
    """
    observed = np.asarray(observed, dtype=bool)
    n_tracks, n_frames = observed.shape
    p_detect, clutter = (_per_frame(x, observed.shape) for x in (p_detect, clutter_density))
    density = np.exp(np.asarray(loglik, dtype=np.float64))
    first = first_frames(observed)
    log_odds = np.full((n_tracks, n_frames), np.nan)
    previous = np.full(n_tracks, np.nan)
    for t in range(n_frames):
        previous = existence_step(
            previous,
            observed[:, t],
            first[:, t],
            density[:, t],
            p_detect[:, t],
            clutter[:, t],
            survival,
            initial_existence,
            gate_probability,
        )
        log_odds[:, t] = previous
    log_odds[~born(observed)] = np.nan
    return expit(log_odds)


def _per_frame(value: float | np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A scalar, (B,) or (B, T) value as (B, T)."""
    value = np.asarray(value, np.float64)
    return np.broadcast_to(value[:, None] if value.ndim == 1 else value, shape)


def existence_step(
    previous: np.ndarray,
    observed: np.ndarray,
    first: np.ndarray,
    density: np.ndarray,
    p_detect: float | np.ndarray,
    clutter_density: float | np.ndarray,
    survival: float,
    initial_existence: float,
    gate_probability: float,
) -> np.ndarray:
    """One frame of the IPDA recursion for N tracks: the log-odds of existence after it,
    from ``previous`` (NaN before birth), which were ``observed``, which were seen for the
    ``first`` time, and each observation's innovation density (NaN where none)."""
    # Prediction: the track survives the frame, P- = survival * P (log-odds, stably).
    prior = np.log(survival) + log_expit(previous) - np.log1p(-survival * expit(previous))
    miss_delta = p_detect * gate_probability
    hit_delta = miss_delta - p_detect * np.nan_to_num(density) / clutter_density
    now = prior + np.log1p(-np.where(observed, hit_delta, miss_delta))
    start = np.log(initial_existence) - np.log1p(-initial_existence)
    return np.where(first, start, now)


@dataclass
class IPDAExistence:
    """IPDA probability of existence with P_D and clutter density tuned on the train split."""

    p_detect: float = 0.9
    clutter_density: float = 1.0 / (128 * 128)
    survival: float = 0.98
    initial_existence: float = 0.5
    gate_probability: float = TrackerConfig().gate_probability
    name: str = "ipda"
    probabilistic = True
    threshold: float = 0.5
    grid: dict[str, tuple[Any, ...]] = field(
        default_factory=lambda: {
            "p_detect": P_DETECT_GRID,
            "clutter_density": (1e-4, 1e-5, 1e-3, 3e-3, 1e-2, 3e-2),
            "survival": (0.98, 0.9, 0.995),
            "initial_existence": (0.5, 0.1, 0.25),
        }
    )
    fitted: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("p_detect", "survival", "initial_existence", "gate_probability"):
            value = getattr(self, name)
            if not 0.0 < value < 1.0:
                raise ValueError(f"IPDAExistence.{name} must be in (0, 1), got {value}")
        if self.clutter_density <= 0:
            raise ValueError(
                f"IPDAExistence.clutter_density must be > 0, got {self.clutter_density}"
            )

    def score(self, batch: TrackBatch) -> np.ndarray:
        scene = self.scene_of(batch)
        return existence_probability(
            batch.observed,
            batch.loglik,
            kept_through_misses(self.frame_p_detect(scene), batch.observed),
            self.frame_clutter_density(scene),
            self.survival,
            self.initial_existence,
            self.gate_probability,
        )

    def scene_of(self, batch: TrackBatch) -> np.ndarray | None:
        """(B, T, len(SCENE_COLUMNS)) what the scene tells at each observation, for the
        scorers that read it (None here)."""
        del batch
        return None

    def frame_p_detect(self, scene: np.ndarray | None) -> float | np.ndarray:
        """P_D at one frame's detections (``SCENE_COLUMNS`` ``scene``, for a stream; a miss
        keeps the track's latest): the tuned constant."""
        del scene
        return self.p_detect

    def frame_clutter_density(self, scene: np.ndarray | None) -> float | np.ndarray:
        """The clutter density at detections whose ``SCENE_COLUMNS`` are ``scene``: the
        tuned constant."""
        del scene
        return self.clutter_density

    def fit(self, train: TrackBatch, val: TrackBatch) -> None:
        """Tune the parameters by log-loss on ``train`` (``val`` is not read)."""
        del val
        self.fitted = grid_search(self, self.grid, train, "log_loss", per_track=True)

    def rule(self, threshold: float) -> str:
        return f"P(exists) >= {threshold:.3f}"


@dataclass
class AdaptiveIPDA(IPDAExistence):
    """IPDA with the clutter density and P_D estimated from the stream so far, where plain
    IPDA holds one tuned value of each, O(1) memory at any stream length:

    - the clutter density at each detection: the tuned base density plus the local and
      scene-wide birth rates of other tracks (``scene_false_alarm_density``, the streaming
      clutter map's beta_FA);
    - P_D at each detection: the tuned P_D as a prior worth one chance, plus the scene's
      established tracks' decayed hits and chances weighted by ``p_detect_weight``
      (``scene_p_detect``). A miss keeps the track's latest estimate.

    Tuned by log-loss on train as IPDA is with the scene's terms off, then their three
    weights given the rest (``fit``)."""

    weight: float = 0.0
    scene_weight: float = 0.0
    p_detect_weight: float = 0.0
    name: str = "ipda_adaptive"
    grid: dict[str, tuple[Any, ...]] = field(
        default_factory=lambda: {
            **IPDAExistence().grid,
            "weight": (0.0, *LOCAL_WEIGHT_GRID),
            "scene_weight": SCENE_WEIGHT_GRID,
            "p_detect_weight": P_DETECT_WEIGHT_GRID,
        }
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if min(self.weight, self.scene_weight, self.p_detect_weight) < 0:
            raise ValueError(
                f"AdaptiveIPDA.weight, scene_weight and p_detect_weight must be >= 0, got "
                f"{self.weight}, {self.scene_weight} and {self.p_detect_weight}"
            )

    def scene_of(self, batch: TrackBatch) -> np.ndarray:
        return handmade_scene_features(batch)

    def frame_p_detect(self, scene: np.ndarray | None) -> np.ndarray:
        return scene_p_detect(scene, self.p_detect, self.p_detect_weight)

    def frame_clutter_density(self, scene: np.ndarray | None) -> np.ndarray:
        return scene_false_alarm_density(
            scene, self.clutter_density, self.weight, self.scene_weight
        )

    def fit(self, train: TrackBatch, val: TrackBatch) -> None:
        """IPDA's tuning with the scene's terms off, then their weights (``val`` not read)."""
        del val
        train = with_scene_features(train)
        scene = ("weight", "scene_weight", "p_detect_weight")
        self.fitted = grid_search_scene_last(self, self.grid, scene, train, "log_loss", True)

    def rule(self, threshold: float) -> str:
        return f"adaptive P(exists) >= {threshold:.3f}"


def innovation_loglik(
    position: np.ndarray,
    observed: np.ndarray,
    process_noise: np.ndarray,
    tracker: TrackerConfig,
) -> np.ndarray:
    """(B, T) Gaussian innovation log-density of each update of a constant-velocity Kalman
    filter run along each track with its own process noise (B,) px/frame^2; NaN at the
    first observation and where unobserved (as the tracker stores it)."""
    n_tracks, n_frames = observed.shape
    transition, unit_process = motion_model(TrackerConfig(process_noise=1.0))
    process = np.asarray(process_noise, np.float64)[:, None, None] ** 2 * unit_process
    r = tracker.measurement_noise**2
    initial_cov = np.diag([r, r, tracker.initial_velocity_std**2, tracker.initial_velocity_std**2])
    state = np.zeros((n_tracks, 4))
    cov = np.broadcast_to(initial_cov, (n_tracks, 4, 4)).copy()
    out = np.full((n_tracks, n_frames), np.nan)
    alive = np.zeros(n_tracks, dtype=bool)
    for t in range(n_frames):
        state = np.where(alive[:, None], state @ transition.T, state)
        cov = np.where(alive[:, None, None], transition @ cov @ transition.T + process, cov)
        z = np.nan_to_num(position[:, t].astype(np.float64))
        update = alive & observed[:, t]
        s = cov[:, :2, :2] + r * np.eye(2)
        inv_s = np.linalg.inv(s)
        innovation = z - state[:, :2]
        mahal = np.einsum("bi,bij,bj->b", innovation, inv_s, innovation)
        loglik = -0.5 * (mahal + np.log(np.linalg.det(s)) + 2 * np.log(2 * np.pi))
        out[:, t] = np.where(update, loglik, np.nan)
        gain = cov[:, :, :2] @ inv_s
        updated_state = state + np.einsum("bij,bj->bi", gain, innovation)
        updated_cov = cov - gain @ cov[:, :2, :]
        state = np.where(update[:, None], updated_state, state)
        cov = np.where(update[:, None, None], updated_cov, cov)
        new = observed[:, t] & ~alive
        state[new] = 0.0
        state[new, :2] = z[new]
        cov[new] = initial_cov
        alive |= observed[:, t]
    return out


def scene_defaults(scene: SceneConfig) -> dict[str, float]:
    """The oracle's fallback parameters when a store has no per-video draws: the middle of
    each operating-point range the scene draws from (P_D, false objects per px^2 per frame,
    motion noise)."""
    return {
        "op_p_detect": float(np.mean(scene.p_detect_range)),
        "op_clutter_density": float(np.mean(scene.clutter_density_range)),
        "op_motion_noise": float(np.mean(scene.motion_noise_range)),
    }


@dataclass
class _OracleParameters:
    scene: SceneConfig = field(default_factory=SceneConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)

    def parameters(self, batch: TrackBatch) -> dict[str, np.ndarray]:
        """True parameters per track (B,) or per track and frame (B, T): ``batch.extras``
        where present, else the SceneConfig fallback (``scene_defaults``), per track. P_D is
        kept inside (0, 1)."""
        fallback = scene_defaults(self.scene)
        out = {}
        for key in ORACLE_EXTRAS:
            value = batch.extras.get(key)
            if value is None:
                value = np.full(len(batch), fallback[key])
            out[key] = np.asarray(value, dtype=np.float64)
        out["op_p_detect"] = np.clip(out["op_p_detect"], 1e-3, 1 - 1e-3)
        out["op_clutter_density"] = np.maximum(out["op_clutter_density"], 1e-12)
        out["op_motion_noise"] = np.maximum(out["op_motion_noise"], 1e-3)
        return out

    def loglik(self, batch: TrackBatch, truth: dict[str, np.ndarray]) -> np.ndarray:
        """The innovation likelihoods under the true motion noise; imported tracks
        (``frame_size`` set: positions in their own frames' px) keep their own."""
        if batch.frame_size is not None:
            return batch.loglik
        return innovation_loglik(
            batch.position, batch.observed, truth["op_motion_noise"], self.tracker
        )


@dataclass
class OracleIPDA(_OracleParameters):
    """IPDA with the simulator's true P_D, clutter density and motion noise per track."""

    survival: float = 0.98
    initial_existence: float = 0.5
    name: str = "oracle_ipda"
    probabilistic = True
    threshold: float = 0.5

    def score(self, batch: TrackBatch) -> np.ndarray:
        truth = self.parameters(batch)
        return existence_probability(
            batch.observed,
            self.loglik(batch, truth),
            truth["op_p_detect"],
            truth["op_clutter_density"],
            self.survival,
            self.initial_existence,
            self.tracker.gate_probability,
        )

    def rule(self, threshold: float) -> str:
        return f"oracle P(exists) >= {threshold:.3f}"


@dataclass
class OracleTrackScore(_OracleParameters):
    """Blackman's track score with the simulator's true parameters per track."""

    name: str = "oracle_track_score"
    probabilistic = False

    @property
    def threshold(self) -> float:
        return TrackScore().threshold

    def score(self, batch: TrackBatch) -> np.ndarray:
        truth = self.parameters(batch)
        base = TrackScore()
        p_detect, density = (
            _per_frame(truth[key], batch.observed.shape)
            for key in ("op_p_detect", "op_clutter_density")
        )
        return log_likelihood_ratio(
            batch.observed,
            self.loglik(batch, truth),
            p_detect=p_detect,
            log_false_alarm=np.log(density),
            log_new_target=np.log(base.new_target_density),
            delete_threshold=base.delete_threshold,
        )

    def rule(self, threshold: float) -> str:
        return f"oracle track score >= {threshold:.2f}"
