"""Multi-object tracker: constant-velocity Kalman filters + gated Hungarian assignment.

Deliberately no confirmation logic: every unassigned detection starts a track, and deciding
which tracks are real is the job of the persistence scorers (baselines or the model).
All tracks of a frame are predicted and updated together as stacked arrays (vectorised over
tracks); the only Python loop is over frames.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Annotated, Any

import numpy as np
from annotated_types import Ge, Gt, Interval, doc

from tp_models.perception.detect import Detections, DetectorConfig, detect

_LOG_2PI = float(np.log(2.0 * np.pi))

# Cost standing in for "not allowed" in the assignment matrix; any pair that ends up with it
# is discarded after the solve.
_FORBIDDEN = 1e9


@dataclass(frozen=True)
class TrackerConfig:
    """Everything that turns pixels into tracks (stored with the data so a store says how).

    max_misses: a track coasts through up to this many consecutive missed frames; one more
        miss ends it.
    process_noise: std of the white-noise acceleration (px / frame^2). Objects move at up
        to ~3 px/frame on curved paths, so about 1 px/frame^2 of unmodelled turn rate.
    measurement_noise: std of the centroid measurement (px), per axis.
    initial_velocity_std: prior std of a new track's velocity (px / frame): a new track has
        no velocity estimate, so its first gate must cover the fastest objects (~3 px/frame).
    gate_probability: detections outside this chi-square (2 dof) probability mass of the
        predicted measurement are never assigned (0.99 -> Mahalanobis^2 <= 9.21).
    """

    detector: DetectorConfig = field(default_factory=DetectorConfig)
    max_misses: Annotated[int, Ge(0), doc("frames a track coasts without a detection")] = 2
    process_noise: Annotated[float, Gt(0), doc("acceleration noise std (px/frame^2)")] = 1.0
    measurement_noise: Annotated[float, Gt(0), doc("centroid noise std per axis (px)")] = 0.7
    initial_velocity_std: Annotated[float, Gt(0), doc("prior velocity std (px/frame)")] = 3.0
    gate_probability: Annotated[
        float, Interval(gt=0, lt=1), doc("chi-square gate of the assignment")
    ] = 0.99

    def __post_init__(self) -> None:
        if self.max_misses < 0:
            raise ValueError(f"TrackerConfig.max_misses must be >= 0, got {self.max_misses}")
        if not 0.0 < self.gate_probability < 1.0:
            raise ValueError(
                f"TrackerConfig.gate_probability must be in (0, 1), got {self.gate_probability}"
            )
        for name in ("process_noise", "measurement_noise", "initial_velocity_std"):
            if getattr(self, name) <= 0:
                raise ValueError(f"TrackerConfig.{name} must be > 0, got {getattr(self, name)}")

    @property
    def gate(self) -> float:
        """Squared-Mahalanobis gate on the 2-D innovation (chi-square, 2 dof, closed form)."""
        return float(-2.0 * np.log1p(-self.gate_probability))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrackerConfig:
        data = dict(data)
        detector = data.pop("detector", {})
        if isinstance(detector, dict):
            detector = DetectorConfig.from_dict(detector)
        return cls(detector=detector, **data)


@dataclass
class VideoTracks:
    """The tracks of one video, frame-aligned over its T frames (M tracks, in birth order).

    detection (M, T)    int32    index into ``detections`` of each observation, -1 if none
    position  (M, T, 2) float32  centroid (x, y) of the observation; NaN where unobserved
    area      (M, T)    float32  NaN where unobserved
    color     (M, T, 3) float32  NaN where unobserved
    bbox      (M, T, 4) int32    (x0, y0, x1, y1); -1 where unobserved
    loglik    (M, T)    float32  innovation log-likelihood of the Kalman update; NaN where no
                                 update happened (unobserved frames and the first observation)
    """

    detections: Detections
    detection: np.ndarray
    position: np.ndarray
    area: np.ndarray
    color: np.ndarray
    bbox: np.ndarray
    loglik: np.ndarray

    def __len__(self) -> int:
        return int(self.detection.shape[0])

    @property
    def frames(self) -> int:
        return int(self.detection.shape[1])

    @property
    def observed(self) -> np.ndarray:
        return self.detection >= 0


def motion_model(config: TrackerConfig) -> tuple[np.ndarray, np.ndarray]:
    transition = np.eye(4)
    transition[0, 2] = transition[1, 3] = 1.0
    # Discrete white-noise acceleration model with dt = 1 frame.
    q = config.process_noise**2
    block = q * np.array([[0.25, 0.5], [0.5, 1.0]])
    process = np.zeros((4, 4))
    process[np.ix_([0, 2], [0, 2])] = block
    process[np.ix_([1, 3], [1, 3])] = block
    return transition, process


def _initial_covariance(config: TrackerConfig) -> np.ndarray:
    r = config.measurement_noise**2
    return np.diag([r, r, config.initial_velocity_std**2, config.initial_velocity_std**2])


def _predict(
    state: np.ndarray, cov: np.ndarray, transition: np.ndarray, process: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    return state @ transition.T, transition @ cov @ transition.T + process


def _innovation_terms(
    cov: np.ndarray, innovation: np.ndarray, r: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inverse innovation covariance (A, 2, 2), squared Mahalanobis distance and Gaussian
    log-likelihood (A, D) of innovations (A, D, 2) of A tracks against D measurements."""
    s = cov[:, :2, :2] + r * np.eye(2)
    det_s = s[:, 0, 0] * s[:, 1, 1] - s[:, 0, 1] * s[:, 1, 0]
    inv_s = np.empty_like(s)
    inv_s[:, 0, 0] = s[:, 1, 1] / det_s
    inv_s[:, 1, 1] = s[:, 0, 0] / det_s
    inv_s[:, 0, 1] = -s[:, 0, 1] / det_s
    inv_s[:, 1, 0] = -s[:, 1, 0] / det_s
    mahal = np.einsum("adi,aij,adj->ad", innovation, inv_s, innovation)
    loglik = -0.5 * (mahal + np.log(det_s)[:, None] + 2 * _LOG_2PI)
    return inv_s, mahal, loglik


