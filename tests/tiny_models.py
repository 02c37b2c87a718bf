"""Builders of tiny, real OpenVINO models in each format segtui reads.

Each builder writes an IR (`path` and its .bin) and returns `path`. Their outputs
are known constants (plus 0 x a reduction of the input, so the graph really
depends on the input), which lets tests check decoding down to the pixel. Boxes
are given in NETWORK-INPUT pixels, as the model would output them.
`build_omz_maskrcnn_conv` instead computes its scores and masks from the image
with real convolutions and a MatMul, for calibration and quantization tests.

The signatures here are used by other test modules: extend them with new keyword
arguments, never change the existing ones.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov
import openvino.opset13 as ops
import yaml

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Det:
    """One detection a tiny model outputs.

    `box` is (x1, y1, x2, y2) in network-input pixels. `mask` is a pattern name
    ("full", "left", "right", "top", "bottom") or an explicit array: SxS
    probabilities for the Mask R-CNN formats, a prototype-resolution (H/4 x W/4)
    boolean map for YOLO (None there means "everywhere", so the box crop alone
    shapes the mask).
    """

    class_id: int
    score: float
    box: Box
    mask: str | np.ndarray | None = "full"


DEFAULT_DETECTIONS: tuple[Det, ...] = (
    Det(0, 0.9, (8.0, 8.0, 40.0, 40.0), "full"),
    Det(1, 0.6, (48.0, 16.0, 80.0, 48.0), "left"),
)


def mask_pattern(
    pattern: str | np.ndarray | None, height: int, width: int | None = None
) -> np.ndarray:
    """A height x width f32 map of 0/1 for a pattern name, or the given array as f32."""
    width = height if width is None else width
    if pattern is None or (isinstance(pattern, str) and pattern == "full"):
        return np.ones((height, width), np.float32)
    if not isinstance(pattern, str):
        array = np.asarray(pattern, np.float32)
        assert array.shape == (height, width), (array.shape, (height, width))
        return array
    out = np.zeros((height, width), np.float32)
    if pattern == "left":
        out[:, : width // 2] = 1
    elif pattern == "right":
        out[:, width // 2 :] = 1
    elif pattern == "top":
        out[: height // 2] = 1
    elif pattern == "bottom":
        out[height // 2 :] = 1
    else:
        raise ValueError(f"unknown mask pattern {pattern!r}")
    return out


def _zero_of(*params: Any) -> Any:
    """A scalar 0 computed from every input, so no output is a bare constant."""
    total: Any = None
    for param in params:
        rank = len(param.get_output_partial_shape(0))
        term = ops.reduce_sum(param, list(range(rank)), keep_dims=False)
        total = term if total is None else ops.add(total, term)
    return ops.multiply(total, np.float32(0.0))


def _output(constant: np.ndarray, zero: Any, name: str) -> Any:
    """A named result equal to `constant` but wired to the input through `zero`."""
    if np.issubdtype(constant.dtype, np.integer):
        node = ops.add(ops.constant(constant), ops.convert(zero, constant.dtype))
    else:
        node = ops.add(ops.constant(constant.astype(np.float32)), zero)
    node.output(0).get_tensor().set_names({name})
    return ops.result(node)


def _image(input_hw: tuple[int, int], name: str = "image") -> Any:
    param = ops.parameter([1, 3, input_hw[0], input_hw[1]], np.float32, name=name)
    param.output(0).get_tensor().set_names({name})
    return param


def _save(
    model: ov.Model,
    path: Path,
    labels: Sequence[str] | None = None,
    model_info: dict[str, str] | None = None,
    *,
    keep_names: Collection[str] = (),
    fp16: bool = False,
) -> Path:
    """Write the IR; `keep_names`: nodes named so keep their names, `fp16`: FP16 weights."""
    info = dict(model_info or {})
    if labels is not None:
        info["labels"] = " ".join(labels)
    for key, value in info.items():
        model.set_rt_info(value, ["model_info", key])
    # OpenVINO numbers unnamed nodes process-wide (Multiply_4521...), so the saved
    # IR, and its size, would depend on what the process built before: name them here.
    for index, op in enumerate(model.get_ordered_ops()):
        kept = op.get_type_name() in ("Parameter", "Result") or op.get_friendly_name() in keep_names
        if not kept:
            op.set_friendly_name(f"{op.get_type_name()}_{index}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(model, str(path), compress_to_fp16=fp16)
    return path


def _write_metadata(
    path: Path, input_hw: tuple[int, int], names: dict[int, str] | list[str]
) -> None:
    """A metadata.yaml beside the IR, as Ultralytics writes one."""
    metadata = {
        "task": "segment",
        "imgsz": list(input_hw),
        "names": names,
        "description": "tiny test model",
    }
    (path.parent / "metadata.yaml").write_text(yaml.safe_dump(metadata), encoding="utf-8")


def build_omz_maskrcnn(
    path: Path,
    input_hw: tuple[int, int] = (64, 96),
    detections: Sequence[Det] = DEFAULT_DETECTIONS,
    mask_size: int = 28,
    *,
    padding_rows: int = 2,
    labels: Sequence[str] | None = None,
    model_info: dict[str, str] | None = None,
    output_names: tuple[str, str, str] = ("labels", "boxes", "masks"),
    output_order: tuple[int, int, int] = (0, 1, 2),
) -> Path:
    """OMZ Mask R-CNN (current): image [1,3,H,W] -> labels [N] i32, boxes [N,5], masks [N,S,S].

    `padding_rows` rows of score 0 follow the detections, as in real exports.
    `labels` (and any `model_info`) go into rt_info model_info. `output_order`
    permutes the outputs (indices into labels, boxes, masks) to prove detection
    does not rely on their order.
    """
    n = len(detections) + padding_rows
    label_rows = np.zeros(n, np.int32)
    box_rows = np.zeros((n, 5), np.float32)
    mask_rows = np.zeros((n, mask_size, mask_size), np.float32)
    for i, det in enumerate(detections):
        label_rows[i] = det.class_id
        box_rows[i] = (*det.box, det.score)
        mask_rows[i] = mask_pattern(det.mask, mask_size)
    image = _image(input_hw)
    zero = _zero_of(image)
    results = [
        _output(label_rows, zero, output_names[0]),
        _output(box_rows, zero, output_names[1]),
        _output(mask_rows, zero, output_names[2]),
    ]
    model = ov.Model([results[i] for i in output_order], [image], "tiny_omz_maskrcnn")
    return _save(model, path, labels, model_info)


def build_model_api_maskrcnn(
    path: Path,
    input_hw: tuple[int, int] = (64, 96),
    detections: Sequence[Det] = DEFAULT_DETECTIONS,
    mask_size: int | None = 28,
    *,
    padding_rows: int = 2,
    labels: Sequence[str] | None = None,
    model_info: dict[str, str] | None = None,
    with_feature_vector: bool = False,
) -> Path:
    """OTX / Model API Mask R-CNN: boxes [1,N,5], labels [1,N] i64, masks [1,N,S,S].

    With `mask_size=None` the masks cover the whole input ([1,N,H,W]) and each
    detection's `mask` is an HxW array in input pixels (or a pattern name, applied
    to the box region). `model_info` defaults to OTX's usual keys.
    """
    info = {"model_type": "MaskRCNN", "confidence_threshold": "0.5"}
    info.update(model_info or {})
    n = len(detections) + padding_rows
    mh, mw = (mask_size, mask_size) if mask_size else input_hw
    label_rows = np.zeros((1, n), np.int64)
    box_rows = np.zeros((1, n, 5), np.float32)
    mask_rows = np.zeros((1, n, mh, mw), np.float32)
    for i, det in enumerate(detections):
        label_rows[0, i] = det.class_id
        box_rows[0, i] = (*det.box, det.score)
        if mask_size:
            mask_rows[0, i] = mask_pattern(det.mask, mask_size)
        elif isinstance(det.mask, np.ndarray):
            mask_rows[0, i] = det.mask
        else:
            x1, y1, x2, y2 = (round(v) for v in det.box)
            mask_rows[0, i, y1:y2, x1:x2] = mask_pattern(det.mask, y2 - y1, x2 - x1)
    image = _image(input_hw)
    zero = _zero_of(image)
    results = [
        _output(box_rows, zero, "boxes"),
        _output(label_rows, zero, "labels"),
        _output(mask_rows, zero, "masks"),
    ]
    if with_feature_vector:
        results.append(_output(np.zeros((1, 16), np.float32), zero, "feature_vector"))
    model = ov.Model(results, [image], "tiny_model_api_maskrcnn")
    return _save(model, path, labels, info)


def build_omz_maskrcnn_legacy(
    path: Path,
    input_hw: tuple[int, int] = (64, 96),
    detections: Sequence[Det] = DEFAULT_DETECTIONS,
    num_classes: int = 3,
    mask_size: int = 14,
    *,
    background_rows: Sequence[tuple[float, Box]] = ((0.95, (0.0, 0.0, 30.0, 30.0)),),
    rows: int = 100,
) -> Path:
    """Older OMZ Mask R-CNN: im_data [1,3,H,W] + im_info [1,3] -> classes [100] f32,
    scores [100], boxes [100,4], raw_masks [100,C,S,S] with C = num_classes + 1.

    `Det.class_id` is 0-based; the model outputs it + 1 (0 is the background).
    `background_rows` (score, box) rows have class 0 and must be dropped. Every
    channel but the predicted class's holds the INVERSE of the mask, so decoding
    the wrong channel shows.
    """
    classes = np.zeros(rows, np.float32)
    scores = np.zeros(rows, np.float32)
    boxes = np.zeros((rows, 4), np.float32)
    raw_masks = np.zeros((rows, num_classes + 1, mask_size, mask_size), np.float32)
    for i, det in enumerate(detections):
        pattern = mask_pattern(det.mask, mask_size)
        classes[i] = det.class_id + 1
        scores[i] = det.score
        boxes[i] = det.box
        raw_masks[i] = 1.0 - pattern
        raw_masks[i, det.class_id + 1] = pattern
    for j, (score, box) in enumerate(background_rows, start=len(detections)):
        scores[j] = score
        boxes[j] = box
        raw_masks[j] = 1.0
    im_data = _image(input_hw, "im_data")
    im_info = ops.parameter([1, 3], np.float32, name="im_info")
    im_info.output(0).get_tensor().set_names({"im_info"})
    zero = _zero_of(im_data, im_info)
    results = [
        _output(boxes, zero, "boxes"),
        _output(classes, zero, "classes"),
        _output(raw_masks, zero, "raw_masks"),
        _output(scores, zero, "scores"),
    ]
    model = ov.Model(results, [im_data, im_info], "tiny_omz_maskrcnn_legacy")
    return _save(model, path)


def build_yolo_seg(
    path: Path,
    input_hw: tuple[int, int] = (64, 64),
    detections: Sequence[Det] = (Det(0, 0.9, (8.0, 8.0, 32.0, 40.0), None),),
    num_classes: int = 2,
    *,
    num_coefficients: int = 32,
    background_anchors: int = 8,
    metadata_names: dict[int, str] | list[str] | None = None,
    model_info: dict[str, str] | None = None,
    output_names: tuple[str, str] = ("output0", "output1"),
) -> Path:
    """Ultralytics YOLO -seg: images [1,3,H,W] -> [1,4+nc+nm,A] and prototypes [1,nm,H/4,W/4].

    Prototype 0 is constant; prototype k+1 is +1 where detection k's `mask` (an
    H/4 x W/4 boolean map, None = everywhere) is set and -1 elsewhere, and the
    detection's coefficients pick it with weight 20, so sigmoid(coeffs @ protos)
    is ~1 on the mask and ~0 off it before the box crop. `background_anchors`
    anchors score 0. With `metadata_names` a metadata.yaml is written beside the
    IR as Ultralytics does.
    """
    assert len(detections) < num_coefficients
    mh, mw = input_hw[0] // 4, input_hw[1] // 4
    anchors = len(detections) + background_anchors
    pred = np.zeros((1, 4 + num_classes + num_coefficients, anchors), np.float32)
    protos = np.zeros((1, num_coefficients, mh, mw), np.float32)
    protos[0, 0] = 1.0
    for k, det in enumerate(detections):
        x1, y1, x2, y2 = det.box
        pred[0, :4, k] = ((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1)
        pred[0, 4 + det.class_id, k] = det.score
        pattern = mask_pattern(det.mask, mh, mw)
        protos[0, k + 1] = np.where(pattern > 0.5, 1.0, -1.0)
        pred[0, 4 + num_classes + k + 1, k] = 20.0
    for k in range(len(detections), anchors):
        pred[0, :4, k] = (10.0, 10.0, 4.0, 4.0)
    image = _image(input_hw, "images")
    zero = _zero_of(image)
    results = [_output(pred, zero, output_names[0]), _output(protos, zero, output_names[1])]
    model = ov.Model(results, [image], "tiny_yolo_seg")
    if model_info is not None:
        model_info = {"model_type": "YOLO", **model_info}
    path = _save(model, path, None, model_info)
    if metadata_names is not None:
        _write_metadata(path, input_hw, metadata_names)
    return path


#: The names of an Ultralytics export's DFL (YOLOv8-seg, head model.22), which
#: build_yolo_seg_dfl gives its own.
DFL_CONV = "__module.model.22.dfl.conv/aten::_convolution/Convolution"
DFL_SOFTMAX = "__module.model.22.dfl/aten::softmax/Softmax"
DFL_TRANSPOSE = "__module.model.22.dfl/aten::transpose/Transpose"
DFL_RESHAPE = "__module.model.22.dfl/aten::view/Reshape"
#: Distance bins per box side (Ultralytics' reg_max).
REG_MAX = 16


def _silu_conv(x: Any, out_ch: int, rng: np.random.Generator, stride: int = 1) -> Any:
    """A learned 3x3 convolution (seeded weights) and SiLU, as Ultralytics' Conv blocks."""
    in_ch = x.get_output_partial_shape(0)[1].get_length()
    w = rng.normal(0, 0.4, (out_ch, in_ch, 3, 3)).astype(np.float32)
    conv = ops.convolution(x, ops.constant(w), [stride] * 2, [1, 1], [1, 1], [1, 1])
    return ops.swish(conv)


