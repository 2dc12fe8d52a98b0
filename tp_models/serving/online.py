"""Online scoring: one frame of tracker rows in, one probability per row out.

``OnlineScorer.update(frame, rows)`` gives what ``pipeline.score`` gives on the whole
sequence read at that frame, without re-running the past: every live track keeps a small
feature state (last observation, its velocity, counts; what the causal features of the
next frame need), the sequence model's cache (``SequenceModel.new_cache``) and, for a model
that reads the hand-made track features, their running statistics and the sequence's
clutter grid (``LiveTrackFeatures``).

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
from typing import Any

import numpy as np
import torch
from torch import Tensor

from tp_models.model.extractors import SimpleStatisticalExtractor
from tp_models.model.features import (
    appearance_values,
    kinematic_columns,
    position_scale,
    track_feature_columns,
    track_velocity,
)
from tp_models.model.interfaces import ModularTrackingPipeline
from tp_models.perception.tracker import InnovationFilter, to_tracker_frame
from tp_models.serving.rows import DEFAULT_FORGET_AFTER
from tp_models.tracks.running import ClutterGrid, RunningFeatures


def _column(rows: Any, name: str) -> np.ndarray | None:
    value = rows.get(name) if isinstance(rows, Mapping) else getattr(rows, name, None)
    return None if value is None else np.asarray(value)


class OnlineScorer:
    """Scores the rows of one sequence frame by frame (see module docstring).

    ``frame_size`` (height, width) of the sequence's frames normalises positions; None
    uses the model's own. The pipeline is put in eval mode.
    """

    def __init__(
        self,
        pipeline: ModularTrackingPipeline,
        frame_size: tuple[int, int] | None = None,
        forget_after: int | None = DEFAULT_FORGET_AFTER,
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
        if forget_after is not None and forget_after < 0:
            raise ValueError(f"forget_after must be >= 0 or None, got {forget_after}")
        self.pipeline = pipeline.eval()
        self.extractor = extractor
        self.sequence = sequence
        self.forget_after = forget_after
        # Rows are mapped into the model's frame, as the batch extractor maps tracks.
        own = frame_size if frame_size is not None else extractor.frame_size
        self.ratio = torch.tensor(extractor.frame_size, dtype=torch.float32) / torch.tensor(
            [float(own[0]), float(own[1])]
        )
        self.frame_size = extractor.frame_size
        self.scale = position_scale(self.frame_size, torch.zeros(0))
        self.last_frame: int | None = None
        self.ids = np.zeros(0, dtype=np.int64)  # track id of each live slot
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
        return int(self.ids.size)

    @property
    def nbytes(self) -> int:
        """Bytes of the scorer's state (live tracks, the sequence model's cache, the track
        features' running statistics and clutter grid)."""
        state = sum(t.element_size() * t.nelement() for t in self.state.values())
        features = 0 if self.track_features is None else self.track_features.nbytes
        return self.ids.nbytes + state + self.cache.nbytes + features

    def update(self, frame: int, rows: Any) -> np.ndarray:
        """(N,) float64 probability that each row's track is persistent, given everything
        seen up to ``frame``, in row order.

        rows: one frame's rows, a mapping or object with ``track_id``, ``x``, ``y`` (px)
        and optionally ``w``, ``h`` (for the box area, when the model uses appearance).
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
        unique, counts = np.unique(ids, return_counts=True)
        if (counts > 1).any():
            raise ValueError(
                f"frame {frame} has track_id {unique[counts > 1][0]} more than once; "
                "one row per track"
            )
        if ids.size:
            xy = np.stack([_column(rows, "x"), _column(rows, "y")], axis=1).astype(np.float64)
            bad = ~np.isfinite(xy).all(axis=1)
            if bad.any():
                raise ValueError(
                    f"frame {frame}, track_id {ids[bad][0]}: the position is not a finite "
                    "number; drop the row or give its x and y"
                )
        with torch.inference_mode():
            if self.last_frame is not None:
                # Every live track steps through the frames without rows, as in the batch,
                # until it is forgotten (then nothing is left to step).
                for skipped in range(self.last_frame + 1, frame):
                    if not self.n_live:
                        break
                    self._step(skipped, np.zeros(0, dtype=np.int64), rows=None)
                    self._forget(skipped)
            self._add(np.setdiff1d(ids, self.ids), frame)
            probability = self._step(frame, ids, rows)
            self._forget(frame)
        self.last_frame = frame
        return probability

    def _add(self, new_ids: np.ndarray, frame: int) -> None:
        if not new_ids.size:
            return
        n = new_ids.size
        self.ids = np.concatenate([self.ids, new_ids])
        self.cache.add(n)
        zeros = {k: v.new_zeros((n, *v.shape[1:])) for k, v in self.state.items()}
        zeros["first"] += frame
        zeros["last"] -= 1  # no observation yet
        self.state = {k: torch.cat([v, zeros[k]]) for k, v in self.state.items()}
        if self.track_features is not None:
            self.track_features.add(new_ids.size, frame)

    def _observations(self, frame_ids: np.ndarray, rows: Any) -> tuple[Tensor, ...]:
        """Per live slot: observed flag, position, area (0 unless observed), in the model's
        frame; the slots of ``frame_ids``; the rows' own positions (N, 2) and areas (N,)."""
        by_id = np.argsort(self.ids)
        slots = torch.as_tensor(by_id[np.searchsorted(self.ids, frame_ids, sorter=by_id)])
        observed = torch.zeros(self.n_live, dtype=torch.bool)
        observed[slots] = True
        pos = torch.zeros(self.n_live, 2)
        area = torch.zeros(self.n_live)
        xy = np.zeros((0, 2), dtype=np.float32)
        box = np.zeros(0, dtype=np.float32)
        if frame_ids.size:
            xy = np.stack([_column(rows, "x"), _column(rows, "y")], axis=1).astype(np.float32)
            pos[slots] = torch.as_tensor(xy) * self.ratio.flip(-1)
            w, h = _column(rows, "w"), _column(rows, "h")
            box = np.full(frame_ids.size, np.nan, dtype=np.float32)
            if w is not None and h is not None:
                box = (w * h).astype(np.float32)
                area[slots] = torch.as_tensor(np.nan_to_num(box, nan=0.0)) * self.ratio.prod()
        return observed, pos, area, slots, xy, box

    def _step(self, frame: int, frame_ids: np.ndarray, rows: Any) -> np.ndarray:
        if not self.n_live:
            return np.zeros(0)
        observed, pos, area, slots, own_xy, own_area = self._observations(frame_ids, rows)
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
            now = appearance_values(observed, area, colour, self.frame_size)
            appearance = torch.where(observed.unsqueeze(-1), now, appearance)
            feats = torch.cat([feats, appearance], dim=-1)
        if self.track_features is not None:
            track_features = self.track_features.step(frame, slots.numpy(), own_xy, own_area)
            feats = torch.cat([feats, torch.as_tensor(track_features)], dim=-1)
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
        return probability[slots].double().numpy()

    def _forget(self, frame: int) -> None:
        if self.forget_after is None or not self.n_live:
            return
        stale = (frame - self.state["last"]) > self.forget_after
        if stale.any():
            keep = torch.nonzero(~stale).flatten()
            self.ids = self.ids[keep.numpy()]
            self.cache.keep(keep)
            self.state = {k: v[keep] for k, v in self.state.items()}
            if self.track_features is not None:
                self.track_features.keep(keep.numpy())


