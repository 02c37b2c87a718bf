"""Perform → Optimize: quantize a project's model and register the result as a child project."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

from segtui.core.accuracy import coco_image_id
from segtui.core.accuracy_values import AccuracySettingsJson
from segtui.core.datasets import image_path
from segtui.core.errors import SegtuiError
from segtui.core.evaluation import category_mapping, load_annotations
from segtui.core.ignored_scope import IgnoredScopeJson
from segtui.core.job_registry import cancel_deferred, pause_point
from segtui.core.keep_float import KeepFloatLink  # at run time: stored records are checked by it
from segtui.core.models import LoadedModel, import_model, load_registered
from segtui.core.optimize_settings import OptimizeSettings
from segtui.core.progress import CancelToken, ProgressCallback, no_progress
from segtui.core.quantize import (
    AccuracyAwareRecord,
    QuantizeOutcome,
    ReferenceMetric,
    ValidationItem,
    parent_reference,
    quantize,
)
from segtui.core.roi_rewrite import RoiRewriteJson
from segtui.core.settings_versions import inherited_values, settings_json
from segtui.core.standalone_fq_record import StandaloneQuantizersRecord
from segtui.core.types import DropType, Method, Preset
from segtui.core.workspace import DatasetRecord, ProjectRecord, Workspace

if TYPE_CHECKING:
    from segtui.core.workspace import _Tx


class _OptimizationBase(TypedDict):
    method: Method
    preset: Preset
    subset_percent: float
    subset_size: int
    fast_bias_correction: bool
    auto_ignored_scope: bool
    ignored_scope: IgnoredScopeJson | None
    ignored_names_count: int
    user_ignore_names: list[str]
    user_ignore_types: list[str]
    calibration_seconds: float
    if_bodies_skipped: int
    started_at: float


class OptimizationRecord(_OptimizationBase, total=False):
    """How a model was optimized, stored with it; the AccuracyAware keys only for that method.

    Stored as JSON: read back from the database, the choices are their plain strings,
    which compare equal to the enum members named here.
    """

    max_drop: float
    drop_type: DropType
    validation_images: int
    #: What the metric compares with: "annotations" or the parent's predictions.
    reference: str
    validation_calls: int
    reference_mask_ap: float | None
    final_mask_ap: float | None
    reported_drop_points: float | None
    #: Whether the returned model kept the drop within `max_drop` on the validation images
    #: (None when NNCF validated the full set fewer than twice).
    max_drop_met: bool | None
    #: The parent's accuracy settings it was calibrated with, which the child inherits (its
    #: user values); models optimized before they were recorded lack it.
    accuracy_settings: AccuracySettingsJson
    #: The sensitivity analysis a re-optimization kept groups in float from (core.keep_float).
    keep_float_from: KeepFloatLink
    #: Whether standalone quantizers feeding no INT8 compute were dropped, and what was found
    #: and dropped (core.standalone_fq); models optimized before lack both.
    drop_standalone_quantizers: bool
    standalone_quantizers: StandaloneQuantizersRecord
    #: Whether OMZ's ROI extractors were to be pooled by ROIAlign, and which were
    #: (core.roi_rewrite); models optimized before lack both.
    rewrite_roi_extractors: bool
    roi_rewrites: list[RoiRewriteJson]


def max_drop_met(
    accuracy: AccuracyAwareRecord, max_drop: float, drop_type: DropType
) -> bool | None:
    """Whether AccuracyAware's returned model is within `max_drop` (points, or % when relative)."""
    reference, final = accuracy["reference_mask_ap"], accuracy["final_mask_ap"]
    if reference is None or final is None or accuracy["reported_drop_points"] is None:
        return None
    drop = (reference - final) * 100
    if drop_type == DropType.RELATIVE:
        drop = drop / reference if reference > 0 else 0.0
    return bool(drop <= max_drop + 1e-9)


class OptimizeJobResult(TypedDict):
    """The result of an optimize job."""

    child_project_id: int
    model_id: int
    optimization: OptimizationRecord | None


#: Called inside the transaction that registers the child (a job records its end there).
OnRegistered = Callable[["_Tx", OptimizeJobResult], None]


