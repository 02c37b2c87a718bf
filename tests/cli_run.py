"""Running the CLI in-process as a user would: its exit code and everything it printed."""

from __future__ import annotations

import pytest

from segtui.cli import main


def run_cli(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str]:
    """`segtui argv`: (exit code, stdout + stderr), argparse's refusals included."""
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's refusal of an option or a value
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out + err
