"""Tokenizer checkpoints: config + state dict in one file, loaded strictly.

A checkpoint is a plain dict ``{"format", "format_version", "config", "state_dict"}`` saved
with ``torch.save`` and read with ``torch.load(weights_only=True)`` (no pickled code runs).
Loading rebuilds the model from the stored config and requires every key and shape to
match; anything else raises :class:`CheckpointMismatchError` naming the mismatch. (A
prototype loaded with ``strict=False``, printed "Loaded" and ran with random weights.)
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from tp_models.core.checkpoint import CheckpointMismatchError, check_state_dict_fits
from tp_models.core.device import resolve_device

# Re-exported: callers have always found the hash here.
from tp_models.magvit.digest import checkpoint_hash as checkpoint_hash
from tp_models.magvit.tokenizer import MagVitTokenizer, TokenizerConfig

CHECKPOINT_FORMAT = "tp-magvit-tokenizer"
CHECKPOINT_FORMAT_VERSION = 1


def save_tokenizer(model: MagVitTokenizer, path: str | os.PathLike[str]) -> Path:
    """Write ``model`` (config + weights) to ``path`` atomically; returns the path.

    Written to a temporary file in the same directory and renamed, so a killed run never
    leaves a truncated checkpoint under the final name (the feature cache is keyed by the
    file's hash).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_FORMAT_VERSION,
        "config": model.config.to_dict(),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
    }
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(payload, handle)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and validate the envelope of a checkpoint (not its fit to a model)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Tokenizer checkpoint not found: {path}.")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling errors come in many types
        raise CheckpointMismatchError(
            f"{path} is not a readable tokenizer checkpoint ({type(exc).__name__}: {exc})."
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointMismatchError(
            f"{path} is not a tokenizer checkpoint (expected format '{CHECKPOINT_FORMAT}'); "
            "create one with save_tokenizer()."
        )
    version = payload.get("format_version")
    if version != CHECKPOINT_FORMAT_VERSION:
        raise CheckpointMismatchError(
            f"{path} has checkpoint format version {version}; this code reads version "
            f"{CHECKPOINT_FORMAT_VERSION}."
        )
    for key, kind in (("config", dict), ("state_dict", dict)):
        if not isinstance(payload.get(key), kind):
            raise CheckpointMismatchError(f"{path} has no '{key}' dict.")
    return payload


def _config_differences(expected: TokenizerConfig, found: TokenizerConfig) -> list[str]:
    exp, got = expected.to_dict(), found.to_dict()
    return [f"{k}={got[k]!r} (expected {exp[k]!r})" for k in exp if exp[k] != got[k]]


def load_tokenizer(
    path: str | os.PathLike[str],
    expected_config: TokenizerConfig | None = None,
    map_location: str | torch.device = "cpu",
) -> MagVitTokenizer:
    """Rebuild a tokenizer from a checkpoint, in eval mode.

    ``expected_config``: if given, the checkpoint's config must equal it (a caller that
    needs, e.g., 8x8 latents gets an error instead of a differently shaped cache).
    ``map_location``: where the weights go (a name ``resolve_device`` accepts); the file is
    always read on the CPU first, so one written from a GPU loads on any machine.
    """
    device = resolve_device(map_location)
    payload = read_checkpoint(path)
    try:
        config = TokenizerConfig.from_dict(dict(payload["config"]))
    except (TypeError, ValueError) as exc:
        raise CheckpointMismatchError(f"{path} holds an invalid tokenizer config: {exc}") from exc
    if expected_config is not None and config != expected_config:
        diffs = _config_differences(expected_config, config)
        raise CheckpointMismatchError(
            f"{path} was trained with a different tokenizer config: {'; '.join(diffs)}."
        )
    model = MagVitTokenizer(config)
    check_state_dict_fits(
        model, payload["state_dict"], source=f"checkpoint {path}", what="tokenizer"
    )
    model.load_state_dict(payload["state_dict"], strict=True)
    return model.to(device).eval()


def load_tokenizer_weights(model: MagVitTokenizer, path: str | os.PathLike[str]) -> None:
    """Load a checkpoint into an existing model; its config must equal the model's."""
    payload = read_checkpoint(path)
    stored = TokenizerConfig.from_dict(dict(payload["config"]))
    if stored != model.config:
        diffs = _config_differences(model.config, stored)
        raise CheckpointMismatchError(
            f"{path} was saved from a different tokenizer config: {'; '.join(diffs)}."
        )
    check_state_dict_fits(
        model, payload["state_dict"], source=f"checkpoint {path}", what="tokenizer"
    )
    model.load_state_dict(payload["state_dict"], strict=True)
