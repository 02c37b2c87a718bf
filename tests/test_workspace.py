"""The SQLite workspace: schema, migrations, atomic writes, consistency."""

from __future__ import annotations

import errno
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import cast

import pytest

from segtui.core import storage
from segtui.core.errors import (
    CorruptWorkspaceError,
    DiskFullError,
    NotFoundError,
    ReadOnlyWorkspaceError,
    StorageIOError,
    WorkspaceError,
    WorkspaceLockedError,
)
from segtui.core.records import DatasetAnalysis, ModelAnalysis, ModelRecord, ProjectRecord
from segtui.core.types import DatasetKind, JobKind, JobState, ResultKind
from segtui.core.workspace import (
    MIGRATIONS,
    SCHEMA_VERSION,
    DatasetImage,
    Workspace,
    atomic_write_text,
    default_workspace_dir,
)


def _model(ws: Workspace, checksum: str = "abc", **analysis: object) -> ModelRecord:
    """A registered model with a partial analysis (the workspace stores what it is given)."""
    staged = ws.staging_dir()
    (staged / "model.xml").write_text("<net/>")
    return ws.add_model(
        name=f"m-{checksum}",
        format_id="omz-maskrcnn",
        source_path="/x",
        staged_dir=staged,
        xml_name="model.xml",
        checksum=checksum,
        analysis=cast(ModelAnalysis, analysis),
        class_names=["a"],
    )


def _project(ws: Workspace, device: str = "CPU", parent_id: int | None = None) -> ProjectRecord:
    model = ws.find_model_by_checksum("abc") or _model(ws)
    datasets = ws.datasets()
    dataset = (
        datasets[0]
        if datasets
        else ws.add_dataset(
            name="d",
            kind=DatasetKind.COCO,
            root=Path("/data"),
            analysis=cast(DatasetAnalysis, {"image_count": 7}),
            images=[DatasetImage(0, "a.png", 10, 20, 1)],
        )
    )
    return ws.add_project(
        name=f"p {device}",
        model_id=model.id,
        dataset_id=dataset.id,
        device=device,
        parent_id=parent_id,
    )


def test_new_workspace_has_current_schema_wal_and_foreign_keys(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "w")
    assert ws.schema_version == SCHEMA_VERSION == len(MIGRATIONS)
    assert ws._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert ws._conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    tables = {r[0] for r in ws._conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"models", "datasets", "dataset_images", "projects", "jobs", "results"} <= tables
    ws.close()
    # Re-opening does not migrate again and keeps the data.
    ws = Workspace(tmp_path / "w")
    ws.set_setting("k", "v")
    ws.close()
    assert Workspace(tmp_path / "w").get_setting("k") == "v"


def test_workspace_from_a_newer_segtui_is_refused(tmp_path: Path) -> None:
    Workspace(tmp_path / "w").close()
    conn = sqlite3.connect(tmp_path / "w" / "segtui.db")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    conn.close()
    with pytest.raises(WorkspaceError, match="newer segtui"):
        Workspace(tmp_path / "w")


def test_a_file_that_is_not_a_database_is_refused_clearly(tmp_path: Path) -> None:
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "segtui.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(CorruptWorkspaceError, match="not a segtui workspace"):
        Workspace(tmp_path / "w")


def test_a_workspace_of_schema_1_migrates_to_the_samples_table(tmp_path: Path) -> None:
    root = tmp_path / "w"
    root.mkdir()
    conn = sqlite3.connect(root / "segtui.db", isolation_level=None)
    conn.executescript(MIGRATIONS[0])
    conn.execute("INSERT INTO settings(key, value) VALUES ('kept', 'yes')")
    conn.execute("PRAGMA user_version = 1")
    conn.close()
    with Workspace.open(root) as ws:
        assert ws.schema_version == SCHEMA_VERSION == 3
        assert ws.get_setting("kept") == "yes"
        columns = [r[1] for r in ws._conn.execute("PRAGMA table_info(samples)")]
    assert columns == [
        "name",
        "model_id",
        "images_dataset_id",
        "annotated_dataset_id",
        "registered_at",
    ]


def test_workspace_location_override_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SEGTUI_HOME", str(tmp_path / "env"))
    assert default_workspace_dir() == tmp_path / "env"
    assert default_workspace_dir(tmp_path / "flag") == tmp_path / "flag"
    monkeypatch.delenv("SEGTUI_HOME")
    assert default_workspace_dir().name == "segtui"


