"""Visualize, opened from the report screen or on its own, on a stored report (no models run)."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pilot_wait import settle, until
from stored_report import StoredReport, open_report, store_report
from textual.pilot import Pilot
from textual.widgets import Label, Static

from segtui.core.report import ReportImages
from segtui.core.workspace import Workspace
from segtui.ui.app import SegtuiApp
from segtui.ui.screens import visualize as visualize_screen
from segtui.ui.screens import visualize_drawing
from segtui.ui.screens.report import ReportScreen
from segtui.ui.screens.visualize import PanelImage, VisualizeScreen
from segtui.ui.screens.visualize_drawing import prepare_image
from segtui.ui.screens.visualize_session import load_report_images
from segtui.ui.widgets.half_blocks import HalfBlocks

SnapCompare = Callable[..., bool]


@pytest.fixture
def stored(workspace: Workspace, image_folder: Path, tmp_path: Path) -> StoredReport:
    return store_report(workspace, image_folder, tmp_path)


def _info(screen: VisualizeScreen) -> str:
    return str(screen.query_one("#vis-info", Static).content)


def _legend(screen: VisualizeScreen, panel: str) -> str:
    return str(screen.query_one(f"#legend-{panel}", Static).content)


async def _drawn(pilot: Pilot[Any], screen: VisualizeScreen, image: str) -> None:
    """Until `image` is shown, drawn at the screen's threshold (drawing is in thread workers)."""
    await until(
        pilot,
        lambda: (
            screen.shown is not None
            and screen.shown.request.name == image
            and screen.shown.request == screen.wanted
        ),
    )


async def _open_from_report(pilot: Pilot[Any], report: ReportScreen, row: int) -> VisualizeScreen:
    report.table.move_cursor(row=row)
    await pilot.press("v")
    screen = pilot.app.screen
    assert isinstance(screen, VisualizeScreen)
    return screen


async def test_visualize_opens_at_the_reports_threshold_with_the_report_rows_counts(
    workspace: Workspace, stored: StoredReport
) -> None:
    """The report counts at score ≥ 0.1: Visualize opens there, and its counts are the rows'."""
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        report = await open_report(app, stored.child.id, pilot)
        rows = {r["image"]: r for r in stored.result.data["basic"]}
        vis = await _open_from_report(pilot, report, 2)  # sub/c.bmp: a faint dog each, 0.3
        await _drawn(pilot, vis, "sub/c.bmp")
        assert vis.images == ["a.png", "b.jpg", "sub/c.bmp"]
        info = _info(vis)
        assert info.startswith(
            "score ≥ 0.10 (the report's) · match IoU ≥ 0.50 · sub/c.bmp (3 of 3)"
        )
        assert vis.sub_title == "sub/c.bmp · score ≥ 0.10"
        for _ in range(3):  # every image: the report row's A, B and matches
            shown = vis.shown
            assert shown is not None
            row = rows[shown.request.name]
            matches = f"{row['matches']} match" + ("" if row["matches"] == 1 else "es")
            counts = f"A {row['a']} · B {row['b']} · {matches} · "
            assert counts in _info(vis)
            await pilot.press("n")
            await _drawn(pilot, vis, vis.image_name)
        assert vis.image_name == "sub/c.bmp"
        assert _legend(vis, "optimized") == "■ car 0.55  ■ dog 0.30"
        assert _legend(vis, "parent") == "■ car 0.60  ■ dog 0.35"
        assert str(vis.query_one("#title-parent", Label).content) == (
            "B. Parent model · 2 instances"
        )
        # At 0.50 the faint dogs are not drawn: the header says the report's threshold differs.
        for _ in range(8):
            await pilot.press("plus")
        await _drawn(pilot, vis, "sub/c.bmp")
        assert vis.threshold == 0.5
        assert "score ≥ 0.50 (report: 0.10)" in _info(vis)
        assert "A 1 · B 1 · 1 match · 0 unmatched" in _info(vis)
        assert _info(vis).endswith("at score ≥ 0.50")
        assert _legend(vis, "optimized") == "■ car 0.55"


