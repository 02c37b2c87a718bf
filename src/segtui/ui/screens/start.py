"""The start screen: every project in the workspace, optimized ones under their parent."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Footer, Header, Static

from segtui.core.projects import project_status
from segtui.core.workspace import ProjectRecord, Workspace
from segtui.ui import messages
from segtui.ui.screens.base import SegtuiScreen
from segtui.ui.styles import css_path

#: The model's format is on the project page; without it the list fits 120 columns.
COLUMNS = ("ID", "Name", "Model", "Dataset", "Images", "Device", "Status")

EMPTY_TEXT = (
    "No projects yet.\n\n"
    "Press [b]n[/b] to create one from a model file (OpenVINO IR or ONNX) and a dataset "
    "(a folder of images or a COCO .json file).\n"
    "Press [b]ctrl+p[/b] for all commands, [b]F1[/b] for help, [b]q[/b] to quit."
)


@dataclass(frozen=True)
class ProjectRow:
    """One line of the project list."""

    project_id: int
    cells: tuple[str, ...]


def project_rows(ws: Workspace) -> list[ProjectRow]:
    """Projects in display order: each parent followed by its optimized children ("↳")."""
    projects = ws.projects()
    ids = {p.id for p in projects}
    children: dict[int, list[ProjectRecord]] = {}
    roots: list[ProjectRecord] = []
    for project in projects:
        if project.parent_id is not None and project.parent_id in ids:
            children.setdefault(project.parent_id, []).append(project)
        else:
            roots.append(project)
    rows: list[ProjectRow] = []

    def visit(project: ProjectRecord, depth: int) -> None:
        model = ws.model(project.model_id)
        dataset = ws.dataset(project.dataset_id)
        prefix = "  " * (depth - 1) + "↳ " if depth else ""
        rows.append(
            ProjectRow(
                project.id,
                (
                    str(project.id),
                    prefix + project.name,
                    model.name,
                    dataset.name + (" (COCO)" if dataset.annotated else ""),
                    str(dataset.image_count),
                    project.device,
                    project_status(ws, project),
                ),
            )
        )
        for child in children.get(project.id, []):
            visit(child, depth + 1)

    for root in roots:
        visit(root, 0)
    return rows


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
        Binding("q", "app.quit", "Quit", id="start.quit", tooltip="Quit segtui."),
    ]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(EMPTY_TEXT, id="empty")
        yield DataTable[str](id="projects", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#projects", DataTable)
        for label in COLUMNS:
            table.add_column(label, key=label.lower())
        self.reload()

    def on_screen_resume(self) -> None:
        self.reload()

    def action_refresh(self) -> None:
        self.reload()
        self.notify("Project list reloaded.", timeout=2)

    def reload(self) -> None:
        """Read the projects again, keeping the cursor on the same project."""
        table = self.query_one("#projects", DataTable)
        selected = self.selected_project_id
        rows = project_rows(self.segtui.workspace)
        table.clear()
        for row in rows:
            table.add_row(*row.cells, key=str(row.project_id))
        empty = not rows
        table.display = not empty
        self.query_one("#empty", Static).display = empty
        # The workspace path is in F1 help and `segtui --help`; here it would only crowd the header.
        self.sub_title = f"{len(rows)} project{'s' if len(rows) != 1 else ''}"
        if selected is not None and str(selected) in {str(r.project_id) for r in rows}:
            table.move_cursor(row=table.get_row_index(str(selected)))
        if not empty:
            table.focus()

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
