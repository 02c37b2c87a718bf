"""A YOLO-seg head's DFL is geometry: kept in float, the walks pass it; learned convs are not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov
import openvino.opset13 as ops
import pytest
from tiny_models import (
    DFL_CONV,
    DFL_RESHAPE,
    DFL_SOFTMAX,
    DFL_TRANSPOSE,
    REG_MAX,
    build_yolo_seg_dfl,
)

from segtui.core.formats import detect_format
from segtui.core.ignored_scope import DECODING_RULE, decoding_layers, scope_analysis

#: Convolutions with learned weights in build_yolo_seg_dfl.
LEARNED_CONVS = 11


def _read(path: Path) -> ov.Model:
    return ov.Core().read_model(str(path))


def _convolutions(model: ov.Model) -> dict[str, Any]:
    return {
        op.get_friendly_name(): op
        for op in model.get_ordered_ops()
        if op.get_type_name() == "Convolution"
    }


@pytest.mark.parametrize("fp16", [False, True], ids=["f32", "fp16-weights"])
def test_the_dfl_is_kept_in_float_and_every_learned_conv_is_quantized(
    tmp_path: Path, fp16: bool
) -> None:
    model = _read(build_yolo_seg_dfl(tmp_path / "yolo.xml", fp16=fp16))
    convs = _convolutions(model)
    assert len(convs) == LEARNED_CONVS + 1 and DFL_CONV in convs
    if fp16:  # as Ultralytics exports it: Constant f16 -> Convert -> Convolution
        weight = convs[DFL_CONV].input_value(1).get_node()
        assert weight.get_type_name() == "Convert"
        assert weight.input_value(0).get_node().get_output_element_type(0) == ov.Type.f16
    scope = scope_analysis(model)
    proposal = scope.proposal
    # The whole DFL module under its own rule: view, transpose, softmax over the bins, conv.
    dfl = proposal.by_rule[DECODING_RULE]
    assert dfl[:4] == [DFL_RESHAPE, DFL_TRANSPOSE, DFL_SOFTMAX, DFL_CONV]
    assert len(dfl) == 5 and scope.type_of[dfl[4]] == "Reshape"  # the view to [1,4,A]
    # Every learned conv stays quantized, and only those are counted.
    learned = set(convs) - {DFL_CONV}
    assert not learned & set(proposal.names)
    assert scope.quantized_compute == LEARNED_CONVS
    assert proposal.types["Convolution"] == 1 and proposal.types["Softmax"] == 1
    # The walk from the outputs passes the DFL up to the heads' convs: the split of the
    # concatenated head outputs before it is geometry too, and each box conv feeds it.
    decoding = set(proposal.by_rule["output decoding"])
    assert {scope.type_of[n] for n in decoding} >= {"Concat", "Split", "Subtract", "Sigmoid"}
    box_convs = [
        name
        for name, op in convs.items()
        if op.get_output_partial_shape(0)[1].get_length() == 4 * REG_MAX
    ]
    assert len(box_convs) == 2 and not set(box_convs) & set(proposal.names)


def test_the_tiny_model_is_read_as_yolo_seg(tmp_path: Path) -> None:
    adapter = detect_format(_read(build_yolo_seg_dfl(tmp_path / "yolo.xml", num_classes=3)))
    assert adapter.format_id == "yolo-seg"
    assert len(adapter.class_names) == 3


def test_a_learned_one_channel_conv_is_not_a_decoding_layer(tmp_path: Path) -> None:
    # One class: its 1x1 convs (one per level) have one output channel over 16 inputs,
    # with learned weights.
    model = _read(build_yolo_seg_dfl(tmp_path / "one.xml", num_classes=1))
    convs = _convolutions(model)
    single = [
        name
        for name, op in convs.items()
        if name != DFL_CONV and op.get_output_partial_shape(0)[1].get_length() == 1
    ]
    assert len(single) == 2
    assert list(decoding_layers(model.get_ordered_ops())) == [DFL_CONV]
    scope = scope_analysis(model)
    assert not set(single) & set(scope.proposal.names)
    assert scope.quantized_compute == LEARNED_CONVS


def _projection(weights: np.ndarray, *, softmax_bins: int | None = None) -> ov.Model:
    """data [1,C,4,8] (after a softmax over `softmax_bins` channels, if given) -> 1x1 conv."""
    channels = weights.size
    data: Any = ops.parameter([1, channels, 4, 8], np.float32, name="data")
    source = data
    if softmax_bins is not None:
        bins = ops.reshape(data, ops.constant(np.array([1, softmax_bins, -1], np.int64)), False)
        source = ops.reshape(
            ops.softmax(bins, 1), ops.constant(np.array([1, channels, 4, 8], np.int64)), False
        )
    kernel = ops.constant(weights.astype(np.float32).reshape(1, channels, 1, 1))
    conv = ops.convolution(source, kernel, [1, 1], [0, 0], [0, 0], [1, 1])
    conv.set_friendly_name("projection")
    return ov.Model([ops.result(conv)], [data])


@pytest.mark.parametrize(
    ("weights", "softmax_bins", "decoding"),
    [
        (np.arange(16), None, True),  # DFL's 0..15
        (np.linspace(0.0, 1.0, 8), None, True),  # any constant step
        (np.arange(16)[::-1], None, True),
        (np.random.default_rng(1).normal(0, 1, 16), None, False),  # learned
        (np.array([0, 1, 2, 3, 4, 5, 6, 8]), None, False),  # one step off
        (np.ones(16), None, False),  # a sum, not a projection onto a distance
        (np.arange(3), None, False),  # too few bins to tell
        (np.random.default_rng(2).normal(0, 1, 16), 16, True),  # reads a softmax over 16 bins
        (np.random.default_rng(3).normal(0, 1, 16), 8, False),  # a softmax over other bins
    ],
    ids=[
        "arange",
        "linspace",
        "descending",
        "random",
        "near-progression",
        "constant",
        "three-bins",
        "after-softmax",
        "softmax-other-bins",
    ],
)
def test_which_one_channel_convs_are_decoding(
    weights: np.ndarray, softmax_bins: int | None, decoding: bool
) -> None:
    model = _projection(weights, softmax_bins=softmax_bins)
    found = decoding_layers(model.get_ordered_ops())
    assert ("projection" in found) is decoding
    scope = scope_analysis(model)
    assert scope.quantized_compute == (0 if decoding else 1)
    assert (scope.proposal.by_rule.get(DECODING_RULE, []) != []) is decoding


def test_a_matmul_projection_is_decoding_but_attention_is_not() -> None:
    logits = ops.parameter([1, 4, 8, REG_MAX], np.float32, name="logits")
    probabilities = ops.softmax(logits, -1)
    arange = ops.constant(np.arange(REG_MAX, dtype=np.float32).reshape(REG_MAX, 1))
    distance = ops.matmul(probabilities, arange, False, False)
    distance.set_friendly_name("dfl_matmul")
    values = ops.parameter([1, 4, REG_MAX, 1], np.float32, name="values")
    attention = ops.matmul(probabilities, values, False, False)  # data, not weights
    attention.set_friendly_name("attention")
    model = ov.Model([ops.result(distance), ops.result(attention)], [logits, values], "projections")
    assert list(decoding_layers(model.get_ordered_ops())) == ["dfl_matmul"]
    assert scope_analysis(model).quantized_compute == 1


def test_decompressed_weights_are_read_through_convert_subtract_multiply() -> None:
    """u8 weights with a zero point and a scale (compressed IRs) are read as their values."""
    data = ops.parameter([1, REG_MAX, 4, 8], np.float32, name="data")
    stored = ops.constant((np.arange(REG_MAX) + 3).astype(np.uint8).reshape(1, REG_MAX, 1, 1))
    shifted = ops.subtract(ops.convert(stored, np.float32), ops.constant(np.float32(3)))
    kernel = ops.multiply(shifted, ops.constant(np.full((1, 1, 1, 1), 0.5, np.float32)))
    conv = ops.convolution(data, kernel, [1, 1], [0, 0], [0, 0], [1, 1])
    conv.set_friendly_name("projection")
    model = ov.Model([ops.result(conv)], [data])
    assert list(decoding_layers(model.get_ordered_ops())) == ["projection"]
    # The same conv reading learned u8 weights is compute.
    noisy = np.random.default_rng(4).integers(0, 255, REG_MAX).astype(np.uint8)
    learned = ops.convolution(
        data,
        ops.convert(ops.constant(noisy.reshape(1, REG_MAX, 1, 1)), np.float32),
        [1, 1],
        [0, 0],
        [0, 0],
        [1, 1],
    )
    model = ov.Model([ops.result(learned)], [data])
    assert decoding_layers(model.get_ordered_ops()) == {}
