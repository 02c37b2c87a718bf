"""The sensitivity analysis as the screen shows it: its headline, and its ranked table of
quantizer groups with a mark per row, a bar for the metric change, sortable by any column.

Built on the shared `SortableTable` (`s` sorts by the cursor's column, `S` reverses, a
header click sorts). Space marks or unmarks the cursor's row; the screen re-optimizes
with the marked groups kept in floating point. The group and layer names are cut to the
width the other columns leave (the row under the cursor is spelt out below the table).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.message import Message

from segtui.ui.widgets.table import Cell, SortableTable, fit_optional, num

if TYPE_CHECKING:
    from segtui.core.sensitivity import SensitivityResult, SensitivityRow

#: (key, label) of every column, in order.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("mark", "✓"),
    ("rank", "#"),
    ("group", "Group"),
    ("ops", "Feeds"),
    ("layers", "Layers"),
    ("error", "Error dB"),
    ("change", "Δ pts"),
    ("bar", "Gain"),
    ("cost", "Cost ms"),
    ("chosen", "★"),
)
#: Given up, in this order from the end, when the table is narrow.
OPTIONAL = ("error", "ops")
#: The widest the bar gets, and the least the name columns get.
BAR_WIDTH = 12
NARROW_BAR = 6
MIN_NAME = 10
OPS_WIDTH = 12
#: A DataTable cell's padding (one cell each side) and the vertical scrollbar.
PADDING = 2
SCROLLBAR = 2
#: Eighths of a block, for the bars' last cell.
EIGHTHS = " ▏▎▍▌▋▊▉"
#: NNCF names a quantizer after where it sits: '<layer>/fq_input_0', '<layer>/fq_output_0'.
FQ_SUFFIX = re.compile(r"/fq_(input|output|weights)_\d+$")
#: A path segment that only names an op type ('Convolution', 'Add_12'): dropped when shortening.
OP_SEGMENT = re.compile(r"^[A-Z][A-Za-z0-9]*(_\d+)?$")


#: The columns shown, the group, layer and op columns' widths, and the bar's.
Layout = tuple[list[str], tuple[int, int, int], int]


def short_name(name: str) -> str:
    """A layer or quantizer name without what repeats on every row: NNCF's '/fq_input_0',
    PyTorch's '__module.' and '/aten::…' parts, a last segment that only names the op type."""
    name = FQ_SUFFIX.sub("", name).removeprefix("__module.")
    parts = [p for p in name.split("/") if p and not p.startswith(("aten::", "prim::"))]
    if len(parts) > 1 and OP_SEGMENT.match(parts[-1]):
        parts.pop()
    return "/".join(parts) or name


def clip(text: str, width: int, *, keep_end: bool = True) -> str:
    """`text` in at most `width` cells: its end kept (the most specific part of a layer path),
    or its start (`keep_end=False`: the first of a list)."""
    if len(text) <= width:
        return text
    if width <= 1:
        return text[:width]
    return "…" + text[len(text) - width + 1 :] if keep_end else text[: width - 1] + "…"


def bar(value: float | None, largest: float, width: int) -> str:
    """A bar of block characters, `width` cells for `largest`; nothing for no gain."""
    if value is None or value <= 0 or largest <= 0:
        return ""
    eighths = round(min(value / largest, 1.0) * width * 8)
    full, part = divmod(max(eighths, 1), 8)
    return ("█" * full + (EIGHTHS[part] if part else "")).rstrip()


def group_label(row: SensitivityRow, width: int | None = None) -> str:
    """'G12 layer3/conv' (+N when the group has several quantizers), its name cut to `width`."""
    quantizers = row["quantizers"]
    first = short_name(quantizers[0]) if quantizers else "?"
    prefix, more = f"G{row['id']} ", f" +{len(quantizers) - 1}" if len(quantizers) > 1 else ""
    if width is not None:
        first = clip(first, max(1, width - len(prefix) - len(more)))
    return f"{prefix}{first}{more}"


def layers_label(row: SensitivityRow, width: int | None = None) -> str:
    """'3 conv1/conv': how many layers it feeds and the first one's name, cut to `width`."""
    layers = row["fed_layers"]
    if not layers:
        return "0"
    prefix = f"{len(layers)} "
    first = short_name(layers[0])
    if width is not None:
        first = clip(first, max(1, width - len(prefix)))
    return prefix + first


def largest_change(rows: Sequence[SensitivityRow]) -> float:
    """The largest metric change of the rows (what a full bar stands for)."""
    return max((r["metric_change"] or 0.0 for r in rows), default=0.0)


def _signed(value: float | None) -> Cell:
    if value is None:
        return Cell(None, "-", True)
    return Cell(float(value), f"{value:+.2f}", True)


def _no_minus_zero(value: float | None, digits: int) -> float | None:
    """`value`, or 0.0 where it shows as zero with `digits` decimals (never '-0.0')."""
    if value is None or round(value, digits) != 0:
        return value
    return 0.0


def _cost(value: float | None) -> Cell:
    """Milliseconds per image (3 decimals)."""
    if value is None:
        return Cell(None, "-", True)
    return Cell(float(value), f"{_no_minus_zero(value, 3):.3f}", True)


