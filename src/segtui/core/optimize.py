"""Perform → Optimize: quantize a project's model and register the result as a child project."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from segtui.core.datasets import image_path
from segtui.core.errors import SegtuiError
from segtui.core.evaluation import category_mapping, load_annotations
from segtui.core.models import import_model, load_registered
from segtui.core.progress import CancelToken, ProgressCallback, no_progress
from segtui.core.projects import create_project
from segtui.core.quantize import OptimizeSettings, ReferenceMetric, parent_reference, quantize
from segtui.core.workspace import ProjectRecord, Workspace


def validation_items(ws: Workspace, project_id: int, count: int) -> list[tuple[str, Path, int]]:
    """(name, path, COCO image id) for the first `count` images, spread over the dataset."""
    project = ws.project(project_id)
    dataset = ws.dataset(project.dataset_id)
    images = ws.dataset_images(dataset.id)
    step = max(1, len(images) // max(count, 1))
    chosen = images[::step][:count]
    return [(im.path, image_path(dataset, im), int(im.coco_id or im.idx + 1)) for im in chosen]


def optimize_project(
    ws: Workspace,
    project_id: int,
    settings: OptimizeSettings,
    work_dir: Path,
    *,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> ProjectRecord:
    """Quantize the project's model to INT8 and register the model and a child project.

    The IR is written under `work_dir` (the job's partial files); only when it
    is complete is it imported into the workspace. A failure after that point
    unregisters the model again, so nothing half-registered remains.
    """
    project = ws.project(project_id)
    parent_model = ws.model(project.model_id)
    dataset = ws.dataset(project.dataset_id)
    settings.validate(dataset.annotated)
    if parent_model.is_optimized and parent_model.analysis.get("int8"):
        raise SegtuiError(
            f"Model {parent_model.name!r} is already INT8.", "Optimize its parent project instead."
        )
    loaded = load_registered(parent_model)
    images = ws.dataset_images(dataset.id)
    subset = settings.subset_count(len(images))
    step = len(images) / subset
    calibration = [image_path(dataset, images[int(i * step)]) for i in range(subset)]
    metric: ReferenceMetric | None = None
    reference = "none"
    if settings.method == "accuracy-aware":
        items = validation_items(ws, project_id, settings.validation_images)
        if dataset.annotated and dataset.annotations is not None:
            truth = load_annotations(dataset.annotations)
            categories = category_mapping(parent_model.class_names, dataset.analysis)
            reference = "annotations"
        else:
            progress(0.01, "Predicting with the parent model (reference)")
            truth = parent_reference(
                loaded.model, loaded.adapter, items, len(parent_model.class_names)
            )
            categories = None
            reference = "parent predictions (score ≥ 0.5)"
        metric = ReferenceMetric(loaded.adapter, items, truth, categories)
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
    optimization: dict[str, Any] = {
        "method": settings.method,
        "preset": settings.preset,
        "subset_percent": settings.subset_percent,
        "subset_size": outcome.subset_size,
        "fast_bias_correction": settings.fast_bias_correction,
        "auto_ignored_scope": settings.auto_ignore,
        "ignored_scope": outcome.ignored.to_json() if outcome.ignored else None,
        "ignored_names_count": len(outcome.ignored_names),
        "user_ignore_names": settings.ignore_names,
        "user_ignore_types": settings.ignore_types,
        "calibration_seconds": round(outcome.calibration_seconds, 2),
        "if_bodies_skipped": outcome.if_bodies_skipped,
        "started_at": started,
    }
    if settings.method == "accuracy-aware":
        optimization |= {
            "max_drop": settings.max_drop,
            "drop_type": settings.drop_type,
            "validation_images": settings.validation_images,
            "reference": reference,
            **(outcome.accuracy or {}),
        }
    label = "INT8" if settings.method == "default" else "INT8 AA"
    model = import_model(
        ws,
        outcome.xml_path,
        name=f"{parent_model.name} {label}",
        class_names=parent_model.class_names,
        optimized_from=parent_model.id,
        optimization=optimization,
    )
    try:
        child = ws.add_project(
            name=f"{project.name} · {label}",
            model_id=model.id,
            dataset_id=dataset.id,
            device=project.device,
            parent_id=project.id,
        )
    except BaseException:
        ws.delete_model(model.id)
        raise
    progress(1.0, "Done")
    return child


def settings_from_params(params: dict[str, Any]) -> OptimizeSettings:
    known = OptimizeSettings.__dataclass_fields__
    return OptimizeSettings(**{k: v for k, v in params.items() if k in known})


__all__ = ["OptimizeSettings", "create_project", "optimize_project", "settings_from_params"]
