"""A model's accuracy settings: detected values, the user's values checked, stored, versioned
and applied to predictions; each refusal stores nothing."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov
import openvino.opset13 as ops
import pytest
from conftest import workspace_files, write_scene
from tiny_models import Det, build_omz_maskrcnn, build_yolo_seg

from segtui.core.accuracy import evaluate_project
from segtui.core.accuracy_settings import (
    SETTING_KEYS,
    Origin,
    check_changes,
    configure_model,
    field_for,
    keys_for,
    model_settings,
    read_settings_file,
    settings_preview,
)
from segtui.core.datasets import import_dataset, load_image
from segtui.core.db_schema import MIGRATIONS
from segtui.core.errors import SegtuiError
from segtui.core.formats import (
    FormatAdapter,
    PreprocessMeta,
    YoloSegAdapter,
    detect_format,
    with_values,
)
from segtui.core.models import import_model, load_registered
from segtui.core.predictions import Instance, decode_mask
from segtui.core.projects import create_project
from segtui.core.records import ModelRecord
from segtui.core.sample import sample_dir
from segtui.core.setting_fields import SettingError
from segtui.core.workspace import Workspace

_CORE = ov.Core()
SHAPES = ["circle", "square", "triangle", "star", "hexagon", "ring"]


def _tiny(ws: Workspace, tmp_path: Path, **kwargs: Any) -> ModelRecord:
    path = build_omz_maskrcnn(tmp_path / "omz" / "model.xml", **kwargs)
    return import_model(ws, path, name="tiny", class_names=["a", "b"])


def _decode(adapter: FormatAdapter, model: Path, image: np.ndarray, asked: float) -> list[Instance]:
    inputs, meta = adapter.preprocess(image)
    compiled = _CORE.compile_model(_CORE.read_model(model), "CPU")
    result = compiled(inputs)
    return adapter.decode([np.asarray(result[p]) for p in compiled.outputs], meta, asked)


# -- the x255 model: preprocessing the format does not imply ---------------------------


def _times_255(source: Path, target: Path) -> Path:
    """The IR of `source` with Multiply(input, 255) prepended: it takes input in [0, 1]."""
    model = _CORE.read_model(source)
    old = model.get_parameters()[0]
    new = ops.parameter(old.get_partial_shape(), old.get_element_type(), name="image")
    scaled = ops.multiply(new, ops.constant(np.float32(255.0)))
    for consumer in list(old.output(0).get_target_inputs()):
        consumer.replace_source_output(scaled.output(0))
    old.output(0).get_tensor().set_names(set())
    new.output(0).get_tensor().set_names({"image"})
    model.replace_parameter(0, new)
    model.validate_nodes_and_infer_types()
    target.parent.mkdir(parents=True)
    ov.save_model(model, target, compress_to_fp16=False)  # outputs and rt_info kept
    return target


def _coco_subset(tmp_path: Path, count: int = 8) -> Path:
    """The sample's first `count` validation images and their annotations, as COCO."""
    full = json.loads((sample_dir() / "annotations" / "instances_val.json").read_text())
    images = full["images"][:count]
    ids = {im["id"] for im in images}
    subset = {
        "images": images,
        "annotations": [a for a in full["annotations"] if a["image_id"] in ids],
        "categories": full["categories"],
    }
    path = tmp_path / "subset" / "instances.json"
    path.parent.mkdir()
    path.write_text(json.dumps(subset))
    return path


def _mask_ap(ws: Workspace, model_id: int, dataset_id: int) -> float:
    project = create_project(ws, model_id=model_id, dataset_id=dataset_id)
    return evaluate_project(ws, project.id)["metrics"]["mask_ap"]


