"""The one prediction type every model format decodes to, and COCO RLE helpers.

The deployment package carries this module as it is (imports rewritten), so it
imports only the standard library, numpy and pycocotools.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NotRequired, TypedDict

import numpy as np
import numpy.typing as npt
from pycocotools import mask as mask_utils


class Rle(TypedDict):
    """A COCO run-length encoding as stored and written: counts as an ASCII string."""

    size: list[int]
    counts: str


class InstanceData(TypedDict):
    """An `Instance` as JSON (report prediction files, deployment output)."""

    class_id: int
    score: float
    box: list[float]
    rle: Rle


class ImagePredictionData(TypedDict):
    """An `ImagePrediction` as JSON."""

    image: str
    width: int
    height: int
    instances: list[InstanceData]


class CocoResult(TypedDict):
    """One entry of a COCO results file (segm; `bbox` too unless left out)."""

    image_id: int
    category_id: int
    score: float
    segmentation: Rle
    bbox: NotRequired[list[float]]


def _pycocotools_rle(rle: Mapping[str, Any]) -> dict[str, object]:
    """The RLE as pycocotools' C code takes it (bytes counts)."""
    counts = rle["counts"]
    return {
        "size": rle["size"],
        "counts": counts.encode("ascii") if isinstance(counts, str) else counts,
    }


def as_rle(raw: Mapping[str, Any]) -> Rle:
    """A compressed RLE from pycocotools or JSON (bytes or str counts) as an `Rle`."""
    counts = raw["counts"]
    return Rle(
        size=[int(v) for v in raw["size"]],
        counts=counts.decode("ascii") if isinstance(counts, bytes) else str(counts),
    )


def encode_mask(mask: npt.NDArray[Any]) -> Rle:
    """Encode a binary HxW mask as COCO RLE (pycocotools needs Fortran-ordered uint8)."""
    if mask.dtype == np.bool_ and mask.flags.f_contiguous:
        binary = mask.view(np.uint8)  # the decoders' masks: no copies on the hot path
    else:
        binary = np.asfortranarray((mask > 0).astype(np.uint8))
    return as_rle(mask_utils.encode(binary))


def decode_mask(rle: Rle) -> npt.NDArray[np.uint8]:
    """Decode a COCO RLE to an HxW uint8 mask of 0/1."""
    return np.asarray(mask_utils.decode(_pycocotools_rle(rle)), dtype=np.uint8)


def mask_area(rle: Rle) -> int:
    """Number of foreground pixels of an RLE mask."""
    return int(mask_utils.area(_pycocotools_rle(rle)))


def mask_ious(a: Sequence[Rle], b: Sequence[Rle]) -> npt.NDArray[np.float64]:
    """|A| × |B| matrix of mask IoUs (no crowd masks)."""
    if not a or not b:
        return np.zeros((len(a), len(b)))
    ious = mask_utils.iou(
        [_pycocotools_rle(r) for r in a], [_pycocotools_rle(r) for r in b], [0] * len(b)
    )
    return np.asarray(ious, dtype=np.float64).reshape(len(a), len(b))


@dataclass(frozen=True)
class Instance:
    """One detected instance in original-image pixels.

    `class_id` is a 0-based index into the model's class names (no background).
    `box` is (x1, y1, x2, y2) in original-image pixels, `rle` the binary mask.
    """

    class_id: int
    score: float
    box: tuple[float, float, float, float]
    rle: Rle

    def to_json(self) -> InstanceData:
        return {
            "class_id": self.class_id,
            "score": round(self.score, 6),
            "box": [round(v, 3) for v in self.box],
            "rle": self.rle,
        }

    @classmethod
    def from_json(cls, data: InstanceData) -> Instance:
        box = data["box"]
        return cls(
            class_id=int(data["class_id"]),
            score=float(data["score"]),
            box=(float(box[0]), float(box[1]), float(box[2]), float(box[3])),
            rle=data["rle"],
        )


@dataclass
class ImagePrediction:
    """All instances a model found in one image."""

    image: str  # path of the image relative to its dataset root
    width: int
    height: int
    instances: list[Instance] = field(default_factory=list)

    def above(self, threshold: float) -> list[Instance]:
        """Instances with score >= threshold."""
        return [inst for inst in self.instances if inst.score >= threshold]

    def to_json(self) -> ImagePredictionData:
        return {
            "image": self.image,
            "width": self.width,
            "height": self.height,
            "instances": [inst.to_json() for inst in self.instances],
        }

    @classmethod
    def from_json(cls, data: ImagePredictionData) -> ImagePrediction:
        return cls(
            image=data["image"],
            width=int(data["width"]),
            height=int(data["height"]),
            instances=[Instance.from_json(i) for i in data["instances"]],
        )


def to_coco_results(
    predictions: list[ImagePrediction],
    image_ids: Mapping[str, int],
    category_ids: Sequence[int] | None = None,
    *,
    with_bbox: bool = True,
) -> list[CocoResult]:
    """COCO results entries for `predictions`.

    `image_ids` maps an image path to its COCO image id; `category_ids[class_id]`
    gives the COCO category id (default class_id + 1, ids start at 1). Leave
    `with_bbox` False for segm evaluation so pycocotools uses mask areas.
    """
    results: list[CocoResult] = []
    for pred in predictions:
        image_id = image_ids[pred.image]
        for inst in pred.instances:
            cat = category_ids[inst.class_id] if category_ids else inst.class_id + 1
            entry = CocoResult(
                image_id=image_id,
                category_id=int(cat),
                score=float(inst.score),
                segmentation=inst.rle,
            )
            if with_bbox:
                x1, y1, x2, y2 = inst.box
                entry["bbox"] = [x1, y1, x2 - x1, y2 - y1]
            results.append(entry)
    return results
