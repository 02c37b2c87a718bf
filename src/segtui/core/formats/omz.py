"""OMZ Mask R-CNN and its Model API / OTX form: labels, boxes with scores, one mask per box."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import numpy as np
import numpy.typing as npt

from segtui.core.formats.base import AdapterConfig, AdapterSettings, FormatAdapter, best_first
from segtui.core.formats.masks import map_to_original
from segtui.core.formats.paste import paste_reference
from segtui.core.formats.preprocessing import FloatArray, PreprocessMeta, clip_box
from segtui.core.predictions import Instance, encode_mask


class MaskRcnnSettings(AdapterSettings):
    mask_kind: Literal["input-size", "per-box"]


class OmzMaskRcnnAdapter(FormatAdapter):
    """OMZ Mask R-CNN: labels [N], boxes [N,5] with the score, masks [N,S,S] per box."""

    format_id: ClassVar[str] = "omz-maskrcnn"
    display_name: ClassVar[str] = "OMZ Mask R-CNN (instance-segmentation-security)"
    mask_protocol: ClassVar[str] = (
        "Detectron / Accuracy Checker paste: SxS map padded by one cell, box expanded by "
        "(S+2)/S and truncated to integers, map resized to it (bilinear), > threshold; "
        "input-size masks resampled through the preprocessing"
    )

    def __init__(self, config: AdapterConfig, *, mask_shape: tuple[int | None, int | None]) -> None:
        super().__init__(config)
        self.mask_shape = mask_shape

    @property
    def full_input_masks(self) -> bool:
        """Masks that already cover the whole network input (some OTX exports) are not pasted."""
        return self.mask_shape == self.input_size

    @property
    def mask_size(self) -> int | None:
        if self.full_input_masks:
            return None
        return self.mask_shape[0]

    def settings(self) -> MaskRcnnSettings:
        return {
            **super().settings(),
            "mask_kind": "input-size" if self.full_input_masks else "per-box",
        }

    def decode(
        self,
        outputs: Sequence[npt.NDArray[Any]],
        meta: PreprocessMeta,
        score_threshold: float = 0.05,
    ) -> list[Instance]:
        labels = np.asarray(outputs[self.roles["labels"]]).reshape(-1)
        boxes = np.asarray(outputs[self.roles["boxes"]], np.float32)
        masks = np.asarray(outputs[self.roles["masks"]], np.float32)
        boxes = boxes.reshape(-1, boxes.shape[-1])
        masks = masks.reshape(-1, *masks.shape[-2:])
        count = min(len(labels), len(boxes), len(masks))
        scores = boxes[:count, 4]
        # Padding rows carry score 0 and an empty box; a negative label marks them too.
        keep = (scores > 0) & (scores >= self.threshold(score_threshold)) & (labels[:count] >= 0)
        keep &= (boxes[:count, 2] > boxes[:count, 0]) & (boxes[:count, 3] > boxes[:count, 1])
        index = self.capped(np.flatnonzero(keep), scores)
        return best_first(
            self._instances(
                labels[index].astype(np.int64), scores[index], boxes[index, :4], masks[index], meta
            )
        )

    def _instances(
        self,
        class_ids: npt.NDArray[np.int64],
        scores: npt.NDArray[Any],
        input_boxes: npt.NDArray[Any],
        masks: FloatArray,
        meta: PreprocessMeta,
    ) -> list[Instance]:
        """Shared by both OMZ generations once each has picked its rows and mask channels."""
        original = meta.box_to_original(input_boxes)
        if masks.shape[1:] == meta.input_size:
            # Input-size masks (some OTX exports) are not confined to their box.
            rles = [
                encode_mask(map_to_original(m, meta, threshold=self.mask_threshold)) for m in masks
            ]
        else:
            rles = [
                encode_mask(paste_reference(m, b, meta.original_size, self.mask_threshold))
                for m, b in zip(masks, original, strict=True)
            ]
        return [
            Instance(int(c), float(s), clip_box(b, meta.original_size), rle)
            for c, s, b, rle in zip(class_ids, scores, original, rles, strict=True)
        ]


class ModelApiMaskRcnnAdapter(OmzMaskRcnnAdapter):
    """OTX / Model API Mask R-CNN: batched outputs and preprocessing from rt_info model_info."""

    format_id: ClassVar[str] = "model-api-maskrcnn"
    display_name: ClassVar[str] = "Model API / OTX Mask R-CNN (rt_info model_info)"
