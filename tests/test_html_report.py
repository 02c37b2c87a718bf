"""The shareable HTML report: one self-contained page whose figures are the stored report's.

Built from a stored report made without running a model (tests/report_builder.py) and
hand-made stored benchmarks. The page is checked as text (summary figures against
`segtui report --stored --json`, tables, data: images, escaping) and in headless
Chromium over the DevTools protocol (tests/browser.py): no console error, no request
but the file itself and data: URIs, the script ran, a header click and an Enter on a
focused header sort the table as the report's rows sorted here say, the filter hides
rows, a 1280×800 screenshot is not blank, and print media drops the sticky headers.
Sorting is checked by driving the real page (no test hook in it). Set
SEGTUI_SCREENSHOT_DIR to keep the screenshot.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import report_builder as build
from browser import browser, find_chromium
from cli_run import run_cli
from PIL import Image
from stored_report import SETUP, StoredReport, open_report, predictions, store_report

from segtui.core.html_images import images_to_show
from segtui.core.html_report import (
    build_html_report,
    html_report_path,
    latest_report,
    read_sources,
    write_html_report,
)
from segtui.core.matching import BasicRow
from segtui.core.report import ReportData, report_data
from segtui.core.workspace import Workspace
from segtui.ui.app import SegtuiApp

CHROMIUM = find_chromium()
#: Layer times (ms per inference) of each side's hand-made per-layer profile.
PARENT_LAYERS = {"Convolution": 120.0, "If": 30.0, "Eltwise": 6.0}
CHILD_LAYERS = {"Convolution": 40.0, "If": 29.0, "Eltwise": 7.0, "FakeQuantize": 2.0}


def bench(
    precision: str, requested: str, fps: float, latency: float, layers: dict[str, float]
) -> dict[str, object]:
    """A stored benchmark as a benchmark job writes it (hand-made numbers)."""
    return {
        "throughput_fps": fps,
        "latency_median_ms": latency,
        "latency_avg_ms": latency + 1.5,
        "latency_min_ms": latency - 2.0,
        "latency_max_ms": latency + 9.0,
        "iterations": 100,
        "wall_s": 10.0,
        "device": "CPU",
        "hint": "THROUGHPUT",
        "streams": 2,
        "requests": 2,
        "batch": 1,
        "duration_s": 10.0,
        "precision": precision,
        "requested_precision": requested,
        "images": 3,
        "runtime": {"time_by_type_ms": layers},
        "model_id": 1,
        "int8": False,
    }


def add_benchmarks(ws: Workspace, stored: StoredReport) -> None:
    """Both sides measured asked f32 (ran f32) and asked default (ran bf16)."""
    for project, layers, f32, bf16 in (
        (stored.parent, PARENT_LAYERS, (4.0, 250.0), (9.0, 110.0)),
        (stored.child, CHILD_LAYERS, (10.0, 100.0), (12.5, 80.0)),
    ):
        ws.add_result(project_id=project.id, kind="benchmark", data=bench("f32", "f32", *f32, {}))
        ws.add_result(
            project_id=project.id, kind="benchmark", data=bench("bf16", "default", *bf16, layers)
        )


@pytest.fixture
def stored(workspace: Workspace, image_folder: Path, tmp_path: Path) -> StoredReport:
    """The tiny stored report (3 images, 1 where A ≠ B: b.jpg) with both sides' benchmarks."""
    report = store_report(workspace, image_folder, tmp_path)
    add_benchmarks(workspace, report)
    return report


class PageParser(HTMLParser):
    """What a test reads from the page: tagged figures, tables' rows, images, links."""

    def __init__(self) -> None:
        super().__init__()
        self.figures: dict[str, str] = {}
        self.figure_text: dict[str, str] = {}
        self.rows: dict[str, list[dict[str, str]]] = {}
        self.tags: list[tuple[str, dict[str, str]]] = []
        self._table: str | None = None
        self._open_figure: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        self.tags.append((tag, values))
        if "data-key" in values:
            self.figures[values["data-key"]] = values.get("data-value", "")
            self._open_figure = values["data-key"]
        if tag == "table" and "id" in values:
            self._table = values["id"]
            self.rows[self._table] = []
        if tag == "tr" and self._table and "data-i" in values:
            self.rows[self._table].append(values)

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._table = None
        if tag == "span":
            self._open_figure = None

    def handle_data(self, data: str) -> None:
        if self._open_figure is not None:
            self.figure_text[self._open_figure] = self.figure_text.get(self._open_figure, "") + data


def parse(html: str) -> PageParser:
    parser = PageParser()
    parser.feed(html)
    return parser


