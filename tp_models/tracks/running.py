"""The hand-made track features as running state: O(1) memory and work per track and frame.

``RunningFeatures`` keeps, for N tracks, what the features of the next frame need (counts,
sums, first and latest values, a bit mask of the last frames' hits) and ``step`` turns one
frame of them into ``HANDMADE_FEATURES``. ``SceneGrid`` is the scene's memory, one plane
per video: decayed counts of track births per cell (the clutter-map count) and decayed
scene-wide totals of births, detections and frames (the scene's rates), and of the hits
and chances of its established tracks (the scene's P_D). Both are the only
implementation: the batch features (``features.handmade_features``, a loop over frames),
rows of a tracker's file (``features.detection_scene_features``) and the online scorer (one
frame per call) drive the same objects, so they compute the same numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tp_models.perception.tracker import TRACKER_FRAME, InnovationFilter, to_tracker_frame

# What the scene (``SceneGrid``) tells about a detection, the last of HANDMADE_FEATURES.
SCENE_FEATURES = ("clutter_count", "scene_births", "scene_detections")
# ``SceneGrid.step``'s columns: SCENE_FEATURES, then what it tells a classical scorer
# besides, the decayed hits and chances of the scene's established tracks (a chance is a
# frame between two of a track's observations, or the later one: a miss there was a real
# miss), from which it estimates P_D (``existence.AdaptiveIPDA``).
SCENE_COLUMNS = (*SCENE_FEATURES, "scene_hits", "scene_chances")
# A track's observations count towards the scene's P_D once it has had this many before.
ESTABLISHED = 3

HANDMADE_FEATURES = (
    "hits",
    "misses",
    "frames_since_hit",
    "hits_last_3",
    "hits_last_5",
    "net_displacement",
    "path_length",
    "speed",
    "mean_step",
    "area",
    "mean_area",
    "area_change",
    "loglik_latest",
    "loglik_mean",
    "loglik_min",
    *SCENE_FEATURES,
)

# The clutter-map count (in the tracker's frame, ``tracker.TRACKER_FRAME``): births of other
# tracks in the 3 x 3 cells of CLUTTER_CELL px around a detection, at earlier frames, each
# weighted by 2^(-age / SCENE_HALF_LIFE) so a stream of any length keeps a bounded count.
# The scene's rates weigh the whole video's past the same way: births of other tracks and
# detections per frame, an estimate of the scene's clutter and traffic that follows a
# drifting scene with the same memory.
CLUTTER_CELL = 4.0
SCENE_HALF_LIFE = 250.0
SCENE_DECAY = 0.5 ** (1.0 / SCENE_HALF_LIFE)  # one frame's weight loss


class RunningFeatures:
    """``HANDMADE_FEATURES`` of N tracks, one frame at a time (see module docstring).

    Every track steps through every frame from its first observation on; a frame before a
    track's first observation leaves it untouched and gives NaN features.
    """

    _FIELDS = {
        "born": False,
        "age": 0.0,  # frames since the first observation, this one counted
        "hits": 0.0,
        "since_hit": 0.0,
        "recent": 0,  # bit i: a hit i frames ago
        "life": 0.0,  # frames from the first to the latest observation
        "first_x": np.nan,
        "first_y": np.nan,
        "last_x": np.nan,
        "last_y": np.nan,
        "path": 0.0,
        "first_area": np.nan,
        "area": np.nan,
        "area_sum": 0.0,
        "loglik": np.nan,
        "loglik_sum": 0.0,
        "loglik_n": 0.0,
        "loglik_min": np.nan,
        **{name: np.nan for name in SCENE_FEATURES},
    }

    def __init__(self, count: int = 0):
        self.state = {k: np.full(count, v) for k, v in self._FIELDS.items()}
        self.state["recent"] = self.state["recent"].astype(np.int64)
        self.state["born"] = self.state["born"].astype(bool)

    def __len__(self) -> int:
        return int(self.state["born"].size)

    @property
    def nbytes(self) -> int:
        return sum(v.nbytes for v in self.state.values())

    def add(self, count: int) -> None:
        """``count`` new tracks, nothing seen yet, after the existing ones."""
        fresh = RunningFeatures(count).state
        self.state = {k: np.concatenate([v, fresh[k]]) for k, v in self.state.items()}

    def keep(self, index: np.ndarray) -> None:
        """Only the tracks at ``index`` stay, in that order."""
        self.state = {k: v[index] for k, v in self.state.items()}

    def step(
        self,
        observed: np.ndarray,
        position: np.ndarray,
        area: np.ndarray,
        loglik: np.ndarray,
        scene: np.ndarray,
    ) -> np.ndarray:
        """(N, len(HANDMADE_FEATURES)) float64 features at this frame, NaN before a track's
        first observation. observed (N,) bool; position (N, 2), area, loglik (N,), scene
        (N, len(SCENE_FEATURES)): this frame's values, read only where observed."""
        s = self.state
        obs = np.asarray(observed, dtype=bool)
        first = obs & ~s["born"]
        s["born"] |= obs
        born = s["born"]
        x, y = (np.asarray(position[:, i], dtype=np.float64) for i in (0, 1))
        area = np.asarray(area, dtype=np.float64)

        s["age"] += born
        s["hits"] += obs
        s["since_hit"] = np.where(obs, 0.0, s["since_hit"] + born)
        s["recent"] = np.where(born, ((s["recent"] << 1) | obs) & 0b11111, 0)
        s["life"] = np.where(obs, s["age"] - 1.0, s["life"])
        step = np.hypot(x - s["last_x"], y - s["last_y"])
        s["path"] += np.where(obs & np.isfinite(step), step, 0.0)
        for name, value in (("x", x), ("y", y)):
            s[f"first_{name}"] = np.where(first, value, s[f"first_{name}"])
            s[f"last_{name}"] = np.where(obs, value, s[f"last_{name}"])
        s["first_area"] = np.where(first, area, s["first_area"])
        s["area"] = np.where(obs, area, s["area"])
        s["area_sum"] += np.where(obs, np.nan_to_num(area), 0.0)
        finite = obs & np.isfinite(loglik)
        loglik = np.where(finite, loglik, np.nan).astype(np.float64)
        s["loglik"] = np.where(finite, loglik, s["loglik"])
        s["loglik_sum"] += np.where(finite, loglik, 0.0)
        s["loglik_n"] += finite
        s["loglik_min"] = np.fmin(s["loglik_min"], loglik)
        scene = np.asarray(scene, dtype=np.float64)
        for i, name in enumerate(SCENE_FEATURES):
            s[name] = np.where(obs, scene[:, i], s[name])

        moved = np.hypot(s["last_x"] - s["first_x"], s["last_y"] - s["first_y"])
        with np.errstate(invalid="ignore", divide="ignore"):
            loglik_mean = np.where(s["loglik_n"] > 0, s["loglik_sum"] / s["loglik_n"], np.nan)
            area_change = s["area"] / s["first_area"] - 1.0
        columns = [
            s["hits"],
            s["age"] - s["hits"],
            s["since_hit"],
            _bits(s["recent"] & 0b111),
            _bits(s["recent"]),
            moved,
            s["path"],
            moved / np.maximum(s["life"], 1.0),
            s["path"] / np.maximum(s["hits"] - 1.0, 1.0),
            s["area"],
            s["area_sum"] / np.maximum(s["hits"], 1.0),
            area_change,
            s["loglik"],
            loglik_mean,
            s["loglik_min"],
            *(s[name] for name in SCENE_FEATURES),
        ]
        out = np.stack(columns, axis=-1)
        out[~born] = np.nan
        return out


