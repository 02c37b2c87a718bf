"""Deployment package: one .tar.gz that runs a project's model without segtui.

The archive holds one top-level folder with:

* ``model/model.xml`` + ``.bin`` — the project's model as stored in the workspace
  (and ``parent/`` with the parent's model when asked for);
* ``segtui_runtime/`` — segtui's own pre- and post-processing: the ``formats``
  package and the ``segtui.core`` modules it imports (``predictions.py``,
  ``errors.py``, ...), found from their imports and rewritten to import each other,
  so the package decodes exactly as segtui does;
* ``infer.py`` — a small command-line script: images or folders in, instances
  printed and written as JSON (COCO RLE masks), optional overlay PNGs;
* ``config.json`` — format, input shapes, class names, thresholds, provenance;
* ``classes.txt``, ``requirements.txt`` (the runtime pinned to the versions segtui
  runs with) and ``README.md``.

Unless told otherwise the package goes to the workspace's ``deploy/`` folder.
"""

from __future__ import annotations

import ast
import importlib.util
import io
import json
import os
import re
import stat
import sys
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

from segtui import __version__
from segtui.core.errors import SegtuiError
from segtui.core.records import JsonObject, ModelRecord, PortJson
from segtui.core.safe_files import check_output_path, safe_output, write_error
from segtui.core.settings import DEPLOY
from segtui.core.storage import private_dir
from segtui.core.workspace import Workspace

if TYPE_CHECKING:
    from segtui.core.optimize import OptimizationRecord

#: The runtime's entry: the formats package; the core modules it imports come along.
RUNTIME_ROOT = "segtui.core.formats"
#: What the runtime may import besides the standard library and its own modules:
#: import name -> distribution, pinned in requirements.txt.
RUNTIME_REQUIREMENTS: dict[str, str] = {
    "openvino": "openvino",
    "numpy": "numpy",
    "cv2": "opencv-python-headless",
    "pycocotools": "pycocotools",
    "yaml": "pyyaml",
}
_CORE = "segtui.core"
_CORE_DIR = Path(__file__).resolve().parent
_CORE_NAME = re.compile(r"\bsegtui\.core\b")
_TYPE_CHECKING = ("TYPE_CHECKING", "typing.TYPE_CHECKING")

