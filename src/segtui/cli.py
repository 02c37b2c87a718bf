"""The scriptable command line: thin over segtui.core; `segtui` alone opens the TUI."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from segtui.core.errors import SegtuiError

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2


class CliError(SegtuiError):
    """A bad command-line argument."""


class Output:
    """Prints results as text for people or as JSON for scripts, and progress on a terminal only."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self._tty = sys.stderr.isatty()

    def result(self, data: Any, text: str) -> None:
        if self.as_json:
            print(json.dumps(data, indent=2, default=str))
        else:
            print(text)

    def progress(self, fraction: float, stage: str) -> None:
        if self._tty and not self.as_json:
            bar = "#" * int(fraction * 30)
            sys.stderr.write(f"\r[{bar:<30}] {fraction * 100:5.1f}%  {stage[:60]:<60}")
            sys.stderr.flush()
            if fraction >= 1.0:
                sys.stderr.write("\n")


def _int_list(text: str) -> list[int]:
    try:
        return [int(v) for v in text.replace("x", ",").split(",") if v.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from exc


def _table(rows: list[list[str]], headers: list[str]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows, strict=False)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(lines)


def _open_workspace(args: argparse.Namespace) -> Any:
    from segtui.core.jobs import recover_jobs
    from segtui.core.workspace import Workspace

    ws = Workspace.open(args.workspace)
    recover_jobs(ws)
    return ws


def _resolve_project(ws: Any, ref: str) -> Any:
    if ref.isdigit():
        return ws.project(int(ref))
    matches = [p for p in ws.projects() if p.name == ref]
    if len(matches) == 1:
        return matches[0]
    raise CliError(
        f"No project named {ref!r}." if not matches else f"Several projects are named {ref!r}.",
        "Use the project id (see `segtui list`).",
    )


def _fmt_shape(shape: list[int | None]) -> str:
    return "[" + ",".join("?" if d is None else str(d) for d in shape) + "]"


def model_text(record: Any) -> str:
    """A model's analysis as `segtui show model` prints it."""
    a = record.analysis
    lines = [
        f"Model {record.id}: {record.name}",
        f"  format      {a['format']} ({record.format_id})",
    ]
    for port in a["inputs"]:
        lines.append(f"  input       {port['name']} {_fmt_shape(port['shape'])} {port['type']}")
    for port in a["outputs"]:
        lines.append(f"  output      {port['name']} {_fmt_shape(port['shape'])} {port['type']}")
    partial = (
        " (static part; detection-dependent heads not counted)" if a.get("gflops_partial") else ""
    )
    precisions = ", ".join(f"{k} {v * 100:.0f}%" for k, v in a["weight_precisions"].items())
    lines += [
        f"  GFLOPs      {a['gflops']:.3f}{partial}",
        f"  parameters  {a['params_m']:.3f} M",
        f"  weights     {precisions or '-'}",
        f"  IR / opset  v{a['ir_version']} / opset{a['opset']}",
        f"  size        {a.get('size_bytes', 0) / 1e6:.2f} MB",
        f"  classes     {len(record.class_names)}: {', '.join(record.class_names[:12])}"
        + (" …" if len(record.class_names) > 12 else ""),
        f"  checksum    sha256:{record.checksum[:16]}…",
    ]
    if record.optimized_from is not None:
        lines.append(
            f"  optimized from model {record.optimized_from}: {json.dumps(record.optimization)}"
        )
    return "\n".join(lines)


def _model_json(record: Any) -> dict[str, Any]:
    return {
        "id": record.id,
        "name": record.name,
        "format_id": record.format_id,
        "path": str(record.xml_path),
        "checksum": record.checksum,
        "class_names": record.class_names,
        "optimized_from": record.optimized_from,
        "optimization": record.optimization,
        "analysis": record.analysis,
    }


def dataset_text(record: Any) -> str:
    a = record.analysis
    lines = [
        f"Dataset {record.id}: {record.name}",
        f"  kind        {'annotated (COCO)' if record.annotated else 'not annotated (images)'}",
        f"  root        {record.root}",
        f"  images      {a['image_count']}",
        f"  sizes       {', '.join(f'{k} ×{v}' for k, v in a['sizes'].items())}",
    ]
    if record.annotated:
        counts = ", ".join(f"{k} {v}" for k, v in a.get("instance_counts", {}).items())
        lines.append(f"  classes     {len(a.get('classes', []))}: {counts}")
    if a.get("skipped"):
        lines.append(f"  skipped     {len(a['skipped'])} file(s):")
        lines += [f"    {s['path']}: {s['reason']}" for s in a["skipped"][:20]]
    return "\n".join(lines)


def _dataset_json(record: Any) -> dict[str, Any]:
    return {
        "id": record.id,
        "name": record.name,
        "kind": record.kind,
        "root": str(record.root),
        "annotations": str(record.annotations) if record.annotations else None,
        "analysis": record.analysis,
    }


# -- commands -----------------------------------------------------------------------


def cmd_import_model(args: argparse.Namespace, out: Output) -> int:
    from segtui.core.models import import_model

    with _open_workspace(args) as ws:
        names = _read_class_names(args.classes) if args.classes else None
        record = import_model(
            ws, Path(args.path), name=args.name, class_names=names, input_shape=args.input_shape
        )
        out.result(_model_json(record), model_text(record))
    return EXIT_OK


def _read_class_names(path: str) -> list[str]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"Cannot read the class names file {path}: {exc.strerror}.") from exc
    return [line.strip() for line in text.splitlines() if line.strip()]