def _head_conv(x: Any, out_ch: int, rng: np.random.Generator) -> Any:
    """A learned 1x1 prediction convolution (seeded weights), flattened to [1, out_ch, h*w]."""
    in_ch = x.get_output_partial_shape(0)[1].get_length()
    w = rng.normal(0, 0.5, (out_ch, in_ch, 1, 1)).astype(np.float32)
    conv = ops.convolution(x, ops.constant(w), [1, 1], [0, 0], [0, 0], [1, 1])
    return ops.reshape(conv, ops.constant(np.array([1, out_ch, -1], np.int64)), False)


def _named(node: Any, name: str) -> Any:
    node.set_friendly_name(name)
    return node


def _dfl_boxes(box: Any, anchors: int, fp16: bool, strides: np.ndarray, points: np.ndarray) -> Any:
    """Ultralytics' DFL and dist2bbox: [1,64,A] bin logits -> [1,4,A] xywh boxes in pixels."""
    bins = _named(
        ops.reshape(box, ops.constant(np.array([1, 4, REG_MAX, anchors], np.int64)), False),
        DFL_RESHAPE,
    )
    moved = _named(
        ops.transpose(bins, ops.constant(np.array([0, 2, 1, 3], np.int64))), DFL_TRANSPOSE
    )
    softmax = _named(ops.softmax(moved, 1), DFL_SOFTMAX)
    arange = np.arange(REG_MAX, dtype=np.float32).reshape(1, REG_MAX, 1, 1)
    # The real export stores FP16 weights: Constant f16 -> Convert -> Convolution.
    weights = (
        ops.convert(ops.constant(arange.astype(np.float16)), np.float32)
        if fp16
        else ops.constant(arange)
    )
    conv = _named(ops.convolution(softmax, weights, [1, 1], [0, 0], [0, 0], [1, 1]), DFL_CONV)
    dist = ops.reshape(conv, ops.constant(np.array([1, 4, anchors], np.int64)), False)
    lt, rb = ops.split(dist, ops.constant(np.int64(1)), 2).outputs()
    x1y1 = ops.subtract(ops.constant(points), lt)
    x2y2 = ops.add(ops.constant(points), rb)
    centre = ops.multiply(ops.add(x1y1, x2y2), ops.constant(np.float32(0.5)))
    size = ops.subtract(x2y2, x1y1)
    return ops.multiply(ops.concat([centre, size], 1), ops.constant(strides))


