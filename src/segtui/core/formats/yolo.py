"""Ultralytics YOLOv8 / YOLO11 -seg: anchors x (box, class scores, mask coefficients) + prototypes."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from segtui.core.formats.base import AdapterConfig, AdapterSettings, FormatAdapter, best_first
from segtui.core.formats.masks import MapGeometry, map_to_original
from segtui.core.formats.nms import nms
from segtui.core.formats.preprocessing import FloatArray, PreprocessMeta, clip_box
from segtui.core.predictions import Instance, encode_mask

#: Ultralytics' default cap on detections per image after NMS.
YOLO_MAX_DET = 300
#: Ultralytics' default NMS IoU threshold when the model's metadata names none.
YOLO_IOU = 0.7


class YoloSettings(AdapterSettings):
    nms: str
    mask_coefficients: int


@dataclass(frozen=True)
class YoloCandidates:
    """The anchors whose best class scores above the threshold, before NMS."""

    anchors: npt.NDArray[np.int64]  # anchor indices
    boxes: FloatArray  # (x1, y1, x2, y2) in input px
    scores: FloatArray  # the best class's score
    class_ids: npt.NDArray[np.int64]  # the best class


class YoloSegAdapter(FormatAdapter):
    """Ultralytics YOLOv8 / YOLO11 -seg: anchors x (box, class scores, mask coefficients) + prototypes."""

    format_id: ClassVar[str] = "yolo-seg"
    display_name: ClassVar[str] = "Ultralytics YOLO -seg (YOLOv8 / YOLO11)"
    mask_protocol: ClassVar[str] = (
        "Ultralytics process_mask_native: prototype logits upsampled (bilinear) to the "
        "image, > logit(threshold), cropped to the box in image pixels"
    )

    def __init__(
        self,
        config: AdapterConfig,
        *,
        num_classes: int,
        num_coefficients: int,
        class_aware_nms: bool = True,
    ) -> None:
        super().__init__(config)
        self.num_classes = num_classes
        self.num_coefficients = num_coefficients
        #: Ultralytics' default; class-agnostic NMS (its `agnostic_nms`) suppresses across classes.
        self.class_aware_nms = class_aware_nms

    def settings(self) -> YoloSettings:
        return {
            **super().settings(),
            "nms": "class-aware" if self.class_aware_nms else "class-agnostic",
            "mask_coefficients": self.num_coefficients,
        }

    def _predictions(self, outputs: Sequence[npt.NDArray[Any]]) -> FloatArray:
        """The detections output as [4 + classes + coefficients, anchors]."""
        return np.asarray(outputs[self.roles["detections"]], np.float32).reshape(
            4 + self.num_classes + self.num_coefficients, -1
        )

    def candidates(
        self, outputs: Sequence[npt.NDArray[Any]], score_threshold: float
    ) -> YoloCandidates:
        """The anchors NMS chooses from: best class score above `score_threshold`."""
        pred = self._predictions(outputs)
        class_scores = pred[4 : 4 + self.num_classes]
        class_ids = class_scores.argmax(axis=0)
        confidences = class_scores.max(axis=0)
        anchors = np.flatnonzero(confidences > score_threshold)
        cx, cy, bw, bh = pred[:4, anchors]
        boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
        return YoloCandidates(anchors, boxes, confidences[anchors], class_ids[anchors])

    def decode(
        self,
        outputs: Sequence[npt.NDArray[Any]],
        meta: PreprocessMeta,
        score_threshold: float = 0.05,
    ) -> list[Instance]:
        found = self.candidates(outputs, self.threshold(score_threshold))
        if found.anchors.size == 0:
            return []
        iou = self.iou_threshold if self.iou_threshold is not None else YOLO_IOU
        groups = found.class_ids if self.class_aware_nms else np.zeros_like(found.class_ids)
        kept = nms(found.boxes, found.scores, groups, iou, self.max_detections)
        coefficients = self._predictions(outputs)[4 + self.num_classes :, found.anchors[kept]].T
        raw_protos = np.asarray(outputs[self.roles["prototypes"]], np.float32)
        proto_h, proto_w = int(raw_protos.shape[-2]), int(raw_protos.shape[-1])
        protos = raw_protos.reshape(self.num_coefficients, proto_h, proto_w)
        logits = (coefficients @ protos.reshape(self.num_coefficients, -1)).reshape(
            -1, proto_h, proto_w
        )
        boxes = [
            clip_box(box, meta.original_size) for box in meta.box_to_original(found.boxes[kept])
        ]
        geometry = native_geometry(meta, (proto_h, proto_w))
        cut = _logit(self.mask_threshold)
        rles = [
            encode_mask(map_to_original(m, meta, _crop_region(box), cut, geometry))
            for m, box in zip(logits, boxes, strict=True)
        ]
        return best_first(
            [
                Instance(int(class_id), float(score), box, rle)
                for class_id, score, box, rle in zip(
                    found.class_ids[kept], found.scores[kept], boxes, rles, strict=True
                )
            ]
        )


def native_geometry(meta: PreprocessMeta, proto_size: tuple[int, int]) -> MapGeometry:
    """Where the image lies in the prototypes upsampled as Ultralytics' process_mask_native
    does: by the smallest factor (1, 2 or 4) at which the letterbox padding crops on whole
    cells, then its content resized to the image."""
    h, w = meta.original_size
    proto_h, proto_w = proto_size
    stride = max(1, round(meta.input_size[0] / proto_h))  # 4 for every YOLO -seg head
    gain = min(stride * proto_h / h, stride * proto_w / w)
    pad = (stride * proto_h - max(round(h * gain), 1)) | (
        stride * proto_w - max(round(w * gain), 1)
    )
    factor = stride // math.gcd(stride, pad | pad // 2)
    net_h, net_w = factor * proto_h, factor * proto_w
    gain = min(net_h / h, net_w / w)
    content_h, content_w = max(round(h * gain), 1), max(round(w * gain), 1)
    top, left = round((net_h - content_h) / 2 - 0.1), round((net_w - content_w) / 2 - 0.1)
    return MapGeometry((net_h, net_w), (content_h, content_w), (top, left))


def _crop_region(box: tuple[float, float, float, float]) -> tuple[int, int, int, int]:
    """The image pixels Ultralytics' crop_mask keeps: column c with x1 <= c < x2, rows alike."""
    x1, y1, x2, y2 = box
    return (math.ceil(x1), math.ceil(y1), math.ceil(x2), math.ceil(y2))


def _logit(probability: float) -> float:
    """The mask logit that a probability threshold means (0.5 -> 0, Ultralytics' cut)."""
    if probability <= 0.0:
        return -math.inf
    if probability >= 1.0:
        return math.inf
    return math.log(probability / (1.0 - probability))
