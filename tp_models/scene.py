"""Scene simulation: which objects a synthetic video holds, where they are, and when they show.

The simulator exists to make the persistence task *honest*. The previous prototype leaked
its labels through duration, colour and a drawn history trail, so here every kind of object
(persistent, brief, clutter) draws its shape, size and colour from the same distributions,
and the kinds differ only in *how they behave over time*:

- persistent objects move smoothly (some nearly static), may be missed in single frames,
  and may enter late or leave early through the border;
- brief objects exist for 1-3 consecutive frames and half of them move like real objects;
- clutter sits at a (nearly) fixed place and flickers on and off for the whole video, so it
  can produce long but intermittent tracks.

Every video has its own random stream, derived from ``(seed, video index)``, so a video's
bytes never depend on batching, chunking or worker count.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tp_models.config import known_fields

VIDEO_TYPES = ("persistent", "brief", "noise", "mixed")
OBJECT_KINDS = ("persistent", "brief", "clutter")
SHAPES = ("circle", "square", "triangle")
MAX_OBJECTS = 16

PERSISTENT, BRIEF, CLUTTER = 0, 1, 2

# Half-extent of each shape relative to its radius. Shapes are equal-area with the circle of
# that radius (square half-side sqrt(pi)/2 * r, equilateral triangle circumradius
# sqrt(4 pi / (3 sqrt 3)) * r), so a blob's pixel area measures the radius, never the shape.
SQUARE_HALF_SIDE = math.sqrt(math.pi) / 2.0
TRIANGLE_CIRCUMRADIUS = math.sqrt(4.0 * math.pi / (3.0 * math.sqrt(3.0)))
SHAPE_EXTENT = np.array([1.0, SQUARE_HALF_SIDE * math.sqrt(2.0), TRIANGLE_CIRCUMRADIUS])

# Candidate placements tried per object to keep objects apart (fixed, so the number of random
# draws per video never depends on the outcome).
_PLACEMENT_CANDIDATES = 16
# Entropy tag that separates the video-type shuffle from the per-video streams.
_TYPE_SHUFFLE_TAG = 0x7479_7065


@dataclass(frozen=True)
class SceneConfig:
    """How synthetic videos are generated. Every knob is a difficulty or realism control.

    Ranges are ``(min, max)`` tuples, inclusive for counts and frame numbers.

    frames, size
        Video length ``T`` and square frame size ``H = W`` (RGB). 25 x 128 x 128 is the
        product's data spec.
    persistent_count, brief_count, clutter_count
        Objects per video in "persistent", "brief" and "noise" videos (1-3, 1-4, 2-6):
        several objects per video, so per-video labels cannot be read off a single blob.
    mixed_persistent_count, mixed_brief_count, mixed_clutter_count
        The same for "mixed" videos (1-2 persistent + 1-3 brief + 2-4 clutter), the hardest
        type: every kind present at once.
    radius_range
        Object size in px, uniform (3-7), *shared by all kinds*. 3 px is still a 28-pixel
        blob a threshold detector finds; 7 px keeps objects mostly apart at 128 px.
    saturation_range, value_range
        HSV saturation and value of object colours (hue uniform), *shared by all kinds*.
        Saturated (>= 0.6) so colours differ, and value >= 0.75, so the brightest channel of
        every object is >= 191 grey levels, far above the black background and noise.
    speed_range
        Initial speed in px/frame, uniform (0-3), also a hard cap on speed. Starting at 0 makes
        some persistent objects nearly static, so "it moves" is no giveaway.
    accel_sigma
        Std of the random per-frame velocity change in px/frame^2 (0.05): constant-velocity
        *ish* motion that a Kalman filter tracks but cannot predict perfectly.
    turn_rate_max
        Each moving object turns at a constant rate, uniform in +-this (0.12 rad/frame,
        up to ~170 degrees over 25 frames): curved, not straight, paths.
    p_miss
        Per-frame probability a persistent object is not drawn (0.1): real detectors miss,
        so a persistent track has gaps too.
    p_enter_late, p_leave_early
        Probability a persistent object enters through the border in the first third of the
        video, or leaves in the last third (0.25 each): persistent tracks need not span the
        whole video. An object that does both enters through the border and vanishes in place.
    brief_frames
        How many consecutive frames a brief object is visible (1-3), placed anywhere in time.
    p_brief_moves
        Probability a brief object moves with the persistent motion model (0.5) instead of
        standing still, so motion alone does not separate brief from persistent.
    clutter_on_prob
        Per-frame probability a clutter blob is drawn (0.35), independently over the whole
        video: long but intermittent tracks, so track length alone is not the label.
    clutter_jitter
        Std of a clutter blob's per-frame position jitter in px (0.3): nearly fixed.
    min_gap
        Desired free space between objects in px (2). Placement tries several candidates
        and keeps the first that respects it; moving objects may still cross (and overlap is
        resolved in the mask: the topmost object wins).
    noise_sigma
        Additive Gaussian sensor noise in grey levels (0). At 0 the background is exactly
        black, which compresses ~500x in the store.
    """

    frames: int = 25
    size: int = 128
    persistent_count: tuple[int, int] = (1, 3)
    brief_count: tuple[int, int] = (1, 4)
    clutter_count: tuple[int, int] = (2, 6)
    mixed_persistent_count: tuple[int, int] = (1, 2)
    mixed_brief_count: tuple[int, int] = (1, 3)
    mixed_clutter_count: tuple[int, int] = (2, 4)
    radius_range: tuple[float, float] = (3.0, 7.0)
    saturation_range: tuple[float, float] = (0.6, 1.0)
    value_range: tuple[float, float] = (0.75, 1.0)
    speed_range: tuple[float, float] = (0.0, 3.0)
    accel_sigma: float = 0.05
    turn_rate_max: float = 0.12
    p_miss: float = 0.1
    p_enter_late: float = 0.25
    p_leave_early: float = 0.25
    brief_frames: tuple[int, int] = (1, 3)
    p_brief_moves: float = 0.5
    clutter_on_prob: float = 0.35
    clutter_jitter: float = 0.3
    min_gap: float = 2.0
    noise_sigma: float = 0.0

    def validate(self) -> None:
        """Raise ``ValueError`` with one sentence naming the parameter to change.

        Runs before any work is scheduled, so a bad parameter fails fast and clearly instead
        of producing a broken store hours later.
        """
        if self.frames < 2:
            raise ValueError(f"frames must be at least 2 (got {self.frames})")
        if self.size < 32:
            raise ValueError(f"size must be at least 32 (got {self.size})")
        count_fields = (
            "persistent_count",
            "brief_count",
            "clutter_count",
            "mixed_persistent_count",
            "mixed_brief_count",
            "mixed_clutter_count",
        )
        for name in count_fields:
            lo, hi = _pair(self, name)
            if lo < 0 or lo != int(lo) or hi != int(hi):
                raise ValueError(f"{name} must be whole numbers >= 0 (got {(lo, hi)})")
        for name in ("persistent_count", "brief_count", "clutter_count"):
            if _pair(self, name)[1] < 1:
                raise ValueError(f"{name} maximum must be at least 1 (got {_pair(self, name)})")
        for name in ("radius_range", "saturation_range", "value_range", "speed_range"):
            _pair(self, name)
        mixed_max = sum(
            _pair(self, n)[1]
            for n in ("mixed_persistent_count", "mixed_brief_count", "mixed_clutter_count")
        )
        for name, total in (
            ("persistent_count", self.persistent_count[1]),
            ("brief_count", self.brief_count[1]),
            ("clutter_count", self.clutter_count[1]),
            ("mixed_*_count", mixed_max),
        ):
            if total > MAX_OBJECTS:
                raise ValueError(
                    f"{name} allows {total} objects per video; lower it to at most "
                    f"MAX_OBJECTS = {MAX_OBJECTS}"
                )
        if mixed_max < 1:
            raise ValueError("mixed_*_count maxima must allow at least 1 object per video")
        r_lo, r_hi = self.radius_range
        if r_lo < 1.0:
            raise ValueError(f"radius_range minimum must be at least 1 px (got {r_lo})")
        max_extent = float(r_hi * SHAPE_EXTENT.max())
        if self.size < 4.0 * max_extent + 8.0:
            raise ValueError(
                f"size {self.size} is too small for radius_range maximum {r_hi}; use size >= "
                f"{math.ceil(4.0 * max_extent + 8.0)} or a smaller radius_range"
            )
        for name in ("saturation_range", "value_range"):
            lo, hi = _pair(self, name)
            if lo < 0.0 or hi > 1.0:
                raise ValueError(f"{name} must lie within [0, 1] (got {(lo, hi)})")
        if self.value_range[0] < 0.3:
            raise ValueError(
                f"value_range minimum must be at least 0.3 so objects stand out from the black "
                f"background (got {self.value_range[0]})"
            )
        s_lo, s_hi = self.speed_range
        if s_lo < 0.0:
            raise ValueError(f"speed_range minimum must be >= 0 (got {s_lo})")
        if s_hi > self.size / 8.0:
            raise ValueError(
                f"speed_range maximum {s_hi} px/frame is too fast for size {self.size}; "
                f"use at most size / 8 = {self.size / 8.0:g}"
            )
        b_lo, b_hi = _pair(self, "brief_frames")
        if b_lo < 1 or b_lo != int(b_lo) or b_hi != int(b_hi):
            raise ValueError(f"brief_frames must be whole numbers >= 1 (got {(b_lo, b_hi)})")
        if b_hi > self.frames:
            raise ValueError(f"brief_frames maximum {b_hi} must be at most frames ({self.frames})")
        for name in (
            "p_miss",
            "p_enter_late",
            "p_leave_early",
            "p_brief_moves",
            "clutter_on_prob",
        ):
            p = getattr(self, name)
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1] (got {p})")
        for name in ("accel_sigma", "turn_rate_max", "clutter_jitter", "min_gap", "noise_sigma"):
            v = getattr(self, name)
            if not (v >= 0.0 and math.isfinite(v)):
                raise ValueError(f"{name} must be a finite number >= 0 (got {v})")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (tuples become lists), stored in Zarr attrs so a store says
        how it was made."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            out[f.name] = list(v) if isinstance(v, tuple) else v
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SceneConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error, so a typo is not ignored."""
        kwargs = {
            k: tuple(v) if isinstance(v, list | tuple) else v
            for k, v in known_fields(cls, d).items()
        }
        return cls(**kwargs)


