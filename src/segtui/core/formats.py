"""Instance-segmentation model formats: detect one from the graph, preprocess, decode.

Every format decodes to the same `Instance` list (class id, score, box and
COCO-RLE mask in original-image pixels), so nothing downstream knows which
exporter produced a model. Detection looks at ranks and shapes first, then at
`rt_info["model_info"]` (Model API / OTX / Ultralytics) and a `metadata.yaml`
beside the IR (Ultralytics); tensor names only break ties.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np
import numpy.typing as npt
import openvino as ov
import yaml

from segtui.core.errors import UnsupportedModelError
from segtui.core.predictions import Instance, encode_mask

FloatArray = npt.NDArray[np.float32]
Box = tuple[float, float, float, float]

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

#: COCO's 80 class names: the label file OMZ's demos use for its Mask R-CNN models.
COCO_CLASSES: tuple[str, ...] = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat",
    "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack",
    "umbrella", "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball",
    "kite", "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket",
    "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair",
    "couch", "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse",
    "remote", "keyboard", "cell phone", "microwave", "oven", "toaster", "sink",
    "refrigerator", "book", "clock", "vase", "scissors", "teddy bear", "hair drier",
    "toothbrush",
)  # fmt: skip

MASK_THRESHOLD = 0.5
#: Ultralytics' NMS defaults: class offsets larger than any image, at most 300 detections.
_YOLO_MAX_WH = 7680.0
_YOLO_MAX_DET = 300
#: Outputs OTX adds for explainability; they are never detections.
_XAI_OUTPUT_NAMES = ("saliency_map", "feature_vector")


@dataclass(frozen=True)
class PreprocessMeta:
    """How one image was mapped onto the network input: input px = original px * scale + pad."""

    original_size: tuple[int, int]  # (h, w) of the original image
    input_size: tuple[int, int]  # (h, w) of the network input
    scale_x: float
    scale_y: float
    pad_x: float  # left padding in input px (0 without letterbox)
    pad_y: float  # top padding in input px

    @property
    def content_size(self) -> tuple[int, int]:
        """(h, w) of the resized image inside the input, without the padding."""
        h, w = self.original_size
        in_h, in_w = self.input_size
        return (
            min(in_h, max(1, round(h * self.scale_y))),
            min(in_w, max(1, round(w * self.scale_x))),
        )

    def box_to_original(self, box: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
        """Map (x1, y1, x2, y2) rows from input px to original px (not clipped)."""
        out = np.asarray(box, np.float64).reshape(-1, 4).copy()
        out[:, 0::2] = (out[:, 0::2] - self.pad_x) / self.scale_x
        out[:, 1::2] = (out[:, 1::2] - self.pad_y) / self.scale_y
        return out


# --------------------------------------------------------------------------- preprocessing


@dataclass(frozen=True)
class ImageSettings:
    """How an image becomes the network's input tensor (JSON-able through `as_dict`)."""

    input_size: tuple[int, int]  # (H, W)
    resize_type: str = "standard"  # standard | fit_to_window | fit_to_window_letterbox | letterbox
    rgb: bool = False  # False: BGR as read by OpenCV
    mean_values: tuple[float, float, float] = (0.0, 0.0, 0.0)
    scale_values: tuple[float, float, float] = (1.0, 1.0, 1.0)
    pad_value: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "input_size": list(self.input_size),
            "layout": "NCHW",
            "resize_type": self.resize_type,
            "channel_order": "RGB" if self.rgb else "BGR",
            "mean_values": list(self.mean_values),
            "scale_values": list(self.scale_values),
            "pad_value": self.pad_value,
        }


RESIZE_TYPES = ("standard", "fit_to_window", "fit_to_window_letterbox", "letterbox")