def cmd_import_dataset(args: argparse.Namespace, out: Output) -> int:
    from segtui.core.datasets import import_dataset

    with _open_workspace(args) as ws:
        record = import_dataset(
            ws,
            Path(args.path),
            images_dir=Path(args.images) if args.images else None,
            name=args.name,
            progress=out.progress,
        )
        out.result(_dataset_json(record), dataset_text(record))
    return EXIT_OK


def cmd_create_project(args: argparse.Namespace, out: Output) -> int:
    from segtui.core.projects import create_project, create_project_from_paths

    with _open_workspace(args) as ws:
        if args.model.isdigit() and args.dataset.isdigit():
            project = create_project(
                ws,
                model_id=int(args.model),
                dataset_id=int(args.dataset),
                device=args.device,
                name=args.name,
            )
        else:
            project = create_project_from_paths(
                ws,
                model_path=Path(args.model),
                dataset_path=Path(args.dataset),
                images_dir=Path(args.images) if args.images else None,
                device=args.device,
                name=args.name,
                input_shape=args.input_shape,
                progress=out.progress,
            )
        from segtui.core.projects import project_summary

        summary = project_summary(ws, project.id)
        out.result(summary, f"Project {project.id}: {project.name} ({project.device})")
    return EXIT_OK


def cmd_list(args: argparse.Namespace, out: Output) -> int:
    from segtui.core.projects import available_devices, project_status

    with _open_workspace(args) as ws:
        what = args.what
        if what == "devices":
            devices = available_devices()
            out.result(devices, "\n".join(devices))
        elif what == "models":
            models = ws.models()
            rows = [
                [
                    str(m.id),
                    m.name,
                    m.format_id,
                    f"{m.analysis['gflops']:.2f}",
                    f"{m.analysis['params_m']:.2f}",
                    str(m.optimized_from or ""),
                ]
                for m in models
            ]
            out.result(
                [_model_json(m) for m in models],
                _table(rows, ["id", "name", "format", "GFLOPs", "params (M)", "from"]),
            )
        elif what == "datasets":
            datasets = ws.datasets()
            rows = [[str(d.id), d.name, d.kind, str(d.image_count), str(d.root)] for d in datasets]
            out.result(
                [_dataset_json(d) for d in datasets],
                _table(rows, ["id", "name", "kind", "images", "root"]),
            )
        elif what == "jobs":
            jobs = ws.jobs()
            rows = [
                [
                    str(j.id),
                    str(j.project_id or ""),
                    j.kind,
                    j.state,
                    f"{j.progress * 100:.0f}%",
                    j.stage,
                ]
                for j in jobs
            ]
            out.result(
                [j.__dict__ for j in jobs],
                _table(rows, ["id", "project", "kind", "state", "progress", "stage"]),
            )
        else:
            projects = ws.projects()
            data, rows = [], []
            for p in projects:
                model, dataset = ws.model(p.model_id), ws.dataset(p.dataset_id)
                status = project_status(ws, p)
                data.append(
                    {
                        "id": p.id,
                        "name": p.name,
                        "model_id": model.id,
                        "model": model.name,
                        "format_id": model.format_id,
                        "dataset_id": dataset.id,
                        "dataset": dataset.name,
                        "images": dataset.image_count,
                        "device": p.device,
                        "parent_id": p.parent_id,
                        "status": status,
                    }
                )
                rows.append(
                    [
                        str(p.id),
                        p.name,
                        model.name,
                        dataset.name,
                        str(dataset.image_count),
                        p.device,
                        str(p.parent_id or ""),
                        status,
                    ]
                )
            text = (
                _table(
                    rows, ["id", "name", "model", "dataset", "images", "device", "parent", "status"]
                )
                if rows
                else "No projects yet. Create one with `segtui create-project MODEL DATASET`."
            )
            out.result(data, text)
    return EXIT_OK


