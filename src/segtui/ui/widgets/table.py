"""Tables of `Cell`s that sort by any column: `s` on the cursor's column, or a header click."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.widgets import DataTable


@dataclass(frozen=True)
class Cell:
    """A table cell that shows `text` and sorts by `value` (missing values sort last)."""

    value: float | str | None
    text: str
    numeric: bool = False
    style: str = ""

    def __rich__(self) -> Text:
        return Text(
            self.text, style=self.style, justify="right" if self.numeric else "left", no_wrap=True
        )

    @property
    def sort_key(self) -> tuple[int, float, str]:
        if self.value is None:
            return (1, 0.0, "")
        if isinstance(self.value, int | float):
            return (0, float(self.value), "")
        return (0, 0.0, self.value.lower())

    def styled(self, style: str) -> Cell:
        return Cell(self.value, self.text, self.numeric, style)


def num(value: Any, digits: int = 2, suffix: str = "") -> Cell:
    """A right-aligned number; '-' when there is none."""
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return Cell(None, "-", True)
    text = f"{value:,.{digits}f}" if isinstance(value, float) else f"{value:,}"
    return Cell(float(value), text + suffix, True)


def txt(value: Any) -> Cell:
    text = "-" if value is None else str(value)
    return Cell(None if value is None else text, text)


Row = tuple[str, Sequence[Cell]]


class SortableTable(DataTable[Cell]):
    """A DataTable of `Cell`s sorted by any column: `s` on the cursor's column, or a header click.

    The rows are kept here and the table rebuilt on each sort (tables are small),
    so that the header can show the direction with public API only.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "s",
            "sort_cursor_column",
            "Sort",
            id="table.sort",
            tooltip="Sort by the column under the cursor; press again to reverse.",
        ),
    ]

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes, cursor_type="cell", zebra_stripes=True)
        self._columns: list[tuple[str, str]] = []
        self._rows: list[Row] = []
        self.sorted_by: tuple[str, bool] | None = None  # (column key, descending)

    def set_columns(self, columns: Sequence[tuple[str, str]]) -> None:
        """(key, label) pairs; keeps the sort when the same column still exists."""
        self._columns = list(columns)
        if self.sorted_by and self.sorted_by[0] not in {k for k, _ in columns}:
            self.sorted_by = None

    def set_rows(self, rows: Iterable[Row]) -> None:
        self._rows = list(rows)
        self._rebuild()

    @property
    def row_keys(self) -> list[str]:
        """Row keys in display order."""
        return [key for key, _ in self._sorted_rows()]

    def _sorted_rows(self) -> list[Row]:
        if self.sorted_by is None:
            return self._rows
        column, descending = self.sorted_by
        index = [k for k, _ in self._columns].index(column)
        present = [r for r in self._rows if r[1][index].value is not None]
        missing = [r for r in self._rows if r[1][index].value is None]
        ordered = sorted(present, key=lambda r: r[1][index].sort_key, reverse=descending)
        return ordered + missing

    def _rebuild(self) -> None:
        cursor = self.cursor_coordinate
        self.clear(columns=True)
        for key, label in self._columns:
            arrow = ""
            if self.sorted_by and self.sorted_by[0] == key:
                arrow = " ▼" if self.sorted_by[1] else " ▲"
            self.add_column(label + arrow, key=key)
        for key, cells in self._sorted_rows():
            self.add_row(*cells, key=key)
        if self.row_count:
            self.cursor_coordinate = self.validate_cursor_coordinate(cursor)

    def sort_by(self, column: str) -> None:
        """Sort by `column`: numbers largest first, text A–Z; again on the same column reverses."""
        if self.sorted_by and self.sorted_by[0] == column:
            self.sorted_by = (column, not self.sorted_by[1])
        else:
            index = [k for k, _ in self._columns].index(column)
            numeric = any(r[1][index].numeric for r in self._rows)
            self.sorted_by = (column, numeric)
        self._rebuild()

    def action_sort_cursor_column(self) -> None:
        if self._columns:
            self.sort_by(self._columns[min(self.cursor_column, len(self._columns) - 1)][0])

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        if event.column_key.value is not None:
            self.sort_by(event.column_key.value)
            self.move_cursor(column=event.column_index)
