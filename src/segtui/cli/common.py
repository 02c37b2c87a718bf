"""What the commands share: opening the workspace, naming a project, following a job."""

from __future__ import annotations

import argparse
from collections.abc import Mapping

from segtui.cli.output import CliError, Output
from segtui.core.errors import SegtuiError
from segtui.core.records import JobRecord, ProjectRecord
from segtui.core.types import JobKind, JobState
from segtui.core.workspace import Workspace


def open_workspace(args: argparse.Namespace) -> Workspace:
    from segtui.core.jobs import recover_jobs

    ws = Workspace.open(args.workspace)
    recover_jobs(ws)
    return ws


def resolve_project(ws: Workspace, ref: str) -> ProjectRecord:
    """A project by id or by its (unique) name."""
    if ref.isdigit():
        return ws.project(int(ref))
    matches = [p for p in ws.projects() if p.name == ref]
    if len(matches) == 1:
        return matches[0]
    raise CliError(
        f"No project named {ref!r}." if not matches else f"Several projects are named {ref!r}.",
        "Use the project id (see `segtui list`).",
    )


def numeric_id(text: str) -> int:
    if not text.isdigit():
        raise CliError(
            f"Expected a numeric id, got {text!r}.", "See `segtui list models|datasets`."
        )
    return int(text)


def run_job(
    ws: Workspace, kind: JobKind, project_id: int, params: Mapping[str, object], out: Output
) -> JobRecord:
    """Submit a job, follow its progress on the terminal, and return its final record."""
    from segtui.core import jobs

    job = jobs.submit(ws, kind, project_id, params)
    if job.state == JobState.QUEUED:  # submit read it back after trying to start it
        out.note(f"Job {job.id} queued behind a running job; waiting.")
    try:
        final = jobs.wait(ws, job.id, lambda j: out.progress(j.progress, j.stage))
    except KeyboardInterrupt:
        jobs.cancel(ws, job.id)
        raise
    finally:
        out.close()
    if final.state != JobState.DONE:
        log = f" Log: {final.log_path}" if final.log_path else ""
        raise SegtuiError(
            f"Job {final.id} ({kind}) {final.state}: {final.error or ''}".strip(), log.strip()
        )
    return final
