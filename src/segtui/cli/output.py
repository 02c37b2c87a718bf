"""What the command line prints: results as text or JSON, tables and progress through rich."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Sequence
from typing import Any

from rich import box
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from segtui.core.errors import SegtuiError

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2


class CliError(SegtuiError):
    """A bad command-line argument."""


def _console(stream: Any) -> Console:
    # Piped output is not cut to 80 columns: scripts read whole lines.
    tty = stream.isatty()
    width = shutil.get_terminal_size().columns if tty else 400
    return Console(file=stream, width=width, highlight=False, soft_wrap=not tty)


def table(rows: Sequence[Sequence[str]], headers: Sequence[str]) -> Table:
    """A plain table of text cells (no borders but the header rule: easy to read and to grep)."""
    result = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, highlight=False)
    for header in headers:
        result.add_column(header, no_wrap=True)
    for row in rows:
        result.add_row(*row)
    return result


class Output:
    """Prints results as text for people or as JSON for scripts, and progress on a terminal only."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self._out = _console(sys.stdout)
        self._err = _console(sys.stderr)
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def result(self, data: object, text: str | Table) -> None:
        """The command's result: `data` as JSON with --json, else `text` (or a table)."""
        self.close()
        if self.as_json:
            print(json.dumps(data, indent=2, default=str))
        elif isinstance(text, Table):
            self._out.print(text)
        else:
            print(text)

    def note(self, text: str) -> None:
        """A line for the person at the terminal (stderr), never in --json output."""
        if not self.as_json:
            sys.stderr.write(text.rstrip("\n") + "\n")

    def warn(self, text: str) -> None:
        sys.stderr.write(f"segtui: warning: {text}\n")

    def progress(self, fraction: float, stage: str) -> None:
        """Progress of a long command: a bar on a terminal, nothing when piped or with --json."""
        if self.as_json or not self._err.is_terminal:
            return
        if self._progress is None:
            self._progress = Progress(
                BarColumn(bar_width=30),
                TaskProgressColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.description}"),
                console=self._err,
            )
            self._progress.start()
            self._task = self._progress.add_task(stage[:60], total=1.0)
        assert self._task is not None
        self._progress.update(self._task, completed=fraction, description=stage[:60])
        if fraction >= 1.0:
            self.close()

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
            self._task = None

    def fail(self, message: str, hint: str) -> None:
        self.close()
        if self.as_json:
            print(json.dumps({"error": message, "hint": hint}))
        sys.stderr.write(f"segtui: error: {message}{' ' + hint if hint else ''}\n")
