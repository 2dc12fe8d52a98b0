"""One typed spec per stage: what a run of that stage is asked to do.

A spec *contains* the domain configs (`SceneConfig`, `TrackerConfig`, `ModelConfig`,
`TrainConfig`, the tokenizer configs) instead of restating their fields, so every default
and every limit lives in one place: the domain dataclass. Pydantic validates those
dataclasses field by field (their `Annotated` limits end up in the JSON schema, so the
Prefect UI form refuses `persistent: -1` at submit time) and runs their own checks.

The same spec object travels unchanged from the CLI (which is generated from it) to the
flow (its one parameter) to the tasks. Only plain values cross a process boundary: the
store is a URL here, opened once per process as a `storage.store.Store`.
"""

from __future__ import annotations

import os
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from storage.errors import ParameterError
from storage.mlflow_store import MODEL_NAME, TOKENIZER_NAME
from storage.store import DEFAULT_STORE
from tasks.gate import DEFAULT_NOT_WORSE, GATE_METRICS, unknown_metrics
from tp_models.device import DEFAULT_DEVICE, DEVICE_CHOICES, DeviceError, resolve_device
from tp_models.magvit import TokenizerConfig, TokenizerTrainConfig
from tp_models.matching import MatchConfig
from tp_models.model import ModelConfig, TrainConfig
from tp_models.scene import SceneConfig
from tp_models.tracker import TrackerConfig

DEFAULT_CHECKPOINTS = "checkpoints"
DEFAULT_REPORT = "reports/latest"
CANDIDATE_MODEL = f"models:/{MODEL_NAME}@candidate"
CHAMPION_MODEL = f"models:/{MODEL_NAME}@champion"
CANDIDATE_TOKENIZER = f"models:/{TOKENIZER_NAME}@candidate"

# Blosc compresses one buffer of at most 2 GiB (less its header): a chunk is one buffer.
CODEC_MAX_CHUNK_BYTES = 2**31 - 2**10

StoreUrl = Annotated[str, Field(min_length=1, description="Zarr store path or fsspec URL")]
Seed = Annotated[int, Field(ge=0)]
TracksKey = Annotated[
    str | None,
    Field(description="tracks group to use (a key `tp info` lists; default: the last extracted)"),
]
Features = Literal["statistical", "magvit", "hybrid"]
Device = Annotated[
    Literal[DEVICE_CHOICES],  # type: ignore[valid-type]
    Field(description="where the model runs: auto picks a CUDA GPU when there is one"),
]


