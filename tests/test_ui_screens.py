"""Start screen, project page, help and command palette, driven with keys."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from pilot_wait import until
from textual.app import ComposeResult
from textual.message import Message
from textual.message_pump import MessagePump
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import DataTable, Label, ProgressBar, Static, TabbedContent
from tiny_models import build_omz_maskrcnn

from segtui.core.machine import machine_info
from segtui.core.models import import_model
from segtui.core.projects import create_project_from_paths
from segtui.core.types import JobKind, JobState
from segtui.core.workspace import JobRecord, ProjectRecord, Workspace
from segtui.ui import app as app_module
from segtui.ui import messages
from segtui.ui.app import SegtuiApp
from segtui.ui.commands import ProjectCommands, ProjectPageCommands
from segtui.ui.job_watcher import JobWatcher
from segtui.ui.screens.create_project import CreateProjectScreen
from segtui.ui.screens.help import HelpScreen
from segtui.ui.screens.project import ProjectScreen
from segtui.ui.screens.start import COLUMNS, StartScreen, fit_columns, shown_cells
from segtui.ui.widgets.job_monitor import JobMonitor
from segtui.ui.widgets.property_table import PropertyTable


@pytest.fixture
def parent_and_child(
    workspace: Workspace, image_folder: Path, tmp_path: Path
) -> tuple[ProjectRecord, ProjectRecord]:
    """A project and an 'optimized' child of it (a second copy of the model, linked)."""
    (image_folder / "notes.txt").write_text("not an image")
    model_path = build_omz_maskrcnn(tmp_path / "m" / "model.xml")
    parent = create_project_from_paths(
        workspace, model_path=model_path, dataset_path=image_folder, name="Parent"
    )
    child_model = import_model(
        workspace,
        model_path,
        name="model INT8",
        optimized_from=parent.model_id,
        optimization={"method": "default", "preset": "performance", "subset_size": 3},
    )
    child = workspace.add_project(
        name="Parent INT8",
        model_id=child_model.id,
        dataset_id=parent.dataset_id,
        device="CPU",
        parent_id=parent.id,
    )
    return parent, child


def _text(widget: Static) -> str:
    return str(widget.content)


async def start_loaded(pilot: Pilot[None]) -> StartScreen:
    screen = pilot.app.screen
    assert isinstance(screen, StartScreen)
    await until(pilot, lambda: screen.loaded)
    return screen


async def page_loaded(pilot: Pilot[None], project_id: int) -> ProjectScreen:
    def shown() -> bool:
        screen = pilot.app.screen
        return (
            isinstance(screen, ProjectScreen)
            and screen.project_id == project_id
            and (screen.page is not None and screen.page.details.project.id == project_id)
        )

    await until(pilot, shown)
    screen = pilot.app.screen
    assert isinstance(screen, ProjectScreen)
    return screen


async def test_empty_start_screen_and_f1_help(workspace: Workspace) -> None:
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await start_loaded(pilot)
        empty = screen.query_one("#empty", Static)
        assert empty.display and "Press n to create one" in empty.render().plain  # type: ignore[union-attr]
        assert not screen.query_one("#projects", DataTable).display

        await pilot.press("f1")
        help_screen = app.screen
        assert isinstance(help_screen, HelpScreen)
        rows = [help_screen.query_one(DataTable).get_row_at(i) for i in range(3)]
        # The screen's own actions first: its table's Enter in the screen's words.
        assert rows[0][:3] == ["⏎", "this screen", "Open project"]
        assert rows[1][:3] == ["n", "this screen", "New project"]
        assert _text(help_screen.query_one("#help-workspace", Static)) == (
            f"Workspace: {workspace.root}"
        )
        await pilot.press("escape", "n")
        assert isinstance(app.screen, CreateProjectScreen)
        await pilot.press("f1")
        form_help = app.screen
        # The one help screen, refilled with the form's keys.
        assert isinstance(form_help, HelpScreen)
        assert form_help is help_screen
        table = form_help.query_one(DataTable)
        actions = {table.get_row_at(i)[2] for i in range(table.row_count)}
        assert _text(form_help.query_one("#help-focused", Static)) == (
            "Focused: PathInput in #model-field"
        )
        assert {"Create", "Back", "Complete"} <= actions
        assert "New project" not in actions
        await pilot.press("escape", "escape")
        assert isinstance(app.screen, StartScreen)


async def test_start_screen_lists_children_under_parent_and_opens_them(
    workspace: Workspace, parent_and_child: tuple[ProjectRecord, ProjectRecord]
) -> None:
    parent, child = parent_and_child
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        table = (await start_loaded(pilot)).query_one("#projects", DataTable)
        assert table.row_count == 2
        assert table.get_row_at(0)[:2] == [str(parent.id), "Parent"]
        assert table.get_row_at(1)[:2] == [str(child.id), "↳ Parent INT8"]
        assert table.get_row_at(0)[4] == "3"  # images
        await pilot.press("down", "enter")
        screen = await page_loaded(pilot, child.id)
        lineage = _text(screen.query_one("#project-lineage", Static))
        assert lineage == (
            f"Optimized to INT8 (Default method, Performance preset) from #{parent.id} Parent"
            " (p opens it)"
        )
        model_info = screen.query_one("#model-info", PropertyTable)
        assert model_info.value_of("Method") == "default"
        assert model_info.value_of("Subset size") == "3"
        await pilot.press("p")
        page = await page_loaded(pilot, parent.id)
        assert f"#{child.id} Parent INT8" in _text(page.query_one("#project-lineage", Static))
        await pilot.press("escape", "escape")
        assert isinstance(app.screen, StartScreen)


#: Rows like the sample workspace's: long names, a measured parent, its unmeasured child.
SAMPLE_CELLS = [
    (
        "1",
        "Sample: shapes (annotated)",
        "shapes Mask R-CNN",
        "shapes val (COCO)",
        "200",
        "CPU",
        "benchmark done",
        "63.8 bf16",
    ),
    (
        "2",
        "↳ Sample: shapes (annotated) · INT8",
        "shapes Mask R-CNN INT8",
        "shapes val (COCO)",
        "200",
        "CPU",
        "optimize done",
        "–",
    ),
]


def test_projects_list_drops_the_least_useful_columns_first() -> None:
    assert fit_columns(SAMPLE_CELLS, 200).columns == COLUMNS
    # 120 columns: Device and Images go first.
    assert fit_columns(SAMPLE_CELLS, 118).columns == (
        "ID",
        "Name",
        "Model",
        "Dataset",
        "Status",
        "Best FPS",
    )
    # 80 columns: Status and the throughput stay, Model and Dataset go.
    fit = fit_columns(SAMPLE_CELLS, 78)
    assert fit.columns == ("ID", "Name", "Status", "Best FPS") and fit.name_width is None
    assert shown_cells(SAMPLE_CELLS[0], fit) == [
        "1",
        "Sample: shapes (annotated)",
        "benchmark done",
        "63.8 bf16",
    ]
    # Too narrow for whole names: ID, Name and Status stay, names cut with "…".
    narrow = fit_columns(SAMPLE_CELLS, 38)
    assert narrow.columns == ("ID", "Name", "Status") and narrow.name_width == 16
    assert shown_cells(SAMPLE_CELLS[1], narrow) == ["2", "↳ Sample: shape…", "optimize done"]


async def test_projects_list_shows_the_best_throughput_and_fits_the_terminal(
    workspace: Workspace, parent_and_child: tuple[ProjectRecord, ProjectRecord]
) -> None:
    parent, child = parent_and_child
    for fps, precision in ((31.25, "f32"), (63.84, "bf16")):
        workspace.add_result(
            project_id=parent.id,
            kind="benchmark",
            data={"throughput_fps": fps, "precision": precision, "runtime": {}},
        )
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await start_loaded(pilot)
        table = screen.query_one("#projects", DataTable)
        assert [str(c.label) for c in table.ordered_columns] == list(COLUMNS)
        assert table.get_row_at(0)[-2:] == ["ready", "63.8 bf16"]
        assert table.get_row_at(1)[-2:] == ["ready", "–"]
        await pilot.resize_terminal(34, 24)
        await until(pilot, lambda: screen.fit.columns == ("ID", "Name", "Status"))
        labels = [str(c.label) for c in table.ordered_columns]
        assert labels == ["ID", "Name", "Status"]
        assert table.get_row_at(1) == [str(child.id), "↳ Parent INT8", "ready"]
        await pilot.resize_terminal(40, 24)  # room for the throughput, not for the dataset
        await until(pilot, lambda: len(table.ordered_columns) == 4)
        assert [str(c.label) for c in table.ordered_columns] == [*labels, "Best FPS"]
        await pilot.resize_terminal(120, 36)
        await until(pilot, lambda: len(table.ordered_columns) == len(COLUMNS))


async def test_project_header_names_the_processor_and_its_default_precision(
    workspace: Workspace, parent_and_child: tuple[ProjectRecord, ProjectRecord]
) -> None:
    parent, _child = parent_and_child
    machine = machine_info("CPU")
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        await start_loaded(pilot)
        await pilot.press("enter")
        screen = await page_loaded(pilot, parent.id)
        await until(pilot, lambda: screen.machine is not None)
        assert _text(screen.query_one("#cell-device", Static)) == (
            f"CPU\ndefault {machine.default_precision}"
        )
        line = _text(screen.query_one("#project-machine", Static))
        assert line == f"{machine.name} · {machine.features_text}"
        assert machine.name in line and (not machine.cpu_features or "AVX" in line)


async def test_project_page_tabs_and_dataset_details(
    workspace: Workspace, parent_and_child: tuple[ProjectRecord, ProjectRecord]
) -> None:
    parent, _child = parent_and_child
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await start_loaded(pilot)
        await pilot.press("enter")
        screen = await page_loaded(pilot, parent.id)
        tabs = screen.query_one("#tabs", TabbedContent)
        assert tabs.active == "model"
        model = workspace.model(parent.model_id)
        model_info = screen.query_one("#model-info", PropertyTable)
        assert model_info.value_of("Format id") == model.format_id
        assert model_info.value_of("IR version") == str(model.analysis["ir_version"])
        names = model.class_names
        assert len(names) == 80  # COCO classes, from the tiny model's defaults
        assert model_info.value_of("Classes") == (
            f"80: {', '.join(names[:8])}, … (all listed below)"
        )
        assert model_info.value_of("class 79") == names[79]
        assert not screen.check_action("open_parent", ())
        await pilot.press("2")
        assert tabs.active == "dataset"
        dataset_info = screen.query_one("#dataset-info", PropertyTable)
        assert dataset_info.value_of("Images") == "3"
        assert dataset_info.value_of("Sizes (W×H)") == "64x48 ×1, 40x60 ×1, 32x32 ×1"
        assert ("§Skipped files (1)", "") in dataset_info.properties
        assert dataset_info.value_of("notes.txt")
        await pilot.press("3")
        assert tabs.active == "jobs"
        assert screen.query_one("#jobs-empty", Static).display
        # A job started elsewhere (the CLI) shows up, and moves on, without a key press.
        job = workspace.add_job(kind=JobKind.BENCHMARK, project_id=parent.id, params={})
        jobs = screen.query_one("#jobs-table", DataTable)
        await until(pilot, lambda: jobs.row_count == 1)
        assert jobs.display and jobs.get_row_at(0)[1:4] == ["benchmark", "queued", "0%"]
        assert _text(screen.query_one("#cell-status", Static)) == "benchmark queued"
        workspace.update_job(job.id, state=JobState.RUNNING, progress=0.4, stage="Measuring")
        await until(pilot, lambda: jobs.get_row_at(0)[2] == "running")
        assert jobs.get_row_at(0)[1:5] == ["benchmark", "running", "40%", "Measuring"]
        assert _text(screen.query_one("#cell-status", Static)) == "benchmark running"
        workspace.update_job(job.id, state=JobState.FAILED, error="no device\nmore")
        await until(pilot, lambda: jobs.get_row_at(0)[2] == "failed")
        assert jobs.get_row_at(0)[5] == "no device"
        await until(
            pilot, lambda: _text(screen.query_one("#cell-status", Static)) == "benchmark failed"
        )


async def test_command_palettes_offer_projects_and_page_commands(
    workspace: Workspace, parent_and_child: tuple[ProjectRecord, ProjectRecord]
) -> None:
    parent, child = parent_and_child
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        await start_loaded(pilot)
        provider = ProjectCommands(app.screen)
        names = [hit.text async for hit in provider.discover()]
        assert names == [
            "New project",
            "Refresh",
            f"Open project #{parent.id} Parent",
            f"Open project #{child.id} Parent INT8",
        ]
        hits = [hit async for hit in provider.search("INT8")]
        assert [h.text for h in hits] == [f"Open project #{child.id} Parent INT8"]
        hits[0].command()
        await page_loaded(pilot, child.id)

        page_commands = ProjectPageCommands(app.screen)
        names = [hit.text async for hit in page_commands.discover()]
        assert names[:5] == [
            "Show model",
            "Show dataset",
            "Show jobs",
            "Performance",
            "Explore inference configurations",
        ]
        # A child project: compare with and report against its parent, and open it.
        assert names[-3:] == ["Compare projects", "Accuracy report", "Open parent project"]
        hits = [hit async for hit in page_commands.search("dataset")]
        hits[0].command()
        assert app.screen.query_one("#tabs", TabbedContent).active == "dataset"
        hits = [hit async for hit in page_commands.search("parent")]
        hits[0].command()
        await page_loaded(pilot, parent.id)
        names = [hit.text async for hit in ProjectPageCommands(app.screen).discover()]
        assert "Open parent project" not in names


async def test_sample_registration_runs_in_a_worker_and_refreshes(
    workspace: Workspace, image_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model_path = build_omz_maskrcnn(tmp_path / "m" / "model.xml")
    calls: list[int] = []

    def fake_ensure_sample(ws: Workspace) -> ProjectRecord:
        calls.append(threading.get_ident())
        return create_project_from_paths(
            ws, model_path=model_path, dataset_path=image_folder, name="Sample: shapes"
        )

    monkeypatch.setattr(app_module, "ensure_sample", fake_ensure_sample)
    app = SegtuiApp(workspace, register_sample=True)
    async with app.run_test(size=(120, 36)) as pilot:
        await app.workers.wait_for_complete()
        table = app.screen.query_one("#projects", DataTable)
        await until(pilot, lambda: table.row_count == 1)
        assert calls and calls[0] != threading.get_ident()
        assert table.get_row_at(0)[1] == "Sample: shapes"
        assert [n.message for n in app._notifications] == ["Sample projects registered"]


async def test_deploy_dialog_builds_the_package_and_reports_a_clash(
    workspace: Workspace,
    parent_and_child: tuple[ProjectRecord, ProjectRecord],
    tmp_path: Path,
) -> None:
    from textual.widgets import Checkbox, Input

    from segtui.ui.screens.deploy import DeployScreen

    _parent, child = parent_and_child
    target = tmp_path / "out" / "child.tar.gz"
    target.parent.mkdir()
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        app.push_screen(ProjectScreen(child.id))
        await page_loaded(pilot, child.id)
        await pilot.press("d")
        await app.workers.wait_for_complete()  # the dialog reads the project in a thread
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, DeployScreen)
        # A child can carry its parent; the path shows where it goes by default: the
        # workspace's deploy/ folder (the README says so), never the current folder.
        assert not dialog.query_one("#deploy-parent", Checkbox).disabled
        field = dialog.query_one("#deploy-out", Input)
        default = workspace.root / "deploy" / "segtui-deploy-parent-int8.tar.gz"
        assert field.value == str(default)
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert dialog.result is not None and dialog.result.path == default
        assert _text(dialog.query_one("#deploy-status", Static)).startswith(f"✓ Wrote {default}")
        field.value = str(target)
        dialog.query_one("#deploy-parent", Checkbox).value = True
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert dialog.result is not None and dialog.result.with_parent
        assert target.is_file() and target.stat().st_size == dialog.result.size_bytes
        assert _text(dialog.query_one("#deploy-status", Static)).startswith(f"✓ Wrote {target}")
        # Building again to the same file is refused in the dialog, with what to do.
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        status = _text(dialog.query_one("#deploy-status", Static))
        assert status.startswith(f"✗ {target} already exists.") and "remove it first" in status
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, ProjectScreen)


class Recorder(MessagePump):
    """Stands in for the app: keeps what the watcher posts."""

    def __init__(self) -> None:
        super().__init__()
        self.got: list[Message] = []

    def post_message(self, message: Message) -> bool:
        self.got.append(message)
        return True

    def take(self) -> list[tuple[str, int, str, float]]:
        got, self.got = self.got, []
        return [
            (type(m).__name__, m.job.id, m.job.state, m.job.progress)
            for m in got
            if isinstance(m, messages.JobChanged | messages.JobFinished)
        ]


def test_the_watcher_posts_each_change_once_and_the_end_once(workspace: Workspace) -> None:
    app = Recorder()
    watcher = JobWatcher(app, workspace.root)
    job = workspace.add_job(kind=JobKind.BENCHMARK, project_id=None, params={})
    watcher.poll(workspace)
    assert app.take() == [("JobChanged", job.id, "queued", 0.0)]
    watcher.poll(workspace)
    assert app.take() == []  # nothing changed, nothing sent
    # Just claimed: no pid yet, and not long enough ago to count as a stale claim.
    workspace.update_job(job.id, state=JobState.RUNNING, progress=0.5, started_at=time.time())
    watcher.poll(workspace)
    assert app.take() == [("JobChanged", job.id, "running", 0.5)]
    workspace.update_job(job.id, state=JobState.DONE, progress=1.0)
    watcher.poll(workspace)
    assert app.take() == [
        ("JobChanged", job.id, "done", 1.0),
        ("JobFinished", job.id, "done", 1.0),
    ]
    watcher.poll(workspace)
    assert app.take() == []
    # A widget that starts following an ended job gets its state and its end at once.
    watcher.subscribe(Recorder(), job.id)
    watcher.poll(workspace)
    assert app.take() == [
        ("JobChanged", job.id, "done", 1.0),
        ("JobFinished", job.id, "done", 1.0),
    ]


def test_the_watcher_finds_a_dead_job_process_and_ends_its_job(workspace: Workspace) -> None:
    app = Recorder()
    watcher = JobWatcher(app, workspace.root)
    job = workspace.add_job(kind=JobKind.BENCHMARK, project_id=None, params={})
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    workspace.update_job(job.id, state=JobState.RUNNING, pid=gone.pid, started_at=time.time())
    watcher.poll(workspace)
    assert app.take() == [
        ("JobChanged", job.id, "interrupted", 0.0),
        ("JobFinished", job.id, "interrupted", 0.0),
    ]
    assert workspace.job(job.id).state is JobState.INTERRUPTED


def test_job_changed_coalesces_per_job_and_never_swallows_an_end(workspace: Workspace) -> None:
    first = workspace.add_job(kind=JobKind.SWEEP, project_id=None, params={})
    second = workspace.add_job(kind=JobKind.SWEEP, project_id=None, params={})
    older, newer = messages.JobChanged(first), messages.JobChanged(workspace.job(first.id))
    assert older.can_replace(newer)
    assert not older.can_replace(messages.JobChanged(second))
    assert not older.can_replace(messages.JobFinished(first))
    assert not messages.JobFinished(first).can_replace(newer)


async def test_a_page_under_another_screen_catches_up_when_it_is_back_on_top(
    workspace: Workspace, parent_and_child: tuple[ProjectRecord, ProjectRecord]
) -> None:
    parent, _child = parent_and_child
    job = workspace.add_job(kind=JobKind.BENCHMARK, project_id=parent.id, params={})
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        await start_loaded(pilot)
        await pilot.press("enter")
        page = await page_loaded(pilot, parent.id)
        await pilot.press("3")
        jobs = page.query_one("#jobs-table", DataTable)
        await until(pilot, lambda: jobs.row_count == 1)
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        workspace.update_job(job.id, state=JobState.RUNNING, progress=0.7, stage="Measuring")
        await pilot.pause(1.0)  # a few watcher passes
        # Under the help screen the page does not follow (it would make the help repaint).
        assert jobs.get_row_at(0)[2] == "queued"
        await pilot.press("escape")
        await until(pilot, lambda: jobs.get_row_at(0)[2] == "running")
        assert jobs.get_row_at(0)[3:5] == ["70%", "Measuring"]


class MonitorScreen(Screen[None]):
    def __init__(self, job_id: int) -> None:
        super().__init__()
        self.monitor = JobMonitor(job_id)
        self.finished: list[JobRecord] = []

    def compose(self) -> ComposeResult:
        yield self.monitor

    def on_job_monitor_finished(self, event: JobMonitor.Finished) -> None:
        self.finished.append(event.job)


async def test_a_job_monitor_under_another_screen_repaints_when_it_is_back(
    workspace: Workspace,
) -> None:
    job = workspace.add_job(kind=JobKind.SWEEP, project_id=None, params={})
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = MonitorScreen(job.id)
        await app.push_screen(screen)
        monitor = screen.monitor
        await until(pilot, lambda: monitor.job is not None)
        bar = monitor.query_one(ProgressBar)
        stage = monitor.query_one("#job-stage", Label)
        assert str(stage.content) == "sweep · queued behind another job"
        await pilot.press("f1")
        workspace.update_job(job.id, state=JobState.RUNNING, progress=0.25, stage="Cell 1")
        await until(pilot, lambda: monitor.job is not None and monitor.job.progress == 0.25)
        assert bar.progress == 0 and "queued" in str(stage.content)  # kept, not painted
        await pilot.press("escape")
        await until(pilot, lambda: bar.progress == 0.25)
        assert str(stage.content) == "sweep · Cell 1 · estimating…"
        # Its end is never held back: the page under may have to act on it.
        await pilot.press("f1")
        workspace.update_job(job.id, state=JobState.DONE, progress=1.0)
        await until(pilot, lambda: bool(screen.finished))
        assert [j.state for j in screen.finished] == [JobState.DONE]
        assert monitor.has_class("-done") and isinstance(app.screen, HelpScreen)
