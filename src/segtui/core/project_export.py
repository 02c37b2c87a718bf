"""`segtui export`: a project, its parents (and children), their models and results in one file.

The archive (`core.archive`, kind "segtui-project") holds `export.json` (see
`transfer_doc`), each model's folder, each report's prediction files, the datasets'
annotations and, with `--with-dataset`, their images. Jobs are not exported. It is
written by an "export" job; `segtui import` (core.project_import) reads it anywhere.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

from segtui import __version__
from segtui.core.archive import ARCHIVE_FORMAT, write_archive
from segtui.core.errors import SegtuiError
from segtui.core.progress import CancelToken, ProgressCallback, no_progress
from segtui.core.safe_files import check_output_path, write_error
from segtui.core.storage import private_dir
from segtui.core.transfer_doc import (
    ARCHIVE_KIND,
    EXPORT_DOC,
    ExportDocument,
    ExportedDataset,
    ExportedModel,
    ExportedProject,
    ExportedResult,
    annotations_member,
    document_bytes,
    image_member,
    model_member,
    report_member,
)
from segtui.core.transfer_ids import Table, remap_result
from segtui.core.workspace import (
    DatasetRecord,
    ModelRecord,
    ProjectRecord,
    Workspace,
    atomic_write_bytes,
)

#: Where archives go unless told otherwise: the workspace's exports/ folder.
EXPORT_DIR = "exports"


class ExportParams(TypedDict):
    """The params of an "export" job (JSON)."""

    out: str
    with_children: bool
    with_dataset: bool
    force: bool


class ExportResult(TypedDict):
    """An export job's result: the archive, its size, its member count and the project ids."""

    path: str
    size_bytes: int
    members: int
    projects: list[int]


@dataclass(frozen=True)
class ExportRequest:
    """What to export where; `out` is absolute (the job runs in another folder)."""

    project_id: int
    out: Path
    with_children: bool = False
    with_dataset: bool = False
    force: bool = False

    def params(self) -> ExportParams:
        return {
            "out": str(self.out),
            "with_children": self.with_children,
            "with_dataset": self.with_dataset,
            "force": self.force,
        }

    @classmethod
    def from_params(cls, project_id: int, params: Mapping[str, object]) -> ExportRequest:
        """From a job's params; a value of the wrong type is refused, naming it."""
        out = params.get("out")
        if not isinstance(out, str) or not out.strip() or not Path(out).is_absolute():
            raise SegtuiError(
                f"An export needs the absolute path of the archive to write, not {out!r}.",
                "Give the path of a .tar.gz file.",
            )
        switches: dict[str, bool] = {}
        for name in ("with_children", "with_dataset", "force"):
            value = params.get(name, False)
            if not isinstance(value, bool):
                raise SegtuiError(f"Export setting {name!r} must be true or false, not {value!r}.")
            switches[name] = value
        return cls(project_id, Path(out), **switches)


def _slug(text: str) -> str:
    kept = "".join(c if c.isascii() and c.isalnum() else "-" for c in text.lower())
    return "-".join(part for part in kept.split("-") if part) or "project"


def default_export_dir(ws: Workspace) -> Path:
    return ws.root / EXPORT_DIR


def default_export_path(ws: Workspace, project_id: int) -> Path:
    """<workspace>/exports/segtui-export-NAME.tar.gz."""
    name = ws.project(project_id).name
    return default_export_dir(ws) / f"segtui-export-{_slug(name)}.tar.gz"


def _check_out(ws: Workspace, request: ExportRequest) -> None:
    """Refuse a target that is a folder, a link or in a missing folder, or one that exists
    without `force`; the workspace's exports/ folder is made when the archive goes there."""
    out = request.out
    folder = default_export_dir(ws)
    if out.parent == folder and not folder.is_dir() and not os.path.lexists(folder):
        try:
            private_dir(folder)
        except OSError as exc:
            raise write_error(folder, exc) from exc
    check_output_path(out)
    if os.path.lexists(out) and not request.force:
        raise SegtuiError(
            f"{out} already exists.",
            "Choose another file name, or remove it first (segtui export --force overwrites).",
        )


