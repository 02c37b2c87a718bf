"""Images with instance masks drawn on them: the parent's, the optimized model's, and where they differ.

Pure numpy/OpenCV/Pillow (no UI): the Visualize screen turns the RGB arrays
into half-block characters or terminal graphics. Masks are decoded once per
image (`ImageComparison`), at a working resolution capped so that a huge photo
does not cost gigabytes; each render at another threshold or size only
re-composites.

"Disagreement" is class-aware: a pixel disagrees when the set of classes whose
masks (score >= threshold) cover it differs between the two models, so a pixel
that only one model covers and a pixel the two give different classes both count.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image

from segtui.core.datasets import ImageReadError, load_image
from segtui.core.matching import match_instances
from segtui.core.predictions import ImagePrediction, Instance, decode_mask
from segtui.core.settings import VISUALIZE

RGB = tuple[int, int, int]
RgbArray = npt.NDArray[np.uint8]
BoolArray = npt.NDArray[np.bool_]

#: Disagreement pixels (magenta: far from every class colour below).
DISAGREE_COLOR: RGB = (255, 0, 255)
#: Opacity of class colours over the image, and of the disagreement colour.
MASK_ALPHA = 0.55
DISAGREE_ALPHA = 0.85
#: Longest side of the working resolution (the largest sharp terminal image is smaller).
WORKING_MAX_SIDE = 1280
#: The confidence threshold a render starts at, and the steps of the + and - keys.
DEFAULT_THRESHOLD: float = VISUALIZE.threshold.default
THRESHOLD_STEP = 0.05

#: What `Visualization.panel` draws: either model's masks, or both with their disagreement.
Panel = Literal["optimized", "parent", "overlay"]

# Distinct, saturated colours without magenta (reserved for disagreement).
PALETTE: tuple[RGB, ...] = (
    (0, 200, 83),
    (41, 121, 255),
    (255, 171, 0),
    (0, 229, 255),
    (255, 61, 0),
    (118, 255, 3),
    (101, 31, 255),
    (255, 234, 0),
    (0, 150, 136),
    (121, 85, 72),
    (174, 234, 0),
    (3, 169, 244),
)


def class_color(class_id: int) -> RGB:
    """The colour of a class, the same in every panel and legend."""
    return PALETTE[class_id % len(PALETTE)]


def class_name(class_names: Sequence[str], class_id: int) -> str:
    return class_names[class_id] if 0 <= class_id < len(class_names) else f"#{class_id}"


def fit_size(width: int, height: int, max_width: int, max_height: int) -> tuple[int, int]:
    """The largest (w, h) inside max_width × max_height with the aspect ratio of width × height."""
    if width <= 0 or height <= 0 or max_width <= 0 or max_height <= 0:
        return (max(1, min(width, max_width)), max(1, min(height, max_height)))
    scale = min(max_width / width, max_height / height)
    return (
        max(1, min(max_width, round(width * scale))),
        max(1, min(max_height, round(height * scale))),
    )


def half_block_size(width: int, height: int, columns: int, rows: int) -> tuple[int, int]:
    """Pixel size of an image drawn in `columns` × `rows` half-block cells (2 pixels per cell, stacked).

    A terminal cell is about twice as tall as wide, so half-block pixels are
    about square and the aspect ratio survives. The height is even: every cell
    holds two pixel rows.
    """
    w, h = fit_size(width, height, columns, rows * 2)
    return w, max(2, h - h % 2)


@dataclass(frozen=True)
class LegendEntry:
    """One instance above the threshold, as listed under its panel."""

    class_id: int
    class_name: str
    score: float
    color: RGB
    matched: bool  # has a counterpart in the other model (same class, mask IoU >= iou)

    def text(self) -> str:
        return f"{self.class_name} {self.score:.2f}" + ("" if self.matched else " ✗")


@dataclass(frozen=True)
class Visualization:
    """One render: RGB panels at the requested size and what is drawn on them."""

    optimized: RgbArray
    parent: RgbArray
    overlay: RgbArray
    disagreement: BoolArray  # at the render size
    optimized_legend: list[LegendEntry]
    parent_legend: list[LegendEntry]
    threshold: float
    disagreement_pixels: int  # at the working resolution
    covered_pixels: int  # pixels either model covers, at the working resolution

    @property
    def matches(self) -> int:
        """Pairs of A and B instances that match (each matched A has one B)."""
        return sum(entry.matched for entry in self.optimized_legend)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the panels."""
        return int(self.parent.shape[1]), int(self.parent.shape[0])

    @property
    def disagreement_share(self) -> float:
        """Share of the covered pixels where the two disagree (0 when nothing is covered)."""
        return self.disagreement_pixels / self.covered_pixels if self.covered_pixels else 0.0

    def panel(self, which: Panel) -> RgbArray:
        return {"optimized": self.optimized, "parent": self.parent, "overlay": self.overlay}[which]


