"""The stored JSON inside an export document, held to what the workspace's readers index.

A model's analysis and optimization record, a dataset's analysis and each result's data
are stored as they come and read back as their TypedDicts by `segtui show`, `list`,
`compare`, `report` and the TUI: another shape, or a figure they divide by that is 0,
would make them fail after the import. `transfer_doc` refuses the document on a problem.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from segtui.core.json_shape import shape_problem
from segtui.core.records import DatasetAnalysis, JsonObject, ModelAnalysis
from segtui.core.types import ReportType, ResultKind

#: The figures `compare` and the HTML report divide by: a measurement has them above 0.
_DIVISORS = ("throughput_fps", "latency_median_ms")
#: The AP figures a report's summary holds by its type (`ReportFigures` declares them all
#: optional: which are there depends on the type, and the readers go by the type).
_REPORT_FIGURES = {
    ReportType.PARENT: ("a_vs_b",),
    ReportType.ANNOTATIONS: ("parent", "optimized", "mask_ap_drop", "box_ap_drop"),
}


def _shapes() -> dict[str, object]:
    """What each stored JSON of the document must be, as the workspace's readers declare it."""
    from segtui.core.accuracy import EvaluationResult
    from segtui.core.benchmark import BenchmarkRun
    from segtui.core.optimize import OptimizationRecord
    from segtui.core.performance import SweepData
    from segtui.core.report import ReportData
    from segtui.core.sensitivity import SensitivityResult

    return {
        "analysis": ModelAnalysis,
        "optimization": OptimizationRecord | None,
        "dataset analysis": DatasetAnalysis,
        ResultKind.ACCURACY: EvaluationResult,
        ResultKind.BENCHMARK: BenchmarkRun,
        ResultKind.SWEEP: SweepData,
        ResultKind.REPORT_PARENT: ReportData,
        ResultKind.REPORT_ANNOTATIONS: ReportData,
        ResultKind.SENSITIVITY: SensitivityResult,
    }


def _shape_problem(lists: Mapping[str, list[JsonObject]]) -> str | None:
    """The first stored JSON not of its declared shape; a result of a kind this segtui does
    not know is refused later, by kind."""
    # A format's settings gain keys over versions (and per format family): typed, not required.
    from segtui.core.formats.base import AdapterSettings

    shapes = _shapes()
    checks: list[tuple[object, object, str]] = []
    for model in lists["models"]:
        where = f"model {model['id']}'s"
        checks.append((model["analysis"], shapes["analysis"], f"{where} analysis"))
        checks.append((model["optimization"], shapes["optimization"], f"{where} optimization"))
    for dataset in lists["datasets"]:
        shape = shapes["dataset analysis"]
        checks.append((dataset["analysis"], shape, f"dataset {dataset['id']}'s analysis"))
    for result in lists["results"]:
        if result["kind"] in shapes:
            checks.append((result["data"], shapes[result["kind"]], f"result {result['id']}'s data"))
    for value, shape, where in checks:
        problem = shape_problem(value, shape, where, loose=(AdapterSettings,))
        if problem is not None:
            return problem
    return None


def _measurement_problem(result: JsonObject) -> str | None:
    """A benchmark, or a sweep cell that ran, that measured a throughput or median latency
    of 0 (or none): `compare` and the HTML report divide by them."""
    runs: list[JsonObject] = []
    if result["kind"] == ResultKind.BENCHMARK:
        runs = [result["data"]]
    elif result["kind"] == ResultKind.SWEEP:
        runs = [cell for cell in result["data"]["cells"] if cell["ok"]]
    for run, key in ((run, key) for run in runs for key in _DIVISORS if key in run):
        if not (math.isfinite(run[key]) and run[key] > 0):
            return f"result {result['id']} measured {key} = {run[key]!r}"
    return None


def _report_problem(result: JsonObject) -> str | None:
    """A report whose summary is not of its kind's type, or lacks that type's AP figures."""
    if result["kind"] not in (ResultKind.REPORT_PARENT, ResultKind.REPORT_ANNOTATIONS):
        return None
    summary = result["data"]["summary"]
    wanted = ReportType(result["kind"].removeprefix("report:"))
    if summary["type"] != wanted:
        return (
            f"result {result['id']} ({result['kind']}) holds a report of type {summary['type']!r}"
        )
    missing = [key for key in _REPORT_FIGURES[wanted] if key not in summary]
    if missing:
        return f"result {result['id']} ({result['kind']}) has no {missing[0]!r} in its summary"
    return None


def stored_problem(lists: Mapping[str, list[JsonObject]]) -> str | None:
    """What is wrong with the document's stored JSON (`lists`: its models, datasets and
    results, each row checked for its own fields), or None."""
    problem = _shape_problem(lists)
    for result in lists["results"]:
        problem = problem or _measurement_problem(result) or _report_problem(result)
    return problem


__all__ = ["stored_problem"]