def test_scale_255_gives_a_model_that_takes_0_to_1_input_the_original_ap(
    workspace: Workspace, tmp_path: Path
) -> None:
    original_xml = sample_dir() / "model" / "shapes_maskrcnn.xml"
    scaled_xml = _times_255(original_xml, tmp_path / "x255" / "model.xml")
    original = import_model(workspace, original_xml, name="original", class_names=SHAPES)
    scaled = import_model(workspace, scaled_xml, name="x255", class_names=SHAPES)
    assert scaled.format_id == "omz-maskrcnn"  # detection is not fooled: same outputs
    dataset = import_dataset(workspace, _coco_subset(tmp_path), images_dir=sample_dir() / "images")
    reference = _mask_ap(workspace, original.id, dataset.id)
    before = _mask_ap(workspace, scaled.id, dataset.id)
    settings = configure_model(workspace, scaled.id, {"scale": "255"})
    after = _mask_ap(workspace, scaled.id, dataset.id)
    print(f"mask AP: original {reference:.4f}, x255 detected {before:.4f}, scale=255 {after:.4f}")
    assert reference > 0.6
    assert before < 0.01
    assert after == pytest.approx(reference, abs=0.001)
    assert settings.values["scale"] == [255.0, 255.0, 255.0]
    assert settings.origins["scale"] == Origin.USER
    assert workspace.model(scaled.id).accuracy_settings == {"scale": [255.0, 255.0, 255.0]}


# -- detected values and their application ----------------------------------------------


def test_detected_values_mark_every_key_detected_and_change_nothing(
    workspace: Workspace, tmp_path: Path
) -> None:
    record = _tiny(workspace, tmp_path)
    settings = model_settings(workspace, record.id)
    assert settings.format_id == "omz-maskrcnn"
    assert tuple(settings.values) == keys_for("omz-maskrcnn")
    assert "nms_iou" not in settings.values  # the graph runs its own NMS
    assert set(settings.origins.values()) == {Origin.DETECTED}
    assert settings.user_values() == {}
    assert settings.values["channel_order"] == "BGR"
    assert settings.values["max_detections"] == 4  # the boxes output's rows
    assert settings.values["score_threshold"] == 0.0
    assert settings.values["class_names"] == ["a", "b"]
    assert settings.detected == settings.values
    assert len(settings.version) == 12
    loaded = load_registered(workspace.model(record.id))
    assert loaded.adapter.settings() == detect_format(loaded.model, None, ["a", "b"]).settings()


def test_channel_order_mean_and_scale_change_the_input_tensor(
    workspace: Workspace, tmp_path: Path
) -> None:
    record = _tiny(workspace, tmp_path)
    image = write_scene(tmp_path / "scene.png", (64, 96))
    plain, _ = load_registered(workspace.model(record.id)).adapter.preprocess(image)
    configure_model(workspace, record.id, {"channel_order": "rgb", "mean": "10,20,30", "scale": 2})
    tensor, _ = load_registered(workspace.model(record.id)).adapter.preprocess(image)
    flipped = plain["image"][:, ::-1]
    expected = (flipped - np.array([10, 20, 30], np.float32)[None, :, None, None]) / 2
    np.testing.assert_allclose(tensor["image"], expected, rtol=0, atol=1e-5)
    assert not np.allclose(tensor["image"], plain["image"])


def test_the_model_score_threshold_is_a_floor_under_the_operations(tmp_path: Path) -> None:
    path = build_omz_maskrcnn(tmp_path / "m.xml")  # scores 0.9 and 0.6
    image = write_scene(tmp_path / "s.png", (64, 96))
    adapter = detect_format(_CORE.read_model(path), path)
    assert [round(i.score, 2) for i in _decode(adapter, path, image, 0.05)] == [0.9, 0.6]
    floored = with_values(adapter, {"score_threshold": 0.7})
    assert [round(i.score, 2) for i in _decode(floored, path, image, 0.05)] == [0.9]
    assert _decode(floored, path, image, 0.95) == []  # the operation's higher one filters further
    capped = with_values(adapter, {"max_detections": 1})
    assert [round(i.score, 2) for i in _decode(capped, path, image, 0.05)] == [0.9]


def test_mask_threshold_binarises_the_mask_probabilities(tmp_path: Path) -> None:
    half = np.full((28, 28), 0.6, np.float32)
    path = build_omz_maskrcnn(tmp_path / "m.xml", detections=(Det(0, 0.9, (8, 8, 40, 40), half),))
    image = write_scene(tmp_path / "s.png", (64, 96))
    adapter = detect_format(_CORE.read_model(path), path)
    (default,) = _decode(adapter, path, image, 0.05)
    (strict,) = _decode(with_values(adapter, {"mask_threshold": 0.7}), path, image, 0.05)
    assert int(decode_mask(default.rle).sum()) == 32 * 32
    assert int(decode_mask(strict.rle).sum()) == 0


