"""Commands over the workspace's contents: import, create, list, show, sample."""

from __future__ import annotations

import argparse
import json
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from segtui.cli.common import MAX_ID, is_id, open_workspace, resolve_project
from segtui.cli.output import EXIT_OK, CliError, Output, table
from segtui.core.errors import NotFoundError, SegtuiError
from segtui.core.import_checks import parse_input_shape
from segtui.core.machine import MachineInfo
from segtui.core.records import DatasetRecord, JsonObject, ModelRecord
from segtui.core.settings_versions import optimization_staleness, stale_suffix
from segtui.core.workspace import Workspace

LIST_CHOICES = ("projects", "models", "datasets", "jobs", "devices")


#: argparse takes "-1,3,64,64" for an option unless it looks like a number: these are values.
_NEGATIVE_VALUE = re.compile(r"^-\d+$|^-\d*\.\d+$|^-\d[\d,x×\s-]*$")


def input_shape_arg(text: str) -> list[int]:
    """--input-shape: N,C,H,W (or NxCxHxW) of positive whole numbers within bounds."""
    try:
        return list(parse_input_shape(text))
    except SegtuiError as exc:
        raise argparse.ArgumentTypeError(f"{exc.message} {exc.hint}") from None


def _exists(lookup: Callable[[int], object], number: int) -> bool:
    if number > MAX_ID:
        return False
    try:
        lookup(number)
    except NotFoundError:
        return False
    return True


def _given_path(text: str, what: str) -> Path:
    if not text.strip():
        raise CliError(f"The {what} path is empty.", f"Give the path of the {what}.")
    return Path(text).expanduser()


#: Endings that make a MODEL or DATASET argument a path, never a name.
_FILE_SUFFIXES = frozenset({".xml", ".onnx", ".bin", ".json"})


def _ref(
    text: str,
    lookup: Callable[[int], object],
    what: str,
    usage: str,
    out: Output,
    names: Callable[[], Sequence[tuple[int, str]]] = lambda: (),
) -> int | Path:
    """A command-line MODEL or DATASET: a registered id, else a file or folder, else a
    registered name (`names()`: (id, name) pairs); says which was tried."""
    if not is_id(text):
        # A path-like text stays a path (its own "no such file" message names it).
        path_like = "/" in text or Path(text).suffix.lower() in _FILE_SUFFIXES
        if path_like or not text.strip() or os.path.lexists(os.path.expanduser(text)):
            return _given_path(text, what)
        named = [row_id for row_id, name in names() if name == text]
        if len(named) == 1:
            return named[0]
        if len(named) > 1:
            raise CliError(
                f"Several {what}s are named {text!r}: ids {', '.join(map(str, named))}.",
                f"Give the {what} id instead. {usage}",
            )
        raise CliError(f"No file or folder named {text!r} here, and no {what} of that name.", usage)
    number = int(text)
    on_disk = os.path.lexists(text)
    if _exists(lookup, number):
        if on_disk:
            out.note(f"{text!r} is read as {what} id {number}; write ./{text} for the file.")
        return number
    if on_disk:
        return Path(text)
    raise CliError(f"No {what} with id {number}, and no file or folder named {text!r} here.", usage)


def _fmt_shape(shape: list[int | None]) -> str:
    return "[" + ",".join("?" if d is None else str(d) for d in shape) + "]"


def model_text(record: ModelRecord) -> str:
    """A model's analysis as `segtui show model` prints it."""
    a = record.analysis
    detected = a["format_id"]
    lines = [
        f"Model {record.id}: {record.name}",
        f"  format      {a['format']} ({record.format_id})"
        if record.format_id == detected
        else f"  format      {record.format_id} (set by you; detected {detected})",
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
    protocol = a.get("settings", {}).get("mask_protocol")
    if protocol:
        lines.append(f"  masks       {protocol}")
    if record.accuracy_settings:
        lines.append(
            f"  settings    set by you: {', '.join(record.accuracy_settings)} "
            f"(segtui configure {record.id})"
        )
    if record.optimized_from is not None:
        optimization = None if record.optimization is None else dict(record.optimization)
        calibrated = None if optimization is None else optimization.pop("accuracy_settings", None)
        lines.append(f"  optimized from model {record.optimized_from}: {json.dumps(optimization)}")
        if isinstance(calibrated, dict):
            lines.append(
                f"  calibrated  with accuracy settings {calibrated.get('version')}"
                + stale_suffix(optimization_staleness(record))
            )
    return "\n".join(lines)


def model_json(record: ModelRecord) -> JsonObject:
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
        "accuracy_settings": record.accuracy_settings,
    }


