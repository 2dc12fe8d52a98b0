"""`Store`: one handle on a track-persistence store, opened and validated once at the edge.

Its groups (the dataset, each tracker config's tracks, each tokenizer's cached features)
are opened through it and kept, so one command opens each group once. Only the URL
crosses a process boundary: a Dask task receives `store.url` and opens its own handle.
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import cached_property
from typing import Any

import numpy as np
import zarr

from storage.chunked import ArraySpec, ChunkedGroup, zarr_store
from storage.dataset import DATASET, dataset_specs
from storage.errors import StoreError
from storage.features import FEATURES, LATENT_DIMS, LATENTS, features_path
from storage.imported import IMPORTED, ITEM_FRAME_SIZE, imported_specs
from storage.paths import absolute, is_local, local_path, remote_filesystem
from storage.tracks import QUALITY_PREFIX, TRACKS, track_specs, tracker_key
from tp_models.tracks.arrays import track_capacity
from tp_models.world.config import OPERATING_POINT_DTYPES, VIDEO_TYPES, SceneConfig
from tp_models.world.splits import nested_subset, split_videos

# Root attribute naming the tracks group extracted last: the default for every command
# that reads tracks, so nobody has to repeat tracker options to find them again.
LAST_TRACKS = "last_tracks"


REPLACED_SUFFIX = ".tp-replaced"


@contextmanager
def replacing(url: str, overwrite: bool, keep_partial: bool = True) -> Iterator[None]:
    """Overwrite without losing the old store to a run that fails: the old store is moved
    aside, deleted once the body succeeds, and moved back if it fails before a single chunk
    of the new one was done. A kill leaves it aside: the next successful run on this path
    deletes it. Locally the move is a rename; on an object store, which has no rename, it is
    a server-side copy of every object then their deletion (seconds per thousand objects).

    `keep_partial`: a failed run's partial new store is kept to resume from (generate);
    without it (import, which writes in seconds) a failed run leaves no store of its own:
    a new one is removed and a replaced one moved back."""
    place: _Place = _Folder(url) if is_local(url) else _Prefix(url)
    aside = place.path + REPLACED_SUFFIX
    existed = place.is_store(place.path)
    if not overwrite or not existed:
        try:
            yield
        except BaseException:
            if not existed and not keep_partial:
                place.discard(place.path)
            raise
        place.discard(aside)
        return
    place.discard(aside)
    place.move(place.path, aside)
    try:
        yield
    except BaseException:
        new = ChunkedGroup.find(url, "", DATASET) if place.exists(place.path) else None
        if not keep_partial or new is None or not new.done_chunks().any():
            place.discard(place.path)
            place.move(aside, place.path)
        raise
    place.discard(aside)


class _Folder:
    """A local store's folder."""

    def __init__(self, url: str) -> None:
        self.path = local_path(url)

    def is_store(self, path: str) -> bool:
        return os.path.isdir(path)

    exists = is_store

    def move(self, source: str, target: str) -> None:
        os.rename(source, target)

    def discard(self, path: str) -> None:
        if os.path.isdir(path):
            shutil.rmtree(path)


class _Prefix:
    """A remote store's prefix: its objects."""

    def __init__(self, url: str) -> None:
        self.fs, path = remote_filesystem(url)
        self.path = path.rstrip("/")

    def is_store(self, path: str) -> bool:
        return self.exists(f"{path}/zarr.json")

    def exists(self, path: str) -> bool:
        self.fs.invalidate_cache()
        return bool(self.fs.exists(path))

    def move(self, source: str, target: str) -> None:
        self.fs.invalidate_cache()
        self.fs.copy(source, target, recursive=True)
        self.fs.rm(source, recursive=True)
        self.fs.invalidate_cache()

    def discard(self, path: str) -> None:
        if self.exists(path):
            self.fs.rm(path, recursive=True)
            self.fs.invalidate_cache()


_Place = _Folder | _Prefix


