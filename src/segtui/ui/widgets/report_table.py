"""The accuracy report as the screen shows it: its headline figures, and its table of basic or
advanced rows, filtered, sortable by any column.

Built on the shared `SortableTable` (header clicks sort; the report screen's s and S
keys pick a column and flip it). Rows are the stored report rows (`BasicRow`,
`AdvancedRow`); "n/a" figures have no value, so they sort last in either direction.
"""

from __future__ import annotations

from collections.abc import Sequence
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
        # COCO's AP: averaged over the IoU thresholds .50, .55, … .95; AP50 at .50 alone.
        ("ap", "AP@[.50:.95]" if narrow else "Predicted class AP@[.50:.95]"),
        ("ap50", "AP50"),
    ]


MetricKey = Literal["mask_ap", "mask_ap50", "box_ap", "box_ap50"]


def _ap(metrics: CocoMetricsData | None, key: MetricKey) -> float:
    return 0.0 if metrics is None else float(metrics.get(key) or 0.0)


def _figure(metrics: CocoMetricsData | None, key: MetricKey) -> str:
    """An AP figure, or "–" where the report has none (an older report, COCO's -1)."""
    value = None if metrics is None else metrics.get(key)
    return "–" if value is None or value < 0 else f"{value:.4f}"


def summary_text(data: ReportData) -> Text:
    """The report's headline figures (mask and box AP, totals, precision) for the summary box."""
    summary = data["summary"]
    totals = data.get("totals") or summary.get("totals")
    text = Text()
    if summary.get("type") == ReportType.ANNOTATIONS:
        parent, optimized = summary.get("parent"), summary.get("optimized")
        text.append("Mask AP@[.50:.95] ", "bold")
        text.append(
            f"parent {_ap(parent, 'mask_ap'):.4f} → optimized {_ap(optimized, 'mask_ap'):.4f}"
        )
        text.append(f" (drop {summary.get('mask_ap_drop', 0):.2f} pts)", "bold")
        text.append(f" · AP50 {_figure(parent, 'mask_ap50')} → {_figure(optimized, 'mask_ap50')}\n")
        text.append("Box AP@[.50:.95] ", "bold")
        text.append(f"{_ap(parent, 'box_ap'):.4f} → {_ap(optimized, 'box_ap'):.4f}")
        text.append(f" (drop {summary.get('box_ap_drop', 0):.2f} pts)", "bold")
        text.append(f" · AP50 {_figure(parent, 'box_ap50')} → {_figure(optimized, 'box_ap50')}\n")
        b_name = "annotations"
    else:
        metrics = summary.get("a_vs_b")
        text.append("Mask AP@[.50:.95] of A against B ", "bold")
        # Box AP on a line of its own, as for a report on annotations: side by side, the
        # pair wraps between a label and its figure at 80 columns.
        text.append(f"{_ap(metrics, 'mask_ap'):.4f} · AP50 {_figure(metrics, 'mask_ap50')}\n")
        text.append("Box AP@[.50:.95] of A against B ", "bold")
        text.append(f"{_ap(metrics, 'box_ap'):.4f} · AP50 {_figure(metrics, 'box_ap50')}\n")
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
        # A report made before AP50 was stored has none: "–", not "n/a" (B has none).
        _number(row["ap50"]) if "ap50" in row else Cell(None, "–", numeric=True),
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

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # The report screen's s sorts by the next column (the rows have no column cursor).
        if action == "sort_cursor_column":
            return False
        return super().check_action(action, parameters)

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
        """Back to the report's own order (the same rows, unsorted, headers without arrows)."""
        self.unsort()
        self.post_message(self.Sorted())
