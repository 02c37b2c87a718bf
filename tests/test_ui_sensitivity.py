"""The Sensitivity screen: a stored analysis as a ranked table, selecting groups, re-optimizing
with them kept in float, running the analysis as a job, and the bad states as messages."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from functools import partial
from pathlib import Path

import pytest
from conftest import write_scene
from pilot_screens import table_text, text_of
from pilot_wait import settle, until
from test_ui_keys import footer_keys
from test_ui_layout import on_screen, visible_columns
from textual.pilot import Pilot
from textual.widgets import Input, Static
from tiny_models import build_omz_maskrcnn_conv

from segtui.core import jobs
from segtui.core.models import load_registered
from segtui.core.optimize import OptimizeSettings, optimize_project
from segtui.core.projects import create_project_from_paths
from segtui.core.quantizer_groups import quantizer_groups
from segtui.core.records import JobRecord
from segtui.core.sensitivity import SensitivityResult, SensitivityRow
from segtui.core.settings import SENSITIVITY
from segtui.core.settings_versions import settings_json
from segtui.core.types import JobKind, JobState, ResultKind
from segtui.core.workspace import ProjectRecord, Workspace
from segtui.ui.app import SegtuiApp
from segtui.ui.screens.optimize import OptimizeScreen
from segtui.ui.screens.project import ProjectScreen
from segtui.ui.screens.report import ReportScreen
from segtui.ui.screens.sensitivity import NOTHING_SELECTED, SensitivityScreen
from segtui.ui.widgets.job_monitor import JobMonitor
from segtui.ui.widgets.sensitivity_table import (
    SensitivityTable,
    bar,
    clip,
    headline,
    keep_float_text,
    layout,
    short_name,
)

SnapCompare = Callable[..., bool]
SIZES = pytest.mark.parametrize("size", [(80, 24), (120, 36)], ids=["80x24", "120x36"])
#: The made-up figures of the stored analysis, by rank: (error dB, points gained, ms cost).
FIGURES = [(8.25, 12.5, 0.125), (21.4, 3.25, 0.5), (52.0, -0.1, 0.031)]


@pytest.fixture
def optimized(workspace: Workspace, tmp_path: Path) -> tuple[ProjectRecord, ProjectRecord]:
    """A tiny parent and its real INT8 child, quantized everywhere (no automatic scope)."""
    model = build_omz_maskrcnn_conv(tmp_path / "model" / "tiny.xml")
    for i in range(4):
        write_scene(tmp_path / "images" / f"img{i}.png", (48, 64), i)
    parent = create_project_from_paths(
        workspace, model_path=model, dataset_path=tmp_path / "images", name="Tiny conv"
    )
    settings = OptimizeSettings(auto_ignore=False)
    child = optimize_project(workspace, parent.id, settings, tmp_path / "work")
    return parent, child


def made_up_analysis(ws: Workspace, child: ProjectRecord) -> SensitivityResult:
    """An analysis of the child's real quantizer groups with fixed figures (a snapshot needs
    them: measured ones vary in their last digits); the first two groups are recommended."""
    loaded = load_registered(ws.model(child.model_id))
    groups = quantizer_groups(loaded.model)
    assert len(groups) == 3
    order = [groups[1], groups[2], groups[0]]
    rows: list[SensitivityRow] = []
    for rank, (group, (error, change, cost)) in enumerate(zip(order, FIGURES, strict=True), 1):
        # Sorted: the graph walk may list a group's layers in another order from run to run.
        fed = sorted(zip(group.fed_layers, group.fed_types, strict=True))
        rows.append(
            {
                "id": group.id,
                "rank": rank,
                "quantizers": sorted(group.quantizers),
                "fed_layers": [name for name, _ in fed],
                "fed_types": [kind for _, kind in fed],
                "op_types": list(dict.fromkeys(kind for _, kind in fed)),
                "compute_layers": group.compute_layers,
                "error_db": error,
                "clipped": 0.01 * rank,
                "no_data": False,
                "range_collapsed": False,
                "measured": True,
                "metric_change": change,
                "float_ms": cost + 0.05,
                "int8_ms": 0.05,
                "cost_ms": cost,
                "chosen": rank <= 2,
                "reason": "metric" if rank <= 2 else "",
            }
        )
    assert child.parent_id is not None
    parent = ws.project(child.parent_id)
    return {
        "version": 1,
        "project_id": child.id,
        "parent_project_id": parent.id,
        "model_id": child.model_id,
        "parent_model_id": parent.model_id,
        "metric": "mask_ap_vs_parent",
        "metric_label": "mask AP vs the parent's predictions",
        "settings": {"images": 4, "top": 3, "score_images": 2, "keep": 2},
        "images": 4,
        "score_images": 2,
        "parent_metric": 0.81,
        "int8_metric": 0.1,
        "baseline_metric": 0.1,
        "candidates_metric": 0.805,
        "chosen_metric": 0.8,
        "refitted": 0,
        "quantizers": 5,
        "body_quantizers": 0,
        "groups": rows,
        "chosen": [rows[0]["id"], rows[1]["id"]],
        "evaluations": 6,
        "seconds": {"score": 0.5, "metric": 40.0, "profile": 2.0, "total": 72.5},
        "profile": {"float_ms": 1.5, "int8_ms": 0.9},
        "accuracy_settings": settings_json(ws.model(child.model_id), loaded.model),
    }


@pytest.fixture
def stored(
    workspace: Workspace, optimized: tuple[ProjectRecord, ProjectRecord]
) -> tuple[ProjectRecord, int, SensitivityResult]:
    """The INT8 child, the result id of its stored analysis, and the analysis."""
    _parent, child = optimized
    data = made_up_analysis(workspace, child)
    record = workspace.add_result(project_id=child.id, kind=ResultKind.SENSITIVITY, data=data)
    return child, record.id, data


@pytest.fixture
def queued_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Jobs are queued but never started: what a test checks is the job row, not its run."""
    monkeypatch.setattr(jobs, "submit", partial(jobs.submit, start=False))
    yield


