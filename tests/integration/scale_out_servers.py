"""The servers users scale out on, started for real on loopback: an S3 server (moto), a
PostgreSQL from the Debian package, `mlflow server` on it with artifacts on S3, `prefect
server` on it, and a `dask scheduler` with 2 workers. Each is stopped whatever happens."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.integration.helpers import BIN, PrefectServer, free_port, port_open, process, wait_for


def _postgres_bin() -> Path:
    """TP_PG_BIN, else the newest Debian PostgreSQL (15 on this project's image)."""
    if os.environ.get("TP_PG_BIN"):
        return Path(os.environ["TP_PG_BIN"])
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    return found[-1].parent if found else Path("/usr/lib/postgresql/15/bin")


PG_BIN = _postgres_bin()
BUCKET = "tp-store"
ARTIFACTS_BUCKET = "tp-mlflow"
# Credentials moto accepts; distinctive, so a test can tell that none is ever printed.
ACCESS_KEY = "tp-test-access-key"
SECRET = "tp-test-secret-5f2c9e"


def _http_ok(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=2) as reply:
            return reply.status == 200
    except OSError:
        return False


@contextmanager
def s3_server() -> Iterator[str]:
    """moto's S3 server in a thread, as zarr-python's fsspec tests run it; two buckets."""
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET,
            region_name="us-east-1",
        )
        for bucket in (BUCKET, ARTIFACTS_BUCKET):
            client.create_bucket(Bucket=bucket)
        yield endpoint
    finally:
        server.stop()


def s3_env(endpoint: str) -> dict[str, str]:
    """The standard AWS variables a user sets to reach the store (read by botocore)."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_DEFAULT_REGION": "us-east-1",
    }


def _as_postgres() -> list[str]:
    """Run as the `postgres` user when root (PostgreSQL refuses to run as root)."""
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


@contextmanager
def postgres_server(root: Path) -> Iterator[str]:
    """A throwaway PostgreSQL cluster in `root` with databases `mlflow` and `prefect`;
    yields `user@host:port`."""
    if not (PG_BIN / "initdb").exists():
        pytest.skip(
            f"PostgreSQL server binaries not found in {PG_BIN} "
            "(apt-get install postgresql, or set TP_PG_BIN)"
        )
    data, sockets = root / "data", root / "sockets"
    sockets.mkdir(parents=True)
    if os.geteuid() == 0:
        for path in (root, sockets):
            shutil.chown(path, "postgres")
    user = _as_postgres()

    def run(*args: str) -> None:
        subprocess.run([*user, *args], check=True, capture_output=True, timeout=120)

    run(str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync")
    port = free_port()
    options = f"-p {port} -h 127.0.0.1 -k {sockets} -c fsync=off -c synchronous_commit=off"
    log = root / "postgres.log"
    run(str(PG_BIN / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(log), "-w", "start")
    try:
        for database in ("mlflow", "prefect"):
            run(
                str(PG_BIN / "createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-U",
                "postgres",
                database,
            )
        yield f"postgres@127.0.0.1:{port}"
    finally:
        subprocess.run(
            [*user, str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
            capture_output=True,
            timeout=60,
        )


@dataclass
class Servers:
    """Where everything listens, and the environment `tp` gets to use all of it."""

    s3: str
    mlflow: str
    prefect: PrefectServer
    dask: str
    logs: Path
    env: dict[str, str] = field(default_factory=dict)

    def tp_env(self, **extra: str) -> dict[str, str]:
        """The user's shell: AWS variables for the store, the two servers' URLs."""
        base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MLFLOW_"))}
        return {
            **base,
            **s3_env(self.s3),
            "PREFECT_API_URL": self.prefect.api,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_LOGGING_LEVEL": "WARNING",
            "MLFLOW_TRACKING_URI": self.mlflow,
            **extra,
        }

    def tp(self, *args: str, cwd: Path, timeout: float = 300, **env: str):
        """`tp ARGS` as a user runs it, in `cwd`; the completed process."""
        began = time.monotonic()
        done = subprocess.run(
            [str(BIN / "tp"), *args],
            cwd=cwd,
            env=self.tp_env(**env),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        print(
            f"tp {args[0]} {args[-1]}: exit {done.returncode} in {time.monotonic() - began:.1f} s"
        )
        return done


@contextmanager
def all_servers(root: Path) -> Iterator[Servers]:
    """Every server at once; MLflow and Prefect migrate their databases side by side."""
    logs = root / "logs"
    logs.mkdir(parents=True)
    with ExitStack() as stack:
        s3 = stack.enter_context(s3_server())
        pg_root = Path(tempfile.mkdtemp(prefix="tp-pg-"))  # postgres must traverse it
        stack.callback(shutil.rmtree, pg_root, True)
        pg = stack.enter_context(postgres_server(pg_root))

        mlflow_port = free_port()
        mlflow = f"http://127.0.0.1:{mlflow_port}"
        mlflow_args = [
            str(BIN / "mlflow"),
            "server",
            "--backend-store-uri",
            f"postgresql+psycopg2://{pg}/mlflow",
            "--artifacts-destination",
            f"s3://{ARTIFACTS_BUCKET}/artifacts",
            "--host",
            "127.0.0.1",
            "--port",
            str(mlflow_port),
            "--workers",
            "1",
        ]
        server_env = {**s3_env(s3), "MLFLOW_S3_ENDPOINT_URL": s3}
        server_env["PATH"] = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"
        stack.enter_context(process(mlflow_args, server_env, logs / "mlflow.log"))

        prefect = PrefectServer(
            root / "prefect-home",
            {"PREFECT_API_DATABASE_CONNECTION_URL": f"postgresql+asyncpg://{pg}/prefect"},
        )
        command = [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1"]
        command += ["--port", str(prefect.port)]
        stack.enter_context(process(command, prefect.env, logs / "prefect.log"))

        # The servers bind their ports before the Dask processes start: a worker's ephemeral
        # ports once took the port chosen for the slow-starting Prefect server.
        began = time.monotonic()
        wait_for(lambda: _http_ok(f"{mlflow}/health"), 240, "mlflow server on PostgreSQL")
        wait_for(prefect.healthy, 240, "prefect server on PostgreSQL")
        # Workers without any AWS variable, in a working directory of their own: what they
        # need comes from `tp` (object-store variables, absolute paths).
        dask_port = free_port()
        dask = f"tcp://127.0.0.1:{dask_port}"
        worker_env = {"PREFECT_API_URL": prefect.api, "PREFECT_LOGGING_LEVEL": "WARNING"}
        worker_env["DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED"] = "False"  # as the README's
        worker_cwd = root / "worker-cwd"
        worker_cwd.mkdir()
        clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        scheduler = [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1"]
        scheduler += ["--port", str(dask_port), "--no-dashboard"]
        stack.enter_context(process(scheduler, worker_env, logs / "scheduler.log"))
        wait_for(lambda: port_open(dask_port), 60, "the dask scheduler")
        worker = [str(BIN / "dask"), "worker", dask, "--nthreads", "1", "--no-dashboard"]
        worker += ["--host", "127.0.0.1"]
        for n in (1, 2):
            log = logs / f"worker{n}.log"
            stack.enter_context(process(worker, worker_env, log, worker_cwd, base_env=clean))

        from distributed import Client

        with Client(dask, timeout=60) as client:
            client.wait_for_workers(2, timeout=120)
        print(f"servers up in {time.monotonic() - began:.0f} s after PostgreSQL and S3")
        yield Servers(s3=s3, mlflow=mlflow, prefect=prefect, dask=dask, logs=logs)
