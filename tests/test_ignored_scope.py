"""The instance-segmentation-aware ignored scope is found from the graph's structure."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import openvino as ov
import openvino.opset13 as ops
import pytest

from segtui.core.errors import SegtuiError
from segtui.core.ignored_scope import (
    COMPUTE_TYPES,
    bodies_fully_ignored,
    has_loops,
    if_ops,
    propose_ignored_scope,
    scope_analysis,
)
from segtui.core.optimize_settings import OptimizeSettings
from segtui.core.quantize import quantize


def _named(node, name: str):  # type: ignore[no-untyped-def]
    node.set_friendly_name(name)
    return node


def build_two_stage_detector() -> ov.Model:
    """image → preprocessing → conv backbone → (proposals: TopK + box decode) → ROIAlign → merge → MatMul head."""
    rng = np.random.default_rng(0)
    image = ops.parameter([1, 3, 32, 32], np.float32, name="image")
    scaled = _named(ops.multiply(image, ops.constant(np.float32(1 / 255))), "pre_scale")
    feat = _named(
        ops.convolution(
            scaled,
            ops.constant(rng.random((8, 3, 3, 3), np.float32)),
            [1, 1],
            [1, 1],
            [1, 1],
            [1, 1],
        ),
        "backbone_conv",
    )
    relu = _named(ops.relu(feat), "backbone_relu")
    scores = _named(
        ops.convolution(
            relu, ops.constant(rng.random((1, 8, 1, 1), np.float32)), [1, 1], [0, 0], [0, 0], [1, 1]
        ),
        "objectness_conv",
    )
    flat = _named(
        ops.reshape(scores, ops.constant(np.array([-1], np.int64)), False), "objectness_flat"
    )
    topk = _named(ops.topk(flat, ops.constant(np.int64(4)), 0, "max", "value"), "proposal_topk")
    idx = _named(ops.convert(topk.output(1), np.float32), "idx_f")
    x1 = _named(ops.floor(ops.divide(idx, ops.constant(np.float32(32)))), "decode_x1")
    stacked = _named(
        ops.concat(
            [
                ops.unsqueeze(v, ops.constant(np.int64(1)))
                for v in (
                    x1,
                    x1,
                    ops.add(x1, ops.constant(np.float32(8))),
                    ops.add(x1, ops.constant(np.float32(8))),
                )
            ],
            1,
        ),
        "decode_boxes",
    )
    roi = _named(
        ops.roi_align(
            relu, stacked, ops.constant(np.zeros(4, np.int32)), 2, 2, 1, 1.0, "avg", "asymmetric"
        ),
        "roi_align",
    )
    merged = _named(
        ops.reshape(roi, ops.constant(np.array([4, 32], np.int64)), False), "merge_reshape"
    )
    head = _named(
        ops.matmul(merged, ops.constant(rng.random((32, 5), np.float32)), False, False),
        "box_head_fc",
    )
    out = _named(ops.sigmoid(head), "out_sigmoid")
    return ov.Model([ops.result(out)], [image], "two_stage")


def test_geometry_is_ignored_and_every_compute_layer_stays_quantized() -> None:
    model = build_two_stage_detector()
    proposal = propose_ignored_scope(model)
    names = set(proposal.names)
    assert {
        "pre_scale",
        "proposal_topk",
        "idx_f",
        "decode_x1",
        "decode_boxes",
        "roi_align",
        "merge_reshape",
        "out_sigmoid",
    } <= names
    # The data path between compute layers is not geometry, and compute is never ignored.
    assert "backbone_relu" not in names
    compute = {
        op.get_friendly_name()
        for op in model.get_ordered_ops()
        if op.get_type_name() in COMPUTE_TYPES
    }
    assert compute == {"backbone_conv", "objectness_conv", "box_head_fc"}
    assert not names & compute
    rules = proposal.to_json()["by_rule"]
    assert rules["RoI feature merging"] >= 1 and rules["proposals and box decoding"] >= 4
    assert proposal.to_json()["count"] == len(names)


def test_a_plain_classifier_gets_only_pre_and_post_processing() -> None:
    image = ops.parameter([1, 3, 8, 8], np.float32, name="image")
    conv = ops.convolution(
        image, ops.constant(np.ones((4, 3, 3, 3), np.float32)), [1, 1], [0, 0], [0, 0], [1, 1]
    )
    pooled = ops.reduce_mean(conv, ops.constant(np.array([2, 3], np.int64)), False)
    fc = ops.matmul(pooled, ops.constant(np.ones((4, 2), np.float32)), False, False)
    soft = _named(ops.softmax(fc, 1), "softmax")
    proposal = propose_ignored_scope(ov.Model([ops.result(soft)], [image]))
    assert proposal.names == ["softmax"]


def build_model_with_if(body_compute: bool) -> ov.Model:
    """image → conv → If(then: ×2 [or a conv], else: +1) → result, like a guarded batched NMS."""
    rng = np.random.default_rng(1)
    image = ops.parameter([1, 3, 8, 8], np.float32, name="image")
    conv = _named(
        ops.convolution(
            image,
            ops.constant(rng.random((4, 3, 1, 1), np.float32)),
            [1, 1],
            [0, 0],
            [0, 0],
            [1, 1],
        ),
        "backbone_conv",
    )
    cond = _named(
        ops.greater(
            ops.reduce_sum(conv, ops.constant(np.array([0, 1, 2, 3])), False), np.float32(0)
        ),
        "not_empty",
    )
    then_in = ops.parameter([1, 4, 8, 8], np.float32, name="then_in")
    if body_compute:
        then_op = _named(
            ops.convolution(
                then_in,
                ops.constant(rng.random((4, 4, 1, 1), np.float32)),
                [1, 1],
                [0, 0],
                [0, 0],
                [1, 1],
            ),
            "then_conv",
        )
    else:
        then_op = _named(ops.multiply(then_in, ops.constant(np.float32(2))), "then_scale")
    then_res = ops.result(then_op)
    else_in = ops.parameter([1, 4, 8, 8], np.float32, name="else_in")
    else_res = ops.result(_named(ops.add(else_in, ops.constant(np.float32(1))), "else_shift"))
    branch = _named(ops.if_op(cond.output(0)), "guard")
    branch.set_then_body(ov.Model([then_res], [then_in]))
    branch.set_else_body(ov.Model([else_res], [else_in]))
    branch.set_input(conv.output(0), then_in, else_in)
    out = branch.set_output(then_res, else_res)
    return ov.Model([ops.result(out)], [image])


def test_if_bodies_are_skippable_only_when_everything_inside_is_ignored() -> None:
    geometry = build_model_with_if(body_compute=False)
    assert [op.get_friendly_name() for op in if_ops(geometry)] == ["guard"]
    proposal = propose_ignored_scope(geometry)
    # The geometry inside the If (both bodies) is in the proposed scope, the backbone is not.
    assert {"then_scale", "else_shift"} <= set(proposal.names)
    assert "backbone_conv" not in proposal.names
    assert bodies_fully_ignored(geometry, proposal.names, [])
    # One body op left out of the scope: NNCF must see the bodies.
    partial = [n for n in proposal.names if n != "else_shift"]
    assert not bodies_fully_ignored(geometry, partial, [])
    # ...unless its type is ignored as a whole.
    assert bodies_fully_ignored(geometry, partial, ["Add"])
    # A compute layer inside a body stays quantizable, so the bodies are not skippable.
    compute = build_model_with_if(body_compute=True)
    assert "then_conv" not in propose_ignored_scope(compute).names
    assert not bodies_fully_ignored(compute, propose_ignored_scope(compute).names, [])
    # A model without subgraphs has nothing to skip.
    assert not bodies_fully_ignored(build_two_stage_detector(), ["anything"], [])


def test_full_bias_correction_on_a_model_with_if_is_refused_with_a_way_out(tmp_path: Path) -> None:
    settings = OptimizeSettings(fast_bias_correction=False)
    with pytest.raises(SegtuiError) as err:
        quantize(build_model_with_if(False), None, [], settings, tmp_path / "m.xml")  # type: ignore[arg-type]
    assert "If operations (this one has 1)" in str(err.value)
    assert "fast bias correction" in err.value.hint
    assert not (tmp_path / "m.xml").exists()


def test_scope_analysis_counts_quantized_compute_and_checks_user_entries() -> None:
    model = build_two_stage_detector()
    analysis = scope_analysis(model)
    assert analysis.proposal.names == propose_ignored_scope(model).names
    assert len(analysis.type_of) == len(model.get_ordered_ops())
    # backbone_conv, objectness_conv and box_head_fc: none is in the proposal.
    assert analysis.quantized_compute == 3
    assert analysis.type_of["roi_align"] == "ROIAlign"
    assert analysis.type_of["box_head_fc"] == "MatMul"
    assert analysis.unknown_names(["roi_align", "nowhere", "pre_scale"]) == ["nowhere"]
    assert analysis.unknown_types(["Sigmoid", "Bogus", "TopK"]) == ["Bogus"]
    assert analysis.layers_of_types(["Convolution", "MatMul"]) == 3
    assert analysis.layers_of_types([]) == 0


def test_the_proposal_as_stored_with_a_model() -> None:
    proposal = propose_ignored_scope(build_model_with_if(body_compute=False))
    stored = proposal.to_json()
    assert stored["names"] == proposal.names
    assert stored["count"] == len(proposal.names) == sum(stored["by_rule"].values())
    assert stored["by_rule"]["inside geometry subgraphs"] == 2  # then_scale, else_shift
    # The types count the top-level graph's layers (the bodies' are not among its ops).
    assert stored["types"] == {"Greater": 1, "If": 1, "ReduceSum": 1}
    assert not has_loops(build_model_with_if(body_compute=False))
