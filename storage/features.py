"""Feature groups: `features/<key>` caches a tokenizer's latents of every video of a store.

The key is (dataset fingerprint, tokenizer checkpoint hash): features made from other data
or another checkpoint are never mistaken for these. float16 latents (N, T', C, h, w),
chunked by whole videos like every other array, written by one task per chunk.
"""

from __future__ import annotations

FEATURES = "features"
LATENTS = "latents"
LATENT_DIMS = ("latent_step", "latent_channel", "latent_y", "latent_x")


def features_path(dataset_fingerprint: str, checkpoint_hash: str) -> str:
    return f"{FEATURES}/{dataset_fingerprint}-{checkpoint_hash}"
