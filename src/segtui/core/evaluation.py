"""COCO box and mask AP with pycocotools, against annotations or against another model's predictions.

The pycocotools pitfalls handled here: annotation ids must start at 1 (id 0
silently yields AP 0); `loadRes([])` raises, so empty results score 0 without
calling it; RLE needs Fortran-ordered uint8 (see predictions.encode_mask); and
segm results carry no `bbox`, so that area ranges use the mask areas.

COCO files and the ground truth handed to pycocotools stay plain JSON (`CocoJson`):
that is the edge where segtui meets the COCO format.
"""

from __future__ import annotations

import contextlib
import copy
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
import numpy.typing as npt
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from segtui.core.coco_checks import check_stored
from segtui.core.errors import DatasetImportError
from segtui.core.json_input import read_json
from segtui.core.predictions import (
    CocoResult,
    ImagePrediction,
    as_rle,
    mask_area,
    to_coco_results,
)
from segtui.core.records import JsonObject

#: (COCO image id, COCO category id)
ImageCategory = tuple[int, int]
#: A COCO instances file as JSON ("images", "annotations", "categories"): what COCO files
#: hold and pycocotools reads, so its inner shape is pycocotools' to check, not ours.
CocoJson = JsonObject


class CocoMetricsData(TypedDict):
    """`CocoMetrics` as stored in results and printed by `--json` (floats rounded to 6 places)."""

    box_ap: float
    box_ap50: float
    box_ap75: float
    mask_ap: float
    mask_ap50: float
    mask_ap75: float
    #: None where the set has no object of that size (pycocotools' -1).
    mask_ap_small: float | None
    mask_ap_medium: float | None
    mask_ap_large: float | None
    images: int
    ground_truth: int
    detections: int


def _bucket(ap: float) -> float | None:
    """A size bucket's AP for JSON: None for pycocotools' -1 ("no such objects")."""
    return None if ap < 0 else round(ap, 6)


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

    def to_json(self) -> CocoMetricsData:
        return {
            "box_ap": round(self.box_ap, 6),
            "box_ap50": round(self.box_ap50, 6),
            "box_ap75": round(self.box_ap75, 6),
            "mask_ap": round(self.mask_ap, 6),
            "mask_ap50": round(self.mask_ap50, 6),
            "mask_ap75": round(self.mask_ap75, 6),
            "mask_ap_small": _bucket(self.mask_ap_small),
            "mask_ap_medium": _bucket(self.mask_ap_medium),
            "mask_ap_large": _bucket(self.mask_ap_large),
            "images": self.images,
            "ground_truth": self.ground_truth,
            "detections": self.detections,
        }


@dataclass(frozen=True)
class CocoEvaluation:
    """COCO AP, and the mask AP of each image and category from the same COCOeval pass."""

    metrics: CocoMetrics
    #: AP (IoU .50:.05:.95, 101 recall points) per (image id, category id) that has ground
    #: truth; absent where there is none to recall (no AP: "n/a").
    mask_ap_by_image: Mapping[ImageCategory, float]
    #: The same at IoU .50 alone (AP50).
    mask_ap50_by_image: Mapping[ImageCategory, float] = field(default_factory=dict)


#: COCOeval's IoU thresholds (.50:.05:.95) as rows: the first alone is AP50.
ALL_IOUS = slice(None)
IOU_50 = slice(0, 1)