def cmd_show(args: argparse.Namespace, out: Output) -> int:
    from segtui.core.projects import project_summary

    with _open_workspace(args) as ws:
        if args.what == "model":
            record = ws.model(_id(args.id))
            out.result(_model_json(record), model_text(record))
        elif args.what == "dataset":
            record = ws.dataset(_id(args.id))
            out.result(_dataset_json(record), dataset_text(record))
        else:
            project = _resolve_project(ws, args.id)
            summary = project_summary(ws, project.id)
            model, dataset = ws.model(project.model_id), ws.dataset(project.dataset_id)
            p = summary["project"]
            head = [
                f"Project {project.id}: {project.name}",
                f"  device      {project.device}",
                f"  status      {p['status']}",
            ]
            if p["parent_id"]:
                head.append(f"  parent      project {p['parent_id']}")
            if p["children"]:
                head.append(f"  optimized   project(s) {', '.join(map(str, p['children']))}")
            out.result(
                summary, "\n".join(head) + "\n" + model_text(model) + "\n" + dataset_text(dataset)
            )
    return EXIT_OK


def _id(text: str) -> int:
    if not text.isdigit():
        raise CliError(
            f"Expected a numeric id, got {text!r}.", "See `segtui list models|datasets`."
        )
    return int(text)


def cmd_predict(args: argparse.Namespace, out: Output) -> int:
    from segtui.core.datasets import image_path
    from segtui.core.inference import run_inference
    from segtui.core.models import load_registered
    from segtui.core.predictions import to_coco_results
    from segtui.core.workspace import atomic_write_text

    with _open_workspace(args) as ws:
        project = _resolve_project(ws, args.project)
        model = ws.model(project.model_id)
        dataset = ws.dataset(project.dataset_id)
        images = ws.dataset_images(dataset.id)
        if args.limit:
            images = images[: args.limit]
        loaded = load_registered(model)
        run = run_inference(
            loaded.model,
            loaded.adapter,
            [(im.path, image_path(dataset, im)) for im in images],
            device=project.device,
            precision=args.precision,
            score_threshold=args.threshold,
            progress=out.progress,
        )
        ids = {im.path: (im.coco_id if im.coco_id is not None else im.idx + 1) for im in images}
        category_ids = dataset.analysis.get("category_ids") if dataset.annotated else None
        if category_ids and len(category_ids) != len(model.class_names):
            category_ids = None
        results = to_coco_results(run.predictions, ids, category_ids)
        names = {v: k for k, v in ids.items()}
        for entry in results:
            entry["file_name"] = names[entry["image_id"]]
        out_path = Path(args.out)
        atomic_write_text(out_path, json.dumps(results))
        summary = {
            "project_id": project.id,
            "images": len(run.predictions),
            "instances": len(results),
            "precision": run.precision,
            "device": run.device,
            "seconds": round(run.seconds, 3),
            "images_per_second": round(len(run.predictions) / max(run.seconds, 1e-9), 2),
            "out": str(out_path),
        }
        out.result(
            summary,
            f"{len(results)} instances in {len(run.predictions)} images "
            f"({run.device}, {run.precision}, {summary['images_per_second']} img/s) → {out_path}",
        )
    return EXIT_OK