def _pair(config: SceneConfig, name: str) -> tuple[float, float]:
    value = getattr(config, name)
    if len(value) != 2:
        raise ValueError(f"{name} must be a (min, max) pair (got {value})")
    lo, hi = value
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"{name} must be finite (got {value})")
    if lo > hi:
        raise ValueError(f"{name} minimum must not exceed its maximum (got {value})")
    return lo, hi


@dataclass
class SceneBatch:
    """Ground truth and rendered pixels of B videos; every per-object table has K = MAX_OBJECTS
    padded slots so they chunk like the videos in the store.

    videos      (B, T, H, W, 3) uint8
    masks       (B, T, H, W) uint8: 0 background, k + 1 = object slot k (topmost wins)
    video_type  (B,) int8, index into VIDEO_TYPES
    kind        (B, K) int8, index into OBJECT_KINDS, -1 = empty slot
    shape       (B, K) int8, index into SHAPES, -1 = empty slot
    radius      (B, K) float32, NaN = empty slot
    color       (B, K, 3) uint8, 0 = empty slot
    position    (B, K, T, 2) float32 sub-pixel centre (x = column, y = row), NaN where the
                object does not exist in that frame
    visible     (B, K, T) bool, drawn in that frame (exists, not missed, centre inside frame)

    Slots are in random order within a video (slot index carries no kind information); draw
    order is slot order, so a higher slot is drawn on top.
    """

    videos: np.ndarray
    masks: np.ndarray
    video_type: np.ndarray
    kind: np.ndarray
    shape: np.ndarray
    radius: np.ndarray
    color: np.ndarray
    position: np.ndarray
    visible: np.ndarray

    def __len__(self) -> int:
        return int(self.video_type.shape[0])


