"""Feature groups: `features/<key>` caches a tokenizer's latents of every video of a store.

The key is (dataset fingerprint, tokenizer checkpoint hash): features made from other data
or another checkpoint are never mistaken for these. float16 latents (N, T', C, h, w),
chunked by whole videos like every other array, written by one task per chunk.
"""

from __future__ import annotations

from collections.abc import Sequence

from storage.chunked import ArraySpec, ChunkedGroup
from storage.dataset import open_dataset
from storage.errors import StoreError

FEATURES = "features"
LATENTS = "latents"


def features_path(dataset_fingerprint: str, checkpoint_hash: str) -> str:
    return f"{FEATURES}/{dataset_fingerprint}-{checkpoint_hash}"


def open_or_create_features(
    store: str,
    checkpoint_hash: str,
    latent_shape: Sequence[int],
    tokenizer_uri: str,
    overwrite: bool = False,
) -> ChunkedGroup:
    dataset = open_dataset(store)
    fingerprint = dataset.group.attrs.get("fingerprint")
    if not fingerprint:
        raise StoreError(f"store {store!r} is incomplete; finish it with `tp generate` first.")
    config = {
        "dataset_fingerprint": fingerprint,
        "checkpoint_hash": checkpoint_hash,
        "latent_shape": list(latent_shape),
    }
    group = ChunkedGroup.open_or_create(
        store,
        features_path(fingerprint, checkpoint_hash),
        kind=FEATURES,
        config=config,
        n_items=dataset.n_items,
        items_per_chunk=dataset.items_per_chunk,
        # Latents are dense floats: byte-shuffling groups their exponent bytes together.
        specs={LATENTS: ArraySpec(tuple(latent_shape), "float16", 0.0, "shuffle")},
        overwrite=overwrite,
    )
    # Informational only: one checkpoint has many URIs (@candidate, /3); the hash is the key.
    group.group.attrs["tokenizer_uri"] = tokenizer_uri
    return group


def open_features(store: str, checkpoint_hash: str, complete: bool = True) -> ChunkedGroup:
    """The cached latents of this store for this checkpoint, or a clear error saying what to run."""
    dataset = open_dataset(store)
    fingerprint = dataset.group.attrs.get("fingerprint", "")
    path = features_path(fingerprint, checkpoint_hash)
    group = ChunkedGroup.find(store, path, FEATURES)
    if group is None or (complete and not group.group.attrs.get("complete")):
        others = sorted(dataset.group[FEATURES].group_keys()) if FEATURES in dataset.group else []
        hint = f" (cached here: {', '.join(others)})" if others else ""
        raise StoreError(
            f"store {store!r} has no cached MagVit features for tokenizer checkpoint "
            f"{checkpoint_hash}{hint}; run `tp cache-features {store}` first."
        )
    return group
