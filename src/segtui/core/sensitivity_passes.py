"""The measurements of a sensitivity analysis: the quick error pass, the metric, the per-layer cost.

The error pass runs the PARENT model once per image with the tensors each quantizer of the
INT8 model reads added as outputs, and applies each quantizer (its calibrated range and
levels) to them in NumPy. That scores every quantizer alone on float activations: in the
INT8 model itself a broken quantizer empties everything below it (no detections, no mask
head input), so the tensors there would say nothing about the quantizers further down.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import openvino as ov
import openvino.opset13 as ops

from segtui.core.datasets import load_image
from segtui.core.formats import FormatAdapter
from segtui.core.inference import compile_model
from segtui.core.progress import CancelToken
from segtui.core.quantize import ReferenceMetric, ValidationItem
from segtui.core.quantizer_groups import activation_quantizers
from segtui.core.runtime_graph import summarize_runtime
from segtui.core.types import Hint, Precision

#: A calibrated range narrower than this share of its values' span has collapsed (a
#: calibration fault: in-graph statistics of a tensor that is empty on most images).
COLLAPSED_SHARE = 0.01
#: The score given to a quantizer that reproduces its values exactly (no error at all).
EXACT_DB = 200.0
#: Values per image the median relative error is taken over (a strided sample).
SAMPLE = 4096

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class QuantizerStats:
    """What one quantizer does to the parent's activations on the score images."""

    name: str
    values: int
    #: 10·log10(signal power / quantization noise power); None without values.
    sqnr_db: float | None
    #: The median of |fq(x) − x| / |x| over the values, as −20·log10 (dB); None without values.
    #: A tensor that holds a few huge values beside many small ones has a fine SQNR (its
    #: power is the huge values') while every small value is lost: this catches it.
    median_db: float | None
    clipped: float
    low: float | None
    high: float | None
    #: The quantizer's calibrated input range (high − low).
    width: float

    @property
    def error_db(self) -> float | None:
        """The worse of the two scores (lower is worse); None without values."""
        scores = [v for v in (self.sqnr_db, self.median_db) if v is not None]
        return min(scores) if scores else None

    @property
    def collapsed(self) -> bool:
        """Whether the calibrated range covers almost nothing of the values seen."""
        if self.low is None or self.high is None or self.high <= self.low:
            return False
        return self.width < COLLAPSED_SHARE * (self.high - self.low)


def _constant(node: Any) -> FloatArray | None:
    while node.get_type_name() == "Convert":
        node = node.input_value(0).get_node()
    if node.get_type_name() != "Constant":
        return None
    return np.asarray(node.get_data(), np.float64)


@dataclass(frozen=True)
class _Range:
    in_low: FloatArray
    in_high: FloatArray
    out_low: FloatArray
    out_high: FloatArray
    levels: int

    def apply(self, x: FloatArray) -> FloatArray:
        """OpenVINO's FakeQuantize on `x` (numpy broadcasting of per-channel ranges)."""
        low, high = np.minimum(self.in_low, self.in_high), np.maximum(self.in_low, self.in_high)
        span = np.where(self.in_high == self.in_low, 1.0, self.in_high - self.in_low)
        steps = self.levels - 1
        q = np.round((np.clip(x, low, high) - self.in_low) / span * steps) / steps
        return np.asarray(q * (self.out_high - self.out_low) + self.out_low, np.float64)

    def outside(self, x: FloatArray) -> int:
        low, high = np.minimum(self.in_low, self.in_high), np.maximum(self.in_low, self.in_high)
        return int(np.count_nonzero((x < low) | (x > high)))

    @property
    def width(self) -> float:
        return float(np.max(np.abs(self.in_high - self.in_low)))


def _range(fq: Any) -> _Range | None:
    values = [_constant(fq.input_value(i).get_node()) for i in range(1, 5)]
    if any(v is None for v in values):
        return None
    low, high, out_low, out_high = (v for v in values if v is not None)
    levels = int(fq.get_attributes().get("levels", 256))
    return _Range(low, high, out_low, out_high, max(levels, 2))


def _relative_error(x: FloatArray, quantizer: _Range) -> FloatArray:
    """|fq(x) − x| / |x| per value (0 for an exact 0, 1 for a 0 that moved)."""
    error = np.abs(quantizer.apply(x) - x)
    size = np.abs(x)
    moved = np.where(error > 1e-12, 1.0, 0.0)
    return np.where(size > 1e-12, error / np.maximum(size, 1e-12), moved)


