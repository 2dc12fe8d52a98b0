"""Shared benchmark plumbing: run a command, sample its memory, take medians, print ratios.

Benchmarks print ratios against a floor or baseline measured in the same run, so a noisy
or slower machine moves both sides together. Timings never go into pass/fail tests.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

BIN = Path(sys.executable).parent


@dataclass
class Measured:
    seconds: float
    peak_rss_mb: float  # the whole process tree, sampled every 50 ms
    stdout: str


class MemoryLimitExceeded(RuntimeError):
    """The measured command passed its memory limit and was stopped."""


def run_measured(
    args: Sequence[str], env: dict[str, str] | None = None, limit_mb: float | None = None
) -> Measured:
    """Run a command to completion; wall time and peak RSS summed over its process tree.
    With `limit_mb`, a tree that passes it is killed (`MemoryLimitExceeded`): a benchmark
    of a size that does not fit yet must not take the machine down."""
    began = time.perf_counter()
    proc = subprocess.Popen(
        list(args),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, **(env or {})},
    )
    peak = 0.0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        root = psutil.Process(proc.pid)
        while not stop.is_set():
            try:
                procs = [root, *root.children(recursive=True)]
                total = sum(p.memory_info().rss for p in procs if p.is_running())
                peak = max(peak, total / 1e6)
                if limit_mb is not None and peak > limit_mb:
                    for each in reversed(procs):
                        each.kill()
            except psutil.Error:
                pass
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, _ = proc.communicate()
    seconds = time.perf_counter() - began
    stop.set()
    sampler.join()
    if limit_mb is not None and peak > limit_mb:
        raise MemoryLimitExceeded(f"{' '.join(args)} passed {limit_mb:.0f} MB and was stopped")
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {proc.returncode}")
    return Measured(seconds, peak, stdout)


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


def emit(name: str, results: dict[str, Any], as_json: bool, lines: Sequence[str]) -> None:
    results = {"benchmark": name, "machine": machine(), **results}
    if as_json:
        print(json.dumps(results, indent=2))
    else:
        print(
            f"== tp bench {name}  ({results['machine']['cpus']} cpus, "
            f"load {results['machine']['load_avg_1m']})"
        )
        for line in lines:
            print(line)


def last_json(stdout: str) -> dict[str, Any]:
    """The JSON document a `tp` command printed last."""
    start = stdout.index("{")
    return json.loads(stdout[start:])
