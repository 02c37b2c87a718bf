"""Matching of two sets of instances, and COCO-style AP on one image and class.

Matching (the accuracy report's "matches"): class-aware, greedy in
descending score of A, mask IoU (pycocotools RLE) >= the IoU threshold, each
B matched at most once, each A to the B it overlaps most among those left.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from pycocotools import mask as mask_utils

from segtui.core.predictions import ImagePrediction, Instance, Rle

COCO_IOUS = np.linspace(0.5, 0.95, 10)
RECALL_POINTS = np.linspace(0.0, 1.0, 101)


def _raw(rle: Rle) -> Rle:
    counts = rle["counts"]
    return {
        "size": rle["size"],
        "counts": counts.encode("ascii") if isinstance(counts, str) else counts,
    }


def mask_ious(a: Sequence[Instance], b: Sequence[Instance]) -> npt.NDArray[np.float64]:
    """|A| × |B| matrix of mask IoUs."""
    if not a or not b:
        return np.zeros((len(a), len(b)))
    ious = mask_utils.iou([_raw(i.rle) for i in a], [_raw(j.rle) for j in b], [0] * len(b))
    return np.asarray(ious, dtype=np.float64).reshape(len(a), len(b))


def match_instances(
    a: Sequence[Instance], b: Sequence[Instance], iou_threshold: float = 0.5
) -> list[tuple[int, int, float]]:
    """Greedy class-aware matches as (index in a, index in b, IoU)."""
    order = sorted(range(len(a)), key=lambda i: -a[i].score)
    ious = mask_ious(a, b)
    taken: set[int] = set()
    matches = []
    for i in order:
        best, best_iou = -1, iou_threshold
        for j in range(len(b)):
            if j in taken or b[j].class_id != a[i].class_id:
                continue
            if ious[i, j] >= best_iou:
                best, best_iou = j, float(ious[i, j])
        if best >= 0:
            taken.add(best)
            matches.append((i, best, best_iou))
    return matches


def image_class_ap(a: Sequence[Instance], b: Sequence[Instance]) -> float | None:
    """COCO-style mask AP (IoU .50:.05:.95, 101-point) of A against B, one image, one class.

    None ("n/a") when B is empty. Follows COCOeval's matching: detections in
    descending score, each to the best-IoU ground truth still free at that threshold.
    """
    if not b:
        return None
    if not a:
        return 0.0
    order = sorted(range(len(a)), key=lambda i: -a[i].score)
    ious = mask_ious([a[i] for i in order], b)
    aps = []
    for threshold in COCO_IOUS:
        taken = np.zeros(len(b), bool)
        tp = np.zeros(len(order), bool)
        for d in range(len(order)):
            best, best_iou = -1, min(threshold, 1 - 1e-10)
            for g in range(len(b)):
                if not taken[g] and ious[d, g] >= best_iou:
                    best, best_iou = g, ious[d, g]
            if best >= 0:
                taken[best] = True
                tp[d] = True
        tps = np.cumsum(tp)
        fps = np.cumsum(~tp)
        recall = tps / len(b)
        precision = tps / np.maximum(tps + fps, np.finfo(float).eps)
        # Make precision monotonically decreasing, then sample at 101 recall points.
        for k in range(len(precision) - 1, 0, -1):
            precision[k - 1] = max(precision[k - 1], precision[k])
        sampled = np.zeros(len(RECALL_POINTS))
        idx = np.searchsorted(recall, RECALL_POINTS, side="left")
        for r, k in enumerate(idx):
            if k < len(precision):
                sampled[r] = precision[k]
        aps.append(sampled.mean())
    return float(np.mean(aps))


def compare_predictions(
    a_preds: list[ImagePrediction],
    b_preds: list[ImagePrediction],
    class_names: list[str],
    *,
    threshold: float,
    iou: float,
) -> dict[str, Any]:
    """Basic and advanced rows and totals for A against B, image by image (same image order)."""
    b_by_image = {p.image: p for p in b_preds}
    basic, advanced = [], []
    totals = {
        "images": len(a_preds),
        "images_without_instances": 0,
        "a": 0,
        "b": 0,
        "matches": 0,
        "images_differ": 0,
    }
    for a_pred in a_preds:
        b_pred = b_by_image.get(a_pred.image)
        a = a_pred.above(threshold)
        b = b_pred.above(threshold) if b_pred else []
        if not a and not b:
            totals["images_without_instances"] += 1
            continue
        matches = match_instances(a, b, iou)
        differs = not (len(matches) == len(a) == len(b))
        totals["a"] += len(a)
        totals["b"] += len(b)
        totals["matches"] += len(matches)
        totals["images_differ"] += int(differs)
        basic.append(
            {
                "image": a_pred.image,
                "a": len(a),
                "b": len(b),
                "matches": len(matches),
                "differs": differs,
            }
        )
        matched_a = {i for i, _, _ in matches}
        by_class_a: dict[int, list[Instance]] = defaultdict(list)
        by_class_b: dict[int, list[Instance]] = defaultdict(list)
        matches_by_class: dict[int, int] = defaultdict(int)
        for i, inst in enumerate(a):
            by_class_a[inst.class_id].append(inst)
            if i in matched_a:
                matches_by_class[inst.class_id] += 1
        for inst in b:
            by_class_b[inst.class_id].append(inst)
        for cls in sorted(set(by_class_a) | set(by_class_b)):
            ca, cb, cm = len(by_class_a[cls]), len(by_class_b[cls]), matches_by_class[cls]
            ap = image_class_ap(by_class_a[cls], by_class_b[cls])
            advanced.append(
                {
                    "image": a_pred.image,
                    "class_id": cls,
                    "class": class_names[cls] if 0 <= cls < len(class_names) else str(cls),
                    "a": ca,
                    "b": cb,
                    "matches": cm,
                    "precision": None if ca == 0 else round(cm / ca, 4),
                    "ap": None if ap is None else round(ap, 4),
                    "differs": not (cm == ca == cb),
                }
            )
    return {"basic": basic, "advanced": advanced, "totals": totals}
