"""The segtui Textual app: start screen, create-project flow, project pages.

Its start path imports no OpenVINO, OpenCV, pycocotools or NNCF (a test checks):
the first frame comes before the engine is loaded. A second after the start a worker
loads what the project page needs (the engine with it) and asks OpenVINO for the
devices, off the event loop; the project and create-project screens are imported
when first opened.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import ClassVar

from textual import work
from textual.app import App
from textual.binding import Binding, BindingType
from textual.worker import Worker, WorkerFailed, WorkerState

from segtui.core import storage
from segtui.core.errors import Cancelled
from segtui.core.priority import JOB_NICE_ENV
from segtui.core.projects import available_devices
from segtui.core.records import JobRecord
from segtui.core.sample import SampleProjects, ensure_sample
from segtui.core.workspace import Workspace, default_workspace_dir
from segtui.ui import idle_gc, messages
from segtui.ui.commands import ProjectCommands
from segtui.ui.job_watcher import JobWatcher
from segtui.ui.screens.base import in_workspace
from segtui.ui.screens.help import HelpScreen, binding_rows
from segtui.ui.screens.start import StartScreen
from segtui.ui.styles import css_path

SAMPLE_GROUP = "sample"
#: The worker that reads the running jobs before quitting (see `action_quit`).
QUIT_GROUP = "quit"
#: The exit status after a failure (a refused workspace, an unexpected error).
EXIT_FAILURE = 1
#: The exit status after ctrl+c reached Python (128 + SIGINT).
EXIT_INTERRUPTED = 130
#: Seconds after start before the engine is loaded and the devices asked (see `load_engine`).
ENGINE_DELAY_S = 1.0
#: What `load_engine` imports: the project page, and with it OpenVINO, OpenCV, numpy.
ENGINE_MODULE = "segtui.ui.screens.project"
#: How far below the TUI the jobs it starts run (os.nice): a benchmark that keeps every core
#: busy otherwise leaves the event loop waiting for one (F1 took 0.2–0.9 s instead of 0.07).
JOB_NICENESS = 10


class SegtuiApp(App[None]):
    """Keyboard-driven front end of a segtui workspace."""

    TITLE = "segtui"
    CSS_PATH = css_path("app.tcss")
    COMMANDS = App.COMMANDS | {ProjectCommands}
    # Textual declares this a plain attribute on App; a list literal is its documented form.
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]  # noqa: RUF012

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f1", "help", "More", id="app.help", tooltip="Show every key that works here."),
        Binding(
            "ctrl+q",
            "quit",
            "Quit",
            show=False,
            priority=True,
            id="app.quit",
            tooltip="Quit segtui (asks first while a job runs; the job goes on).",
        ),
    ]

    def __init__(self, workspace: Workspace, register_sample: bool = True) -> None:
        super().__init__()
        self.workspace = workspace
        self.register_sample = register_sample
        self._devices: list[str] | None = None
        self.startup_notice: str | None = None
        #: Follows the jobs for every screen (see segtui.ui.job_watcher).
        self.job_watcher = JobWatcher(self, workspace.root)
        #: Full garbage collections between frames (see segtui.ui.idle_gc).
        self.collector = idle_gc.IdleCollector()
        #: Freeze what the process holds once the engine is loaded (`run_app`: the process is
        #: the app's; not in tests, where apps come and go and frozen ones would never be freed).
        self.freeze_when_loaded = False
        #: The unexpected error that stopped the app, and the log file that holds its traceback.
        self.crash: BaseException | None = None
        self.crash_log: Path | None = None

    @property
    def devices(self) -> list[str]:
        """The devices OpenVINO offers here (asked once, in a worker after start: the Core is slow)."""
        if self._devices is None:
            self._devices = available_devices()
        return self._devices

    def on_mount(self) -> None:
        self.job_watcher.start()
        self.collector.start()
        self.set_interval(idle_gc.CHECK_SECONDS, self.collector.check)
        self.screen_change_signal.subscribe(self, self.job_watcher.screen_shown)
        self.push_screen(StartScreen())
        # Not at once: the worker imports OpenVINO and OpenCV (about a second of CPU), which
        # would compete with the first frames (the project list) for the interpreter.
        self.set_timer(ENGINE_DELAY_S, self.load_engine)
        if self.startup_notice:
            self.notify(self.startup_notice, severity="warning", timeout=10)
        if self.register_sample:
            self.register_sample_projects(self.workspace.root)

    def on_unmount(self) -> None:
        self.job_watcher.stop()
        self.collector.stop()

    # -- the error boundary: an unhandled exception ends the app with a message, status 1 ----

    def _handle_exception(self, error: Exception) -> None:
        """Textual's end for an unhandled exception; its traceback goes to a log file instead."""
        if self.crash is None:
            # A worker's failure comes wrapped; the log and the message are about what it raised.
            self.crash = error.error if isinstance(error, WorkerFailed) else error
            self.crash_log = storage.write_error_log(self.crash, self.workspace.root)
        super()._handle_exception(error)
        # Textual queued a rendering of the error (a traceback with locals) to print at exit.
        self._exit_renderables.clear()

    def _fatal_error(self) -> None:
        # Textual renders the traceback here (for the screen); the log file holds it instead.
        self._close_messages_no_wait()

    def exit_status(self) -> int:
        """The process's exit status once the app has ended; a crash is reported on stderr."""
        if self.crash is not None:
            return _print_failure(self.crash, self.workspace.root, self.crash_log)
        return self.return_code or 0

    # -- jobs: the watcher's news, handed to the screens and widgets that subscribed ----

    def on_job_changed(self, message: messages.JobChanged) -> None:
        self.job_watcher.publish(message)

    def on_job_finished(self, message: messages.JobFinished) -> None:
        self.job_watcher.publish(message)

    def on_job_watch_failed(self, message: messages.JobWatchFailed) -> None:
        named = storage.storage_error_from_text(message.error, self.workspace.root)
        self.notify(
            f"Cannot read the jobs from the workspace: {message.error}"
            if named is None
            else f"Cannot read the jobs: {named.message}\n{named.hint}",
            title="Jobs",
            severity="error",
            timeout=10,
        )

    # -- actions (each also offered in the command palette) -----------------------

    def action_new_project(self) -> None:
        from segtui.ui.screens.create_project import CreateProjectScreen

        if not isinstance(self.screen, CreateProjectScreen):
            self.push_screen(CreateProjectScreen())

    def action_refresh(self) -> None:
        from segtui.ui.screens.project import ProjectScreen

        for screen in self.screen_stack:
            if isinstance(screen, StartScreen | ProjectScreen):
                screen.reload()
        self.notify("Reloaded from the workspace.", timeout=2)

    def action_help(self) -> None:
        # The one help screen is open already (maybe under the command palette).
        if any(isinstance(screen, HelpScreen) for screen in self.screen_stack):
            return
        focused = self.focused
        if focused is None:
            where = "nothing"
        else:
            where = f"#{focused.id}" if focused.id else type(focused).__name__
            owner = focused.parent
            if not focused.id and owner is not None and getattr(owner, "id", None):
                where += f" in #{owner.id}"
        title = str(self.screen.title or self.title)
        rows = binding_rows(self.screen)
        # One help screen, installed once and refilled: composing and styling a new modal
        # on every F1 was most of the time from the key to the first frame.
        if not self.is_screen_installed("help"):
            self.install_screen(HelpScreen(title, where, rows, str(self.workspace.root)), "help")
        else:
            help_screen = self.get_screen("help")
            assert isinstance(help_screen, HelpScreen)
            help_screen.show(title, where, rows, str(self.workspace.root))
        self.push_screen("help")

    async def action_quit(self) -> None:
        """Quit; while jobs run, first ask (they go on: the app never waits for them)."""
        from segtui.ui.screens.quit_confirm import QuitConfirmScreen

        if isinstance(self.screen, QuitConfirmScreen):
            return
        self.read_active_jobs(self.workspace.root)

    @work(thread=True, exclusive=True, exit_on_error=False, group=QUIT_GROUP)
    def read_active_jobs(self, workspace_root: Path) -> list[JobRecord]:
        """The queued and running jobs (the question before quitting names them)."""
        return in_workspace(workspace_root, lambda ws: ws.watched_jobs())

    def _confirm_quit(self, jobs: list[JobRecord]) -> None:
        from segtui.ui.screens.quit_confirm import QuitConfirmScreen

        if not jobs:
            self.exit()
        elif not isinstance(self.screen, QuitConfirmScreen):
            self.push_screen(QuitConfirmScreen(jobs), self._quit_answered)

    def _quit_answered(self, quit_app: bool | None) -> None:
        if quit_app:
            self.exit()

    def show_project(self, project_id: int, *, replace: bool = False) -> None:
        """Open the page of a project (replacing the current screen when `replace`).

        The page loads in a worker; a project that is not there is reported and the
        page closes again.
        """
        from segtui.ui.screens.project import ProjectScreen

        screen = ProjectScreen(project_id)
        if replace:
            self.switch_screen(screen)
        else:
            self.push_screen(screen)

    def on_open_project(self, event: messages.OpenProject) -> None:
        self.show_project(event.project_id)

    def on_projects_changed(self, _event: messages.ProjectsChanged) -> None:
        # A project list under another screen reads them again when it is back on top.
        if isinstance(self.screen, StartScreen):
            self.screen.reload()

    # -- workers ---------------------------------------------------------------------

    @work(
        thread=True,
        exclusive=True,
        exit_on_error=False,
        group=SAMPLE_GROUP,
        description="Register the sample projects",
    )
    def register_sample_projects(self, workspace_root: Path) -> SampleProjects | None:
        return in_workspace(workspace_root, ensure_sample)

    @work(thread=True, exit_on_error=False, group="engine", description="Load OpenVINO")
    def load_engine(self) -> None:
        """Import the project page's modules and ask for the devices, in a thread.

        The first Enter on a project then finds its modules loaded instead of importing
        OpenVINO and OpenCV on the event loop (a second without frames). Then, in
        `segtui` itself, what the process holds is frozen for the garbage collector.
        """
        importlib.import_module(ENGINE_MODULE)
        self._devices = available_devices()
        if self.freeze_when_loaded:
            # What is loaded by now lives as long as the app: out of the collector's sight,
            # so that a full collection no longer walks it on the event loop.
            idle_gc.freeze()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The app's own workers; screens pass their failures to `report_worker_failure`."""
        worker = event.worker
        if worker.group == QUIT_GROUP and event.state in (WorkerState.SUCCESS, WorkerState.ERROR):
            # Jobs that cannot be read never keep the user in: quit as asked.
            jobs = worker.result if isinstance(worker.result, list) else []
            self._confirm_quit(jobs)
        elif event.state == WorkerState.ERROR:
            self.report_worker_failure(worker)
        elif (
            event.state == WorkerState.SUCCESS
            and worker.group == SAMPLE_GROUP
            and worker.result is not None
        ):
            self.notify("Sample projects registered", timeout=4)
            self.post_message(messages.ProjectsChanged())

    def report_worker_failure(self, worker: Worker[object]) -> None:
        """The one place where a failed worker becomes a notification (never a traceback)."""
        error = worker.error
        what = worker.description or worker.name
        if isinstance(error, Cancelled):
            self.notify(f"{what}: cancelled.", timeout=4)
            return
        named = None if error is None else storage.user_error(error, self.workspace.root)
        if named is not None:
            text = named.message + (f"\n{named.hint}" if named.hint else "")
        else:
            log = None if error is None else storage.write_error_log(error, self.workspace.root)
            text = f"Unexpected error: {type(error).__name__}: {error}"
            text += f"\nDetails: {log}" if log else ""
        self.log.error(f"worker {worker.name!r} failed: {error!r}")
        self.notify(
            text,
            title=f"{what} failed",
            severity="error",
            timeout=10,
        )


