"""The served model: a strict weights-only checkpoint behind MLflow's pyfunc interface.

MLflow loads it through ``storage/pyfunc.py`` (the model's ``loader_module``), which calls
``load_served`` with the checkpoint file the model was logged with. The checkpoint is plain
data read with ``torch.load(weights_only=True)``: its config rebuilds the architecture and
the weights load strictly, so nothing in the registry is unpickled and no registry bytes
become code.
(A ``PythonModel`` instance would be cloudpickled; ``mlflow.pytorch`` pickles the module.)

The persistence model's ``predict`` takes tracker rows with MOTChallenge columns
(``frame,id,bb_left,bb_top,bb_width,bb_height,conf``, optional ``x,y,z`` which are
accepted and ignored) and returns one row per input row, in input order: ``p_persistent``
(the probability that the row's track is persistent, from the observations up to that
row's frame) and ``confirmed`` (``p_persistent >= operating_threshold``, the threshold
chosen on the validation split at training). Optional columns: ``seq`` scores several
sequences in one request (tracks of different sequences never mix); ``im_width`` and
``im_height`` give a sequence's frame size in pixels (constant within a sequence; both or
neither; default the model's training frame size). The tokenizer's ``predict`` encodes
uint8 videos ``(B, T, H, W, 3)`` into latents ``(B, T', C, h, w)``.

No Prefect, Dask, Zarr or MLflow here: MLflow imports this module from the model's
packaged code. pandas is imported only when rows are scored (MLflow brings it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from tp_models.families.fitted import FAMILY_FORMAT, FittedFamily, load_family
from tp_models.model.interfaces import ModularTrackingPipeline
from tp_models.model.pipeline import CHECKPOINT_FORMAT as MODEL_FORMAT
from tp_models.model.pipeline import load_pipeline
from tp_models.serving.rows import TrackLifeError, score_rows
from tp_models.tracks.table import TrackRows

REQUIRED_COLUMNS = ("frame", "id", "bb_left", "bb_top", "bb_width", "bb_height", "conf")
OPTIONAL_COLUMNS = ("x", "y", "z", "seq", "im_width", "im_height")
OUTPUT_COLUMNS = ("p_persistent", "confirmed")

# Used only when training found no validated threshold (e.g. no positives in validation);
# the checkpoint's metadata says which one a model carries.
DEFAULT_OPERATING_THRESHOLD = 0.5

# Two tracks over three frames in a 128-px frame: the input example MLflow stores.
EXAMPLE_ROWS: dict[str, list[float]] = {
    "frame": [1, 1, 2, 2, 3],
    "id": [1, 2, 1, 2, 1],
    "bb_left": [10.0, 80.0, 12.0, 80.5, 14.0],
    "bb_top": [20.0, 40.0, 21.0, 40.0, 22.0],
    "bb_width": [8.0, 6.0, 8.0, 6.0, 8.0],
    "bb_height": [8.0, 6.0, 8.0, 6.0, 8.0],
    "conf": [1.0, 0.6, 1.0, 0.5, 1.0],
}


class ServedInputError(ValueError):
    """Rows a served model cannot score; the message names the column to fix."""


def operating_threshold(checkpoint: dict[str, Any]) -> tuple[float, bool]:
    """The model's validated operating threshold and whether it is one (else the default)."""
    value = (checkpoint.get("metadata") or {}).get("operating_threshold")
    if value is None:
        return DEFAULT_OPERATING_THRESHOLD, False
    return float(value), True


def _column(table: Any, name: str, rows: np.ndarray) -> np.ndarray:
    try:
        values = np.asarray(table[name].to_numpy()[rows], dtype=np.float64)
    except (TypeError, ValueError):
        raise ServedInputError(f"column {name!r} must be numeric") from None
    return values


def _frame_size(
    table: Any, rows: np.ndarray, default: tuple[int, int], seq: str
) -> tuple[int, int]:
    given = [name for name in ("im_height", "im_width") if name in table.columns]
    if not given:
        return default
    if len(given) == 1:
        raise ServedInputError("give both im_width and im_height columns, or neither")
    size = []
    for name in ("im_height", "im_width"):
        values = np.unique(_column(table, name, rows))
        if values.size != 1 or not values[0] > 0 or values[0] != int(values[0]):
            raise ServedInputError(
                f"column {name!r} must be one positive integer per sequence (seq {seq!r})"
            )
        size.append(int(values[0]))
    return size[0], size[1]


