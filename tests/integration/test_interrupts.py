"""SIGINT, SIGTERM and SIGKILL of a real `tp generate`: exit code, no orphans, chunks valid.

The signal goes to the `tp` process alone (as `kill PID` sends it); its children (the
temporary Prefect server, the Dask nanny and workers) must be gone within 10 s, and every
chunk marked done must still match its checksum, so a re-run resumes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from tests.integration.helpers import process, wait_for
from tests.integration.test_kill_and_resume import ARGS, _done

pytestmark = pytest.mark.slow

# This checkout's CLI (the `tp` script may belong to another editable install).
TP = [sys.executable, "-m", "flows.cli"]
EXPECTED = {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGKILL: -signal.SIGKILL}


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_signal_stops_the_run_and_its_children_and_keeps_done_chunks(signum, tmp_path):
    store, log = tmp_path / "s.zarr", tmp_path / "tp.log"
    with process([*TP, "generate", "--store", str(store), *ARGS], log=log) as proc:
        wait_for(lambda: _done(store) >= 2 or proc.poll() is not None, 240, "some chunks")
        assert proc.poll() is None, "the run finished before it could be interrupted"
        children = psutil.Process(proc.pid).children(recursive=True)
        assert children  # the Prefect server and the Dask processes
        began = time.monotonic()
        os.kill(proc.pid, signum)
        code = proc.wait(timeout=60)
        stopped_in = time.monotonic() - began
    assert code == EXPECTED[signum], log.read_text()[-2000:]
    _, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, f"orphans after {signum.name}: {[p.cmdline()[:4] for p in alive]}"
    if signum != signal.SIGKILL:
        last = log.read_text().strip().splitlines()[-1]
        assert last.startswith(f"interrupted by {signum.name}"), last
        assert stopped_in < 30
    check = subprocess.run(
        [*TP, "info", "--store", str(store), "--verify"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert not os.path.exists(f"{store}.tp-lock") or signum == signal.SIGKILL
