"""A tiny Mask R-CNN laid out as OMZ's instance-segmentation-security models are.

The same structure as tools/omz_structure.py builds from the trained sample, at a size
that builds and runs in milliseconds, with seeded random weights:

    image [1,3,64,64] -> /255 - 0.5 -> stem + 4 Convolutions (stride 2: P2..P5), MaxPool (P6)
    shared RPN head (Conv 3x3) -> objectness (Conv 1x1, Sigmoid), deltas (Conv 1x1) per level
    PriorGridGenerator + GenerateProposalsSingleImage per level -> Concat -> TopKROIs
    ROIFeatureExtractor (7x7, P2..P5) -> Reshape -> 2 MatMuls -> cls (MatMul, Softmax), deltas
    DetectionOutput (3 classes + background, 10 detections) -> Add (0,0,1,1) -> Minimum
    -> Multiply (x2, the sample mask head's canonical scale 112) -> ROIFeatureExtractor (14x14)
    -> 2 Convolutions -> ConvolutionBackpropData (28x28) -> Conv 1x1 (classes)
    -> Gather (batch_dims=1) by class -> Sigmoid
    outputs: labels [10] i32 (class - 1), boxes [10,5] (x1,y1,x2,y2,score), masks [10,28,28]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import openvino as ov
import openvino.opset13 as ops
from openvino.utils.node_factory import NodeFactory
from tiny_models import _save

INPUT_HW = (64, 64)
CHANNELS = 8
CLASSES = 3  # plus the background
LABELS = ("square", "disc", "bar")
STRIDES = (4, 8, 16, 32, 64)
ANCHOR_SIZES = (8.0, 16.0, 32.0, 48.0, 64.0)
ASPECT_RATIOS = (0.5, 1.0, 2.0)
PRE_NMS = POST_NMS = MAX_ROIS = 50
DETECTIONS = 10
BOX_POOL, MASK_POOL, MASK_SIZE = 7, 14, 28
#: The mask extractor reads ROIs scaled by 224 / 112, as the sample's mask head does.
MASK_ROI_SCALE = 2.0
#: The names the tests look for (kept by `_save`; other nodes are numbered by type).
BOX_EXTRACTOR = "box_roi_extractor"
MASK_EXTRACTOR = "mask_roi_extractor"
DETECTION_OUTPUT = "detection_output"
TOP_K = "top_k_rois"
MASK_GATHER = "mask_gather"
MASK_SIGMOID = "mask_sigmoid"
BOX_ADD = "boxes_plus_one"
BOX_MIN = "boxes_clip"
KEPT_NAMES = (
    BOX_EXTRACTOR,
    MASK_EXTRACTOR,
    DETECTION_OUTPUT,
    TOP_K,
    MASK_GATHER,
    MASK_SIGMOID,
    BOX_ADD,
    BOX_MIN,
)


@dataclass(frozen=True)
class _Weights:
    """Seeded weights, drawn in one order so the model is the same on every run."""

    rng: np.random.Generator

    def conv(self, x: Any, out_ch: int, in_ch: int, kernel: int, stride: int = 1) -> Any:
        scale = math.sqrt(2.0 / (in_ch * kernel * kernel))
        weights = self.rng.normal(0, scale, (out_ch, in_ch, kernel, kernel)).astype(np.float32)
        pad = kernel // 2
        conv = ops.convolution(
            x, ops.constant(weights), [stride, stride], [pad, pad], [pad, pad], [1, 1]
        )
        bias = self.rng.normal(0, 0.1, (1, out_ch, 1, 1)).astype(np.float32)
        return ops.add(conv, ops.constant(bias))

    def matmul(self, x: Any, inputs: int, outputs: int) -> Any:
        weights = self.rng.normal(0, math.sqrt(2.0 / inputs), (inputs, outputs))
        product = ops.matmul(x, ops.constant(weights.astype(np.float32)), False, False)
        bias = self.rng.normal(0, 0.1, (1, outputs)).astype(np.float32)
        return ops.add(product, ops.constant(bias))


def _priors(size: float) -> np.ndarray:
    """The base anchors of one level (PriorGridGenerator centres them at (x + 0.5) * stride)."""
    rows = []
    for ratio in ASPECT_RATIOS:
        w, h = size / math.sqrt(ratio), size * math.sqrt(ratio)
        rows.append([-w / 2, -h / 2, w / 2 - 1, h / 2 - 1])
    return np.array(rows, np.float32)


def _backbone(image: Any, w: _Weights) -> list[Any]:
    """P2..P6: four stride-2 Convolutions after a stride-2 stem, and a MaxPool."""
    x = ops.subtract(ops.multiply(image, np.float32(1.0 / 255.0)), np.float32(0.5))
    x = ops.relu(w.conv(x, CHANNELS, 3, 3, stride=2))  # stride 2
    levels = []
    for _ in range(4):
        x = ops.relu(w.conv(x, CHANNELS, CHANNELS, 3, stride=2))
        levels.append(x)
    # torchvision's LastLevelMaxPool: kernel 1, stride 2.
    levels.append(ops.max_pool(x, [2, 2], [1, 1], [0, 0], [0, 0], [1, 1]).output(0))
    return levels


def _proposals(image: Any, levels: list[Any], w: _Weights, factory: NodeFactory) -> Any:
    """The RPN head, the proposals of each level and the TopKROIs of them all."""
    anchors = len(ASPECT_RATIOS)
    head_w = w.rng.normal(0, 0.2, (CHANNELS, CHANNELS, 3, 3)).astype(np.float32)
    obj_w = w.rng.normal(0, 0.5, (anchors, CHANNELS, 1, 1)).astype(np.float32)
    delta_w = w.rng.normal(0, 0.05, (4 * anchors, CHANNELS, 1, 1)).astype(np.float32)
    im_info = ops.constant(np.array([INPUT_HW[0], INPUT_HW[1], 1.0], np.float32))
    rois, scores = [], []
    for level, stride, size in zip(levels, STRIDES, ANCHOR_SIZES, strict=True):
        hidden = ops.relu(
            ops.convolution(level, ops.constant(head_w), [1, 1], [1, 1], [1, 1], [1, 1])
        )
        objectness = ops.sigmoid(
            ops.convolution(hidden, ops.constant(obj_w), [1, 1], [0, 0], [0, 0], [1, 1])
        )
        deltas = ops.convolution(hidden, ops.constant(delta_w), [1, 1], [0, 0], [0, 0], [1, 1])
        grid = factory.create(
            "ExperimentalDetectronPriorGridGenerator",
            [ops.constant(_priors(size)).output(0), level, image.output(0)],
            {"flatten": True, "h": 0, "w": 0, "stride_x": float(stride), "stride_y": float(stride)},
        )
        found = factory.create(
            "ExperimentalDetectronGenerateProposalsSingleImage",
            [
                im_info.output(0),
                grid.output(0),
                ops.squeeze(deltas, [0]).output(0),
                ops.squeeze(objectness, [0]).output(0),
            ],
            {
                "min_size": 0.0,
                "nms_threshold": 0.7,
                "post_nms_count": POST_NMS,
                "pre_nms_count": PRE_NMS,
            },
        )
        rois.append(found.output(0))
        scores.append(found.output(1))
    top = factory.create(
        "ExperimentalDetectronTopKROIs",
        [ops.concat(rois, 0).output(0), ops.concat(scores, 0).output(0)],
        {"max_rois": MAX_ROIS},
    )
    top.set_friendly_name(TOP_K)
    return top


def _extractor(
    factory: NodeFactory, rois: Any, levels: list[Any], size: int, scale: float, name: str
) -> Any:
    node = factory.create(
        "ExperimentalDetectronROIFeatureExtractor",
        [rois.output(0), *levels[:4]],
        {
            "output_size": size,
            "sampling_ratio": 2,
            "pyramid_scales": [round(s * scale) for s in STRIDES[:4]],
            "aligned": False,
        },
    )
    node.set_friendly_name(name)
    return node


def _box_head(pooled: Any, w: _Weights) -> tuple[Any, Any]:
    """Two MatMuls after a flatten, then class probabilities and per-class box deltas."""
    flat = ops.reshape(pooled.output(0), ops.constant(np.array([MAX_ROIS, -1], np.int64)), False)
    x = ops.relu(w.matmul(flat, CHANNELS * BOX_POOL * BOX_POOL, 32))
    x = ops.relu(w.matmul(x, 32, 32))
    probs = ops.softmax(w.matmul(x, 32, CLASSES + 1), 1)
    return probs, w.matmul(x, 32, 4 * (CLASSES + 1))


def _mask_head(pooled: Any, w: _Weights) -> Any:
    """Two Convolutions, a 2x ConvolutionBackpropData and a 1x1 Convolution to the classes."""
    x = ops.relu(w.conv(pooled.output(0), CHANNELS, CHANNELS, 3))
    x = ops.relu(w.conv(x, CHANNELS, CHANNELS, 3))
    up_w = w.rng.normal(0, 0.3, (CHANNELS, CHANNELS, 2, 2)).astype(np.float32)
    x = ops.relu(ops.convolution_backprop_data(x, ops.constant(up_w), [2, 2]))
    return w.conv(x, CLASSES + 1, CHANNELS, 1)


def build_omz_model(seed: int = 0) -> ov.Model:
    """The tiny OMZ-structured Mask R-CNN (see the module docstring)."""
    w = _Weights(np.random.default_rng(seed))
    factory = NodeFactory("opset6")
    image = ops.parameter([1, 3, *INPUT_HW], np.float32, name="image")
    image.output(0).get_tensor().set_names({"image"})
    levels = _backbone(image, w)
    top = _proposals(image, levels, w, factory)
    plus_one = ops.constant(np.array([[0, 0, 1, 1]], np.float32))
    box_pool = _extractor(
        factory, ops.add(top.output(0), plus_one), levels, BOX_POOL, 1.0, BOX_EXTRACTOR
    )
    probs, deltas = _box_head(box_pool, w)
    im_info = ops.constant(np.array([[INPUT_HW[0], INPUT_HW[1], 1.0]], np.float32))
    detection = factory.create(
        "ExperimentalDetectronDetectionOutput",
        [top.output(0), deltas.output(0), probs.output(0), im_info.output(0)],
        {
            "class_agnostic_box_regression": False,
            "deltas_weights": [10.0, 10.0, 5.0, 5.0],
            "max_delta_log_wh": float(math.log(1000.0 / 16)),
            "max_detections_per_image": DETECTIONS,
            "nms_threshold": 0.5,
            "num_classes": CLASSES + 1,
            "post_nms_count": POST_NMS,
            "score_threshold": 0.05,
        },
    )
    detection.set_friendly_name(DETECTION_OUTPUT)
    added = ops.add(detection.output(0), plus_one)
    added.set_friendly_name(BOX_ADD)
    limit = np.array([[INPUT_HW[1], INPUT_HW[0], INPUT_HW[1], INPUT_HW[0]]], np.float32)
    boxes = ops.minimum(added, ops.constant(limit))
    boxes.set_friendly_name(BOX_MIN)
    mask_rois = ops.multiply(boxes, np.float32(MASK_ROI_SCALE))
    mask_pool = _extractor(factory, mask_rois, levels, MASK_POOL, MASK_ROI_SCALE, MASK_EXTRACTOR)
    class_ids = detection.output(1)
    gathered = ops.gather(_mask_head(mask_pool, w), class_ids, 1, 1)
    gathered.set_friendly_name(MASK_GATHER)
    masks = ops.sigmoid(gathered)
    masks.set_friendly_name(MASK_SIGMOID)
    labels = ops.subtract(class_ids, ops.constant(np.array(1, np.int32)))
    box_scores = ops.concat([boxes, ops.unsqueeze(detection.output(2), [1])], 1)
    results = []
    for name, output in (("labels", labels), ("boxes", box_scores), ("masks", masks)):
        result = ops.result(output)
        result.output(0).get_tensor().set_names({name})
        result.set_friendly_name(name)
        results.append(result)
    return ov.Model(results, [image], "tiny_mask_rcnn_omz")


def write_textured_scenes(folder: Path, count: int, size: int = INPUT_HW[0]) -> list[Path]:
    """`count` images of smooth colour fields with noise, different at every position.

    The random model scores ROIs by their content: on an image that is the same along a
    row or column (conftest's scenes are a horizontal gradient), ROIs stacked along it tie
    exactly, and which of them NMS keeps is decided by rounding.
    """
    paths = []
    for seed in range(count):
        rng = np.random.default_rng(seed)
        low = rng.integers(0, 256, (6, 6, 3)).astype(np.float32)
        field = cv2.resize(low, (size, size), interpolation=cv2.INTER_CUBIC)
        pixels = np.clip(field + rng.normal(0, 12, field.shape), 0, 255).astype(np.uint8)
        path = folder / f"scene{seed}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        assert cv2.imwrite(str(path), pixels)
        paths.append(path)
    return paths


def build_tiny_omz_maskrcnn(path: Path, seed: int = 0) -> Path:
    """Write the tiny model's IR at `path` (FP16 weights, rt_info as the sample's); return it."""
    model = build_omz_model(seed)
    return _save(model, path, LABELS, {"model_type": "MaskRCNN"}, keep_names=KEPT_NAMES, fp16=True)
