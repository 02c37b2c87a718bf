"""How benchmark runs read: one-line figures and the rows of the Performance and Compare tables.

Every figure names the inference precision it was measured at. The per-layer rows
come from the runtime profile stored with each run (segtui.core.runtime_graph), their
precisions as computed: a layer OpenVINO reports as F16 in an f32 run is "F32 (FP16 weights)".
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence

from rich.text import Text

from segtui.core.benchmark import BenchmarkRun, StoredBenchmark
from segtui.core.machine import MachineInfo
from segtui.core.runtime_graph import (
    RuntimeProfile,
    SlowLayer,
    TimeCategory,
    by_label,
    precision_label,
)
from segtui.ui.widgets.table import Row, fit_optional, num, txt

COMPUTE_TYPES_TEXT = "Convolution/MatMul"


def fps_text(run: BenchmarkRun | None) -> str:
    """'12.34 FPS at f32': a throughput always with its precision."""
    if not run:
        return "not measured"
    return f"{float(run['throughput_fps']):.2f} FPS at {run.get('precision', '?')}"


def run_settings_text(run: BenchmarkRun) -> str:
    """How a run was configured: hint, streams × requests, batch, duration, requested precision,
    and the processor it ran on where the run says."""
    text = (
        f"{run.get('hint', '?')}, {run.get('streams', '?')} streams × "
        f"{run.get('requests', '?')} requests, batch {run.get('batch', '?')}, "
        f"{float(run.get('duration_s', 0)):g} s (asked {run.get('requested_precision', '?')})"
    )
    machine = machine_text(run)
    return f"{text} on {machine}" if machine else text


def machine_text(run: BenchmarkRun) -> str:
    """'Intel(R) Xeon(R) Processor (AMX BF16/INT8, AVX2)'; '' for runs stored without it."""
    data = run.get("machine")
    if not data:
        return ""
    machine = MachineInfo.from_json(data)
    features = machine.features_text
    return f"{machine.name} ({features})" if features else machine.name


def header_tags(name: str, *tags: str) -> str:
    """' · INT8 · CPU' after `name`, leaving out a tag the name already says ('X · INT8')."""
    words = set(re.findall(r"[\w.+-]+", name))
    return "".join(f" · {tag}" for tag in tags if tag and tag not in words)


def percent(share: float | None) -> str:
    return "-" if share is None else f"{float(share) * 100:.1f} %"


def runtime_of(run: BenchmarkRun | None) -> RuntimeProfile:
    """A run's runtime profile, with the precision it ran at; empty when there is no run."""
    if run is None:
        return RuntimeProfile()
    runtime = run["runtime"]
    if "inference_precision" in runtime or "precision" not in run:
        return runtime
    # Runs stored before the profile kept it: the run's own precision is the same one.
    return runtime | RuntimeProfile(inference_precision=str(run["precision"]))


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


#: Left out, in this order, where the screen is too narrow for every column.
RESULT_OPTIONAL = ("min", "max", "avg", "requests", "duration")
#: The widest value of each column ("THROUGHPUT", "1234.56"), for fitting them.
_RESULT_VALUE_WIDTH = {"precision": 7, "hint": 10, "duration": 5}
#: A column's padding; and what the table's border and scrollbar take.
_RESULT_CELL_EXTRA = 2
_RESULT_FRAME = 4


def result_columns(width: int) -> tuple[tuple[str, str], ...]:
    """RESULT_COLUMNS that fit `width` cells: the low-value ones are left out first."""
    needed = {
        key: max(len(label), _RESULT_VALUE_WIDTH.get(key, 7)) + _RESULT_CELL_EXTRA
        for key, label in RESULT_COLUMNS
    }
    shown, _used = fit_optional(needed, RESULT_OPTIONAL[::-1], width - _RESULT_FRAME)
    return tuple((key, label) for key, label in RESULT_COLUMNS if key in shown)


def result_rows(
    runs: Mapping[str, BenchmarkRun], columns: Sequence[tuple[str, str]] = RESULT_COLUMNS
) -> list[Row]:
    """One row per inference precision measured (the newest run of each), in `columns`."""
    keys = [key for key, _label in RESULT_COLUMNS]
    shown = [keys.index(key) for key, _label in columns]
    rows: list[Row] = []
    for precision, run in runs.items():
        cells = (
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
        )
        rows.append((precision, tuple(cells[i] for i in shown)))
    return rows


def stale_text(
    runs: Mapping[str, StoredBenchmark], stale: Collection[str], style: str | None = None
) -> Text:
    """'⚠ run 12 (f32): the model's accuracy settings changed since …'; empty when none is."""
    named = [
        f"{run['result_id']} ({precision})" for precision, run in runs.items() if precision in stale
    ]
    if not named:
        return Text()
    runs_text = f"run{'s' if len(named) > 1 else ''} {', '.join(named)}"
    return Text(
        f"⚠ {runs_text}: the model's accuracy settings changed since (stale)",
        style=style or "",
    )


