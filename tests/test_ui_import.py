"""The projects list's import dialog: an archive read into an empty workspace, or refused."""

from __future__ import annotations

from pathlib import Path

from conftest import workspace_files
from pilot_wait import until
from textual.pilot import Pilot
from textual.widgets import Static

from segtui.core.project_export import ExportRequest, export_project
from segtui.core.records import ProjectRecord
from segtui.core.workspace import Workspace
from segtui.ui.app import SegtuiApp
from segtui.ui.screens.import_archive import ImportScreen
from segtui.ui.screens.project import ProjectScreen
from segtui.ui.screens.start import StartScreen
from segtui.ui.widgets.path_field import PathField


def _status(screen: ImportScreen) -> str:
    return str(screen.query_one("#import-status", Static).render())


def _export(ws: Workspace, project_id: int, out: Path) -> Path:
    work = out.parent / "work"
    work.mkdir(parents=True)
    export_project(ws, ExportRequest(project_id, out, with_children=True), work)
    return out


async def _open_dialog(app: SegtuiApp, pilot: Pilot[None], path: Path) -> ImportScreen:
    start = app.screen
    await until(pilot, lambda: isinstance(start, StartScreen) and start.loaded)
    await pilot.press("i")
    await until(pilot, lambda: isinstance(app.screen, ImportScreen))
    dialog = app.screen
    assert isinstance(dialog, ImportScreen)
    dialog.query_one("#import-file", PathField).input.value = str(path)
    await pilot.press("ctrl+s")
    return dialog


async def test_i_on_the_projects_list_imports_an_archive_into_an_empty_workspace(
    workspace: Workspace, pair: tuple[ProjectRecord, ProjectRecord], tmp_path: Path
) -> None:
    parent, child = pair
    archive = _export(workspace, parent.id, tmp_path / "out" / "pair.tar.gz")
    with Workspace(tmp_path / "other") as other:
        app = SegtuiApp(other, register_sample=False)
        async with app.run_test(size=(100, 30)) as pilot:
            dialog = await _open_dialog(app, pilot, archive)
            await until(pilot, lambda: dialog.outcome is not None, timeout=30)
            outcome = dialog.outcome
            assert outcome is not None and dialog.refusal is None
            status = _status(dialog)
            assert status.startswith(f"✓ Imported: project #{outcome['project_id']}.")
            assert "projects 2 added · models 2 added · datasets 1 added" in status
            # Back on the list: it reads the two imported projects, the child under its parent.
            await pilot.press("escape")
            start = app.screen
            assert isinstance(start, StartScreen)
            await until(pilot, lambda: len(start.rows) == 2)
            names = [row.name for row in start.rows.values()]
            assert names == [parent.name, child.name]
            assert [row.depth for row in start.rows.values()] == [0, 1]
            imported = other.project(outcome["project_id"])
            assert imported.name == parent.name and imported.parent_id is None
            # The same archive again adds nothing; Enter then opens the project's page.
            dialog = await _open_dialog(app, pilot, archive)
            await until(pilot, lambda: dialog.outcome is not None, timeout=30)
            assert "projects 0 added, 2 reused" in _status(dialog)
            assert len(other.projects()) == 2
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, ProjectScreen))
            page = app.screen
            assert isinstance(page, ProjectScreen) and page.project_id == outcome["project_id"]


async def test_a_file_that_is_no_archive_is_refused_in_red_and_nothing_is_written(
    workspace: Workspace, tmp_path: Path
) -> None:
    bogus = tmp_path / "notes.tar.gz"
    bogus.write_text("not an archive at all\n")
    before = workspace_files(workspace)
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(80, 24)) as pilot:
        dialog = await _open_dialog(app, pilot, bogus)
        await until(pilot, lambda: dialog.refusal is not None, timeout=15)
        assert dialog.outcome is None and not dialog.running
        status = dialog.query_one("#import-status", Static)
        text = status.render()
        assert str(text).startswith("✗ ") and dialog.refusal is not None
        assert dialog.refusal.message in str(text)
        assert [str(span.style) for span in getattr(text, "spans", [])] == ["red"]
    assert workspace.projects() == [] and workspace.jobs() == []
    assert workspace_files(workspace) == before
