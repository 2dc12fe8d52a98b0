"""Where a store or an output lives: local paths versus URLs, and the folders a command makes.

A store, a report folder or an MLflow SQLite file may name folders that do not exist yet
(`data/store.zarr` on a fresh clone). They are made, parents included, as `zarr` makes a
store's folders; only a parent that cannot be made (a file in the way, a read-only folder)
is the user's to change. Folders a command made and left empty are removed again when it
fails, so a refused run leaves nothing behind.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress

from storage.errors import StoreError

FILE_SCHEME = "file://"


def is_local(url: str) -> bool:
    """A plain path or a file:// URL (anything else is an fsspec URL: s3://, memory://, …)."""
    return "://" not in url or url.startswith(FILE_SCHEME)


def local_path(url: str) -> str:
    """The absolute path of a local store or file URL, without a trailing slash."""
    return os.path.abspath(url.removeprefix(FILE_SCHEME).rstrip("/") or "/")


def make_folders(folder: str, what: str) -> list[str]:
    """Make `folder` and its missing parents; return the ones made, outermost first.

    `what` names the parameter in the one sentence raised when a parent cannot be made.
    """
    folder = os.path.abspath(folder)
    missing: list[str] = []
    existing = folder
    while not os.path.exists(existing):
        missing.append(existing)
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise StoreError(
            f"{what}: cannot create {folder!r}: {existing!r} is a file, not a folder; "
            "choose another path."
        )
    made: list[str] = []
    for each in reversed(missing):
        try:
            os.mkdir(each)
        except FileExistsError:
            continue  # made meanwhile by another process: not ours to remove
        except OSError as exc:
            remove_empty(made)
            raise StoreError(
                f"{what}: cannot create the folder {each!r} ({exc.strerror}); "
                "choose a path in a writable folder."
            ) from None
        made.append(each)
    return made


def remove_empty(folders: Sequence[str]) -> None:
    """Remove folders made by `make_folders` that are still empty, innermost first."""
    for folder in reversed(folders):
        with suppress(OSError):
            os.rmdir(folder)


@contextmanager
def folders_for(folder: str, what: str) -> Iterator[list[str]]:
    """`make_folders` for the duration of a block: what it made is removed again if the block
    fails and left it empty (a succeeding block keeps them: its outputs live there)."""
    made = make_folders(folder, what)
    try:
        yield made
    except BaseException:
        remove_empty(made)
        raise


def require_writable(path: str, what: str = "store") -> None:
    """Probe the nearest existing folder with a real write (permission bits lie to root);
    `what` names the parameter in the error."""
    parent = os.path.abspath(path)
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if os.path.exists(path) and os.path.isdir(path):
        parent = path
    if not os.path.isdir(parent):
        raise StoreError(
            f"{what}: cannot create {path!r}: {parent!r} is a file, not a folder; "
            "choose another path."
        )
    try:
        handle, probe = tempfile.mkstemp(dir=parent, prefix=".tp-write-probe-")
    except OSError as exc:
        raise StoreError(
            f"{what}: cannot write to {path!r} ({exc.strerror}); choose a writable path."
        ) from None
    os.close(handle)
    os.remove(probe)
