"""The HTML report's tables: one row per image (basic) and per image and class (advanced).

Each row carries its place in the report (`data-i`, so that sorting is stable and can
be undone by the reader's eye) and whether A ≠ B on its image (`data-differs`, for the
filter). Numeric cells carry their value (`data-v`; empty for "n/a", sorted last).
"""

from __future__ import annotations

from collections.abc import Sequence

from segtui.core.html_page import Column, element, esc, header_row, number_cell, text_cell
from segtui.core.matching import AdvancedRow, BasicRow

BASIC_TABLE_ID = "basic-table"
ADVANCED_TABLE_ID = "advanced-table"
NOT_AVAILABLE = "n/a"
#: A table shows this many rows until "show all" (laying out thousands takes seconds on each
#: sort); print shows every row.
ROW_LIMIT = 1000


def basic_columns(b_name: str) -> list[Column]:
    return [
        Column("Image"),
        Column("A · optimized", numeric=True),
        Column(f"B · {b_name}", numeric=True),
        Column("Matches", numeric=True),
    ]


def advanced_columns() -> list[Column]:
    # COCO's AP: averaged over the IoU thresholds .50, .55, … .95; AP50 at .50 alone.
    return [
        Column("Image"),
        Column("Class"),
        Column("A", numeric=True),
        Column("B", numeric=True),
        Column("Matches", numeric=True),
        Column("Precision", numeric=True),
        Column("AP@[.50:.95]", numeric=True),
        Column("AP50", numeric=True),
    ]


def _share(value: float | None) -> str:
    return NOT_AVAILABLE if value is None else f"{value:.4g}"


def _row(index: int, differs: bool, cells: Sequence[str]) -> str:
    # Past the limit a row starts hidden ("more"): the script keeps the first rows shown.
    classes = " ".join(c for c, on in (("differs", differs), ("more", index >= ROW_LIMIT)) if on)
    attrs = {"data-i": index, "data-differs": int(differs), "class": classes or None}
    return element("tr", "".join(cells), attrs)


def basic_rows(rows: Sequence[BasicRow]) -> list[str]:
    return [
        _row(
            n,
            row["differs"],
            [
                text_cell(row["image"], "name"),
                number_cell(row["a"], str(row["a"])),
                number_cell(row["b"], str(row["b"])),
                number_cell(row["matches"], str(row["matches"])),
            ],
        )
        for n, row in enumerate(rows)
    ]


def advanced_rows(rows: Sequence[AdvancedRow]) -> list[str]:
    html = []
    for n, row in enumerate(rows):
        ap50 = row.get("ap50")
        cells = [
            text_cell(row["image"], "name"),
            text_cell(row["class"]),
            number_cell(row["a"], str(row["a"])),
            number_cell(row["b"], str(row["b"])),
            number_cell(row["matches"], str(row["matches"])),
            number_cell(row["precision"], _share(row["precision"])),
            number_cell(row["ap"], _share(row["ap"])),
            number_cell(ap50, _share(ap50)),
        ]
        html.append(_row(n, row["differs"], cells))
    return html


def table_html(table_id: str, title: str, columns: Sequence[Column], rows: Sequence[str]) -> str:
    """A titled, sortable table in a scrolling box, with its count of shown rows."""
    shown = min(len(rows), ROW_LIMIT)
    count = element(
        "span",
        f"showing {shown} of {len(rows)} rows",
        {"class": "count", "data-count-for": table_id, "role": "status"},
    )
    table = element(
        "table",
        header_row(columns, sortable=True) + f"<tbody>{''.join(rows)}</tbody>",
        {"id": table_id, "class": "sortable", "data-limit": ROW_LIMIT},
    )
    show_all = element(
        "button",
        f"Show all {len(rows)} rows",
        {
            "type": "button",
            "class": "show-all no-print",
            "data-show-all": table_id,
            "hidden": shown == len(rows),
        },
    )
    return (
        f"<div><h3>{esc(title)} {count}</h3>"
        + element("div", table, {"class": "table-wrap", "tabindex": 0, "aria-label": title})
        + show_all
        + "</div>"
    )


def tables_html(basic: Sequence[BasicRow], advanced: Sequence[AdvancedRow], b_name: str) -> str:
    """The filter, then both tables side by side (one above the other on a narrow screen)."""
    differ = sum(row["differs"] for row in basic)
    differ_rows = sum(row["differs"] for row in advanced)
    # The tables list the images with an instance only (the summary counts all of them).
    toolbar = (
        '<div class="toolbar"><label><input type="checkbox" id="only-differs"> '
        f"Only where A ≠ B ({differ} of the {len(basic)} images with an instance; "
        f"{differ_rows} of the {len(advanced)} image and class rows)</label>"
        '<span class="count no-print">Click a column header (or focus it and press Enter) '
        "to sort; again to reverse.</span></div>"
        "<p class='note'><span class='swatch' style='background:#ff00ff'></span>"
        "marks an image where A ≠ B.</p>"
    )
    return (
        toolbar
        + '<div class="tables">'
        + table_html(BASIC_TABLE_ID, "Per image", basic_columns(b_name), basic_rows(basic))
        + table_html(
            ADVANCED_TABLE_ID, "Per image and class", advanced_columns(), advanced_rows(advanced)
        )
        + "</div>"
    )
