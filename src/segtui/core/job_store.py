"""The workspace's jobs table, and the clean-up of what a killed job left half-registered.

`JobStore` is mixed into `Workspace` (workspace.py holds the connection, the
transactions and the other tables). Its writes that end a job never overwrite
an end already recorded: whoever records first (the job itself, a cancel, a
recovery) is the one the job keeps.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
import time
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from segtui.core.errors import NotFoundError
from segtui.core.records import JobRecord
from segtui.core.types import JobKind, JobState, ResultKind

if TYPE_CHECKING:
    from segtui.core.workspace import _Tx

#: What `update_job` may set (the rest is fixed when the job is added).
JOB_FIELDS = frozenset(
    {"state", "progress", "stage", "eta_s", "pid", "result", "error", "log_path"}
    | {"started_at", "finished_at", "project_id"}
)
ACTIVE_STATES = (JobState.QUEUED, JobState.RUNNING)

# An optimized model that no project uses and no model was optimized from, made while an
# optimize job of its parent's project ran that did not finish: a registration cut short by
# a kill (before registration became one transaction). A model made by hand is never one.
_HALF_REGISTERED_SQL = """
SELECT m.id FROM models m
WHERE m.optimized_from IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM projects p WHERE p.model_id = m.id)
  AND NOT EXISTS (SELECT 1 FROM models c WHERE c.optimized_from = m.id)
  AND EXISTS (
      SELECT 1 FROM jobs j JOIN projects jp ON jp.id = j.project_id
      WHERE j.kind = 'optimize' AND j.state IN ('failed', 'cancelled', 'interrupted')
        AND jp.model_id = m.optimized_from
        AND j.started_at <= m.created_at
        AND m.created_at <= COALESCE(j.finished_at, m.created_at))
