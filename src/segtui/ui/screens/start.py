"""The start screen: every project in the workspace, optimized ones under their parent.

The list is read in a thread worker (`core.projects.project_rows`, one query) and
follows the jobs through the app's job watcher: a project whose newest job changes
state is read again. Columns that do not fit the terminal are left out, the least
useful first (Device, Images, Model, Dataset, then the throughput); ID, Name and
Status always stay.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.cells import cell_len
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Footer, Header, Static

from segtui.core.projects import project_rows
from segtui.core.records import JobRecord, ProjectRow
from segtui.ui import messages
from segtui.ui.job_watcher import unsubscribe, watcher_of
from segtui.ui.screens.base import SegtuiScreen
from segtui.ui.styles import css_path
from segtui.ui.widgets.table import fit_optional

#: Every column, in display order (the model's format is on the project page).
COLUMNS = ("ID", "Name", "Model", "Dataset", "Images", "Device", "Status", "Best FPS")
#: Shown in this order while they fit (the last is the first given up as the terminal
#: narrows); the other columns (ID, Name, Status) are shown at any width.
OPTIONAL = ("Best FPS", "Dataset", "Model", "Images", "Device")
#: A DataTable cell's padding (one space each side), and room for the vertical scrollbar.
CELL_PADDING = 2
SCROLLBAR = 2
#: The narrowest a name is cut to (with "…") when even the kept columns do not fit.
NAME_MIN = 12

EMPTY_TEXT = (
    "No projects yet.\n\n"
    "Press [b]n[/b] to create one from a model file (OpenVINO IR or ONNX) and a dataset "
    "(a folder of images or a COCO .json file).\n"
    "Press [b]ctrl+p[/b] for all commands, [b]F1[/b] for help, [b]q[/b] to quit."
)


def row_cells(row: ProjectRow) -> tuple[str, ...]:
    """One line of the list; an optimized project is indented under its parent ("↳")."""
    prefix = "  " * (row.depth - 1) + "↳ " if row.depth else ""
    return (
        str(row.id),
        prefix + row.name,
        row.model_name,
        row.dataset_name + (" (COCO)" if row.annotated else ""),
        str(row.image_count),
        row.device,
        row.status,
        row.throughput_text,
    )


@dataclass(frozen=True)
class ColumnFit:
    """The columns shown at a width, and the width names are cut to (None: whole names)."""

    columns: tuple[str, ...]
    name_width: int | None = None


def fit_columns(cells: Sequence[Sequence[str]], width: int) -> ColumnFit:
    """The columns that fit `width` cells: the kept ones, then OPTIONAL's in order while they fit."""
    natural = {
        label: max([cell_len(label), *(cell_len(row[i]) for row in cells)]) + CELL_PADDING
        for i, label in enumerate(COLUMNS)
    }
    shown, used = fit_optional(natural, OPTIONAL, width)
    name_width = None
    if used > width:  # even ID, Name and Status are too wide: names are cut
        name_width = max(NAME_MIN, natural["Name"] - (used - width) - CELL_PADDING)
    return ColumnFit(tuple(label for label in COLUMNS if label in shown), name_width)


def shown_cells(cells: Sequence[str], fit: ColumnFit) -> list[str]:
    """A row's cells for the columns that fit, its name cut to the fitted width with '…'."""
    shown = []
    for label, cell in zip(COLUMNS, cells, strict=True):
        if label not in fit.columns:
            continue
        if label == "Name" and fit.name_width is not None and cell_len(cell) > fit.name_width:
            cell = cell[: fit.name_width - 1] + "…"
        shown.append(cell)
    return shown


def status_moved(row: ProjectRow, job: JobRecord) -> bool:
    """Whether `job` changes what the list says of its project (its newest job's state)."""
    if row.latest_job_id is not None and job.id < row.latest_job_id:
        return False
    return (job.kind, job.state) != (row.latest_job_kind, row.latest_job_state)


