"""Tables of `Cell`s that sort by any column: `s` on the cursor's column, or a header click."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual._two_way_dict import TwoWayDict
from textual.binding import Binding, BindingType
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey

from segtui.ui.widgets.cell_lines import cell_lines

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


def fit_optional(
    needed: Mapping[str, int], optional: Sequence[str], width: int
) -> tuple[set[str], int]:
    """The columns shown in `width` cells and the cells they take: every column of `needed`
    outside `optional`, then `optional`'s in order while they fit (the last is given up first)."""
    shown = {key for key in needed if key not in optional}
    used = sum(needed[key] for key in shown)
    for key in optional:
        if used + needed[key] > width:
            break
        used += needed[key]
        shown.add(key)
    return shown, used


def _ascending_key(cell: Cell) -> SortKey:
    return cell.sort_key


def _descending_key(cell: Cell) -> SortKey:
    """A key that, sorted in reverse, puts the largest first and missing values still last."""
    missing, number, text = cell.sort_key
    return (-missing, number, text)


class SortableTable(DataTable[Cell]):
    """A DataTable of `Cell`s sorted by any column: `s` on the cursor's column, or a header click.

    Sorting is DataTable's own `sort`; the sorted column's header shows ▲ or ▼, and
    the sort holds when the rows are replaced. A sort re-measures nothing: the widest
    cell of each column is known from `set_rows` (a Cell is one line of text), so a
    header that gains its arrow widens its column without measuring every cell again.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "s",
            "sort_cursor_column",
            "Sort",
            id="table.sort",
            tooltip="Sort by the column under the cursor; press again to reverse.",
        ),
        Binding(
            "S",
            "reverse_sort",
            "Reverse sort",
            show=False,
            id="table.reverse",
            tooltip="Reverse the sort (the column stays).",
        ),
    ]

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes, cursor_type="cell", zebra_stripes=True)
        self._labels: dict[str, str] = {}
        self.sorted_by: tuple[str, bool] | None = None  # (column key, descending)
        #: The widest cell of each column (its text's cells), from `set_rows`.
        self._cell_widths: dict[str, int] = {}

    def _render_cell(
        self,
        row_index: int,
        column_index: int,
        base_style: Style,
        width: int,
        cursor: bool = False,
        hover: bool = False,
    ) -> list[list[Segment]]:
        """A data cell of one line laid out directly (`cell_lines`: a sort repaints every
        visible cell), kept in DataTable's cache under DataTable's key; headers, fixed cells
        and anything else as DataTable renders them."""
        row_key = self._row_locations.get_key(row_index)
        column_key = self._column_locations.get_key(column_index)
        if (
            row_key is None
            or column_key is None
            or row_index < self.fixed_rows
            or column_index < self.fixed_columns
        ):
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        key = (
            row_key,
            column_key,
            base_style,
            cursor,
            hover,
            self._show_hover_cursor,
            self._update_count,
            self._pseudo_class_state,
        )
        if key in self._cell_render_cache:
            return self._cell_render_cache[key]
        row, cell = self.rows.get(row_key), self._data.get(row_key, {}).get(column_key)
        lines = None
        if row is not None and row.height == 1 and isinstance(cell, Cell):
            component, post = self._get_styles_to_render_cell(
                False,
                False,
                False,
                hover,
                cursor,
                self.show_cursor,
                self._show_hover_cursor,
                self.cursor_foreground_priority == "css",
                self.cursor_background_priority == "css",
            )
            meta = Style.from_meta({"row": row_index, "column": column_index})
            pre = base_style + meta + component
            lines = cell_lines(
                cell.text, cell.numeric, cell.style, width, self.cell_padding, pre, post
            )
        if lines is None:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        self._cell_render_cache[key] = lines
        return lines

    def set_columns(self, columns: Sequence[tuple[str, str]]) -> None:
        """(key, label) pairs, shown from the next `set_rows`; keeps the sort when its column stays."""
        self._labels = dict(columns)
        if self.sorted_by and self.sorted_by[0] not in self._labels:
            self.sorted_by = None

    def set_rows(self, rows: Iterable[Row]) -> None:
        """Replace the rows (and the columns), in the current sort order."""
        cursor = self.cursor_coordinate
        self.clear(columns=True)
        widths = dict.fromkeys(self._labels, 0)
        for key, label in self._labels.items():
            self.add_column(self._header(key, label), key=key)
        columns = list(self._labels)
        for key, cells in rows:
            self.add_row(*cells, key=key)
            for column, cell in zip(columns, cells, strict=False):
                widths[column] = max(widths[column], cell_len(cell.text))
        self._cell_widths = widths
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
        """Show the sort arrow in the headers; a column is as wide as its widest cell or header."""
        relabelled = False
        for key, label in self._labels.items():
            column = self.columns[ColumnKey(key)]
            header = self._header(key, label)
            if column.label.plain == header:
                continue
            column.label = Text(header)
            column.content_width = max(self._cell_widths.get(key, 0), cell_len(header))
            relabelled = True
        if relabelled:
            # The table's size follows its columns' widths (computed when it is idle).
            self._require_update_dimensions = True
            self.refresh(layout=True)

    def unsort(self) -> None:
        """Back to the order the rows were given in (headers without arrows)."""
        self.sorted_by = None
        self._relabel()
        # What DataTable.sort does, in the order `rows` keeps (the rows' own): its key
        # function sees a row's cells, never where the row was added.
        self._row_locations = TwoWayDict({row: n for n, row in enumerate(self.rows)})
        self._update_count += 1
        self.refresh()

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

    def action_scroll_home(self) -> None:
        # A row cursor has no column to go to: Home goes to the first row, as in every list.
        if self.cursor_type == "row":
            self.action_scroll_top()
        else:
            super().action_scroll_home()

    def action_scroll_end(self) -> None:
        if self.cursor_type == "row":
            self.action_scroll_bottom()
        else:
            super().action_scroll_end()

    def action_reverse_sort(self) -> None:
        if self.sorted_by is not None:
            self.sort_by(self.sorted_by[0])

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        if event.column_key.value is not None:
            self.sort_by(event.column_key.value)
            self.move_cursor(column=event.column_index)
