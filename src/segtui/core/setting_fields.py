"""The machinery of the settings schemas: a typed field with its default, choices and range.

`segtui.core.settings` declares one schema per operation with these.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Generic, Literal, TypeVar, cast

from segtui.core.errors import SegtuiError

T = TypeVar("T")
E = TypeVar("E", bound=StrEnum)

#: How a field is entered: the CLI and the form widgets pick their control from it.
FieldKind = Literal["int", "float", "choice", "bool", "int_list", "names"]


class SettingError(SegtuiError):
    """A value that a settings field refuses; `field` names it."""

    def __init__(self, field: str, message: str, hint: str = "") -> None:
        super().__init__(message, hint)
        self.field = field


def _number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


@dataclass(frozen=True)
class SettingField(Generic[T]):
    """One option of an operation."""

    name: str
    kind: FieldKind
    default: T
    label: str
    help: str
    #: The command-line flag (a bool whose default is True is given as its `--no-` flag).
    flag: str
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    #: The minimum itself is not allowed (a share of the dataset must be above 0 %).
    exclusive_minimum: bool = False
    #: None is a valid value, shown as `none_text` ("auto", "none").
    optional: bool = False
    none_text: str = ""
    unit: str = ""
    #: Turns a checked value into the field's type (a choice string into its enum).
    convert: Callable[[Any], T] | None = None

    # -- ranges and checks ----------------------------------------------------------

    def range_text(self) -> str:
        """The allowed values in words, e.g. '0.1–10 points' or 'performance or mixed'."""
        if self.kind == "choice":
            return " or ".join(self.choices)
        if self.minimum is None or self.maximum is None:
            return ""
        low, high = _number_text(self.minimum), _number_text(self.maximum)
        unit = f" {self.unit}" if self.unit else ""
        if self.exclusive_minimum:
            return f"above {low} and at most {high}{unit}"
        return f"{low}–{high}{unit}"

    def _number_problem(self, value: object) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"{self.label} must be a number (got {value!r})."
        if self.kind == "int" and not float(value).is_integer():
            return f"{self.label} must be a whole number (got {value})."
        if not math.isfinite(float(value)):
            return f"{self.label} must be a finite number (got {value})."
        low, high = self.minimum, self.maximum
        too_low = low is not None and (value <= low if self.exclusive_minimum else value < low)
        too_high = high is not None and value > high
        if too_low or too_high:
            return f"{self.label} {_number_text(float(value))} is out of range: use {self.range_text()}."
        return None

    def problem(self, value: object) -> str | None:
        """What is wrong with `value` for this field, or None when it is allowed."""
        if value is None:
            return None if self.optional else f"{self.label} needs a value."
        if self.kind == "choice":
            if str(value).lower() not in {c.lower() for c in self.choices}:
                return f"{self.label} {value!r} is not one of: {', '.join(self.choices)}."
            return None
        if self.kind == "bool":
            return None if isinstance(value, bool) else f"{self.label} must be true or false."
        if self.kind in ("int", "float"):
            return self._number_problem(value)
        if self.kind == "int_list":
            if not isinstance(value, list | tuple) or not value:
                return f"{self.label} needs at least one value."
            for item in value:
                found = self._number_problem(item)
                if found is not None:
                    return found
            if len(set(value)) != len(value):
                return f"{self.label} lists a value twice ({', '.join(map(str, value))})."
            return None
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            return f"{self.label} must be a list of names."
        return None

    def check(self, value: object) -> T:
        """`value` converted to the field's type, or a SettingError that says what to use."""
        found = self.problem(value)
        if found is not None:
            raise SettingError(self.name, found)
        converted: Any = value
        if value is None:
            return cast(T, None)  # only optional fields get here
        if self.kind == "choice":
            converted = {c.lower(): c for c in self.choices}[str(value).lower()]
        elif self.kind == "float":
            converted = float(cast(float, value))
        elif self.kind == "int":
            converted = int(cast(float, value))
        elif self.kind == "int_list":
            converted = tuple(int(v) for v in cast(list[float], value))
        elif self.kind == "names":
            converted = tuple(cast(list[str], value))
        return self.convert(converted) if self.convert is not None else cast(T, converted)

    # -- text (forms and the command line) ------------------------------------------

    def parse(self, text: str) -> T:
        """Parse what a user typed (a form field or a command-line value) and check it."""
        raw = text.strip()
        if raw == "" or (self.optional and raw.lower() == self.none_text.lower()):
            if self.optional:
                return self.check(None)
            if self.kind == "names":
                return self.check(())
            raise SettingError(self.name, f"{self.label} needs a value.", self._use())
        value: object
        try:
            if self.kind == "int":
                value = int(raw)
            elif self.kind == "float":
                value = float(raw)
            elif self.kind == "bool":
                lowered = raw.lower()
                if lowered not in ("true", "false", "yes", "no", "on", "off", "1", "0"):
                    raise ValueError(raw)
                value = lowered in ("true", "yes", "on", "1")
            elif self.kind == "int_list":
                value = [int(part) for part in raw.replace(" ", ",").split(",") if part]
            elif self.kind == "names":
                value = [part.strip() for part in raw.split(",") if part.strip()]
            else:
                value = raw
        except ValueError:
            what = {"int": "a whole number", "float": "a number", "bool": "true or false"}.get(
                self.kind, "whole numbers separated by commas"
            )
            raise SettingError(
                self.name, f"{self.label} must be {what} (got {raw!r}).", self._use()
            ) from None
        return self.check(value)

    def _use(self) -> str:
        return f"Use {self.range_text()}." if self.range_text() else ""

    def format(self, value: object) -> str:
        """The text a form field shows for `value`."""
        if value is None:
            return self.none_text
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, float):
            return _number_text(value)
        if isinstance(value, list | tuple):
            return ",".join(str(v) for v in value)
        return str(value)

    @property
    def default_text(self) -> str:
        return self.format(self.default)


