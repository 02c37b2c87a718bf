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
from collections.abc import Callable, Mapping
from pathlib import Path
from types import FrameType

import psutil  # type: ignore[import-untyped]

from segtui.core import job_registry
from segtui.core.errors import Cancelled, NotFoundError, SegtuiError
from segtui.core.job_registry import JobContext, JobHandler
from segtui.core.progress import CancelToken
from segtui.core.records import JobRecord
from segtui.core.types import JobKind, JobState
from segtui.core.workspace import Workspace

#: The job process's module: `pid_alive` finds it in a process's command line.
JOB_MODULE = "segtui.core.jobs"
#: A claimed job whose process has not written its pid after this long never started.
STALE_CLAIM_S = 60.0


def handler(kind: JobKind) -> JobHandler:
    """The registered handler of `kind` (the built-in kinds register on first use)."""
    # Imported here, not at the top: the kinds pull in OpenVINO, NNCF and OpenCV, which
    # only the job process needs.
    import segtui.core.job_kinds  # noqa: F401

    return job_registry.handler(kind)


def job_kind_of(kind: JobKind | str) -> JobKind:
    """`kind` as a JobKind, or a clear error naming the known kinds."""
    try:
        return JobKind(kind)
    except ValueError:
        known = ", ".join(JobKind)
        raise SegtuiError(f"Unknown job kind {kind!r}.", f"Known: {known}.") from None


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
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return JOB_MODULE in " ".join(process.cmdline())
    except psutil.NoSuchProcess:  # ZombieProcess included
        return False
    except psutil.AccessDenied:
        # Another user's process: alive, and not ours to judge.
        return True


def active_job(ws: Workspace, project_id: int, kind: JobKind | str) -> JobRecord | None:
    """The project's queued or running job of `kind`, if any (to follow it on reopening)."""
    return ws.active_job(project_id, job_kind_of(kind))


def process_gone(job: JobRecord) -> bool:
    """Whether a running job has no live process: it died, or never started after its claim."""
    if job.state != JobState.RUNNING:
        return False
    if job.pid is not None:
        return not pid_alive(job.pid)
    return job.started_at is not None and time.time() - job.started_at > STALE_CLAIM_S


def recover_jobs(ws: Workspace) -> list[int]:
    """Mark jobs whose process is gone as interrupted and clean their partial files."""
    interrupted: list[int] = []
    for job in ws.running_jobs():
        if process_gone(job):
            ws.update_job(
                job.id,
                state=JobState.INTERRUPTED,
                finished_at=time.time(),
                error="The job's process ended unexpectedly (killed, or the machine restarted).",
            )
            _clean_partial(ws, job.id)
            interrupted.append(job.id)
    return interrupted


def submit(
    ws: Workspace,
    kind: JobKind | str,
    project_id: int | None,
    params: Mapping[str, object],
    *,
    start: bool = True,
) -> JobRecord:
    """Queue a job; start it at once when no other job is running."""
    # An unknown kind is refused here; every JobKind has a handler (a test pins it), which
    # the job process looks up: the submitter need not import the handlers.
    job = ws.add_job(kind=job_kind_of(kind), project_id=project_id, params=params)
    ws.update_job(job.id, log_path=str(log_path(ws, job.id)))
    if start:
        start_next(ws)
    return ws.job(job.id)


def start_next(ws: Workspace) -> int | None:
    """Start the oldest queued job if none is running; return its id."""
    recover_jobs(ws)
    job_id = ws.claim_next_job()
    if job_id is None:
        return None
    try:
        pid = _spawn(ws, job_id)
    except OSError as exc:
        ws.update_job(
            job_id, state=JobState.FAILED, error=f"Could not start the job process: {exc}"
        )
        return None
    ws.set_job_pid_if_unset(job_id, pid)
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
                JOB_MODULE,
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
    if job.state == JobState.QUEUED:
        ws.update_job(job_id, state=JobState.CANCELLED, finished_at=time.time())
        return ws.job(job_id)
    if job.state != JobState.RUNNING:
        return job
    if job.pid and pid_alive(job.pid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(job.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while (
            time.monotonic() < deadline
            and ws.job(job_id).state == JobState.RUNNING
            and pid_alive(job.pid)
        ):
            time.sleep(0.1)
        if pid_alive(job.pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(job.pid, signal.SIGKILL)
    if ws.job(job_id).state == JobState.RUNNING:
        ws.update_job(job_id, state=JobState.CANCELLED, finished_at=time.time(), stage="Cancelled")
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
        if job.state.final:
            return job
        if job.state == JobState.RUNNING and job.pid and not pid_alive(job.pid):
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
    ws.update_job(job_id, pid=os.getpid(), state=JobState.RUNNING, started_at=time.time())
    wdir = work_dir(ws, job_id)
    wdir.mkdir(parents=True, exist_ok=True)
    context = JobContext(ws, ws.job(job_id), wdir, token, _started=time.monotonic())
    print(f"job {job_id} ({job.kind}) started, params {job.params}", flush=True)
    code = 0
    try:
        result = handler(job.kind)(context)
    except Cancelled:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("cancelled", flush=True)
        ws.update_job(job_id, state=JobState.CANCELLED, finished_at=time.time(), stage="Cancelled")
        code = 1
    except SegtuiError as exc:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print(f"failed: {exc}", flush=True)
        ws.update_job(job_id, state=JobState.FAILED, finished_at=time.time(), error=str(exc))
        code = 1
    except BaseException as exc:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        traceback.print_exc()
        message = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        ws.update_job(
            job_id,
            state=JobState.FAILED,
            finished_at=time.time(),
            error=f"{type(exc).__name__}: {message} (details in the job log)",
        )
        code = 1
    else:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        ws.update_job(
            job_id,
            state=JobState.DONE,
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
    raise SystemExit(main())
