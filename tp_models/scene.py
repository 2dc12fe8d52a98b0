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
out of training altogether.

Every video has its own random stream, derived from ``(seed, video index)``, so a video's
bytes never depend on batching, chunking or worker count.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
from annotated_types import Ge

from tp_models.config import known_fields

VIDEO_TYPES = ("persistent", "brief", "noise", "mixed")
OBJECT_KINDS = ("persistent", "brief", "clutter")
SHAPES = ("circle", "square", "triangle")
# Slots per video. A brief-only video at the highest clutter density with 1-frame brief
# objects asks for ~30 objects (the count is capped here; see SceneConfig.clutter_density_range).
MAX_OBJECTS = 32

PERSISTENT, BRIEF, CLUTTER = 0, 1, 2

# Half-extent of each shape relative to its radius. Shapes are equal-area with the circle of
# that radius (square half-side sqrt(pi)/2 * r, equilateral triangle circumradius
# sqrt(4 pi / (3 sqrt 3)) * r), so a blob's pixel area measures the radius, never the shape.
SQUARE_HALF_SIDE = math.sqrt(math.pi) / 2.0
TRIANGLE_CIRCUMRADIUS = math.sqrt(4.0 * math.pi / (3.0 * math.sqrt(3.0)))
SHAPE_EXTENT = np.array([1.0, SQUARE_HALF_SIDE * math.sqrt(2.0), TRIANGLE_CIRCUMRADIUS])

# The operating point each video draws, stored per video under these names (shape (N,)).
# Units: p_detect a probability per object and frame; clutter_density false objects
# (brief + clutter) visible per pixel^2 per frame, 0 in persistent-only videos; motion_noise
# px/frame^2 (std of the per-frame velocity change); clutter_drift and speed_max px/frame;
# brief_max_frames frames; brief_motion a fraction (0 static, 1 like a persistent object);
# position_noise px (std per axis); noise_sigma grey levels; heldout: in the held-out region.
OPERATING_POINT_DTYPES: dict[str, str] = {
    "op_p_detect": "float32",
    "op_clutter_density": "float32",
    "op_motion_noise": "float32",
    "op_clutter_drift": "float32",
    "op_brief_max_frames": "int8",
    "op_brief_motion": "float32",
    "op_speed_max": "float32",
    "op_position_noise": "float32",
    "op_noise_sigma": "float32",
    "op_heldout": "bool",
}
OPERATING_POINT_PADDING = {"float32": float("nan"), "int8": -1, "bool": False}

# Candidate placements tried per object to keep objects apart (fixed, so the number of random
# draws per video never depends on the outcome).
_PLACEMENT_CANDIDATES = 16
# Entropy tag that separates the video-type shuffle from the per-video streams.
_TYPE_SHUFFLE_TAG = 0x7479_7065


