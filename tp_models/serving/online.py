"""Online scoring: one frame of tracker rows in, one probability per row out.

``OnlineScorer.update(frame, rows)`` gives what ``pipeline.score`` gives on the whole
sequence read at that frame, without re-running the past: every live track keeps a small
feature state (last observation, its velocity, counts; what the causal features of the
next frame need), the sequence model's cache (``SequenceModel.new_cache``) and, for a model
that reads the hand-made track features, their running statistics and the sequence's
scene grid (``LiveTrackFeatures``).

Every live track steps through every frame, observed or not, exactly as in the batch, so
scores are equal to the batch's (the same code computes both). With the GRU sequence model
(``ModelConfig.sequence="gru"``) a frame costs the same at any track age and a track's
memory is fixed; the transformer's attention reads every cached step of a track's life
(O(age) per frame, lives up to its ``max_len``).

A track not seen for more than ``forget_after`` frames is forgotten (its memory freed);
should its id come back, it starts afresh as a new track. Statistical features only
(MagVit latents need the video). Rows the scorer cannot use (a frame not after the last,
an id twice in a frame, a position that is not a finite number) are refused with one
sentence naming the frame and id, before any state changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor

from tp_models.families.fitted import FittedFamily
from tp_models.model.extractors import SimpleStatisticalExtractor
from tp_models.model.features import (
    appearance_values,
    kinematic_columns,
    position_scale,
    track_feature_columns,
    track_velocity,
)
from tp_models.model.interfaces import ModularTrackingPipeline
from tp_models.tracks.running import LiveTrackFeatures
from tp_models.tracks.table import DEFAULT_FORGET_AFTER


def _column(rows: Any, name: str) -> np.ndarray | None:
    value = rows.get(name) if isinstance(rows, Mapping) else getattr(rows, name, None)
    return None if value is None else np.asarray(value)


class OnlineScorer:
    """Scores the rows of one sequence frame by frame (see module docstring).

    ``scorer``: a learned pipeline (put in eval mode) or a fitted classical family
    (``families.FittedFamily``). ``frame_size`` (height, width) of the sequence's frames
    normalises positions; None uses the scorer's own.
    """

    def __init__(
        self,
        scorer: ModularTrackingPipeline | FittedFamily,
        frame_size: tuple[int, int] | None = None,
        forget_after: int | None = DEFAULT_FORGET_AFTER,
    ):
        if forget_after is not None and forget_after < 0:
            raise ValueError(f"forget_after must be >= 0 or None, got {forget_after}")
        if isinstance(scorer, FittedFamily):
            self.stepper: Stepper = scorer.stream(frame_size or scorer.frame_size)
        else:
            self.stepper = ModelStream(scorer, frame_size)
        self.forget_after = forget_after
        self.last_frame: int | None = None
        self.ids = np.zeros(0, dtype=np.int64)  # track id of each live slot
        self.last = np.zeros(0, dtype=np.int64)  # frame of each live slot's last row

    @property
    def n_live(self) -> int:
        return int(self.ids.size)

    @property
    def nbytes(self) -> int:
        """Bytes of the scorer's state (live tracks and everything the scorer keeps of
        them: a sequence model's cache, running statistics, filters, scene grid)."""
        return self.ids.nbytes + self.last.nbytes + self.stepper.nbytes

    def update(self, frame: int, rows: Any) -> np.ndarray:
        """(N,) float64 probability that each row's track is persistent, given everything
        seen up to ``frame``, in row order.

        rows: one frame's rows, a mapping or object with ``track_id``, ``x``, ``y`` (px)
        and optionally ``w``, ``h`` (for the box area, when the scorer reads it).
        Frames must come in increasing order; frames skipped are frames without rows.
        """
        frame = int(frame)
        if self.last_frame is not None and frame <= self.last_frame:
            raise ValueError(
                f"frame {frame} is not after the last frame scored ({self.last_frame}); "
                "pass frames in increasing order, all rows of a frame in one call"
            )
        ids = _column(rows, "track_id")
        if ids is None:
            raise ValueError("rows need a 'track_id' column")
        ids = ids.astype(np.int64).reshape(-1)
        ordered = np.sort(ids)
        twice = ordered[1:] == ordered[:-1]
        if twice.any():
            raise ValueError(
                f"frame {frame} has track_id {ordered[1:][twice][0]} more than once; "
                "one row per track"
            )
        xy = np.zeros((0, 2))
        area = np.zeros(0)
        if ids.size:
            xy = np.stack([_column(rows, "x"), _column(rows, "y")], axis=1).astype(np.float64)
            bad = ~np.isfinite(xy).all(axis=1)
            if bad.any():
                raise ValueError(
                    f"frame {frame}, track_id {ids[bad][0]}: the position is not a finite "
                    "number; drop the row or give its x and y"
                )
            w, h = _column(rows, "w"), _column(rows, "h")
            area = np.full(ids.size, np.nan) if w is None or h is None else w * h
        none = np.zeros(0, dtype=np.int64)
        with torch.inference_mode():
            if self.last_frame is not None:
                # Every live track steps through the frames without rows, as in the batch,
                # until it is forgotten (then nothing is left to step).
                for skipped in range(self.last_frame + 1, frame):
                    if not self.n_live:
                        break
                    self.stepper.step(skipped, none, xy[:0], area[:0])
                    self._forget(skipped)
            # Each row's live slot; ids not live yet get new slots at the end, in id order.
            by_id = np.argsort(self.ids)
            known = self.ids[by_id]
            at = np.minimum(np.searchsorted(known, ordered), max(known.size - 1, 0))
            new = ordered[known[at] != ordered] if known.size else ordered
            if new.size:
                self.ids = np.concatenate([self.ids, new])
                self.last = np.concatenate([self.last, np.full(new.size, frame)])
                self.stepper.add(new.size, frame)
                by_id = np.argsort(self.ids)
            probability = np.zeros(0)
            if self.n_live:
                slots = by_id[np.searchsorted(self.ids, ids, sorter=by_id)]
                live = self.stepper.step(frame, slots, xy, np.asarray(area, np.float64))
                self.last[slots] = frame
                probability = np.asarray(live, dtype=np.float64)[slots]
            self._forget(frame)
        self.last_frame = frame
        return probability

    def _forget(self, frame: int) -> None:
        if self.forget_after is None or not self.n_live:
            return
        stale = (frame - self.last) > self.forget_after
        if stale.any():
            keep = np.flatnonzero(~stale)
            self.ids, self.last = self.ids[keep], self.last[keep]
            self.stepper.keep(keep)