_SET_BITS = np.array([bin(i).count("1") for i in range(32)], dtype=np.float64)


def _bits(mask: np.ndarray) -> np.ndarray:
    """Number of set bits of ints in 0..31, as float64."""
    return _SET_BITS[mask]


class SceneGrid:
    """The scene's memory, one plane per video, whatever the stream's length: decayed counts
    of track births per ``CLUTTER_CELL`` cell of the tracker's frame, and decayed totals of
    the plane's births, detections and frames since its first detection, and of the hits
    and chances of its established tracks.

    ``step`` takes one frame's detections at a time, frames in increasing order: each
    reads the memory of earlier frames, then the frame's births and detections are added.
    Positions beyond the frame count in its border cells.
    """

    def __init__(self, planes: int = 1):
        self.shape = tuple(math.ceil(side / CLUTTER_CELL) for side in TRACKER_FRAME)  # (y, x)
        # One cell of margin on every side: the 3 x 3 read never leaves the array.
        self.counts = np.zeros((planes, self.shape[0] + 2, self.shape[1] + 2))
        self.births = np.zeros(planes)
        self.detections = np.zeros(planes)
        self.hits = np.zeros(planes)
        self.chances = np.zeros(planes)
        self.frames = np.zeros(planes)  # decayed count of frames since the first detection
        self.started = np.zeros(planes, dtype=bool)
        self.frame: int | None = None
        self.decay = SCENE_DECAY

    @property
    def nbytes(self) -> int:
        totals = (self.births, self.detections, self.hits, self.chances, self.frames)
        totals += (self.started,)
        return int(self.counts.nbytes + sum(a.nbytes for a in totals))

    def step(
        self,
        frame: int,
        plane: np.ndarray,
        cell: np.ndarray,
        birth_cell: np.ndarray,
        birth_frame: np.ndarray,
        previous: np.ndarray,
        seen: np.ndarray,
    ) -> np.ndarray:
        """(N, len(SCENE_COLUMNS)) what the scene tells about this frame's N detections,
        from earlier frames of its ``plane``, decayed to ``frame``: the clutter-map count
        (births of other tracks in the 3 x 3 cells around each ``cell``), births of other
        tracks per frame, detections per frame, and the hits and chances of established
        tracks. A detection's own track was born at ``birth_cell``, ``birth_frame`` (this
        frame: it is a birth, added after the reads), was last observed at ``previous`` and
        has been observed ``seen`` times before: from ``ESTABLISHED`` on, this detection
        adds one hit and ``frame - previous`` chances (added after the reads too)."""
        self._advance(frame)
        self.started[plane] = True
        age = frame - birth_frame
        # A track's own past is not clutter: its own birth is taken out.
        own = np.where(age > 0, self.decay**age, 0.0)
        nearby = (np.abs(cell - birth_cell) <= 1).all(axis=1)
        counts = np.maximum(self._nearby(plane, cell) - np.where(nearby, own, 0.0), 0.0)
        per_frame = np.maximum(self.frames[plane], 1.0)
        births = np.maximum(self.births[plane] - own, 0.0) / per_frame
        detections = self.detections[plane] / per_frame
        read = [counts, births, detections, self.hits[plane], self.chances[plane]]
        born = age == 0
        np.add.at(self.counts, (plane[born], cell[born, 0], cell[born, 1]), 1.0)
        self.births += np.bincount(plane[born], minlength=self.births.size)
        self.detections += np.bincount(plane, minlength=self.detections.size)
        established = seen >= ESTABLISHED
        size = self.hits.size
        self.hits += np.bincount(plane[established], minlength=size)
        gaps = (frame - previous)[established].astype(np.float64)
        self.chances += np.bincount(plane[established], weights=gaps, minlength=size)
        return np.column_stack(read)

    def _advance(self, frame: int) -> None:
        """Age every count to ``frame`` (frames only move forward); a started plane's frame
        count gains the frames in between."""
        if self.frame is not None and frame > self.frame:
            fade = self.decay ** (frame - self.frame)
            self.counts *= fade
            self.births *= fade
            self.detections *= fade
            self.hits *= fade
            self.chances *= fade
            # The frames self.frame .. frame - 1, each weighted by decay^(its age at frame).
            gained = self.decay * (1.0 - fade) / (1.0 - self.decay)
            self.frames = np.where(self.started, self.frames * fade + gained, 0.0)
        self.frame = frame

    def cells(self, position: np.ndarray) -> np.ndarray:
        """(N, 2) int (row, column) cell of positions (N, 2) px (x, y) in the tracker's frame,
        offset by the margin."""
        column = np.clip(position[:, 0] // CLUTTER_CELL, 0, self.shape[1] - 1)
        row = np.clip(position[:, 1] // CLUTTER_CELL, 0, self.shape[0] - 1)
        return np.column_stack([row, column]).astype(np.int64) + 1

    def _nearby(self, plane: np.ndarray, cell: np.ndarray) -> np.ndarray:
        """(N,) decayed births in the 3 x 3 cells around each ``cell`` of its ``plane``."""
        total = np.zeros(len(cell))
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                total += self.counts[plane, cell[:, 0] + dy, cell[:, 1] + dx]
        return total


class LiveTrackFeatures:
    """The hand-made track features of the live tracks, one frame at a time: their running
    statistics (``RunningFeatures``), their Kalman filters (``InnovationFilter``), the
    sequence's scene memory (``SceneGrid``) and where each track was born. Fixed memory per
    live track plus one grid per sequence: a frame costs the same at any age."""

    def __init__(
        self,
        frame_size: tuple[int, int],
        model_frame: tuple[int, int] | None = None,
        features: bool = True,
        kalman: bool = True,
        scene: bool = True,
    ):
        self.frame_size = (float(frame_size[0]), float(frame_size[1]))
        # (height, width) model frame / own frame: the batch maps tracks the same way.
        model_frame = self.frame_size if model_frame is None else model_frame
        self.ratio = np.asarray(model_frame, dtype=np.float64) / np.asarray(self.frame_size)
        # What runs: the running features (they read the other two), else the Kalman
        # filters (all a likelihood scorer reads) and the scene memory as asked; with
        # neither, only who was observed (all a hit counter reads).
        self.running = RunningFeatures() if features else None
        self.filters = kalman or features
        self.scene = scene or features
        self.kalman = InnovationFilter()
        self.grid = SceneGrid()
        self.birth_cell = np.zeros((0, 2), dtype=np.int64)
        self.birth_frame = np.zeros(0, dtype=np.int64)
        self.last_frame = np.zeros(0, dtype=np.int64)  # each track's latest observation
        self.seen = np.zeros(0, dtype=np.int64)  # and its number of observations

    @property
    def nbytes(self) -> int:
        kalman = self.kalman.state.nbytes + self.kalman.cov.nbytes + self.kalman.born.nbytes
        births = self.birth_cell.nbytes + self.birth_frame.nbytes
        births += self.last_frame.nbytes + self.seen.nbytes
        running = 0 if self.running is None else self.running.nbytes
        return running + kalman + births + self.grid.nbytes

    def add(self, count: int, frame: int) -> None:
        """``count`` new live slots, first seen at ``frame``."""
        if self.running is not None:
            self.running.add(count)
        self.kalman.add(count)
        self.birth_cell = np.concatenate([self.birth_cell, np.zeros((count, 2), np.int64)])
        self.birth_frame = np.concatenate([self.birth_frame, np.full(count, frame)])
        self.last_frame = np.concatenate([self.last_frame, np.full(count, frame)])
        self.seen = np.concatenate([self.seen, np.zeros(count, np.int64)])

    def keep(self, slots: np.ndarray) -> None:
        """Only the live slots at ``slots`` (ascending) stay."""
        if self.running is not None:
            self.running.keep(slots)
        self.kalman.keep(slots)
        self.birth_cell, self.birth_frame = self.birth_cell[slots], self.birth_frame[slots]
        self.last_frame, self.seen = self.last_frame[slots], self.seen[slots]

    def step(self, frame: int, slots: np.ndarray, xy: np.ndarray, area: np.ndarray) -> LiveFrame:
        """The live tracks at ``frame``: the rows of live ``slots`` at ``xy`` with box
        ``area`` (NaN without a box), in the sequence's px."""
        n = len(self.birth_frame)
        observed = np.zeros(n, dtype=bool)
        observed[slots] = True
        in_tracker = np.full((n, 2), np.nan)
        in_tracker[slots] = to_tracker_frame(xy, self.frame_size)
        loglik = self.kalman.step(in_tracker, observed) if self.filters else np.full(n, np.nan)
        if not self.scene:
            return LiveFrame(observed, loglik, None, None)
        scene = np.zeros((n, len(SCENE_COLUMNS)))
        if slots.size:
            cell = self.grid.cells(in_tracker[slots])
            new = frame == self.birth_frame[slots]
            self.birth_cell[slots[new]] = cell[new]
            plane = np.zeros(slots.size, dtype=np.int64)
            births = (self.birth_cell[slots], self.birth_frame[slots])
            history = (self.last_frame[slots], self.seen[slots])
            scene[slots] = self.grid.step(frame, plane, cell, *births, *history)
            self.last_frame[slots] = frame
            self.seen[slots] += 1
        if self.running is None:
            return LiveFrame(observed, loglik, None, scene)
        position, areas = np.full((n, 2), np.nan), np.full(n, np.nan)
        position[slots] = xy * self.ratio[::-1]
        areas[slots] = area * self.ratio.prod()
        features = self.running.step(observed, position, areas, loglik, scene)
        return LiveFrame(observed, loglik, features, scene)


@dataclass(frozen=True)
class LiveFrame:
    """One frame of the live tracks: which were observed, the innovation log-likelihood of
    each observation (NaN at a miss and at a track's first), ``HANDMADE_FEATURES`` and the
    ``SCENE_FEATURES`` of each observation (None when ``LiveTrackFeatures`` does not keep
    them)."""

    observed: np.ndarray
    loglik: np.ndarray
    features: np.ndarray | None
    scene: np.ndarray | None