def dataset_text(record: DatasetRecord) -> str:
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


def dataset_json(record: DatasetRecord) -> JsonObject:
    return {
        "id": record.id,
        "name": record.name,
        "kind": record.kind,
        "root": str(record.root),
        "annotations": str(record.annotations) if record.annotations else None,
        "analysis": record.analysis,
    }


def import_settings(args: argparse.Namespace) -> dict[str, object]:
    """The accuracy settings import-model's flags give (checked by the import like configure's)."""
    given: dict[str, object] = {
        key: value
        for key, value in (
            ("format", args.format),
            ("channel_order", args.channel_order),
            ("mean", args.mean),
            ("scale", args.scale),
            ("resize", args.resize),
        )
        if value is not None
    }
    for key, value in args.set or []:
        given[key] = value
    return given


def _accuracy_flags(p: argparse.ArgumentParser) -> None:
    """import-model's accuracy-settings flags (see `segtui configure`)."""
    from segtui.cli.commands.configure import set_pair

    p.add_argument("--format", metavar="ID", help="read the outputs as this format (see README)")
    order = p.add_mutually_exclusive_group()
    order.add_argument(
        "--rgb", dest="channel_order", action="store_const", const="RGB", help="input is RGB"
    )
    order.add_argument(
        "--bgr", dest="channel_order", action="store_const", const="BGR", help="input is BGR"
    )
    p.add_argument("--mean", metavar="A,B,C", help="per-channel mean (input = (px - mean) / scale)")
    p.add_argument("--scale", metavar="A,B,C", help="per-channel scale, or one for all (255)")
    p.add_argument("--resize", metavar="KIND", help="standard, fit_to_window, letterbox, ...")
    p.add_argument(
        "--set",
        action="append",
        type=set_pair,
        metavar="KEY=VALUE",
        help="any other accuracy setting, as `segtui configure` takes it (repeatable)",
    )


def cmd_import_model(args: argparse.Namespace, out: Output) -> int:
    from segtui.core.import_checks import check_name, read_class_names
    from segtui.core.models import import_model

    name = check_name(args.name, "--name", default="the file's name")
    path = _given_path(args.path, "model")
    names = read_class_names(Path(args.classes)) if args.classes is not None else None
    settings = import_settings(args)
    with open_workspace(args) as ws:
        known = {m.id for m in ws.models()}
        record = import_model(
            ws,
            path,
            name=name,
            class_names=names,
            input_shape=args.input_shape,
            accuracy_settings=settings,
        )
        if record.id in known:
            out.note(
                f"{path} is already in the workspace as model {record.id} ({record.name}), "
                "with the same files, classes and accuracy settings: nothing was imported."
            )
        out.result(model_json(record), model_text(record))
    return EXIT_OK


def cmd_import_dataset(args: argparse.Namespace, out: Output) -> int:
    from segtui.core.datasets import import_dataset
    from segtui.core.import_checks import check_name

    name = check_name(args.name, "--name", default="the folder's or file's name")
    path = _given_path(args.path, "dataset")
    images = _given_path(args.images, "--images folder") if args.images is not None else None
    with open_workspace(args) as ws:
        record = import_dataset(ws, path, images_dir=images, name=name, progress=out.progress)
        out.result(dataset_json(record), dataset_text(record))
    return EXIT_OK


