"""Opening a screen in Pilot tests, and reading what it shows: a Static's text, a table's cells."""

from __future__ import annotations

from typing import Any, TypeVar

from pilot_wait import settle
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import Static

from segtui.ui.widgets.table import SortableTable

S = TypeVar("S", bound=Screen[Any])


async def opened(pilot: Pilot[Any], screen: S) -> S:
    """Push `screen`, wait until it shows what it read, and return it (on top)."""
    await pilot.app.push_screen(screen)
    await settle(pilot)
    assert pilot.app.screen is screen
    return screen


def text_of(screen: Screen[Any], selector: str) -> str:
    """The text the Static at `selector` shows."""
    return str(screen.query_one(selector, Static).render())


def table_text(table: SortableTable) -> list[list[str]]:
    """The table's cells as text, row by row in the order shown."""
    return [[str(cell.text) for cell in table.get_row(key)] for key in table.row_keys]