def row_cells(
    row: SensitivityRow,
    *,
    marked: bool,
    largest: float,
    names: tuple[int, int, int],
    bar_width: int,
) -> dict[str, Cell]:
    """The cells of one group, by column key; `names`: the group, layer and op columns' widths."""
    group, ops = group_label(row), ",".join(row["op_types"])
    chosen = "★" if row["chosen"] else ""
    if row["chosen"] and row["reason"] == "no data":
        chosen = "★?"
    change = row["metric_change"]
    return {
        "mark": Cell(1.0 if marked else 0.0, "✓" if marked else "·", style="bold green"),
        "rank": num(row["rank"]),
        "group": Cell(group, group_label(row, names[0])),
        "ops": Cell(ops or None, clip(ops, names[2], keep_end=False) if ops else "-"),
        "layers": Cell(float(len(row["fed_layers"])), layers_label(row, names[1])),
        "error": num(_no_minus_zero(row["error_db"], 1), 1),
        "change": _signed(change),
        "bar": Cell(change, bar(change, largest, bar_width), style="green"),
        "cost": _cost(row["cost_ms"]),
        "chosen": Cell(1.0 if row["chosen"] else 0.0, chosen, style="bold yellow"),
    }


def layout(width: int, rows: Sequence[SensitivityRow]) -> Layout:
    """The columns that fit `width`, the group, layer and op columns' widths, and the bar's."""
    bar_width = BAR_WIDTH if width >= 100 else NARROW_BAR
    groups = [group_label(r) for r in rows] or [""]
    layers = [layers_label(r) for r in rows] or [""]
    ops = [",".join(r["op_types"]) for r in rows] or [""]
    wanted = {
        "mark": 1,
        "rank": max(1, len(str(len(rows)))),
        "group": MIN_NAME,
        "ops": min(max(map(len, ops)), OPS_WIDTH),
        "layers": MIN_NAME,
        "error": 8,
        "change": 6,
        "bar": max(bar_width, 4),
        "cost": 7,
        "chosen": 2,
    }
    needed = {key: size + PADDING for key, size in wanted.items()}
    shown, used = fit_optional(needed, OPTIONAL, width - SCROLLBAR)
    longest = [max(map(len, groups)), max(map(len, layers)), max(map(len, ops))]
    sizes = [MIN_NAME, MIN_NAME, wanted["ops"]]
    if "ops" not in shown:
        longest[2] = sizes[2]
    # What the fixed columns leave goes to the names, a cell at a time, until each fits.
    spare = max(0, width - SCROLLBAR - used)
    while spare > 0 and any(size < long for size, long in zip(sizes, longest, strict=True)):
        for n in range(3):
            if spare > 0 and sizes[n] < longest[n]:
                sizes[n] += 1
                spare -= 1
    keys = [key for key, _ in COLUMNS if key in shown]
    return keys, (sizes[0], sizes[1], sizes[2]), bar_width