async def test_the_threshold_is_kept_between_openings_and_the_sort_stays(
    workspace: Workspace, stored: StoredReport
) -> None:
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        report = await open_report(app, stored.child.id, pilot)
        await pilot.press("s", "S")  # by image, descending: sub/c.bmp, b.jpg, a.png
        assert report.table.sorted_by == ("image", True)
        vis = await _open_from_report(pilot, report, 0)
        await _drawn(pilot, vis, "sub/c.bmp")
        await pilot.press("plus", "plus")  # 0.10 → 0.15 → 0.20
        await _drawn(pilot, vis, "sub/c.bmp")
        await pilot.press("n", "n")  # b.jpg, then a.png: the table's order
        await _drawn(pilot, vis, "a.png")
        await pilot.press("escape")
        assert app.screen is report
        await pilot.pause()
        # The table is as the user sorted it, its cursor on the image shown last.
        assert report.table.sorted_by == ("image", True)
        assert [report.row_images[k] for k in report.table.row_keys] == [
            "sub/c.bmp",
            "b.jpg",
            "a.png",
        ]
        assert report.table.cursor_row == 2
        again = await _open_from_report(pilot, report, 1)
        assert again is vis  # the same screen, kept: nothing is laid out anew
        assert again.threshold == 0.2  # where the user left it, not the report's 0.10
        await _drawn(pilot, again, "b.jpg")
        assert "score ≥ 0.20 (report: 0.10)" in _info(again)
        await pilot.press("minus", "minus")
        await _drawn(pilot, again, "b.jpg")
        assert "score ≥ 0.10 (the report's)" in _info(again)
        await pilot.press("escape")
        assert report.table.sorted_by == ("image", True) and report.table.cursor_row == 1


async def test_n_and_p_walk_the_filtered_rows(workspace: Workspace, stored: StoredReport) -> None:
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        report = await open_report(app, stored.child.id, pilot)
        await pilot.press("f")  # class car: a.png and sub/c.bmp
        await pilot.press("t", "s", "S")  # advanced, by image descending
        vis = await _open_from_report(pilot, report, 0)
        assert vis.images == ["sub/c.bmp", "a.png"] and vis.image_name == "sub/c.bmp"
        await _drawn(pilot, vis, "sub/c.bmp")
        await pilot.press("n")
        await _drawn(pilot, vis, "a.png")
        assert "(2 of 2)" in _info(vis)
        await pilot.press("n")  # around to the first
        await _drawn(pilot, vis, "sub/c.bmp")
        await pilot.press("p")
        await _drawn(pilot, vis, "a.png")


