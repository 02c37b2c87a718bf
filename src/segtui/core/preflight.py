"""What can be refused before a job is created: its settings, and what its project lacks.

A job that is bound to fail for a reason known now (a value out of range, a report on
a project without a parent, an evaluation without annotations, a device this machine
does not have) is refused here with the reason, so no job row is added and no stored
result is touched. The job still checks again when it runs: the workspace may change
in between.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path

from segtui.core.errors import SegtuiError
from segtui.core.records import DatasetRecord, JobRecord, ModelRecord, ProjectRecord
from segtui.core.settings import (
    BENCHMARK,
    EVALUATE,
    OPTIMIZE,
    REPORT,
    SENSITIVITY,
    SWEEP,
    Schema,
    SettingError,
)
from segtui.core.types import JobKind, ReportType
from segtui.core.workspace import Workspace

#: The settings schema each job kind's params are checked against.
JOB_SCHEMAS: dict[JobKind, Schema] = {
    JobKind.OPTIMIZE: OPTIMIZE,
    JobKind.BENCHMARK: BENCHMARK,
    JobKind.SWEEP: SWEEP,
    JobKind.REPORT: REPORT,
    JobKind.EVALUATE: EVALUATE,
    JobKind.SENSITIVITY: SENSITIVITY,
}

#: What to do about an evaluation without annotations.
EVALUATE_HINT = "Use a project whose dataset is a COCO file with annotations (e.g. the annotated sample project)."


def check_params(kind: JobKind, params: Mapping[str, object]) -> None:
    """Raise a SettingError naming every param out of its schema's range (others are ignored)."""
    schema = JOB_SCHEMAS[kind]
    names = {spec.name for spec in schema}
    schema.validate({name: value for name, value in params.items() if name in names})
    if kind == JobKind.SWEEP:
        batches = SWEEP.batches.check(params.get("batches", SWEEP.batches.default))
        SWEEP.check_grid(batches, SWEEP.streams.check(params.get("streams", SWEEP.streams.default)))


def check_device(project: ProjectRecord) -> None:
    """Refuse a project whose device this machine does not have (e.g. moved from a GPU server)."""
    # Imported here: OpenVINO is only needed when a project is about to run.
    from segtui.core.projects import available_devices

    devices = available_devices()
    if project.device not in devices:
        raise SegtuiError(
            f"Project {project.id} runs on {project.device}, which this machine does not have "
            f"(available: {', '.join(devices)}).",
            "Create a project for one of the available devices (`segtui create-project "
            "MODEL DATASET --device CPU`).",
        )


def check_annotations(dataset: DatasetRecord, hint: str) -> Path:
    """The dataset's annotations file, or a refusal: there is nothing to measure accuracy against."""
    if not dataset.annotated or dataset.annotations is None:
        raise SegtuiError(
            f"Dataset {dataset.name!r} has no annotations, so accuracy cannot be measured "
            "against them.",
            hint,
        )
    if dataset.analysis.get("annotation_count") == 0:
        raise SegtuiError(
            f"Dataset {dataset.name!r} is a COCO file without a single annotation, "
            "so accuracy cannot be measured against it.",
            "Import a COCO file that holds the annotations of its images.",
        )
    if not dataset.annotations.is_file():
        raise SegtuiError(
            f"The annotations of dataset {dataset.name!r} are missing from the workspace "
            f"({dataset.annotations}).",
            "Import the COCO file again.",
        )
    return dataset.annotations


def check_report(ws: Workspace, project: ProjectRecord, report_type: ReportType) -> ProjectRecord:
    """The parent a report of `project` compares with, or why there can be no report."""
    if project.parent_id is None:
        raise SegtuiError(
            f"Project {project.name!r} is not an optimized project: it has no parent to compare with.",
            "Open the optimized (child) project, or optimize this one first.",
        )
    if report_type == ReportType.ANNOTATIONS:
        check_annotations(
            ws.dataset(project.dataset_id), "Make a report of type parent, which needs none."
        )
    return ws.project(project.parent_id)


def _check_model_files(ws: Workspace, project: ProjectRecord) -> None:
    model = ws.model(project.model_id)
    # The .bin is not checked: an IR without weights has none (the job says if one is missing).
    if not model.xml_path.is_file():
        raise SegtuiError(
            f"The files of model {model.id} ({model.name!r}) are missing from the workspace "
            f"({model.dir}).",
            "Import the model again and create a new project with it.",
        )


def check_project(ws: Workspace, project_id: int) -> ProjectRecord:
    """A project that can run here: its device exists and its model's files are in place."""
    project = ws.project(project_id)
    check_device(project)
    _check_model_files(ws, project)
    return project


def check_job(
    ws: Workspace, kind: JobKind, project_id: int, params: Mapping[str, object]
) -> ProjectRecord:
    """The project a job of `kind` would run on, or a SegtuiError saying why it cannot run."""
    if kind == JobKind.EXPORT:  # no settings schema: a path and switches, checked there
        from segtui.core.project_export import check_export

        return check_export(ws, project_id, params)
    check_params(kind, params)
    project = check_project(ws, project_id)
    if kind == JobKind.REPORT:
        report_type = REPORT.type.check(params.get("type", REPORT.type.default))
        parent = check_report(ws, project, report_type)
        _check_model_files(ws, parent)
    elif kind == JobKind.EVALUATE:
        check_annotations(ws.dataset(project.dataset_id), EVALUATE_HINT)
    elif kind == JobKind.SENSITIVITY:
        from segtui.core.sensitivity import check_analysable  # loads OpenVINO

        check_analysable(ws, project.id)
    elif kind == JobKind.OPTIMIZE:
        model = ws.model(project.model_id)
        if model.is_optimized and model.analysis.get("int8"):
            raise SegtuiError(
                f"Model {model.name!r} is already INT8.", "Optimize its parent project instead."
            )
        _check_ignored(model, params)
    return project


def _check_ignored(model: ModelRecord, params: Mapping[str, object]) -> None:
    """Refuse layer names and types to keep in floating point that the model does not have.

    NNCF is told not to validate them (its patterns would refuse the automatic ones), so a
    misspelt name would otherwise be dropped without a word.
    """
    names = OPTIMIZE.ignore_names.check(params.get("ignore_names", ()))
    types = OPTIMIZE.ignore_types.check(params.get("ignore_types", ()))
    if not names and not types:
        return
    try:
        layers = [
            (layer.get("name", ""), layer.get("type", ""))
            for layer in ET.parse(model.xml_path).iter("layer")
        ]
    except (OSError, ET.ParseError):
        return  # the job reads the model and says what is wrong with it
    for field, asked, known in (
        (OPTIMIZE.ignore_names, names, {name for name, _ in layers}),
        (OPTIMIZE.ignore_types, types, {kind for _, kind in layers}),
    ):
        missing = [value for value in asked if value not in known]
        if missing:
            what = "named" if field is OPTIMIZE.ignore_names else "of type"
            raise SettingError(
                field.name,
                f"Model {model.name!r} has no layer {what} "
                f"{', '.join(repr(m) for m in missing)} to keep in floating point.",
                "Names and types are case-sensitive; see the model's layers on the Optimize page.",
            )


def submit_checked(
    ws: Workspace, kind: JobKind, project_id: int, params: Mapping[str, object]
) -> JobRecord:
    """Queue a job once `check_job` finds nothing against it: the front ends' way to submit."""
    from segtui.core import jobs  # the job machinery, only when a job is queued

    check_job(ws, kind, project_id, params)
    return jobs.submit(ws, kind, project_id, params)
