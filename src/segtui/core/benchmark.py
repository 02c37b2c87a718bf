"""Throughput and latency measured the way OpenVINO's benchmark_app measures them.

Compile with a performance hint (or explicit streams), fill the requests with
the project's real preprocessed images, run one excluded warm-up inference,
then keep every request busy for a fixed duration through an AsyncInferQueue.
Throughput = batch × completed inferences / wall time; latency = the median of
per-request latencies (also average, min, max). Inputs are switched between
inferences by pointer (set_tensor of pre-made tensors), never copied, so that
a Mask R-CNN whose run time depends on the objects in the image sees many images.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NotRequired, TypedDict

import numpy as np
import openvino as ov

from segtui.core.datasets import load_image
from segtui.core.errors import InferenceError, SegtuiError
from segtui.core.formats import FormatAdapter
from segtui.core.inference import compile_model, runtime_precision
from segtui.core.machine import MachineJson, machine_info
from segtui.core.progress import CancelToken, ProgressCallback, no_progress
from segtui.core.runtime_graph import RuntimeProfile, profile_layers, summarize_runtime
from segtui.core.settings import BENCHMARK, checked
from segtui.core.types import Hint, Precision

HINTS: tuple[Hint, ...] = tuple(Hint)
MAX_INPUT_IMAGES = 32


class BenchmarkChoices(TypedDict):
    """The BENCHMARK schema's settings as JSON (per_layer aside: it is not a setting here)."""

    hint: str
    streams: int | None
    requests: int | None
    batch: int
    duration_s: float
    precision: str


class StoredBenchmarkSettings(BenchmarkChoices):
    """`BenchmarkSettings` as JSON (a sweep stores the settings its cells share)."""

    device: str


class BenchmarkParams(BenchmarkChoices):
    """The params of a "benchmark" job: the settings but the device (the project's)."""

    per_layer: bool


@dataclass(frozen=True)
class BenchmarkSettings:
    """How a benchmark runs; defaults and ranges are the BENCHMARK schema's."""

    hint: Hint = BENCHMARK.hint.default
    #: Explicit NUM_STREAMS (overrides the hint's choice).
    streams: int | None = BENCHMARK.streams.default
    #: Explicit number of infer requests.
    requests: int | None = BENCHMARK.requests.default
    batch: int = BENCHMARK.batch.default
    duration_s: float = BENCHMARK.duration_s.default
    precision: Precision = BENCHMARK.precision.default
    device: str = "CPU"

    @classmethod
    def from_values(cls, values: Mapping[str, object], device: str = "CPU") -> BenchmarkSettings:
        """Settings from schema values (job params, parsed options), checked and converted.

        Names the settings do not hold (`per_layer`) are left out.
        """
        known = {name: values[name] for name in cls.__dataclass_fields__ if name in values}
        known.pop("device", None)
        return cls(**checked(BENCHMARK, known), device=device)

    def values(self) -> dict[str, object]:
        """The values of the schema's fields (all but the device)."""
        return {k: v for k, v in asdict(self).items() if k != "device"}

    def validate(self) -> None:
        """Raise a SettingError naming every value out of the schema's range."""
        BENCHMARK.validate(self.values())

    def _choices(self) -> BenchmarkChoices:
        return BenchmarkChoices(
            hint=str(self.hint),
            streams=self.streams,
            requests=self.requests,
            batch=self.batch,
            duration_s=self.duration_s,
            precision=str(self.precision),
        )

    def to_json(self) -> StoredBenchmarkSettings:
        return {**self._choices(), "device": self.device}

    def job_params(self, *, per_layer: bool = True) -> BenchmarkParams:
        return {**self._choices(), "per_layer": per_layer}


class BenchmarkFigures(TypedDict):
    """One measurement, as `BenchmarkResult.to_json` gives it."""

    throughput_fps: float
    latency_median_ms: float
    latency_avg_ms: float
    latency_min_ms: float
    latency_max_ms: float
    iterations: int
    wall_s: float
    device: str
    hint: str
    streams: int
    requests: int
    batch: int
    duration_s: float
    #: The inference precision it actually ran at ("f32", "bf16").
    precision: str
    #: The precision asked for ("f32" or "default").
    requested_precision: str
    images: int
    runtime: RuntimeProfile
    #: The processor it ran on, its capabilities and what "default" resolves to there
    #: (runs stored before it was kept lack it).
    machine: NotRequired[MachineJson]
    #: The job process's niceness (a job started from the TUI gives way to it: SEGTUI_JOB_NICE).
    niceness: NotRequired[int]