def check_export(ws: Workspace, project_id: int, params: Mapping[str, object]) -> ProjectRecord:
    """The project an export job with `params` would archive, or why it cannot (preflight)."""
    request = ExportRequest.from_params(project_id, params)
    project = ws.project(project_id)
    for model in _models(ws, exported_projects(ws, project_id, request.with_children)):
        _model_files(model)
    _check_out(ws, request)  # last: it may make the exports/ folder
    return project


# -- what goes in --------------------------------------------------------------------------


def exported_projects(ws: Workspace, project_id: int, with_children: bool) -> list[ProjectRecord]:
    """The project, every ancestor (a child is useless without its parent) and, with
    `with_children`, every descendant; parents before their children."""
    project = ws.project(project_id)
    chain = [project]
    while chain[0].parent_id is not None and all(p.id != chain[0].parent_id for p in chain):
        chain.insert(0, ws.project(chain[0].parent_id))
    found = list(chain)
    if with_children:
        queue = [project.id]
        while queue:
            for child in ws.children(queue.pop(0)):
                if all(p.id != child.id for p in found):
                    found.append(child)
                    queue.append(child.id)
    return found


def _models(ws: Workspace, projects: list[ProjectRecord]) -> list[ModelRecord]:
    """The projects' models and every model they were optimized from, parents first."""
    ordered: list[ModelRecord] = []

    def visit(model_id: int, path: tuple[int, ...]) -> None:
        if any(m.id == model_id for m in ordered) or model_id in path:
            return
        model = ws.model(model_id)
        if model.optimized_from is not None:
            visit(model.optimized_from, (*path, model_id))
        ordered.append(model)

    for project in projects:
        visit(project.model_id, ())
    return ordered


def _regular_files(folder: Path, what: str) -> list[str]:
    """The regular files under `folder` (relative POSIX paths); a link is refused."""
    names: list[str] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in sorted(dirnames + filenames):
            path = Path(dirpath) / name
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode) or not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                raise SegtuiError(
                    f"{path} ({what}) is not a regular file: segtui exports only the files "
                    "it stored.",
                    "Remove it, or import that model again.",
                )
            if stat.S_ISREG(mode):
                names.append(path.relative_to(folder).as_posix())
    return sorted(names)


def _model_files(model: ModelRecord) -> list[str]:
    if not model.xml_path.is_file():
        raise SegtuiError(
            f"The files of model {model.id} ({model.name!r}) are missing from the workspace "
            f"({model.dir}).",
            "Import the model again; a project without its model cannot be exported.",
        )
    return _regular_files(model.dir, f"a file of model {model.id}")


def _model_entry(model: ModelRecord) -> ExportedModel:
    return {
        "id": model.id,
        "name": model.name,
        "format_id": model.format_id,
        "source_path": model.source_path,
        "xml_name": model.xml_name,
        "checksum": model.checksum,
        "analysis": model.analysis,
        "class_names": model.class_names,
        "optimized_from": model.optimized_from,
        "optimization": model.optimization,
        "accuracy_settings": model.accuracy_settings,
        "created_at": model.created_at,
        "files": _model_files(model),
    }


def _image_file(dataset: DatasetRecord, path: str) -> Path:
    """An image of the dataset, as a regular file (a link inside its folder is followed)."""
    source = dataset.root / path
    try:
        if stat.S_ISREG(source.stat().st_mode):
            return Path(os.path.realpath(source))
    except OSError:
        pass
    raise SegtuiError(
        f"Image {path} of dataset {dataset.name!r} is missing from {dataset.root}.",
        "Put the images back, or export without --with-dataset (the dataset is then re-linked "
        "on import).",
    )


def _dataset_entry(
    ws: Workspace, dataset: DatasetRecord, with_images: bool
) -> tuple[ExportedDataset, list[tuple[str, Path]]]:
    images = ws.dataset_images(dataset.id)
    entry: ExportedDataset = {
        "id": dataset.id,
        "name": dataset.name,
        "kind": dataset.kind,
        "root": str(dataset.root),
        "analysis": dataset.analysis,
        "created_at": dataset.created_at,
        "images": [
            {"path": i.path, "width": i.width, "height": i.height, "coco_id": i.coco_id}
            for i in images
        ],
        "annotations": dataset.annotations is not None,
        "with_images": with_images,
    }
    members: list[tuple[str, Path]] = []
    if dataset.annotations is not None:
        if not dataset.annotations.is_file():
            raise SegtuiError(
                f"The annotations of dataset {dataset.name!r} are missing from the workspace "
                f"({dataset.annotations}).",
                "Import the COCO file again.",
            )
        members.append((annotations_member(dataset.id), dataset.annotations))
    if with_images:
        members += [
            (image_member(dataset.id, i.path), _image_file(dataset, i.path)) for i in images
        ]
    return entry, members