class Spec(BaseModel):
    """Immutable, and every key known: a typo in a parameter is an error, never ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


S = TypeVar("S", bound=Spec)


def parse(spec: type[S], values: dict[str, Any]) -> S:
    """Build a spec, or raise ParameterError with one sentence naming the parameter."""
    try:
        return spec.model_validate(values)
    except ValidationError as exc:
        raise ParameterError(explain(exc)) from None


def explain(error: ValidationError) -> str:
    """The first validation problem as one sentence (pydantic's own text is for developers)."""
    first = error.errors()[0]
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    where = ".".join(str(part) for part in first.get("loc", ()))
    if not where or where in message:
        return message
    value = first.get("input")
    shown = "" if isinstance(value, dict) else f" (got {value!r})"
    return f"{where}: {message[0].lower()}{message[1:]}{shown}"


class Compute(Spec):
    """Where chunked work runs."""

    workers: int | None = Field(
        None, ge=1, le=256, description="local Dask workers (default: one per core)"
    )
    dask_address: str | None = Field(
        None, description="existing Dask scheduler, e.g. tcp://host:8786 (default: local)"
    )

    def n_workers(self) -> int:
        return self.workers or os.cpu_count() or 1


class GenerateSpec(Spec):
    """`generate-data`: simulate the dataset into a store, then extract its tracks."""

    store: StoreUrl = DEFAULT_STORE
    persistent: int = Field(1000, ge=0, description="videos with persistent objects")
    brief: int = Field(1000, ge=0, description="videos with brief objects only (1-3 frames)")
    noise: int = Field(250, ge=0, description="videos with background clutter only")
    mixed: int = Field(250, ge=0, description="videos with persistent + brief + clutter")
    seed: Seed = Field(0, description="random seed: same seed, same bytes")
    videos_per_chunk: int = Field(25, ge=1, description="videos per Zarr chunk (unit of work)")
    scene: SceneConfig = SceneConfig()
    extract_tracks: bool = Field(True, description="extract tracks after generating")
    tracker: TrackerConfig = TrackerConfig()
    overwrite: bool = Field(False, description="replace a store made with other parameters")
    compute: Compute = Compute()

    @model_validator(mode="after")
    def _check(self) -> GenerateSpec:
        if self.n_videos == 0:
            raise ValueError(
                "persistent, brief, noise and mixed are all 0: ask for at least one video."
            )
        self.scene.validate()
        self._check_chunk_size()
        return self

    def _check_chunk_size(self) -> None:
        """A videos chunk must fit the codec: refuse, naming both knobs, before any work."""
        per_video = self.scene.frames * self.scene.size * self.scene.size * 3
        if self.videos_per_chunk * per_video <= CODEC_MAX_CHUNK_BYTES:
            return
        fits = CODEC_MAX_CHUNK_BYTES // per_video
        lower = (
            f"lower videos_per_chunk to at most {fits}"
            if fits
            else "one video alone is too large: lower scene.size or scene.frames"
        )
        raise ValueError(
            f"a chunk of {self.videos_per_chunk} videos of {self.scene.frames}x{self.scene.size}"
            f"x{self.scene.size} RGB is {self.videos_per_chunk * per_video / 2**30:.1f} GiB, over "
            f"the 2 GiB the codec can hold; {lower} (or lower scene.size)."
        )

    @property
    def counts(self) -> list[int]:
        return [self.persistent, self.brief, self.noise, self.mixed]

    @property
    def n_videos(self) -> int:
        return sum(self.counts)

    def data_config(self) -> dict[str, Any]:
        """What defines the bytes of the store (not how or where they are computed)."""
        return {
            "scene": self.scene.to_dict(),
            "counts": self.counts,
            "seed": self.seed,
            "videos_per_chunk": self.videos_per_chunk,
        }

    def tracks(self) -> TracksSpec:
        return TracksSpec(store=self.store, tracker=self.tracker, compute=self.compute)


class TracksSpec(Spec):
    """`extract-tracks`: detection + tracking on a store's videos."""

    store: StoreUrl = DEFAULT_STORE
    tracker: TrackerConfig = TrackerConfig()
    overwrite: bool = Field(False, description="recompute tracks of this config from scratch")
    compute: Compute = Compute()


class BaselinesSpec(Spec):
    """`tp evaluate-baselines`: classical scorers on the test split."""

    store: StoreUrl = DEFAULT_STORE
    tracks: TracksKey = None
    split_seed: Seed = Field(0, description="seed of the train/val/test split by video")
    out: str | None = Field(None, description="folder for report.json and figures")


class TrainSpec(Spec):
    """`train`: the persistence model on a store's tracks, registered in MLflow."""

    store: StoreUrl = DEFAULT_STORE
    tracks: TracksKey = None
    model: ModelConfig = ModelConfig()
    training: TrainConfig = TrainConfig()
    split_seed: Seed = Field(0, description="seed of the train/val/test split by video")
    checkpoints: str = Field(DEFAULT_CHECKPOINTS, description="folder for per-epoch checkpoints")
    tokenizer_uri: str = Field(
        CANDIDATE_TOKENIZER, description="tokenizer whose cached features magvit/hybrid read"
    )
    retrain: bool = Field(False, description="train anew even if this training finished before")
    device: Device = DEFAULT_DEVICE


class EvaluateSpec(Spec):
    """`evaluate`: a registered model beside every classical baseline, on the test split."""

    store: StoreUrl = DEFAULT_STORE
    tracks: TracksKey = Field(None, description="tracks group (default: the model's own)")
    model_uri: str = Field(CANDIDATE_MODEL, description="MLflow model to evaluate")
    out: str = Field(DEFAULT_REPORT, description="folder for the report and figures")
    device: Device = DEFAULT_DEVICE


class TokenizerSpec(Spec):
    """`train-tokenizer`: the MagVit tokenizer on the store's train videos."""

    store: StoreUrl = DEFAULT_STORE
    tokenizer: TokenizerConfig = TokenizerConfig()
    training: TokenizerTrainConfig = TokenizerTrainConfig()
    split_seed: Seed = Field(0, description="seed of the split: trains on train videos only")
    checkpoints: str = Field(DEFAULT_CHECKPOINTS, description="folder for tokenizer checkpoints")
    device: Device = DEFAULT_DEVICE


class FeaturesSpec(Spec):
    """`cache-features`: every video encoded by a registered tokenizer into the store."""

    store: StoreUrl = DEFAULT_STORE
    tokenizer_uri: str = Field(CANDIDATE_TOKENIZER, description="registered tokenizer to use")
    checkpoints: str = Field(DEFAULT_CHECKPOINTS, description="where tokenizer files are kept")
    batch_size: int = Field(8, ge=1, le=4096, description="videos encoded at once per worker")
    overwrite: bool = Field(False, description="recompute the cache for this key")
    device: Device = DEFAULT_DEVICE
    compute: Compute = Compute()


class PipelineSpec(Spec):
    """`pipeline`: generate -> tracks -> (tokenizer -> features) -> train -> evaluate."""

    generate: GenerateSpec = GenerateSpec()
    features: Features = Field("statistical", description="what the model reads of each track")
    training_seeds: tuple[Seed, ...] = Field(
        (0,),
        min_length=1,
        max_length=10,
        description="train one model per seed; with several, every number is mean ± sd",
    )
    out: str = Field(DEFAULT_REPORT, description="folder for the report and figures")


TrackFiles = Annotated[
    tuple[str, ...], Field(min_length=1, description="tracker files (MOTChallenge or CSV)")
]


class ScoreSpec(Spec):
    """`score`: every row of tracker files scored by a registered model, files written back."""

    files: TrackFiles = ()
    out: str = Field("scored", min_length=1, description="folder for the scored files")
    model_uri: str | None = Field(
        None, description=f"MLflow model (default: {CHAMPION_MODEL}, else @candidate)"
    )
    files_per_task: int = Field(1, ge=1, description="files one Dask task scores")
    overwrite: bool = Field(
        False, description="replace existing files in out (an input too) with scored copies"
    )
    compute: Compute = Compute()


class ImportSpec(Spec):
    """`import-tracks`: tracker files (and their ground truth) as a store the rest reads."""

    files: TrackFiles = ()
    store: StoreUrl = DEFAULT_STORE
    gt: tuple[str, ...] = Field(
        (), description="ground-truth files, one per tracker file in the same order (labels)"
    )
    match: MatchConfig = MatchConfig()
    window: int = Field(
        0, ge=0, description="cut sequences into items of this many frames (0: one per sequence)"
    )
    items_per_chunk: int = Field(8, ge=1, description="items per Zarr chunk")
    overwrite: bool = Field(False, description="replace a store imported from other files")

    @model_validator(mode="after")
    def _check(self) -> ImportSpec:
        if self.gt and len(self.gt) != len(self.files):
            raise ValueError(
                f"gt: give one ground-truth file per tracker file ({len(self.files)}), "
                f"got {len(self.gt)}"
            )
        return self


def checked_device(name: str) -> str:
    """`name` if this machine has that device, else ParameterError (for a flow's `check`)."""
    try:
        resolve_device(name)
    except DeviceError as exc:
        raise ParameterError(str(exc)) from None
    return name


class Gate(Spec):
    """When a challenger replaces the champion: not worse in `not_worse` (within `tolerance`)
    and confirming persistent tracks at most `latency_allowance` observations later (median),
    all on the same test split of the same data."""

    not_worse: tuple[str, ...] = Field(
        DEFAULT_NOT_WORSE,
        min_length=1,
        description="report metrics the challenger may not lose: roc_auc_k3, recall_k5, ...",
    )
    tolerance: float = Field(0.0, ge=0, le=1, description="how much a not_worse metric may drop")
    latency_allowance: float = Field(
        0.0, ge=0, description="extra median observations to confirmation the challenger may need"
    )

    @model_validator(mode="after")
    def _known(self) -> Gate:
        unknown = unknown_metrics(self.not_worse)
        if unknown:
            raise ValueError(
                f"gate.not_worse names unknown metric {unknown[0]!r}; use names from "
                f"{', '.join(GATE_METRICS)}."
            )
        return self


class RetrainSpec(Spec):
    """`retrain`: train a challenger, judge it against `@champion` by the gate, promote or keep."""

    train: TrainSpec = TrainSpec()  # the flow always trains anew (a new challenger each run)
    gate: Gate = Gate()
    out: str = Field("reports/retrain", description="folder for both models' reports")


class PromoteSpec(Spec):
    """`promote`: make a version the champion by hand, with the same record as `retrain`."""

    version: int = Field(..., ge=1, description="the registered version to make champion")
    store: StoreUrl | None = Field(
        None, description="store to compare on (default: the one the version was trained on)"
    )
    reason: str = Field("promoted by hand", min_length=1, description="why, for the record")
    gate: Gate = Gate()
    out: str = Field("reports/promote", description="folder for both models' reports")
    device: Device = DEFAULT_DEVICE
