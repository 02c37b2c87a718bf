"""Visualize one image of an accuracy report: both models' masks side by side (or overlaid).

The optimized model's masks (A) and the parent's (B) are drawn in class
colours, the pixels where they disagree in magenta, with the instances listed
under each panel. Visualize opens at the report's score threshold and match IoU
(the header says both, and the counts are the report row's); the threshold keys
redraw at another confidence, kept for the next opening while the report screen
is open (`VisualizeSession`); n and p step through the images in the report
table's order, as filtered and sorted. The image is drawn with half-block
characters, which works in every terminal and over SSH; where the terminal speaks
the kitty graphics protocol or sixel and the optional `graphics` extra
(textual-image) is installed, a sharp image is drawn instead
(`prepare_terminal_graphics`, g toggles).

The screen is drawn at once, with its panels saying what they wait for; reading
the report (the report screen usually has it read already), decoding and drawing
run in thread workers, and the next image is drawn ahead while the user looks.
Drawings are kept by image, threshold and panel size, so going back is instant.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import ClassVar

from rich.console import COLOR_SYSTEMS
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container, Horizontal, Vertical
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Footer, Header, Label, Static
from textual.worker import Worker, WorkerState

from segtui.core.report import ReportImages
from segtui.core.visualize import (
    THRESHOLD_STEP,
    Panel,
    Visualization,
    half_block_size,
    score_text,
    step_threshold,
    summary_line,
)
from segtui.ui.screens.base import SegtuiScreen
from segtui.ui.screens.visualize_drawing import (
    Drawing,
    DrawRequest,
    PanelGeometry,
    PreparedImage,
)
from segtui.ui.screens.visualize_session import VisualizeSession, load_report_images
from segtui.ui.styles import css_path
from segtui.ui.terminal_graphics import terminal_graphics_widget
from segtui.ui.widgets.half_blocks import HalfBlockImage, HalfBlocks

LOAD_GROUP = "visualize-load"
DRAW_GROUP = "visualize-draw"
AHEAD_GROUP = "visualize-ahead"
#: The next image is drawn this long after one is shown (not while it is being painted).
AHEAD_DELAY_S = 0.15
PANELS: tuple[Panel, ...] = ("optimized", "parent", "overlay")
MODE_NAMES = {"side-by-side": "side by side", "overlay": "overlay"}


def _instances(count: int) -> str:
    return f"{count} instance" + ("" if count == 1 else "s")


class PanelImage(HalfBlockImage):
    """A panel's image in half-block characters (or what it waits for)."""


class PanelBox(Vertical):
    """One panel (title, image, legend); tells its screen when its size changes."""

    def on_resize(self, event: events.Resize) -> None:
        screen = self.screen
        if isinstance(screen, VisualizeScreen):
            screen.schedule_render()


