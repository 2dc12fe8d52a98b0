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

from annotated_types import doc
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from storage.errors import ParameterError
from storage.paths import DEFAULT_STORE, absolute
from storage.registry import CANDIDATE, CHAMPION, TOKENIZER_NAME, alias_uri
from tasks.gate import DEFAULT_NOT_WORSE, GATE_METRICS, unknown_metrics
from tp_models.core.config import documentation
from tp_models.core.device import DEFAULT_DEVICE, DEVICE_CHOICES, DeviceError, resolve_device
from tp_models.families.names import FAMILIES, MODEL_FAMILY
from tp_models.magvit import TokenizerConfig, TokenizerTrainConfig
from tp_models.model import ModelConfig, TrainConfig
from tp_models.perception.tracker import TrackerConfig
from tp_models.tracks.matching import MatchConfig
from tp_models.tracks.table import OUTSIDE_POLICIES
from tp_models.world.config import SceneConfig
from tp_models.world.stone_soup import OPERATING_POINTS, TrackerScenario

DEFAULT_CHECKPOINTS = "checkpoints"
DEFAULT_REPORT = "reports/latest"
CANDIDATE_MODEL = alias_uri(CANDIDATE)
CHAMPION_MODEL = alias_uri(CHAMPION)
CANDIDATE_TOKENIZER = alias_uri(CANDIDATE, TOKENIZER_NAME)

# Blosc compresses one buffer of at most 2 GiB (less its header): a chunk is one buffer.
CODEC_MAX_CHUNK_BYTES = 2**31 - 2**10

StoreUrl = Annotated[str, Field(min_length=1), doc("Zarr store path or fsspec URL")]
Seed = Annotated[int, Field(ge=0)]
TracksKey = Annotated[
    str | None,
    doc("tracks group to use (a key `tp info` lists; default: the last extracted)"),
]
Features = Literal["statistical", "magvit", "hybrid"]
Family = Annotated[
    Literal[FAMILIES],  # type: ignore[valid-type]
    doc(
        "what to fit: the learned model (its architecture: --sequence) or a classical family "
        "(gradient boosting, IPDA, the track score, the best M-of-N), fitted or tuned on train "
        "and calibrated on validation"
    ),
]
Device = Annotated[
    Literal[DEVICE_CHOICES],  # type: ignore[valid-type]
    doc("where the model runs: auto picks a CUDA GPU when there is one"),
]


class Spec(BaseModel):
    """Immutable, and every key known: a typo in a parameter is an error, never ignored.

    Fields are documented as the domain configs' are, with ``doc`` in their ``Annotated``
    type; it becomes the field's description in the JSON schema (the Prefect UI form)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        for field in cls.model_fields.values():
            field.description = documentation(field.metadata) or None
        cls.model_rebuild(force=True)


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

    workers: Annotated[
        int | None, Field(ge=1, le=256), doc("local Dask workers (default: one per core)")
    ] = None
    dask_address: Annotated[
        str | None, doc("existing Dask scheduler, e.g. tcp://host:8786 (default: local)")
    ] = None

    def n_workers(self) -> int:
        return self.workers or os.cpu_count() or 1


class GenerateSpec(Spec):
    """`generate-data`: simulate the dataset into a store, then extract its tracks."""

    store: StoreUrl = DEFAULT_STORE
    persistent: Annotated[int, Field(ge=0), doc("videos with persistent objects")] = 1000
    brief: Annotated[int, Field(ge=0), doc("videos with brief objects only (1-3 frames)")] = 1000
    noise: Annotated[int, Field(ge=0), doc("videos with background clutter only")] = 250
    mixed: Annotated[int, Field(ge=0), doc("videos with persistent + brief + clutter")] = 250
    seed: Annotated[Seed, doc("random seed: same seed, same bytes")] = 0
    videos_per_chunk: Annotated[int, Field(ge=1), doc("videos per Zarr chunk (unit of work)")] = 25
    scene: SceneConfig = SceneConfig()
    extract_tracks: Annotated[bool, doc("extract tracks after generating")] = True
    tracker: TrackerConfig = TrackerConfig()
    overwrite: Annotated[bool, doc("replace a store made with other parameters")] = False
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
    overwrite: Annotated[bool, doc("recompute tracks of this config from scratch")] = False
    compute: Compute = Compute()


class BaselinesSpec(Spec):
    """`tp evaluate-baselines`: classical scorers on the test split."""

    store: StoreUrl = DEFAULT_STORE
    tracks: TracksKey = None
    split_seed: Annotated[Seed, doc("seed of the train/val/test split by video")] = 0
    out: Annotated[str | None, doc("folder for report.json and figures")] = None


class TrainSpec(Spec):
    """`train`: the persistence model on a store's tracks, registered in MLflow."""

    store: StoreUrl = DEFAULT_STORE
    tracks: TracksKey = None
    model: ModelConfig = ModelConfig()
    training: TrainConfig = TrainConfig()
    split_seed: Annotated[Seed, doc("seed of the train/val/test split by video")] = 0
    checkpoints: Annotated[str, doc("folder for per-epoch checkpoints")] = DEFAULT_CHECKPOINTS
    tokenizer_uri: Annotated[str, doc("tokenizer whose cached features magvit/hybrid read")] = (
        CANDIDATE_TOKENIZER
    )
    retrain: Annotated[bool, doc("train anew even if this training finished before")] = False
    device: Device = DEFAULT_DEVICE
    family: Family = MODEL_FAMILY
    train_videos: Annotated[
        int | None,
        Field(ge=1),
        doc(
            "train on this many of the train split's videos, a seeded subset keeping the type "
            "mix, nested (1k inside 4k), for learning curves; val and test stay whole "
            "(default: all)"
        ),
    ] = None


