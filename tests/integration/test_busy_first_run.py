"""The first `tp generate` on a fresh machine under load succeeds: a fresh PREFECT_HOME (no
database, no configured API) while two busy loops keep both cores at 100 %."""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path

import pytest

from storage.inspect import describe
from tests.conftest import tiny_cli_args
from tests.integration.helpers import process

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
BUSY_LOOP = "while True: pass"


def test_generate_on_a_fresh_prefect_home_with_both_cores_busy(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_"))}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")  # fresh: no database, no profile
    env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    store = tmp_path / "store.zarr"
    with ExitStack() as busy:
        # Bounded: `process` kills each loop (and its group) when the block exits, pass or fail.
        for _ in range(2):
            busy.enter_context(process([sys.executable, "-c", BUSY_LOOP]))
        done = subprocess.run(
            [sys.executable, "-m", "flows.cli", *tiny_cli_args(store), "--workers", "1"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=540,
        )
    assert done.returncode == 0, done.stderr[-3000:]
    info = describe(str(store), verify=True)
    assert info["complete"] and info["videos"] == 12 and info["corrupted_chunks"] == []
