"""Per-frame model inputs computed from tracks, causally.

Everything here answers "what could an online tracker know at frame t?": a feature at
frame t is computed only from frames <= t. Unobserved frames carry the last observation
forward with zero velocity and say so (observed flag, frames since last observation), so
the model can tell "stood still" from "was not seen".

Frames before a track's first observation are padding: all features are zero there and
the sequence model masks them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from tp_models.core.batch import TrackBatch
from tp_models.tracks.features import (
    HANDMADE_FEATURES,
    handmade_features,
    in_frame,
)

KINEMATIC_FEATURE_NAMES: tuple[str, ...] = (
    "x",  # last observed position, -1..1 across the frame
    "y",
    "vx",  # asinh(px/frame / motion_scale): linear for slow motion, compressed for jumps
    "vy",
    "ax",
    "ay",
    "speed",
    "dir_cos",  # direction of motion; 0, 0 when not moving or unknown
    "dir_sin",
    "turn",  # signed turning angle between successive velocities / pi
    "has_velocity",  # velocity needs two observations: tells 0 from unknown
    "observed",
    "frames_since_obs",  # log1p(frames since the last observation)
    "log_n_obs",  # log1p(observations so far)
    "obs_fraction",  # observations so far / frames since the first observation
)
APPEARANCE_FEATURE_NAMES: tuple[str, ...] = ("size", "red", "green", "blue")

TRACK_KEYS: tuple[str, ...] = ("position", "observed", "area", "color", "loglik")

_EPS = 1e-6


def leading_padding_mask(observed: Tensor) -> Tensor:
    """(B, T) bool, True at frames before the track's first observation.

    Causal by construction: frame t is padding iff nothing was observed at frames <= t.
    """
    return torch.cumsum(observed.to(torch.int32), dim=1) == 0


def last_observation_index(observed: Tensor) -> Tensor:
    """(B, T) int64: index of the last observed frame <= t, or -1 if none yet."""
    frames = torch.arange(observed.shape[1], device=observed.device)
    stamped = torch.where(observed, frames, torch.full_like(frames, -1))
    return torch.cummax(stamped, dim=1).values


def _shift_right(x: Tensor, fill: float | int) -> Tensor:
    """x[:, t-1] at t (fill at t=0): the value "before this frame"."""
    pad = torch.full_like(x[:, :1], fill)
    return torch.cat([pad, x[:, :-1]], dim=1)


def _gather_frames(x: Tensor, index: Tensor) -> Tensor:
    """x[b, index[b, t]] for x of shape (B, T) or (B, T, C); index must be >= 0."""
    if x.dim() == 2:
        return torch.gather(x, 1, index)
    return torch.gather(x, 1, index.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


# (height, width). Tracks seen in frames of another size are mapped into the model's frame
# first (`to_model_frame`), so features always see one frame size.
FrameSize = tuple[int, int]


def position_scale(frame_size: FrameSize, like: Tensor) -> Tensor:
    """(width, height) to divide (x, y) positions by, shape (2,)."""
    height, width = frame_size
    return like.new_tensor([width, height])


def to_model_frame(
    position: Tensor, area: Tensor | None, own_size: Tensor, model_size: tuple[int, int]
) -> tuple[Tensor, Tensor | None]:
    """Positions (B, T, 2) and areas (B, T) of tracks seen in frames of their own (B, 2)
    (height, width), mapped into the model's frame: the same scene in a frame twice as
    large gives the same positions, speeds and sizes, so a model applies to any frame size."""
    ratio = torch.as_tensor(model_size, dtype=position.dtype, device=position.device) / own_size
    area = None if area is None else area * ratio.prod(-1).unsqueeze(1)
    return position * ratio.flip(-1).unsqueeze(1), area


def track_velocity(pos: Tensor, pos_prev: Tensor, gap: Tensor, has_vel: Tensor) -> Tensor:
    """Velocity (px/frame) from the previous observation, 0 where there is none.

    Shared by the batch features and the online scorer's per-track state, so both compute
    the same numbers. Shapes (..., 2), gap (..., 1), has_vel (...)."""
    return torch.where(has_vel.unsqueeze(-1), (pos - pos_prev) / gap, 0.0)


def kinematic_columns(
    *,
    pos_ff: Tensor,
    vel: Tensor,
    vel_prev: Tensor,
    gap: Tensor,
    has_vel: Tensor,
    has_vel_prev: Tensor,
    observed: Tensor,
    seen: Tensor,
    since_obs: Tensor,
    n_obs: Tensor,
    age: Tensor,
    scale: Tensor,
    motion_scale: float,
) -> Tensor:
    """(..., 15) features from what a track knows at one frame (see
    ``KINEMATIC_FEATURE_NAMES``): last observed position, this frame's and the previous
    observation's velocity, gap (..., 1) since the previous observation, flags (...),
    frames since the last observation, observations so far, frames since the first one,
    and ``scale`` (width, height) broadcastable against positions. Elementwise over the
    leading axes, so batch (B, T) and online (N,) inputs give the same numbers."""
    dtype = pos_ff.dtype
    has_acc = (has_vel & has_vel_prev).unsqueeze(-1)
    acc = torch.where(has_acc, (vel - vel_prev) / gap, 0.0)

    speed = vel.norm(dim=-1, keepdim=True)
    moving = speed > _EPS
    direction = torch.where(moving, vel / speed.clamp(min=_EPS), 0.0)
    speed_prev = vel_prev.norm(dim=-1, keepdim=True)
    turning = has_acc & moving & (speed_prev > _EPS)
    cross = vel_prev[..., 0] * vel[..., 1] - vel_prev[..., 1] * vel[..., 0]
    dot = (vel_prev * vel).sum(-1)
    turn = torch.where(turning.squeeze(-1), torch.atan2(cross, dot) / math.pi, 0.0)

    pos_norm = torch.where(seen.unsqueeze(-1), pos_ff / scale * 2.0 - 1.0, 0.0)
    columns = [
        pos_norm,
        torch.asinh(vel / motion_scale),
        torch.asinh(acc / motion_scale),
        torch.asinh(speed / motion_scale),
        direction,
        turn.unsqueeze(-1),
        has_vel.to(dtype).unsqueeze(-1),
        observed.to(dtype).unsqueeze(-1),
        torch.log1p(since_obs).unsqueeze(-1),
        torch.log1p(n_obs).unsqueeze(-1),
        torch.where(seen, n_obs / age, 0.0).unsqueeze(-1),
    ]
    return torch.cat(columns, dim=-1)


def kinematic_features(
    position: Tensor,
    observed: Tensor,
    frame_size: FrameSize = (128, 128),
    motion_scale: float = 4.0,
) -> Tensor:
    """(B, T, 15) kinematic features, see ``KINEMATIC_FEATURE_NAMES``.

    position (B, T, 2) pixels (x, y), any value (even NaN) where unobserved;
    observed (B, T) bool; frame_size (height, width); motion_scale in pixels per frame.
    """
    observed = observed.bool()
    dtype = position.dtype if position.is_floating_point() else torch.float32
    # Unobserved values are never read, but NaN * 0 is NaN, so clear them first.
    pos = torch.where(observed.unsqueeze(-1), position.to(dtype), 0.0)
    n_frames = observed.shape[1]
    frames = torch.arange(n_frames, device=observed.device)

    last_idx = last_observation_index(observed)
    prev_idx = _shift_right(last_idx, -1)  # last observation strictly before t
    seen = last_idx >= 0
    has_prev = prev_idx >= 0

    pos_ff = _gather_frames(pos, last_idx.clamp(min=0))
    pos_prev = _gather_frames(pos, prev_idx.clamp(min=0))
    gap = (frames - prev_idx).clamp(min=1).to(dtype).unsqueeze(-1)

    # Velocity and acceleration only where something new was observed: zero otherwise.
    has_vel = observed & has_prev
    vel = track_velocity(pos, pos_prev, gap, has_vel)
    vel_prev = _gather_frames(vel, prev_idx.clamp(min=0))
    has_vel_prev = has_prev & _gather_frames(has_vel, prev_idx.clamp(min=0))

    scale = position_scale(frame_size, pos)
    n_obs = torch.cumsum(observed.to(dtype), dim=1)
    first_idx = torch.where(seen, _first_observation_index(observed).unsqueeze(1), frames)
    return kinematic_columns(
        pos_ff=pos_ff,
        vel=vel,
        vel_prev=vel_prev,
        gap=gap,
        has_vel=has_vel,
        has_vel_prev=has_vel_prev,
        observed=observed,
        seen=seen,
        since_obs=torch.where(seen, (frames - last_idx).to(dtype), 0.0),
        n_obs=n_obs,
        age=(frames - first_idx).to(dtype) + 1.0,
        scale=scale,
        motion_scale=motion_scale,
    )


def appearance_values(
    observed: Tensor, area: Tensor, color: Tensor, frame_size: FrameSize = (128, 128)
) -> Tensor:
    """(..., 4) size (sqrt(area) / shorter frame side) and colour (0..1) of observations
    (zero where unobserved); area and observed (B, T) or (B,), colour (..., 3)."""
    side = min(frame_size)
    size = torch.where(observed, area, 0.0).clamp(min=0).sqrt() / side
    rgb = torch.where(observed.unsqueeze(-1), color, 0.0) / 255.0
    return torch.cat([size.unsqueeze(-1), rgb], -1)


def appearance_features(
    observed: Tensor,
    area: Tensor,
    color: Tensor,
    frame_size: FrameSize = (128, 128),
) -> Tensor:
    """(B, T, 4) last observed size (sqrt(area) / frame side) and colour (0..1).

    Kept apart from kinematics on purpose: the design wants the "statistical" model to be
    honest about motion alone, and appearance was a give-away in the seed data.
    """
    observed = observed.bool()
    seen = (last_observation_index(observed) >= 0).unsqueeze(-1)
    idx = last_observation_index(observed).clamp(min=0)
    values = _gather_frames(appearance_values(observed, area, color, frame_size), idx)
    return torch.where(seen, values, 0.0)


def _first_observation_index(observed: Tensor) -> Tensor:
    """(B,) index of the first observation (0 if never observed)."""
    return observed.to(torch.int8).argmax(dim=1)


def valid_step_mask(
    observed: Tensor,
    until: Literal["last_observation", "end"] = "end",
    forget_after: int | None = None,
) -> Tensor:
    """(B, T) bool: the steps a track's label applies to.

    From the first observation to the end of the video (default), or to the last
    observation (the track's life as hindsight sees it) with ``until="last_observation"``.
    With ``forget_after``, never more than that many steps past the last observation: the
    scorer forgets a track unseen for longer, so later steps are never scored (a one-hit
    track of a long sequence is not padded to its end). Steps before the first observation
    are padding and never count.
    """
    observed = observed.bool()
    started = torch.cumsum(observed.to(torch.int32), dim=1) > 0
    if until not in ("end", "last_observation"):
        raise ValueError(f"until must be 'last_observation' or 'end', got {until!r}")
    if until == "end" and forget_after is None:
        return started
    ahead = 0 if until == "last_observation" else forget_after
    last = last_observation_index(observed)[:, -1:]
    steps = torch.arange(observed.shape[1], device=observed.device)
    return started & (steps <= last + ahead)


# Inputs that describe a whole track; every other input is per frame, (B, T, ...).
PER_TRACK_INPUTS = frozenset({"label", "frame_size"})


def start_aligned(inputs: Mapping[str, Tensor], valid: Tensor) -> tuple[dict[str, Tensor], Tensor]:
    """The tracks that have ``valid`` steps (a contiguous run from the first observation,
    ``valid_step_mask``), each moved to begin at its first observation and all cut to the
    longest run among them: a track's labelled life, not its video's frame span.

    Exact for the models here, which read a track from its first observation on (track
    positions, leading padding masked) and are causal: the outputs at the valid steps do
    not change. Steps past a track's run are misses and never read back.
    """
    keep = valid.any(dim=1)
    run, first = valid[keep].sum(dim=1), _first_observation_index(inputs["observed"][keep])
    steps = torch.arange(int(run.max()) if len(run) else 0, device=valid.device)
    index = (first.unsqueeze(1) + steps).clamp(max=valid.shape[1] - 1)
    within = steps < run.unsqueeze(1)  # the valid steps, now from step 0 on
    aligned = {
        key: value[keep] if key in PER_TRACK_INPUTS else _gather_frames(value[keep], index)
        for key, value in inputs.items()
    }
    aligned["observed"] = aligned["observed"] & within  # past the run: misses, never read
    return aligned, within


# The hand-made features gradient boosting reads (``tracks.features.handmade_features``),
# as model inputs: counts, lengths and areas on a log scale, log-likelihoods and the
# relative area change through asinh, missing values as 0 with a flag saying so.
_LOG_SCALED = frozenset(HANDMADE_FEATURES) - {
    "area_change",
    "loglik_latest",
    "loglik_mean",
    "loglik_min",
}
_LOG_COLUMNS = np.array([name in _LOG_SCALED for name in HANDMADE_FEATURES])
TRACK_FEATURE_NAMES: tuple[str, ...] = (*HANDMADE_FEATURES, "has_innovation", "has_area")
TRACK_FEATURES_INPUT = "track_features"  # the input key they travel under


def track_feature_inputs(batch: TrackBatch, frame_size: FrameSize) -> np.ndarray:
    """(B, T, len(TRACK_FEATURE_NAMES)) float32 model inputs from ``handmade_features``,
    0 before the first observation. They read other tracks of the same video (the
    clutter-map count and the scene's rates), so they are computed on whole videos, before
    any minibatch split. Tracks with their own frame size are first mapped into the model's
    ``frame_size`` (the scene features are made in the tracker's frame,
    ``tracker.TRACKER_FRAME``)."""
    return track_feature_columns(handmade_features(in_frame(batch, frame_size)))


def track_feature_columns(raw: np.ndarray) -> np.ndarray:
    """(..., len(TRACK_FEATURE_NAMES)) float32 model inputs from (..., len(HANDMADE_FEATURES))
    ``handmade_features`` values: the one transform of the batch and the online scorer."""
    out = np.empty((*raw.shape[:-1], len(TRACK_FEATURE_NAMES)), dtype=np.float64)
    scaled = out[..., : len(HANDMADE_FEATURES)]
    scaled[..., _LOG_COLUMNS] = np.log1p(np.maximum(raw[..., _LOG_COLUMNS], 0.0))
    scaled[..., ~_LOG_COLUMNS] = np.arcsinh(raw[..., ~_LOG_COLUMNS])
    born = np.isfinite(raw[..., 0])
    out[..., -2] = born & np.isfinite(raw[..., HANDMADE_FEATURES.index("loglik_latest")])
    out[..., -1] = born & np.isfinite(raw[..., HANDMADE_FEATURES.index("area")])
    out[np.isnan(out)] = 0.0
    return out.astype(np.float32)


def batch_to_tensors(
    batch: TrackBatch,
    keys: Iterable[str] | None = None,
    device: torch.device | str = "cpu",
    with_label: bool = False,
    computed: Mapping[str, np.ndarray] | None = None,
) -> dict[str, Tensor]:
    """Model inputs from a ``TrackBatch``: the only bridge between data and model.

    Data loading code only has to produce ``TrackBatch`` objects (or their arrays).
    ``keys`` limits conversion to what a model reads (``pipeline.input_keys``); extras
    are looked up by name, then ``computed`` arrays (inputs an extractor derives from the
    whole batch, ``FeatureExtractor.batch_inputs``). NaN in per-frame arrays is replaced by
    0 (the observed mask is the truth) so that no NaN can reach autograd. ``label`` is
    added as float32 (B,) when ``with_label``. ``frame_size`` (B, 2) float32 is added
    when the batch has per-track frame sizes, so extractors can normalise positions.
    """
    wanted = tuple(keys) if keys is not None else (*TRACK_KEYS, *batch.extras)
    out: dict[str, Tensor] = {}
    computed = computed or {}
    for key in dict.fromkeys(("position", "observed", *wanted)):
        if key in TRACK_KEYS:
            array = getattr(batch, key)
        elif key in batch.extras:
            array = batch.extras[key]
        elif key in computed:
            array = computed[key]
        else:
            raise KeyError(
                f"the model needs input {key!r}, which is neither a TrackBatch field nor in "
                f"batch.extras (has {sorted(batch.extras)}); add it to TrackBatch.extras"
            )
        if key == "observed":
            out[key] = torch.as_tensor(np.asarray(array, dtype=bool), device=device)
        elif np.issubdtype(np.asarray(array).dtype, np.floating):
            values = np.nan_to_num(np.asarray(array, dtype=np.float32), nan=0.0)
            out[key] = torch.as_tensor(values, device=device)
        else:
            out[key] = torch.as_tensor(np.asarray(array), device=device)
    if batch.frame_size is not None:
        sizes = np.asarray(batch.frame_size, dtype=np.float32)
        out["frame_size"] = torch.as_tensor(sizes, device=device)
    if with_label:
        out["label"] = torch.as_tensor(np.asarray(batch.label, dtype=np.float32), device=device)
    return out