def build_yolo_seg_dfl(
    path: Path,
    input_hw: tuple[int, int] = (64, 64),
    num_classes: int = 2,
    *,
    num_coefficients: int = 32,
    seed: int = 0,
    fp16: bool = False,
    metadata_names: dict[int, str] | list[str] | None = None,
) -> Path:
    """Ultralytics YOLOv8-seg with real compute and its real DFL tail, for scope and INT8 tests.

    images [1,3,H,W] -> /255 -> Conv s2 -> SiLU -> Conv s2 -> SiLU (stride 4, whence the
    prototypes [1,nm,H/4,W/4] by a 1x1 conv) -> two levels (strides 8, 16: Conv s2 -> SiLU)
    with 1x1 box (4x16 bins), class and coefficient convs each, flattened and concatenated
    over the anchors. The box branch is Ultralytics' DFL: reshape [1,4,16,A] -> transpose ->
    softmax over the 16 bins -> 1x1 conv with fixed weights 0..15 (named DFL_CONV) ->
    reshape [1,4,A] -> dist2bbox with the anchor points and strides; then concatenated with
    sigmoid(classes) and the coefficients: output0 [1,4+nc+nm,A], output1 the prototypes.
    11 learned convolutions in all. `fp16`: the DFL weights are an f16 Constant -> Convert
    and the IR stores FP16 weights, as Ultralytics exports.
    """
    h, w = input_hw
    assert h % 16 == 0 and w % 16 == 0, "two levels at strides 8 and 16"
    rng = np.random.default_rng(seed)
    image = _image(input_hw, "images")
    x = _silu_conv(ops.multiply(image, np.float32(1.0 / 255.0)), 8, rng, 2)
    features = _silu_conv(x, 16, rng, 2)  # stride 4
    proto_w = rng.normal(0, 0.5, (num_coefficients, 16, 1, 1)).astype(np.float32)
    protos = ops.convolution(features, ops.constant(proto_w), [1, 1], [0, 0], [0, 0], [1, 1])
    protos.output(0).get_tensor().set_names({"output1"})
    heads: list[list[Any]] = [[], [], []]  # box, class, coefficient logits per level
    points, strides, level = [], [], features
    for stride in (8, 16):
        level = _silu_conv(level, 16, rng, 2)
        for branch, channels in zip(
            heads, (4 * REG_MAX, num_classes, num_coefficients), strict=True
        ):
            branch.append(_head_conv(level, channels, rng))
        ys, xs = np.mgrid[0 : h // stride, 0 : w // stride].astype(np.float32) + 0.5
        points.append(np.stack([xs.ravel(), ys.ravel()]))
        strides.append(np.full(xs.size, stride, np.float32))
    anchors = sum(p.shape[1] for p in points)
    box, cls, coefficients = (ops.concat(branch, 2) for branch in heads)
    boxes = _dfl_boxes(
        box, anchors, fp16, np.concatenate(strides)[None, None], np.concatenate(points, 1)[None]
    )
    detections = ops.concat([boxes, ops.sigmoid(cls), coefficients], 1)
    detections.output(0).get_tensor().set_names({"output0"})
    model = ov.Model([ops.result(detections), ops.result(protos)], [image], "tiny_yolo_seg_dfl")
    keep = (DFL_CONV, DFL_SOFTMAX, DFL_TRANSPOSE, DFL_RESHAPE)
    path = _save(model, path, keep_names=keep, fp16=fp16)
    if metadata_names is not None:
        _write_metadata(path, input_hw, metadata_names)
    return path


def build_omz_maskrcnn_conv(
    path: Path,
    input_hw: tuple[int, int] = (64, 64),
    num_classes: int = 3,
    *,
    seed: int = 0,
    labels: Sequence[str] | None = None,
) -> Path:
    """An OMZ-format Mask R-CNN with real compute, for calibration and quantization tests.

    image [1,3,H,W] (H == W, a multiple of 4) -> /255 -> Conv 3x3 s2 -> ReLU -> Conv 3x3 s2
    -> ReLU (features [1,8,H/4,W/4]). Scores: global average pool -> MatMul [8,4] ->
    Sigmoid, one per fixed box (the four image quadrants, classes 0,1,2,0...). Masks:
    Conv 1x1 (8 -> 4) -> Sigmoid, giving [4, H/4, H/4] per-box maps (S = H/4). Weights
    are seeded, so the outputs depend on the image deterministically.
    """
    h, w = input_hw
    assert h == w and h % 4 == 0, "per-box masks are square: use a square input"
    rng = np.random.default_rng(seed)
    k = 4
    image = _image(input_hw)
    x = ops.multiply(image, np.float32(1.0 / 255.0))
    w1 = rng.normal(0, 0.5, (8, 3, 3, 3)).astype(np.float32)
    x = ops.relu(ops.convolution(x, ops.constant(w1), [2, 2], [1, 1], [1, 1], [1, 1]))
    w2 = rng.normal(0, 0.3, (8, 8, 3, 3)).astype(np.float32)
    features = ops.relu(ops.convolution(x, ops.constant(w2), [2, 2], [1, 1], [1, 1], [1, 1]))
    pooled = ops.reduce_mean(features, [2, 3], keep_dims=False)  # [1, 8]
    w3 = rng.normal(0, 1.0, (8, k)).astype(np.float32)
    logits = ops.matmul(pooled, ops.constant(w3), False, False)  # [1, k]
    scores = ops.reshape(ops.sigmoid(logits), ops.constant(np.array([k, 1], np.int64)), False)
    half_w, half_h = w / 2, h / 2
    quadrants = np.array(
        [
            [0, 0, half_w, half_h],
            [half_w, 0, w, half_h],
            [0, half_h, half_w, h],
            [half_w, half_h, w, h],
        ],
        np.float32,
    )
    boxes = ops.concat([ops.constant(quadrants), scores], axis=1)  # [k, 5]
    boxes.output(0).get_tensor().set_names({"boxes"})
    w4 = rng.normal(0, 1.0, (k, 8, 1, 1)).astype(np.float32)
    mask_logits = ops.convolution(features, ops.constant(w4), [1, 1], [0, 0], [0, 0], [1, 1])
    s = h // 4
    masks = ops.reshape(
        ops.sigmoid(mask_logits), ops.constant(np.array([k, s, s], np.int64)), False
    )
    masks.output(0).get_tensor().set_names({"masks"})
    zero = _zero_of(image)
    label_values = np.array([i % num_classes for i in range(k)], np.int32)
    label_out = _output(label_values, zero, "labels")
    boxes_out = ops.result(boxes)
    masks_out = ops.result(masks)
    model = ov.Model([label_out, boxes_out, masks_out], [image], "tiny_omz_maskrcnn_conv")
    return _save(model, path, labels)


def build_classifier(path: Path, num_classes: int = 1000) -> Path:
    """A classifier, to be refused: image [1,3,224,224] -> prob [1,1000]."""
    image = _image((224, 224))
    pooled = ops.reduce_mean(image, [2, 3], keep_dims=False)  # [1, 3]
    weights = np.full((3, num_classes), 0.01, np.float32)
    prob = ops.softmax(ops.matmul(pooled, ops.constant(weights), False, False), 1)
    prob.output(0).get_tensor().set_names({"prob"})
    model = ov.Model([ops.result(prob)], [image], "tiny_classifier")
    return _save(model, path)


def build_dynamic(path: Path) -> Path:
    """An OMZ-like model whose image input is [1,3,?,?], to be refused (or reshaped)."""
    image = ops.parameter(ov.PartialShape([1, 3, -1, -1]), np.float32, name="image")
    image.output(0).get_tensor().set_names({"image"})
    zero = _zero_of(image)
    results = [
        _output(np.zeros(2, np.int32), zero, "labels"),
        _output(np.zeros((2, 5), np.float32), zero, "boxes"),
        _output(np.zeros((2, 14, 14), np.float32), zero, "masks"),
    ]
    model = ov.Model(results, [image], "tiny_dynamic")
    return _save(model, path)
