"""Checks that every stage command passes before any service starts or anything is written.

A run that would fail later (an unreachable Dask scheduler, an output folder it cannot write,
a disk too small for the store) fails here instead, in a second, with one sentence, and
leaves everything as it was: an `--overwrite` never deletes a store for a run that could
not have started.
"""

from __future__ import annotations

import os
import shutil
import socket
from typing import Any
from urllib.parse import urlparse

import numpy as np

from storage.errors import ParameterError, StoreError
from storage.paths import check_remote, is_local, local_path, require_writable

DASK_CONNECT_TIMEOUT_S = 3.0
# Stored bytes per raw byte assumed when checking free space: noiseless videos measured
# ~14x smaller than raw (10,000 default videos: 1.14 GB), so 4x leaves a wide margin; with
# sensor noise the low bits do not compress, so assume nothing is saved.
CONSERVATIVE_RATIO = 4.0
NOISY_RATIO = 1.0
SPACE_MARGIN = 1.1


def check_dask_address(address: str) -> None:
    """The scheduler answers on its TCP port (a protocol error surfaces later, clearly)."""
    parsed = urlparse(address if "://" in address else f"tcp://{address}")
    if parsed.scheme not in ("tcp", "tls") or not parsed.hostname or not parsed.port:
        raise ParameterError(
            f"compute.dask_address: {address!r} is not a scheduler address; "
            "give tcp://host:port (default port 8786)."
        )
    try:
        with socket.create_connection((parsed.hostname, parsed.port), DASK_CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        raise StoreError(
            f"compute.dask_address: no Dask scheduler answers at {address} "
            f"({exc.strerror or type(exc).__name__}); start one (`dask scheduler`) or leave "
            "--dask-address out to use a local cluster."
        ) from None


def store_of(spec: Any) -> str | None:
    """The store a spec reads or writes (the pipeline's is its generate step's)."""
    store = getattr(spec, "store", None)
    generate = getattr(spec, "generate", None)
    return store if store is not None else getattr(generate, "store", None)


def check_output_folders(spec: Any) -> None:
    """`out` and `checkpoints` are folders this process can create and write in."""
    for name in ("out", "checkpoints"):
        folder = getattr(spec, name, None)
        if folder:
            require_writable(folder, name)


def estimated_store_bytes(spec: Any) -> int:
    """A generate spec's store size on disk at a conservative compression ratio."""
    scene = spec.scene
    mask_bytes = np.dtype(scene.mask_dtype).itemsize
    per_video = scene.frames * scene.size * scene.size * (3 + mask_bytes)  # RGB + id masks
    ratio = NOISY_RATIO if scene.noise_sigma > 0 else CONSERVATIVE_RATIO
    return int(spec.n_videos * per_video / ratio)


def check_disk_space(spec: Any) -> None:
    """Refuse a new (or replacing) local store that the disk cannot hold."""
    store = spec.store
    if not is_local(store):
        return
    path = local_path(store)
    if os.path.exists(path) and not spec.overwrite:
        return  # resuming: its size was checked when it was created
    folder = path
    while not os.path.exists(folder):
        folder = os.path.dirname(folder)
    free = shutil.disk_usage(folder).free
    needed = estimated_store_bytes(spec) * SPACE_MARGIN
    if needed > free:
        raise ParameterError(
            f"{spec.n_videos} videos of {spec.scene.frames}x{spec.scene.size}x{spec.scene.size} "
            f"need about {needed / 1e9:.1f} GB in {folder}, which has {free / 1e9:.1f} GB "
            "free; ask for fewer or smaller videos (persistent, brief, noise, mixed, "
            "scene.size, scene.frames) or choose another --store."
        )


def preflight(spec: Any, writes_store: bool) -> None:
    """Every check that needs no service: run by the CLI before anything starts."""
    compute = getattr(spec, "compute", None) or getattr(
        getattr(spec, "generate", None), "compute", None
    )
    if compute is not None and compute.dask_address:
        check_dask_address(compute.dask_address)
    check_output_folders(spec)
    store = store_of(spec)
    if store and not is_local(store):
        check_remote(store, "store", writable=writes_store)  # bucket there, answers, writable
    elif writes_store and store:
        require_writable(local_path(store))
    generate = spec if hasattr(spec, "n_videos") else getattr(spec, "generate", None)
    if generate is not None:
        check_disk_space(generate)