def cmd_create_project(args: argparse.Namespace, out: Output) -> int:
    from segtui.core.import_checks import check_name
    from segtui.core.projects import create_project_from, project_summary

    name = check_name(args.name, "--name", default="'model · dataset'")
    images = _given_path(args.images, "--images folder") if args.images is not None else None
    with open_workspace(args) as ws:
        model = _ref(
            args.model,
            ws.model,
            "model",
            "MODEL is a model id or name (see `segtui list models`) or an .xml or .onnx file.",
            out,
            lambda: [(m.id, m.name) for m in ws.models()],
        )
        dataset = _ref(
            args.dataset,
            ws.dataset,
            "dataset",
            "DATASET is a dataset id or name (see `segtui list datasets`), a folder of "
            "images or a COCO .json file.",
            out,
            lambda: [(d.id, d.name) for d in ws.datasets()],
        )
        project = create_project_from(
            ws,
            model=model,
            dataset=dataset,
            images_dir=images,
            device=args.device,
            name=name,
            input_shape=args.input_shape,
            progress=out.progress,
        )
        summary = project_summary(ws, project.id)
        out.result(summary, f"Project {project.id}: {project.name} ({project.device})")
    return EXIT_OK


def _list_projects(ws: Workspace, out: Output) -> None:
    from segtui.core.projects import project_rows

    rows = project_rows(ws)
    if not rows:
        out.result([], "No projects yet. Create one with `segtui create-project MODEL DATASET`.")
        return
    data = [
        {
            "id": p.id,
            "name": p.name,
            "model_id": p.model_id,
            "model": p.model_name,
            "format_id": p.format_id,
            "dataset_id": p.dataset_id,
            "dataset": p.dataset_name,
            "images": p.image_count,
            "device": p.device,
            "parent_id": p.parent_id,
            "status": p.status,
            "best_fps": p.best_throughput_fps,
            "best_fps_precision": p.best_precision,
        }
        for p in rows
    ]
    cells = [
        [
            str(p.id),
            "  " * p.depth + p.name,
            p.model_name,
            p.dataset_name,
            str(p.image_count),
            p.device,
            str(p.parent_id or ""),
            p.status,
            p.throughput_text,
        ]
        for p in rows
    ]
    headers = ["id", "name", "model", "dataset", "images", "device", "parent", "status", "best fps"]
    out.result(data, table(cells, headers))


def devices_text(machines: list[MachineInfo]) -> str:
    """`segtui list devices`: each device, its processor, capabilities and default precision."""
    lines = []
    for m in machines:
        lines.append(f"{m.device}  {m.name}")
        lines.append(f"  default precision  {m.default_precision}")
        if m.capabilities:
            lines.append(f"  OpenVINO           {', '.join(m.capabilities)}")
        if m.cpu_features:
            lines.append(f"  CPU features       {m.features_text}")
    return "\n".join(lines)


def cmd_list(args: argparse.Namespace, out: Output) -> int:
    from segtui.core.machine import machines

    with open_workspace(args) as ws:
        what = args.what
        if what == "devices":
            found = machines()
            out.result([m.to_json() for m in found], devices_text(found))
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
                [model_json(m) for m in models],
                table(rows, ["id", "name", "format", "GFLOPs", "params (M)", "from"]),
            )
        elif what == "datasets":
            datasets = ws.datasets()
            rows = [[str(d.id), d.name, d.kind, str(d.image_count), str(d.root)] for d in datasets]
            out.result(
                [dataset_json(d) for d in datasets],
                table(rows, ["id", "name", "kind", "images", "root"]),
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
                table(rows, ["id", "project", "kind", "state", "progress", "stage"]),
            )
        else:
            _list_projects(ws, out)
    return EXIT_OK


def _shown_id(text: str, what: str) -> int:
    """The id of `show model|dataset ID`: a whole number that can name a row."""
    if not is_id(text.strip()):
        raise CliError(
            f"{text!r} is not a {what} id: {what} ids are whole numbers such as 1.",
            f"See `segtui list {what}s` for the ids.",
        )
    number = int(text)
    if number > MAX_ID:
        raise CliError(f"No {what} with id {number}.", f"See `segtui list {what}s`.")
    return number