ORDER BY m.id
"""


class JobStore:
    """The job rows of a workspace (a mixin of `Workspace`)."""

    root: Path

    if TYPE_CHECKING:

        def _one(self, sql: str, args: tuple[Any, ...] = ()) -> sqlite3.Row | None: ...

        def _all(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]: ...

        def transaction(self) -> contextlib.AbstractContextManager[_Tx]: ...

    def job(self, job_id: int) -> JobRecord:
        row = self._one("SELECT * FROM jobs WHERE id = ?", (job_id,))
        if row is None:
            raise NotFoundError(f"No job with id {job_id}.")
        return JobRecord.from_row(row)

    def jobs(self, project_id: int | None = None) -> list[JobRecord]:
        if project_id is None:
            rows = self._all("SELECT * FROM jobs ORDER BY id")
        else:
            rows = self._all("SELECT * FROM jobs WHERE project_id = ? ORDER BY id", (project_id,))
        return [JobRecord.from_row(r) for r in rows]

    def running_jobs(self) -> list[JobRecord]:
        rows = self._all("SELECT * FROM jobs WHERE state = ? ORDER BY id", (JobState.RUNNING,))
        return [JobRecord.from_row(r) for r in rows]

    def watched_jobs(self, job_ids: Collection[int] = ()) -> list[JobRecord]:
        """The queued and running jobs, and the jobs `job_ids` whatever their state (by id)."""
        ids = sorted(set(job_ids))
        marks = ", ".join("?" * len(ids))
        rows = self._all(
            f"SELECT * FROM jobs WHERE state IN (?, ?) OR id IN ({marks}) ORDER BY id",
            (JobState.QUEUED, JobState.RUNNING, *ids),
        )
        return [JobRecord.from_row(r) for r in rows]

    def latest_job(self, project_id: int) -> JobRecord | None:
        """The project's newest job (None when it has none)."""
        row = self._one(
            "SELECT * FROM jobs WHERE project_id = ? ORDER BY id DESC LIMIT 1", (project_id,)
        )
        return None if row is None else JobRecord.from_row(row)

    def active_job(self, project_id: int, kind: JobKind) -> JobRecord | None:
        """The project's newest queued or running job of `kind`."""
        row = self._one(
            "SELECT * FROM jobs WHERE project_id = ? AND kind = ? AND state IN (?, ?) "
            "ORDER BY id DESC LIMIT 1",
            (project_id, kind, JobState.QUEUED, JobState.RUNNING),
        )
        return None if row is None else JobRecord.from_row(row)

    def add_job(
        self, *, kind: JobKind, project_id: int | None, params: Mapping[str, object]
    ) -> JobRecord:
        with self.transaction() as tx:
            cur = tx.execute(
                "INSERT INTO jobs(project_id, kind, state, params, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (project_id, kind, JobState.QUEUED, json.dumps(params), time.time()),
            )
            job_id = int(cur.lastrowid or 0)
        return self.job(job_id)

    def update_job(self, job_id: int, **fields: object) -> None:
        unknown = set(fields) - JOB_FIELDS
        if unknown:
            raise ValueError(f"unknown job fields {sorted(unknown)}")
        values = [
            json.dumps(v) if k == "result" and v is not None else v for k, v in fields.items()
        ]
        assignments = ", ".join(f"{k} = ?" for k in fields)
        with self.transaction() as tx:
            tx.execute(f"UPDATE jobs SET {assignments} WHERE id = ?", (*values, job_id))

    def claim_next_job(self) -> int | None:
        """Mark the oldest queued job running, unless a job runs already; return its id.

        The check and the claim share one write lock, so that two processes that see
        the queue free at once never start the same job, or two jobs, together.
        """
        with self.transaction() as tx:
            running = (JobState.RUNNING,)
            if tx.execute("SELECT 1 FROM jobs WHERE state = ?", running).fetchone():
                return None
            row = tx.execute(
                "SELECT id FROM jobs WHERE state = ? ORDER BY id LIMIT 1", (JobState.QUEUED,)
            ).fetchone()
            if row is None:
                return None
            job_id = int(row[0])
            tx.execute(
                "UPDATE jobs SET state = ?, started_at = ?, stage = 'Starting' WHERE id = ?",
                (JobState.RUNNING, time.time(), job_id),
            )
        return job_id

    def set_job_pid_if_unset(self, job_id: int, pid: int) -> None:
        """Record the job's process id, unless the job process has already written its own."""
        with self.transaction() as tx:
            tx.execute("UPDATE jobs SET pid = COALESCE(pid, ?) WHERE id = ?", (pid, job_id))

    def mark_job_started(self, job_id: int, pid: int) -> bool:
        """The job process's first write: its pid and start time; False if the job has ended.

        A job cancelled between its claim and its process starting stays cancelled.
        """
        with self.transaction() as tx:
            cur = tx.execute(
                "UPDATE jobs SET pid = ?, state = ?, started_at = ? WHERE id = ? AND state IN (?, ?)",
                (pid, JobState.RUNNING, time.time(), job_id, *ACTIVE_STATES),
            )
            return cur.rowcount > 0

    def finish_job(
        self,
        job_id: int,
        state: JobState,
        *,
        error: str | None = None,
        result: Mapping[str, object] | None = None,
        from_states: Collection[JobState] = ACTIVE_STATES,
        tx: _Tx | None = None,
    ) -> bool:
        """Record how a job ended, unless it is no longer in `from_states`; return whether it was.

        With `tx`, inside the caller's transaction (to commit the end with what the job made).
        """
        fields: dict[str, object] = {"state": state, "finished_at": time.time(), "error": error}
        if state == JobState.DONE:
            fields |= {"progress": 1.0, "stage": "Done", "eta_s": 0.0}
            fields["result"] = None if result is None else json.dumps(result)
        elif state == JobState.CANCELLED:
            fields["stage"] = "Cancelled"
        assignments = ", ".join(f"{k} = ?" for k in fields)
        marks = ", ".join("?" * len(from_states))
        sql = f"UPDATE jobs SET {assignments} WHERE id = ? AND state IN ({marks})"
        args = (*fields.values(), job_id, *from_states)
        if tx is not None:
            return tx.execute(sql, args).rowcount > 0
        with self.transaction() as own:
            return own.execute(sql, args).rowcount > 0

    # -- what a job registers ------------------------------------------------------

    def insert_child_project(
        self, tx: _Tx, *, name: str, model_id: int, dataset_id: int, device: str, parent_id: int
    ) -> int:
        """Add a project made by a job inside the transaction that registers its model."""
        cur = tx.execute(
            "INSERT INTO projects(name, model_id, dataset_id, device, parent_id, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (name, model_id, dataset_id, device, parent_id, time.time()),
        )
        return int(cur.lastrowid or 0)

    def insert_result(
        self,
        tx: _Tx,
        *,
        project_id: int,
        kind: ResultKind,
        data: Mapping[str, object],
        job_id: int | None,
    ) -> int:
        """Add a job's result inside the transaction that records the job's end; its id."""
        cur = tx.execute(
            "INSERT INTO results(project_id, job_id, kind, data, created_at) VALUES (?, ?, ?, ?, ?)",
            (project_id, job_id, kind, json.dumps(data), time.time()),
        )
        return int(cur.lastrowid or 0)

    def delete_results(self, tx: _Tx, result_ids: Collection[int]) -> None:
        """Remove results a job's new one replaces, inside its transaction (their folders
        under reports/ are the caller's to remove once it has committed)."""
        marks = ", ".join("?" * len(result_ids))
        tx.execute(f"DELETE FROM results WHERE id IN ({marks})", tuple(result_ids))

    def remove_half_registered(self) -> list[str]:
        """Remove what a killed registration left; return the folders removed.

        That is an optimized model row that a job did not finish registering, a
        folder models/<id> that no row names (the rename into place happens inside the
        registering transaction: one killed before its commit leaves such a folder),
        and a folder reports/<id> that no report names (written inside the transaction
        that stores the report; an old report's folder goes after its row).
        Checked again under the write lock, where no registration is under way.
        """
        if not (
            self._half_registered_rows() or self._unlisted_model_dirs() or self._unlisted_reports()
        ):
            return []  # the usual case: no write, so a read-only workspace is fine
        with self.transaction() as tx:
            rows = self._half_registered_rows()
            marks = ", ".join("?" * len(rows))
            tx.execute(f"DELETE FROM models WHERE id IN ({marks})", tuple(rows))
            # Read inside the transaction: the folders of the rows just deleted are in it.
            folders = self._unlisted_model_dirs() + self._unlisted_reports()
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)
        return sorted(f.relative_to(self.root).as_posix() for f in folders)

    def _half_registered_rows(self) -> list[int]:
        return [int(r[0]) for r in self._all(_HALF_REGISTERED_SQL)]

    def _unlisted_model_dirs(self) -> list[Path]:
        """Folders models/<number> that no model row names (only such names: nothing else)."""
        return self._unlisted("models", "SELECT id FROM models")

    def _unlisted_reports(self) -> list[Path]:
        """Folders reports/<number> that no report result names."""
        return self._unlisted("reports", "SELECT id FROM results WHERE kind LIKE 'report:%'")

    def _unlisted(self, folder: str, listed_sql: str) -> list[Path]:
        """The folders `folder`/<number> whose number `listed_sql` does not list."""
        try:
            folders = [p for p in (self.root / folder).iterdir() if p.name.isdigit()]
        except OSError:
            return []
        if not folders:
            return []
        listed = {int(r[0]) for r in self._all(listed_sql)}
        return sorted(p for p in folders if p.is_dir() and int(p.name) not in listed)