@dataclass(frozen=True)
class SceneConfig:
    """How synthetic videos are generated. Every knob is a difficulty or realism control.

    Ranges are ``(min, max)`` tuples, inclusive for counts and frame numbers. ``*_range``
    knobs marked "per video" are the operating point: each video draws one value uniformly
    from the range and stores it (``OPERATING_POINT_DTYPES``), so results can be reported
    per operating point and a model must work across the whole space, not at one setting.

    frames, size
        Video length ``T`` and square frame size ``H = W`` (RGB). 25 x 128 x 128 is the
        product's data spec.
    persistent_count, mixed_persistent_count
        Persistent objects in "persistent" videos (1-3) and in "mixed" videos (1-2). False
        objects are not counted by hand: ``clutter_density_range`` sets how many there are.
    radius_range
        Object size in px, uniform (3-7), *shared by all kinds*. 3 px is still a 28-pixel
        blob a threshold detector finds; 7 px keeps objects mostly apart at 128 px.
    saturation_range, value_range
        HSV saturation and value of object colours (hue uniform), *shared by all kinds*.
        Saturated (>= 0.6) so colours differ, and value >= 0.75, so the brightest channel of
        every object is >= 191 grey levels, far above the black background and noise.
    p_present_at_start
        Steady-state start: the probability that an object is already there at frame 0
        (0.3), for *every* kind alike; otherwise it first appears at a frame drawn uniformly
        from 1..T-1. An object present at frame 0 is in mid-life: its age at frame 0 is
        drawn uniformly over its lifetime and its path, flicker and remaining life are
        simulated from its birth before frame 0 (a burn-in), so it can be anywhere, moving,
        or about to vanish. The law is shared on purpose: in a true steady state (equal
        counts at every frame) long-lived kinds would be over-represented at frame 0
        (length-biased sampling), and the first frame would tell persistent from brief.
    persistent_frames, clutter_frames, brief_frames
        Lifetimes in frames, uniform integers: persistent 30-120 and clutter 15-100 (so
        both often outlive the video), brief 1..``op_brief_max_frames``, where each video
        draws that maximum from ``brief_frames`` (1-5): some videos hold only 1-frame
        flashes, others brief objects of up to 5 frames. ``brief_frames`` must stay below
        ``persistent_frames``: brief and persistent differ in how long they live, by design.
    p_detect_range
        Per video: the probability that an existing object of *any* kind is detected (drawn)
        in a frame (0.75-0.98): the sensor misses real and false objects alike, so a
        persistent track has gaps and a brief one may be seen only once.
    clutter_density_range
        Per video: false objects (brief + clutter) visible per pixel^2 per frame, the
        classical clutter density beta_FA (5e-6 to 6e-5, i.e. 0.08-1.0 false objects per
        128 x 128 frame). The number of brief and clutter objects is drawn (Poisson) so
        that the *expected* density matches it, given the video's lifetimes, detection
        probability and flicker; counts are capped at ``MAX_OBJECTS``, which binds only for
        brief-only videos at the top of the range with 1-frame brief objects, and "brief" and
        "noise" videos hold at least one object of their kind (so at the lowest densities
        they show more than asked for). Persistent videos hold no false objects and store 0.
    mixed_brief_share
        Share of a "mixed" video's false-object density made by brief objects (0.5); the rest
        is clutter. "brief" videos hold brief objects only, "noise" videos clutter only.
    clutter_on_prob
        Per-frame probability a clutter object is on (0.4), independently over its life (and
        then detected with the video's P_D): long but intermittent tracks, so track length
        alone is not the label. Must be > 0 (clutter that never shows is no clutter).
    clutter_drift_range
        Per video: clutter motion in px/frame (0-0.3), from fixed to slowly drifting; each
        clutter object drifts at that speed in its own constant direction.
    brief_motion_range
        Per video: how brief objects move, as a fraction of persistent motion (0-1): 0 static,
        1 exactly the persistent motion law, so motion alone does not separate the kinds.
    speed_max_range
        Per video: top speed in px/frame (1-3). Each moving object starts at a speed uniform
        in [0, top] (some persistent objects are nearly static) and never exceeds it.
    motion_noise_range
        Per video: std of the random per-frame velocity change in px/frame^2 (0.02-0.12):
        constant-velocity *ish* motion that a Kalman filter tracks but cannot predict.
    turn_rate_max
        Each moving object turns at a constant rate, uniform in +-this (0.12 rad/frame,
        up to ~170 degrees over 25 frames): curved, not straight, paths.
    position_noise_range
        Per video: std of the sub-pixel position noise in px (0.1-0.5) added to *every*
        object's position in every frame, false or real. Real sensors never report a static
        object at exactly the same place twice; without it static negatives made exactly-zero
        steps that persistent objects never made.
    min_gap
        Desired free space between objects in px (2). Placement tries several candidates
        and keeps the first that respects it; moving objects may still cross (and overlap is
        resolved in the mask: the topmost object wins).
    noise_sigma, noisy_video_share
        Additive Gaussian pixel noise in grey levels (0) for a share of the videos (1.0).
        Noise is incompressible (sigma 3 on every video stores ~0.9 GB against ~6 MB
        clean), so the default world is clean; give a minority of videos noise with e.g.
        ``noise_sigma=3, noisy_video_share=0.02``. Each video stores its own sigma.
    heldout_p_detect_below, heldout_clutter_density_above
        The held-out region: videos with P_D below the first *and* clutter density above the
        second (0.82 and 4e-5: the hard corner, ~11 % of videos with false objects) are
        flagged ``op_heldout``; ``splits.split_videos`` puts them in their own "heldout"
        split that training never sees, to measure generalisation to an unseen operating
        point. The region must cover part of the space, neither none nor all of it.
    """

    frames: Annotated[int, Ge(2)] = 25
    size: Annotated[int, Ge(32)] = 128
    persistent_count: tuple[int, int] = (1, 3)
    mixed_persistent_count: tuple[int, int] = (1, 2)
    radius_range: tuple[float, float] = (3.0, 7.0)
    saturation_range: tuple[float, float] = (0.6, 1.0)
    value_range: tuple[float, float] = (0.75, 1.0)
    p_present_at_start: float = 0.3
    persistent_frames: tuple[int, int] = (30, 120)
    clutter_frames: tuple[int, int] = (15, 100)
    brief_frames: tuple[int, int] = (1, 5)
    p_detect_range: tuple[float, float] = (0.75, 0.98)
    clutter_density_range: tuple[float, float] = (5e-6, 6e-5)
    mixed_brief_share: float = 0.5
    clutter_on_prob: float = 0.4
    clutter_drift_range: tuple[float, float] = (0.0, 0.3)
    brief_motion_range: tuple[float, float] = (0.0, 1.0)
    speed_max_range: tuple[float, float] = (1.0, 3.0)
    motion_noise_range: tuple[float, float] = (0.02, 0.12)
    turn_rate_max: float = 0.12
    position_noise_range: tuple[float, float] = (0.1, 0.5)
    min_gap: float = 2.0
    noise_sigma: float = 0.0
    noisy_video_share: float = 1.0
    heldout_p_detect_below: float = 0.82
    heldout_clutter_density_above: float = 4e-5

    def validate(self) -> None:
        """Raise ``ValueError`` with one sentence naming the parameter to change.

        Runs before any work is scheduled, so a bad parameter fails fast and clearly instead
        of producing a broken store hours later.
        """
        if self.frames < 2:
            raise ValueError(f"frames must be at least 2 (got {self.frames})")
        if self.size < 32:
            raise ValueError(f"size must be at least 32 (got {self.size})")
        for name in ("persistent_count", "mixed_persistent_count"):
            lo, hi = _pair(self, name)
            if lo < 0 or lo != int(lo) or hi != int(hi):
                raise ValueError(f"{name} must be whole numbers >= 0 (got {(lo, hi)})")
            if hi > MAX_OBJECTS:
                raise ValueError(
                    f"{name} allows {hi} objects per video; lower it to at most "
                    f"MAX_OBJECTS = {MAX_OBJECTS}"
                )
        if self.persistent_count[1] < 1:
            raise ValueError(
                f"persistent_count maximum must be at least 1 (got {self.persistent_count})"
            )
        for name in ("persistent_frames", "clutter_frames", "brief_frames"):
            lo, hi = _pair(self, name)
            if lo < 1 or lo != int(lo) or hi != int(hi):
                raise ValueError(f"{name} must be whole numbers >= 1 (got {(lo, hi)})")
        if self.brief_frames[1] >= self.persistent_frames[0]:
            raise ValueError(
                f"brief_frames maximum {self.brief_frames[1]} must be below persistent_frames "
                f"minimum {self.persistent_frames[0]}"
            )
        r_lo, r_hi = _pair(self, "radius_range")
        if r_lo < 1.0:
            raise ValueError(f"radius_range minimum must be at least 1 px (got {r_lo})")
        max_extent = float(r_hi * SHAPE_EXTENT.max())
        if self.size < 4.0 * max_extent + 8.0:
            raise ValueError(
                f"size {self.size} is too small for radius_range maximum {r_hi}; use size >= "
                f"{math.ceil(4.0 * max_extent + 8.0)} or a smaller radius_range"
            )
        for name in ("saturation_range", "value_range", "p_detect_range", "brief_motion_range"):
            lo, hi = _pair(self, name)
            if lo < 0.0 or hi > 1.0:
                raise ValueError(f"{name} must lie within [0, 1] (got {(lo, hi)})")
        if self.value_range[0] < 0.3:
            raise ValueError(
                f"value_range minimum must be at least 0.3 so objects stand out from the black "
                f"background (got {self.value_range[0]})"
            )
        if self.p_detect_range[0] <= 0.0:
            raise ValueError(
                f"p_detect_range minimum must be above 0 so objects are seen "
                f"(got {self.p_detect_range[0]})"
            )
        for name in (
            "clutter_density_range",
            "clutter_drift_range",
            "speed_max_range",
            "motion_noise_range",
            "position_noise_range",
        ):
            lo, _ = _pair(self, name)
            if lo < 0.0:
                raise ValueError(f"{name} minimum must be >= 0 (got {lo})")
        s_hi = self.speed_max_range[1]
        if s_hi > self.size / 8.0:
            raise ValueError(
                f"speed_max_range maximum {s_hi} px/frame is too fast for size {self.size}; "
                f"use at most size / 8 = {self.size / 8.0:g}"
            )
        for name in ("p_present_at_start", "mixed_brief_share", "noisy_video_share"):
            p = getattr(self, name)
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1] (got {p})")
        if not 0.0 < self.clutter_on_prob <= 1.0:
            raise ValueError(
                f"clutter_on_prob must be a probability in (0, 1] (got {self.clutter_on_prob})"
            )
        for name in (
            "turn_rate_max",
            "min_gap",
            "noise_sigma",
            "heldout_p_detect_below",
            "heldout_clutter_density_above",
        ):
            v = getattr(self, name)
            if not (v >= 0.0 and math.isfinite(v)):
                raise ValueError(f"{name} must be a finite number >= 0 (got {v})")
        self._validate_heldout()

    def _validate_heldout(self) -> None:
        p_lo, p_hi = self.p_detect_range
        d_lo, d_hi = self.clutter_density_range
        below, above = self.heldout_p_detect_below, self.heldout_clutter_density_above
        if below <= p_lo:
            raise ValueError(
                f"heldout_p_detect_below {below} holds out no video: raise it above "
                f"p_detect_range minimum {p_lo}"
            )
        if above >= d_hi:
            raise ValueError(
                f"heldout_clutter_density_above {above} holds out no video: lower it below "
                f"clutter_density_range maximum {d_hi}"
            )
        if below > p_hi and above < d_lo:
            raise ValueError(
                f"heldout_p_detect_below {below} with heldout_clutter_density_above {above} "
                f"holds out every video with false objects; lower heldout_p_detect_below to "
                f"at most p_detect_range maximum {p_hi}"
            )

    def in_heldout_region(self, p_detect: float, clutter_density: float) -> bool:
        """Whether an operating point lies in the held-out corner (low P_D, dense clutter)."""
        return bool(
            p_detect < self.heldout_p_detect_below
            and clutter_density > self.heldout_clutter_density_above
        )

    def operating_bins(self, p_detect: np.ndarray, clutter_density: np.ndarray) -> np.ndarray:
        """(N,) str bin of each video's operating point, for results by operating point: P_D
        below or above the middle of ``p_detect_range``, crossed with clutter density below
        or above the middle of ``clutter_density_range`` (persistent-only videos, density 0,
        are "clutter_low")."""
        pd_mid = float(np.mean(self.p_detect_range))
        fa_mid = float(np.mean(self.clutter_density_range))
        pd = np.where(np.asarray(p_detect) < pd_mid, "pd_low", "pd_high")
        fa = np.where(np.asarray(clutter_density) > fa_mid, "clutter_high", "clutter_low")
        return np.char.add(np.char.add(pd.astype(str), "/"), fa.astype(str)).astype(object)

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
    """Ground truth, operating points and rendered pixels of B videos; every per-object table
    has K = MAX_OBJECTS padded slots so they chunk like the videos in the store.

    videos      (B, T, H, W, 3) uint8
    masks       (B, T, H, W) uint8: 0 background, k + 1 = object slot k (topmost wins)
    video_type  (B,) int8, index into VIDEO_TYPES
    kind        (B, K) int8, index into OBJECT_KINDS, -1 = empty slot
    shape       (B, K) int8, index into SHAPES, -1 = empty slot
    radius      (B, K) float32, NaN = empty slot
    color       (B, K, 3) uint8, 0 = empty slot
    position    (B, K, T, 2) float32 sub-pixel centre (x = column, y = row), NaN where the
                object does not exist in that frame
    visible     (B, K, T) bool, drawn in that frame (exists and detected, clutter also on)
    op_*        (B,) the video's operating point, see OPERATING_POINT_DTYPES

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
        **{
            name: np.full(n_videos, OPERATING_POINT_PADDING[dtype], dtype)
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
        point = draw_operating_point(config, int(vtype), rng)
        for name, value in point.items():
            getattr(batch, name)[i] = value
        _simulate_ground_truth(config, int(vtype), point, rng, batch, i)
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
    config: SceneConfig, video_type: int, rng: np.random.Generator
) -> dict[str, float | int | bool]:
    """One video's operating point, keyed like ``OPERATING_POINT_DTYPES``.

    Every value is drawn for every video type (a fixed number of draws), and rounded to
    float32 before use, so the stored value is exactly the one the video was made with.
    """

    def uniform(name: str) -> float:
        return float(np.float32(rng.uniform(*getattr(config, name))))

    p_detect = uniform("p_detect_range")
    density = uniform("clutter_density_range")
    if video_type == PERSISTENT:  # persistent videos hold no false objects
        density = 0.0
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
) -> np.ndarray:
    """(persistent, brief, clutter) counts for one video of the given type.

    False objects are Poisson with means chosen so that the expected number of visible
    false objects per frame is ``op_clutter_density * size^2``.
    """
    persistent_range = {PERSISTENT: config.persistent_count, 3: config.mixed_persistent_count}
    lo, hi = persistent_range.get(video_type, (0, 0))
    n_persistent = int(rng.integers(lo, hi + 1))
    brief_share = {PERSISTENT: 0.0, BRIEF: 1.0, CLUTTER: 0.0}.get(
        video_type, config.mixed_brief_share
    )
    false_frames = float(point["op_clutter_density"]) * config.size**2 * config.frames
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
    n_brief = min(n_brief, MAX_OBJECTS - n_persistent)
    n_clutter = min(n_clutter, MAX_OBJECTS - n_persistent - n_brief)
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
    config: SceneConfig, rng: np.random.Generator, lifetimes: tuple[int, int]
) -> tuple[int, int, int]:
    """(first frame in the video, frames in the video, age at the first frame).

    The same law for every kind: present at frame 0 in mid-life (age uniform over the
    lifetime, the burn-in before frame 0), or born at a frame uniform in 1..T-1.
    """
    t_total = config.frames
    life = int(rng.integers(lifetimes[0], lifetimes[1] + 1))
    if rng.random() < config.p_present_at_start:
        age = int(rng.integers(0, life))
        return 0, min(life - age, t_total), age
    first = int(rng.integers(1, t_total))
    return first, min(life, t_total - first), 0


def _simulate_ground_truth(
    config: SceneConfig,
    video_type: int,
    point: Mapping[str, float | int | bool],
    rng: np.random.Generator,
    batch: SceneBatch,
    i: int,
) -> None:
    """Fill row ``i`` of the batch's ground-truth tables (not the pixels)."""
    t_total, edge = config.frames, config.size - 1.0
    counts = object_counts(config, video_type, point, rng)
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
        first, n_in, age = _lifespan(config, rng, lifetimes[kind])
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
        seen = rng.random(n_in) < float(point["op_p_detect"])
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