def _as_bgr(image: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """Grayscale and BGRA images become 3-channel BGR; deeper than 8 bits is scaled to 0..255."""
    if image.dtype == np.uint16:
        image = (image / 257.0).astype(np.float32)
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    elif image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    elif image.shape[2] == 4:
        image = image[:, :, :3]
    return image


def resize_image(
    image: npt.NDArray[Any], settings: ImageSettings
) -> tuple[npt.NDArray[Any], PreprocessMeta]:
    """Resize and pad an HxWx3 image to the input size the way `settings.resize_type` says."""
    h, w = image.shape[:2]
    in_h, in_w = settings.input_size
    kind = settings.resize_type
    if kind == "standard":
        resized = cv2.resize(image, (in_w, in_h), interpolation=cv2.INTER_LINEAR)
        meta = PreprocessMeta((h, w), (in_h, in_w), in_w / w, in_h / h, 0.0, 0.0)
        return resized, meta
    scale = min(in_h / h, in_w / w)
    new_w = min(in_w, max(1, round(w * scale)))
    new_h = min(in_h, max(1, round(h * scale)))
    if kind == "fit_to_window":
        # Model API: keep the aspect ratio, pad right and bottom.
        left = top = 0
    elif kind == "fit_to_window_letterbox":
        # Model API: centred, the odd pixel on the right/bottom.
        left, top = (in_w - new_w) // 2, (in_h - new_h) // 2
    elif kind == "letterbox":
        # Ultralytics LetterBox: half the padding each side, rounded its way.
        left = round((in_w - new_w) / 2 - 0.1)
        top = round((in_h - new_h) / 2 - 0.1)
    else:
        raise ValueError(f"unknown resize type {kind!r}")
    if (new_w, new_h) != (w, h):
        image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    canvas = np.full((in_h, in_w, image.shape[2]), settings.pad_value, dtype=image.dtype)
    canvas[top : top + new_h, left : left + new_w] = image
    return canvas, PreprocessMeta((h, w), (in_h, in_w), scale, scale, float(left), float(top))


def image_to_tensor(
    image_bgr: npt.NDArray[Any], settings: ImageSettings
) -> tuple[FloatArray, PreprocessMeta]:
    """The [1,3,H,W] f32 input for one image, and how it was mapped."""
    resized, meta = resize_image(_as_bgr(image_bgr), settings)
    pixels: FloatArray = resized.astype(np.float32)
    if settings.rgb:
        pixels = pixels[:, :, ::-1]
    if settings.mean_values != (0.0, 0.0, 0.0):
        pixels = np.subtract(pixels, np.asarray(settings.mean_values, np.float32))
    if settings.scale_values != (1.0, 1.0, 1.0):
        pixels = np.divide(pixels, np.asarray(settings.scale_values, np.float32))
    tensor = np.ascontiguousarray(pixels.transpose(2, 0, 1)[None], dtype=np.float32)
    return tensor, meta


# --------------------------------------------------------------------------- mask geometry


def _sample_positions(
    start: float, end: float, size: int, lo: int, hi: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], FloatArray]:
    """Where the centres of pixels lo..hi-1 fall on a `size`-long mask axis stretched over
    [start, end): the two neighbouring mask cells and the weight of the second, clamped at
    the mask's edges like cv2.resize."""
    centres = np.arange(lo, hi, dtype=np.float64) + 0.5
    src = np.clip((centres - start) / max(end - start, 1e-6) * size - 0.5, 0.0, size - 1.0)
    left = np.minimum(np.floor(src).astype(np.int64), size - 1)
    right = np.minimum(left + 1, size - 1)
    return left, right, (src - left).astype(np.float32)


