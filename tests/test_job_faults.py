"""Faults around jobs, with real job processes: a kill at each stage, a dead job ahead in the
queue, a poll in the start window, a full disk, a cancel during registration.

A job is held at a chosen moment with the SEGTUI_TEST_PAUSE_AT hook (see job_registry):
it writes jobs/ID/paused and waits until the test removes that file, or kills it there.
Each test ends on the workspace's invariants: the database sound, no orphan model
folder, no half-registered model, no partial files.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import openvino as ov
import openvino.opset13 as ops
import pytest
from conftest import write_scene
from held_jobs import ended_job, held, job_log, kill, release
from tiny_models import build_omz_maskrcnn_conv

from segtui.core import job_registry, jobs
from segtui.core.errors import ModelImportError
from segtui.core.job_faults import failure_message
from segtui.core.models import import_model
from segtui.core.optimize_settings import OptimizeSettings
from segtui.core.projects import create_project_from_paths
from segtui.core.quantize import CALIBRATION_STAGE
from segtui.core.records import JobRecord, ProjectRecord
from segtui.core.types import JobKind, JobState
from segtui.core.workspace import Workspace

SAVING = "Saving the INT8 model"
REGISTERING = "Registering the optimized model"
IN_COMMIT = "register: before commit"
COMMITTED = "register: committed"


# -- helpers ------------------------------------------------------------------------------


def _heavy_model(path: Path, extra_outputs: int = 131_072) -> Path:
    """The tiny conv Mask R-CNN with a wide MatMul beside it: an INT8 IR of a few MB.

    The MatMul's output reaches the masks only as 0 x its mean, so the model computes
    what the tiny one does; its weights make the saved files bigger than a small disk.
    """
    small = build_omz_maskrcnn_conv(path.parent / "small" / "tiny.xml", input_hw=(64, 64))
    model = ov.Core().read_model(small)
    pooled = next(op for op in model.get_ordered_ops() if op.get_type_name() == "ReduceMean")
    weights = np.random.default_rng(1).normal(0, 0.1, (8, extra_outputs)).astype(np.float32)
    wide = ops.matmul(pooled.output(0), ops.constant(weights), False, False)
    zero = ops.multiply(ops.reduce_mean(wide, [0, 1], keep_dims=False), np.float32(0.0))
    masks = next(r for r in model.get_results() if "masks" in r.input_value(0).get_names())
    source = masks.input_value(0)
    joined = ops.add(source, zero)
    joined.output(0).get_tensor().set_names(set(source.get_names()))
    source.get_tensor().set_names(set())
    masks.input(0).replace_source_output(joined.output(0))
    path.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(model, path, compress_to_fp16=False)
    return path


def _project(ws: Workspace, tmp_path: Path, *, heavy: bool = False) -> ProjectRecord:
    folder = tmp_path / "images"
    write_scene(folder / "img000.png", (48, 64), 7)
    for i in (1, 2):
        shutil.copyfile(folder / "img000.png", folder / f"img{i:03d}.png")
    build = _heavy_model if heavy else build_omz_maskrcnn_conv
    model = build(tmp_path / "model" / "tiny.xml")
    return create_project_from_paths(ws, model_path=model, dataset_path=folder, name="Tiny")


def _optimize(ws: Workspace, project: ProjectRecord) -> JobRecord:
    settings = OptimizeSettings(subset_percent=100)
    return jobs.submit(ws, JobKind.OPTIMIZE, project.id, settings.to_json())


def assert_sound(ws: Workspace) -> None:
    """The workspace invariants: a sound database, every model folder listed and every
    optimized model in a project, no partial files of any job, no staging left."""
    with contextlib.closing(sqlite3.connect(ws.db_path)) as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
        listed = {row[0] for row in db.execute("SELECT dir FROM models")}
        unplaced = db.execute(
            "SELECT id FROM models m WHERE optimized_from IS NOT NULL "
            "AND NOT EXISTS (SELECT 1 FROM projects p WHERE p.model_id = m.id)"
        ).fetchall()
    folders = {f"models/{p.name}" for p in (ws.root / "models").iterdir()}
    assert folders == listed, "model folders without a row, or rows without a folder"
    assert all((ws.root / rel / "model.xml").is_file() for rel in listed)
    assert unplaced == [], "an optimized model registered without its project"
    assert list((ws.root / "jobs").glob("*/work")) == []
    assert [p for p in (ws.root / "tmp").iterdir() if p.is_dir()] == []


# -- a kill at each stage -------------------------------------------------------------


@pytest.mark.parametrize(
    "point",
    ["Preparing calibration", CALIBRATION_STAGE, SAVING, REGISTERING, IN_COMMIT],
)
def test_sigkill_at_any_stage_leaves_nothing_and_is_named(
    workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, point: str
) -> None:
    parent = _project(workspace, tmp_path)
    monkeypatch.setenv(job_registry.PAUSE_ENV, point)
    job = held(workspace, _optimize(workspace, parent).id)
    assert job.state == JobState.RUNNING
    assert job.stage.startswith(point) or point == IN_COMMIT
    kill(workspace, job)
    assert workspace.job(job.id).state == JobState.RUNNING  # nobody has looked yet

    with Workspace(workspace.root) as restarted:  # the next segtui to open it
        assert jobs.recover_jobs(restarted) == [job.id]
        after = restarted.job(job.id)
    assert after.state == JobState.INTERRUPTED and after.finished_at is not None
    assert after.error is not None
    assert "ended unexpectedly during" in after.error and "it was killed" in after.error
    stage = REGISTERING if point == IN_COMMIT else point
    assert f"“{stage}" in after.error
    assert [m.id for m in workspace.models()] == [parent.model_id]
    assert workspace.children(parent.id) == []
    assert_sound(workspace)


def test_sigkill_after_the_commit_leaves_the_whole_child_and_a_done_job(
    workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parent = _project(workspace, tmp_path)
    monkeypatch.setenv(job_registry.PAUSE_ENV, COMMITTED)
    job = held(workspace, _optimize(workspace, parent).id)
    assert job.state == JobState.DONE  # committed with the child, before the process ends
    kill(workspace, job)
    # Nothing is left to recover.
    assert jobs.recover_jobs(workspace) == []
    done = workspace.job(job.id)
    assert done.state == JobState.DONE and done.result is not None and done.error is None
    (child,) = workspace.children(parent.id)
    assert done.result["child_project_id"] == child.id
    assert done.result["model_id"] == child.model_id
    model = workspace.model(child.model_id)
    assert model.optimized_from == parent.model_id and model.xml_path.is_file()
    assert_sound(workspace)


# -- a cancel during registration -------------------------------------------------------


@pytest.mark.parametrize("point", [REGISTERING, IN_COMMIT])
def test_sigterm_during_registration_is_a_cancel(
    workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, point: str
) -> None:
    parent = _project(workspace, tmp_path)
    monkeypatch.setenv(job_registry.PAUSE_ENV, point)
    job = held(workspace, _optimize(workspace, parent).id)
    kill(workspace, job, signal.SIGTERM)
    release(workspace, job.id)
    ended = ended_job(workspace, job.id)
    log = job_log(workspace, job.id)
    assert (ended.state, ended.error, ended.stage) == (JobState.CANCELLED, None, "Cancelled")
    assert log.splitlines()[-1] == "cancelled" and "cannot read" not in log
    assert [m.id for m in workspace.models()] == [parent.model_id]
    assert workspace.children(parent.id) == []
    assert_sound(workspace)


# -- a dead job ahead in the queue ------------------------------------------------------


def test_a_dead_running_job_starts_the_queued_one_and_every_wait_returns(
    workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parent = _project(workspace, tmp_path)
    monkeypatch.setenv(job_registry.PAUSE_ENV, CALIBRATION_STAGE)
    first = held(workspace, _optimize(workspace, parent).id)
    monkeypatch.delenv(job_registry.PAUSE_ENV)  # the next job runs through
    second = _optimize(workspace, parent)
    assert second.state == JobState.QUEUED

    ends: dict[int, JobRecord] = {}

    def follow(job_id: int) -> None:  # a waiting `segtui optimize`, in its own process's way
        with Workspace(workspace.root) as ws:
            ends[job_id] = jobs.wait(ws, job_id, poll=0.05)

    waiters = [threading.Thread(target=follow, args=(j,)) for j in (first.id, second.id)]
    for waiter in waiters:
        waiter.start()
    kill(workspace, first)
    for waiter in waiters:
        waiter.join(timeout=90)
        assert not waiter.is_alive(), "wait() hung behind a dead job"

    assert ends[first.id].state == JobState.INTERRUPTED
    assert "it was killed" in (ends[first.id].error or "")
    assert ends[second.id].state == JobState.DONE, job_log(workspace, second.id)
    (child,) = workspace.children(parent.id)
    assert ends[second.id].result == workspace.job(second.id).result
    assert (ends[second.id].result or {})["child_project_id"] == child.id
    assert_sound(workspace)


def test_wait_starts_a_stalled_queue_and_ends_a_job_that_never_started(
    workspace: Workspace, tmp_path: Path
) -> None:
    parent = _project(workspace, tmp_path)
    # Queued while nothing runs: its submitter died before starting it. (An evaluate job
    # on images without annotations: a real job process that ends at once, failed.)
    stalled = jobs.submit(workspace, JobKind.EVALUATE, parent.id, {}, start=False)
    ended = jobs.wait(workspace, stalled.id, poll=0.05)
    assert ended.state == JobState.FAILED and ended.pid is not None
    assert "has no annotations" in (ended.error or "")
    # Claimed, its pid written, and the process gone before it took its lock.
    never = workspace.add_job(kind=JobKind.EVALUATE, project_id=parent.id, params={})
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    workspace.update_job(never.id, state=JobState.RUNNING, pid=gone.pid, started_at=time.time())
    ended = jobs.wait(workspace, never.id, poll=0.05)
    assert ended.state == JobState.INTERRUPTED
    assert ended.error is not None and "during its start" in ended.error
    assert_sound(workspace)


# -- the start window -------------------------------------------------------------------


def test_a_process_between_fork_and_exec_is_not_judged_dead(workspace: Workspace) -> None:
    job = workspace.add_job(kind=JobKind.EVALUATE, project_id=None, params={})
    pid = os.fork()
    if pid == 0:  # the child: still this test's process image, as before its exec
        time.sleep(1.0)
        os._exit(0)
    try:
        workspace.update_job(job.id, state=JobState.RUNNING, pid=pid, started_at=time.time())
        for _ in range(20):
            assert not jobs.process_gone(workspace, workspace.job(job.id))
            assert jobs.recover_jobs(workspace) == []
            time.sleep(0.02)
    finally:
        os.waitpid(pid, 0)
    assert jobs.recover_jobs(workspace) == [job.id]


def test_jobs_polled_without_pause_while_they_start_all_end_by_themselves(
    workspace: Workspace, tmp_path: Path
) -> None:
    parent = _project(workspace, tmp_path)
    # Three jobs queued at once, each started by the one before, while a poller (another
    # connection, as another process) judges them all along, start windows included.
    # (Evaluate jobs on images without annotations: real job processes that end at once.)
    submitted = [jobs.submit(workspace, JobKind.EVALUATE, parent.id, {}) for _ in range(3)]
    misjudged: list[JobRecord] = []
    stop = threading.Event()

    def poll() -> None:
        with Workspace(workspace.root) as ws:
            while not stop.is_set():
                for job in ws.running_jobs():
                    if jobs.process_gone(ws, job) and ws.job(job.id).state == JobState.RUNNING:
                        misjudged.append(job)
                        jobs.recover_jobs(ws)
                stop.wait(0.002)

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        finals = [ended_job(workspace, job.id) for job in submitted]
    finally:
        stop.set()
        poller.join()
    assert misjudged == []
    assert [job.state for job in finals] == [JobState.FAILED] * 3
    assert all("has no annotations" in (job.error or "") for job in finals)
    assert_sound(workspace)


# -- a job's files are private ------------------------------------------------------------


@pytest.mark.parametrize("umask", [0o022, 0o277])
def test_a_jobs_folder_and_log_are_private_whatever_the_umask(
    workspace: Workspace, umask: int
) -> None:
    previous = os.umask(umask)
    try:  # the job process inherits the umask
        job = jobs.submit(workspace, JobKind.EVALUATE, None, {})  # fails at once: no project
        ended = jobs.wait(workspace, job.id)
    finally:
        os.umask(previous)
    assert ended.state == JobState.FAILED and "needs a project" in (ended.error or "")
    folder = jobs.job_dir(workspace, job.id)
    modes = {p.name: p.stat().st_mode & 0o777 for p in folder.iterdir()}
    assert folder.stat().st_mode & 0o777 == 0o700
    assert modes == {"log.txt": 0o600, jobs.ALIVE_LOCK: 0o600}  # work/ is gone
    assert "needs a project" in job_log(workspace, job.id)


# -- a full disk ------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 48 MB tmpfs (needs root); skipped where it cannot be mounted."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (the RLIMIT_FSIZE case runs instead)")
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=48m,mode=0700", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(folder: Path, leave: int) -> Path:
    """A file that takes all the free space of `folder`'s disk but `leave` bytes."""
    stats = os.statvfs(folder)
    filler = folder / "filler"
    with filler.open("wb") as handle:
        handle.truncate(0)
        os.posix_fallocate(handle.fileno(), 0, stats.f_bavail * stats.f_frsize - leave)
    return filler


