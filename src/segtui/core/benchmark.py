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

import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov

from segtui.core.datasets import load_image
from segtui.core.errors import InferenceError, SegtuiError
from segtui.core.formats import FormatAdapter
from segtui.core.inference import compile_model, runtime_precision
from segtui.core.progress import CancelToken, ProgressCallback, no_progress
from segtui.core.runtime_graph import profile_layers, summarize_runtime

HINTS = ("THROUGHPUT", "LATENCY")
MAX_INPUT_IMAGES = 32


@dataclass
class BenchmarkSettings:
    hint: str = "THROUGHPUT"
    streams: int | None = None  # explicit NUM_STREAMS (overrides the hint's choice)
    requests: int | None = None  # explicit number of infer requests
    batch: int = 1
    duration_s: float = 20.0
    precision: str = "f32"  # "f32" or "default"
    device: str = "CPU"

    def validate(self) -> None:
        if self.hint not in HINTS:
            raise SegtuiError(f"Unknown hint {self.hint!r}.", "Use THROUGHPUT or LATENCY.")
        if (
            self.batch < 1
            or (self.streams is not None and self.streams < 1)
            or (self.requests is not None and self.requests < 1)
        ):
            raise SegtuiError("Batch, streams and requests must be at least 1.")
        if not 0.5 <= self.duration_s <= 3600:
            raise SegtuiError(f"Duration {self.duration_s} s is out of range.", "Use 0.5–3600 s.")


@dataclass
class BenchmarkResult:
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
    precision: str  # the inference precision it actually ran at
    requested_precision: str
    images: int
    runtime: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for key in (
            "throughput_fps",
            "latency_median_ms",
            "latency_avg_ms",
            "latency_min_ms",
            "latency_max_ms",
            "wall_s",
        ):
            data[key] = round(float(data[key]), 4)
        return data


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
    extra: dict[str, Any] = {}
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
    latencies: list[float] = []
    in_flight: set[int] = set()
    iteration = 0
    next_input = nireq % len(inputs)
    start = time.perf_counter()
    last_report = start
    try:
        while True:
            elapsed = time.perf_counter() - start
            if elapsed >= settings.duration_s and iteration % nireq == 0:
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
                    0.05 + 0.9 * min(elapsed / settings.duration_s, 1.0),
                    f"Measuring {elapsed:.0f}/{settings.duration_s:.0f} s",
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
    if per_layer:
        progress(0.97, "Per-layer profile")
        profile_inputs = [{k: np.array(v.data) for k, v in s.items()} for s in inputs[:8]]
        runtime = profile_layers(
            model, profile_inputs, device=settings.device, precision=settings.precision
        )
    else:
        runtime = summarize_runtime(compiled).to_json()
    progress(1.0, "Done")
    return BenchmarkResult(
        throughput_fps=settings.batch * iteration / wall,
        latency_median_ms=statistics.median(latencies),
        latency_avg_ms=statistics.fmean(latencies),
        latency_min_ms=min(latencies),
        latency_max_ms=max(latencies),
        iterations=iteration,
        wall_s=wall,
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
    )
