"""Scene simulation: which objects a synthetic video holds, where they are, and when they show.

The simulator exists to make the persistence task *honest*: no single attribute of a track may
give its label away. The first prototype leaked labels through duration, colour and a drawn
history trail; the second through the video start (persistent objects were there at frame 0,
false ones rarely), the frame border (only persistent objects touched it) and exactly-still
negatives. Here every kind of object (persistent, brief, clutter)

- draws its shape, size and colour from the same distributions;
- first shows in the video by the same law (already present at frame 0, in mid-life, or
  appearing at a uniformly drawn later frame), anywhere in the frame, the border included;
- is seen through the same sensor: the same per-frame detection probability and the same
  sub-pixel position noise;

and the kinds differ only in *how they behave over time*: persistent objects live long and
move smoothly (some nearly static); brief objects live 1-5 frames and move anywhere from not
at all to exactly like real objects; clutter lives long, sits still or drifts slowly, and
flickers. Each video draws its own operating point (detection probability, clutter density,
motion noise, ...) from documented ranges, stores it, and a corner of that space can be held
out of training altogether. With ``operating_point_drift`` P_D and clutter density wander
over a (long) video: every object is seen with the P_D of each frame, and false objects are
born where the density is, so a scene's operating point can be learnt from its past.

Every video has its own random stream, derived from ``(seed, video index)``, so a video's
bytes never depend on batching, chunking or worker count.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from tp_models.world.config import (
    BRIEF,
    CLUTTER,
    OPERATING_POINT_DTYPES,
    OPERATING_POINT_PADDING,
    PERSISTENT,
    SHAPES,
    VIDEO_TYPES,
    SceneConfig,
)
from tp_models.world.render import SHAPE_EXTENT, add_sensor_noise, render_video

# Candidate placements tried per object to keep objects apart (fixed, so the number of random
# draws per video never depends on the outcome).
_PLACEMENT_CANDIDATES = 16

# Entropy tag that separates the video-type shuffle from the per-video streams.
_TYPE_SHUFFLE_TAG = 0x7479_7065
# Spawn-key tag of a video's operating-point walk: a stream of its own, so a video without
# drift draws exactly what it drew before the walk existed.
_DRIFT_TAG = 0x6472_6966


@dataclass
class SceneBatch:
    """Ground truth, operating points and rendered pixels of B videos; every per-object table
    has K = SceneConfig.max_objects padded slots so they chunk like the videos in the store.

    videos      (B, T, H, W, 3) uint8
    masks       (B, T, H, W) SceneConfig.mask_dtype: 0 background, k + 1 = object slot k
                (topmost wins)
    video_type  (B,) int8, index into VIDEO_TYPES
    kind        (B, K) int8, index into OBJECT_KINDS, -1 = empty slot
    shape       (B, K) int8, index into SHAPES, -1 = empty slot
    radius      (B, K) float32, NaN = empty slot
    color       (B, K, 3) uint8, 0 = empty slot
    position    (B, K, T, 2) float32 sub-pixel centre (x = column, y = row), NaN where the
                object does not exist in that frame
    visible     (B, K, T) bool, drawn in that frame (exists and detected, clutter also on)
    op_*        (B,) the video's operating point, see OPERATING_POINT_DTYPES; (B, T) for
                DRIFTING_POINTS when the scene drifts (its value at every frame)

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
    op_p_detect: np.ndarray
    op_clutter_density: np.ndarray
    op_motion_noise: np.ndarray
    op_clutter_drift: np.ndarray
    op_brief_max_frames: np.ndarray
    op_brief_motion: np.ndarray
    op_speed_max: np.ndarray
    op_position_noise: np.ndarray
    op_noise_sigma: np.ndarray
    op_heldout: np.ndarray

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
    t, s, k = config.frames, config.size, config.max_objects
    return SceneBatch(
        videos=np.zeros((n_videos, t, s, s, 3), np.uint8),
        masks=np.zeros((n_videos, t, s, s), config.mask_dtype),
        video_type=np.zeros(n_videos, np.int8),
        kind=np.full((n_videos, k), -1, np.int8),
        shape=np.full((n_videos, k), -1, np.int8),
        radius=np.full((n_videos, k), np.nan, np.float32),
        color=np.zeros((n_videos, k, 3), np.uint8),
        position=np.full((n_videos, k, t, 2), np.nan, np.float32),
        visible=np.zeros((n_videos, k, t), bool),
        **{
            name: np.full(
                (n_videos, *config.point_frames(name)), OPERATING_POINT_PADDING[dtype], dtype
            )
            for name, dtype in OPERATING_POINT_DTYPES.items()
        },
    )


