"""Waiting, in Pilot tests, for what screens read in thread workers to reach their widgets."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from textual.pilot import Pilot


async def settle(pilot: Pilot[Any]) -> None:
    """Until no worker runs and every result has been handed to the widgets.

    A result can start another worker (a page read, then the graph analysis it
    names), so this waits again until none is left.
    """
    app = pilot.app
    await pilot.pause()
    while len(app.workers):
        await app.workers.wait_for_complete()
        await pilot.pause()


async def until(pilot: Pilot[Any], condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Let the app run until `condition` holds (screens load in workers, jobs come from a thread)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout} s"
        await pilot.pause(0.02)
