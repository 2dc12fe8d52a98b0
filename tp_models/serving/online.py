"""Online scoring: one frame of tracker rows in, one probability per row out.

``OnlineScorer.update(frame, rows)`` gives what ``pipeline.score`` gives on the whole
sequence read at that frame, without re-running the past: every live track keeps a small
feature state (last observation, its velocity, counts; what the causal features of the
next frame need) and the transformer's keys and values (``SequenceCache``). A frame costs
one step per live track whatever the tracks' ages (attention reads the cache, O(age) with a
tiny constant).

Every live track steps through every frame, observed or not, exactly as in the batch, so
scores are equal to the batch's. A model that reads the hand-made track features
(``ModelConfig.track_features``) also keeps the live tracks' observations since the
oldest one's birth and every detection of the sequence (the clutter map counts them):
those features are cumulative summaries, recomputed over that window at every frame
(``TrackHistory``), so such a frame costs O(live tracks x window) as well.

A track not seen for more than ``forget_after`` frames is forgotten (its memory freed);
should its id come back, it starts afresh as a new track. Statistical features only
(MagVit latents need the video).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor

from tp_models.core.batch import TrackBatch
from tp_models.model.extractors import SimpleStatisticalExtractor
from tp_models.model.features import (
    appearance_values,
    kinematic_columns,
    position_scale,
    track_feature_inputs,
    track_velocity,
)
from tp_models.model.interfaces import ModularTrackingPipeline
from tp_models.model.sequence import SimpleTransformerSequence
from tp_models.perception.tracker import InnovationFilter, to_tracker_frame
from tp_models.tracks.features import CLUTTER_COUNT, clutter_map_counts

DEFAULT_FORGET_AFTER = 30  # frames without an observation before a track is forgotten


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
        if not isinstance(sequence, SimpleTransformerSequence):
            raise ValueError(f"online scoring needs a transformer sequence model, not {sequence}")
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
        self.cache = sequence.new_cache()
        self.state: dict[str, Tensor] = {
            "first": torch.zeros(0, dtype=torch.int64),  # frame of the first observation
            "last": torch.zeros(0, dtype=torch.int64),  # frame of the last observation
            "pos": torch.zeros(0, 2),  # last observed position
            "vel": torch.zeros(0, 2),  # velocity at the last observation
            "has_vel": torch.zeros(0, dtype=torch.bool),
            "n_obs": torch.zeros(0),
            "appearance": torch.zeros(0, 4),  # size and colour at the last observation
        }
        self.history = TrackHistory(own) if extractor.use_track_features else None

    @property
    def n_live(self) -> int:
        return int(self.ids.size)

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
        if np.unique(ids).size != ids.size:
            raise ValueError(f"frame {frame} has a track_id more than once; one row per track")
        with torch.inference_mode():
            if self.last_frame is not None:
                for skipped in range(self.last_frame + 1, frame):
                    self._step(skipped, np.zeros(0, dtype=np.int64), rows=None)
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
        if self.history is not None:
            self.history.add(new_ids.size, frame)

    def _observations(self, frame_ids: np.ndarray, rows: Any) -> tuple[Tensor, ...]:
        """Per live slot: observed flag, position, area (0 unless observed), in the model's
        frame; the slots of ``frame_ids``; the rows' own positions (N, 2) and areas (N,)."""
        slot_of = {int(i): s for s, i in enumerate(self.ids)}
        slots = torch.as_tensor([slot_of[int(i)] for i in frame_ids], dtype=torch.int64)
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
        if self.history is not None:
            self.history.observe(frame, slots.numpy(), frame_ids, own_xy, own_area)
            track_features = self.history.latest_features(self.frame_size)
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
            if self.history is not None:
                self.history.keep(keep.numpy())