class Stepper(Protocol):
    """What ``OnlineScorer`` drives: the scorer's state of the live tracks, one frame at a
    time (``ModelStream``, ``families.FamilyStream``)."""

    @property
    def nbytes(self) -> int: ...

    def add(self, count: int, frame: int) -> None: ...

    def keep(self, slots: np.ndarray) -> None: ...

    def step(
        self, frame: int, slots: np.ndarray, xy: np.ndarray, area: np.ndarray
    ) -> np.ndarray: ...


class ModelStream:
    """The learned model's state of the live tracks: the causal features of the next frame
    (last observation, its velocity, counts), the sequence model's cache and, for a model
    that reads them, the hand-made track features (``LiveTrackFeatures``)."""

    def __init__(
        self, pipeline: ModularTrackingPipeline, frame_size: tuple[int, int] | None = None
    ):
        extractor, sequence = pipeline.extractor, pipeline.sequence
        if not isinstance(extractor, SimpleStatisticalExtractor):
            features = getattr(pipeline.config, "features", type(extractor).__name__)
            raise ValueError(
                f"online scoring needs the statistical feature set; this model uses "
                f"{features!r} (MagVit latents need the video): train a statistical model"
            )
        try:
            self.cache = sequence.new_cache()
        except NotImplementedError as e:
            raise ValueError(f"online scoring needs a sequence model that steps: {e}") from None
        self.pipeline = pipeline.eval()
        self.extractor = extractor
        self.sequence = sequence
        # Rows are mapped into the model's frame, as the batch extractor maps tracks.
        own = frame_size if frame_size is not None else extractor.frame_size
        self.ratio = torch.tensor(extractor.frame_size, dtype=torch.float32) / torch.tensor(
            [float(own[0]), float(own[1])]
        )
        self.frame_size = extractor.frame_size
        self.scale = position_scale(self.frame_size, torch.zeros(0))
        self.state: dict[str, Tensor] = {
            "first": torch.zeros(0, dtype=torch.int64),  # frame of the first observation
            "last": torch.zeros(0, dtype=torch.int64),  # frame of the last observation
            "pos": torch.zeros(0, 2),  # last observed position
            "vel": torch.zeros(0, 2),  # velocity at the last observation
            "has_vel": torch.zeros(0, dtype=torch.bool),
            "n_obs": torch.zeros(0),
            "appearance": torch.zeros(0, 4),  # size and colour at the last observation
        }
        self.track_features = (
            LiveTrackFeatures(own, self.frame_size) if extractor.use_track_features else None
        )

    @property
    def n_live(self) -> int:
        return int(self.state["first"].numel())

    @property
    def nbytes(self) -> int:
        state = sum(t.element_size() * t.nelement() for t in self.state.values())
        features = 0 if self.track_features is None else self.track_features.nbytes
        return state + self.cache.nbytes + features

    def add(self, count: int, frame: int) -> None:
        self.cache.add(count)
        zeros = {k: v.new_zeros((count, *v.shape[1:])) for k, v in self.state.items()}
        zeros["first"] += frame
        zeros["last"] -= 1  # no observation yet
        self.state = {k: torch.cat([v, zeros[k]]) for k, v in self.state.items()}
        if self.track_features is not None:
            self.track_features.add(count, frame)

    def keep(self, slots: np.ndarray) -> None:
        index = torch.as_tensor(slots)
        self.cache.keep(index)
        self.state = {k: v[index] for k, v in self.state.items()}
        if self.track_features is not None:
            self.track_features.keep(slots)

    def step(self, frame: int, slots: np.ndarray, xy: np.ndarray, area: np.ndarray) -> np.ndarray:
        """(live slots,) P(persistent) after ``frame``: the rows of ``slots`` at ``xy`` with
        box ``area`` (NaN without a box), in the sequence's px."""
        index = torch.as_tensor(slots, dtype=torch.int64)
        observed = torch.zeros(self.n_live, dtype=torch.bool)
        observed[index] = True
        pos = torch.zeros(self.n_live, 2)
        box = torch.zeros(self.n_live)
        own_xy = np.asarray(xy, dtype=np.float32)
        own_area = np.asarray(area, dtype=np.float32)
        if slots.size:
            pos[index] = torch.as_tensor(own_xy) * self.ratio.flip(-1)
            box[index] = torch.as_tensor(np.nan_to_num(own_area, nan=0.0)) * self.ratio.prod()
        st = self.state
        has_prev = st["last"] >= 0
        gap = torch.where(has_prev, frame - st["last"], frame + 1).clamp(min=1)
        gap = gap.to(torch.float32).unsqueeze(-1)
        has_vel = observed & has_prev
        vel = track_velocity(pos, st["pos"], gap, has_vel)
        n_obs = st["n_obs"] + observed.to(torch.float32)
        last = torch.where(observed, frame, st["last"])
        seen = torch.ones_like(observed)
        feats = kinematic_columns(
            pos_ff=torch.where(observed.unsqueeze(-1), pos, st["pos"]),
            vel=vel,
            vel_prev=st["vel"],
            gap=gap,
            has_vel=has_vel,
            has_vel_prev=has_prev & st["has_vel"],
            observed=observed,
            seen=seen,
            since_obs=(frame - last).to(torch.float32),
            n_obs=n_obs,
            age=(frame - st["first"]).to(torch.float32) + 1.0,
            scale=self.scale,
            motion_scale=self.extractor.motion_scale,
        )
        appearance = st["appearance"]
        if self.extractor.use_appearance:
            colour = torch.zeros(self.n_live, 3)  # imported tracks have none (NaN -> 0)
            now = appearance_values(observed, box, colour, self.frame_size)
            appearance = torch.where(observed.unsqueeze(-1), now, appearance)
            feats = torch.cat([feats, appearance], dim=-1)
        if self.track_features is not None:
            tracks = self.track_features.step(frame, slots, own_xy, own_area)
            columns = track_feature_columns(tracks.features)
            feats = torch.cat([feats, torch.as_tensor(columns)], dim=-1)
        hidden = self.sequence.step(self.extractor.mlp(feats), self.cache)
        probability = self.pipeline.head(hidden)["persistence"]
        keep = observed.unsqueeze(-1)
        self.state = {
            "first": st["first"],
            "last": last,
            "pos": torch.where(keep, pos, st["pos"]),
            "vel": torch.where(keep, vel, st["vel"]),
            "has_vel": torch.where(observed, has_vel, st["has_vel"]),
            "n_obs": n_obs,
            "appearance": appearance,
        }
        return probability.double().numpy()
