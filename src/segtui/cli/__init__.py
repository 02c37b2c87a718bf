"""The scriptable command line: thin over segtui.core; `segtui` alone opens the TUI.

Each command module in `commands/` registers its subcommands; options that have a
default or a range are built from the core settings schemas (`options.py`).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from segtui.cli.commands import accuracy, deploy, optimize, performance, workspace
from segtui.cli.common import Command, run_command
from segtui.cli.output import EXIT_ERROR, EXIT_OK, EXIT_USAGE, CliError, Output

__all__ = ["EXIT_ERROR", "EXIT_OK", "EXIT_USAGE", "CliError", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="segtui",
        description="INT8 optimization of instance-segmentation models, measured. "
        "Without a command, opens the terminal UI.",
    )
    parser.add_argument(
        "--workspace", help="workspace folder (default: $SEGTUI_HOME or the user data dir)"
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--workspace", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    common.add_argument("--json", action="store_true", help="print machine-readable JSON")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in (workspace, accuracy, optimize, performance, deploy):
        module.register(sub, common)
    p = sub.add_parser("tui", parents=[common], help="open the terminal UI (the default)")
    p.set_defaults(func=None)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Command | None = getattr(args, "func", None)
    if func is None:
        from segtui.ui.app import run_app

        return run_app(Path(args.workspace) if args.workspace else None)
    return run_command(func, args, Output(getattr(args, "json", False)))