def _quiet_coco(dataset: Mapping[str, Any]) -> COCO:
    coco = COCO()
    coco.dataset = dataset
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def _image_ap(
    entry: Mapping[str, Any], recall_points: npt.NDArray[np.float64], ious: slice = ALL_IOUS
) -> float | None:
    """AP of one `COCOeval.evalImgs` entry, computed as `COCOeval.accumulate` does for a category
    (averaged over the IoU thresholds `ious` picks).

    accumulate pools all images of a category; here the pool is one image. None when
    the entry has no ground truth that counts (nothing to recall).
    """
    gt_counted = int(np.count_nonzero(np.asarray(entry["gtIgnore"]) == 0))
    if gt_counted == 0:
        return None
    if len(entry["dtScores"]) == 0:
        return 0.0
    order = np.argsort(-np.asarray(entry["dtScores"], dtype=float), kind="mergesort")
    matched = np.asarray(entry["dtMatches"])[ious][:, order] > 0  # iou thresholds × detections
    ignored = np.asarray(entry["dtIgnore"])[ious][:, order].astype(bool)
    tp = np.cumsum(matched & ~ignored, axis=1, dtype=float)
    fp = np.cumsum(~matched & ~ignored, axis=1, dtype=float)
    last = tp.shape[1] - 1
    aps = []
    for tp_t, fp_t in zip(tp, fp, strict=True):
        recall = tp_t / gt_counted
        # accumulate's precision envelope: the best precision at this recall or beyond.
        precision = np.maximum.accumulate((tp_t / (tp_t + fp_t + np.spacing(1)))[::-1])[::-1]
        index = np.searchsorted(recall, recall_points, side="left")
        # Recall levels never reached score 0, as accumulate leaves them.
        sampled = np.where(index <= last, precision[np.minimum(index, last)], 0.0)
        aps.append(float(sampled.mean()))
    return float(np.mean(aps))


def image_category_aps(evaluator: COCOeval, ious: slice = ALL_IOUS) -> dict[ImageCategory, float]:
    """Per image and category AP from an evaluated COCOeval (all areas, the last detection limit)."""
    params = evaluator.params
    all_areas = list(params.areaRng[0])
    found: dict[ImageCategory, float] = {}
    for entry in evaluator.evalImgs:
        if entry is None or list(entry["aRng"]) != all_areas:
            continue
        ap = _image_ap(entry, np.asarray(params.recThrs, dtype=float), ious)
        if ap is not None:
            found[(int(entry["image_id"]), int(entry["category_id"]))] = ap
    return found


def _summary(evaluator: COCOeval, by_size: bool) -> npt.NDArray[np.float64]:
    """COCOeval's 12 summary numbers (only AP, AP50, AP75 without `by_size`, the rest -1)."""
    with contextlib.redirect_stdout(io.StringIO()):
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


def _evaluate(
    gt: COCO,
    results: Sequence[Mapping[str, Any]],
    iou_type: str,
    image_ids: list[int],
    by_size: bool,
) -> tuple[npt.NDArray[np.float64], COCOeval | None]:
    """COCOeval's summary numbers, and the evaluator (None when there was nothing to evaluate).

    Without `by_size`, one area range and one detection limit instead of four and three
    make COCOeval's Python loops about 4× cheaper, which matters inside reports.
    """
    if not results:
        # loadRes([]) raises; with no detections every AP is 0 (or -1 without ground truth).
        has_gt = bool(gt.getAnnIds(imgIds=image_ids, iscrowd=None))
        return np.full(12, 0.0 if has_gt else -1.0), None
    with contextlib.redirect_stdout(io.StringIO()):
        dt = gt.loadRes(copy.deepcopy(list(results)))
        evaluator = COCOeval(gt, dt, iou_type)
        evaluator.params.imgIds = image_ids
        if not by_size:
            evaluator.params.areaRng = [[0, 1e10]]
            evaluator.params.areaRngLbl = ["all"]
            evaluator.params.maxDets = [100]
        evaluator.evaluate()
    return _summary(evaluator, by_size), evaluator


def _unanswered(gt: COCO, image_ids: list[int]) -> dict[ImageCategory, float]:
    """AP 0 for every image and category with ground truth (nothing was detected)."""
    found: dict[ImageCategory, float] = {}
    for ann in gt.loadAnns(gt.getAnnIds(imgIds=image_ids, iscrowd=False)):
        found[(int(ann["image_id"]), int(ann["category_id"]))] = 0.0
    return found


