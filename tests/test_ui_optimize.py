"""Perform → Optimize: the settings page driven with keys, the running job, the child project."""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import write_scene
from pilot_wait import settle
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Label, RadioButton, Static, Switch
from tiny_models import build_omz_maskrcnn_conv, build_yolo_seg_dfl

from segtui.core import jobs
from segtui.core.optimize import OptimizeSettings, optimize_project
from segtui.core.projects import create_project_from_paths
from segtui.core.settings import OPTIMIZE
from segtui.core.types import DropType, Preset
from segtui.core.workspace import ProjectRecord, Workspace
from segtui.ui.app import SegtuiApp
from segtui.ui.screens import optimize as optimize_screen
from segtui.ui.screens.optimize import OptimizeCommands, OptimizeScreen
from segtui.ui.screens.project import ProjectScreen
from segtui.ui.widgets.job_monitor import JobMonitor
from segtui.ui.widgets.optimize_form import (
    OptimizeForm,
    check_max_drop,
    check_subset,
    check_validation_images,
    split_names,
)
from segtui.ui.widgets.optimize_pending import settings_line

SnapCompare = Callable[..., bool]
IMAGES = 4


def _text(widget: Static) -> str:
    return str(widget.content)


@pytest.fixture
def tiny_project(workspace: Workspace, tmp_path: Path) -> ProjectRecord:
    # tiny_models names the layers by type and position, so the snapshot is stable.
    model = build_omz_maskrcnn_conv(tmp_path / "model" / "tiny.xml")
    for i in range(IMAGES):
        write_scene(tmp_path / "images" / f"img{i}.png", (48, 64), i)
    return create_project_from_paths(
        workspace, model_path=model, dataset_path=tmp_path / "images", name="Tiny conv"
    )


async def _wait_for(pilot: Pilot[None], condition: Callable[[], bool], timeout: float) -> None:
    for _ in range(int(timeout / 0.2)):
        if condition():
            return
        await pilot.pause(0.2)
    raise AssertionError(f"timed out after {timeout} s")


async def _open(pilot: Pilot[None], project: ProjectRecord) -> OptimizeScreen:
    """The project page, then its Optimize key: the Optimize page on top of it."""
    app = pilot.app
    assert isinstance(app, SegtuiApp)
    app.show_project(project.id)
    await settle(pilot)
    await pilot.press("o")
    await settle(pilot)  # the project is read, the form mounted, the graph analysed
    screen = app.screen
    assert isinstance(screen, OptimizeScreen) and screen.project_id == project.id
    assert screen.scope is not None
    return screen


def test_field_checks() -> None:
    value, check = check_subset("100", 200)
    assert value == 100.0 and check.ok and check.message == "100 % → 200 of 200 images"
    assert check_subset("7.5 %", 200)[1].message == "7.5 % → 15 of 200 images"
    assert check_subset("1", 3)[1].message == "1 % → 1 of 3 images"  # never zero images
    value, check = check_subset("0", 10)
    assert value is None and not check.ok
    assert check.message == "Subset size 0 is out of range: use above 0 and at most 100 %."
    assert check_subset("abc", 10)[1].message == "Subset size must be a number (got 'abc')."
    assert "finite" in check_subset("nan", 10)[1].message
    assert check_max_drop("0.1", DropType.ABSOLUTE)[0] == 0.1
    assert check_max_drop("10", DropType.RELATIVE) == (
        10.0,
        check_max_drop("10", DropType.RELATIVE)[1],
    )
    assert check_max_drop("10", DropType.RELATIVE)[1].message == (
        "at most 10 % of the parent's mask AP"
    )
    assert check_max_drop("0.05", DropType.ABSOLUTE)[0] is None
    assert check_max_drop("11", DropType.ABSOLUTE)[1].message == (
        "Max accuracy drop 11 is out of range: use 0.1–10 points."
    )
    assert check_validation_images("3", 3)[0] == 3
    assert check_validation_images("4", 3)[1].message == (
        "Validation images 4 is more than the dataset's 3 images."
    )
    assert check_validation_images("0", 3)[1].message == (
        "Validation images 0 is out of range: use 1–10000."
    )
    assert check_validation_images("2.5", 3)[0] is None
    assert split_names(" a, b,,a , c ") == ("a", "b", "c")
    assert split_names("") == ()