@dataclass(frozen=True)
class _DecodedInstance:
    instance: Instance
    y0: int
    x0: int
    crop: BoolArray  # the mask inside its bounding box, at the working resolution


def to_pil(array: RgbArray) -> Image.Image:
    """An RGB array as a Pillow image."""
    return Image.fromarray(np.ascontiguousarray(array), mode="RGB")


def _working_size(width: int, height: int) -> tuple[int, int]:
    if max(width, height) <= WORKING_MAX_SIDE:
        return width, height
    return fit_size(width, height, WORKING_MAX_SIDE, WORKING_MAX_SIDE)


def _decode(instance: Instance, size: tuple[int, int]) -> _DecodedInstance | None:
    decoded = decode_mask(instance.rle)
    w, h = size
    mask: BoolArray
    if decoded.shape != (h, w):
        mask = np.asarray(cv2.resize(decoded * 255, (w, h), interpolation=cv2.INTER_AREA) >= 128)
    else:
        mask = decoded.astype(bool)
    # The mask's bounding box from its rows and columns (a tenth of np.nonzero's cost).
    rows, columns = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    y0, y1, x0, x1 = int(rows[0]), int(rows[-1]) + 1, int(columns[0]), int(columns[-1]) + 1
    return _DecodedInstance(instance, y0, x0, np.ascontiguousarray(mask[y0:y1, x0:x1]))


def blank_image(width: int, height: int, value: int = 64) -> RgbArray:
    """A flat grey stand-in for an image that cannot be read (the masks still show)."""
    return np.full((height, width, 3), value, np.uint8)


def report_image(path: Path | None, width: int, height: int) -> tuple[RgbArray, str | None]:
    """A report's image (RGB) at the size it was predicted at, or grey and why it cannot be read."""
    try:
        if path is None:
            raise ImageReadError("no longer part of the dataset")
        pixels = load_image(path)
        if pixels.shape[:2] != (height, width):
            raise ImageReadError(
                f"its size changed since the report ({pixels.shape[1]}×{pixels.shape[0]})"
            )
        return np.ascontiguousarray(pixels[:, :, ::-1]), None
    except ImageReadError as exc:
        return blank_image(width, height), str(exc)


