"""`segtui configure MODEL`: see and set a model's accuracy settings (pre- and post-processing)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from segtui.cli.common import MAX_ID, is_id, open_workspace
from segtui.cli.output import EXIT_OK, CliError, Output, table
from segtui.core.records import ModelRecord
from segtui.core.workspace import Workspace

if TYPE_CHECKING:
    from rich.table import Table

    from segtui.core.accuracy_settings import AccuracySettings

CONFIGURE_HELP = (
    "See or set how a model's inputs are prepared and its outputs decoded: format, "
    "channel_order, mean, scale, resize, pad_value, score_threshold, mask_threshold, "
    "nms_iou and class_aware_nms (YOLO-seg), max_detections, class_names. Without "
    "--set/--reset/--from-file it shows them. `--show --yaml` prints the settings file "
    "that --from-file reads back."
)

#: What `--show` calls each origin.
_ORIGIN_TEXT = {"detected": "detected", "user": "set by you"}


def set_pair(text: str) -> tuple[str, str]:
    """--set KEY=VALUE: the key (dashes read as underscores) and the value's text."""
    key, sep, value = text.partition("=")
    key = key.strip().replace("-", "_")
    if not sep or not key:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not KEY=VALUE (e.g. scale=255 or channel_order=RGB)"
        )
    return key, value


def resolve_model(ws: Workspace, ref: str) -> ModelRecord:
    """A model by id or by its (unique) name."""
    text = ref.strip()
    if is_id(text):
        if int(text) > MAX_ID:
            raise CliError(f"No model with id {text}.", "See `segtui list models`.")
        return ws.model(int(text))
    matches = [m for m in ws.models() if m.name == ref]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise CliError(f"No model named {ref!r}.", "See `segtui list models` for ids and names.")
    ids = ", ".join(str(m.id) for m in matches)
    raise CliError(f"Several models are named {ref!r} (ids {ids}).", "Give the model's id.")


def _changes(args: argparse.Namespace) -> dict[str, object]:
    """The file's values, then each --set (a later one wins)."""
    from segtui.core.accuracy_settings import read_settings_file

    changes: dict[str, object] = {}
    if args.from_file is not None:
        if not args.from_file.strip():
            raise CliError("--from-file needs a file name.", "Give the path of a settings file.")
        changes.update(read_settings_file(Path(args.from_file).expanduser()))
    for key, value in args.set or []:
        changes[key] = value
    return changes


def settings_table(settings: AccuracySettings) -> Table:
    """--show: one row per key (key, value as `--set` takes it, origin)."""
    from segtui.core.accuracy_settings import field_for

    rows = [
        [key, field_for(key).format(value), _ORIGIN_TEXT[str(settings.origins[key])]]
        for key, value in settings.values.items()
    ]
    return table(rows, ["key", "value", "origin"])


def cmd_configure(args: argparse.Namespace, out: Output) -> int:
    from segtui.core.accuracy_settings import configure_model, record_settings

    with open_workspace(args) as ws:
        model = resolve_model(ws, args.model)
        changes = _changes(args)
        reset = [key.strip().replace("-", "_") for key in args.reset or []]
        if changes or reset:
            before = record_settings(model)
            settings = configure_model(ws, model.id, changes, reset=reset)
            changed = [k for k in settings.values if settings.values[k] != before.values.get(k)]
            out.note(
                f"Model {model.id} ({model.name}): "
                + (f"{', '.join(changed)} changed" if changed else "nothing changed")
                + f"; settings version {before.version} -> {settings.version}."
            )
        else:
            settings = record_settings(model)
        if args.yaml and not out.as_json:
            print(settings.to_yaml(f"model {model.id} ({model.name})"), end="")
            return EXIT_OK
        out.result(settings.to_json(), settings_table(settings))
    return EXIT_OK


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "configure",
        parents=[common],
        help="see or set a model's accuracy settings (pre- and post-processing)",
        description=CONFIGURE_HELP,
    )
    p.add_argument("model", help="model id or name (see `segtui list models`)")
    p.add_argument(
        "--set",
        action="append",
        type=set_pair,
        metavar="KEY=VALUE",
        help="set a value, e.g. scale=255 or mean=123.675,116.28,103.53 (repeatable)",
    )
    p.add_argument(
        "--reset", action="append", metavar="KEY", help="back to the detected value (repeatable)"
    )
    p.add_argument(
        "--from-file", metavar="FILE", help="set the values of a YAML settings file (key: value)"
    )
    p.add_argument(
        "--show", action="store_true", help="print the settings (also after a change; default)"
    )
    p.add_argument(
        "--yaml", action="store_true", help="print the settings as the file --from-file reads"
    )
    p.set_defaults(func=cmd_configure)