def flat(summary: dict[str, Any], prefix: str = "") -> dict[str, object]:
    """{'a_vs_b.mask_ap': 0.8, 'totals.a': 4, ...}: a summary's figures by dotted key."""
    out: dict[str, object] = {}
    for key, value in summary.items():
        if isinstance(value, dict):
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def test_the_summary_figures_are_the_stored_reports_as_the_cli_prints_them(
    workspace: Workspace, stored: StoredReport, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report.html"
    argv = ["report", str(stored.child.id), "--stored", "--html", str(out)]
    code, text = run_cli(capsys, [*argv, "--json", "--workspace", str(workspace.root)])
    assert code == 0, text
    printed = json.loads(text[text.index("{") :])
    assert printed["result_id"] == stored.result.id
    assert printed["html"] == str(out) and printed["html_bytes"] == out.stat().st_size
    page = parse(out.read_text("utf-8"))
    expected = flat(printed["summary"]) | {"mask_ap_drop": printed["mask_ap_drop"]}
    shown = {k: v for k, v in expected.items() if k in page.figures}
    # Every AP, total, threshold and precision the CLI prints is on the page, exactly.
    for key in (
        *("a_vs_b.mask_ap", "a_vs_b.mask_ap50", "a_vs_b.box_ap", "a_vs_b.box_ap50"),
        *("totals.a", "totals.b", "totals.matches", "totals.images", "totals.images_differ"),
        *("threshold", "iou", "precision", "requested_precision", "device", "mask_ap_drop"),
    ):
        assert key in shown, key
        value = shown[key]
        assert page.figures[key] == (repr(value) if isinstance(value, float) else str(value))
    assert page.figure_text["a_vs_b.mask_ap"] == f"{printed['summary']['a_vs_b']['mask_ap']:.4f}"
    assert page.figure_text["totals.images_differ"] == "1"
    assert page.figure_text["mask_ap_drop"] == f"{printed['mask_ap_drop']:.2f} points"


def test_both_tables_hold_every_row_with_its_sort_values_and_filter_mark(
    workspace: Workspace, stored: StoredReport
) -> None:
    data = report_data(stored.result)
    page = parse(build_html_report(workspace, stored.result.id).html)
    basic, advanced = page.rows["basic-table"], page.rows["advanced-table"]
    assert len(basic) == len(data["basic"]) == 3
    assert len(advanced) == len(data["advanced"])
    assert [r["data-differs"] for r in basic] == [str(int(r["differs"])) for r in data["basic"]]
    assert [r["data-i"] for r in advanced] == [str(n) for n in range(len(advanced))]
    headers = [a for tag, a in page.tags if tag == "th" and a.get("aria-sort") == "none"]
    assert len(headers) == 4 + 8 + 5  # basic, advanced, the per-layer table
    assert any(tag == "input" and a.get("id") == "only-differs" for tag, a in page.tags)


def test_the_page_loads_nothing_and_its_images_are_embedded(
    workspace: Workspace, stored: StoredReport
) -> None:
    report = build_html_report(workspace, stored.result.id)
    html = report.html
    assert "http://" not in html and "https://" not in html
    assert not re.search(r"""(src|href)\s*=\s*["']?//""", html)
    assert "<link" not in html.lower() and not re.search(r"<script[^>]*\ssrc", html, re.I)
    images = [a for tag, a in parse(html).tags if tag == "img"]
    # b.jpg differs: A's and B's panel of it.
    assert len(images) == 2 * report.images_shown == 2
    for attrs in images:
        header, _, payload = attrs["src"].partition(",")
        assert header in ("data:image/jpeg;base64", "data:image/png;base64")
        picture = Image.open(io.BytesIO(base64.b64decode(payload)))
        picture.load()
        assert 0 < picture.width <= 480
    hrefs = [a["href"] for tag, a in parse(html).tags if tag == "a"]
    assert hrefs and all(h.startswith("#") for h in hrefs)


def test_names_from_data_are_shown_literally(
    workspace: Workspace, image_folder: Path, tmp_path: Path
) -> None:
    setup = replace(SETUP, name="<b>x</b>", classes=["person", "<img src=x>", "dog & cat"])
    _, child, result = build.build_report(workspace, image_folder, tmp_path, setup, predictions())
    html = build_html_report(workspace, result.id).html
    assert "&lt;b&gt;x&lt;/b&gt; INT8" in html and "<b>x</b>" not in html
    assert "&lt;img src=x&gt;" in html and "<img src=x>" not in html
    assert "dog &amp; cat" in html
    assert child.name == "<b>x</b> INT8"


def test_the_images_drawn_are_the_most_different_first_and_capped(
    workspace: Workspace, image_folder: Path, tmp_path: Path
) -> None:
    rows: list[BasicRow] = [
        {"image": name, "a": a, "b": b, "matches": m, "differs": d}
        for name, a, b, m, d in [
            ("same.png", 2, 2, 2, False),
            ("one-off.png", 2, 3, 2, True),
            ("swapped.png", 2, 2, 0, True),
            ("missed.png", 0, 3, 0, True),
        ]
    ]
    assert [r["image"] for r in images_to_show(rows, 2)] == ["swapped.png", "missed.png"]
    a, b = predictions()
    a[2].instances.pop()  # A misses c.bmp's faint dog: c.bmp differs too (1 unmatched)
    _, _, result = build.build_report(workspace, image_folder, tmp_path, SETUP, (a, b))
    report = build_html_report(workspace, result.id, max_images=1)
    assert (report.images_shown, report.images_differ) == (1, 2)
    html = report.html
    # b.jpg: A's person shifted (no match), B's dog missed: 3 unmatched against c.bmp's 1.
    assert 'data-image="b.jpg"' in html and 'data-image="sub/c.bmp"' not in html
    assert "1 of the 2 images where A (the optimized model) ≠ B (the parent's" in html
    assert "1 more are in the tables" in html


def test_the_performance_part_pairs_like_with_like(
    workspace: Workspace, stored: StoredReport
) -> None:
    page = build_html_report(workspace, stored.result.id).html
    table = page[page.index('id="pairs-table"') : page.index("</table>", page.index("pairs-table"))]
    rows = re.findall(r'<tr data-requested="([^"]+)">(.*?)</tr>', table)
    assert [r[0] for r in rows] == ["f32", "default"]
    cells = {name: re.findall(r"<td[^>]*>([^<]*)</td>", row) for name, row in rows}
    # Asked, A ran at, B ran at, A FPS, B FPS, A/B, A median, B median, A avg, B avg, B/A.
    f32 = ["f32", "f32", "f32", "10.00", "4.00", "2.50×", "100.00", "250.00", "101.50", "251.50"]
    assert cells["f32"] == [*f32, "2.50×"]
    assert cells["default"][:6] == ["default", "bf16", "bf16", "12.50", "9.00", "1.39×"]
    assert "<svg" in page and "Throughput (FPS, higher is better)" in page
    layers = parse(page).rows["layers-table"]
    assert len(layers) == len(set(PARENT_LAYERS) | set(CHILD_LAYERS))
    assert "A's best run (at bf16) against B's best run (at bf16)" in page


def test_without_benchmarks_the_page_says_how_to_get_them(
    workspace: Workspace, image_folder: Path, tmp_path: Path
) -> None:
    report = store_report(workspace, image_folder, tmp_path)
    page = build_html_report(workspace, report.result.id).html
    assert "No benchmark yet for Tiny INT8, Tiny." in page and "segtui benchmark" in page
    assert 'id="pairs-table"' not in page


def test_a_report_on_annotations_shows_both_models_ap_and_the_drops(
    workspace: Workspace, stored: StoredReport
) -> None:
    data: ReportData = report_data(stored.result)
    metrics = dict(data["summary"]["a_vs_b"])
    summary = {k: v for k, v in data["summary"].items() if k != "a_vs_b"}
    summary |= {
        "type": "annotations",
        "parent": metrics | {"mask_ap": 0.412, "box_ap": 0.455},
        "optimized": metrics | {"mask_ap": 0.401, "box_ap": 0.449},
        "mask_ap_drop": 1.1,
        "box_ap_drop": 0.6,
    }
    result = workspace.add_result(
        project_id=stored.child.id,
        kind="report:annotations",
        data={**data, "summary": summary},
    )
    (workspace.root / "reports" / str(stored.result.id)).rename(
        workspace.root / "reports" / str(result.id)
    )
    assert latest_report(workspace, stored.child.id).id == result.id
    page = parse(build_html_report(workspace, result.id).html)
    assert page.figure_text["parent.mask_ap"] == "0.4120"
    assert page.figure_text["optimized.mask_ap"] == "0.4010"
    assert page.figure_text["mask_ap_drop"] == "1.10 points"
    assert page.figure_text["box_ap_drop"] == "0.60 points"
    assert read_sources(workspace, result.id).b_name == "annotations"


def test_stored_without_a_report_is_refused_clearly(
    workspace: Workspace, stored: StoredReport, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "never.html"
    argv = ["report", str(stored.parent.id), "--stored", "--html", str(out)]
    code, text = run_cli(capsys, [*argv, "--workspace", str(workspace.root)])
    assert code == 1
    assert f"Project {stored.parent.id} (Tiny) has no stored accuracy report." in text
    assert "Traceback" not in text and not out.exists()


def test_the_parent_is_the_projects_own_whatever_the_summary_says(
    workspace: Workspace, stored: StoredReport
) -> None:
    """create_report stores the optimized project's id as "parent_project_id" (its parent
    model ran on that project): the page still names, and benchmarks against, the parent."""
    data = report_data(stored.result)
    summary = dict(data["summary"]) | {"parent_project_id": stored.child.id}
    result = workspace.add_result(
        project_id=stored.child.id, kind="report:parent", data={**data, "summary": summary}
    )
    (workspace.root / "reports" / str(stored.result.id)).rename(
        workspace.root / "reports" / str(result.id)
    )
    assert read_sources(workspace, result.id).parent.id == stored.parent.id
    assert "B: parent (Tiny, #1)" in build_html_report(workspace, result.id).html


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium here (CI's .ci/run installs it)")
def test_in_chromium_the_page_loads_nothing_runs_its_script_and_sorts(
    workspace: Workspace, stored: StoredReport, tmp_path: Path
) -> None:
    assert CHROMIUM is not None
    out = write_html_report(workspace, stored.result.id, tmp_path / "report.html").path
    data = report_data(stored.result)
    by_a = sorted(range(len(data["basic"])), key=lambda n: data["basic"][n]["a"])
    by_a_down = sorted(range(len(data["basic"])), key=lambda n: -data["basic"][n]["a"])
    order = "[...document.querySelectorAll('#basic-table tbody tr')].map(r => +r.dataset.i)"
    a_header = "document.querySelectorAll('#basic-table th button')[1]"
    with browser(CHROMIUM) as chrome:
        chrome.open(out.as_uri(), width=1280, height=800)
        assert chrome.evaluate("document.body.dataset.ready") == "1"
        shot = chrome.screenshot(tmp_path / "report.png")
        chrome.evaluate(f"{a_header}.click()")
        assert chrome.evaluate(order) == by_a
        chrome.evaluate(f"{a_header}.focus()")
        chrome.press("Enter", "Enter", 13, "\r")  # a header is a button: the keyboard sorts too
        assert chrome.evaluate(order) == by_a_down
        assert chrome.evaluate(f"{a_header}.parentElement.getAttribute('aria-sort')") == (
            "descending"
        )
        chrome.evaluate("document.getElementById('only-differs').click()")
        shown = "[...document.querySelectorAll('#basic-table tbody tr')].filter(r => r.offsetParent).length"
        assert chrome.evaluate(shown) == 1
        assert chrome.evaluate(
            "document.querySelector('[data-count-for=basic-table]').textContent"
        ) == ("showing 1 of 3 rows")
        sticky = "getComputedStyle(document.querySelector('#advanced-table th')).position"
        assert chrome.evaluate(sticky) == "sticky"
        chrome.call("Emulation.setEmulatedMedia", {"media": "print"})
        assert chrome.evaluate(sticky) == "static"
        pdf = chrome.print_pdf()
        assert chrome.console_errors() == []
        urls = chrome.requested_urls()
    assert urls[0] == out.as_uri()
    assert all(url == out.as_uri() or url.startswith("data:") for url in urls), urls
    assert pdf.startswith(b"%PDF") and len(pdf) > 10_000
    picture = Image.open(io.BytesIO(shot)).convert("L")
    assert picture.size == (1280, 800)
    # Not a blank frame: text, rules and cards cover a fair share of it, in more than two tones.
    histogram = picture.histogram()
    assert sum(histogram[:200]) > 0.03 * 1280 * 800
    assert sum(1 for count in histogram if count > 100) > 10
    keep = os.environ.get("SEGTUI_SCREENSHOT_DIR")
    if keep:
        (Path(keep) / "html_report_1280x800.png").write_bytes(shot)


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium here (CI's .ci/run installs it)")
def test_the_browser_check_sees_console_errors_and_requests(tmp_path: Path) -> None:
    """The checks above can fail: a page that logs an error and asks for another file is caught."""
    assert CHROMIUM is not None
    bad = tmp_path / "bad.html"
    missing = (tmp_path / "missing.png").as_uri()
    bad.write_text(f'<img src="{missing}"><script>console.error("boom"); null.x;</script>')
    with browser(CHROMIUM) as chrome:
        chrome.open(bad.as_uri())
        errors, urls = chrome.console_errors(), chrome.requested_urls()
    assert "boom" in errors and any("null" in error for error in errors)
    assert missing in urls


async def test_h_on_the_report_screen_saves_the_page_into_the_workspace(
    workspace: Workspace, image_folder: Path, tmp_path: Path
) -> None:
    report = store_report(workspace, image_folder, tmp_path)
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_report(app, report.child.id, pilot)
        await pilot.press("H")
        await app.workers.wait_for_complete()
        await pilot.pause()
        path = html_report_path(workspace, report.child.id, report.result.id)
        assert path == workspace.root / "reports-html" / f"tiny-int8-report-{report.result.id}.html"
        assert path.is_file() and "Accuracy report · Tiny INT8" in path.read_text("utf-8")
        notes = [n.message for n in app._notifications]
        assert any(str(path) in note for note in notes), notes
        assert screen.is_current
