"""NNCF's private API that segtui uses is still there, as segtui calls it (fails on an upgrade)."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import nncf
import numpy as np
import openvino as ov
import pytest
from test_ignored_scope import build_model_with_if

from segtui.core import nncf_private
from segtui.core.ignored_scope import if_ops, propose_ignored_scope

#: The NNCF release these pins were checked against.
PINNED_NNCF = "3.4.0"

#: Public NNCF calls of segtui.core.quantize, with the keyword arguments it passes.
PUBLIC_CALLS = {
    "quantize": {
        "preset",
        "subset_size",
        "fast_bias_correction",
        "ignored_scope",
        "advanced_parameters",
    },
    "quantize_with_accuracy_control": {
        "validation_fn",
        "max_drop",
        "drop_type",
        "preset",
        "subset_size",
        "fast_bias_correction",
        "ignored_scope",
        "advanced_quantization_parameters",
        "advanced_accuracy_restorer_parameters",
    },
    "AdvancedQuantizationParameters": {"inplace_statistics"},
    "IgnoredScope": {"names", "types", "validate"},
}


def test_nncf_is_the_pinned_release() -> None:
    # A different NNCF may still pass the checks below; this says which one they were made for.
    assert nncf.__version__ == PINNED_NNCF


@pytest.mark.parametrize("call", nncf_private.PRIVATE_CALLS, ids=lambda c: c.name)
def test_private_calls_exist_with_the_parameters_segtui_passes(
    call: nncf_private.PrivateCall,
) -> None:
    function = call.resolve()
    parameters = inspect.signature(function).parameters
    missing = [name for name in call.parameters if name not in parameters]
    assert missing == [], f"{call.module}.{call.name} lost {missing}"
    # segtui passes the model (and the data) first: their positions must not move.
    assert list(parameters)[: min(2, len(call.parameters))] == list(call.parameters[:2])


def test_the_wrapper_passes_exactly_the_pinned_parameters() -> None:
    wrapper = inspect.signature(nncf_private.quantize_main_graph).parameters
    assert tuple(wrapper) == nncf_private.NATIVE_QUANTIZE.parameters


def test_nncf_quantize_still_takes_the_path_the_wrapper_repeats() -> None:
    # quantize_main_graph does what NNCF's OpenVINO quantize does for a model without If:
    # unique names, then the native implementation. If NNCF changes that, so must segtui.
    source = inspect.getsource(nncf_private.QUANTIZE_IMPL.resolve())
    assert f"{nncf_private.REMOVE_NAME_DUPLICATES.name}(model)" in source
    assert f"quantize_fn = {nncf_private.NATIVE_QUANTIZE.name}" in source


def test_the_missing_statistics_error_is_still_raised_with_that_text() -> None:
    module = importlib.import_module(nncf_private.STATISTICS_NOT_COLLECTED_MODULE)
    source = inspect.getsource(module)
    assert f'msg = f"{nncf_private.STATISTICS_NOT_COLLECTED} for the node' in source
    assert "raise nncf.InternalError(msg)" in source
    assert nncf_private.is_missing_statistics(
        nncf.InternalError(f"{nncf_private.STATISTICS_NOT_COLLECTED} for the node conv")
    )
    assert not nncf_private.is_missing_statistics(nncf.InternalError("something else"))
    assert not nncf_private.is_missing_statistics(
        RuntimeError(nncf_private.STATISTICS_NOT_COLLECTED)
    )


@pytest.mark.parametrize("name", sorted(PUBLIC_CALLS))
def test_public_calls_take_the_keywords_segtui_passes(name: str) -> None:
    parameters = inspect.signature(getattr(nncf, name)).parameters
    assert PUBLIC_CALLS[name] <= set(parameters)


def test_main_graph_quantization_keeps_the_if_whole(tmp_path: Path) -> None:
    model = build_model_with_if(body_compute=False)
    proposal = propose_ignored_scope(model)
    rng = np.random.default_rng(0)
    data = [rng.random((1, 3, 8, 8), dtype=np.float32) for _ in range(2)]
    quantized = nncf_private.quantize_main_graph(
        model,
        nncf.Dataset(data),
        preset=nncf.QuantizationPreset.PERFORMANCE,
        subset_size=2,
        fast_bias_correction=True,
        ignored_scope=nncf.IgnoredScope(names=proposal.names, validate=False),
        advanced_parameters=nncf.AdvancedQuantizationParameters(),
    )
    [conv] = [op for op in quantized.get_ordered_ops() if op.get_type_name() == "Convolution"]
    # The main graph is quantized: the backbone convolution reads quantized data...
    assert conv.input_value(0).get_node().get_type_name() == "FakeQuantize"
    [guard] = if_ops(quantized)
    bodies = [guard.get_then_body(), guard.get_else_body()]
    # ...and the If's bodies are left as they were.
    assert all(
        "FakeQuantize" not in {op.get_type_name() for op in body.get_ordered_ops()}
        for body in bodies
    )
    ov.save_model(quantized, tmp_path / "q.xml")  # a valid model
    assert (tmp_path / "q.xml").is_file()
