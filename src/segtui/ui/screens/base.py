"""What every segtui screen shares: typed access to the app, and workspace work off the event loop.

Screens never read or write the workspace on the event loop. `WorkspaceTasks.run`
starts a thread worker that opens its own `Workspace` (SQLite connections belong
to the thread that opened them), runs a task that returns a typed snapshot of what
the screen shows, and hands that snapshot to a callback on the event loop, which
alone touches widgets. A worker replaced by a newer one in its group (exclusive),
or whose screen has gone, is cancelled and its snapshot dropped; a failure goes to
the app's one notification for failed workers unless it is a refusal the caller shows.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

from textual import on
from textual.binding import Binding, BindingType
from textual.dom import DOMNode
from textual.screen import ModalScreen, Screen
from textual.worker import Worker, WorkerState

from segtui.core.errors import SegtuiError
from segtui.core.workspace import Workspace

if TYPE_CHECKING:
    from segtui.ui.app import SegtuiApp
    from segtui.ui.widgets.job_monitor import JobMonitor

T = TypeVar("T")
#: The states a worker ends in.
FINISHED_STATES = (WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED)


def segtui_app(node: DOMNode) -> SegtuiApp:
    """`node`'s app, typed."""
    from segtui.ui.app import SegtuiApp

    assert isinstance(node.app, SegtuiApp)
    return node.app


@dataclass(frozen=True)
class _Handoff:
    """Where a task's snapshot (or its failure) goes on the event loop."""

    then: Callable[[Any], object]
    refused: Callable[[SegtuiError], object] | None


class WorkspaceTasks:
    """Workspace tasks of one screen, each in a thread worker with its own connection."""

    def __init__(self, node: DOMNode) -> None:
        self._node = node
        self._pending: dict[Worker[Any], _Handoff] = {}

    def run(
        self,
        task: Callable[[Workspace], T],
        then: Callable[[T], object],
        *,
        group: str,
        description: str,
        exclusive: bool = True,
        refused: Callable[[SegtuiError], object] | None = None,
    ) -> Worker[T]:
        """Run `task(ws)` in a thread; `then(result)` on the event loop (it may be async).

        `exclusive`: a newer task of the same group replaces this one (its result is
        dropped). Tasks that write (submitting a job) pass False, so that none is lost.
        `refused(error)` when the task raises a SegtuiError (a message for the user, shown
        where the screen shows it); any other failure is the app's notification.
        """
        root = segtui_app(self._node).workspace.root

        def in_own_workspace() -> T:
            return in_workspace(root, task)

        worker = self._node.run_worker(
            in_own_workspace,
            group=group,
            description=description,
            exclusive=exclusive,
            exit_on_error=False,
            thread=True,
        )
        self._pending[worker] = _Handoff(then, refused)
        return worker

    async def handle(self, event: Worker.StateChanged) -> None:
        """Hand a finished task's result to its callback (cancelled ones are dropped)."""
        worker = event.worker
        # The event's state, not the worker's: a fast task may have finished before its
        # PENDING and RUNNING messages are handled.
        if worker not in self._pending or event.state not in FINISHED_STATES:
            return
        handoff = self._pending.pop(worker)
        if event.state == WorkerState.SUCCESS:
            shown = handoff.then(worker.result)
            if inspect.isawaitable(shown):
                await shown
        elif event.state == WorkerState.ERROR:
            error = worker.error
            if handoff.refused is not None and isinstance(error, SegtuiError):
                handoff.refused(error)
            else:
                segtui_app(self._node).report_worker_failure(cast("Worker[object]", worker))


def in_workspace(root: Path, task: Callable[[Workspace], T]) -> T:
    """`task(ws)` on a connection of its own, for a thread: SQLite connections belong to
    the thread that opened them."""
    with Workspace(root) as ws:
        return task(ws)


class SegtuiScreen(Screen[None]):
    """A screen of the segtui app."""

    # Below 30 rows (80×24) screens drop their decorations: CSS rules on `.-low` (the
    # app's HORIZONTAL_BREAKPOINTS give `-narrow` below 100 columns the same way).
    VERTICAL_BREAKPOINTS = [(0, "-low"), (30, "-high")]  # noqa: RUF012

    # `l` opens the log of the job the screen follows wherever the focus is (the job card
    # has the same key, but only while it is focused); F1 lists it while a job card is shown.
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "l",
            "job_log",
            "Job log",
            show=False,
            id="screen.job_log",
            tooltip="Show the log of the job this screen follows (l or escape closes it).",
        ),
    ]

    def __init__(
        self, name: str | None = None, id: str | None = None, classes: str | None = None
    ) -> None:
        super().__init__(name, id, classes)
        self.tasks = WorkspaceTasks(self)

    @property
    def segtui(self) -> SegtuiApp:
        return segtui_app(self)

    def _job_monitors(self) -> list[JobMonitor]:
        from segtui.ui.widgets.job_monitor import JobMonitor  # (it imports this module)

        return list(self.query(JobMonitor))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "job_log":
            return bool(self._job_monitors())
        return True

    def action_job_log(self) -> None:
        """The log of the newest job card on the screen."""
        monitors = self._job_monitors()
        if monitors:
            monitors[-1].action_show_log()

    # A decorated handler under its own name: screens keep their on_worker_state_changed
    # for their other workers, and Textual calls both.
    @on(Worker.StateChanged)
    async def _hand_over_task_result(self, event: Worker.StateChanged) -> None:
        await self.tasks.handle(event)


class SegtuiModalScreen(ModalScreen[None]):
    """A dialog of the segtui app: the same workspace tasks as a screen."""

    def __init__(
        self, name: str | None = None, id: str | None = None, classes: str | None = None
    ) -> None:
        super().__init__(name, id, classes)
        self.tasks = WorkspaceTasks(self)

    @on(Worker.StateChanged)
    async def _hand_over_task_result(self, event: Worker.StateChanged) -> None:
        await self.tasks.handle(event)