class VisualizeScreen(SegtuiScreen):
    """One image of a report with the parent's and the optimized model's masks."""

    CSS_PATH = css_path("report.tcss")

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "escape",
            "back",
            "Back",
            show=False,
            id="visualize.back",
            tooltip="Back to the report.",
        ),
        Binding(
            "n",
            "step(1)",
            "Next",
            id="visualize.next",
            tooltip="The next image in the report table's order (as filtered and sorted).",
        ),
        Binding(
            "p",
            "step(-1)",
            "Prev",
            id="visualize.previous",
            tooltip="The previous image in the report table's order (as filtered and sorted).",
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
            show=False,
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
        session: VisualizeSession | None = None,
    ) -> None:
        """`images`: the report table's images in its order (n and p walk them); `session`:
        the report screen's, kept between openings (default: a new one); `sharp_widget`: a
        textual-image widget class for sharp images (default: the one found by
        `prepare_terminal_graphics`, or none: half blocks)."""
        super().__init__()
        self.project_id = project_id
        self.result_id = result_id
        self.session = session or VisualizeSession(project_id, result_id)
        self.image_name = image_name
        self.images: list[str] = list(images) if images else [image_name]
        if image_name not in self.images:
            self.images.insert(0, image_name)
        self.shown: Drawing | None = None
        #: The drawing the screen waits for (shown when a worker brings it).
        self.wanted: DrawRequest | None = None
        self._ahead_timer: Timer | None = None
        #: Why nothing can be shown (the report's predictions could not be read).
        self.problem: str | None = None
        self._direction = 1
        self._render_timer: Timer | None = None
        self.sharp_widget = sharp_widget or terminal_graphics_widget()
        self.sharp = self.sharp_widget is not None

    # -- what is shown -------------------------------------------------------------

    @property
    def threshold(self) -> float | None:
        """The score threshold drawn (None until the report is read)."""
        return self.session.threshold

    @property
    def last(self) -> Visualization | None:
        """The render shown (None until the first image is drawn, and while the next is drawn)."""
        return None if self.shown is None else self.shown.vis

    @property
    def prepared(self) -> PreparedImage | None:
        """The decoded image shown."""
        return None if self.shown is None else self.shown.prepared

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("Reading the report…", id="vis-info")
        with Horizontal(id="vis-panels"):
            for panel, title in (
                ("optimized", "A. Optimized model"),
                ("parent", "B. Parent model"),
                ("overlay", "Overlay: agreement in class colours, disagreement in magenta"),
            ):
                with PanelBox(id=f"panel-{panel}", classes="panel"):
                    yield Label(title, id=f"title-{panel}", classes="panel-title")
                    with Container(id=f"area-{panel}", classes="panel-area"):
                        yield PanelImage(id=f"image-{panel}", classes="panel-image")
                    yield Static(id=f"legend-{panel}", classes="panel-legend")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.title = "Visualize"
        # Two lines, and one for each title, whatever their text: the panels' size (which
        # a drawing is planned for) changes only with the terminal's.
        info = self.query_one("#vis-info", Static)
        info.styles.height = 2
        for widget in (info, *self.query(".panel-title")):
            widget.styles.text_wrap = "nowrap"
            widget.styles.text_overflow = "ellipsis"
        for title in self.query(".panel-title"):
            title.styles.height = 1
        self._apply_mode()
        self._placeholders()
        self._update_info()
        if self.session.report is not None:
            return  # read ahead by the report screen
        project_id, result_id = self.project_id, self.result_id
        self.tasks.run(
            lambda ws: load_report_images(ws, project_id, result_id),
            self._report_loaded,
            group=LOAD_GROUP,
            description="Load the report",
        )

    def _report_loaded(self, report: ReportImages) -> None:
        self.session.take_report(report)
        self.show_image(self.image_name)

    # -- workers -----------------------------------------------------------------

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker.group == LOAD_GROUP:
            # self.tasks hands the report to _report_loaded, and any failure (a SegtuiError
            # or not) to the app's notification; the panel says so here.
            if event.state == WorkerState.ERROR:
                self.problem = "Could not load the report."
                self._placeholders()
                self._update_info()
            return
        if worker.group not in (DRAW_GROUP, AHEAD_GROUP):
            return
        if event.state == WorkerState.ERROR and worker.group == DRAW_GROUP:
            self.segtui.report_worker_failure(worker)
        # The session keeps a finished drawing and tells _drawn.
        self.session.worker_changed(worker, event.state)

    def _drawn(self, drawing: Drawing) -> None:
        """A drawing is done (this screen's, or one the report made for its cursor)."""
        if drawing.request == self.wanted and self.shown is not drawing:
            self._show(drawing)

    def on_screen_resume(self) -> None:
        """Shown (again: the report screen keeps this screen between openings)."""
        if self._drawn not in self.session.listeners:
            self.session.listeners.append(self._drawn)
        self.show_image(self.image_name)  # drawn at once if the panels' size is known

    def on_screen_suspend(self) -> None:
        if self._drawn in self.session.listeners:
            self.session.listeners.remove(self._drawn)
        if self._ahead_timer is not None:
            self._ahead_timer.stop()
            self._ahead_timer = None

    def open_at(self, image_name: str, images: Sequence[str]) -> None:
        """Before this screen is shown again: the image, and the table's images in order."""
        self.image_name = image_name
        self.images = list(images) if images else [image_name]
        if image_name not in self.images:
            self.images.insert(0, image_name)
        self._direction = 1
        # Before it is painted: the new image (or its placeholder), not the last one shown.
        self.show_image(image_name)

    # -- drawing -----------------------------------------------------------------

    def show_image(self, name: str) -> None:
        self.image_name = name
        self.session.last_image = name
        self.request_drawing()

    def schedule_render(self, delay: float = 0.08) -> None:
        """Redraw soon; resizes come in bursts, so they coalesce (the first draws at once)."""
        if self._render_timer is not None:
            self._render_timer.stop()
        if self.shown is None:
            delay = 0.0
        self._render_timer = self.set_timer(max(delay, 0.001), self._render_now)

    def _render_now(self) -> None:
        self._render_timer = None
        self.request_drawing()

    def _geometry(self) -> PanelGeometry | None:
        """The panels to draw and the content size they share (None before the first layout).

        Before it, the size the panels had last time, in a terminal of this size: the
        drawing starts while the screen is laid out.
        """
        panels: tuple[Panel, ...] = (
            ("overlay",) if self.session.mode == "overlay" else ("optimized", "parent")
        )
        sizes = [self.query_one(f"#panel-{panel}", PanelBox).content_size for panel in panels]
        if any(size.width <= 0 or size.height <= 0 for size in sizes):
            template, size = self.session.template, self.app.size
            if template is None or self.session.screen_size != (size.width, size.height):
                return None
            return template.geometry if template.geometry.panels == panels else None
        # The side-by-side panels share one size (the smaller), so the images stay level.
        return PanelGeometry(
            panels, min(size.width for size in sizes), min(size.height for size in sizes)
        )

    def _request(self, name: str) -> DrawRequest | None:
        geometry = self._geometry()
        threshold = self.session.threshold
        if geometry is None or threshold is None:
            return None
        return DrawRequest(
            name=name,
            threshold=threshold,
            highlight=self.session.highlight,
            mode=self.session.mode,
            sharp=self.sharp,
            geometry=geometry,
            error_style=f"bold {self.app.current_theme.error or 'red'}",
            color_system=COLOR_SYSTEMS.get(self.app.console.color_system or ""),
        )

    def request_drawing(self) -> None:
        """Show the current image as the view asks: kept from before, or drawn in a thread."""
        self._update_info()
        request = self._request(self.image_name)
        if self.session.report is None or request is None:
            return
        self.wanted = request
        self.session.template = request
        self.session.screen_size = (self.app.size.width, self.app.size.height)
        if self.shown is not None and self.shown.request == request:
            return
        cached = self.session.drawings.get(request)
        if cached is not None:
            self._show(cached)
            return
        if self.shown is not None and self.shown.request.name != request.name:
            self.shown = None
            self._placeholders()
            self._update_info()
        self.session.draw(self, request, DRAW_GROUP)

    def _draw_next_ahead(self) -> None:
        """Draw the image n (or p, if that was pressed last) will show, while the user looks."""
        self._ahead_timer = None
        shown = self.shown
        if shown is None or len(self.images) < 2:
            return
        position = self.images.index(shown.request.name) if shown.request.name in self.images else 0
        name = self.images[(position + self._direction) % len(self.images)]
        self.session.draw(self, replace(shown.request, name=name), AHEAD_GROUP)

    def _placeholders(self) -> None:
        waiting = "Drawing…"
        if self.session.report is None:
            waiting = "Nothing to draw." if self.problem else "Reading the report…"
        for panel in PANELS:
            self.query_one(f"#image-{panel}", PanelImage).show_text(waiting)
        for panel in ("optimized", "parent"):
            self.query_one(f"#title-{panel}", Label).update(
                "A. Optimized model" if panel == "optimized" else "B. Parent model"
            )

    def _show(self, drawing: Drawing) -> None:
        self.shown = drawing
        vis = drawing.vis
        for panel, picture in drawing.pictures.items():
            half_blocks = self.query_one(f"#image-{panel}", PanelImage)
            sharp = self.query(f"#sharp-{panel}")
            if isinstance(picture, HalfBlocks):
                half_blocks.show(picture)
                half_blocks.display = True
                sharp.set(display=False)
                continue
            width, height = half_block_size(picture.width, picture.height, *drawing.cells)
            if sharp:
                widget = sharp.first()
            else:
                assert self.sharp_widget is not None
                widget = self.sharp_widget(id=f"sharp-{panel}", classes="panel-sharp")
                self.query_one(f"#area-{panel}", Container).mount(widget)
            widget.image = picture  # type: ignore[attr-defined]
            widget.styles.width = width
            widget.styles.height = height // 2
            widget.display = True
            half_blocks.display = False
        for panel, text in drawing.legends.items():
            legend = self.query_one(f"#legend-{panel}", Static)
            # The rows the drawing was planned with: equal on both sides, so images stay level.
            legend.styles.height = drawing.legend_rows
            legend.update(text)
        self.query_one("#title-optimized", Label).update(
            f"A. Optimized model · {_instances(len(vis.optimized_legend))}"
        )
        self.query_one("#title-parent", Label).update(
            f"B. Parent model · {_instances(len(vis.parent_legend))}"
        )
        self._update_info()
        # After this image is painted: the next one is drawn while the user looks at it.
        if self._ahead_timer is not None:
            self._ahead_timer.stop()
        self._ahead_timer = self.set_timer(AHEAD_DELAY_S, self._draw_next_ahead)

    def _update_info(self) -> None:
        """The two header lines: what is drawn (threshold, IoU, image), then what was found."""
        session, name = self.session, self.image_name
        position = self.images.index(name) + 1 if name in self.images else 0
        first, second = Text(), Text(style="dim")
        report = session.report
        if session.threshold is not None and report is not None:
            first.append(f"score ≥ {score_text(session.threshold)}", "bold")
            own = session.threshold == report.threshold
            first.append(
                " (the report's)" if own else f" (report: {score_text(report.threshold)})",
                "dim" if own else "bold",
            )
            first.append(f" · match IoU ≥ {score_text(report.iou)} · ")
        first.append(name, "bold")
        first.append(f" ({position} of {len(self.images)})")
        if session.mode == "overlay":
            first.append(" · overlay")
        if not session.highlight:
            first.append(" · highlight off")
        shown = self.shown
        if self.problem is not None:
            second = Text(self.problem, style="bold")
        elif shown is not None and shown.request.name == name:
            if shown.prepared.unreadable:
                second.append(
                    f"The image cannot be read ({shown.prepared.unreadable}): masks on grey. ",
                    "bold",
                )
            second.append(summary_line(shown.vis))
        else:
            second.append("reading the report…" if report is None else "drawing…")
        self.query_one("#vis-info", Static).update(Text("\n").join([first, second]))
        threshold = session.threshold
        self.sub_title = name + ("" if threshold is None else f" · score ≥ {score_text(threshold)}")

    def _apply_mode(self) -> None:
        side = self.session.mode == "side-by-side"
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
        self._direction = 1 if delta > 0 else -1
        self.show_image(self.images[(position + delta) % len(self.images)])

    def action_threshold(self, direction: int) -> None:
        if self.session.threshold is None:
            return
        self.session.threshold = step_threshold(self.session.threshold, direction * THRESHOLD_STEP)
        self.request_drawing()

    def action_toggle_mode(self) -> None:
        self.session.mode = "overlay" if self.session.mode == "side-by-side" else "side-by-side"
        self._apply_mode()
        self._update_info()
        self.call_after_refresh(self.request_drawing)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "toggle_graphics":
            return self.sharp_widget is not None
        return super().check_action(action, parameters)

    def action_toggle_graphics(self) -> None:
        self.sharp = not self.sharp and self.sharp_widget is not None
        self.notify("Terminal graphics" if self.sharp else "Half-block characters", timeout=2)
        self.request_drawing()

    def action_toggle_highlight(self) -> None:
        self.session.highlight = not self.session.highlight
        self.request_drawing()
