"""Model configuration, construction from config, and checkpoints.

A checkpoint is ``{"config": ModelConfig.to_dict(), "state_dict": ...}``: the config
rebuilds the exact architecture and the weights load strictly, so a checkpoint that does
not fit its code fails loudly instead of half-loading.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import torch
from annotated_types import doc

from tp_models.config import known_fields
from tp_models.device import resolve_device
from tp_models.model.extractors import ConcatExtractor, build_extractor
from tp_models.model.heads import PersistenceHead
from tp_models.model.interfaces import FeatureExtractor, ModularTrackingPipeline
from tp_models.model.sequence import SimpleTransformerSequence

FEATURE_SETS = ("statistical", "magvit", "hybrid")
CHECKPOINT_FORMAT = "tp_models.model.checkpoint/1"


@dataclass(frozen=True)
class ModelConfig:
    """Everything that fixes the architecture (and nothing about training)."""

    features: Annotated[
        Literal["statistical", "magvit", "hybrid"], doc("what the model reads of each track")
    ] = "statistical"
    hybrid_members: tuple[str, ...] = ("statistical", "magvit")
    frame_size: tuple[int, int] = (128, 128)  # (height, width), to normalise positions
    motion_scale: float = 4.0  # pixels/frame where velocity features stop being linear
    use_appearance: bool = False  # add size + colour to the statistical features
    track_features: Annotated[
        bool,
        doc(
            "also read the hand-made per-frame features gradient boosting reads (counts, "
            "motion, area, innovation likelihoods, clutter-map count)"
        ),
    ] = True
    feature_dim: int = 64
    extractor_hidden_dim: int = 64
    d_model: int = 64
    n_heads: int = 4
    n_layers: int = 4
    ff_dim: int = 128
    dropout: float = 0.1
    max_len: int = 500
    causal: bool = True
    positions: str = "track"  # "track": frames since first observation; "frame": absolute
    head_hidden_dim: int = 64
    # Options for extractors registered elsewhere (e.g. MagVit latent size); JSON values.
    extractor_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.features not in FEATURE_SETS:
            raise ValueError(f"features must be one of {FEATURE_SETS}, got {self.features!r}")
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
        from before ``track_features`` existed describes a model without them."""
        return cls(**{"track_features": False, **known_fields(cls, data)})


def _build_extractor(config: ModelConfig) -> FeatureExtractor:
    if config.features == "hybrid":
        return ConcatExtractor([build_extractor(name, config) for name in config.hybrid_members])
    return build_extractor(config.features, config)


def build_pipeline(config: ModelConfig, seed: int | None = None) -> ModularTrackingPipeline:
    """The pipeline ``config`` describes. With ``seed``, weights are initialised from that
    seed without disturbing the global torch RNG (reproducible runs)."""
    if seed is None:
        return _build(config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return _build(config)


def _build(config: ModelConfig) -> ModularTrackingPipeline:
    extractor = _build_extractor(config)
    sequence = SimpleTransformerSequence(
        input_dim=extractor.output_dim,
        d_model=config.d_model,
        n_heads=config.n_heads,
        n_layers=config.n_layers,
        ff_dim=config.ff_dim,
        dropout=config.dropout,
        max_len=config.max_len,
        causal=config.causal,
        positions=config.positions,
    )
    head = PersistenceHead(config.d_model, config.head_hidden_dim, config.dropout)
    pipeline = ModularTrackingPipeline(extractor, sequence, head, name=f"modular-{config.features}")
    pipeline.config = config
    return pipeline


def checkpoint_dict(
    pipeline: ModularTrackingPipeline, metadata: dict[str, Any] | None = None
) -> dict[str, Any]:
    """config + state_dict of a pipeline made by ``build_pipeline``; ``metadata`` (plain
    JSON-like values, e.g. the validated operating threshold) travels with the weights."""
    config = getattr(pipeline, "config", None)
    if not isinstance(config, ModelConfig):
        raise ValueError("pipeline has no ModelConfig; build it with build_pipeline(config)")
    return {
        "format": CHECKPOINT_FORMAT,
        "config": config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in pipeline.state_dict().items()},
        "metadata": dict(metadata or {}),
    }


def save_checkpoint(
    pipeline: ModularTrackingPipeline,
    path: str | os.PathLike[str],
    metadata: dict[str, Any] | None = None,
) -> None:
    torch.save(checkpoint_dict(pipeline, metadata), path)


def load_pipeline(
    source: str | os.PathLike[str] | dict[str, Any], map_location: str | torch.device = "cpu"
) -> ModularTrackingPipeline:
    """Rebuild a pipeline from a checkpoint (path or dict); weights load strictly.

    Returned in eval mode: a loaded model is for scoring unless the caller trains it.
    ``map_location``: where the weights go (a name ``resolve_device`` accepts); the file is
    read on the CPU first, so a checkpoint written from a GPU loads on any machine.
    """
    device = resolve_device(map_location)
    if isinstance(source, dict):
        checkpoint = source
    else:
        # weights_only: a checkpoint holds plain data, so never unpickle arbitrary objects.
        checkpoint = torch.load(source, map_location="cpu", weights_only=True)
    if checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(
            f"not a model checkpoint of format {CHECKPOINT_FORMAT!r} "
            f"(found format {checkpoint.get('format')!r})"
        )
    pipeline = build_pipeline(ModelConfig.from_dict(checkpoint["config"]))
    pipeline.load_state_dict(checkpoint["state_dict"], strict=True)
    return pipeline.to(device).eval()
