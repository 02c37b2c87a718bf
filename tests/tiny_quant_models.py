"""A tiny OMZ-format Mask R-CNN whose INT8 model loses its boxes to one quantizer.

Real compute (two convolutions, a MatMul head) computed from the image, like
`tiny_models.build_omz_maskrcnn_conv`, plus a box-offset head whose MatMul output holds
the offsets (a few pixels) beside one huge value: quantized as one tensor (256 levels
over that range), the offsets round to whole steps of tens of pixels and every mask
lands in the wrong place. Kept in float, the model is as good as its parent.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import openvino as ov
import openvino.opset13 as ops
from tiny_models import _image, _output, _save, _zero_of

#: The original name of the layer the fragile quantizer feeds (kept by `_save`).
OFFSET_ADD = "box_decode/Add"
#: The MatMul whose output holds the offsets and the huge value.
OFFSET_MATMUL = "box_head/MatMul"
#: The size of the offsets, in pixels, and of the value beside them.
OFFSET_PX = 6.0
OUTLIER = 4000.0


def _conv(x: ov.Node, weights: np.ndarray, stride: int) -> ov.Node:
    pad = weights.shape[-1] // 2
    return ops.relu(
        ops.convolution(x, ops.constant(weights), [stride, stride], [pad, pad], [pad, pad], [1, 1])
    )


def _patterns(k: int, s: int) -> np.ndarray:
    """Mask logits per box: +6 on one half (left, right, top, bottom), -6 elsewhere."""
    out = np.full((1, k, s, s), -6.0, np.float32)
    for i in range(k):
        half = [(slice(None), slice(0, s // 2)), (slice(None), slice(s // 2, s))][i % 2]
        rows, cols = half if i < 2 else (half[1], half[0])
        out[0, i][rows, cols] = 6.0
    return out


def build_quant_sensitive_maskrcnn(
    path: Path, input_hw: tuple[int, int] = (64, 64), *, seed: int = 0
) -> Path:
    """The model (see the module doc): image [1,3,H,W] (H == W, a multiple of 4) -> labels,
    boxes [4,5] (the image quadrants moved by the offsets, with scores) and masks [4,H/4,H/4]."""
    h, w = input_hw
    assert h == w and h % 4 == 0
    rng = np.random.default_rng(seed)
    k, s = 4, h // 4
    image = _image(input_hw)
    x = ops.multiply(image, np.float32(1.0 / 255.0))
    x = _conv(x, rng.normal(0, 0.5, (8, 3, 3, 3)).astype(np.float32), 2)
    features = _conv(x, rng.normal(0, 0.3, (8, 8, 3, 3)).astype(np.float32), 2)
    pooled = ops.tanh(ops.reduce_mean(features, [2, 3], keep_dims=False))  # [1, 8] in [0, 1)
    weights = rng.normal(0, 0.2, (8, k)).astype(np.float32)
    logits = ops.add(
        ops.matmul(pooled, ops.constant(weights), False, False),
        ops.constant(np.full((1, k), 3.0, np.float32)),
    )
    scores = ops.reshape(ops.sigmoid(logits), ops.constant(np.array([k, 1], np.int64)), False)
    # One MatMul gives the 16 offsets (a few pixels) and a fifth row of huge values: the
    # tensor the box Add reads holds both.
    head = np.concatenate(
        [rng.normal(0, OFFSET_PX / 3, (8, 16)), np.full((8, 4), OUTLIER / 4)], axis=1
    ).astype(np.float32)
    raw = ops.matmul(pooled, ops.constant(head), False, False)  # [1, 20]
    raw.set_friendly_name(OFFSET_MATMUL)
    packed = ops.reshape(raw, ops.constant(np.array([k + 1, 4], np.int64)), False)
    half = w / 2
    quadrants = np.array(
        [
            [0, 0, half, half],
            [half, 0, w, half],
            [0, half, half, h],
            [half, half, w, h],
            [0, 0, 0, 0],
        ],
        np.float32,
    )
    decoded = ops.add(packed, ops.constant(quadrants))
    decoded.set_friendly_name(OFFSET_ADD)
    coords = ops.strided_slice(
        decoded,
        ops.constant(np.array([0, 0], np.int64)),
        ops.constant(np.array([k, 4], np.int64)),
        ops.constant(np.array([1, 1], np.int64)),
        [0, 0],
        [0, 0],
    )
    boxes = ops.concat([ops.clamp(coords, 0.0, float(w)), scores], axis=1)  # [k, 5]
    boxes.output(0).get_tensor().set_names({"boxes"})
    mask_weights = rng.normal(0, 0.1, (k, 8, 1, 1)).astype(np.float32)
    mask_logits = ops.add(
        ops.convolution(features, ops.constant(mask_weights), [1, 1], [0, 0], [0, 0], [1, 1]),
        ops.constant(_patterns(k, s)),
    )
    masks = ops.reshape(
        ops.sigmoid(mask_logits), ops.constant(np.array([k, s, s], np.int64)), False
    )
    masks.output(0).get_tensor().set_names({"masks"})
    labels = _output(np.array([i % 3 for i in range(k)], np.int32), _zero_of(image), "labels")
    model = ov.Model(
        [labels, ops.result(boxes), ops.result(masks)], [image], "tiny_quant_sensitive"
    )
    return _save(model, path, keep_names=(OFFSET_ADD, OFFSET_MATMUL))
