"""`segtui import`: a project archive (see `project_export`) into this workspace, whole or not at all.

1. `verify_archive` reads the whole archive and refuses a bad one; nothing is written.
2. `plan_import` decides each row's fate against the workspace (`transfer_plan`); nothing
   is written, so a refusal leaves the database and the files exactly as they were.
3. The members are unpacked into a staging folder of the workspace, then one transaction
   inserts every new row (new ids; the ids inside results renumbered: `transfer_ids`) and
   moves the files into place. On any failure the rows roll back, the files moved are
   removed and so is the staging folder.

It runs in the calling process, not as a job: a refused archive must not leave a job row.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

from segtui.core.archive import VerifiedArchive, extract_archive, verify_archive
from segtui.core.archive_manifest import human_size
from segtui.core.errors import DiskFullError
from segtui.core.progress import CancelToken, ProgressCallback, no_progress
from segtui.core.storage import make_private, private_dir
from segtui.core.transfer_doc import (
    ARCHIVE_KIND,
    EXPORT_DOC,
    ExportedDataset,
    ExportedModel,
    ExportedProject,
    read_document,
)
from segtui.core.transfer_files import check_annotations, check_checksums, check_predictions
from segtui.core.transfer_ids import Table, remap_result
from segtui.core.transfer_plan import (
    ImportPlan,
    PlannedRow,
    ResultStatus,
    RowStatus,
    plan_import,
    replan,
)
from segtui.core.workspace import Workspace

if TYPE_CHECKING:
    from segtui.core.workspace import _Tx


class ImportedRow(TypedDict):
    """A project, model or dataset of the archive and the row that stands for it here."""

    archive_id: int
    id: int
    name: str
    #: "renamed": added under `name`, its own was taken.
    status: RowStatus
    archive_name: str


class ImportedResult(TypedDict):
    archive_id: int
    #: The new row ("added"), or the workspace's own ("identical", "kept-existing").
    id: int | None
    project_id: int
    kind: str
    status: ResultStatus


class ImportOutcome(TypedDict):
    """What `segtui import` did (and prints with --json)."""

    archive: str
    #: The project `segtui export` was asked for, as it is here.
    project_id: int
    projects: list[ImportedRow]
    models: list[ImportedRow]
    datasets: list[ImportedRow]
    results: list[ImportedResult]


#: The name of an import's staging folder under tmp/ begins so.
_STAGING_PREFIX = "import-"


@dataclass
class _Landing:
    """The ids given so far and the folders moved into the workspace (removed on failure)."""

    ids: dict[Table, dict[int, int]] = field(default_factory=lambda: {"project": {}, "model": {}})
    datasets: dict[int, int] = field(default_factory=dict)
    results: dict[int, int] = field(default_factory=dict)
    moved: list[Path] = field(default_factory=list)


@contextlib.contextmanager
def _staging(ws: Workspace) -> Iterator[Path]:
    """A new staging folder under tmp/, locked while the import runs, removed after it.

    A killed import leaves its folder behind (the archive unpacked: up to its size): the
    next import removes those whose lock no process holds. The folder is locked before
    it takes its `import-` name, so an unlocked one is always a dead import's.
    """
    tmp = private_dir(ws.root / "tmp")
    _remove_abandoned(tmp)
    name = uuid.uuid4().hex
    starting = private_dir(tmp / f".starting-{name}")
    fd = os.open(starting, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    folder = tmp / f"{_STAGING_PREFIX}{name}"
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.rename(starting, folder)  # the lock stays with the folder
        yield folder
    finally:
        shutil.rmtree(starting, ignore_errors=True)
        shutil.rmtree(folder, ignore_errors=True)
        os.close(fd)


def _remove_abandoned(tmp: Path) -> None:
    """Remove the staging folders of imports that died (their lock is free)."""
    try:
        children = [c for c in tmp.iterdir() if c.name.startswith(_STAGING_PREFIX)]
    except OSError:
        return
    for child in children:
        with contextlib.suppress(OSError):  # BlockingIOError: its import is running
            fd = os.open(child, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                shutil.rmtree(child)
            finally:
                os.close(fd)


def _move_in(landing: _Landing, source: Path, target: Path) -> None:
    """Move a staged folder to `target` (a folder that names no row: left by a crash)."""
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target)
    elif os.path.lexists(target):
        target.unlink()
    private_dir(target.parent)
    os.replace(source, target)
    landing.moved.append(target)
    make_private(target)


def _insert_model(
    tx: _Tx, ws: Workspace, unpacked: Path, model: ExportedModel, row: PlannedRow, landing: _Landing
) -> None:
    parent = model["optimized_from"]
    cur = tx.execute(
        "INSERT INTO models(name, format_id, source_path, dir, xml_name, checksum, analysis, "
        "class_names, optimized_from, optimization, created_at, accuracy_settings) "
        "VALUES (?, ?, ?, '', ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            row.name,
            model["format_id"],
            model["source_path"],
            model["xml_name"],
            model["checksum"],
            json.dumps(model["analysis"]),
            json.dumps(model["class_names"]),
            None if parent is None else landing.ids["model"][parent],
            None if model["optimization"] is None else json.dumps(model["optimization"]),
            model["created_at"],
            json.dumps(model.get("accuracy_settings", {})),
        ),
    )
    model_id = int(cur.lastrowid or 0)
    rel = f"models/{model_id}"
    _move_in(landing, unpacked / "models" / str(model["id"]), ws.root / rel)
    tx.execute("UPDATE models SET dir = ? WHERE id = ?", (rel, model_id))
    landing.ids["model"][model["id"]] = model_id


def _insert_dataset(
    tx: _Tx,
    ws: Workspace,
    unpacked: Path,
    dataset: ExportedDataset,
    row: PlannedRow,
    landing: _Landing,
) -> None:
    cur = tx.execute(
        "INSERT INTO datasets(name, kind, root, annotations, analysis, created_at) "
        "VALUES (?, ?, '', NULL, ?, ?)",
        (row.name, dataset["kind"], json.dumps(dataset["analysis"]), dataset["created_at"]),
    )
    dataset_id = int(cur.lastrowid or 0)
    folder = ws.root / "datasets" / str(dataset_id)
    staged = unpacked / "datasets" / str(dataset["id"])
    if staged.is_dir():  # its annotations, and its images when they came along
        _move_in(landing, staged, folder)
    root = folder / "images" if row.root is None else row.root
    annotations = f"datasets/{dataset_id}/annotations.json" if dataset["annotations"] else None
    tx.execute(
        "UPDATE datasets SET root = ?, annotations = ? WHERE id = ?",
        (str(root), annotations, dataset_id),
    )
    tx.executemany(
        "INSERT INTO dataset_images(dataset_id, idx, path, width, height, coco_id) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [
            (dataset_id, n, i["path"], i["width"], i["height"], i["coco_id"])
            for n, i in enumerate(dataset["images"])
        ],
    )
    landing.datasets[dataset["id"]] = dataset_id


def _insert_project(tx: _Tx, project: ExportedProject, row: PlannedRow, landing: _Landing) -> None:
    parent = project["parent"]
    cur = tx.execute(
        "INSERT INTO projects(name, model_id, dataset_id, device, parent_id, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (
            row.name,
            landing.ids["model"][project["model"]],
            landing.datasets[project["dataset"]],
            project["device"],
            None if parent is None else landing.ids["project"][parent],
            project["created_at"],
        ),
    )
    landing.ids["project"][project["id"]] = int(cur.lastrowid or 0)


def _insert_rows(
    tx: _Tx, ws: Workspace, plan: ImportPlan, unpacked: Path, landing: _Landing
) -> None:
    """Every new row of the plan, parents first, with its files moved into place."""
    doc = plan.document
    models = {m["id"]: m for m in doc["models"]}
    for key, row in plan.models.items():
        if row.existing_id is not None:
            landing.ids["model"][key] = row.existing_id
        else:
            _insert_model(tx, ws, unpacked, models[key], row, landing)
    datasets = {d["id"]: d for d in doc["datasets"]}
    for key, row in plan.datasets.items():
        if row.existing_id is not None:
            landing.datasets[key] = row.existing_id
        else:
            _insert_dataset(tx, ws, unpacked, datasets[key], row, landing)
    projects = {p["id"]: p for p in doc["projects"]}
    for key, row in plan.projects.items():
        if row.existing_id is not None:
            landing.ids["project"][key] = row.existing_id
        else:
            _insert_project(tx, projects[key], row, landing)
    results = {r["id"]: r for r in doc["results"]}
    for planned in plan.results:
        if planned.status != "added":
            continue
        result = results[planned.archive_id]
        data = remap_result(result["id"], result["kind"], result["data"], landing.ids)
        cur = tx.execute(
            "INSERT INTO results(project_id, job_id, kind, data, created_at) "
            "VALUES (?, NULL, ?, ?, ?)",
            (
                landing.ids["project"][result["project"]],
                result["kind"],
                json.dumps(data),
                result["created_at"],
            ),
        )
        result_id = int(cur.lastrowid or 0)
        landing.results[result["id"]] = result_id
        staged = unpacked / "reports" / str(result["id"])
        if result["files"] and staged.is_dir():
            _move_in(landing, staged, ws.root / "reports" / str(result_id))
    existing = {p.archive_id: p.existing_id for p in plan.results if p.existing_id is not None}
    for key, row in plan.models.items():
        if row.existing_id is None:
            _relink_analysis(tx, models[key], landing, {**existing, **landing.results})


def _relink_analysis(
    tx: _Tx, model: ExportedModel, landing: _Landing, results: Mapping[int, int]
) -> None:
    """A re-optimized child's link to the sensitivity analysis it came from, renumbered.

    The analysis and its project get new ids here; one the archive does not hold (exported
    without the analysed child) is dropped from the link rather than left naming an
    unrelated row: the layers it kept in float stay recorded.
    """
    optimization = model["optimization"]
    if optimization is None or "keep_float_from" not in optimization:
        return
    link = optimization["keep_float_from"]
    old_result, old_project = link["result_id"], link["project_id"]
    relinked = {
        **link,
        "result_id": None if old_result is None else results.get(old_result),
        "project_id": None if old_project is None else landing.ids["project"].get(old_project),
    }
    tx.execute(
        "UPDATE models SET optimization = ? WHERE id = ?",
        (
            json.dumps({**optimization, "keep_float_from": relinked}),
            landing.ids["model"][model["id"]],
        ),
    )


def _rows(planned: dict[int, PlannedRow], ids: dict[int, int]) -> list[ImportedRow]:
    return [
        {
            "archive_id": key,
            "id": ids[key],
            "name": row.name,
            "status": row.status,
            "archive_name": row.archive_name,
        }
        for key, row in planned.items()
    ]


def _outcome(path: Path, plan: ImportPlan, landing: _Landing) -> ImportOutcome:
    projects = landing.ids["project"]
    return {
        "archive": str(path),
        "project_id": projects[plan.document["project"]],
        "projects": _rows(plan.projects, projects),
        "models": _rows(plan.models, landing.ids["model"]),
        "datasets": _rows(plan.datasets, landing.datasets),
        "results": [
            {
                "archive_id": r.archive_id,
                "id": landing.results.get(r.archive_id, r.existing_id),
                "project_id": projects[r.project],
                "kind": r.kind,
                "status": r.status,
            }
            for r in plan.results
        ],
    }


def _unpack(
    ws: Workspace,
    verified: VerifiedArchive,
    unpacked: Path,
    progress: ProgressCallback,
    cancel: CancelToken | None,
) -> None:
    """Extract the archive into the staging folder; a full disk is said of the workspace
    (the staging folder it would name is gone by the time the user reads it)."""
    try:
        extract_archive(verified, unpacked, progress=progress, cancel=cancel)
    except DiskFullError as exc:
        needed = human_size(sum(m["size"] for m in verified.manifest["members"]))
        free = human_size(shutil.disk_usage(ws.root).free)
        raise DiskFullError(
            f"The disk of workspace {ws.root} has too little free space to unpack the archive "
            f"({needed} of files; {free} free now). Nothing was imported.",
            "Free some space on that disk, or import into a workspace on another disk.",
        ) from exc


def apply_import(
    ws: Workspace,
    plan: ImportPlan,
    verified: VerifiedArchive,
    *,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> ImportOutcome:
    """Carry out `plan`: the archive's new rows and files land together, or nothing does."""
    landing = _Landing()
    with _staging(ws) as staging:
        plan = _land(ws, plan, verified, staging / "archive", landing, progress, cancel)
    progress(1.0, "Done")
    return _outcome(verified.path, plan, landing)


