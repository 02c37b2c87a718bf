"""Running a project's model over its dataset, and its accuracy there (COCO AP via pycocotools).

`predict_project` is the one place that runs a model over a dataset for accuracy:
`segtui predict`, the evaluate job and the accuracy report all go through it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NotRequired, TypedDict

from segtui.core.accuracy_values import AccuracySettingsJson
from segtui.core.datasets import image_path
from segtui.core.evaluation import (
    CocoMetricsData,
    category_mapping,
    evaluate_coco,
    load_annotations,
)
from segtui.core.inference import run_inference
from segtui.core.models import load_registered
from segtui.core.predictions import ImagePrediction
from segtui.core.preflight import EVALUATE_HINT, check_annotations
from segtui.core.progress import CancelToken, ProgressCallback, no_progress
from segtui.core.settings_versions import settings_json
from segtui.core.types import Precision
from segtui.core.workspace import (
    DatasetImage,
    DatasetRecord,
    ModelRecord,
    ProjectRecord,
    Workspace,
)


def coco_image_id(image: DatasetImage) -> int:
    """An image's COCO id: the annotation file's (0 included), else its position + 1."""
    return image.coco_id if image.coco_id is not None else image.idx + 1


@dataclass(frozen=True)
class ProjectPredictions:
    """A model's predictions on a project's dataset, in dataset order, and how they were made."""

    project: ProjectRecord
    model: ModelRecord
    dataset: DatasetRecord
    images: tuple[DatasetImage, ...]
    predictions: list[ImagePrediction]
    device: str
    #: What the device actually ran at ("f32", "bf16", ...).
    precision: str
    seconds: float
    #: The model's accuracy settings the run used (read from the graph it loaded).
    settings: AccuracySettingsJson
    #: How its masks became image pixels (the adapter's `mask_protocol`).
    mask_protocol: str

    @property
    def image_ids(self) -> dict[str, int]:
        """COCO image id of each image path: the annotation file's, else position + 1."""
        return {im.path: coco_image_id(im) for im in self.images}

    @property
    def category_ids(self) -> list[int] | None:
        """COCO category of each model class on an annotated dataset (None: class_id + 1)."""
        if not self.dataset.annotated:
            return None
        return category_mapping(self.model.class_names, self.dataset.analysis)

    @property
    def images_per_second(self) -> float:
        return len(self.predictions) / max(self.seconds, 1e-9)


def predict_project(
    ws: Workspace,
    project_id: int,
    *,
    precision: Precision,
    threshold: float,
    limit: int | None = None,
    model_id: int | None = None,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> ProjectPredictions:
    """Run the project's model (or the model `model_id`) over the project's dataset.

    On the project's device, keeping detections with score >= `threshold`; only the
    first `limit` images when given (0 or None: all).
    """
    project = ws.project(project_id)
    model = ws.model(project.model_id if model_id is None else model_id)
    dataset = ws.dataset(project.dataset_id)
    images = ws.dataset_images(dataset.id)
    if limit:
        images = images[:limit]
    loaded = load_registered(model)
    settings = settings_json(model, loaded.model)  # from the graph loaded here: read once
    run = run_inference(
        loaded.model,
        loaded.adapter,
        [(im.path, image_path(dataset, im)) for im in images],
        device=project.device,
        precision=precision,
        score_threshold=threshold,
        progress=progress,
        cancel=cancel,
    )
    return ProjectPredictions(
        project=project,
        model=model,
        dataset=dataset,
        images=tuple(images),
        predictions=run.predictions,
        device=run.device,
        precision=run.precision,
        seconds=run.seconds,
        settings=settings,
        mask_protocol=loaded.adapter.mask_protocol,
    )


class EvaluationResult(TypedDict):
    """An evaluate job's result, stored as an "accuracy" result."""

    metrics: CocoMetricsData
    precision: str
    device: str
    images: int
    inference_seconds: float
    #: The model's accuracy settings it ran with (core.settings_versions; results stored
    #: before they were recorded lack it).
    accuracy_settings: NotRequired[AccuracySettingsJson]
    #: How masks became image pixels, named after the reference decoder (results stored
    #: before it was recorded lack it).
    mask_protocol: NotRequired[str]


#: The lowest score a detection needs to count in COCO AP (pycocotools' usual cut).
EVALUATION_THRESHOLD = 0.05


def evaluate_project(
    ws: Workspace,
    project_id: int,
    *,
    precision: Precision = Precision.F32,
    limit: int | None = None,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> EvaluationResult:
    """Run the project's model over its annotated dataset and score it with COCO AP."""
    dataset = ws.dataset(ws.project(project_id).dataset_id)
    annotations = check_annotations(dataset, EVALUATE_HINT)
    run = predict_project(
        ws,
        project_id,
        precision=precision,
        threshold=EVALUATION_THRESHOLD,
        limit=limit,
        progress=lambda f, s: progress(0.95 * f, s),
        cancel=cancel,
    )
    progress(0.96, "COCO evaluation")
    metrics = evaluate_coco(
        load_annotations(annotations), run.predictions, run.image_ids, run.category_ids
    )
    progress(1.0, "Done")
    return {
        "metrics": metrics.to_json(),
        "precision": run.precision,
        "device": run.device,
        "images": len(run.images),
        "inference_seconds": round(run.seconds, 3),
        "accuracy_settings": run.settings,
        "mask_protocol": run.mask_protocol,
    }