class ImageComparison:
    """One image with both models' instances, decoded once; `render` draws it at any threshold and size."""

    def __init__(
        self,
        image_rgb: RgbArray,
        optimized: ImagePrediction,
        parent: ImagePrediction,
        class_names: Sequence[str],
        *,
        iou: float = 0.5,
    ) -> None:
        if image_rgb.ndim != 3 or image_rgb.shape[2] != 3:
            raise ValueError(f"expected an HxWx3 RGB image, got shape {image_rgb.shape}")
        self.class_names = class_names
        self.iou = iou
        self.optimized_prediction = optimized
        self.parent_prediction = parent
        height, width = image_rgb.shape[:2]
        self.source_size = (int(width), int(height))
        self.working_size = _working_size(width, height)
        w, h = self.working_size
        self.image = (
            np.ascontiguousarray(image_rgb, dtype=np.uint8)
            if (w, h) == (width, height)
            else cv2.resize(image_rgb, (w, h), interpolation=cv2.INTER_AREA)
        )
        self._optimized = self._decode_all(optimized)
        self._parent = self._decode_all(parent)

    @classmethod
    def from_bgr(
        cls,
        image_bgr: RgbArray,
        optimized: ImagePrediction,
        parent: ImagePrediction,
        class_names: Sequence[str],
        *,
        iou: float = 0.5,
    ) -> ImageComparison:
        """From an image as `datasets.load_image` returns it (BGR)."""
        return cls(
            np.ascontiguousarray(image_bgr[:, :, ::-1]), optimized, parent, class_names, iou=iou
        )

    def _decode_all(self, prediction: ImagePrediction) -> list[_DecodedInstance]:
        # Strongest last, so it is drawn on top.
        ordered = sorted(prediction.instances, key=lambda inst: inst.score)
        decoded = (_decode(inst, self.working_size) for inst in ordered)
        return [d for d in decoded if d is not None]

    # -- masks -------------------------------------------------------------------

    def _class_masks(
        self, decoded: list[_DecodedInstance], threshold: float
    ) -> dict[int, BoolArray]:
        w, h = self.working_size
        masks: dict[int, BoolArray] = {}
        for d in decoded:
            if d.instance.score < threshold:
                continue
            mask = masks.setdefault(d.instance.class_id, np.zeros((h, w), bool))
            ch, cw = d.crop.shape
            mask[d.y0 : d.y0 + ch, d.x0 : d.x0 + cw] |= d.crop
        return masks

    def _compare(self, threshold: float) -> tuple[BoolArray, BoolArray, BoolArray]:
        """(disagreement, covered by A, covered by B) at the working resolution."""
        a = self._class_masks(self._optimized, threshold)
        b = self._class_masks(self._parent, threshold)
        w, h = self.working_size
        differ = np.zeros((h, w), bool)
        a_covered = np.zeros((h, w), bool)
        b_covered = np.zeros((h, w), bool)
        empty = np.zeros((h, w), bool)
        for cls in set(a) | set(b):
            a_mask, b_mask = a.get(cls, empty), b.get(cls, empty)
            differ |= a_mask ^ b_mask
            a_covered |= a_mask
            b_covered |= b_mask
        return differ, a_covered, b_covered

    def legends(self, threshold: float) -> tuple[list[LegendEntry], list[LegendEntry]]:
        """(optimized, parent) instances above the threshold, strongest first, with their match state.

        Matched as the report matches (the same instances in the same order), so that at
        the report's threshold and IoU the counts are the report row's.
        """
        a = self.optimized_prediction.above(threshold)
        b = self.parent_prediction.above(threshold)
        matches = match_instances(a, b, self.iou)
        matched_a = {i for i, _, _ in matches}
        matched_b = {j for _, j, _ in matches}

        def entries(instances: list[Instance], matched: set[int]) -> list[LegendEntry]:
            listed = [
                LegendEntry(
                    inst.class_id,
                    class_name(self.class_names, inst.class_id),
                    inst.score,
                    class_color(inst.class_id),
                    n in matched,
                )
                for n, inst in enumerate(instances)
            ]
            return sorted(listed, key=lambda entry: -entry.score)

        return entries(a, matched_a), entries(b, matched_b)

    # -- drawing -----------------------------------------------------------------

    def _draw(
        self, decoded: list[_DecodedInstance], threshold: float, disagreement: BoolArray | None
    ) -> RgbArray:
        canvas = self.image.astype(np.float32)
        for d in decoded:
            if d.instance.score < threshold:
                continue
            ch, cw = d.crop.shape
            region = canvas[d.y0 : d.y0 + ch, d.x0 : d.x0 + cw]
            color = np.asarray(class_color(d.instance.class_id), np.float32)
            region[d.crop] = region[d.crop] * (1 - MASK_ALPHA) + color * MASK_ALPHA
        if disagreement is not None:
            color = np.asarray(DISAGREE_COLOR, np.float32)
            canvas[disagreement] = (
                canvas[disagreement] * (1 - DISAGREE_ALPHA) + color * DISAGREE_ALPHA
            )
        return np.clip(np.rint(canvas), 0, 255).astype(np.uint8)

    def _draw_overlay(self, threshold: float, disagreement: BoolArray) -> RgbArray:
        # A pixel the two agree on is covered by the same classes in both, so one
        # model's masks show the agreement; the disagreement goes over the bare image.
        canvas = self._draw(self._parent, threshold, None)
        base = self.image[disagreement].astype(np.float32)
        color = np.asarray(DISAGREE_COLOR, np.float32)
        blended = base * (1 - DISAGREE_ALPHA) + color * DISAGREE_ALPHA
        canvas[disagreement] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
        return canvas

    def render(
        self,
        threshold: float = DEFAULT_THRESHOLD,
        size: tuple[int, int] | None = None,
        *,
        highlight: bool = True,
    ) -> Visualization:
        """Draw both panels and the overlay at `threshold`, resized to `size` (w, h) when given.

        `highlight` also paints, on each side-by-side panel, the disagreement
        pixels that panel's model covers: magenta on A marks what A has and B
        does not, magenta on B what A lacks. The overlay always shows all of them.
        """
        disagreement, a_covered, b_covered = self._compare(threshold)
        covered = a_covered | b_covered
        a_legend, b_legend = self.legends(threshold)
        optimized = self._draw(
            self._optimized, threshold, disagreement & a_covered if highlight else None
        )
        parent = self._draw(
            self._parent, threshold, disagreement & b_covered if highlight else None
        )
        overlay = self._draw_overlay(threshold, disagreement)
        shown_disagreement = disagreement
        if size is not None and size != self.working_size:
            w, h = max(1, size[0]), max(1, size[1])
            # Average when shrinking (thin masks stay visible), keep edges crisp when enlarging.
            shrink = w * h < self.working_size[0] * self.working_size[1]
            method = cv2.INTER_AREA if shrink else cv2.INTER_NEAREST
            optimized, parent, overlay = (
                np.asarray(cv2.resize(p, (w, h), interpolation=method), np.uint8)
                for p in (optimized, parent, overlay)
            )
            shown_disagreement = np.asarray(
                cv2.resize(disagreement.astype(np.uint8) * 255, (w, h), interpolation=method) > 0
            )
        return Visualization(
            optimized=optimized,
            parent=parent,
            overlay=overlay,
            disagreement=shown_disagreement,
            optimized_legend=a_legend,
            parent_legend=b_legend,
            threshold=threshold,
            disagreement_pixels=int(disagreement.sum()),
            covered_pixels=int(covered.sum()),
        )