def test_atomic_write_replaces_whole_file_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "d" / "f.json"
    atomic_write_text(target, "old")
    atomic_write_text(target, "new")
    assert target.read_text() == "new"
    assert [p.name for p in target.parent.iterdir()] == ["f.json"]


def test_failed_model_registration_rolls_back_rows_and_files(workspace: Workspace) -> None:
    staged = workspace.staging_dir()
    (staged / "model.xml").write_text("<net/>")
    with pytest.raises(sqlite3.IntegrityError):
        # optimized_from points at a model that does not exist: the foreign key refuses it.
        workspace.add_model(
            name="m",
            format_id="omz-maskrcnn",
            source_path="/x",
            staged_dir=staged,
            xml_name="model.xml",
            checksum="abc",
            analysis=cast(ModelAnalysis, {}),
            class_names=[],
            optimized_from=999,
        )
    assert workspace.models() == []
    assert not staged.exists()
    assert list((workspace.root / "models").iterdir()) == []


def test_projects_are_unique_per_model_dataset_device_and_jobs_update(workspace: Workspace) -> None:
    model = _model(workspace, gflops=1.0)
    assert model.xml_path.read_text() == "<net/>"
    assert dict(model.analysis) == {"gflops": 1.0}
    dataset = workspace.add_dataset(
        name="d",
        kind="images",
        root=Path("/data"),
        analysis=cast(DatasetAnalysis, {"image_count": 1}),
        images=[DatasetImage(0, "a.png", 10, 20, None)],
    )
    assert dataset.kind is DatasetKind.IMAGES and dataset.image_count == 1
    p1 = workspace.add_project(name="p", model_id=model.id, dataset_id=dataset.id, device="CPU")
    p2 = workspace.add_project(
        name="p again", model_id=model.id, dataset_id=dataset.id, device="CPU"
    )
    assert p1.id == p2.id and len(workspace.projects()) == 1
    job = workspace.add_job(kind=JobKind.BENCHMARK, project_id=p1.id, params={"time": 5})
    assert job.state is JobState.QUEUED and job.kind is JobKind.BENCHMARK
    assert job.params == {"time": 5}
    workspace.update_job(job.id, state=JobState.DONE, progress=1.0, result={"result_id": 12})
    done = workspace.job(job.id)
    assert (done.state, done.progress, done.result) == ("done", 1.0, {"result_id": 12})
    assert done.state is JobState.DONE and not done.active
    with pytest.raises(ValueError):
        workspace.update_job(job.id, bogus=1)
    with pytest.raises(sqlite3.IntegrityError):
        workspace.update_job(job.id, state="exploded")
    with pytest.raises(WorkspaceError, match="still used"):
        workspace.delete_model(model.id)
    with pytest.raises(NotFoundError):
        workspace.project(42)


def test_claiming_starts_the_oldest_queued_job_and_only_one(workspace: Workspace) -> None:
    project = _project(workspace)
    first, second = (
        workspace.add_job(kind=JobKind.EVALUATE, project_id=project.id, params={}) for _ in range(2)
    )
    assert workspace.claim_next_job() == first.id
    claimed = workspace.job(first.id)
    assert claimed.state is JobState.RUNNING and claimed.stage == "Starting"
    assert claimed.started_at is not None and claimed.pid is None
    assert workspace.claim_next_job() is None  # one runs already
    assert workspace.job(second.id).state is JobState.QUEUED
    # The starter's pid fills in only what the job process has not written itself.
    workspace.set_job_pid_if_unset(first.id, 111)
    workspace.set_job_pid_if_unset(first.id, 222)
    assert workspace.job(first.id).pid == 111
    workspace.update_job(first.id, state=JobState.DONE)
    assert workspace.claim_next_job() == second.id