def test_form_messages_follow_the_schema(monkeypatch: pytest.MonkeyPatch) -> None:
    # A narrower range in the schema is what the form checks against, and what it says.
    monkeypatch.setattr(type(OPTIMIZE), "max_drop", replace(OPTIMIZE.max_drop, maximum=2.0))
    assert check_max_drop("3", DropType.ABSOLUTE)[1].message == (
        "Max accuracy drop 3 is out of range: use 0.1–2 points."
    )


def test_settings_line() -> None:
    line = settings_line(OptimizeSettings(preset=Preset.MIXED, subset_percent=12.5).to_json())
    assert line.plain == (
        "Default method · Mixed preset · subset 12.5 % · fast bias correction on · "
        "automatic ignored scope on"
    )
    aa = settings_line({"method": "accuracy-aware", "max_drop": 1.0, "drop_type": "relative"})
    assert aa.plain.startswith("AccuracyAware method · Performance preset · subset 100 %")
    assert aa.plain.endswith("max drop 1.0 (relative)")


def _check_scope_shown(screen: OptimizeScreen) -> None:
    """The automatic ignored scope is there before anything starts: counts and names."""
    scope = screen.scope
    assert scope is not None
    names = scope.proposal.names
    assert names
    summary = _text(screen.query_one("#scope-summary", Static))
    assert f"{len(names)} layers stay in floating point" in summary
    assert f"{scope.quantized_compute} compute layers are quantized" in summary
    assert scope.quantized_compute == 4  # 3 convolutions and a MatMul
    for kind, count in scope.proposal.types.items():
        assert f"{kind} {count}" in summary
    table = screen.query_one("#scope-table", DataTable)
    assert table.row_count == len(names)
    assert [table.get_row_at(i)[0] for i in range(table.row_count)] == names


async def _check_subset(
    pilot: Pilot[None], screen: OptimizeScreen, workspace: Workspace, project_id: int
) -> None:
    """Subset: 100 % of 4 images, then typed; the number of images follows as you type."""
    subset_message = screen.query_one("#subset-message", Static)
    assert _text(subset_message) == f"✓ 100 % → {IMAGES} of {IMAGES} images"
    await pilot.press("tab", "tab")
    assert screen.focused is screen.query_one("#subset", Input)
    await pilot.press("5", "0")
    assert _text(subset_message) == f"✓ 50 % → 2 of {IMAGES} images"
    await pilot.press("0", "0")
    assert _text(subset_message) == (
        "✗ Subset size 5000 is out of range: use above 0 and at most 100 %."
    )
    assert subset_message.has_class("-bad")
    assert screen.query_one("#subset", Input).has_class("-invalid")
    await pilot.press("ctrl+s")
    error = screen.query_one("#start-error", Static)
    assert error.display and "✗ Subset size 5000 is out of range" in _text(error)
    assert workspace.jobs(project_id) == []
    await pilot.press("backspace", "backspace")
    assert not subset_message.has_class("-bad")


