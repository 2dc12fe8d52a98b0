"""The Prefect API a CLI run talks to, and the local Dask cluster it may start beside it.

A flow run needs a Prefect API. When the user configured one (`PREFECT_API_URL` in the
environment or in the active Prefect profile, as `prefect config set` writes it), `tp`
uses it, so its runs stay visible after the command exits. Otherwise `tp` starts one
temporary server for the whole command: it picks the port and exports `PREFECT_API_URL`
before Prefect or any Dask worker is imported, so the flow and all workers share that one
server (without it, every worker process starts a server of its own). The server boots
while the Dask cluster starts and its workers import the task code, so the two fixed costs
overlap. It runs as a child that dies with this process, even on SIGKILL (Linux).
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

from storage.errors import UserError
from storage.paths import make_folders

# A fresh PREFECT_HOME creates and migrates the server's database on first start; on a
# loaded 2-core machine that took longer than Prefect's own 20 s limit (measured: the
# first `tp pipeline` died after 76 s with "Timed out ... ephemeral Prefect API server").
STARTUP_TIMEOUT_S = 180.0


def prefect_home() -> Path:
    """PREFECT_HOME, as Prefect reads it (default ~/.prefect)."""
    return Path(os.environ.get("PREFECT_HOME", Path.home() / ".prefect")).expanduser()


def configured_api_url() -> str | None:
    """PREFECT_API_URL from the environment, else from the active Prefect profile."""
    if os.environ.get("PREFECT_API_URL"):
        return os.environ["PREFECT_API_URL"]
    home = prefect_home()
    path = Path(os.environ.get("PREFECT_PROFILES_PATH", home / "profiles.toml")).expanduser()
    try:
        profiles = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return None
    active = os.environ.get("PREFECT_PROFILE") or profiles.get("active", "ephemeral")
    value = profiles.get("profiles", {}).get(active, {}).get("PREFECT_API_URL")
    return str(value) if value else None


def _answers(api_url: str, timeout: float) -> bool:
    try:
        with urllib.request.urlopen(api_url.rstrip("/") + "/health", timeout=timeout) as reply:
            return reply.status == 200
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux for SIGTERM when the parent dies."""
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


class TemporaryPrefectServer:
    """A Prefect API server for one command, as a child process that dies with it."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.api_url = f"http://127.0.0.1:{self.port}/api"
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the server
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Spawn the server (from the main thread: the death signal follows the spawning
        thread, so a helper thread that ends would take the server with it)."""
        env = {
            **os.environ,
            "PREFECT_UI_ENABLED": "0",
            "PREFECT__SERVER_EPHEMERAL": "1",
            "PREFECT__SERVER_FINAL": "1",
        }
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "prefect.server.api.server:create_app",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-level",
                "error",
                "--lifespan",
                "on",
            ],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
            # Its own session: a terminal's Ctrl-C reaches tp alone, which then drains its
            # logs to the server and stops it; the death signal still covers a SIGKILL.
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = STARTUP_TIMEOUT_S) -> None:
        assert self._process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if _answers(self.api_url, timeout=2):
                return
            if self._process.poll() is not None:
                break
            time.sleep(0.2)
        exited = self._process.poll() is not None
        self._log.seek(0)
        tail = self._log.read().decode(errors="replace").strip().splitlines()[-1:]
        self.stop()
        cause = f" ({tail[0][:200]})" if tail else ""
        failed = "exited before it answered" if exited else f"did not start within {timeout:.0f} s"
        raise UserError(
            f"the temporary Prefect API {failed}{cause}; start one with "
            "`prefect server start` and set PREFECT_API_URL=http://127.0.0.1:4200/api."
        )

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None


def reserve_prefect_api() -> TemporaryPrefectServer | None:
    """Choose the API for this command and export PREFECT_API_URL, before Prefect is imported.

    Prefect reads its settings when first imported, so this runs first: whatever imports
    Prefect later (the flows, the Dask workers) talks to the one API. Returns the temporary
    server to start, or None when the user configured an API.
    """
    # Prefect makes its home without parents and its server then fails to start.
    make_folders(str(prefect_home()), "PREFECT_HOME")
    configured = configured_api_url()
    if configured:
        os.environ["PREFECT_API_URL"] = configured  # also for the Dask workers
        return None
    server = TemporaryPrefectServer()
    os.environ["PREFECT_API_URL"] = server.api_url
    return server


@contextmanager
def prefect_api(server: TemporaryPrefectServer | None) -> Iterator[_Waiter | None]:
    """Start the reserved temporary server (or check that the configured API answers).

    Yields a waiter for the temporary server to answer (its `join` raises if it could not
    start), or None when a configured API answers.
    """
    if server is None:
        configured = os.environ["PREFECT_API_URL"]
        if not _answers(configured, timeout=5):
            raise UserError(
                f"PREFECT_API_URL={configured} does not answer; start the server "
                "(`prefect server start`) or unset PREFECT_API_URL to use a temporary one."
            )
        yield None
        return
    server.start()
    failure: list[UserError] = []

    def wait() -> None:
        try:
            server.wait_ready()
        except UserError as exc:
            failure.append(exc)

    waiting = threading.Thread(target=wait, name="prefect-server", daemon=True)
    waiting.start()
    try:
        yield _Waiter(waiting, failure)
    finally:
        waiting.join()
        if not failure:
            from prefect.logging.handlers import APILogWorker

            APILogWorker.drain_all(timeout=5)  # send the last log lines while it listens
        server.stop()


class _Waiter:
    """Joins the start-up wait and re-raises its failure in the calling thread."""

    def __init__(self, thread: threading.Thread, failure: list[UserError]) -> None:
        self._thread, self._failure = thread, failure

    def join(self) -> None:
        self._thread.join()
        if self._failure:
            raise self._failure[0]


@contextmanager
def local_services(
    server: TemporaryPrefectServer | None, workers: int | None = None, preload: Sequence[str] = ()
) -> Iterator[str | None]:
    """A Prefect API ready for flows and workers; with `workers`, a local Dask cluster too,
    started while the server boots. Yields the cluster's address (None without `workers`).
    """
    with ExitStack() as stack:
        waiter = stack.enter_context(prefect_api(server))
        address = None
        if workers:
            from flows.runner import dask_cluster

            address = stack.enter_context(dask_cluster(workers, preload, export_api=False))
        if waiter is not None:
            waiter.join()
        yield address