def simulate(
    config: SceneConfig, video_types: np.ndarray, video_indices: np.ndarray, seed: int
) -> SceneBatch:
    """Simulate and render one batch of videos.

    Video ``i`` uses only ``video_rng(seed, video_indices[i])`` (operating point first, then
    ground truth, then sensor noise), so its bytes depend on (config, seed, index, type)
    alone and any split of a dataset into chunks or workers yields the same store.
    """

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
        point = draw_operating_point(config, rng)
        for name, value in point.items():
            getattr(batch, name)[i] = value
        walk = operating_point_walk(config, point, seed, int(index))
        if config.drifts:
            batch.op_p_detect[i], batch.op_clutter_density[i] = walk
        _simulate_ground_truth(config, int(vtype), point, walk, rng, batch, i)
        render_video(
            batch.videos[i],
            batch.masks[i],
            batch.shape[i],
            batch.radius[i],
            batch.color[i],
            batch.position[i],
            batch.visible[i],
        )
        if point["op_noise_sigma"] > 0:
            add_sensor_noise(batch.videos[i], point["op_noise_sigma"], rng)
    return batch


def draw_operating_point(
    config: SceneConfig, rng: np.random.Generator
) -> dict[str, float | int | bool]:
    """One video's operating point, keyed like ``OPERATING_POINT_DTYPES``.

    Every value is drawn alike for every video type (a fixed number of draws, none of them
    depending on the type, so no operating point tells a video's type), and rounded to
    float32 before use, so the stored value is exactly the one the video was made with.
    """

    def uniform(name: str) -> float:
        return float(np.float32(rng.uniform(*getattr(config, name))))

    p_detect = uniform("p_detect_range")
    density = uniform("clutter_density_range")
    point: dict[str, float | int | bool] = {
        "op_p_detect": p_detect,
        "op_clutter_density": density,
        "op_motion_noise": uniform("motion_noise_range"),
        "op_clutter_drift": uniform("clutter_drift_range"),
        "op_brief_max_frames": int(
            rng.integers(config.brief_frames[0], config.brief_frames[1] + 1)
        ),
        "op_brief_motion": uniform("brief_motion_range"),
        "op_speed_max": uniform("speed_max_range"),
        "op_position_noise": uniform("position_noise_range"),
        "op_noise_sigma": config.noise_sigma if rng.random() < config.noisy_video_share else 0.0,
        "op_heldout": config.in_heldout_region(p_detect, density),
    }
    return point


def operating_point_walk(
    config: SceneConfig, point: Mapping[str, float | int | bool], seed: int, video_index: int
) -> tuple[np.ndarray, np.ndarray]:
    """(T,) P_D and (T,) clutter density of one video at every frame.

    Constant at the drawn point without drift; with ``operating_point_drift`` logit P_D and
    log density start at the drawn point and take a Gaussian step of that std every frame,
    reflected inside ``p_detect_range`` and ``clutter_density_range`` (the walk of `tp
    simulate-tracker --drift`). Drawn from a stream of the video's own (``_DRIFT_TAG``) and
    rounded to float32, so the stored values are the ones the video was made with.
    """
    t = config.frames
    p_detect = np.full(t, float(point["op_p_detect"]))
    density = np.full(t, float(point["op_clutter_density"]))
    if not config.drifts:
        return p_detect, density
    rng = np.random.default_rng(
        np.random.SeedSequence(int(seed), spawn_key=(int(video_index), _DRIFT_TAG))
    )
    steps = rng.normal(0.0, config.operating_point_drift, size=(2, t))
    steps[:, 0] = 0.0
    walk = np.cumsum(steps, axis=1)
    p_lo, p_hi = (np.log(p / (1.0 - p)) for p in config.p_detect_range)
    logit = _fold(np.log(p_detect / (1.0 - p_detect)) + walk[0], p_lo, p_hi)
    d_lo, d_hi = np.log(config.clutter_density_range)
    log_density = _fold(np.log(density) + walk[1], d_lo, d_hi)
    return (
        (1.0 / (1.0 + np.exp(-logit))).astype(np.float32).astype(np.float64),
        np.exp(log_density).astype(np.float32).astype(np.float64),
    )