def _results(
    ws: Workspace, projects: list[ProjectRecord], models: list[ModelRecord]
) -> tuple[list[ExportedResult], list[tuple[str, Path]]]:
    """Every result of the projects, with the files of report folders (jobs stay behind)."""
    ids: dict[Table, dict[int, int]] = {
        "project": {p.id: p.id for p in projects},
        "model": {m.id: m.id for m in models},
    }
    entries: list[ExportedResult] = []
    members: list[tuple[str, Path]] = []
    for project in projects:
        for record in ws.results(project.id):
            remap_result(record.id, record.kind, record.data, ids)  # names only exported rows
            folder = ws.root / "reports" / str(record.id)
            files = (
                _regular_files(folder, f"a file of report {record.id}") if folder.is_dir() else []
            )
            entries.append(
                {
                    "id": record.id,
                    "project": project.id,
                    "kind": record.kind,
                    "data": record.data,
                    "created_at": record.created_at,
                    "files": files,
                }
            )
            members += [(report_member(record.id, name), folder / name) for name in files]
    return entries, members


@dataclass(frozen=True)
class ExportContents:
    document: ExportDocument
    #: (member path, file) for every member but the document.
    members: list[tuple[str, Path]]


def collect_export(ws: Workspace, request: ExportRequest) -> ExportContents:
    """The document and the files of the archive `request` asks for (nothing is written)."""
    projects = exported_projects(ws, request.project_id, request.with_children)
    models = _models(ws, projects)
    members: list[tuple[str, Path]] = []
    model_entries = [_model_entry(m) for m in models]
    for entry, model in zip(model_entries, models, strict=True):
        members += [(model_member(model.id, name), model.dir / name) for name in entry["files"]]
    dataset_entries: list[ExportedDataset] = []
    for dataset_id in dict.fromkeys(p.dataset_id for p in projects):
        entry_d, files = _dataset_entry(ws, ws.dataset(dataset_id), request.with_dataset)
        dataset_entries.append(entry_d)
        members += files
    results, report_files = _results(ws, projects, models)
    project_entries: list[ExportedProject] = [
        {
            "id": p.id,
            "name": p.name,
            "model": p.model_id,
            "dataset": p.dataset_id,
            "device": p.device,
            "parent": p.parent_id,
            "created_at": p.created_at,
        }
        for p in projects
    ]
    document: ExportDocument = {
        "format": ARCHIVE_FORMAT,
        "segtui_version": __version__,
        "exported_at": time.time(),
        "project": request.project_id,
        "with_children": request.with_children,
        "with_dataset": request.with_dataset,
        "projects": project_entries,
        "models": model_entries,
        "datasets": dataset_entries,
        "results": results,
    }
    return ExportContents(document, members + report_files)


def export_project(
    ws: Workspace,
    request: ExportRequest,
    work_dir: Path,
    *,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> ExportResult:
    """Write the archive `request` asks for (atomically: no partial file outlives a failure)."""
    _check_out(ws, request)  # again: the file may have appeared since the job was queued
    progress(0.0, "Collecting the projects")
    contents = collect_export(ws, request)
    document = work_dir / EXPORT_DOC
    atomic_write_bytes(document, document_bytes(contents.document))

    def writing(fraction: float, stage: str) -> None:
        progress(0.02 + 0.98 * fraction, stage)

    manifest = write_archive(
        request.out,
        [(EXPORT_DOC, document), *contents.members],
        kind=ARCHIVE_KIND,
        progress=writing,
        cancel=cancel,
    )
    return {
        "path": str(request.out),
        "size_bytes": request.out.stat().st_size,
        "members": len(manifest["members"]),
        "projects": [p["id"] for p in contents.document["projects"]],
    }


__all__ = [
    "EXPORT_DIR",
    "ExportContents",
    "ExportParams",
    "ExportRequest",
    "ExportResult",
    "check_export",
    "collect_export",
    "default_export_path",
    "export_project",
    "exported_projects",
]
