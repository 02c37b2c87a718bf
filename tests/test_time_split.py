"""Standalone quantizers found and dropped, and the per-layer time split ("why not 2×").

Real OpenVINO and NNCF on tiny models (tests/standalone_fq_models.py), calibrated on a few
random inputs; the classification rules also on hand-made runtime layers.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import openvino as ov
import openvino.opset13 as ops
import pytest
from conftest import write_scene
from standalone_fq_models import (
    CONV2,
    CONV2_QUANTIZER,
    FC,
    INPUT_SHAPE,
    SOFTMAX_QUANTIZER,
    build_fed_quantizer,
    build_idle_quantizer,
    calibration_inputs,
    quantized,
)

from segtui.core.formats import FormatAdapter
from segtui.core.ignored_scope import propose_ignored_scope
from segtui.core.inference import compile_model
from segtui.core.optimize_settings import OptimizeSettings
from segtui.core.performance import split_rows
from segtui.core.quantize import quantize_default
from segtui.core.runtime_graph import (
    RuntimeEdge,
    RuntimeLayer,
    RuntimeProfile,
    TimeCategory,
    profile_layers,
    summarize_runtime,
)
from segtui.core.standalone_fq import (
    drop_standalone_quantizers,
    find_standalone_quantizers,
    int8_compute_count,
    runtime_summary,
)
from segtui.core.standalone_fq_record import DROP_REASON, standalone_text
from segtui.core.time_split import (
    NOT_GEOMETRY_RULES,
    category,
    geometry_names,
    int8_compute_fed,
)
from segtui.core.types import Precision


@pytest.fixture(scope="module")
def idle_int8() -> ov.Model:
    return quantized(build_idle_quantizer())


@pytest.fixture(scope="module")
def fed_int8() -> ov.Model:
    return quantized(build_fed_quantizer())


def _fake_quantizers(model: ov.Model) -> set[str]:
    return {
        op.get_friendly_name() for op in model.get_ops() if op.get_type_name() == "FakeQuantize"
    }


def _outputs(model: ov.Model, item: npt.NDArray[np.float32]) -> list[npt.NDArray[Any]]:
    request = compile_model(model, "CPU", Precision.F32, hint="LATENCY").create_infer_request()
    request.infer({0: item})
    return [np.array(t.data) for t in request.output_tensors]


# -- the detector -------------------------------------------------------------------------


def test_detector_finds_the_quantizer_that_feeds_no_int8_compute(idle_int8: ov.Model) -> None:
    found = {q.layer: q for q in find_standalone_quantizers(idle_int8)}
    assert SOFTMAX_QUANTIZER in found and CONV2_QUANTIZER in found
    idle = found[SOFTMAX_QUANTIZER]
    # Its int8 output goes to an AvgPool and on to a model output: no compute layer.
    assert idle.original == (SOFTMAX_QUANTIZER,)
    assert idle.feeds == () and not idle.feeds_int8
    assert idle.output_precision in ("U8", "I8")
    # The quantizer on conv2's input runs alone too, and feeds conv2's INT8 input.
    assert found[CONV2_QUANTIZER].feeds == (CONV2,)
    assert [q.layer for q in found.values() if not q.feeds_int8] == [SOFTMAX_QUANTIZER]


def test_drop_bypasses_it_and_keeps_the_int8_compute(idle_int8: ov.Model) -> None:
    model = idle_int8.clone()
    before = _outputs(model, calibration_inputs(1, seed=5)[0])
    record = drop_standalone_quantizers(model)
    assert [d["name"] for d in record["dropped"]] == [SOFTMAX_QUANTIZER]
    assert record["dropped"][0]["reason"] == DROP_REASON
    assert record["dropped"][0]["consumers"] == ["avgpool"]
    assert CONV2_QUANTIZER in record["kept"] and record["restored"] == []
    assert record["int8_compute_before"] == record["int8_compute_after"] == 2
    assert record["found"] == len(find_standalone_quantizers(idle_int8))
    # The model itself changed: the quantizer is gone, the convolutions still run in INT8.
    assert SOFTMAX_QUANTIZER not in _fake_quantizers(model)
    assert CONV2_QUANTIZER in _fake_quantizers(model)
    assert int8_compute_count(runtime_summary(model)) == 2
    assert all(q.feeds_int8 for q in find_standalone_quantizers(model))
    # The pooled output differs by no more than the dropped quantizer's rounding (1/255 of
    # the softmax's [0, 1]); conv2's output is the same.
    after = _outputs(model, calibration_inputs(1, seed=5)[0])
    np.testing.assert_array_equal(before[0], after[0])
    assert 0 < np.abs(before[1] - after[1]).max() < 1 / 255


def test_a_quantizer_feeding_a_matmul_through_a_reshape_stays(fed_int8: ov.Model) -> None:
    found = {q.layer: q for q in find_standalone_quantizers(fed_int8)}
    assert found[SOFTMAX_QUANTIZER].feeds == (FC,)
    model = fed_int8.clone()
    record = drop_standalone_quantizers(model)
    assert record["dropped"] == [] and SOFTMAX_QUANTIZER in record["kept"]
    assert _fake_quantizers(model) == _fake_quantizers(fed_int8)
    assert standalone_text(record) == f"{record['found']} found: 2 kept (feed INT8 compute)"


class _Resizing:
    """The adapter part NNCF's dataset uses: an image resized to the tiny model's input."""

    def preprocess(self, image: npt.NDArray[np.uint8]) -> tuple[dict[str, Any], None]:
        import cv2

        h, w = INPUT_SHAPE[2:]
        resized = cv2.resize(image, (w, h)).astype(np.float32) / 64.0 - 2.0
        return {"image": resized.transpose(2, 0, 1)[None]}, None


@pytest.fixture
def calibration_images(tmp_path: Path) -> list[Path]:
    paths = [tmp_path / f"img{i}.png" for i in range(3)]
    for i, path in enumerate(paths):
        write_scene(path, (32, 32), i)
    return paths


@pytest.mark.parametrize("drop", [True, False])
def test_quantize_drops_them_after_calibration_unless_told_not_to(
    tmp_path: Path, calibration_images: list[Path], drop: bool
) -> None:
    settings = OptimizeSettings(auto_ignore=False, drop_standalone_quantizers=drop)
    out = tmp_path / "int8" / "model.xml"
    adapter = cast(FormatAdapter, _Resizing())
    outcome = quantize_default(build_idle_quantizer(), adapter, calibration_images, settings, out)
    saved = ov.Core().read_model(out)
    assert CONV2_QUANTIZER in _fake_quantizers(saved)
    assert int8_compute_count(runtime_summary(saved)) == 2
    if drop:
        assert outcome.standalone is not None
        assert [d["name"] for d in outcome.standalone["dropped"]] == [SOFTMAX_QUANTIZER]
        assert SOFTMAX_QUANTIZER not in _fake_quantizers(saved)
    else:
        assert outcome.standalone is None
        assert SOFTMAX_QUANTIZER in _fake_quantizers(saved)


# -- the time split ---------------------------------------------------------------------------


def test_split_sums_to_the_total_and_int8_convolutions_are_quantized_compute(
    idle_int8: ov.Model,
) -> None:
    profile = profile_layers(idle_int8, [{"image": x} for x in calibration_inputs(3)])
    split, shares = profile["time_split_ms"], profile["time_split_share"]
    assert list(split) == [str(c) for c in TimeCategory] == list(shares)
    assert sum(split.values()) == pytest.approx(profile["total_ms"], abs=1e-3)
    assert sum(shares.values()) == pytest.approx(1.0, abs=1e-3)
    assert split[TimeCategory.QUANTIZED_COMPUTE] > 0
    assert split[TimeCategory.FLOAT_COMPUTE] == 0
    # The two standalone quantizers besides the input's: listed with their cost.
    listed = {q["name"]: q for q in profile["standalone_quantizers"]}
    assert listed[SOFTMAX_QUANTIZER]["feeds_int8"] is False
    assert listed[CONV2_QUANTIZER]["feeds"] == [CONV2]
    assert split[TimeCategory.STANDALONE_QUANTIZERS] == pytest.approx(
        sum(q["ms"] for q in listed.values()), abs=1e-3
    )
    compiled = compile_model(idle_int8, "CPU", Precision.F32, hint="LATENCY")
    convs = [
        layer
        for layer in summarize_runtime(compiled, idle_int8).layers
        if layer.layer_type == "Convolution"
    ]
    assert len(convs) == 2 and all(layer.precision in ("U8", "I8") for layer in convs)
    assert {category(layer) for layer in convs} == {TimeCategory.QUANTIZED_COMPUTE}


def test_float_model_splits_into_float_compute() -> None:
    model = build_idle_quantizer()
    profile = profile_layers(model, [{"image": calibration_inputs(1)[0]}])
    assert profile["time_split_ms"][TimeCategory.QUANTIZED_COMPUTE] == 0
    assert profile["time_split_ms"][TimeCategory.FLOAT_COMPUTE] > 0
    assert profile["standalone_quantizers"] == []


def _layer(name: str, kind: str, precision: str = "F32", **more: Any) -> RuntimeLayer:
    return RuntimeLayer(name, kind, precision, more.pop("original_names", (name,)), **more)


def test_categories_of_runtime_layers() -> None:
    assert category(_layer("c", "Convolution", "U8")) == TimeCategory.QUANTIZED_COMPUTE
    assert category(_layer("c", "Convolution", "BF16")) == TimeCategory.FLOAT_COMPUTE
    # A FullyConnected whose original FakeQuantize was fused into it is compute, not a quantizer.
    fused = _layer("fc", "FullyConnected", "I8", original_types=("FakeQuantize",))
    assert category(fused) == TimeCategory.QUANTIZED_COMPUTE
    assert category(_layer("q", "FakeQuantize")) == TimeCategory.STANDALONE_QUANTIZERS
    lone = _layer("q", "Subgraph", original_types=("FakeQuantize",))
    assert category(lone) == TimeCategory.STANDALONE_QUANTIZERS
    fused_eltwise = _layer("s", "Subgraph", original_types=("Sigmoid", "FakeQuantize"))
    assert category(fused_eltwise) == TimeCategory.OTHER
    assert category(_layer("r", "Reorder", original_names=())) == TimeCategory.LAYOUT
    assert category(_layer("a", "ROIAlign")) == TimeCategory.GEOMETRY
    assert category(_layer("t", "ExperimentalDetectronTopKROIs")) == TimeCategory.GEOMETRY
    nms_if = _layer("if", "If", "U8", original_types=("If", "NonMaxSuppression"))
    assert category(nms_if) == TimeCategory.GEOMETRY
    broadcast = _layer("b", "Eltwise", original_types=("Broadcast",))
    assert category(broadcast) == TimeCategory.OTHER
    assert category(broadcast, frozenset({"b"})) == TimeCategory.GEOMETRY


def _chain(*layers: tuple[str, str, str, str]) -> dict[str, RuntimeLayer]:
    """Layers (name, type, precision, element type of the edge into the next) in a line."""
    built: dict[str, RuntimeLayer] = {}
    for n, (name, kind, precision, edge_type) in enumerate(layers):
        following = [RuntimeEdge(layers[n + 1][0], 0, edge_type)] if n + 1 < len(layers) else []
        built[name] = _layer(name, kind, precision, consumers=tuple(following))
    return built


def test_a_quantizer_feeds_int8_compute_only_through_int8_data() -> None:
    through_pool = _chain(
        ("q", "Subgraph", "F32", "u8"),
        ("r", "Reorder", "U8", "u8"),
        ("p", "Pooling", "U8", "f32"),
        ("e", "Eltwise", "F32", "f32"),
        ("c", "Convolution", "U8", "f32"),
    )
    assert int8_compute_fed(through_pool["q"], through_pool) == []
    through_reshape = _chain(
        ("q", "FakeQuantize", "F32", "i8"),
        ("s", "Reshape", "I8", "i8"),
        ("fc", "FullyConnected", "I8", "f32"),
    )
    assert int8_compute_fed(through_reshape["q"], through_reshape) == ["fc"]
    # A convolution's fused sum reads float data: the quantizer feeds no INT8 input there.
    to_sum = _chain(("q", "Subgraph", "F32", "u8"), ("r", "Reorder", "U8", "f32"))
    to_sum["r"] = _layer("r", "Reorder", "U8", consumers=(RuntimeEdge("c", 2, "f32"),))
    to_sum["c"] = _layer("c", "Convolution", "U8")
    assert int8_compute_fed(to_sum["q"], to_sum) == []


@pytest.fixture(scope="module")
def roi_model() -> Iterator[ov.Model]:
    """A feature map, RoIs from a box input, RoIAlign and a convolution on the pooled RoIs."""
    image = ops.parameter([1, 4, 16, 16], np.float32, name="image")
    boxes = ops.parameter([3, 4], np.float32, name="boxes")
    normalized = ops.multiply(image, np.float32(1 / 255))
    normalized.set_friendly_name("normalize")
    scaled = ops.multiply(boxes, np.float32(0.5))
    scaled.set_friendly_name("box_scale")
    pooled = ops.roi_align(
        normalized, scaled, ops.constant(np.zeros(3, np.int32)), 4, 4, 2, 1.0, "avg"
    )
    pooled.set_friendly_name("roi_align")
    weights = np.full((2, 4, 1, 1), 0.1, np.float32)
    head = ops.convolution(pooled, ops.constant(weights), [1, 1], [0, 0], [0, 0], [1, 1])
    masks = ops.sigmoid(head)
    masks.set_friendly_name("mask_sigmoid")
    yield ov.Model([ops.result(masks)], [image, boxes], "roi")


def test_geometry_is_what_the_automatic_scope_keeps_as_geometry(roi_model: ov.Model) -> None:
    names = geometry_names(roi_model)
    assert {"roi_align", "box_scale"} <= names
    # The rules it leaves out are the automatic scope's: the input's scaling, the output's
    # sigmoid.
    rules = propose_ignored_scope(roi_model).by_rule
    assert set(NOT_GEOMETRY_RULES) <= set(rules)
    assert "normalize" in rules["preprocessing"] and "mask_sigmoid" in rules["output decoding"]
    assert not names & {"normalize", "mask_sigmoid"}
    compiled = compile_model(roi_model, "CPU", Precision.F32, hint="LATENCY")
    by_type = {
        layer.layer_type: category(layer, names)
        for layer in summarize_runtime(compiled, roi_model).layers
    }
    assert by_type["ROIAlign"] == TimeCategory.GEOMETRY
    assert by_type["Convolution"] == TimeCategory.FLOAT_COMPUTE


# -- parent and child side by side; profiles stored before the split -----------------------


def test_split_rows_side_by_side_and_none_for_old_profiles(idle_int8: ov.Model) -> None:
    inputs = [{"image": calibration_inputs(1)[0]}]
    child = profile_layers(idle_int8, inputs)
    parent = profile_layers(build_idle_quantizer(), inputs)
    rows = split_rows(child, parent)
    assert [r["category"] for r in rows] == [str(c) for c in TimeCategory]
    quantized_row = rows[0]
    assert quantized_row["a_ms"] == child["time_split_ms"]["quantized compute"] > 0
    assert quantized_row["b_ms"] == 0 and quantized_row["b_share"] == 0
    assert rows[1]["b_share"] == parent["time_split_share"]["float compute"] > 0
    old: RuntimeProfile = {"total_ms": 5.0, "time_by_type_ms": {"Convolution": 5.0}}
    assert split_rows(child, old) == [] and split_rows(old, parent) == []