def cmd_show(args: argparse.Namespace, out: Output) -> int:
    from segtui.core.projects import project_summary
    from segtui.core.settings_versions import project_result_states

    with open_workspace(args) as ws:
        if args.what == "model":
            model = ws.model(_shown_id(args.id, "model"))
            out.result(model_json(model), model_text(model))
            return EXIT_OK
        if args.what == "dataset":
            dataset = ws.dataset(_shown_id(args.id, "dataset"))
            out.result(dataset_json(dataset), dataset_text(dataset))
            return EXIT_OK
        if is_id(args.id) and int(args.id) > MAX_ID:  # no row has it; SQLite cannot look
            raise CliError(f"No project with id {args.id}.", "See `segtui list`.")
        project = resolve_project(ws, args.id)
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
        results = project_result_states(ws, project.id)
        summary["results"] = [r.to_json() for r in results]
        head += [f"  result {r.result_id:<4} {r.kind}{stale_suffix(r.staleness)}" for r in results]
        summary["model"]["optimization_staleness"] = str(optimization_staleness(model))
        out.result(
            summary, "\n".join(head) + "\n" + model_text(model) + "\n" + dataset_text(dataset)
        )
    return EXIT_OK


def cmd_sample(args: argparse.Namespace, out: Output) -> int:
    from segtui.core.sample import (
        BUNDLED_SAMPLES,
        ON_REQUEST_SAMPLES,
        register_sample,
        sample_available,
    )

    names = [args.name] if args.name else [n for n in BUNDLED_SAMPLES if sample_available(n)]
    if args.name and not sample_available(args.name):
        raise CliError(
            f"The sample {args.name!r} is not in this installation.",
            f"Bundled samples: {', '.join(BUNDLED_SAMPLES + ON_REQUEST_SAMPLES)}; "
            "reinstall from a complete source tree.",
        )
    with open_workspace(args) as ws:
        registered = [(name, register_sample(ws, name)) for name in names]
        data = {
            "samples": [
                {
                    "name": name,
                    "images_project": projects.images.id,
                    "annotated_project": projects.annotated.id,
                }
                for name, projects in registered
            ]
        }
        out.result(
            data,
            "\n".join(
                f"Sample {name}: projects {p.images.id} ({p.images.name}), "
                f"{p.annotated.id} ({p.annotated.name})"
                for name, p in registered
            ),
        )
    return EXIT_OK


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "import-model", parents=[common], help="import an OpenVINO IR (.xml) or ONNX model"
    )
    p.add_argument("path")
    p.add_argument("--name")
    p.add_argument("--classes", help="text file with one class name per line")
    p.add_argument(
        "--input-shape",
        type=input_shape_arg,
        help="static input shape N,C,H,W, e.g. 1,3,640,640 (N 1; H, W 16–8192)",
    )
    _accuracy_flags(p)
    p.set_defaults(func=cmd_import_model)
    p._negative_number_matcher = _NEGATIVE_VALUE

    p = sub.add_parser(
        "import-dataset", parents=[common], help="import a folder of images or a COCO .json"
    )
    p.add_argument("path")
    p.add_argument("--images", help="image folder of a COCO file (default: found beside it)")
    p.add_argument("--name")
    p.set_defaults(func=cmd_import_dataset)

    p = sub.add_parser("create-project", parents=[common], help="model + dataset + device")
    p.add_argument("model", help="model id, model name or model file (.xml, .onnx)")
    p.add_argument("dataset", help="dataset id, dataset name, image folder or COCO .json")
    p.add_argument("--images", help="image folder of a COCO file")
    p.add_argument("--device", default="CPU")
    p.add_argument("--name")
    p.add_argument(
        "--input-shape",
        type=input_shape_arg,
        help="static input shape N,C,H,W (a registered model is reshaped into a new one)",
    )
    p.set_defaults(func=cmd_create_project)
    p._negative_number_matcher = _NEGATIVE_VALUE

    p = sub.add_parser(
        "list", parents=[common], help="list projects, models, datasets, jobs or devices"
    )
    p.add_argument("what", nargs="?", default="projects", choices=LIST_CHOICES)
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("show", parents=[common], help="show a project, model or dataset")
    p.add_argument("what", choices=["project", "model", "dataset"])
    p.add_argument("id")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("sample", parents=[common], help="register the bundled sample projects")
    p.add_argument(
        "name",
        nargs="?",
        help="one bundled sample: shapes (Mask R-CNN, OMZ layout), shapes-yolo (YOLOv8n-seg) or "
        "shapes-torchvision (the Mask R-CNN with torchvision's tail); default the first two",
    )
    p.set_defaults(func=cmd_sample)
