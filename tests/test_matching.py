"""Matching semantics of the accuracy report, and its per-image AP, on hand-built cases and real data.

The advanced rows' AP comes from COCOeval's own matching (`COCOeval.evalImgs`). Until it
did, segtui re-implemented that matching; `reference_image_class_ap` below is that
implementation, kept to prove the figures did not change.
"""

from __future__ import annotations

import contextlib
import copy
import io
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from segtui.core.accuracy import ProjectPredictions, predict_project
from segtui.core.evaluation import load_annotations, mask_ap_by_image, predictions_as_ground_truth
from segtui.core.matching import AdvancedRow, match_instances
from segtui.core.predictions import ImagePrediction, Instance, encode_mask, mask_area, mask_ious
from segtui.core.report import (
    annotations_as_predictions,
    compare_with_annotations,
    compare_with_parent,
)
from segtui.core.sample import ensure_sample, sample_available
from segtui.core.types import Precision
from segtui.core.workspace import Workspace

H, W = 40, 60
COCO_IOUS = np.linspace(0.5, 0.95, 10)
RECALL_POINTS = np.linspace(0.0, 1.0, 101)


def box(x0: int, x1: int, y0: int = 0, y1: int = 20, cls: int = 0, score: float = 0.9) -> Instance:
    mask = np.zeros((H, W), np.uint8)
    mask[y0:y1, x0:x1] = 1
    return Instance(cls, score, (x0, y0, x1, y1), encode_mask(mask))


def reference_image_class_ap(a: Sequence[Instance], b: Sequence[Instance]) -> float | None:
    """The per-image, per-class AP segtui computed by hand until it took COCOeval's.

    COCO-style mask AP (IoU .50:.05:.95, 101-point) of A against B; None when B is empty.
    Detections in descending score, each to the best-IoU ground truth still free.
    """
    if not b:
        return None
    if not a:
        return 0.0
    order = sorted(range(len(a)), key=lambda i: -a[i].score)
    ious = mask_ious([a[i].rle for i in order], [g.rle for g in b])
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
        precision: npt.NDArray[np.float64] = tps / np.maximum(tps + fps, np.finfo(float).eps)
        for k in range(len(precision) - 1, 0, -1):
            precision[k - 1] = max(precision[k - 1], precision[k])
        sampled = np.zeros(len(RECALL_POINTS))
        for r, k in enumerate(np.searchsorted(recall, RECALL_POINTS, side="left")):
            if k < len(precision):
                sampled[r] = precision[k]
        aps.append(sampled.mean())
    return float(np.mean(aps))


def evalimgs_ap(a: list[Instance], b: list[Instance]) -> float | None:
    """The AP of A against B on one image and class, as the report now takes it (COCOeval)."""
    truth = predictions_as_ground_truth([ImagePrediction("x.png", W, H, b)], {"x.png": 1}, 1, 0.0)
    aps = mask_ap_by_image(truth, [ImagePrediction("x.png", W, H, a)], {"x.png": 1})
    return aps.get((1, 1))


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
    assert evalimgs_ap([], [box(0, 20)]) == 0.0 == reference_image_class_ap([], [box(0, 20)])
    assert evalimgs_ap([box(0, 20)], []) is None is reference_image_class_ap([box(0, 20)], [])


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
    ids = {"both.png": 1, "neither.png": 2, "miss.png": 3}
    report, metrics = compare_with_parent(a, b, classes, ids, threshold=0.1, iou=0.5)
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
    # One of the two B instances is found, with one false positive of another class.
    assert metrics.mask_ap == pytest.approx(0.5, abs=0.01) and metrics.detections == 2


def _pycocotools_ap(a: list[Instance], b: list[Instance]) -> float:
    """Plain pycocotools on one image and class: its summary AP is that image's AP."""
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
                "area": mask_area(i.rle),
                "iscrowd": 0,
                "bbox": [0, 0, 1, 1],
            }
            for n, i in enumerate(b)
        ],
    }
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
        # Equal scores: the order among them is the results' order in both.
        [box(3, 23, score=0.7), box(0, 20, score=0.7), box(30, 50, score=0.7)],
    ],
)
def test_per_image_ap_agrees_with_pycocotools_and_the_former_implementation(
    a: list[Instance],
) -> None:
    b = [box(0, 20), box(30, 50)]
    taken = evalimgs_ap(a, b)
    assert taken is not None and 0.0 < taken <= 1.0
    assert taken == pytest.approx(_pycocotools_ap(a, b), abs=1e-12)
    assert taken == pytest.approx(reference_image_class_ap(a, b), abs=1e-12)


# -- agreement with the former implementation on the sample's real predictions --------------


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProjectPredictions]:
    """The sample model's predictions on the first 40 annotated sample images."""
    if not sample_available():
        pytest.skip("sample project files are missing")
    ws = Workspace(tmp_path_factory.mktemp("sample") / "ws")
    projects = ensure_sample(ws)
    assert projects is not None
    run = predict_project(
        ws, projects.annotated.id, precision=Precision.F32, threshold=0.05, limit=40
    )
    yield run
    ws.close()


def _check_rows_against_reference(
    rows: list[AdvancedRow],
    a_preds: list[ImagePrediction],
    b_preds: list[ImagePrediction],
    threshold: float,
) -> int:
    """Assert each row's AP equals the former implementation's; return how many lie in (0, 1)."""
    a_by, b_by = {p.image: p for p in a_preds}, {p.image: p for p in b_preds}
    for row in rows:
        a = [i for i in a_by[row["image"]].above(threshold) if i.class_id == row["class_id"]]
        b = [i for i in b_by[row["image"]].above(threshold) if i.class_id == row["class_id"]]
        expected = reference_image_class_ap(a, b)
        assert row["ap"] == (None if expected is None else round(expected, 4)), row
    return sum(1 for r in rows if r["ap"] is not None and 0.0 < r["ap"] < 1.0)


def test_report_ap_agrees_with_the_former_implementation_on_the_sample(
    sample_run: ProjectPredictions,
) -> None:
    run = sample_run
    assert run.dataset.annotations is not None
    truth = load_annotations(Path(run.dataset.annotations))
    ids, classes = run.image_ids, run.model.class_names
    images = [(im.path, ids[im.path]) for im in run.images]
    annotated = annotations_as_predictions(truth, images, run.category_ids, len(classes))
    # On annotations: B = the annotations, A = the model above the threshold.
    tables, _, _ = compare_with_annotations(run, run, truth, threshold=0.1, iou=0.5)
    between = _check_rows_against_reference(tables["advanced"], run.predictions, annotated, 0.1)
    assert len(tables["advanced"]) > 100 and between > 50  # real, imperfect figures
    # Against a "parent": the annotations standing as its predictions, at two thresholds.
    for threshold in (0.1, 0.5):
        tables, _ = compare_with_parent(
            run.predictions, annotated, classes, ids, threshold=threshold, iou=0.5
        )
        assert (
            _check_rows_against_reference(tables["advanced"], run.predictions, annotated, threshold)
            > 50
        )