INFER_SCRIPT = '''#!/usr/bin/env python3
"""Run this package's model on images, the way segtui does.

    python infer.py IMAGE_OR_FOLDER [...] [--out results.json] [--overlay DIR]
                    [--threshold 0.5] [--device CPU] [--precision default|f32] [--parent]

Prints one line per image and, with --out, writes every instance as JSON: class,
score, box (x1, y1, x2, y2 in image pixels) and the mask as COCO RLE.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import openvino as ov

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from segtui_runtime.formats import detect_format  # noqa: E402
from segtui_runtime.predictions import decode_mask  # noqa: E402

SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


def image_paths(args: list[str]) -> list[Path]:
    paths: list[Path] = []
    for arg in args:
        path = Path(arg)
        if path.is_dir():
            paths += sorted(p for p in path.rglob("*") if p.suffix.lower() in SUFFIXES)
        elif path.is_file():
            paths.append(path)
        else:
            sys.exit(f"infer.py: no such file or folder: {path}")
    if not paths:
        sys.exit("infer.py: no images found")
    return paths


def overlay(image: np.ndarray, instances: list, names: list[str]) -> np.ndarray:
    out = image.copy()
    rng = np.random.default_rng(0)
    colours = rng.integers(64, 256, (max(1, len(names)), 3))
    for inst in instances:
        colour = colours[inst.class_id % len(colours)].tolist()
        mask = decode_mask(inst.rle).astype(bool)
        out[mask] = (0.5 * out[mask] + 0.5 * np.array(colour)).astype(np.uint8)
        x1, y1, x2, y2 = (int(round(v)) for v in inst.box)
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, 1)
        label = f"{names[inst.class_id]} {inst.score:.2f}"
        cv2.putText(out, label, (x1, max(10, y1 - 3)), cv2.FONT_HERSHEY_SIMPLEX, 0.4, colour, 1)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", nargs="+")
    parser.add_argument("--out", type=Path, help="write the instances as JSON here")
    parser.add_argument("--overlay", type=Path, help="write PNGs with the masks drawn here")
    parser.add_argument("--threshold", type=float, default=None, help="minimum score")
    parser.add_argument("--device", default=None)
    parser.add_argument("--precision", choices=("default", "f32"), default="default")
    parser.add_argument("--parent", action="store_true", help="run the parent model instead")
    args = parser.parse_args()
    config = json.loads((HERE / "config.json").read_text(encoding="utf-8"))
    entry = config["parent" if args.parent else "model"]
    if entry is None:
        sys.exit("infer.py: this package holds no parent model")
    threshold = config["score_threshold"] if args.threshold is None else args.threshold
    names = config["class_names"]
    core = ov.Core()
    xml = HERE / entry["xml"]
    model = core.read_model(xml)
    if any(p.get_partial_shape().is_dynamic for p in model.inputs):
        model.reshape({name: ov.PartialShape(shape) for name, shape in entry["input_shapes"].items()})
    adapter = detect_format(model, xml, names)
    properties = {"INFERENCE_PRECISION_HINT": "f32"} if args.precision == "f32" else {}
    compiled = core.compile_model(model, args.device or config["device"], properties)
    request = compiled.create_infer_request()
    results = []
    for path in image_paths(args.images):
        image = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            print(f"{path}: not a readable image, skipped", file=sys.stderr)
            continue
        inputs, meta = adapter.preprocess(image)
        request.infer(inputs)
        outputs = [np.array(t.data) for t in request.output_tensors]
        instances = adapter.decode(outputs, meta, threshold)
        counts: dict[str, int] = {}
        for inst in instances:
            counts[names[inst.class_id]] = counts.get(names[inst.class_id], 0) + 1
        found = ", ".join(f"{n} {name}" for name, n in counts.items()) or "nothing"
        print(f"{path}: {len(instances)} instances ({found})")
        results.append(
            {
                "image": str(path),
                "height": int(image.shape[0]),
                "width": int(image.shape[1]),
                "instances": [
                    {**inst.to_json(), "class_name": names[inst.class_id]} for inst in instances
                ],
            }
        )
        if args.overlay:
            args.overlay.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(args.overlay / (path.stem + ".png")), overlay(image, instances, names))
    if args.out:
        args.out.write_text(json.dumps({"threshold": threshold, "images": results}), encoding="utf-8")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
'''


@dataclass(frozen=True)
class DeployResult:
    path: Path
    size_bytes: int
    files: list[str]
    with_parent: bool

    def to_json(self) -> JsonObject:
        return {
            "path": str(self.path),
            "size_bytes": self.size_bytes,
            "files": self.files,
            "with_parent": self.with_parent,
        }


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "model"


def _pins() -> list[str]:
    pins = []
    for name in RUNTIME_REQUIREMENTS.values():
        try:
            pins.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            pins.append(name)
    return pins


def _module_file(name: str) -> Path | None:
    """The source file of segtui.core module `name` (a package's __init__.py), if it is one."""
    if not name.startswith(_CORE + "."):
        return None
    base = _CORE_DIR.joinpath(*name.split(".")[2:])
    path = next((p for p in (base / "__init__.py", base.with_suffix(".py")) if p.is_file()), None)
    if path is not None and not path.resolve().is_relative_to(_CORE_DIR):
        raise RuntimeError(f"{path} leads out of {_CORE_DIR}: the runtime carries none of it")
    return path


