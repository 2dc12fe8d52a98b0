"""MAGVIT-v2-style causal video tokenizer in pure PyTorch.

``config`` (the tokenizer's and its training's configs, torch-free), ``tokenizer`` (model,
layout conversions), ``checkpoint`` (strict save/load, hash),
``training`` (loop and metrics) and ``sampling`` (latents along tracks). No Prefect, Dask,
Zarr or MLflow in here.

Names are re-exported lazily: importing ``vector_quantize_pytorch`` costs seconds (it pulls
in einx), and code that only samples cached latents should not pay for it.
"""

from __future__ import annotations

from tp_models.core.lazy import lazy_exports

_EXPORTS = {
    "config": ("TokenizerConfig", "check_num_frames", "TokenizerTrainConfig"),
    "tokenizer": ("TokenizerOutput", "MagVitTokenizer", "to_model_input", "to_uint8"),
    "checkpoint": (
        "CheckpointMismatchError",
        "save_tokenizer",
        "load_tokenizer",
        "load_tokenizer_weights",
    ),
    "digest": ("checkpoint_hash", "is_checkpoint_hash"),
    "training": (
        "fit_tokenizer",
        "evaluate_tokenizer",
        "measure_encoding_speed",
        "psnr",
        "codebook_usage",
        "codebook_perplexity",
        "reconstruction_grid",
    ),
    "sampling": ("sample_latents_along_track", "latent_step_for_frames", "forward_fill_positions"),
}


__getattr__, __all__ = lazy_exports(__name__, _EXPORTS)
