"""Read-only views of a store: what it holds, how well it compresses, whether it is intact."""

from __future__ import annotations

from typing import Any

import numpy as np

from storage.chunked import ChunkedGroup
from storage.store import Store
from tp_models.scene import VIDEO_TYPES


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
    return info


def corrupted_chunks(group: ChunkedGroup) -> list[int]:
    """Chunks marked done whose bytes no longer match their checksum (or no longer decode)."""
    done = np.flatnonzero(group.done_chunks())
    return [int(c) for c in done if not group.verify_chunk(int(c))]


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
    if "corrupted_chunks" in info:
        bad = info["corrupted_chunks"]
        lines.append(
            "verify       all done chunks match their checksums"
            if not bad
            else f"verify       CORRUPTED chunks {bad}: re-run `tp generate` with the same "
            "parameters to redo them"
        )
    return "\n".join(lines)
