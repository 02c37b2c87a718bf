"""Which format a model is: ranks and shapes first, then its metadata; tensor names only
break ties. Each matcher returns a ready adapter or None."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import openvino as ov

from segtui.core.errors import UnsupportedModelError
from segtui.core.formats.base import (
    MAX_DETECTIONS,
    AdapterConfig,
    FormatAdapter,
    PortInfo,
    port_info,
)
from segtui.core.formats.metadata import (
    COCO_CLASSES,
    MODEL_API_KEYS,
    ExportMetadata,
    ModelInfo,
    names_from_model_info,
    parse_bool,
    parse_float,
    parse_floats,
    read_metadata_yaml,
    read_model_info,
)
from segtui.core.formats.mismatch import mismatch
from segtui.core.formats.omz import ModelApiMaskRcnnAdapter, OmzMaskRcnnAdapter
from segtui.core.formats.omz_legacy import OmzMaskRcnnLegacyAdapter
from segtui.core.formats.overrides import with_values
from segtui.core.formats.preprocessing import RESIZE_TYPES, ImageSettings, ResizeType
from segtui.core.formats.yolo import YOLO_IOU, YOLO_MAX_DET, YoloSegAdapter

#: (format id, one-line description) of every format segtui reads, for messages and help.
SUPPORTED_FORMATS: list[tuple[str, str]] = [
    (
        "omz-maskrcnn",
        "OMZ Mask R-CNN: image [1,3,H,W] -> labels [N], boxes [N,5], masks [N,S,S]",
    ),
    (
        "omz-maskrcnn-legacy",
        "older OMZ Mask R-CNN: im_data [1,3,H,W] + im_info [1,3] -> classes, scores, "
        "boxes [N,4], raw_masks [N,C,S,S]",
    ),
    (
        "yolo-seg",
        "Ultralytics YOLOv8/YOLO11 -seg: [1,4+nc+32,A] detections + [1,32,H/4,W/4] prototypes",
    ),
    (
        "model-api-maskrcnn",
        "Model API / OTX Mask R-CNN: labels [1,N], boxes [1,N,5], masks [1,N,S,S] or "
        "[1,N,H,W], settings from rt_info model_info",
    ),
]

#: Outputs OTX adds for explainability; they are never detections.
_XAI_OUTPUT_NAMES = ("saliency_map", "feature_vector")


@dataclass
class _Found:
    """What detection learned about a model before picking an adapter."""

    inputs: list[PortInfo]
    outputs: list[PortInfo]
    model_info: ModelInfo
    metadata: ExportMetadata
    class_names: list[str] | None  # given by the user, else from the metadata
    candidates: list[PortInfo] = field(default_factory=list)  # outputs minus XAI extras


def _describe(found: _Found) -> str:
    ins = ", ".join(p.describe() for p in found.inputs) or "none"
    outs = ", ".join(p.describe() for p in found.outputs) or "none"
    return f"inputs {ins}; outputs {outs}"


def _unsupported(found: _Found, why: str = "") -> UnsupportedModelError:
    reason = f" ({why})" if why else ""
    supported = "; ".join(f"{fid} ({desc})" for fid, desc in SUPPORTED_FORMATS)
    return UnsupportedModelError(
        f"Not an instance-segmentation model segtui can read{reason}: {_describe(found)}. "
        f"Supported: {supported}.",
        "Export the model in one of these formats, or check that you picked the right file.",
    )


def _image_input(port: PortInfo) -> bool:
    return port.rank == 4 and port.shape[0] == 1 and port.shape[1] == 3


def _pick(ports: list[PortInfo], fragments: tuple[str, ...]) -> PortInfo | None:
    """The one port that fits; names break a tie, else None (ambiguous)."""
    if len(ports) == 1:
        return ports[0]
    named = [p for p in ports if p.named_like(*fragments)]
    return named[0] if len(named) == 1 else None


def _resize_type(text: str | None, default: ResizeType) -> ResizeType:
    return next((kind for kind in RESIZE_TYPES if kind == text), default)


def _image_settings(
    image: PortInfo, info: ModelInfo, default_resize: ResizeType, *, rgb: bool = False
) -> ImageSettings:
    _, _, height, width = image.shape
    assert height is not None and width is not None  # inputs were checked static
    return ImageSettings(
        input_size=(height, width),
        resize_type=_resize_type(info.get("resize_type"), default_resize),
        rgb=parse_bool(info.get("reverse_input_channels"), rgb),
        mean_values=parse_floats(info.get("mean_values"), (0.0, 0.0, 0.0)),
        scale_values=parse_floats(info.get("scale_values"), (1.0, 1.0, 1.0)),
        pad_value=parse_float(info.get("pad_value"), 0.0),
    )


def _class_names(found: _Found, count: int | None) -> list[str]:
    """Given names, then metadata.yaml, then rt_info labels, then COCO's (80) or generated ones."""
    names = (
        list(found.class_names)
        if found.class_names
        else found.metadata.names or names_from_model_info(found.model_info)
    )
    if names:
        return names
    if count is None or count == len(COCO_CLASSES):
        return list(COCO_CLASSES)
    return [f"class {i}" for i in range(count)]