@functools.lru_cache(maxsize=256)
def mean_frames_in_video(
    frames: int, p_present_at_start: float, lifetimes: tuple[int, int]
) -> float:
    """Expected frames an object exists inside the video, lifetime uniform in ``lifetimes``.

    Present at frame 0 (probability ``p_present_at_start``): its remaining life is uniform in
    1..L; otherwise it appears at a frame uniform in 1..T-1 and is cut by the video's end.
    """
    life = np.arange(lifetimes[0], lifetimes[1] + 1)[:, None]
    remaining = np.arange(1, lifetimes[1] + 1)[None, :]
    at_start = (np.minimum(remaining, frames) * (remaining <= life)).sum(axis=1) / life[:, 0]
    later = np.minimum(life, frames - np.arange(1, frames)[None, :]).mean(axis=1)
    return float((p_present_at_start * at_start + (1.0 - p_present_at_start) * later).mean())


def object_counts(
    config: SceneConfig,
    video_type: int,
    point: Mapping[str, float | int | bool],
    rng: np.random.Generator,
    density: np.ndarray | None = None,
) -> np.ndarray:
    """(persistent, brief, clutter) counts for one video of the given type.

    False objects are Poisson with means chosen so that the expected number of visible
    false objects per frame is ``op_clutter_density * size^2``; given ``density`` (T,), a
    drifting scene's density at every frame, the video's mean of it.
    """
    persistent_range = {PERSISTENT: config.persistent_count, 3: config.mixed_persistent_count}
    lo, hi = persistent_range.get(video_type, (0, 0))
    n_persistent = int(rng.integers(lo, hi + 1))
    brief_share = {BRIEF: 1.0, CLUTTER: 0.0}.get(video_type, config.mixed_brief_share)
    if density is None:
        false_frames = float(point["op_clutter_density"]) * config.size**2 * config.frames
    else:
        false_frames = float(density.sum()) * config.size**2
    p_detect = float(point["op_p_detect"])
    brief_life = (config.brief_frames[0], int(point["op_brief_max_frames"]))
    per_brief = p_detect * mean_frames_in_video(
        config.frames, config.p_present_at_start, brief_life
    )
    per_clutter = (
        p_detect
        * config.clutter_on_prob
        * mean_frames_in_video(config.frames, config.p_present_at_start, config.clutter_frames)
    )
    means = [false_frames * brief_share / per_brief, false_frames * (1 - brief_share) / per_clutter]
    n_brief, n_clutter = (int(n) for n in rng.poisson(means))
    if video_type == PERSISTENT:
        n_persistent = max(n_persistent, 1)
    elif video_type == BRIEF:
        n_brief = max(n_brief, 1)
    elif video_type == CLUTTER:  # the "noise" video type holds clutter
        n_clutter = max(n_clutter, 1)
    elif n_persistent + n_brief + n_clutter == 0:
        n_persistent = 1
    n_brief = min(n_brief, config.max_objects - n_persistent)
    n_clutter = min(n_clutter, config.max_objects - n_persistent - n_brief)
    return np.array([n_persistent, n_brief, n_clutter], np.int64)


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


def _displacement(v: np.ndarray) -> np.ndarray:
    """(n, 2) offsets from the first frame's position (zero at the first frame)."""
    d = np.zeros_like(v)
    np.cumsum(v[:-1], axis=0, out=d[1:])
    return d


def _velocities(
    config: SceneConfig, rng: np.random.Generator, n: int, speed_max: float, motion_noise: float
) -> np.ndarray:
    """(n, 2) per-frame velocity: constant turn rate plus a random walk, capped at top speed."""
    speed = rng.uniform(0.0, speed_max)
    heading = rng.uniform(0.0, 2.0 * np.pi)
    turn = rng.uniform(-config.turn_rate_max, config.turn_rate_max)
    angle = heading + turn * np.arange(n)
    v = speed * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    v += np.cumsum(rng.normal(0.0, motion_noise, size=(n, 2)), axis=0)
    norm = np.sqrt((v**2).sum(axis=1, keepdims=True))
    return v * np.minimum(1.0, max(speed_max, 1e-6) / np.maximum(norm, 1e-9))