def test_yolo_nms_iou_class_awareness_and_max_detections(tmp_path: Path) -> None:
    overlapping = (
        Det(0, 0.9, (8.0, 8.0, 40.0, 40.0), None),
        Det(1, 0.8, (10.0, 10.0, 40.0, 40.0), None),  # IoU 0.88 with the first
        Det(0, 0.7, (44.0, 44.0, 60.0, 60.0), None),
    )
    path = build_yolo_seg(tmp_path / "y.xml", detections=overlapping)
    image = write_scene(tmp_path / "s.png", (64, 64))
    adapter = detect_format(_CORE.read_model(path), path)
    assert [i.class_id for i in _decode(adapter, path, image, 0.05)] == [0, 1, 0]
    agnostic = with_values(adapter, {"class_aware_nms": False})
    assert [round(i.score, 1) for i in _decode(agnostic, path, image, 0.05)] == [0.9, 0.7]
    loose = with_values(agnostic, {"nms_iou": 0.95})
    assert len(_decode(loose, path, image, 0.05)) == 3
    assert len(_decode(with_values(adapter, {"max_detections": 2}), path, image, 0.05)) == 2
    assert isinstance(agnostic, YoloSegAdapter)
    assert agnostic.settings()["nms"] == "class-agnostic"


def test_a_format_the_outputs_fit_is_taken_and_reset(workspace: Workspace, tmp_path: Path) -> None:
    record = _tiny(workspace, tmp_path)
    settings = configure_model(workspace, record.id, {"format": "model-api-maskrcnn"})
    assert settings.format_id == "model-api-maskrcnn"
    assert settings.detected["format"] == "omz-maskrcnn"
    assert workspace.model(record.id).format_id == "model-api-maskrcnn"
    assert load_registered(workspace.model(record.id)).adapter.format_id == "model-api-maskrcnn"
    back = configure_model(workspace, record.id, {}, reset=["format"])
    assert back.format_id == workspace.model(record.id).format_id == "omz-maskrcnn"
    assert back.user_values() == {}


def test_class_names_set_by_the_user_become_the_models_names(
    workspace: Workspace, tmp_path: Path
) -> None:
    record = _tiny(workspace, tmp_path)
    settings = configure_model(workspace, record.id, {"class_names": "box, disc"})
    assert settings.values["class_names"] == ["box", "disc"]
    assert workspace.model(record.id).class_names == ["box", "disc"]
    assert load_registered(workspace.model(record.id)).adapter.class_names == ["box", "disc"]
    reset = configure_model(workspace, record.id, {}, reset=["class_names"])
    assert reset.values["class_names"] == workspace.model(record.id).class_names == ["a", "b"]


def test_the_version_follows_the_values(workspace: Workspace, tmp_path: Path) -> None:
    record = _tiny(workspace, tmp_path)
    detected = model_settings(workspace, record.id).version
    changed = configure_model(workspace, record.id, {"pad_value": "114"}).version
    again = configure_model(workspace, record.id, {"pad_value": 114.0}).version
    reset = configure_model(workspace, record.id, {}, reset=["pad_value"]).version
    assert changed != detected
    assert again == changed
    assert reset == detected
    # Setting the detected value pins it (origin user) without changing the version.
    pinned = configure_model(workspace, record.id, {"channel_order": "BGR"})
    assert pinned.version == detected
    assert pinned.origins["channel_order"] == Origin.USER


# -- refusals: each names the key and stores nothing -----------------------------------

