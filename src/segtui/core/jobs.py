"""Durable background jobs: each runs in a child process of its own session.

A job is a row in the workspace (state, progress, stage, ETA, log, result or
error) and a process started with `python -m segtui.core.jobs run ID`, in a
new session so that it survives the terminal closing or an SSH session
dropping. Its partial files live in jobs/ID/work and are removed when it
fails, is cancelled, or is found dead (interrupted). One job runs at a time
(they would fight for the cores); the next queued job is started by whoever
sees the queue free: the submitter, or the job that just finished.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from segtui.core.errors import Cancelled, NotFoundError, SegtuiError
from segtui.core.progress import CancelToken
from segtui.core.workspace import JobRecord, Workspace

FINAL_STATES = ("done", "failed", "cancelled", "interrupted")


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


JobHandler = Callable[[JobContext], dict[str, Any]]
_HANDLERS: dict[str, JobHandler] = {}


def job_kind(name: str) -> Callable[[JobHandler], JobHandler]:
    """Register a handler for a job kind."""

    def register(func: JobHandler) -> JobHandler:
        _HANDLERS[name] = func
        return func

    return register


def handlers() -> dict[str, JobHandler]:
    import segtui.core.job_kinds  # noqa: F401  (registers the built-in kinds)

    return _HANDLERS


def job_dir(ws: Workspace, job_id: int) -> Path:
    return ws.root / "jobs" / str(job_id)


def work_dir(ws: Workspace, job_id: int) -> Path:
    return job_dir(ws, job_id) / "work"


def log_path(ws: Workspace, job_id: int) -> Path:
    return job_dir(ws, job_id) / "log.txt"


def log_tail(path: str | None, lines: int, max_bytes: int = 16_384) -> str:
    """The last `lines` lines of a job log ('' when there is none), reading only its end."""
    if not path:
        return ""
    try:
        with open(path, "rb") as handle:
            # Only the end: NNCF and OpenVINO can write long logs.
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - max_bytes))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _clean_partial(ws: Workspace, job_id: int) -> None:
    shutil.rmtree(work_dir(ws, job_id), ignore_errors=True)


def pid_alive(pid: int | None) -> bool:
    """Whether `pid` is a live segtui job process (not a zombie, not a reused pid)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    proc = Path(f"/proc/{pid}")
    if proc.exists():
        try:
            stat = (proc / "stat").read_text()
            if stat.rsplit(")", 1)[1].split()[0] == "Z":
                return False
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ")
            return b"segtui.core.jobs" in cmdline
        except OSError:
            return False
    return True


def active_job(ws: Workspace, project_id: int, kind: str) -> JobRecord | None:
    """The project's queued or running job of `kind`, if any (to follow it on reopening)."""
    active = [j for j in ws.jobs(project_id) if j.kind == kind and j.active]
    return active[-1] if active else None


def recover_jobs(ws: Workspace) -> list[int]:
    """Mark jobs whose process is gone as interrupted and clean their partial files."""
    interrupted: list[int] = []
    for job in ws.jobs():
        if job.state != "running":
            continue
        stale_claim = (
            job.pid is None and job.started_at is not None and time.time() - job.started_at > 60
        )
        if (job.pid is not None and not pid_alive(job.pid)) or stale_claim:
            ws.update_job(
                job.id,
                state="interrupted",
                finished_at=time.time(),
                error="The job's process ended unexpectedly (killed, or the machine restarted).",
            )
            _clean_partial(ws, job.id)
            interrupted.append(job.id)
    return interrupted


def submit(
    ws: Workspace, kind: str, project_id: int | None, params: dict[str, Any], *, start: bool = True
) -> JobRecord:
    """Queue a job; start it at once when no other job is running."""
    if kind not in handlers():
        raise SegtuiError(f"Unknown job kind {kind!r}.", f"Known: {', '.join(sorted(_HANDLERS))}.")
    job = ws.add_job(kind=kind, project_id=project_id, params=params)
    ws.update_job(job.id, log_path=str(log_path(ws, job.id)))
    if start:
        start_next(ws)
    return ws.job(job.id)


def start_next(ws: Workspace) -> int | None:
    """Start the oldest queued job if none is running; return its id."""
    recover_jobs(ws)
    with ws.transaction() as tx:
        if tx.execute("SELECT 1 FROM jobs WHERE state = 'running'").fetchone():
            return None
        row = tx.execute(
            "SELECT id FROM jobs WHERE state = 'queued' ORDER BY id LIMIT 1"
        ).fetchone()
        if row is None:
            return None
        job_id = int(row[0])
        # Claim it inside the write lock so that two starters never launch it twice.
        tx.execute(
            "UPDATE jobs SET state = 'running', started_at = ?, stage = 'Starting' WHERE id = ?",
            (time.time(), job_id),
        )
    try:
        pid = _spawn(ws, job_id)
    except OSError as exc:
        ws.update_job(job_id, state="failed", error=f"Could not start the job process: {exc}")
        return None
    with ws.transaction() as tx:
        # The child may already have written its own pid; only fill it in if not.
        tx.execute("UPDATE jobs SET pid = COALESCE(pid, ?) WHERE id = ?", (pid, job_id))
    return job_id