async def test_an_image_drawn_before_is_shown_from_memory(
    workspace: Workspace, stored: StoredReport, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        report = await open_report(app, stored.child.id, pilot)
        session = report.visualize_link.session
        # The report screen read Visualize's predictions while the table was shown.
        assert session is not None and isinstance(session.report, ReportImages)
        assert session.report.threshold == 0.1 and session.report.iou == 0.5
        vis = await _open_from_report(pilot, report, 0)
        await _drawn(pilot, vis, "a.png")
        first = vis.shown
        # The next image is drawn ahead while a.png is looked at.
        await until(pilot, lambda: first is not None and len(session.drawings) >= 2)
        await pilot.press("escape")
        draws: list[str] = []
        draw = visualize_drawing.draw

        def counted(report: ReportImages, prepared: Any, request: Any, *args: Any) -> Any:
            draws.append(request.name)
            return draw(report, prepared, request, *args)

        monkeypatch.setattr(visualize_drawing, "draw", counted)
        again = await _open_from_report(pilot, report, 0)
        await _drawn(pilot, again, "a.png")
        assert again.shown is first  # the same drawing, not drawn again
        await pilot.press("n")
        await _drawn(pilot, again, "b.jpg")
        assert "b.jpg" not in draws  # drawn ahead before n was pressed


async def test_the_screen_is_drawn_before_the_report_is_read(
    workspace: Workspace, stored: StoredReport, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    load = load_report_images

    def held(ws: Workspace, project_id: int, result_id: int) -> ReportImages:
        release.wait(10)
        return load(ws, project_id, result_id)

    monkeypatch.setattr(visualize_screen, "load_report_images", held)
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        try:
            screen = VisualizeScreen(stored.child.id, stored.result.id, "b.jpg")
            await app.push_screen(screen)
            await pilot.pause()
            assert _info(screen) == "b.jpg (1 of 1)\nreading the report…"
            image = screen.query_one("#image-optimized", PanelImage)
            assert image.image is None and image.size.height == 1  # its placeholder line
            assert screen.shown is None
        finally:
            release.set()
        await _drawn(pilot, screen, "b.jpg")
        assert "score ≥ 0.10 (the report's)" in _info(screen)


async def test_visualize_shows_both_panels_then_the_overlay(
    workspace: Workspace, stored: StoredReport
) -> None:
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        report = await open_report(app, stored.child.id, pilot)
        report.table.focus()
        await pilot.press("down", "enter")  # b.jpg
        vis = app.screen
        assert isinstance(vis, VisualizeScreen)
        await _drawn(pilot, vis, "b.jpg")
        for panel in ("optimized", "parent"):
            image = vis.query_one(f"#image-{panel}", PanelImage)
            assert image.display and isinstance(image.image, HalfBlocks)
            # The picture's cells are the widget's size: width × rows of two pixels.
            assert image.size.width == image.image.width
            assert image.size.height == len(image.image.strips)
        assert not vis.query_one("#panel-overlay").display
        assert _legend(vis, "optimized") == "■ person 0.66 ✗"
        assert _legend(vis, "parent") == "■ person 0.93 ✗  ■ dog 0.71 ✗"
        assert str(vis.query_one("#title-optimized", Label).content) == (
            "A. Optimized model · 1 instance"
        )
        assert vis.last is not None and vis.last.disagreement_pixels > 0
        # The panel keeps the image's aspect ratio (40×60 is portrait).
        width, height = vis.last.size
        assert height > width
        # 0.70: the person A found is gone.
        for _ in range(12):
            await pilot.press("plus")
        await _drawn(pilot, vis, "b.jpg")
        assert vis.threshold == 0.7 and vis.last.threshold == 0.7
        assert _legend(vis, "optimized") == "no instances at this threshold"
        assert _legend(vis, "parent") == "■ person 0.93 ✗  ■ dog 0.71 ✗"

        await pilot.press("m")
        await _drawn(pilot, vis, "b.jpg")
        assert vis.shown is not None and vis.shown.request.mode == "overlay"
        assert vis.query_one("#panel-overlay").display
        assert not vis.query_one("#panel-optimized").display
        overlay = vis.query_one("#image-overlay", PanelImage)
        assert isinstance(overlay.image, HalfBlocks) and overlay.size.width > 0
        assert _legend(vis, "overlay") == (
            "A: no instances at this threshold\nB: ■ person 0.93 ✗  ■ dog 0.71 ✗"
        )
        await pilot.press("escape")
        assert isinstance(app.screen, ReportScreen)


async def test_visualize_redraws_on_resize(workspace: Workspace, stored: StoredReport) -> None:
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = VisualizeScreen(stored.child.id, stored.result.id, "sub/c.bmp")
        await app.push_screen(screen)
        await _drawn(pilot, screen, "sub/c.bmp")
        assert screen.last is not None
        big = screen.last.size
        await pilot.resize_terminal(80, 24)
        await until(pilot, lambda: screen.last is not None and screen.last.size != big)
        small = screen.last.size
        assert small[0] < big[0] and small[1] < big[1]
        assert abs(small[0] - small[1]) <= 1  # c.bmp is square
        # The legend rows the drawing was planned with are the rows it has.
        assert screen.shown is not None
        legend = screen.query_one("#legend-optimized", Static)
        assert legend.size.height == screen.shown.legend_rows
        image = screen.query_one("#image-optimized", PanelImage)
        area = screen.query_one("#area-optimized")
        assert image.size.height <= area.size.height and image.size.width <= area.size.width


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
        await _drawn(pilot, screen, "a.png")
        await until(pilot, lambda: bool(screen.query("#sharp-parent")))
        sharp = screen.query_one("#sharp-parent", widget.HalfcellImage)
        assert sharp.display and sharp.image.size == (64, 48)  # every pixel, not two per cell
        assert not screen.query_one("#image-parent", PanelImage).display
        assert screen.check_action("toggle_graphics", ()) is True
        await pilot.press("g")
        await until(pilot, lambda: screen.query_one("#image-parent", PanelImage).display)
        assert not sharp.display
        assert isinstance(screen.query_one("#image-parent", PanelImage).image, HalfBlocks)


async def test_visualize_without_terminal_graphics_hides_the_sharp_key(
    workspace: Workspace, stored: StoredReport
) -> None:
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = VisualizeScreen(stored.child.id, stored.result.id, "sub/c.bmp")
        await app.push_screen(screen)
        await _drawn(pilot, screen, "sub/c.bmp")
        assert screen.sharp_widget is None and screen.check_action("toggle_graphics", ()) is False
        assert not screen.query(".panel-sharp")
        assert "(1 of 1)" in _info(screen)
        await pilot.press("n")  # only one image: stays
        assert screen.image_name == "sub/c.bmp"


async def test_visualize_of_a_report_without_prediction_files_says_what_to_do(
    workspace: Workspace, stored: StoredReport
) -> None:
    shutil.rmtree(workspace.root / "reports" / str(stored.result.id))
    app = SegtuiApp(workspace, register_sample=False)
    messages: list[str] = []
    notify = app.notify

    def capture(message: str, **kwargs: Any) -> None:
        messages.append(message)
        notify(message, **kwargs)

    app.notify = capture  # type: ignore[method-assign]
    async with app.run_test(size=(120, 36)) as pilot:
        report = await open_report(app, stored.child.id, pilot)
        # Reading ahead failed quietly: Visualize reads again, and says what to do.
        assert (
            report.visualize_link.session is not None
            and report.visualize_link.session.report is None
        )
        assert messages == []
        screen = await _open_from_report(pilot, report, 0)
        await until(pilot, lambda: "Could not" in _info(screen))
        assert _info(screen).endswith("\nCould not load the report.")
        assert any("cannot be read" in m and "Create the report again" in m for m in messages)


def test_an_unreadable_image_is_drawn_as_grey_with_its_masks(
    workspace: Workspace, stored: StoredReport, image_folder: Path
) -> None:
    report = load_report_images(workspace, stored.child.id, stored.result.id)
    assert report.class_names == ["person", "car", "dog"]
    assert (report.threshold, report.iou) == (0.1, 0.5)
    readable = prepare_image(report, "b.jpg")
    assert readable.unreadable is None
    (image_folder / "b.jpg").write_bytes(b"not a jpeg")
    broken = prepare_image(report, "b.jpg")
    assert broken.unreadable is not None
    vis = broken.comparison.render(0.5)
    assert vis.size == (40, 60)
    assert [e.class_name for e in vis.parent_legend] == ["person", "dog"]
    assert vis.disagreement_pixels > 0


def test_half_blocks_put_the_upper_pixel_behind_the_lower_one() -> None:
    import numpy as np

    rgb = np.zeros((3, 2, 3), np.uint8)
    rgb[0, :] = (255, 0, 0)  # row 0 red, row 1 green, row 2 (odd) blue over black
    rgb[1, :] = (0, 255, 0)
    rgb[2, 0] = (0, 0, 255)
    blocks = HalfBlocks.from_rgb(rgb)
    assert blocks.width == 2 and len(blocks.strips) == 2
    (first,) = list(blocks.strips[0])  # two equal cells: one segment
    assert first.text == "▄▄"
    assert first.style is not None and first.style.bgcolor is not None
    assert first.style.bgcolor.triplet == (255, 0, 0)
    assert first.style.color is not None and first.style.color.triplet == (0, 255, 0)
    blue, black = list(blocks.strips[1])
    assert blue.text == black.text == "▄"
    assert blue.style is not None and blue.style.bgcolor is not None
    assert blue.style.bgcolor.triplet == (0, 0, 255)


def test_visualize_snapshot(
    snap_compare: SnapCompare, workspace: Workspace, stored: StoredReport
) -> None:
    async def open_visualize(pilot: Any) -> None:
        screen = VisualizeScreen(
            stored.child.id, stored.result.id, "b.jpg", images=["a.png", "b.jpg", "sub/c.bmp"]
        )
        await pilot.app.push_screen(screen)
        await _drawn(pilot, screen, "b.jpg")
        await settle(pilot)

    app = SegtuiApp(workspace, register_sample=False)
    assert snap_compare(app, run_before=open_visualize, terminal_size=(80, 24))
