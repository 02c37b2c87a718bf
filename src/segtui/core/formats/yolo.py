"""Ultralytics YOLOv8 / YOLO11 -seg: anchors x (box, class scores, mask coefficients) + prototypes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from segtui.core.formats.base import AdapterConfig, AdapterSettings, FormatAdapter, best_first
from segtui.core.formats.masks import map_to_original, region_around
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
        boxes = found.boxes[kept]
        coefficients = self._predictions(outputs)[4 + self.num_classes :, found.anchors[kept]].T
        raw_protos = np.asarray(outputs[self.roles["prototypes"]], np.float32)
        proto_h, proto_w = int(raw_protos.shape[-2]), int(raw_protos.shape[-1])
        protos = raw_protos.reshape(self.num_coefficients, proto_h, proto_w)
        maps = self._masks(coefficients, protos, boxes, meta)
        # Beyond two prototype cells around the box the cropped map is exactly zero.
        cell = max(meta.input_size[0] / proto_h, meta.input_size[1] / proto_w)
        margin = 2.0 * cell + 2.0
        rles = [
            encode_mask(
                map_to_original(m, meta, region_around(box, meta, margin), self.mask_threshold)
            )
            for m, box in zip(maps, boxes, strict=True)
        ]
        original = meta.box_to_original(boxes)
        return best_first(
            [
                Instance(int(class_id), float(score), clip_box(box, meta.original_size), rle)
                for class_id, score, box, rle in zip(
                    found.class_ids[kept], found.scores[kept], original, rles, strict=True
                )
            ]
        )

    def _masks(
        self,
        coefficients: FloatArray,
        protos: FloatArray,
        input_boxes: npt.NDArray[Any],
        meta: PreprocessMeta,
    ) -> FloatArray:
        """Ultralytics' process_mask up to the crop: sigmoid(coefficients @ protos), zero
        outside each box in prototype pixels. `map_to_original` does the rest."""
        nm, mh, mw = protos.shape
        logits = coefficients @ protos.reshape(nm, -1)
        probs = (1.0 / (1.0 + np.exp(-np.clip(logits, -50, 50)))).reshape(-1, mh, mw)
        in_h, in_w = meta.input_size
        scaled = input_boxes * np.array([mw / in_w, mh / in_h, mw / in_w, mh / in_h])
        cols = np.arange(mw, dtype=np.float32)[None, None, :]
        rows = np.arange(mh, dtype=np.float32)[None, :, None]
        inside = (
            (cols >= scaled[:, 0, None, None])
            & (cols < scaled[:, 2, None, None])
            & (rows >= scaled[:, 1, None, None])
            & (rows < scaled[:, 3, None, None])
        )
        return np.where(inside, probs, 0.0).astype(np.float32)
