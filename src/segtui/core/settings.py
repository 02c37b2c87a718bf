"""One settings schema per operation: each option's default, choices, range and help, once.

The command line builds its options from these schemas (flag, default, choices, help) and
the TUI builds its form fields from them (initial text, choices, as-you-type checks), so no
default or range is written twice. Core functions check their settings against the same
schema before a job starts: an out-of-range value never reaches a job or replaces a result.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Generic, Literal, TypeVar, cast

from segtui.core.errors import SegtuiError
from segtui.core.types import DropType, Hint, Method, Precision, Preset, ReportType

T = TypeVar("T")
E = TypeVar("E", bound=StrEnum)

#: How a field is entered: the CLI and the form widgets pick their control from it.
FieldKind = Literal["int", "float", "choice", "bool", "int_list", "names"]


class SettingError(SegtuiError):
    """A value that a settings field refuses; `field` names it."""

    def __init__(self, field: str, message: str, hint: str = "") -> None:
        super().__init__(message, hint)
        self.field = field


def _number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


@dataclass(frozen=True)
class SettingField(Generic[T]):
    """One option of an operation."""

    name: str
    kind: FieldKind
    default: T
    label: str
    help: str
    #: The command-line flag (a bool whose default is True is given as its `--no-` flag).
    flag: str
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    #: The minimum itself is not allowed (a share of the dataset must be above 0 %).
    exclusive_minimum: bool = False
    #: None is a valid value, shown as `none_text` ("auto", "none").
    optional: bool = False
    none_text: str = ""
    unit: str = ""
    #: Turns a checked value into the field's type (a choice string into its enum).
    convert: Callable[[Any], T] | None = None

    # -- ranges and checks ----------------------------------------------------------

    def range_text(self) -> str:
        """The allowed values in words, e.g. '0.1–10 points' or 'performance or mixed'."""
        if self.kind == "choice":
            return " or ".join(self.choices)
        if self.minimum is None or self.maximum is None:
            return ""
        low = _number_text(self.minimum)
        if self.exclusive_minimum:
            low = f"above {low}"
        unit = f" {self.unit}" if self.unit else ""
        if self.exclusive_minimum:
            return f"{low} and at most {_number_text(self.maximum)}{unit}"
        return f"{low}–{_number_text(self.maximum)}{unit}"

    def _number_problem(self, value: object) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"{self.label} must be a number (got {value!r})."
        if self.kind == "int" and not float(value).is_integer():
            return f"{self.label} must be a whole number (got {value})."
        if not math.isfinite(float(value)):
            return f"{self.label} must be a finite number (got {value})."
        low, high = self.minimum, self.maximum
        too_low = low is not None and (value <= low if self.exclusive_minimum else value < low)
        too_high = high is not None and value > high
        if too_low or too_high:
            return f"{self.label} {_number_text(float(value))} is out of range: use {self.range_text()}."
        return None

    def problem(self, value: object) -> str | None:
        """What is wrong with `value` for this field, or None when it is allowed."""
        if value is None:
            return None if self.optional else f"{self.label} needs a value."
        if self.kind == "choice":
            if str(value).lower() not in {c.lower() for c in self.choices}:
                return f"{self.label} {value!r} is not one of: {', '.join(self.choices)}."
            return None
        if self.kind == "bool":
            return None if isinstance(value, bool) else f"{self.label} must be true or false."
        if self.kind in ("int", "float"):
            return self._number_problem(value)
        if self.kind == "int_list":
            if not isinstance(value, list | tuple) or not value:
                return f"{self.label} needs at least one value."
            for item in value:
                found = self._number_problem(item)
                if found is not None:
                    return found
            if len(set(value)) != len(value):
                return f"{self.label} lists a value twice ({', '.join(map(str, value))})."
            return None
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            return f"{self.label} must be a list of names."
        return None

    def check(self, value: object) -> T:
        """`value` converted to the field's type, or a SettingError that says what to use."""
        found = self.problem(value)
        if found is not None:
            raise SettingError(self.name, found)
        converted: Any = value
        if value is None:
            return cast(T, None)  # only optional fields get here
        if self.kind == "choice":
            converted = {c.lower(): c for c in self.choices}[str(value).lower()]
        elif self.kind == "float":
            converted = float(cast(float, value))
        elif self.kind == "int":
            converted = int(cast(float, value))
        elif self.kind == "int_list":
            converted = tuple(int(v) for v in cast(list[float], value))
        elif self.kind == "names":
            converted = tuple(cast(list[str], value))
        return self.convert(converted) if self.convert is not None else cast(T, converted)

    # -- text (forms and the command line) ------------------------------------------

    def parse(self, text: str) -> T:
        """Parse what a user typed (a form field or a command-line value) and check it."""
        raw = text.strip()
        if raw == "" or (self.optional and raw.lower() == self.none_text.lower()):
            if self.optional:
                return self.check(None)
            if self.kind == "names":
                return self.check(())
            raise SettingError(self.name, f"{self.label} needs a value.", self._use())
        value: object
        try:
            if self.kind == "int":
                value = int(raw)
            elif self.kind == "float":
                value = float(raw)
            elif self.kind == "bool":
                lowered = raw.lower()
                if lowered not in ("true", "false", "yes", "no", "on", "off", "1", "0"):
                    raise ValueError(raw)
                value = lowered in ("true", "yes", "on", "1")
            elif self.kind == "int_list":
                value = [int(part) for part in raw.replace(" ", ",").split(",") if part]
            elif self.kind == "names":
                value = [part.strip() for part in raw.split(",") if part.strip()]
            else:
                value = raw
        except ValueError:
            what = {"int": "a whole number", "float": "a number", "bool": "true or false"}.get(
                self.kind, "whole numbers separated by commas"
            )
            raise SettingError(
                self.name, f"{self.label} must be {what} (got {raw!r}).", self._use()
            ) from None
        return self.check(value)

    def _use(self) -> str:
        return f"Use {self.range_text()}." if self.range_text() else ""

    def format(self, value: object) -> str:
        """The text a form field shows for `value`."""
        if value is None:
            return self.none_text
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, float):
            return _number_text(value)
        if isinstance(value, list | tuple):
            return ",".join(str(v) for v in value)
        return str(value)

    @property
    def default_text(self) -> str:
        return self.format(self.default)


