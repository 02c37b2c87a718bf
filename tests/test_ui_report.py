"""The accuracy report screen and Visualize, driven with keys on a stored report (no models run)."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pytest
from pilot_wait import settle
from rich_pixels import Pixels
from textual.widgets import DataTable, Input, Label, RadioButton, Static

from segtui.core import jobs
from segtui.core.datasets import import_dataset
from segtui.core.matching import AdvancedRow, BasicRow
from segtui.core.predictions import ImagePrediction, Instance, encode_mask
from segtui.core.report import ReportSummary, compare_with_parent
from segtui.core.settings import REPORT, ReportSchema
from segtui.core.types import JobKind, ReportType
from segtui.core.workspace import JobRecord, ProjectRecord, ResultRecord, Workspace
from segtui.ui.app import SegtuiApp
from segtui.ui.screens import report as report_screen
from segtui.ui.screens.report import ReportScreen
from segtui.ui.screens.visualize import VisualizeScreen
from segtui.ui.widgets.report_table import (
    ReportTable,
    advanced_cells,
    basic_cells,
    cell_text,
    filter_advanced,
    filter_basic,
)
from segtui.ui.widgets.table import Cell

if TYPE_CHECKING:
    from segtui.core.records import ModelAnalysis

SnapCompare = Callable[..., bool]
CLASSES = ["person", "car", "dog"]


@dataclass
class StoredReport:
    parent: ProjectRecord
    child: ProjectRecord
    result: ResultRecord


def _inst(h: int, w: int, y0: int, y1: int, x0: int, x1: int, cls: int, score: float) -> Instance:
    mask = np.zeros((h, w), np.uint8)
    mask[y0:y1, x0:x1] = 1
    return Instance(cls, score, (float(x0), float(y0), float(x1), float(y1)), encode_mask(mask))


def _model(ws: Workspace, tmp: Path, name: str, parent_id: int | None = None) -> int:
    staged = tmp / f"staged-{name}"
    staged.mkdir()
    (staged / "model.xml").write_text("<net/>")
    record = ws.add_model(
        name=name,
        format_id="omz_maskrcnn",
        source_path=str(staged / "model.xml"),
        staged_dir=staged,
        xml_name="model.xml",
        checksum=name,
        analysis=cast("ModelAnalysis", {}),  # no graph: the report never loads the model
        class_names=CLASSES,
        optimized_from=parent_id,
        optimization=None if parent_id is None else {"method": "INT8"},
    )
    return record.id


def store_report(ws: Workspace, images: Path, tmp: Path) -> StoredReport:
    """A parent and an optimized project on `images` (the image_folder fixture) with a stored report.

    a.png: both models agree (person, car). b.jpg: A's person is shifted
    (no match) and B has a dog that A misses. sub/c.bmp: one car each, agreeing.
    """
    dataset = import_dataset(ws, images, name="tiny images")
    parent_model = _model(ws, tmp, "Tiny Mask R-CNN")
    child_model = _model(ws, tmp, "Tiny Mask R-CNN INT8", parent_model)
    parent = ws.add_project(name="Tiny", model_id=parent_model, dataset_id=dataset.id, device="CPU")
    child = ws.add_project(
        name="Tiny INT8",
        model_id=child_model,
        dataset_id=dataset.id,
        device="CPU",
        parent_id=parent.id,
    )
    a = [
        ImagePrediction(
            "a.png",
            64,
            48,
            [_inst(48, 64, 4, 24, 6, 30, 0, 0.91), _inst(48, 64, 28, 44, 36, 60, 1, 0.82)],
        ),
        ImagePrediction("b.jpg", 40, 60, [_inst(60, 40, 20, 50, 14, 38, 0, 0.66)]),
        ImagePrediction("sub/c.bmp", 32, 32, [_inst(32, 32, 2, 20, 2, 20, 1, 0.55)]),
    ]
    b = [
        ImagePrediction(
            "a.png",
            64,
            48,
            [_inst(48, 64, 4, 24, 6, 30, 0, 0.95), _inst(48, 64, 28, 44, 36, 60, 1, 0.88)],
        ),
        ImagePrediction(
            "b.jpg",
            40,
            60,
            [_inst(60, 40, 10, 40, 2, 26, 0, 0.93), _inst(60, 40, 44, 58, 4, 20, 2, 0.71)],
        ),
        ImagePrediction("sub/c.bmp", 32, 32, [_inst(32, 32, 2, 20, 2, 20, 1, 0.6)]),
    ]
    ids = {p.image: n for n, p in enumerate(a, start=1)}
    tables, a_vs_b = compare_with_parent(a, b, CLASSES, ids, threshold=0.1, iou=0.5)
    summary: ReportSummary = {
        "type": ReportType.PARENT,
        "threshold": 0.1,
        "iou": 0.5,
        "precision": "f32",
        "requested_precision": "f32",
        "device": "CPU",
        "project_id": child.id,
        "parent_project_id": parent.id,
        "inference_seconds": 0.5,
        "a_vs_b": a_vs_b.to_json(),
        "totals": tables["totals"],
    }
    result = ws.add_result(
        project_id=child.id, kind="report:parent", data={"summary": summary, **tables}
    )
    folder = ws.root / "reports" / str(result.id)
    folder.mkdir(parents=True)
    (folder / "optimized.json").write_text(json.dumps([p.to_json() for p in a]))
    (folder / "parent.json").write_text(json.dumps([p.to_json() for p in b]))
    return StoredReport(parent, child, result)


@pytest.fixture
def stored(workspace: Workspace, image_folder: Path, tmp_path: Path) -> StoredReport:
    return store_report(workspace, image_folder, tmp_path)


def _column_labels(table: DataTable[Any]) -> list[str]:
    return [str(c.label) for c in table.columns.values()]


def _rows(table: DataTable[Any]) -> list[list[str]]:
    """The table's text, row by row, as shown."""
    return [
        [v.text if isinstance(v, Cell) else str(v) for v in table.get_row_at(i)]
        for i in range(table.row_count)
    ]


