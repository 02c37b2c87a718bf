"""Matching of two sets of instances, and the report's tables built from it.

Matching (the accuracy report's "matches"): class-aware, greedy in
descending score of A, mask IoU (pycocotools RLE) >= the IoU threshold, each
B matched at most once, each A to the B it overlaps most among those left.

The tables' per-image, per-class AP is not computed here: it comes from the
COCOeval pass that scores A against B (`evaluation.evaluate_coco_by_image`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import NotRequired, TypedDict

from segtui.core.predictions import ImagePrediction, Instance, mask_ious

#: (image path, model class id)
ImageClass = tuple[str, int]


class BasicRow(TypedDict):
    """One image that has an A or a B instance."""

    image: str
    a: int
    b: int
    matches: int
    differs: bool


#: One image and class present in A or B; "class" is the class name, a Python keyword.
AdvancedRow = TypedDict(
    "AdvancedRow",
    {
        "image": str,
        "class_id": int,
        "class": str,
        "a": int,
        "b": int,
        "matches": int,
        "precision": float | None,  # matches / A; None ("n/a") when A has none
        "ap": float | None,  # AP of A against B; None ("n/a") when B has none
        "ap50": NotRequired[float | None],  # the same at IoU .50 (reports before it: absent)
        "differs": bool,
    },
)


class ReportTotals(TypedDict):
    images: int
    images_without_instances: int
    a: int
    b: int
    matches: int
    images_differ: int


class ReportTables(TypedDict):
    basic: list[BasicRow]
    advanced: list[AdvancedRow]
    totals: ReportTotals


def match_instances(
    a: Sequence[Instance], b: Sequence[Instance], iou_threshold: float = 0.5
) -> list[tuple[int, int, float]]:
    """Greedy class-aware matches as (index in a, index in b, IoU)."""
    order = sorted(range(len(a)), key=lambda i: -a[i].score)
    ious = mask_ious([i.rle for i in a], [j.rle for j in b])
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


def _advanced_rows(
    image: str,
    a: list[Instance],
    b: list[Instance],
    matched_a: set[int],
    class_names: Sequence[str],
    class_aps: Mapping[ImageClass, float],
) -> list[AdvancedRow]:
    by_class_a: dict[int, int] = defaultdict(int)
    by_class_b: dict[int, int] = defaultdict(int)
    matches_by_class: dict[int, int] = defaultdict(int)
    for i, inst in enumerate(a):
        by_class_a[inst.class_id] += 1
        matches_by_class[inst.class_id] += int(i in matched_a)
    for inst in b:
        by_class_b[inst.class_id] += 1
    rows: list[AdvancedRow] = []
    for cls in sorted(set(by_class_a) | set(by_class_b)):
        ca, cb, cm = by_class_a[cls], by_class_b[cls], matches_by_class[cls]
        ap = class_aps.get((image, cls))
        rows.append(
            {
                "image": image,
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
    return rows


def compare_predictions(
    a_preds: list[ImagePrediction],
    b_preds: list[ImagePrediction],
    class_names: Sequence[str],
    *,
    threshold: float,
    iou: float,
    class_aps: Mapping[ImageClass, float],
) -> ReportTables:
    """Basic and advanced rows and totals for A against B, image by image (A's image order).

    `class_aps` holds the AP of A against B for each image and class where B has instances.
    """
    b_by_image = {p.image: p for p in b_preds}
    basic: list[BasicRow] = []
    advanced: list[AdvancedRow] = []
    totals = ReportTotals(
        images=len(a_preds), images_without_instances=0, a=0, b=0, matches=0, images_differ=0
    )
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
        advanced += _advanced_rows(a_pred.image, a, b, matched_a, class_names, class_aps)
    return {"basic": basic, "advanced": advanced, "totals": totals}