def _run_job(ws: Any, kind: str, project_id: int, params: dict[str, Any], out: Output) -> Any:
    """Submit a job, follow its progress on the terminal, and return its final record."""
    from segtui.core import jobs

    job = jobs.submit(ws, kind, project_id, params)
    if ws.job(job.id).state == "queued":
        sys.stderr.write(f"Job {job.id} queued behind a running job; waiting.\n")
    try:
        final = jobs.wait(ws, job.id, lambda j: out.progress(j.progress, j.stage))
    except KeyboardInterrupt:
        jobs.cancel(ws, job.id)
        raise
    if final.state != "done":
        log = f" Log: {final.log_path}" if final.log_path else ""
        raise SegtuiError(
            f"Job {final.id} ({kind}) {final.state}: {final.error or ''}".strip(), log.strip()
        )
    return final


def cmd_evaluate(args: argparse.Namespace, out: Output) -> int:
    with _open_workspace(args) as ws:
        project = _resolve_project(ws, args.project)
        final = _run_job(ws, "evaluate", project.id, {"precision": args.precision}, out)
        result = final.result or {}
        m = result.get("metrics", {})
        out.result(
            result | {"job_id": final.id, "project_id": project.id},
            f"Project {project.id} on {result.get('images')} images ({result.get('device')}, {result.get('precision')}):\n"
            f"  mask AP {m.get('mask_ap', 0):.4f}  AP50 {m.get('mask_ap50', 0):.4f}  AP75 {m.get('mask_ap75', 0):.4f}\n"
            f"  box  AP {m.get('box_ap', 0):.4f}  AP50 {m.get('box_ap50', 0):.4f}  AP75 {m.get('box_ap75', 0):.4f}",
        )
    return EXIT_OK


def cmd_optimize(args: argparse.Namespace, out: Output) -> int:
    from segtui.core.optimize import OptimizeSettings

    settings = OptimizeSettings(
        method=args.method,
        preset=args.preset,
        subset_percent=args.subset,
        fast_bias_correction=not args.no_fast_bias_correction,
        auto_ignore=not args.no_auto_ignore,
        ignore_names=[n for n in args.ignore if n],
        ignore_types=[t for t in args.ignore_type if t],
        max_drop=args.max_drop,
        drop_type=args.drop_type,
        validation_images=args.validation_images,
    )
    with _open_workspace(args) as ws:
        project = _resolve_project(ws, args.project)
        dataset = ws.dataset(project.dataset_id)
        settings.validate(dataset.annotated)
        if not args.json:
            sys.stderr.write(
                f"Optimizing project {project.id} ({settings.method}, {settings.preset}, "
                f"{settings.subset_count(dataset.image_count)} calibration images)\n"
            )
        final = _run_job(ws, "optimize", project.id, settings.to_json(), out)
        result = final.result or {}
        child = result.get("child_project_id")
        opt = result.get("optimization") or {}
        if opt.get("achieved") is False:
            sys.stderr.write(
                f"segtui: warning: AccuracyAware could not keep the drop within {settings.max_drop} "
                f"({opt.get('reported_drop_points')} points on the validation images); the best model was kept.\n"
            )
        out.result(
            result | {"job_id": final.id},
            f"Child project {child}: INT8 model {result.get('model_id')} "
            f"(calibration {opt.get('calibration_seconds')} s, "
            f"{opt.get('ignored_names_count')} layers kept in floating point)",
        )
    return EXIT_OK


def _benchmark_line(d: dict[str, Any]) -> str:
    return (
        f"{d['throughput_fps']:.2f} FPS, latency median {d['latency_median_ms']:.2f} ms "
        f"(avg {d['latency_avg_ms']:.2f}, min {d['latency_min_ms']:.2f}, max {d['latency_max_ms']:.2f}) — "
        f"{d['device']}, {d['precision']}, {d['hint']}, {d['streams']} streams, {d['requests']} requests, "
        f"batch {d['batch']}, {d['duration_s']:.0f} s"
    )


