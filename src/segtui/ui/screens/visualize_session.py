"""What Visualize keeps while its report screen is open: the report read once, the user's view.

The report screen makes one `VisualizeSession` per stored report and hands it to
each Visualize it opens, so that Visualize opens at the threshold the user left it
at (the report's own at first), shows an image already drawn from memory, and tells
the report which image was shown last. Drawings are made through the session
(`draw`), by Visualize and, for the row under the report's cursor, by the report
screen: one drawing is made once, whoever asked first, and whoever waits for it is
told (`listeners`). Light to import (no imaging libraries): the report screen
imports it when it starts.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from textual.dom import DOMNode
from textual.worker import Worker, WorkerState, get_current_worker

from segtui.core.errors import SegtuiError
from segtui.core.report import ReportImages, report_data, report_predictions
from segtui.core.settings import REPORT
from segtui.core.workspace import Workspace

if TYPE_CHECKING:
    from segtui.ui.screens.visualize_drawing import Drawing, DrawRequest, PreparedImage

#: Side by side (A and B), or one overlay of both.
ViewMode = Literal["side-by-side", "overlay"]
K = TypeVar("K")
V = TypeVar("V")


class Recent(Generic[K, V]):
    """The `size` values used last, by key (the oldest goes first)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)


def load_report_images(ws: Workspace, project_id: int, result_id: int) -> ReportImages:
    """Read a report's stored predictions and its dataset's image paths (in a thread)."""
    from segtui.core.datasets import image_path

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
    summary = report_data(result)["summary"]
    return ReportImages(
        optimized={p.image: p for p in optimized},
        parent={p.image: p for p in parent},
        paths=paths,
        class_names=list(ws.model(project.model_id).class_names),
        threshold=float(summary.get("threshold", REPORT.threshold.default)),
        iou=float(summary.get("iou", REPORT.iou.default)),
    )


def preload_report_images(ws: Workspace, project_id: int, result_id: int) -> ReportImages:
    """`load_report_images`, and Visualize's own modules imported, ahead of the first opening."""
    import segtui.ui.screens.visualize  # noqa: F401  (imaging libraries: a second or so, once)

    return load_report_images(ws, project_id, result_id)


#: Decoded images kept (masks at the working resolution: a few MB each for large photos).
PREPARED_KEPT = 6
#: Drawings kept (a drawing's panels at the panel size; sharp ones at the working resolution).
DRAWINGS_KEPT = 12


@dataclass
class VisualizeSession:
    """Visualize's state for one stored report, kept by the report screen between openings."""

    project_id: int
    result_id: int
    #: The score threshold drawn: the report's own until the user changes it (None: unread).
    threshold: float | None = None
    mode: ViewMode = "side-by-side"
    highlight: bool = True
    report: ReportImages | None = None
    #: The image Visualize showed last (the report puts its cursor there).
    last_image: str | None = None
    prepared: Recent[str, PreparedImage] = field(default_factory=lambda: Recent(PREPARED_KEPT))
    drawings: Recent[DrawRequest, Drawing] = field(default_factory=lambda: Recent(DRAWINGS_KEPT))
    #: What Visualize asked to draw last, and the terminal's size then: a drawing for the
    #: report's cursor copies it (the panels' size, threshold and view) while that holds.
    template: DrawRequest | None = None
    screen_size: tuple[int, int] | None = None
    #: Drawings on their way, each in a thread worker of the screen that asked.
    in_flight: dict[DrawRequest, Worker[Any]] = field(default_factory=dict)
    #: Told of every finished drawing (a Visualize screen while it is open).
    listeners: list[Callable[[Drawing], None]] = field(default_factory=list)

    def take_report(self, report: ReportImages) -> None:
        """The report's predictions, read; the threshold starts at the report's."""
        if self.report is None:
            self.report = report
        if self.threshold is None:
            self.threshold = report.threshold

    def draw(self, node: DOMNode, request: DrawRequest, group: str) -> bool:
        """Draw `request` in a thread worker of `node` (its group's newer worker replaces an
        older one); nothing when it is kept or on its way. False without the report."""
        report = self.report
        if report is None:
            return False
        on_its_way = self.in_flight.get(request)
        if request in self.drawings or (
            on_its_way is not None
            and not on_its_way.is_cancelled
            and on_its_way.state in (WorkerState.PENDING, WorkerState.RUNNING)
        ):
            return True
        from segtui.ui.screens.visualize_drawing import draw

        prepared = self.prepared.get(request.name)

        def drawing() -> Drawing | None:
            worker = get_current_worker()
            return draw(report, prepared, request, lambda: worker.is_cancelled)

        # A description of its own: Textual's default is the repr of the call (megabytes).
        self.in_flight[request] = node.run_worker(
            drawing,
            thread=True,
            exclusive=True,
            exit_on_error=False,
            group=group,
            description=f"Draw {request.name}",
        )
        return True

    def worker_changed(self, worker: Worker[Any], state: WorkerState) -> None:
        """From the asking screen's worker events: a finished drawing is kept and told."""
        from segtui.ui.screens.visualize_drawing import Drawing

        if state in (WorkerState.PENDING, WorkerState.RUNNING):
            return
        request = next((r for r, w in self.in_flight.items() if w is worker), None)
        if request is not None:
            del self.in_flight[request]
        drawing = worker.result
        if state != WorkerState.SUCCESS or not isinstance(drawing, Drawing):
            return
        self.prepared.put(drawing.prepared.name, drawing.prepared)
        self.drawings.put(drawing.request, drawing)
        for listener in list(self.listeners):
            listener(drawing)