class EvaluateSpec(Spec):
    """`evaluate`: a registered model beside every classical baseline, on the test split."""

    store: StoreUrl = DEFAULT_STORE
    tracks: Annotated[TracksKey, doc("tracks group (default: the model's own)")] = None
    model_uri: Annotated[str, doc("MLflow model to evaluate")] = CANDIDATE_MODEL
    out: Annotated[str, doc("folder for the report and figures")] = DEFAULT_REPORT
    device: Device = DEFAULT_DEVICE


class TokenizerSpec(Spec):
    """`train-tokenizer`: the MagVit tokenizer on the store's train videos."""

    store: StoreUrl = DEFAULT_STORE
    tokenizer: TokenizerConfig = TokenizerConfig()
    training: TokenizerTrainConfig = TokenizerTrainConfig()
    split_seed: Annotated[Seed, doc("seed of the split: trains on train videos only")] = 0
    checkpoints: Annotated[str, doc("folder for tokenizer checkpoints")] = DEFAULT_CHECKPOINTS
    device: Device = DEFAULT_DEVICE


class FeaturesSpec(Spec):
    """`cache-features`: every video encoded by a registered tokenizer into the store."""

    store: StoreUrl = DEFAULT_STORE
    tokenizer_uri: Annotated[str, doc("registered tokenizer to use")] = CANDIDATE_TOKENIZER
    checkpoints: Annotated[str, doc("where tokenizer files are kept")] = DEFAULT_CHECKPOINTS
    batch_size: Annotated[int, Field(ge=1, le=4096), doc("videos encoded at once per worker")] = 8
    overwrite: Annotated[bool, doc("recompute the cache for this key")] = False
    device: Device = DEFAULT_DEVICE
    compute: Compute = Compute()


class PipelineSpec(Spec):
    """`pipeline`: generate -> tracks -> (tokenizer -> features) -> train -> evaluate."""

    generate: GenerateSpec = GenerateSpec()
    features: Annotated[Features, doc("what the model reads of each track")] = "statistical"
    sequence: Annotated[
        Literal["transformer", "gru"], doc("the sequence model (see `tp train --sequence`)")
    ] = ModelConfig.sequence
    training_seeds: Annotated[
        tuple[Seed, ...],
        Field(min_length=1, max_length=10),
        doc("train one model per seed; with several, every number is mean ± sd"),
    ] = (0,)
    out: Annotated[str, doc("folder for the report and figures")] = DEFAULT_REPORT


TrackFiles = Annotated[
    tuple[str, ...], Field(min_length=1), doc("tracker files (MOTChallenge or CSV)")
]