def test_watched_active_and_latest_jobs(workspace: Workspace) -> None:
    project = _project(workspace)
    done = workspace.add_job(kind=JobKind.SWEEP, project_id=project.id, params={})
    workspace.update_job(done.id, state=JobState.DONE)
    queued = workspace.add_job(kind=JobKind.BENCHMARK, project_id=project.id, params={})
    other = workspace.add_job(kind=JobKind.SWEEP, project_id=project.id, params={})
    workspace.update_job(other.id, state=JobState.CANCELLED)
    assert [j.id for j in workspace.watched_jobs()] == [queued.id]
    assert [j.id for j in workspace.watched_jobs([done.id])] == [done.id, queued.id]
    assert [j.id for j in workspace.running_jobs()] == []
    active = workspace.active_job(project.id, JobKind.BENCHMARK)
    assert active is not None and active.id == queued.id
    assert workspace.active_job(project.id, JobKind.SWEEP) is None
    latest = workspace.latest_job(project.id)
    assert latest is not None and latest.id == other.id
    assert workspace.latest_job(project.id + 1) is None


def test_project_rows_come_from_one_query(workspace: Workspace) -> None:
    parent = _project(workspace, "CPU")
    child = _project(workspace, "GPU", parent_id=parent.id)
    for fps, precision in ((10.0, "f32"), (25.0, "bf16"), (25.0, "f32"), (None, "f32")):
        data = {"throughput_fps": fps, "precision": precision}
        workspace.add_result(project_id=parent.id, kind=ResultKind.BENCHMARK, data=data)
    workspace.add_result(project_id=parent.id, kind=ResultKind.SWEEP, data={"throughput_fps": 99.0})
    finished = workspace.add_job(kind=JobKind.BENCHMARK, project_id=parent.id, params={})
    workspace.update_job(finished.id, state=JobState.DONE)
    running = workspace.add_job(kind=JobKind.SWEEP, project_id=parent.id, params={})
    workspace.update_job(running.id, state=JobState.RUNNING)
    queries: list[str] = []
    workspace._conn.set_trace_callback(queries.append)
    rows = workspace.project_rows()
    workspace._conn.set_trace_callback(None)
    assert len(queries) == 1
    assert [row.id for row in rows] == [parent.id, child.id]
    first, second = rows
    assert (first.name, first.device, first.parent_id) == ("p CPU", "CPU", None)
    assert (first.model_name, first.format_id, first.dataset_name) == ("m-abc", "omz-maskrcnn", "d")
    assert first.annotated and first.image_count == 7
    assert (first.latest_job_id, first.active_job_id) == (running.id, running.id)
    assert first.status == "sweep running"
    # The best benchmark (not the sweep); of two equal ones, the older.
    assert (first.best_throughput_fps, first.best_precision) == (25.0, "bf16")
    assert second.parent_id == parent.id and second.status == "ready"
    assert second.latest_job_id is None and second.best_throughput_fps is None


def test_two_workspace_handles_see_each_others_writes(tmp_path: Path) -> None:
    a, b = Workspace(tmp_path / "w"), Workspace(tmp_path / "w")
    a.set_setting("x", "1")
    assert b.get_setting("x") == "1"
    b.set_setting("x", "2")
    assert a.get_setting("x") == "2"


# -- a lost database, private files, read-only opening -------------------------------------


@pytest.mark.parametrize("state", ["empty", "missing"])
def test_a_lost_database_beside_model_folders_is_refused_not_started_anew(
    tmp_path: Path, state: str
) -> None:
    with Workspace(tmp_path / "w") as ws:
        model = _model(ws)
    db = tmp_path / "w" / "segtui.db"
    if state == "empty":
        db.write_bytes(b"")
    else:
        db.unlink()
    with pytest.raises(CorruptWorkspaceError, match=f"is {state}.*holds files it listed") as info:
        Workspace(tmp_path / "w")
    assert "Restore segtui.db from a backup" in info.value.hint
    assert model.xml_path.read_text() == "<net/>"  # the model's files are still there
    # The database file is left as it was found (empty, or missing), nothing created.
    assert db.exists() == (state == "empty")
    assert state == "missing" or db.stat().st_size == 0


def test_a_fresh_or_empty_workspace_still_starts(tmp_path: Path) -> None:
    # An empty database with empty folders (a first start that stopped early) starts anew.
    (tmp_path / "w" / "models").mkdir(parents=True)
    (tmp_path / "w" / "segtui.db").write_bytes(b"")
    with Workspace(tmp_path / "w") as ws:
        assert ws.schema_version == SCHEMA_VERSION
    with Workspace(tmp_path / "new" / "deeper") as ws:
        assert ws.models() == []


