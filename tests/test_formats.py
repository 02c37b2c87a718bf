"""Format detection and decoding, run for real through OpenVINO on tiny models.

Every geometry here is chosen so the expected pixels can be worked out by hand:
the decoded masks must land on exactly those pixels of the original image.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import openvino as ov
import pytest
from tiny_models import (
    Det,
    build_classifier,
    build_dynamic,
    build_model_api_maskrcnn,
    build_omz_maskrcnn,
    build_omz_maskrcnn_conv,
    build_omz_maskrcnn_legacy,
    build_yolo_seg,
    mask_pattern,
)

from segtui.core.errors import UnsupportedModelError
from segtui.core.formats import (
    COCO_CLASSES,
    SUPPORTED_FORMATS,
    ExportMetadata,
    FormatAdapter,
    ModelApiMaskRcnnAdapter,
    OmzMaskRcnnAdapter,
    OmzMaskRcnnLegacyAdapter,
    PreprocessMeta,
    YoloSegAdapter,
    detect_format,
    map_to_original,
    paste_reference,
    read_metadata_yaml,
)
from segtui.core.predictions import Instance, decode_mask

_CORE = ov.Core()


def _load(path: Path, class_names: list[str] | None = None) -> tuple[ov.Model, FormatAdapter]:
    model = _CORE.read_model(path)
    return model, detect_format(model, path, class_names)


def _run(
    model: ov.Model, adapter: FormatAdapter, image: np.ndarray, threshold: float = 0.05
) -> tuple[list[Instance], dict[str, np.ndarray], PreprocessMeta]:
    """Preprocess, infer on CPU, decode: the whole path a real image takes."""
    inputs, meta = adapter.preprocess(image)
    compiled = _CORE.compile_model(model, "CPU")
    result = compiled(inputs)
    outputs = [np.asarray(result[port]) for port in compiled.outputs]
    return adapter.decode(outputs, meta, threshold), inputs, meta


def _box_mask(size: tuple[int, int], x1: int, y1: int, x2: int, y2: int) -> np.ndarray:
    """The pixels rows y1..y2-1, columns x1..x2-1 of an image of `size` (h, w)."""
    mask = np.zeros(size, np.uint8)
    mask[y1:y2, x1:x2] = 1
    return mask


def _image(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _assert_mask(instance: Instance, expected: np.ndarray) -> None:
    got = decode_mask(instance.rle)
    assert got.shape == expected.shape
    diff = np.argwhere(got != expected)
    assert diff.size == 0, f"{len(diff)} pixels differ, first at (row, col) {diff[:5].tolist()}"


# --------------------------------------------------------------------------- paste_reference
# The Detectron / Accuracy Checker paste (pixel-for-pixel checks in tests/test_paste.py):
# the SxS map padded by a zero cell, the box expanded by (S+2)/S and truncated to integers,
# both ends included, resized by cv2 (pixel i of m samples cell (i + 0.5) * n / m - 0.5 of
# n). With S=28 the box 10..50 expands to 8..51: 44 px from 30 cells. Pixel 0 samples
# -0.16 (the zero border: off), pixel 1 0.52 (on) ... pixel 42 28.48 (on), pixel 43 29.2
# (off): columns 9..50. A corner pixel is 0.52 x 0.52 = 0.27 of a one: off.


def _without_corners(mask: np.ndarray) -> np.ndarray:
    """`mask` (one filled rectangle) with the four corner pixels of the rectangle off."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    out = mask.copy()
    out[np.ix_(rows[[0, -1]], cols[[0, -1]])] = 0
    return out


def test_paste_all_ones_mask_covers_the_box_both_ends_included() -> None:
    mask = paste_reference(np.ones((28, 28), np.float32), (10, 20, 50, 60), (80, 70))
    expected = _without_corners(_box_mask((80, 70), 9, 19, 51, 61))
    assert np.array_equal(mask, expected.astype(bool))


