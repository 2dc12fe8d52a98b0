"""Chunk-owned Zarr v3 groups: the one write mechanism behind videos, tracks and features.

A `ChunkedGroup` is a Zarr group whose arrays all share the same first-axis chunking
(whole videos). Work is divided by chunk: one task owns whole chunks of every array it
writes, so no two writers ever touch one chunk object. Each chunk's checksum is written
to the `_chunk_checksum` array *after* its data; 0 there means "not done". That array is
chunked one element per chunk, so the done marker is also written by the chunk's owner
alone. (Group attributes are a single JSON document: concurrent tasks updating it would
lose each other's writes, so per-chunk state never goes there.) Attributes hold what is
written once by the single coordinating process: schema version, kind, config,
fingerprint.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import zlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import zarr
from zarr.codecs import BloscCodec, BloscShuffle

from storage.errors import StoreError
from storage.paths import is_local, local_path, require_writable, storage_options

# Zarr skips (and deletes) chunks equal to the fill value unless told otherwise; the check
# cost ~115 ms per 30 MB video chunk (measured), ten times the compression itself. Every
# chunk here is written whole by its owner, and a chunk of padding is still a chunk.
zarr.config.set({"array.write_empty_chunks": True})

SCHEMA_VERSION = 1
PROJECT = "track-persistence"
CHECKSUM_ARRAY = "_chunk_checksum"
ITEM_DIM = "video"  # every group is chunked by whole videos along its first axis

# Derived groups (tracks, features) record, per chunk, the checksum of the parent chunk
# (the videos) it was computed from: a parent chunk that changes makes exactly its
# dependent chunks stale, and the group's fingerprint changes with it.
PARENT_CHECKSUM_ARRAY = "_parent_checksum"
BOOKKEEPING = (CHECKSUM_ARRAY, PARENT_CHECKSUM_ARRAY)

# The command that rewrites a chunk of each kind of group (named in corruption errors).
REPAIR_COMMANDS = {
    "dataset": "`tp generate --store {url}` with the same parameters",
    "tracks": "`tp tracks --store {url}` with the same tracker options",
    "features": "`tp cache-features --store {url}` with the same tokenizer",
}


# While a command runs (`one_check_per_command`): groups checked before its services started,
# each handed to the one `open_or_create` of the same query, so a command checks a store once.
_checked: dict[tuple[str, ...], ChunkedGroup | None] | None = None


@contextmanager
def one_check_per_command() -> Iterator[None]:
    """For the duration of one command: what `check` found is reused, once, by
    `open_or_create` (nothing else writes the store meanwhile: the command holds its lock)."""
    global _checked
    _checked = {}
    try:
        yield
    finally:
        _checked = None


def _query(root_path: str, subpath: str, kind: str, config: Mapping[str, Any], overwrite: bool):
    return (root_path, subpath, kind, json.dumps(_as_json(config), sort_keys=True), str(overwrite))


class CorruptChunkError(StoreError):
    """A chunk that is not done, does not decode, or no longer matches its checksum."""


@dataclass(frozen=True)
class ArraySpec:
    """One per-item array: its shape after the first (item) axis, dtype and padding value."""

    tail: tuple[int, ...]
    dtype: str
    fill_value: Any = 0
    shuffle: str = "shuffle"  # Blosc shuffle: measured per array kind (see README)
    # Names of the tail's axes (Zarr v3 dimension_names, so xarray.open_zarr reads the
    # store). Metadata only: chunk bytes and fingerprints do not depend on them.
    dims: tuple[str, ...] = ()

    def codec(self) -> BloscCodec:
        return BloscCodec(cname="zstd", clevel=3, shuffle=BloscShuffle(self.shuffle))


def _checksum(arrays: Mapping[str, np.ndarray]) -> int:
    """CRC-32 over every array's name, shape and bytes, as PNG and zip use it: it catches
    corrupted and lost chunks (not tampering) at ~4 GB/s; blake2b cost 0.4 s per 1,000
    videos. Bit 32 is set so that 0 keeps meaning "not done"."""
    crc = 0
    for name in sorted(arrays):
        data = np.ascontiguousarray(arrays[name])
        for part in (name.encode(), str(data.shape).encode(), data.view(np.uint8).reshape(-1)):
            crc = zlib.crc32(part, crc)
    return crc | (1 << 32)


def zarr_store(url: str, read_only: bool = False) -> Any:
    """What zarr opens for `url`: a local path as it is, a remote URL as an fsspec store with
    the storage options of the environment (`storage.paths.storage_options`), so every open
    here, and in every Dask task, gets the endpoint and credentials."""
    if is_local(url):
        return url
    from zarr.storage import FsspecStore

    return FsspecStore.from_url(url, storage_options=storage_options(url), read_only=read_only)


def open_zarr_group(url: str, mode: str) -> zarr.Group:
    """The store's root group (live metadata, never a consolidated copy)."""
    store = zarr_store(url, read_only=mode == "r")
    return zarr.open_group(store, mode=mode, zarr_format=3, use_consolidated=False)