def _spawn(ws: Workspace, job_id: int) -> int:
    log = log_path(ws, job_id)
    log.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with log.open("ab") as handle:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "segtui.core.jobs",
                "run",
                str(job_id),
                "--workspace",
                str(ws.root),
            ],
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            env=env,
        )
    return process.pid


def cancel(ws: Workspace, job_id: int, *, timeout: float = 15.0) -> JobRecord:
    """Cancel a job: a queued one at once; a running one by SIGTERM, then SIGKILL after `timeout`."""
    job = ws.job(job_id)
    if job.state == "queued":
        ws.update_job(job_id, state="cancelled", finished_at=time.time())
        return ws.job(job_id)
    if job.state != "running":
        return job
    if job.pid and pid_alive(job.pid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(job.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while (
            time.monotonic() < deadline and ws.job(job_id).state == "running" and pid_alive(job.pid)
        ):
            time.sleep(0.1)
        if pid_alive(job.pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(job.pid, signal.SIGKILL)
    if ws.job(job_id).state == "running":
        ws.update_job(job_id, state="cancelled", finished_at=time.time(), stage="Cancelled")
    _clean_partial(ws, job_id)
    start_next(ws)
    return ws.job(job_id)


def wait(
    ws: Workspace,
    job_id: int,
    on_update: Callable[[JobRecord], None] | None = None,
    poll: float = 0.3,
) -> JobRecord:
    """Block until the job reaches a final state, reporting each change."""
    last: tuple[float, str] | None = None
    while True:
        job = ws.job(job_id)
        if on_update is not None and (job.progress, job.stage) != last:
            on_update(job)
            last = (job.progress, job.stage)
        if job.state in FINAL_STATES:
            return job
        if job.state == "running" and job.pid and not pid_alive(job.pid):
            recover_jobs(ws)
            continue
        time.sleep(poll)


def run_job(ws: Workspace, job_id: int) -> int:
    """The body of the child process: run the handler and record how it ended."""
    job = ws.job(job_id)
    token = CancelToken()

    def on_term(signum: int, frame: FrameType | None) -> None:
        token.cancel()
        raise Cancelled()

    signal.signal(signal.SIGTERM, on_term)
    ws.update_job(job_id, pid=os.getpid(), state="running", started_at=time.time())
    wdir = work_dir(ws, job_id)
    wdir.mkdir(parents=True, exist_ok=True)
    context = JobContext(ws, ws.job(job_id), wdir, token, _started=time.monotonic())
    print(f"job {job_id} ({job.kind}) started, params {job.params}", flush=True)
    code = 0
    try:
        handler = handlers()[job.kind]
        result = handler(context)
    except Cancelled:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("cancelled", flush=True)
        ws.update_job(job_id, state="cancelled", finished_at=time.time(), stage="Cancelled")
        code = 1
    except SegtuiError as exc:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print(f"failed: {exc}", flush=True)
        ws.update_job(job_id, state="failed", finished_at=time.time(), error=str(exc))
        code = 1
    except BaseException as exc:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        traceback.print_exc()
        message = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        ws.update_job(
            job_id,
            state="failed",
            finished_at=time.time(),
            error=f"{type(exc).__name__}: {message} (details in the job log)",
        )
        code = 1
    else:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        ws.update_job(
            job_id,
            state="done",
            progress=1.0,
            stage="Done",
            eta_s=0.0,
            result=result,
            finished_at=time.time(),
        )
        print(f"done: {result}", flush=True)
    finally:
        _clean_partial(ws, job_id)
    start_next(ws)
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m segtui.core.jobs")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run")
    run.add_argument("job_id", type=int)
    run.add_argument("--workspace", required=True)
    args = parser.parse_args(argv)
    try:
        ws = Workspace(Path(args.workspace))
        ws.job(args.job_id)
    except (SegtuiError, NotFoundError) as exc:
        print(f"segtui job: {exc}", file=sys.stderr)
        return 2
    return run_job(ws, args.job_id)


if __name__ == "__main__":
    # Run through the imported module, not __main__, so that the job kinds register
    # into the same handler table that run_job reads.
    from segtui.core import jobs as _jobs

    raise SystemExit(_jobs.main())