def cmd_benchmark(args: argparse.Namespace, out: Output) -> int:
    from segtui.core.benchmark import BenchmarkSettings

    settings = BenchmarkSettings(
        hint=args.hint.upper(),
        streams=args.streams,
        requests=args.requests,
        batch=args.batch,
        duration_s=args.time,
        precision=args.precision,
    )
    settings.validate()
    with _open_workspace(args) as ws:
        project = _resolve_project(ws, args.project)
        params = {k: v for k, v in settings.__dict__.items() if k != "device"} | {
            "per_layer": not args.no_per_layer
        }
        final = _run_job(ws, "benchmark", project.id, params, out)
        data = final.result or {}
        text = f"Project {project.id}: {_benchmark_line(data)}"
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

    with _open_workspace(args) as ws:
        a = _resolve_project(ws, args.a)
        b = (
            _resolve_project(ws, args.b)
            if args.b
            else (ws.project(a.parent_id) if a.parent_id else None)
        )
        if b is None:
            raise CliError(f"Project {a.id} has no parent to compare with.", "Name B explicitly.")
        data = compare_projects(ws, a.id, b.id)
        lines = [f"A: project {a.id} {a.name}"]
        lines += [f"   {_benchmark_line(r)}" for r in data["a"]["runs"].values()]
        lines.append(f"B: project {b.id} {b.name}")
        lines += [f"   {_benchmark_line(r)}" for r in data["b"]["runs"].values()]
        for precision, ratio in data["ratios_vs_b"].items():
            lines.append(
                f"A vs B@{precision}: throughput ×{ratio['throughput_ratio']:.2f}, "
                f"latency ×{ratio['latency_ratio']:.2f} faster"
            )
        out.result(data, "\n".join(lines))
    return EXIT_OK


def cmd_sweep(args: argparse.Namespace, out: Output) -> int:
    from segtui.core.performance import estimate_sweep_seconds, sweet_spot

    with _open_workspace(args) as ws:
        project = _resolve_project(ws, args.project)
        estimate = estimate_sweep_seconds(args.batch, args.streams, args.time)
        if not args.json:
            sys.stderr.write(
                f"{len(args.batch) * len(args.streams)} cells, about {estimate:.0f} s\n"
            )
        params = {
            "batches": args.batch,
            "streams": args.streams,
            "duration_s": args.time,
            "precision": args.precision,
        }
        final = _run_job(ws, "sweep", project.id, params, out)
        record = ws.result(int((final.result or {})["result_id"]))
        cells = record.data["cells"]
        best = (
            sweet_spot(cells, args.latency_limit)
            if args.latency_limit
            else sweet_spot(cells, float("inf"))
        )
        rows = [
            [
                str(c["batch"]),
                str(c["streams"]),
                f"{c['throughput_fps']:.2f}" if c["ok"] else "-",
                f"{c['latency_median_ms']:.2f}" if c["ok"] else c.get("error", "")[:40],
            ]
            for c in cells
        ]
        text = _table(rows, ["batch", "streams", "FPS", "latency ms"])
        if best:
            text += f"\nSweet spot: batch {best['batch']} × {best['streams']} streams, {best['throughput_fps']:.2f} FPS"
        out.result(record.data | {"sweet_spot": best, "result_id": record.id}, text)
    return EXIT_OK


def cmd_report(args: argparse.Namespace, out: Output) -> int:
    from segtui.core.report import export_report, markdown_summary

    with _open_workspace(args) as ws:
        project = _resolve_project(ws, args.project)
        params = {
            "type": args.type,
            "threshold": args.threshold,
            "iou": args.iou,
            "precision": args.precision,
        }
        final = _run_job(ws, "report", project.id, params, out)
        record = ws.result(int((final.result or {})["result_id"]))
        summary = record.data["summary"]
        if args.export:
            for path in export_report(record.data, Path(args.export)):
                sys.stderr.write(f"wrote {path}\n")
        drop = (
            summary["mask_ap_drop"]
            if args.type == "annotations"
            else round((1 - summary["a_vs_b"]["mask_ap"]) * 100, 4)
        )
        data = {"result_id": record.id, "summary": summary, "mask_ap_drop": drop}
        out.result(data, markdown_summary(summary).rstrip())
        if args.max_drop is not None and drop > args.max_drop:
            sys.stderr.write(
                f"segtui: mask AP drop {drop:.2f} points exceeds --max-drop {args.max_drop}\n"
            )
            return EXIT_ERROR
    return EXIT_OK


