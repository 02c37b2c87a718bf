"""Waiting, in Pilot tests, for what screens read in thread workers to reach their widgets."""

from __future__ import annotations

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
