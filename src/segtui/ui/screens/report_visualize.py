"""The report screen's side of Visualize: one session per stored report, opened on a row.

The session (`VisualizeSession`) is made when a report is shown, its predictions
read ahead in a thread while the user reads the table. Visualize opens on the
selected row's image and walks the table's images in their current order (as
filtered and sorted); once it has been open, the image under a resting cursor is
drawn ahead, so that Enter shows it at once. The Visualize screen itself is kept
(installed in the app) while the report is shown, so that opening it again builds
nothing. Back from Visualize, the cursor is on the image shown last; the sort is the
user's, untouched.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from textual.timer import Timer
from textual.worker import Worker, WorkerState

from segtui.ui.screens.visualize_session import VisualizeSession, preload_report_images

if TYPE_CHECKING:
    from segtui.ui.screens.report import ReportScreen
    from segtui.ui.screens.visualize import VisualizeScreen

PRELOAD_GROUP = "visualize-preload"
#: The drawing of the image under the report's cursor, made while the cursor rests there.
CURSOR_GROUP = "visualize-cursor"
CURSOR_REST_S = 0.2


class VisualizeLink:
    """Visualize for one report screen: its session, and opening Visualize on a row."""

    def __init__(self, screen: ReportScreen) -> None:
        self.screen = screen
        self.session: VisualizeSession | None = None
        self._cursor_timer: Timer | None = None
        #: The Visualize screen of this session, kept (installed in the app) between
        #: openings: opening again lays out nothing new.
        self._visualize: VisualizeScreen | None = None

    def report_shown(self) -> None:
        """A new session for a newly shown stored report (none without one), read ahead."""
        screen = self.screen
        record = screen.report
        if record is None or screen.data is None:
            self.session = None
            return
        if self.session is not None and self.session.result_id == record.id:
            return
        self.closed()
        session = self.session = VisualizeSession(screen.project_id, record.id)
        project_id, result_id = screen.project_id, record.id
        # Read while the user reads the table, so that Visualize opens without waiting.
        # A failure is Visualize's to say when it is opened (it reads again).
        screen.tasks.run(
            lambda ws: preload_report_images(ws, project_id, result_id),
            session.take_report,
            group=PRELOAD_GROUP,
            description="Read the report's predictions",
            refused=lambda error: None,
        )

    def _image_under_cursor(self) -> str | None:
        table = self.screen.table
        keys = table.row_keys
        if not keys:
            return None
        return self.screen.row_images.get(keys[min(max(table.cursor_row, 0), len(keys) - 1)])

    def open(self, row_key: str) -> None:
        """Visualize on the image of row `row_key`, n and p walking the table's order."""
        from segtui.ui.screens.visualize import VisualizeScreen

        screen = self.screen
        self.report_shown()
        if self.session is None:
            return
        rows = screen.row_images
        order = list(dict.fromkeys(rows[key] for key in screen.table.row_keys))
        visualize = self._visualize
        if visualize is None:
            visualize = self._visualize = VisualizeScreen(
                screen.project_id,
                self.session.result_id,
                rows[row_key],
                images=order,
                session=self.session,
            )
            screen.app.install_screen(visualize, f"visualize-{id(self)}")
        else:
            visualize.open_at(rows[row_key], order)
        screen.app.push_screen(visualize)

    def closed(self) -> None:
        """The kept Visualize screen let go (a new report, or the report screen closed)."""
        visualize, self._visualize = self._visualize, None
        app = self.screen.app
        # On the stack (the app closing under it), it goes with the stack.
        if visualize is not None and visualize not in app.screen_stack:
            app.uninstall_screen(visualize)
            visualize.remove()

    def open_at_cursor(self) -> None:
        """Visualize on the image of the row under the cursor."""
        keys = self.screen.table.row_keys
        if keys and self.screen.report is not None:
            self.open(keys[min(max(self.screen.table.cursor_row, 0), len(keys) - 1)])

    def cursor_moved(self) -> None:
        if self._cursor_timer is not None:
            self._cursor_timer.stop()
        self._cursor_timer = self.screen.set_timer(CURSOR_REST_S, self._draw_under_cursor)

    def _draw_under_cursor(self) -> None:
        """Once Visualize has been open (the panels' size is known), the resting cursor's image."""
        self._cursor_timer = None
        session, screen = self.session, self.screen
        if session is None or session.template is None or not screen.is_current:
            return
        if session.screen_size != (screen.app.size.width, screen.app.size.height):
            return
        image = self._image_under_cursor()
        if image is not None:
            session.draw(screen, replace(session.template, name=image), CURSOR_GROUP)

    def resumed(self) -> None:
        """Back from Visualize: the cursor on the image it showed last (the sort stays)."""
        session, table = self.session, self.screen.table
        if session is None or session.last_image is None:
            return
        if self._image_under_cursor() == session.last_image:
            return
        for row, key in enumerate(table.row_keys):
            if self.screen.row_images.get(key) == session.last_image:
                table.move_cursor(row=row)
                return

    def worker_changed(self, worker: Worker[Any], state: WorkerState) -> bool:
        """A drawing of the cursor's image finished (True), or another worker (False)."""
        if worker.group != CURSOR_GROUP:
            return False
        if self.session is not None:
            self.session.worker_changed(worker, state)
        return True