async def _check_accuracy_aware(pilot: Pilot[None], screen: OptimizeScreen) -> None:
    """AccuracyAware fields: disabled under Default, with the reason shown."""
    aa_fields = screen.query_one("#aa-fields")
    reason = screen.query_one("#aa-reason", Static)
    assert aa_fields.disabled and screen.query_one("#max-drop", Input).is_disabled
    assert reason.display and "Only for AccuracyAware" in _text(reason)
    screen.query_one("#method").focus()
    await pilot.press("right", "enter")
    assert screen.query_one("#method-aa", RadioButton).value
    assert not aa_fields.disabled and not screen.query_one("#max-drop", Input).is_disabled
    assert not reason.display
    metric = _text(screen.query_one("#metric", Static))
    assert "parent model's own predictions" in metric
    assert "Workbench refused" in metric
    validation = screen.query_one("#validation-images", Input)
    assert validation.value == str(IMAGES)  # 50 by default, capped to the dataset
    screen.query_one("#max-drop", Input).focus()
    await pilot.press("2", "0")
    drop_message = screen.query_one("#max-drop-message", Static)
    assert _text(drop_message) == "✗ Max accuracy drop 20 is out of range: use 0.1–10 points."
    await pilot.press("backspace")
    assert _text(drop_message) == "✓ at most 2 points of mask AP"


async def _check_extra_ignores(pilot: Pilot[None], screen: OptimizeScreen) -> None:
    """Extra layers to ignore are checked against the graph; the automatic scope toggles."""
    assert screen.scope is not None
    names = screen.scope.proposal.names
    screen.query_one("#ignore-names", Input).focus()
    await pilot.press(*"nonexistent")
    names_message = screen.query_one("#ignore-names-message", Static)
    assert _text(names_message) == "✗ not in the model: nonexistent"
    screen.query_one("#ignore-names", Input).value = names[0]
    await pilot.pause()
    assert _text(names_message) == "✓ 1 more layer(s) kept in floating point"
    screen.query_one("#ignore-types", Input).value = "Sigmoid, Bogus"
    await pilot.pause()
    assert "no layer of type Bogus" in _text(screen.query_one("#ignore-types-message", Static))

    # Turning the automatic scope off says what that risks; back on restores the counts.
    table = screen.query_one("#scope-table", DataTable)
    auto = screen.query_one("#auto-ignore", Switch)
    auto.focus()
    await pilot.press("enter")
    assert not auto.value
    assert "may quantize the geometry" in _text(screen.query_one("#scope-summary", Static))
    assert table.disabled
    await pilot.press("enter")
    assert auto.value and not table.disabled
    assert "layers stay in floating point" in _text(screen.query_one("#scope-summary", Static))


async def _check_commands(pilot: Pilot[None], screen: OptimizeScreen) -> None:
    """Back to Default with keys, then the same choices as commands in the palette."""
    aa_fields = screen.query_one("#aa-fields")
    reason = screen.query_one("#aa-reason", Static)
    screen.query_one("#method").focus()
    await pilot.press("left", "enter")
    assert aa_fields.disabled and reason.display

    # The same choices are commands in the palette.
    provider = OptimizeCommands(screen)
    names = [hit.text async for hit in provider.discover()]
    assert names[:3] == ["Start optimization", "Method: Default", "Method: AccuracyAware"]
    [hit] = [hit async for hit in provider.search("Method: Accur")]
    hit.command()
    await pilot.pause()
    assert not aa_fields.disabled and not reason.display
    [hit] = [hit async for hit in provider.search("Preset: Mixed")]
    hit.command()
    await pilot.pause()
    assert screen.query_one("#preset-mixed", RadioButton).value
    assert "trade-off" in _text(screen.query_one("#preset-help", Static))


async def test_settings_page_shows_scope_and_checks_as_you_type(
    workspace: Workspace, tiny_project: ProjectRecord
) -> None:
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await _open(pilot, tiny_project)
        assert app.screen is screen
        _check_scope_shown(screen)
        await _check_subset(pilot, screen, workspace, tiny_project.id)
        await _check_accuracy_aware(pilot, screen)
        await _check_extra_ignores(pilot, screen)
        await _check_commands(pilot, screen)
        await pilot.press("escape")
        assert isinstance(app.screen, ProjectScreen)