async def opened(pilot: Pilot[None], project_id: int) -> SensitivityScreen:
    """The project page, then its `w` key: the Sensitivity screen, loaded."""
    app = pilot.app
    assert isinstance(app, SegtuiApp)
    app.show_project(project_id)
    await until(
        pilot, lambda: isinstance(app.screen, ProjectScreen) and app.screen.page is not None
    )
    await pilot.press("w")
    await settle(pilot)
    screen = app.screen
    assert isinstance(screen, SensitivityScreen) and screen.page is not None
    return screen


def notes(app: SegtuiApp) -> list[str]:
    return [str(n.message) for n in app._notifications]


def optimize_jobs(ws: Workspace, project_id: int) -> list[JobRecord]:
    return [j for j in ws.jobs(project_id) if j.kind == JobKind.OPTIMIZE]


# -- pieces --------------------------------------------------------------------------------


def test_names_bars_and_the_link_text() -> None:
    assert short_name("Relu_5/fq_output_0") == "Relu_5"
    assert short_name("__module.model.22.cv2.0.0.conv/aten::_convolution/Convolution") == (
        "model.22.cv2.0.0.conv"
    )
    assert short_name("backbone/conv1/fq_input_1") == "backbone/conv1"
    assert clip("model.22.cv2.0.0.conv", 10) == "….0.0.conv"
    assert clip("Multiply,ReduceSum", 9, keep_end=False) == "Multiply…"
    assert clip("short", 9) == "short"
    assert bar(10.0, 10.0, 6) == "██████"
    assert bar(5.0, 10.0, 6) == "███"
    assert bar(1.0, 10.0, 6) == "▋"  # 0.6 cells: five eighths
    assert bar(-1.0, 10.0, 6) == "" and bar(None, 10.0, 6) == ""
    assert keep_float_text(None) == ""
    assert keep_float_text({"method": "default"}) == ""
    link = {"result_id": 12, "project_id": 4, "groups": [3, 7], "names": ["a", "b"]}
    assert keep_float_text({"keep_float_from": link}) == (
        "2 groups kept in float (sensitivity analysis #12 of project #4)"
    )


def test_the_layout_gives_up_op_types_then_the_error_when_narrow(
    workspace: Workspace, stored: tuple[ProjectRecord, int, SensitivityResult]
) -> None:
    rows = stored[2]["groups"]
    wide, _names, wide_bar = layout(120, rows)
    assert wide == [
        "mark",
        "rank",
        "group",
        "ops",
        "layers",
        "error",
        "change",
        "bar",
        "cost",
        "chosen",
    ]
    narrow, names, narrow_bar = layout(80, rows)
    assert "ops" not in narrow and {"group", "layers", "change", "bar", "cost"} <= set(narrow)
    assert narrow_bar < wide_bar and min(names[:2]) >= 10


