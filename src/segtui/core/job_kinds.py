"""The built-in job kinds. Each handler is a thin shell over a core function.

Each registers into `segtui.core.job_registry` (this module never imports
`segtui.core.jobs`, which imports it) and returns its kind's typed result.
What a job stores (a result row, a report, an optimized model) commits in one
transaction with the job's done state: a kill leaves both or neither, and a
cancel arriving once the store has begun is too late.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, TypedDict, TypeVar, cast

from segtui.core.accuracy import EvaluationResult, evaluate_project
from segtui.core.job_registry import JobContext, job_kind, past_cancelling
from segtui.core.types import JobKind, Precision, ResultKind

if TYPE_CHECKING:
    from segtui.core.benchmark import StoredBenchmark
    from segtui.core.keep_float import KeepFloatLink
    from segtui.core.optimize import OptimizeJobResult
    from segtui.core.project_export import ExportResult
    from segtui.core.report import ReportOutcome
    from segtui.core.sensitivity import SensitivityJobResult

R = TypeVar("R", bound=Mapping[str, object])


class SweepJobResult(TypedDict):
    """A sweep job's result: the cells measured and the stored "sweep" result."""

    cells: int
    result_id: int


def _store_done(
    ctx: JobContext,
    project_id: int,
    stored: tuple[ResultKind, Mapping[str, object]],
    outcome: Callable[[int], R],
) -> R:
    """Store the job's result row and record the job done with `outcome(result_id)`, in one
    transaction; a cancel from here on is too late (never a stored result of a cancelled job)."""
    kind, data = stored
    past_cancelling()
    with ctx.ws.transaction() as tx:
        result_id = ctx.ws.insert_result(
            tx, project_id=project_id, kind=kind, data=data, job_id=ctx.job.id
        )
        result = outcome(result_id)
        ctx.finish_in(tx, result)
    return result


@job_kind(JobKind.EVALUATE)
def evaluate_job(ctx: JobContext) -> EvaluationResult:
    """COCO box/mask AP of a project's model on its annotated dataset."""
    if ctx.job.project_id is None:
        raise ValueError("an evaluate job needs a project")
    result = evaluate_project(
        ctx.ws,
        ctx.job.project_id,
        precision=Precision(str(ctx.job.params.get("precision", Precision.F32))),
        progress=ctx.progress,
        cancel=ctx.cancel,
    )
    stored = (ResultKind.ACCURACY, result)
    return _store_done(ctx, ctx.job.project_id, stored, lambda _result_id: result)


@job_kind(JobKind.OPTIMIZE)
def optimize_job(ctx: JobContext) -> OptimizeJobResult:
    """INT8 quantization of a project's model; the result is a child project."""
    from segtui.core.optimize import OptimizeSettings, optimize_project

    if ctx.job.project_id is None:
        raise ValueError("an optimize job needs a project")
    settings = OptimizeSettings.from_values(ctx.job.params)
    # A re-optimization from a sensitivity analysis carries its link (core.keep_float).
    origin = cast("KeepFloatLink | None", ctx.job.params.get("keep_float_from"))
    # The job is recorded done in the transaction that registers the child: a kill after
    # it leaves a done job, never a registered child beside an interrupted job.
    child = optimize_project(
        ctx.ws,
        ctx.job.project_id,
        settings,
        ctx.work_dir,
        progress=ctx.progress,
        cancel=ctx.cancel,
        on_registered=ctx.finish_in,
        keep_float_from=origin,
    )
    model = ctx.ws.model(child.model_id)
    return {"child_project_id": child.id, "model_id": model.id, "optimization": model.optimization}


@job_kind(JobKind.BENCHMARK)
def benchmark_job(ctx: JobContext) -> StoredBenchmark:
    """Throughput/latency of a project's model; stored as a 'benchmark' result."""
    from segtui.core.benchmark import BenchmarkSettings, StoredBenchmark
    from segtui.core.performance import benchmark_project

    if ctx.job.project_id is None:
        raise ValueError("a benchmark job needs a project")
    per_layer = bool(ctx.job.params.get("per_layer", True))
    settings = BenchmarkSettings.from_values(ctx.job.params)
    run = benchmark_project(
        ctx.ws,
        ctx.job.project_id,
        settings,
        per_layer=per_layer,
        progress=ctx.progress,
        cancel=ctx.cancel,
    )
    return _store_done(
        ctx,
        ctx.job.project_id,
        (ResultKind.BENCHMARK, run),
        lambda result_id: StoredBenchmark(**run, result_id=result_id),
    )


@job_kind(JobKind.SWEEP)
def sweep_job(ctx: JobContext) -> SweepJobResult:
    """A grid of short benchmarks over batch × streams; stored as a 'sweep' result."""
    from segtui.core.performance import SweepSettings, sweep_project

    if ctx.job.project_id is None:
        raise ValueError("a sweep job needs a project")
    settings = SweepSettings.from_values(ctx.job.params)
    data = sweep_project(
        ctx.ws, ctx.job.project_id, settings, progress=ctx.progress, cancel=ctx.cancel
    )
    return _store_done(
        ctx,
        ctx.job.project_id,
        (ResultKind.SWEEP, data),
        lambda result_id: SweepJobResult(cells=len(data["cells"]), result_id=result_id),
    )


@job_kind(JobKind.REPORT)
def report_job(ctx: JobContext) -> ReportOutcome:
    """An accuracy report of an optimized project (vs its parent or vs annotations)."""
    from segtui.core.report import ReportSettings, create_report

    if ctx.job.project_id is None:
        raise ValueError("a report job needs a project")
    settings = ReportSettings.from_values(ctx.job.params)
    # The job is recorded done in the transaction that stores the report (and removes the
    # older one): a kill or a cancel before it leaves the stored report as it was.
    return create_report(
        ctx.ws,
        ctx.job.project_id,
        settings,
        progress=ctx.progress,
        cancel=ctx.cancel,
        on_stored=ctx.finish_in,
    )


@job_kind(JobKind.EXPORT)
def export_job(ctx: JobContext) -> ExportResult:
    """A project (its parents, optionally its children and images) archived to one file."""
    from segtui.core.project_export import ExportRequest, export_project

    if ctx.job.project_id is None:
        raise ValueError("an export job needs a project")
    request = ExportRequest.from_params(ctx.job.project_id, ctx.job.params)
    return export_project(ctx.ws, request, ctx.work_dir, progress=ctx.progress, cancel=ctx.cancel)


@job_kind(JobKind.SENSITIVITY)
def sensitivity_job(ctx: JobContext) -> SensitivityJobResult:
    """Which quantizer groups of an INT8 project cost its accuracy; stored as a 'sensitivity' result."""
    from segtui.core.sensitivity import (
        SensitivityJobResult,
        SensitivitySettings,
        analyze_project,
    )

    if ctx.job.project_id is None:
        raise ValueError("a sensitivity job needs a project")
    settings = SensitivitySettings.from_values(ctx.job.params)
    data = analyze_project(
        ctx.ws, ctx.job.project_id, settings, progress=ctx.progress, cancel=ctx.cancel
    )
    return _store_done(
        ctx,
        ctx.job.project_id,
        (ResultKind.SENSITIVITY, data),
        lambda result_id: SensitivityJobResult(
            result_id=result_id,
            groups=len(data["groups"]),
            chosen=data["chosen"],
            metric=data["metric"],
            evaluations=data["evaluations"],
        ),
    )
