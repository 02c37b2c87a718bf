"""Projects: a model + a dataset + a device, and what the project page shows about them."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from segtui.core.datasets import import_dataset
from segtui.core.errors import SegtuiError
from segtui.core.models import import_model, ov_core
from segtui.core.progress import CancelToken, ProgressCallback, no_progress
from segtui.core.records import (
    DatasetRecord,
    JobRecord,
    JsonObject,
    ModelRecord,
    ProjectRecord,
    ProjectRow,
    status_text,
)
from segtui.core.types import JobKind
from segtui.core.workspace import Workspace


def available_devices() -> list[str]:
    """Devices OpenVINO can use here (CPU always; GPU/NPU when present)."""
    try:
        devices = [str(d) for d in ov_core().available_devices]
    except Exception:
        devices = []
    return devices or ["CPU"]


def check_device(device: str) -> str:
    devices = available_devices()
    if device not in devices:
        raise SegtuiError(
            f"Device {device!r} is not available here.", f"Available: {', '.join(devices)}."
        )
    return device


def create_project(
    ws: Workspace,
    *,
    model_id: int,
    dataset_id: int,
    device: str = "CPU",
    name: str | None = None,
    parent_id: int | None = None,
) -> ProjectRecord:
    """Create (or return the existing) project for this model, dataset and device."""
    check_device(device)
    model = ws.model(model_id)
    dataset = ws.dataset(dataset_id)
    return ws.add_project(
        name=name or f"{model.name} · {dataset.name}",
        model_id=model.id,
        dataset_id=dataset.id,
        device=device,
        parent_id=parent_id,
    )


def create_project_from_paths(
    ws: Workspace,
    *,
    model_path: Path,
    dataset_path: Path,
    images_dir: Path | None = None,
    device: str = "CPU",
    name: str | None = None,
    input_shape: list[int] | None = None,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> ProjectRecord:
    """Import a model file and a dataset and make a project of them.

    The dataset is imported first: it is the step most likely to be refused,
    and a refused dataset must not leave an orphan model behind.
    """
    check_device(device)
    dataset = import_dataset(
        ws, dataset_path, images_dir=images_dir, progress=progress, cancel=cancel
    )
    try:
        model = import_model(ws, model_path, input_shape=input_shape)
    except BaseException:
        if not any(p.dataset_id == dataset.id for p in ws.projects()):
            ws.delete_dataset(dataset.id)
        raise
    return create_project(ws, model_id=model.id, dataset_id=dataset.id, device=device, name=name)


def project_status(ws: Workspace, project: ProjectRecord) -> str:
    """One word for the project list: the state of its newest job, or "ready"."""
    latest = ws.latest_job(project.id)
    return status_text(None, None) if latest is None else status_text(latest.kind, latest.state)


def project_rows(ws: Workspace) -> list[ProjectRow]:
    """Every project in display order: each parent followed by its optimized children.

    One query (`Workspace.project_rows`); a child's `depth` says how far it is nested.
    A project whose parent is gone is listed as a root.
    """
    rows = ws.project_rows()
    ids = {row.id for row in rows}
    children: dict[int, list[ProjectRow]] = {}
    roots: list[ProjectRow] = []
    for row in rows:
        if row.parent_id is not None and row.parent_id in ids:
            children.setdefault(row.parent_id, []).append(row)
        else:
            roots.append(row)
    ordered: list[ProjectRow] = []
    pending = [(root, 0) for root in reversed(roots)]
    while pending:
        row, depth = pending.pop()
        ordered.append(dataclasses.replace(row, depth=depth))
        pending += [(child, depth + 1) for child in reversed(children.get(row.id, []))]
    return ordered


@dataclass(frozen=True)
class ProjectDetails:
    """A project and what it is made of: what the project page and `segtui show` display."""

    project: ProjectRecord
    model: ModelRecord
    dataset: DatasetRecord
    parent: ProjectRecord | None
    children: tuple[ProjectRecord, ...]
    status: str

    def to_json(self) -> JsonObject:
        """The `--json` form: project, model (with its analysis) and dataset sections."""
        project, model, dataset = self.project, self.model, self.dataset
        analysis = {k: v for k, v in model.analysis.items() if k != "settings"}
        return {
            "project": {
                "id": project.id,
                "name": project.name,
                "device": project.device,
                "status": self.status,
                "parent_id": self.parent.id if self.parent else None,
                "children": [c.id for c in self.children],
            },
            "model": {
                "id": model.id,
                "name": model.name,
                "format_id": model.format_id,
                "class_names": model.class_names,
                "checksum": model.checksum,
                "optimized_from": model.optimized_from,
                "optimization": model.optimization,
                **analysis,
                "settings": model.analysis.get("settings", {}),
            },
            "dataset": {
                "id": dataset.id,
                "name": dataset.name,
                "kind": dataset.kind,
                "root": str(dataset.root),
                "annotated": dataset.annotated,
                **dataset.analysis,
            },
        }


def project_details(ws: Workspace, project_id: int) -> ProjectDetails:
    project = ws.project(project_id)
    return ProjectDetails(
        project=project,
        model=ws.model(project.model_id),
        dataset=ws.dataset(project.dataset_id),
        parent=ws.project(project.parent_id) if project.parent_id else None,
        children=tuple(ws.children(project.id)),
        status=project_status(ws, project),
    )


def project_summary(ws: Workspace, project_id: int) -> JsonObject:
    """Everything the project page and `segtui show project` display, as JSON."""
    return project_details(ws, project_id).to_json()


def project_jobs(ws: Workspace, project: ProjectRecord) -> list[JobRecord]:
    """The project's jobs, oldest first, after the parent's optimize job that made it."""
    jobs = ws.jobs(project.id)
    if project.parent_id is None:
        return jobs
    made_by = [
        job
        for job in ws.jobs(project.parent_id)
        if job.kind == JobKind.OPTIMIZE and (job.result or {}).get("child_project_id") == project.id
    ]
    return made_by + jobs