def assign_video_types(counts: Sequence[int], seed: int) -> np.ndarray:
    """Video type codes for a whole dataset: ``counts`` in VIDEO_TYPES order, interleaved.

    Rather than a plain shuffle, each type's videos are spread evenly over the index range
    (stratified jitter), so *every* chunk of consecutive videos holds close to the dataset's
    mix of types; a small test chunk or the first shard of a run is then representative.
    """
    counts = [int(c) for c in counts]
    if len(counts) != len(VIDEO_TYPES):
        raise ValueError(f"counts must have {len(VIDEO_TYPES)} entries, one per VIDEO_TYPES")
    if any(c < 0 for c in counts):
        raise ValueError(f"counts must be >= 0 (got {counts})")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), _TYPE_SHUFFLE_TAG]))
    types = np.repeat(np.arange(len(counts), dtype=np.int8), counts)
    keys = np.concatenate(
        [(np.arange(c) + rng.random(c)) / c for c in counts if c > 0] or [np.zeros(0)]
    )
    return types[np.argsort(keys, kind="stable")]


def video_rng(seed: int, video_index: int) -> np.random.Generator:
    """The random stream of one video: depends only on the dataset seed and the video index."""
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(int(video_index),)))


def empty_batch(config: SceneConfig, n_videos: int) -> SceneBatch:
    """A batch filled with the padding values (black frames, -1 / NaN / 0 tables)."""
    t, s, k = config.frames, config.size, MAX_OBJECTS
    return SceneBatch(
        videos=np.zeros((n_videos, t, s, s, 3), np.uint8),
        masks=np.zeros((n_videos, t, s, s), np.uint8),
        video_type=np.zeros(n_videos, np.int8),
        kind=np.full((n_videos, k), -1, np.int8),
        shape=np.full((n_videos, k), -1, np.int8),
        radius=np.full((n_videos, k), np.nan, np.float32),
        color=np.zeros((n_videos, k, 3), np.uint8),
        position=np.full((n_videos, k, t, 2), np.nan, np.float32),
        visible=np.zeros((n_videos, k, t), bool),
    )


