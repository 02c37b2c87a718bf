"""Matching semantics of the accuracy report, on hand-built cases with known answers."""

from __future__ import annotations

import contextlib
import copy
import io

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from segtui.core.matching import compare_predictions, image_class_ap, match_instances
from segtui.core.predictions import ImagePrediction, Instance, encode_mask

H, W = 40, 60


def box(x0: int, x1: int, y0: int = 0, y1: int = 20, cls: int = 0, score: float = 0.9) -> Instance:
    mask = np.zeros((H, W), np.uint8)
    mask[y0:y1, x0:x1] = 1
    return Instance(cls, score, (x0, y0, x1, y1), encode_mask(mask))


def test_identical_instances_match_one_to_one() -> None:
    a = [box(0, 20), box(30, 50)]
    assert sorted((i, j) for i, j, _ in match_instances(a, list(a))) == [(0, 0), (1, 1)]


def test_duplicate_detections_match_a_reference_once_highest_score_first() -> None:
    b = [box(0, 20)]
    a = [box(0, 20, score=0.6), box(0, 20, score=0.9)]
    matches = match_instances(a, b)
    assert [(i, j) for i, j, _ in matches] == [(1, 0)]


def test_class_mismatch_never_matches() -> None:
    assert match_instances([box(0, 20, cls=1)], [box(0, 20, cls=2)]) == []


def test_iou_just_under_and_just_over_half() -> None:
    ref = box(0, 20)  # 400 px
    under = box(7, 27)  # inter 13*20=260, union 540 -> 0.4815
    over = box(6, 26)  # inter 14*20=280, union 520 -> 0.5385
    assert match_instances([under], [ref]) == []
    (match,) = match_instances([over], [ref])
    assert match[2] == pytest.approx(280 / 520)


def test_empty_a_or_b() -> None:
    assert match_instances([], [box(0, 20)]) == []
    assert match_instances([box(0, 20)], []) == []
    assert image_class_ap([], [box(0, 20)]) == 0.0
    assert image_class_ap([box(0, 20)], []) is None


def test_rows_and_totals_follow_the_semantics() -> None:
    classes = ["circle", "square", "star"]
    a = [
        ImagePrediction("both.png", W, H, [box(0, 20, cls=0), box(30, 50, cls=1, score=0.05)]),
        ImagePrediction("neither.png", W, H, [box(0, 20, score=0.05)]),  # below threshold only
        ImagePrediction("miss.png", W, H, [box(0, 20, cls=2)]),
    ]
    b = [
        ImagePrediction("both.png", W, H, [box(0, 20, cls=0)]),
        ImagePrediction("neither.png", W, H, []),
        ImagePrediction("miss.png", W, H, [box(0, 20, cls=1)]),
    ]
    report = compare_predictions(a, b, classes, threshold=0.1, iou=0.5)
    assert report["basic"] == [
        {"image": "both.png", "a": 1, "b": 1, "matches": 1, "differs": False},
        {"image": "miss.png", "a": 1, "b": 1, "matches": 0, "differs": True},
    ]
    assert report["totals"] == {
        "images": 3,
        "images_without_instances": 1,
        "a": 2,
        "b": 2,
        "matches": 1,
        "images_differ": 1,
    }
    rows = {(r["image"], r["class"]): r for r in report["advanced"]}
    assert set(rows) == {("both.png", "circle"), ("miss.png", "square"), ("miss.png", "star")}
    assert (
        rows[("both.png", "circle")]["precision"] == 1.0
        and rows[("both.png", "circle")]["ap"] == 1.0
    )
    assert rows[("miss.png", "star")]["ap"] is None  # B has no star: n/a
    assert rows[("miss.png", "star")]["precision"] == 0.0
    assert (
        rows[("miss.png", "square")]["precision"] is None
        and rows[("miss.png", "square")]["ap"] == 0.0
    )


def _pycocotools_ap(a: list[Instance], b: list[Instance]) -> float:
    gt = COCO()
    gt.dataset = {
        "images": [{"id": 1, "width": W, "height": H}],
        "categories": [{"id": 1}],
        "annotations": [
            {
                "id": n + 1,
                "image_id": 1,
                "category_id": 1,
                "segmentation": i.rle,
                "area": float(np.sum(i.rle and 1)),
                "iscrowd": 0,
                "bbox": [0, 0, 1, 1],
            }
            for n, i in enumerate(b)
        ],
    }
    from segtui.core.predictions import mask_area

    for ann, inst in zip(gt.dataset["annotations"], b, strict=True):
        ann["area"] = mask_area(inst.rle)
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        dt = gt.loadRes(
            copy.deepcopy(
                [
                    {"image_id": 1, "category_id": 1, "score": i.score, "segmentation": i.rle}
                    for i in a
                ]
            )
        )
        ev = COCOeval(gt, dt, "segm")
        ev.params.areaRng = [[0, 1e10]]
        ev.params.areaRngLbl = ["all"]
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return float(ev.stats[0])


@pytest.mark.parametrize(
    "a",
    [
        [box(0, 20), box(31, 50, score=0.4)],
        [box(2, 22, score=0.3), box(0, 20, score=0.8), box(40, 58, score=0.5)],
        [box(5, 25)],
    ],
)
def test_image_class_ap_agrees_with_pycocotools(a: list[Instance]) -> None:
    b = [box(0, 20), box(30, 50)]
    assert image_class_ap(a, b) == pytest.approx(_pycocotools_ap(a, b), abs=1e-6)