class SensitivityTable(SortableTable):
    """The ranked groups: a cell cursor (`s` sorts by its column), space marks its row."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "space",
            "toggle_mark",
            "Select",
            id="sensitivity.mark",
            tooltip="Select the group under the cursor to keep in floating point (again: unselect).",
        ),
    ]

    class Changed(Message):
        """The marks or the sort changed (the screen's status line says so)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.groups: dict[str, SensitivityRow] = {}
        #: Group ids of the marked rows.
        self.marked: set[int] = set()
        self._largest = 0.0
        self._layout: Layout = ([], (MIN_NAME, MIN_NAME, OPS_WIDTH), 0)

    def show(self, rows: Sequence[SensitivityRow], width: int) -> None:
        """Show `rows` laid out for `width` cells (the marks of groups still there are kept)."""
        self.groups = {str(r["id"]): r for r in rows}
        self.marked &= {r["id"] for r in rows}
        self._largest = largest_change(rows)
        self._layout = layout(width, rows)
        self._fill()

    def relayout(self, width: int) -> None:
        """Lay the same rows out for another width."""
        found = layout(width, list(self.groups.values()))
        if found != self._layout:
            self._layout = found
            self._fill()

    def _fill(self) -> None:
        keys, names, bar_width = self._layout
        labels = dict(COLUMNS)
        self.set_columns([(key, labels[key]) for key in keys])
        rows = []
        for key, row in self.groups.items():
            cells = row_cells(
                row,
                marked=row["id"] in self.marked,
                largest=self._largest,
                names=names,
                bar_width=bar_width,
            )
            rows.append((key, [cells[k] for k in keys]))
        self.set_rows(rows)

    def sort_by(self, column: str) -> None:
        super().sort_by(column)
        self.post_message(self.Changed())

    def label_of(self, column: str) -> str:
        """A column's label, without the sort arrow."""
        return dict(COLUMNS).get(column, column)

    def cursor_group(self) -> SensitivityRow | None:
        """The group under the cursor."""
        if not self.row_count:
            return None
        keys = self.row_keys
        return self.groups.get(keys[min(self.cursor_row, len(keys) - 1)])

    def set_marks(self, group_ids: Collection[int]) -> None:
        """Mark exactly these groups."""
        self.marked = {g for g in group_ids if str(g) in self.groups}
        self._repaint_marks()

    def action_toggle_mark(self) -> None:
        row = self.cursor_group()
        if row is None:
            return
        self.marked ^= {row["id"]}
        self._repaint_marks()

    def _repaint_marks(self) -> None:
        if "mark" in self._labels:
            for key, row in self.groups.items():
                marked = row["id"] in self.marked
                cell = Cell(1.0 if marked else 0.0, "✓" if marked else "·", style="bold green")
                self.update_cell(key, "mark", cell)
        self.post_message(self.Changed())


def keep_float_text(optimization: Mapping[str, object] | None) -> str:
    """'3 groups kept in float (sensitivity analysis #12 of project #4)', from a model's
    optimization record ('' when it was not made from an analysis)."""
    link = (optimization or {}).get("keep_float_from")
    if not isinstance(link, Mapping):
        return ""
    groups = link.get("groups")
    count = len(groups) if isinstance(groups, list) else 0
    result, project = link.get("result_id"), link.get("project_id")
    if result is None or project is None:
        # Imported without the analysed child: its ids named rows of another workspace.
        return f"{_plural(count, 'group')} kept in float (a sensitivity analysis not imported)"
    return (
        f"{_plural(count, 'group')} kept in float (sensitivity analysis "
        f"#{result} of project #{project})"
    )


def _plural(count: int, word: str) -> str:
    """'1 group', '3 groups'."""
    return f"{count} {word}{'' if count == 1 else 's'}"


def _metric(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


def headline(result_id: int, result: SensitivityResult) -> Text:
    """What was measured and how long it took; then the metric of each model."""
    seconds = result["seconds"].get("total", 0.0)
    text = Text()
    text.append(f"Analysis #{result_id}", "bold")
    text.append(
        f" · {len(result['groups'])} quantizer groups · {result['evaluations']} evaluations "
        f"on {result['images']} images in {duration(seconds)}",
        "dim",
    )
    if result["body_quantizers"]:
        text.append(f" · {result['body_quantizers']} inside If/Loop bodies not analysed", "dim")
    text.append("\n")
    text.append(f"{result['metric_label']}: ", "dim")
    text.append("parent ", "dim")
    text.append(_metric(result["parent_metric"]), "bold")
    text.append(" · INT8 ", "dim")
    text.append(_metric(result["int8_metric"]), "bold")
    if result["refitted"] and result["baseline_metric"] != result["int8_metric"]:
        text.append(f" ({_metric(result['baseline_metric'])} with ranges refitted)", "dim")
    if not result["chosen"]:
        text.append(" · no group recommended", "dim")
        return text
    text.append(f" · recommended {len(result['chosen'])} in float ", "dim")
    text.append(_metric(result["chosen_metric"]), "bold green")
    return text


def duration(seconds: float) -> str:
    """'48 s', '3 min 05 s'."""
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    return f"{whole // 60} min {whole % 60:02d} s"


def selection_text(rows: Sequence[SensitivityRow], marked: Collection[int]) -> str:
    """'2 selected: 5 layers, +0.41 ms per image in float' (or how to select)."""
    chosen = [r for r in rows if r["id"] in marked]
    if not chosen:
        return "none selected (space selects, a the recommended set)"
    layers = len({name for r in chosen for name in r["fed_layers"]})
    cost = sum(r["cost_ms"] or 0.0 for r in chosen)
    cost = _no_minus_zero(cost, 2) or 0.0
    return f"{len(chosen)} selected: {_plural(layers, 'layer')}, {cost:+.2f} ms per image in float"


def detail_text(row: SensitivityRow) -> Text:
    """The row under the cursor spelt out: its figures, then every layer it feeds."""
    notes = []
    if row["error_db"] is not None:
        notes.append(f"error {_no_minus_zero(row['error_db'], 1):.1f} dB (lower is worse)")
        notes.append(f"{row['clipped'] * 100:.0f} % clipped")
    if row["no_data"]:
        notes.append("saw no values on the score images")
    if row["range_collapsed"]:
        notes.append("calibrated range collapsed")
    if row["metric_change"] is not None:
        notes.append(f"{row['metric_change']:+.2f} pts in float")
    elif not row["measured"]:
        notes.append("not measured with the metric")
    if row["float_ms"] is not None and row["int8_ms"] is not None:
        notes.append(f"float {row['float_ms']:.3f} / INT8 {row['int8_ms']:.3f} ms")
    if row["chosen"]:
        notes.append(f"recommended ({row['reason'] or 'metric'})")
    text = Text()
    text.append(f"G{row['id']} ", "bold")
    text.append(" · ".join(notes), "dim")
    text.append(f"\nfeeds {len(row['fed_layers'])}: ", "dim")
    pairs = zip(row["fed_layers"], row["fed_types"], strict=False)
    text.append(", ".join(f"{name} ({kind})" for name, kind in pairs) or "nothing")
    return text
