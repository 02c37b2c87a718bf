"""`segtui export` and `segtui import`: projects moved between workspaces in one .tar.gz."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from segtui.cli.common import open_workspace, resolve_project, run_job
from segtui.cli.output import EXIT_OK, CliError, Output
from segtui.core.types import JobKind

if TYPE_CHECKING:
    from segtui.core.project_import import ImportedRow, ImportOutcome

EXPORT_HELP = (
    "Write a project to one .tar.gz that `segtui import` reads on another machine: its "
    "models' files, the projects with their parent/child links, the results (benchmarks, "
    "sweeps, evaluations, reports with their rows and predictions) and the optimization "
    "settings; jobs are not exported. The parent of an exported project always comes along "
    "(an optimized project is useless without it). The dataset's annotations come along; "
    "its images only with --with-dataset, else the import re-links them where they are."
)


def _out_path(text: str | None) -> Path | None:
    if text is None:
        return None
    if not text.strip():
        raise CliError("--out needs a file name.", "Give the path of the .tar.gz to write.")
    return Path(text).expanduser().absolute()


def cmd_export(args: argparse.Namespace, out: Output) -> int:
    from segtui.core.preflight import check_job
    from segtui.core.project_export import ExportRequest, ExportResult, default_export_path

    target = _out_path(args.out)
    with open_workspace(args) as ws:
        project = resolve_project(ws, args.project)
        request = ExportRequest(
            project.id,
            target if target is not None else default_export_path(ws, project.id),
            with_children=args.with_children,
            with_dataset=args.with_dataset,
            force=args.force,
        )
        params = dict(request.params())
        check_job(ws, JobKind.EXPORT, project.id, params)  # refused before any job row
        out.note(f"Writing {request.out}")
        final = run_job(ws, JobKind.EXPORT, project.id, params, out)
        result = cast("ExportResult", final.result)
        out.result(
            {**result, "job_id": final.id},
            f"Exported project {project.id} (projects "
            f"{', '.join(f'#{i}' for i in result['projects'])}) to {result['path']} "
            f"({result['size_bytes'] / 1e6:.1f} MB, {result['members']} files). "
            "Read it with `segtui import FILE`.",
        )
    return EXIT_OK


def _rows_text(what: str, rows: list[ImportedRow]) -> list[str]:
    lines = []
    for row in rows:
        if row["status"] == "reused":
            how = f"reused {what} {row['id']} ({row['name']})"
        elif row["status"] == "renamed":
            how = f"added as {what} {row['id']}, renamed {row['name']!r} (its name was taken)"
        else:
            how = f"added as {what} {row['id']}"
        lines.append(f"  {what} {row['archive_id']} {row['archive_name']!r}: {how}")
    return lines


def import_text(outcome: ImportOutcome) -> str:
    """What an import did, a line per row of the archive and a count of the results."""
    lines = [f"Imported {outcome['archive']}: project {outcome['project_id']}"]
    for what, rows in (
        ("project", outcome["projects"]),
        ("model", outcome["models"]),
        ("dataset", outcome["datasets"]),
    ):
        lines += _rows_text(what, rows)
    results = outcome["results"]
    added = sum(r["status"] == "added" for r in results)
    same = sum(r["status"] == "identical" for r in results)
    kept = sum(r["status"] == "kept-existing" for r in results)
    text = f"  results: {added} added, {same} already here"
    if kept:
        text += f", {kept} report(s) left out (the project keeps the report it has)"
    return "\n".join([*lines, text])


def cmd_import(args: argparse.Namespace, out: Output) -> int:
    from segtui.core.project_import import import_archive

    if not args.file.strip():
        raise CliError("The archive path is empty.", "Give the .tar.gz that `segtui export` wrote.")
    root = Path(args.dataset_root).expanduser() if args.dataset_root else None
    with open_workspace(args) as ws:
        outcome = import_archive(
            ws, Path(args.file).expanduser(), dataset_root=root, progress=out.progress
        )
        out.result(outcome, import_text(outcome))
    return EXIT_OK


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "export",
        parents=[common],
        help="write a project (models, results, reports) to one .tar.gz (a job)",
        description=EXPORT_HELP,
    )
    p.add_argument("project", help="project id or name")
    p.add_argument(
        "--with-children",
        action="store_true",
        help="also every project optimized from it, and theirs (its parents always come along)",
    )
    p.add_argument(
        "--with-dataset",
        action="store_true",
        help="also the dataset's images (else they are re-linked where they are on import)",
    )
    p.add_argument(
        "--out", help="the .tar.gz to write (default: WORKSPACE/exports/segtui-export-NAME.tar.gz)"
    )
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser(
        "import",
        parents=[common],
        help="read a `segtui export` archive into this workspace",
        description="New ids, links kept; a model, dataset, project or result already here is "
        "reused, a taken name gets ' (2)'. A bad archive is refused before anything is written.",
    )
    p.add_argument("file", help="the .tar.gz that `segtui export` wrote")
    p.add_argument(
        "--dataset-root",
        metavar="DIR",
        help="where the dataset's images are, when the archive holds none and they are not "
        "where they were exported from",
    )
    p.set_defaults(func=cmd_import)