def track_rows(table: Any, rows: np.ndarray, frame_size: tuple[int, int], seq: str) -> TrackRows:
    """The given rows of ``table`` (MOTChallenge columns) as one sequence's ``TrackRows``."""
    columns = {name: _column(table, name, rows) for name in REQUIRED_COLUMNS}
    for name in ("frame", "id"):
        values = columns[name]
        if not np.all(np.isfinite(values) & (values == np.round(values))):
            raise ServedInputError(f"column {name!r} must hold integers (seq {seq!r})")
    if np.any(columns["frame"] < 1):
        raise ServedInputError(f"column 'frame' must be 1-based (seq {seq!r})")
    for name in ("bb_left", "bb_top"):
        if not np.all(np.isfinite(columns[name])):
            raise ServedInputError(f"column {name!r} must be finite (seq {seq!r})")
    for name in ("bb_width", "bb_height"):
        if not np.all(columns[name] > 0):
            raise ServedInputError(f"column {name!r} must be positive (seq {seq!r})")
    frame = columns["frame"].astype(np.int64)
    return TrackRows(
        frame=frame,
        track_id=columns["id"].astype(np.int64),
        x=columns["bb_left"] + columns["bb_width"] / 2,
        y=columns["bb_top"] + columns["bb_height"] / 2,
        w=columns["bb_width"],
        h=columns["bb_height"],
        conf=columns["conf"],
        frame_size=frame_size,
        n_frames=int(frame.max()),
    )


@dataclass
class ServedPersistenceModel:
    """Tracker rows in, per-row persistence probabilities out (see the module docstring)."""

    pipeline: ModularTrackingPipeline | FittedFamily
    threshold: float

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        import pandas as pd

        table = pd.DataFrame(model_input)
        missing = [name for name in REQUIRED_COLUMNS if name not in table.columns]
        if missing:
            raise ServedInputError(
                f"rows lack the MOTChallenge column(s) {', '.join(missing)}; "
                f"send {','.join(REQUIRED_COLUMNS)}"
            )
        features = reads_video(self.pipeline)
        if features:
            raise ServedInputError(
                f"this model reads {features!r} features of the video, "
                "which tracker rows do not carry; serve a model trained with --features "
                "statistical"
            )
        scores = np.empty(len(table), dtype=np.float64)
        sequences = table["seq"].astype(str).to_numpy() if "seq" in table.columns else None
        names = [""] if sequences is None else list(dict.fromkeys(sequences))
        for seq in names:
            rows = np.arange(len(table)) if sequences is None else np.flatnonzero(sequences == seq)
            frame_size = _frame_size(table, rows, native_frame(self.pipeline), seq)
            try:
                scores[rows] = score_rows(self.pipeline, track_rows(table, rows, frame_size, seq))
            except TrackLifeError as exc:  # a request's mistake: the 400 with its sentence
                raise ServedInputError(f"{exc} (seq {seq!r})") from None
        return pd.DataFrame(
            {"p_persistent": scores, "confirmed": scores >= self.threshold}, index=table.index
        )


@dataclass
class ServedTokenizer:
    """uint8 videos ``(B, T, H, W, 3)`` in, continuous latents ``(B, T', C, h, w)`` out."""

    tokenizer: torch.nn.Module

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> np.ndarray:
        latents, _ = self.tokenizer.encode(np.asarray(model_input, dtype=np.uint8))
        return latents.cpu().numpy()


def load_served(path: str | os.PathLike[str]) -> ServedPersistenceModel | ServedTokenizer:
    """The served form of a persistence-model or tokenizer checkpoint (read weights-only)."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    kind = checkpoint.get("format") if isinstance(checkpoint, dict) else None
    if kind in (MODEL_FORMAT, FAMILY_FORMAT):
        return ServedPersistenceModel(load_scorer(checkpoint), operating_threshold(checkpoint)[0])
    # Imported only for tokenizers: its quantizer library takes seconds to import.
    from tp_models.magvit.checkpoint import CHECKPOINT_FORMAT as TOKENIZER_FORMAT
    from tp_models.magvit.checkpoint import load_tokenizer

    if kind == TOKENIZER_FORMAT:
        return ServedTokenizer(load_tokenizer(path))
    raise ValueError(
        f"{path} is neither a model nor a tokenizer checkpoint (format {kind!r}); "
        "log it from a checkpoint made by save_checkpoint, family_checkpoint or save_tokenizer"
    )


def load_scorer(
    checkpoint: dict[str, Any], map_location: str = "cpu"
) -> ModularTrackingPipeline | FittedFamily:
    """The persistence model of a checkpoint already read weights-only: a learned pipeline
    (on ``map_location``) or a fitted classical family (always on the CPU)."""
    if checkpoint.get("format") == FAMILY_FORMAT:
        return load_family(checkpoint)
    return load_pipeline(checkpoint, map_location=map_location)


def reads_video(scorer: Any) -> str | None:
    """The video features a persistence model reads (None: tracker rows are enough)."""
    features = getattr(getattr(scorer, "config", None), "features", "statistical")
    return None if features == "statistical" else features


def native_frame(scorer: Any) -> tuple[int, int]:
    """The frame size (height, width) a persistence model was fitted in."""
    if isinstance(scorer, FittedFamily):
        return scorer.frame_size
    return scorer.config.frame_size
