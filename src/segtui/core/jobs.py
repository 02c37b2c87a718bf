"""Durable background jobs: each runs in a child process of its own session.

A job is a row in the workspace (state, progress, stage, ETA, log, result or
error) and a process started with `python -m segtui.core.jobs run ID`, in a
new session so that it survives the terminal closing or an SSH session
dropping. Its partial files live in jobs/ID/work and are removed when it
ends in any way but done, before that end is recorded (a full disk needs the
space back to record it). One job runs at a time (they would fight for the
cores); the next queued job is started by whoever sees the queue free: the
submitter, the job that just finished, or whoever finds a job's process dead.

Liveness comes from the job process itself: it holds an exclusive lock on
jobs/ID/alive.lock for as long as it lives (the kernel drops the lock when the
process dies, even by SIGKILL), so "alive" is "that lock cannot be taken".
Until the process has taken it (fork, exec, imports), its pid stands in.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import faulthandler
import fcntl
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from types import FrameType

import psutil  # type: ignore[import-untyped]

from segtui.core import job_registry, storage
from segtui.core.errors import Cancelled, NotFoundError, SegtuiError
from segtui.core.job_faults import (
    CANCELLED_LINE,
    DONE_LINE,
    FAILED_LINE,
    UNRECORDED_LINE,
    death_record,
    failure_message,
    storage_cause,
)
from segtui.core.job_registry import JobContext, JobHandler
from segtui.core.priority import lower_priority, requested_niceness
from segtui.core.progress import CancelToken
from segtui.core.records import JobRecord
from segtui.core.types import JobKind, JobState
from segtui.core.workspace import Workspace

#: The job process's module (`python -m segtui.core.jobs run ID`).
JOB_MODULE = "segtui.core.jobs"
#: A claimed job whose process shows no sign of life after this long never started.
STALE_CLAIM_S = 60.0
#: The file whose lock the job process holds for its lifetime.
ALIVE_LOCK = "alive.lock"
#: The job process's exit status when it could not record its end (the log has it).
UNRECORDED_EXIT = 3


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


def _job_dir_at(root: Path, job_id: int) -> Path:
    return root / "jobs" / str(job_id)


def job_dir(ws: Workspace, job_id: int) -> Path:
    return _job_dir_at(ws.root, job_id)


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


@dataclass(frozen=True)
class LogChunk:
    """The bytes of a job log from byte `start` to `end` (its size when read)."""

    start: int
    end: int
    data: bytes


def read_log(path: str | None, offset: int, max_bytes: int = 262_144) -> LogChunk:
    """The log from byte `offset` on (at most its last `max_bytes`); from the top if it shrank."""
    if not path:
        return LogChunk(0, 0, b"")
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            start = offset if offset <= size else 0  # shorter: a new log in its place
            start = max(start, size - max_bytes)  # only the end of a burst (or a long log)
            handle.seek(start)
            data = handle.read(size - start)
    except OSError:
        return LogChunk(0, 0, b"")
    return LogChunk(start, start + len(data), data)


def _clean_partial(ws: Workspace, job_id: int) -> None:
    shutil.rmtree(work_dir(ws, job_id), ignore_errors=True)


def _clean_ended_partials(ws: Workspace) -> None:
    """Remove the partial files of ended jobs (one killed right after recording its end)."""
    folders = [p for p in (ws.root / "jobs").iterdir() if p.name.isdigit()]
    for folder in folders:
        if (folder / "work").is_dir():
            with contextlib.suppress(NotFoundError):
                if ws.job(int(folder.name)).state.active:
                    continue
            shutil.rmtree(folder / "work", ignore_errors=True)


# -- liveness ---------------------------------------------------------------------------


class Lock(Enum):
    """What a liveness lock file says about its job process."""

    HELD = "held"  # the process lives
    FREE = "free"  # the process took it and is gone
    ABSENT = "absent"  # the process has not taken it yet (or never will)
    UNREADABLE = "unreadable"  # another user's file: ask the pid instead


def hold_alive_lock(path: Path) -> int:
    """Take the job's liveness lock for the life of this process; return its descriptor.

    The file is locked under another name and renamed into place, so that it is never
    seen unlocked while this process lives.
    """
    storage.private_dir(path.parent)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(partial, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, storage.PRIVATE_FILE)
    try:
        os.fchmod(fd, storage.PRIVATE_FILE)  # the umask may have taken bits from the owner too
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.replace(partial, path)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(partial)
        raise
    return fd


def lock_state(path: Path) -> Lock:
    """Whether a live process holds the lock at `path` (a shared try, released at once)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return Lock.ABSENT
    except OSError:
        return Lock.UNREADABLE
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return Lock.HELD
    except OSError:
        return Lock.UNREADABLE
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return Lock.FREE
    finally:
        os.close(fd)


