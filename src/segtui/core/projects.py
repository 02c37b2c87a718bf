"""Projects: a model + a dataset + a device, and what the project page shows about them."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from segtui.core.errors import SegtuiError
from segtui.core.import_checks import InputShapeError, check_input_shape, check_name, shape_text
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
    from segtui.core.models import ov_core  # OpenVINO: kept off the TUI's start path

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


class ProjectExistsError(SegtuiError):
    """The project asked for is already there: the same model, dataset and device."""

    def __init__(self, project: ProjectRecord) -> None:
        super().__init__(
            f"Project {project.id} ({project.name}) already has this model, dataset and device "
            f"({project.device}): nothing was created.",
            f"Open it with `segtui show {project.id}`; for another project on the same model and "
            "dataset, pick another device or input shape.",
        )
        self.project = project


def find_project(
    ws: Workspace, model_id: int, dataset_id: int, device: str
) -> ProjectRecord | None:
    """The project of this model, dataset and device, if there is one."""
    return next(
        (
            p
            for p in ws.projects()
            if (p.model_id, p.dataset_id, p.device) == (model_id, dataset_id, device)
        ),
        None,
    )


def _image_shape(model: ModelRecord) -> list[int | None] | None:
    """The shape of the model's one rank-4 (image) input, as imported."""
    images = [port["shape"] for port in model.analysis["inputs"] if len(port["shape"]) == 4]
    return images[0] if len(images) == 1 else None


def _model_at(model: ModelRecord, input_shape: list[int] | None) -> ModelRecord | None:
    """`model` when it already runs at `input_shape` (or none is asked); None when a reshape is due.

    An optimized model is never reshaped: it would lose its link to the model it came from.
    """
    if input_shape is None or _image_shape(model) == list(input_shape):
        return model
    if model.optimized_from is not None:
        raise InputShapeError(
            f"Model {model.id} ({model.name}) is the optimized form of model "
            f"{model.optimized_from}: it is not reshaped (its input is "
            f"[{shape_text(_image_shape(model) or [])}]).",
            f"Create the project from model {model.optimized_from} with this input shape, "
            "then optimize that project.",
        )
    return None


def _reshaped(ws: Workspace, model: ModelRecord, input_shape: list[int]) -> ModelRecord:
    """A registered model at another input size: a new model (imported once per size)."""
    from segtui.core.models import import_model  # OpenVINO: kept off the TUI's start path

    height, width = input_shape[-2:]
    return import_model(
        ws,
        model.xml_path,
        name=f"{model.name} {height}x{width}",
        class_names=model.class_names or None,
        input_shape=input_shape,
    )


def create_project_from(
    ws: Workspace,
    *,
    model: int | Path,
    dataset: int | Path,
    images_dir: Path | None = None,
    device: str = "CPU",
    name: str | None = None,
    input_shape: list[int] | None = None,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> ProjectRecord:
    """A new project of a model (an id or a file) and a dataset (an id, a folder or a COCO file).

    What can be refused without importing is checked first; a project that already has this
    model, dataset and device is refused (ProjectExistsError). The dataset is imported before
    the model, the step most likely to be refused, and a refusal leaves nothing it imported.
    A registered model given another input shape becomes a new, reshaped model.
    """
    # OpenVINO and OpenCV: kept off the TUI's start path (the project list imports this module).
    from segtui.core.datasets import import_dataset
    from segtui.core.models import import_model

    check_device(device)
    name = check_name(name, "The project name", default="'model · dataset'")
    model_record = ws.model(model) if isinstance(model, int) else None
    if input_shape is not None:  # judged before anything is imported
        port = None if model_record is None else _image_shape(model_record)
        where = "the model" if model_record is None else f"model {model_record.id}"
        check_input_shape(input_shape, port, where)
    dataset_record = ws.dataset(dataset) if isinstance(dataset, int) else None
    if dataset_record is not None and images_dir is not None:
        raise SegtuiError(
            f"An images folder goes with a COCO file to import, but dataset {dataset_record.id} "
            f"is already imported (its images are in {dataset_record.root}).",
            "Leave out the images folder, or give the COCO .json file instead of the dataset id.",
        )
    same = None if model_record is None else _model_at(model_record, input_shape)
    if same is not None and dataset_record is not None:
        existing = find_project(ws, same.id, dataset_record.id, device)
        if existing is not None:
            raise ProjectExistsError(existing)
    new_dataset = dataset_record is None
    if dataset_record is None:
        assert isinstance(dataset, Path)
        dataset_record = import_dataset(
            ws, dataset, images_dir=images_dir, progress=progress, cancel=cancel
        )
    try:
        if model_record is None:
            assert isinstance(model, Path)
            model_record = import_model(ws, model, input_shape=input_shape)
        elif same is None:
            assert input_shape is not None
            model_record = _reshaped(ws, model_record, input_shape)
        existing = find_project(ws, model_record.id, dataset_record.id, device)
        if existing is not None:
            raise ProjectExistsError(existing)
    except BaseException:
        if new_dataset and not any(p.dataset_id == dataset_record.id for p in ws.projects()):
            ws.delete_dataset(dataset_record.id)
        raise
    return ws.add_project(
        name=name or f"{model_record.name} · {dataset_record.name}",
        model_id=model_record.id,
        dataset_id=dataset_record.id,
        device=device,
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
    """Import a model file and a dataset and make a project of them (see create_project_from)."""
    return create_project_from(
        ws,
        model=Path(model_path),
        dataset=Path(dataset_path),
        images_dir=images_dir,
        device=device,
        name=name,
        input_shape=input_shape,
        progress=progress,
        cancel=cancel,
    )


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