async def _open_report(app: SegtuiApp, project_id: int, pilot: Any) -> ReportScreen:
    screen = ReportScreen(project_id)
    await app.push_screen(screen)
    await settle(pilot)  # the report is read in a thread
    return screen


# -- pure table logic ----------------------------------------------------------


def test_cells_show_na_and_sort_figures_as_numbers_with_na_last() -> None:
    assert cell_text(None) == "n/a" and cell_text(0.33333) == "0.3333" and cell_text(3) == "3"
    row: AdvancedRow = {
        "image": "x.png",
        "class_id": 2,
        "class": "dog",
        "a": 10,
        "b": 2,
        "matches": 0,
        "precision": 0.0,
        "ap": None,
        "differs": True,
    }
    cells = advanced_cells(row)
    assert [c.text for c in cells] == ["x.png", "dog", "10", "2", "0", "0", "n/a"]
    assert [c.numeric for c in cells] == [False, False, True, True, True, True, True]
    # 10 sorts after 2 (a number, not text); n/a has no value, so the table puts it last.
    assert cells[2].sort_key > cells[3].sort_key and cells[6].value is None
    basic = basic_cells({"image": "x.png", "a": 1, "b": 0, "matches": 0, "differs": True})
    assert [c.text for c in basic] == ["x.png", "1", "0", "0"]


def test_filter_by_class_and_difference() -> None:
    basic: list[BasicRow] = [
        {"image": "x", "a": 1, "b": 0, "matches": 0, "differs": True},
        {"image": "y", "a": 1, "b": 1, "matches": 1, "differs": False},
    ]
    advanced: list[AdvancedRow] = [
        {
            "image": image,
            "class_id": n,
            "class": name,
            "a": 1,
            "b": 1,
            "matches": 1,
            "precision": 1.0,
            "ap": 1.0,
            "differs": False,
        }
        for n, (image, name) in enumerate((("x", "car"), ("y", "dog")))
    ]
    assert filter_basic(basic, differs_only=True) == basic[:1]
    assert filter_basic(basic, differs_only=False, images={"y"}) == basic[1:]
    assert filter_advanced(advanced, differs_only=False, class_name="car") == advanced[:1]
    assert filter_advanced(advanced, differs_only=True) == []


