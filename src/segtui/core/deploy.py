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
* ``config.json`` — format, input shapes, class names, thresholds, provenance, and the
  runtime configuration infer.py compiles with (the project's latest sweep's best, see
  ``deploy_config``);
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

from segtui import __version__
from segtui.core.deploy_config import (
    TIME_FORMAT,
    PackageConfig,
    PackagedRuntime,
    model_entry,
    readme,
    recommended_runtime,
)
from segtui.core.deploy_infer import INFER_SCRIPT
from segtui.core.errors import SegtuiError
from segtui.core.records import JsonObject
from segtui.core.safe_files import check_output_path, safe_output, write_error
from segtui.core.settings import DEPLOY
from segtui.core.storage import private_dir
from segtui.core.workspace import Workspace

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


@dataclass(frozen=True)
class DeployResult:
    path: Path
    size_bytes: int
    files: list[str]
    with_parent: bool
    runtime: PackagedRuntime

    def to_json(self) -> JsonObject:
        return {
            "path": str(self.path),
            "size_bytes": self.size_bytes,
            "files": self.files,
            "with_parent": self.with_parent,
            "runtime": self.runtime,
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


@dataclass(frozen=True)
class DeployPlan:
    """What a package will hold, checked and resolved from the workspace (no files written)."""

    out: Path
    top: str
    members: list[tuple[str, bytes | Path]]
    with_parent: bool
    runtime: PackagedRuntime
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

    # The model files are checked before config.json reads the graphs (their settings).
    model_files: list[tuple[str, bytes | Path]] = []
    for folder, model in (("model", record), ("parent", parent_record)):
        if model is not None:
            model_files += [
                (f"{folder}/model.xml", _stored_file(ws, model.xml_path)),
                (f"{folder}/model.bin", _stored_file(ws, model.xml_path.with_suffix(".bin"))),
            ]
            # Ultralytics and the Model API load an exported YOLO IR with its metadata.yaml.
            meta = model.xml_path.parent / "metadata.yaml"
            if meta.is_file():
                model_files.append((f"{folder}/metadata.yaml", _stored_file(ws, meta)))
    config: PackageConfig = {
        "segtui_version": __version__,
        "created_at": time.strftime(TIME_FORMAT),
        "project": {"id": project.id, "name": project.name},
        "format": record.analysis.get("format", record.format_id),
        "format_id": record.format_id,
        "device": project.device,
        "score_threshold": score_threshold,
        "class_names": record.class_names,
        "model": model_entry(record, "model"),
        "parent": model_entry(parent_record, "parent") if parent_record else None,
        "runtime": recommended_runtime(ws, project.id),
    }
    members: list[tuple[str, bytes | Path]] = [
        ("infer.py", INFER_SCRIPT.encode()),
        ("config.json", (json.dumps(config, indent=2) + "\n").encode()),
        ("classes.txt", ("\n".join(record.class_names) + "\n").encode()),
        ("requirements.txt", ("\n".join(_pins()) + "\n").encode()),
        ("README.md", readme(project.name, config, top).encode()),
    ]
    members += model_files
    members += [(f"segtui_runtime/{n}", t.encode()) for n, t in runtime_sources().items()]
    return DeployPlan(out, top, members, parent_record is not None, config["runtime"], overwrite)


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
    files = [name for name, _ in plan.members]
    return DeployResult(out, size, files, plan.with_parent, plan.runtime)


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