def _executed_imports(tree: ast.Module) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement, but those under `if TYPE_CHECKING:` (they never run)."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and ast.unparse(node.test) in _TYPE_CHECKING:
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def _imported_modules(name: str, path: Path) -> Iterator[str]:
    """The modules `name` imports, submodules named in `from package import module` included."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in _executed_imports(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
            continue
        base = importlib.util.resolve_name("." * node.level + (node.module or ""), package)
        yield base
        yield from (f"{base}.{a.name}" for a in node.names if _module_file(f"{base}.{a.name}"))


def _core_imports(name: str, path: Path) -> list[str]:
    """The segtui.core modules `name` imports; RuntimeError for anything the package lacks."""
    carried = []
    for module in _imported_modules(name, path):
        top = module.partition(".")[0]
        if module.startswith(_CORE + "."):
            carried.append(module)
        elif top == "segtui" and module != _CORE:
            raise RuntimeError(
                f"{name} imports {module}: the deployment runtime carries segtui.core modules only"
            )
        elif top != "segtui" and top not in sys.stdlib_module_names | RUNTIME_REQUIREMENTS.keys():
            raise RuntimeError(
                f"{name} imports {top}, which the deployment's requirements.txt lacks: "
                "add it to RUNTIME_REQUIREMENTS"
            )
    return carried


def runtime_modules(root: str = RUNTIME_ROOT) -> dict[str, Path]:
    """The segtui.core modules the runtime needs: `root`, all it imports, their packages."""
    found: dict[str, Path] = {}
    todo = [root]
    while todo:
        name = todo.pop()
        if name in found or name == _CORE:
            continue
        path = _module_file(name)
        if path is None:
            raise RuntimeError(f"{name} has no source file in {_CORE_DIR}")
        found[name] = path
        todo += _core_imports(name, path)
        todo.append(name.rpartition(".")[0])  # a package's __init__ runs before its modules
    return dict(sorted(found.items()))


def runtime_sources(root: str = RUNTIME_ROOT) -> dict[str, str]:
    """The runtime's files (path in segtui_runtime/ -> text), imports pointed at its copy."""
    sources = {"__init__.py": '"""segtui\'s pre/post-processing, carried by a deployment."""\n'}
    for path in runtime_modules(root).values():
        text = path.read_text(encoding="utf-8")
        sources[path.relative_to(_CORE_DIR).as_posix()] = _CORE_NAME.sub("segtui_runtime", text)
    return sources


class PackagedModel(TypedDict):
    """A model in config.json."""

    name: str
    xml: str  # relative to the package folder
    checksum: str
    int8: bool
    input_shapes: dict[str, list[int]]
    optimization: OptimizationRecord | None  # how it was optimized, as stored


class ProjectRef(TypedDict):
    id: int
    name: str


class PackageConfig(TypedDict):
    """config.json: what infer.py runs and where it came from."""

    segtui_version: str
    created_at: str
    project: ProjectRef
    format: str
    format_id: str
    device: str
    score_threshold: float
    class_names: list[str]
    model: PackagedModel
    parent: PackagedModel | None


def _static_shape(record: ModelRecord, port: PortJson) -> list[int]:
    # The import analysed the model after making it static: its input shapes are final.
    shape = [d for d in port["shape"] if d is not None]
    if len(shape) != len(port["shape"]):
        raise SegtuiError(
            f"Model {record.name!r} has a dynamic input shape ({port['name']}).",
            "Import it again with --input-shape.",
        )
    return shape


def _model_entry(record: ModelRecord, folder: str) -> PackagedModel:
    return {
        "name": record.name,
        "xml": f"{folder}/model.xml",
        "checksum": record.checksum,
        "int8": bool(record.analysis.get("int8")),
        "input_shapes": {
            port["name"]: _static_shape(record, port) for port in record.analysis["inputs"]
        },
        "optimization": record.optimization,
    }