def _open_root(path: str, mode: str) -> zarr.Group:
    try:
        return open_zarr_group(path, mode)
    except PermissionError as exc:
        raise StoreError(
            f"store: cannot write to {path!r} ({exc.strerror}); choose a writable path."
        ) from None
    except (FileNotFoundError, zarr.errors.GroupNotFoundError, KeyError, ValueError) as exc:
        raise StoreError(
            f"store: {path!r} is not a {PROJECT} store ({type(exc).__name__}); "
            "give the path of a store made by `tp generate`."
        ) from exc


def _as_json(config: Mapping[str, Any]) -> dict[str, Any]:
    """The config as it reads back from the attributes (tuples become lists)."""
    return json.loads(json.dumps(dict(config)))


def _create_bookkeeping(group: zarr.Group, name: str, n_chunks: int) -> None:
    """One uint64 per chunk, chunked one element per chunk: written by the chunk's owner."""
    group.create_array(
        name,
        shape=(n_chunks,),
        chunks=(1,),
        dtype="uint64",
        fill_value=0,
        dimension_names=("chunk",),
        overwrite=True,
    )


def _unopenable(root_path: str, subpath: str, exc: Exception) -> StoreError | None:
    """The real reason a store (or one of its groups) does not open, as a StoreError; None
    when a remote store is simply absent (a new one may be made there)."""
    where = f"{root_path.rstrip('/')}/{subpath}".rstrip("/")
    if isinstance(exc, FileNotFoundError | zarr.errors.GroupNotFoundError):
        if is_local(root_path):
            return StoreError(
                f"store: {root_path!r} exists but is not a {PROJECT} store; "
                "choose a new path or an existing store."
            )
        return None
    if isinstance(exc, ImportError):
        scheme = root_path.split("://", 1)[0]
        return StoreError(
            f"store: {root_path!r} needs a filesystem package for {scheme}:// that is not "
            f"installed ({exc}); install it (e.g. `pip install s3fs` for s3://)."
        )
    if isinstance(exc, ValueError | UnicodeDecodeError):  # JSON errors are ValueErrors
        return StoreError(
            f"store: the metadata {where}/zarr.json is damaged ({type(exc).__name__}: "
            f"{str(exc)[:80]}); restore it from a copy, or rebuild with `tp generate --overwrite`."
        )
    return StoreError(
        f"store: {root_path!r} cannot be read ({type(exc).__name__}: {str(exc)[:120]}); "
        "check that it is reachable."
    )