REFUSALS: list[tuple[dict[str, object], str, str]] = [
    ({"format": "yolo-seg"}, "format", "cannot be read as yolo-seg: it has 3 output(s)"),
    ({"mean": "1,2"}, "mean", "needs 3 values, one per input channel"),
    ({"mean": [1, 2, 3, 4]}, "mean", "(got 4: 1, 2, 3, 4)"),
    ({"score_threshold": "1.5"}, "score_threshold", "1.5 is out of range"),
    ({"mask_threshold": 1}, "mask_threshold", "1 is out of range"),
    ({"scale": "0"}, "scale", "scale: 0 is out of range"),
    ({"max_detections": 0}, "max_detections", "0 is out of range"),
    ({"max_detections": "2.5"}, "max_detections", "2.5 is not a whole number"),
    ({"pad_value": "grey"}, "pad_value", "'grey' is not a number"),
    ({"class_names": "x,y,z"}, "class_names", "3 names given, but the model has 2 classes"),
    ({"colour": "RGB"}, "colour", "Unknown accuracy setting 'colour'"),
    ({"nms_iou": "0.5"}, "nms_iou", "nms_iou applies to YOLO-seg models only"),
    ({"channel_order": "RBG"}, "channel_order", "'RBG' is not one of: RGB, BGR"),
    ({"resize": "crop"}, "resize", "'crop' is not one of: standard"),
]


@pytest.mark.parametrize(("changes", "key", "reason"), REFUSALS, ids=[r[1] for r in REFUSALS])
def test_a_refused_value_names_the_key_and_stores_nothing(
    workspace: Workspace, tmp_path: Path, changes: dict[str, object], key: str, reason: str
) -> None:
    record = _tiny(workspace, tmp_path)
    configure_model(workspace, record.id, {"pad_value": 7})
    before = model_settings(workspace, record.id)
    problems = check_changes(workspace, record.id, changes)
    assert list(problems) == [key]
    assert reason in problems[key]
    with pytest.raises(SettingError) as refused:  # a fine value beside it is not stored either
        configure_model(workspace, record.id, {"mask_threshold": 0.4, **changes})
    assert refused.value.field == key
    assert reason in refused.value.message
    after = workspace.model(record.id)
    assert after.accuracy_settings == {"pad_value": 7.0}
    assert model_settings(workspace, record.id).version == before.version


def test_a_format_override_refusal_says_what_the_outputs_are(
    workspace: Workspace, tmp_path: Path
) -> None:
    record = _tiny(workspace, tmp_path)
    problem = check_changes(workspace, record.id, {"format": "omz-maskrcnn-legacy"})["format"]
    assert "it has 1 input(s); omz-maskrcnn-legacy takes two, im_data [1,3,H,W] and im_info" in (
        problem
    )
    assert "outputs labels[4] i32, boxes[4,5] f32, masks[4,28,28] f32" in problem


def test_every_key_has_a_field_that_reads_back_what_it_formats() -> None:
    samples: dict[str, object] = {
        "format": "yolo-seg",
        "channel_order": "RGB",
        "mean": [123.675, 116.28, 103.53],
        "scale": [58.395, 57.12, 57.375],
        "resize": "letterbox",
        "pad_value": 114.0,
        "score_threshold": 0.25,
        "mask_threshold": 0.5,
        "nms_iou": 0.7,
        "class_aware_nms": False,
        "max_detections": 300,
        "class_names": ["person", "bicycle"],
    }
    assert tuple(samples) == SETTING_KEYS
    for key, value in samples.items():
        field = field_for(key)
        assert field.parse(field.format(value)) == value, key
        assert field.problem(value) is None
    assert field_for("scale").parse("255") == [255.0, 255.0, 255.0]
    with pytest.raises(SettingError, match="Unknown accuracy setting 'gamma'"):
        field_for("gamma")


# -- settings files ---------------------------------------------------------------------


