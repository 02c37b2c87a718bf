"""F1 help: the keys that work here, generated from the focused widget's bindings up to the app."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.dom import DOMNode
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Static

HelpRow = tuple[str, str, str, str]


def _scope(node: DOMNode) -> tuple[int, str]:
    """Sort order and name of where a binding comes from: this screen, everywhere, the widget."""
    if isinstance(node, Screen):
        return 0, "this screen"
    if isinstance(node, App):
        return 1, "everywhere"
    return 2, f"#{node.id}" if node.id else type(node).__name__


def screen_actions(screen: Screen[object]) -> dict[str, tuple[str, str]]:
    """What a widget's action does on `screen`: action -> (description, tooltip).

    A screen names them in `HELP_ACTIONS` (e.g. the projects table's Enter is
    "Open project", not DataTable's "Select"); help lists them with the screen's own keys.
    """
    actions: dict[str, tuple[str, str]] = getattr(screen, "HELP_ACTIONS", {})
    return actions


def binding_rows(screen: Screen[object]) -> list[HelpRow]:
    """(keys, action, scope, tooltip) of every described binding active on `screen` now."""
    app = screen.app
    own = screen_actions(screen)
    by_action: dict[tuple[str, str], tuple[tuple[int, int], HelpRow]] = {}
    for key, active in screen.active_bindings.items():
        binding = active.binding
        if binding.action in own and not isinstance(active.node, App):
            # Listed as this screen's own key, in the screen's words, with its shown keys.
            description, tooltip = own[binding.action]
            binding = Binding(key, binding.action, description, tooltip=tooltip)
            active = active._replace(node=screen, binding=binding, tooltip=tooltip)
        if not binding.description:
            continue
        display = app.get_key_display(binding.with_key(key))
        scope_order, scope = _scope(active.node)
        # Within a scope, the keys the footer shows come first.
        order = (scope_order, 0 if binding.show else 1)
        slot = (scope, binding.action)
        if slot in by_action:
            order, (keys, desc, scope, tip) = by_action[slot]
            by_action[slot] = (order, (f"{keys}, {display}", desc, scope, tip))
        else:
            row = (display, binding.description, scope, active.tooltip or binding.tooltip)
            by_action[slot] = (order, row)
    return [row for _order, row in sorted(by_action.values(), key=lambda item: item[0])]


class HelpScreen(ModalScreen[None]):
    """Lists the keys of the screen below, for the widget that has focus."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,f1,q", "dismiss_help", "Close", id="help.close", tooltip="Close help."),
    ]

    def __init__(self, title: str, focused: str, rows: list[HelpRow], workspace: str = "") -> None:
        super().__init__()
        self._workspace = workspace
        self._title = title
        self._focused = focused
        self._rows = rows

    def compose(self) -> ComposeResult:
        with Vertical(id="help-dialog"):
            yield Static(id="help-title")
            yield Static(id="help-focused")
            yield Static(id="help-workspace")
            yield DataTable[str](id="help-table", cursor_type="row", zebra_stripes=True)
            yield Static(id="help-detail")
            yield Static("escape closes · ctrl+p opens the command palette", id="help-hint")

    def on_mount(self) -> None:
        self.query_one("#help-table", DataTable).add_columns("Key", "Where", "Action")
        self._fill()

    def show(self, title: str, focused: str, rows: list[HelpRow], workspace: str = "") -> None:
        """Show the keys of another screen (the app keeps one help screen and refills it).

        The same keys as last time are not refilled, only shown from the top again:
        rebuilding the table was a third of the time from F1 to the help on the screen.
        """
        before = (self._title, self._focused, self._rows, self._workspace)
        unchanged = (title, focused, rows, workspace) == before
        self._title, self._focused, self._rows, self._workspace = title, focused, rows, workspace
        if not self.is_mounted:
            return
        if unchanged:
            self._from_the_top()
        else:
            self._fill()

    def _fill(self) -> None:
        self.query_one("#help-title", Static).update(Text(f"Keys — {self._title}", style="bold"))
        self.query_one("#help-focused", Static).update(Text(f"Focused: {self._focused}"))
        workspace = self.query_one("#help-workspace", Static)
        workspace.update(Text(f"Workspace: {self._workspace}"))
        workspace.display = bool(self._workspace)
        table = self.query_one("#help-table", DataTable)
        table.clear()
        for keys, action, where, _tooltip in self._rows:
            table.add_row(keys, where, action)
        self._from_the_top()

    def _from_the_top(self) -> None:
        """The cursor on the first key, its tooltip under the table, the table focused."""
        table = self.query_one("#help-table", DataTable)
        table.move_cursor(row=0)
        first = self._rows[0][3] if self._rows else ""
        self.query_one("#help-detail", Static).update(Text(first or ""))
        table.focus()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        # The tooltip goes under the table, where it has the full width even at 80 columns.
        row = self._rows[event.cursor_row] if 0 <= event.cursor_row < len(self._rows) else None
        self.query_one("#help-detail", Static).update(Text(row[3] if row and row[3] else ""))

    def action_dismiss_help(self) -> None:
        self.dismiss(None)
