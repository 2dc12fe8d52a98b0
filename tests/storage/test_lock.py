"""The store lock: one writer at a time, stale locks of dead processes taken over."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from storage.errors import StoreError
from storage.lock import lock_path, store_lock


def _write_lock(store: str, pid: int, host: str | None = None) -> None:
    with open(lock_path(store), "w") as handle:
        json.dump({"host": host or socket.gethostname(), "pid": pid, "command": "generate"}, handle)


def test_second_writer_is_refused_at_once_naming_the_holder(tmp_path):
    store = str(tmp_path / "s.zarr")
    with store_lock(store, "generate"):
        holder = json.loads(Path(lock_path(store)).read_text())
        assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
        with (
            pytest.raises(StoreError, match=rf"being written by `tp generate` \(pid {os.getpid()}"),
            store_lock(store, "tracks"),
        ):
            pass
    assert not os.path.exists(lock_path(store))  # released


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
    store = str(tmp_path / "s.zarr")
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True
    )
    _write_lock(store, int(dead.stdout))
    with store_lock(store, "tracks"):
        assert json.loads(Path(lock_path(store)).read_text())["command"] == "tracks"


def test_garbled_lock_is_stale_and_other_hosts_are_trusted(tmp_path):
    store = str(tmp_path / "s.zarr")
    with open(lock_path(store), "w") as handle:
        handle.write("{not json")
    with store_lock(store, "generate"):
        pass
    _write_lock(store, 1, host="another-host")
    with pytest.raises(StoreError, match="another-host"), store_lock(store, "generate"):
        pass


def test_remote_stores_are_locked_by_an_exclusively_created_object():
    """memory:// stands in for s3:// here (both create exclusively); the S3 server's own
    test is in tests/integration/test_scale_out.py."""
    import fsspec

    store = "memory://locks/s.zarr"
    assert lock_path(store) == "memory://locks/s.zarr.tp-lock"
    fs = fsspec.filesystem("memory")
    with store_lock(store, "generate"):
        assert json.loads(fs.cat_file("/locks/s.zarr.tp-lock"))["command"] == "generate"
        with (
            pytest.raises(StoreError, match=r"being written by `tp generate`"),
            store_lock(store, "tracks"),
        ):
            pass
    assert not fs.exists("/locks/s.zarr.tp-lock")
    fs.pipe_file("/locks/s.zarr.tp-lock", b"{not json")  # garbled: stale, taken over
    with store_lock(store, "tracks"):
        pass
