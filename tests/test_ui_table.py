"""SortableTable (every sortable table of the TUI): cells laid out as Rich lays them out."""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from textual.app import App, ComposeResult
from textual.widgets import DataTable

from segtui.ui.widgets.cell_lines import cell_lines
from segtui.ui.widgets.table import Cell, SortableTable


async def test_cells_laid_out_directly_are_what_rich_draws() -> None:
    """SortableTable lays one-line cells out itself (a sort repaints every visible cell):
    segment for segment what DataTable's Rich pipeline draws, in every state of a cell."""

    class TableApp(App[None]):
        def compose(self) -> ComposeResult:
            yield SortableTable(id="t")

    cells = [
        Cell(1.0, "12", True),
        Cell("abc", "abc"),
        Cell(None, "n/a", True, "red"),
        Cell("x", "a long name cut by its column"),
        Cell(None, "–", True),
        Cell("x", " spaced ", style="bold"),
        Cell("x", "ünï", style="dim italic"),
        Cell("x", "宽字"),  # wide characters: drawn by Rich
        Cell("x", ""),
    ]
    app = TableApp()
    async with app.run_test(size=(100, 20)) as pilot:
        table = app.query_one(SortableTable)
        table.set_columns([("a", "A"), ("b", "B"), ("c", "C")])
        table.set_rows(
            [
                (str(n), [cells[n], cells[(n + 3) % len(cells)], cells[(n + 5) % 9]])
                for n in range(9)
            ]
        )
        table.focus()
        await pilot.pause()
        base = table.rich_style
        checked = 0
        for row in range(table.row_count):
            styles = (base, table._get_row_style(row, base), base + Style(bgcolor="blue"))
            for column in range(3):
                full = table.ordered_columns[column].get_render_width(table)
                for width in (full, 2, 4, 7):
                    for style in styles:
                        for cursor, hover in ((False, False), (True, False), (False, True)):
                            table._cell_render_cache.clear()
                            ours = table._render_cell(row, column, style, width, cursor, hover)
                            table._cell_render_cache.clear()
                            rich: list[list[Segment]] = DataTable._render_cell(
                                table, row, column, style, width, cursor, hover
                            )
                            assert ours == rich, (row, column, width, cursor, hover)
                            checked += 1
        assert checked == 9 * 3 * 4 * 3 * 3
    # Laid out directly where it is plain text; Rich draws the rest.
    null = Style()
    assert cell_lines("12", True, "", 6, 1, null, null) == [
        [Segment(" ", null), Segment("  12", null), Segment(" ", null)]
    ]
    assert cell_lines("宽字", False, "", 8, 1, null, null) is None
    assert cell_lines(" spaced ", False, "", 12, 1, null, null) is None
