"""`tp generate` SIGKILLed mid-run, then re-run: the store equals an uninterrupted run's."""

from __future__ import annotations

import json
import os
import signal
import subprocess

import numpy as np
import pytest
import zarr

from tests.integration.helpers import BIN, process, wait_for

pytestmark = pytest.mark.slow

ARGS = [
    "--persistent",
    "60",
    "--brief",
    "60",
    "--noise",
    "20",
    "--mixed",
    "20",
    "--videos-per-chunk",
    "4",
    "--frames",
    "13",
    "--size",
    "96",
    "--workers",
    "2",
]


def _done(path) -> int:
    try:
        return int((zarr.open_group(str(path), mode="r")["_chunk_checksum"][:] != 0).sum())
    except Exception:
        return 0


def test_sigkill_then_resume_matches_uninterrupted_run(tmp_path):
    killed, clean = tmp_path / "killed.zarr", tmp_path / "clean.zarr"
    with process(
        [str(BIN / "tp"), "generate", "--store", str(killed), *ARGS], log=tmp_path / "killed.log"
    ) as proc:
        wait_for(lambda: _done(killed) >= 3 or proc.poll() is not None, 240, "some chunks")
        assert proc.poll() is None, "the run finished before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    partial = _done(killed)
    assert 0 < partial < 40

    resumed = subprocess.run(
        [str(BIN / "tp"), "generate", "--store", str(killed), *ARGS],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    summary = json.loads(resumed.stdout[resumed.stdout.index("{") :])
    assert summary["chunks_redone"] == 40 - partial  # only what was not done before
    subprocess.run(
        [str(BIN / "tp"), "generate", "--store", str(clean), *ARGS],
        check=True,
        capture_output=True,
        timeout=600,
    )

    a, b = zarr.open_group(str(killed), mode="r"), zarr.open_group(str(clean), mode="r")
    names = sorted(a.array_keys())
    assert names == sorted(b.array_keys()) and "videos" in names
    for name in names:
        np.testing.assert_array_equal(a[name][:], b[name][:], err_msg=name)
    assert a.attrs["fingerprint"] == b.attrs["fingerprint"]
    check = subprocess.run(
        [str(BIN / "tp"), "info", "--store", str(killed), "--verify"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.returncode == 0 and "match their checksums" in check.stdout
