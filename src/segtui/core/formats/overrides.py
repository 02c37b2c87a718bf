"""A model's accuracy settings on its adapter: which keys a format has, the values an
adapter runs with, and a copy of an adapter with the user's values.

The values are plain JSON (what the workspace stores and a deployment's config.json
carries); `segtui.core.accuracy_settings` checks them before they get here. The
deployment runtime applies them with this module too, so it imports nothing outside
`formats`.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from typing import Any, cast

from segtui.core.formats.base import FormatAdapter
from segtui.core.formats.preprocessing import ResizeType
from segtui.core.formats.yolo import YoloSegAdapter

#: Every key, in display order (see README "Accuracy settings").
SETTING_KEYS: tuple[str, ...] = (
    "format",
    "channel_order",
    "mean",
    "scale",
    "resize",
    "pad_value",
    "score_threshold",
    "mask_threshold",
    "nms_iou",
    "class_aware_nms",
    "max_detections",
    "class_names",
)

#: Keys only the formats that run NMS themselves have.
NMS_KEYS: tuple[str, ...] = ("nms_iou", "class_aware_nms")
#: The formats whose decoding runs NMS (the others' graphs do it).
NMS_FORMATS: tuple[str, ...] = ("yolo-seg",)


def keys_for(format_id: str) -> tuple[str, ...]:
    """The keys that apply to a format, in display order."""
    return tuple(k for k in SETTING_KEYS if k not in NMS_KEYS or format_id in NMS_FORMATS)


def adapter_values(adapter: FormatAdapter) -> dict[str, object]:
    """The value of every key that applies, as `adapter` runs (JSON-able)."""
    image = adapter.image_settings
    values: dict[str, object] = {
        "format": adapter.format_id,
        "channel_order": "RGB" if image.rgb else "BGR",
        "mean": [float(v) for v in image.mean_values],
        "scale": [float(v) for v in image.scale_values],
        "resize": image.resize_type,
        "pad_value": float(image.pad_value),
        "score_threshold": float(adapter.min_score),
        "mask_threshold": float(adapter.mask_threshold),
        "max_detections": int(adapter.max_detections),
        "class_names": list(adapter.class_names),
    }
    if isinstance(adapter, YoloSegAdapter):
        values["nms_iou"] = float(adapter.iou_threshold or 0.0)
        values["class_aware_nms"] = adapter.class_aware_nms
    return {key: values[key] for key in keys_for(adapter.format_id) if key in values}


def _channels(value: object) -> tuple[float, float, float]:
    items: list[Any] = list(value) if isinstance(value, list | tuple) else [value] * 3
    first, second, third = (float(v) for v in items)
    return (first, second, third)


def with_values(adapter: FormatAdapter, values: Mapping[str, object]) -> FormatAdapter:
    """A copy of `adapter` running with `values` (keys of SETTING_KEYS; "format" is
    `detect_format`'s business, keys that do not apply are ignored)."""
    out = copy.copy(adapter)
    image = adapter.image_settings
    changes: dict[str, Any] = {}
    if "channel_order" in values:
        changes["rgb"] = str(values["channel_order"]).upper() == "RGB"
    if "mean" in values:
        changes["mean_values"] = _channels(values["mean"])
    if "scale" in values:
        changes["scale_values"] = _channels(values["scale"])
    if "resize" in values:
        changes["resize_type"] = cast(ResizeType, str(values["resize"]))
    if "pad_value" in values:
        changes["pad_value"] = float(cast(float, values["pad_value"]))
    out.image_settings = dataclasses.replace(image, **changes)
    if "score_threshold" in values:
        out.min_score = float(cast(float, values["score_threshold"]))
    if "mask_threshold" in values:
        out.mask_threshold = float(cast(float, values["mask_threshold"]))
    if "max_detections" in values:
        out.max_detections = int(cast(int, values["max_detections"]))
    if "class_names" in values:
        out.class_names = [str(v) for v in cast(list[Any], values["class_names"])]
    if isinstance(out, YoloSegAdapter):
        if "nms_iou" in values:
            out.iou_threshold = float(cast(float, values["nms_iou"]))
        if "class_aware_nms" in values:
            out.class_aware_nms = bool(values["class_aware_nms"])
    return out