class LiveTrackFeatures:
    """The hand-made track features of the live tracks, one frame at a time: their running
    statistics (``RunningFeatures``), their Kalman filters (``InnovationFilter``), the
    sequence's clutter grid (``ClutterGrid``) and where each track was born. Fixed memory per
    live track plus one grid per sequence: a frame costs the same at any age."""

    def __init__(self, frame_size: tuple[int, int], model_frame: tuple[int, int]):
        self.frame_size = (float(frame_size[0]), float(frame_size[1]))
        # (height, width) model frame / own frame: the batch maps tracks the same way.
        self.ratio = np.asarray(model_frame, dtype=np.float64) / np.asarray(self.frame_size)
        self.running = RunningFeatures()
        self.kalman = InnovationFilter()
        self.grid = ClutterGrid()
        self.birth_cell = np.zeros((0, 2), dtype=np.int64)
        self.birth_frame = np.zeros(0, dtype=np.int64)

    @property
    def nbytes(self) -> int:
        kalman = self.kalman.state.nbytes + self.kalman.cov.nbytes + self.kalman.born.nbytes
        births = self.birth_cell.nbytes + self.birth_frame.nbytes
        return self.running.nbytes + kalman + births + self.grid.nbytes

    def add(self, count: int, frame: int) -> None:
        """``count`` new live slots, first seen at ``frame``."""
        self.running.add(count)
        self.kalman.add(count)
        self.birth_cell = np.concatenate([self.birth_cell, np.zeros((count, 2), np.int64)])
        self.birth_frame = np.concatenate([self.birth_frame, np.full(count, frame)])

    def keep(self, slots: np.ndarray) -> None:
        """Only the live slots at ``slots`` (ascending) stay."""
        self.running.keep(slots)
        self.kalman.keep(slots)
        self.birth_cell, self.birth_frame = self.birth_cell[slots], self.birth_frame[slots]

    def step(self, frame: int, slots: np.ndarray, xy: np.ndarray, area: np.ndarray) -> np.ndarray:
        """(live slots, len(TRACK_FEATURE_NAMES)) model inputs at ``frame``: the rows of live
        ``slots`` at ``xy`` with box ``area`` (NaN without a box), in the sequence's px."""
        n = len(self.running)
        observed = np.zeros(n, dtype=bool)
        observed[slots] = True
        in_tracker = np.full((n, 2), np.nan)
        in_tracker[slots] = to_tracker_frame(xy, self.frame_size)
        loglik = self.kalman.step(in_tracker, observed)
        clutter = np.zeros(n)
        if slots.size:
            cell = self.grid.cells(in_tracker[slots])
            new = frame == self.birth_frame[slots]
            self.birth_cell[slots[new]] = cell[new]
            plane = np.zeros(slots.size, dtype=np.int64)
            clutter[slots] = self.grid.step(
                frame, plane, cell, self.birth_cell[slots], self.birth_frame[slots]
            )
        position, areas = np.full((n, 2), np.nan), np.full(n, np.nan)
        position[slots] = xy * self.ratio[::-1]
        areas[slots] = area * self.ratio.prod()
        raw = self.running.step(observed, position, areas, loglik, clutter)
        return track_feature_columns(raw)
