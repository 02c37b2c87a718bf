"""Visualize one image of an accuracy report: both models' masks side by side (or overlaid).

The optimized model's masks (A) and the parent's (B) are drawn in class
colours, the pixels where they disagree in magenta, with the instances listed
under each panel. The threshold keys redraw at another confidence; n and p
step through the images in the report table's order. The image is drawn with
half-block characters (rich-pixels), which works in every terminal and over
SSH; where the terminal speaks the kitty graphics protocol or sixel and the
optional `graphics` extra (textual-image) is installed, a sharp image is drawn
instead (`prepare_terminal_graphics`, g toggles). Reading the report,
decoding and drawing run in thread workers; only the finished renderables reach
the widgets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

from PIL import Image
from rich.text import Text
from rich_pixels import Pixels
from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container, Horizontal, Vertical
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Footer, Header, Label, Static
from textual.worker import Worker, WorkerState, get_current_worker

from segtui.core.datasets import ImageReadError, image_path, load_image
from segtui.core.errors import SegtuiError
from segtui.core.predictions import ImagePrediction
from segtui.core.report import report_data, report_predictions
from segtui.core.settings import REPORT
from segtui.core.visualize import (
    DEFAULT_THRESHOLD,
    THRESHOLD_STEP,
    ImageComparison,
    LegendEntry,
    Panel,
    Visualization,
    blank_image,
    half_block_size,
    step_threshold,
    summary_line,
    to_pil,
)
from segtui.core.workspace import Workspace
from segtui.ui.screens.base import SegtuiScreen
from segtui.ui.styles import css_path
from segtui.ui.terminal_graphics import terminal_graphics_widget

LOAD_GROUP = "visualize-load"
IMAGE_GROUP = "visualize-image"
RENDER_GROUP = "visualize-render"
#: Side by side (A and B), or one overlay of both.
ViewMode = Literal["side-by-side", "overlay"]


@dataclass
class ReportImages:
    """What Visualize needs of a report, read once: predictions by image and where the images are."""

    optimized: dict[str, ImagePrediction]
    parent: dict[str, ImagePrediction]
    paths: dict[str, Path]
    class_names: list[str]
    iou: float


@dataclass
class PreparedImage:
    name: str
    comparison: ImageComparison
    unreadable: str | None  # why the image could not be read (the masks are drawn on grey)


def load_report_images(ws: Workspace, project_id: int, result_id: int) -> ReportImages:
    """Read a report's stored predictions and its dataset's image paths (in a thread)."""
    result = ws.result(result_id)
    project = ws.project(project_id)
    dataset = ws.dataset(project.dataset_id)
    try:
        optimized, parent = report_predictions(ws, result_id)
    except (OSError, ValueError, KeyError) as exc:
        raise SegtuiError(
            f"The predictions of report {result_id} cannot be read ({exc}).",
            "Create the report again (s on the report page).",
        ) from exc
    paths = {im.path: image_path(dataset, im) for im in ws.dataset_images(dataset.id)}
    class_names = ws.model(project.model_id).class_names
    summary = report_data(result)["summary"]
    return ReportImages(
        optimized={p.image: p for p in optimized},
        parent={p.image: p for p in parent},
        paths=paths,
        class_names=list(class_names),
        iou=float(summary.get("iou", REPORT.iou.default)),
    )


def prepare_image(report: ReportImages, name: str) -> PreparedImage:
    """Decode one image and both models' masks of it."""
    optimized = report.optimized.get(name) or report.parent.get(name)
    if optimized is None:
        raise SegtuiError(f"The report has no predictions for {name!r}.", "Re-run the report.")
    empty = ImagePrediction(name, optimized.width, optimized.height, [])
    parent = report.parent.get(name, empty)
    if name not in report.optimized:
        optimized = empty
    unreadable = None
    try:
        path = report.paths.get(name)
        if path is None:
            raise ImageReadError("no longer part of the dataset")
        image = load_image(path)
        if image.shape[:2] != (optimized.height, optimized.width):
            raise ImageReadError(
                f"its size changed since the report ({image.shape[1]}×{image.shape[0]})"
            )
        comparison = ImageComparison.from_bgr(
            image, optimized, parent, report.class_names, iou=report.iou
        )
    except ImageReadError as exc:
        unreadable = str(exc)
        canvas = blank_image(optimized.width, optimized.height)
        comparison = ImageComparison(canvas, optimized, parent, report.class_names, iou=report.iou)
    return PreparedImage(name, comparison, unreadable)