# -- the report screen -----------------------------------------------------------


async def test_the_report_is_read_in_a_thread_and_the_keys_read_nothing(
    workspace: Workspace, stored: StoredReport, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    readers: list[int] = []
    read = report_screen.read_report

    def held_read(
        ws: Workspace, project_id: int, report_type: ReportType | None, result_id: int | None
    ) -> report_screen.LoadedReport:
        readers.append(threading.get_ident())
        release.wait(10)
        return read(ws, project_id, report_type, result_id)

    monkeypatch.setattr(report_screen, "read_report", held_read)
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        try:
            screen = ReportScreen(stored.child.id)
            await app.push_screen(screen)
            await pilot.pause()
            # The event loop draws the screen while the read is held in its thread.
            summary = screen.query_one("#report-summary", Static)
            assert str(summary.content) == "Loading the report…"
            assert screen.table.row_count == 0
            assert not screen.check_action("create_report", ())
            assert not screen.check_action("toggle_mode", ())
            release.set()
            await settle(pilot)
        finally:
            release.set()
        assert screen.table.row_count == 3 and "Mask AP of A against B" in str(summary.content)
        assert readers and threading.get_ident() not in readers
        # Mode, sort and filters work on what was read: no read at all.
        reads = len(readers)
        await pilot.press("t", "o", "r", "d", "f", "t")
        await settle(pilot)
        assert len(readers) == reads
        assert screen.view.class_name == "car" and screen.view.differs_only


async def test_report_shows_summary_and_toggles_basic_advanced(
    workspace: Workspace, stored: StoredReport
) -> None:
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await _open_report(app, stored.child.id, pilot)
        summary = str(screen.query_one("#report-summary", Static).content)
        metrics = stored.result.data["summary"]["a_vs_b"]
        assert f"Mask AP of A against B {metrics['mask_ap']:.4f}" in summary
        assert "A (optimized) 4 · B (parent) 5 · matches 3 · images 3, 1 where A ≠ B" in summary
        assert "Inference precision f32" in summary
        table = screen.query_one("#report-table", DataTable)
        assert _column_labels(table) == [
            "Image",
            "A. optimized detections",
            "B. parent detections",
            "Matches",
        ]
        assert _rows(table) == [
            ["a.png", "2", "2", "2"],
            ["b.jpg", "1", "2", "0"],
            ["sub/c.bmp", "1", "1", "1"],
        ]
        await pilot.press("t")
        assert _column_labels(table) == [
            "Image",
            "Class",
            "A",
            "B",
            "Matches",
            "Predicted class precision",
            "Predicted class AP",
        ]
        rows = _rows(table)
        assert ["b.jpg", "dog", "0", "1", "0", "n/a", "0"] in rows
        assert ["b.jpg", "person", "1", "1", "0", "0", "0"] in rows
        assert len(rows) == 5
        await pilot.press("t")
        assert table.row_count == 3 and len(table.columns) == 4


async def test_sort_by_matches_then_reverse_and_header_click(
    workspace: Workspace, stored: StoredReport
) -> None:
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await _open_report(app, stored.child.id, pilot)
        table = screen.query_one("#report-table", DataTable)
        assert isinstance(table, ReportTable)
        status = screen.query_one("#table-status", Static)
        for _ in range(4):  # Image, A, B, Matches
            await pilot.press("o")
        assert table.sorted_by == ("matches", False)
        assert [r[0] for r in _rows(table)] == ["b.jpg", "sub/c.bmp", "a.png"]
        labels = _column_labels(table)
        assert labels[3].startswith("Matches ") and labels[:3] == [
            "Image",
            "A. optimized detections",
            "B. parent detections",
        ]  # only the sorted column carries the direction
        assert "sorted by Matches ↑" in str(status.content)
        await pilot.press("r")
        assert [r[0] for r in _rows(table)] == ["a.png", "sub/c.bmp", "b.jpg"]
        assert "sorted by Matches ↓" in str(status.content)
        # Advanced mode keeps the sort; a header click sorts by precision: numbers descending, n/a last.
        await pilot.press("t")
        assert table.sorted_by == ("matches", True)
        column = table.ordered_columns[5]
        table.post_message(DataTable.HeaderSelected(table, column.key, 5, column.label))
        await pilot.pause()
        assert table.sorted_by == ("precision", True)
        assert [r[5] for r in _rows(table)] == ["1", "1", "1", "0", "n/a"]
        assert "sorted by Predicted class precision ↓" in str(status.content)
        table.post_message(DataTable.HeaderSelected(table, column.key, 5, column.label))
        await pilot.pause()
        assert [r[5] for r in _rows(table)] == ["0", "1", "1", "1", "n/a"]
        # After the last column: the report's own order again.
        for _ in range(2):  # AP, then none
            await pilot.press("o")
        assert table.sorted_by is None and "sorted" not in str(status.content)
        assert [r[:2] for r in _rows(table)][:2] == [["a.png", "person"], ["a.png", "car"]]


async def test_filter_differs_and_class(workspace: Workspace, stored: StoredReport) -> None:
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await _open_report(app, stored.child.id, pilot)
        table = screen.query_one("#report-table", DataTable)
        await pilot.press("d")
        assert [r[0] for r in _rows(table)] == ["b.jpg"]
        assert "1 of 3 rows" in str(screen.query_one("#table-status", Static).content)
        await pilot.press("d")
        assert table.row_count == 3
        await pilot.press("f")  # car (classes sorted: car, dog, person)
        assert screen.view.class_name == "car"
        assert [r[0] for r in _rows(table)] == ["a.png", "sub/c.bmp"]
        await pilot.press("t")
        assert {r[1] for r in _rows(table)} == {"car"} and table.row_count == 2
        await pilot.press("f", "f")  # dog, person
        assert [r[:2] for r in _rows(table)] == [["a.png", "person"], ["b.jpg", "person"]]
        await pilot.press("f")  # back to all classes
        assert table.row_count == 5


async def test_export_writes_the_report_files(workspace: Workspace, stored: StoredReport) -> None:
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        await _open_report(app, stored.child.id, pilot)
        await pilot.press("e")
        await settle(pilot)  # written in a thread
        base = f"project{stored.child.id}-parent-report{stored.result.id}"
        folder = workspace.root / "reports"
        names = sorted(p.name for p in folder.glob(f"{base}*"))
        assert names == [f"{base}.json", f"{base}.md", f"{base}_advanced.csv", f"{base}_basic.csv"]
        basic = (folder / f"{base}_basic.csv").read_text().splitlines()
        assert basic == ["image,a,b,matches", "a.png,2,2,2", "b.jpg,1,2,0", "sub/c.bmp,1,1,1"]


async def test_report_without_parent_cannot_be_created(
    workspace: Workspace, stored: StoredReport
) -> None:
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await _open_report(app, stored.parent.id, pilot)
        note = str(screen.query_one("#report-note", Static).content)
        assert "not an optimized project" in note
        assert screen.check_action("create_report", ()) is False
        assert screen.query_one("#type-annotations", RadioButton).disabled  # not annotated
        assert screen.query_one("#report-table", DataTable).row_count == 0


async def test_create_report_follows_the_job_and_loads_the_new_report(
    workspace: Workspace, stored: StoredReport, monkeypatch: pytest.MonkeyPatch
) -> None:
    submitted: list[dict[str, Any]] = []

    def fake_submit(
        ws: Workspace, kind: str, project_id: int | None, params: dict[str, Any]
    ) -> JobRecord:
        # The job "runs" at once: a new report replaces the old one, as create_report does.
        submitted.append(params)
        old = ws.result(stored.result.id)
        data = json.loads(json.dumps(old.data))
        data["basic"] = data["basic"][:1]
        new = ws.add_result(project_id=stored.child.id, kind="report:parent", data=data)
        ws.delete_result(old.id)
        job = ws.add_job(kind=JobKind(kind), project_id=project_id, params=params)
        ws.update_job(job.id, state="done", progress=1.0, result={"result_id": new.id})
        return ws.job(job.id)

    monkeypatch.setattr(jobs, "submit", fake_submit)
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await _open_report(app, stored.child.id, pilot)
        assert screen.query_one("#report-table", DataTable).row_count == 3
        await pilot.press("s")
        await settle(pilot)  # the job is started in a thread, then followed
        for _ in range(50):
            await pilot.pause(0.1)
            if screen.job_id is None and screen.report and screen.report.id != stored.result.id:
                break
        assert submitted == [{"type": "parent", "threshold": 0.1, "iou": 0.5, "precision": "f32"}]
        assert screen.report is not None and screen.report.id != stored.result.id
        assert screen.query_one("#report-table", DataTable).row_count == 1
        assert not screen.query("#report-job")  # the monitor is gone once the report is in


# -- Visualize -------------------------------------------------------------------


async def _until(pilot: Any, check: Callable[[], bool], seconds: float = 5.0) -> None:
    """Let the app run until `check()` holds (drawing happens in thread workers)."""
    for _ in range(int(seconds / 0.05)):
        await pilot.pause(0.05)
        if check():
            return
    raise AssertionError("timed out")


async def _wait_drawn(screen: VisualizeScreen, pilot: Any, image: str) -> None:
    """Until `image` is shown and drawn."""
    await _until(
        pilot,
        lambda: (
            screen.last is not None
            and screen.prepared is not None
            and screen.prepared.name == image
        ),
        seconds=10.0,
    )


async def test_visualize_opens_on_the_row_and_shows_both_panels(
    workspace: Workspace, stored: StoredReport
) -> None:
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await _open_report(app, stored.child.id, pilot)
        screen.query_one("#report-table", DataTable).focus()
        await pilot.press("down", "enter")  # b.jpg
        vis = app.screen
        assert isinstance(vis, VisualizeScreen)
        await _wait_drawn(vis, pilot, "b.jpg")
        assert vis.images == ["a.png", "b.jpg", "sub/c.bmp"]
        for panel in ("optimized", "parent"):
            image = vis.query_one(f"#image-{panel}", Static)
            assert image.display and isinstance(image.content, Pixels)
        assert not vis.query_one("#panel-overlay").display
        a_legend = str(vis.query_one("#legend-optimized", Static).content)
        b_legend = str(vis.query_one("#legend-parent", Static).content)
        assert a_legend == "■ person 0.66 ✗"
        assert b_legend == "■ person 0.93 ✗  ■ dog 0.71 ✗"
        assert (
            str(vis.query_one("#title-optimized", Label).content)
            == "A. Optimized model · 1 instance"
        )
        info = str(vis.query_one("#vis-info", Static).content)
        assert "b.jpg" in info and "(2 of 3)" in info and "threshold 0.50" in info
        assert vis.last is not None and vis.last.disagreement_pixels > 0
        # The panel keeps the image's aspect ratio (40×60 is portrait).
        width, height = vis.last.size
        assert height > width

        await pilot.press("minus")
        await _until(pilot, lambda: vis.last is not None and vis.last.threshold == 0.45)
        assert vis.threshold == 0.45
        # 0.70: the person A found is gone.
        await pilot.press("plus", "plus", "plus", "plus", "plus")
        await _until(pilot, lambda: vis.last is not None and vis.last.threshold == 0.7)
        assert "threshold 0.70" in str(vis.query_one("#vis-info", Static).content)
        assert (
            str(vis.query_one("#legend-optimized", Static).content)
            == "no instances at this threshold"
        )
        assert (
            str(vis.query_one("#legend-parent", Static).content) == "■ person 0.93 ✗  ■ dog 0.71 ✗"
        )

        await pilot.press("m")
        await _until(
            pilot, lambda: isinstance(vis.query_one("#image-overlay", Static).content, Pixels)
        )
        assert vis.query_one("#panel-overlay").display
        assert not vis.query_one("#panel-optimized").display
        assert isinstance(vis.query_one("#image-overlay", Static).content, Pixels)

        await pilot.press("n")
        await _wait_drawn(vis, pilot, "sub/c.bmp")
        assert "(3 of 3)" in str(vis.query_one("#vis-info", Static).content)
        await pilot.press("n")
        await _wait_drawn(vis, pilot, "a.png")
        await pilot.press("p")
        await _wait_drawn(vis, pilot, "sub/c.bmp")
        await pilot.press("escape")
        assert isinstance(app.screen, ReportScreen)


async def test_visualize_follows_the_sorted_table_order_and_redraws_on_resize(
    workspace: Workspace, stored: StoredReport
) -> None:
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        await _open_report(app, stored.child.id, pilot)
        await pilot.press("o", "r")  # image, descending
        await pilot.press("v")
        vis = app.screen
        assert isinstance(vis, VisualizeScreen)
        assert vis.images == ["sub/c.bmp", "b.jpg", "a.png"] and vis.image_name == "sub/c.bmp"
        await _wait_drawn(vis, pilot, "sub/c.bmp")
        assert vis.last is not None
        big = vis.last.size
        await pilot.resize_terminal(80, 24)
        for _ in range(40):
            await pilot.pause(0.05)
            if vis.last is not None and vis.last.size != big:
                break
        small = vis.last.size
        assert small[0] < big[0] and small[1] < big[1]
        assert small[0] == small[1] or abs(small[0] - small[1]) <= 1  # c.bmp is square


def test_report_screen_snapshot(
    snap_compare: SnapCompare, workspace: Workspace, stored: StoredReport
) -> None:
    async def open_report(pilot: Any) -> None:
        await pilot.app.push_screen(ReportScreen(stored.child.id))
        await settle(pilot)

    app = SegtuiApp(workspace, register_sample=False)
    assert snap_compare(app, run_before=open_report, press=["t"], terminal_size=(120, 36))


async def test_visualize_draws_sharp_images_with_a_graphics_widget_and_toggles_back(
    workspace: Workspace, stored: StoredReport
) -> None:
    # The kitty/sixel widgets need a real terminal; textual-image's half-cell widget takes
    # the same code path (PIL image at the working resolution, sized to the panel).
    widget = pytest.importorskip("textual_image.widget")
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = VisualizeScreen(
            stored.child.id, stored.result.id, "a.png", sharp_widget=widget.HalfcellImage
        )
        await app.push_screen(screen)
        await _wait_drawn(screen, pilot, "a.png")
        for _ in range(20):
            await pilot.pause(0.05)
            if screen.query("#sharp-parent"):
                break
        sharp = screen.query_one("#sharp-parent", widget.HalfcellImage)
        assert sharp.display and sharp.image.size == (64, 48)  # every pixel, not two per cell
        assert not screen.query_one("#image-parent", Static).display
        assert screen.check_action("toggle_graphics", ()) is True
        await pilot.press("g")
        for _ in range(20):
            await pilot.pause(0.05)
            if screen.query_one("#image-parent", Static).display:
                break
        assert not sharp.display
        assert isinstance(screen.query_one("#image-parent", Static).content, Pixels)


async def test_visualize_without_terminal_graphics_hides_the_sharp_key(
    workspace: Workspace, stored: StoredReport
) -> None:
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = VisualizeScreen(stored.child.id, stored.result.id, "sub/c.bmp")
        await app.push_screen(screen)
        await _wait_drawn(screen, pilot, "sub/c.bmp")
        assert screen.sharp_widget is None and screen.check_action("toggle_graphics", ()) is False
        assert not screen.query(".panel-sharp")
        info = str(screen.query_one("#vis-info", Static).content)
        assert "(1 of 1)" in info
        await pilot.press("n")  # only one image: stays
        assert screen.image_name == "sub/c.bmp"


async def test_visualize_of_a_report_without_prediction_files_says_what_to_do(
    workspace: Workspace, stored: StoredReport
) -> None:
    import shutil

    shutil.rmtree(workspace.root / "reports" / str(stored.result.id))
    app = SegtuiApp(workspace, register_sample=False)
    messages: list[str] = []
    notify = app.notify

    def capture(message: str, **kwargs: Any) -> None:
        messages.append(message)
        notify(message, **kwargs)

    app.notify = capture  # type: ignore[method-assign]
    async with app.run_test(size=(120, 36)) as pilot:
        screen = VisualizeScreen(stored.child.id, stored.result.id, "a.png")
        await app.push_screen(screen)
        for _ in range(40):
            await pilot.pause(0.05)
            if "Could not" in str(screen.query_one("#vis-info", Static).content):
                break
        assert "Could not load the report." in str(screen.query_one("#vis-info", Static).content)
        assert any("cannot be read" in m and "Create the report again" in m for m in messages)


async def test_annotated_dataset_offers_both_report_types_and_shows_the_ap_drop(
    workspace: Workspace, coco_dataset: Path, tmp_path: Path
) -> None:
    dataset = import_dataset(workspace, coco_dataset, name="coco")
    parent_model = _model(workspace, tmp_path, "M")
    child_model = _model(workspace, tmp_path, "M INT8", parent_model)
    parent = workspace.add_project(
        name="P", model_id=parent_model, dataset_id=dataset.id, device="CPU"
    )
    child = workspace.add_project(
        name="P INT8",
        model_id=child_model,
        dataset_id=dataset.id,
        device="CPU",
        parent_id=parent.id,
    )
    totals = {
        "images": 2,
        "images_without_instances": 0,
        "a": 2,
        "b": 2,
        "matches": 1,
        "images_differ": 1,
    }
    rows = [
        {"image": "x.png", "a": 1, "b": 1, "matches": 1, "differs": False},
        {"image": "y.png", "a": 1, "b": 1, "matches": 0, "differs": True},
    ]
    workspace.add_result(
        project_id=child.id,
        kind="report:parent",
        data={
            "summary": {
                "type": "parent",
                "a_vs_b": {"mask_ap": 0.5, "box_ap": 0.6},
                "precision": "f32",
            },
            "basic": rows,
            "advanced": [],
            "totals": totals,
        },
    )
    workspace.add_result(
        project_id=child.id,
        kind="report:annotations",
        data={
            "summary": {
                "type": "annotations",
                "parent": {"mask_ap": 0.7171, "box_ap": 0.75},
                "optimized": {"mask_ap": 0.7101, "box_ap": 0.74},
                "mask_ap_drop": 0.7,
                "box_ap_drop": 1.0,
                "precision": "f32",
                "threshold": 0.2,
                "iou": 0.6,
            },
            "basic": rows[:1],
            "advanced": [],
            "totals": totals,
        },
    )
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await _open_report(app, child.id, pilot)
        # The newest report opens first: on annotations, with its own settings.
        assert screen.report_type == "annotations"
        note = str(screen.query_one("#report-note", Static).content)
        assert note.startswith("Accuracy evaluation on validation dataset")
        assert not screen.query_one("#type-annotations", RadioButton).disabled
        summary = str(screen.query_one("#report-summary", Static).content)
        assert "Mask AP parent 0.7171 → optimized 0.7101 (drop 0.70 pts)" in summary
        assert "Box AP 0.7500 → 0.7400 (drop 1.00 pts)" in summary
        assert "B (annotations) 2" in summary
        table = screen.query_one("#report-table", DataTable)
        assert _column_labels(table)[2] == "B. annotations detections" and table.row_count == 1
        assert screen.query_one("#report-threshold", Input).value == "0.2"
        screen.query_one("#type-parent", RadioButton).value = True
        await settle(pilot)
        assert screen.report_type == "parent" and table.row_count == 2
        assert "Mask AP of A against B 0.5000" in str(
            screen.query_one("#report-summary", Static).content
        )
        assert "annotated" not in str(screen.query_one("#report-note", Static).content)


async def test_invalid_threshold_is_refused_before_any_job_starts(
    workspace: Workspace, stored: StoredReport, monkeypatch: pytest.MonkeyPatch
) -> None:
    submitted: list[dict[str, Any]] = []
    monkeypatch.setattr(jobs, "submit", lambda *args, **kwargs: submitted.append(kwargs))
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await _open_report(app, stored.child.id, pilot)
        screen.query_one("#report-threshold", Input).value = "1.5"
        screen.query_one("#report-table", DataTable).focus()
        await pilot.press("s")
        await settle(pilot)
        assert submitted == [] and screen.job_id is None
        assert screen.query_one("#report-table", DataTable).row_count == 3  # the old report stays


def test_an_unreadable_image_is_drawn_as_grey_with_its_masks(
    workspace: Workspace, stored: StoredReport, image_folder: Path
) -> None:
    from segtui.ui.screens.visualize import load_report_images, prepare_image

    report = load_report_images(workspace, stored.child.id, stored.result.id)
    assert report.class_names == CLASSES and report.iou == 0.5
    readable = prepare_image(report, "b.jpg")
    assert readable.unreadable is None
    (image_folder / "b.jpg").write_bytes(b"not a jpeg")
    broken = prepare_image(report, "b.jpg")
    assert broken.unreadable is not None
    vis = broken.comparison.render(0.5)
    assert vis.size == (40, 60)
    assert [e.class_name for e in vis.parent_legend] == ["person", "dog"]
    assert vis.disagreement_pixels > 0


def test_visualize_snapshot(
    snap_compare: SnapCompare, workspace: Workspace, stored: StoredReport
) -> None:
    async def open_visualize(pilot: Any) -> None:
        screen = VisualizeScreen(
            stored.child.id, stored.result.id, "b.jpg", images=["a.png", "b.jpg", "sub/c.bmp"]
        )
        await pilot.app.push_screen(screen)
        await _wait_drawn(screen, pilot, "b.jpg")
        await pilot.pause(0.2)

    app = SegtuiApp(workspace, register_sample=False)
    assert snap_compare(app, run_before=open_visualize, terminal_size=(80, 24))


async def test_the_form_takes_its_defaults_and_checks_from_the_report_schema(
    workspace: Workspace, stored: StoredReport, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A changed schema default shows in the form of a project without a stored report.
    monkeypatch.setattr(
        ReportSchema, "threshold", dataclasses.replace(REPORT.threshold, default=0.25)
    )
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await _open_report(app, stored.parent.id, pilot)
        threshold = screen.query_one("#report-threshold", Input)
        assert threshold.value == "0.25"
        assert screen.query_one("#report-iou", Input).value == REPORT.iou.default_text == "0.5"
        assert [b.id for b in screen.query(RadioButton)] == [
            f"type-{choice}" for choice in REPORT.type.choices
        ]
        # As-you-type checks are the schema's: its message, its range.
        threshold.value = "1.5"
        await pilot.pause()
        assert threshold.has_class("-invalid")
        result = threshold.validate(threshold.value)
        assert result is not None and result.failure_descriptions == [
            "Score threshold 1.5 is out of range: use 0–1."
        ]
        threshold.value = "0.3"
        await pilot.pause()
        assert not threshold.has_class("-invalid")