def test_the_headline_names_the_figures_and_what_was_left_out(
    workspace: Workspace, stored: tuple[ProjectRecord, int, SensitivityResult]
) -> None:
    _child, result_id, data = stored
    first, second = headline(result_id, data).plain.split("\n")
    assert (
        first
        == f"Analysis #{result_id} · 3 quantizer groups · 6 evaluations on 4 images in 1 min 12 s"
    )
    assert second == (
        "mask AP vs the parent's predictions: parent 0.8100 · INT8 0.1000 · "
        "recommended 2 in float 0.8000"
    )
    none: SensitivityResult = {**data, "chosen": [], "chosen_metric": None, "body_quantizers": 2}
    text = headline(result_id, none).plain
    assert "· 2 inside If/Loop bodies not analysed\n" in text
    assert text.endswith("INT8 0.1000 · no group recommended")


# -- the screen ----------------------------------------------------------------------------


async def test_select_two_rows_and_reoptimize_keeps_their_layers_in_float(
    workspace: Workspace,
    stored: tuple[ProjectRecord, int, SensitivityResult],
    queued_only: None,
) -> None:
    child, result_id, data = stored
    assert child.parent_id is not None
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await opened(pilot, child.id)
        table = screen.table
        assert table.row_keys == [str(r["id"]) for r in data["groups"]]
        # The first and third rows (rank order), with space.
        await pilot.press("space", "down", "down", "space")
        first, third = data["groups"][0], data["groups"][2]
        assert table.marked == {first["id"], third["id"]}
        assert [row[0] for row in table_text(table)] == ["✓", "·", "✓"]
        status = text_of(screen, "#sens-status")
        layers = len({*first["fed_layers"], *third["fed_layers"]})
        assert f"2 selected: {layers} layers, +0.16 ms per image in float" in status
        await pilot.press("o")
        await until(pilot, lambda: isinstance(app.screen, OptimizeScreen))
        await settle(pilot)

        [job] = optimize_jobs(workspace, child.parent_id)
        names = job.params["ignore_names"]
        assert isinstance(names, list)
        assert set(first["fed_layers"]) | set(third["fed_layers"]) <= set(names)
        assert set(data["groups"][1]["fed_layers"]).isdisjoint(names)
        assert job.params["auto_ignore"] is False  # the analysed child's recipe
        assert job.params["keep_float_from"] == {
            "result_id": result_id,
            "project_id": child.id,
            "groups": sorted([first["id"], third["id"]]),
            "names": [n for n in names if n in {*first["fed_layers"], *third["fed_layers"]}],
        }
        # The Optimize page of the parent follows it (and opens the new child when done).
        optimize = app.screen
        assert isinstance(optimize, OptimizeScreen)
        assert optimize.project_id == child.parent_id and optimize.job_id == job.id
        assert any(f"Optimization job {job.id}" in n for n in notes(app))


async def test_a_selects_the_recommended_set_and_again_nothing(
    workspace: Workspace, stored: tuple[ProjectRecord, int, SensitivityResult]
) -> None:
    child, _result_id, data = stored
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await opened(pilot, child.id)
        await pilot.press("a")
        assert screen.table.marked == set(data["chosen"])
        assert [row[-1] for row in table_text(screen.table)] == ["★", "★", ""]
        await pilot.press("a")
        assert screen.table.marked == set()


async def test_sorting_by_a_column_changes_the_order(
    workspace: Workspace, stored: tuple[ProjectRecord, int, SensitivityResult]
) -> None:
    child, _result_id, data = stored
    ids = [str(r["id"]) for r in data["groups"]]
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await opened(pilot, child.id)
        table = screen.table
        assert table.row_keys == ids  # rank order: 8.25, 21.4, 52.0 dB
        await pilot.press(*["right"] * 5)  # mark, rank, group, ops, layers → Error dB
        await pilot.press("s")
        assert table.row_keys == ids[::-1]  # the largest error score (the least error) first
        assert "sorted by Error dB ↓" in text_of(screen, "#sens-status")
        await pilot.press("right", "right", "right", "s")  # Cost ms: 0.5, 0.125, 0.031
        assert table.row_keys == [ids[1], ids[0], ids[2]]
        await pilot.press("S")
        assert table.row_keys == [ids[2], ids[0], ids[1]]
        # The detail under the table follows the cursor's row.
        detail = text_of(screen, "#sens-detail")
        cursor = table.cursor_group()
        assert cursor is not None and detail.startswith(f"G{cursor['id']} error ")
        assert all(name in detail for name in cursor["fed_layers"])


