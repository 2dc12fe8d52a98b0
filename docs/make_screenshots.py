"""Re-make the README's screenshots of the MLflow and Prefect UIs.

In a temporary folder: a Prefect server and, later, `mlflow ui`, both on loopback; a small
store (100 videos), three trainings (seeds 0, 1, 2: versions 1-3) and their evaluations run
by `tp` against them; then headless Chromium photographs the MLflow compare view of the
three evaluations, the registry's model page, one version's page and the Prefect artifact
of one evaluation. Everything started is stopped at the end.

    python docs/make_screenshots.py [--out docs/img]   (needs chromium; ~5-10 min on 2 cores)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

BIN = Path(sys.executable).parent
SMALL = ["--persistent", "40", "--brief", "40", "--noise", "10", "--mixed", "10"]
SMALL += ["--frames", "13", "--size", "64", "--videos-per-chunk", "10", "--workers", "1"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            time.sleep(1)
    raise SystemExit(f"{url} did not answer within {seconds:.0f} s")


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        command, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True
    )


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def tp(*args: str, env: dict[str, str], cwd: Path) -> None:
    """A `tp` command run in `cwd` (its default folders, e.g. checkpoints/, land there)."""
    print("tp", *args, flush=True)
    subprocess.run(
        [str(BIN / "tp"), *args], env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL
    )


def shot(browser: str, url: str, path: Path, height: int = 1000, wait_ms: int = 20000) -> None:
    print("screenshot", path.name, flush=True)
    subprocess.run(
        [
            browser,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--window-size=1600,{height}",
            f"--virtual-time-budget={wait_ms}",
            f"--screenshot={path}",
            url,
        ],
        check=True,
        timeout=180,
        capture_output=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).parent / "img"))
    args = parser.parse_args()
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise SystemExit("needs chromium (Debian: apt-get install chromium)")
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="tp-screens-"))
    prefect_port, mlflow_port = free_port(), free_port()
    tracking = f"sqlite:///{work / 'mlflow.db'}"
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": tracking,
        "PREFECT_HOME": str(work / "prefect"),
        "PREFECT_API_URL": f"http://127.0.0.1:{prefect_port}/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_API_URL": f"http://127.0.0.1:{prefect_port}/api",
    }
    servers = []
    try:
        servers.append(
            start(
                [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1"]
                + ["--port", str(prefect_port)],
                env,
                work / "prefect.log",
            )
        )
        wait_for(f"http://127.0.0.1:{prefect_port}/api/health", 240)
        store, where = str(work / "store.zarr"), {"env": env, "cwd": work}
        tp("generate", "--store", store, *SMALL, **where)
        for seed in ("0", "1", "2"):
            tp("train", "--store", store, "--seed", seed, "--max-epochs", "4", **where)
        for version in ("1", "2", "3"):
            model = f"models:/track-persistence/{version}"
            report = str(work / f"report-v{version}")
            tp("evaluate", "--store", store, "--model-uri", model, "--out", report, **where)
        servers.append(
            start(
                [str(BIN / "mlflow"), "ui", "--backend-store-uri", tracking]
                + ["--host", "127.0.0.1", "--port", str(mlflow_port)],
                env,
                work / "mlflow.log",
            )
        )
        mlflow_url = f"http://127.0.0.1:{mlflow_port}"
        wait_for(mlflow_url + "/health", 120)
        os.environ["MLFLOW_TRACKING_URI"] = tracking
        import mlflow

        mlflow.set_tracking_uri(tracking)
        runs = mlflow.search_runs(
            experiment_names=["track-persistence"],
            filter_string="tags.flow = 'evaluate'",
            order_by=["start_time ASC"],
        )
        ids, experiment = list(runs["run_id"]), str(runs["experiment_id"][0])
        compare = urllib.parse.quote(json.dumps(ids)), urllib.parse.quote(json.dumps([experiment]))
        key = str(runs["tags.mlflow.runName"].iloc[-1]).lower()
        shot(
            browser,
            f"{mlflow_url}/#/compare-runs?runs={compare[0]}&experiments={compare[1]}",
            out / "mlflow_compare.png",
            height=2200,  # the runs' headline metrics are below the plot
        )
        shot(browser, f"{mlflow_url}/#/experiments/{experiment}", out / "mlflow_runs.png")
        shot(browser, f"{mlflow_url}/#/models/track-persistence", out / "mlflow_registry.png")
        shot(
            browser,
            f"{mlflow_url}/#/models/track-persistence/versions/3",
            out / "mlflow_version.png",
        )
        found = urllib.request.urlopen(
            urllib.request.Request(
                f"http://127.0.0.1:{prefect_port}/api/artifacts/filter",
                data=json.dumps({"artifacts": {"key": {"any_": [key]}}, "limit": 1}).encode(),
                headers={"Content-Type": "application/json"},
            ),
            timeout=30,
        )
        artifact = json.loads(found.read())[0]["id"]
        shot(
            browser,
            f"http://127.0.0.1:{prefect_port}/artifacts/artifact/{artifact}",
            out / "prefect_artifact.png",
            wait_ms=40000,
        )
    finally:
        for server in reversed(servers):
            stop(server)
    shutil.rmtree(work, ignore_errors=True)
    print(f"screenshots in {out}")


if __name__ == "__main__":
    main()