def simulate(
    config: SceneConfig, video_types: np.ndarray, video_indices: np.ndarray, seed: int
) -> SceneBatch:
    """Simulate and render one batch of videos.

    Video ``i`` uses only ``video_rng(seed, video_indices[i])`` (ground truth first, then
    sensor noise), so its bytes depend on (config, seed, index, type) alone and any split of
    a dataset into chunks or workers yields the same store.
    """
    from tp_models.render import add_sensor_noise, render_video

    config.validate()
    video_types = np.asarray(video_types)
    video_indices = np.asarray(video_indices)
    if video_types.shape != video_indices.shape or video_types.ndim != 1:
        raise ValueError("video_types and video_indices must be 1-D arrays of the same length")
    if video_types.size and (video_types.min() < 0 or video_types.max() >= len(VIDEO_TYPES)):
        raise ValueError(f"video_types must be codes 0..{len(VIDEO_TYPES) - 1}")
    batch = empty_batch(config, len(video_types))
    for i, (vtype, index) in enumerate(zip(video_types, video_indices, strict=True)):
        rng = video_rng(seed, int(index))
        batch.video_type[i] = vtype
        _simulate_ground_truth(config, int(vtype), rng, batch, i)
        render_video(
            batch.videos[i],
            batch.masks[i],
            batch.shape[i],
            batch.radius[i],
            batch.color[i],
            batch.position[i],
            batch.visible[i],
        )
        if config.noise_sigma > 0:
            add_sensor_noise(batch.videos[i], config.noise_sigma, rng)
    return batch


def object_counts(config: SceneConfig, video_type: int, rng: np.random.Generator) -> np.ndarray:
    """(persistent, brief, clutter) counts for one video of the given type."""
    if video_type == 0:
        ranges = [config.persistent_count, (0, 0), (0, 0)]
    elif video_type == 1:
        ranges = [(0, 0), config.brief_count, (0, 0)]
    elif video_type == 2:
        ranges = [(0, 0), (0, 0), config.clutter_count]
    else:
        ranges = [
            config.mixed_persistent_count,
            config.mixed_brief_count,
            config.mixed_clutter_count,
        ]
    lo = np.array([r[0] for r in ranges], np.int64)
    hi = np.array([r[1] for r in ranges], np.int64)
    counts = rng.integers(lo, hi + 1)
    if video_type in (0, 1, 2):
        # a persistent / brief / noise video must hold at least one object of its kind
        counts[video_type] = max(int(counts[video_type]), 1)
    elif counts.sum() == 0:
        counts[0] = 1
    return counts


def hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Vectorised HSV (all in [0, 1]) to RGB uint8; kept here to avoid a colour dependency."""
    h6 = (np.asarray(h, np.float64) % 1.0) * 6.0
    # standard piecewise-linear hue channels: each channel is a clipped triangle wave
    r = np.clip(np.abs(h6 - 3.0) - 1.0, 0.0, 1.0)
    g = np.clip(2.0 - np.abs(h6 - 2.0), 0.0, 1.0)
    b = np.clip(2.0 - np.abs(h6 - 4.0), 0.0, 1.0)
    rgb = np.stack([r, g, b], axis=-1)
    s = np.asarray(s, np.float64)[..., None]
    v = np.asarray(v, np.float64)[..., None]
    return np.round(255.0 * v * (1.0 - s + s * rgb)).astype(np.uint8)


def _fold(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Reflect coordinates into [lo, hi]: objects bounce off the walls, in closed form."""
    span = np.maximum(hi - lo, 1e-6)
    y = np.mod(x - lo, 2.0 * span)
    return lo + np.where(y > span, 2.0 * span - y, y)


def _velocities(
    config: SceneConfig, rng: np.random.Generator, n: int, speed: float, heading: float
) -> np.ndarray:
    """(n, 2) per-frame velocity: constant turn rate plus a random walk, capped at max speed."""
    turn = rng.uniform(-config.turn_rate_max, config.turn_rate_max)
    angle = heading + turn * np.arange(n)
    v = speed * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    v += np.cumsum(rng.normal(0.0, config.accel_sigma, size=(n, 2)), axis=0)
    norm = np.sqrt((v**2).sum(axis=1, keepdims=True))
    cap = max(config.speed_range[1], 1e-6)
    return v * np.minimum(1.0, cap / np.maximum(norm, 1e-9))


def _displacement(v: np.ndarray) -> np.ndarray:
    """(n, 2) offsets from the first frame's position (zero at the first frame)."""
    d = np.zeros_like(v)
    np.cumsum(v[:-1], axis=0, out=d[1:])
    return d


def _interior_paths(
    config: SceneConfig, rng: np.random.Generator, n: int, extent: float, moves: bool
) -> np.ndarray:
    """(C, n, 2) candidate paths starting anywhere inside the frame, bouncing off the walls."""
    lo, hi = extent, config.size - 1.0 - extent
    starts = rng.uniform(lo, hi, size=(_PLACEMENT_CANDIDATES, 1, 2))
    if not moves:
        return np.broadcast_to(starts, (_PLACEMENT_CANDIDATES, n, 2))
    speed = rng.uniform(*config.speed_range)
    disp = _displacement(_velocities(config, rng, n, speed, rng.uniform(0.0, 2.0 * np.pi)))
    return _fold(starts + disp[None], lo, hi)


def _entering_paths(
    config: SceneConfig, rng: np.random.Generator, n: int, extent: float
) -> np.ndarray:
    """(C, n, 2) candidate paths entering through a random border edge at their first frame.

    The first frame has the centre just outside the frame (exists, not visible); the path
    bounces off walls only once it is fully inside, so it really comes in through the border.
    Time-reversed, the same path leaves through the border.
    """
    size = float(config.size)
    lo, hi = extent, size - 1.0 - extent
    edge = int(rng.integers(4))  # 0 left, 1 right, 2 top, 3 bottom
    speed = max(rng.uniform(*config.speed_range), min(1.0, config.speed_range[1]))
    inward = (0.0, np.pi, 0.5 * np.pi, -0.5 * np.pi)[edge]
    heading = inward + rng.uniform(-np.pi / 4.0, np.pi / 4.0)
    disp = _displacement(_velocities(config, rng, n, speed, heading))
    along = rng.uniform(lo, hi, size=_PLACEMENT_CANDIDATES)
    outside = -0.5 - rng.uniform(0.0, speed, size=_PLACEMENT_CANDIDATES)
    across = outside if edge in (0, 2) else size - 1.0 - outside
    xy = (across, along) if edge in (0, 1) else (along, across)
    starts = np.stack(xy, axis=1)[:, None, :]
    raw = starts + disp[None]
    inside = np.all((raw >= lo) & (raw <= hi), axis=2)
    entered = np.logical_or.accumulate(inside, axis=1)[..., None]
    return np.where(entered, _fold(raw, lo, hi), raw)