class Store:
    """A store whose dataset group exists (use `Store.create` to make one)."""

    def __init__(self, url: str, dataset: ChunkedGroup) -> None:
        self.url = absolute(url)  # the URL tasks receive: a worker's cwd is not ours
        self.dataset = dataset
        self._groups: dict[str, ChunkedGroup] = {}

    # ---- opening ------------------------------------------------------------------------

    @classmethod
    def open(cls, url: str) -> Store:
        return cls(url, ChunkedGroup.open(url, "", kind=DATASET))

    @classmethod
    def open_during_run(cls, url: str) -> Store:
        """Open from a task: the flow found the store, so one that is gone was deleted."""
        try:
            return cls.open(url)
        except StoreError:
            if is_local(url) and not os.path.exists(local_path(url)):
                raise StoreError(
                    f"store {url!r} is not there on {socket.gethostname()} (deleted during "
                    "the run, or on a disk that this Dask worker does not share); give the "
                    "workers a shared filesystem at the same path, or use an object store "
                    "(s3://...)."
                ) from None
            if ChunkedGroup.find(url, "", DATASET) is None:
                raise StoreError(
                    f"store {url!r} disappeared during the run (deleted or moved by someone "
                    "else?); re-run the command to start again."
                ) from None
            raise

    @classmethod
    def check_create(cls, url: str, data_config: Mapping[str, Any], overwrite: bool) -> None:
        """Refuse, writing nothing, a store that this configuration may not write to."""
        ChunkedGroup.check(url, "", kind=DATASET, config=data_config, overwrite=overwrite)

    @classmethod
    def create(
        cls, url: str, data_config: Mapping[str, Any], n_videos: int, overwrite: bool
    ) -> Store:
        """Open the store made with this exact data config, or create it (resumable)."""
        scene = data_config["scene"]
        dataset = ChunkedGroup.open_or_create(
            url,
            "",
            kind=DATASET,
            config=data_config,
            n_items=n_videos,
            items_per_chunk=int(data_config["videos_per_chunk"]),
            specs=dataset_specs(SceneConfig.from_dict(scene)),
            overwrite=overwrite,
        )
        return cls(url, dataset)

    @classmethod
    def create_imported(
        cls,
        url: str,
        config: Mapping[str, Any],
        n_items: int,
        overwrite: bool,
        operating_points: bool = False,
    ) -> Store:
        """A store of imported tracks: its dataset has no videos, one item per sequence
        (or window of one), each with its own frame size and, with `operating_points`, its
        sensor's operating point at every frame (`storage.imported`)."""
        dataset = ChunkedGroup.open_or_create(
            url,
            "",
            kind=DATASET,
            config=config,
            n_items=n_items,
            items_per_chunk=int(config["items_per_chunk"]),
            specs=imported_specs(int(config["frames"]), operating_points),
            overwrite=overwrite,
        )
        return cls(url, dataset)

    # ---- what the dataset is ------------------------------------------------------------

    @property
    def imported(self) -> bool:
        """Tracks imported from files (no videos; each item has its own frame size)."""
        return bool(self.dataset.config.get(IMPORTED))

    @property
    def frames(self) -> int:
        if self.imported:
            return int(self.dataset.config["frames"])
        return int(self.dataset.group["videos"].shape[1])

    @property
    def frame_size(self) -> int:
        """The frame side in px (imported stores: the model frame tracks are mapped into)."""
        if self.imported:
            return int(self.dataset.config["frame_size"])
        return int(self.dataset.group["videos"].shape[2])

    @property
    def video_type_names(self) -> tuple[str, ...]:
        return tuple(self.dataset.config.get("video_type_names", VIDEO_TYPES))

    def item_frame_sizes(self, start: int, stop: int) -> np.ndarray | None:
        """(stop - start, 2) (height, width) of each item's frames, None: the store's own."""
        if ITEM_FRAME_SIZE not in self.dataset.group:
            return None
        return self.dataset.read(ITEM_FRAME_SIZE, start, stop)

    @cached_property
    def video_types(self) -> np.ndarray:
        return self.dataset.read("video_type")

    @cached_property
    def operating_points(self) -> dict[str, np.ndarray]:
        """Operating points (`op_*`): (N,) per-video draws where the generator drew them,
        (N, frames) per item and frame where an import was given them."""
        names = [n for n in OPERATING_POINT_DTYPES if n in self.dataset.group]
        return {name: self.dataset.read(name) for name in names}

    @cached_property
    def operating_bins(self) -> np.ndarray | None:
        """(N,) operating-point bin of each video, or None when the store has no draws."""
        points = self.operating_points
        if self.imported or "op_p_detect" not in points:
            return None
        scene = SceneConfig.from_dict(self.dataset.config["scene"])
        return scene.operating_bins(points["op_p_detect"], points["op_clutter_density"])

    def splits(self, seed: int, train_videos: int | None = None) -> dict[str, np.ndarray]:
        """Videos of train / val / test (and "heldout": the held-out operating-point region);
        `train_videos`: only that many of the train videos (`nested_subset`), the rest whole."""
        heldout = self.operating_points.get("op_heldout")
        splits = split_videos(self.video_types, seed, heldout=heldout)
        if train_videos is not None:
            splits["train"] = nested_subset(splits["train"], self.video_types, train_videos, seed)
        return splits

    @cached_property
    def fingerprint(self) -> str:
        """The dataset's fingerprint, checked against its configuration and chunk checksums
        (training records it as a model's data, so a forged one must not pass); a clear
        error while generation is unfinished."""
        fingerprint = self.dataset.group.attrs.get("fingerprint")
        if not fingerprint or not self.dataset.group.attrs.get("complete"):
            raise StoreError(
                f"store {self.url!r} is not complete (generation was interrupted); resume it "
                "with `tp generate` and the same parameters first."
            )
        if (edited := self.dataset.edited_attributes()) is not None:
            raise StoreError(f"store {edited}.")
        return str(fingerprint)

    # ---- tracks -------------------------------------------------------------------------

    def tracks_keys(self) -> list[str]:
        """Keys of the complete tracks groups, one per tracker config."""
        if TRACKS not in self.dataset.group:
            return []
        keys = sorted(self.dataset.group[TRACKS].group_keys())
        return [k for k in keys if self.dataset.group[f"{TRACKS}/{k}"].attrs.get("complete")]

    def tracks(self, key: str | None = None) -> ChunkedGroup:
        """A complete tracks group: `key`, or the one extracted last."""
        key = key or self._default_tracks_key()
        group = self._group(f"{TRACKS}/{key}", TRACKS, must_exist=False)
        if group is None or not group.group.attrs.get("complete"):
            raise StoreError(
                f"store {self.url!r} has no complete tracks {key!r}{self._tracks_hint()}; "
                f"run `tp tracks --store {self.url}` first."
            )
        return group

    def _default_tracks_key(self) -> str:
        last = self.dataset.group.attrs.get(LAST_TRACKS)
        keys = self.tracks_keys()
        if last in keys:
            return str(last)
        if len(keys) == 1:
            return keys[0]
        if not keys:
            raise StoreError(
                f"store {self.url!r} has no tracks yet; run `tp tracks --store {self.url}` first."
            )
        raise StoreError(
            f"store {self.url!r} holds several tracks groups ({', '.join(keys)}); "
            "pick one with --tracks."
        )

    def _tracks_hint(self) -> str:
        keys = self.tracks_keys()
        return f" (complete here: {', '.join(keys)})" if keys else ""

    def create_tracks(
        self, tracker: Mapping[str, Any], overwrite: bool = False, capacity: int | None = None
    ) -> ChunkedGroup:
        """The tracks group of this tracker config, created (or resumed) for writing, with
        `capacity` track slots per video (default: `track_capacity` of its length).
        Imported tracks carry no tracking-quality counts (no detections to count)."""
        if capacity is None:
            capacity = track_capacity(self.frames)
        config = {
            "tracker": dict(tracker),
            "capacity": capacity,
            "dataset_fingerprint": self.fingerprint,
        }
        specs = track_specs(self.frames, capacity)
        if self.imported:
            specs = {k: v for k, v in specs.items() if not k.startswith(QUALITY_PREFIX)}
        return self._create_derived(
            f"{TRACKS}/{tracker_key(tracker)}", TRACKS, config, specs, overwrite
        )

    def mark_last_tracks(self, group: ChunkedGroup) -> None:
        """Make `group` the default tracks (single writer: the coordinating flow)."""
        self.dataset.group.attrs[LAST_TRACKS] = group.group.basename

    # ---- cached features ----------------------------------------------------------------

    def features(self, checkpoint_hash: str) -> ChunkedGroup:
        """The complete cached latents of this store for this tokenizer checkpoint."""
        group = self._group(features_path(self.fingerprint, checkpoint_hash), FEATURES, False)
        if group is None or not group.group.attrs.get("complete"):
            cached = (
                sorted(self.dataset.group[FEATURES].group_keys())
                if FEATURES in self.dataset.group
                else []
            )
            hint = f" (cached here: {', '.join(cached)})" if cached else ""
            raise StoreError(
                f"store {self.url!r} has no cached MagVit features for tokenizer checkpoint "
                f"{checkpoint_hash}{hint}; run `tp cache-features --store {self.url}` first."
            )
        return group

    def create_features(
        self, checkpoint_hash: str, latent_shape: tuple[int, ...], overwrite: bool = False
    ) -> ChunkedGroup:
        config = {
            "dataset_fingerprint": self.fingerprint,
            "checkpoint_hash": checkpoint_hash,
            "latent_shape": list(latent_shape),
        }
        # Latents are dense floats: byte-shuffling groups their exponent bytes together.
        specs = {LATENTS: ArraySpec(tuple(latent_shape), "float16", 0.0, "shuffle", LATENT_DIMS)}
        path = features_path(self.fingerprint, checkpoint_hash)
        return self._create_derived(path, FEATURES, config, specs, overwrite)

    def _create_derived(
        self,
        path: str,
        kind: str,
        config: Mapping[str, Any],
        specs: Mapping[str, ArraySpec],
        overwrite: bool,
    ) -> ChunkedGroup:
        """A group derived from the dataset, chunk for chunk, created (or resumed) to write."""
        group = ChunkedGroup.open_or_create(
            self.url,
            path,
            kind=kind,
            config=config,
            n_items=self.dataset.n_items,
            items_per_chunk=self.dataset.items_per_chunk,
            specs=specs,
            overwrite=overwrite,
            derived=True,
        )
        self._groups[path] = group
        return group

    def consolidate(self) -> None:
        """Consolidated metadata for readers such as xarray.open_zarr (one read for the whole
        tree). Each writing flow calls it after its last metadata write; this project itself
        always reads the live metadata (use_consolidated=False), so never a stale copy."""
        zarr.consolidate_metadata(zarr_store(self.url), zarr_format=3)

    # ---- any group, opened once ---------------------------------------------------------

    def group(self, path: str, kind: str) -> ChunkedGroup:
        """A group of this store by path (created by the coordinating flow), opened once."""
        group = self._group(path, kind, must_exist=True)
        assert group is not None
        return group

    def _group(self, path: str, kind: str, must_exist: bool) -> ChunkedGroup | None:
        if path not in self._groups:
            found = ChunkedGroup.find(self.url, path, kind)
            if found is None:
                if must_exist:
                    raise StoreError(f"store {self.url!r} has no {kind} group {path!r}.")
                return None
            self._groups[path] = found
        return self._groups[path]
