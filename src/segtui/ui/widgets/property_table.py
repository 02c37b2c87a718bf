"""A two-column table of properties (name, value), scrollable with the keyboard."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.widgets import DataTable

Property = tuple[str, str]


class PropertyTable(DataTable[str | Text]):
    """Shows `(name, value)` rows; a name starting with "§" is a section heading."""

    # DataTable's Home/End move across columns; a list of properties has rows to go through.
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("home", "scroll_top", "First", show=False),
        Binding("end", "scroll_bottom", "Last", show=False),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True, show_header=False)
        self._properties: list[Property] = []

    def on_mount(self) -> None:
        self.add_column("Property", key="name")
        self.add_column("Value", key="value")

    def set_properties(self, properties: list[Property]) -> None:
        self._properties = list(properties)
        self.clear()
        for name, value in properties:
            if name.startswith("§"):
                self.add_row(Text(name[1:], style="bold"), "")
            else:
                self.add_row(Text(name, style="dim"), value)

    @property
    def properties(self) -> list[Property]:
        return list(self._properties)

    def value_of(self, name: str) -> str | None:
        """The value shown for `name` (the first such row), for tests and the help screen."""
        return next((v for n, v in self._properties if n == name), None)
