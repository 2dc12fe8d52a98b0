"""One writer per store: a lock file beside the store naming the host and process that write.

Chunks are owned by one task each, but two *runs* on one store would both own every chunk
(measured before this lock: 38 + 26 chunks written for 40, which run failed depended on
timing). The lock is a file `<store>.tp-lock`, written in full then hard-linked into
place (which fails if it exists), so exactly one of two starting runs gets it and nobody
ever reads a half-written lock; it sits beside the store (not inside) so that it also guards the
creation of a new store and survives `--overwrite` replacing the folder. A lock whose
process is gone (same host, PID not running) is stale and taken over; a lock of another
host is trusted, since its process cannot be checked from here.

On an object store (s3://) the lock is an object `<store>.tp-lock` beside the store,
created with a conditional put (`If-None-Match: *`, S3's exclusive create, through s3fs's
`mode="create"`): of two starting runs exactly one creates it, the other gets 412 and is
refused, with the same rules for stale locks. A store whose server ignores the condition
(some S3 clones) is not protected: the README says so.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from storage.errors import StoreError
from storage.paths import is_local, local_path, make_folders, remote_filesystem, remove_empty

LOCK_SUFFIX = ".tp-lock"


def lock_path(store_url: str) -> str:
    """The lock beside the store: a file path, or the URL of an object."""
    if is_local(store_url):
        return local_path(store_url) + LOCK_SUFFIX
    return store_url.rstrip("/") + LOCK_SUFFIX


class _LocalLock:
    """The lock file: written in full, then hard-linked into place."""

    def __init__(self, path: str) -> None:
        self.path = path

    def create(self, content: dict[str, Any]) -> None:
        staging = f"{self.path}.{os.getpid()}"
        with open(staging, "w") as handle:
            json.dump(content, handle)
        try:
            os.link(staging, self.path)  # atomic, and fails if the lock exists
        finally:
            os.remove(staging)

    def read(self) -> dict[str, Any] | None:
        try:
            with open(self.path) as handle:
                return json.load(handle)
        except (OSError, ValueError):
            return None  # vanished, or a half-written / garbled lock: treated as stale

    def remove(self) -> None:
        with suppress(FileNotFoundError):
            os.remove(self.path)


class _ObjectLock:
    """The lock object: one conditional put (exclusive create) writes it whole."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.fs, self.path = remote_filesystem(url, "store")

    def create(self, content: dict[str, Any]) -> None:
        data = json.dumps(content).encode()
        try:
            self.fs.pipe_file(self.path, data, mode="create")
        except FileExistsError:
            raise
        except OSError as exc:  # a 412 that s3fs did not map to FileExistsError
            if "precondition" in str(exc).lower():
                raise FileExistsError(self.path) from None
            raise

    def read(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.fs.cat_file(self.path))
        except (OSError, ValueError):
            return None

    def remove(self) -> None:
        with suppress(FileNotFoundError):
            self.fs.rm_file(self.path)


def _alive(holder: dict[str, Any]) -> bool:
    return process_alive(holder.get("host"), holder.get("pid"))


def process_alive(host: Any, pid: Any) -> bool:
    """Whether process `pid` of `host` may still run: False only for a PID of this host that
    is certainly gone (a process of another host cannot be checked from here)."""
    if host != socket.gethostname():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, TypeError, ValueError):
        return True  # another user's live process, or an unreadable PID: do not take over
    return True


@contextmanager
def store_lock(store_url: str, command: str) -> Iterator[None]:
    """Hold the store's lock for the duration; refuse at once if a live writer holds it.

    A store in folders that do not exist yet gets them (the lock lives beside the store);
    folders made here and still empty at the end (a refused run) are removed again.
    """
    path = lock_path(store_url)
    if not is_local(store_url):
        with _held(_ObjectLock(path), path, store_url, command):
            yield
        return
    made = make_folders(os.path.dirname(path), "store")
    try:
        with _held(_LocalLock(path), path, store_url, command):
            yield
    finally:
        remove_empty(made)


@contextmanager
def _held(
    lock: _LocalLock | _ObjectLock, path: str, store_url: str, command: str
) -> Iterator[None]:
    mine = {"host": socket.gethostname(), "pid": os.getpid(), "command": command}
    mine["since"] = time.strftime("%Y-%m-%d %H:%M:%S")
    for _ in range(3):  # a stale lock removed by a racing run: try again
        try:
            lock.create(mine)
        except FileExistsError:
            holder = lock.read()
            if holder is not None and _alive(holder):
                raise StoreError(
                    f"store {store_url!r} is being written by `tp {holder.get('command')}` "
                    f"(pid {holder.get('pid')} on {holder.get('host')}, since "
                    f"{holder.get('since')}); wait for it to finish, or delete {path} if that "
                    "process is gone."
                ) from None
            lock.remove()  # stale: its process is gone
            continue
        except OSError as exc:
            raise StoreError(
                f"store: cannot create the lock {path} ({exc.strerror or type(exc).__name__}); "
                "choose a store in a writable folder or bucket."
            ) from None
        break
    else:
        raise StoreError(f"store {store_url!r}: could not take its lock {path}; try again.")
    try:
        yield
    finally:
        if lock.read() == mine:
            lock.remove()