def _readme(project_name: str, config: PackageConfig, top: str) -> str:
    model = config["model"]
    lines = [
        f"# {project_name} — deployment package",
        "",
        f"Built by segtui {config['segtui_version']} on {config['created_at']}.",
        "",
        f"- model: {model['name']} ({config['format']}), "
        f"{'INT8' if model['int8'] else 'floating-point'} weights, input "
        + ", ".join(f"{k} {'×'.join(map(str, v))}" for k, v in model["input_shapes"].items()),
        f"- classes ({len(config['class_names'])}): {', '.join(config['class_names'])}",
        f"- default device {config['device']}, score threshold {config['score_threshold']}",
    ]
    if config["parent"]:
        lines.append(f"- parent model (for comparison): {config['parent']['name']}, `--parent`")
    lines += [
        "",
        "## Run",
        "",
        "```bash",
        f"cd {top}",
        "python3 -m venv .venv && .venv/bin/pip install -r requirements.txt",
        ".venv/bin/python infer.py path/to/images --out results.json --overlay overlays/",
        "```",
        "",
        "`infer.py` prints the instances found in each image; `--out` writes them as JSON",
        "(class, score, box in image pixels, mask as COCO RLE), `--overlay` draws them.",
        "`--precision f32` runs the floating-point layers at f32 on CPUs whose default is bf16.",
        "",
        "## Files",
        "",
        "- `model/` the OpenVINO IR; `parent/` the parent's IR when included",
        "- `segtui_runtime/` segtui's pre/post-processing for this format, unchanged but for",
        "  its imports, so results match segtui's",
        "- `config.json` format, input shapes, classes, thresholds and where the model came from",
        "- `classes.txt`, `requirements.txt` (the runtime, pinned)",
        "",
    ]
    return "\n".join(lines)


@dataclass(frozen=True)
class DeployPlan:
    """What a package will hold, checked and resolved from the workspace (no files written)."""

    out: Path
    top: str
    members: list[tuple[str, bytes | Path]]
    with_parent: bool
    overwrite: bool = False


#: Where a package goes unless told otherwise: the workspace's deploy/ folder, never the
#: current folder (run from a checkout, a package there would be an untracked file in it).
DEPLOY_DIR = "deploy"


def default_package_path(project_name: str, folder: Path) -> Path:
    return folder / f"segtui-deploy-{_slug(project_name)}.tar.gz"


def default_deploy_dir(ws: Workspace) -> Path:
    """The folder packages go to by default: <workspace>/deploy/."""
    return ws.root / DEPLOY_DIR


def default_output(ws: Workspace, project_id: int) -> Path:
    """Where the project's package goes by default: <workspace>/deploy/segtui-deploy-NAME.tar.gz."""
    return default_package_path(ws.project(project_id).name, default_deploy_dir(ws))


def _made_default_dir(ws: Workspace, out: Path) -> None:
    """Create the workspace's deploy/ folder when the package goes there (owner-only, as the
    workspace's folders are); any other folder must exist already."""
    folder = default_deploy_dir(ws)
    if out.parent != folder or folder.is_dir():
        return
    try:
        private_dir(folder)
    except OSError as exc:
        raise write_error(folder, exc) from exc


