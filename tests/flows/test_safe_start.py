"""Validate before work: every stage spec fuzzed, and the checks that run before anything starts.

Any option value outside its limits must be exit 2 with one sentence naming the option, and
leave the output folder empty; a failed start of `--overwrite` leaves the old store as it was.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flows.cli import COMMANDS, EXIT_USAGE, _spec_class, main
from flows.options import spec_options


def _limits(schema: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    """The JSON-schema node of a spec field (following $ref, anyOf)."""
    node: dict[str, Any] = schema
    for part in path:
        while "$ref" in node or "anyOf" in node or "allOf" in node:
            if "$ref" in node:
                node = schema["$defs"][node["$ref"].rsplit("/", 1)[1]]
            else:
                node = next(
                    n for n in node.get("anyOf", node.get("allOf")) if n != {"type": "null"}
                )
        node = node["properties"][part]
    return node


def _bounded_options() -> list[tuple[str, str, str, float | None, float | None]]:
    """(command, flag, type, lowest allowed, highest allowed) of every bounded number option."""
    found = []
    for command in COMMANDS:
        spec = _spec_class(command)
        schema = spec.model_json_schema()
        skip = command.skip + ((command.positional,) if command.positional else ())
        for option in spec_options(spec, skip):
            if option.annotation not in (int, float):
                continue
            node = _limits(schema, option.path)
            low = node.get("minimum", node.get("exclusiveMinimum"))
            high = node.get("maximum", node.get("exclusiveMaximum"))
            if low is not None or high is not None:
                found.append((command.name, option.flag, option.annotation.__name__, low, high))
    return found


BOUNDED = _bounded_options()


def test_every_stage_has_bounded_options():
    assert {"generate", "tracks", "train", "train-tokenizer", "cache-features"} <= {
        name for name, *_ in BOUNDED
    }
    assert ("generate", "--seed", "int", 0, None) in BOUNDED


@st.composite
def out_of_limits(draw: st.DrawFn) -> tuple[str, str, str]:
    command, flag, kind, low, high = draw(st.sampled_from(BOUNDED))
    below = [] if low is None else [(low, -1)]
    above = [] if high is None else [(high, 1)]
    edge, sign = draw(st.sampled_from(below + above))
    if kind == "int":
        value: float = edge + sign * draw(st.integers(1, 10**12))
    else:
        value = edge + sign * draw(st.floats(1e-3, 1e12))
    return command, flag, str(value)


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,  # the same examples on every run: CI never flips on a new draw
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(case=out_of_limits())
def test_any_value_outside_the_limits_is_exit_2_naming_it_and_writes_nothing(
    case, tmp_path, capsys
):
    command, flag, value = case
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    files = [str(out / "tracks.txt")] if command in ("import-tracks", "score") else []
    if command == "promote":
        files = ["1"]  # its VERSION argument
    args = [command, *files, "--store", str(out / "s.zarr"), flag, value]
    if command in ("pipeline", "score", "promote", "simulate-tracker"):
        args = [command, *files, "--out", str(out / "report"), flag, value]
    assert main(args) == EXIT_USAGE
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: ") and "\n" not in error
    assert flag.removeprefix("--").replace("-", "_").split("_")[-1] in error.replace("-", "_")
    assert list(out.iterdir()) == []


def _tree_digest(path: Path) -> str:
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(str(file.relative_to(path)).encode() + file.read_bytes())
    return digest.hexdigest()


def test_failed_overwrite_start_leaves_the_store_byte_identical(tiny_store, tmp_path, capsys):
    import shutil

    from tests.conftest import tiny_cli_args

    store = tmp_path / "s.zarr"
    shutil.copytree(tiny_store, store)
    before = _tree_digest(store)
    args = [*tiny_cli_args(store), "--overwrite", "--dask-address", "tcp://127.0.0.1:1"]
    assert main(args) == EXIT_USAGE
    assert "no Dask scheduler answers at tcp://127.0.0.1:1" in capsys.readouterr().err
    assert _tree_digest(store) == before
    assert sorted(os.listdir(tmp_path)) == ["s.zarr"]  # no lock, nothing moved aside


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["generate", "--seed", "-1"], "seed: input should be greater than or equal to 0"),
        (["generate", "--size", "4096"], "lower videos_per_chunk to at most 1"),
        (["generate", "--persistent", "1000000000"], "GB free"),
        (["evaluate-baselines", "--out", "{file}"], "out: cannot create"),
    ],
)
def test_bad_input_is_refused_before_anything_is_created(args, expected, tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("")
    store = tmp_path / "s.zarr"
    args = [a.format(file=afile) for a in args] + ["--store", str(store)]
    assert main(args) == EXIT_USAGE
    assert expected in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["afile"]


@pytest.mark.parametrize(
    ("uri", "expected"), [("bogus://x", "unknown scheme 'bogus'"), ("file:///tmp/m", "file store")]
)
def test_tracking_uri_of_unknown_scheme_is_one_sentence(uri, expected, monkeypatch):
    from storage.errors import StoreError
    from storage.mlflow_store import connect

    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    with pytest.raises(StoreError, match=expected):
        connect()
