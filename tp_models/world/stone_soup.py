"""A second world nobody here wrote: Stone Soup's simulator and tracker.

Targets are born (Poisson) and die, move at near-constant velocity, and are seen by a sensor
with a detection probability and Poisson clutter over the surveillance area; Stone Soup's
own multi-target tracker (Kalman filter, Mahalanobis gate, global nearest neighbour, and an
initiator that starts a track on every unassociated detection) turns the detections into
tracks, most of them false. The tracker's output and the ground truth come out as point rows
(frame, id, x, y) in the scenario's units (m); the import labels them by distance.

The sensor sees the area only: a target outside it is neither detected nor in the ground
truth, as a real sensor's coverage would have it. With `drift` > 0 its operating point (P_D
and clutter rate) wanders slowly from scan to scan, as weather and terrain move it on a long
stream: a scorer can learn the scene only from the stream's past.

Stone Soup (PyPI ``stonesoup``, the ``stonesoup`` extra) is imported when a sequence is
simulated, so the rest of the project does not need it.
"""

from __future__ import annotations

import dataclasses
import datetime
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
from annotated_types import Ge, Gt, Interval, doc

from tp_models.core.config import known_fields

# Named operating points (`tp simulate-tracker --operating-point NAME`): where a 2-of-3 rule
# already works, a typical radar, and where hit counting fails.
OPERATING_POINTS: dict[str, dict[str, float]] = {
    "sparse": {"p_detect": 0.95, "clutter_rate": 1.0},
    "radar": {"p_detect": 0.85, "clutter_rate": 10.0},
    "dense": {"p_detect": 0.7, "clutter_rate": 30.0},
}

# Where a drifting operating point (P_D, clutter rate) may wander: between the named points'
# extremes, rows (lowest, highest).
DRIFT_RANGE = np.array(
    [
        [min(p[key] for p in OPERATING_POINTS.values()) for key in ("p_detect", "clutter_rate")],
        [max(p[key] for p in OPERATING_POINTS.values()) for key in ("p_detect", "clutter_rate")],
    ]
)


@dataclass(frozen=True)
class TrackerScenario:
    """One Stone Soup scenario: targets, sensor and tracker. Units: m, scans (1 s each)."""

    area: Annotated[
        float, Gt(0), doc("side of the square surveillance area in m; the sensor sees all of it")
    ] = 1000.0
    scans: Annotated[int, Ge(2), doc("scans per sequence")] = 60
    initial_targets: Annotated[int, Ge(0), doc("targets present at the first scan")] = 3
    birth_rate: Annotated[float, Ge(0), doc("expected new targets per scan (Poisson)")] = 0.2
    death_probability: Annotated[
        float, Interval(ge=0, le=1), doc("probability that a target dies at each scan")
    ] = 0.02
    speed: Annotated[float, Ge(0), doc("std of a new target's velocity per axis, m/scan")] = 5.0
    motion_noise: Annotated[
        float, Ge(0), doc("constant-velocity process noise q of the targets, m^2/s^3")
    ] = 0.1
    p_detect: Annotated[
        float, Interval(gt=0, le=1), doc("the sensor's probability of detecting a target")
    ] = 0.85
    clutter_rate: Annotated[
        float, Ge(0), doc("expected clutter detections per scan over the area (Poisson)")
    ] = 3.0
    measurement_noise: Annotated[float, Gt(0), doc("std of a position measurement per axis, m")] = (
        2.0
    )
    gate: Annotated[
        float, Gt(0), doc("the tracker's Mahalanobis gate: farther detections are not associated")
    ] = 3.0
    delete_after: Annotated[
        int, Ge(1), doc("scans without an update after which the tracker deletes a track")
    ] = 3
    drift: Annotated[
        float,
        Ge(0),
        doc(
            "how fast the operating point drifts: every scan, logit P_D and log clutter rate "
            "take a Gaussian step of this std, reflected inside the named operating points' "
            "range (0: fixed)"
        ),
    ] = 0.0

    def with_operating_point(self, name: str) -> TrackerScenario:
        """This scenario at a named operating point (`OPERATING_POINTS`)."""
        if name not in OPERATING_POINTS:
            raise ValueError(
                f"operating point {name!r} is not one of {', '.join(sorted(OPERATING_POINTS))}"
            )
        return dataclasses.replace(self, **OPERATING_POINTS[name])

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrackerScenario:
        return cls(**known_fields(cls, data))