def plan_deployment(
    ws: Workspace,
    project_id: int,
    out: Path | None = None,
    *,
    with_parent: bool = False,
    score_threshold: float = DEPLOY.threshold.default,
    overwrite: bool = False,
) -> DeployPlan:
    """Check the request and gather the package's contents; refuse to overwrite unless asked.

    Without `out` the package goes to the workspace's deploy/ folder (created if need be).
    """
    project = ws.project(project_id)
    record = ws.model(project.model_id)
    top = f"segtui-deploy-{_slug(project.name)}"
    out = Path(out).expanduser() if out is not None else default_output(ws, project_id)
    if out.is_dir():
        out = default_package_path(project.name, out)
    DEPLOY.threshold.check(score_threshold)  # a SettingError names the range
    parent_record = None
    if with_parent:
        if project.parent_id is None:
            raise SegtuiError(
                f"Project {project.name!r} has no parent model to include.",
                "Leave out --with-parent, or deploy an optimized (child) project.",
            )
        parent_record = ws.model(ws.project(project.parent_id).model_id)
    _made_default_dir(ws, out)  # after the refusals that need no folder: they leave none
    check_output_path(out)  # a missing folder, a link or a folder at `out`: refused up front
    if out.exists() and not overwrite:
        raise SegtuiError(
            f"{out} already exists.",
            "Choose another file name, or remove it first (segtui deploy --force overwrites).",
        )

    config: PackageConfig = {
        "segtui_version": __version__,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "project": {"id": project.id, "name": project.name},
        "format": record.analysis.get("format", record.format_id),
        "format_id": record.format_id,
        "device": project.device,
        "score_threshold": score_threshold,
        "class_names": record.class_names,
        "model": _model_entry(record, "model"),
        "parent": _model_entry(parent_record, "parent") if parent_record else None,
    }
    members: list[tuple[str, bytes | Path]] = [
        ("infer.py", INFER_SCRIPT.encode()),
        ("config.json", (json.dumps(config, indent=2) + "\n").encode()),
        ("classes.txt", ("\n".join(record.class_names) + "\n").encode()),
        ("requirements.txt", ("\n".join(_pins()) + "\n").encode()),
        ("README.md", _readme(project.name, config, top).encode()),
    ]
    for folder, model in (("model", record), ("parent", parent_record)):
        if model is not None:
            members += [
                (f"{folder}/model.xml", _stored_file(ws, model.xml_path)),
                (f"{folder}/model.bin", _stored_file(ws, model.xml_path.with_suffix(".bin"))),
            ]
    members += [(f"segtui_runtime/{n}", t.encode()) for n, t in runtime_sources().items()]
    return DeployPlan(out, top, members, parent_record is not None, overwrite)


def _tampered(path: Path) -> SegtuiError:
    return SegtuiError(
        f"Model file {path} is not a regular file inside the workspace.",
        "segtui packages only the files it stored: import the model again.",
    )


def _stored_file(ws: Workspace, path: Path) -> Path:
    """`path`, checked to be a regular file (not a link) inside the workspace's models."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        raise SegtuiError(
            f"Model file {path} is missing from the workspace.", "Import the model again."
        ) from None
    models = (ws.root / "models").resolve()
    if not stat.S_ISREG(info.st_mode) or not path.resolve().is_relative_to(models):
        raise _tampered(path)
    return path


def _add_stored_file(tar: tarfile.TarFile, info: tarfile.TarInfo, path: Path) -> None:
    # O_NOFOLLOW: a link swapped in since the plan is refused, not followed.
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        raise SegtuiError(
            f"Model file {path} is missing from the workspace.", "Import the model again."
        ) from None
    except OSError as exc:
        raise _tampered(path) from exc
    with os.fdopen(fd, "rb") as handle:
        size = os.fstat(fd)
        if not stat.S_ISREG(size.st_mode):
            raise _tampered(path)
        info.size = size.st_size
        tar.addfile(info, handle)


def write_deployment(plan: DeployPlan) -> DeployResult:
    """Write the planned package atomically (see safe_files: no partial file stays behind)."""
    out = plan.out
    with safe_output(out, overwrite=plan.overwrite) as package:
        with tarfile.open(fileobj=package, mode="w:gz") as tar:
            for name, source in plan.members:
                info = tarfile.TarInfo(f"{plan.top}/{name}")
                info.mtime = int(time.time())
                info.mode = 0o755 if name == "infer.py" else 0o644
                if isinstance(source, Path):
                    _add_stored_file(tar, info, source)
                else:
                    info.size = len(source)
                    tar.addfile(info, io.BytesIO(source))
        size = package.tell()
    return DeployResult(out, size, [name for name, _ in plan.members], plan.with_parent)


def build_deployment(
    ws: Workspace,
    project_id: int,
    out: Path | None = None,
    *,
    with_parent: bool = False,
    score_threshold: float = DEPLOY.threshold.default,
    overwrite: bool = False,
) -> DeployResult:
    """Write the project's deployment package (see the module docstring)."""
    plan = plan_deployment(
        ws,
        project_id,
        out,
        with_parent=with_parent,
        score_threshold=score_threshold,
        overwrite=overwrite,
    )
    return write_deployment(plan)
