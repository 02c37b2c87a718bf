"""Accuracy of a project's model on its annotated dataset (COCO AP via pycocotools)."""

from __future__ import annotations

from typing import Any

from segtui.core.datasets import image_path
from segtui.core.errors import SegtuiError
from segtui.core.evaluation import category_mapping, evaluate_coco, load_annotations
from segtui.core.inference import run_inference
from segtui.core.models import load_registered
from segtui.core.progress import CancelToken, ProgressCallback, no_progress
from segtui.core.workspace import Workspace


def evaluate_project(
    ws: Workspace,
    project_id: int,
    *,
    precision: str = "f32",
    limit: int | None = None,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> dict[str, Any]:
    """Run the project's model over its annotated dataset and score it with COCO AP."""
    project = ws.project(project_id)
    model = ws.model(project.model_id)
    dataset = ws.dataset(project.dataset_id)
    if not dataset.annotated or dataset.annotations is None:
        raise SegtuiError(
            f"Dataset {dataset.name!r} has no annotations, so accuracy cannot be measured against them.",
            "Use a project with a COCO dataset (e.g. the annotated sample project).",
        )
    images = ws.dataset_images(dataset.id)[:limit] if limit else ws.dataset_images(dataset.id)
    loaded = load_registered(model)
    run = run_inference(
        loaded.model,
        loaded.adapter,
        [(im.path, image_path(dataset, im)) for im in images],
        device=project.device,
        precision=precision,
        progress=lambda f, s: progress(0.95 * f, s),
        cancel=cancel,
    )
    progress(0.96, "COCO evaluation")
    ids = {im.path: int(im.coco_id or 0) for im in images}
    metrics = evaluate_coco(
        load_annotations(dataset.annotations),
        run.predictions,
        ids,
        category_mapping(model.class_names, dataset.analysis),
    )
    progress(1.0, "Done")
    return {
        "metrics": metrics.to_json(),
        "precision": run.precision,
        "device": run.device,
        "images": len(images),
        "inference_seconds": round(run.seconds, 3),
    }
