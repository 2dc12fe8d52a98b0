"""Reading tracks back for scoring and training: chunk by chunk, never the videos.

Memory stays flat as the dataset grows: a reader holds one chunk of track arrays at a time
(a few MB), and selects the videos of a split from it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from storage.chunked import ChunkedGroup
from storage.features import LATENTS
from storage.store import Store
from storage.tracks import QUALITY_PREFIX
from tp_models.core.batch import TrackBatch, TrackMeta
from tp_models.scorers.existence import ORACLE_EXTRAS, ORACLE_NEEDS
from tp_models.tracks.arrays import arrays_to_batch, arrays_to_meta

TRACK_FIELDS = ("position", "observed", "area", "color", "loglik", "label", "kind", "n_tracks")


@dataclass
class TrackSource:
    """The tracks of one store under one tracker config (and, optionally, cached latents)."""

    store: Store
    tracks: ChunkedGroup
    features: ChunkedGroup | None = None  # cached MagVit latents, sampled along each track

    @classmethod
    def open(
        cls, store: Store, tracks_key: str | None = None, features_hash: str | None = None
    ) -> TrackSource:
        """`tracks_key` None: the tracks extracted last; `features_hash`: a tokenizer's cache."""
        features = store.features(features_hash) if features_hash else None
        return cls(store, store.tracks(tracks_key), features)

    @property
    def video_types(self) -> np.ndarray:
        return self.store.video_types

    @property
    def tracks_key(self) -> str:
        return str(self.tracks.group.basename)

    @property
    def tracker(self) -> dict[str, Any]:
        """The tracker config these tracks were extracted with."""
        return dict(self.tracks.config["tracker"])

    @property
    def latent_dim(self) -> int | None:
        return None if self.features is None else int(self.features.group[LATENTS].shape[2])

    @property
    def knows_operating_points(self) -> bool:
        """Whether every track's true operating point is known (the synthetic world draws and
        stores it; an import given operating-point files keeps it), so the parameter oracle
        is one."""
        return set(ORACLE_NEEDS) <= set(self.store.operating_points)

    @property
    def fingerprint(self) -> str:
        """Identifies the data a model saw, as it is now: the dataset's fingerprint and the
        tracks' (and features') live fingerprints, which change when a chunk or the parent
        chunk it was made from changes (every chunk read is verified against them)."""
        parts = [self.store.fingerprint, self.tracks.fingerprint()]
        if self.features is not None:
            parts.append(self.features.fingerprint())
        return "-".join(parts)

    def chunk_batches(
        self, videos: np.ndarray, chunk_order: np.ndarray | None = None
    ) -> Iterator[tuple[TrackBatch, TrackMeta]]:
        """(batch, meta) of the tracks of `videos`, one store chunk at a time."""
        wanted = np.zeros(self.tracks.n_items, dtype=bool)
        wanted[videos] = True
        chunks = np.unique(np.asarray(videos) // self.tracks.items_per_chunk)
        for chunk in chunks if chunk_order is None else chunks[chunk_order]:
            start, stop = self.tracks.bounds(int(chunk))
            arrays = self.tracks.read_chunk(int(chunk), TRACK_FIELDS)
            keep = wanted[start:stop]
            arrays = {name: value[keep] for name, value in arrays.items()}
            offsets = np.flatnonzero(keep) + start
            batch = arrays_to_batch(arrays)
            rows = batch.video
            batch.video = offsets[rows]  # row index within the selection -> store index
            sizes = self.store.item_frame_sizes(start, stop)
            if sizes is not None:  # imported: positions are normalised by each item's frames
                batch.frame_size = sizes[keep][rows].astype(np.float64)
            if self.features is not None:
                latents = self.features.read_chunk(int(chunk), [LATENTS])[LATENTS][keep]
                batch.extras["magvit"] = self._sample(latents, rows, batch.position)
            # The simulator's true operating point of each track's video (or item, at every
            # frame), for the parameter oracle (scorers never see labels; these are the
            # world's known parameters).
            for name, values in self.store.operating_points.items():
                if name in ORACLE_EXTRAS:
                    batch.extras[name] = values[batch.video]
            types = self.video_types[offsets]
            meta = arrays_to_meta(arrays, types, type_names=self.store.video_type_names)
            bins = self.store.operating_bins
            if bins is not None:
                meta.bin = bins[batch.video]
            yield batch, meta

    def load(self, videos: np.ndarray) -> tuple[TrackBatch, TrackMeta]:
        """Every track of `videos` in one batch (for evaluation splits, which are small)."""
        parts = list(self.chunk_batches(videos))
        if not parts:
            raise ValueError("no videos selected: the split is empty.")
        batches, metas = zip(*parts, strict=True)
        meta = TrackMeta(
            video_type=np.concatenate([m.video_type for m in metas]),
            kind=np.concatenate([m.kind for m in metas]),
            n_videos=sum(m.n_videos for m in metas),
            bin=None if metas[0].bin is None else np.concatenate([m.bin for m in metas]),
        )
        return concat_batches(list(batches)), meta

    def _sample(self, latents: np.ndarray, rows: np.ndarray, position: np.ndarray) -> np.ndarray:
        """(B, T, C) float16 latents along each track, causal in time (see the extractor)."""
        from tp_models.magvit.sampling import sample_latents_along_track

        out = np.zeros((len(rows), self.store.frames, latents.shape[2]), dtype=np.float16)
        for row in np.unique(rows):
            mine = rows == row
            out[mine] = sample_latents_along_track(
                latents[row].astype(np.float32),
                position[mine],
                self.store.frame_size,
                self.store.frames,
                time_rule="completed",
            )
        return out

    def quality_counts(self, videos: np.ndarray) -> dict[str, int]:
        """Summed tracking-quality counts (MOTA/IDF1 inputs) over `videos`."""
        names = [n for n in self.tracks.array_names if n.startswith(QUALITY_PREFIX)]
        if not names:  # imported tracks: no ground-truth objects to count against
            return {}
        wanted = np.zeros(self.tracks.n_items, dtype=bool)
        wanted[videos] = True
        totals = dict.fromkeys(names, 0)
        for chunk in np.unique(np.asarray(videos) // self.tracks.items_per_chunk):
            start, stop = self.tracks.bounds(int(chunk))
            for name, values in self.tracks.read_chunk(int(chunk), names).items():
                totals[name] += int(values[wanted[start:stop]].sum())
        return {name[len(QUALITY_PREFIX) :]: total for name, total in totals.items()}


def concat_batches(batches: list[TrackBatch]) -> TrackBatch:
    def cat(name: str) -> np.ndarray:
        return np.concatenate([getattr(b, name) for b in batches])

    extras = {key: np.concatenate([b.extras[key] for b in batches]) for key in batches[0].extras}
    sized = all(b.frame_size is not None for b in batches)
    return TrackBatch(
        frame_size=cat("frame_size") if sized else None,
        position=cat("position"),
        observed=cat("observed"),
        area=cat("area"),
        color=cat("color"),
        loglik=cat("loglik"),
        label=cat("label"),
        video=cat("video"),
        extras=extras,
    )


def shuffled_training_batches(
    source: TrackSource, videos: np.ndarray, chunks_per_batch: int = 8
) -> Callable[[], Iterator[list[TrackBatch]]]:
    """A per-epoch factory of training batches over `videos`: groups of a few store chunks,
    one TrackBatch per chunk, that training converts chunk by chunk and trains on as one
    (its memory: one chunk's frame span at a time).

    Chunk order is drawn from NumPy's global generator, which the training loop reseeds
    from (seed, epoch): an epoch's order is reproducible and a resumed run sees the same
    order as an uninterrupted one. The loop shuffles tracks within each yielded group.
    """
    n_chunks = len(np.unique(np.asarray(videos) // source.tracks.items_per_chunk))

    def epoch() -> Iterator[list[TrackBatch]]:
        buffer: list[TrackBatch] = []
        for batch, _ in source.chunk_batches(videos, np.random.permutation(n_chunks)):
            buffer.append(batch)
            if len(buffer) == chunks_per_batch:
                yield buffer
                buffer = []
        if buffer:
            yield buffer

    return epoch