def _update(
    state: np.ndarray, cov: np.ndarray, inv_s: np.ndarray, innovation: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Kalman update of n tracks, each with its own innovation (n, 2)."""
    gain = cov[:, :, :2] @ inv_s  # (n, 4, 2)
    return state + np.einsum("nij,nj->ni", gain, innovation), cov - gain @ cov[:, :2, :]


def track_detections(detections: Detections, config: TrackerConfig | None = None) -> VideoTracks:
    """Turn one video's detections into tracks (see module docstring)."""
    # Imported here: half a second, which a CLI that only reads TrackerConfig never pays.
    from scipy.optimize import linear_sum_assignment

    config = config or TrackerConfig()
    n_frames = detections.frames
    n_det = len(detections)
    transition, process = motion_model(config)
    r = config.measurement_noise**2
    gate = config.gate
    initial_cov = _initial_covariance(config)

    # Every track is born from one detection, so there are at most n_det tracks.
    track_det = np.full((n_det, n_frames), -1, dtype=np.int32)
    track_loglik = np.full((n_det, n_frames), np.nan, dtype=np.float32)
    n_tracks = 0

    # Active tracks as stacked arrays.
    active_id = np.zeros(0, dtype=np.int64)
    state = np.zeros((0, 4))
    cov = np.zeros((0, 4, 4))
    misses = np.zeros(0, dtype=np.int64)

    centroids = detections.centroid.astype(np.float64)
    for t in range(n_frames):
        lo, hi = int(detections.frame_start[t]), int(detections.frame_start[t + 1])
        z = centroids[lo:hi]
        n_active = active_id.size

        if n_active:
            state, cov = _predict(state, cov, transition, process)

        assigned_track = np.zeros(0, dtype=np.int64)
        assigned_det = np.zeros(0, dtype=np.int64)
        if n_active and z.shape[0]:
            innovation = z[None, :, :] - state[:, None, :2]  # (A, D, 2)
            inv_s, mahal, loglik = _innovation_terms(cov, innovation, r)
            # Negative log-likelihood as the cost: unlike bare Mahalanobis distance it does
            # not favour a long-coasting track just because its covariance has grown.
            cost = np.where(mahal <= gate, -loglik, _FORBIDDEN)
            rows, cols = linear_sum_assignment(cost)
            ok = cost[rows, cols] < _FORBIDDEN
            assigned_track, assigned_det = rows[ok], cols[ok]
            if assigned_track.size:
                # Kalman update of the assigned tracks only.
                state[assigned_track], cov[assigned_track] = _update(
                    state[assigned_track],
                    cov[assigned_track],
                    inv_s[assigned_track],
                    innovation[assigned_track, assigned_det],
                )
                ids = active_id[assigned_track]
                track_det[ids, t] = lo + assigned_det
                track_loglik[ids, t] = loglik[assigned_track, assigned_det]

        if n_active:
            hit = np.zeros(n_active, dtype=bool)
            hit[assigned_track] = True
            misses = np.where(hit, 0, misses + 1)
            alive = misses <= config.max_misses
            active_id, state, cov, misses = (
                active_id[alive],
                state[alive],
                cov[alive],
                misses[alive],
            )

        free = np.ones(z.shape[0], dtype=bool)
        free[assigned_det] = False
        new_det = np.flatnonzero(free)
        if new_det.size:
            new_id = np.arange(n_tracks, n_tracks + new_det.size)
            n_tracks += new_det.size
            track_det[new_id, t] = lo + new_det
            new_state = np.zeros((new_det.size, 4))
            new_state[:, :2] = z[new_det]
            active_id = np.concatenate([active_id, new_id])
            state = np.concatenate([state, new_state])
            cov = np.concatenate([cov, np.broadcast_to(initial_cov, (new_det.size, 4, 4))])
            misses = np.concatenate([misses, np.zeros(new_det.size, dtype=np.int64)])

    track_det = track_det[:n_tracks]
    return _gather(detections, track_det, track_loglik[:n_tracks])


# The frame (height, width) the tracker's noise parameters are in px of: the simulator's.
# Tracks seen in frames of another size are scaled into it before the filter or any
# distance in px is applied to them (``to_tracker_frame``), so a scene scored in a frame
# twice as large gives the same log-likelihoods and clutter-map counts.
TRACKER_FRAME = (128, 128)


def to_tracker_frame(position: np.ndarray, frame_size: Any) -> np.ndarray:
    """Positions (..., 2) px (x, y) seen in frames of ``frame_size`` (height, width: one,
    or one per leading entry), scaled into ``TRACKER_FRAME``."""
    scale = np.asarray(TRACKER_FRAME, dtype=np.float64) / np.asarray(frame_size, float)
    scale = scale[..., ::-1]  # (h, w) -> (x, y)
    while scale.ndim > 1 and scale.ndim < np.ndim(position):
        scale = scale[:, None]
    return np.asarray(position, dtype=np.float64) * scale


class InnovationFilter:
    """The constant-velocity filter of ``innovation_loglik`` for N tracks, one frame at a
    time: ``step`` gives each observation's innovation log-likelihood. Online scorers keep
    one and add or drop tracks as they come and go (``add``, ``keep``)."""

    def __init__(self, config: TrackerConfig | None = None, n_tracks: int = 0):
        config = config or TrackerConfig()
        self.transition, self.process = motion_model(config)
        self.r = config.measurement_noise**2
        self.initial_cov = _initial_covariance(config)
        self.state = np.zeros((0, 4))
        self.cov = np.zeros((0, 4, 4))
        self.born = np.zeros(0, dtype=bool)
        self.add(n_tracks)

    def add(self, count: int) -> None:
        """``count`` new tracks, not observed yet."""
        self.state = np.concatenate([self.state, np.zeros((count, 4))])
        self.cov = np.concatenate([self.cov, np.broadcast_to(self.initial_cov, (count, 4, 4))])
        self.born = np.concatenate([self.born, np.zeros(count, dtype=bool)])

    def keep(self, index: np.ndarray) -> None:
        self.state, self.cov, self.born = self.state[index], self.cov[index], self.born[index]

    def coast(self) -> None:
        """A frame without observations: ``step`` with none observed, predicting only."""
        born = self.born
        self.state[born], self.cov[born] = _predict(
            self.state[born], self.cov[born], self.transition, self.process
        )

    def step(self, position: np.ndarray, observed: np.ndarray) -> np.ndarray:
        """(N,) float32 log-likelihood of this frame's observations (NaN where none or at a
        track's first); position (N, 2) px, any value where unobserved; observed (N,)."""
        born = self.born
        out = np.full(born.shape, np.nan, dtype=np.float32)
        self.state[born], self.cov[born] = _predict(
            self.state[born], self.cov[born], self.transition, self.process
        )
        update = observed & born
        if update.any():
            z = np.asarray(position, dtype=np.float64)[update]
            innovation = (z - self.state[update, :2])[:, None, :]  # (n, 1, 2)
            inv_s, _, loglik = _innovation_terms(self.cov[update], innovation, self.r)
            out[update] = loglik[:, 0]
            self.state[update], self.cov[update] = _update(
                self.state[update], self.cov[update], inv_s, innovation[:, 0]
            )
        new = observed & ~born
        self.state[new, :2] = np.asarray(position, dtype=np.float64)[new]
        self.born = born | new
        return out


def innovation_loglik(
    position: np.ndarray, observed: np.ndarray, config: TrackerConfig | None = None
) -> np.ndarray:
    """(B, T) float32 Kalman innovation log-likelihood of every observation of given tracks.

    For tracks made by another tracker (imported files): the association is already fixed,
    so each track runs the same constant-velocity filter as ``track_detections`` on its own
    observations, coasting through any gap. NaN at unobserved frames and at the first
    observation (no prediction yet), exactly as in ``VideoTracks.loglik``, so the track-score
    baseline and the model read imported tracks like their own.
    position (B, T, 2) px (x, y), any value where unobserved; observed (B, T) bool.
    """
    observed = np.asarray(observed, dtype=bool)
    kalman = InnovationFilter(config, observed.shape[0])
    out = np.full(observed.shape, np.nan, dtype=np.float32)
    # Frames where no track is observed (long gaps of start-aligned imported tracks) only
    # predict: the same arithmetic as ``step``, without its per-frame bookkeeping.
    for t, any_observed in enumerate(observed.any(axis=0)):
        if any_observed:
            out[:, t] = kalman.step(position[:, t], observed[:, t])
        else:
            kalman.coast()
    return out


def _gather(detections: Detections, track_det: np.ndarray, loglik: np.ndarray) -> VideoTracks:
    observed = track_det >= 0
    index = np.where(observed, track_det, 0)

    def take(values: np.ndarray, fill: float, dtype: type) -> np.ndarray:
        if len(detections) == 0:
            shape = track_det.shape + values.shape[1:]
            return np.full(shape, fill, dtype=dtype)
        out = values[index].astype(dtype)
        mask = observed.reshape(observed.shape + (1,) * (values.ndim - 1))
        return np.where(mask, out, np.asarray(fill, dtype=dtype))

    return VideoTracks(
        detections=detections,
        detection=track_det,
        position=take(detections.centroid, np.nan, np.float32),
        area=take(detections.area, np.nan, np.float32),
        color=take(detections.color, np.nan, np.float32),
        bbox=take(detections.bbox, -1, np.int32),
        loglik=loglik,
    )


def track_video(video: np.ndarray, config: TrackerConfig | None = None) -> VideoTracks:
    """Detect and track one video (T, H, W, 3) uint8."""
    config = config or TrackerConfig()
    return track_detections(detect(video, config.detector), config)