def _modes(root: Path) -> set[tuple[str, int]]:
    return {("dir" if p.is_dir() else "file", p.stat().st_mode & 0o777) for p in root.rglob("*")}


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o277])
def test_workspace_folders_are_0700_and_files_0600_whatever_the_umask(
    tmp_path: Path, umask: int
) -> None:
    previous = os.umask(umask)
    try:
        with Workspace(tmp_path / "w") as ws:
            model = _model(ws)
            atomic_write_text(ws.root / "reports" / "7" / "report.json", "{}")
            staged = ws.staging_dir()
            (staged / "model.bin").write_bytes(b"\0" * 10)
            (staged / "model.xml").write_text("<net/>")
            ws.add_model(
                name="second",
                format_id="omz-maskrcnn",
                source_path="/x",
                staged_dir=staged,
                xml_name="model.xml",
                checksum="def",
                analysis=cast(ModelAnalysis, {}),
                class_names=[],
            )
    finally:
        os.umask(previous)
    assert (tmp_path / "w").stat().st_mode & 0o777 == 0o700
    assert model.xml_path.stat().st_mode & 0o777 == 0o600
    assert _modes(tmp_path / "w") == {("dir", 0o700), ("file", 0o600)}


def test_an_existing_world_readable_workspace_is_tightened_on_open(tmp_path: Path) -> None:
    with Workspace(tmp_path / "w") as ws:
        _model(ws)
    for path in [tmp_path / "w", *(tmp_path / "w").iterdir()]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    Workspace(tmp_path / "w").close()
    top = {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "w").iterdir()}
    assert (tmp_path / "w").stat().st_mode & 0o777 == 0o700
    assert top["segtui.db"] == 0o600 and top["models"] == 0o700 and top["tmp"] == 0o700


def test_a_read_only_connection_reads_and_refuses_writes_as_read_only(tmp_path: Path) -> None:
    with Workspace(tmp_path / "w") as ws:
        ws.set_setting("k", "v")
    with Workspace.open(tmp_path / "w", read_only=True) as ws:
        assert ws.get_setting("k") == "v"
        with pytest.raises(sqlite3.OperationalError) as info:
            ws.set_setting("k", "changed")
    named = storage.user_error(info.value, tmp_path / "w")
    assert isinstance(named, ReadOnlyWorkspaceError)
    assert Workspace(tmp_path / "w").get_setting("k") == "v"


def test_quick_check_is_bounded_by_size_and_damage_met_later_is_still_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Workspace(tmp_path / "w") as ws:
        ws._conn.execute("CREATE TABLE filler (x)")
        ws._conn.executemany("INSERT INTO filler VALUES (?)", [("x" * 500,)] * 400)
    db = tmp_path / "w" / "segtui.db"
    data = bytearray(db.read_bytes())
    data[-20 * 4096 :] = b"\xff" * (20 * 4096)  # the filler's pages
    db.write_bytes(bytes(data))
    with pytest.raises(CorruptWorkspaceError, match="quick_check"):
        Workspace.open(tmp_path / "w")
    monkeypatch.setattr(storage, "QUICK_CHECK_MAX_BYTES", 4096)  # "too big to check"
    with Workspace.open(tmp_path / "w") as ws, pytest.raises(sqlite3.DatabaseError) as info:
        ws._conn.execute("SELECT COUNT(*), MAX(x) FROM filler").fetchone()
    named = storage.user_error(info.value, tmp_path / "w")
    assert isinstance(named, CorruptWorkspaceError) and "is damaged" in named.message


# -- faults named as what they are ----------------------------------------------------------


def _sqlite_failure(tmp_path: Path, name: str) -> sqlite3.Error:
    """A real SQLite error of each kind (with its result code, as SQLite raises it)."""
    db = tmp_path / f"{name}.db"
    conn = sqlite3.connect(db, timeout=0, isolation_level=None)
    conn.execute("CREATE TABLE t (x)")
    try:
        if name == "locked":
            other = sqlite3.connect(db, isolation_level=None)
            other.execute("BEGIN IMMEDIATE")
            conn.execute("BEGIN IMMEDIATE")
        elif name == "read-only":
            sqlite3.connect(f"file:{db}?mode=ro", uri=True).execute("INSERT INTO t VALUES (1)")
        elif name == "missing-table":
            conn.execute("SELECT * FROM results")
        else:
            (tmp_path / "junk.db").write_bytes(b"junk" * 1000)
            sqlite3.connect(tmp_path / "junk.db").execute("SELECT * FROM t")
    except sqlite3.Error as exc:
        return exc
    raise AssertionError("no error")