def sequence_seed(seed: int, index: int) -> int:
    """The seed of sequence `index` of a run: depends on the run's seed and the index alone,
    so the files do not depend on how sequences are dealt to workers."""
    return int(np.random.SeedSequence(int(seed), spawn_key=(int(index),)).generate_state(1)[0])


def drift_schedule(scenario: TrackerScenario, rng: np.random.Generator) -> np.ndarray:
    """The sensor's operating point at every scan, (scans, 2) of (P_D, clutter rate).

    It starts at the scenario's and, with `drift` > 0, takes a Gaussian random walk in logit
    P_D and log clutter rate that bounces off the ends of `DRIFT_RANGE` (widened to hold the
    start). Without drift it is constant and draws nothing.
    """
    start = np.array([scenario.p_detect, scenario.clutter_rate], dtype=np.float64)
    if scenario.drift == 0:
        return np.tile(start, (scenario.scans, 1))
    x0 = _to_walk(start)
    lo = np.minimum(_to_walk(DRIFT_RANGE[0]), x0)
    hi = np.maximum(_to_walk(DRIFT_RANGE[1]), x0)
    steps = rng.normal(0.0, scenario.drift, size=(scenario.scans - 1, 2))
    walk = x0 + np.vstack([np.zeros((1, 2)), np.cumsum(steps, axis=0)])
    # Folded into [lo, hi] as a walk that bounces off both ends.
    folded = np.mod(walk - lo, 2 * (hi - lo))
    schedule = _from_walk(lo + np.minimum(folded, 2 * (hi - lo) - folded))
    schedule[0] = start  # exactly, not through the round trip
    return schedule


def _to_walk(point: np.ndarray) -> np.ndarray:
    """(P_D, clutter rate) as (logit P_D, log rate), where a step is alike at either end."""
    p = np.clip(point[..., 0], 1e-6, 1 - 1e-6)
    return np.stack([np.log(p / (1 - p)), np.log(np.maximum(point[..., 1], 1e-6))], axis=-1)


def _from_walk(x: np.ndarray) -> np.ndarray:
    return np.stack([1 / (1 + np.exp(-x[..., 0])), np.exp(x[..., 1])], axis=-1)


@dataclass(frozen=True)
class SimulatedSequence:
    """One sequence: the tracker's rows and the ground truth, each (N, 4) float64 of
    (frame, id, x, y) with 1-based frames, in frame order, and the sensor's operating point,
    (scans, 3) of (frame, P_D, clutter rate per scan)."""

    tracks: np.ndarray
    truth: np.ndarray
    operating_point: np.ndarray


