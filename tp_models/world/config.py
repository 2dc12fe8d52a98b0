"""The synthetic world's configuration: ``SceneConfig`` (every knob a difficulty or realism
control, checked by ``validate``), the video types and object kinds, and the per-video
operating point a store records.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
from annotated_types import Ge, doc

from tp_models.core.config import known_fields
from tp_models.world.render import SHAPE_EXTENT

VIDEO_TYPES = ("persistent", "brief", "noise", "mixed")
OBJECT_KINDS = ("persistent", "brief", "clutter")
SHAPES = ("circle", "square", "triangle")

# Slots per video of the default length. A brief-only video at the highest clutter density
# with 1-frame brief objects asks for ~30 objects (the count is capped here; see
# SceneConfig.clutter_density_range). Longer videos get as many slots per 25 frames
# (SceneConfig.max_objects).
MAX_OBJECTS = 32
DEFAULT_FRAMES = 25
PERSISTENT, BRIEF, CLUTTER = 0, 1, 2

# The operating point each video draws, stored per video under these names (shape (N,)).
# Units: p_detect a probability per object and frame; clutter_density false objects
# (brief + clutter) visible per pixel^2 per frame, in every video type; motion_noise
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
# What SceneConfig.operating_point_drift moves: stored (N, frames) then, the value at frame 0
# being the drawn one (bins and the held-out region read it).
DRIFTING_POINTS = ("op_p_detect", "op_clutter_density")
# SceneConfig knobs that to_dict writes only when set (see there).
_WRITTEN_WHEN_SET = ("operating_point_drift",)


@dataclass(frozen=True)
class SceneConfig:
    """How synthetic videos are generated. Every knob is a difficulty or realism control.

    Ranges are ``(min, max)`` tuples, inclusive for counts and frame numbers. ``*_range``
    knobs marked "per video" are the operating point: each video draws one value uniformly
    from the range and stores it (``OPERATING_POINT_DTYPES``), so results can be reported
    per operating point and a model must work across the whole space, not at one setting.
    Each field's documentation is its ``doc``; the first sentence is its command-line help.
    """

    frames: Annotated[
        int,
        Ge(2),
        doc(
            "Video length T in frames. 25 x 128 x 128 is the product's data spec; a long "
            "stream (e.g. 300 frames, with operating_point_drift) gets 32 object slots per 25 "
            "frames, and objects are born throughout it, so raise the persistent counts with "
            "the length, and make mixed videos only: over a long video the other types' "
            "video-wide counts tell the type (README, Long streams)."
        ),
    ] = DEFAULT_FRAMES
    size: Annotated[int, Ge(32), doc("Square frame size H = W in px (RGB).")] = 128
    persistent_count: Annotated[
        tuple[int, int],
        doc(
            'Persistent objects in "persistent" videos (1-3). False objects are not counted by '
            "hand: clutter_density_range sets how many there are."
        ),
    ] = (1, 3)
    mixed_persistent_count: Annotated[
        tuple[int, int], doc('Persistent objects in "mixed" videos (1-2).')
    ] = (1, 2)
    radius_range: Annotated[
        tuple[float, float],
        doc(
            "Object size in px, uniform, shared by all kinds. 3 px is still a 28-pixel blob a "
            "threshold detector finds; 7 px keeps objects mostly apart at 128 px."
        ),
    ] = (3.0, 7.0)
    saturation_range: Annotated[
        tuple[float, float],
        doc(
            "HSV saturation of object colours (hue uniform), shared by all kinds. Saturated "
            "(>= 0.6) so colours differ."
        ),
    ] = (0.6, 1.0)
    value_range: Annotated[
        tuple[float, float],
        doc(
            "HSV value of object colours, shared by all kinds. At >= 0.75 the brightest channel "
            "of every object is >= 191 grey levels, far above the black background and noise."
        ),
    ] = (0.75, 1.0)
    p_present_at_start: Annotated[
        float,
        doc(
            "Probability that an object of any kind is already there at frame 0 (else it first "
            "appears at a frame drawn uniformly from 1..T-1). An object present at frame 0 is "
            "in mid-life: its age at frame 0 is drawn uniformly over its lifetime and its path, "
            "flicker and remaining life are simulated from its birth before frame 0 (a "
            "burn-in), so it can be anywhere, moving, or about to vanish. The law is shared on "
            "purpose: in a true steady state long-lived kinds would be over-represented at "
            "frame 0 (length-biased sampling), and the first frame would tell persistent from "
            "brief."
        ),
    ] = 0.3
    persistent_frames: Annotated[
        tuple[int, int],
        doc(
            "Lifetime of persistent objects in frames, uniform (30-120, so they often outlive "
            "the video)."
        ),
    ] = (30, 120)
    clutter_frames: Annotated[
        tuple[int, int], doc("Lifetime of clutter objects in frames, uniform (15-100).")
    ] = (15, 100)
    brief_frames: Annotated[
        tuple[int, int],
        doc(
            "Range of the per-video maximum lifetime of brief objects in frames (1-5); each "
            "brief object lives 1..op_brief_max_frames frames. Some videos hold only 1-frame "
            "flashes, others brief objects of up to 5 frames. Must stay below "
            "persistent_frames: brief and persistent differ in how long they live, by design."
        ),
    ] = (1, 5)
    p_detect_range: Annotated[
        tuple[float, float],
        doc(
            "Per video: the probability that an existing object of any kind is detected (drawn) "
            "in a frame. The sensor misses real and false objects alike, so a persistent track "
            "has gaps and a brief one may be seen only once."
        ),
    ] = (0.75, 0.98)
    clutter_density_range: Annotated[
        tuple[float, float],
        doc(
            "Per video: false objects (brief + clutter) visible per px^2 per frame, the "
            "classical clutter density beta_FA (5e-6 to 6e-5: 0.08-1.0 false objects per "
            "128 x 128 frame), drawn for every video type alike: persistent videos hold "
            "background clutter too, so no video-wide count tells a video's type. The number "
            "of brief and clutter objects is drawn (Poisson) so that the expected density "
            "matches it, given the video's lifetimes, detection probability and flicker; "
            "counts are capped at MAX_OBJECTS, which binds only for brief-only videos at the "
            'top of the range with 1-frame brief objects, and "brief" and "noise" videos hold '
            "at least one object of their kind."
        ),
    ] = (5e-6, 6e-5)
    mixed_brief_share: Annotated[
        float,
        doc(
            'Share of a "persistent" or "mixed" video\'s false-object density made by brief '
            'objects; the rest is clutter. "brief" videos hold brief objects only, "noise" '
            "videos clutter only."
        ),
    ] = 0.5
    clutter_on_prob: Annotated[
        float,
        doc(
            "Per-frame probability a clutter object is on, independently over its life (and "
            "then detected with the video's P_D): long but intermittent tracks, so track "
            "length alone is not the label. Must be > 0."
        ),
    ] = 0.4
    clutter_drift_range: Annotated[
        tuple[float, float],
        doc(
            "Per video: clutter motion in px/frame, from fixed to slowly drifting; each clutter "
            "object drifts at that speed in its own constant direction."
        ),
    ] = (0.0, 0.3)
    brief_motion_range: Annotated[
        tuple[float, float],
        doc(
            "Per video: how brief objects move, as a fraction of persistent motion: 0 static, "
            "1 exactly the persistent motion law, so motion alone does not separate the kinds."
        ),
    ] = (0.0, 1.0)
    speed_max_range: Annotated[
        tuple[float, float],
        doc(
            "Per video: top speed in px/frame. Each moving object starts at a speed uniform in "
            "[0, top] (some persistent objects are nearly static) and never exceeds it."
        ),
    ] = (1.0, 3.0)
    motion_noise_range: Annotated[
        tuple[float, float],
        doc(
            "Per video: std of the random per-frame velocity change in px/frame^2: "
            "constant-velocity-ish motion that a Kalman filter tracks but cannot predict."
        ),
    ] = (0.02, 0.12)
    turn_rate_max: Annotated[
        float,
        doc(
            "Each moving object turns at a constant rate, uniform in +-this (rad/frame; 0.12 "
            "is up to ~170 degrees over 25 frames): curved, not straight, paths."
        ),
    ] = 0.12
    position_noise_range: Annotated[
        tuple[float, float],
        doc(
            "Per video: std of the sub-pixel position noise in px added to every object's "
            "position in every frame, false or real. Real sensors never report a static object "
            "at exactly the same place twice; without it static negatives made exactly-zero "
            "steps that persistent objects never made."
        ),
    ] = (0.1, 0.5)
    min_gap: Annotated[
        float,
        doc(
            "Desired free space between objects in px. Placement tries several candidates and "
            "keeps the first that respects it; moving objects may still cross (overlap is "
            "resolved in the mask: the topmost object wins)."
        ),
    ] = 2.0
    noise_sigma: Annotated[
        float,
        doc(
            "Additive Gaussian pixel noise in grey levels, for a share of the videos "
            "(noisy_video_share). Noise is incompressible (sigma 3 on every video stores "
            "~0.9 GB against ~6 MB clean), so the default world is clean; give a minority of "
            "videos noise with e.g. noise_sigma=3, noisy_video_share=0.02. Each video stores "
            "its own sigma."
        ),
    ] = 0.0
    noisy_video_share: Annotated[
        float, doc("Share of the videos that get noise_sigma's pixel noise.")
    ] = 1.0
    operating_point_drift: Annotated[
        float,
        doc(
            "Per frame: std of the Gaussian step that logit P_D and log clutter density take "
            "from the video's drawn operating point, a walk that bounces inside "
            "p_detect_range and clutter_density_range (0: constant, the default). False "
            "objects are then born at a rate that follows the clutter density, and the store "
            "keeps both at every frame for the parameter oracle. Meant for long streams, "
            "where a scene's operating point can be learnt from its past."
        ),
    ] = 0.0
    heldout_p_detect_below: Annotated[
        float,
        doc(
            "Held-out region: videos with P_D below this and clutter density above "
            "heldout_clutter_density_above (the hard corner, ~11 % of the videos) are "
            "flagged op_heldout; splits.split_videos puts them in their own "
            '"heldout" split that training never sees, to measure generalisation to an unseen '
            "operating point. The region must cover part of the space, neither none nor all."
        ),
    ] = 0.82
    heldout_clutter_density_above: Annotated[
        float,
        doc("Held-out region: clutter density above which (with low P_D) a video is held out."),
    ] = 4e-5

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
            if hi > self.max_objects:
                raise ValueError(
                    f"{name} allows {hi} objects per video; lower it to at most "
                    f"{self.max_objects} (32 object slots per 25 frames) or raise frames"
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
            "operating_point_drift",
            "noise_sigma",
            "heldout_p_detect_below",
            "heldout_clutter_density_above",
        ):
            v = getattr(self, name)
            if not (v >= 0.0 and math.isfinite(v)):
                raise ValueError(f"{name} must be a finite number >= 0 (got {v})")
        if self.drifts and (self.p_detect_range[1] >= 1.0 or self.clutter_density_range[0] <= 0):
            raise ValueError(
                "operating_point_drift walks logit P_D and log clutter density: keep "
                "p_detect_range maximum below 1 and clutter_density_range minimum above 0 "
                f"(got {self.p_detect_range} and {self.clutter_density_range})"
            )
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

    @property
    def max_objects(self) -> int:
        """Object slots per video: MAX_OBJECTS per DEFAULT_FRAMES frames begun."""
        return MAX_OBJECTS * length_units(self.frames)

    @property
    def mask_dtype(self) -> str:
        """The id masks' dtype: 0 is background, slot k is k + 1."""
        return "uint8" if self.max_objects < 255 else "uint16"

    @property
    def drifts(self) -> bool:
        """Whether the operating point wanders over a video (then stored per frame)."""
        return self.operating_point_drift > 0

    def point_frames(self, name: str) -> tuple[int, ...]:
        """Shape of one video's operating-point value ``name``: (frames,) for a drifting
        scene's DRIFTING_POINTS, () otherwise."""
        return (self.frames,) if self.drifts and name in DRIFTING_POINTS else ()

    def in_heldout_region(self, p_detect: float, clutter_density: float) -> bool:
        """Whether an operating point lies in the held-out corner (low P_D, dense clutter)."""
        return bool(
            p_detect < self.heldout_p_detect_below
            and clutter_density > self.heldout_clutter_density_above
        )

    def operating_bins(self, p_detect: np.ndarray, clutter_density: np.ndarray) -> np.ndarray:
        """(N,) str bin of each video's operating point, for results by operating point: P_D
        below or above the middle of ``p_detect_range``, crossed with clutter density below
        or above the middle of ``clutter_density_range``. A drifting video's (N, frames)
        point is binned by its drawn value, at frame 0."""
        p_detect, clutter_density = (
            x[:, 0] if np.ndim(x) == 2 else x for x in (p_detect, clutter_density)
        )
        pd_mid = float(np.mean(self.p_detect_range))
        fa_mid = float(np.mean(self.clutter_density_range))
        pd = np.where(np.asarray(p_detect) < pd_mid, "pd_low", "pd_high")
        fa = np.where(np.asarray(clutter_density) > fa_mid, "clutter_high", "clutter_low")
        return np.char.add(np.char.add(pd.astype(str), "/"), fa.astype(str)).astype(object)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (tuples become lists), stored in Zarr attrs so a store says
        how it was made. Knobs added after stores were first written (``_WRITTEN_WHEN_SET``)
        are left out while they hold their default, so a store made before them keeps its
        config and fingerprint."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name in _WRITTEN_WHEN_SET and v == f.default:
                continue
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


def length_units(frames: int) -> int:
    """How many default-length videos (DEFAULT_FRAMES) a video of ``frames`` spans, begun
    ones counted: per-video capacities (object slots, track slots) grow by it."""
    return max(1, math.ceil(frames / DEFAULT_FRAMES))


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