class BenchmarkRun(BenchmarkFigures):
    """A project's benchmark as a job stores it (a "benchmark" result)."""

    model_id: int
    int8: bool
    #: The version of the model's accuracy settings (its inputs are prepared with them;
    #: runs stored before it was kept lack it: core.settings_versions).
    accuracy_settings_version: NotRequired[str]


class StoredBenchmark(BenchmarkRun):
    """A benchmark read back from the workspace, with the id of its result row."""

    result_id: int


@dataclass(frozen=True)
class BenchmarkResult:
    throughput_fps: float
    latency_median_ms: float
    latency_avg_ms: float
    latency_min_ms: float
    latency_max_ms: float
    iterations: int
    wall_s: float
    device: str
    hint: Hint
    streams: int
    requests: int
    batch: int
    duration_s: float
    precision: str  # the inference precision it actually ran at
    requested_precision: Precision
    images: int
    runtime: RuntimeProfile
    machine: MachineJson
    niceness: int = 0

    def to_json(self) -> BenchmarkFigures:
        return BenchmarkFigures(
            throughput_fps=round(self.throughput_fps, 4),
            latency_median_ms=round(self.latency_median_ms, 4),
            latency_avg_ms=round(self.latency_avg_ms, 4),
            latency_min_ms=round(self.latency_min_ms, 4),
            latency_max_ms=round(self.latency_max_ms, 4),
            iterations=self.iterations,
            wall_s=round(self.wall_s, 4),
            device=self.device,
            hint=str(self.hint),
            streams=self.streams,
            requests=self.requests,
            batch=self.batch,
            duration_s=self.duration_s,
            precision=self.precision,
            requested_precision=str(self.requested_precision),
            images=self.images,
            runtime=self.runtime,
            machine=self.machine,
            niceness=self.niceness,
        )


def _batched_model(model: ov.Model, adapter: FormatAdapter, batch: int) -> ov.Model:
    if batch == 1:
        return model
    port = next(
        p
        for p in model.inputs
        if p.any_name == adapter.image_input or adapter.image_input in p.get_names()
    )
    shape = [int(d) for d in port.get_shape()]
    shape[0] = batch
    try:
        model.reshape({port: ov.PartialShape(shape)})
    except Exception as exc:
        raise SegtuiError(
            f"This model cannot run with batch {batch}: {str(exc).strip().splitlines()[0][:200]}",
            "Use batch 1 (Mask R-CNN exports in the OMZ format are single-image graphs); raise streams instead.",
        ) from exc
    return model


