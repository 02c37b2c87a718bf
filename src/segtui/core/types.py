"""The named choices that cross from core to the front ends: states, kinds, methods, presets.

Each is a `StrEnum`, so a value stored in the database or printed as JSON is its plain
string, and a comparison with that string still holds.
"""

from __future__ import annotations

from enum import StrEnum


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"

    @property
    def final(self) -> bool:
        """Whether the job has ended (it will not change again)."""
        return self not in (JobState.QUEUED, JobState.RUNNING)

    @property
    def active(self) -> bool:
        """Queued or running."""
        return not self.final


class JobKind(StrEnum):
    EVALUATE = "evaluate"
    OPTIMIZE = "optimize"
    BENCHMARK = "benchmark"
    SWEEP = "sweep"
    REPORT = "report"
    EXPORT = "export"
    SENSITIVITY = "sensitivity"


class ResultKind(StrEnum):
    """What a stored result row holds."""

    ACCURACY = "accuracy"
    BENCHMARK = "benchmark"
    SWEEP = "sweep"
    REPORT_PARENT = "report:parent"
    REPORT_ANNOTATIONS = "report:annotations"
    SENSITIVITY = "sensitivity"


class Method(StrEnum):
    """NNCF's INT8 methods, as the Workbench names them."""

    DEFAULT = "default"
    ACCURACY_AWARE = "accuracy-aware"


class Preset(StrEnum):
    PERFORMANCE = "performance"
    MIXED = "mixed"


class DropType(StrEnum):
    ABSOLUTE = "absolute"
    RELATIVE = "relative"


class ReportType(StrEnum):
    """What the optimized model's predictions are compared with."""

    PARENT = "parent"
    ANNOTATIONS = "annotations"


class Precision(StrEnum):
    """The inference precision asked for: true FP32, or the device's default (bf16 where it can)."""

    F32 = "f32"
    DEFAULT = "default"


class Hint(StrEnum):
    """OpenVINO performance hints."""

    THROUGHPUT = "THROUGHPUT"
    LATENCY = "LATENCY"


class DatasetKind(StrEnum):
    IMAGES = "images"
    COCO = "coco"


__all__ = [
    "DatasetKind",
    "DropType",
    "Hint",
    "JobKind",
    "JobState",
    "Method",
    "Precision",
    "Preset",
    "ReportType",
    "ResultKind",
]
