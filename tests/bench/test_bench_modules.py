"""The benchmarks run only by hand (`tp bench NAME`): at least they must import and parse
their options, so a refactor cannot leave one broken unnoticed."""

from __future__ import annotations

import importlib

import pytest

from flows.cli import BENCHMARKS


@pytest.mark.parametrize("name", BENCHMARKS)
def test_benchmark_imports_and_has_a_main(name):
    module = importlib.import_module(f"bench.{name}")
    assert callable(module.main)
    with pytest.raises(SystemExit) as done:
        module.main(["--help"])
    assert done.value.code == 0