def _absolute_paths(paths: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(absolute(path) for path in paths)


# Made absolute where the spec is made (the user's shell, or the flow run's process): a Dask
# worker would resolve a relative path in its own working directory.
ScoreFiles = Annotated[TrackFiles, AfterValidator(_absolute_paths)]
ScoreOut = Annotated[
    str,
    Field(min_length=1, validate_default=True),
    AfterValidator(absolute),
    doc("folder for the scored files"),
]


class ScoreSpec(Spec):
    """`score`: every row of tracker files scored by a registered model, files written back."""

    files: ScoreFiles = ()
    out: ScoreOut = "scored"
    model_uri: Annotated[
        str | None, doc(f"MLflow model (default: {CHAMPION_MODEL}, else @candidate)")
    ] = None
    files_per_task: Annotated[int, Field(ge=1), doc("files one Dask task scores")] = 1
    overwrite: Annotated[
        bool, doc("replace existing files in out (an input too) with scored copies")
    ] = False
    compute: Compute = Compute()


class SimulateTrackerSpec(Spec):
    """`simulate-tracker`: Stone Soup sequences written as tracker files with ground truth."""

    out: Annotated[
        str, Field(min_length=1), doc("folder for the sequences, one sub-folder each")
    ] = "data/stonesoup"
    sequences: Annotated[int, Field(ge=1), doc("sequences to simulate")] = 200
    operating_point: Annotated[
        Literal[tuple(OPERATING_POINTS)] | None,  # type: ignore[valid-type]
        doc("a named operating point: sets the scenario's p_detect and clutter_rate"),
    ] = None
    scenario: TrackerScenario = TrackerScenario()
    seed: Annotated[Seed, doc("random seed: same seed, same files, whatever the workers")] = 0
    sequences_per_task: Annotated[int, Field(ge=1), doc("sequences one Dask task simulates")] = 10
    overwrite: Annotated[bool, doc("replace the folder of an earlier run")] = False
    compute: Compute = Compute()

    def resolved_scenario(self) -> TrackerScenario:
        """The scenario with the named operating point applied."""
        if self.operating_point is None:
            return self.scenario
        return self.scenario.with_operating_point(self.operating_point)


class ImportSpec(Spec):
    """`import-tracks`: tracker files (and their ground truth) as a store the rest reads."""

    files: TrackFiles = ()
    store: StoreUrl = DEFAULT_STORE
    gt: Annotated[
        tuple[str, ...], doc("ground-truth files, one per tracker file in the same order (labels)")
    ] = ()
    operating_points: Annotated[
        tuple[str, ...],
        doc(
            "operating-point files (frame,p_detect,clutter_rate per frame, as `simulate-tracker` "
            "writes), one per tracker file in the same order: the parameter oracle's truth"
        ),
    ] = ()
    match: MatchConfig = MatchConfig()
    window: Annotated[
        int, Field(ge=0), doc("cut sequences into items of this many frames (0: one per sequence)")
    ] = 0
    items_per_chunk: Annotated[int, Field(ge=1), doc("items per Zarr chunk")] = 8
    outside: Annotated[
        Literal[OUTSIDE_POLICIES],  # type: ignore[valid-type]
        doc(
            "rows whose centre is outside the frame (a target leaving the view): keep them as "
            "reported, clip them to the frame's edge, or drop them; the count is reported"
        ),
    ] = "keep"
    overwrite: Annotated[bool, doc("replace a store imported from other files")] = False

    @model_validator(mode="after")
    def _check(self) -> ImportSpec:
        for name, what in (("gt", "ground-truth"), ("operating_points", "operating-point")):
            given = getattr(self, name)
            if given and len(given) != len(self.files):
                raise ValueError(
                    f"{name}: give one {what} file per tracker file ({len(self.files)}), "
                    f"got {len(given)}"
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

    not_worse: Annotated[
        tuple[str, ...],
        Field(min_length=1),
        doc("report metrics the challenger may not lose: roc_auc_k3, recall_k5, ..."),
    ] = DEFAULT_NOT_WORSE
    tolerance: Annotated[float, Field(ge=0, le=1), doc("how much a not_worse metric may drop")] = (
        0.0
    )
    latency_allowance: Annotated[
        float, Field(ge=0), doc("extra median observations to confirmation the challenger may need")
    ] = 0.0

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
    families: Annotated[
        tuple[Family, ...],
        Field(min_length=1),
        doc("families to fit a challenger of; the best that passes the gate is promoted"),
    ] = FAMILIES
    gate: Gate = Gate()
    out: Annotated[str, doc("folder for both models' reports")] = "reports/retrain"


class PromoteSpec(Spec):
    """`promote`: make a version the champion by hand, with the same record as `retrain`."""

    version: Annotated[int, Field(ge=1), doc("the registered version to make champion")]
    store: Annotated[
        StoreUrl | None, doc("store to compare on (default: the one the version was trained on)")
    ] = None
    reason: Annotated[str, Field(min_length=1), doc("why, for the record")] = "promoted by hand"
    gate: Gate = Gate()
    out: Annotated[str, doc("folder for both models' reports")] = "reports/promote"
    device: Device = DEFAULT_DEVICE
