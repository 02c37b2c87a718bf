"""The workspace: an SQLite store of models, datasets, projects, jobs and results.

Files the workspace owns (model copies, annotation copies, job logs, reports)
live under its folder. Every write of a file is atomic (temp file + rename),
and an import either lands whole (files and rows) or leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import platformdirs

from segtui.core import storage
from segtui.core.db_schema import MIGRATIONS, SCHEMA_VERSION, TABLES
from segtui.core.errors import NotFoundError, WorkspaceError
from segtui.core.job_store import JobStore
from segtui.core.records import (
    DatasetAnalysis,
    DatasetImage,
    DatasetRecord,
    JobRecord,
    ModelAnalysis,
    ModelRecord,
    ProjectRecord,
    ProjectRow,
    ResultRecord,
)
from segtui.core.types import DatasetKind, ResultKind


def default_workspace_dir(override: str | Path | None = None) -> Path:
    """Where the workspace lives: `override` (--workspace), else SEGTUI_HOME, else platformdirs."""
    # Absolute, so that messages and job processes name the same folder whatever their cwd.
    if override:
        return Path(override).expanduser().absolute()
    env = os.environ.get("SEGTUI_HOME")
    if env:
        return Path(env).expanduser().absolute()
    return Path(platformdirs.user_data_dir("segtui", appauthor=False)).absolute()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that readers see the old file or the new one, never a part.

    The file is 0600 (mkstemp's mode); missing folders above it are made 0700.
    """
    storage.private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), storage.PRIVATE_FILE)  # the umask may have taken more
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