TYPE_COLUMNS = (("type", "Layer type"), ("ms", "Time ms"), ("share", "Share"))
PRECISION_COLUMNS = (
    ("precision", "Computed in"),
    ("count", "Layers"),
    ("ms", "Time ms"),
    ("share", "Share"),
)
SLOWEST_COLUMNS = (
    ("name", "Layer"),
    ("type", "Type"),
    ("precision", "Computed in"),
    ("ms", "Time ms"),
    ("share", "Share"),
)
FLOAT_COLUMNS = (
    ("name", "Original layer"),
    ("type", "Type"),
    ("precision", "Computed in"),
    ("ms", "Time ms"),
)


def type_rows(runtime: RuntimeProfile) -> list[Row]:
    by_type = runtime.get("time_by_type_ms") or {}
    total = sum(by_type.values()) or 1.0
    return [
        (name, (txt(name), num(ms, 3), num(ms / total * 100, 1, " %")))
        for name, ms in by_type.items()
    ]


def layer_precision(runtime: RuntimeProfile, layer: SlowLayer | None) -> str | None:
    """What a profiled layer computed in ('F32 (FP16 weights)'), None without a layer."""
    if layer is None:
        return None
    if layer.get("precision_label"):
        return layer["precision_label"]
    return precision_label(str(layer.get("precision", "")), runtime.get("inference_precision"))


def labelled_counts(runtime: RuntimeProfile) -> tuple[dict[str, int], dict[str, float]]:
    """Layer counts and times by what was computed (see `precision_label`)."""
    inference = runtime.get("inference_precision")
    counts = by_label(runtime.get("by_precision") or {}, inference)
    return (
        {name: int(count) for name, count in counts.items()},
        by_label(runtime.get("time_by_precision_ms") or {}, inference),
    )


def precision_rows(runtime: RuntimeProfile) -> list[Row]:
    counts, times = labelled_counts(runtime)
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
                txt(layer_precision(runtime, layer)),
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
                    txt(layer_precision(runtime, found)),
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


SPLIT_COLUMNS = (("category", "Where the time goes"), ("ms", "Time ms"), ("share", "Share"))
QUANTIZER_COLUMNS = (
    ("name", "Standalone quantizer"),
    ("ms", "Time ms"),
    ("share", "Share"),
    ("feeds", "Feeds INT8 compute"),
)
NO_SPLIT = "No time split in this run: benchmark again to see where the time goes."


def split_rows(runtime: RuntimeProfile) -> list[Row]:
    """Milliseconds and share per category of the time split (none for older profiles)."""
    shares = runtime.get("time_split_share") or {}
    return [
        (name, (txt(name), num(ms, 3), num(shares.get(name, 0.0) * 100, 1, " %")))
        for name, ms in (runtime.get("time_split_ms") or {}).items()
    ]


def quantizer_rows(runtime: RuntimeProfile) -> list[Row]:
    """The standalone quantizers with their cost, and whether they feed INT8 compute."""
    return [
        (
            f"{n}:{q['name']}",
            (
                txt(q["name"]),
                num(q["ms"], 3),
                num(q["share"] * 100, 1, " %"),
                txt("yes" if q["feeds_int8"] else "no"),
            ),
        )
        for n, q in enumerate(runtime.get("standalone_quantizers") or [])
    ]


def split_summary(run: BenchmarkRun | None) -> str:
    """What the split says: the share INT8 speeds up, or that the run has no split."""
    runtime = runtime_of(run)
    split = runtime.get("time_split_ms")
    if run is None or not split:
        return NO_SPLIT
    total = float(runtime.get("total_ms", 0.0))
    quantized = float(split.get(TimeCategory.QUANTIZED_COMPUTE, 0.0))
    where = f"{total:.2f} ms/image at {run.get('precision', '?')}"
    if quantized <= 0:
        return f"No compute runs in INT8 ({where}): INT8 would speed up the compute only."
    share = quantized / total * 100 if total > 0 else 0.0
    return (
        f"Quantized compute is {share:.1f} % of the time ({quantized:.2f} of {where}); "
        "INT8 cannot speed up the rest."
    )


def quantizer_summary(runtime: RuntimeProfile) -> str:
    """'3 quantizers run as layers of their own: 1.88 ms (4.9 %); 1 feeds no INT8 compute';
    '' for none."""
    quantizers = runtime.get("standalone_quantizers") or []
    if not quantizers:
        return ""
    ms = sum(q["ms"] for q in quantizers)
    share = sum(q["share"] for q in quantizers) * 100
    idle = sum(not q["feeds_int8"] for q in quantizers)
    count = len(quantizers)
    text = (
        f"{count} quantizers run as layers of their own"
        if count > 1
        else "1 quantizer runs as a layer of its own"
    )
    text += f": {ms:.2f} ms ({share:.1f} %)"
    if idle:
        text += f"; {idle} feed{'s' if idle == 1 else ''} no INT8 compute"
    return text
