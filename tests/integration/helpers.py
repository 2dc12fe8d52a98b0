"""Real processes on loopback for integration tests: started, awaited, always stopped."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise TimeoutError(f"gave up after {timeout:.0f} s waiting for {what}")


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def process(
    args: list[str],
    env: dict[str, str] | None = None,
    log: Path | None = None,
    cwd: Path | None = None,
    base_env: dict[str, str] | None = None,
) -> Iterator[subprocess.Popen]:
    """A child process in its own group, killed with its children on exit. Its environment
    is `base_env` (default: this process's) updated with `env`."""
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        args,
        env={**(os.environ if base_env is None else base_env), **(env or {})},
        cwd=cwd,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if log:
            out.close()


REPO = Path(__file__).resolve().parents[2]


class PrefectServer:
    """A real `prefect server` on loopback with the repository's deployments, and its CLI."""

    def __init__(self, home: Path, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.api = f"http://127.0.0.1:{self.port}/api"
        self.env = {
            "PREFECT_HOME": str(home),
            "PREFECT_API_URL": self.api,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_UI_ENABLED": "false",
            **(env or {}),
        }

    def cli(self, *args: str, timeout: float = 180) -> str:
        """Run `prefect ARGS` against this server from the repository root; must succeed."""
        done = subprocess.run(
            [str(BIN / "prefect"), *args],
            cwd=REPO,
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert done.returncode == 0, f"prefect {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def healthy(self) -> bool:
        import httpx

        try:
            return httpx.get(f"{self.api}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def run_once(self, deployment: str, spec: dict, timeout: float = 500) -> str:
        """Run a deployment with `spec` through one process worker, to completion."""
        import json

        out = self.cli("deployment", "run", deployment, "--params", json.dumps({"spec": spec}))
        self.cli("worker", "start", "--pool", "local", "--run-once", timeout=timeout)
        return out

    def post(self, path: str) -> list[dict]:
        import httpx

        return httpx.post(f"{self.api}/{path}", json={}, timeout=10).json()


@contextmanager
def prefect_server_with_deployments(
    tmp_path: Path, env: dict[str, str] | None = None
) -> Iterator[PrefectServer]:
    """The README's deployment path: server, `local` process pool, `deploy --all`."""
    server = PrefectServer(tmp_path / "prefect-home", env)
    command = [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1"]
    with process([*command, "--port", str(server.port)], server.env, tmp_path / "server.log"):
        wait_for(server.healthy, 120, "the prefect server")
        server.cli("work-pool", "create", "local", "--type", "process")
        server.cli("--no-prompt", "deploy", "--all")
        yield server