def _prepared(
    ground_truth: Mapping[str, Any],
    predictions: list[ImagePrediction],
    image_ids: Mapping[str, int],
    category_ids: Sequence[int] | None,
) -> tuple[COCO, list[int], list[CocoResult]]:
    """The ground truth indexed, the evaluated image ids, and the segm results."""
    gt = _quiet_coco(_normalised(ground_truth))
    evaluated = [image_ids[p.image] for p in predictions]
    return gt, evaluated, to_coco_results(predictions, image_ids, category_ids, with_bbox=False)


def _mask_ap_by_image(
    gt: COCO, evaluated: list[int], mask_eval: COCOeval | None, ious: slice = ALL_IOUS
) -> dict[ImageCategory, float]:
    return image_category_aps(mask_eval, ious) if mask_eval else _unanswered(gt, evaluated)


def mask_ap_by_image(
    ground_truth: Mapping[str, Any],
    predictions: list[ImagePrediction],
    image_ids: Mapping[str, int],
    category_ids: Sequence[int] | None = None,
) -> dict[ImageCategory, float]:
    """Mask AP per (image id, category id) with ground truth, from one COCOeval segm pass."""
    return mask_aps_by_image(ground_truth, predictions, image_ids, category_ids)[0]


def mask_aps_by_image(
    ground_truth: Mapping[str, Any],
    predictions: list[ImagePrediction],
    image_ids: Mapping[str, int],
    category_ids: Sequence[int] | None = None,
) -> tuple[dict[ImageCategory, float], dict[ImageCategory, float]]:
    """Mask AP and AP50 per (image id, category id) with ground truth, from one segm pass."""
    gt, evaluated, segm = _prepared(ground_truth, predictions, image_ids, category_ids)
    _, mask_eval = _evaluate(gt, segm, "segm", evaluated, by_size=False)
    return (
        _mask_ap_by_image(gt, evaluated, mask_eval),
        _mask_ap_by_image(gt, evaluated, mask_eval, IOU_50),
    )


