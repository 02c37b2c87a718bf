"""The workspace: an SQLite store of models, datasets, projects, jobs and results.

Files the workspace owns (model copies, annotation copies, job logs, reports)
live under its folder. Every write of a file is atomic (temp file + rename),
and an import either lands whole (files and rows) or leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs

from segtui.core.errors import NotFoundError, WorkspaceError

SCHEMA_VERSION = 1

# Each entry migrates from version i to i + 1; never edit a released entry, append.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE models (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        format_id TEXT NOT NULL,
        source_path TEXT NOT NULL,
        dir TEXT NOT NULL,
        xml_name TEXT NOT NULL,
        checksum TEXT NOT NULL,
        analysis TEXT NOT NULL,
        class_names TEXT NOT NULL,
        optimized_from INTEGER REFERENCES models(id) ON DELETE RESTRICT,
        optimization TEXT,
        created_at REAL NOT NULL
    );
    CREATE TABLE datasets (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('images', 'coco')),
        root TEXT NOT NULL,
        annotations TEXT,
        analysis TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE TABLE dataset_images (
        dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
        idx INTEGER NOT NULL,
        path TEXT NOT NULL,
        width INTEGER NOT NULL,
        height INTEGER NOT NULL,
        coco_id INTEGER,
        PRIMARY KEY (dataset_id, idx)
    );
    CREATE TABLE projects (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        model_id INTEGER NOT NULL REFERENCES models(id) ON DELETE RESTRICT,
        dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE RESTRICT,
        device TEXT NOT NULL,
        parent_id INTEGER REFERENCES projects(id) ON DELETE SET NULL,
        created_at REAL NOT NULL,
        UNIQUE (model_id, dataset_id, device)
    );
    CREATE TABLE jobs (
        id INTEGER PRIMARY KEY,
        project_id INTEGER REFERENCES projects(id) ON DELETE CASCADE,
        kind TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN
            ('queued', 'running', 'done', 'failed', 'cancelled', 'interrupted')),
        progress REAL NOT NULL DEFAULT 0,
        stage TEXT NOT NULL DEFAULT '',
        eta_s REAL,
        pid INTEGER,
        params TEXT NOT NULL DEFAULT '{}',
        result TEXT,
        error TEXT,
        log_path TEXT,
        created_at REAL NOT NULL,
        started_at REAL,
        finished_at REAL
    );
    CREATE TABLE results (
        id INTEGER PRIMARY KEY,
        project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
        job_id INTEGER REFERENCES jobs(id) ON DELETE SET NULL,
        kind TEXT NOT NULL,
        data TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE INDEX results_project_kind ON results(project_id, kind);
    CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
]


def default_workspace_dir(override: str | Path | None = None) -> Path:
    """Where the workspace lives: `override` (--workspace), else SEGTUI_HOME, else platformdirs."""
    if override:
        return Path(override).expanduser()
    env = os.environ.get("SEGTUI_HOME")
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_data_dir("segtui", appauthor=False))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that readers see the old file or the new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
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


@dataclass(frozen=True)
class ModelRecord:
    id: int
    name: str
    format_id: str
    source_path: str
    dir: Path
    xml_name: str
    checksum: str
    analysis: dict[str, Any]
    class_names: list[str]
    optimized_from: int | None
    optimization: dict[str, Any] | None
    created_at: float

    @property
    def xml_path(self) -> Path:
        return self.dir / self.xml_name

    @property
    def is_optimized(self) -> bool:
        return self.optimized_from is not None


@dataclass(frozen=True)
class DatasetImage:
    idx: int
    path: str  # relative to the dataset root
    width: int
    height: int
    coco_id: int | None


@dataclass(frozen=True)
class DatasetRecord:
    id: int
    name: str
    kind: str  # "images" | "coco"
    root: Path
    annotations: Path | None
    analysis: dict[str, Any]
    created_at: float

    @property
    def annotated(self) -> bool:
        return self.kind == "coco"

    @property
    def image_count(self) -> int:
        return int(self.analysis.get("image_count", 0))


@dataclass(frozen=True)
class ProjectRecord:
    id: int
    name: str
    model_id: int
    dataset_id: int
    device: str
    parent_id: int | None
    created_at: float


@dataclass(frozen=True)
class JobRecord:
    id: int
    project_id: int | None
    kind: str
    state: str
    progress: float
    stage: str
    eta_s: float | None
    pid: int | None
    params: dict[str, Any]
    result: dict[str, Any] | None
    error: str | None
    log_path: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None

    @property
    def active(self) -> bool:
        return self.state in ("queued", "running")


@dataclass(frozen=True)
class ResultRecord:
    id: int
    project_id: int
    job_id: int | None
    kind: str
    data: dict[str, Any]
    created_at: float


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


class Workspace:
    """An open workspace. Cheap to create; one per thread or process."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            for sub in ("models", "datasets", "jobs", "tmp", "reports"):
                (self.root / sub).mkdir(exist_ok=True)
        except OSError as exc:
            raise WorkspaceError(
                f"Cannot create the workspace folder {self.root}: {exc.strerror}.",
                "Choose another folder with --workspace or SEGTUI_HOME.",
            ) from exc
        self.db_path = self.root / "segtui.db"
        try:
            self._conn = sqlite3.connect(self.db_path, timeout=30, isolation_level=None)
        except sqlite3.Error as exc:
            raise WorkspaceError(
                f"Cannot open the workspace database {self.db_path}: {exc}."
            ) from exc
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA foreign_keys = ON")
        self._conn.execute("PRAGMA busy_timeout = 30000")
        try:
            self._conn.execute("PRAGMA journal_mode = WAL")
        except sqlite3.DatabaseError as exc:
            raise WorkspaceError(
                f"{self.db_path} is not a segtui workspace database ({exc}).",
                "Move it away or choose another folder with --workspace.",
            ) from exc
        self._migrate()

    # -- infrastructure -------------------------------------------------------------

    @classmethod
    def open(cls, override: str | Path | None = None) -> Workspace:
        return cls(default_workspace_dir(override))

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
        path = self.root / "tmp" / uuid.uuid4().hex
        path.mkdir(parents=True)
        return path

    def clean_tmp(self) -> None:
        """Remove staging folders left by a process that died mid-import."""
        tmp = self.root / "tmp"
        cutoff = time.time() - 3600
        for child in tmp.iterdir():
            with contextlib.suppress(OSError):
                if child.stat().st_mtime < cutoff:
                    shutil.rmtree(child, ignore_errors=True)

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

    @staticmethod
    def _model(row: sqlite3.Row, root: Path) -> ModelRecord:
        return ModelRecord(
            id=row["id"],
            name=row["name"],
            format_id=row["format_id"],
            source_path=row["source_path"],
            dir=root / row["dir"],
            xml_name=row["xml_name"],
            checksum=row["checksum"],
            analysis=json.loads(row["analysis"]),
            class_names=json.loads(row["class_names"]),
            optimized_from=row["optimized_from"],
            optimization=_loads(row["optimization"]),
            created_at=row["created_at"],
        )

    def models(self) -> list[ModelRecord]:
        return [self._model(r, self.root) for r in self._all("SELECT * FROM models ORDER BY id")]

    def model(self, model_id: int) -> ModelRecord:
        row = self._one("SELECT * FROM models WHERE id = ?", (model_id,))
        if row is None:
            raise NotFoundError(f"No model with id {model_id}.", "See `segtui list models`.")
        return self._model(row, self.root)

    def find_model_by_checksum(self, checksum: str) -> ModelRecord | None:
        row = self._one("SELECT * FROM models WHERE checksum = ? ORDER BY id LIMIT 1", (checksum,))
        return None if row is None else self._model(row, self.root)

    def add_model(
        self,
        *,
        name: str,
        format_id: str,
        source_path: str,
        staged_dir: Path,
        xml_name: str,
        checksum: str,
        analysis: dict[str, Any],
        class_names: list[str],
        optimized_from: int | None = None,
        optimization: dict[str, Any] | None = None,
    ) -> ModelRecord:
        """Register a model whose files wait in `staged_dir`; moves them into models/<id>."""
        final: Path | None = None
        try:
            with self.transaction() as tx:
                cur = tx.execute(
                    "INSERT INTO models(name, format_id, source_path, dir, xml_name, checksum, "
                    "analysis, class_names, optimized_from, optimization, created_at) "
                    "VALUES (?, ?, ?, '', ?, ?, ?, ?, ?, ?, ?)",
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
                    ),
                )
                model_id = int(cur.lastrowid or 0)
                rel = f"models/{model_id}"
                final = self.root / rel
                if final.exists():  # left by a crash between rename and commit
                    shutil.rmtree(final)
                os.replace(staged_dir, final)
                tx.execute("UPDATE models SET dir = ? WHERE id = ?", (rel, model_id))
        except BaseException:
            if final is not None and final.exists():
                shutil.rmtree(final, ignore_errors=True)
            shutil.rmtree(staged_dir, ignore_errors=True)
            raise
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

    @staticmethod
    def _dataset(row: sqlite3.Row, root: Path) -> DatasetRecord:
        ann = row["annotations"]
        return DatasetRecord(
            id=row["id"],
            name=row["name"],
            kind=row["kind"],
            root=Path(row["root"]),
            annotations=None if ann is None else root / ann,
            analysis=json.loads(row["analysis"]),
            created_at=row["created_at"],
        )

    def datasets(self) -> list[DatasetRecord]:
        return [
            self._dataset(r, self.root) for r in self._all("SELECT * FROM datasets ORDER BY id")
        ]

    def dataset(self, dataset_id: int) -> DatasetRecord:
        row = self._one("SELECT * FROM datasets WHERE id = ?", (dataset_id,))
        if row is None:
            raise NotFoundError(f"No dataset with id {dataset_id}.", "See `segtui list datasets`.")
        return self._dataset(row, self.root)

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
        kind: str,
        root: Path,
        analysis: dict[str, Any],
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
                    (name, kind, str(root), json.dumps(analysis), time.time()),
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
                    final.parent.mkdir(parents=True, exist_ok=True)
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

    @staticmethod
    def _project(row: sqlite3.Row) -> ProjectRecord:
        return ProjectRecord(
            id=row["id"],
            name=row["name"],
            model_id=row["model_id"],
            dataset_id=row["dataset_id"],
            device=row["device"],
            parent_id=row["parent_id"],
            created_at=row["created_at"],
        )

    def projects(self) -> list[ProjectRecord]:
        return [self._project(r) for r in self._all("SELECT * FROM projects ORDER BY id")]

    def project(self, project_id: int) -> ProjectRecord:
        row = self._one("SELECT * FROM projects WHERE id = ?", (project_id,))
        if row is None:
            raise NotFoundError(f"No project with id {project_id}.", "See `segtui list`.")
        return self._project(row)

    def children(self, project_id: int) -> list[ProjectRecord]:
        rows = self._all("SELECT * FROM projects WHERE parent_id = ? ORDER BY id", (project_id,))
        return [self._project(r) for r in rows]

    def add_project(
        self,
        *,
        name: str,
        model_id: int,
        dataset_id: int,
        device: str,
        parent_id: int | None = None,
    ) -> ProjectRecord:
        existing = self._one(
            "SELECT * FROM projects WHERE model_id = ? AND dataset_id = ? AND device = ?",
            (model_id, dataset_id, device),
        )
        if existing is not None:
            return self._project(existing)
        with self.transaction() as tx:
            cur = tx.execute(
                "INSERT INTO projects(name, model_id, dataset_id, device, parent_id, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (name, model_id, dataset_id, device, parent_id, time.time()),
            )
            project_id = int(cur.lastrowid or 0)
        return self.project(project_id)

    # -- jobs --------------------------------------------------------------------

    @staticmethod
    def _job(row: sqlite3.Row) -> JobRecord:
        return JobRecord(
            id=row["id"],
            project_id=row["project_id"],
            kind=row["kind"],
            state=row["state"],
            progress=row["progress"],
            stage=row["stage"],
            eta_s=row["eta_s"],
            pid=row["pid"],
            params=json.loads(row["params"]),
            result=_loads(row["result"]),
            error=row["error"],
            log_path=row["log_path"],
            created_at=row["created_at"],
            started_at=row["started_at"],
            finished_at=row["finished_at"],
        )

    def job(self, job_id: int) -> JobRecord:
        row = self._one("SELECT * FROM jobs WHERE id = ?", (job_id,))
        if row is None:
            raise NotFoundError(f"No job with id {job_id}.")
        return self._job(row)

    def jobs(self, project_id: int | None = None) -> list[JobRecord]:
        if project_id is None:
            rows = self._all("SELECT * FROM jobs ORDER BY id")
        else:
            rows = self._all("SELECT * FROM jobs WHERE project_id = ? ORDER BY id", (project_id,))
        return [self._job(r) for r in rows]

    def add_job(self, *, kind: str, project_id: int | None, params: dict[str, Any]) -> JobRecord:
        with self.transaction() as tx:
            cur = tx.execute(
                "INSERT INTO jobs(project_id, kind, state, params, created_at) "
                "VALUES (?, ?, 'queued', ?, ?)",
                (project_id, kind, json.dumps(params), time.time()),
            )
            job_id = int(cur.lastrowid or 0)
        return self.job(job_id)

    def update_job(self, job_id: int, **fields: Any) -> None:
        allowed = {
            "state",
            "progress",
            "stage",
            "eta_s",
            "pid",
            "result",
            "error",
            "log_path",
            "started_at",
            "finished_at",
            "project_id",
        }
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"unknown job fields {sorted(unknown)}")
        values = [
            json.dumps(v) if k == "result" and v is not None else v for k, v in fields.items()
        ]
        assignments = ", ".join(f"{k} = ?" for k in fields)
        with self.transaction() as tx:
            tx.execute(f"UPDATE jobs SET {assignments} WHERE id = ?", (*values, job_id))

    # -- results -----------------------------------------------------------------

    def add_result(
        self, *, project_id: int, kind: str, data: dict[str, Any], job_id: int | None = None
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
        return self._result(row)

    @staticmethod
    def _result(row: sqlite3.Row) -> ResultRecord:
        return ResultRecord(
            row["id"],
            row["project_id"],
            row["job_id"],
            row["kind"],
            json.loads(row["data"]),
            row["created_at"],
        )

    def results(self, project_id: int, kind: str | None = None) -> list[ResultRecord]:
        if kind is None:
            rows = self._all(
                "SELECT * FROM results WHERE project_id = ? ORDER BY id", (project_id,)
            )
        else:
            rows = self._all(
                "SELECT * FROM results WHERE project_id = ? AND kind = ? ORDER BY id",
                (project_id, kind),
            )
        return [self._result(r) for r in rows]


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
