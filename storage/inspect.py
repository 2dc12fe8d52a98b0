"""Read-only views of a store: what it holds, how well it compresses, whether it is intact."""

from __future__ import annotations

from typing import Any

import numpy as np

from storage.chunked import ChunkedGroup
from storage.features import FEATURES
from storage.store import Store
from storage.tracks import TRACKS
from tp_models.world.config import VIDEO_TYPES


def describe(path: str, verify: bool = False) -> dict[str, Any]:
    dataset = Store.open(path).dataset
    done = dataset.done_chunks()
    raw, stored = dataset.raw_bytes(), dataset.stored_bytes()
    info: dict[str, Any] = {
        "store": path,
        "videos": dataset.n_items,
        "video_shape": list(dataset.group["videos"].shape[1:]),
        "videos_per_chunk": dataset.items_per_chunk,
        # From the config, not the arrays: a garbled chunk must be reported, not crash this.
        "counts": dict(zip(VIDEO_TYPES, dataset.config["counts"], strict=True)),
        "chunks_done": int(done.sum()),
        "chunks_total": dataset.n_chunks,
        "raw_bytes": raw,
        "stored_bytes": stored,
        "compression_ratio": round(raw / stored, 1) if stored > 0 else None,
        "fingerprint": dataset.group.attrs.get("fingerprint"),
        "complete": bool(dataset.group.attrs.get("complete", False)),
        "config": dataset.config,
        "groups": sorted(dataset.group.group_keys()),
    }
    if verify:
        info["corrupted_chunks"] = corrupted_chunks(dataset)
        info["damaged_groups"] = damaged_groups(Store.open(path))
    return info


def corrupted_chunks(group: ChunkedGroup) -> list[int]:
    """Chunks marked done whose bytes no longer match their checksum (or no longer decode)."""
    done = np.flatnonzero(group.done_chunks())
    return [int(c) for c in done if not group.verify_chunk(int(c))]


def stale_chunks(group: ChunkedGroup, parent: ChunkedGroup) -> list[int]:
    """Done chunks of a derived group computed from a parent chunk that has since changed."""
    recorded, current = group.parent_checksums(), parent.checksums()
    return [int(c) for c in np.flatnonzero(group.done_chunks() & (recorded != current))]


def derived_groups(store: Store) -> dict[str, ChunkedGroup]:
    """Every tracks and features group of the store, by path."""
    found = {}
    for kind in (TRACKS, FEATURES):
        if kind in store.dataset.group:
            for key in sorted(store.dataset.group[kind].group_keys()):
                group = ChunkedGroup.find(store.url, f"{kind}/{key}", kind)
                if group is not None:
                    found[f"{kind}/{key}"] = group
    return found


def damaged_groups(store: Store) -> dict[str, dict[str, Any]]:
    """Per group with problems: corrupted and stale chunks, and the command that redoes them."""
    groups = {"dataset": store.dataset, **derived_groups(store)}
    damaged = {}
    for path, group in groups.items():
        corrupted = corrupted_chunks(group)
        stale = [] if group is store.dataset else stale_chunks(group, store.dataset)
        if corrupted or stale:
            damaged[path] = {
                "corrupted": corrupted,
                "stale": stale,
                "repair": group.repair_command(),
            }
    return damaged


def format_info(info: dict[str, Any]) -> str:
    mb = 1e6
    lines = [
        f"store        {info['store']}",
        f"videos       {info['videos']}  shape {tuple(info['video_shape'])}",
        "types        " + ", ".join(f"{k} {v}" for k, v in info["counts"].items()),
        f"chunks       {info['chunks_done']}/{info['chunks_total']} done "
        f"({info['videos_per_chunk']} videos each)",
        f"bytes        raw {info['raw_bytes'] / mb:.1f} MB, "
        f"stored {info['stored_bytes'] / mb:.1f} MB (ratio {info['compression_ratio']})",
        f"fingerprint  {info['fingerprint'] or '(incomplete)'}",
        f"groups       {', '.join(info['groups']) or '-'}",
    ]
    if "damaged_groups" in info:
        damaged = info["damaged_groups"]
        if not damaged:
            lines.append("verify       all done chunks of every group match their checksums")
        for path, problems in damaged.items():
            kinds = ("corrupted", "stale")
            found = [f"{kind} chunks {problems[kind]}" for kind in kinds if problems[kind]]
            lines.append(
                f"verify       {path}: {', '.join(found).upper()}: redo them with "
                f"{problems['repair']}"
            )
    return "\n".join(lines)
