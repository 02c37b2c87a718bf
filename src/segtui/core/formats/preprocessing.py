"""From an image to the network input, and from input pixels back to the original image."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, TypedDict, get_args

import cv2
import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
Box = tuple[float, float, float, float]

#: How an image is fitted to the input: stretched, or aspect kept with the padding
#: right/bottom (Model API), centred (Model API), or centred Ultralytics' way.
ResizeType = Literal["standard", "fit_to_window", "fit_to_window_letterbox", "letterbox"]
RESIZE_TYPES: tuple[ResizeType, ...] = get_args(ResizeType)


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


def clip_box(box: npt.NDArray[Any], image_size: tuple[int, int]) -> Box:
    """An original-pixel box clipped to an (h, w) image."""
    h, w = image_size
    return (
        float(np.clip(box[0], 0, w)),
        float(np.clip(box[1], 0, h)),
        float(np.clip(box[2], 0, w)),
        float(np.clip(box[3], 0, h)),
    )


class ImageSettingsJson(TypedDict):
    """`ImageSettings` as JSON, the way `show` and the stored model analysis hold it."""

    input_size: list[int]
    layout: str
    resize_type: ResizeType
    channel_order: Literal["RGB", "BGR"]
    mean_values: list[float]
    scale_values: list[float]
    pad_value: float


@dataclass(frozen=True)
class ImageSettings:
    """How an image becomes the network's input tensor."""

    input_size: tuple[int, int]  # (H, W)
    resize_type: ResizeType = "standard"
    rgb: bool = False  # False: BGR as read by OpenCV
    mean_values: tuple[float, float, float] = (0.0, 0.0, 0.0)
    scale_values: tuple[float, float, float] = (1.0, 1.0, 1.0)
    pad_value: float = 0.0

    def as_dict(self) -> ImageSettingsJson:
        return {
            "input_size": list(self.input_size),
            "layout": "NCHW",
            "resize_type": self.resize_type,
            "channel_order": "RGB" if self.rgb else "BGR",
            "mean_values": list(self.mean_values),
            "scale_values": list(self.scale_values),
            "pad_value": self.pad_value,
        }


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
    if kind == "letterbox":
        # Ultralytics maps boxes back by the gain each axis really got (scale_boxes):
        # round(w * scale) / w, which differs from `scale` by up to half a pixel.
        return canvas, PreprocessMeta(
            (h, w), (in_h, in_w), new_w / w, new_h / h, float(left), float(top)
        )
    # Model API maps back by the one nominal scale (InstanceSegmentationModel.postprocess).
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
