"""MAGVIT-v2-style causal video tokenizer in pure PyTorch.

``tokenizer`` (config, model, layout conversions), ``checkpoint`` (strict save/load, hash),
``training`` (loop and metrics) and ``sampling`` (latents along tracks). No Prefect, Dask,
Zarr or MLflow in here.

Names are re-exported lazily: importing ``vector_quantize_pytorch`` costs seconds (it pulls
in einx), and code that only samples cached latents should not pay for it.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "TokenizerConfig": "tokenizer",
    "TokenizerOutput": "tokenizer",
    "MagVitTokenizer": "tokenizer",
    "to_model_input": "tokenizer",
    "to_uint8": "tokenizer",
    "check_num_frames": "tokenizer",
    "CheckpointMismatchError": "checkpoint",
    "save_tokenizer": "checkpoint",
    "load_tokenizer": "checkpoint",
    "load_tokenizer_weights": "checkpoint",
    "checkpoint_hash": "digest",
    "is_checkpoint_hash": "digest",
    "TokenizerTrainConfig": "training",
    "fit_tokenizer": "training",
    "evaluate_tokenizer": "training",
    "measure_encoding_speed": "training",
    "psnr": "training",
    "codebook_usage": "training",
    "codebook_perplexity": "training",
    "reconstruction_grid": "training",
    "sample_latents_along_track": "sampling",
    "latent_step_for_frames": "sampling",
    "forward_fill_positions": "sampling",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f"{__name__}.{_EXPORTS[name]}")
    return getattr(module, name)
