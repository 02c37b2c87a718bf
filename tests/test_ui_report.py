"""The accuracy report screen, driven with keys on a stored report (no models run).

Visualize, opened from it, is tested in test_ui_visualize.py.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pilot_wait import settle
from stored_report import (
    StoredReport,
    column_labels,
    instance,
    open_report,
    stand_in_model,
    store_report,
    table_rows,
)
from textual.widgets import DataTable, Input, RadioButton, Static
from textual.widgets.data_table import ColumnKey

from segtui.core import jobs
from segtui.core.datasets import import_dataset
from segtui.core.matching import AdvancedRow, BasicRow
from segtui.core.predictions import ImagePrediction
from segtui.core.report import compare_with_parent
from segtui.core.settings import REPORT, ReportSchema
from segtui.core.types import JobKind, ReportType
from segtui.core.workspace import JobRecord, Workspace
from segtui.ui.app import SegtuiApp
from segtui.ui.screens import report as report_screen
from segtui.ui.screens.report import ReportScreen
from segtui.ui.widgets.report_table import (
    ReportTable,
    advanced_cells,
    basic_cells,
    cell_text,
    filter_advanced,
    filter_basic,
)

SnapCompare = Callable[..., bool]
ADVANCED_LABELS = [
    "Image",
    "Class",
    "A",
    "B",
    "Matches",
    "Predicted class precision",
    "Predicted class AP@[.50:.95]",
    "AP50",
]


@pytest.fixture
def stored(workspace: Workspace, image_folder: Path, tmp_path: Path) -> StoredReport:
    return store_report(workspace, image_folder, tmp_path)


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
        "ap50": 0.5,
        "differs": True,
    }
    cells = advanced_cells(row)
    assert [c.text for c in cells] == ["x.png", "dog", "10", "2", "0", "0", "n/a", "0.5"]
    assert [c.numeric for c in cells] == [False, False, True, True, True, True, True, True]
    # 10 sorts after 2 (a number, not text); n/a has no value, so the table puts it last.
    assert cells[2].sort_key > cells[3].sort_key and cells[6].value is None
    # A report stored before AP50 existed has none: "–" (no figure), not "n/a" (B has none).
    del row["ap50"]
    older = advanced_cells(row)[7]
    assert older.text == "–" and older.value is None and older.numeric
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
        assert screen.table.row_count == 3 and "of A against B" in str(summary.content)
        assert readers and threading.get_ident() not in readers
        # Mode, sort and filters work on what was read: no read at all.
        reads = len(readers)
        await pilot.press("t", "s", "S", "d", "f", "t")
        await settle(pilot)
        assert len(readers) == reads
        assert screen.view.class_name == "car" and screen.view.differs_only


async def test_report_shows_summary_and_toggles_basic_advanced(
    workspace: Workspace, stored: StoredReport
) -> None:
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_report(app, stored.child.id, pilot)
        summary = str(screen.query_one("#report-summary", Static).content)
        metrics = stored.result.data["summary"]["a_vs_b"]
        # COCO's AP is over IoU .50:.95, and the screen says so; AP50 beside it.
        assert (
            f"Mask AP@[.50:.95] of A against B {metrics['mask_ap']:.4f} · "
            f"AP50 {metrics['mask_ap50']:.4f}" in summary
        )
        # One line each: side by side, a label and its figure wrap apart at 80 columns.
        assert (
            f"AP50 {metrics['mask_ap50']:.4f}\nBox AP@[.50:.95] of A against B "
            f"{metrics['box_ap']:.4f} · AP50 {metrics['box_ap50']:.4f}\n" in summary
        )
        assert "A (optimized) 5 · B (parent) 6 · matches 4 · images 3, 1 where A ≠ B" in summary
        assert "Inference precision f32" in summary and "score ≥ 0.1 · match IoU ≥ 0.5" in summary
        table = screen.query_one("#report-table", DataTable)
        assert column_labels(table) == [
            "Image",
            "A. optimized detections",
            "B. parent detections",
            "Matches",
        ]
        assert table_rows(table) == [
            ["a.png", "2", "2", "2"],
            ["b.jpg", "1", "2", "0"],
            ["sub/c.bmp", "2", "2", "2"],
        ]
        await pilot.press("t")
        assert column_labels(table) == ADVANCED_LABELS
        rows = table_rows(table)
        # b.jpg: B's dog has nothing of A's to match (AP 0 at any IoU); A's person is
        # shifted: no match at .50 either.
        assert ["b.jpg", "dog", "0", "1", "0", "n/a", "0", "0"] in rows
        assert ["b.jpg", "person", "1", "1", "0", "0", "0", "0"] in rows
        assert ["sub/c.bmp", "dog", "1", "1", "1", "1", "1", "1"] in rows
        assert len(rows) == 6
        await pilot.press("t")
        assert table.row_count == 3 and len(table.columns) == 4


def test_ap50_separates_a_loose_match_from_an_exact_one() -> None:
    """A mask of IoU .64 is found at IoU .50 (AP50 1) but only at 3 of AP@[.50:.95]'s 10
    thresholds (.50, .55, .60)."""
    a = [ImagePrediction("x.png", 40, 40, [instance(40, 40, 0, 16, 0, 25, 0, 0.9)])]
    b = [ImagePrediction("x.png", 40, 40, [instance(40, 40, 0, 25, 0, 25, 0, 0.9)])]
    tables, _ = compare_with_parent(a, b, ["person"], {"x.png": 1}, threshold=0.1, iou=0.5)
    (row,) = tables["advanced"]
    assert row.get("ap50") == 1.0 and row["ap"] == pytest.approx(0.3)
    assert [c.text for c in advanced_cells(row)][6:] == ["0.3", "1"]


async def test_narrow_report_keeps_the_ap_labels(
    workspace: Workspace, stored: StoredReport
) -> None:
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_report(app, stored.child.id, pilot)
        await pilot.press("t")
        table = screen.query_one("#report-table", DataTable)
        assert column_labels(table)[5:] == ["Precision", "AP@[.50:.95]", "AP50"]
        # Every column fits the 80 columns (no horizontal scrolling to reach AP50).
        assert table.virtual_size.width <= table.size.width


async def test_sort_by_matches_then_reverse_and_header_click(
    workspace: Workspace, stored: StoredReport
) -> None:
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_report(app, stored.child.id, pilot)
        table = screen.query_one("#report-table", DataTable)
        assert isinstance(table, ReportTable)
        status = screen.query_one("#table-status", Static)
        for _ in range(4):  # Image, A, B, Matches
            await pilot.press("s")
        assert table.sorted_by == ("matches", False)
        assert [r[0] for r in table_rows(table)] == ["b.jpg", "a.png", "sub/c.bmp"]
        labels = column_labels(table)
        assert labels[3].startswith("Matches ") and labels[:3] == [
            "Image",
            "A. optimized detections",
            "B. parent detections",
        ]  # only the sorted column carries the direction
        assert "sorted by Matches ↑" in str(status.content)
        await pilot.press("S")
        assert [r[0] for r in table_rows(table)] == ["a.png", "sub/c.bmp", "b.jpg"]
        assert "sorted by Matches ↓" in str(status.content)
        # Advanced mode keeps the sort; a header click sorts by precision: numbers descending, n/a last.
        await pilot.press("t")
        assert table.sorted_by == ("matches", True)
        column = table.ordered_columns[5]
        table.post_message(DataTable.HeaderSelected(table, column.key, 5, column.label))
        await pilot.pause()
        assert table.sorted_by == ("precision", True)
        assert [r[5] for r in table_rows(table)] == ["1", "1", "1", "1", "0", "n/a"]
        assert "sorted by Predicted class precision ↓" in str(status.content)
        table.post_message(DataTable.HeaderSelected(table, column.key, 5, column.label))
        await pilot.pause()
        assert [r[5] for r in table_rows(table)] == ["0", "1", "1", "1", "1", "n/a"]
        # After the last column: the report's own order again.
        for _ in range(3):  # AP, AP50, then none
            await pilot.press("s")
        assert table.sorted_by is None and "sorted" not in str(status.content)
        assert [r[:2] for r in table_rows(table)][:3] == [
            ["a.png", "person"],
            ["a.png", "car"],
            ["b.jpg", "person"],
        ]
        assert "▲" not in "".join(column_labels(table)) and "▼" not in "".join(column_labels(table))


async def test_a_sorted_header_widens_its_column_without_measuring_the_rows(
    workspace: Workspace, stored: StoredReport, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_report(app, stored.child.id, pilot)
        await pilot.press("t")
        await pilot.pause()
        table = screen.table
        widths = {key: table.columns[ColumnKey(key)].content_width for key, _ in screen.columns()}
        assert widths["a"] == 1 and widths["image"] == len("sub/c.bmp")
        measured: list[object] = []
        measure = DataTable._update_column_widths

        def counting(self: DataTable[Any], cells: set[Any]) -> None:
            measured.append(cells)
            measure(self, cells)

        monkeypatch.setattr(DataTable, "_update_column_widths", counting)
        for _ in range(3):  # Image, Class, A
            await pilot.press("s")
        await pilot.pause()
        # "A ▲" is wider than its one-digit cells; the column grows to fit it.
        assert table.columns[ColumnKey("a")].content_width == len("A ▲")
        # The column left behind is as wide as its widest cell again.
        assert table.columns[ColumnKey("class")].content_width == len("person")
        assert table.columns[ColumnKey("image")].content_width == len("sub/c.bmp")
        assert measured == []


async def test_filter_differs_and_class(workspace: Workspace, stored: StoredReport) -> None:
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_report(app, stored.child.id, pilot)
        table = screen.query_one("#report-table", DataTable)
        await pilot.press("d")
        assert [r[0] for r in table_rows(table)] == ["b.jpg"]
        assert "1 of 3 rows" in str(screen.query_one("#table-status", Static).content)
        await pilot.press("d")
        assert table.row_count == 3
        await pilot.press("f")  # car (classes sorted: car, dog, person)
        assert screen.view.class_name == "car"
        assert [r[0] for r in table_rows(table)] == ["a.png", "sub/c.bmp"]
        await pilot.press("t")
        assert {r[1] for r in table_rows(table)} == {"car"} and table.row_count == 2
        await pilot.press("f", "f")  # dog, person
        assert [r[:2] for r in table_rows(table)] == [["a.png", "person"], ["b.jpg", "person"]]
        await pilot.press("f")  # back to all classes
        assert table.row_count == 6


async def test_export_writes_the_report_files(workspace: Workspace, stored: StoredReport) -> None:
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        await open_report(app, stored.child.id, pilot)
        await pilot.press("e")
        await settle(pilot)  # written in a thread
        base = f"project{stored.child.id}-parent-report{stored.result.id}"
        folder = workspace.root / "reports"
        names = sorted(p.name for p in folder.glob(f"{base}*"))
        assert names == [f"{base}.json", f"{base}.md", f"{base}_advanced.csv", f"{base}_basic.csv"]
        basic = (folder / f"{base}_basic.csv").read_text().splitlines()
        assert basic == ["image,a,b,matches", "a.png,2,2,2", "b.jpg,1,2,0", "sub/c.bmp,2,2,2"]
        advanced = (folder / f"{base}_advanced.csv").read_text().splitlines()
        assert advanced[0] == "image,class,a,b,matches,precision,ap,ap50"
        assert "b.jpg,dog,0,1,0,n/a,0.0,0.0" in advanced


async def test_report_without_parent_cannot_be_created(
    workspace: Workspace, stored: StoredReport
) -> None:
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_report(app, stored.parent.id, pilot)
        note = str(screen.query_one("#report-note", Static).content)
        assert "not an optimized project" in note
        assert screen.check_action("create_report", ()) is False
        assert screen.query_one("#type-annotations", RadioButton).disabled  # not annotated
        assert screen.query_one("#report-table", DataTable).row_count == 0
        assert (
            screen.visualize_link.session is None
        )  # no report: nothing for Visualize to read ahead


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
        screen = await open_report(app, stored.child.id, pilot)
        assert screen.query_one("#report-table", DataTable).row_count == 3
        first_session = screen.visualize_link.session
        assert first_session is not None and first_session.result_id == stored.result.id
        await pilot.press("ctrl+s")
        await settle(pilot)  # the job is started in a thread, then followed
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            await pilot.pause(0.1)
            if screen.job_id is None and screen.report and screen.report.id != stored.result.id:
                break
        assert submitted == [{"type": "parent", "threshold": 0.1, "iou": 0.5, "precision": "f32"}]
        assert screen.report is not None and screen.report.id != stored.result.id
        assert screen.query_one("#report-table", DataTable).row_count == 1
        assert not screen.query("#report-job")  # the monitor is gone once the report is in
        # A new report: Visualize starts again from its threshold.
        session = screen.visualize_link.session
        assert session is not None and session is not first_session
        assert session.result_id == screen.report.id


def test_report_screen_snapshot(
    snap_compare: SnapCompare, workspace: Workspace, stored: StoredReport
) -> None:
    async def open_report_screen(pilot: Any) -> None:
        await pilot.app.push_screen(ReportScreen(stored.child.id))
        await settle(pilot)

    app = SegtuiApp(workspace, register_sample=False)
    assert snap_compare(app, run_before=open_report_screen, press=["t"], terminal_size=(120, 36))


async def test_annotated_dataset_offers_both_report_types_and_shows_the_ap_drop(
    workspace: Workspace, coco_dataset: Path, tmp_path: Path
) -> None:
    dataset = import_dataset(workspace, coco_dataset, name="coco")
    parent_model = stand_in_model(workspace, tmp_path, "M")
    child_model = stand_in_model(workspace, tmp_path, "M INT8", parent_model)
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
                "parent": {"mask_ap": 0.7171, "mask_ap50": 0.95, "box_ap": 0.75},
                "optimized": {"mask_ap": 0.7101, "mask_ap50": 0.94, "box_ap": 0.74},
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
        screen = await open_report(app, child.id, pilot)
        # The newest report opens first: on annotations, with its own settings.
        assert screen.report_type == "annotations"
        note = str(screen.query_one("#report-note", Static).content)
        assert note.startswith("Accuracy evaluation on validation dataset")
        assert not screen.query_one("#type-annotations", RadioButton).disabled
        summary = str(screen.query_one("#report-summary", Static).content)
        assert (
            "Mask AP@[.50:.95] parent 0.7171 → optimized 0.7101 (drop 0.70 pts) · "
            "AP50 0.9500 → 0.9400" in summary
        )
        # Box AP50 is not in this (older) summary: "–", never a made-up 0.
        assert "Box AP@[.50:.95] 0.7500 → 0.7400 (drop 1.00 pts) · AP50 – → –" in summary
        assert "B (annotations) 2" in summary
        table = screen.query_one("#report-table", DataTable)
        assert column_labels(table)[2] == "B. annotations detections" and table.row_count == 1
        assert screen.query_one("#report-threshold", Input).value == "0.2"
        screen.query_one("#type-parent", RadioButton).value = True
        await settle(pilot)
        assert screen.report_type == "parent" and table.row_count == 2
        assert "Mask AP@[.50:.95] of A against B 0.5000 · AP50 –" in str(
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
        screen = await open_report(app, stored.child.id, pilot)
        screen.query_one("#report-threshold", Input).value = "1.5"
        screen.query_one("#report-table", DataTable).focus()
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert submitted == [] and screen.job_id is None
        assert screen.query_one("#report-table", DataTable).row_count == 3  # the old report stays


async def test_the_form_takes_its_defaults_and_checks_from_the_report_schema(
    workspace: Workspace, stored: StoredReport, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A changed schema default shows in the form of a project without a stored report.
    monkeypatch.setattr(
        ReportSchema, "threshold", dataclasses.replace(REPORT.threshold, default=0.25)
    )
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_report(app, stored.parent.id, pilot)
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
