"""The specs are the one place for every default and limit: their JSON schema (what the Prefect
UI form enforces), the domain dataclasses they contain and the generated CLI must all agree."""

from __future__ import annotations

import dataclasses
import json
import re
import types
import typing
from typing import Any, Literal

import pytest
from pydantic import BaseModel

from flows.cli import COMMANDS, build_parser, main
from flows.options import Option, spec_options, spec_values
from storage.errors import ParameterError
from tasks import specs
from tasks.specs import GenerateSpec, parse
from tp_models.magvit import TokenizerConfig
from tp_models.model import TrainConfig

# (command, spec class, spec fields that are not options): every command with a spec.
COMMAND_SPECS = [
    (c.name, getattr(specs, c.spec), c.skip + ((c.positional,) if c.positional else ()))
    for c in COMMANDS
] + [("evaluate-baselines", specs.BaselinesSpec, ())]
POSITIONAL = {c.name: c.positional for c in COMMANDS if c.positional}
COMMAND_IDS = [command for command, _, _ in COMMAND_SPECS]
SPECS = sorted({spec for _, spec, _ in COMMAND_SPECS}, key=lambda s: s.__name__)
LIMIT_KEYS = {"ge": "minimum", "gt": "exclusiveMinimum", "le": "maximum", "lt": "exclusiveMaximum"}


def _unwrap(annotation: Any) -> Any:
    """The value's type under Annotated[...] and Optional[...]."""
    if typing.get_origin(annotation) is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _unwrap(members[0]) if len(members) == 1 else annotation
    return annotation


def _field(cls: type, name: str) -> tuple[Any, list[Any]]:
    """(annotation, constraint metadata) of one field of a spec or domain dataclass."""
    if issubclass(cls, BaseModel):
        info = cls.model_fields[name]
        return info.annotation, list(info.metadata)
    hint = typing.get_type_hints(cls, include_extras=True)[name]
    return hint, list(getattr(hint, "__metadata__", ()))


def _constraints(spec: type, path: tuple[str, ...]) -> tuple[Any, dict[str, Any]]:
    """The leaf's type and its limits as JSON-schema keys, read from the Python classes."""
    cls: Any = spec
    for name in path:
        annotation, metadata = _field(cls, name)
        cls = _unwrap(annotation)
    limits = {
        key: getattr(m, attr)
        for m in metadata
        for attr, key in LIMIT_KEYS.items()
        if getattr(m, attr, None) is not None
    }
    return cls, limits


def _resolve(root: dict, node: dict) -> dict:
    """A schema node with its $ref and Optional's anyOf merged in."""
    node = dict(node)
    if "$ref" in node:
        node = {**root["$defs"][node.pop("$ref").split("/")[-1]], **node}
    for member in node.pop("anyOf", ()):
        if member.get("type") != "null":
            node = {**_resolve(root, member), **node}
    return node


def _schema_leaves(spec: type[BaseModel]) -> dict[tuple[str, ...], dict]:
    """Every leaf property of the spec's JSON schema, by field path (dicts are not leaves)."""
    root = spec.model_json_schema()
    leaves: dict[tuple[str, ...], dict] = {}

    def walk(node: dict, path: tuple[str, ...]) -> None:
        for name, prop in node["properties"].items():
            prop = _resolve(root, prop)
            if "properties" in prop:
                walk(prop, (*path, name))
            elif prop.get("type") != "object":
                leaves[(*path, name)] = prop

    walk(_resolve(root, root), ())
    return leaves


def _json(value: Any) -> Any:
    return json.loads(json.dumps(value))


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.__name__)
def test_schema_carries_every_limit_and_choice_of_the_python_fields(spec):
    leaves = _schema_leaves(spec)
    limited = 0
    for path, prop in leaves.items():
        leaf_type, limits = _constraints(spec, path)
        for key, value in limits.items():
            assert prop.get(key) == value, f"{spec.__name__}.{'.'.join(path)}: {key}"
        limited += bool(limits)
        if typing.get_origin(leaf_type) is Literal:
            assert prop["enum"] == list(typing.get_args(leaf_type)), ".".join(path)
    assert limited or spec is specs.EvaluateSpec  # the walk does reach the limits


def test_named_limits_are_in_the_schema_the_prefect_form_checks():
    leaves = _schema_leaves(GenerateSpec)
    assert leaves[("persistent",)]["minimum"] == 0
    assert leaves[("videos_per_chunk",)]["minimum"] == 1
    gate = leaves[("tracker", "gate_probability")]
    assert (gate["exclusiveMinimum"], gate["exclusiveMaximum"]) == (0, 1)
    assert "minimum" not in gate and "maximum" not in gate
    workers = leaves[("compute", "workers")]
    assert (workers["minimum"], workers["maximum"]) == (1, 256)
    assert leaves[("tracker", "detector", "connectivity")]["enum"] == [4, 8]
    with pytest.raises(ParameterError, match="gate_probability"):
        parse(GenerateSpec, {"tracker": {"gate_probability": 1.0}})


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.__name__)
def test_spec_defaults_are_the_domain_defaults(spec):
    default = spec.model_construct()  # required fields (promote's VERSION) stay unset
    for name, field_type in _configs(spec).items():
        assert getattr(default, name) == field_type(), f"{spec.__name__}.{name}"
    # What the Prefect form shows as default is what the spec (and the CLI) uses.
    for path, prop in _schema_leaves(spec).items():
        value: Any = default
        for name in path:
            value = getattr(value, name, None)
        assert prop.get("default") == _json(value), f"{spec.__name__}.{'.'.join(path)}"


