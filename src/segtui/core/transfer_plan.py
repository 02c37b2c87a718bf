"""What an import will do, decided against the workspace before anything is written.

For each row of the archive's document (see `transfer_doc`): reuse the workspace's own
(a model with the same checksum, classes and parent model; a dataset with the same images
and annotations; a project with the same model, dataset and device; a result with the
same data), or add it, renamed "name (2)" when its name is taken. A dataset whose images
stayed behind is re-linked to its folder, or the plan is refused, saying what is missing.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from segtui.core.checksums import file_checksum
from segtui.core.errors import SegtuiError
from segtui.core.image_header import HeaderError, header_size
from segtui.core.records import JsonObject
from segtui.core.transfer_doc import (
    ExportDocument,
    ExportedDataset,
    ExportedModel,
    ExportedProject,
    ExportedResult,
    annotations_member,
)
from segtui.core.transfer_ids import Table, remap_result
from segtui.core.types import ResultKind
from segtui.core.workspace import DatasetRecord, Workspace

#: What becomes of a row: added as it is, added under a new name, or the workspace's own used.
RowStatus = Literal["added", "renamed", "reused"]
#: What becomes of a result: added, or left out (the same is there, or the project keeps
#: the report of that type it has: one per type, as a new report replaces the older).
ResultStatus = Literal["added", "identical", "kept-existing"]
#: The pixel limit of a header read while re-linking (core.datasets' own).
_MAX_PIXELS = 100_000_000


@dataclass(frozen=True)
class PlannedRow:
    """A project, model or dataset of the archive and what the import does with it."""

    archive_id: int
    archive_name: str
    name: str
    status: RowStatus
    #: The workspace's row, when reused.
    existing_id: int | None = None
    #: A dataset re-linked to its images there (None: they come from the archive).
    root: Path | None = None


@dataclass(frozen=True)
class PlannedResult:
    archive_id: int
    project: int  # its project's archive id
    kind: str
    status: ResultStatus
    #: The workspace's equal result (identical) or report of the type (kept-existing).
    existing_id: int | None = None


@dataclass(frozen=True)
class ImportPlan:
    document: ExportDocument
    #: Parents before children, in each list; keyed by archive id.
    models: dict[int, PlannedRow]
    datasets: dict[int, PlannedRow]
    projects: dict[int, PlannedRow]
    results: list[PlannedResult]
    #: What it was planned with (`replan` plans again with them).
    sha256s: Mapping[str, str]
    dataset_root: Path | None


def _free_name(name: str, taken: set[str]) -> str:
    """`name`, or "name (2)", "name (3)"... the first not in `taken` (which it joins)."""
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        candidate = f"{name} ({n})"
    taken.add(candidate)
    return candidate


def _new_row(archive_id: int, name: str, taken: set[str], root: Path | None = None) -> PlannedRow:
    given = _free_name(name, taken)
    status: RowStatus = "added" if given == name else "renamed"
    return PlannedRow(archive_id, name, given, status, root=root)


def _parents_first(rows: list[Mapping[str, object]], link: str) -> list[int]:
    """The ids of `rows`, each after the row its `link` names (the document is acyclic)."""
    by_id = {int(str(r["id"])): r for r in rows}
    ordered: list[int] = []

    def visit(row_id: int) -> None:
        if row_id in ordered:
            return
        parent = by_id[row_id][link]
        if isinstance(parent, int) and parent in by_id:
            visit(parent)
        ordered.append(row_id)

    for row_id in by_id:
        visit(row_id)
    return ordered


def _plan_models(ws: Workspace, models: list[ExportedModel]) -> dict[int, PlannedRow]:
    """Reuse a model with the same checksum, classes, accuracy settings and parent model;
    else add it."""
    existing = ws.models()
    taken = {m.name for m in existing}
    by_id = {m["id"]: m for m in models}
    planned: dict[int, PlannedRow] = {}
    for key in _parents_first(list(models), "optimized_from"):
        model = by_id[key]
        parent = model["optimized_from"]
        parent_here = None if parent is None else planned[parent].existing_id
        same = next(
            (
                m
                for m in existing
                if m.checksum == model["checksum"]
                and m.class_names == model["class_names"]
                and m.accuracy_settings == model.get("accuracy_settings", {})
                and m.optimized_from == parent_here
                and (parent is None or parent_here is not None)
            ),
            None,
        )
        if same is not None:
            planned[key] = PlannedRow(key, model["name"], same.name, "reused", same.id)
        else:
            planned[key] = _new_row(key, model["name"], taken)
    return planned


def _sha256(path: Path) -> str | None:
    try:
        return file_checksum(path)
    except OSError:
        return None


def _same_dataset(
    ws: Workspace, record: DatasetRecord, dataset: ExportedDataset, annotations: str | None
) -> bool:
    """Whether the workspace's dataset has the archive's images and annotations."""
    if record.kind != dataset["kind"] or record.image_count != len(dataset["images"]):
        return False
    mine = [
        {"path": i.path, "width": i.width, "height": i.height, "coco_id": i.coco_id}
        for i in ws.dataset_images(record.id)
    ]
    if mine != dataset["images"]:
        return False
    if record.annotations is None or annotations is None:
        return record.annotations is None and annotations is None
    return _sha256(record.annotations) == annotations


def image_problem(root: Path, dataset: ExportedDataset) -> str | None:
    """Why `root` does not hold the dataset's images (name, regular file, header size), or None."""
    for image in dataset["images"]:
        path = root / image["path"]
        try:
            # Looked at before it is opened: opening a device can act (a watchdog arms, a
            # tape rewinds), and the archive names the folder and the files.
            if not stat.S_ISREG(os.stat(path).st_mode):
                return f"{image['path']} is not a regular file"
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
        except OSError:
            return f"{image['path']} is missing"
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                return f"{image['path']} is not a regular file"
            try:
                size = header_size(handle, _MAX_PIXELS)
            except (HeaderError, OSError):
                return f"{image['path']} is not a readable image"
        wanted = (image["width"], image["height"])
        if size not in (wanted, wanted[::-1]):  # EXIF may turn the decoded image
            return (
                f"{image['path']} is {size[0]}×{size[1]} pixels, "
                f"not {wanted[0]}×{wanted[1]} as exported"
            )
    return None


