"""Command-line options built from the core settings schemas: flag, default, choices, help.

Nothing here knows a default or a range: each comes from `segtui.core.settings`, and a
value out of range is refused by argparse (exit 2) with the schema's own message.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Any

from segtui.cli.output import CliError
from segtui.core.settings import Schema, SettingError, SettingField


def _parser(spec: SettingField[Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            return spec.parse(text)
        except SettingError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = spec.label  # argparse names the type in its messages
    return parse


def _help(spec: SettingField[Any]) -> str:
    if spec.kind == "bool":
        return spec.help
    parts = [spec.help]
    allowed = spec.range_text()
    if allowed and spec.kind != "choice":
        parts.append(f"{allowed}")
    if spec.kind != "names" and spec.default is not None:
        parts.append(f"default {spec.default_text}")
    elif spec.optional and spec.none_text:
        parts.append(f"default {spec.none_text}")
    return f"{parts[0]} ({'; '.join(parts[1:])})" if len(parts) > 1 else parts[0]


def add_schema_options(
    parser: argparse.ArgumentParser, schema: Schema, *, skip: Collection[str] = ()
) -> None:
    """One option per field of `schema` (except those named in `skip`)."""
    for spec in schema:
        if spec.name in skip:
            continue
        # argparse treats % in help as a format character.
        text = _help(spec).replace("%", "%%")
        if spec.kind == "bool":
            parser.add_argument(
                spec.flag,
                dest=spec.name,
                action="store_false" if spec.default else "store_true",
                help=text,
            )
        elif spec.kind == "names":
            parser.add_argument(
                spec.flag,
                dest=spec.name,
                action="append",
                default=[],
                metavar="NAME",
                help=text,
            )
        else:
            metavar = (
                "{" + ",".join(spec.choices) + "}"
                if spec.kind == "choice"
                else spec.flag.removeprefix("--").replace("-", "_").upper()
            )
            parser.add_argument(
                spec.flag,
                dest=spec.name,
                type=_parser(spec),
                default=spec.default,
                metavar=metavar,
                help=text,
            )


def schema_values(
    args: argparse.Namespace, schema: Schema, *, skip: Collection[str] = ()
) -> dict[str, Any]:
    """The parsed values of `schema`'s fields, by field name (names lists without blanks)."""
    values: dict[str, Any] = {}
    for spec in schema:
        if spec.name in skip:
            continue
        value = getattr(args, spec.name)
        if spec.kind == "names":
            value = tuple(v.strip() for v in value if v and v.strip())
        values[spec.name] = value
    return values


def output_file(text: str, flag: str) -> Path:
    """The file an option names for output, checked before any work (not a folder, a link or a
    device; its folder exists), or a CliError that names the option and the path."""
    from segtui.core.safe_files import OutputFileError, check_output_path

    if not text.strip():
        raise CliError(f"{flag} needs a file name.", "Give the path of the file to write.")
    path = Path(text).expanduser()
    try:
        check_output_path(path)
    except OutputFileError as exc:
        raise CliError(f"{flag}: {exc.message}", exc.hint) from None
    return path


@contextlib.contextmanager
def naming_options(schema: Schema) -> Iterator[None]:
    """A SettingError raised inside (by a core check) names its command-line option."""
    try:
        yield
    except SettingError as exc:
        names = {spec.name: spec.flag for spec in schema}
        flag = names.get(exc.field)
        if flag is None or flag in exc.message:
            raise
        raise CliError(f"{flag}: {exc.message}", exc.hint) from None