def test_disk_full_at_the_int8_save_is_named_and_leaves_nothing(
    small_disk: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Workspace(small_disk / "ws") as ws:
        parent = _project(ws, tmp_path, heavy=True)
        monkeypatch.setenv(job_registry.PAUSE_ENV, SAVING)
        job = held(ws, _optimize(ws, parent).id)
        filler = _fill(small_disk, leave=512 * 1024)  # less than the INT8 model needs
        release(ws, job.id)
        ended = ended_job(ws, job.id)
        filler.unlink()
        assert ended.state == JobState.FAILED, (ended.error, job_log(ws, job.id))
        assert ended.error is not None
        assert ended.error.startswith(f"Disk full during “{SAVING}” (writing in {ws.root})")
        assert "Free some space on that disk" in ended.error
        assert f"failed: {ended.error}" in job_log(ws, job.id)
        assert [m.id for m in ws.models()] == [parent.model_id]
        assert_sound(ws)


def test_a_file_size_limit_at_the_int8_save_is_named_and_leaves_nothing(
    workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parent = _project(workspace, tmp_path, heavy=True)
    monkeypatch.setenv(job_registry.PAUSE_ENV, SAVING)
    job = held(workspace, _optimize(workspace, parent).id)
    assert job.pid is not None
    # The job's files (database, its log) may grow a little; the INT8 model may not.
    written = [workspace.root / n for n in ("segtui.db", "segtui.db-wal")]
    written.append(jobs.log_path(workspace, job.id))
    limit = max(p.stat().st_size for p in written if p.exists()) + 256 * 1024
    assert limit < 1_000_000  # below the heavy model's INT8 weights (about 1.6 MB)
    hard = resource.prlimit(job.pid, resource.RLIMIT_FSIZE)[1]
    resource.prlimit(job.pid, resource.RLIMIT_FSIZE, (limit, hard))
    release(workspace, job.id)
    ended = ended_job(workspace, job.id)
    assert ended.state == JobState.FAILED, (ended.error, job_log(workspace, job.id))
    assert ended.error is not None
    assert ended.error.startswith(f"File too large during “{SAVING}”")
    assert "ulimit -f" in ended.error
    assert [m.id for m in workspace.models()] == [parent.model_id]
    assert_sound(workspace)


# -- an end the workspace could not record ------------------------------------------------


def _dead_running_job(ws: Workspace, log: str, stage: str = CALIBRATION_STAGE) -> JobRecord:
    job = jobs.submit(ws, JobKind.EVALUATE, None, {}, start=False)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    ws.update_job(job.id, state=JobState.RUNNING, pid=gone.pid, stage=stage)
    ws.update_job(job.id, started_at=time.time())
    path = jobs.log_path(ws, job.id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(log, encoding="utf-8")
    return ws.job(job.id)


DISK_FULL = "Disk full during “Saving the INT8 model” (writing in /ws): OSError. Free space."


@pytest.mark.parametrize(
    ("log", "state", "error"),
    [
        (
            f"[12:00:00] 96.0% Saving\nfailed: {DISK_FULL}\n"
            "could not record the end of the job: Disk full (writing in /ws)\n",
            JobState.FAILED,
            DISK_FULL,
        ),
        ("started\ncancelled\n", JobState.CANCELLED, None),
        (
            "done: {'result_id': 3}\ncould not record the end of the job: Read-only file system\n",
            JobState.INTERRUPTED,
            "The job finished, but its end could not be recorded: Read-only file system",
        ),
        (
            "Fatal Python error: Segmentation fault\n\nCurrent thread 0x1 (most recent call first):\n",
            JobState.INTERRUPTED,
            f"The job's process crashed during “{CALIBRATION_STAGE}” (Segmentation fault; "
            "the job log has the details). Run the job again.",
        ),
        (
            "[12:00:00] 35.0% Collecting calibration statistics 1/3\n",
            JobState.INTERRUPTED,
            f"The job's process ended unexpectedly during “{CALIBRATION_STAGE}”: it was killed "
            "(by a signal such as kill -9, or by the system when memory ran out). "
            "Run the job again.",
        ),
    ],
    ids=["failed", "cancelled", "done-unrecorded", "crashed", "killed"],
)
def test_recovery_records_the_end_the_job_wrote_in_its_log(
    workspace: Workspace, log: str, state: JobState, error: str | None
) -> None:
    job = _dead_running_job(workspace, log)
    assert jobs.recover_jobs(workspace) == [job.id]
    after = workspace.job(job.id)
    assert (after.state, after.error) == (state, error)


def test_a_job_that_cannot_record_its_end_says_so_in_its_log_and_exit_status(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    job = workspace.add_job(kind=JobKind.EVALUATE, project_id=None, params={})

    def full(*args: object, **kwargs: object) -> bool:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(workspace, "finish_job", full)
    end = jobs._End(JobState.FAILED, error=DISK_FULL)
    assert jobs._record_end(workspace, job.id, end) == jobs.UNRECORDED_EXIT
    line = capsys.readouterr().out.strip()
    assert line.startswith("could not record the end of the job: Disk full")
    assert "database or disk is full" in line


# -- what an older segtui's killed registration left -------------------------------------


def test_recovery_removes_a_half_registration_and_nothing_else(
    workspace: Workspace, tmp_path: Path
) -> None:
    parent = _project(workspace, tmp_path)
    source = workspace.model(parent.model_id)
    job = workspace.add_job(kind=JobKind.OPTIMIZE, project_id=parent.id, params={})
    now = time.time()
    workspace.update_job(job.id, state=JobState.INTERRUPTED, started_at=now, finished_at=now + 60)

    def optimized(name: str) -> int:
        return import_model(workspace, source.xml_path, name=name, optimized_from=source.id).id

    # Killed between the model's registration and its project's (segtui before 0.x).
    half = optimized("half INT8")
    # Killed between the rename of its folder and the commit of its row.
    unlisted = workspace.root / "models" / "99"
    unlisted.mkdir()
    (unlisted / "model.xml").write_text("<net/>", encoding="utf-8")
    # Not a job's leftovers: an optimized model made before the job, a user's model
    # without a project, a folder whose name is no model id.
    earlier = optimized("older INT8")
    with workspace.transaction() as tx:
        tx.execute("UPDATE models SET created_at = ? WHERE id = ?", (now - 60, earlier))
    user = import_model(workspace, build_omz_maskrcnn_conv(tmp_path / "m2" / "m.xml", seed=3))
    notes = workspace.root / "models" / "notes"
    notes.mkdir()

    assert jobs.recover_jobs(workspace) == []  # no job had to be ended
    assert [m.id for m in workspace.models()] == [parent.model_id, earlier, user.id]
    assert not (workspace.root / "models" / str(half)).exists() and not unlisted.exists()
    assert notes.is_dir() and (workspace.root / "models" / str(earlier)).is_dir()
    assert workspace.remove_half_registered() == []  # nothing more the next time
    notes.rmdir()
    with workspace.transaction() as tx:
        tx.execute("DELETE FROM models WHERE id = ?", (earlier,))
    shutil.rmtree(workspace.root / "models" / str(earlier))
    assert_sound(workspace)


# -- naming a storage fault ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "start"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), "Disk full during “Saving”"),
        (OSError(errno.EDQUOT, "Disk quota exceeded"), "Disk quota exceeded during"),
        (OSError(errno.EFBIG, "File too large"), "File too large during"),
        (OSError(errno.EROFS, "Read-only file system"), "Read-only file system during"),
        (sqlite3.OperationalError("database or disk is full"), "Disk full during"),
        (sqlite3.OperationalError("attempt to write a readonly database"), "Read-only file"),
        (sqlite3.OperationalError("disk I/O error"), "Disk I/O error during"),
        (RuntimeError("basic_ios::clear: iostream error"), "Write failed during “Saving”"),
    ],
)
def test_a_storage_fault_is_named_with_what_to_do(
    tmp_path: Path, error: Exception, start: str
) -> None:
    wrapped = ModelImportError("model.bin is truncated.")
    wrapped.__cause__ = error  # also through an error of ours that wraps it
    for exc in (error, wrapped):
        message = failure_message(exc, tmp_path, "Saving")
        assert message.startswith(start), message
        assert f"(writing in {tmp_path}): " in message and "the job again." in message
    if isinstance(error, RuntimeError):  # the disk does not say why: its free space shown
        assert re.search(r"That disk has [\d,.]+ MB free now", message)


def test_other_failures_are_not_put_down_to_the_disk(tmp_path: Path) -> None:
    assert failure_message(ValueError("bad\nsecond line"), tmp_path) == (
        "ValueError: bad (details in the job log)"
    )
    ours = ModelImportError("x.xml is not an IR.", "Pass an IR.")
    assert failure_message(ours, tmp_path) == "x.xml is not an IR. Pass an IR."
    # A permission error on a file outside the workspace is not the workspace's fault.
    outside = PermissionError(errno.EACCES, "Permission denied", "/etc/shadow")
    assert failure_message(outside, tmp_path).startswith("PermissionError: ")
    inside = PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "x"))
    assert failure_message(inside, tmp_path).startswith("No permission to write (writing in")