def run_app(workspace_dir: Path | None) -> int:
    """Open the TUI on the workspace at `workspace_dir` (or the default one); the exit status.

    The workspace is opened before Textual starts, so that a workspace that cannot be
    opened is reported as plain lines on the terminal; every failure ends in a message,
    its details in a log file, and a non-zero status.
    """
    from segtui.core.jobs import recover_jobs
    from segtui.ui.terminal_graphics import prepare_terminal_graphics

    give_way_to_the_tui()
    root = default_workspace_dir(workspace_dir)
    try:
        workspace = Workspace.open(workspace_dir)
    except Exception as exc:
        return _report_failure(exc, root)
    try:
        # Jobs whose process died while segtui was away are shown as interrupted, their partial files gone.
        interrupted = recover_jobs(workspace)
        workspace.clean_tmp()
        # textual-image must ask the terminal about kitty/sixel before Textual takes it over.
        prepare_terminal_graphics()
        app = SegtuiApp(workspace)
        app.freeze_when_loaded = True
        if interrupted:
            app.startup_notice = (
                f"{len(interrupted)} job(s) were interrupted while segtui was away "
                f"(ids {', '.join(map(str, interrupted))}); their partial files were removed."
            )
        app.run()
    except KeyboardInterrupt:
        sys.stderr.write("segtui: interrupted.\n")
        return EXIT_INTERRUPTED
    except Exception as exc:
        return _report_failure(exc, root)
    finally:
        workspace.close()
    return app.exit_status()


def give_way_to_the_tui() -> None:
    """Make the jobs this process starts run below it (unless $SEGTUI_JOB_NICE says otherwise)."""
    os.environ.setdefault(JOB_NICE_ENV, str(JOB_NICENESS))


def _report_failure(exc: BaseException, root: Path) -> int:
    """Print what went wrong and what to do, its traceback in a log file; the exit status."""
    return _print_failure(exc, root, storage.write_error_log(exc, root))


def _print_failure(exc: BaseException, root: Path, log: Path | None) -> int:
    error = storage.user_error(exc, root)
    if error is None:
        message = f"segtui stopped on an unexpected error: {type(exc).__name__}: {exc}"
        hint = "This is a bug in segtui; please report it with the log file below."
    else:
        message, hint = error.message, error.hint
    lines = [f"segtui: error: {message}", hint, f"Details: {log}" if log else ""]
    sys.stderr.write("".join(f"{line}\n" for line in lines if line))
    return EXIT_FAILURE
