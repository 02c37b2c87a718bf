"""What a model says about itself: `rt_info["model_info"]` (Model API / OTX / Ultralytics)
and the Ultralytics `metadata.yaml` beside the IR, read into typed values."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict, cast

import openvino as ov
import yaml

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


class ModelInfo(TypedDict, total=False):
    """`rt_info["model_info"]`: every value a string; the keys segtui reads.

    Other keys a writer adds stay in the dict (shown by `show`), as a TypedDict allows.
    """

    model_type: str
    labels: str  # space-separated, or a Python-like list
    resize_type: str
    reverse_input_channels: str  # "YES" / "True" / ...
    mean_values: str
    scale_values: str
    pad_value: str
    confidence_threshold: str
    iou_threshold: str


#: model_info keys only Model API / OTX exports write (OMZ IRs carry none of them).
MODEL_API_KEYS = ("mean_values", "scale_values", "reverse_input_channels", "resize_type")


def read_model_info(model: ov.Model) -> ModelInfo:
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
    # Every value is a string, which is all ModelInfo promises; unknown keys ride along.
    return cast(ModelInfo, info)


@dataclass(frozen=True)
class ExportMetadata:
    """What segtui reads from an Ultralytics `metadata.yaml`."""

    task: str | None = None  # "segment", "detect", ...
    names: list[str] | None = None  # class names in class-id order


def read_metadata_yaml(model_path: Path | None) -> ExportMetadata:
    """The Ultralytics `metadata.yaml` beside a model file (a missing or broken one reads empty)."""
    if model_path is None:
        return ExportMetadata()
    path = Path(model_path)
    candidate = path / "metadata.yaml" if path.is_dir() else path.parent / "metadata.yaml"
    try:
        data = yaml.safe_load(candidate.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return ExportMetadata()
    if not isinstance(data, dict):
        return ExportMetadata()
    task = data.get("task")
    return ExportMetadata(str(task) if task else None, _names_from_yaml(data.get("names")))


def _names_from_yaml(names: object) -> list[str] | None:
    """Ultralytics writes {id: name}; a plain list is taken as it is."""
    if isinstance(names, dict):
        try:
            ordered = sorted(names.items(), key=lambda kv: int(kv[0]))
        except (TypeError, ValueError):
            return None
        return [str(v) for _, v in ordered]
    if isinstance(names, list):
        return [str(v) for v in names]
    return None


def names_from_model_info(info: ModelInfo) -> list[str] | None:
    """The class names in `labels`, or None without any."""
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


def parse_floats(
    text: str | None, default: tuple[float, float, float]
) -> tuple[float, float, float]:
    """Three floats from "1 2 3", "[1, 2, 3]" or one value for all three; else `default`."""
    if not text:
        return default
    try:
        values = [float(v) for v in text.replace(",", " ").strip("[]() ").split()]
    except ValueError:
        return default
    if len(values) == 1:
        values *= 3
    return (values[0], values[1], values[2]) if len(values) == 3 else default


def parse_float(text: str | None, default: float) -> float:
    try:
        return float(text) if text else default
    except ValueError:
        return default


def parse_bool(text: str | None, default: bool) -> bool:
    if text is None:
        return default
    return text.strip().lower() in ("yes", "true", "1", "y")
