"""One settings schema per operation: each option's default, choices, range and help, once.

The command line builds its options from these schemas (flag, default, choices, help) and
the TUI builds its form fields from them (initial text, choices, as-you-type checks), so no
default or range is written twice. Core functions check their settings against the same
schema before a job starts: an out-of-range value never reaches a job or replaces a result.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from segtui.core.setting_fields import (
    FieldKind,
    Schema,
    SettingError,
    SettingField,
    choice_field,
    flag_for,
)
from segtui.core.types import DropType, Hint, Method, Precision, Preset, ReportType


def _precision(default: Precision) -> SettingField[Precision]:
    return choice_field(
        "precision",
        Precision,
        default,
        "Precision",
        "inference precision: f32 (true FP32), or the device's default (bf16 on CPUs with bf16)",
    )


class OptimizeSchema(Schema):
    name = "optimize"
    method = choice_field(
        "method", Method, Method.DEFAULT, "Method", "NNCF method: default or accuracy-aware"
    )
    preset = choice_field(
        "preset", Preset, Preset.PERFORMANCE, "Preset", "quantization preset (Default method)"
    )
    subset_percent: SettingField[float] = SettingField(
        "subset_percent",
        "float",
        100.0,
        "Subset size",
        "calibration subset, % of the dataset",
        "--subset",
        minimum=0.0,
        maximum=100.0,
        exclusive_minimum=True,
        unit="%",
    )
    fast_bias_correction: SettingField[bool] = SettingField(
        "fast_bias_correction",
        "bool",
        True,
        "Fast bias correction",
        "use full bias correction instead of the fast one (slower)",
        "--no-fast-bias-correction",
    )
    auto_ignore: SettingField[bool] = SettingField(
        "auto_ignore",
        "bool",
        True,
        "Keep geometry in float",
        "do not keep the detected geometry subgraphs in floating point",
        "--no-auto-ignore",
    )
    ignore_names: SettingField[tuple[str, ...]] = SettingField(
        "ignore_names",
        "names",
        (),
        "Ignored layers",
        "a layer name to keep in floating point (repeatable)",
        "--ignore",
    )
    ignore_types: SettingField[tuple[str, ...]] = SettingField(
        "ignore_types",
        "names",
        (),
        "Ignored types",
        "a layer type to keep in floating point (repeatable)",
        "--ignore-type",
    )
    drop_standalone_quantizers: SettingField[bool] = SettingField(
        "drop_standalone_quantizers",
        "bool",
        True,
        "Drop standalone quantizers",
        "keep the quantizers that run as layers of their own and feed no INT8 compute "
        "(dropped by default)",
        "--keep-standalone-quantizers",
    )
    rewrite_roi_extractors: SettingField[bool] = SettingField(
        "rewrite_roi_extractors",
        "bool",
        True,
        "Pool ROIs with ROIAlign",
        "keep ExperimentalDetectronROIFeatureExtractor as it is (by default the INT8 model "
        "pools with one ROIAlign over the padded pyramid: same features, the CPU's fast kernel)",
        "--keep-roi-extractors",
    )
    max_drop: SettingField[float] = SettingField(
        "max_drop",
        "float",
        0.5,
        "Max accuracy drop",
        "AccuracyAware: max mask AP drop, in points",
        flag_for("max_drop"),
        minimum=0.1,
        maximum=10.0,
        unit="points",
    )
    drop_type = choice_field(
        "drop_type",
        DropType,
        DropType.ABSOLUTE,
        "Drop type",
        "AccuracyAware: the max drop is absolute or relative",
    )
    validation_images: SettingField[int] = SettingField(
        "validation_images",
        "int",
        50,
        "Validation images",
        "AccuracyAware: images the metric is computed on",
        flag_for("validation_images"),
        minimum=1,
        maximum=10_000,
    )


class BenchmarkSchema(Schema):
    name = "benchmark"
    hint = choice_field(
        "hint", Hint, Hint.THROUGHPUT, "Hint", "OpenVINO performance hint (streams chosen by it)"
    )
    streams: SettingField[int | None] = SettingField(
        "streams",
        "int",
        None,
        "Streams",
        "explicit number of streams (default: the hint's choice)",
        flag_for("streams"),
        minimum=1,
        maximum=256,
        optional=True,
        none_text="auto",
    )
    requests: SettingField[int | None] = SettingField(
        "requests",
        "int",
        None,
        "Infer requests",
        "explicit number of infer requests (default: the device's optimal number)",
        flag_for("requests"),
        minimum=1,
        maximum=1024,
        optional=True,
        none_text="auto",
    )
    batch: SettingField[int] = SettingField(
        "batch", "int", 1, "Batch", "batch size", flag_for("batch"), minimum=1, maximum=256
    )
    duration_s: SettingField[float] = SettingField(
        "duration_s",
        "float",
        20.0,
        "Duration",
        "seconds of measurement",
        "--time",
        minimum=0.5,
        maximum=3600.0,
        unit="s",
    )
    precision = _precision(Precision.F32)
    per_layer: SettingField[bool] = SettingField(
        "per_layer",
        "bool",
        True,
        "Per-layer profile",
        "skip the per-layer profile",
        "--no-per-layer",
    )


#: The most batch × streams cells one sweep runs.
MAX_SWEEP_CELLS = 64


class SweepSchema(Schema):
    name = "sweep"
    batches: SettingField[tuple[int, ...]] = SettingField(
        "batches",
        "int_list",
        (1,),
        "Batch sizes",
        "batch sizes, comma-separated",
        "--batch",
        minimum=1,
        maximum=256,
    )
    streams: SettingField[tuple[int, ...]] = SettingField(
        "streams",
        "int_list",
        (1, 2),
        "Streams",
        "numbers of streams, comma-separated",
        "--streams",
        minimum=1,
        maximum=256,
    )
    duration_s: SettingField[float] = SettingField(
        "duration_s",
        "float",
        5.0,
        "Seconds per cell",
        "seconds of measurement per cell",
        "--time",
        minimum=0.5,
        maximum=600.0,
        unit="s",
    )
    precision = _precision(Precision.DEFAULT)
    latency_limit_ms: SettingField[float | None] = SettingField(
        "latency_limit_ms",
        "float",
        None,
        "Latency limit",
        "ms; the sweet spot is the best throughput under it",
        "--latency-limit",
        minimum=0.0,
        maximum=1_000_000.0,
        exclusive_minimum=True,
        optional=True,
        none_text="none",
        unit="ms",
    )

    def check_grid(self, batches: tuple[int, ...], streams: tuple[int, ...]) -> None:
        """Refuse a grid of more than MAX_SWEEP_CELLS cells."""
        cells = len(batches) * len(streams)
        if cells > MAX_SWEEP_CELLS:
            raise SettingError(
                "streams",
                f"{cells} cells is too many (at most {MAX_SWEEP_CELLS}).",
                "Give fewer batch sizes or numbers of streams.",
            )


class ReportSchema(Schema):
    name = "report"
    type = choice_field(
        "type",
        ReportType,
        ReportType.PARENT,
        "Report type",
        "compare with the parent's predictions, or with the annotations",
    )
    threshold: SettingField[float] = SettingField(
        "threshold",
        "float",
        0.1,
        "Score threshold",
        "detections below this score are not counted",
        flag_for("threshold"),
        minimum=0.0,
        maximum=1.0,
    )
    iou: SettingField[float] = SettingField(
        "iou",
        "float",
        0.5,
        "Match IoU",
        "mask IoU at which two detections match",
        flag_for("iou"),
        minimum=0.05,
        maximum=0.95,
    )
    precision = _precision(Precision.F32)


class ReportGateSchema(Schema):
    """The command line's pass/fail check on a report."""

    name = "report check"
    max_drop: SettingField[float | None] = SettingField(
        "max_drop",
        "float",
        None,
        "Max drop",
        "exit 1 when the mask AP drop (points) exceeds this",
        flag_for("max_drop"),
        minimum=0.0,
        maximum=100.0,
        optional=True,
        none_text="none",
        unit="points",
    )


