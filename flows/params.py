"""Flow parameters as pydantic models: Prefect renders them as forms, the CLI maps its options
onto them one to one, and the store keeps the part that defines the data.

Every check raises one sentence that names the parameter and says what to change.
"""

from __future__ import annotations

import os
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tp_models.scene import SceneConfig

DEFAULT_STORE = "data/store.zarr"


class ParameterError(ValueError):
    """A bad flow parameter: the message names it and what to change."""


def explain(error: ValidationError) -> str:
    """The first validation problem as one sentence (pydantic's own text is for developers)."""
    first = error.errors()[0]
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    where = ".".join(str(part) for part in first.get("loc", ()))
    return message if not where or where in message else f"{where}: {message}"


class ComputeParams(BaseModel):
    """Where a flow's tasks run."""

    model_config = ConfigDict(extra="forbid")

    workers: int | None = Field(None, description="local Dask workers (default: one per core)")
    dask_address: str | None = Field(None, description="existing Dask scheduler to use")

    @model_validator(mode="after")
    def _check_compute(self) -> ComputeParams:
        if self.workers is not None and self.workers <= 0:
            raise ValueError(f"workers must be at least 1 (got {self.workers}).")
        return self

    def n_workers(self) -> int:
        return self.workers or os.cpu_count() or 1


class GenerateParams(ComputeParams):
    """Parameters of the `generate-data` flow."""

    model_config = ConfigDict(extra="forbid")

    store: str = Field(DEFAULT_STORE, description="Zarr store path or fsspec URL")
    persistent: int = Field(1000, description="videos with persistent objects")
    brief: int = Field(1000, description="videos with brief objects only (seen 1-3 frames)")
    noise: int = Field(250, description="videos with background clutter only")
    mixed: int = Field(250, description="videos with persistent + brief objects + clutter")
    frames: int = Field(25, description="frames per video")
    size: int = Field(128, description="frame height and width in pixels")
    noise_sigma: float = Field(0.0, description="additive Gaussian sensor noise (grey levels)")
    seed: int = Field(0, description="random seed: same seed, same bytes")
    videos_per_chunk: int = Field(25, description="videos per Zarr chunk (the unit of work)")
    overwrite: bool = Field(False, description="replace a store made with other parameters")
    extract_tracks: bool = Field(True, description="run extract-tracks after generating")

    @model_validator(mode="after")
    def _check(self) -> GenerateParams:
        counts = {k: getattr(self, k) for k in ("persistent", "brief", "noise", "mixed")}
        for name, value in counts.items():
            if value < 0:
                raise ValueError(f"{name} must be zero or more videos (got {value}).")
        if sum(counts.values()) == 0:
            raise ValueError(
                "persistent, brief, noise and mixed are all 0: ask for at least one video."
            )
        if self.videos_per_chunk <= 0:
            raise ValueError(f"videos_per_chunk must be at least 1 (got {self.videos_per_chunk}).")
        if self.noise_sigma < 0:
            raise ValueError(f"noise_sigma must be zero or more (got {self.noise_sigma}).")
        self.scene().validate()
        return self

    @property
    def counts(self) -> list[int]:
        return [self.persistent, self.brief, self.noise, self.mixed]

    @property
    def n_videos(self) -> int:
        return sum(self.counts)

    def scene(self) -> SceneConfig:
        return SceneConfig(frames=self.frames, size=self.size, noise_sigma=self.noise_sigma)

    def data_config(self) -> dict[str, Any]:
        """What defines the bytes of the store (not how or where they are computed)."""
        return {
            "scene": self.scene().to_dict(),
            "counts": self.counts,
            "seed": self.seed,
            "videos_per_chunk": self.videos_per_chunk,
        }


def parse(model: type[BaseModel], **values: Any) -> Any:
    """Build parameters or raise ParameterError with one clear sentence."""
    try:
        return model(**values)
    except ValidationError as exc:
        raise ParameterError(explain(exc)) from None


class TrackerParams(BaseModel):
    """A store and the tracker settings whose tracks to use."""

    model_config = ConfigDict(extra="forbid")

    store: str = Field(DEFAULT_STORE, description="Zarr store made by generate-data")
    max_misses: int = Field(2, description="frames a track coasts without a detection")
    detector_threshold: float = Field(40.0, description="foreground threshold (0-255)")
    min_area: int = Field(4, description="smallest detection in pixels")
    gate_probability: float = Field(0.99, description="chi-square gate of the assignment")

    @model_validator(mode="after")
    def _check_tracker(self) -> TrackerParams:
        if self.max_misses < 0:
            raise ValueError(f"max_misses must be zero or more (got {self.max_misses}).")
        if not 0 <= self.detector_threshold < 255:
            raise ValueError(
                f"detector_threshold must be in [0, 255) (got {self.detector_threshold})."
            )
        if self.min_area < 1:
            raise ValueError(f"min_area must be at least 1 pixel (got {self.min_area}).")
        if not 0 < self.gate_probability < 1:
            raise ValueError(
                f"gate_probability must be between 0 and 1 (got {self.gate_probability})."
            )
        return self

    def tracker(self) -> dict[str, Any]:
        """The tracker config as stored (and hashed into the tracks group's key)."""
        from tp_models.detect import DetectorConfig
        from tp_models.tracker import TrackerConfig

        detector = DetectorConfig(threshold=self.detector_threshold, min_area=self.min_area)
        return TrackerConfig(
            detector=detector, max_misses=self.max_misses, gate_probability=self.gate_probability
        ).to_dict()


