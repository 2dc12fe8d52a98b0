"""The persistence model's two configs, plain data importable without torch (the CLI builds
its options from them): ``ModelConfig``, everything that fixes the architecture (and nothing
about training), with the feature sets it can read; ``TrainConfig``, how it is trained.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from annotated_types import Ge, Interval, doc

from tp_models.core.config import known_fields
from tp_models.tracks.table import DEFAULT_FORGET_AFTER

FEATURE_SETS = ("statistical", "magvit", "hybrid")
SEQUENCE_MODELS = ("transformer", "gru")


@dataclass(frozen=True)
class ModelConfig:
    """Everything that fixes the architecture (and nothing about training)."""

    features: Annotated[
        Literal["statistical", "magvit", "hybrid"], doc("what the model reads of each track")
    ] = "statistical"
    hybrid_members: Annotated[tuple[str, ...], doc("feature sets a hybrid model concatenates")] = (
        "statistical",
        "magvit",
    )
    frame_size: Annotated[
        tuple[int, int],
        doc("(height, width) of the frames, to normalise positions (filled from the store)"),
    ] = (128, 128)
    motion_scale: Annotated[float, doc("px/frame where velocity features stop being linear")] = 4.0
    use_appearance: Annotated[bool, doc("add size and colour to the statistical features")] = False
    track_features: Annotated[
        bool,
        doc(
            "also read the hand-made per-frame features gradient boosting reads (counts, "
            "motion, area, innovation likelihoods, clutter-map count, the scene's rates)"
        ),
    ] = True
    sequence: Annotated[
        Literal["transformer", "gru"],
        doc(
            "the sequence model: gru keeps a fixed-size state per track (a frame costs the "
            "same at any age); transformer attends to every earlier step of the track "
            "(inspectable attention, cost grows with age, lives up to max_len steps)"
        ),
    ] = "transformer"
    feature_dim: Annotated[int, doc("width of the extractor's per-step features")] = 64
    extractor_hidden_dim: Annotated[int, doc("hidden width of the extractor's MLP")] = 64
    d_model: Annotated[int, doc("width of the sequence model")] = 64
    n_heads: Annotated[int, doc("attention heads of the transformer (must divide d_model)")] = 4
    n_layers: Annotated[int, doc("transformer layers")] = 4
    gru_layers: Annotated[int, doc("GRU layers")] = 2
    ff_dim: Annotated[int, doc("width of each transformer layer's feed-forward block")] = 128
    dropout: Annotated[float, doc("dropout rate while training")] = 0.1
    max_len: Annotated[int, doc("longest track life (steps) the positional encoding covers")] = 500
    causal: Annotated[bool, doc("each step attends to earlier steps only (online scoring)")] = True
    positions: Annotated[
        str, doc("track: positions count frames since the first observation; frame: absolute")
    ] = "track"
    head_hidden_dim: Annotated[int, doc("hidden width of the persistence head")] = 64
    extractor_options: Annotated[
        dict[str, Any],
        doc("options of extractors registered elsewhere (e.g. MagVit latent size), JSON values"),
    ] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.features not in FEATURE_SETS:
            raise ValueError(f"features must be one of {FEATURE_SETS}, got {self.features!r}")
        if self.sequence not in SEQUENCE_MODELS:
            raise ValueError(f"sequence must be one of {SEQUENCE_MODELS}, got {self.sequence!r}")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}")
        # Normalise JSON lists back to tuples so from_dict(to_dict(c)) == c.
        object.__setattr__(self, "hybrid_members", tuple(self.hybrid_members))
        object.__setattr__(self, "frame_size", tuple(int(v) for v in self.frame_size))

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible dict (tuples become lists)."""
        out = dataclasses.asdict(self)
        out["hybrid_members"] = list(self.hybrid_members)
        out["frame_size"] = list(self.frame_size)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Inverse of ``to_dict``; unknown keys are an error, not silently dropped. A config
        from before ``track_features`` (``sequence``) existed describes a model without them
        (a transformer)."""
        older = {"track_features": False, "sequence": "transformer"}
        return cls(**{**older, **known_fields(cls, data)})


@dataclass(frozen=True)
class TrainConfig:
    lr: Annotated[float, Interval(gt=0, lt=1), doc("AdamW learning rate")] = 1e-3
    weight_decay: Annotated[float, Ge(0), doc("AdamW weight decay")] = 1e-2
    batch_size: Annotated[int, Ge(1), doc("tracks per optimisation step")] = 256
    max_epochs: Annotated[int, Ge(1), doc("upper bound; early stopping usually ends sooner")] = 40
    patience: Annotated[int, Ge(1), doc("epochs without validation-loss gain before stopping")] = 5
    min_delta: Annotated[
        float, doc("an improvement must beat the best validation loss by more than this")
    ] = 0.0
    seed: Annotated[int, Ge(0), doc("weights, dropout and shuffling")] = 0
    grad_clip: Annotated[float | None, doc("max gradient norm; None to disable")] = 1.0
    shuffle: Annotated[bool, doc("shuffle tracks within each batch the source yields")] = True
    # Steps that carry the track's label: first observation .. end of the video ("end"),
    # or .. last observation. "end" is the default because a causal model can only learn
    # that a track was brief from the frames after it vanished: at its last observation a
    # brief track that moves like a real one looks exactly like a real one.
    valid_until: Annotated[
        str,
        doc(
            "steps that carry the track's label: first observation to the end of the video "
            "(end) or to the last observation (last_observation)"
        ),
    ] = "end"
    forget_after: Annotated[
        Annotated[int, Ge(0)] | None,
        doc(
            "steps past a track's last observation that still carry its label: the scorer's "
            "forget_after, beyond which it never scores the track (none: to the video's end)"
        ),
    ] = DEFAULT_FORGET_AFTER
    online_k: Annotated[int, doc("validation F1 also on the score at the k-th observation")] = 3
    threshold: Annotated[float, doc("decision threshold of the validation F1 while training")] = 0.5

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        return cls(**known_fields(cls, data))
