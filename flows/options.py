"""Command-line options generated from a stage's spec, so an option can never disagree with
the flow parameter it sets: same name, type, default, limits, choices and help.

Fields of a spec become `--name`; fields of the domain configs a spec contains are
flattened the same way (`scene.frames` -> `--frames`), except a config nested in another
config keeps its name as a prefix (`tracker.detector.threshold` -> `--detector-threshold`).
Options the user does not give are left out, so the spec's own defaults apply: there is
one place for every default.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal, Union

from pydantic import BaseModel

from tp_models.core.config import documentation


@dataclass(frozen=True)
class Option:
    path: tuple[str, ...]  # field path in the spec, e.g. ("tracker", "detector", "threshold")
    flag: str
    group: str | None  # the config it belongs to, for the help's sections
    annotation: Any
    default: Any
    description: str


def spec_options(spec: type[BaseModel], skip: tuple[str, ...] = ()) -> list[Option]:
    """Every option of `spec` (fields of type dict, or listed in `skip` as dotted paths, are
    not options). Raises if two fields would share a flag: a bug in the specs."""
    # model_construct: defaults without validation, so a required field (an argument) is None
    options = [
        o for o in _walk(spec, spec.model_construct(), (), ()) if ".".join(o.path) not in skip
    ]
    seen: dict[str, Option] = {}
    for option in options:
        if option.flag in seen:
            raise RuntimeError(
                f"{spec.__name__}: {'.'.join(option.path)} and "
                f"{'.'.join(seen[option.flag].path)} would both be {option.flag}"
            )
        seen[option.flag] = option
    return options


def _walk(
    cls: type, default: Any, path: tuple[str, ...], prefix: tuple[str, ...]
) -> Iterator[Option]:
    is_spec = isinstance(cls, type) and issubclass(cls, BaseModel)
    for name, annotation, description in _fields(cls):
        value = getattr(default, name, None)
        field_type = _unwrap(annotation)
        here = (*path, name)
        if _is_config(field_type):
            # Configs inside a spec are flattened; a config inside a config keeps its name.
            yield from _walk(field_type, value, here, prefix if is_spec else (*prefix, name))
            continue
        if _base(field_type) is dict:
            continue
        group = None if not path else path[-1]
        flag = "--" + "-".join((*prefix, name)).replace("_", "-")
        yield Option(here, flag, group, field_type, value, description)


def _fields(cls: type) -> Iterator[tuple[str, Any, str]]:
    if issubclass(cls, BaseModel):
        for name, field in cls.model_fields.items():
            yield name, field.annotation, _first_sentence(documentation(field.metadata))
        return
    hints = typing.get_type_hints(cls, include_extras=True)
    for field in dataclasses.fields(cls):
        hint = hints[field.name]
        help_text = _first_sentence(documentation(getattr(hint, "__metadata__", ())))
        yield field.name, hint, help_text


def _first_sentence(text: str) -> str:
    """A field's help is the first sentence of its documentation."""
    return text.split(". ", 1)[0].rstrip(".")


def _unwrap(annotation: Any) -> Any:
    """Strip Annotated[...] and Optional[...]: what remains is the value's type."""
    if typing.get_origin(annotation) is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) in (Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(members) == 1:
            return _unwrap(members[0])
    return annotation


def _is_config(annotation: Any) -> bool:
    return isinstance(annotation, type) and (
        issubclass(annotation, BaseModel) or dataclasses.is_dataclass(annotation)
    )


def _base(annotation: Any) -> Any:
    return typing.get_origin(annotation) or annotation


def add_options(parser: argparse.ArgumentParser, options: list[Option]) -> None:
    """Add `options` to `parser`, grouped by the config they belong to."""
    groups: dict[str | None, Any] = {None: parser}
    for option in options:
        if option.group not in groups:
            groups[option.group] = parser.add_argument_group(f"{option.group} options")
        _add(groups[option.group], option)


def _add(parser: Any, option: Option) -> None:
    kwargs: dict[str, Any] = {"dest": _dest(option), "default": argparse.SUPPRESS}
    annotation = option.annotation
    default = option.default
    shown = list(default) if isinstance(default, tuple) else default
    help_text = option.description
    if "(default:" not in help_text:  # a description may say its default in words
        help_text = f"{help_text} (default: {shown})".strip()
    help_text = help_text.replace("%", "%%")  # argparse formats help with %
    metavar = option.path[-1].upper()
    if annotation is bool:
        kwargs["action"] = argparse.BooleanOptionalAction
        metavar = None
    elif typing.get_origin(annotation) is Literal:
        choices = typing.get_args(annotation)
        kwargs.update(choices=choices, type=type(choices[0]))
        metavar = None  # argparse lists the choices
    elif _base(annotation) is tuple:
        args = typing.get_args(annotation)
        if len(args) == 2 and args[1] is Ellipsis:
            item = _unwrap(args[0])
            if typing.get_origin(item) is Literal:  # a list of choices
                kwargs.update(nargs="+", choices=typing.get_args(item), type=str)
                metavar = None
            else:
                kwargs.update(nargs="+", type=item)
        else:
            kwargs.update(nargs=len(args), type=args[0])
            metavar = ("MIN", "MAX") if len(args) == 2 else None
    else:
        kwargs["type"] = annotation if annotation in (int, float) else str
    if metavar is not None:
        kwargs["metavar"] = metavar
    parser.add_argument(option.flag, help=help_text, **kwargs)


def _dest(option: Option) -> str:
    return "spec:" + ".".join(option.path)


def spec_values(args: argparse.Namespace) -> dict[str, Any]:
    """The options the user gave, as the nested dict the spec validates."""
    values: dict[str, Any] = {}
    for dest, value in vars(args).items():
        if not dest.startswith("spec:"):
            continue
        *parents, leaf = dest.removeprefix("spec:").split(".")
        node = values
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return values