def cmd_sample(args: argparse.Namespace, out: Output) -> int:
    from segtui.core.sample import register_sample

    with _open_workspace(args) as ws:
        projects = register_sample(ws)
        data = {"images_project": projects.images.id, "annotated_project": projects.annotated.id}
        out.result(
            data,
            f"Sample projects: {projects.images.id} ({projects.images.name}), "
            f"{projects.annotated.id} ({projects.annotated.name})",
        )
    return EXIT_OK


def cmd_deploy(args: argparse.Namespace, out: Output) -> int:
    from segtui.core.deploy import build_deployment

    with _open_workspace(args) as ws:
        project = _resolve_project(ws, args.project)
        result = build_deployment(
            ws,
            project.id,
            Path(args.out) if args.out else None,
            with_parent=args.with_parent,
            score_threshold=args.threshold,
            overwrite=args.force,
        )
        out.result(
            result.to_json(),
            f"Deployment package for project {project.id}: {result.path} "
            f"({result.size_bytes / 1e6:.1f} MB, {len(result.files)} files"
            f"{', with the parent model' if result.with_parent else ''}); "
            f"inside: pip install -r requirements.txt, python infer.py IMAGES",
        )
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="segtui",
        description="INT8 optimization of instance-segmentation models, measured. "
        "Without a command, opens the terminal UI.",
    )
    parser.add_argument(
        "--workspace", help="workspace folder (default: $SEGTUI_HOME or the user data dir)"
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--workspace", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    common.add_argument("--json", action="store_true", help="print machine-readable JSON")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "import-model", parents=[common], help="import an OpenVINO IR (.xml) or ONNX model"
    )
    p.add_argument("path")
    p.add_argument("--name")
    p.add_argument("--classes", help="text file with one class name per line")
    p.add_argument("--input-shape", type=_int_list, help="static input shape, e.g. 1,3,640,640")
    p.set_defaults(func=cmd_import_model)

    p = sub.add_parser(
        "import-dataset", parents=[common], help="import a folder of images or a COCO .json"
    )
    p.add_argument("path")
    p.add_argument("--images", help="image folder of a COCO file (default: found beside it)")
    p.add_argument("--name")
    p.set_defaults(func=cmd_import_dataset)

    p = sub.add_parser("create-project", parents=[common], help="model + dataset + device")
    p.add_argument("model", help="model id or model file")
    p.add_argument("dataset", help="dataset id, image folder or COCO .json")
    p.add_argument("--images", help="image folder of a COCO file")
    p.add_argument("--device", default="CPU")
    p.add_argument("--name")
    p.add_argument("--input-shape", type=_int_list)
    p.set_defaults(func=cmd_create_project)

    p = sub.add_parser(
        "list", parents=[common], help="list projects, models, datasets, jobs or devices"
    )
    p.add_argument(
        "what",
        nargs="?",
        default="projects",
        choices=["projects", "models", "datasets", "jobs", "devices"],
    )
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("show", parents=[common], help="show a project, model or dataset")
    p.add_argument("what", choices=["project", "model", "dataset"])
    p.add_argument("id")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("predict", parents=[common], help="run a project's model over its dataset")
    p.add_argument("project", help="project id or name")
    p.add_argument("--out", required=True, help="COCO-style results JSON to write")
    p.add_argument("--precision", choices=["f32", "default"], default="f32")
    p.add_argument("--threshold", type=float, default=0.05)
    p.add_argument("--limit", type=int, default=0, help="only the first N images")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser(
        "evaluate", parents=[common], help="COCO box/mask AP on an annotated dataset (a job)"
    )
    p.add_argument("project", help="project id or name")
    p.add_argument("--precision", choices=["f32", "default"], default="f32")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("optimize", parents=[common], help="INT8 quantization with NNCF (a job)")
    p.add_argument("project", help="project id or name")
    p.add_argument("--method", choices=["default", "accuracy-aware"], default="default")
    p.add_argument("--preset", choices=["performance", "mixed"], default="performance")
    p.add_argument(
        "--subset", type=float, default=100.0, help="calibration subset, %% of the dataset"
    )
    p.add_argument("--no-fast-bias-correction", action="store_true")
    p.add_argument(
        "--no-auto-ignore",
        action="store_true",
        help="do not keep the detected geometry subgraphs in floating point",
    )
    p.add_argument(
        "--ignore", action="append", default=[], help="a layer name to keep in floating point"
    )
    p.add_argument(
        "--ignore-type", action="append", default=[], help="a layer type to keep in floating point"
    )
    p.add_argument(
        "--max-drop", type=float, default=0.5, help="AccuracyAware: max mask AP drop in points"
    )
    p.add_argument("--drop-type", choices=["absolute", "relative"], default="absolute")
    p.add_argument("--validation-images", type=int, default=50)
    p.set_defaults(func=cmd_optimize)

    p = sub.add_parser(
        "benchmark", parents=[common], help="throughput and latency, like benchmark_app (a job)"
    )
    p.add_argument("project", help="project id or name")
    p.add_argument(
        "--hint", choices=["throughput", "latency", "THROUGHPUT", "LATENCY"], default="THROUGHPUT"
    )
    p.add_argument("--streams", type=int)
    p.add_argument("--requests", type=int)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--time", type=float, default=20.0, help="seconds of measurement (default 20)")
    p.add_argument("--precision", choices=["f32", "default"], default="f32")
    p.add_argument("--no-per-layer", action="store_true", help="skip the per-layer profile")
    p.set_defaults(func=cmd_benchmark)

    p = sub.add_parser("compare", parents=[common], help="compare the benchmarks of two projects")
    p.add_argument("a", help="project A (e.g. the optimized child)")
    p.add_argument("b", nargs="?", help="project B (default: A's parent)")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser(
        "sweep", parents=[common], help="explore batch × streams configurations (a job)"
    )
    p.add_argument("project")
    p.add_argument("--batch", type=_int_list, default=[1])
    p.add_argument("--streams", type=_int_list, default=[1, 2])
    p.add_argument("--time", type=float, default=5.0, help="seconds per cell")
    p.add_argument("--precision", choices=["f32", "default"], default="default")
    p.add_argument(
        "--latency-limit", type=float, help="ms; the sweet spot is the best FPS under it"
    )
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser(
        "report", parents=[common], help="accuracy report of an optimized project (a job)"
    )
    p.add_argument("project")
    p.add_argument("--type", choices=["parent", "annotations"], default="parent")
    p.add_argument("--threshold", type=float, default=0.1)
    p.add_argument("--iou", type=float, default=0.5)
    p.add_argument("--precision", choices=["f32", "default"], default="f32")
    p.add_argument(
        "--max-drop", type=float, help="exit 1 when the mask AP drop (points) exceeds this"
    )
    p.add_argument("--export", help="also write CSV, JSON and Markdown next to this path")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser(
        "deploy", parents=[common], help="build a .tar.gz that runs the project's model alone"
    )
    p.add_argument("project")
    p.add_argument(
        "--out", help="the .tar.gz to write, or a folder (default: ./segtui-deploy-NAME.tar.gz)"
    )
    p.add_argument("--with-parent", action="store_true", help="also include the parent model")
    p.add_argument("--threshold", type=float, default=0.5, help="infer.py's default minimum score")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.set_defaults(func=cmd_deploy)

    p = sub.add_parser("sample", parents=[common], help="register the bundled sample projects")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("tui", parents=[common], help="open the terminal UI (the default)")
    p.set_defaults(func=None)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace, Output], int] | None = getattr(args, "func", None)
    if func is None:
        from segtui.ui.app import run_app

        run_app(Path(args.workspace) if args.workspace else None)
        return EXIT_OK
    out = Output(getattr(args, "json", False))
    try:
        return func(args, out)
    except SegtuiError as exc:
        _fail(out, exc.message, exc.hint)
        return EXIT_ERROR
    except KeyboardInterrupt:
        _fail(out, "Interrupted.", "")
        return 130
    except OSError as exc:
        _fail(
            out,
            f"{exc.strerror or exc}: {exc.filename or ''}".strip(),
            "Check the path and free disk space.",
        )
        return EXIT_ERROR


def _fail(out: Output, message: str, hint: str) -> None:
    if out.as_json:
        print(json.dumps({"error": message, "hint": hint}))
    sys.stderr.write(f"segtui: error: {message}{' ' + hint if hint else ''}\n")
