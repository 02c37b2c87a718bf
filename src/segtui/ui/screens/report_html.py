"""The report screen's H: the stored report written as a self-contained HTML page.

Written in a thread (drawing the images where A ≠ B takes a moment) into
`<workspace>/reports-html/`; the notification names the file and its size.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from segtui.core.errors import SegtuiError
from segtui.core.workspace import Workspace
from segtui.ui.screens.base import SegtuiScreen

if TYPE_CHECKING:
    from textual.notifications import SeverityLevel

    from segtui.core.html_report import WrittenHtmlReport

HTML_GROUP = "report-html"


def save_html(screen: SegtuiScreen, project_id: int, result_id: int) -> None:
    """Write report `result_id`'s page in a thread; notify where it went (or why it did not)."""

    def write(ws: Workspace) -> WrittenHtmlReport:
        # Imported here: drawing loads OpenCV, which the screen's opening does not need.
        from segtui.core.html_report import html_report_path, write_html_report

        return write_html_report(ws, result_id, html_report_path(ws, project_id, result_id))

    def done(written: WrittenHtmlReport) -> None:
        # Saved without its images (damaged predictions): still saved, but say so plainly.
        severity: SeverityLevel = "information" if written.images_problem is None else "warning"
        screen.notify(
            written.describe(), title="Report saved as HTML", severity=severity, timeout=12
        )

    def refused(error: SegtuiError) -> None:
        screen.notify(f"{error.message}\n{error.hint}".strip(), severity="error", timeout=10)

    screen.notify("Writing the HTML report…", timeout=3)
    screen.tasks.run(
        write,
        done,
        group=HTML_GROUP,
        description="Save the report as HTML",
        refused=refused,
    )
