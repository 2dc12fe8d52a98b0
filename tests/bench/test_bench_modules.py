"""The benchmarks run only by hand (`tp bench NAME`): at least they must import and parse
their options, so a refactor cannot leave one broken unnoticed."""

from __future__ import annotations

import dataclasses
import importlib
import json

import pytest

from flows.cli import BENCHMARKS


@pytest.mark.parametrize("name", BENCHMARKS)
def test_benchmark_imports_and_has_a_main(name):
    module = importlib.import_module(f"bench.{name}")
    assert callable(module.main)
    with pytest.raises(SystemExit) as done:
        module.main(["--help"])
    assert done.value.code == 0


def online_results(capsys, *options: str) -> dict:
    from bench import online

    assert online.main(["--json", "--tracks", "3", "--repeats", "3", *options]) == 0
    return json.loads(capsys.readouterr().out)


def test_online_bench_reports_each_age_with_its_floor_and_memory(capsys):
    """Tiny sizes: a transformer of max_len 8 reaches ages 2 and 5, not 12, which is
    reported as not reached with the reason instead of crashing."""
    results = online_results(capsys, "--ages", "2,5,12", "--max-len", "8")
    assert [r["age"] for r in results["ages"]] == [2, 5, 12]
    assert results["sequence"] == "transformer" and results["max_len"] == 8
    for row in results["ages"][:2]:
        assert row["update_not_reached"] is None and row["floor_not_reached"] is None
        assert 0 < row["update_p50_ms"] <= row["update_p99_ms"]
        assert 0 < row["floor_p50_ms"] <= row["floor_p99_ms"]
        assert row["ratio_update_to_floor"] > 0
        assert row["state_bytes_per_track"] >= row["sequence_cache_bytes_per_track"] > 0
        assert row["rerun_p50_ms"] > 0
        assert row["update_timed"].startswith("at this age")
    # Timing ran on copies: the walk went from frame 1 straight on to age 5 (3 frames).
    assert [r["warm_frames"] for r in results["ages"][:2]] == [1, 3]
    unreached = results["ages"][2]
    assert "max_len=8" in unreached["update_not_reached"]
    assert "max_len=8" in unreached["floor_not_reached"]
    assert "update_p50_ms" not in unreached and "state_bytes" not in unreached
    assert results["memory_per_track"]["ages"] == [2, 5]
    assert isinstance(results["memory_per_track"]["constant"], bool)


def test_online_bench_stops_warming_at_its_budget(capsys):
    """Age 1 needs no warming; age 5 does, and a budget of 0 s gives none: not reached,
    said so, no age faked."""
    results = online_results(capsys, "--ages", "1,5", "--warm-budget", "0")
    first, second = results["ages"]
    assert first["update_p50_ms"] > 0 and first["warm_frames"] == 0
    assert "--warm-budget" in second["update_not_reached"]
    assert "--warm-budget" in second["floor_not_reached"]
    assert results["memory_per_track"]["constant"] is None


def test_online_bench_sequence_option(capsys):
    """--sequence gru builds ModelConfig(sequence='gru') where the config has that field;
    before it exists, the option says so instead of benchmarking the wrong model."""
    from tp_models.model import ModelConfig

    if "sequence" not in {f.name for f in dataclasses.fields(ModelConfig)}:
        with pytest.raises(SystemExit, match="no 'sequence' field"):
            online_results(capsys, "--sequence", "gru")
        results = online_results(capsys, "--sequence", "transformer", "--ages", "2")
        assert results["sequence_class"] == "SimpleTransformerSequence"
        return
    results = online_results(capsys, "--sequence", "gru", "--ages", "2,40")
    assert results["sequence"] == "gru"
    for row in results["ages"]:  # a recurrent step has no max_len
        assert row["floor_not_reached"] is None and row["floor_p50_ms"] > 0


def test_state_bytes_counts_each_storage_once_and_skips_the_model():
    import numpy as np
    import torch

    from bench.online import state_bytes

    tensor, array = torch.zeros(10, 4), np.zeros((5, 2), dtype=np.float64)
    holder = type("Holder", (), {})()
    holder.__dict__.update(
        model=torch.nn.Linear(100, 100),
        tensor=tensor,
        view=tensor[:3],
        arrays=[array, array[1:], {"again": array}],
    )
    assert state_bytes(holder) == 10 * 4 * 4 + 5 * 2 * 8


def test_memory_verdict_needs_the_same_bytes_at_every_age_reached():
    from bench.online import memory_verdict

    def row(age, per_track):
        return {"age": age, "state_bytes": per_track * 100, "state_bytes_per_track": per_track}

    same = [row(10, 900), row(200, 900), {"age": 2000}, row(20000, 900)]
    assert memory_verdict(same) == {"constant": True, "ages": [10, 200, 20000], "growth": 1.0}
    assert memory_verdict([row(10, 900), row(200, 1800)])["constant"] is False
    assert memory_verdict([row(10, 900)])["constant"] is None