def validation_items(ws: Workspace, project_id: int, count: int) -> list[ValidationItem]:
    """(name, path, COCO image id) for the first `count` images, spread over the dataset."""
    project = ws.project(project_id)
    dataset = ws.dataset(project.dataset_id)
    images = ws.dataset_images(dataset.id)
    step = max(1, len(images) // max(count, 1))
    chosen = images[::step][:count]
    return [(im.path, image_path(dataset, im), coco_image_id(im)) for im in chosen]


def _calibration_paths(ws: Workspace, dataset: DatasetRecord, subset: int) -> list[Path]:
    """`subset` images spread evenly over the dataset."""
    images = ws.dataset_images(dataset.id)
    step = len(images) / subset
    return [image_path(dataset, images[int(i * step)]) for i in range(subset)]


def _reference_metric(
    ws: Workspace,
    project: ProjectRecord,
    loaded: LoadedModel,
    settings: OptimizeSettings,
    progress: ProgressCallback,
) -> tuple[ReferenceMetric, str]:
    """AccuracyAware's metric, against the annotations or the parent's own predictions."""
    parent_model = ws.model(project.model_id)
    dataset = ws.dataset(project.dataset_id)
    items = validation_items(ws, project.id, settings.validation_images)
    if dataset.annotated and dataset.annotations is not None:
        truth = load_annotations(dataset.annotations)
        categories = category_mapping(parent_model.class_names, dataset.analysis)
        return ReferenceMetric(loaded.adapter, items, truth, categories), "annotations"
    progress(0.01, "Predicting with the parent model (reference)")
    truth = parent_reference(loaded.model, loaded.adapter, items, len(parent_model.class_names))
    metric = ReferenceMetric(loaded.adapter, items, truth, None)
    return metric, "parent predictions (score ≥ 0.5)"


def _record(
    settings: OptimizeSettings, outcome: QuantizeOutcome, reference: str, started: float
) -> OptimizationRecord:
    record: OptimizationRecord = {
        "method": settings.method,
        "preset": settings.preset,
        "subset_percent": settings.subset_percent,
        "subset_size": outcome.subset_size,
        "fast_bias_correction": settings.fast_bias_correction,
        "auto_ignored_scope": settings.auto_ignore,
        "ignored_scope": outcome.ignored.to_json() if outcome.ignored else None,
        "ignored_names_count": len(outcome.ignored_names),
        "user_ignore_names": list(settings.ignore_names),
        "user_ignore_types": list(settings.ignore_types),
        "calibration_seconds": round(outcome.calibration_seconds, 2),
        "if_bodies_skipped": outcome.if_bodies_skipped,
        "started_at": started,
    }
    record["drop_standalone_quantizers"] = settings.drop_standalone_quantizers
    if outcome.standalone is not None:
        record["standalone_quantizers"] = outcome.standalone
    record["rewrite_roi_extractors"] = settings.rewrite_roi_extractors
    if outcome.roi_rewrites:
        record["roi_rewrites"] = list(outcome.roi_rewrites)
    if settings.accuracy_aware:
        record |= {
            "max_drop": settings.max_drop,
            "drop_type": settings.drop_type,
            "validation_images": settings.validation_images,
            "reference": reference,
        }
        accuracy = outcome.accuracy
        if accuracy is not None:
            record["validation_calls"] = accuracy["validation_calls"]
            record["reference_mask_ap"] = accuracy["reference_mask_ap"]
            record["final_mask_ap"] = accuracy["final_mask_ap"]
            record["reported_drop_points"] = accuracy["reported_drop_points"]
            record["max_drop_met"] = max_drop_met(accuracy, settings.max_drop, settings.drop_type)
    return record


def _register(
    ws: Workspace,
    project: ProjectRecord,
    outcome: tuple[Path, OptimizationRecord, str],
    work_dir: Path,
    cancel: CancelToken | None,
    on_registered: OnRegistered | None,
) -> ProjectRecord:
    """Import the INT8 IR and add the child project as one unit: all of it, or nothing.

    The copy is staged under `work_dir` (the job's partial files, removed if it dies);
    the model row, the project row and `on_registered`'s rows commit in one transaction,
    inside which the files are moved into models/<id>. A cancel is acted on just before
    the commit (rolled back: nothing registered), never in the middle of it.
    """
    xml_path, record, label = outcome
    parent_model = ws.model(project.model_id)
    child: list[int] = []

    def with_child(tx: _Tx, model_id: int) -> None:
        child_id = ws.insert_child_project(
            tx,
            name=f"{project.name} · {label}",
            model_id=model_id,
            dataset_id=project.dataset_id,
            device=project.device,
            parent_id=project.id,
        )
        if on_registered is not None:
            on_registered(
                tx, {"child_project_id": child_id, "model_id": model_id, "optimization": record}
            )
        pause_point("register: before commit")
        if cancel is not None:
            cancel.raise_if_cancelled()  # the last moment a cancel undoes the registration
        child.append(child_id)

    # The child carries its parent's metadata.yaml (Ultralytics' export writes one beside the
    # IR; Ultralytics and the Model API need it to load the INT8 IR), as import_model copies
    # the one beside the file it registers.
    meta = parent_model.xml_path.parent / "metadata.yaml"
    if meta.is_file() and not (xml_path.parent / "metadata.yaml").exists():
        shutil.copyfile(meta, xml_path.parent / "metadata.yaml")
    with cancel_deferred():
        import_model(
            ws,
            xml_path,
            name=f"{parent_model.name} {label}",
            class_names=parent_model.class_names,
            optimized_from=parent_model.id,
            optimization=record,
            staging_dir=work_dir / "register",
            then=with_child,
            # The parent's values at the time, copied: a later change to either is its own.
            accuracy_settings=inherited_values(record),
        )
    pause_point("register: committed")
    return ws.project(child[0])


def optimize_project(
    ws: Workspace,
    project_id: int,
    settings: OptimizeSettings,
    work_dir: Path,
    *,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
    on_registered: OnRegistered | None = None,
    keep_float_from: KeepFloatLink | None = None,
) -> ProjectRecord:
    """Quantize the project's model to INT8 and register the model and a child project.

    `keep_float_from` records the sensitivity analysis a re-optimization comes from.

    The IR is written under `work_dir` (the job's partial files); only when it
    is complete is it registered, in one transaction with the child project
    (and `on_registered`'s rows), so that nothing half-registered can remain.
    """
    project = ws.project(project_id)
    parent_model = ws.model(project.model_id)
    dataset = ws.dataset(project.dataset_id)
    settings.validate()
    if parent_model.is_optimized and parent_model.analysis.get("int8"):
        raise SegtuiError(
            f"Model {parent_model.name!r} is already INT8.", "Optimize its parent project instead."
        )
    loaded = load_registered(parent_model)
    parent_settings = settings_json(parent_model, loaded.model)  # what calibration runs with
    subset = settings.subset_count(len(ws.dataset_images(dataset.id)))
    calibration = _calibration_paths(ws, dataset, subset)
    metric: ReferenceMetric | None = None
    reference = "none"
    if settings.accuracy_aware:
        metric, reference = _reference_metric(ws, project, loaded, settings, progress)
    started = time.time()
    outcome = quantize(
        loaded.model,
        loaded.adapter,
        calibration,
        settings,
        work_dir / "int8" / "model.xml",
        metric=metric,
        progress=progress,
        cancel=cancel,
    )
    if cancel is not None:
        cancel.raise_if_cancelled()
    progress(0.97, "Registering the optimized model")
    label = "INT8 AA" if settings.accuracy_aware else "INT8"
    record = _record(settings, outcome, reference, started)
    record["accuracy_settings"] = parent_settings
    if keep_float_from is not None:
        record["keep_float_from"] = keep_float_from
    registered = (outcome.xml_path, record, label)
    child = _register(ws, project, registered, work_dir, cancel, on_registered)
    progress(1.0, "Done")
    return child


__all__ = [
    "OptimizationRecord",
    "OptimizeJobResult",
    "OptimizeSettings",
    "optimize_project",
    "validation_items",
]