def _config(
    found: _Found,
    image: PortInfo,
    settings: ImageSettings,
    roles: dict[str, int],
    *,
    class_count: int | None,
    confidence: float,
    iou: float | None,
    max_detections: int,
) -> AdapterConfig:
    """The adapter's common part; model_info's thresholds override the format's defaults."""
    info = found.model_info
    return AdapterConfig(
        image.name,
        settings,
        roles,
        _class_names(found, class_count),
        confidence_threshold=parse_float(info.get("confidence_threshold"), confidence),
        iou_threshold=parse_float(info.get("iou_threshold"), iou) if iou is not None else None,
        model_info=found.model_info,
        max_detections=max_detections,
    )


def _rows(port: PortInfo) -> int:
    """How many detections an output of one row per detection holds at most (its bound)."""
    bound = port.bounds[-2] if len(port.bounds) >= 2 else None
    return bound if bound is not None and 0 < bound <= MAX_DETECTIONS else MAX_DETECTIONS


def _match_yolo(found: _Found) -> FormatAdapter | None:
    images = [p for p in found.inputs if _image_input(p)]
    if len(found.inputs) != 1 or len(images) != 1 or len(found.candidates) != 2:
        return None
    det = [p for p in found.candidates if p.rank == 3]
    proto = [p for p in found.candidates if p.rank == 4]
    if len(det) != 1 or len(proto) != 1:
        return None
    channels, nm = det[0].shape[1], proto[0].shape[1]
    if det[0].shape[0] not in (1, None) or channels is None or nm is None:
        return None
    num_classes = channels - 4 - nm
    if num_classes < 1:
        return None
    # Ultralytics' preprocessing is fixed whatever its rt_info says (Model API's
    # fit_to_window_letterbox only approximates it): centred letterbox, 114, RGB, /255.
    settings = ImageSettings(
        _image_settings(images[0], {}, "letterbox").input_size,
        "letterbox",
        rgb=True,
        scale_values=(255.0, 255.0, 255.0),
        pad_value=parse_float(found.model_info.get("pad_value"), 114.0),
    )
    roles = {"detections": det[0].index, "prototypes": proto[0].index}
    return YoloSegAdapter(
        _config(
            found,
            images[0],
            settings,
            roles,
            class_count=num_classes,
            confidence=0.25,
            iou=YOLO_IOU,
            max_detections=YOLO_MAX_DET,
        ),
        num_classes=num_classes,
        num_coefficients=nm,
    )


def _match_legacy(found: _Found) -> FormatAdapter | None:
    if len(found.inputs) != 2:
        return None
    images = [p for p in found.inputs if _image_input(p)]
    infos = [p for p in found.inputs if p.rank == 2 and p.shape[-1] == 3]
    if len(images) != 1 or len(infos) != 1:
        return None
    vectors = [p for p in found.candidates if p.rank == 1]
    boxes = [p for p in found.candidates if p.rank == 2 and p.shape[-1] == 4]
    masks = [p for p in found.candidates if p.rank == 4]
    if len(vectors) != 2 or len(boxes) != 1 or len(masks) != 1:
        return None
    # Both are [N]: an integer type marks the classes, else the names, else graph order.
    ints = [p for p in vectors if p.is_integer]
    classes = ints[0] if len(ints) == 1 else _pick(vectors, ("class", "label")) or vectors[0]
    scores = next(p for p in vectors if p is not classes)
    channels = masks[0].shape[1]
    settings = _image_settings(images[0], found.model_info, "fit_to_window")
    roles = {
        "classes": classes.index,
        "scores": scores.index,
        "boxes": boxes[0].index,
        "masks": masks[0].index,
    }
    # Channel 0 of the masks is the background.
    class_count = None if channels is None else channels - 1
    config = _config(
        found,
        images[0],
        settings,
        roles,
        class_count=class_count,
        confidence=0.5,
        iou=None,
        max_detections=_rows(boxes[0]),
    )
    return OmzMaskRcnnLegacyAdapter(
        config,
        mask_shape=(masks[0].shape[2], masks[0].shape[3]),
        info_input=infos[0].name,
    )


