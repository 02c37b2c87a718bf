"""The scriptable command line: thin over segtui.core; `segtui` alone opens the TUI.

Each command module in `commands/` registers its subcommands; options that have a
default or a range are built from the core settings schemas (`options.py`). The
command modules are imported when the parser is built, which `segtui` alone (or with
only `--workspace`) skips: the TUI starts without them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from segtui.cli.common import Command, run_command
from segtui.cli.output import EXIT_ERROR, EXIT_OK, EXIT_USAGE, CliError, Output

__all__ = ["EXIT_ERROR", "EXIT_OK", "EXIT_USAGE", "CliError", "build_parser", "main"]

WORKSPACE_OPTION = "--workspace"


def build_parser() -> argparse.ArgumentParser:
    from segtui.cli.commands import (
        accuracy,
        configure,
        deploy,
        optimize,
        performance,
        sensitivity,
        transfer,
        workspace,
    )

    parser = argparse.ArgumentParser(
        prog="segtui",
        description="INT8 optimization of instance-segmentation models, measured. "
        "Without a command, opens the terminal UI.",
    )
    parser.add_argument(
        WORKSPACE_OPTION, help="workspace folder (default: $SEGTUI_HOME or the user data dir)"
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(WORKSPACE_OPTION, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    common.add_argument("--json", action="store_true", help="print machine-readable JSON")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in (
        workspace,
        configure,
        accuracy,
        optimize,
        sensitivity,
        performance,
        deploy,
        transfer,
    ):
        module.register(sub, common)
    p = sub.add_parser("tui", parents=[common], help="open the terminal UI (the default)")
    p.set_defaults(func=None)
    return parser


def tui_only(argv: Sequence[str]) -> tuple[bool, str | None]:
    """Whether `argv` only opens the TUI (nothing, or `--workspace DIR`), and the DIR given.

    Anything else (a command, --help, an abbreviated or doubtful option) goes to the parser.
    """
    if not argv:
        return True, None
    if len(argv) == 1 and argv[0].startswith(WORKSPACE_OPTION + "="):
        return True, argv[0].partition("=")[2]
    if len(argv) == 2 and argv[0] == WORKSPACE_OPTION and not argv[1].startswith("-"):
        return True, argv[1]
    return False, None


def main(argv: Sequence[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else list(argv)
    only_tui, workspace = tui_only(arguments)
    if only_tui:
        return _run_tui(workspace)
    parser = build_parser()
    args = parser.parse_args(arguments)
    func: Command | None = getattr(args, "func", None)
    if func is None:
        return _run_tui(args.workspace)
    return run_command(func, args, Output(getattr(args, "json", False)))


def _run_tui(workspace: str | None) -> int:
    from segtui.ui.app import run_app

    return run_app(Path(workspace) if workspace else None)
