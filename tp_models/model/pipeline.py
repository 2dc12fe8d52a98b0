"""Model configuration, construction from config, and checkpoints.

A checkpoint is ``{"config": ModelConfig.to_dict(), "state_dict": ...}``: the config
rebuilds the exact architecture and the weights load strictly, so a checkpoint that does
not fit its code fails loudly instead of half-loading.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from tp_models.core.checkpoint import check_state_dict_fits
from tp_models.core.device import resolve_device
from tp_models.model.config import ModelConfig
from tp_models.model.extractors import ConcatExtractor, build_extractor
from tp_models.model.heads import PersistenceHead
from tp_models.model.interfaces import FeatureExtractor, ModularTrackingPipeline, SequenceModel
from tp_models.model.recurrent import GRUSequence
from tp_models.model.sequence import SimpleTransformerSequence

CHECKPOINT_FORMAT = "tp_models.model.checkpoint/1"


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


def _build_sequence(config: ModelConfig, input_dim: int) -> SequenceModel:
    if config.sequence == "gru":
        return GRUSequence(input_dim, config.d_model, config.gru_layers, config.dropout)
    return SimpleTransformerSequence(
        input_dim=input_dim,
        d_model=config.d_model,
        n_heads=config.n_heads,
        n_layers=config.n_layers,
        ff_dim=config.ff_dim,
        dropout=config.dropout,
        max_len=config.max_len,
        causal=config.causal,
        positions=config.positions,
    )


def _build(config: ModelConfig) -> ModularTrackingPipeline:
    extractor = _build_extractor(config)
    sequence = _build_sequence(config, extractor.output_dim)
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
    # A checkpoint of an earlier version (other hand-made inputs: other shapes) is named so;
    # keys are left to the strict load (the head fills in a calibration that predates it).
    check_state_dict_fits(pipeline, checkpoint["state_dict"], keys=False)
    pipeline.load_state_dict(checkpoint["state_dict"], strict=True)
    return pipeline.to(device).eval()