@pytest.mark.parametrize(
    ("make", "kind", "words"),
    [
        (lambda p: sqlite3.OperationalError("database or disk is full"), DiskFullError, "full"),
        (lambda p: OSError(errno.ENOSPC, "No space left", str(p / "ws" / "x")), DiskFullError, ""),
        (lambda p: OSError(errno.EFBIG, "File too large", "/src/m.bin"), DiskFullError, "ulimit"),
        (
            lambda p: OSError(errno.EROFS, "Read-only", str(p / "ws" / "db")),
            ReadOnlyWorkspaceError,
            "",
        ),
        (lambda p: OSError(errno.EACCES, "Denied", str(p / "ws")), ReadOnlyWorkspaceError, ""),
        (lambda p: OSError(errno.EIO, "I/O error", None), StorageIOError, "dmesg"),
        (lambda p: _sqlite_failure(p, "locked"), WorkspaceLockedError, "another process"),
        (lambda p: _sqlite_failure(p, "read-only"), ReadOnlyWorkspaceError, "cannot be written"),
        (lambda p: _sqlite_failure(p, "missing-table"), CorruptWorkspaceError, "outside segtui"),
        (lambda p: _sqlite_failure(p, "not-a-db"), CorruptWorkspaceError, "Move it away"),
        (
            lambda p: sqlite3.DatabaseError("database disk image is malformed"),
            CorruptWorkspaceError,
            "backup",
        ),
    ],
)
def test_storage_faults_are_named_as_what_they_are(
    tmp_path: Path,
    make: Callable[[Path], BaseException],
    kind: type[WorkspaceError],
    words: str,
) -> None:
    named = storage.user_error(make(tmp_path), tmp_path / "ws")
    assert type(named) is kind
    assert words in str(named)
    # Only a file that is not a database at all is to be moved away.
    assert ("Move it away" in str(named)) == (words == "Move it away")


def test_a_file_error_outside_the_workspace_names_the_file_not_the_workspace(
    tmp_path: Path,
) -> None:
    for code in (errno.EACCES, errno.ENOSPC):
        error = OSError(code, os.strerror(code), "/data/images/a.png")
        assert storage.storage_error(error, tmp_path / "ws") is None
        named = storage.user_error(error, tmp_path / "ws")
        assert named is not None and named.message.endswith(": /data/images/a.png.")
        assert str(tmp_path / "ws") not in str(named)
    assert storage.user_error(ValueError("x"), tmp_path) is None  # not a storage fault


def test_an_exclusive_lock_excludes_and_leaves_no_file(tmp_path: Path) -> None:
    lock = tmp_path / "tmp" / "x.lock"
    with storage.exclusive_lock(lock, timeout_s=1, what="testing"):
        assert lock.stat().st_mode & 0o777 == 0o600
        waiting = storage.exclusive_lock(lock, timeout_s=0.2, what="testing")
        with pytest.raises(WorkspaceLockedError, match="has been testing for too long"):
            waiting.__enter__()
    assert not lock.exists()
    with storage.exclusive_lock(lock, timeout_s=0.2, what="testing"):
        pass  # free again


def test_clean_tmp_removes_old_folders_but_not_one_whose_lock_a_process_holds(
    workspace: Workspace,
) -> None:
    import fcntl
    import os

    tmp = workspace.root / "tmp"
    tmp.mkdir(exist_ok=True)
    dead, running = tmp / "import-dead", tmp / "import-running"
    for folder in (dead, running):
        (folder / "members").mkdir(parents=True)
        (folder / "members" / "model.bin").write_bytes(b"x" * 10)
        old = time.time() - 7200  # older than the hour clean_tmp waits
        os.utime(folder, (old, old))
    fd = os.open(running, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # as a running import holds its staging folder
        workspace.clean_tmp()
        assert not dead.exists()
        assert (running / "members" / "model.bin").read_bytes() == b"x" * 10
    finally:
        os.close(fd)
    workspace.clean_tmp()  # its import is gone: the lock is free
    assert not running.exists()