def test_paste_left_half_mask_fills_the_left_half_of_the_expanded_box() -> None:
    # The 14 ones are padded cells 1..14: pixel 21 (column 29) samples 14.16 -> 0.84, on;
    # pixel 22 (column 30) samples 14.84 -> 0.16, off.
    prob = np.zeros((28, 28), np.float32)
    prob[:, :14] = 1
    mask = paste_reference(prob, (10, 20, 50, 60), (80, 70))
    expected = _without_corners(_box_mask((80, 70), 9, 19, 30, 61))
    assert np.array_equal(mask, expected.astype(bool))


def test_paste_clips_a_box_that_leaves_the_image_and_keeps_its_geometry() -> None:
    prob = np.zeros((14, 14), np.float32)
    prob[:7] = 1  # top half of a box from y=-20 to y=20 -> rows -20..-1: nothing visible
    assert not paste_reference(prob, (-10, -20, 30, 20), (40, 40)).any()
    # Expanded to -12..32 / -22..22 (45 px from 16 cells): column 29 samples 14.26 (0.74)
    # and row 19 alike, so even their corner is 0.55: on; column 30 / row 20: off.
    full = paste_reference(np.ones((14, 14), np.float32), (-10, -20, 30, 20), (40, 40))
    assert np.array_equal(full, _box_mask((40, 40), 0, 0, 30, 20).astype(bool))


def test_paste_truncates_the_expanded_box_of_fractional_boxes() -> None:
    # 10.4..20.4 expands by 16/14 to 9.69..21.11 -> 9..21: 13 px from 16 cells, column 9
    # samples 0.12 and column 21 14.88 (both 0.12 of a one: off). 5.6..9.6 expands to
    # 5.31..9.89 -> 5..9: 5 px sampling 1.1 .. 13.9, all inside the ones.
    mask = paste_reference(np.ones((14, 14), np.float32), (10.4, 5.6, 20.4, 9.6), (30, 30))
    assert np.array_equal(mask, _box_mask((30, 30), 10, 5, 21, 10).astype(bool))


# --------------------------------------------------------------------------- OMZ Mask R-CNN


def _pasted(
    size: tuple[int, int], box: tuple[float, float, float, float], pattern: str, mask_size: int
) -> np.ndarray:
    """The reference paste (checked pixel for pixel in test_paste.py) of a tiny model's mask
    pattern in the box worked out by hand: an adapter must hand it exactly this box and map,
    and the pattern must show (a half pattern covers about half of the pasted box)."""
    mask = paste_reference(mask_pattern(pattern, mask_size), box, size).astype(np.uint8)
    box_area = (box[2] - box[0]) * (box[3] - box[1])
    share = 1.0 if pattern == "full" else 0.5
    assert abs(int(mask.sum()) - share * box_area) < 0.1 * box_area
    return mask