def _match_maskrcnn(found: _Found, model_api: bool | None = None) -> FormatAdapter | None:
    """OMZ or Model API Mask R-CNN; `model_api` forces the one (else batched outputs or
    Model API's model_info keys say which)."""
    images = [p for p in found.inputs if _image_input(p)]
    if len(found.inputs) != 1 or len(images) != 1:
        return None
    for batched in (False, True):
        lead = 1 if batched else 0
        if batched and any(p.shape[:1] not in ((1,), (None,)) for p in found.candidates):
            continue
        labels = [p for p in found.candidates if p.rank == 1 + lead]
        boxes = [p for p in found.candidates if p.rank == 2 + lead and p.shape[-1] == 5]
        masks = [p for p in found.candidates if p.rank == 3 + lead]
        labels = [p for p in labels if p not in boxes]
        if len(boxes) != 1 or len(masks) != 1 or not labels:
            continue
        label = _pick(labels, ("label", "class"))
        if label is None:
            continue
        if model_api is None:
            model_api = batched or any(k in found.model_info for k in MODEL_API_KEYS)
        cls = ModelApiMaskRcnnAdapter if model_api else OmzMaskRcnnAdapter
        settings = _image_settings(images[0], found.model_info, "standard")
        roles = {"labels": label.index, "boxes": boxes[0].index, "masks": masks[0].index}
        config = _config(
            found,
            images[0],
            settings,
            roles,
            class_count=None,
            confidence=0.5,
            iou=None,
            max_detections=_rows(boxes[0]),
        )
        return cls(config, mask_shape=(masks[0].shape[-2], masks[0].shape[-1]))
    return None


_MATCHERS: tuple[Callable[[_Found], FormatAdapter | None], ...] = (
    _match_yolo,
    _match_legacy,
    _match_maskrcnn,
)

#: Each format's own matcher, for a format the user chose.
_FORMAT_MATCHERS: dict[str, Callable[[_Found], FormatAdapter | None]] = {
    "omz-maskrcnn": lambda found: _match_maskrcnn(found, model_api=False),
    "omz-maskrcnn-legacy": _match_legacy,
    "yolo-seg": _match_yolo,
    "model-api-maskrcnn": lambda found: _match_maskrcnn(found, model_api=True),
}


def detect_format(
    model: ov.Model,
    model_path: Path | None = None,
    class_names: list[str] | None = None,
    *,
    format_id: str | None = None,
    settings: Mapping[str, object] | None = None,
) -> FormatAdapter:
    """The adapter for a static-shape model, or UnsupportedModelError naming what was found.

    `format_id` (else `settings["format"]`) skips detection: only that format's matcher
    runs, and a model it cannot read is refused with the reason. `settings` are the
    user's accuracy values (`overrides.SETTING_KEYS`), applied to the adapter.
    """
    found = _found(model, model_path, class_names)
    chosen = format_id or (str(settings["format"]) if settings and "format" in settings else None)
    adapter = _forced(found, chosen) if chosen is not None else _detected(found)
    return with_values(adapter, settings) if settings else adapter


def _found(model: ov.Model, model_path: Path | None, class_names: list[str] | None) -> _Found:
    inputs = [port_info(i, p) for i, p in enumerate(model.inputs)]
    outputs = [port_info(i, p) for i, p in enumerate(model.outputs)]
    found = _Found(
        inputs, outputs, read_model_info(model), read_metadata_yaml(model_path), class_names
    )
    found.candidates = [p for p in outputs if not p.named_like(*_XAI_OUTPUT_NAMES)]
    dynamic = [p for p in inputs if not p.shape or None in p.shape]
    if dynamic:
        raise UnsupportedModelError(
            f"The model has a dynamic input shape: {', '.join(p.describe() for p in dynamic)}.",
            "Reshape it to a static size, e.g. `segtui import-model --input-shape 1,3,H,W`.",
        )
    return found


def _detected(found: _Found) -> FormatAdapter:
    for match in _MATCHERS:
        adapter = match(found)
        if adapter is not None:
            return adapter
    task = found.metadata.task
    model_type = found.model_info.get("model_type")
    why = (
        f"metadata.yaml says task: {task}"
        if task and task != "segment"
        else f"rt_info model_type: {model_type}"
        if model_type
        else ""
    )
    raise _unsupported(found, why)


def _forced(found: _Found, format_id: str) -> FormatAdapter:
    """The adapter of the format the user chose, or why the model's ports do not fit it."""
    match = _FORMAT_MATCHERS.get(format_id)
    if match is None:
        known = ", ".join(fid for fid, _ in SUPPORTED_FORMATS)
        raise UnsupportedModelError(f"Unknown format {format_id!r}.", f"Use one of: {known}.")
    adapter = match(found)
    if adapter is not None:
        return adapter
    needs = dict(SUPPORTED_FORMATS)[format_id]
    raise UnsupportedModelError(
        f"The model cannot be read as {format_id}: {mismatch(found.inputs, found.candidates, format_id)}. "
        f"The model has {_describe(found)}; {format_id} is {needs}.",
        "Leave the format to detection, or import the model in that format.",
    )