async def test_form_fields_start_from_the_schema(
    workspace: Workspace, tiny_project: ProjectRecord, monkeypatch: pytest.MonkeyPatch
) -> None:
    schema = type(OPTIMIZE)
    monkeypatch.setattr(schema, "subset_percent", replace(OPTIMIZE.subset_percent, default=50.0))
    monkeypatch.setattr(schema, "max_drop", replace(OPTIMIZE.max_drop, default=1.5))
    monkeypatch.setattr(schema, "preset", replace(OPTIMIZE.preset, default=Preset.MIXED))
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await _open(pilot, tiny_project)
        assert screen.query_one("#subset", Input).value == "50"
        assert _text(screen.query_one("#subset-message", Static)) == "✓ 50 % → 2 of 4 images"
        assert screen.query_one("#max-drop", Input).value == "1.5"
        assert screen.query_one("#preset-mixed", RadioButton).value
        assert not screen.query_one("#preset-performance", RadioButton).value
        assert "trade-off" in _text(screen.query_one("#preset-help", Static))
        buttons = [b.id for b in screen.query("#method RadioButton").results(RadioButton)]
        assert buttons == ["method-default", "method-aa"]
        settings, problems = screen.form.check_all()
        assert problems == []
        assert settings.subset_percent == 50.0 and settings.preset is Preset.MIXED
        assert settings.max_drop == 1.5


async def test_the_int8_graph_switches_reach_the_settings(
    workspace: Workspace, tiny_project: ProjectRecord
) -> None:
    """Dropping standalone quantizers and pooling OMZ ROIs by ROIAlign: on by default, off by key."""
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await _open(pilot, tiny_project)
        settings, _ = screen.form.check_all()
        assert settings.drop_standalone_quantizers and settings.rewrite_roi_extractors
        label = screen.query_one("#rewrite-rois-label", Label)
        assert _text(label) == "OMZ ROI pooling: ROIAlign (same result)"
        for switch_id in ("#drop-standalone", "#rewrite-rois"):
            screen.query_one(switch_id, Switch).focus()
            await pilot.press("enter")
        settings, problems = screen.form.check_all()
        assert problems == []
        assert not settings.drop_standalone_quantizers and not settings.rewrite_roi_extractors
        assert _text(label) == "OMZ ROI pooling: extractor (kept)"
        drop_label = screen.query_one("#drop-standalone-label", Label)
        assert _text(drop_label) == "Standalone FQs: kept (all of them)"


async def test_the_preset_starts_at_the_formats_with_its_reason(
    workspace: Workspace, tmp_path: Path
) -> None:
    model = build_yolo_seg_dfl(tmp_path / "yolo" / "yolo.xml")
    for i in range(IMAGES):
        write_scene(tmp_path / "yolo_images" / f"img{i}.png", (48, 64), i)
    project = create_project_from_paths(
        workspace, model_path=model, dataset_path=tmp_path / "yolo_images", name="Tiny YOLO"
    )
    assert workspace.model(project.model_id).format_id == "yolo-seg"
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await _open(pilot, project)
        reason = screen.query_one("#preset-reason", Static)
        assert screen.query_one("#preset-mixed", RadioButton).value
        assert not screen.query_one("#preset-performance", RadioButton).value
        assert reason.display and _text(reason) == (
            "Mixed: Ultralytics' own INT8 export uses it for YOLO-seg (asymmetric "
            "activations: SiLU outputs are not centred on 0)"
        )
        assert screen.form.check_all()[0].preset is Preset.MIXED
        # The DFL is listed under its own rule, and its conv is not counted as quantized.
        assert screen.scope is not None and screen.scope.quantized_compute == 11
        summary = _text(screen.query_one("#scope-summary", Static))
        assert "non-learned decoding (DFL) 5" in summary
        screen.form.choose("preset-performance")
        await settle(pilot)
        assert _text(reason) == "Performance: your choice (this format's preset is Mixed)"
        assert screen.form.check_all()[0].preset is Preset.PERFORMANCE
        screen.form.choose("preset-mixed")
        await settle(pilot)
        assert _text(reason).startswith("Mixed: Ultralytics' own INT8 export")