def _land(
    ws: Workspace,
    plan: ImportPlan,
    verified: VerifiedArchive,
    unpacked: Path,
    landing: _Landing,
    progress: ProgressCallback,
    cancel: CancelToken | None,
) -> ImportPlan:
    """Unpack, check the files, then register the rows (the plan made again): the plan
    carried out; on failure the folders moved in are removed."""
    try:
        # Always: a model reused by its checksum is reused only if its files have it.
        _unpack(ws, verified, unpacked, progress, cancel)
        check_checksums(plan.document, unpacked)
        check_annotations(plan.document, unpacked)
        check_predictions(plan.document, unpacked)
        if cancel is not None:
            cancel.raise_if_cancelled()
        progress(0.99, "Registering the projects")
        with ws.transaction() as tx:
            # Planned again under the write lock: a second import of the same archive that
            # ran alongside has added its rows by now, and they are reused, not duplicated.
            plan = replan(ws, plan)
            _insert_rows(tx, ws, plan, unpacked, landing)
    except BaseException:
        for folder in reversed(landing.moved):
            shutil.rmtree(folder, ignore_errors=True)
        raise
    return plan


def import_archive(
    ws: Workspace,
    path: Path,
    *,
    dataset_root: Path | None = None,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> ImportOutcome:
    """Verify, plan and import the archive at `path` (see the module docstring)."""
    verified = verify_archive(
        Path(path),
        kind=ARCHIVE_KIND,
        keep=(EXPORT_DOC,),
        progress=lambda f, s: progress(0.5 * f, s),
        cancel=cancel,
    )
    sha256s = {m["path"]: m["sha256"] for m in verified.manifest["members"]}
    document = read_document(verified.kept.get(EXPORT_DOC), sha256s)
    plan = plan_import(ws, document, sha256s, dataset_root=dataset_root)
    return apply_import(
        ws, plan, verified, progress=lambda f, s: progress(0.5 + 0.5 * f, s), cancel=cancel
    )


__all__ = [
    "ImportOutcome",
    "ImportedResult",
    "ImportedRow",
    "apply_import",
    "import_archive",
]
