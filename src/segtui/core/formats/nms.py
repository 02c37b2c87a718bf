"""Class-aware non-maximum suppression, as Ultralytics does it for YOLO -seg.

Own code, not `cv2.dnn.NMSBoxesBatched`: OpenCV rounds the IoU to float32 (an IoU a
few 1e-9 above the threshold survives), counts two zero-area boxes as overlapping
fully, separates classes by the largest coordinate + 1 (boxes at negative
coordinates then meet other classes) and applies `top_k` before suppression.
tests/test_nms.py shows each case against a brute-force reference.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

#: Ultralytics' class offset: larger than any image, so boxes of different classes never meet.
CLASS_OFFSET = 7680.0


def nms(
    boxes: npt.NDArray[Any],
    scores: npt.NDArray[Any],
    class_ids: npt.NDArray[Any],
    iou_threshold: float,
    max_keep: int | None = None,
) -> npt.NDArray[np.int64]:
    """Class-aware non-maximum suppression; indices of the kept boxes, best first.

    A box is dropped when its IoU with a kept box of its class exceeds `iou_threshold`;
    equal scores keep their input order. Boxes of different classes are shifted apart
    (Ultralytics' trick) so one pass suppresses only within a class. Stopping at
    `max_keep` bounds the work when a weak threshold lets thousands of anchors through.
    """
    shifted = np.asarray(boxes, np.float64) + (
        np.asarray(class_ids, np.float64)[:, None] * CLASS_OFFSET
    )
    x1, y1, x2, y2 = shifted.T
    areas = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    order = np.argsort(-np.asarray(scores), kind="stable")
    keep: list[int] = []
    while order.size and (max_keep is None or len(keep) < max_keep):
        best = int(order[0])
        keep.append(best)
        rest = order[1:]
        iw = np.clip(np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest]), 0, None)
        ih = np.clip(np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest]), 0, None)
        inter = iw * ih
        iou = inter / np.maximum(areas[best] + areas[rest] - inter, 1e-9)
        order = rest[iou <= iou_threshold]
    return np.asarray(keep, np.int64)