def legend_text(entries: list[LegendEntry], *, error_style: str, width: int = 0) -> Text:
    """The instances of one panel as coloured chips, strongest first; ✗ where there is no match.

    Chips wrap as wholes within `width` cells (0: one line), never inside a chip.
    """
    if not entries:
        return Text("no instances at this threshold", style="dim")
    text = Text()
    used = 0
    for entry in entries:
        chip = Text()
        r, g, b = entry.color
        chip.append("■ ", style=f"rgb({r},{g},{b})")
        chip.append(f"{entry.class_name} {entry.score:.2f}")
        if not entry.matched:
            chip.append(" ✗", style=error_style)
        if used:
            if width and used + 2 + chip.cell_len > width:
                text.append("\n")
                used = 0
            else:
                text.append("  ")
                used += 2
        text.append_text(chip)
        used += chip.cell_len
    return text


def _instances(count: int) -> str:
    return f"{count} instance" + ("" if count == 1 else "s")


class PanelImage(Static):
    """A panel's image in half-block characters."""


class PanelArea(Container):
    """The space for a panel's image; tells its screen when its size changes."""

    def on_resize(self, event: events.Resize) -> None:
        screen = self.screen
        if isinstance(screen, VisualizeScreen):
            screen.schedule_render()


class VisualizeScreen(SegtuiScreen):
    """One image of a report with the parent's and the optimized model's masks."""

    CSS_PATH = css_path("report.tcss")

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="visualize.back", tooltip="Back to the report."),
        Binding(
            "n",
            "step(1)",
            "Next",
            id="visualize.next",
            tooltip="The next image in the report table's order.",
        ),
        Binding(
            "p",
            "step(-1)",
            "Prev",
            id="visualize.previous",
            tooltip="The previous image in the report table's order.",
        ),
        Binding("right", "step(1)", "Next", show=False, id="visualize.next_arrow"),
        Binding("left", "step(-1)", "Previous", show=False, id="visualize.previous_arrow"),
        Binding(
            "plus,equals_sign",
            "threshold(1)",
            "Threshold",
            key_display="+/-",
            id="visualize.threshold_up",
            tooltip=f"Raise (+) or lower (-) the confidence threshold by {THRESHOLD_STEP:g}.",
        ),
        Binding(
            "minus",
            "threshold(-1)",
            "Lower threshold",
            show=False,
            id="visualize.threshold_down",
            tooltip=f"Lower the confidence threshold by {THRESHOLD_STEP:g}.",
        ),
        Binding(
            "m",
            "toggle_mode",
            "Overlay",
            id="visualize.mode",
            tooltip="Show the two models side by side, or one image with their disagreement.",
        ),
        Binding(
            "g",
            "toggle_graphics",
            "Sharp",
            id="visualize.graphics",
            tooltip="Switch between terminal graphics (kitty/sixel) and half-block characters.",
        ),
        Binding(
            "d",
            "toggle_highlight",
            "Highlight",
            id="visualize.highlight",
            tooltip="Paint the pixels where the models disagree (magenta) on both panels.",
        ),
    ]

    def __init__(
        self,
        project_id: int,
        result_id: int,
        image_name: str,
        *,
        images: Sequence[str] | None = None,
        sharp_widget: type[Widget] | None = None,
    ) -> None:
        """`sharp_widget`: a textual-image widget class for sharp images (default: the one found
        by `prepare_terminal_graphics`, or none: half blocks)."""
        super().__init__()
        self.project_id = project_id
        self.result_id = result_id
        self.image_name = image_name
        self.images: list[str] = list(images) if images else [image_name]
        if image_name not in self.images:
            self.images.insert(0, image_name)
        self.threshold = DEFAULT_THRESHOLD
        self.mode: ViewMode = "side-by-side"
        self.highlight = True
        self.report: ReportImages | None = None
        self.prepared: PreparedImage | None = None
        self.last: Visualization | None = None
        self._render_timer: Timer | None = None
        self.sharp_widget = sharp_widget or terminal_graphics_widget()
        self.sharp = self.sharp_widget is not None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("Loading the report…", id="vis-info")
        with Horizontal(id="vis-panels"):
            for panel, title in (
                ("optimized", "A. Optimized model"),
                ("parent", "B. Parent model"),
                ("overlay", "Overlay: agreement in class colours, disagreement in magenta"),
            ):
                with Vertical(id=f"panel-{panel}", classes="panel"):
                    yield Label(title, id=f"title-{panel}", classes="panel-title")
                    with PanelArea(id=f"area-{panel}", classes="panel-area"):
                        yield PanelImage(id=f"image-{panel}", classes="panel-image")
                    yield Static(id=f"legend-{panel}", classes="panel-legend")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.title = "Visualize"
        self.sub_title = self.image_name
        self._apply_mode()
        project_id, result_id = self.project_id, self.result_id
        self.tasks.run(
            lambda ws: load_report_images(ws, project_id, result_id),
            self._report_loaded,
            group=LOAD_GROUP,
            description="Load the report",
        )

    # -- workers -----------------------------------------------------------------

    def _report_loaded(self, report: ReportImages) -> None:
        self.report = report
        self.show_image(self.image_name)

    @work(
        thread=True,
        exclusive=True,
        exit_on_error=False,
        group=IMAGE_GROUP,
        description="Load the image",
    )
    def load_image(self, report: ReportImages, name: str) -> PreparedImage:
        return prepare_image(report, name)

    @work(
        thread=True,
        exclusive=True,
        exit_on_error=False,
        group=RENDER_GROUP,
        description="Draw the masks",
    )
    def draw(
        self,
        prepared: PreparedImage,
        threshold: float,
        highlight: bool,
        cells: dict[Panel, tuple[int, int]],
        sharp: bool,
    ) -> tuple[PreparedImage, Visualization, dict[Panel, Pixels | Image.Image]]:
        comparison = prepared.comparison
        width, height = comparison.working_size
        columns = min(c for c, _ in cells.values())
        rows = min(r for _, r in cells.values())
        # Terminal graphics get every pixel of the working resolution; half blocks two per cell.
        size = None if sharp else half_block_size(width, height, columns, rows)
        vis = comparison.render(threshold, size, highlight=highlight)
        images: dict[Panel, Pixels | Image.Image] = {}
        for panel in cells:
            if get_current_worker().is_cancelled:
                break
            image = to_pil(vis.panel(panel))
            images[panel] = image if sharp else Pixels.from_image(image)
        return prepared, vis, images

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker.group == LOAD_GROUP:
            # self.tasks hands the report to _report_loaded, and any failure (a SegtuiError
            # or not) to the app's notification; the panel says so here.
            if event.state == WorkerState.ERROR:
                self.query_one("#vis-info", Static).update("Could not load the report.")
            return
        if worker.group not in (IMAGE_GROUP, RENDER_GROUP):
            return
        if event.state == WorkerState.ERROR:
            self.segtui.report_worker_failure(worker)
            return
        if event.state != WorkerState.SUCCESS or worker.result is None:
            return
        if worker.group == IMAGE_GROUP:
            assert isinstance(worker.result, PreparedImage)
            if worker.result.name == self.image_name:
                self.prepared = worker.result
                self.schedule_render(0)
        elif worker.group == RENDER_GROUP:
            prepared, vis, pixels = worker.result
            if prepared is self.prepared:
                self._show(vis, pixels)

    # -- drawing -----------------------------------------------------------------

    def show_image(self, name: str) -> None:
        if self.report is None:
            return
        self.image_name = name
        self.sub_title = name
        self.prepared = None
        self._update_info()
        self.load_image(self.report, name)

    def schedule_render(self, delay: float = 0.08) -> None:
        """Redraw soon; resizes come in bursts, so they coalesce."""
        if self._render_timer is not None:
            self._render_timer.stop()
        self._render_timer = self.set_timer(max(delay, 0.01), self._render_now)

    def _panel_cells(self) -> dict[Panel, tuple[int, int]]:
        panels: tuple[Panel, ...] = (
            ("overlay",) if self.mode == "overlay" else ("optimized", "parent")
        )
        sizes = [self.query_one(f"#area-{panel}", PanelArea).content_size for panel in panels]
        # The side-by-side panels share one size (the smaller), so the images stay level.
        columns = max(4, min(size.width for size in sizes))
        rows = max(2, min(size.height for size in sizes))
        return {panel: (columns, rows) for panel in panels}

    def _render_now(self) -> None:
        self._render_timer = None
        if self.prepared is None:
            return
        self.draw(self.prepared, self.threshold, self.highlight, self._panel_cells(), self.sharp)

    def _show(self, vis: Visualization, images: dict[Panel, Pixels | Image.Image]) -> None:
        self.last = vis
        cells = self._panel_cells()
        for panel, image in images.items():
            half_blocks = self.query_one(f"#image-{panel}", PanelImage)
            sharp = self.query(f"#sharp-{panel}")
            if isinstance(image, Pixels):
                half_blocks.update(image)
                half_blocks.display = True
                sharp.set(display=False)
                continue
            columns, rows = cells.get(panel, (4, 2))
            width, height = half_block_size(image.width, image.height, columns, rows)
            if sharp:
                widget = sharp.first()
            else:
                assert self.sharp_widget is not None
                widget = self.sharp_widget(id=f"sharp-{panel}", classes="panel-sharp")
                self.query_one(f"#area-{panel}", PanelArea).mount(widget)
            widget.image = image  # type: ignore[attr-defined]
            widget.styles.width = width
            widget.styles.height = height // 2
            widget.display = True
            half_blocks.display = False
        error_style = f"bold {self.app.current_theme.error or 'red'}"
        legends = {}
        for panel, entries in (("optimized", vis.optimized_legend), ("parent", vis.parent_legend)):
            width = self.query_one(f"#legend-{panel}", Static).content_size.width
            legends[panel] = legend_text(entries, error_style=error_style, width=width)
        # Equal heights keep the two images level.
        lines = max(len(t.plain.splitlines()) for t in legends.values())
        for panel, text in legends.items():
            legend = self.query_one(f"#legend-{panel}", Static)
            legend.styles.min_height = lines
            legend.update(text)
        width = self.query_one("#legend-overlay", Static).content_size.width
        overlay = Text.assemble(
            ("A: ", "bold"),
            legend_text(vis.optimized_legend, error_style=error_style, width=max(0, width - 3)),
            "\n",
            ("B: ", "bold"),
            legend_text(vis.parent_legend, error_style=error_style, width=max(0, width - 3)),
        )
        self.query_one("#legend-overlay", Static).update(overlay)
        self.query_one("#title-optimized", Label).update(
            f"A. Optimized model · {_instances(len(vis.optimized_legend))}"
        )
        self.query_one("#title-parent", Label).update(
            f"B. Parent model · {_instances(len(vis.parent_legend))}"
        )
        self._update_info()

    def _update_info(self) -> None:
        position = self.images.index(self.image_name) + 1 if self.image_name in self.images else 0
        text = Text()
        text.append(self.image_name, "bold")
        text.append(f"  ({position} of {len(self.images)})  ")
        text.append(f"threshold {self.threshold:.2f}", "bold")
        text.append(f" · {self.mode} · highlight {'on' if self.highlight else 'off'}")
        if self.last is not None and self.prepared is not None:
            text.append("\n" + summary_line(self.last), "dim")
        if self.prepared is not None and self.prepared.unreadable:
            text.append(f"\nThe image cannot be read ({self.prepared.unreadable}): masks on grey.")
        self.query_one("#vis-info", Static).update(text)

    def _apply_mode(self) -> None:
        side = self.mode == "side-by-side"
        self.query_one("#panel-optimized").display = side
        self.query_one("#panel-parent").display = side
        self.query_one("#panel-overlay").display = not side

    # -- actions -----------------------------------------------------------------

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_step(self, delta: int) -> None:
        if len(self.images) < 2:
            self.notify("This is the only image in the report table.", timeout=2)
            return
        position = self.images.index(self.image_name) if self.image_name in self.images else 0
        self.last = None
        self.show_image(self.images[(position + delta) % len(self.images)])

    def action_threshold(self, direction: int) -> None:
        self.threshold = step_threshold(self.threshold, direction * THRESHOLD_STEP)
        self._update_info()
        self.schedule_render(0)

    def action_toggle_mode(self) -> None:
        self.mode = "overlay" if self.mode == "side-by-side" else "side-by-side"
        self._apply_mode()
        self._update_info()
        self.schedule_render()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "toggle_graphics":
            return self.sharp_widget is not None
        return True

    def action_toggle_graphics(self) -> None:
        self.sharp = not self.sharp and self.sharp_widget is not None
        self.notify("Terminal graphics" if self.sharp else "Half-block characters", timeout=2)
        self.schedule_render(0)

    def action_toggle_highlight(self) -> None:
        self.highlight = not self.highlight
        self._update_info()
        self.schedule_render(0)