class ChunkedGroup:
    """A group of arrays chunked by whole items along the first axis."""

    def __init__(self, group: zarr.Group, location: str) -> None:
        self.group = group
        self.location = location
        attrs = group.attrs.asdict()
        self.kind: str = attrs["kind"]
        self.n_items: int = int(attrs["n_items"])
        self.items_per_chunk: int = int(attrs["items_per_chunk"])
        self.config: dict[str, Any] = attrs["config"]

    # ---- creation and opening -------------------------------------------------------------

    @classmethod
    def open_or_create(
        cls,
        root_path: str,
        subpath: str,
        *,
        kind: str,
        config: Mapping[str, Any],
        n_items: int,
        items_per_chunk: int,
        specs: Mapping[str, ArraySpec],
        overwrite: bool = False,
        derived: bool = False,
    ) -> ChunkedGroup:
        """Open the group made with this exact config, or create it.

        A group made with another config is refused unless `overwrite` is set, so a typo
        in a parameter never destroys an existing dataset. `derived`: chunks record the
        checksum of the parent chunk they were computed from.
        """
        query = _query(root_path, subpath, kind, config, overwrite)
        if _checked is not None and query in _checked:
            existing = _checked.pop(query)
        else:
            existing = cls.check(root_path, subpath, kind=kind, config=config, overwrite=overwrite)
        if existing is not None and not overwrite:
            if derived and PARENT_CHECKSUM_ARRAY not in existing.group:
                existing._create_bookkeeping(PARENT_CHECKSUM_ARRAY)  # older group: all stale
            return existing
        if overwrite and cls._exists(root_path, subpath, kind):
            cls._delete(root_path, subpath)
        root = _open_root(root_path, "a")
        config = _as_json(config)
        if not subpath:
            root.attrs.update({"project": PROJECT, "schema_version": SCHEMA_VERSION})
        group = root.require_group(subpath) if subpath else root
        chunk = items_per_chunk
        for name, spec in specs.items():
            group.create_array(
                name,
                shape=(n_items, *spec.tail),
                chunks=(chunk, *spec.tail),
                dtype=spec.dtype,
                fill_value=spec.fill_value,
                compressors=[spec.codec()],
                dimension_names=(ITEM_DIM, *spec.dims)
                if len(spec.dims) == len(spec.tail)
                else None,
                overwrite=True,
            )
        for name in BOOKKEEPING if derived else (CHECKSUM_ARRAY,):
            _create_bookkeeping(group, name, -(-n_items // chunk))
        # Written last: a group without these attributes is an unfinished creation.
        group.attrs.update(
            {
                "project": PROJECT,
                "schema_version": SCHEMA_VERSION,
                "kind": kind,
                "config": config,
                "n_items": n_items,
                "items_per_chunk": chunk,
            }
        )
        return cls(group, f"{root_path}:{subpath or '/'}")

    @classmethod
    def check(
        cls,
        root_path: str,
        subpath: str,
        *,
        kind: str,
        config: Mapping[str, Any],
        overwrite: bool = False,
    ) -> ChunkedGroup | None:
        """The existing group if it may be resumed, None if it is to be created; raises if neither.

        Writes nothing, so callers can refuse bad input before starting any work.
        """
        if is_local(root_path):
            require_writable(local_path(root_path))
        if overwrite:
            cls._exists(root_path, subpath, kind)  # refuses foreign data even with overwrite
            return None
        existing = cls.find(root_path, subpath, kind)
        if existing is None:
            if _checked is not None:
                _checked[_query(root_path, subpath, kind, config, overwrite)] = None
            return None
        wanted = _as_json(config)
        if existing.config != wanted:
            changed = sorted(
                k
                for k in set(existing.config) | set(wanted)
                if existing.config.get(k) != wanted.get(k)
            )
            raise StoreError(
                f"{existing.location} was made with a different configuration "
                f"(differs in: {', '.join(changed)}); use the same parameters to resume, "
                "or set overwrite to replace it."
            )
        if _checked is not None:
            _checked[_query(root_path, subpath, kind, config, overwrite)] = existing
        return existing

    @classmethod
    def open(cls, root_path: str, subpath: str = "", *, kind: str) -> ChunkedGroup:
        group = cls.find(root_path, subpath, kind)
        if group is None:
            raise StoreError(
                f"{root_path}: no {kind} found at {subpath or '/'}; "
                + ("run `tp generate` first." if kind == "dataset" else "create it first.")
            )
        return group

    @classmethod
    def _exists(cls, root_path: str, subpath: str, kind: str) -> bool:
        """Whether this project's data (any schema version) is at the location."""
        return cls.find(root_path, subpath, kind, any_schema=True) is not None

    @classmethod
    def find(
        cls, root_path: str, subpath: str, kind: str, any_schema: bool = False
    ) -> ChunkedGroup | None:
        """The group at `subpath` of this project's store; None if absent, raises if foreign."""
        if is_local(root_path):
            local = local_path(root_path)
            if not os.path.exists(local):
                return None
            if not os.path.isdir(local) or not os.path.exists(os.path.join(local, "zarr.json")):
                if os.path.isdir(local) and not os.listdir(local):
                    return None  # an empty folder is a fine place for a new store
                raise StoreError(
                    f"store: {root_path!r} exists but is not a {PROJECT} store; "
                    "choose a new path or an existing store."
                )
        try:
            root = open_zarr_group(root_path, "r")
        except Exception as exc:
            problem = _unopenable(root_path, "", exc)
            if problem is None:
                return None  # nothing there yet: a new remote store
            raise problem from None
        attrs = root.attrs.asdict()
        if attrs.get("project") != PROJECT:
            raise StoreError(
                f"store: {root_path!r} is a Zarr group but not a {PROJECT} store; "
                "choose a new path or an existing store."
            )
        version = attrs.get("schema_version")
        if version != SCHEMA_VERSION and not any_schema:
            raise StoreError(
                f"store: {root_path!r} has schema_version {version!r}, this version of the "
                f"project reads {SCHEMA_VERSION}; regenerate it with `tp generate --overwrite`."
            )
        if subpath:
            try:
                group = root[subpath]
            except KeyError:
                return None
            except Exception as exc:
                raise (_unopenable(root_path, subpath, exc) or exc) from None
        else:
            group = root
        if "kind" not in group.attrs:
            return None  # creation was interrupted before its metadata: start again
        if any_schema:
            return cls.__new__(cls)  # only its existence matters
        if group.attrs["kind"] != kind:
            raise StoreError(
                f"store: {root_path}:{subpath or '/'} holds {group.attrs['kind']!r}, not {kind!r}."
            )
        writable = open_zarr_group(root_path, "r+")
        return cls(writable[subpath] if subpath else writable, f"{root_path}:{subpath or '/'}")

    @staticmethod
    def _delete(root_path: str, subpath: str) -> None:
        if subpath:
            root = open_zarr_group(root_path, "r+")
            del root[subpath]
        elif is_local(root_path):
            shutil.rmtree(local_path(root_path))
        else:
            open_zarr_group(root_path, "w")

    # ---- chunk bookkeeping -----------------------------------------------------------------

    @property
    def n_chunks(self) -> int:
        return -(-self.n_items // self.items_per_chunk)

    def bounds(self, chunk: int) -> tuple[int, int]:
        start = chunk * self.items_per_chunk
        return start, min(start + self.items_per_chunk, self.n_items)

    @property
    def array_names(self) -> list[str]:
        return sorted(name for name in self.group.array_keys() if name not in BOOKKEEPING)

    @property
    def derived(self) -> bool:
        return PARENT_CHECKSUM_ARRAY in self.group

    def _create_bookkeeping(self, name: str) -> None:
        _create_bookkeeping(self.group, name, self.n_chunks)

    def _bookkeeping(self, name: str) -> np.ndarray:
        """One uint64 per chunk; a chunk of it that does not decode reads as 0 ("not done")."""
        try:
            return self.group[name][:]
        except Exception:  # one garbled marker: read them one by one
            return np.array([self._marker(name, c) for c in range(self.n_chunks)], dtype=np.uint64)

    def checksums(self) -> np.ndarray:
        return self._bookkeeping(CHECKSUM_ARRAY)

    def stored_checksum(self, chunk: int) -> int:
        """One chunk's done marker (0: not done, also when the marker does not decode)."""
        return self._marker(CHECKSUM_ARRAY, chunk)

    def recorded_parent_checksum(self, chunk: int) -> int:
        """The parent chunk's checksum this chunk was computed from (0: none recorded)."""
        return self._marker(PARENT_CHECKSUM_ARRAY, chunk) if self.derived else 0

    def _marker(self, name: str, chunk: int) -> int:
        try:
            return int(self.group[name][chunk])
        except Exception:  # a garbled or truncated marker is "not done", never a crash
            return 0

    def parent_checksums(self) -> np.ndarray:
        """Per chunk, the parent chunk's checksum it was computed from (derived groups)."""
        if not self.derived:
            return np.zeros(self.n_chunks, dtype=np.uint64)
        return self._bookkeeping(PARENT_CHECKSUM_ARRAY)

    def done_chunks(self) -> np.ndarray:
        """Boolean (n_chunks,): chunks whose data and done marker were written."""
        return self.checksums() != 0

    def write_chunk(
        self, chunk: int, arrays: Mapping[str, np.ndarray], parent_checksum: int | None = None
    ) -> int:
        """Write one chunk of every array (and the parent's checksum), then its own checksum
        (the done marker)."""
        missing = set(self.array_names) - set(arrays)
        if missing:
            raise ValueError(f"write_chunk({chunk}) lacks arrays {sorted(missing)}")
        start, stop = self.bounds(chunk)
        # As stored: a checksum of int64 values written into an int8 array never matched.
        stored = {
            name: np.asarray(arrays[name], self.group[name].dtype) for name in self.array_names
        }
        for name, data in stored.items():
            self.group[name][start:stop] = data
        if self.derived:
            self.group[PARENT_CHECKSUM_ARRAY][chunk] = parent_checksum or 0
        value = _checksum(stored)
        self.group[CHECKSUM_ARRAY][chunk] = value
        return value

    def read(self, name: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Unverified slice of one array (for the single coordinating process's summaries);
        chunk data that feeds a computation is read with `read_chunk`."""
        return self.group[name][start : self.n_items if stop is None else stop]

    def read_chunk(self, chunk: int, names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """`names` (default: all) of one chunk, verified against its checksum first.

        The checksum covers every array of the chunk, so all are read: for the videos
        chunk the other arrays add ~1 % of its bytes. Raises CorruptChunkError naming the
        chunk and the command that rewrites it.
        """
        stored = self.stored_checksum(chunk)
        problem = "is not done" if stored == 0 else None
        data: dict[str, np.ndarray] = {}
        if problem is None:
            try:
                data = self._read_raw(chunk)
            except Exception as exc:  # a truncated or garbled chunk object does not decode
                problem = f"does not decode ({type(exc).__name__})"
        if problem is None and _checksum(data) != stored:
            problem = "no longer matches its checksum"
        if problem is not None:
            raise CorruptChunkError(
                f"{self.location} chunk {chunk} (items {self.bounds(chunk)[0]}-"
                f"{self.bounds(chunk)[1] - 1}) {problem}; rewrite it with "
                f"{self.repair_command()}."
            )
        return {name: data[name] for name in (names or self.array_names)}

    def repair_command(self) -> str:
        url = self.location.rsplit(":", 1)[0]
        return REPAIR_COMMANDS.get(self.kind, "the command that made it").format(url=url)

    def _read_raw(self, chunk: int) -> dict[str, np.ndarray]:
        start, stop = self.bounds(chunk)
        return {name: self.read(name, start, stop) for name in self.array_names}

    def verify_chunk(self, chunk: int) -> bool:
        """True if the chunk is done and its data still hashes to its stored checksum."""
        try:
            self.read_chunk(chunk)
        except CorruptChunkError:
            return False
        return True

    def stale_chunks(self, parent: ChunkedGroup | None = None) -> list[int]:
        """Chunks to (re)compute: not done, damaged, or (derived) made from another parent."""
        expected = None if parent is None else parent.checksums()
        recorded = self.parent_checksums()
        return [
            chunk
            for chunk in range(self.n_chunks)
            if not self.verify_chunk(chunk)
            or (expected is not None and recorded[chunk] != expected[chunk])
        ]

    def fingerprint(self) -> str:
        """Content fingerprint: a hash of the config and every chunk's checksum (and, for a
        derived group, its parent chunks' checksums: it changes when a parent changes)."""
        digest = hashlib.blake2b(digest_size=8)
        digest.update(repr(sorted(self.config.items())).encode())
        digest.update(self.checksums().tobytes())
        if self.derived:
            digest.update(self.parent_checksums().tobytes())
        return digest.hexdigest()

    def edited_attributes(self) -> str | None:
        """For a complete group, what is wrong if its recorded fingerprint no longer matches
        its configuration and chunk checksums (someone edited `zarr.json`); None if it does."""
        recorded = self.group.attrs.get("fingerprint")
        if not self.group.attrs.get("complete") or not recorded:
            return None
        actual = self.fingerprint()
        if recorded == actual:
            return None
        return (
            f"{self.location}: its recorded fingerprint {recorded} does not match its "
            f"configuration and chunk checksums ({actual}): its attributes were edited; restore "
            f"it from a copy or rebuild it with {self.repair_command()}"
        )

    def finalize(self) -> str:
        """Record completion (single writer: the coordinating flow, after every chunk)."""
        if not self.done_chunks().all():
            raise StoreError(f"{self.location}: cannot finalize, some chunks are not done.")
        fp = self.fingerprint()
        self.group.attrs.update({"fingerprint": fp, "complete": True})
        return fp

    def stored_bytes(self) -> int:
        """Bytes of this group's compressed chunk objects as stored."""
        return sum(self.group[name].nbytes_stored() for name in self.array_names)

    def raw_bytes(self) -> int:
        return sum(self.group[name].nbytes for name in self.array_names)
