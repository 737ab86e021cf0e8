"""A task's options, declared once (like whisper's DecodingOptions) and read by every front end.

Each task keeps one frozen dataclass of its options beside its code (`tasks.clean.CleanOptions`,
...), its fields made with `option()`: default, help, unit, bounds, choices. From that one
declaration the CLI builds its flags (`cli.app.task_options`), the server its request model
(`server.work.request_model`) and batch its manifest columns (`batch.manifest.OPTIONS`), and the
dataclass checks itself when made, so every front end refuses the same values with the same words.
Adding an option to a task is one field here plus its use in the task.
"""

from __future__ import annotations

import dataclasses
import json
import math
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from .errors import InputError

T = TypeVar("T", bound="TaskOptions")


def option(
    default: Any,  # noqa: ANN401 - any field type
    help: str,  # noqa: A002 - the word every front end uses
    *,
    flags: tuple[str, ...] = (),
    what: str | None = None,
    unit: str | None = None,
    ge: float | None = None,
    le: float | None = None,
    choices: tuple[str, ...] | None = None,
    cli_type: Any = None,  # noqa: ANN401 - a type
    server_type: Any = None,  # noqa: ANN401 - a type
) -> Any:  # noqa: ANN401 - a dataclasses.Field posing as the default
    """One task option: its default and help, the CLI `flags` besides `--NAME`, what it measures
    (`what`, `unit`) and its bounds or choices, checked wherever the option comes from. A field
    whose type a front end cannot take as is names the type it takes there (`cli_type`: what a
    flag parses, `server_type`: what a request's JSON holds)."""
    meta = {
        "help": help,
        "flags": flags,
        "what": what,
        "unit": unit,
        "ge": ge,
        "le": le,
        "choices": choices,
        "cli_type": cli_type,
        "server_type": server_type,
    }
    return dataclasses.field(default=default, metadata=meta)


@dataclass(frozen=True)
class Spec:
    """One option as the front ends need it: name, type, default and its declared metadata."""

    name: str
    type: Any
    default: Any
    help: str
    flags: tuple[str, ...]
    what: str
    unit: str | None
    ge: float | None
    le: float | None
    choices: tuple[str, ...] | None
    cli_type: Any
    server_type: Any

    @property
    def flag(self) -> str:
        """The long CLI flag: `--name-with-dashes`."""
        return "--" + self.name.replace("_", "-")

    @property
    def base(self) -> Any:  # noqa: ANN401 - a type
        """The type without its None: `float | None` -> float."""
        args = [a for a in typing.get_args(self.type) if a is not type(None)]
        optional = type(None) in typing.get_args(self.type)
        return args[0] if optional and len(args) == 1 else self.type


def specs(cls: type[TaskOptions]) -> list[Spec]:
    """The declared options of an options dataclass, in declaration order."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        m = f.metadata
        out.append(
            Spec(
                name=f.name,
                type=hints[f.name],
                default=f.default,
                help=m.get("help", ""),
                flags=tuple(m.get("flags") or ()),
                what=m.get("what") or f.name,
                unit=m.get("unit"),
                ge=m.get("ge"),
                le=m.get("le"),
                choices=m.get("choices"),
                cli_type=m.get("cli_type"),
                server_type=m.get("server_type"),
            )
        )
    return out


def check_value(spec: Spec, value: Any) -> None:  # noqa: ANN401 - any option value
    """Refuse a value outside the option's bounds or choices (InputError, one line)."""
    if value is None:
        return
    if spec.choices is not None and value not in spec.choices:
        raise InputError(f"unknown {spec.what} {value!r}; choose one of {', '.join(spec.choices)}")
    if spec.ge is None and spec.le is None or isinstance(value, bool):
        return
    unit = f" {spec.unit}" if spec.unit else ""
    number = isinstance(value, int | float) and math.isfinite(value)
    if spec.ge is not None and spec.le is not None:
        if not (number and spec.ge <= value <= spec.le):
            raise InputError(
                f"{spec.what} must be between {spec.ge:g} and {spec.le:g}{unit}, got {value}"
            )
    of = f" in{unit}" if unit else ""
    if spec.ge is not None and spec.le is None and not (number and value >= spec.ge):
        raise InputError(f"{spec.what} must be a number{of} >= {spec.ge:g}, got {value}")
    if spec.le is not None and spec.ge is None and not (number and value <= spec.le):
        raise InputError(f"{spec.what} must be a number{of} <= {spec.le:g}, got {value}")


@dataclass(frozen=True)
class TaskOptions:
    """Base of every task's options: checks each field when made; converts from text and back."""

    def __post_init__(self) -> None:
        for spec in specs(type(self)):
            check_value(spec, getattr(self, spec.name))

    def to_dict(self) -> dict[str, Any]:
        """Every option by name (the keyword arguments of the task function)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The option names, in declaration order."""
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_mapping(cls: type[T], data: Mapping[str, Any]) -> T:
        """Options from already-typed values (a request model, a batch item); unknown names are
        refused, missing ones take their defaults."""
        unknown = sorted(set(data) - set(cls.names()))
        if unknown:
            raise InputError(f"unknown option {unknown[0]!r}; known: {', '.join(cls.names())}")
        return cls(**data)


def parse_text(spec: Spec, value: Any) -> Any:  # noqa: ANN401 - text in, the option's type out
    """A manifest cell (text, or a JSON value) as the option's type; ValueError when it is not."""
    base = spec.cli_type if spec.cli_type is not None else spec.base
    if base is bool:
        return parse_bool(value)
    if base is float:
        return float(value)
    if base is int:
        if isinstance(value, float) and not value.is_integer():
            raise ValueError(f"{value} is not a whole number")
        return int(value)
    if spec.server_type is not None and isinstance(value, str) and value.strip().startswith("{"):
        return json.loads(value)  # a JSON object where text is also allowed (a voice blend)
    return value if isinstance(value, dict) else str(value)


def parse_bool(value: Any) -> bool:  # noqa: ANN401 - text or a JSON bool
    """yes/no in the usual spellings (1, true, yes, y, on / 0, false, no, n, off, empty)."""
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in ("1", "true", "yes", "y", "on"):
        return True
    if word in ("0", "false", "no", "n", "off", ""):
        return False
    raise ValueError(f"'{value}' is not yes/no")
