"""Real job processes held at a chosen moment (the SEGTUI_TEST_PAUSE_AT hook of
core.job_registry), then released, killed or cancelled there by a fault test."""

from __future__ import annotations

import os
import signal
import time

from segtui.core import job_registry, jobs
from segtui.core.records import JobRecord
from segtui.core.workspace import Workspace


def job_log(ws: Workspace, job_id: int) -> str:
    """The job's log ('' before it has one)."""
    path = jobs.log_path(ws, job_id)
    return path.read_text(errors="replace") if path.exists() else ""


def held(ws: Workspace, job_id: int, timeout: float = 60.0) -> JobRecord:
    """Wait until the job holds at its pause point; return it (its pid known)."""
    marker = jobs.job_dir(ws, job_id) / job_registry.PAUSE_FILE
    deadline = time.monotonic() + timeout
    lock = jobs.alive_lock_path(ws, job_id)
    while not marker.exists():
        job = ws.job(job_id)
        # Ended without holding: a failure. (It may end first and hold after: a point
        # after the commit that records its end.)
        ended = not job.state.active and jobs.lock_state(lock) is not jobs.Lock.HELD
        assert not ended or marker.exists(), (job, job_log(ws, job_id))
        assert time.monotonic() < deadline, f"never held: {job}\n{job_log(ws, job_id)}"
        time.sleep(0.02)
    job = ws.job(job_id)
    assert job.pid is not None
    return job


def release(ws: Workspace, job_id: int) -> None:
    """Let a held job go on."""
    (jobs.job_dir(ws, job_id) / job_registry.PAUSE_FILE).unlink()


def kill(ws: Workspace, job: JobRecord, sig: signal.Signals = signal.SIGKILL) -> None:
    """Send `sig` to the job's process group; after SIGKILL, wait until it is dead."""
    assert job.pid is not None
    os.killpg(job.pid, sig)
    if sig == signal.SIGKILL:  # dead: the kernel has dropped its lock
        deadline = time.monotonic() + 10
        while jobs.lock_state(jobs.alive_lock_path(ws, job.id)) is not jobs.Lock.FREE:
            assert time.monotonic() < deadline
            time.sleep(0.02)


def ended_job(ws: Workspace, job_id: int, timeout: float = 60.0) -> JobRecord:
    """The job once it has ended (without recovering anything itself)."""
    deadline = time.monotonic() + timeout
    while (job := ws.job(job_id)).state.active:
        assert time.monotonic() < deadline, f"still {job.state}: {job_log(ws, job_id)}"
        time.sleep(0.05)
    return job
