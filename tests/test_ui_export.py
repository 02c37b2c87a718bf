"""The project page's export dialog: an "export" job followed to its end, then importable."""

from __future__ import annotations

from pathlib import Path

from pilot_wait import until
from textual.widgets import Checkbox, Input, Static

from segtui.core.project_import import import_archive
from segtui.core.records import ProjectRecord
from segtui.core.types import JobKind, JobState
from segtui.core.workspace import Workspace
from segtui.ui.app import SegtuiApp
from segtui.ui.screens.export import ExportScreen
from segtui.ui.screens.project import ProjectScreen


def _status(screen: ExportScreen) -> str:
    return str(screen.query_one("#export-status", Static).render())


async def test_x_on_the_project_page_exports_the_project_with_its_child_as_a_job(
    workspace: Workspace, pair: tuple[ProjectRecord, ProjectRecord], tmp_path: Path
) -> None:
    parent, child = pair
    target = tmp_path / "out" / "pair.tar.gz"
    target.parent.mkdir()
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(100, 30)) as pilot:
        app.push_screen(ProjectScreen(parent.id))
        await until(pilot, lambda: isinstance(app.screen, ProjectScreen))
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, ExportScreen))
        dialog = app.screen
        assert isinstance(dialog, ExportScreen)
        await until(pilot, lambda: dialog.target is not None)
        # The default path is the workspace's exports/ folder; one child rides along.
        field = dialog.query_one("#export-out", Input)
        assert field.value.startswith(str(workspace.root / "exports" / "segtui-export-"))
        children = dialog.query_one("#export-children", Checkbox)
        assert children.value and not children.disabled and "(1)" in str(children.label)
        field.value = str(target)
        await pilot.press("enter")
        await until(pilot, lambda: dialog.finished is not None, timeout=90)
        assert dialog.finished is not None and dialog.finished.state == JobState.DONE
        assert dialog.finished.kind == JobKind.EXPORT
        assert _status(dialog).startswith(f"✓ Wrote {target}")
        assert target.is_file() and target.stat().st_size > 1000
        # Exporting again to the same file is refused in the dialog, before any job.
        jobs_before = len(workspace.jobs())
        await pilot.press("ctrl+s")
        await until(pilot, lambda: _status(dialog).startswith("✗"))
        assert "exists" in _status(dialog) and len(workspace.jobs()) == jobs_before
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, ProjectScreen))
    # What the dialog wrote imports into another workspace: the parent and its child.
    with Workspace(tmp_path / "other") as other:
        outcome = import_archive(other, target)
        names = sorted(p.name for p in other.projects())
        assert names == sorted([parent.name, child.name]), outcome
        (imported_child,) = [p for p in other.projects() if p.parent_id is not None]
        assert other.project(imported_child.parent_id or 0).name == parent.name
