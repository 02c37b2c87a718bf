"""The table of job kinds: each kind's handler, and the context a handler runs in.

`segtui.core.job_kinds` registers the built-in kinds here with `@job_kind(...)`;
`segtui.core.jobs` looks them up. Neither imports the other's internals, so the two
modules do not import each other.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from segtui.core.errors import SegtuiError
from segtui.core.progress import CancelToken
from segtui.core.records import JobRecord
from segtui.core.types import JobKind
from segtui.core.workspace import Workspace


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
