"""Whether JSON from outside (an imported archive) has the shape a TypedDict declares.

What the workspace stores is read back as its TypedDict (`records`, `benchmark`, `report`...)
and its readers index the declared keys; JSON that came from elsewhere is held to the same
declaration before it is stored: every required key present, every value of its declared
type (an `int` is a `float` too, a `bool` is neither, a StrEnum is one of its values). Keys
the declaration does not name are left alone (a newer segtui may add some).
"""

from __future__ import annotations

import enum
import functools
import types
import typing
from collections.abc import Collection, Mapping, Sequence
from typing import Any, Literal, Union

#: How much of an offending value a message quotes.
_SHOWN = 40


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "…"


def _name(hint: object) -> str:
    """A declared type in words, for a message."""
    if hint is type(None):
        return "null"
    if typing.is_typeddict(hint):
        return "an object"
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        return " or ".join(_name(arm) for arm in typing.get_args(hint))
    if origin is Literal:
        return " or ".join(repr(arm) for arm in typing.get_args(hint))
    if origin in (list, Sequence):
        return "a list"
    if origin in (dict, Mapping):
        return "an object"
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return " or ".join(repr(member.value) for member in hint)
    words: dict[object, str] = {
        bool: "true or false",
        int: "a whole number",
        float: "a number",
        str: "a text",
    }
    return words.get(hint, str(hint))


@functools.cache
def _fields(typed_dict: type) -> tuple[dict[str, Any], frozenset[str]]:
    """A TypedDict's resolved field types and its required keys."""
    from segtui.core.formats.base import AdapterSettings
    from segtui.core.optimize import OptimizationRecord

    # Names its modules import for type checking only.
    names = {"AdapterSettings": AdapterSettings, "OptimizationRecord": OptimizationRecord}
    # `__required_keys__` follows each class's `total`, but under postponed annotations it
    # cannot see NotRequired[...] (a string then): read those from the resolved hints.
    required = set(getattr(typed_dict, "__required_keys__", ()))
    hints: dict[str, Any] = {}
    for key, hint in typing.get_type_hints(typed_dict, localns=names, include_extras=True).items():
        origin = typing.get_origin(hint)
        if origin in (typing.NotRequired, typing.Required):
            (required.discard if origin is typing.NotRequired else required.add)(key)
            hint = typing.get_args(hint)[0]
        hints[key] = hint
    return hints, frozenset(required)


def _scalar_fits(value: object, hint: object) -> bool | None:
    """Whether `value` is of the scalar type `hint`; None when `hint` is not a scalar type."""
    if hint in (Any, object):
        return True
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return any(value == member.value for member in hint)
    return None


def shape_problem(
    value: object, hint: object, where: str, *, loose: Collection[type] = ()
) -> str | None:
    """Why `value` is not of the declared type `hint` ("where.key is ..., not ..."), or None.

    The TypedDicts in `loose` have no required keys here: records that gain keys over
    versions without a migration (an older workspace's rows lack them), typed where present.
    """
    fits = _scalar_fits(value, hint)
    if fits is not None:
        return None if fits else f"{where} is {_shown(value)}, not {_name(hint)}"
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        problems = [shape_problem(value, arm, where, loose=loose) for arm in args]
        if all(problems):
            matching = [p for p, arm in zip(problems, args, strict=True) if _same_kind(value, arm)]
            return (
                matching[0]
                if len(matching) == 1
                else f"{where} is {_shown(value)}, not {_name(hint)}"
            )
        return None
    if origin is Literal:
        return None if value in args else f"{where} is {_shown(value)}, not {_name(hint)}"
    if typing.is_typeddict(hint):
        return _typed_dict_problem(value, typing.cast(type, hint), where, loose)
    if origin in (list, Sequence):
        if not isinstance(value, list):
            return f"{where} is {_shown(value)}, not a list"
        for index, item in enumerate(value):
            problem = shape_problem(item, args[0], f"{where}[{index}]", loose=loose)
            if problem is not None:
                return problem
        return None
    if origin in (dict, Mapping):
        if not isinstance(value, dict):
            return f"{where} is {_shown(value)}, not an object"
        for key, item in value.items():
            problem = shape_problem(item, args[1], f"{where}[{key!r}]", loose=loose)
            if problem is not None:
                return problem
        return None
    raise TypeError(f"json_shape cannot check the type {hint!r}")  # a declaration it lacks


def _same_kind(value: object, hint: object) -> bool:
    """Whether `value` is the container `hint` declares (its problem is the one to tell)."""
    if typing.is_typeddict(hint) or typing.get_origin(hint) in (dict, Mapping):
        return isinstance(value, dict)
    return typing.get_origin(hint) in (list, Sequence) and isinstance(value, list)


def _typed_dict_problem(
    value: object, typed_dict: type, where: str, loose: Collection[type]
) -> str | None:
    if not isinstance(value, dict):
        return f"{where} is {_shown(value)}, not an object"
    hints, required = _fields(typed_dict)
    for key in sorted(required) if typed_dict not in loose else ():
        if key not in value:
            return f"{where} has no {key!r}"
    for key, hint in hints.items():
        if key in value:
            problem = shape_problem(value[key], hint, f"{where}.{key}", loose=loose)
            if problem is not None:
                return problem
    return None


__all__ = ["shape_problem"]
