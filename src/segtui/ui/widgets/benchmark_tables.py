"""How benchmark runs read: one-line figures and the rows of the Performance and Compare tables.

Every figure names the inference precision it was measured at. The per-layer rows
come from the runtime profile stored with each run (segtui.core.runtime_graph).
"""

from __future__ import annotations

from collections.abc import Mapping

from rich.text import Text

from segtui.core.benchmark import BenchmarkRun
from segtui.core.runtime_graph import RuntimeProfile, SlowLayer
from segtui.ui.widgets.table import Row, num, txt

COMPUTE_TYPES_TEXT = "Convolution/MatMul"


def fps_text(run: BenchmarkRun | None) -> str:
    """'12.34 FPS at f32': a throughput always with its precision."""
    if not run:
        return "not measured"
    return f"{float(run['throughput_fps']):.2f} FPS at {run.get('precision', '?')}"


def run_settings_text(run: BenchmarkRun) -> str:
    """How a run was configured: hint, streams × requests, batch, duration, requested precision."""
    return (
        f"{run.get('hint', '?')}, {run.get('streams', '?')} streams × "
        f"{run.get('requests', '?')} requests, batch {run.get('batch', '?')}, "
        f"{float(run.get('duration_s', 0)):g} s (asked {run.get('requested_precision', '?')})"
    )


def percent(share: float | None) -> str:
    return "-" if share is None else f"{float(share) * 100:.1f} %"


def runtime_of(run: BenchmarkRun | None) -> RuntimeProfile:
    """A run's runtime profile; empty when there is no run."""
    return run["runtime"] if run is not None else RuntimeProfile()


def ceiling_text(run: BenchmarkRun | None) -> Text:
    """The share of the time outside Convolution/MatMul: what quantization cannot speed up."""
    runtime = runtime_of(run)
    share = runtime.get("non_compute_share")
    if run is None or share is None:
        return Text("No per-layer profile in this run: benchmark again to see where the time goes.")
    text = Text()
    text.append("Quantization cannot touch ")
    text.append(f"{float(share) * 100:.1f} %", style="bold")
    text.append(
        f" of the time (outside {COMPUTE_TYPES_TEXT}; "
        f"{float(runtime.get('total_ms', 0)):.2f} ms/image at {run.get('precision', '?')})."
    )
    return text


RESULT_COLUMNS = (
    ("precision", "Precision"),
    ("fps", "FPS"),
    ("median", "Median ms"),
    ("avg", "Avg ms"),
    ("min", "Min ms"),
    ("max", "Max ms"),
    ("streams", "Streams"),
    ("requests", "Requests"),
    ("batch", "Batch"),
    ("hint", "Hint"),
    ("duration", "Seconds"),
)


def result_rows(runs: Mapping[str, BenchmarkRun]) -> list[Row]:
    """One row per inference precision measured (the newest run of each)."""
    rows: list[Row] = []
    for precision, run in runs.items():
        rows.append(
            (
                precision,
                (
                    txt(precision),
                    num(float(run["throughput_fps"])),
                    num(float(run["latency_median_ms"])),
                    num(float(run["latency_avg_ms"])),
                    num(float(run["latency_min_ms"])),
                    num(float(run["latency_max_ms"])),
                    num(run.get("streams")),
                    num(run.get("requests")),
                    num(run.get("batch")),
                    txt(run.get("hint")),
                    num(run.get("duration_s"), 1),
                ),
            )
        )
    return rows


TYPE_COLUMNS = (("type", "Layer type"), ("ms", "Time ms"), ("share", "Share"))
PRECISION_COLUMNS = (
    ("precision", "Runtime precision"),
    ("count", "Layers"),
    ("ms", "Time ms"),
    ("share", "Share"),
)
SLOWEST_COLUMNS = (
    ("name", "Layer"),
    ("type", "Type"),
    ("precision", "Precision"),
    ("ms", "Time ms"),
    ("share", "Share"),
)
FLOAT_COLUMNS = (
    ("name", "Original layer"),
    ("type", "Type"),
    ("precision", "Runs in"),
    ("ms", "Time ms"),
)


def type_rows(runtime: RuntimeProfile) -> list[Row]:
    by_type = runtime.get("time_by_type_ms") or {}
    total = sum(by_type.values()) or 1.0
    return [
        (name, (txt(name), num(ms, 3), num(ms / total * 100, 1, " %")))
        for name, ms in by_type.items()
    ]


def precision_rows(runtime: RuntimeProfile) -> list[Row]:
    counts = runtime.get("by_precision") or {}
    times = runtime.get("time_by_precision_ms") or {}
    total = sum(times.values()) or None
    rows: list[Row] = []
    for name in list(dict.fromkeys([*counts, *times])):
        ms = times.get(name)
        share = None if ms is None or total is None else ms / total * 100
        rows.append(
            (
                name or "?",
                (txt(name or "?"), num(counts.get(name)), num(ms, 3), num(share, 1, " %")),
            )
        )
    return rows


def slowest_rows(runtime: RuntimeProfile) -> list[Row]:
    return [
        (
            f"{n}:{layer.get('name', '')}",
            (
                txt(layer.get("name")),
                txt(layer.get("type")),
                txt(layer.get("precision")),
                num(layer.get("ms"), 3),
                num(None if layer.get("share") is None else float(layer["share"]) * 100, 1, " %"),
            ),
        )
        for n, layer in enumerate(runtime.get("slowest") or [])
    ]


def float_rows(runtime: RuntimeProfile) -> list[Row]:
    """Compute layers left in floating point, with type/precision/time where the profile has them."""
    by_original: dict[str, SlowLayer] = {}
    for layer in runtime.get("slowest") or []:
        for original in layer.get("original") or []:
            by_original.setdefault(str(original), layer)
    rows: list[Row] = []
    for name in runtime.get("compute_float") or []:
        found = by_original.get(str(name))
        rows.append(
            (
                str(name),
                (
                    txt(name),
                    txt(found["type"] if found else None),
                    txt(found["precision"] if found else None),
                    num(found["ms"] if found else None, 3),
                ),
            )
        )
    return rows


def float_summary(run: BenchmarkRun | None) -> str:
    runtime = runtime_of(run)
    if not runtime:
        return "No runtime data in this run."
    compute = int(runtime.get("compute_layers", 0))
    left = len(runtime.get("compute_float") or [])
    if run is None or not run.get("int8"):
        return f"Not an INT8 model: all {compute} compute layers run in floating point."
    share = percent(runtime.get("compute_int8_share"))
    return f"{left} of {compute} compute layers stayed in floating point ({share} run in I8/U8)."
