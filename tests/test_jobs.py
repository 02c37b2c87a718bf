"""Durable jobs in child processes: run, record, recover, cancel."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil  # type: ignore[import-untyped]
import pytest
from tiny_models import Det, build_omz_maskrcnn

from segtui.core import job_registry, jobs
from segtui.core.datasets import import_dataset
from segtui.core.errors import Cancelled, SegtuiError
from segtui.core.models import import_model
from segtui.core.progress import CancelToken
from segtui.core.projects import create_project
from segtui.core.types import JobKind, JobState
from segtui.core.workspace import JobRecord, Workspace

SLEEP = [sys.executable, "-c", "import time; time.sleep(60)"]


def _annotated_project(ws: Workspace, tmp_path: Path, coco_dataset: Path) -> int:
    # The coco fixture's rectangles: rows h//8 .. h//2, cols w//8 .. w//2 (inclusive) on 48x64 and 40x40.
    xml = build_omz_maskrcnn(
        tmp_path / "m" / "model.xml",
        input_hw=(48, 64),
        detections=[Det(0, 0.9, (8.0, 6.0, 33.0, 25.0), "full")],
        labels=["box", "disc"],
    )
    model = import_model(ws, xml)
    dataset = import_dataset(ws, coco_dataset)
    return create_project(ws, model_id=model.id, dataset_id=dataset.id).id


def test_evaluate_job_runs_in_a_child_process_and_stores_its_result(
    workspace: Workspace, tmp_path: Path, coco_dataset: Path
) -> None:
    project_id = _annotated_project(workspace, tmp_path, coco_dataset)
    job = jobs.submit(workspace, "evaluate", project_id, {"precision": "f32"})
    seen: list[str] = []
    final = jobs.wait(workspace, job.id, lambda j: seen.append(j.state))
    assert final.state == "done", final.error
    assert final.pid is not None and final.pid != os.getpid()
    assert final.progress == 1.0 and final.finished_at is not None
    metrics = final.result["metrics"] if final.result else {}
    assert metrics["images"] == 2 and metrics["ground_truth"] == 2 and metrics["detections"] == 2
    assert 0.0 < metrics["mask_ap"] <= 1.0
    stored = workspace.results(project_id, "accuracy")
    assert len(stored) == 1 and stored[0].data["metrics"] == metrics
    assert Path(final.log_path or "").read_text().count("done:") == 1
    assert not jobs.work_dir(workspace, job.id).exists()


def test_a_failing_job_records_a_clear_error(
    workspace: Workspace, tmp_path: Path, image_folder: Path
) -> None:
    xml = build_omz_maskrcnn(tmp_path / "m" / "model.xml")
    model = import_model(workspace, xml)
    dataset = import_dataset(workspace, image_folder)  # not annotated: evaluate must refuse
    project = create_project(workspace, model_id=model.id, dataset_id=dataset.id)
    final = jobs.wait(workspace, jobs.submit(workspace, "evaluate", project.id, {}).id)
    assert final.state == "failed"
    assert final.error and "has no annotations" in final.error


def test_a_job_whose_process_died_is_marked_interrupted_and_cleaned(workspace: Workspace) -> None:
    job = workspace.add_job(kind=JobKind.EVALUATE, project_id=None, params={})
    # A real process, already gone, that never took the job's liveness lock.
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    workspace.update_job(job.id, state=JobState.RUNNING, pid=proc.pid, started_at=time.time())
    partial = jobs.work_dir(workspace, job.id)
    partial.mkdir(parents=True)
    (partial / "half.bin").write_bytes(b"x" * 10)
    assert jobs.recover_jobs(workspace) == [job.id]
    recovered = workspace.job(job.id)
    assert recovered.state == "interrupted" and "ended unexpectedly" in (recovered.error or "")
    assert "during its start: it was killed" in (recovered.error or "")
    assert not partial.exists()


def test_sigkill_of_a_running_job_is_seen_as_interrupted(
    workspace: Workspace, tmp_path: Path, coco_dataset: Path
) -> None:
    project_id = _annotated_project(workspace, tmp_path, coco_dataset)
    job = workspace.add_job(kind=JobKind.EVALUATE, project_id=project_id, params={})
    # Stand in for a job process that has not taken its lock yet: its pid speaks for it.
    sleeper = subprocess.Popen(SLEEP, start_new_session=True)
    workspace.update_job(job.id, state=JobState.RUNNING, pid=sleeper.pid, started_at=time.time())
    assert jobs.recover_jobs(workspace) == []  # alive: left alone
    os.killpg(sleeper.pid, signal.SIGKILL)
    sleeper.wait()
    assert jobs.recover_jobs(workspace) == [job.id]
    assert workspace.job(job.id).state == "interrupted"


def test_queued_jobs_wait_for_the_running_one_and_can_be_cancelled(
    workspace: Workspace, tmp_path: Path, coco_dataset: Path
) -> None:
    project_id = _annotated_project(workspace, tmp_path, coco_dataset)
    blocker = workspace.add_job(kind=JobKind.EVALUATE, project_id=project_id, params={})
    sleeper = subprocess.Popen(SLEEP, start_new_session=True)
    try:
        workspace.update_job(
            blocker.id, state=JobState.RUNNING, pid=sleeper.pid, started_at=time.time()
        )
        queued = jobs.submit(workspace, "evaluate", project_id, {})
        assert workspace.job(queued.id).state == "queued"  # one heavy job at a time
        assert jobs.cancel(workspace, queued.id).state == "cancelled"
    finally:
        os.killpg(sleeper.pid, signal.SIGKILL)
        sleeper.wait()


# A process that takes a job's liveness lock as the job process does, then lives on.
HOLDER = (
    "import sys, time\n"
    "from pathlib import Path\n"
    "from segtui.core.jobs import hold_alive_lock\n"
    "hold_alive_lock(Path(sys.argv[1]))\n"
    "print('locked', flush=True)\n"
    "time.sleep(60)\n"
)


def _running(ws: Workspace, pid: int | None, started_ago: float) -> JobRecord:
    job = ws.add_job(kind=JobKind.EVALUATE, project_id=None, params={})
    ws.update_job(job.id, state=JobState.RUNNING, pid=pid, started_at=time.time() - started_ago)
    return ws.job(job.id)


def test_liveness_comes_from_the_lock_the_job_process_holds(workspace: Workspace) -> None:
    stale = jobs.STALE_CLAIM_S + 1
    # No lock yet, but a live process: a job process that is still starting.
    stranger = subprocess.Popen(SLEEP, start_new_session=True)
    try:
        assert not jobs.process_gone(workspace, _running(workspace, stranger.pid, 0.0))
        # Still no lock long after its claim: a reused pid, not the job process.
        assert jobs.process_gone(workspace, _running(workspace, stranger.pid, stale))
    finally:
        stranger.kill()
        stranger.wait()
    # Claimed, no pid written yet: alive until the claim goes stale.
    assert not jobs.process_gone(workspace, _running(workspace, None, 0.0))
    assert jobs.process_gone(workspace, _running(workspace, None, stale))

    # The lock decides, whatever the pid says: held is alive (even with a stale claim
    # and no pid), and free is dead at once (even a moment after the start).
    job = _running(workspace, None, stale)
    lock = jobs.alive_lock_path(workspace, job.id)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(lock)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        assert jobs.lock_state(lock) is jobs.Lock.HELD
        assert jobs.job_alive(workspace, job) and not jobs.process_gone(workspace, job)
        assert jobs.lock_state(lock) is jobs.Lock.HELD  # a look does not take it away
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert jobs.lock_state(lock) is jobs.Lock.FREE
    fresh = dataclasses.replace(job, started_at=time.time(), pid=holder.pid)
    assert jobs.process_gone(workspace, fresh)
    assert not jobs.job_alive(workspace, dataclasses.replace(fresh, state=JobState.DONE))


def test_a_lock_left_by_an_earlier_job_of_the_same_id_says_nothing(
    workspace: Workspace,
) -> None:
    job = _running(workspace, os.getpid(), 0.0)  # starting: no lock of its own yet
    lock = jobs.alive_lock_path(workspace, job.id)
    lock.parent.mkdir(parents=True)
    lock.touch()
    os.utime(lock, (job.created_at - 3600, job.created_at - 3600))
    assert jobs.lock_state(lock) is jobs.Lock.FREE
    assert not jobs.process_gone(workspace, job)
    os.utime(lock, None)  # a lock this job's process took, then dropped: it is gone
    assert jobs.process_gone(workspace, job)


def test_an_unreadable_lock_falls_back_on_the_pid(workspace: Workspace) -> None:
    job = _running(workspace, os.getpid(), jobs.STALE_CLAIM_S + 1)
    lock = jobs.alive_lock_path(workspace, job.id)
    lock.parent.mkdir(parents=True)
    lock.symlink_to(lock.name)  # a loop: it cannot be opened, as another user's file
    assert jobs.lock_state(lock) is jobs.Lock.UNREADABLE
    assert not jobs.process_gone(workspace, job)  # this process lives
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    assert jobs.process_gone(workspace, dataclasses.replace(job, pid=gone.pid))


def test_pid_alive_knows_the_living_from_a_zombie_and_the_dead() -> None:
    living = subprocess.Popen(SLEEP, start_new_session=True)
    quick = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        assert jobs.pid_alive(living.pid)
        # Not waited for: once it exits it stays a zombie until reaped.
        deadline = time.monotonic() + 10
        while psutil.Process(quick.pid).status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert not jobs.pid_alive(quick.pid)
    finally:
        for proc in (living, quick):
            proc.kill()
            proc.wait()
    assert not jobs.pid_alive(living.pid) and not jobs.pid_alive(quick.pid)
    assert not jobs.pid_alive(None) and not jobs.pid_alive(0)


def test_job_kinds_register_without_importing_jobs() -> None:
    code = (
        "import sys, segtui.core.job_kinds as k\n"
        "from segtui.core import job_registry as r\n"
        "print('segtui.core.jobs' in sys.modules, [str(k) for k in r.registered_kinds()])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == f"False {sorted(str(kind) for kind in JobKind)}"
    assert set(job_registry.registered_kinds()) <= set(JobKind)


def test_an_unknown_job_kind_is_refused_before_it_is_queued(workspace: Workspace) -> None:
    with pytest.raises(SegtuiError, match="Unknown job kind 'train'"):
        jobs.submit(workspace, "train", None, {})
    assert workspace.jobs() == []
    # A kind given as its string is the same kind.
    job = jobs.submit(workspace, "evaluate", None, {}, start=False)
    assert job.kind is JobKind.EVALUATE and job.state is JobState.QUEUED


def test_submitting_a_job_leaves_the_handlers_to_the_job_process(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from segtui.core import jobs\n"
        "from segtui.core.workspace import Workspace\n"
        "jobs.submit(Workspace(Path(sys.argv[1])), 'evaluate', None, {}, start=False)\n"
        "print([m for m in ('segtui.core.job_kinds', 'openvino', 'cv2') if m in sys.modules])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "ws")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip() == "[]"
    with Workspace(tmp_path / "ws") as ws:
        assert [job.kind for job in ws.jobs()] == [JobKind.EVALUATE]


def test_a_job_cancelled_before_its_process_starts_stays_cancelled(workspace: Workspace) -> None:
    job = jobs.submit(workspace, JobKind.EVALUATE, None, {}, start=False)
    assert workspace.claim_next_job() == job.id  # claimed; its process not started yet
    assert jobs.cancel(workspace, job.id).state == JobState.CANCELLED
    # The process, starting late, finds the job ended and leaves it so.
    assert not workspace.mark_job_started(job.id, os.getpid())
    after = workspace.job(job.id)
    assert (after.state, after.pid, after.stage) == (JobState.CANCELLED, None, "Cancelled")


def test_an_end_once_recorded_is_never_overwritten(workspace: Workspace) -> None:
    job = workspace.add_job(kind=JobKind.EVALUATE, project_id=None, params={})
    assert workspace.claim_next_job() == job.id
    assert workspace.finish_job(job.id, JobState.DONE, result={"mask_ap": 0.5})
    # A late cancel, a recovery that came second: neither changes a done job.
    assert not workspace.finish_job(job.id, JobState.CANCELLED)
    assert not workspace.finish_job(job.id, JobState.INTERRUPTED, error="killed")
    done = workspace.job(job.id)
    assert (done.state, done.result, done.error) == (JobState.DONE, {"mask_ap": 0.5}, None)
    assert (done.progress, done.stage) == (1.0, "Done")


def test_a_cancel_raises_at_once_except_in_a_deferred_section_and_only_once() -> None:
    token = CancelToken()
    on_term = jobs._on_sigterm(token)
    with job_registry.cancel_deferred():
        on_term(signal.SIGTERM, None)  # noted only: the section acts on it at its check
        assert token.cancelled
        with pytest.raises(Cancelled):
            token.raise_if_cancelled()
    on_term(signal.SIGTERM, None)  # asked again: the first request is being acted on
    fresh = CancelToken()
    with pytest.raises(Cancelled):
        jobs._on_sigterm(fresh)(signal.SIGTERM, None)
    assert fresh.cancelled and job_registry.cancel_can_interrupt()
