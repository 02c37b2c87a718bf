"""The SQLite workspace: schema, migrations, atomic writes, consistency."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from segtui.core.errors import NotFoundError, WorkspaceError
from segtui.core.workspace import (
    MIGRATIONS,
    SCHEMA_VERSION,
    DatasetImage,
    Workspace,
    atomic_write_text,
    default_workspace_dir,
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
    with pytest.raises(WorkspaceError, match="not a segtui workspace"):
        Workspace(tmp_path / "w")


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
            analysis={},
            class_names=[],
            optimized_from=999,
        )
    assert workspace.models() == []
    assert not staged.exists()
    assert list((workspace.root / "models").iterdir()) == []


def test_projects_are_unique_per_model_dataset_device_and_jobs_update(workspace: Workspace) -> None:
    staged = workspace.staging_dir()
    (staged / "model.xml").write_text("<net/>")
    model = workspace.add_model(
        name="m",
        format_id="omz-maskrcnn",
        source_path="/x",
        staged_dir=staged,
        xml_name="model.xml",
        checksum="abc",
        analysis={"gflops": 1.0},
        class_names=["a"],
    )
    assert model.xml_path.read_text() == "<net/>"
    dataset = workspace.add_dataset(
        name="d",
        kind="images",
        root=Path("/data"),
        analysis={"image_count": 1},
        images=[DatasetImage(0, "a.png", 10, 20, None)],
    )
    p1 = workspace.add_project(name="p", model_id=model.id, dataset_id=dataset.id, device="CPU")
    p2 = workspace.add_project(
        name="p again", model_id=model.id, dataset_id=dataset.id, device="CPU"
    )
    assert p1.id == p2.id and len(workspace.projects()) == 1
    job = workspace.add_job(kind="benchmark", project_id=p1.id, params={"time": 5})
    assert job.state == "queued" and job.params == {"time": 5}
    workspace.update_job(job.id, state="done", progress=1.0, result={"fps": 12.5})
    done = workspace.job(job.id)
    assert (done.state, done.progress, done.result) == ("done", 1.0, {"fps": 12.5})
    with pytest.raises(ValueError):
        workspace.update_job(job.id, bogus=1)
    with pytest.raises(sqlite3.IntegrityError):
        workspace.update_job(job.id, state="exploded")
    with pytest.raises(WorkspaceError, match="still used"):
        workspace.delete_model(model.id)
    with pytest.raises(NotFoundError):
        workspace.project(42)


def test_two_workspace_handles_see_each_others_writes(tmp_path: Path) -> None:
    a, b = Workspace(tmp_path / "w"), Workspace(tmp_path / "w")
    a.set_setting("x", "1")
    assert b.get_setting("x") == "1"
    b.set_setting("x", "2")
    assert a.get_setting("x") == "2"