def step_threshold(threshold: float, delta: float) -> float:
    """The next point of the 0.05 grid in `delta`'s direction (`delta` in steps of 0.05), in
    the VISUALIZE schema's range; a threshold off the grid (the report's 0.12) goes to 0.15 or 0.1.

    Never moves against `delta`: below the range's minimum, a step down stays put.
    """
    field = VISUALIZE.threshold
    low = 0.0 if field.minimum is None else field.minimum
    high = 1.0 if field.maximum is None else field.maximum
    steps = max(1, round(abs(delta) / THRESHOLD_STEP))
    # Grid index of the threshold, with a tolerance for float noise (0.15 / 0.05 = 2.9999…).
    position = threshold / THRESHOLD_STEP
    if delta > 0:
        target = (math.floor(position + 1e-6) + steps) * THRESHOLD_STEP
    else:
        target = (math.ceil(position - 1e-6) - steps) * THRESHOLD_STEP
    stepped = round(min(high, max(low, target)), 4)
    if (delta > 0 and stepped < threshold) or (delta < 0 and stepped > threshold):
        return threshold
    return float(stepped)


def score_text(threshold: float) -> str:
    """A threshold as the screens show it: two decimals, more only where it has them (0.125)."""
    return f"{threshold:.2f}" if round(threshold, 2) == threshold else f"{threshold:g}"


def summary_line(vis: Visualization) -> str:
    """One line about a render: the instance and match counts, as the report row counts them,
    and the disagreeing share."""
    a, b = vis.optimized_legend, vis.parent_legend
    unmatched = sum(not e.matched for e in a) + sum(not e.matched for e in b)
    # The threshold last: a narrow screen cuts it off first (its header says it too).
    return (
        f"A {len(a)} · B {len(b)} · {vis.matches} match{'' if vis.matches == 1 else 'es'} · "
        f"{unmatched} unmatched · {vis.disagreement_share * 100:.1f} % of masked pixels differ"
        f" · at score ≥ {score_text(vis.threshold)}"
    )