class TrackHistory:
    """What the hand-made track features of the live tracks need at the next frame: their
    observations (in the sequence's own pixels) since the oldest live track's first frame,
    and every detection of the sequence so far with its clutter-map count."""

    def __init__(self, frame_size: tuple[int, int]):
        self.frame_size = (float(frame_size[0]), float(frame_size[1]))
        self.start = 0  # frame of column 0
        self.first = np.zeros(0, dtype=np.int64)  # first frame of each live slot
        self.position = np.zeros((0, 0, 2), dtype=np.float32)
        self.observed = np.zeros((0, 0), dtype=bool)
        self.area = np.zeros((0, 0), dtype=np.float32)
        self.clutter = np.zeros((0, 0))
        self.loglik = np.zeros((0, 0), dtype=np.float32)
        self.kalman = InnovationFilter()  # the loglik of each new frame, from the last
        # Every detection so far: position, frame, track id (forgotten tracks' too).
        self.detections = (np.zeros((0, 2)), np.zeros(0, dtype=np.int64), np.zeros(0, np.int64))

    def add(self, count: int, frame: int) -> None:
        """``count`` new live slots, first seen at ``frame``."""
        if not self.first.size:  # nothing live: the window starts afresh at this frame
            self._trim(self.observed.shape[1])
            self.start = frame
        self.first = np.concatenate([self.first, np.full(count, frame, dtype=np.int64)])
        width = self.observed.shape[1]
        self.position = np.concatenate([self.position, np.full((count, width, 2), np.nan)])
        self.observed = np.concatenate([self.observed, np.zeros((count, width), bool)])
        self.area = np.concatenate([self.area, np.full((count, width), np.nan)])
        self.clutter = np.concatenate([self.clutter, np.zeros((count, width))])
        self.loglik = np.concatenate([self.loglik, np.full((count, width), np.nan, np.float32)])
        self.kalman.add(count)

    def keep(self, slots: np.ndarray) -> None:
        """Only the live slots at ``slots`` (ascending) stay."""
        self.first = self.first[slots]
        self.position, self.observed = self.position[slots], self.observed[slots]
        self.area, self.clutter = self.area[slots], self.clutter[slots]
        self.loglik = self.loglik[slots]
        self.kalman.keep(slots)
        if self.first.size:
            self._trim(int(self.first.min()) - self.start)

    def _trim(self, columns: int) -> None:
        self.start += columns
        self.position, self.observed = self.position[:, columns:], self.observed[:, columns:]
        self.area, self.clutter = self.area[:, columns:], self.clutter[:, columns:]
        self.loglik = self.loglik[:, columns:]

    def observe(
        self, frame: int, slots: np.ndarray, ids: np.ndarray, xy: np.ndarray, area: np.ndarray
    ) -> None:
        """A column for ``frame``: the rows of live ``slots`` (track ``ids``) at ``xy``."""
        n = self.first.size
        self.position = np.concatenate([self.position, np.full((n, 1, 2), np.nan)], axis=1)
        self.observed = np.concatenate([self.observed, np.zeros((n, 1), bool)], axis=1)
        self.area = np.concatenate([self.area, np.full((n, 1), np.nan)], axis=1)
        self.clutter = np.concatenate([self.clutter, np.zeros((n, 1))], axis=1)
        self.position[slots, -1], self.observed[slots, -1], self.area[slots, -1] = xy, True, area
        newest = to_tracker_frame(self.position[:, -1], self.frame_size)
        loglik = self.kalman.step(newest, self.observed[:, -1])
        self.loglik = np.concatenate([self.loglik, loglik[:, None]], axis=1)
        past_xy, past_frame, past_id = self.detections
        self.detections = (
            np.concatenate([past_xy, xy]),
            np.concatenate([past_frame, np.full(len(ids), frame, dtype=np.int64)]),
            np.concatenate([past_id, ids]),
        )
        new = np.arange(past_frame.size, past_frame.size + len(ids))
        all_xy, all_frame, all_id = self.detections
        self.clutter[slots, -1] = clutter_map_counts(
            all_xy, all_frame, np.zeros(all_frame.size), all_id, self.frame_size, queries=new
        )

    def latest_features(self, model_frame: tuple[int, int]) -> np.ndarray:
        """(live slots, features) ``track_feature_inputs`` at the newest frame."""
        n = self.first.size
        batch = TrackBatch(
            position=self.position,
            observed=self.observed,
            area=self.area,
            color=np.full((*self.observed.shape, 3), np.nan, dtype=np.float32),
            loglik=self.loglik,
            label=np.full(n, -1, dtype=np.int8),
            video=np.zeros(n, dtype=np.int64),
            extras={CLUTTER_COUNT: self.clutter},
            frame_size=np.tile(self.frame_size, (n, 1)),
        )
        return track_feature_inputs(batch, model_frame)[:, -1]