def flag_for(name: str) -> str:
    """The command-line flag of a field: `max_drop` -> `--max-drop`."""
    return f"--{name.replace('_', '-')}"


def choice_field(
    name: str,
    enum: type[E],
    default: E,
    label: str,
    help: str,
    flag: str | None = None,
) -> SettingField[E]:
    return SettingField(
        name=name,
        kind="choice",
        default=default,
        label=label,
        help=help,
        flag=flag or flag_for(name),
        choices=tuple(member.value for member in enum),
        convert=enum,
    )


class Schema:
    """The settings of one operation; its fields are the `SettingField` class attributes."""

    name: str = ""

    def fields(self) -> tuple[SettingField[Any], ...]:
        found: dict[str, SettingField[Any]] = {}
        for klass in reversed(type(self).__mro__):
            for value in vars(klass).values():
                if isinstance(value, SettingField):
                    found[value.name] = value
        return tuple(found.values())

    def __iter__(self) -> Iterator[SettingField[Any]]:
        return iter(self.fields())

    def field(self, name: str) -> SettingField[Any]:
        for candidate in self.fields():
            if candidate.name == name:
                return candidate
        raise KeyError(f"{self.name} has no setting {name!r}")

    def defaults(self) -> dict[str, object]:
        return {f.name: f.default for f in self.fields()}

    def problems(self, values: Mapping[str, object]) -> dict[str, str]:
        """Per-field messages for the values that are not allowed (unknown names included)."""
        found: dict[str, str] = {}
        known = {f.name: f for f in self.fields()}
        for name, value in values.items():
            spec = known.get(name)
            if spec is None:
                found[name] = f"{self.name} has no setting {name!r}."
                continue
            problem = spec.problem(value)
            if problem is not None:
                found[name] = problem
        return found

    def validate(self, values: Mapping[str, object]) -> None:
        """Raise one SettingError naming every refused value, with the allowed ranges."""
        problems = self.problems(values)
        if not problems:
            return
        first = next(iter(problems))
        known = {f.name: f for f in self.fields()}
        hints = [
            f"{known[name].flag.removeprefix('--no-').removeprefix('--')}: {known[name].range_text()}"
            for name in problems
            if name in known and known[name].range_text()
        ]
        raise SettingError(
            first,
            " ".join(problems.values()),
            f"Allowed: {'; '.join(hints)}." if hints else "",
        )