def test_the_yaml_of_the_settings_reads_back_to_the_same_settings(
    workspace: Workspace, tmp_path: Path
) -> None:
    record = _tiny(workspace, tmp_path)
    values = {"channel_order": "RGB", "scale": 255, "class_names": ["a: x", "yes"]}
    settings = configure_model(workspace, record.id, values)
    text = settings.to_yaml("model 1")
    assert "\nchannel_order: RGB\n" in text
    assert "\n# resize: standard\n" in text  # detected values are comments
    path = tmp_path / "settings.yaml"
    path.write_text(text)
    assert read_settings_file(path) == settings.user_values()
    configure_model(workspace, record.id, {}, reset=list(values))
    again = configure_model(workspace, record.id, read_settings_file(path))
    assert again.to_json() == settings.to_json()


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("scale: [1, 2\nmean: 3\n", "is not valid YAML at line"),
        ("- scale\n- mean\n", "holds a list, not a mapping of settings"),
        ("just text\n", "holds a str, not a mapping"),
        ("1: 2\n", "the key 1 is not a setting name"),
    ],
)
def test_a_settings_file_that_is_not_a_mapping_is_refused(
    tmp_path: Path, text: str, reason: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(SegtuiError) as refused:
        read_settings_file(path)
    assert reason in refused.value.message


def test_a_comment_only_settings_file_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing set\n")
    assert read_settings_file(path) == {}


# -- import, preview, migration ---------------------------------------------------------


def test_import_stores_the_given_settings_and_refuses_bad_ones(
    workspace: Workspace, tmp_path: Path
) -> None:
    path = build_omz_maskrcnn(tmp_path / "m" / "model.xml")
    with pytest.raises(SettingError, match="mean: needs 3 values"):
        import_model(workspace, path, accuracy_settings={"mean": "1,2"})
    assert workspace.models() == []
    assert workspace_files(workspace) == []
    record = import_model(
        workspace, path, accuracy_settings={"channel_order": "RGB", "format": "model-api-maskrcnn"}
    )
    assert record.accuracy_settings == {"channel_order": "RGB", "format": "model-api-maskrcnn"}
    assert record.format_id == "model-api-maskrcnn"
    assert record.analysis["format_id"] == "omz-maskrcnn"  # the analysis keeps detection's view
    # The same files with other settings are another model, with the same ones the same.
    assert import_model(workspace, path).id != record.id
    same = import_model(
        workspace, path, accuracy_settings={"format": "model-api-maskrcnn", "channel_order": "RGB"}
    )
    assert same.id == record.id


def test_the_preview_predicts_with_the_would_be_settings_and_stores_nothing(
    workspace: Workspace, tmp_path: Path
) -> None:
    record = _tiny(workspace, tmp_path)
    image = tmp_path / "scene.png"
    write_scene(image, (64, 96))
    now = settings_preview(workspace, record.id, {}, image)
    floored = settings_preview(workspace, record.id, {"score_threshold": "0.7"}, image)
    assert [round(i.score, 2) for i in now] == [0.9, 0.6]
    assert [round(i.score, 2) for i in floored] == [0.9]
    assert workspace.model(record.id).accuracy_settings == {}
    with pytest.raises(SettingError, match="mask_threshold"):
        settings_preview(workspace, record.id, {"mask_threshold": "2"}, image)
    assert load_image(image).shape == (64, 96, 3)


def test_a_workspace_of_schema_2_gets_empty_accuracy_settings(tmp_path: Path) -> None:
    root = tmp_path / "w"
    root.mkdir()
    conn = sqlite3.connect(root / "segtui.db", isolation_level=None)
    conn.executescript(MIGRATIONS[0])
    conn.executescript(MIGRATIONS[1])
    conn.execute(
        "INSERT INTO models(name, format_id, source_path, dir, xml_name, checksum, analysis, "
        "class_names, created_at) VALUES ('m', 'omz-maskrcnn', '/x', 'models/1', 'model.xml', "
        "'abc', '{}', '[\"a\"]', 0)"
    )
    conn.execute("PRAGMA user_version = 2")
    conn.close()
    with Workspace.open(root) as ws:
        assert ws.model(1).accuracy_settings == {}
        assert ws.model(1).class_names == ["a"]


def test_meta_of_a_changed_resize_maps_back_to_the_original(tmp_path: Path) -> None:
    path = build_omz_maskrcnn(tmp_path / "m.xml")
    adapter = with_values(detect_format(_CORE.read_model(path), path), {"resize": "letterbox"})
    _, meta = adapter.preprocess(np.zeros((32, 96, 3), np.uint8))
    assert isinstance(meta, PreprocessMeta)
    assert (meta.scale_x, meta.pad_x, meta.pad_y) == (1.0, 0.0, 16.0)
