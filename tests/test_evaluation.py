"""COCO evaluation through pycocotools, and its pitfalls."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from segtui.core.evaluation import (
    category_mapping,
    evaluate_coco,
    evaluate_coco_by_image,
    predictions_as_ground_truth,
)
from segtui.core.predictions import ImagePrediction, Instance, decode_mask, encode_mask


def _rect(h: int, w: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    mask = np.zeros((h, w), np.uint8)
    mask[y0:y1, x0:x1] = 1
    return mask


def _instance(mask: np.ndarray, class_id: int = 0, score: float = 0.9) -> Instance:
    ys, xs = np.nonzero(mask)
    return Instance(
        class_id,
        score,
        (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)),
        encode_mask(mask),
    )


def _gt(masks: list[np.ndarray], first_id: int = 1) -> dict[str, Any]:
    h, w = masks[0].shape
    anns = []
    for n, m in enumerate(masks):
        ys, xs = np.nonzero(m)
        anns.append(
            {
                "id": first_id + n,
                "image_id": 1,
                "category_id": 1,
                "segmentation": encode_mask(m),
                "bbox": [int(xs.min()), int(ys.min()), int(np.ptp(xs)) + 1, int(np.ptp(ys)) + 1],
                "area": int(m.sum()),
                "iscrowd": 0,
            }
        )
    return {
        "images": [{"id": 1, "file_name": "a.png", "width": w, "height": h}],
        "annotations": anns,
        "categories": [{"id": 1, "name": "thing"}],
    }


def test_rle_round_trip_of_a_c_ordered_mask() -> None:
    mask = _rect(20, 30, 2, 9, 5, 25)
    assert not mask.flags.f_contiguous  # encode_mask must make it Fortran-ordered itself
    rle = encode_mask(mask)
    assert isinstance(rle["counts"], str) and rle["size"] == [20, 30]
    assert (decode_mask(rle) == mask).all()


def test_perfect_predictions_score_one_and_annotation_ids_from_zero_still_work() -> None:
    masks = [_rect(64, 64, 4, 30, 4, 30), _rect(64, 64, 35, 60, 30, 62)]
    pred = ImagePrediction("a.png", 64, 64, [_instance(m) for m in masks])
    for first_id in (1, 0):  # id 0 silently yields AP 0 in raw pycocotools
        metrics = evaluate_coco(_gt(masks, first_id), [pred], {"a.png": 1})
        assert metrics.mask_ap == pytest.approx(1.0)
        assert metrics.box_ap == pytest.approx(1.0)
        assert (metrics.ground_truth, metrics.detections) == (2, 2)


def test_empty_results_score_zero_instead_of_raising() -> None:
    masks = [_rect(32, 32, 2, 20, 2, 20)]
    metrics = evaluate_coco(_gt(masks), [ImagePrediction("a.png", 32, 32, [])], {"a.png": 1})
    assert metrics.mask_ap == 0.0 and metrics.box_ap == 0.0 and metrics.detections == 0


def test_half_overlapping_mask_counts_only_at_low_iou() -> None:
    gt_mask = _rect(40, 40, 0, 20, 0, 20)
    shifted = _rect(40, 40, 0, 20, 7, 27)  # IoU = 13*20 / (27*20) = 0.48... < 0.5
    pred = ImagePrediction("a.png", 40, 40, [_instance(shifted)])
    metrics = evaluate_coco(_gt([gt_mask]), [pred], {"a.png": 1})
    assert metrics.mask_ap50 == 0.0
    closer = _rect(40, 40, 0, 20, 3, 23)  # IoU = 17/23 = 0.739
    pred = ImagePrediction("a.png", 40, 40, [_instance(closer)])
    metrics = evaluate_coco(_gt([gt_mask]), [pred], {"a.png": 1})
    assert metrics.mask_ap50 == pytest.approx(1.0) and 0.0 < metrics.mask_ap < 1.0


def test_segm_area_comes_from_masks_not_boxes() -> None:
    # A thin diagonal mask: its box is large (medium area), its mask is small.
    mask = np.zeros((100, 100), np.uint8)
    for i in range(60):
        mask[i, i : i + 3] = 1
    pred = ImagePrediction("a.png", 100, 100, [_instance(mask)])
    metrics = evaluate_coco(_gt([mask]), [pred], {"a.png": 1})
    assert metrics.mask_ap_small == pytest.approx(1.0)  # 180 px < 32² = small
    assert metrics.mask_ap_medium == -1.0
    # In JSON pycocotools' -1 ("no such objects") is null, never a number.
    data = metrics.to_json()
    assert data["mask_ap_small"] == pytest.approx(1.0)
    assert data["mask_ap_medium"] is None and data["mask_ap_large"] is None


def test_parent_predictions_become_ground_truth_above_threshold() -> None:
    a = _instance(_rect(32, 32, 0, 10, 0, 10), score=0.8)
    low = _instance(_rect(32, 32, 20, 30, 20, 30), score=0.05)
    gt = predictions_as_ground_truth(
        [ImagePrediction("a.png", 32, 32, [a, low])], {"a.png": 7}, 3, 0.1
    )
    assert [ann["id"] for ann in gt["annotations"]] == [1]
    assert gt["annotations"][0]["image_id"] == 7 and gt["annotations"][0]["area"] == 100
    assert len(gt["categories"]) == 3


def test_category_mapping_by_name_then_position() -> None:
    analysis = {"category_ids": [3, 5], "classes": ["dog", "cat"]}
    assert category_mapping(["cat", "dog"], analysis) == [5, 3]
    assert category_mapping(["a", "b"], analysis) == [3, 5]
    assert category_mapping(["a", "b", "c"], analysis) is None


def test_fast_mode_gives_the_same_ap_as_the_full_summary() -> None:
    masks = [
        _rect(64, 64, 4, 30, 4, 30),
        _rect(64, 64, 35, 60, 30, 62),
        _rect(64, 64, 40, 60, 2, 20),
    ]
    shifted = [_rect(64, 64, 6, 30, 4, 30), _rect(64, 64, 35, 58, 34, 62)]
    pred = ImagePrediction(
        "a.png", 64, 64, [_instance(m, score=0.9 - 0.1 * n) for n, m in enumerate(shifted)]
    )
    full = evaluate_coco(_gt(masks), [pred], {"a.png": 1})
    fast = evaluate_coco(_gt(masks), [pred], {"a.png": 1}, by_size=False)
    assert 0 < full.mask_ap < 1
    for key in ("mask_ap", "mask_ap50", "mask_ap75", "box_ap", "box_ap50", "box_ap75"):
        assert getattr(fast, key) == pytest.approx(getattr(full, key)), key
    assert fast.mask_ap_small == -1.0  # not computed in fast mode


def test_polygon_ground_truth_without_area_is_evaluated() -> None:
    # COCO files often give polygons and leave out "area"; pycocotools needs it for the
    # area ranges, so segtui fills it from the polygon (at the image's size).
    mask = _rect(64, 64, 10, 40, 8, 48)
    truth = _gt([mask])
    truth["annotations"][0].pop("area")
    truth["annotations"][0]["segmentation"] = [[8, 10, 48, 10, 48, 40, 8, 40]]
    metrics = evaluate_coco(
        truth, [ImagePrediction("a.png", 64, 64, [_instance(mask)])], {"a.png": 1}
    )
    assert metrics.mask_ap > 0.99 and metrics.box_ap > 0.99


def test_per_image_ap_comes_from_the_same_pass_and_treats_crowds_as_coco_does() -> None:
    masks = [_rect(64, 64, 4, 30, 4, 30), _rect(64, 64, 35, 60, 30, 62)]
    truth = _gt(masks)
    crowd = dict(truth["annotations"][1], id=3, category_id=2, iscrowd=1)
    truth["annotations"].append(crowd)
    truth["categories"].append({"id": 2, "name": "crowd"})
    # One of the two things found (and, shifted, only at low IoU); a detection on the crowd.
    found = _instance(_rect(64, 64, 6, 30, 4, 30), score=0.9)
    on_crowd = _instance(masks[1], class_id=1, score=0.8)
    scored = evaluate_coco_by_image(
        truth, [ImagePrediction("a.png", 64, 64, [found, on_crowd])], {"a.png": 1}, by_size=False
    )
    per_image = scored.mask_ap_by_image
    # A crowd-only category has nothing to recall: no AP ("n/a"), as COCO leaves it out.
    assert set(per_image) == {(1, 1)}
    # One image: its AP is the summary's (the crowd category does not count there either).
    assert per_image[(1, 1)] == pytest.approx(scored.metrics.mask_ap, abs=1e-12)
    assert 0.0 < per_image[(1, 1)] < 0.5
