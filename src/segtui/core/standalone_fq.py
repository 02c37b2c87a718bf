"""Standalone quantizers of an INT8 model: found in its runtime graph, dropped where useless.

NNCF puts a FakeQuantize on the inputs of every operation it quantizes. Where the CPU
plugin can fuse it into neither its producer nor its consumer, it runs as a layer of its
own (on the sample, 0.8 ms before box_head's flatten). That is worth its cost when its
int8 output feeds an INT8 input of a compute layer; when it feeds none, the data is
quantized and dequantized for nothing. Such a quantizer is bypassed after calibration:
its consumers read its input instead. No re-calibration is needed, as taking out a
quantize-dequantize pair that feeds no INT8 compute changes no other quantizer. The
compiled model's INT8 compute layers are counted before and after, and a quantizer whose
removal lowers the count is put back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import openvino as ov

from segtui.core.inference import compile_model
from segtui.core.runtime_graph import INT8_PRECISIONS, RuntimeSummary, summarize_runtime
from segtui.core.standalone_fq_record import (
    DROP_REASON,
    DroppedQuantizerJson,
    StandaloneQuantizersRecord,
)
from segtui.core.time_split import QUANTIZER_TYPE, StandaloneQuantizer, standalone_quantizers
from segtui.core.types import Hint, Precision

#: The runtime graph read is the CPU plugin's: its layer types name the standalone layers.
DEVICE = "CPU"
#: How many times the runtime graph is read again after dropping (see
#: drop_standalone_quantizers): on the sample quantized without the automatic scope, the
#: first round dropped 21, the second 5, the third and the fourth 1 each, then none.
MAX_ROUNDS = 8


def runtime_summary(model: ov.Model, precision: Precision = Precision.DEFAULT) -> RuntimeSummary:
    """The runtime graph of `model` compiled for the CPU, read with its original types."""
    compiled = compile_model(model, DEVICE, precision, hint=Hint.LATENCY)
    return summarize_runtime(compiled, model)


def int8_compute_count(summary: RuntimeSummary) -> int:
    return sum(layer.precision in INT8_PRECISIONS for layer in summary.compute_layers)


def find_standalone_quantizers(
    model: ov.Model, precision: Precision = Precision.DEFAULT
) -> list[StandaloneQuantizer]:
    """The quantizers of an INT8 model that run as layers of their own on the CPU, each with
    the INT8 compute layers it feeds (none: it feeds no INT8 input)."""
    return standalone_quantizers(runtime_summary(model, precision).layers)


@dataclass(frozen=True)
class _Bypass:
    """A FakeQuantize and the inputs that read it: bypassed, they read its input instead."""

    quantizer: StandaloneQuantizer
    op: Any
    targets: tuple[Any, ...]

    def apply(self) -> None:
        for target in self.targets:
            target.replace_source_output(self.op.input_value(0))

    def undo(self) -> None:
        for target in self.targets:
            target.replace_source_output(self.op.output(0))


def _bypasses(
    model: ov.Model, found: list[StandaloneQuantizer]
) -> tuple[dict[str, _Bypass], list[str]]:
    """The FakeQuantize operations to bypass by name, and those kept (they feed INT8 compute,
    or their output is one of the model's)."""
    ops = {op.get_friendly_name(): op for op in model.get_ops()}
    chosen: dict[str, _Bypass] = {}
    kept: list[str] = []
    for quantizer in found:
        for name in quantizer.original:
            op = ops.get(name)
            if op is None or op.get_type_name() != QUANTIZER_TYPE:
                continue  # not a top-level FakeQuantize of this model
            targets = tuple(op.output(0).get_target_inputs())
            outputs = any(t.get_node().get_type_name() == "Result" for t in targets)
            if quantizer.feeds_int8 or outputs:
                kept.append(name)
            else:
                chosen[name] = _Bypass(quantizer, op, targets)
    return chosen, kept


def _restore_needed(
    model: ov.Model, bypasses: dict[str, _Bypass], before: int, precision: Precision
) -> list[str]:
    """Put back, one by one, the bypassed quantizers whose removal lowers the INT8 compute
    count (each tried alone); their names."""
    for bypass in bypasses.values():
        bypass.undo()
    restored = []
    for name, bypass in bypasses.items():
        bypass.apply()
        if int8_compute_count(runtime_summary(model, precision)) < before:
            bypass.undo()
            restored.append(name)
    return restored


def drop_standalone_quantizers(
    model: ov.Model, precision: Precision = Precision.DEFAULT
) -> StandaloneQuantizersRecord:
    """Bypass, in `model` itself, every standalone quantizer that feeds no INT8 input of a
    compute layer, keeping the compiled model's INT8 compute count; what was done.

    Dropping some can leave others standalone (the plugin had fused them together): the
    runtime graph is read again until no new one feeds nothing, at most MAX_ROUNDS times.
    """
    summary = runtime_summary(model, precision)
    before = int8_compute_count(summary)
    found = standalone_quantizers(summary.layers)
    dropped: dict[str, _Bypass] = {}
    restored: list[str] = []
    kept: list[str] = []
    for _ in range(MAX_ROUNDS):
        chosen, kept = _bypasses(model, standalone_quantizers(summary.layers))
        chosen = {name: bypass for name, bypass in chosen.items() if name not in restored}
        if not chosen:
            break
        for bypass in chosen.values():
            bypass.apply()
        summary = runtime_summary(model, precision)
        back: list[str] = []
        if int8_compute_count(summary) < before:
            back = _restore_needed(model, chosen, before, precision)
            summary = runtime_summary(model, precision)
        restored += back
        dropped |= {name: bypass for name, bypass in chosen.items() if name not in back}
    return StandaloneQuantizersRecord(
        found=len(found),
        dropped=[
            DroppedQuantizerJson(
                name=name,
                layer=bypass.quantizer.layer,
                reason=DROP_REASON,
                consumers=[target.get_node().get_friendly_name() for target in bypass.targets],
            )
            for name, bypass in dropped.items()
        ],
        kept=kept,
        restored=restored,
        int8_compute_before=before,
        int8_compute_after=int8_compute_count(summary),
    )


__all__ = [
    "drop_standalone_quantizers",
    "find_standalone_quantizers",
    "int8_compute_count",
    "runtime_summary",
]
