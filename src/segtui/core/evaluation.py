"""COCO box and mask AP with pycocotools, against annotations or against another model's predictions.

The pycocotools pitfalls handled here: annotation ids must start at 1 (id 0
silently yields AP 0); `loadRes([])` raises, so empty results score 0 without
calling it; RLE needs Fortran-ordered uint8 (see predictions.encode_mask); and
segm results carry no `bbox`, so that area ranges use the mask areas.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from segtui.core.predictions import ImagePrediction, mask_area, to_coco_results


@dataclass(frozen=True)
class CocoMetrics:
    """AP figures in [0, 1]; -1 where pycocotools has nothing to average (no ground truth)."""

    box_ap: float
    box_ap50: float
    box_ap75: float
    mask_ap: float
    mask_ap50: float
    mask_ap75: float
    mask_ap_small: float
    mask_ap_medium: float
    mask_ap_large: float
    images: int
    ground_truth: int
    detections: int

    def to_json(self) -> dict[str, Any]:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def _quiet_coco(dataset: dict[str, Any]) -> COCO:
    coco = COCO()
    coco.dataset = dataset
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def _stats(
    gt: COCO,
    results: list[dict[str, Any]],
    iou_type: str,
    image_ids: list[int],
    by_size: bool = True,
) -> np.ndarray:
    """COCOeval's 12 summary numbers; without `by_size` only AP, AP50, AP75 (the rest -1).

    Evaluating one area range and one detection limit instead of four and three
    makes COCOeval's Python loops about 4× cheaper, which matters inside reports.
    """
    if not results:
        # loadRes([]) raises; with no detections every AP is 0 (or -1 without ground truth).
        has_gt = bool(gt.getAnnIds(imgIds=image_ids, iscrowd=None))
        return np.full(12, 0.0 if has_gt else -1.0)
    with contextlib.redirect_stdout(io.StringIO()):
        dt = gt.loadRes(copy.deepcopy(results))
        evaluator = COCOeval(gt, dt, iou_type)
        evaluator.params.imgIds = image_ids
        if not by_size:
            evaluator.params.areaRng = [[0, 1e10]]
            evaluator.params.areaRngLbl = ["all"]
            evaluator.params.maxDets = [100]
        evaluator.evaluate()
        evaluator.accumulate()
        if by_size:
            evaluator.summarize()
            return np.asarray(evaluator.stats, dtype=float)
    precision = evaluator.eval["precision"][:, :, :, 0, -1]  # [iou, recall, class]
    stats = np.full(12, -1.0)
    for index, subset in ((0, precision), (1, precision[0]), (2, precision[5])):
        valid = subset[subset > -1]
        stats[index] = float(valid.mean()) if valid.size else -1.0
    return stats


def evaluate_coco(
    ground_truth: dict[str, Any],
    predictions: list[ImagePrediction],
    image_ids: dict[str, int],
    category_ids: list[int] | None = None,
    *,
    by_size: bool = True,
) -> CocoMetrics:
    """Box and mask AP of `predictions` against a COCO ground-truth dict (AP by object size too unless `by_size` is off).

    `image_ids` maps each prediction's image path to its COCO image id;
    `category_ids[class_id]` gives the COCO category of a model class (default class_id + 1).
    """
    gt = _quiet_coco(_normalised(ground_truth))
    evaluated = [image_ids[p.image] for p in predictions]
    segm = to_coco_results(predictions, image_ids, category_ids, with_bbox=False)
    bbox = [
        {k: v for k, v in r.items() if k != "segmentation"}
        for r in to_coco_results(predictions, image_ids, category_ids, with_bbox=True)
    ]
    box_stats = _stats(gt, bbox, "bbox", evaluated, by_size)
    mask_stats = _stats(gt, segm, "segm", evaluated, by_size)
    return CocoMetrics(
        box_ap=float(box_stats[0]),
        box_ap50=float(box_stats[1]),
        box_ap75=float(box_stats[2]),
        mask_ap=float(mask_stats[0]),
        mask_ap50=float(mask_stats[1]),
        mask_ap75=float(mask_stats[2]),
        mask_ap_small=float(mask_stats[3]),
        mask_ap_medium=float(mask_stats[4]),
        mask_ap_large=float(mask_stats[5]),
        images=len(evaluated),
        ground_truth=len(gt.getAnnIds(imgIds=evaluated)),
        detections=len(segm),
    )


def _segmentation_area(segmentation: Any, size: tuple[int, int]) -> float:
    """Pixel area of a COCO segmentation: compressed RLE, uncompressed RLE or polygons."""
    if isinstance(segmentation, dict) and isinstance(segmentation.get("counts"), str | bytes):
        return float(mask_area(segmentation))
    rles = mask_utils.frPyObjects(segmentation, *size)
    return float(mask_utils.area(mask_utils.merge(rles) if isinstance(rles, list) else rles))


def _normalised(dataset: dict[str, Any]) -> dict[str, Any]:
    """Annotation ids from 1, iscrowd present, and the keys pycocotools' loadRes expects."""
    sizes = {int(im["id"]): (int(im["height"]), int(im["width"])) for im in dataset["images"]}
    annotations = []
    for n, ann in enumerate(dataset.get("annotations", []), start=1):
        ann = dict(ann, id=n, iscrowd=int(ann.get("iscrowd", 0)))
        if "area" not in ann:
            # pycocotools needs it for the area ranges; segm areas are mask areas.
            ann["area"] = _segmentation_area(ann["segmentation"], sizes[int(ann["image_id"])])
        annotations.append(ann)
    return {
        "info": dataset.get("info", {}),
        "licenses": dataset.get("licenses", []),
        "images": dataset["images"],
        "annotations": annotations,
        "categories": dataset["categories"],
    }


def predictions_as_ground_truth(
    reference: list[ImagePrediction],
    image_ids: dict[str, int],
    num_classes: int,
    score_threshold: float,
) -> dict[str, Any]:
    """A COCO ground-truth dict made of a reference model's predictions (score >= threshold).

    Used where a dataset has no annotations: the parent model's predictions
    are the truth that the optimized model is scored against.
    """
    images = [
        {"id": image_ids[p.image], "file_name": p.image, "width": p.width, "height": p.height}
        for p in reference
    ]
    annotations: list[dict[str, Any]] = []
    for pred in reference:
        for inst in pred.above(score_threshold):
            x1, y1, x2, y2 = inst.box
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_ids[pred.image],
                    "category_id": inst.class_id + 1,
                    "segmentation": inst.rle,
                    "area": mask_area(inst.rle),
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "iscrowd": 0,
                }
            )
    categories = [{"id": c + 1, "name": str(c)} for c in range(num_classes)]
    return {"images": images, "annotations": annotations, "categories": categories}


def load_annotations(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(Path(path).read_text(encoding="utf-8"))
    return data


def category_mapping(class_names: list[str], dataset_analysis: dict[str, Any]) -> list[int] | None:
    """COCO category id for each model class: by name where the names agree, else by position.

    Returns None when the two cannot be lined up (then class_id + 1 is used).
    """
    cat_ids: list[int] = list(dataset_analysis.get("category_ids") or [])
    cat_names: list[str] = list(dataset_analysis.get("classes") or [])
    if not cat_ids:
        return None
    by_name = {name.lower(): cid for name, cid in zip(cat_names, cat_ids, strict=False)}
    if class_names and all(n.lower() in by_name for n in class_names):
        return [by_name[n.lower()] for n in class_names]
    if len(cat_ids) == len(class_names):
        return cat_ids
    return None
