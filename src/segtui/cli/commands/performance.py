"""Performance commands: benchmark (like benchmark_app), compare two projects, sweep configurations."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from segtui.cli.common import open_workspace, resolve_project, run_job
from segtui.cli.options import add_schema_options, naming_options, schema_values
from segtui.cli.output import EXIT_OK, CliError, Output, table
from segtui.core.preflight import check_job
from segtui.core.settings import BENCHMARK, SWEEP
from segtui.core.types import JobKind

if TYPE_CHECKING:
    from segtui.core.benchmark import BenchmarkFigures
    from segtui.core.performance import ComparedProject, SplitRow, SweepCell
    from segtui.core.records import JsonObject
    from segtui.core.runtime_graph import RuntimeProfile
    from segtui.core.settings_versions import CurrentVersions
    from segtui.core.workspace import Workspace


def benchmark_line(d: BenchmarkFigures) -> str:
    """One benchmark run in a line: figures first, then how and at which precision it ran."""
    return (
        f"{d['throughput_fps']:.2f} FPS, latency median {d['latency_median_ms']:.2f} ms "
        f"(avg {d['latency_avg_ms']:.2f}, min {d['latency_min_ms']:.2f}, max {d['latency_max_ms']:.2f}) — "
        f"{d['device']}, {d['precision']}, {d['hint']}, {d['streams']} streams, {d['requests']} requests, "
        f"batch {d['batch']}, {d['duration_s']:.0f} s"
    )


def run_notes(run: BenchmarkFigures) -> list[str]:
    """What the layers computed in ('F32 (FP16 weights)' for F16 reported at f32), and the
    processor the run was on with what "default" means there."""
    from segtui.core.machine import MachineInfo
    from segtui.core.runtime_graph import by_label

    rt = run["runtime"]
    notes = []
    counts = by_label(rt.get("by_precision") or {}, rt.get("inference_precision", run["precision"]))
    if counts:
        shown = ", ".join(f"{label} {int(n)}" for label, n in counts.items())
        notes.append(f"layers computed in: {shown}")
    if run.get("machine"):
        machine = MachineInfo.from_json(run["machine"])
        notes.append(f"on {machine.summary}")
    return notes


def split_lines(runtime: RuntimeProfile) -> list[str]:
    """Where the time goes (ms and share per category) and the standalone quantizers with
    their cost; nothing for a profile stored before the split, or a run without one."""
    split = runtime.get("time_split_ms")
    if not split:
        return []
    shares = runtime.get("time_split_share", {})
    lines = ["where the time goes, per inference:"]
    lines += [
        f"  {name:<22}{ms:9.2f} ms {shares.get(name, 0.0) * 100:6.1f} %"
        for name, ms in split.items()
    ]
    quantizers = runtime.get("standalone_quantizers") or []
    if quantizers:
        lines.append(f"standalone quantizers (run as layers of their own): {len(quantizers)}")
    for q in quantizers:
        feeds = "feeds INT8 compute" if q["feeds_int8"] else "feeds no INT8 compute"
        lines.append(f"  {q['name']}: {q['ms']:.3f} ms ({q['share'] * 100:.1f} %), {feeds}")
    return lines


def split_table_lines(rows: list[SplitRow]) -> list[str]:
    """The time split of A's and B's best runs side by side."""
    if not rows:
        return []
    lines = [
        "Where the time goes (best runs, per inference):",
        f"  {'':<22}{'A ms':>9} {'A share':>8} {'B ms':>9} {'B share':>8}",
    ]
    lines += [
        f"  {r['category']:<22}{r['a_ms']:9.2f} {r['a_share'] * 100:7.1f}% "
        f"{r['b_ms']:9.2f} {r['b_share'] * 100:7.1f}%"
        for r in rows
    ]
    return lines


def cmd_benchmark(args: argparse.Namespace, out: Output) -> int:
    from segtui.core.benchmark import BenchmarkSettings
    from segtui.core.performance import stored_benchmark
    from segtui.core.settings_versions import stale_line, staleness, with_staleness

    values = schema_values(args, BENCHMARK)
    settings = BenchmarkSettings.from_values(values)
    params = settings.job_params(per_layer=bool(values["per_layer"]))
    with open_workspace(args) as ws:
        project = resolve_project(ws, args.project)
        with naming_options(BENCHMARK):
            check_job(ws, JobKind.BENCHMARK, project.id, params)
        final = run_job(ws, JobKind.BENCHMARK, project.id, params, out)
        run = stored_benchmark(ws, int((final.result or {})["result_id"]))
        text = f"Project {project.id}: {benchmark_line(run)}"
        rt = run["runtime"]
        if rt.get("compute_layers"):
            text += (
                f"\n  compute layers in INT8: {rt['compute_int8']}/{rt['compute_layers']} "
                f"({rt['compute_int8_share'] * 100:.0f}%)"
            )
        if rt.get("non_compute_share") is not None:
            text += f"; time outside Convolution/MatMul: {rt['non_compute_share'] * 100:.0f}%"
        text += "".join(f"\n  {line}" for line in run_notes(run))
        text += "".join(f"\n  {line}" for line in split_lines(rt))
        state = staleness(ws, ws.result(run["result_id"]))
        out.result(
            with_staleness(dict(run) | {"job_id": final.id}, state), text + stale_line(state)
        )
    return EXIT_OK


def _compared_runs(
    ws: Workspace, current: CurrentVersions, compared: ComparedProject
) -> tuple[list[str], JsonObject]:
    """A compared project's runs, a line each, and as JSON with their staleness."""
    from segtui.core.settings_versions import data_staleness, stale_suffix, staleness_json
    from segtui.core.types import ResultKind

    lines, runs = [], {}
    for precision, run in compared["runs"].items():
        state = data_staleness(ws, ResultKind.BENCHMARK, compared["project_id"], run, current)
        lines.append(f"   {benchmark_line(run)}{stale_suffix(state)}")
        runs[precision] = {**run, **staleness_json(state)}
    return lines, {**compared, "runs": runs}