async def test_reoptimize_without_a_selection_says_what_to_do(
    workspace: Workspace, stored: tuple[ProjectRecord, int, SensitivityResult]
) -> None:
    child, _result_id, _data = stored
    assert child.parent_id is not None
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await opened(pilot, child.id)
        await pilot.press("o")
        await settle(pilot)
        assert app.screen is screen
        assert any(NOTHING_SELECTED in n for n in notes(app))
        assert optimize_jobs(workspace, child.parent_id) == []


async def test_an_analysis_whose_parent_is_gone_ends_in_a_message(
    workspace: Workspace, stored: tuple[ProjectRecord, int, SensitivityResult]
) -> None:
    child, _result_id, data = stored
    orphan = {**data, "parent_project_id": 999}
    workspace.add_result(project_id=child.id, kind=ResultKind.SENSITIVITY, data=orphan)
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await opened(pilot, child.id)
        await pilot.press("a", "o")
        await until(pilot, lambda: any("was deleted" in n for n in notes(app)))
        assert app.screen is screen and app.crash is None
        assert not screen.submitting and screen.check_action("reoptimize", ())
        assert all(not optimize_jobs(workspace, p.id) for p in workspace.projects())


async def test_a_project_that_is_not_optimized_is_told_so(
    workspace: Workspace, optimized: tuple[ProjectRecord, ProjectRecord], queued_only: None
) -> None:
    parent, _child = optimized
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = SensitivityScreen(parent.id)
        await app.push_screen(screen)
        await settle(pilot)
        assert "not an optimized" in text_of(screen, "#sens-note")
        assert not screen.table.display
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert any("not an optimized" in n for n in notes(app))
        assert workspace.jobs(parent.id) == []


async def test_ctrl_s_starts_an_analysis_job_with_the_form_settings(
    workspace: Workspace, optimized: tuple[ProjectRecord, ProjectRecord], queued_only: None
) -> None:
    _parent, child = optimized
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await opened(pilot, child.id)
        assert "No sensitivity analysis of this project yet" in text_of(screen, "#sens-summary")
        assert (
            screen.query_one("#sens-field-images", Input).value == SENSITIVITY.images.default_text
        )
        screen.query_one("#sens-field-images", Input).value = "2"
        screen.query_one("#sens-field-keep", Input).value = "0"  # out of range: refused
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert workspace.jobs(child.id) == []
        assert any("Groups kept 0 is out of range" in n for n in notes(app))

        screen.query_one("#sens-field-keep", Input).value = "3"
        await pilot.press("ctrl+s")
        await settle(pilot)
        [job] = workspace.jobs(child.id)
        assert job.kind == JobKind.SENSITIVITY
        assert job.params == {"images": 2, "top": 24, "score_images": 8, "keep": 3}
        monitor = screen.query_one(JobMonitor)
        assert monitor.job_id == job.id and screen.focused is monitor
        assert not screen.check_action("start", ())
        assert "The analysis is running" in text_of(screen, "#sens-summary")
        await pilot.press("c")  # the monitor's cancel: a queued job ends at once
        await until(pilot, lambda: not screen.query(JobMonitor))
        await settle(pilot)
        assert workspace.job(job.id).state == JobState.CANCELLED
        assert screen.check_action("start", ())
        assert "No sensitivity analysis of this project yet" in text_of(screen, "#sens-summary")