def _score(
    ground_truth: Mapping[str, Any],
    predictions: list[ImagePrediction],
    image_ids: Mapping[str, int],
    category_ids: Sequence[int] | None,
    by_size: bool,
) -> tuple[CocoMetrics, COCO, list[int], COCOeval | None]:
    """The metrics, and what per-image figures can be drawn from: the indexed ground
    truth, the evaluated image ids and the segm evaluator."""
    gt, evaluated, segm = _prepared(ground_truth, predictions, image_ids, category_ids)
    bbox = [
        {k: v for k, v in r.items() if k != "segmentation"}
        for r in to_coco_results(predictions, image_ids, category_ids, with_bbox=True)
    ]
    box_stats, _ = _evaluate(gt, bbox, "bbox", evaluated, by_size)
    mask_stats, mask_eval = _evaluate(gt, segm, "segm", evaluated, by_size)
    metrics = CocoMetrics(
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
    return metrics, gt, evaluated, mask_eval


def evaluate_coco(
    ground_truth: Mapping[str, Any],
    predictions: list[ImagePrediction],
    image_ids: Mapping[str, int],
    category_ids: Sequence[int] | None = None,
    *,
    by_size: bool = True,
) -> CocoMetrics:
    """Box and mask AP of `predictions` against a COCO ground-truth dict.

    `image_ids` maps each prediction's image path to its COCO image id;
    `category_ids[class_id]` gives the COCO category of a model class (default class_id + 1).
    AP by object size is left out (-1) unless `by_size`.
    """
    return _score(ground_truth, predictions, image_ids, category_ids, by_size)[0]


def evaluate_coco_by_image(
    ground_truth: Mapping[str, Any],
    predictions: list[ImagePrediction],
    image_ids: Mapping[str, int],
    category_ids: Sequence[int] | None = None,
    *,
    by_size: bool = True,
) -> CocoEvaluation:
    """`evaluate_coco`, plus the mask AP of each image and category from the same pass."""
    metrics, gt, evaluated, mask_eval = _score(
        ground_truth, predictions, image_ids, category_ids, by_size
    )
    return CocoEvaluation(
        metrics,
        _mask_ap_by_image(gt, evaluated, mask_eval),
        _mask_ap_by_image(gt, evaluated, mask_eval, IOU_50),
    )


def _segmentation_area(segmentation: Any, size: tuple[int, int]) -> float:
    """Pixel area of a COCO segmentation: compressed RLE, uncompressed RLE or polygons."""
    if isinstance(segmentation, dict) and isinstance(segmentation.get("counts"), str | bytes):
        return float(mask_area(as_rle(segmentation)))
    rles = mask_utils.frPyObjects(segmentation, *size)
    return float(mask_utils.area(mask_utils.merge(rles) if isinstance(rles, list) else rles))


def _segmentation_box(segmentation: Any, size: tuple[int, int]) -> list[float]:
    """[x, y, width, height] around a COCO segmentation."""
    counts = segmentation.get("counts") if isinstance(segmentation, dict) else None
    if isinstance(counts, str | bytes):
        rle: Any = {
            "size": segmentation["size"],
            "counts": counts.encode("ascii") if isinstance(counts, str) else counts,
        }
    else:
        rles = mask_utils.frPyObjects(segmentation, *size)
        rle = mask_utils.merge(rles) if isinstance(rles, list) else rles
    return [float(v) for v in mask_utils.toBbox(rle)]


def _normalised(dataset: Mapping[str, Any]) -> CocoJson:
    """Annotation ids from 1, iscrowd present, and the keys pycocotools' loadRes expects."""
    sizes = {int(im["id"]): (int(im["height"]), int(im["width"])) for im in dataset["images"]}
    annotations = []
    for n, ann in enumerate(dataset.get("annotations", []), start=1):
        ann = dict(ann, id=n, iscrowd=int(ann.get("iscrowd", 0)))
        if "area" not in ann:
            # pycocotools needs it for the area ranges; segm areas are mask areas.
            ann["area"] = _segmentation_area(ann["segmentation"], sizes[int(ann["image_id"])])
        if "bbox" not in ann:
            # pycocotools' bbox evaluation reads it without a default (KeyError).
            ann["bbox"] = _segmentation_box(ann["segmentation"], sizes[int(ann["image_id"])])
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
    image_ids: Mapping[str, int],
    num_classes: int,
    score_threshold: float,
) -> CocoJson:
    """A COCO ground-truth dict made of a reference model's predictions (score >= threshold).

    Used where a dataset has no annotations: the parent model's predictions
    are the truth that the optimized model is scored against.
    """
    images = [
        {"id": image_ids[p.image], "file_name": p.image, "width": p.width, "height": p.height}
        for p in reference
    ]
    annotations: list[dict[str, object]] = []
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


def load_annotations(path: Path) -> CocoJson:
    """A dataset's stored COCO annotations, checked as at import (pycocotools trusts its input).

    Refused with a message when they list no annotation: COCO AP would be -1 ("nothing
    to average"), which reads as a result but is none.
    """
    try:
        data = check_stored(read_json(Path(path), "a COCO instances JSON"), path.name)
    except DatasetImportError as exc:
        raise DatasetImportError(
            f"The dataset's stored annotations cannot be used: {exc.message}",
            "Import the dataset again (and create its project again).",
        ) from exc
    if not data["annotations"]:
        raise DatasetImportError(
            "The dataset's annotations list no instances, so accuracy cannot be measured "
            "against them (COCO AP has nothing to average).",
            "Use a COCO file with annotations, or a report against the parent model.",
        )
    return data


def category_mapping(
    class_names: Sequence[str], dataset_analysis: Mapping[str, Any]
) -> list[int] | None:
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