def _configs(spec: type[BaseModel]) -> dict[str, type]:
    """The spec's fields that are domain dataclass configs."""
    found = {name: _unwrap(info.annotation) for name, info in spec.model_fields.items()}
    return {name: cls for name, cls in found.items() if dataclasses.is_dataclass(cls)}


def test_specs_contain_the_domain_configs_instead_of_restating_them():
    contained = {cls.__name__ for spec in SPECS for cls in _configs(spec).values()}
    assert contained == {
        "SceneConfig",
        "TrackerConfig",
        "ModelConfig",
        "TrainConfig",
        "TokenizerConfig",
        "TokenizerTrainConfig",
        "MatchConfig",
        "TrackerScenario",
    }


def test_defaults_the_old_params_disagreed_on():
    assert specs.TrainSpec().training.max_epochs == TrainConfig().max_epochs
    assert (
        specs.TokenizerSpec().tokenizer.spatial_downsample == TokenizerConfig().spatial_downsample
    )
    assert specs.PipelineSpec().generate == GenerateSpec()


@pytest.mark.parametrize(("command", "spec", "skip"), COMMAND_SPECS, ids=COMMAND_IDS)
def test_one_unique_flag_per_field(command, spec, skip):
    options = spec_options(spec, skip)
    flags = [o.flag for o in options]
    assert len(set(flags)) == len(flags)
    wanted = {p for p in _schema_leaves(spec) if ".".join(p) not in skip}
    assert {o.path for o in options} == wanted


def _argv(option: Option) -> list[str]:
    """The option given its own default, as a user would type it."""
    if isinstance(option.default, bool):
        return [option.flag if option.default else "--no-" + option.flag[2:]]
    if isinstance(option.default, tuple):
        return [option.flag, *map(str, option.default)]
    return [option.flag, str(option.default)]


@pytest.mark.parametrize(("command", "spec", "skip"), COMMAND_SPECS, ids=COMMAND_IDS)
def test_every_flag_sets_its_own_field(command, spec, skip):
    options = [o for o in spec_options(spec, skip) if o.default not in (None, ())]
    positional = POSITIONAL.get(command)
    files = (["1"] if command == "promote" else ["tracks.txt"]) if positional else []
    argv = [command, *files] + [arg for option in options for arg in _argv(option)]
    values = spec_values(build_parser(command).parse_args(argv))
    given = {positional: files if command != "promote" else files[0]} if positional else {}
    assert parse(spec, values) == spec.model_validate(given)
    values.pop(positional, None)
    # Each flag lands on its own path: collect the leaf paths the parser filled.
    filled: set[tuple[str, ...]] = set()

    def walk(node: dict, path: tuple[str, ...]) -> None:
        for key, value in node.items():
            walk(value, (*path, key)) if isinstance(value, dict) else filled.add((*path, key))

    walk(values, ())
    assert filled == {o.path for o in options}


def test_flags_reach_nested_domain_fields():
    argv = ["generate", "--persistent", "7", "--gate-probability", "0.5"]
    argv += ["--detector-connectivity", "4", "--frames", "11", "--radius-range", "2", "5"]
    spec = parse(GenerateSpec, spec_values(build_parser("generate").parse_args(argv)))
    assert spec.persistent == 7 and spec.tracker.gate_probability == 0.5
    assert spec.tracker.detector.connectivity == 4 and spec.scene.frames == 11
    assert spec.scene.radius_range == (2.0, 5.0)


@pytest.mark.parametrize(("command", "spec", "skip"), COMMAND_SPECS, ids=COMMAND_IDS)
def test_help_lists_choices_and_one_default_per_option(command, spec, skip, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")  # one help entry per line or two, never wrapped
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    entries = re.split(r"\n  (?=-)", text.split("\noptions:\n", 1)[1])
    by_flag = {entry.split()[0].rstrip(","): " ".join(entry.split()) for entry in entries}
    options = spec_options(spec, skip)
    for option in options:
        entry = by_flag[option.flag]
        shown = list(option.default) if isinstance(option.default, tuple) else option.default
        assert entry.count("(default:") == 1, entry
        if "(default:" not in option.description:
            assert f"(default: {shown})" in entry, entry
        if typing.get_origin(option.annotation) is Literal:
            choices = ",".join(map(str, typing.get_args(option.annotation)))
            assert "{" + choices + "}" in entry, entry
    assert text.count("(default:") == len(options)