def _lifespan(
    config: SceneConfig,
    rng: np.random.Generator,
    lifetimes: tuple[int, int],
    births: np.ndarray | None = None,
) -> tuple[int, int, int]:
    """(first frame in the video, frames in the video, age at the first frame).

    The same law for every kind: present at frame 0 in mid-life (age uniform over the
    lifetime, the burn-in before frame 0), or born at a frame uniform in 1..T-1; given
    ``births`` (T - 1,) (a false object in a drifting scene), at a frame drawn with those
    probabilities.
    """
    t_total = config.frames
    life = int(rng.integers(lifetimes[0], lifetimes[1] + 1))
    if rng.random() < config.p_present_at_start:
        age = int(rng.integers(0, life))
        return 0, min(life - age, t_total), age
    if births is None:
        first = int(rng.integers(1, t_total))
    else:
        first = 1 + int(rng.choice(t_total - 1, p=births))
    return first, min(life, t_total - first), 0


def _simulate_ground_truth(
    config: SceneConfig,
    video_type: int,
    point: Mapping[str, float | int | bool],
    walk: tuple[np.ndarray, np.ndarray],
    rng: np.random.Generator,
    batch: SceneBatch,
    i: int,
) -> None:
    """Fill row ``i`` of the batch's ground-truth tables (not the pixels); ``walk`` is the
    video's P_D and clutter density at every frame (``operating_point_walk``)."""
    t_total, edge = config.frames, config.size - 1.0
    p_detect, density = walk
    # A drifting scene's false objects are born where its clutter density is (frames 1..T-1).
    false_births = density[1:] / density[1:].sum() if config.drifts else None
    counts = object_counts(config, video_type, point, rng, density if config.drifts else None)
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
    speed_max, motion_noise = float(point["op_speed_max"]), float(point["op_motion_noise"])
    lifetimes = {
        PERSISTENT: config.persistent_frames,
        BRIEF: (config.brief_frames[0], int(point["op_brief_max_frames"])),
        CLUTTER: config.clutter_frames,
    }
    for j in range(n):
        kind = int(kinds[j])
        births = None if kind == PERSISTENT else false_births
        first, n_in, age = _lifespan(config, rng, lifetimes[kind], births)
        n_path = age + n_in
        if kind == CLUTTER:
            heading = rng.uniform(0.0, 2.0 * np.pi)
            drift = float(point["op_clutter_drift"]) * np.array([np.cos(heading), np.sin(heading)])
            velocity = np.broadcast_to(drift, (n_path, 2))
        else:
            velocity = _velocities(config, rng, n_path, speed_max, motion_noise)
            if kind == BRIEF:
                velocity = velocity * float(point["op_brief_motion"])
        # Born anywhere with its centre in the frame, the border included; walls reflect.
        starts = rng.uniform(0.0, edge, size=(_PLACEMENT_CANDIDATES, 1, 2))
        candidates = _fold(starts + _displacement(velocity)[None], 0.0, edge)[:, age:]
        span = slice(first, first + n_in)
        path = _choose(candidates, span, float(extents[j]), placed, config.min_gap)
        jitter = rng.normal(0.0, float(point["op_position_noise"]), size=(n_in, 2))
        positions[j, span] = _fold(path + jitter, 0.0, edge)
        seen = rng.random(n_in) < p_detect[first : first + n_in]
        if kind == CLUTTER:
            seen &= rng.random(n_in) < config.clutter_on_prob
        visible[j, span] = seen
        placed.append((positions[j], float(extents[j])))

    slots = rng.permutation(n)  # random slot (= draw) order: no kind information in the index
    batch.kind[i, slots] = kinds
    batch.shape[i, slots] = shapes
    batch.radius[i, slots] = radii
    batch.color[i, slots] = colors
    batch.position[i, slots] = positions
    batch.visible[i, slots] = visible


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