def cmd_compare(args: argparse.Namespace, out: Output) -> int:
    from segtui.core.performance import compare_projects
    from segtui.core.settings_versions import CurrentVersions

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
        current = CurrentVersions(ws)
        a_lines, a_json = _compared_runs(ws, current, data["a"])
        b_lines, b_json = _compared_runs(ws, current, data["b"])
        lines = [f"A: project {a.id} {a.name}", *a_lines, f"B: project {b.id} {b.name}", *b_lines]
        document = dict(data) | {"a": a_json, "b": b_json}
        for precision, ratio in data["ratios_vs_b"].items():
            a_at = ratio.get("a_precision", "best")
            unpaired = (
                f" (A has no run at {precision}: its {a_at} run)" if a_at != precision else ""
            )
            lines.append(
                f"A@{a_at} vs B@{precision}: throughput ×{ratio['throughput_ratio']:.2f}, "
                f"latency ×{ratio['latency_ratio']:.2f} faster{unpaired}"
            )
        lines += split_table_lines(data["time_split"])
        out.result(document, "\n".join(lines))
    return EXIT_OK


def sweep_rows(cells: list[SweepCell]) -> list[list[str]]:
    """Batch and streams as asked (with what the device ran, '4 → 2'), FPS and latency."""
    from segtui.core.performance import streams_text

    return [
        [
            str(c["batch"]),
            streams_text(c),
            f"{c['throughput_fps']:.2f}" if c["ok"] else "failed",
            f"{c['latency_median_ms']:.2f}" if c["ok"] else "-",
        ]
        for c in cells
    ]


def sweep_notes(cells: list[SweepCell]) -> list[str]:
    """Why each failed cell failed, and which cells the device ran otherwise than asked."""
    from segtui.core.performance import actual_streams

    notes = []
    for c in cells:
        where = f"batch {c['batch']} × {c['streams']} streams"
        if not c["ok"]:
            error = str(c.get("error", "")).strip().splitlines()
            notes.append(f"{where} failed: {error[0] if error else 'no error recorded'}")
        elif (ran := actual_streams(c)) != c["streams"]:
            how = "reduced" if ran is not None and ran < c["streams"] else "changed"
            notes.append(f"{where} ran with {ran} streams (the device {how} it)")
    return notes


def cmd_sweep(args: argparse.Namespace, out: Output) -> int:
    from segtui.core.performance import (
        SweepSettings,
        estimate_sweep_seconds,
        stored_sweep,
        streams_text,
        sweet_spot,
    )

    values = schema_values(args, SWEEP)
    latency_limit: float | None = values["latency_limit_ms"]
    with naming_options(SWEEP):
        settings = SweepSettings.from_values(values)
    params = settings.job_params()
    with open_workspace(args) as ws:
        project = resolve_project(ws, args.project)
        with naming_options(SWEEP):
            check_job(ws, JobKind.SWEEP, project.id, params)
        estimate = estimate_sweep_seconds(settings)
        out.note(f"{len(settings.cells)} cells, about {estimate:.0f} s")
        final = run_job(ws, JobKind.SWEEP, project.id, params, out)
        result_id = int((final.result or {})["result_id"])
        data = stored_sweep(ws, result_id)
        best = sweet_spot(data["cells"], latency_limit)
        out.result(
            dict(data) | {"sweet_spot": best, "result_id": result_id},
            table(sweep_rows(data["cells"]), ["batch", "streams", "FPS", "latency ms"]),
        )
        if not out.as_json:
            for note in sweep_notes(data["cells"]):
                print(note)
        if best and not out.as_json:
            print(
                f"Sweet spot: batch {best['batch']} × {streams_text(best)} streams, "
                f"{best['throughput_fps']:.2f} FPS"
            )
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