def paste_mask(
    mask_prob: npt.NDArray[Any],
    box: Sequence[float],
    image_size: tuple[int, int],
    threshold: float = MASK_THRESHOLD,
) -> npt.NDArray[np.bool_]:
    """Paste a per-box SxS probability map into an (h, w) image as a binary mask.

    The map is stretched over the box (bilinear, as cv2.resize to the box size
    would) and sampled at the centre of every image pixel whose centre lies in
    the box; pixels outside the box or the image stay off. So an all-ones map
    gives exactly the box's pixels and a left-half map the left half of them,
    also for fractional boxes, without OMZ's integer rounding of the box.
    """
    h, w = image_size
    x1, y1, x2, y2 = (float(v) for v in box)
    # Fortran order: what COCO RLE encoding consumes, so encode_mask need not copy it.
    out = np.zeros((h, w), np.bool_, order="F")
    if not (x2 > x1 and y2 > y1):
        return out
    # Pixel i is in the box when its centre i + 0.5 lies in [x1, x2).
    col_lo, col_hi = max(0, math.ceil(x1 - 0.5)), min(w, math.ceil(x2 - 0.5))
    row_lo, row_hi = max(0, math.ceil(y1 - 0.5)), min(h, math.ceil(y2 - 0.5))
    if col_hi <= col_lo or row_hi <= row_lo:
        return out
    prob = np.asarray(mask_prob, np.float32)
    # Separable bilinear sampling by gathers: exact in f32, and much cheaper than BLAS
    # or cv2.remap (which rounds positions to 1/32 px) for the small maps involved.
    top, bottom, fy = _sample_positions(y1, y2, prob.shape[0], row_lo, row_hi)
    left, right, fx = _sample_positions(x1, x2, prob.shape[1], col_lo, col_hi)
    by_rows = prob[top] * (1.0 - fy)[:, None] + prob[bottom] * fy[:, None]
    sampled = by_rows[:, left] * (1.0 - fx) + by_rows[:, right] * fx
    out[row_lo:row_hi, col_lo:col_hi] = sampled > threshold
    return out


def _linear_taps(
    positions: npt.NDArray[np.int64], out_size: int, in_size: int
) -> list[tuple[npt.NDArray[np.int64], FloatArray]]:
    """The two source cells and weights of output pixels `positions` of an axis resized
    from `in_size` to `out_size` bilinearly: half-pixel centres, clamped edges, exactly
    as cv2.resize(INTER_LINEAR) and torch's interpolate(align_corners=False) do it."""
    src = (positions.astype(np.float64) + 0.5) * (in_size / out_size) - 0.5
    src = np.clip(src, 0.0, in_size - 1.0)
    first = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    second = np.minimum(first + 1, in_size - 1)
    weight = (src - first).astype(np.float32)
    return [(first, 1.0 - weight), (second, weight)]


def _original_axis_taps(
    lo: int, hi: int, original: int, content: int, pad: int, network: int, map_size: int
) -> list[tuple[npt.NDArray[np.int64], FloatArray]]:
    """Taps from original pixels lo..hi-1 of one axis into a map of `map_size` cells.

    Composes the two resizes Ultralytics and Model API do: the map up to the network
    input (skipped when it is already that size), then the content part of the input,
    without the padding, to the original image.
    """
    taps = [
        (index + pad, weight)
        for index, weight in _linear_taps(np.arange(lo, hi), original, content)
    ]
    if map_size == network:
        return taps
    return [
        (inner, outer_weight * inner_weight)
        for outer, outer_weight in taps
        for inner, inner_weight in _linear_taps(outer, network, map_size)
    ]


def map_to_original(
    prob_map: npt.NDArray[Any],
    meta: PreprocessMeta,
    region: tuple[int, int, int, int] | None = None,
    threshold: float = MASK_THRESHOLD,
) -> npt.NDArray[np.bool_]:
    """A probability map in network-input space (input size, or smaller like YOLO's
    prototypes at H/4 x W/4) as a binary mask of the original image.

    Upsamples to the input, cuts the padding and resizes to the original size, all
    bilinear, then thresholds. Only the pixels in `region` (x1, y1, x2, y2; original
    px) are computed, the rest stay off: the map is zero beyond the box it was cropped
    to, so decoding costs the box's area, not the image's.
    """
    h, w = meta.original_size
    in_h, in_w = meta.input_size
    content_h, content_w = meta.content_size
    x_lo, y_lo, x_hi, y_hi = region if region is not None else (0, 0, w, h)
    x_lo, y_lo, x_hi, y_hi = max(0, x_lo), max(0, y_lo), min(w, x_hi), min(h, y_hi)
    # Fortran order: what COCO RLE encoding consumes, so encode_mask need not copy it.
    out = np.zeros((h, w), np.bool_, order="F")
    if x_hi <= x_lo or y_hi <= y_lo:
        return out
    prob = np.asarray(prob_map, np.float32)
    row_taps = _original_axis_taps(y_lo, y_hi, h, content_h, round(meta.pad_y), in_h, prob.shape[0])
    col_taps = _original_axis_taps(x_lo, x_hi, w, content_w, round(meta.pad_x), in_w, prob.shape[1])
    # The whole chain is separable: rows first, then columns, by gathers.
    by_rows = np.zeros((y_hi - y_lo, prob.shape[1]), np.float32)
    for index, weight in row_taps:
        by_rows += prob[index] * weight[:, None]
    sampled = np.zeros((y_hi - y_lo, x_hi - x_lo), np.float32)
    for index, weight in col_taps:
        sampled += by_rows[:, index] * weight
    out[y_lo:y_hi, x_lo:x_hi] = sampled > threshold
    return out


