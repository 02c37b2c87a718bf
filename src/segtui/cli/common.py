"""What the commands share: opening the workspace, naming a project, following a job."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping

from segtui.cli.output import EXIT_ERROR, CliError, Output
from segtui.core import storage
from segtui.core.errors import (
    DiskFullError,
    ReadOnlyWorkspaceError,
    SegtuiError,
    WorkspaceError,
)
from segtui.core.records import JobRecord, ProjectRecord
from segtui.core.types import JobKind, JobState
from segtui.core.workspace import Workspace, default_workspace_dir

Command = Callable[[argparse.Namespace, Output], int]

#: The exit status of a command stopped by ctrl+c (128 + SIGINT, as shells report it).
EXIT_INTERRUPTED = 130
#: The commands that never write to the workspace: they run on a read-only or full one.
READING_COMMANDS = frozenset({"list", "show", "compare"})


def open_workspace(args: argparse.Namespace) -> Workspace:
    """The workspace of --workspace, its dead jobs recovered; a read-only one opens for reading."""
    from segtui.core.jobs import recover_jobs

    try:
        ws = Workspace.open(args.workspace)
    except (ReadOnlyWorkspaceError, DiskFullError) as refused:
        # The commands that only read still work there; the others stop before any work.
        if getattr(args, "command", None) not in READING_COMMANDS:
            raise
        try:
            ws = Workspace.open(args.workspace, read_only=True)
        except WorkspaceError:
            raise refused from None
        sys.stderr.write(f"segtui: warning: {refused.message} Showing the workspace as it is.\n")
        return ws
    recover_jobs(ws)
    return ws


#: A closed output pipe, as a shell reports a process that SIGPIPE ended (128 + 13).
EXIT_BROKEN_PIPE = 141


def run_command(command: Command, args: argparse.Namespace, out: Output) -> int:
    """Run a command: every failure ends in a message and a non-zero exit, never a traceback."""
    root = default_workspace_dir(getattr(args, "workspace", None))
    try:
        code = command(args, out)
        sys.stdout.flush()  # here, where a closed pipe can still be caught
        return code
    except BrokenPipeError:
        # The reader went away (`segtui list --json | head`): nothing to say to it, and
        # Python's own flush at exit must not print a traceback either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        out.fail("Interrupted.", "")
        return EXIT_INTERRUPTED
    except Exception as exc:
        error = storage.user_error(exc, root)
        if error is None:
            log = storage.write_error_log(exc, root)
            where = f"the details are in {log}" if log else "no log could be written"
            error = SegtuiError(
                f"Unexpected error: {type(exc).__name__}: {exc}",
                f"This is a bug in segtui; {where}. Please report it with that file.",
            )
        out.fail(error.message, error.hint)
        return EXIT_ERROR


def resolve_project(ws: Workspace, ref: str) -> ProjectRecord:
    """A project by id or by its (unique) name."""
    if is_id(ref):
        if int(ref) > MAX_ID:  # SQLite's integers stop there; no row can have it
            raise CliError(f"No project with id {ref}.", "See `segtui list`.")
        return ws.project(int(ref))
    matches = [p for p in ws.projects() if p.name == ref]
    if len(matches) == 1:
        return matches[0]
    raise CliError(
        f"No project named {ref!r}." if not matches else f"Several projects are named {ref!r}.",
        "Use the project id (see `segtui list`).",
    )


#: The largest id SQLite can store.
MAX_ID = 2**63 - 1


def is_id(text: str) -> bool:
    # ASCII only: str.isdigit() is also true for '²', which int() refuses.
    return text.isascii() and text.isdigit()


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
