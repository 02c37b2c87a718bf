"""The built-in job kinds. Each handler is a thin shell over a core function."""

from __future__ import annotations

from typing import Any

from segtui.core.accuracy import evaluate_project
from segtui.core.jobs import JobContext, job_kind


@job_kind("evaluate")
def evaluate_job(ctx: JobContext) -> dict[str, Any]:
    """COCO box/mask AP of a project's model on its annotated dataset."""
    if ctx.job.project_id is None:
        raise ValueError("an evaluate job needs a project")
    result = evaluate_project(
        ctx.ws,
        ctx.job.project_id,
        precision=str(ctx.job.params.get("precision", "f32")),
        progress=ctx.progress,
        cancel=ctx.cancel,
    )
    ctx.ws.add_result(
        project_id=ctx.job.project_id, kind="accuracy", data=result, job_id=ctx.job.id
    )
    return result


@job_kind("optimize")
def optimize_job(ctx: JobContext) -> dict[str, Any]:
    """INT8 quantization of a project's model; the result is a child project."""
    from segtui.core.optimize import optimize_project, settings_from_params

    if ctx.job.project_id is None:
        raise ValueError("an optimize job needs a project")
    settings = settings_from_params(ctx.job.params)
    child = optimize_project(
        ctx.ws, ctx.job.project_id, settings, ctx.work_dir, progress=ctx.progress, cancel=ctx.cancel
    )
    model = ctx.ws.model(child.model_id)
    return {"child_project_id": child.id, "model_id": model.id, "optimization": model.optimization}


@job_kind("benchmark")
def benchmark_job(ctx: JobContext) -> dict[str, Any]:
    """Throughput/latency of a project's model; stored as a 'benchmark' result."""
    from segtui.core.benchmark import BenchmarkSettings
    from segtui.core.performance import benchmark_project

    if ctx.job.project_id is None:
        raise ValueError("a benchmark job needs a project")
    params = dict(ctx.job.params)
    per_layer = bool(params.pop("per_layer", True))
    settings = BenchmarkSettings(
        **{k: v for k, v in params.items() if k in BenchmarkSettings.__dataclass_fields__}
    )
    data = benchmark_project(
        ctx.ws,
        ctx.job.project_id,
        settings,
        per_layer=per_layer,
        progress=ctx.progress,
        cancel=ctx.cancel,
    )
    record = ctx.ws.add_result(
        project_id=ctx.job.project_id, kind="benchmark", data=data, job_id=ctx.job.id
    )
    return data | {"result_id": record.id}


@job_kind("sweep")
def sweep_job(ctx: JobContext) -> dict[str, Any]:
    """A grid of short benchmarks over batch × streams; stored as a 'sweep' result."""
    from segtui.core.performance import sweep_project

    if ctx.job.project_id is None:
        raise ValueError("a sweep job needs a project")
    p = ctx.job.params
    data = sweep_project(
        ctx.ws,
        ctx.job.project_id,
        [int(b) for b in p.get("batches", [1])],
        [int(s) for s in p.get("streams", [1])],
        duration_s=float(p.get("duration_s", 5.0)),
        precision=str(p.get("precision", "default")),
        progress=ctx.progress,
        cancel=ctx.cancel,
    )
    record = ctx.ws.add_result(
        project_id=ctx.job.project_id, kind="sweep", data=data, job_id=ctx.job.id
    )
    return {"cells": len(data["cells"]), "result_id": record.id}


@job_kind("report")
def report_job(ctx: JobContext) -> dict[str, Any]:
    """An accuracy report of an optimized project (vs its parent or vs annotations)."""
    from segtui.core.report import ReportSettings, create_report

    if ctx.job.project_id is None:
        raise ValueError("a report job needs a project")
    known = ReportSettings.__dataclass_fields__
    settings = ReportSettings(**{k: v for k, v in ctx.job.params.items() if k in known})
    return create_report(
        ctx.ws, ctx.job.project_id, settings, progress=ctx.progress, cancel=ctx.cancel
    )