def test_omz_maskrcnn_non_square_image_maps_boxes_and_masks_to_original_pixels(
    tmp_path: Path,
) -> None:
    # 120x200 into 64x96: x scaled by 0.48, y by 0.5333 apart ("standard" resize).
    detections = [
        Det(2, 0.7, (24.0, 16.0, 72.0, 48.0), "left"),  # -> (50, 30, 150, 90)
        Det(0, 0.9, (0.0, 32.0, 48.0, 64.0), "full"),  # -> (0, 60, 100, 120)
        Det(1, 0.03, (0.0, 0.0, 10.0, 10.0), "full"),  # under the threshold
    ]
    path = build_omz_maskrcnn(tmp_path / "m.xml", (64, 96), detections, mask_size=28)
    model, adapter = _load(path)
    assert isinstance(adapter, OmzMaskRcnnAdapter)
    assert adapter.format_id == "omz-maskrcnn"
    assert adapter.mask_size == 28
    assert adapter.input_size == (64, 96)
    assert adapter.image_input == "image"
    image = _image(120, 200)
    instances, inputs, meta = _run(model, adapter, image)

    assert set(inputs) == {"image"}
    expected_input = cv2.resize(image, (96, 64), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_array_equal(inputs["image"][0].transpose(1, 2, 0), expected_input)
    assert (meta.scale_x, meta.scale_y) == (0.48, 64 / 120)
    # Padding rows (score 0) and the low score are gone; best first.
    assert [i.class_id for i in instances] == [0, 2]
    assert [i.score for i in instances] == pytest.approx([0.9, 0.7])
    np.testing.assert_allclose(instances[0].box, (0, 60, 100, 120), atol=1e-4)
    np.testing.assert_allclose(instances[1].box, (50, 30, 150, 90), atol=1e-4)
    _assert_mask(instances[0], _pasted((120, 200), (0, 60, 100, 120), "full", 28))
    _assert_mask(instances[1], _pasted((120, 200), (50, 30, 150, 90), "left", 28))
    assert instances[0].rle["size"] == [120, 200]


def test_omz_maskrcnn_fit_to_window_from_rt_info_pads_right_and_bottom(tmp_path: Path) -> None:
    # 120x200 into 64x96 keeping the aspect ratio: scale 0.48, content 58x96, 6 rows of pad.
    detections = [Det(0, 0.8, (24.0, 12.0, 72.0, 36.0), "top")]  # -> (50, 25, 150, 75)
    path = build_omz_maskrcnn(
        tmp_path / "m.xml",
        (64, 96),
        detections,
        mask_size=14,
        labels=["cat", "dog"],
        model_info={"model_type": "MaskRCNN", "resize_type": "fit_to_window"},
    )
    model, adapter = _load(path)
    # resize_type alone is Model API metadata: decoded the same way, reported as such.
    assert adapter.format_id == "model-api-maskrcnn"
    assert adapter.settings()["resize_type"] == "fit_to_window"
    assert adapter.class_names == ["cat", "dog"]
    image = _image(120, 200, seed=3)
    instances, inputs, meta = _run(model, adapter, image)
    tensor = inputs["image"][0].transpose(1, 2, 0)
    assert (meta.scale_x, meta.scale_y, meta.pad_x, meta.pad_y) == (0.48, 0.48, 0.0, 0.0)
    np.testing.assert_array_equal(tensor[:58], cv2.resize(image, (96, 58)))
    assert not tensor[58:].any()
    assert len(instances) == 1
    np.testing.assert_allclose(instances[0].box, (50, 25, 150, 75), atol=1e-4)
    _assert_mask(instances[0], _pasted((120, 200), (50, 25, 150, 75), "top", 14))


def test_omz_maskrcnn_sample_style_rt_info_labels_and_any_output_order(tmp_path: Path) -> None:
    # The sample model: model_info holds model_type and labels only; outputs named freely.
    path = build_omz_maskrcnn(
        tmp_path / "m.xml",
        (256, 256),
        [Det(1, 0.5, (64.0, 64.0, 128.0, 192.0), "right")],
        mask_size=28,
        labels=["square", "disc", "triangle"],
        model_info={"model_type": "MaskRCNN"},
        output_names=("out_a", "out_b", "out_c"),
        output_order=(2, 0, 1),
    )
    model, adapter = _load(path)
    assert adapter.format_id == "omz-maskrcnn"
    assert adapter.class_names == ["square", "disc", "triangle"]
    assert adapter.settings()["outputs"] == {"labels": 1, "boxes": 2, "masks": 0}
    instances, _, _ = _run(model, adapter, _image(256, 256))
    assert [i.class_id for i in instances] == [1]
    _assert_mask(instances[0], _pasted((256, 256), (64, 64, 128, 192), "right", 28))


def test_omz_maskrcnn_without_labels_uses_coco_names_and_override_wins(tmp_path: Path) -> None:
    path = build_omz_maskrcnn(tmp_path / "m.xml")
    assert _load(path)[1].class_names == list(COCO_CLASSES)
    assert _load(path, ["a", "b"])[1].class_names == ["a", "b"]


# --------------------------------------------------------------------------- legacy OMZ


def test_legacy_maskrcnn_drops_background_and_takes_the_predicted_class_channel(
    tmp_path: Path,
) -> None:
    detections = [
        Det(0, 0.6, (24.0, 12.0, 72.0, 36.0), "left"),  # -> (50, 25, 150, 75)
        Det(2, 0.9, (0.0, 0.0, 48.0, 24.0), "bottom"),  # -> (0, 0, 100, 50)
    ]
    path = build_omz_maskrcnn_legacy(tmp_path / "m.xml", (64, 96), detections, num_classes=3)
    model, adapter = _load(path)
    assert isinstance(adapter, OmzMaskRcnnLegacyAdapter)
    assert adapter.format_id == "omz-maskrcnn-legacy"
    assert adapter.image_input == "im_data"
    assert adapter.mask_size == 14
    assert adapter.class_names == ["class 0", "class 1", "class 2"]
    image = _image(120, 200, seed=5)
    instances, inputs, meta = _run(model, adapter, image)
    # Aspect kept (scale 0.48), content 58x96 top-left, im_info = resized size and scale 1.
    np.testing.assert_array_equal(inputs["im_info"], [[58.0, 96.0, 1.0]])
    assert inputs["im_data"].shape == (1, 3, 64, 96)
    assert (meta.scale_x, meta.scale_y) == (0.48, 0.48)
    # The background row (score 0.95, class 0) is gone; class ids shift down by one.
    assert [i.class_id for i in instances] == [2, 0]
    assert [i.score for i in instances] == pytest.approx([0.9, 0.6])
    np.testing.assert_allclose(instances[0].box, (0, 0, 100, 50), atol=1e-4)
    _assert_mask(instances[0], _pasted((120, 200), (0, 0, 100, 50), "bottom", 14))
    _assert_mask(instances[1], _pasted((120, 200), (50, 25, 150, 75), "left", 14))


# --------------------------------------------------------------------------- YOLO -seg


def _yolo_detections() -> list[Det]:
    left_half = np.zeros((16, 16), bool)
    left_half[:, :8] = True  # input x < 32
    return [
        Det(0, 0.9, (16.0, 24.0, 32.0, 40.0), None),  # -> original (64, 32, 128, 96)
        Det(0, 0.8, (17.0, 24.0, 33.0, 40.0), None),  # IoU 0.88 with the first: suppressed
        Det(1, 0.85, (16.0, 24.0, 32.0, 40.0), None),  # same box, other class: kept
        Det(1, 0.5, (8.0, 24.0, 56.0, 40.0), left_half),  # -> (32, 32, 224, 96), left of x=128
        Det(0, 0.04, (40.0, 20.0, 60.0, 44.0), None),  # under the threshold
    ]


def _linear_resize_1d(values: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resampling of one axis with half-pixel centres and clamped edges (torch's
    align_corners=False), written with np.interp as an independent reference."""
    centres = (np.arange(size) + 0.5) * len(values) / size - 0.5
    return np.asarray(np.interp(centres, np.arange(len(values)), values))


def _ultralytics_native_mask(
    logits: np.ndarray, box: tuple[float, float, float, float], meta: PreprocessMeta
) -> np.ndarray:
    """Ultralytics 8.4's process_mask_native + crop_mask for one mask, written with OpenCV
    (cv2.resize INTER_LINEAR on float maps is torch's bilinear, align_corners=False):
    upsample the logits by the smallest factor that crops the letterbox on whole cells,
    cut the padding, resize to the image, > 0, keep columns x1 <= c < x2 (rows alike)."""
    mh, mw = logits.shape
    h, w = meta.original_size
    gain = min(4 * mh / h, 4 * mw / w)
    pad = (4 * mh - max(round(h * gain), 1)) | (4 * mw - max(round(w * gain), 1))
    factor = 4 // math.gcd(4, pad | pad // 2)
    up = np.asarray(logits, np.float32)
    if factor > 1:
        up = np.asarray(
            cv2.resize(up, (factor * mw, factor * mh), interpolation=cv2.INTER_LINEAR), np.float32
        )
    gain = min(factor * mh / h, factor * mw / w)
    ch, cw = max(round(h * gain), 1), max(round(w * gain), 1)
    top, left = round((factor * mh - ch) / 2 - 0.1), round((factor * mw - cw) / 2 - 0.1)
    content = up[top : top + ch, left : left + cw]
    full = cv2.resize(content, (w, h), interpolation=cv2.INTER_LINEAR) > 0
    x1, y1, x2, y2 = box
    cols, rows = np.arange(w), np.arange(h)
    keep = ((rows >= y1) & (rows < y2))[:, None] & ((cols >= x1) & (cols < x2))[None, :]
    return (full & keep).astype(np.uint8)


def test_yolo_seg_letterbox_nms_and_masks_on_original_pixels(tmp_path: Path) -> None:
    path = build_yolo_seg(
        tmp_path / "yolo_openvino_model" / "yolo.xml",
        (64, 64),
        _yolo_detections(),
        num_classes=2,
        metadata_names={0: "person", 1: "bicycle"},
        output_names=("output0", "output1"),
    )
    model, adapter = _load(path)
    assert isinstance(adapter, YoloSegAdapter)
    assert adapter.format_id == "yolo-seg"
    assert adapter.class_names == ["person", "bicycle"]
    assert adapter.mask_size is None
    # 128x256 into 64x64: scale 0.25, content 32x64 centred, 16 rows of 114 above and below.
    image = _image(128, 256, seed=7)
    instances, inputs, meta = _run(model, adapter, image, threshold=0.25)
    tensor = inputs["images"][0].transpose(1, 2, 0)
    assert (meta.scale_x, meta.pad_x, meta.pad_y) == (0.25, 0.0, 16.0)
    np.testing.assert_allclose(tensor[:16], 114 / 255)
    np.testing.assert_allclose(tensor[48:], 114 / 255)
    content = cv2.resize(image, (64, 32), interpolation=cv2.INTER_LINEAR)[:, :, ::-1] / 255.0
    np.testing.assert_allclose(tensor[16:48], content, atol=1e-6)

    assert [(i.class_id, round(i.score, 4)) for i in instances] == [(0, 0.9), (1, 0.85), (1, 0.5)]
    np.testing.assert_allclose(instances[0].box, (64, 32, 128, 96), atol=1e-4)
    np.testing.assert_allclose(instances[2].box, (32, 32, 224, 96), atol=1e-4)
    # Ultralytics' protocol: logits upsampled, > 0, cut to the box in image pixels. These
    # masks are +-20 logits, so the mask is the box's pixels exactly, and the third one's
    # left half ends where its pattern does (input x 32 -> image x 128).
    first = _box_mask((128, 256), 64, 32, 128, 96)
    _assert_mask(instances[0], first)
    _assert_mask(instances[1], first)
    _assert_mask(instances[2], _box_mask((128, 256), 32, 32, 128, 96))


def test_yolo_seg_masks_match_ultralytics_native_on_odd_letterbox(tmp_path: Path) -> None:
    """Random soft logits on images whose letterbox pads an odd number of rows (factor 4)
    and an even one (factor 2), and a box with fractional edges: pixel for pixel."""
    rng = np.random.default_rng(3)
    pattern = rng.normal(0.0, 1.0, (16, 16)).astype(np.float32)
    dets = [Det(0, 0.9, (9.3, 21.7, 50.2, 43.1), pattern)]
    path = build_yolo_seg(tmp_path / "y.xml", (64, 64), dets, num_coefficients=4)
    model, adapter = _load(path)
    for height, width in ((90, 200), (100, 160), (333, 500)):
        instances, _, meta = _run(model, adapter, _image(height, width), threshold=0.25)
        assert len(instances) == 1
        # The tiny model's logits: 20 x the pattern's +-1 map... here the pattern itself.
        logits = 20.0 * np.where(pattern > 0.5, 1.0, -1.0).astype(np.float32)
        expected = _ultralytics_native_mask(logits, instances[0].box, meta)
        _assert_mask(instances[0], expected)
        # Boxes map back by the gain each axis really got: round(side * scale) / side.
        gain_x, gain_y = meta.content_size[1] / width, meta.content_size[0] / height
        assert (meta.scale_x, meta.scale_y) == (gain_x, gain_y)
        x1, y1, _, _ = instances[0].box
        assert x1 == pytest.approx((9.3 - meta.pad_x) / gain_x, abs=1e-4)
        assert y1 == pytest.approx((21.7 - meta.pad_y) / gain_y, abs=1e-4)


def test_yolo_seg_odd_padding_splits_like_ultralytics(tmp_path: Path) -> None:
    # 90x200 into 64x64: scale 0.32, content 29x64, 35 rows of padding; Ultralytics puts
    # round(17.5 - 0.1) = 17 above and 18 below.
    path = build_yolo_seg(tmp_path / "y.xml", (64, 64), [Det(0, 0.9, (0, 17, 64, 46), None)])
    _, adapter = _load(path)
    inputs, meta = adapter.preprocess(_image(90, 200))
    assert (meta.pad_x, meta.pad_y) == (0.0, 17.0)
    tensor = inputs["images"][0]
    assert np.allclose(tensor[:, 16], 114 / 255) and np.allclose(tensor[:, 46], 114 / 255)
    assert not np.allclose(tensor[:, 17], 114 / 255)


def test_yolo_seg_names_from_rt_info_without_metadata_yaml(tmp_path: Path) -> None:
    path = build_yolo_seg(
        tmp_path / "y.xml",
        num_classes=3,
        model_info={"labels": "person traffic_light cat", "iou_threshold": "0.5"},
        output_names=("det", "proto"),
    )
    _, adapter = _load(path)
    assert adapter.format_id == "yolo-seg"
    assert adapter.class_names == ["person", "traffic_light", "cat"]
    settings = adapter.settings()
    assert settings["iou_threshold"] == 0.5
    assert settings["channel_order"] == "RGB" and settings["pad_value"] == 114.0
    path2 = build_yolo_seg(tmp_path / "plain" / "y.xml", num_classes=3)
    assert _load(path2)[1].class_names == ["class 0", "class 1", "class 2"]


def test_yolo_seg_with_ultralytics_rt_info_and_metadata_yaml(tmp_path: Path) -> None:
    # Ultralytics writes both; metadata.yaml keeps the real names (with spaces), and the
    # model_type "YOLO" must not steer detection. Outputs swapped: found by rank and shape.
    path = build_yolo_seg(
        tmp_path / "y.xml",
        num_classes=2,
        metadata_names=["traffic light", "stop sign"],
        model_info={
            "labels": "traffic_light stop_sign",
            "resize_type": "fit_to_window_letterbox",
            "reverse_input_channels": "YES",
            "scale_values": "255",
            "pad_value": "114",
            "iou_threshold": "0.6",
        },
        output_names=("protos", "preds"),
    )
    model, adapter = _load(path)
    assert adapter.format_id == "yolo-seg"
    assert adapter.class_names == ["traffic light", "stop sign"]
    settings = adapter.settings()
    assert settings["resize_type"] == "letterbox" and settings["iou_threshold"] == 0.6
    instances, _, _ = _run(model, adapter, _image(64, 64))
    assert [(i.class_id, round(i.score, 4)) for i in instances] == [(0, 0.9)]


def test_metadata_yaml_reads_the_task_and_names_in_class_order(tmp_path: Path) -> None:
    model = tmp_path / "m.xml"
    assert read_metadata_yaml(model) == ExportMetadata()  # no file
    yaml_file = tmp_path / "metadata.yaml"
    yaml_file.write_text("task: segment\nnames: {1: b, 0: a, 10: k, 2: 7}\n", encoding="utf-8")
    expected = ExportMetadata("segment", ["a", "b", "7", "k"])
    assert read_metadata_yaml(model) == expected
    assert read_metadata_yaml(tmp_path) == expected  # the model's folder works too
    yaml_file.write_text("names: [x, y]\n", encoding="utf-8")
    assert read_metadata_yaml(model) == ExportMetadata(None, ["x", "y"])
    for broken in ("names: {a: x}\n", "task: [\n", "- just a list\n"):
        yaml_file.write_text(broken, encoding="utf-8")
        assert read_metadata_yaml(model).names is None, broken


def test_map_to_original_matches_opencv_and_a_region_changes_nothing() -> None:
    # The resize chain done by gathers equals cv2.resize up then down, at awkward scales.
    meta = PreprocessMeta((97, 203), (64, 64), 64 / 203, 64 / 203, 0.0, 17.0)
    prob = np.zeros((16, 16), np.float32)
    prob[5:11, 2:9] = np.random.default_rng(1).random((6, 7))
    up = cv2.resize(prob, (64, 64), interpolation=cv2.INTER_LINEAR)
    content_h, content_w = meta.content_size
    assert (content_h, content_w) == (31, 64)
    reference = cv2.resize(up[17 : 17 + content_h], (203, 97), interpolation=cv2.INTER_LINEAR)
    full = map_to_original(prob, meta)
    assert np.array_equal(full, reference > 0.5) and full.any()
    rows, cols = np.nonzero(full)
    region = (int(cols.min()) - 1, int(rows.min()) - 1, int(cols.max()) + 2, int(rows.max()) + 2)
    assert region[0] > 0 and region[2] < 203  # a real restriction
    assert np.array_equal(map_to_original(prob, meta, region), full)


# --------------------------------------------------------------------------- Model API / OTX


def test_model_api_maskrcnn_honours_model_info_preprocessing(tmp_path: Path) -> None:
    # 64x192 into 64x96, centred letterbox: scale 0.5, content 32x96, 16 rows each side.
    path = build_model_api_maskrcnn(
        tmp_path / "otx.xml",
        (64, 96),
        [Det(1, 0.7, (16.0, 24.0, 48.0, 40.0), "left")],  # -> (32, 16, 96, 48)
        mask_size=28,
        labels=["a", "b"],
        model_info={
            "resize_type": "fit_to_window_letterbox",
            "reverse_input_channels": "YES",
            "mean_values": "10 20 30",
            "scale_values": "2",
            "pad_value": "7",
        },
        with_feature_vector=True,
    )
    model, adapter = _load(path)
    assert isinstance(adapter, ModelApiMaskRcnnAdapter)
    assert adapter.format_id == "model-api-maskrcnn"
    assert adapter.class_names == ["a", "b"]
    settings = adapter.settings()
    assert settings["confidence_threshold"] == 0.5
    assert settings["mean_values"] == [10.0, 20.0, 30.0] and settings["scale_values"] == [2.0] * 3
    image = _image(64, 192, seed=9)
    instances, inputs, meta = _run(model, adapter, image)
    assert (meta.scale_x, meta.pad_x, meta.pad_y) == (0.5, 0.0, 16.0)
    tensor = inputs["image"][0].transpose(1, 2, 0)
    mean = np.array([10, 20, 30], np.float32)
    np.testing.assert_allclose(tensor[:16], np.broadcast_to((7 - mean) / 2, (16, 96, 3)))
    rgb = cv2.resize(image, (96, 32))[:, :, ::-1].astype(np.float32)
    np.testing.assert_allclose(tensor[16:48], (rgb - mean) / 2)
    assert len(instances) == 1 and instances[0].class_id == 1
    np.testing.assert_allclose(instances[0].box, (32, 16, 96, 48), atol=1e-4)
    _assert_mask(instances[0], _pasted((64, 192), (32, 16, 96, 48), "left", 28))


def test_model_api_maskrcnn_with_input_size_masks_crops_instead_of_pasting(
    tmp_path: Path,
) -> None:
    # 128x192 into 64x96 ("standard", scale 0.5): an input-pixel mask is simply scaled by 2.
    input_mask = np.zeros((64, 96), np.float32)
    input_mask[8:24, 16:40] = 1  # part of the box only
    path = build_model_api_maskrcnn(
        tmp_path / "otx.xml",
        (64, 96),
        [Det(0, 0.9, (16.0, 8.0, 48.0, 24.0), input_mask)],
        mask_size=None,
    )
    model, adapter = _load(path)
    assert isinstance(adapter, ModelApiMaskRcnnAdapter)
    assert adapter.format_id == "model-api-maskrcnn"
    assert adapter.mask_size is None
    assert adapter.settings()["mask_kind"] == "input-size"
    instances, _, _ = _run(model, adapter, _image(128, 192))
    np.testing.assert_allclose(instances[0].box, (32, 16, 96, 48), atol=1e-4)
    _assert_mask(instances[0], _box_mask((128, 192), 32, 16, 80, 48))


# --------------------------------------------------------------------------- refusals


def test_classifier_is_refused_with_its_inputs_and_outputs_named(tmp_path: Path) -> None:
    path = build_classifier(tmp_path / "cls.xml")
    with pytest.raises(UnsupportedModelError) as caught:
        _load(path)
    message = caught.value.message
    assert "image[1,3,224,224] f32" in message
    assert "prob[1,1000] f32" in message
    for format_id, _ in SUPPORTED_FORMATS:
        assert format_id in message


def test_refusal_names_the_task_metadata_yaml_gives(tmp_path: Path) -> None:
    # E.g. an Ultralytics detection or classification export offered as segmentation.
    path = build_classifier(tmp_path / "det" / "det.xml")
    (path.parent / "metadata.yaml").write_text("task: detect\nnames: {0: a}\n", encoding="utf-8")
    with pytest.raises(UnsupportedModelError, match="task: detect"):
        _load(path)


def test_dynamic_input_is_refused_with_a_reshape_hint(tmp_path: Path) -> None:
    path = build_dynamic(tmp_path / "dyn.xml")
    with pytest.raises(UnsupportedModelError) as caught:
        _load(path)
    assert "image[1,3,?,?]" in caught.value.message
    assert "--input-shape 1,3,H,W" in caught.value.hint
    # Once reshaped to a static size it is an ordinary OMZ Mask R-CNN.
    model = _CORE.read_model(path)
    model.reshape({0: ov.PartialShape([1, 3, 32, 48])})
    adapter = detect_format(model, path)
    assert adapter.format_id == "omz-maskrcnn" and adapter.input_size == (32, 48)


# --------------------------------------------------------------------------- the model with compute


def test_conv_model_is_real_compute_and_depends_on_the_image(tmp_path: Path) -> None:
    path = build_omz_maskrcnn_conv(tmp_path / "conv.xml", (64, 64))
    model, adapter = _load(path)
    types = [op.get_type_name() for op in model.get_ordered_ops()]
    assert types.count("Convolution") >= 2 and "MatMul" in types
    assert adapter.format_id == "omz-maskrcnn" and adapter.mask_size == 16
    first, _, _ = _run(model, adapter, _image(64, 64, seed=1), threshold=0.0)
    again, _, _ = _run(model, adapter, _image(64, 64, seed=1), threshold=0.0)
    other, _, _ = _run(model, adapter, np.zeros((64, 64, 3), np.uint8), threshold=0.0)
    assert len(first) == 4
    assert [i.score for i in first] == [i.score for i in again]
    assert sorted(i.score for i in first) != pytest.approx(sorted(i.score for i in other))


# --------------------------------------------------------------------------- common contract


def _all_adapters(tmp_path: Path) -> Sequence[tuple[ov.Model, FormatAdapter]]:
    return [
        _load(build_omz_maskrcnn(tmp_path / "a" / "m.xml")),
        _load(build_omz_maskrcnn_legacy(tmp_path / "b" / "m.xml")),
        _load(build_yolo_seg(tmp_path / "c" / "m.xml")),
        _load(build_model_api_maskrcnn(tmp_path / "d" / "m.xml")),
    ]


def test_every_adapter_has_json_settings_and_handles_odd_images(tmp_path: Path) -> None:
    odd_images: list[Any] = [
        np.full((50, 70), 128, np.uint8),  # grayscale
        np.full((50, 70, 4), 200, np.uint8),  # BGRA
    ]
    seen = set()
    for model, adapter in _all_adapters(tmp_path):
        seen.add(adapter.format_id)
        settings = json.loads(json.dumps(adapter.settings()))
        assert settings["format_id"] == adapter.format_id
        assert settings["input_size"] == list(adapter.input_size)
        for image in odd_images:
            instances, _, meta = _run(model, adapter, image)
            assert meta.original_size == (50, 70)
            assert all(inst.rle["size"] == [50, 70] for inst in instances)
            scores = [inst.score for inst in instances]
            assert scores == sorted(scores, reverse=True)
    assert seen == {fid for fid, _ in SUPPORTED_FORMATS}