def simulate_sequence(scenario: TrackerScenario, seed: int) -> SimulatedSequence:
    """Simulate one sequence and track it; its bytes depend on (scenario, seed) alone."""
    from stonesoup.dataassociator.neighbour import GNNWith2DAssignment
    from stonesoup.deleter.time import UpdateTimeStepsDeleter
    from stonesoup.hypothesiser.distance import DistanceHypothesiser
    from stonesoup.initiator.simple import SimpleMeasurementInitiator
    from stonesoup.measures import Mahalanobis
    from stonesoup.models.measurement.linear import LinearGaussian
    from stonesoup.models.transition.linear import (
        CombinedLinearGaussianTransitionModel,
        ConstantVelocity,
    )
    from stonesoup.predictor.kalman import KalmanPredictor
    from stonesoup.simulator.simple import (
        MultiTargetGroundTruthSimulator,
        SimpleDetectionSimulator,
    )
    from stonesoup.tracker.simple import MultiTargetTracker
    from stonesoup.types.state import GaussianState
    from stonesoup.types.update import Update
    from stonesoup.updater.kalman import KalmanUpdater

    # Every random draw comes from streams seeded here (Stone Soup's models draw from their
    # own `seed`; the rest from NumPy's global state, seeded for this sequence alone; the
    # drift from a stream of its own, so a fixed operating point draws what it always drew).
    streams = np.random.SeedSequence(int(seed)).generate_state(4)
    np.random.seed(int(streams[0]))
    s = scenario
    schedule = drift_schedule(
        s, np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(1,)))
    )
    start = datetime.datetime(2000, 1, 1)
    transition = CombinedLinearGaussianTransitionModel(
        [ConstantVelocity(s.motion_noise), ConstantVelocity(s.motion_noise)],
        seed=int(streams[1]),
    )
    measurement = LinearGaussian(
        ndim_state=4,
        mapping=(0, 2),
        noise_covar=np.diag([s.measurement_noise**2] * 2),
        seed=int(streams[2]),
    )
    half = s.area / 2
    truth = MultiTargetGroundTruthSimulator(
        transition_model=transition,
        initial_state=GaussianState(
            [[half], [0.0], [half], [0.0]],
            np.diag([(s.area / 4) ** 2, s.speed**2, (s.area / 4) ** 2, s.speed**2]),
            timestamp=start,
        ),
        timestep=datetime.timedelta(seconds=1),
        number_steps=s.scans,
        birth_rate=s.birth_rate,
        death_probability=s.death_probability,
        initial_number_targets=s.initial_targets,
        seed=int(streams[3]),
    )
    area = np.array([[0.0, s.area], [0.0, s.area]])
    sensor = SimpleDetectionSimulator(
        groundtruth=truth,
        measurement_model=measurement,
        meas_range=area,
        detection_probability=s.p_detect,
        clutter_rate=s.clutter_rate,
        seed=int(streams[3]) + 1,
    )
    predictor = KalmanPredictor(transition)
    updater = KalmanUpdater(measurement)
    tracker = MultiTargetTracker(
        initiator=SimpleMeasurementInitiator(
            prior_state=GaussianState(
                [[0.0], [0.0], [0.0], [0.0]], np.diag([0.0, s.speed**2, 0.0, s.speed**2])
            ),
            measurement_model=measurement,
        ),
        deleter=UpdateTimeStepsDeleter(time_steps_since_update=s.delete_after),
        detector=_Sensor(sensor, s.area, schedule),
        data_associator=GNNWith2DAssignment(
            DistanceHypothesiser(predictor, updater, Mahalanobis(), missed_distance=s.gate)
        ),
        updater=updater,
    )
    track_ids: dict[str, int] = {}
    rows = []
    for time, tracks in tracker:
        frame = int((time - start).total_seconds()) + 1
        updated = [
            (float(t.state.state_vector[0]), float(t.state.state_vector[2]), t.id)
            for t in tracks
            if isinstance(t.state, Update) and t.state.timestamp == time
        ]
        # Tracks come as a set: new ones are numbered in position order, never by hash.
        for x, y, key in sorted(updated):
            rows.append((frame, track_ids.setdefault(key, len(track_ids) + 1), x, y))
    truth_ids: dict[str, int] = {}
    truth_rows = []
    for path in truth.groundtruth_paths:
        number = truth_ids.setdefault(path.id, len(truth_ids) + 1)
        for state in path.states:
            x, y = float(state.state_vector[0]), float(state.state_vector[2])
            if 0.0 <= x <= s.area and 0.0 <= y <= s.area:
                frame = int((state.timestamp - start).total_seconds()) + 1
                truth_rows.append((frame, number, x, y))
    frames = np.arange(1, s.scans + 1, dtype=np.float64)[:, None]
    return SimulatedSequence(_table(rows), _table(truth_rows), np.hstack([frames, schedule]))


def _table(rows: list[tuple[int, int, float, float]]) -> np.ndarray:
    table = np.array(rows, dtype=np.float64).reshape(-1, 4)
    return table[np.lexsort((table[:, 1], table[:, 0]))]


class _Sensor:
    """The sensor's detections inside the surveillance area only (its coverage), each scan at
    its scheduled operating point (P_D, clutter rate)."""

    def __init__(self, sensor: Any, side: float, schedule: np.ndarray) -> None:
        self.sensor = sensor
        self.side = side
        self.schedule = schedule

    def __iter__(self):
        scans = iter(self.sensor)
        for p_detect, clutter_rate in self.schedule:
            # Stone Soup's simulator reads both at each scan, when asked for it.
            self.sensor.detection_probability = float(p_detect)
            self.sensor.clutter_rate = float(clutter_rate)
            try:
                time, detections = next(scans)
            except StopIteration:
                return
            yield (
                time,
                {
                    d
                    for d in detections
                    if 0.0 <= float(d.state_vector[0]) <= self.side
                    and 0.0 <= float(d.state_vector[1]) <= self.side
                },
            )
