"""Every use of NNCF's private API, in one place (pinned by tests/test_nncf_private.py).

segtui uses NNCF's public API (`nncf.quantize`, `nncf.quantize_with_accuracy_control`)
except in two spots, both gathered here so that an NNCF upgrade that moves them fails
in one test rather than in the middle of a calibration:

- quantizing the main graph of a model with If operations without NNCF's per-If passes
  over the calibration set (when the If bodies hold nothing to quantize), by calling
  what `nncf.quantize` calls for a model without If operations;
- recognising the error NNCF raises when a quantized tensor got no statistics.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import openvino as ov

#: The text of the InternalError NNCF's MinMax algorithm raises for a tensor without statistics.
STATISTICS_NOT_COLLECTED = "Statistics were not collected"
#: Where NNCF raises it.
STATISTICS_NOT_COLLECTED_MODULE = "nncf.quantization.algorithms.min_max.algorithm"


@dataclass(frozen=True)
class PrivateCall:
    """A private NNCF function segtui calls, and the parameters it passes to it."""

    module: str
    name: str
    parameters: tuple[str, ...]

    def resolve(self) -> Callable[..., Any]:
        function: Callable[..., Any] = getattr(importlib.import_module(self.module), self.name)
        return function


#: nncf.quantize's OpenVINO path for a model without If operations.
NATIVE_QUANTIZE = PrivateCall(
    "nncf.openvino.quantization.quantize_model",
    "native_quantize_impl",
    (
        "model",
        "calibration_dataset",
        "preset",
        "subset_size",
        "fast_bias_correction",
        "ignored_scope",
        "advanced_parameters",
    ),
)
#: What nncf.quantize does to an OpenVINO model first (NNCF's graph needs unique names).
REMOVE_NAME_DUPLICATES = PrivateCall(
    "nncf.openvino.graph.model_utils", "remove_friendly_name_duplicates", ("model",)
)
#: NNCF's OpenVINO quantize, whose steps quantize_main_graph repeats (without the If passes).
QUANTIZE_IMPL = PrivateCall(
    "nncf.openvino.quantization.quantize_model", "quantize_impl", ("model", "calibration_dataset")
)

PRIVATE_CALLS: tuple[PrivateCall, ...] = (NATIVE_QUANTIZE, REMOVE_NAME_DUPLICATES)


def quantize_main_graph(
    model: ov.Model,
    calibration_dataset: Any,
    *,
    preset: Any,
    subset_size: int,
    fast_bias_correction: bool,
    ignored_scope: Any,
    advanced_parameters: Any,
) -> ov.Model:
    """What nncf.quantize does for an OpenVINO model without If operations.

    On a model with If operations this quantizes the main graph alone and keeps each
    If whole (in floating point): only right when the If bodies are wholly ignored.
    """
    unique = REMOVE_NAME_DUPLICATES.resolve()(model)
    quantized: ov.Model = NATIVE_QUANTIZE.resolve()(
        model=unique,
        calibration_dataset=calibration_dataset,
        preset=preset,
        subset_size=subset_size,
        fast_bias_correction=fast_bias_correction,
        ignored_scope=ignored_scope,
        advanced_parameters=advanced_parameters,
    )
    return quantized


def is_missing_statistics(error: BaseException) -> bool:
    """Whether `error` is NNCF's 'no statistics were collected for a quantized tensor'."""
    import nncf

    return isinstance(error, nncf.InternalError) and STATISTICS_NOT_COLLECTED in str(error)


__all__ = [
    "NATIVE_QUANTIZE",
    "PRIVATE_CALLS",
    "QUANTIZE_IMPL",
    "REMOVE_NAME_DUPLICATES",
    "STATISTICS_NOT_COLLECTED",
    "STATISTICS_NOT_COLLECTED_MODULE",
    "PrivateCall",
    "is_missing_statistics",
    "quantize_main_graph",
]
