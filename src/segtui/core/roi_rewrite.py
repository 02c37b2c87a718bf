"""OMZ's ExperimentalDetectronROIFeatureExtractor as one ROIAlign over a padded pyramid.

OMZ's instance-segmentation models pool their ROIs with
ExperimentalDetectronROIFeatureExtractor. The CPU plugin runs it as reference
code: per call it sorts the ROIs by level, allocates and zero-fills a
temporary of the whole output, pools level by level and copies the result
back in the original order. On the OMZ-structured sample (1000 ROIs at 7x7,
100 at 14x14) the two extractors take 60-70 % of the INT8 model's time; the
quantized compute takes a quarter of it.

The same pooling is one ROIAlign (the CPU plugin's JIT kernel) over the
levels stacked as a batch: each level padded to the largest level's size by
repeating its last row and column, a zero plane appended for ROIs of no area,
every ROI given the batch index of its level and its coordinates divided by
that level's scale. The level is the extractor's own rule,
``floor(2 + log2(sqrt(area) / 224 + 1e-6))`` clamped to the levels. Bilinear
samples at the bottom and right edge of a level read the repeated row, which
is what the extractor's clamp reads. Identical for ROIs inside the image; a
ROI reaching past the image's right or bottom edge reads a level's edge value
where the extractor reads 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NotRequired, TypedDict

import numpy as np

if TYPE_CHECKING:
    import openvino as ov

EXTRACTOR = "ExperimentalDetectronROIFeatureExtractor"
#: The extractor's level rule (the CPU plugin's and Detectron's FPN assignment).
CANONICAL_SCALE = 224.0
CANONICAL_LEVEL = 2.0


class RoiRewriteJson(TypedDict):
    """One extractor, as the optimization record stores it: rewritten, or kept and why."""

    name: str
    levels: int
    rois: int
    output_size: int
    #: Why it was kept as it is (absent: rewritten).
    skipped: NotRequired[str]


@dataclass(frozen=True)
class RoiRewrite:
    """An extractor replaced by the pyramid ROIAlign (or left, with the reason)."""

    name: str
    levels: int
    rois: int
    output_size: int
    #: Why it was left as it is; "" when it was rewritten.
    skipped: str = ""

    def to_json(self) -> RoiRewriteJson:
        data = RoiRewriteJson(
            name=self.name, levels=self.levels, rois=self.rois, output_size=self.output_size
        )
        if self.skipped:
            data["skipped"] = self.skipped
        return data


def extractors(model: ov.Model) -> list[Any]:
    return [op for op in model.get_ordered_ops() if op.get_type_name() == EXTRACTOR]


def _why_not(node: Any) -> str:
    attrs = node.get_attributes()
    if attrs.get("aligned"):
        return "aligned=true (half-pixel ROIs) is not rewritten"
    shapes = [node.get_input_partial_shape(i) for i in range(1, node.get_input_size())]
    if not all(shape.is_static for shape in shapes):
        return "a pyramid level has a dynamic shape"
    if len({shape.to_shape()[1] for shape in shapes}) != 1:
        return "the levels differ in channels"
    if any(shape.to_shape()[0] != 1 for shape in shapes):
        return "a level has a batch other than 1"
    return ""


def rewrite_roi_extractors(model: ov.Model) -> list[RoiRewrite]:
    """Replace each rewritable extractor of `model` in place; report what was done."""
    done = []
    for node in extractors(model):
        reason = _why_not(node)
        attrs = node.get_attributes()
        rois = node.get_input_partial_shape(0)
        count = rois[0].get_length() if rois[0].is_static else -1
        record = RoiRewrite(
            name=node.get_friendly_name(),
            levels=node.get_input_size() - 1,
            rois=count,
            output_size=int(attrs["output_size"]),
            skipped=reason,
        )
        if not reason:
            _replace(node, attrs)
        done.append(record)
    if any(not r.skipped for r in done):
        model.validate_nodes_and_infer_types()
    return done


def _replace(node: Any, attrs: dict[str, Any]) -> None:
    import openvino.opset9 as opset9
    import openvino.opset13 as ops

    rois = node.input_value(0)
    levels = [node.input_value(i) for i in range(1, node.get_input_size())]
    shapes = [level.get_partial_shape().to_shape() for level in levels]
    height, width = max(s[2] for s in shapes), max(s[3] for s in shapes)
    planes = [
        ops.pad(
            level,
            np.zeros(4, np.int64),
            np.array([0, 0, height - s[2], width - s[3]], np.int64),
            "edge",
        )
        for level, s in zip(levels, shapes, strict=True)
    ]
    # The plane after the last level is all zeros: ROIs of no area pool nothing.
    # Broadcast from a scalar: a zeros constant would put a whole level into the .bin.
    empty_plane = ops.broadcast(
        ops.convert_like(ops.constant(np.float32(0)), levels[0]),
        ops.constant(np.array([1, shapes[0][1], height, width], np.int64)),
    )
    pyramid = ops.concat([*planes, empty_plane], 0)
    corners = ops.split(ops.convert(rois, "f32"), 1, 4)
    area = ops.multiply(
        ops.subtract(corners.output(2), corners.output(0)),
        ops.subtract(corners.output(3), corners.output(1)),
    )
    size = ops.divide(ops.sqrt(ops.maximum(area, np.float32(0))), np.float32(CANONICAL_SCALE))
    log2 = ops.divide(ops.log(ops.add(size, np.float32(1e-6))), np.float32(math.log(2.0)))
    level = ops.clamp(
        ops.floor(ops.add(log2, np.float32(CANONICAL_LEVEL))), 0.0, float(len(levels) - 1)
    )
    level = ops.select(ops.greater(area, np.float32(0)), level, np.float32(len(levels)))
    index = ops.convert(ops.squeeze(level, [1]), "i32")
    scales = [1.0 / float(s) for s in attrs["pyramid_scales"]] + [0.0]
    inverse = ops.gather(ops.constant(np.array(scales, np.float32)), index, 0)
    scaled = ops.multiply(ops.convert(rois, "f32"), ops.unsqueeze(inverse, [1]))
    size_out = int(attrs["output_size"])
    pooled = opset9.roi_align(
        pyramid,
        ops.convert_like(scaled, rois),
        index,
        size_out,
        size_out,
        int(attrs["sampling_ratio"]),
        1.0,
        "avg",
        "asymmetric",
    )
    # opset9.roi_align takes a `name` but does not apply it (openvino 2026.4).
    pooled.set_friendly_name(f"{node.get_friendly_name()}/pyramid_roi_align")
    for target in list(node.output(0).get_target_inputs()):
        target.replace_source_output(pooled.output(0))
    if node.get_output_size() > 1:
        # The extractor's second output is its input ROIs, copied.
        for target in list(node.output(1).get_target_inputs()):
            target.replace_source_output(rois)


def rewrite_text(rewrites: list[RoiRewriteJson] | None) -> str:
    """How an optimization record's rewrites read on the project page and in the CLI."""
    if not rewrites:
        return ""
    pooled = [r for r in rewrites if not r.get("skipped")]
    kept = [r for r in rewrites if r.get("skipped")]
    parts = []
    if pooled:
        sizes = ", ".join(
            f"{r['rois']} ROIs at {r['output_size']}x{r['output_size']}" for r in pooled
        )
        parts.append(
            f"{len(pooled)} ExperimentalDetectronROIFeatureExtractor pooled by one ROIAlign "
            f"each over the padded pyramid ({sizes}; same features)"
        )
    if kept:
        reasons = "; ".join(f"{r['name']}: {r.get('skipped')}" for r in kept)
        parts.append(f"{len(kept)} kept as they are ({reasons})")
    return "; ".join(parts)