def _region_around(
    box: npt.NDArray[Any], meta: PreprocessMeta, margin: float
) -> tuple[int, int, int, int]:
    """Original-pixel bounds of an input-pixel box grown by `margin` input px (and 2 px more
    for the last resize's reach)."""
    x1, y1, x2, y2 = meta.box_to_original(
        np.asarray(box, np.float64) + np.array([-margin, -margin, margin, margin])
    )[0]
    return (math.floor(x1) - 2, math.floor(y1) - 2, math.ceil(x2) + 2, math.ceil(y2) + 2)


def _clip_box(box: npt.NDArray[Any], image_size: tuple[int, int]) -> Box:
    h, w = image_size
    return (
        float(np.clip(box[0], 0, w)),
        float(np.clip(box[1], 0, h)),
        float(np.clip(box[2], 0, w)),
        float(np.clip(box[3], 0, h)),
    )


def _sorted(instances: list[Instance]) -> list[Instance]:
    return sorted(instances, key=lambda inst: -inst.score)


# --------------------------------------------------------------------------- graph inspection


@dataclass(frozen=True)
class PortInfo:
    """Name, shape (None for a dynamic dimension) and element type of an input or output."""

    index: int
    name: str
    names: frozenset[str]
    shape: tuple[int | None, ...]
    element_type: str

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def is_integer(self) -> bool:
        return self.element_type[:1] in ("i", "u") and self.element_type != "undefined"

    def describe(self) -> str:
        dims = ",".join("?" if d is None else str(d) for d in self.shape)
        return f"{self.name}[{dims}] {self.element_type}"

    def named_like(self, *fragments: str) -> bool:
        """Whether any of the tensor's names contains one of `fragments` (a tiebreak only)."""
        return any(f in n.lower() for n in self.names for f in fragments)


def _port_info(index: int, port: Any) -> PortInfo:
    try:
        names = frozenset(str(n) for n in port.get_names())
    except RuntimeError:
        names = frozenset()
    name = str(port.any_name) if names else f"#{index}"
    partial = port.get_partial_shape()
    if partial.rank.is_dynamic:
        shape: tuple[int | None, ...] = ()
    else:
        shape = tuple(int(d.get_length()) if d.is_static else None for d in partial)
    return PortInfo(index, name, names, shape, str(port.get_element_type().get_type_name()))


def read_model_info(model: ov.Model) -> dict[str, str]:
    """`rt_info["model_info"]` as plain strings (empty when the model has none)."""
    if not model.has_rt_info(["model_info"]):
        return {}
    try:
        keys = list(model.get_rt_info()["model_info"].keys())
    except Exception:  # an exotic rt_info layout is not worth failing an import over
        return {}
    info: dict[str, str] = {}
    for key in keys:
        try:
            info[str(key)] = str(model.get_rt_info(["model_info", str(key)]).astype(str))
        except Exception:
            continue
    return info


