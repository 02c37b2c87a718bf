"""The one job watcher: a thread that follows the jobs table for the whole app.

Jobs run in child processes that write their state, progress and stage to the
workspace. Nothing in the UI polls for them: this watcher does, in a thread of its
own with its own database connection (SQLite connections belong to one thread),
every `POLL_SECONDS`, with one query for the queued and running jobs plus the jobs it
was asked about. It also checks that running jobs' processes are alive (psutil) and
marks dead ones interrupted, so the event loop never touches the database, /proc
or a log for a job.

How the news travels:

1. The thread posts `JobChanged` (a job's row changed) and `JobFinished` (it ended)
   to the app. `JobChanged` coalesces: a newer one for the same job replaces one still
   queued, so a burst of progress costs one repaint.
2. The app hands each message to `JobWatcher.publish`, which posts a copy to every
   subscribed widget or screen. Messages do not bubble; each subscriber filters by
   job id or project itself.
3. A widget subscribes on mount (`watcher_of(self).subscribe(self, job_id)`), naming
   the jobs whose current state it needs at once: the watcher reads those on its next
   pass (woken at once) and sends them whatever their state, ended ones included. It
   unsubscribes on unmount; subscribers are held weakly, so a forgotten one goes away
   with its widget.
4. Only the top screen repaints for a job. A screen under another one that handles
   a message makes Textual repaint the screen on top, so the project list and the
   project page follow the jobs only while they are on top (they read the workspace
   again when they come back), and a JobMonitor under another screen keeps its job
   without repainting. When a screen comes back on top the app calls `screen_shown`,
   and the watcher sends its followers the current state of their jobs.

A plain thread, not a Textual worker: a worker that never ends would make
`app.workers.wait_for_complete()` wait forever. The app starts it on mount and
stops it on unmount.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Iterable
from pathlib import Path

from textual.dom import DOMNode
from textual.message_pump import MessagePump
from textual.screen import Screen
from textual.widget import Widget

from segtui.core import jobs
from segtui.core.records import JobRecord
from segtui.core.workspace import Workspace
from segtui.ui import messages

POLL_SECONDS = 0.3


class JobWatcher:
    """Follows the jobs table in a thread and tells the subscribed widgets what changed."""

    def __init__(
        self, app: MessagePump, workspace_root: Path, *, interval: float = POLL_SECONDS
    ) -> None:
        self._app = app
        self._root = Path(workspace_root)
        self._interval = interval
        # Touched on the event loop only: each subscriber and the jobs it follows.
        self._subscribers: weakref.WeakKeyDictionary[MessagePump, tuple[int, ...]] = (
            weakref.WeakKeyDictionary()
        )
        # Shared with the thread.
        self._lock = threading.Lock()
        self._requested: set[int] = set()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # The thread's own: jobs seen queued or running (read until they end), and
        # the last state sent for each.
        self._followed: set[int] = set()
        self._last: dict[int, JobRecord] = {}
        self._failing = False

    # -- the event loop's side ------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="segtui-job-watcher")
            self._thread.daemon = True
            self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def subscribe(self, node: MessagePump, *job_ids: int) -> None:
        """Send `node` every JobChanged/JobFinished, and the current state of `job_ids` now."""
        self._subscribers[node] = job_ids
        self.request(job_ids)

    def unsubscribe(self, node: MessagePump) -> None:
        self._subscribers.pop(node, None)

    def request(self, job_ids: Iterable[int]) -> None:
        """Send the current state of `job_ids` on the next pass (now), whether they changed or not."""
        ids = set(job_ids)
        if ids:
            with self._lock:
                self._requested |= ids
            self._wake.set()

    def screen_shown(self, screen: Screen[object]) -> None:
        """`screen` is on top again: bring its followers up to date."""
        self.request(
            job_id
            for node, job_ids in list(self._subscribers.items())
            if isinstance(node, Widget) and node.is_attached and node.screen is screen
            for job_id in job_ids
        )

    def publish(self, message: messages.JobChanged | messages.JobFinished) -> None:
        """Post a copy of `message` (which came from the thread) to every subscriber."""
        for node in list(self._subscribers):
            node.post_message(type(message)(message.job))

    # -- the thread's side ----------------------------------------------------------

    def _run(self) -> None:
        try:
            ws = Workspace(self._root)
        except Exception as exc:
            self._app.post_message(messages.JobWatchFailed(str(exc)))
            return
        with ws:
            while not self._stop.is_set():
                try:
                    self.poll(ws)
                except Exception as exc:  # keep watching: the next pass may work
                    if not self._failing:
                        self._app.post_message(messages.JobWatchFailed(str(exc)))
                    self._failing = True
                else:
                    self._failing = False
                self._wake.wait(self._interval)
                self._wake.clear()

    def poll(self, ws: Workspace) -> None:
        """One pass: read the jobs, recover dead ones, post what changed."""
        with self._lock:
            requested, self._requested = self._requested, set()
        watched = self._followed | requested
        found = ws.watched_jobs(watched)
        self._followed |= {job.id for job in found if job.state.active}
        if any(jobs.process_gone(ws, job) for job in found) and jobs.recover_jobs(ws):
            # Read them again by id too: the recovered ones are no longer running.
            found = ws.watched_jobs(watched | {job.id for job in found})
        self._followed &= {job.id for job in found}
        for job in found:
            fresh = job.id in requested
            if fresh or self._last.get(job.id) != job:
                self._app.post_message(messages.JobChanged(job))
            if job.state.final:
                if fresh or job.id in self._followed:
                    self._app.post_message(messages.JobFinished(job))
                self._followed.discard(job.id)
                self._last.pop(job.id, None)
            else:
                self._followed.add(job.id)
                self._last[job.id] = job


def watcher_of(node: DOMNode) -> JobWatcher:
    """The job watcher of `node`'s app."""
    watcher = getattr(node.app, "job_watcher", None)
    if not isinstance(watcher, JobWatcher):
        raise RuntimeError(f"{type(node.app).__name__} has no job watcher")
    return watcher


def unsubscribe(node: DOMNode) -> None:
    """Stop sending `node` job messages (a no-op once the app has gone)."""
    with contextlib.suppress(RuntimeError):  # NoActiveAppError, or no watcher
        watcher_of(node).unsubscribe(node)
