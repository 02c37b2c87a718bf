"""Run a model over a dataset with OpenVINO asynchronous inference."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import openvino as ov

from segtui.core.datasets import load_image
from segtui.core.errors import Cancelled, InferenceError
from segtui.core.formats import FormatAdapter, PreprocessMeta
from segtui.core.models import ov_core
from segtui.core.predictions import ImagePrediction
from segtui.core.progress import CancelToken, ProgressCallback, no_progress
from segtui.core.types import Hint, Precision

#: "f32" forces true FP32; "default" lets the device pick (bf16 on CPUs that have it).
PRECISIONS: tuple[Precision, ...] = tuple(Precision)

#: OpenVINO compile properties (a hint, a precision, NUM_STREAMS, PERF_COUNT, ...).
CompileConfig = dict[str, str | bool]


def compile_config(
    precision: Precision | str, hint: Hint | str = Hint.THROUGHPUT, **extra: str | bool
) -> CompileConfig:
    """The compile properties for an inference precision and performance hint."""
    if precision not in PRECISIONS:
        raise InferenceError(
            f"Unknown precision {precision!r}.", f"Use one of {', '.join(PRECISIONS)}."
        )
    config: CompileConfig = {"PERFORMANCE_HINT": str(hint)}
    if precision == Precision.F32:
        config["INFERENCE_PRECISION_HINT"] = "f32"
    config.update(extra)
    return config


def compile_model(
    model: ov.Model | Path,
    device: str,
    precision: Precision | str,
    hint: Hint | str = Hint.THROUGHPUT,
    **extra: str | bool,
) -> ov.CompiledModel:
    """Compile with a clear error on failure."""
    try:
        return ov_core().compile_model(model, device, compile_config(precision, hint, **extra))
    except Exception as exc:
        raise InferenceError(
            f"OpenVINO could not compile the model for {device}: {str(exc).strip().splitlines()[0][:300]}",
            "Check the device name (`segtui list devices`) and the model.",
        ) from exc


def runtime_precision(compiled: ov.CompiledModel) -> str:
    """The inference precision the compiled model actually runs at ("f32", "bf16", "f16")."""
    try:
        return str(compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name())
    except Exception:
        return "unknown"


@dataclass(frozen=True)
class InferenceRun:
    """Predictions for every image, plus how they were made."""

    predictions: list[ImagePrediction]
    device: str
    precision: str  # what the device actually ran at
    requests: int
    seconds: float


def run_inference(
    model: ov.Model | Path,
    adapter: FormatAdapter,
    images: Sequence[tuple[str, Path]],
    *,
    device: str = "CPU",
    precision: Precision | str = Precision.F32,
    score_threshold: float = 0.05,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> InferenceRun:
    """Predict every image; `images` are (name, path) pairs, results keep their order.

    Preprocessing happens on this thread while OpenVINO runs the previous
    requests; decoding happens in the completion callbacks, so all cores stay busy.
    """
    compiled = compile_model(model, device, precision)
    actual = runtime_precision(compiled)
    queue = ov.AsyncInferQueue(compiled)
    results: list[ImagePrediction | None] = [None] * len(images)
    errors: list[BaseException] = []
    done = 0
    lock = threading.Lock()
    start = time.perf_counter()

    def on_done(request: ov.InferRequest, userdata: tuple[int, PreprocessMeta]) -> None:
        nonlocal done
        index, meta = userdata
        try:
            # Views of the request's tensors: decode keeps nothing of them (Instances hold
            # floats and fresh RLEs), and the request is not reused before this returns.
            outputs = [t.data for t in request.output_tensors]
            name = images[index][0]
            instances = adapter.decode(outputs, meta, score_threshold)
            h, w = meta.original_size
            results[index] = ImagePrediction(name, w, h, instances)
        except BaseException as exc:  # surfaced after wait_all
            errors.append(exc)
        with lock:
            done += 1

    queue.set_callback(on_done)
    total = len(images)
    try:
        for index, (_name, path) in enumerate(images):
            if cancel is not None and cancel.cancelled:
                break
            if errors:
                break
            image = load_image(path)
            inputs, meta = adapter.preprocess(image)
            queue.start_async(inputs, (index, meta))
            if index % 4 == 0:
                progress(done / max(total, 1), f"Inference {done}/{total}")
        queue.wait_all()
    except Exception as exc:
        queue.wait_all()
        if isinstance(exc, InferenceError):
            raise
        raise InferenceError(
            f"Inference failed on {images[min(done, total - 1)][0]}: {exc}"
        ) from exc
    if errors:
        raise InferenceError(f"Decoding the model's outputs failed: {errors[0]}") from errors[0]
    if cancel is not None and cancel.cancelled:
        raise Cancelled()
    progress(1.0, f"Inference {total}/{total}")
    return InferenceRun(
        predictions=[r for r in results if r is not None],
        device=device,
        precision=actual,
        requests=len(queue),
        seconds=time.perf_counter() - start,
    )
