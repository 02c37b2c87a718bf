"""Performance commands: benchmark (like benchmark_app), compare two projects, sweep configurations."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from segtui.cli.common import open_workspace, resolve_project, run_job
from segtui.cli.options import add_schema_options, schema_values
from segtui.cli.output import EXIT_OK, CliError, Output, table
from segtui.core.settings import BENCHMARK, SWEEP
from segtui.core.types import JobKind


def benchmark_line(d: Mapping[str, Any]) -> str:
    """One benchmark run in a line: figures first, then how and at which precision it ran."""
    return (
        f"{d['throughput_fps']:.2f} FPS, latency median {d['latency_median_ms']:.2f} ms "
        f"(avg {d['latency_avg_ms']:.2f}, min {d['latency_min_ms']:.2f}, max {d['latency_max_ms']:.2f}) — "
        f"{d['device']}, {d['precision']}, {d['hint']}, {d['streams']} streams, {d['requests']} requests, "
        f"batch {d['batch']}, {d['duration_s']:.0f} s"
    )


def cmd_benchmark(args: argparse.Namespace, out: Output) -> int:
    from segtui.core.benchmark import BenchmarkSettings

    values = schema_values(args, BENCHMARK)
    per_layer = values.pop("per_layer")
    settings = BenchmarkSettings(**values)
    settings.validate()
    with open_workspace(args) as ws:
        project = resolve_project(ws, args.project)
        params = {k: v for k, v in settings.__dict__.items() if k != "device"} | {
            "per_layer": per_layer
        }
        final = run_job(ws, JobKind.BENCHMARK, project.id, params, out)
        data: dict[str, Any] = dict(final.result or {})
        text = f"Project {project.id}: {benchmark_line(data)}"
        rt = data.get("runtime") or {}
        if rt.get("compute_layers"):
            text += (
                f"\n  compute layers in INT8: {rt['compute_int8']}/{rt['compute_layers']} "
                f"({rt['compute_int8_share'] * 100:.0f}%)"
            )
        if rt.get("non_compute_share") is not None:
            text += f"; time outside Convolution/MatMul: {rt['non_compute_share'] * 100:.0f}%"
        out.result(data | {"job_id": final.id}, text)
    return EXIT_OK


def cmd_compare(args: argparse.Namespace, out: Output) -> int:
    from segtui.core.performance import compare_projects

    with open_workspace(args) as ws:
        a = resolve_project(ws, args.a)
        b = (
            resolve_project(ws, args.b)
            if args.b
            else (ws.project(a.parent_id) if a.parent_id else None)
        )
        if b is None:
            raise CliError(f"Project {a.id} has no parent to compare with.", "Name B explicitly.")
        data = compare_projects(ws, a.id, b.id)
        lines = [f"A: project {a.id} {a.name}"]
        lines += [f"   {benchmark_line(r)}" for r in data["a"]["runs"].values()]
        lines.append(f"B: project {b.id} {b.name}")
        lines += [f"   {benchmark_line(r)}" for r in data["b"]["runs"].values()]
        for precision, ratio in data["ratios_vs_b"].items():
            lines.append(
                f"A vs B@{precision}: throughput ×{ratio['throughput_ratio']:.2f}, "
                f"latency ×{ratio['latency_ratio']:.2f} faster"
            )
        out.result(data, "\n".join(lines))
    return EXIT_OK


def cmd_sweep(args: argparse.Namespace, out: Output) -> int:
    from segtui.core.performance import estimate_sweep_seconds, sweet_spot

    params = schema_values(args, SWEEP)
    latency_limit = params.pop("latency_limit_ms")
    with open_workspace(args) as ws:
        project = resolve_project(ws, args.project)
        batches, streams = list(params["batches"]), list(params["streams"])
        estimate = estimate_sweep_seconds(batches, streams, params["duration_s"])
        out.note(f"{len(batches) * len(streams)} cells, about {estimate:.0f} s")
        final = run_job(ws, JobKind.SWEEP, project.id, params, out)
        record = ws.result(int((final.result or {})["result_id"]))
        cells = record.data["cells"]
        best = sweet_spot(cells, latency_limit if latency_limit is not None else float("inf"))
        rows = [
            [
                str(c["batch"]),
                str(c["streams"]),
                f"{c['throughput_fps']:.2f}" if c["ok"] else "-",
                f"{c['latency_median_ms']:.2f}" if c["ok"] else c.get("error", "")[:40],
            ]
            for c in cells
        ]
        note = ""
        if best:
            note = (
                f"Sweet spot: batch {best['batch']} × {best['streams']} streams, "
                f"{best['throughput_fps']:.2f} FPS"
            )
        out.result(
            record.data | {"sweet_spot": best, "result_id": record.id},
            table(rows, ["batch", "streams", "FPS", "latency ms"]),
        )
        if note and not out.as_json:
            print(note)
    return EXIT_OK


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "benchmark", parents=[common], help="throughput and latency, like benchmark_app (a job)"
    )
    p.add_argument("project", help="project id or name")
    add_schema_options(p, BENCHMARK)
    p.set_defaults(func=cmd_benchmark)

    p = sub.add_parser("compare", parents=[common], help="compare the benchmarks of two projects")
    p.add_argument("a", help="project A (e.g. the optimized child)")
    p.add_argument("b", nargs="?", help="project B (default: A's parent)")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser(
        "sweep", parents=[common], help="explore batch × streams configurations (a job)"
    )
    p.add_argument("project")
    add_schema_options(p, SWEEP)
    p.set_defaults(func=cmd_sweep)
