"""What every format shares: the adapter interface, its JSON description, and port facts."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import openvino as ov

from segtui.core.formats.masks import MASK_THRESHOLD
from segtui.core.formats.metadata import ModelInfo
from segtui.core.formats.preprocessing import (
    ImageSettings,
    ImageSettingsJson,
    PreprocessMeta,
    image_to_tensor,
)
from segtui.core.predictions import Instance

#: The most detections per image a user may ask for (and the cap where a model sets none).
MAX_DETECTIONS = 10_000


class AdapterSettings(ImageSettingsJson):
    """`FormatAdapter.settings()`: the pre- and post-processing as JSON, for `show` and deploy.

    Each format family extends it with its own keys.
    """

    format_id: str
    format: str
    image_input: str
    mask_size: int | None
    mask_threshold: float
    #: How masks become image pixels, named after the reference decoder it matches.
    mask_protocol: str
    outputs: dict[str, int]
    confidence_threshold: float | None
    iou_threshold: float | None
    #: The lowest score decode keeps whatever threshold an operation asks (0: none).
    min_score: float
    max_detections: int
    num_classes: int
    class_names: list[str]
    model_info: ModelInfo


@dataclass(frozen=True)
class AdapterConfig:
    """What detection hands every adapter: the image input and its preprocessing, which
    output plays which role, the class names and the thresholds the model suggests.

    The last four are the decoding's own settings (see `overrides`): their defaults are
    what decoding always did, so a model without user values decodes as before.
    """

    image_input: str
    image_settings: ImageSettings
    roles: dict[str, int]  # role ("boxes", "masks", ...) -> index in model.outputs
    class_names: list[str]
    confidence_threshold: float | None = None
    iou_threshold: float | None = None
    model_info: ModelInfo = field(default_factory=lambda: ModelInfo())
    min_score: float = 0.0
    mask_threshold: float = MASK_THRESHOLD
    max_detections: int = MAX_DETECTIONS


class FormatAdapter(abc.ABC):
    """Turns images into one inference's inputs and its outputs into `Instance`s."""

    format_id: ClassVar[str]
    display_name: ClassVar[str]
    #: How masks become image pixels, named after the reference decoder it matches
    #: (shown by `show` and `evaluate`, stored with every evaluation).
    mask_protocol: ClassVar[str]

    def __init__(self, config: AdapterConfig) -> None:
        self.image_input = config.image_input
        self.image_settings = config.image_settings
        self.input_size = config.image_settings.input_size
        self.roles = config.roles
        self.class_names = config.class_names
        self.confidence_threshold = config.confidence_threshold
        self.iou_threshold = config.iou_threshold
        self.model_info = config.model_info.copy()
        self.min_score = config.min_score
        self.mask_threshold = config.mask_threshold
        self.max_detections = config.max_detections

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
        """Instances in original-image pixels, best first; `outputs` in model.outputs order.

        Scores below `score_threshold` or below the adapter's `min_score` are dropped.
        """

    def threshold(self, asked: float) -> float:
        """The score threshold decode applies: the operation's, raised to `min_score`."""
        return max(asked, self.min_score)

    def capped(
        self, index: npt.NDArray[np.int64], scores: npt.NDArray[Any]
    ) -> npt.NDArray[np.int64]:
        """The rows of `index` with the `max_detections` best `scores` (ties: earlier rows),
        in their original order."""
        if index.size <= self.max_detections:
            return index
        best = np.argsort(-scores[index], kind="stable")[: self.max_detections]
        return np.sort(index[best])

    def settings(self) -> AdapterSettings:
        """A JSON-able description of the pre- and post-processing, for `show` and deployment."""
        return {
            "format_id": self.format_id,
            "format": self.display_name,
            "image_input": self.image_input,
            **self.image_settings.as_dict(),
            "mask_size": self.mask_size,
            "mask_threshold": self.mask_threshold,
            "mask_protocol": self.mask_protocol,
            "outputs": dict(self.roles),
            "confidence_threshold": self.confidence_threshold,
            "iou_threshold": self.iou_threshold,
            "min_score": self.min_score,
            "max_detections": self.max_detections,
            "num_classes": len(self.class_names),
            "class_names": list(self.class_names),
            "model_info": self.model_info.copy(),
        }


def best_first(instances: list[Instance]) -> list[Instance]:
    return sorted(instances, key=lambda inst: -inst.score)


@dataclass(frozen=True)
class PortInfo:
    """Name, shape (None for a dynamic dimension) and element type of an input or output."""

    index: int
    name: str
    names: frozenset[str]
    shape: tuple[int | None, ...]
    element_type: str
    #: Each dimension's upper bound (None: unbounded), e.g. 100 for OpenVINO's `..100`.
    bounds: tuple[int | None, ...] = ()

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


def port_info(index: int, port: ov.Output) -> PortInfo:
    """What detection needs to know about input or output `index` of a model."""
    try:
        names = frozenset(str(n) for n in port.get_names())
    except RuntimeError:
        names = frozenset()
    name = str(port.any_name) if names else f"#{index}"
    partial = port.get_partial_shape()
    if partial.rank.is_dynamic:
        shape: tuple[int | None, ...] = ()
        bounds: tuple[int | None, ...] = ()
    else:
        shape = tuple(int(d.get_length()) if d.is_static else None for d in partial)
        bounds = tuple(
            int(d.get_max_length()) if d.get_max_length() >= 0 else None for d in partial
        )
    element = str(port.get_element_type().get_type_name())
    return PortInfo(index, name, names, shape, element, bounds)
