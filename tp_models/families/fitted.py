"""A fitted family: a classical scorer as a deployable model, like the learned one.

``FittedFamily`` holds a scorer whose parameters were fitted or tuned on a store's train
split, its Platt calibration on validation (so it answers "probability this track is
persistent") and the frame size it was fitted in. It scores a batch
(``PersistenceScorer``) and streams (``stream``), and travels as plain data: a checkpoint
``torch.load(weights_only=True)`` reads, with JSON-like parameters, and for gradient
boosting the scikit-learn model in skops' format, loaded with an explicit list of trusted
types. Nothing is ever unpickled.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from tp_models.core.batch import TrackBatch
from tp_models.core.calibration import as_logit, platt_apply
from tp_models.core.checkpoint import CheckpointMismatchError
from tp_models.families.names import CLASSICAL_FAMILIES
from tp_models.families.streams import Stream, stream_of
from tp_models.scorers.boosting import BaseRate, GradientBoostingScorer
from tp_models.scorers.clutter_map import StreamingClutterMap
from tp_models.scorers.counting import WindowHits
from tp_models.scorers.existence import AdaptiveIPDA, IPDAExistence
from tp_models.scorers.track_score import TrackScore
from tp_models.tracks.features import in_frame
from tp_models.tracks.running import HANDMADE_FEATURES, LiveTrackFeatures

FAMILY_FORMAT = "tp-family-v1"

# family name -> its scorer class
SCORERS: dict[str, type] = {
    "gradient_boosting": GradientBoostingScorer,
    "ipda": IPDAExistence,
    "ipda_adaptive": AdaptiveIPDA,
    "track_score": TrackScore,
    "clutter_map": StreamingClutterMap,
    "m_of_n": WindowHits,
}
assert tuple(SCORERS) == CLASSICAL_FAMILIES
# A scorer's fields that are not its parameters: its name and operating threshold (set by
# validation), a tuning grid and what tuning found, a fitted model (saved on its own).
NOT_PARAMETERS = {"name", "threshold", "grid", "fitted", "model"}


def parameter_names(kind: type) -> tuple[str, ...]:
    """The fields of a scorer class that rebuild a fitted one (the model aside)."""
    return tuple(f.name for f in dataclasses.fields(kind) if f.name not in NOT_PARAMETERS)


# The one scikit-learn type a gradient-boosting model needs beyond skops' default trust.
SKOPS_TRUSTED = ["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"]


@dataclass
class FittedFamily:
    """A fitted classical scorer, calibrated to a probability (see module)."""

    family: str
    scorer: Any
    calibration: tuple[float, float]
    frame_size: tuple[int, int]
    threshold: float = 0.5  # the operating threshold (chosen on validation by the caller)
    name: str = ""
    probabilistic = True
    max_steps = None  # a stream reads any life

    def __post_init__(self) -> None:
        if self.family not in SCORERS:
            raise ValueError(f"unknown family {self.family!r}; one of {sorted(SCORERS)}")
        self.name = self.name or self.family

    def score(self, batch: TrackBatch) -> np.ndarray:
        """(B, T) P(persistent): the scorer's score in its own frame, calibrated."""
        return self.calibrated(self.scorer.score(in_frame(batch, self.frame_size)))

    def calibrated(self, raw: np.ndarray) -> np.ndarray:
        values = as_logit(raw) if self.scorer.probabilistic else raw
        return platt_apply(values, *self.calibration)

    def stream(self, frame_size: tuple[int, int]) -> FamilyStream:
        """Its online form for a sequence of frames of ``frame_size`` (height, width)."""
        return FamilyStream(self, frame_size)

    def rule(self, threshold: float) -> str:
        return f"P(persistent) >= {threshold:.3f} ({self.family})"

    def describe(self) -> dict[str, Any]:
        """The family, its fitted parameters and its calibration, as JSON."""
        return {
            "family": self.family,
            "params": parameters(self),
            "calibration": list(self.calibration),
            "frame_size": list(self.frame_size),
        }