class TracksParams(TrackerParams, ComputeParams):
    """Parameters of the `extract-tracks` flow."""

    overwrite: bool = Field(False, description="recompute tracks of this config from scratch")


class EvaluateBaselinesParams(TrackerParams):
    """Parameters of `tp evaluate-baselines`: classical scorers on the test split."""

    split_seed: int = Field(0, description="seed of the train/val/test split by video")
    out: str | None = Field(None, description="folder for report.json and figures")


class TrainParams(TrackerParams):
    """Parameters of the `train` flow."""

    features: str = Field("statistical", description="statistical | magvit | hybrid")
    max_epochs: int = Field(40, description="upper bound; early stopping usually ends sooner")
    patience: int = Field(5, description="epochs without validation-loss gain before stopping")
    batch_size: int = Field(256, description="tracks per optimisation step")
    lr: float = Field(1e-3, description="AdamW learning rate")
    seed: int = Field(0, description="weights, dropout and shuffling")
    split_seed: int = Field(0, description="seed of the train/val/test split by video")
    checkpoints: str = Field("checkpoints", description="folder for per-epoch checkpoints")
    tokenizer_uri: str = Field(
        "models:/magvit-tokenizer@candidate", description="tokenizer whose cached features to use"
    )
    retrain: bool = Field(False, description="train anew even if this training finished before")

    @model_validator(mode="after")
    def _check_train(self) -> TrainParams:
        if self.features not in ("statistical", "magvit", "hybrid"):
            raise ValueError(
                f"features must be statistical, magvit or hybrid (got {self.features!r})."
            )
        for name in ("max_epochs", "patience", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1 (got {getattr(self, name)}).")
        if not 0 < self.lr < 1:
            raise ValueError(f"lr must be between 0 and 1 (got {self.lr}).")
        return self


class EvaluateParams(TrackerParams):
    """Parameters of the `evaluate` flow: a registered model beside every baseline."""

    model_uri: str = Field(
        "models:/track-persistence@candidate", description="MLflow model to evaluate"
    )
    out: str = Field("reports/latest", description="folder for the report and figures")


class TokenizerParams(BaseModel):
    """Parameters of the `train-tokenizer` flow."""

    model_config = ConfigDict(extra="forbid")

    store: str = Field(DEFAULT_STORE, description="Zarr store made by generate-data")
    steps: int = Field(800, description="optimisation steps")
    batch_size: int = Field(16, description="video clips per step")
    lr: float = Field(2e-3, description="AdamW learning rate")
    latent_dim: int = Field(256, description="continuous latent channels (cached features)")
    codebook_size: int = Field(1024, description="LFQ codebook entries (a power of two)")
    # Measured cache sizes for 2,500 videos, float16, blosc zstd + shuffle: 256 channels at
    # 16x16 cells 1.24 GB (over the 1 GB budget), at 8x8 0.31 GB. Keep the seed's width.
    spatial_downsample: int = Field(16, description="128 px / 16 = 8x8 latent cells")
    seed: int = Field(0, description="weights and batch sampling")
    split_seed: int = Field(0, description="seed of the split: trains on train videos only")
    checkpoints: str = Field("checkpoints", description="folder for tokenizer checkpoints")

    @model_validator(mode="after")
    def _check_tokenizer(self) -> TokenizerParams:
        for name in ("steps", "batch_size", "latent_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1 (got {getattr(self, name)}).")
        if not 0 < self.lr < 1:
            raise ValueError(f"lr must be between 0 and 1 (got {self.lr}).")
        for name in ("codebook_size", "spatial_downsample"):
            value = getattr(self, name)
            if value < 2 or value & (value - 1):
                raise ValueError(f"{name} must be a power of two >= 2 (got {value}).")
        return self


class FeaturesParams(ComputeParams):
    """Parameters of the `cache-features` flow."""

    store: str = Field(DEFAULT_STORE, description="Zarr store made by generate-data")
    tokenizer_uri: str = Field(
        "models:/magvit-tokenizer@candidate", description="registered tokenizer to encode with"
    )
    checkpoints: str = Field("checkpoints", description="where the tokenizer file is kept")
    batch_size: int = Field(8, description="videos encoded at once per worker")
    overwrite: bool = Field(False, description="recompute the cache for this key")

    @model_validator(mode="after")
    def _check_features(self) -> FeaturesParams:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1 (got {self.batch_size}).")
        return self