class Workspace(JobStore):
    """An open workspace. Cheap to create; one per thread or process (jobs: see JobStore)."""

    def __init__(self, root: Path, *, verify: bool = False, read_only: bool = False) -> None:
        """Open (or start) the workspace at `root`; every failure is a WorkspaceError.

        `verify` also checks the tables and, on a small database, its pages (quick_check);
        `read_only` opens an existing workspace without writing anything (no migration).
        """
        self.root = Path(root)
        self.db_path = self.root / storage.DB_NAME
        self.read_only = read_only
        try:
            self._conn = storage.open_database(self.root, read_only=read_only)
            try:
                self._migrate()
                if verify:
                    storage.verify_database(self._conn, self.root, TABLES)
            except BaseException:
                self._conn.close()
                raise
        except (sqlite3.Error, OSError) as exc:
            raise storage.workspace_error(exc, self.root) from exc

    # -- infrastructure -------------------------------------------------------------

    @classmethod
    def open(cls, override: str | Path | None = None, *, read_only: bool = False) -> Workspace:
        """The workspace a front end starts on (see `default_workspace_dir`), verified."""
        return cls(default_workspace_dir(override), verify=True, read_only=read_only)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        version = self.schema_version
        if version > len(MIGRATIONS):
            raise WorkspaceError(
                f"The workspace {self.root} was written by a newer segtui (schema {version}).",
                "Upgrade segtui, or use another workspace with --workspace.",
            )
        if self.read_only and version < len(MIGRATIONS):
            raise WorkspaceError(
                f"The workspace {self.root} needs an upgrade (schema {version}), "
                "and it cannot be written here.",
                "Open it once with this segtui where it is writable.",
            )
        while version < len(MIGRATIONS):
            with self.transaction() as conn:
                # Re-read inside the write lock: another process may have migrated meanwhile.
                current = int(conn.execute("PRAGMA user_version").fetchone()[0])
                if current == version:
                    conn.executescript_safe(MIGRATIONS[version])
                    conn.execute(f"PRAGMA user_version = {version + 1}")
            version = self.schema_version

    @contextlib.contextmanager
    def transaction(self) -> Iterator[_Tx]:
        """A write transaction (BEGIN IMMEDIATE): serialised against other processes."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield _Tx(self._conn)
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        else:
            self._conn.execute("COMMIT")

    def _one(self, sql: str, args: tuple[Any, ...] = ()) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self._conn.execute(sql, args).fetchone()
        return row

    def _all(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        return list(self._conn.execute(sql, args).fetchall())

    def staging_dir(self) -> Path:
        """A fresh private folder under tmp/ for files that are not registered yet."""
        return storage.private_dir(self.root / "tmp" / uuid.uuid4().hex)

    def clean_tmp(self) -> None:
        """Remove staging folders left by a process that died mid-import."""
        tmp = self.root / "tmp"
        cutoff = time.time() - 3600
        for child in tmp.iterdir():
            with contextlib.suppress(OSError):
                # Only folders: a lock file there is held by a live process (core.sample).
                if child.is_dir() and child.stat().st_mtime < cutoff:
                    _remove_unless_locked(child)

    # -- settings ----------------------------------------------------------------

    def get_setting(self, key: str, default: str | None = None) -> str | None:
        row = self._one("SELECT value FROM settings WHERE key = ?", (key,))
        return default if row is None else str(row["value"])

    def set_setting(self, key: str, value: str) -> None:
        with self.transaction() as tx:
            tx.execute(
                "INSERT INTO settings(key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    # -- models ------------------------------------------------------------------

    def models(self) -> list[ModelRecord]:
        rows = self._all("SELECT * FROM models ORDER BY id")
        return [ModelRecord.from_row(r, self.root) for r in rows]

    def model(self, model_id: int) -> ModelRecord:
        row = self._one("SELECT * FROM models WHERE id = ?", (model_id,))
        if row is None:
            raise NotFoundError(f"No model with id {model_id}.", "See `segtui list models`.")
        return ModelRecord.from_row(row, self.root)

    def find_model_by_checksum(self, checksum: str) -> ModelRecord | None:
        row = self._one("SELECT * FROM models WHERE checksum = ? ORDER BY id LIMIT 1", (checksum,))
        return None if row is None else ModelRecord.from_row(row, self.root)

    def add_model(
        self,
        *,
        name: str,
        format_id: str,
        source_path: str,
        staged_dir: Path,
        xml_name: str,
        checksum: str,
        analysis: ModelAnalysis,
        class_names: list[str],
        optimized_from: int | None = None,
        optimization: Mapping[str, object] | None = None,
        then: Callable[[_Tx, int], None] | None = None,
        accuracy_settings: Mapping[str, object] | None = None,
    ) -> ModelRecord:
        """Register a model whose files wait in `staged_dir`; moves them into models/<id>.

        `then(tx, model_id)` writes what belongs with the model in the same transaction;
        `accuracy_settings` are the user's values (checked by core.accuracy_settings).
        """
        final: Path | None = None
        try:
            with self.transaction() as tx:
                cur = tx.execute(
                    "INSERT INTO models(name, format_id, source_path, dir, xml_name, checksum, "
                    "analysis, class_names, optimized_from, optimization, created_at, "
                    "accuracy_settings) VALUES (?, ?, ?, '', ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        name,
                        format_id,
                        source_path,
                        xml_name,
                        checksum,
                        json.dumps(analysis),
                        json.dumps(class_names),
                        optimized_from,
                        None if optimization is None else json.dumps(optimization),
                        time.time(),
                        json.dumps(dict(accuracy_settings or {})),
                    ),
                )
                model_id = int(cur.lastrowid or 0)
                rel = f"models/{model_id}"
                final = self.root / rel
                if final.exists():  # left by a crash between rename and commit
                    shutil.rmtree(final)
                os.replace(staged_dir, final)
                storage.make_private(final)  # copied files keep their source's mode
                tx.execute("UPDATE models SET dir = ? WHERE id = ?", (rel, model_id))
                if then is not None:
                    then(tx, model_id)
        except BaseException:
            if final is not None and final.exists():
                shutil.rmtree(final, ignore_errors=True)
            shutil.rmtree(staged_dir, ignore_errors=True)
            raise
        return self.model(model_id)

    def set_model_accuracy_settings(
        self,
        model_id: int,
        user_values: Mapping[str, object],
        *,
        format_id: str,
        class_names: list[str],
    ) -> ModelRecord:
        """Store a model's user accuracy settings with the format and class names they make
        effective (core.accuracy_settings checks them first)."""
        self.model(model_id)  # a NotFoundError for a model that is not there
        with self.transaction() as tx:
            tx.execute(
                "UPDATE models SET accuracy_settings = ?, format_id = ?, class_names = ? "
                "WHERE id = ?",
                (json.dumps(dict(user_values)), format_id, json.dumps(class_names), model_id),
            )
        return self.model(model_id)

    def delete_model(self, model_id: int) -> None:
        record = self.model(model_id)
        try:
            with self.transaction() as tx:
                tx.execute("DELETE FROM models WHERE id = ?", (model_id,))
        except sqlite3.IntegrityError as exc:
            raise WorkspaceError(
                f"Model {model_id} is still used by a project or an optimized model.",
                "Delete those first.",
            ) from exc
        shutil.rmtree(record.dir, ignore_errors=True)

    # -- datasets ----------------------------------------------------------------

    def datasets(self) -> list[DatasetRecord]:
        rows = self._all("SELECT * FROM datasets ORDER BY id")
        return [DatasetRecord.from_row(r, self.root) for r in rows]

    def dataset(self, dataset_id: int) -> DatasetRecord:
        row = self._one("SELECT * FROM datasets WHERE id = ?", (dataset_id,))
        if row is None:
            raise NotFoundError(f"No dataset with id {dataset_id}.", "See `segtui list datasets`.")
        return DatasetRecord.from_row(row, self.root)

    def dataset_images(self, dataset_id: int) -> list[DatasetImage]:
        rows = self._all(
            "SELECT idx, path, width, height, coco_id FROM dataset_images "
            "WHERE dataset_id = ? ORDER BY idx",
            (dataset_id,),
        )
        return [
            DatasetImage(r["idx"], r["path"], r["width"], r["height"], r["coco_id"]) for r in rows
        ]

    def add_dataset(
        self,
        *,
        name: str,
        kind: DatasetKind | str,
        root: Path,
        analysis: DatasetAnalysis,
        images: list[DatasetImage],
        annotations_file: Path | None = None,
    ) -> DatasetRecord:
        """Register a dataset; `annotations_file` (a staged copy) moves into datasets/<id>/."""
        final: Path | None = None
        try:
            with self.transaction() as tx:
                cur = tx.execute(
                    "INSERT INTO datasets(name, kind, root, annotations, analysis, created_at) "
                    "VALUES (?, ?, ?, NULL, ?, ?)",
                    (name, DatasetKind(kind), str(root), json.dumps(analysis), time.time()),
                )
                dataset_id = int(cur.lastrowid or 0)
                tx.executemany(
                    "INSERT INTO dataset_images(dataset_id, idx, path, width, height, coco_id) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    [(dataset_id, i.idx, i.path, i.width, i.height, i.coco_id) for i in images],
                )
                if annotations_file is not None:
                    rel = f"datasets/{dataset_id}/annotations.json"
                    final = self.root / rel
                    storage.private_dir(final.parent)
                    os.replace(annotations_file, final)
                    tx.execute(
                        "UPDATE datasets SET annotations = ? WHERE id = ?", (rel, dataset_id)
                    )
        except BaseException:
            if final is not None:
                shutil.rmtree(final.parent, ignore_errors=True)
            raise
        return self.dataset(dataset_id)

    def delete_dataset(self, dataset_id: int) -> None:
        self.dataset(dataset_id)
        try:
            with self.transaction() as tx:
                tx.execute("DELETE FROM datasets WHERE id = ?", (dataset_id,))
        except sqlite3.IntegrityError as exc:
            raise WorkspaceError(
                f"Dataset {dataset_id} is still used by a project.", "Delete the project first."
            ) from exc
        shutil.rmtree(self.root / "datasets" / str(dataset_id), ignore_errors=True)

    # -- projects ----------------------------------------------------------------

    def projects(self) -> list[ProjectRecord]:
        return [ProjectRecord.from_row(r) for r in self._all("SELECT * FROM projects ORDER BY id")]

    def project(self, project_id: int) -> ProjectRecord:
        row = self._one("SELECT * FROM projects WHERE id = ?", (project_id,))
        if row is None:
            raise NotFoundError(f"No project with id {project_id}.", "See `segtui list`.")
        return ProjectRecord.from_row(row)

    def children(self, project_id: int) -> list[ProjectRecord]:
        rows = self._all("SELECT * FROM projects WHERE parent_id = ? ORDER BY id", (project_id,))
        return [ProjectRecord.from_row(r) for r in rows]

    def add_project(
        self,
        *,
        name: str,
        model_id: int,
        dataset_id: int,
        device: str,
        parent_id: int | None = None,
    ) -> ProjectRecord:
        # Insert-or-get under the UNIQUE (model, dataset, device): two processes creating
        # the same project at once get the same one.
        with self.transaction() as tx:
            tx.execute(
                "INSERT INTO projects(name, model_id, dataset_id, device, parent_id, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(model_id, dataset_id, device) DO NOTHING",
                (name, model_id, dataset_id, device, parent_id, time.time()),
            )
            row = tx.execute(
                "SELECT id FROM projects WHERE model_id = ? AND dataset_id = ? AND device = ?",
                (model_id, dataset_id, device),
            ).fetchone()
        return self.project(int(row[0]))

    def project_rows(self) -> list[ProjectRow]:
        """Every project with its model, dataset, newest job and best throughput, by id."""
        return [ProjectRow.from_row(r) for r in self._all(PROJECT_ROWS_SQL)]

    # -- results -----------------------------------------------------------------

    def add_result(
        self,
        *,
        project_id: int,
        kind: ResultKind | str,
        data: Mapping[str, object],
        job_id: int | None = None,
    ) -> ResultRecord:
        with self.transaction() as tx:
            cur = tx.execute(
                "INSERT INTO results(project_id, job_id, kind, data, created_at) VALUES (?, ?, ?, ?, ?)",
                (project_id, job_id, kind, json.dumps(data), time.time()),
            )
            result_id = int(cur.lastrowid or 0)
        return self.result(result_id)

    def delete_result(self, result_id: int) -> None:
        with self.transaction() as tx:
            tx.execute("DELETE FROM results WHERE id = ?", (result_id,))
        shutil.rmtree(self.root / "reports" / str(result_id), ignore_errors=True)

    def result(self, result_id: int) -> ResultRecord:
        row = self._one("SELECT * FROM results WHERE id = ?", (result_id,))
        if row is None:
            raise NotFoundError(f"No result with id {result_id}.")
        return ResultRecord.from_row(row)

    def results(self, project_id: int, kind: ResultKind | str | None = None) -> list[ResultRecord]:
        if kind is None:
            rows = self._all(
                "SELECT * FROM results WHERE project_id = ? ORDER BY id", (project_id,)
            )
        else:
            rows = self._all(
                "SELECT * FROM results WHERE project_id = ? AND kind = ? ORDER BY id",
                (project_id, kind),
            )
        return [ResultRecord.from_row(r) for r in rows]


# The project list in one query: the newest job by a correlated MAX(id), the best benchmark
# by a window over the benchmark results (ties go to the oldest, as `best_throughput`).
PROJECT_ROWS_SQL = """
SELECT p.id, p.name, p.parent_id, p.device,
       m.id AS model_id, m.name AS model_name, m.format_id,
       d.id AS dataset_id, d.name AS dataset_name, d.kind AS dataset_kind,
       CAST(COALESCE(json_extract(d.analysis, '$.image_count'), 0) AS INTEGER) AS image_count,
       latest.id AS latest_job_id, latest.kind AS latest_job_kind,
       latest.state AS latest_job_state,
       (SELECT MAX(a.id) FROM jobs a
        WHERE a.project_id = p.id AND a.state IN ('queued', 'running')) AS active_job_id,
       best.fps AS best_fps, best.precision AS best_precision