async def test_the_analysis_job_runs_and_its_table_is_shown_and_reopened(
    workspace: Workspace, optimized: tuple[ProjectRecord, ProjectRecord]
) -> None:
    _parent, child = optimized
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await opened(pilot, child.id)
        for name, value in (("images", "2"), ("top", "3"), ("score_images", "2"), ("keep", "2")):
            screen.query_one(f"#sens-field-{name}", Input).value = value
        await pilot.press("ctrl+s")
        await until(pilot, lambda: screen.result is not None, timeout=180)
        await settle(pilot)
        [job] = workspace.jobs(child.id)
        done = workspace.job(job.id)
        assert done.state == JobState.DONE, done.error
        assert screen.result is not None and screen.table.row_count == len(screen.result["groups"])
        assert screen.result_id == (done.result or {}).get("result_id")
        assert f"Analysis #{screen.result_id}" in text_of(screen, "#sens-summary")
        assert not screen.query(JobMonitor)
        await pilot.press("escape")
        # Reopened: the stored analysis at once, no job.
        await pilot.press("w")
        await settle(pilot)
        again = app.screen
        assert isinstance(again, SensitivityScreen) and again is not screen
        assert again.result_id == screen.result_id and again.table.row_count > 0
        assert again.job_id is None


async def test_the_report_and_the_new_child_link_to_the_analysis(
    workspace: Workspace, stored: tuple[ProjectRecord, int, SensitivityResult]
) -> None:
    child, result_id, data = stored
    link = {"result_id": result_id, "project_id": child.id, "groups": data["chosen"], "names": []}
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        report = ReportScreen(child.id)
        await app.push_screen(report)
        await settle(pilot)
        await pilot.press("w")  # "why is accuracy lost?"
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, SensitivityScreen) and screen.project_id == child.id
        assert screen.result_id == result_id
    text = keep_float_text({"keep_float_from": link})
    assert (
        text == f"2 groups kept in float (sensitivity analysis #{result_id} of project #{child.id})"
    )


async def test_a_child_made_from_an_analysis_names_it_on_its_page(
    workspace: Workspace, stored: tuple[ProjectRecord, int, SensitivityResult], tmp_path: Path
) -> None:
    child, result_id, data = stored
    assert child.parent_id is not None
    from segtui.core.keep_float import keep_float_plan

    plan = keep_float_plan(workspace, result_id, group_ids=data["chosen"])
    made = optimize_project(
        workspace,
        plan.parent_project_id,
        plan.settings,
        tmp_path / "again",
        keep_float_from=plan.link,
    )
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        app.show_project(made.id)
        await until(
            pilot, lambda: isinstance(app.screen, ProjectScreen) and app.screen.page is not None
        )
        lineage = str(app.screen.query_one("#project-lineage", Static).render())
        assert (
            f"2 groups kept in float (sensitivity analysis #{result_id} of project #{child.id})"
        ) in lineage


# -- fit -----------------------------------------------------------------------------------


@SIZES
async def test_the_table_fits_without_scrolling_sideways(
    workspace: Workspace,
    stored: tuple[ProjectRecord, int, SensitivityResult],
    size: tuple[int, int],
) -> None:
    child, _result_id, _data = stored
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=size) as pilot:
        screen = await opened(pilot, child.id)
        await pilot.pause()
        table = screen.query_one(SensitivityTable)
        assert on_screen(table, size)
        assert table.max_scroll_x == 0
        shown = visible_columns(table)
        assert {"✓", "#", "Group", "Layers", "Δ pts", "Gain", "Cost ms", "★"} <= set(shown), shown
        assert table.row_count == 3 and table.region.height >= 5
        for selector in ("#sens-summary", "#sens-status", "#sens-detail", "#sens-form"):
            assert on_screen(screen.query_one(selector), size), selector
        await until(pilot, lambda: bool(footer_keys(screen)[0]))
        keys, cut = footer_keys(screen)
        assert cut == 0 and keys[-1] == "f1 More", keys
        assert {"^s Analyse", "space Select", "a Recommended", "o Re-optimize"} <= set(keys)


@SIZES
def test_sensitivity_screen_snapshot(
    snap_compare: SnapCompare,
    workspace: Workspace,
    stored: tuple[ProjectRecord, int, SensitivityResult],
    size: tuple[int, int],
) -> None:
    child, _result_id, _data = stored

    async def open_screen(pilot: Pilot[None]) -> None:
        screen = await opened(pilot, child.id)
        await pilot.press("a")
        await pilot.pause()
        assert screen.table.marked

    run_before: Callable[[Pilot[None]], Awaitable[None]] = open_screen
    app = SegtuiApp(workspace, register_sample=False)
    assert snap_compare(app, terminal_size=size, run_before=run_before)
