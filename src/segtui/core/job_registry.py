"""The table of job kinds: each kind's handler, and the context a handler runs in.

`segtui.core.job_kinds` registers the built-in kinds here with `@job_kind(...)`;
`segtui.core.jobs` looks them up. Neither imports the other's internals, so the two
modules do not import each other.

Test hook: with SEGTUI_TEST_PAUSE_AT=<text> in its environment, a job process holds at
the first progress stage, or `pause_point` name, that starts with <text>: it writes
jobs/ID/paused and waits until that file is removed (at most PAUSE_LIMIT_S), so that a
fault test can kill or cancel it at a chosen moment. Unset, it costs one dict lookup.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from segtui.core.errors import SegtuiError
from segtui.core.progress import CancelToken
from segtui.core.records import JobRecord
from segtui.core.types import JobKind, JobState
from segtui.core.workspace import Workspace

if TYPE_CHECKING:
    from segtui.core.workspace import _Tx

PAUSE_ENV = "SEGTUI_TEST_PAUSE_AT"
PAUSE_FILE = "paused"
PAUSE_LIMIT_S = 120.0
#: The running job's folder (set by the job process): where `pause_point` writes its file.
_job_folder: list[Path] = []
#: How many `cancel_deferred` sections are open (the job's SIGTERM handler reads it).
_deferring: list[int] = [0]


@contextlib.contextmanager
def cancel_deferred() -> Iterator[None]:
    """A section a cancel must not break into (a commit and the files it names).

    The job's SIGTERM handler then only marks the cancel token, and the section
    acts on it where it checks the token; outside, the handler raises `Cancelled`.
    """
    _deferring[0] += 1
    try:
        yield
    finally:
        _deferring[0] -= 1


def past_cancelling() -> None:
    """From here on the job completes: a cancel arriving now is too late (not acted on).

    A handler calls it just before storing its result, so that a cancel never lands
    between that store and the job's recorded end (a stored result of a cancelled job).
    """
    _deferring[0] += 1


def cancel_can_interrupt() -> bool:
    """Whether a cancel may raise where the code is now (no `cancel_deferred` open)."""
    return _deferring[0] == 0


def set_job_folder(folder: Path) -> None:
    """Name the folder of the job this process runs (for `pause_point`)."""
    _job_folder[:] = [folder]


def pause_point(name: str) -> None:
    """Test hook: hold here if SEGTUI_TEST_PAUSE_AT names this point (see the module doc)."""
    target = os.environ.get(PAUSE_ENV)
    if not target or not _job_folder or not name.startswith(target):
        return
    marker = _job_folder[0] / PAUSE_FILE
    if marker.with_suffix(".done").exists():
        return  # held once already: a stage that repeats ("2/3", "3/3") passes
    marker.write_text(name, encoding="utf-8")
    marker.with_suffix(".done").touch()
    deadline = time.monotonic() + PAUSE_LIMIT_S
    while marker.exists() and time.monotonic() < deadline:
        time.sleep(0.02)


@dataclass
class JobContext:
    """What a job handler gets: the workspace, its job, a private work folder, progress and cancel."""

    ws: Workspace
    job: JobRecord
    work_dir: Path
    cancel: CancelToken
    _last_write: float = 0.0
    _last_stage: str = ""
    _started: float = 0.0

    @property
    def stage(self) -> str:
        """The last stage the job reported ('' before its first)."""
        return self._last_stage

    def progress(self, fraction: float, stage: str) -> None:
        """Record progress (rate-limited to ~4 writes a second) with an estimate of the time left."""
        self.cancel.raise_if_cancelled()
        now = time.monotonic()
        fraction = min(max(fraction, 0.0), 1.0)
        if stage == self._last_stage and now - self._last_write < 0.25 and fraction < 1.0:
            return
        elapsed = now - self._started
        eta = elapsed / fraction * (1.0 - fraction) if fraction > 0.02 and elapsed > 1.0 else None
        self.ws.update_job(self.job.id, progress=fraction, stage=stage, eta_s=eta)
        self._last_write, self._last_stage = now, stage
        print(f"[{time.strftime('%H:%M:%S')}] {fraction * 100:5.1f}% {stage}", flush=True)
        pause_point(stage)

    def finish_in(self, tx: _Tx, result: Mapping[str, object]) -> None:
        """Record the job done inside `tx`, the transaction that registers what it made."""
        self.ws.finish_job(self.job.id, JobState.DONE, result=result, tx=tx)


#: A handler returns its kind's result (a TypedDict), stored as the job's JSON result.
JobHandler = Callable[[JobContext], Mapping[str, object]]
H = TypeVar("H", bound=JobHandler)

_HANDLERS: dict[JobKind, JobHandler] = {}


def job_kind(kind: JobKind) -> Callable[[H], H]:
    """Register the decorated function as the handler of `kind`."""

    def register(func: H) -> H:
        _HANDLERS[kind] = func
        return func

    return register


def handler(kind: JobKind) -> JobHandler:
    """The handler registered for `kind`."""
    try:
        return _HANDLERS[kind]
    except KeyError:
        raise SegtuiError(
            f"No handler for jobs of kind {kind!r}.",
            f"Known: {', '.join(sorted(_HANDLERS))}.",
        ) from None


def registered_kinds() -> list[JobKind]:
    return sorted(_HANDLERS)