def _db(ratio: float) -> float:
    """An amplitude ratio in dB (−20·log10), EXACT_DB for none."""
    return EXACT_DB if ratio <= 0 else min(EXACT_DB, -20 * math.log10(ratio))


class _Accumulator:
    def __init__(self) -> None:
        self.signal = 0.0
        self.noise = 0.0
        self.clipped = 0
        self.values = 0
        self.low: float | None = None
        self.high: float | None = None
        self.relative: list[FloatArray] = []

    def add(self, x: FloatArray, quantizer: _Range) -> None:
        finite = np.isfinite(x)
        if not finite.all():  # an infinite fill value says nothing about the quantizer
            x = np.where(finite, x, 0.0)  # (keeps the shape: ranges may be per channel)
        if x.size == 0:
            return
        y = quantizer.apply(x)
        self.relative.append(_relative_error(x.ravel()[:: max(1, x.size // SAMPLE)], quantizer))
        self.signal += float(np.sum(x * x))
        self.noise += float(np.sum((y - x) ** 2))
        self.clipped += quantizer.outside(x)
        self.values += x.size
        low, high = float(x.min()), float(x.max())
        self.low = low if self.low is None else min(self.low, low)
        self.high = high if self.high is None else max(self.high, high)

    def stats(self, name: str, width: float) -> QuantizerStats:
        if not self.values:
            sqnr = None
        elif self.noise <= 0.0:
            sqnr = EXACT_DB
        else:
            sqnr = min(EXACT_DB, 10 * math.log10(max(self.signal, 1e-30) / self.noise))
        median = float(np.median(np.concatenate(self.relative))) if self.relative else None
        return QuantizerStats(
            name=name,
            values=self.values,
            sqnr_db=None if sqnr is None else round(sqnr, 2),
            median_db=None if median is None else round(_db(median), 2),
            clipped=round(self.clipped / self.values, 4) if self.values else 0.0,
            low=self.low,
            high=self.high,
            width=width,
        )


def _key(output: Any) -> tuple[str, int]:
    return (output.get_node().get_friendly_name(), output.get_index())


def _tap(parent: ov.Model, fqs: Sequence[Any]) -> tuple[ov.Model, dict[str, tuple[str, int]]]:
    """A copy of the parent with each quantizer's input tensor as an output (by its key)."""
    model = parent.clone()
    ops_by_name = {op.get_friendly_name(): op for op in model.get_ops()}
    taps: dict[str, tuple[str, int]] = {}
    outputs = []
    for fq in fqs:
        source = fq.input_value(0)
        op = ops_by_name.get(source.get_node().get_friendly_name())
        if op is None or source.get_index() >= op.get_output_size():
            continue  # not in the parent (renamed): left unscored
        output = op.output(source.get_index())
        taps[fq.get_friendly_name()] = _key(output)
        outputs.append(output)
    if outputs:
        model.add_outputs(outputs)
    return model, taps


def score_quantizers(
    int8: ov.Model,
    parent: ov.Model,
    adapter: FormatAdapter,
    images: Sequence[Path],
    *,
    on_image: Callable[[int], None] | None = None,
) -> dict[str, QuantizerStats]:
    """Each activation quantizer of `int8` applied to the parent's tensors on `images`."""
    fqs = activation_quantizers(int8)
    ranges = {fq.get_friendly_name(): _range(fq) for fq in fqs}
    tapped, taps = _tap(parent, fqs)
    where = {_key(r.input_value(0)): i for i, r in enumerate(tapped.get_results())}
    request = compile_model(tapped, "CPU", Precision.F32, hint=Hint.LATENCY).create_infer_request()
    totals = {name: _Accumulator() for name in ranges}
    for index, path in enumerate(images):
        inputs, _ = adapter.preprocess(load_image(path))
        request.infer(inputs)
        tensors = request.output_tensors
        for name, key in taps.items():
            quantizer = ranges[name]
            if quantizer is not None:
                totals[name].add(np.asarray(tensors[where[key]].data, np.float64), quantizer)
        if on_image is not None:
            on_image(index + 1)
    return {
        name: totals[name].stats(name, quantizer.width if quantizer else 0.0)
        for name, quantizer in ranges.items()
    }


def refitted(model: ov.Model, stats: Mapping[str, QuantizerStats]) -> tuple[ov.Model, int]:
    """A copy of `model` whose collapsed quantizers take the range of the values seen (as a
    recalibration that has statistics would set it), and how many were refitted."""
    copy = model.clone()
    count = 0
    for fq in activation_quantizers(copy):
        seen = stats.get(fq.get_friendly_name())
        if seen is None or not seen.collapsed or seen.low is None or seen.high is None:
            continue
        for port, value in ((1, seen.low), (2, seen.high), (3, seen.low), (4, seen.high)):
            constant = ops.constant(np.array(value, np.float32))
            fq.input(port).replace_source_output(constant.output(0))
        count += 1
    copy.validate_nodes_and_infer_types()
    return copy, count


class MetricRunner:
    """The analysis' metric on its images: mask AP against annotations or the parent's predictions."""

    def __init__(self, metric: ReferenceMetric, cancel: CancelToken | None) -> None:
        self.metric = metric
        self.cancel = cancel
        self.evaluations = 0

    @property
    def items(self) -> list[ValidationItem]:
        return self.metric.items

    def measure(self, model: ov.Model) -> float:
        """The metric of `model` (0..1); one evaluation."""
        if self.cancel is not None:
            self.cancel.raise_if_cancelled()
        compiled = compile_model(model, "CPU", Precision.F32, hint=Hint.LATENCY)
        self.evaluations += 1
        return float(self.metric(compiled, self.items))


@dataclass(frozen=True)
class LayerProfile:
    """Per-image ms of the runtime layers, and which runtime layer runs each original layer."""

    runtime_ms: dict[str, float]
    runtime_of: dict[str, str]

    @property
    def total_ms(self) -> float:
        return round(sum(self.runtime_ms.values()), 4)

    def group_ms(self, layers: Collection[str]) -> float | None:
        """ms of the runtime layers that run `layers` (each counted once); None if none found."""
        found = {self.runtime_of[name] for name in layers if name in self.runtime_of}
        if not found:
            return None
        return round(sum(self.runtime_ms[name] for name in found), 4)


def profile_layers(model: ov.Model, adapter: FormatAdapter, images: Sequence[Path]) -> LayerProfile:
    """A short per-layer profile (PERF_COUNT, f32, one request; the first run is a warm-up)."""
    compiled = compile_model(model, "CPU", Precision.F32, hint=Hint.LATENCY, PERF_COUNT=True)
    request = compiled.create_infer_request()
    inputs = [adapter.preprocess(load_image(path))[0] for path in images]
    request.infer(inputs[0])  # first-run allocations are not the layers' cost
    totals: dict[str, float] = {}
    for item in inputs:
        request.infer(item)
        for info in request.profiling_info:
            seconds = info.real_time.total_seconds()
            totals[info.node_name] = totals.get(info.node_name, 0.0) + seconds
    runs = max(len(inputs), 1)
    runtime_ms: dict[str, float] = {}
    runtime_of: dict[str, str] = {}
    for layer in summarize_runtime(compiled).layers:
        runtime_ms[layer.name] = totals.get(layer.name, 0.0) / runs * 1000
        for original in layer.original_names:
            runtime_of.setdefault(original, layer.name)
    _fused_below(model, runtime_of)
    return LayerProfile(runtime_ms, runtime_of)


def _fused_below(model: ov.Model, runtime_of: dict[str, str]) -> None:
    """Name the runtime layer of each op the plugin fused into the op below it without
    keeping its name (a MatMul becomes a FullyConnected named after its bias Add)."""
    for op in reversed(model.get_ordered_ops()):
        name = op.get_friendly_name()
        if name in runtime_of or op.get_type_name() in ("Constant", "Parameter", "Result"):
            continue
        below = [
            t.get_node().get_friendly_name() for o in op.outputs() for t in o.get_target_inputs()
        ]
        if len(below) == 1 and below[0] in runtime_of:
            runtime_of[name] = runtime_of[below[0]]


__all__ = [
    "COLLAPSED_SHARE",
    "LayerProfile",
    "MetricRunner",
    "QuantizerStats",
    "profile_layers",
    "refitted",
    "score_quantizers",
]