def _input_sets(
    adapter: FormatAdapter, image_paths: list[Path], batch: int
) -> list[dict[str, ov.Tensor]]:
    """Pre-made input tensors for up to MAX_INPUT_IMAGES batches of real, preprocessed images."""
    singles = [
        adapter.preprocess(load_image(p))[0] for p in image_paths[: MAX_INPUT_IMAGES * batch]
    ]
    if not singles:
        raise SegtuiError("No images to benchmark with.", "The project's dataset is empty.")
    sets = []
    count = max(1, len(singles) // batch)
    for b in range(count):
        chunk = [singles[(b * batch + i) % len(singles)] for i in range(batch)]
        sets.append(
            {
                name: ov.Tensor(np.ascontiguousarray(np.concatenate([c[name] for c in chunk])))
                for name in chunk[0]
            }
        )
    return sets


@dataclass(frozen=True)
class _Measurement:
    iterations: int
    latencies_ms: list[float]
    wall_s: float


def _measure(
    queue: ov.AsyncInferQueue,
    inputs: list[dict[str, ov.Tensor]],
    duration_s: float,
    progress: ProgressCallback,
    cancel: CancelToken | None,
) -> _Measurement:
    """Keep every request busy for `duration_s`, switching inputs by pointer between inferences."""
    nireq = len(queue)
    latencies: list[float] = []
    in_flight: set[int] = set()
    iteration = 0
    next_input = nireq % len(inputs)
    start = time.perf_counter()
    last_report = start
    try:
        while True:
            elapsed = time.perf_counter() - start
            if elapsed >= duration_s and iteration % nireq == 0:
                break
            idle = queue.get_idle_request_id()
            request = queue[idle]
            if idle in in_flight:
                latencies.append(request.latency)
            else:
                in_flight.add(idle)
            if len(inputs) > nireq:
                for name, tensor in inputs[next_input].items():
                    request.set_tensor(name, tensor)
                next_input = (next_input + 1) % len(inputs)
            queue.start_async()
            iteration += 1
            now = time.perf_counter()
            if now - last_report > 0.25:
                last_report = now
                if cancel is not None and cancel.cancelled:
                    queue.wait_all()
                    cancel.raise_if_cancelled()
                progress(
                    0.05 + 0.9 * min(elapsed / duration_s, 1.0),
                    f"Measuring {elapsed:.0f}/{duration_s:.0f} s",
                )
        queue.wait_all()
    except InferenceError:
        raise
    except RuntimeError as exc:
        raise InferenceError(
            f"Inference failed during the benchmark: {str(exc).splitlines()[0][:300]}"
        ) from exc
    wall = max(time.perf_counter() - start, 1e-9)
    latencies.extend(queue[i].latency for i in in_flight)
    return _Measurement(iteration, latencies, wall)


def run_benchmark(
    model: ov.Model,
    adapter: FormatAdapter,
    image_paths: list[Path],
    settings: BenchmarkSettings,
    *,
    per_layer: bool = False,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> BenchmarkResult:
    """Measure throughput and latency (see the module docstring)."""
    settings.validate()
    model = _batched_model(model.clone(), adapter, settings.batch)
    progress(0.01, "Compiling")
    extra: dict[str, str | bool] = {}
    if settings.streams is not None:
        extra["NUM_STREAMS"] = str(settings.streams)
    if settings.requests is not None:
        extra["PERFORMANCE_HINT_NUM_REQUESTS"] = str(settings.requests)
    compiled = compile_model(model, settings.device, settings.precision, settings.hint, **extra)
    precision = runtime_precision(compiled)
    nireq = settings.requests or int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
    streams = int(compiled.get_property("NUM_STREAMS"))
    progress(0.03, "Preparing inputs")
    inputs = _input_sets(adapter, image_paths, settings.batch)
    queue = ov.AsyncInferQueue(compiled, nireq)
    for i in range(nireq):
        for name, tensor in inputs[i % len(inputs)].items():
            queue[i].set_tensor(name, tensor)
    # Warm-up: one inference, excluded (first-inference allocations and caches).
    queue[0].infer()
    measured = _measure(queue, inputs, settings.duration_s, progress, cancel)
    if per_layer:
        progress(0.97, "Per-layer profile")
        profile_inputs = [{k: np.array(v.data) for k, v in s.items()} for s in inputs[:8]]
        runtime = profile_layers(
            model, profile_inputs, device=settings.device, precision=settings.precision
        )
    else:
        runtime = summarize_runtime(compiled).to_json()
    progress(1.0, "Done")
    latencies = measured.latencies_ms
    return BenchmarkResult(
        throughput_fps=settings.batch * measured.iterations / measured.wall_s,
        latency_median_ms=statistics.median(latencies),
        latency_avg_ms=statistics.fmean(latencies),
        latency_min_ms=min(latencies),
        latency_max_ms=max(latencies),
        iterations=measured.iterations,
        wall_s=measured.wall_s,
        device=settings.device,
        hint=settings.hint,
        streams=streams,
        requests=nireq,
        batch=settings.batch,
        duration_s=settings.duration_s,
        precision=precision,
        requested_precision=settings.precision,
        images=len(inputs) * settings.batch,
        runtime=runtime,
        machine=machine_info(settings.device).to_json(),
        niceness=os.nice(0),
    )