FROM projects p
JOIN models m ON m.id = p.model_id
JOIN datasets d ON d.id = p.dataset_id
LEFT JOIN jobs latest ON latest.id = (SELECT MAX(j.id) FROM jobs j WHERE j.project_id = p.id)
LEFT JOIN (
    SELECT project_id,
           json_extract(data, '$.throughput_fps') AS fps,
           json_extract(data, '$.precision') AS precision,
           ROW_NUMBER() OVER (
               PARTITION BY project_id
               ORDER BY json_extract(data, '$.throughput_fps') DESC, id
           ) AS rank
    FROM results
    WHERE kind = 'benchmark' AND json_extract(data, '$.throughput_fps') IS NOT NULL
) best ON best.project_id = p.id AND best.rank = 1
ORDER BY p.id
"""


def _remove_unless_locked(folder: Path) -> None:
    """Remove `folder` unless a live process holds its lock (an import running for over an
    hour locks its staging folder: core.project_import); BlockingIOError leaves it."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        shutil.rmtree(folder, ignore_errors=True)
    finally:
        os.close(fd)


class _Tx:
    """The connection as seen inside a transaction (no nested BEGIN/COMMIT)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, args: tuple[Any, ...] | list[Any] = ()) -> sqlite3.Cursor:
        return self._conn.execute(sql, args)

    def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> sqlite3.Cursor:
        return self._conn.executemany(sql, rows)

    def executescript_safe(self, script: str) -> None:
        # executescript() would COMMIT first; run the statements one by one instead.
        for statement in script.split(";"):
            if statement.strip():
                self._conn.execute(statement)


__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "DatasetImage",
    "DatasetRecord",
    "JobRecord",
    "ModelRecord",
    "ProjectRecord",
    "ProjectRow",
    "ResultRecord",
    "Workspace",
    "atomic_write_bytes",
    "atomic_write_text",
    "default_workspace_dir",
]