async def test_optimize_runs_the_job_and_opens_the_child_project(
    workspace: Workspace, tiny_project: ProjectRecord
) -> None:
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await _open(pilot, tiny_project)
        await pilot.press("tab", "tab", "5", "0")
        assert _text(screen.query_one("#subset-message", Static)) == "✓ 50 % → 2 of 4 images"
        await pilot.press("ctrl+s")
        await settle(pilot)

        # The pending view: the parent link, the settings, the job's monitor.
        assert not screen.query_one("#form-view").display
        assert screen.query_one("#pending-view").display
        assert f"#{tiny_project.id} Tiny conv" in _text(screen.query_one("#pending-parent", Static))
        assert "subset 50 %" in _text(screen.query_one("#pending-settings", Static))
        monitor = screen.query_one(JobMonitor)
        assert screen.focused is monitor
        [job] = workspace.jobs(tiny_project.id)
        assert job.kind == "optimize" and job.params["subset_percent"] == 50.0
        assert monitor.job_id == job.id

        await _wait_for(pilot, lambda: app.screen is not screen, timeout=90)
        await pilot.pause()

        done = workspace.job(job.id)
        assert done.state == "done", (done.error, jobs.log_path(workspace, job.id).read_text())
        assert done.result is not None
        child_id = int(done.result["child_project_id"])
        page = app.screen
        assert isinstance(page, ProjectScreen) and page.project_id == child_id
        assert workspace.project(child_id).parent_id == tiny_project.id
        lineage = page.query_one("#project-lineage", Static)
        assert lineage.display
        assert f"from #{tiny_project.id} Tiny conv" in _text(lineage)
        # The optimize page was replaced: escape goes back to the parent's page.
        assert not any(isinstance(s, OptimizeScreen) for s in app.screen_stack)
        await pilot.press("escape")
        assert isinstance(app.screen, ProjectScreen) and app.screen.project_id == tiny_project.id


async def test_parent_key_during_the_job_and_the_child_on_return(
    workspace: Workspace, tiny_project: ProjectRecord
) -> None:
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await _open(pilot, tiny_project)
        await pilot.press("ctrl+s")
        await settle(pilot)
        [job] = workspace.jobs(tiny_project.id)
        await pilot.press("p")
        await pilot.pause()
        parent_page = app.screen
        assert isinstance(parent_page, ProjectScreen)
        assert parent_page.project_id == tiny_project.id

        # The job ends while the parent's page is on top: the page stays, the user is told.
        await _wait_for(pilot, lambda: screen.child_ready is not None, timeout=90)
        assert app.screen is parent_page
        done = workspace.job(job.id)
        assert done.state == "done" and done.result is not None
        assert screen.child_ready == done.result["child_project_id"]

        # Back on the Optimize page, it gives way to the child project.
        await pilot.press("escape")
        await pilot.pause()
        page = app.screen
        assert isinstance(page, ProjectScreen)
        assert page.project_id == done.result["child_project_id"]
        assert not any(isinstance(s, OptimizeScreen) for s in app.screen_stack)


async def test_failed_job_shows_error_and_log_and_registers_nothing(
    workspace: Workspace, tiny_project: ProjectRecord
) -> None:
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await _open(pilot, tiny_project)
        # The model's weights vanish after the page has read the graph: the job cannot load it.
        workspace.model(tiny_project.model_id).xml_path.with_suffix(".bin").unlink()
        models = len(workspace.models())
        await pilot.press("ctrl+s")
        await _wait_for(pilot, lambda: screen.job_state == "failed", timeout=60)
        await settle(pilot)  # the log is read in a thread

        outcome = screen.query_one("#outcome", Static)
        assert outcome.display and "The optimization failed" in _text(outcome)
        assert "No model was registered" in _text(outcome)
        log = screen.query_one("#log-tail", Static)
        assert log.display and "failed" in _text(log)
        assert len(workspace.models()) == models
        assert workspace.children(tiny_project.id) == []
        assert app.screen is screen
        await pilot.press("e")
        assert screen.query_one("#form-view").display
        assert not screen.query_one("#pending-view").display
        assert not screen.query(JobMonitor)