def alive_lock_path(ws: Workspace, job_id: int) -> Path:
    return job_dir(ws, job_id) / ALIVE_LOCK


def pid_alive(pid: int | None) -> bool:
    """Whether a process `pid` exists and has not ended (whatever it runs).

    A zombie has ended, unless other threads of it are still exiting: until the last
    one has, it holds its files, and so its liveness lock.
    """
    if not pid:
        return False
    try:
        process = psutil.Process(pid)
        if process.status() != psutil.STATUS_ZOMBIE:
            return True
        return bool(process.num_threads() > 1)
    except psutil.NoSuchProcess:  # ZombieProcess included
        return False
    except psutil.AccessDenied:
        return True  # another user's process: it exists


def process_gone(ws: Workspace, job: JobRecord) -> bool:
    """Whether a running job has no live process: it died, or never started after its claim."""
    if job.state != JobState.RUNNING:
        return False
    path = alive_lock_path(ws, job.id)
    lock = lock_state(path)
    if lock is Lock.FREE and _older_than(path, job.created_at):
        lock = Lock.ABSENT  # left by an earlier job of the same id: says nothing of this one
    if lock in (Lock.HELD, Lock.FREE):
        return lock is Lock.FREE
    if lock is Lock.UNREADABLE:
        return not pid_alive(job.pid)
    # Not locked yet: the process is starting (fork, exec, imports), or it never will.
    stale = job.started_at is not None and time.time() - job.started_at > STALE_CLAIM_S
    if job.pid is not None:
        return not pid_alive(job.pid) or stale
    return stale


def _older_than(path: Path, moment: float) -> bool:
    try:
        return path.stat().st_mtime < moment
    except OSError:
        return False


def job_alive(ws: Workspace, job: JobRecord) -> bool:
    """Whether a running job's process lives (False for a job that is not running)."""
    return job.state == JobState.RUNNING and not process_gone(ws, job)


# -- recovery, queue --------------------------------------------------------------------


def active_job(ws: Workspace, project_id: int, kind: JobKind | str) -> JobRecord | None:
    """The project's queued or running job of `kind`, if any (to follow it on reopening)."""
    return ws.active_job(project_id, job_kind_of(kind))


def _end_dead_jobs(ws: Workspace) -> list[int]:
    """Record the end of each running job whose process is gone; return their ids."""
    ended: list[int] = []
    for job in ws.running_jobs():
        if not process_gone(ws, job):
            continue
        _clean_partial(ws, job.id)  # first: recording the end may need the space
        state, error = death_record(job, log_tail(job.log_path, 40), psutil.boot_time())
        if ws.finish_job(job.id, state, error=error, from_states=(JobState.RUNNING,)):
            ended.append(job.id)
    return ended


def recover_jobs(ws: Workspace) -> list[int]:
    """End the jobs whose process is gone and start the next queued one; return their ids.

    Each is recorded with the cause found (its own last words in its log, a restart, a
    kill), its partial files removed, and anything a killed registration left half
    registered is removed too. A workspace that cannot be written now (read-only, full,
    locked) is left as it is, to be recovered the next time.
    """
    with contextlib.suppress(sqlite3.OperationalError):
        return _recover(ws)
    return []