def read_metadata_yaml(model_path: Path | None) -> dict[str, Any]:
    """The Ultralytics `metadata.yaml` beside a model file, or {} (a broken file is ignored)."""
    if model_path is None:
        return {}
    path = Path(model_path)
    candidate = path / "metadata.yaml" if path.is_dir() else path.parent / "metadata.yaml"
    try:
        data = yaml.safe_load(candidate.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _names_from_metadata(metadata: dict[str, Any]) -> list[str] | None:
    names = metadata.get("names")
    if isinstance(names, dict):
        try:
            ordered = sorted(names.items(), key=lambda kv: int(kv[0]))
        except (TypeError, ValueError):
            return None
        return [str(v) for _, v in ordered]
    if isinstance(names, list):
        return [str(v) for v in names]
    return None


def _names_from_model_info(info: dict[str, str]) -> list[str] | None:
    labels = info.get("labels", "").strip()
    if not labels:
        return None
    # Model API stores a space-separated string; some writers store a Python-like list.
    if labels.startswith("[") and labels.endswith("]"):
        try:
            parsed = yaml.safe_load(labels)
        except yaml.YAMLError:
            parsed = None
        if isinstance(parsed, list):
            return [str(v) for v in parsed]
    return labels.split()


def _floats(text: str | None, default: tuple[float, float, float]) -> tuple[float, float, float]:
    if not text:
        return default
    try:
        values = [float(v) for v in text.replace(",", " ").strip("[]() ").split()]
    except ValueError:
        return default
    if len(values) == 1:
        values *= 3
    return (values[0], values[1], values[2]) if len(values) == 3 else default


def _float(text: str | None, default: float) -> float:
    try:
        return float(text) if text else default
    except ValueError:
        return default


def _bool(text: str | None, default: bool) -> bool:
    if text is None:
        return default
    return text.strip().lower() in ("yes", "true", "1", "y")


# --------------------------------------------------------------------------- adapters


class FormatAdapter(abc.ABC):
    """Turns images into one inference's inputs and its outputs into `Instance`s."""

    format_id: ClassVar[str]
    display_name: ClassVar[str]

    class_names: list[str]
    image_input: str
    input_size: tuple[int, int]

    def __init__(
        self,
        image_input: str,
        image_settings: ImageSettings,
        roles: dict[str, int],
        class_names: list[str],
        *,
        confidence_threshold: float | None = None,
        iou_threshold: float | None = None,
        model_info: dict[str, str] | None = None,
    ) -> None:
        self.image_input = image_input
        self.image_settings = image_settings
        self.input_size = image_settings.input_size
        self.roles = roles
        self.class_names = class_names
        self.confidence_threshold = confidence_threshold
        self.iou_threshold = iou_threshold
        self.model_info = dict(model_info or {})

    @property
    def mask_size(self) -> int | None:
        """S of per-box SxS masks (OMZ formats); None where masks cover the input."""
        return None

    def preprocess(
        self, image_bgr: npt.NDArray[Any]
    ) -> tuple[dict[str, npt.NDArray[Any]], PreprocessMeta]:
        """All inputs of one batch-1 inference for a BGR image, and how it was mapped."""
        tensor, meta = image_to_tensor(image_bgr, self.image_settings)
        return {self.image_input: tensor}, meta

    @abc.abstractmethod
    def decode(
        self,
        outputs: Sequence[npt.NDArray[Any]],
        meta: PreprocessMeta,
        score_threshold: float = 0.05,
    ) -> list[Instance]:
        """Instances in original-image pixels, best first; `outputs` in model.outputs order."""

    def settings(self) -> dict[str, Any]:
        """A JSON-able description of the pre- and post-processing, for `show` and deployment."""
        data: dict[str, Any] = {"format_id": self.format_id, "format": self.display_name}
        data["image_input"] = self.image_input
        data.update(self.image_settings.as_dict())
        data["mask_size"] = self.mask_size
        data["mask_threshold"] = MASK_THRESHOLD
        data["outputs"] = dict(self.roles)
        data["confidence_threshold"] = self.confidence_threshold
        data["iou_threshold"] = self.iou_threshold
        data["num_classes"] = len(self.class_names)
        data["class_names"] = list(self.class_names)
        data["model_info"] = dict(self.model_info)
        return data


class OmzMaskRcnnAdapter(FormatAdapter):
    """OMZ Mask R-CNN: labels [N], boxes [N,5] with the score, masks [N,S,S] per box."""

    format_id: ClassVar[str] = "omz-maskrcnn"
    display_name: ClassVar[str] = "OMZ Mask R-CNN (instance-segmentation-security)"

    def __init__(
        self, *args: Any, mask_shape: tuple[int | None, int | None], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
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

    def settings(self) -> dict[str, Any]:
        data = super().settings()
        data["mask_kind"] = "input-size" if self.full_input_masks else "per-box"
        return data

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
        keep = (scores > 0) & (scores >= score_threshold) & (labels[:count] >= 0)
        keep &= (boxes[:count, 2] > boxes[:count, 0]) & (boxes[:count, 3] > boxes[:count, 1])
        index = np.flatnonzero(keep)
        return _sorted(
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
            rles = [encode_mask(map_to_original(m, meta)) for m in masks]
        else:
            rles = [
                encode_mask(paste_mask(m, b, meta.original_size))
                for m, b in zip(masks, original, strict=True)
            ]
        return [
            Instance(int(c), float(s), _clip_box(b, meta.original_size), rle)
            for c, s, b, rle in zip(class_ids, scores, original, rles, strict=True)
        ]


class ModelApiMaskRcnnAdapter(OmzMaskRcnnAdapter):
    """OTX / Model API Mask R-CNN: batched outputs and preprocessing from rt_info model_info."""

    format_id: ClassVar[str] = "model-api-maskrcnn"
    display_name: ClassVar[str] = "Model API / OTX Mask R-CNN (rt_info model_info)"


class OmzMaskRcnnLegacyAdapter(OmzMaskRcnnAdapter):
    """Older OMZ Mask R-CNN (-0050, -0049, -1025): im_info input, background class 0."""

    format_id: ClassVar[str] = "omz-maskrcnn-legacy"
    display_name: ClassVar[str] = "OMZ Mask R-CNN, older (im_data + im_info)"

    def __init__(self, *args: Any, info_input: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
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

    def settings(self) -> dict[str, Any]:
        data = super().settings()
        data["info_input"] = self.info_input
        data["im_info"] = "[resized_h, resized_w, 1]"
        data["background_class"] = 0
        return data

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
        keep &= (scores[:count] > 0) & (scores[:count] >= score_threshold)
        keep &= (boxes[:count, 2] > boxes[:count, 0]) & (boxes[:count, 3] > boxes[:count, 1])
        index = np.flatnonzero(keep)
        masks = raw_masks[index, class_ids[index]]  # each row's own class channel
        return _sorted(
            self._instances(class_ids[index] - 1, scores[index], boxes[index], masks, meta)
        )


class YoloSegAdapter(FormatAdapter):
    """Ultralytics YOLOv8 / YOLO11 -seg: anchors x (box, class scores, mask coefficients) + prototypes."""

    format_id: ClassVar[str] = "yolo-seg"
    display_name: ClassVar[str] = "Ultralytics YOLO -seg (YOLOv8 / YOLO11)"

    def __init__(self, *args: Any, num_classes: int, num_coefficients: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.num_classes = num_classes
        self.num_coefficients = num_coefficients

    def settings(self) -> dict[str, Any]:
        data = super().settings()
        data["nms"] = "class-aware"
        data["max_detections"] = _YOLO_MAX_DET
        data["mask_coefficients"] = self.num_coefficients
        return data

    def decode(
        self,
        outputs: Sequence[npt.NDArray[Any]],
        meta: PreprocessMeta,
        score_threshold: float = 0.05,
    ) -> list[Instance]:
        pred = np.asarray(outputs[self.roles["detections"]], np.float32).reshape(
            4 + self.num_classes + self.num_coefficients, -1
        )
        raw_protos = np.asarray(outputs[self.roles["prototypes"]], np.float32)
        proto_h, proto_w = int(raw_protos.shape[-2]), int(raw_protos.shape[-1])
        protos = raw_protos.reshape(self.num_coefficients, proto_h, proto_w)
        nc = self.num_classes
        class_scores = pred[4 : 4 + nc]
        class_ids = class_scores.argmax(axis=0)
        confidences = class_scores.max(axis=0)
        candidates = np.flatnonzero(confidences > score_threshold)
        if candidates.size == 0:
            return []
        cx, cy, bw, bh = pred[:4, candidates]
        boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
        iou = self.iou_threshold if self.iou_threshold is not None else 0.7
        kept = nms(boxes, confidences[candidates], class_ids[candidates], iou, _YOLO_MAX_DET)
        chosen, boxes = candidates[kept], boxes[kept]
        coefficients = pred[4 + nc :, chosen].T
        maps = self._masks(coefficients, protos, boxes, meta)
        # Beyond two prototype cells around the box the cropped map is exactly zero.
        cell = max(meta.input_size[0] / proto_h, meta.input_size[1] / proto_w)
        margin = 2.0 * cell + 2.0
        rles = [
            encode_mask(map_to_original(m, meta, _region_around(box, meta, margin)))
            for m, box in zip(maps, boxes, strict=True)
        ]
        original = meta.box_to_original(boxes)
        return _sorted(
            [
                Instance(
                    int(class_ids[i]),
                    float(confidences[i]),
                    _clip_box(box, meta.original_size),
                    rle,
                )
                for i, box, rle in zip(chosen, original, rles, strict=True)
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


def nms(
    boxes: npt.NDArray[Any],
    scores: npt.NDArray[Any],
    class_ids: npt.NDArray[Any],
    iou_threshold: float,
    max_keep: int | None = None,
) -> npt.NDArray[np.int64]:
    """Class-aware non-maximum suppression; indices of the kept boxes, best first.

    Boxes of different classes are shifted apart (Ultralytics' trick) so one pass
    suppresses only within a class. Stopping at `max_keep` bounds the work when a
    weak threshold lets thousands of anchors through.
    """
    shifted = np.asarray(boxes, np.float64) + (
        np.asarray(class_ids, np.float64)[:, None] * _YOLO_MAX_WH
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


# --------------------------------------------------------------------------- detection


@dataclass
class _Found:
    """What detection learned about a model before picking an adapter."""

    inputs: list[PortInfo]
    outputs: list[PortInfo]
    model_info: dict[str, str]
    metadata: dict[str, Any]
    candidates: list[PortInfo] = field(default_factory=list)  # outputs minus XAI extras


def _describe(found: _Found) -> str:
    ins = ", ".join(p.describe() for p in found.inputs) or "none"
    outs = ", ".join(p.describe() for p in found.outputs) or "none"
    return f"inputs {ins}; outputs {outs}"


def _supported_text() -> str:
    return "; ".join(f"{fid} ({desc})" for fid, desc in SUPPORTED_FORMATS)


def _unsupported(found: _Found, why: str = "") -> UnsupportedModelError:
    reason = f" ({why})" if why else ""
    return UnsupportedModelError(
        f"Not an instance-segmentation model segtui can read{reason}: {_describe(found)}. "
        f"Supported: {_supported_text()}.",
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


def _image_settings(
    image: PortInfo, info: dict[str, str], default_resize: str, *, rgb: bool = False
) -> ImageSettings:
    shape = image.shape
    assert shape[2] is not None and shape[3] is not None  # inputs were checked static
    resize = info.get("resize_type", default_resize)
    if resize not in RESIZE_TYPES:
        resize = default_resize
    return ImageSettings(
        input_size=(shape[2], shape[3]),
        resize_type=resize,
        rgb=_bool(info.get("reverse_input_channels"), rgb),
        mean_values=_floats(info.get("mean_values"), (0.0, 0.0, 0.0)),
        scale_values=_floats(info.get("scale_values"), (1.0, 1.0, 1.0)),
        pad_value=_float(info.get("pad_value"), 0.0),
    )


def _class_names(found: _Found, override: list[str] | None, count: int | None) -> list[str]:
    """Given names, then metadata.yaml, then rt_info labels, then COCO's (80) or generated ones."""
    names = (
        list(override)
        if override
        else _names_from_metadata(found.metadata) or _names_from_model_info(found.model_info)
    )
    if names:
        return names
    if count is None or count == len(COCO_CLASSES):
        return list(COCO_CLASSES)
    return [f"class {i}" for i in range(count)]


def _thresholds(info: dict[str, str], confidence: float, iou: float | None) -> dict[str, Any]:
    return {
        "confidence_threshold": _float(info.get("confidence_threshold"), confidence),
        "iou_threshold": _float(info.get("iou_threshold"), iou) if iou is not None else None,
    }


def _match_yolo(found: _Found, names: list[str] | None) -> FormatAdapter | None:
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
        pad_value=_float(found.model_info.get("pad_value"), 114.0),
    )
    return YoloSegAdapter(
        images[0].name,
        settings,
        {"detections": det[0].index, "prototypes": proto[0].index},
        _class_names(found, names, num_classes),
        num_classes=num_classes,
        num_coefficients=nm,
        model_info=found.model_info,
        **_thresholds(found.model_info, 0.25, 0.7),
    )


def _match_legacy(found: _Found, names: list[str] | None) -> FormatAdapter | None:
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
    return OmzMaskRcnnLegacyAdapter(
        images[0].name,
        settings,
        {
            "classes": classes.index,
            "scores": scores.index,
            "boxes": boxes[0].index,
            "masks": masks[0].index,
        },
        _class_names(found, names, None if channels is None else channels - 1),
        info_input=infos[0].name,
        mask_shape=(masks[0].shape[2], masks[0].shape[3]),
        model_info=found.model_info,
        **_thresholds(found.model_info, 0.5, None),
    )


#: model_info keys only Model API / OTX exports write (OMZ IRs carry none of them).
_MODEL_API_KEYS = ("mean_values", "scale_values", "reverse_input_channels", "resize_type")


def _match_maskrcnn(found: _Found, names: list[str] | None) -> FormatAdapter | None:
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
        model_api = batched or any(k in found.model_info for k in _MODEL_API_KEYS)
        cls = ModelApiMaskRcnnAdapter if model_api else OmzMaskRcnnAdapter
        return cls(
            images[0].name,
            _image_settings(images[0], found.model_info, "standard"),
            {"labels": label.index, "boxes": boxes[0].index, "masks": masks[0].index},
            _class_names(found, names, None),
            mask_shape=(masks[0].shape[-2], masks[0].shape[-1]),
            model_info=found.model_info,
            **_thresholds(found.model_info, 0.5, None),
        )
    return None


def detect_format(
    model: ov.Model, model_path: Path | None = None, class_names: list[str] | None = None
) -> FormatAdapter:
    """The adapter for a static-shape model, or UnsupportedModelError naming what was found."""
    inputs = [_port_info(i, p) for i, p in enumerate(model.inputs)]
    outputs = [_port_info(i, p) for i, p in enumerate(model.outputs)]
    found = _Found(inputs, outputs, read_model_info(model), read_metadata_yaml(model_path))
    found.candidates = [p for p in outputs if not p.named_like(*_XAI_OUTPUT_NAMES)]
    dynamic = [p for p in inputs if not p.shape or None in p.shape]
    if dynamic:
        raise UnsupportedModelError(
            f"The model has a dynamic input shape: {', '.join(p.describe() for p in dynamic)}.",
            "Reshape it to a static size, e.g. `segtui import-model --input-shape 1,3,H,W`.",
        )
    for match in (_match_yolo, _match_legacy, _match_maskrcnn):
        adapter = match(found, class_names)
        if adapter is not None:
            return adapter
    task = found.metadata.get("task")
    model_type = found.model_info.get("model_type")
    why = (
        f"metadata.yaml says task: {task}"
        if task and task != "segment"
        else f"rt_info model_type: {model_type}"
        if model_type
        else ""
    )
    raise _unsupported(found, why)