def _choice(
    name: str,
    enum: type[E],
    default: E,
    label: str,
    help: str,
    flag: str | None = None,
) -> SettingField[E]:
    return SettingField(
        name=name,
        kind="choice",
        default=default,
        label=label,
        help=help,
        flag=flag or f"--{name.replace('_', '-')}",
        choices=tuple(member.value for member in enum),
        convert=enum,
    )


def _flag(name: str) -> str:
    return f"--{name.replace('_', '-')}"


class Schema:
    """The settings of one operation; its fields are the `SettingField` class attributes."""

    name: str = ""

    def fields(self) -> tuple[SettingField[Any], ...]:
        found: dict[str, SettingField[Any]] = {}
        for klass in reversed(type(self).__mro__):
            for value in vars(klass).values():
                if isinstance(value, SettingField):
                    found[value.name] = value
        return tuple(found.values())

    def __iter__(self) -> Iterator[SettingField[Any]]:
        return iter(self.fields())

    def field(self, name: str) -> SettingField[Any]:
        for candidate in self.fields():
            if candidate.name == name:
                return candidate
        raise KeyError(f"{self.name} has no setting {name!r}")

    def defaults(self) -> dict[str, Any]:
        return {f.name: f.default for f in self.fields()}

    def problems(self, values: Mapping[str, object]) -> dict[str, str]:
        """Per-field messages for the values that are not allowed (unknown names included)."""
        found: dict[str, str] = {}
        known = {f.name: f for f in self.fields()}
        for name, value in values.items():
            spec = known.get(name)
            if spec is None:
                found[name] = f"{self.name} has no setting {name!r}."
                continue
            problem = spec.problem(value)
            if problem is not None:
                found[name] = problem
        return found

    def validate(self, values: Mapping[str, object]) -> None:
        """Raise one SettingError naming every refused value, with the allowed ranges."""
        problems = self.problems(values)
        if not problems:
            return
        first = next(iter(problems))
        known = {f.name: f for f in self.fields()}
        hints = [
            f"{known[name].flag.removeprefix('--no-').removeprefix('--')}: {known[name].range_text()}"
            for name in problems
            if name in known and known[name].range_text()
        ]
        raise SettingError(
            first,
            " ".join(problems.values()),
            f"Allowed: {'; '.join(hints)}." if hints else "",
        )

    def parse_texts(self, texts: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
        """Parse form texts by field name: (the values that parsed, the problems of the rest)."""
        values: dict[str, Any] = {}
        problems: dict[str, str] = {}
        for name, text in texts.items():
            try:
                values[name] = self.field(name).parse(text)
            except SettingError as exc:
                problems[name] = exc.message
        return values, problems


def _precision(default: Precision) -> SettingField[Precision]:
    return _choice(
        "precision",
        Precision,
        default,
        "Precision",
        "inference precision: f32 (true FP32), or the device's default (bf16 on CPUs with bf16)",
    )


class OptimizeSchema(Schema):
    name = "optimize"
    method = _choice(
        "method", Method, Method.DEFAULT, "Method", "NNCF method: default or accuracy-aware"
    )
    preset = _choice(
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
    max_drop: SettingField[float] = SettingField(
        "max_drop",
        "float",
        0.5,
        "Max accuracy drop",
        "AccuracyAware: max mask AP drop, in points",
        _flag("max_drop"),
        minimum=0.1,
        maximum=10.0,
        unit="points",
    )
    drop_type = _choice(
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
        _flag("validation_images"),
        minimum=1,
        maximum=10_000,
    )


class BenchmarkSchema(Schema):
    name = "benchmark"
    hint = _choice(
        "hint", Hint, Hint.THROUGHPUT, "Hint", "OpenVINO performance hint (streams chosen by it)"
    )
    streams: SettingField[int | None] = SettingField(
        "streams",
        "int",
        None,
        "Streams",
        "explicit number of streams (default: the hint's choice)",
        _flag("streams"),
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
        _flag("requests"),
        minimum=1,
        maximum=1024,
        optional=True,
        none_text="auto",
    )
    batch: SettingField[int] = SettingField(
        "batch", "int", 1, "Batch", "batch size", _flag("batch"), minimum=1, maximum=256
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


class ReportSchema(Schema):
    name = "report"
    type = _choice(
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
        _flag("threshold"),
        minimum=0.0,
        maximum=1.0,
    )
    iou: SettingField[float] = SettingField(
        "iou",
        "float",
        0.5,
        "Match IoU",
        "mask IoU at which two detections match",
        _flag("iou"),
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
        _flag("max_drop"),
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
        _flag("threshold"),
        minimum=0.0,
        maximum=1.0,
    )
    limit: SettingField[int] = SettingField(
        "limit",
        "int",
        0,
        "Image limit",
        "only the first N images (0: all)",
        _flag("limit"),
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
        _flag("threshold"),
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
        _flag("threshold"),
        minimum=0.05,
        maximum=0.95,
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
)


def checked(schema: Schema, values: Mapping[str, object]) -> dict[str, Any]:
    """`values` checked against `schema` and converted to the fields' types (enums, tuples)."""
    schema.validate(values)
    return {name: schema.field(name).check(value) for name, value in values.items()}


__all__ = [
    "BENCHMARK",
    "DEPLOY",
    "EVALUATE",
    "OPTIMIZE",
    "PREDICT",
    "REPORT",
    "REPORT_GATE",
    "SCHEMAS",
    "SWEEP",
    "VISUALIZE",
    "FieldKind",
    "Schema",
    "SettingError",
    "SettingField",
    "checked",
]
