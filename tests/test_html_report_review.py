"""The HTML report's review fixes: damaged stored files, the annotations report's panels, the
hatched disagreement, labels, print and long tables (tests/test_html_report.py has the rest).

Each test here failed before its fix: a predictions file of another shape ended in
"Unexpected error", masks that cannot be decoded too; an annotations report drew the
parent model as B under a caption counting the annotations; the disagreement was solid
magenta (a magenta object looks the same); printed pages repeated empty table headers
and put one image per page; long class names ran out of their panel; a table of
thousands of rows laid them all out on each sort.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import report_builder as build
from browser import browser, find_chromium
from cli_run import run_cli
from stored_report import CLASSES, SETUP, StoredReport, open_report, predictions, store_report
from test_html_report import add_benchmarks, parse

from segtui.core.accuracy import coco_image_id
from segtui.core.datasets import import_dataset
from segtui.core.html_images import STRIPE_LIGHT, STRIPE_PERIOD, hatch
from segtui.core.html_page import Section, page
from segtui.core.html_report import build_html_report, html_report_path, write_html_report
from segtui.core.html_tables import ROW_LIMIT, tables_html
from segtui.core.matching import AdvancedRow, BasicRow, compare_predictions
from segtui.core.report import ReportSummary, report_data
from segtui.core.types import ReportType
from segtui.core.visualize import DISAGREE_COLOR
from segtui.core.workspace import ResultRecord, Workspace
from segtui.ui.app import SegtuiApp

CHROMIUM = find_chromium()
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium here (CI's .ci/run installs it)"
)


@pytest.fixture
def stored(workspace: Workspace, image_folder: Path, tmp_path: Path) -> StoredReport:
    report = store_report(workspace, image_folder, tmp_path)
    add_benchmarks(workspace, report)
    return report


def _figure_html(html: str, image: str) -> str:
    start = html.index(f'data-image="{image}"')
    return html[start : html.index("</figure>", start)]


# -- damaged stored files --------------------------------------------------------------


@pytest.mark.parametrize(
    ("damage", "content"),
    [
        ("missing", None),
        ("truncated", b'[{"image": "a.png", "wid'),
        ("an object", b'{"x": 1}'),
        ("numbers", b"[1, 2]"),
        ("not utf-8", b"\xff\xfe"),
    ],
)
def test_damaged_predictions_still_write_the_page_and_say_why_there_is_no_image(
    workspace: Workspace,
    stored: StoredReport,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    damage: str,
    content: bytes | None,
) -> None:
    parent_file = workspace.root / "reports" / str(stored.result.id) / "parent.json"
    if content is None:
        parent_file.unlink()
    else:
        parent_file.write_bytes(content)
    out = tmp_path / "report.html"
    argv = ["report", str(stored.child.id), "--stored", "--html", str(out)]
    code, text = run_cli(capsys, [*argv, "--workspace", str(workspace.root)])
    assert code == 0, (damage, text)
    assert "Unexpected error" not in text and "Traceback" not in text
    why = f"The stored predictions of report {stored.result.id} cannot be read"
    assert f"no image: {why}" in text
    html = out.read_text("utf-8")
    images = html[html.index('id="images"') : html.index('id="tables"')]
    assert why in images and "Create the report again." in images
    assert "<img" not in html
    # The rest of the page is there, from the database.
    assert parse(html).figure_text["totals.images_differ"] == "1"
    assert 'id="pairs-table"' in html and 'id="advanced-table"' in html


async def test_h_without_readable_predictions_saves_the_page_and_warns(
    workspace: Workspace, image_folder: Path, tmp_path: Path
) -> None:
    report = store_report(workspace, image_folder, tmp_path)
    (workspace.root / "reports" / str(report.result.id) / "optimized.json").write_text("[1]")
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        await open_report(app, report.child.id, pilot)
        await pilot.press("H")
        await app.workers.wait_for_complete()
        await pilot.pause()
        path = html_report_path(workspace, report.child.id, report.result.id)
        assert path.is_file()
        saved = [n for n in app._notifications if str(path) in n.message]
        assert len(saved) == 1 and saved[0].severity == "warning"
        assert "no image: The stored predictions of report" in saved[0].message


def test_masks_that_cannot_be_decoded_leave_that_image_undrawn(
    workspace: Workspace, stored: StoredReport
) -> None:
    parent_file = workspace.root / "reports" / str(stored.result.id) / "parent.json"
    stored_predictions = json.loads(parent_file.read_text())
    for image in stored_predictions:
        for instance in image["instances"]:
            instance["rle"] = {"size": [image["height"], image["width"]], "counts": "!!bad"}
    parent_file.write_text(json.dumps(stored_predictions))
    report = build_html_report(workspace, stored.result.id)
    figure = _figure_html(report.html, "b.jpg")
    assert 'class="pair undrawn"' in report.html
    assert "not drawn: its stored masks cannot be decoded" in figure
    assert "A 1 · B 2 · 0 matches · 3 unmatched" in figure and "<img" not in figure


# -- the disagreement, hatched ---------------------------------------------------------


def test_the_disagreement_is_hatched_in_magenta_and_white_stripes() -> None:
    plain = np.full((12, 12, 3), 90, np.uint8)
    highlighted = plain.copy()
    painted = (0.15 * 90 + 0.85 * np.asarray(DISAGREE_COLOR)).round().astype(np.uint8)
    highlighted[2:8, 3:9] = painted
    out = hatch(plain, highlighted)
    assert (out[:2] == plain[:2]).all() and (out[8:] == plain[8:]).all()
    for y in range(2, 8):
        for x in range(3, 9):
            dark = (y + x) % STRIPE_PERIOD < STRIPE_PERIOD // 2
            assert tuple(out[y, x]) == (DISAGREE_COLOR if dark else STRIPE_LIGHT), (y, x)


def test_the_drawn_panels_and_the_key_show_the_hatching(
    workspace: Workspace, stored: StoredReport
) -> None:
    html = build_html_report(workspace, stored.result.id).html
    images = html[html.index('id="images"') : html.index('id="tables"')]
    assert 'class="swatch hatch"' in images and "hatched: pixels where the two disagree" in images
    assert "repeating-linear-gradient(135deg, rgb(255,0,255)" in images


# -- an annotations report ---------------------------------------------------------------


def _annotated_report(ws: Workspace, images: Path, tmp: Path) -> ResultRecord:
    """An annotations report on `images` whose annotations are B's predictions: the parent
    model agrees with them everywhere, A does not on b.jpg."""
    a, b = predictions()
    coco_images: list[dict[str, object]] = []
    annotations: list[dict[str, object]] = []
    for n, prediction in enumerate(b, start=1):
        size = {"width": prediction.width, "height": prediction.height}
        coco_images.append({"id": n, "file_name": prediction.image, **size})
        for inst in prediction.instances:
            x0, y0, x1, y1 = inst.box
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": n,
                    "category_id": inst.class_id + 1,
                    "segmentation": dict(inst.rle),
                    "area": (x1 - x0) * (y1 - y0),
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "iscrowd": 0,
                }
            )
    categories = [{"id": n + 1, "name": name} for n, name in enumerate(CLASSES)]
    truth_file = tmp / "truth.json"
    document = {"images": coco_images, "annotations": annotations, "categories": categories}
    truth_file.write_text(json.dumps(document))
    dataset = import_dataset(ws, truth_file, images_dir=images, name="tiny val")
    ids = {im.path: coco_image_id(im) for im in ws.dataset_images(dataset.id)}
    assert set(ids) == {p.image for p in a}
    parent_model = build.stand_in_model(ws, tmp, "Val Mask R-CNN", CLASSES)
    child_model = build.stand_in_model(ws, tmp, "Val INT8", CLASSES, parent_model)
    parent = ws.add_project(name="Val", model_id=parent_model, dataset_id=dataset.id, device="CPU")
    child = ws.add_project(
        name="Val INT8",
        model_id=child_model,
        dataset_id=dataset.id,
        device="CPU",
        parent_id=parent.id,
    )
    tables = compare_predictions(
        a, b, CLASSES, threshold=SETUP.threshold, iou=SETUP.iou, class_aps={}
    )
    metrics = {"mask_ap": 0.5, "mask_ap50": 0.6, "box_ap": 0.55, "box_ap50": 0.65}
    summary: dict[str, Any] = {
        "type": ReportType.ANNOTATIONS,
        "threshold": SETUP.threshold,
        "iou": SETUP.iou,
        "precision": "f32",
        "requested_precision": "f32",
        "device": "CPU",
        "project_id": child.id,
        "parent_project_id": parent.id,
        "inference_seconds": 0.5,
        "optimized": metrics,
        "parent": metrics | {"mask_ap": 0.52},
        "mask_ap_drop": 2.0,
        "box_ap_drop": 0.0,
        "totals": tables["totals"],
    }
    typed: ReportSummary = summary  # type: ignore[assignment]
    result = ws.add_result(
        project_id=child.id, kind="report:annotations", data={"summary": typed, **tables}
    )
    folder = ws.root / "reports" / str(result.id)
    folder.mkdir(parents=True)
    (folder / "optimized.json").write_text(json.dumps([p.to_json() for p in a]))
    (folder / "parent.json").write_text(json.dumps([p.to_json() for p in b]))
    return result


def test_an_annotations_report_draws_a_against_the_annotations_with_the_parent_beside(
    workspace: Workspace, image_folder: Path, tmp_path: Path
) -> None:
    result = _annotated_report(workspace, image_folder, tmp_path)
    row = next(r for r in report_data(result)["basic"] if r["image"] == "b.jpg")
    html = build_html_report(workspace, result.id).html
    figure = _figure_html(html, "b.jpg")
    titles = re.findall(r'<h4 class="side-(\w+)">([^<]*)</h4>', figure)
    assert titles == [
        ("a", "A · optimized"),
        ("b", "B · annotations"),
        ("ref", "Parent model · against the annotations"),
    ]
    # The caption counts A against the annotations, as the row does, and so do the panels.
    assert f"A {row['a']} · B {row['b']} · {row['matches']} matches" in figure
    legends = re.findall(r"<div class='?\"?legend[^>]*>(.*?)</div>", figure)
    a_legend, b_legend, parent_legend = legends
    assert "person 0.66 ✗" in a_legend
    # Annotations have no score; the parent is the annotations here, so it misses nothing.
    assert "person ✗" in b_legend and "dog ✗" in b_legend and "1.00" not in b_legend
    assert "person 0.93" in parent_legend and "✗" not in parent_legend
    assert len(re.findall(r"<img ", figure)) == 3 and 'figure class="pair panels-3"' in html


# -- labels --------------------------------------------------------------------------------


def test_the_labels_say_each_thing_once_and_a_before_b(
    workspace: Workspace, stored: StoredReport
) -> None:
    html = build_html_report(workspace, stored.result.id).html
    shown = parse(html)
    assert "(asked f32)" not in html and shown.figure_text["requested_precision"] == "as asked"
    assert shown.figures["requested_precision"] == "f32"
    assert '<th scope="row">B · parent</th>' in html
    layer_head = html[
        html.index('id="layers-table"') : html.index("</thead>", html.index('id="layers-table"'))
    ]
    labels = re.findall(r'<span class="print-label" aria-hidden="true">([^<]*)</span>', layer_head)
    assert labels == ["Layer type", "A ms", "B ms", "Δ ms (A − B)", "B / A ms"]
    assert "Only where A ≠ B (1 of the 3 images with an instance; " in html
    advanced = report_data(stored.result)["advanced"]
    differing = sum(r["differs"] for r in advanced)
    assert f"{differing} of the {len(advanced)} image and class rows)" in html


def test_html_with_an_exceeded_max_drop_writes_the_page_and_exits_1(
    workspace: Workspace, stored: StoredReport, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "gate.html"
    argv = ["report", str(stored.child.id), "--stored", "--html", str(out), "--max-drop", "0"]
    code, text = run_cli(capsys, [*argv, "--workspace", str(workspace.root)])
    assert code == 1 and "exceeds --max-drop 0" in text
    assert out.is_file() and "Accuracy report · Tiny INT8" in out.read_text("utf-8")


# -- in Chromium: print, long names, long tables --------------------------------------------


@needs_chromium
def test_printed_headers_repeat_their_labels_and_panels_sit_side_by_side(
    workspace: Workspace, image_folder: Path, tmp_path: Path
) -> None:
    assert CHROMIUM is not None
    long_class = "a_very_long_class_name_" * 8
    setup = replace(SETUP, classes=["person", "car", long_class])
    _, _, result = build.build_report(workspace, image_folder, tmp_path, setup, predictions())
    out = write_html_report(workspace, result.id, tmp_path / "print.html").path
    label = "getComputedStyle(document.querySelector('#basic-table .print-label')).display"
    button = "getComputedStyle(document.querySelector('#basic-table th button')).display"
    tops = (
        "[...document.querySelectorAll('figure.pair img')].map(i => i.getBoundingClientRect().top)"
    )
    overflow = (
        "[...document.querySelectorAll('figure.pair')]"
        ".filter(f => f.scrollWidth > f.clientWidth + 1).length"
    )
    with browser(CHROMIUM) as chrome:
        chrome.open(out.as_uri(), width=1280, height=800)
        assert chrome.evaluate(label) == "none" and chrome.evaluate(button) != "none"
        # The long class name (b.jpg's dog) wraps inside its panel.
        assert long_class in chrome.evaluate("document.querySelector('figure.pair').textContent")
        assert chrome.evaluate(overflow) == 0
        chrome.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": 700, "height": 1000, "deviceScaleFactor": 1, "mobile": False},
        )
        chrome.call("Emulation.setEmulatedMedia", {"media": "print"})
        assert chrome.evaluate(label) == "inline" and chrome.evaluate(button) == "none"
        a_top, b_top = chrome.evaluate(tops)
        assert a_top == b_top
        assert chrome.evaluate(overflow) == 0
        assert chrome.console_errors() == []


def _big_tables(images: int) -> tuple[list[BasicRow], list[AdvancedRow]]:
    basic: list[BasicRow] = []
    advanced: list[AdvancedRow] = []
    for n in range(images):
        a, b = n % 17, (n * 7) % 13
        name = f"img_{n:05d}.jpg"
        basic.append({"image": name, "a": a, "b": b, "matches": min(a, b), "differs": a != b})
        advanced.append(
            {
                "image": name,
                "class_id": 0,
                "class": "person",
                "a": a,
                "b": b,
                "matches": min(a, b),
                "precision": None if a == 0 else min(a, b) / a,
                "ap": None if b == 0 else (n % 10) / 10,
                "ap50": None,
                "differs": a != b,
            }
        )
    return basic, advanced


@needs_chromium
def test_a_long_table_shows_its_first_rows_sorts_them_all_and_shows_all_on_asking(
    tmp_path: Path,
) -> None:
    assert CHROMIUM is not None
    total = ROW_LIMIT + 700
    basic, advanced = _big_tables(total)
    out = tmp_path / "big.html"
    out.write_text(
        page(
            "big",
            "<h1>big</h1>",
            [Section("tables", "Tables", tables_html(basic, advanced, "parent"))],
            "",
        )
    )
    visible = (
        "[...document.querySelectorAll('#basic-table tbody tr')].filter(r => r.offsetParent).length"
    )
    count = "document.querySelector('[data-count-for=basic-table]').textContent"
    first_a = "+document.querySelector('#basic-table tbody tr').cells[1].textContent"
    a_header = "document.querySelectorAll('#basic-table th button')[1]"
    show_all = "document.querySelector('[data-show-all=basic-table]')"
    differing = sum(r["differs"] for r in basic)
    with browser(CHROMIUM) as chrome:
        chrome.open(out.as_uri())
        assert chrome.evaluate(visible) == ROW_LIMIT
        assert chrome.evaluate(count) == f"showing {ROW_LIMIT} of {total} rows"
        assert chrome.evaluate(f"{show_all}.hidden") is False
        chrome.evaluate(f"{a_header}.click()")
        chrome.evaluate(f"{a_header}.click()")  # descending: the largest A of every row first
        assert chrome.evaluate(first_a) == max(r["a"] for r in basic)
        assert chrome.evaluate(visible) == ROW_LIMIT
        chrome.evaluate("document.getElementById('only-differs').click()")
        assert chrome.evaluate(count) == f"showing {min(differing, ROW_LIMIT)} of {total} rows"
        chrome.evaluate(f"{show_all}.click()")
        assert chrome.evaluate(visible) == differing
        assert chrome.evaluate(count) == f"showing {differing} of {total} rows"
        assert chrome.evaluate(f"{show_all}.hidden") is True
        chrome.call("Emulation.setEmulatedMedia", {"media": "print"})
        chrome.evaluate("document.getElementById('only-differs').click()")
        assert chrome.evaluate(visible) == total  # paper gets every row
        assert chrome.console_errors() == []
