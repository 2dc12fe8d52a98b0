"""Read-only views of a store: what it holds, how well it compresses, whether it is intact."""

from __future__ import annotations

from typing import Any

import numpy as np

from storage.chunked import ChunkedGroup, CorruptChunkError
from storage.features import FEATURES
from storage.store import Store
from storage.tracks import TRACKS
from tp_models.world.config import VIDEO_TYPES


def describe(path: str, verify: bool = False) -> dict[str, Any]:
    store = Store.open(path)
    dataset = store.dataset
    done = dataset.done_chunks()
    raw, stored = dataset.raw_bytes(), dataset.stored_bytes()
    # An array whose metadata is gone is not listed: verify reports its chunks as corrupted.
    videos = dataset.group["videos"] if "videos" in dataset.array_names else None
    info: dict[str, Any] = {
        "store": path,
        "imported": store.imported,
        "videos": 0 if store.imported else dataset.n_items,
        "items": dataset.n_items,
        "video_shape": None if videos is None else list(videos.shape[1:]),
        "videos_per_chunk": dataset.items_per_chunk,
        "counts": _counts(store),
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


def _counts(store: Store) -> dict[str, int]:
    """Items per type: a generated store's from its config, not the arrays (a garbled chunk
    must be reported, not crash this); an imported store's from its done chunks."""
    if not store.imported:
        return dict(zip(VIDEO_TYPES, store.dataset.config["counts"], strict=True))
    names = store.video_type_names
    counts = dict.fromkeys(names, 0)
    for chunk in np.flatnonzero(store.dataset.done_chunks()):
        try:
            types = store.dataset.read_chunk(int(chunk), ["video_type"])["video_type"]
        except CorruptChunkError:
            continue  # `--verify` names it
        for name, n in zip(
            names, np.bincount(types[types >= 0], minlength=len(names)), strict=False
        ):
            counts[name] += int(n)
    return counts


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
        edited = group.edited_attributes()
        if corrupted or stale or edited:
            damaged[path] = {
                "corrupted": corrupted,
                "stale": stale,
                **({"edited": edited} if edited else {}),
                "repair": group.repair_command(),
            }
    return damaged


def format_info(info: dict[str, Any]) -> str:
    mb = 1e6
    imported = info.get("imported", False)
    what = "items" if imported else "videos"
    shape = info["video_shape"]
    lines = [
        f"store        {info['store']}" + ("  (imported tracks, no videos)" if imported else ""),
        f"{what:<13}{info['items']}"
        + ("" if imported else f"  shape {'-' if shape is None else tuple(shape)}"),
        "types        " + ", ".join(f"{k} {v}" for k, v in info["counts"].items()),
        f"chunks       {info['chunks_done']}/{info['chunks_total']} done "
        f"({info['videos_per_chunk']} {what} each)",
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
            if found:
                lines.append(
                    f"verify       {path}: {', '.join(found).upper()}: redo them with "
                    f"{problems['repair']}"
                )
            if problems.get("edited"):
                lines.append(f"verify       EDITED ATTRIBUTES: {problems['edited']}")
    return "\n".join(lines)
