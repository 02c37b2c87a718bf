"""The accuracy report as the screen shows it: its headline figures, and its table of basic or
advanced rows, filtered, sortable by any column.

Built on the shared `SortableTable` (header clicks sort; the report screen's o and r
keys pick a column and flip it). Rows are the stored report rows (`BasicRow`,
`AdvancedRow`); "n/a" figures have no value, so they sort last in either direction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from rich.text import Text
from textual.message import Message

from segtui.core.evaluation import CocoMetricsData
from segtui.core.matching import AdvancedRow, BasicRow
from segtui.core.report import ReportData
from segtui.core.types import ReportType
from segtui.ui.widgets.table import Cell, SortableTable, txt

#: One row per image, or one per image and class.
TableMode = Literal["basic", "advanced"]


def columns_for(
    mode: TableMode, report_type: ReportType, *, narrow: bool = False
) -> list[tuple[str, str]]:
    """(row key, column label) of the table in `mode`.

    `narrow` shortens the long advanced labels so that the table fits 80 columns.
    """
    b_label = "B. parent" if report_type == ReportType.PARENT else "B. annotations"
    if mode == "basic":
        return [
            ("image", "Image"),
            ("a", "A. optimized detections"),
            ("b", f"{b_label} detections"),
            ("matches", "Matches"),
        ]
    return [
        ("image", "Image"),
        ("class", "Class"),
        ("a", "A"),
        ("b", "B"),
        ("matches", "Matches"),
        ("precision", "Precision" if narrow else "Predicted class precision"),
        ("ap", "AP" if narrow else "Predicted class AP"),
    ]


def _ap(metrics: CocoMetricsData | None, key: Literal["mask_ap", "box_ap"]) -> float:
    return 0.0 if metrics is None else float(metrics.get(key, 0.0))


def summary_text(data: ReportData) -> Text:
    """The report's headline figures (mask and box AP, totals, precision) for the summary box."""
    summary = data["summary"]
    totals = data.get("totals") or summary.get("totals")
    text = Text()
    if summary.get("type") == ReportType.ANNOTATIONS:
        parent, optimized = summary.get("parent"), summary.get("optimized")
        text.append("Mask AP ", "bold")
        text.append(
            f"parent {_ap(parent, 'mask_ap'):.4f} → optimized {_ap(optimized, 'mask_ap'):.4f}"
        )
        text.append(f" (drop {summary.get('mask_ap_drop', 0):.2f} pts)", "bold")
        text.append("   Box AP ", "bold")
        text.append(f"{_ap(parent, 'box_ap'):.4f} → {_ap(optimized, 'box_ap'):.4f}")
        text.append(f" (drop {summary.get('box_ap_drop', 0):.2f} pts)\n", "bold")
        b_name = "annotations"
    else:
        metrics = summary.get("a_vs_b")
        text.append("Mask AP of A against B ", "bold")
        text.append(f"{_ap(metrics, 'mask_ap'):.4f}")
        text.append("   Box AP ", "bold")
        text.append(f"{_ap(metrics, 'box_ap'):.4f}\n")
        b_name = "parent"
    count = {} if totals is None else totals
    text.append(
        f"A (optimized) {count.get('a', 0)} · B ({b_name}) {count.get('b', 0)} · "
        f"matches {count.get('matches', 0)} · images {count.get('images', 0)}, "
    )
    text.append(f"{count.get('images_differ', 0)} where A ≠ B", "bold")
    text.append(f", {count.get('images_without_instances', 0)} without instances\n")
    text.append(
        f"Inference precision {summary.get('precision', '?')} · {summary.get('device', '?')} · "
        f"score ≥ {summary.get('threshold', '?')} · match IoU ≥ {summary.get('iou', '?')}",
        "dim",
    )
    return text


def cell_text(value: float | str | None) -> str:
    """A table cell: "n/a" for None, numbers without noise."""
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _number(value: float | None) -> Cell:
    """A right-aligned figure that sorts as a number; "n/a" (sorted last) when there is none."""
    return Cell(None if value is None else float(value), cell_text(value), numeric=True)


def basic_cells(row: BasicRow) -> list[Cell]:
    """The cells of a basic row, in `columns_for`'s order."""
    return [txt(row["image"]), _number(row["a"]), _number(row["b"]), _number(row["matches"])]


def advanced_cells(row: AdvancedRow) -> list[Cell]:
    """The cells of an advanced row, in `columns_for`'s order."""
    return [
        txt(row["image"]),
        txt(row["class"]),
        _number(row["a"]),
        _number(row["b"]),
        _number(row["matches"]),
        _number(row["precision"]),
        _number(row["ap"]),
    ]


def filter_basic(
    rows: Sequence[BasicRow], *, differs_only: bool, images: set[str] | None = None
) -> list[BasicRow]:
    """Basic rows where A ≠ B (when asked), of the images in `images` (None: all)."""
    return [
        row
        for row in rows
        if (row["differs"] or not differs_only) and (images is None or row["image"] in images)
    ]


def filter_advanced(
    rows: Sequence[AdvancedRow], *, differs_only: bool, class_name: str | None = None
) -> list[AdvancedRow]:
    """Advanced rows where A ≠ B (when asked), of one class (None: all)."""
    return [
        row
        for row in rows
        if (row["differs"] or not differs_only) and class_name in (None, row["class"])
    ]


@dataclass
class TableView:
    """Which rows the report table shows: mode and filters (the sort is the table's)."""

    mode: TableMode = "basic"
    class_name: str | None = None
    differs_only: bool = False

    def describe(
        self, shown: int, total: int, columns: list[tuple[str, str]], sort: tuple[str, bool] | None
    ) -> str:
        parts = [f"{self.mode.capitalize()} mode", f"{shown} of {total} rows"]
        if sort is not None:
            column, descending = sort
            parts.append(
                f"sorted by {dict(columns).get(column, column)} {'↓' if descending else '↑'}"
            )
        parts.append(f"class: {self.class_name or 'all'}")
        if self.differs_only:
            parts.append("only where A ≠ B")
        return " · ".join(parts)


class ReportTable(SortableTable):
    """The report's rows: one row cursor (Enter opens Visualize); tells the screen when it sorts."""

    class Sorted(Message):
        """The table was sorted (by a key or a header click)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.cursor_type = "row"
        self._shown_rows: list[tuple[str, Sequence[Cell]]] = []

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # s creates a report on this screen (o and r sort): the table's s gives way to it.
        if action == "sort_cursor_column":
            return False
        return super().check_action(action, parameters)

    def set_rows(self, rows: Iterable[tuple[str, Sequence[Cell]]]) -> None:
        self._shown_rows = list(rows)
        super().set_rows(self._shown_rows)

    def sort_by(self, column: str) -> None:
        super().sort_by(column)
        self.post_message(self.Sorted())

    def show_sorted(self, column: str, descending: bool) -> None:
        """Sort by `column` in the given direction (sort_by flips on a second call)."""
        for _ in range(2):
            if self.sorted_by == (column, descending):
                return
            self.sort_by(column)

    def clear_sort(self) -> None:
        """Back to the report's own order (the same rows again, unsorted, headers without arrows)."""
        self.sorted_by = None
        super().set_rows(self._shown_rows)
        self.post_message(self.Sorted())
