"""Older OMZ Mask R-CNN (-0050, -0049, -1025): an im_info input and a mask channel per class."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from segtui.core.formats.base import AdapterConfig, best_first
from segtui.core.formats.omz import MaskRcnnSettings, OmzMaskRcnnAdapter
from segtui.core.formats.preprocessing import PreprocessMeta
from segtui.core.predictions import Instance


class LegacyMaskRcnnSettings(MaskRcnnSettings):
    info_input: str
    im_info: str
    background_class: int


class OmzMaskRcnnLegacyAdapter(OmzMaskRcnnAdapter):
    """Older OMZ Mask R-CNN (-0050, -0049, -1025): im_info input, background class 0."""

    format_id: ClassVar[str] = "omz-maskrcnn-legacy"
    display_name: ClassVar[str] = "OMZ Mask R-CNN, older (im_data + im_info)"

    def __init__(
        self,
        config: AdapterConfig,
        *,
        mask_shape: tuple[int | None, int | None],
        info_input: str,
    ) -> None:
        super().__init__(config, mask_shape=mask_shape)
        self.info_input = info_input

    def preprocess(
        self, image_bgr: npt.NDArray[Any]
    ) -> tuple[dict[str, npt.NDArray[Any]], PreprocessMeta]:
        inputs, meta = super().preprocess(image_bgr)
        # OMZ's demo passes the resized (unpadded) size and scale 1: boxes come back in
        # input pixels and the graph clips proposals to the real image content.
        content_h, content_w = meta.content_size
        inputs[self.info_input] = np.asarray([[content_h, content_w, 1.0]], np.float32)
        return inputs, meta

    def settings(self) -> LegacyMaskRcnnSettings:
        return {
            **super().settings(),
            "info_input": self.info_input,
            "im_info": "[resized_h, resized_w, 1]",
            "background_class": 0,
        }

    def decode(
        self,
        outputs: Sequence[npt.NDArray[Any]],
        meta: PreprocessMeta,
        score_threshold: float = 0.05,
    ) -> list[Instance]:
        classes = np.asarray(outputs[self.roles["classes"]]).reshape(-1)
        scores = np.asarray(outputs[self.roles["scores"]], np.float32).reshape(-1)
        boxes = np.asarray(outputs[self.roles["boxes"]], np.float32).reshape(-1, 4)
        raw_masks = np.asarray(outputs[self.roles["masks"]], np.float32)
        raw_masks = raw_masks.reshape(-1, *raw_masks.shape[-3:])
        count = min(len(classes), len(scores), len(boxes), len(raw_masks))
        class_ids = np.rint(classes[:count]).astype(np.int64)
        # Class 0 is the background (and the label of padding rows).
        keep = (class_ids > 0) & (class_ids < raw_masks.shape[1])
        keep &= (scores[:count] > 0) & (scores[:count] >= self.threshold(score_threshold))
        keep &= (boxes[:count, 2] > boxes[:count, 0]) & (boxes[:count, 3] > boxes[:count, 1])
        index = self.capped(np.flatnonzero(keep), scores[:count])
        masks = raw_masks[index, class_ids[index]]  # each row's own class channel
        return best_first(
            self._instances(class_ids[index] - 1, scores[index], boxes[index], masks, meta)
        )