class PredictSchema(Schema):
    name = "predict"
    precision = _precision(Precision.F32)
    threshold: SettingField[float] = SettingField(
        "threshold",
        "float",
        0.05,
        "Score threshold",
        "minimum score of a written detection",
        flag_for("threshold"),
        minimum=0.0,
        maximum=1.0,
    )
    limit: SettingField[int] = SettingField(
        "limit",
        "int",
        0,
        "Image limit",
        "only the first N images (0: all)",
        flag_for("limit"),
        minimum=0,
        maximum=10_000_000,
    )


class EvaluateSchema(Schema):
    name = "evaluate"
    precision = _precision(Precision.F32)


class DeploySchema(Schema):
    name = "deploy"
    threshold: SettingField[float] = SettingField(
        "threshold",
        "float",
        0.5,
        "Score threshold",
        "infer.py's default minimum score",
        flag_for("threshold"),
        minimum=0.0,
        maximum=1.0,
    )
    with_parent: SettingField[bool] = SettingField(
        "with_parent",
        "bool",
        False,
        "Include the parent model",
        "also include the parent model",
        "--with-parent",
    )
    force: SettingField[bool] = SettingField(
        "force", "bool", False, "Overwrite", "overwrite an existing file", "--force"
    )


class VisualizeSchema(Schema):
    name = "visualize"
    threshold: SettingField[float] = SettingField(
        "threshold",
        "float",
        0.5,
        "Confidence threshold",
        "masks below this score are not drawn",
        flag_for("threshold"),
        minimum=0.05,
        maximum=0.95,
    )