def _choose(
    candidates: np.ndarray,
    frames: slice,
    extent: float,
    placed: list[tuple[np.ndarray, float]],
    gap: float,
) -> np.ndarray:
    """The first candidate path that keeps ``gap`` px from every placed object, else the best."""
    if not placed:
        return candidates[0]
    margins = np.full(candidates.shape[0], np.inf)
    for path, other_extent in placed:
        other = path[frames]
        both = np.isfinite(other[:, 0])
        if not both.any():
            continue
        d = np.sqrt(((candidates[:, both] - other[None, both]) ** 2).sum(axis=2)).min(axis=1)
        margins = np.minimum(margins, d - extent - other_extent)
    ok = np.flatnonzero(margins >= gap)
    return candidates[ok[0] if ok.size else int(np.argmax(margins))]


def _simulate_ground_truth(
    config: SceneConfig, video_type: int, rng: np.random.Generator, batch: SceneBatch, i: int
) -> None:
    """Fill row ``i`` of the batch's ground-truth tables (not the pixels)."""
    t_total = config.frames
    counts = object_counts(config, video_type, rng)
    kinds = np.repeat(np.array([PERSISTENT, CLUTTER, BRIEF], np.int8), counts[[0, 2, 1]])
    n = kinds.size
    shapes = rng.integers(0, len(SHAPES), size=n).astype(np.int8)
    radii = rng.uniform(*config.radius_range, size=n)
    colors = hsv_to_rgb(
        rng.random(n), rng.uniform(*config.saturation_range, n), rng.uniform(*config.value_range, n)
    )
    extents = radii * SHAPE_EXTENT[shapes]
    positions = np.full((n, t_total, 2), np.nan)
    visible = np.zeros((n, t_total), bool)
    placed: list[tuple[np.ndarray, float]] = []
    third = max(1, t_total // 3)
    for j in range(n):
        ext = float(extents[j])
        if kinds[j] == PERSISTENT:
            enters = rng.random() < config.p_enter_late
            leaves = rng.random() < config.p_leave_early
            first = int(rng.integers(1, third + 1)) if enters else 0
            last = int(rng.integers(t_total - 1 - third, t_total - 1)) if leaves else t_total - 1
            if last < first:
                last, leaves = t_total - 1, False
            if enters:
                span = slice(first, t_total)
                cands = _entering_paths(config, rng, t_total - first, ext)
            elif leaves:
                span = slice(0, last + 1)
                cands = _entering_paths(config, rng, last + 1, ext)[:, ::-1]
            else:
                span = slice(0, t_total)
                cands = _interior_paths(config, rng, t_total, ext, moves=True)
            path = _choose(cands, span, ext, placed, config.min_gap)
            positions[j, span] = path
            positions[j, last + 1 :] = np.nan
            drawn = rng.random(t_total) >= config.p_miss
            visible[j] = drawn & np.isfinite(positions[j, :, 0])
        elif kinds[j] == CLUTTER:
            cands = _interior_paths(config, rng, t_total, ext, moves=False)
            anchor = _choose(cands, slice(0, t_total), ext, placed, config.min_gap)
            jitter = rng.normal(0.0, config.clutter_jitter, size=(t_total, 2))
            positions[j] = np.clip(anchor + jitter, ext, config.size - 1.0 - ext)
            visible[j] = rng.random(t_total) < config.clutter_on_prob
        else:
            duration = int(rng.integers(config.brief_frames[0], config.brief_frames[1] + 1))
            start = int(rng.integers(0, t_total - duration + 1))
            moves = bool(rng.random() < config.p_brief_moves)
            span = slice(start, start + duration)
            cands = _interior_paths(config, rng, duration, ext, moves=moves)
            positions[j, span] = _choose(cands, span, ext, placed, config.min_gap)
            visible[j, span] = True
        placed.append((positions[j], ext))

    # a pixel centre sits at an integer coordinate, so the frame spans [-0.5, size - 0.5)
    inside = np.all((positions >= -0.5) & (positions < config.size - 0.5), axis=2)
    visible &= inside

    slots = rng.permutation(n)  # random slot (= draw) order: no kind information in the index
    batch.kind[i, slots] = kinds
    batch.shape[i, slots] = shapes
    batch.radius[i, slots] = radii
    batch.color[i, slots] = colors
    batch.position[i, slots] = positions
    batch.visible[i, slots] = visible