def _relinked_root(dataset: ExportedDataset, dataset_root: Path | None) -> Path:
    """The folder that holds the dataset's images: where it was, else `dataset_root`."""
    problems: list[str] = []
    for where in (Path(dataset["root"]), dataset_root):
        if where is None:
            continue
        if not where.is_dir():
            problems.append(f"{where} {'is not a folder' if where.exists() else 'does not exist'}")
            continue
        problem = image_problem(where, dataset)
        if problem is None:
            return Path(os.path.realpath(where))
        problems.append(f"in {where}, {problem}")
    first = dataset["images"][0]["path"]
    raise SegtuiError(
        f"Dataset {dataset['name']!r} was exported without its images, and they cannot be "
        f"found: {'; '.join(problems)}.",
        f"Pass --dataset-root DIR, the folder that holds its {len(dataset['images'])} images "
        f"(e.g. {first}), or export again with --with-dataset.",
    )


def _plan_datasets(
    ws: Workspace,
    datasets: list[ExportedDataset],
    sha256s: Mapping[str, str],
    dataset_root: Path | None,
    roots: Mapping[int, Path],
) -> dict[int, PlannedRow]:
    """Reuse a dataset with the same images and annotations; else add it, re-linked to its
    images (`roots`: where they were found already) unless the archive holds them."""
    existing = ws.datasets()
    taken = {d.name for d in existing}
    planned: dict[int, PlannedRow] = {}
    for dataset in datasets:
        key = dataset["id"]
        annotations = sha256s.get(annotations_member(key)) if dataset["annotations"] else None
        same = next((d for d in existing if _same_dataset(ws, d, dataset, annotations)), None)
        if same is not None:
            planned[key] = PlannedRow(key, dataset["name"], same.name, "reused", same.id)
            continue
        root = None
        if not dataset["with_images"]:
            root = roots.get(key) or _relinked_root(dataset, dataset_root)
        planned[key] = _new_row(key, dataset["name"], taken, root)
    return planned