class FamilyStream:
    """A family scoring live tracks one frame at a time: the tracks' Kalman filters (and, for
    gradient boosting, running features), the family's ``Stream``, its calibration."""

    def __init__(self, fitted: FittedFamily, frame_size: tuple[int, int]):
        self.fitted = fitted
        self.stream: Stream = stream_of(fitted.scorer)
        self.live = LiveTrackFeatures(
            frame_size,
            fitted.frame_size,
            features=self.stream.needs_features,
            kalman=self.stream.needs_loglik,
            scene=self.stream.needs_scene,
        )

    @property
    def nbytes(self) -> int:
        return self.live.nbytes + self.stream.nbytes

    def add(self, count: int, frame: int) -> None:
        self.live.add(count, frame)
        self.stream.add(count)

    def keep(self, slots: np.ndarray) -> None:
        self.live.keep(slots)
        self.stream.keep(slots)

    def step(self, frame: int, slots: np.ndarray, xy: np.ndarray, area: np.ndarray) -> np.ndarray:
        """(live slots,) P(persistent) after ``frame`` (rows of ``slots`` at ``xy``)."""
        return self.fitted.calibrated(self.stream.step(self.live.step(frame, slots, xy, area)))


def parameters(fitted: FittedFamily) -> dict[str, Any]:
    """The JSON parameters that rebuild ``fitted.scorer`` (the model aside)."""
    names = parameter_names(SCORERS[fitted.family])
    out = {name: getattr(fitted.scorer, name) for name in names}
    model = getattr(fitted.scorer, "model", None)
    if isinstance(model, BaseRate):  # gradient boosting's one-class fallback
        out["base_rate"] = model.p
    return out


def family_checkpoint(fitted: FittedFamily, metadata: dict[str, Any] | None = None) -> dict:
    """Plain data (``torch.save``-able, weights-only loadable) that ``load_family`` rebuilds."""
    import torch

    checkpoint: dict[str, Any] = {
        "format": FAMILY_FORMAT,
        **fitted.describe(),
        "metadata": dict(metadata or {}),
    }
    model = getattr(fitted.scorer, "model", None)
    if model is not None and not isinstance(model, BaseRate):
        import skops.io

        data = bytearray(skops.io.dumps(model))
        checkpoint["skops"] = torch.frombuffer(data, dtype=torch.uint8).clone()
    return checkpoint


def load_family(checkpoint: dict[str, Any]) -> FittedFamily:
    """The ``FittedFamily`` of a checkpoint made by ``family_checkpoint``; a scikit-learn
    model is read by skops with ``SKOPS_TRUSTED`` only (anything else is refused)."""
    if checkpoint.get("format") != FAMILY_FORMAT:
        raise ValueError(f"not a family checkpoint (format {checkpoint.get('format')!r})")
    family = checkpoint["family"]
    if family not in SCORERS:
        raise ValueError(f"unknown family {family!r}; one of {sorted(SCORERS)}")
    kind = SCORERS[family]
    names = parameter_names(kind)
    params = dict(checkpoint["params"])
    base_rate = params.pop("base_rate", None)
    unknown = set(params) - set(names)
    if unknown:
        raise ValueError(f"family {family!r} has no parameters {sorted(unknown)}")
    scorer = kind(**params)
    if "skops" in checkpoint:
        import skops.io
        from sklearn.ensemble import HistGradientBoostingClassifier

        payload = bytes(checkpoint["skops"].numpy().tobytes())
        try:
            model = skops.io.loads(payload, trusted=SKOPS_TRUSTED)
        except Exception as exc:  # not skops' format, or a type nobody trusted: nothing ran
            raise ValueError(
                f"the gradient-boosting model is not a skops file of trusted types "
                f"({type(exc).__name__}: {str(exc)[:200]})"
            ) from None
        if not isinstance(model, HistGradientBoostingClassifier):
            raise ValueError(
                f"the checkpoint's model is {type(model).__name__}, not a gradient-boosting model"
            )
        if model.n_features_in_ != len(HANDMADE_FEATURES):
            raise CheckpointMismatchError(
                f"the gradient-boosting model reads {model.n_features_in_} hand-made features, "
                f"this version computes {len(HANDMADE_FEATURES)} ({', '.join(HANDMADE_FEATURES)})"
            )
        scorer.model = model
    elif base_rate is not None:
        scorer.model = BaseRate(float(base_rate))
    elif isinstance(scorer, GradientBoostingScorer):
        raise ValueError("a gradient-boosting checkpoint without its model")
    scale, shift = (float(v) for v in checkpoint["calibration"])
    height, width = (int(v) for v in checkpoint["frame_size"])
    threshold = (checkpoint.get("metadata") or {}).get("operating_threshold")
    fitted = FittedFamily(family, scorer, (scale, shift), (height, width))
    if threshold is not None:  # validated at training; else the class's default
        fitted.threshold = float(threshold)
    return fitted
