"""Tables of `Cell`s that sort by any column: `s` on the cursor's column, or a header click."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey

#: How a cell sorts: present values first (by number, or by text without case), then missing ones.
SortKey = tuple[int, float, str]


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
    def sort_key(self) -> SortKey:
        if self.value is None:
            return (1, 0.0, "")
        if isinstance(self.value, int | float):
            return (0, float(self.value), "")
        return (0, 0.0, self.value.lower())

    def styled(self, style: str) -> Cell:
        return Cell(self.value, self.text, self.numeric, style)


def num(value: object, digits: int = 2, suffix: str = "") -> Cell:
    """A right-aligned number; '-' when there is none."""
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return Cell(None, "-", True)
    text = f"{value:,.{digits}f}" if isinstance(value, float) else f"{value:,}"
    return Cell(float(value), text + suffix, True)


def txt(value: object) -> Cell:
    text = "-" if value is None else str(value)
    return Cell(None if value is None else text, text)


Row = tuple[str, Sequence[Cell]]


def _ascending_key(cell: Cell) -> SortKey:
    return cell.sort_key


def _descending_key(cell: Cell) -> SortKey:
    """A key that, sorted in reverse, puts the largest first and missing values still last."""
    missing, number, text = cell.sort_key
    return (-missing, number, text)


class SortableTable(DataTable[Cell]):
    """A DataTable of `Cell`s sorted by any column: `s` on the cursor's column, or a header click.

    Sorting is DataTable's own `sort`; the sorted column's header shows ▲ or ▼, and
    the sort holds when the rows are replaced.
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
        self._labels: dict[str, str] = {}
        self.sorted_by: tuple[str, bool] | None = None  # (column key, descending)

    def set_columns(self, columns: Sequence[tuple[str, str]]) -> None:
        """(key, label) pairs, shown from the next `set_rows`; keeps the sort when its column stays."""
        self._labels = dict(columns)
        if self.sorted_by and self.sorted_by[0] not in self._labels:
            self.sorted_by = None

    def set_rows(self, rows: Iterable[Row]) -> None:
        """Replace the rows (and the columns), in the current sort order."""
        cursor = self.cursor_coordinate
        self.clear(columns=True)
        for key, label in self._labels.items():
            self.add_column(self._header(key, label), key=key)
        for key, cells in rows:
            self.add_row(*cells, key=key)
        self._sort()
        if self.row_count:
            self.cursor_coordinate = self.validate_cursor_coordinate(cursor)

    @property
    def row_keys(self) -> list[str]:
        """Row keys in display order."""
        return [str(row.key.value) for row in self.ordered_rows]

    def _header(self, key: str, label: str) -> str:
        if self.sorted_by is None or self.sorted_by[0] != key:
            return label
        return label + (" ▼" if self.sorted_by[1] else " ▲")

    def _sort(self) -> None:
        if self.sorted_by is None or not self.row_count:
            return
        column, descending = self.sorted_by
        key = _descending_key if descending else _ascending_key
        self.sort(column, key=key, reverse=descending)

    def _relabel(self) -> None:
        """Show the sort arrow in the headers, widening a column whose header outgrows it."""
        for key, label in self._labels.items():
            column = self.columns[ColumnKey(key)]
            header = self._header(key, label)
            if column.label.plain == header:
                continue
            column.label = Text(header)
            if self.row_count:
                # Re-setting a cell asks the table to measure the column again, header included.
                row_key = self.ordered_rows[0].key
                self.update_cell(row_key, key, self.get_cell(row_key, key), update_width=True)

    def sort_by(self, column: str) -> None:
        """Sort by `column`: numbers largest first, text A–Z; again on the same column reverses."""
        if self.sorted_by and self.sorted_by[0] == column:
            self.sorted_by = (column, not self.sorted_by[1])
        else:
            numeric = any(cell.numeric for cell in self.get_column(column))
            self.sorted_by = (column, numeric)
        self._relabel()
        self._sort()

    def action_sort_cursor_column(self) -> None:
        if self.ordered_columns:
            column = self.ordered_columns[min(self.cursor_column, len(self.ordered_columns) - 1)]
            self.sort_by(str(column.key.value))

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        if event.column_key.value is not None:
            self.sort_by(event.column_key.value)
            self.move_cursor(column=event.column_index)
