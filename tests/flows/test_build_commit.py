"""The git commit a run records, for a package installed from a wheel (no repository)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_a_built_wheel_knows_its_commit_without_a_repository(tmp_path):
    source = tmp_path / "source"  # a clean clone: the build writes build/ and egg-info there
    subprocess.run(["git", "clone", "-q", str(REPO), str(source)], check=True)
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=source, capture_output=True, text=True, check=True
    ).stdout.strip()
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "-w", str(wheels), str(source)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    (wheel,) = wheels.glob("*.whl")
    installed = tmp_path / "installed"
    zipfile.ZipFile(wheel).extractall(installed)
    assert (installed / "storage" / "_git_commit.txt").read_text().strip() == head
    recorded = subprocess.run(
        [sys.executable, "-c", "from storage.mlflow_store import git_commit; print(git_commit())"],
        cwd=tmp_path,  # outside any repository
        env={"PYTHONPATH": str(installed), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert recorded == head
    assert not (source / "storage" / "_git_commit.txt").exists()  # the source tree stays clean