class StartScreen(SegtuiScreen):
    """Lists the projects; Enter opens one."""

    CSS_PATH = css_path("start.tcss")
    TITLE = "Projects"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "n",
            "app.new_project",
            "New project",
            id="start.new",
            tooltip="Create a project from a model and a dataset.",
        ),
        Binding(
            "r",
            "refresh",
            "Refresh",
            id="start.refresh",
            tooltip="Reload the project list from the workspace.",
        ),
        Binding(
            "i",
            "import_archive",
            "Import",
            id="start.import",
            tooltip="Import a project archive that `segtui export` wrote (.tar.gz).",
        ),
        Binding(
            "q",
            "app.quit",
            "Quit",
            id="start.quit",
            tooltip="Quit segtui (asks first while a job runs; the job goes on).",
        ),
    ]
    #: What the projects table's own keys do here (F1 lists them with the screen's keys).
    HELP_ACTIONS: ClassVar[dict[str, tuple[str, str]]] = {
        "select_cursor": ("Open project", "Open the page of the project under the cursor."),
    }

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[int, ProjectRow] = {}
        #: The rows have been read at least once.
        self.loaded = False
        #: The columns shown now (see fit_columns).
        self.fit = ColumnFit(COLUMNS)

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(EMPTY_TEXT, id="empty")
        yield DataTable[str](id="projects", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#projects", DataTable)
        for label in COLUMNS:
            table.add_column(label, key=label.lower())
        # Hidden until the first rows arrive: the empty text must not flash by.
        table.display = False
        self.query_one("#empty", Static).display = False

    def on_unmount(self) -> None:
        unsubscribe(self)

    def on_screen_resume(self) -> None:
        # Also when the screen is first shown: the first read starts here. Follow the jobs
        # only while on top (see segtui.ui.job_watcher), and catch up now.
        watcher_of(self).subscribe(self)
        self.reload()

    def on_screen_suspend(self) -> None:
        unsubscribe(self)

    def action_import_archive(self) -> None:
        from segtui.ui.screens.import_archive import ImportScreen

        self.app.push_screen(ImportScreen())

    def action_refresh(self) -> None:
        self.reload()
        self.notify("Project list reloaded.", timeout=2)

    def reload(self) -> None:
        """Read the projects again (in a worker), keeping the cursor on the same project."""
        self.tasks.run(
            project_rows, self.show_rows, group="projects-load", description="Load the projects"
        )

    def show_rows(self, rows: list[ProjectRow]) -> None:
        if self.loaded and rows == list(self.rows.values()):
            return  # unchanged (e.g. back from help): nothing to repaint
        selected = self.selected_project_id
        self.rows = {row.id: row for row in rows}
        self.loaded = True
        cells = [row_cells(row) for row in rows]
        self._fill(selected, cells, fit_columns(cells, self.app.size.width - SCROLLBAR))
        empty = not rows
        self.query_one("#projects", DataTable).display = not empty
        self.query_one("#empty", Static).display = empty
        # The workspace path is in F1 help and `segtui --help`; here it would only crowd the header.
        self.sub_title = f"{len(rows)} project{'s' if len(rows) != 1 else ''}"
        if not empty:
            self.query_one("#projects", DataTable).focus()

    def _fill(self, selected: int | None, cells: list[tuple[str, ...]], fit: ColumnFit) -> None:
        """The table again: the columns of `fit`, then the rows (`cells`: each row's cells)."""
        table = self.query_one("#projects", DataTable)
        if fit != self.fit:
            self.fit = fit
            table.clear(columns=True)
            for label in fit.columns:
                table.add_column(label, key=label.lower())
        else:
            table.clear()
        for row, row_text in zip(self.rows.values(), cells, strict=True):
            table.add_row(*shown_cells(row_text, fit), key=str(row.id))
        if selected is not None and selected in self.rows:
            table.move_cursor(row=table.get_row_index(str(selected)))

    def on_resize(self, event: events.Resize) -> None:
        if not self.loaded:
            return
        cells = [row_cells(row) for row in self.rows.values()]
        fit = fit_columns(cells, event.size.width - SCROLLBAR)
        if fit != self.fit:
            self._fill(self.selected_project_id, cells, fit)

    def on_job_changed(self, event: messages.JobChanged) -> None:
        self._job_moved(event.job)

    def on_job_finished(self, event: messages.JobFinished) -> None:
        self._job_moved(event.job)

    def _job_moved(self, job: JobRecord) -> None:
        if self.app.screen is not self:
            return  # read again when it comes back (on_screen_resume)
        row = self.rows.get(job.project_id) if job.project_id is not None else None
        if row is not None and status_moved(row, job):
            self.reload()

    @property
    def selected_project_id(self) -> int | None:
        table = self.query_one("#projects", DataTable)
        if table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return None if key is None else int(key)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        key = event.row_key.value
        if key is not None:
            self.post_message(messages.OpenProject(int(key)))
