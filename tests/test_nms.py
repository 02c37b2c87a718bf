"""Class-aware NMS against a brute-force reference, and why OpenCV's NMS does not replace it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import openvino as ov
import pytest
from tiny_models import Det, build_yolo_seg

from segtui.core.formats import YoloSegAdapter, detect_format, nms

Boxes = npt.NDArray[np.float32]


def _iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Plain IoU of two (x1, y1, x2, y2) boxes; boxes without area overlap nothing."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    area_a = max(0.0, a[2] - a[0]) * max(0.0, a[3] - a[1])
    area_b = max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1])
    union = area_a + area_b - inter
    return inter / union if union > 0 else 0.0


def _reference_nms(
    boxes: Boxes,
    scores: npt.NDArray[np.float32],
    class_ids: npt.NDArray[np.int64],
    iou_threshold: float,
    max_keep: int | None = None,
) -> list[int]:
    """NMS as defined, one class at a time: a box survives when its IoU with every better
    kept box of its class is at most the threshold (equal scores: input order first);
    then all survivors best first, at most `max_keep`."""
    rows = [[float(v) for v in box] for box in boxes]
    by_score = sorted(range(len(rows)), key=lambda i: (-float(scores[i]), i))
    kept: list[int] = []
    for cls in sorted(set(class_ids.tolist())):
        chosen: list[int] = []
        for i in (i for i in by_score if class_ids[i] == cls):
            if all(_iou(rows[i], rows[j]) <= iou_threshold for j in chosen):
                chosen.append(i)
        kept += chosen
    kept.sort(key=by_score.index)
    return kept if max_keep is None else kept[:max_keep]


def _random_case(
    seed: int, count: int = 80
) -> tuple[Boxes, npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """Crowded boxes on a coarse grid (exact duplicates, negative coordinates, fractional
    sizes), few distinct scores (ties) and three classes."""
    rng = np.random.default_rng(seed)
    corners = rng.integers(-2, 6, (count, 2)) * 4.0
    sizes = rng.choice([24.0, 28.0, 32.5], (count, 2))
    boxes = np.concatenate([corners, corners + sizes], axis=1).astype(np.float32)
    scores = rng.choice([0.3, 0.5, 0.7, 0.9], count).astype(np.float32)
    return boxes, scores, rng.integers(0, 3, count)


@pytest.mark.parametrize("seed", range(8))
def test_nms_matches_the_reference_on_crowded_random_boxes(seed: int) -> None:
    boxes, scores, class_ids = _random_case(seed)
    for iou in (0.3, 0.5, 0.7):
        for max_keep in (None, 7):
            expected = _reference_nms(boxes, scores, class_ids, iou, max_keep)
            assert nms(boxes, scores, class_ids, iou, max_keep).tolist() == expected
    # The cases are not trivial: many boxes go, and ignoring classes would keep fewer.
    kept = _reference_nms(boxes, scores, class_ids, 0.5)
    assert 10 < len(kept) < 60
    assert len(_reference_nms(boxes, scores, np.zeros_like(class_ids), 0.5)) < len(kept)


def test_nms_is_class_aware_keeps_ties_in_order_and_stops_at_max_keep() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [0, 0, 10, 10], [20, 20, 30, 30]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.6], np.float32)
    classes = np.array([0, 0, 1, 0])
    assert nms(boxes, scores, classes, 0.7).tolist() == [0, 2, 3]
    assert nms(boxes, scores, classes, 0.9).tolist() == [0, 1, 2, 3]  # IoU 0.82 survives
    assert nms(boxes, scores, classes, 0.7, max_keep=2).tolist() == [0, 2]
    # Equal scores: the earlier box wins and suppresses its duplicate.
    same = np.full(4, 0.5, np.float32)
    assert nms(boxes, same, np.zeros(4, np.int64), 0.5).tolist() == [0, 3]
    # An IoU of exactly the threshold is kept; just above it is not.
    halves = np.array([[0, 0, 10, 10], [0, 0, 10, 5]], np.float32)
    pair = np.array([0.9, 0.8], np.float32)
    assert nms(halves, pair, np.zeros(2, np.int64), 0.5).tolist() == [0, 1]
    assert nms(halves, pair, np.zeros(2, np.int64), 0.49).tolist() == [0]


def test_nms_on_a_yolo_models_real_outputs_matches_the_reference(tmp_path: Path) -> None:
    # Eight objects, each found by five anchors with jittered boxes and mixed classes.
    rng = np.random.default_rng(11)
    detections = []
    for x1, y1 in rng.uniform(-8, 56, (8, 2)):
        w, h = rng.uniform(8, 40, 2)
        for jitter in rng.uniform(-2, 2, (5, 4)):
            left, top, right, bottom = (
                float(v) for v in np.array([x1, y1, x1 + w, y1 + h]) + jitter
            )
            score = round(float(rng.uniform(0.1, 1.0)), 1)  # one decimal: many ties
            detections.append(Det(int(rng.integers(0, 3)), score, (left, top, right, bottom), None))
    path = build_yolo_seg(
        tmp_path / "y.xml", (64, 96), detections, num_classes=3, num_coefficients=48
    )
    core = ov.Core()
    model = core.read_model(path)
    adapter = detect_format(model, path)
    assert isinstance(adapter, YoloSegAdapter)
    image = np.random.default_rng(0).integers(0, 256, (80, 100, 3), dtype=np.uint8)
    inputs, meta = adapter.preprocess(image)
    compiled = core.compile_model(model, "CPU")
    result = compiled(inputs)
    outputs = [np.asarray(result[port]) for port in compiled.outputs]

    found = adapter.candidates(outputs, 0.05)
    assert len(found.anchors) == 40
    expected = _reference_nms(found.boxes, found.scores, found.class_ids, 0.7)
    assert 10 < len(expected) < 40  # real suppression happened
    assert nms(found.boxes, found.scores, found.class_ids, 0.7, 300).tolist() == expected
    # And decoding keeps exactly those, best first.
    instances = adapter.decode(outputs, meta, 0.05)
    assert [(i.class_id, i.score) for i in instances] == [
        (int(found.class_ids[k]), float(found.scores[k])) for k in expected
    ]
    original = meta.box_to_original(found.boxes[expected])
    np.testing.assert_allclose(
        [i.box for i in instances], np.clip(original, 0, [100, 80, 100, 80]), atol=1e-9
    )


def _opencv_nms(
    boxes: Boxes,
    scores: npt.NDArray[np.float32],
    class_ids: npt.NDArray[np.int64],
    iou_threshold: float,
    max_keep: int | None = None,
) -> list[int]:
    """The closest drop-in: float (x, y, w, h) boxes, every candidate let through (OpenCV
    wants a score threshold >= 0 and keeps scores above it), top_k as the cap."""
    xywh = np.asarray(boxes, np.float64).copy()
    xywh[:, 2:] -= xywh[:, :2]
    kept = cv2.dnn.NMSBoxesBatched(
        xywh.tolist(), scores.tolist(), class_ids.tolist(), 0.0, iou_threshold, 1.0, max_keep or 0
    )
    return [int(i) for i in np.asarray(kept).reshape(-1)]


#: (why, boxes, scores, class ids, IoU threshold, max_keep) where OpenCV 5.0 differs.
_OPENCV_DIFFERS = [
    (
        # IoU 0.7000000021 > 0.7; OpenCV rounds the IoU to float32 (0.70000000) and keeps it.
        "float32 IoU",
        [[0, 0, 61, 30], [0, 0, 59, 21.711864471435547]],
        [0.9, 0.8],
        [0, 0],
        0.7,
        None,
    ),
    (
        # Two boxes without area overlap nothing; OpenCV counts their IoU as 1.
        "zero-area boxes",
        [[5, 5, 5, 9], [5, 5, 5, 9]],
        [0.9, 0.8],
        [0, 0],
        0.5,
        None,
    ),
    (
        # OpenCV offsets classes by the largest coordinate + 1 (101 here): the class-1 box
        # at negative coordinates lands on the class-0 box and is suppressed.
        "class offset",
        [[90, 90, 100, 100], [-11, -11, -1, -1]],
        [0.9, 0.8],
        [0, 1],
        0.5,
        None,
    ),
    (
        # top_k cuts the candidates before suppression, not the kept boxes.
        "top_k",
        [[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30]],
        [0.9, 0.8, 0.7],
        [0, 0, 0],
        0.5,
        2,
    ),
]


@pytest.mark.parametrize(
    ("boxes", "scores", "class_ids", "iou", "max_keep"),
    [case[1:] for case in _OPENCV_DIFFERS],
    ids=[case[0] for case in _OPENCV_DIFFERS],
)
def test_opencv_nms_is_no_drop_in_replacement(
    boxes: list[list[float]],
    scores: list[float],
    class_ids: list[int],
    iou: float,
    max_keep: int | None,
) -> None:
    # Why segtui keeps its own NMS: on each case OpenCV keeps other boxes than the definition.
    # Should a new OpenCV agree on all of them, cv2.dnn.NMSBoxesBatched could take over.
    box_array = np.array(boxes, np.float32)
    score_array = np.array(scores, np.float32)
    class_array = np.array(class_ids, np.int64)
    expected = _reference_nms(box_array, score_array, class_array, iou, max_keep)
    assert nms(box_array, score_array, class_array, iou, max_keep).tolist() == expected
    assert _opencv_nms(box_array, score_array, class_array, iou, max_keep) != expected


def test_opencv_nms_agrees_on_ordinary_boxes() -> None:
    # The differences above are edge cases: on ordinary boxes (inside the image) they agree.
    for seed in range(8):
        boxes, scores, class_ids = _random_case(seed)
        boxes += 8.0
        for iou in (0.3, 0.5, 0.7):
            expected = _reference_nms(boxes, scores, class_ids, iou)
            assert _opencv_nms(boxes, scores, class_ids, iou) == expected