class SensitivitySchema(Schema):
    name = "sensitivity"
    images: SettingField[int] = SettingField(
        "images",
        "int",
        24,
        "Metric images",
        "images the metric is measured on",
        flag_for("images"),
        minimum=1,
        maximum=1000,
    )
    top: SettingField[int] = SettingField(
        "top",
        "int",
        24,
        "Groups measured",
        "most suspicious quantizer groups measured with the metric",
        flag_for("top"),
        minimum=1,
        maximum=500,
    )
    score_images: SettingField[int] = SettingField(
        "score_images",
        "int",
        8,
        "Score images",
        "images of the quick error pass",
        flag_for("score_images"),
        minimum=1,
        maximum=64,
    )
    keep: SettingField[int] = SettingField(
        "keep",
        "int",
        10,
        "Groups kept",
        "most groups recommended to keep in floating point",
        flag_for("keep"),
        minimum=1,
        maximum=100,
    )


OPTIMIZE = OptimizeSchema()
BENCHMARK = BenchmarkSchema()
SWEEP = SweepSchema()
REPORT = ReportSchema()
REPORT_GATE = ReportGateSchema()
PREDICT = PredictSchema()
EVALUATE = EvaluateSchema()
DEPLOY = DeploySchema()
VISUALIZE = VisualizeSchema()
SENSITIVITY = SensitivitySchema()

SCHEMAS: tuple[Schema, ...] = (
    OPTIMIZE,
    BENCHMARK,
    SWEEP,
    REPORT,
    REPORT_GATE,
    PREDICT,
    EVALUATE,
    DEPLOY,
    VISUALIZE,
    SENSITIVITY,
)


def checked(schema: Schema, values: Mapping[str, object]) -> dict[str, Any]:
    """`values` checked against `schema` and converted to the fields' types (enums, tuples)."""
    schema.validate(values)
    return {name: schema.field(name).check(value) for name, value in values.items()}


__all__ = [
    "BENCHMARK",
    "DEPLOY",
    "EVALUATE",
    "MAX_SWEEP_CELLS",
    "OPTIMIZE",
    "PREDICT",
    "REPORT",
    "REPORT_GATE",
    "SCHEMAS",
    "SENSITIVITY",
    "SWEEP",
    "VISUALIZE",
    "FieldKind",
    "Schema",
    "SettingError",
    "SettingField",
    "checked",
]