def _plan_projects(
    ws: Workspace,
    projects: list[ExportedProject],
    models: Mapping[int, PlannedRow],
    datasets: Mapping[int, PlannedRow],
) -> dict[int, PlannedRow]:
    """Reuse the project of the same (model, dataset, device) when both are reused."""
    existing = ws.projects()
    taken = {p.name for p in existing}
    by_id = {p["id"]: p for p in projects}
    planned: dict[int, PlannedRow] = {}
    for key in _parents_first(list(projects), "parent"):
        project = by_id[key]
        model, dataset = models[project["model"]], datasets[project["dataset"]]
        same = next(
            (
                p
                for p in existing
                if p.model_id == model.existing_id
                and p.dataset_id == dataset.existing_id
                and p.device == project["device"]
            ),
            None,
        )
        if same is not None:
            planned[key] = PlannedRow(key, project["name"], same.name, "reused", same.id)
        else:
            planned[key] = _new_row(key, project["name"], taken)
    return planned


def ids_so_far(rows: Mapping[Table, Mapping[int, PlannedRow]]) -> dict[Table, dict[int, int]]:
    """Archive id -> the workspace's id of each reused row; a new row gets a negative stand-in
    (no row has it: a result naming one equals no stored result)."""
    return {
        table: {
            key: row.existing_id if row.existing_id is not None else -1 - key
            for key, row in planned.items()
        }
        for table, planned in rows.items()
    }


def _plan_results(
    ws: Workspace, results: Iterable[ExportedResult], ids: Mapping[Table, Mapping[int, int]]
) -> list[PlannedResult]:
    planned: list[PlannedResult] = []
    for result in results:
        data: JsonObject = remap_result(result["id"], result["kind"], result["data"], ids)
        project_here = ids["project"][result["project"]]
        status: ResultStatus = "added"
        existing_id = None
        if project_here > 0:  # a reused project: what it holds already is not added again
            stored = ws.results(project_here, result["kind"])
            same = next((r for r in stored if r.data == data), None)
            report = result["kind"] in (ResultKind.REPORT_PARENT, ResultKind.REPORT_ANNOTATIONS)
            if same is not None:
                status, existing_id = "identical", same.id
            elif report and stored:
                status, existing_id = "kept-existing", stored[-1].id
        planned.append(
            PlannedResult(result["id"], result["project"], result["kind"], status, existing_id)
        )
    return planned


def plan_import(
    ws: Workspace,
    document: ExportDocument,
    sha256s: Mapping[str, str],
    *,
    dataset_root: Path | None = None,
) -> ImportPlan:
    """What importing `document` does here (nothing is written); `sha256s` by member path."""
    if dataset_root is not None and not dataset_root.is_dir():
        raise SegtuiError(
            f"--dataset-root {dataset_root} is not a folder.",
            "Give the folder that holds the dataset's images.",
        )
    return _plan(ws, document, sha256s, dataset_root, {})


def replan(ws: Workspace, plan: ImportPlan) -> ImportPlan:
    """`plan` decided again against the workspace as it is now, its re-linked images not
    read again. Called inside the import's write transaction: another import (or a job)
    may have added the same rows or taken the same names since `plan` was made."""
    roots = {key: row.root for key, row in plan.datasets.items() if row.root is not None}
    return _plan(ws, plan.document, plan.sha256s, plan.dataset_root, roots)


def _plan(
    ws: Workspace,
    document: ExportDocument,
    sha256s: Mapping[str, str],
    dataset_root: Path | None,
    roots: Mapping[int, Path],
) -> ImportPlan:
    models = _plan_models(ws, document["models"])
    datasets = _plan_datasets(ws, document["datasets"], sha256s, dataset_root, roots)
    projects = _plan_projects(ws, document["projects"], models, datasets)
    ids = ids_so_far({"model": models, "project": projects})
    results = _plan_results(ws, document["results"], ids)
    return ImportPlan(document, models, datasets, projects, results, sha256s, dataset_root)


__all__ = [
    "ImportPlan",
    "PlannedResult",
    "PlannedRow",
    "ResultStatus",
    "RowStatus",
    "ids_so_far",
    "image_problem",
    "plan_import",
    "replan",
]
