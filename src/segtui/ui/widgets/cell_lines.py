"""One table cell drawn straight into segments: what Rich's pipeline makes of a one-line `Cell`.

A DataTable renders each visible cell through Rich (`Styled(Padding(Text))`, about
0.15 ms a cell on a 2-core machine); a sort shows other rows in every visible line,
so a table of 8 columns and 26 rows renders some 200 cells again, most of a sort's
time. A cell of plain, single-width text on one line is simple enough to lay out
directly: its padding, its text cut to the column and justified, the same styles in
the same three segments. Anything else (wide or control characters, spaces at the
ends, no padding) is left to Rich (None). tests/test_ui_report.py checks the two
agree, segment for segment, over cursors, styles, widths and justification.
"""

from __future__ import annotations

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style

#: One line of segments, as DataTable caches a rendered cell.
CellLines = list[list[Segment]]


def cell_lines(
    text: str, right: bool, style: str, width: int, padding: int, pre: Style, post: Style
) -> CellLines | None:
    """A cell's `text` (`right`-justified or left, in `style`) in a column `width` cells wide
    with `padding` on each side, as Rich draws it between the table's styles `pre` and `post`;
    None where Rich must draw it."""
    inner = width - 2 * padding
    if padding <= 0 or inner <= 0 or not text.isprintable() or cell_len(text) != len(text):
        return None
    if text != text.strip():
        return None
    shown = text[:inner]
    shown = shown.rjust(inner) if right else shown.ljust(inner)
    content = pre + Style.parse(style) if style else pre
    edge = pre
    if post:
        content, edge = content + post, edge + post
    margin = " " * padding
    return [[Segment(margin, edge), Segment(shown, content), Segment(margin, edge)]]