def _recover(ws: Workspace) -> list[int]:
    """`recover_jobs`, but a workspace that refuses the record raises (for `wait`)."""
    ended = _end_dead_jobs(ws)
    # Best effort: leftovers that cannot be removed now are removed the next time.
    with contextlib.suppress(sqlite3.Error, OSError):
        ws.remove_half_registered()
        _clean_ended_partials(ws)
    if ended:
        start_next(ws)
    return ended


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
    _end_dead_jobs(ws)
    job_id = ws.claim_next_job()
    if job_id is None:
        return None
    # A lock file left by an earlier job of the same id would read as a dead process.
    with contextlib.suppress(FileNotFoundError):
        alive_lock_path(ws, job_id).unlink()
    try:
        pid = _spawn(ws, job_id)
    except OSError as exc:
        error = f"Could not start the job process: {failure_message(exc, ws.root)}"
        ws.finish_job(job_id, JobState.FAILED, error=error)
        return None
    ws.set_job_pid_if_unset(job_id, pid)
    return job_id


def _open_log(path: Path) -> int:
    """The job log opened for appending, private (0600 in a 0700 folder) whatever the umask."""
    storage.private_dir(path.parent)
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    return storage.open_private(path, flags)


def _spawn(ws: Workspace, job_id: int) -> int:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with os.fdopen(_open_log(log_path(ws, job_id)), "ab") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", JOB_MODULE, "run", str(job_id), "--workspace", str(ws.root)],
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
    if ws.finish_job(job_id, JobState.CANCELLED, from_states=(JobState.QUEUED,)):
        return ws.job(job_id)
    job = ws.job(job_id)
    if job.state != JobState.RUNNING:
        return job
    if job.pid and job_alive(ws, job):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(job.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and job_alive(ws, ws.job(job_id)):
            time.sleep(0.1)
        if job_alive(ws, ws.job(job_id)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(job.pid, signal.SIGKILL)
    # Whatever the process recorded stands (it may have finished first); else cancelled.
    ws.finish_job(job_id, JobState.CANCELLED, from_states=(JobState.RUNNING,))
    _clean_partial(ws, job_id)
    start_next(ws)
    return ws.job(job_id)


def wait(
    ws: Workspace,
    job_id: int,
    on_update: Callable[[JobRecord], None] | None = None,
    poll: float = 0.3,
) -> JobRecord:
    """Block until the job ends, reporting each change; it always returns.

    A dead process (the job's own, or the running job's it is queued behind) is
    recovered here, which records its end and starts the next queued job.
    """
    last: tuple[float, str] | None = None
    while True:
        job = ws.job(job_id)
        if on_update is not None and (job.progress, job.stage) != last:
            on_update(job)
            last = (job.progress, job.stage)
        if job.state.final:
            return job
        try:
            moved = _unblock(ws, job)
        except (sqlite3.Error, OSError) as exc:
            return _unrecorded_end(ws, job, exc)
        if not moved:
            time.sleep(poll)


def _unblock(ws: Workspace, job: JobRecord) -> bool:
    """Recover a dead job that `job` waits on, or start a stalled queue; whether anything moved."""
    running = ws.running_jobs()
    if any(process_gone(ws, other) for other in running):
        return bool(_recover(ws))
    if job.state == JobState.QUEUED and not running:
        # Nothing runs, yet the job is queued: its starter died before starting it.
        return start_next(ws) is not None
    return False


def _unrecorded_end(ws: Workspace, job: JobRecord, exc: BaseException) -> JobRecord:
    """The end `wait` reports when the workspace cannot record it (a full or read-only disk)."""
    state = JobState.INTERRUPTED if job.state == JobState.RUNNING else JobState.FAILED
    error = (
        f"The job cannot go on, and the workspace cannot record it: {failure_message(exc, ws.root)}"
    )
    return dataclasses.replace(job, state=state, error=error, finished_at=time.time())


# -- the job process --------------------------------------------------------------------


@dataclass(frozen=True)
class _End:
    """How the handler ended, before it is recorded."""

    state: JobState
    error: str | None = None
    result: Mapping[str, object] | None = None


def _log(text: str) -> None:
    """A line in the job log (stdout); a full disk may refuse it, which must not stop the job."""
    with contextlib.suppress(OSError, ValueError):
        print(text, flush=True)


def _on_sigterm(token: CancelToken) -> Callable[[int, FrameType | None], None]:
    def on_term(signum: int, frame: FrameType | None) -> None:
        if token.cancelled:
            return  # asked again: the first request is being acted on
        token.cancel()
        if job_registry.cancel_can_interrupt():
            raise Cancelled()

    return on_term


def _run_handler(ws: Workspace, context: JobContext, token: CancelToken) -> _End:
    """Run the job's handler; how it ended. A cancel from here on is too late to act on."""
    try:
        try:
            result = handler(context.job.kind)(context)
        finally:
            # Before any except clause runs: a SIGTERM raising in one would escape.
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
    except Cancelled:
        return _End(JobState.CANCELLED)
    except BaseException as exc:
        if token.cancelled:  # a library wrapped the cancel in its own error
            return _End(JobState.CANCELLED)
        if not isinstance(exc, SegtuiError) or storage_cause(exc, ws.root) is not None:
            traceback.print_exc()
        return _End(JobState.FAILED, error=failure_message(exc, ws.root, context.stage))
    return _End(JobState.DONE, result=dict(result))


def _record_end(ws: Workspace, job_id: int, end: _End) -> int:
    """Record the job's end; the exit status (UNRECORDED_EXIT when the workspace refused it)."""
    try:
        recorded = ws.finish_job(job_id, end.state, error=end.error, result=end.result)
        final = ws.job(job_id).state if not recorded else end.state
    except Exception as exc:
        _log(f"{UNRECORDED_LINE}{failure_message(exc, ws.root)}")
        return UNRECORDED_EXIT
    if not recorded and final != end.state:  # (a job done in its own commit is recorded)
        _log(f"the job had ended already as {final}")
    return 0 if final == JobState.DONE else 1


def run_job(ws: Workspace, job_id: int) -> int:
    """The body of the child process: run the handler and record how it ended."""
    job = ws.job(job_id)
    token = CancelToken()
    signal.signal(signal.SIGTERM, _on_sigterm(token))
    if not ws.mark_job_started(job_id, os.getpid()):
        _log(f"job {job_id} ended before its process started ({ws.job(job_id).state})")
        return 1
    wdir = storage.private_dir(work_dir(ws, job_id))
    job_registry.set_job_folder(job_dir(ws, job_id))
    context = JobContext(ws, ws.job(job_id), wdir, token, _started=time.monotonic())
    _log(f"job {job_id} ({job.kind}) started, params {job.params}")
    end = _run_handler(ws, context, token)
    # The partial files go before the end is recorded: on a full disk, the record (and
    # the log line that recovery reads if the record fails) needs their space.
    _clean_partial(ws, job_id)
    if end.state == JobState.DONE:
        _log(f"{DONE_LINE}{end.result}")
    elif end.state == JobState.CANCELLED:
        _log(CANCELLED_LINE)
    else:
        _log(f"{FAILED_LINE}{end.error}")
    code = _record_end(ws, job_id, end)
    try:
        start_next(ws)
    except Exception as exc:
        _log(f"could not start the next queued job: {failure_message(exc, ws.root)}")
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m segtui.core.jobs")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run")
    run.add_argument("job_id", type=int)
    run.add_argument("--workspace", required=True)
    args = parser.parse_args(argv)
    root = Path(args.workspace)
    # Before any thread starts: a job started from the TUI gives way to it (core.priority).
    lower_priority(requested_niceness())
    faulthandler.enable()  # a crash in native code leaves its stack in the log
    try:
        # First of all: from here on, whoever looks can tell that this process lives.
        hold_alive_lock(_job_dir_at(root, args.job_id) / ALIVE_LOCK)  # held until exit
        ws = Workspace(root)
        ws.job(args.job_id)
    except (SegtuiError, sqlite3.Error, OSError) as exc:
        _log(f"{FAILED_LINE}{failure_message(exc, root)}")  # recovery reads the cause here
        return 2
    return run_job(ws, args.job_id)


if __name__ == "__main__":
    raise SystemExit(main())