async def test_reopening_follows_the_job_under_way(
    workspace: Workspace, tiny_project: ProjectRecord
) -> None:
    # A queued job (start=False keeps it from running): the page follows it, not a new form.
    job = jobs.submit(
        workspace,
        "optimize",
        tiny_project.id,
        OptimizeSettings(preset=Preset.MIXED).to_json(),
        start=False,
    )
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        app.show_project(tiny_project.id)
        await settle(pilot)
        await pilot.press("o")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, OptimizeScreen) and screen.job_id == job.id
        assert not screen.query_one("#form-view").display
        assert "Mixed preset" in _text(screen.query_one("#pending-settings", Static))
        assert screen.query_one(JobMonitor).job_id == job.id
        assert not screen.check_action("start", ())
        await pilot.press("c")  # the monitor's cancel key
        await _wait_for(pilot, lambda: screen.job_state == "cancelled", timeout=20)
        assert workspace.job(job.id).state == "cancelled"
        outcome = screen.query_one("#outcome", Static)
        assert outcome.display and "Cancelled" in _text(outcome)
        assert screen.check_action("edit_settings", ())
        await pilot.press("e")
        assert screen.query_one("#form-view").display and screen.check_action("start", ())


async def test_the_page_reads_the_project_in_a_thread_and_mounts_the_form_after(
    workspace: Workspace, tiny_project: ProjectRecord, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    readers: list[int] = []
    load = optimize_screen.load_optimize_page

    def held_load(ws: Workspace, project_id: int) -> optimize_screen.OptimizePage:
        readers.append(threading.get_ident())
        release.wait(10)
        return load(ws, project_id)

    monkeypatch.setattr(optimize_screen, "load_optimize_page", held_load)
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        try:
            screen = OptimizeScreen(tiny_project.id)
            await app.push_screen(screen)
            await pilot.pause()
            # The event loop draws the page while the read is held in its thread.
            assert _text(screen.query_one("#opt-title", Static)) == "Loading the project…"
            assert not screen.query(OptimizeForm) and screen.scope is None
            await pilot.press("ctrl+s")  # nothing to start yet
            assert workspace.jobs(tiny_project.id) == []
            release.set()
            await settle(pilot)
        finally:
            release.set()
        assert readers and threading.get_ident() not in readers
        title = _text(screen.query_one("#opt-title", Static))
        assert title.startswith(f"Optimize project #{tiny_project.id} Tiny conv")
        assert "(not annotated, 4 images)" in title
        assert screen.form.image_count == IMAGES and screen.scope is not None
        assert screen.focused is screen.query_one("#method")


async def test_an_int8_project_cannot_be_optimized_again(
    workspace: Workspace, tiny_project: ProjectRecord, tmp_path: Path
) -> None:
    child = optimize_project(workspace, tiny_project.id, OptimizeSettings(), tmp_path / "work")
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        app.show_project(child.id)
        await settle(pilot)
        screen = OptimizeScreen(child.id)
        await app.push_screen(screen)
        await settle(pilot)
        assert "already INT8" in _text(screen.query_one("#scope-summary", Static))
        await pilot.press("ctrl+s")
        error = screen.query_one("#start-error", Static)
        assert error.display and "optimize its parent instead" in _text(error)
        assert workspace.jobs(child.id) == []


def test_optimize_page_snapshot(
    snap_compare: SnapCompare, workspace: Workspace, tiny_project: ProjectRecord
) -> None:
    async def open_page(pilot: Pilot[None]) -> None:
        await _open(pilot, tiny_project)

    run_before: Callable[[Pilot[None]], Awaitable[None]] = open_page
    app = SegtuiApp(workspace, register_sample=False)
    assert snap_compare(app, terminal_size=(120, 36), run_before=run_before)
