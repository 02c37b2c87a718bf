"""What every segtui screen shares: typed access to the app and its workspace."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.screen import Screen

if TYPE_CHECKING:
    from segtui.ui.app import SegtuiApp


class SegtuiScreen(Screen[None]):
    """A screen of the segtui app."""

    @property
    def segtui(self) -> SegtuiApp:
        from segtui.ui.app import SegtuiApp

        assert isinstance(self.app, SegtuiApp)
        return self.app
