"""Deployment package: a .tar.gz whose infer.py runs the model alone and decodes as segtui does."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from test_optimize import _project

from segtui.core import deploy, formats
from segtui.core.datasets import image_path
from segtui.core.deploy import build_deployment, runtime_sources
from segtui.core.errors import SegtuiError
from segtui.core.inference import run_inference
from segtui.core.models import load_registered
from segtui.core.optimize import OptimizeSettings, optimize_project
from segtui.core.sample import ensure_sample
from segtui.core.workspace import Workspace


def _extract(archive: Path, into: Path) -> Path:
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        top = names[0].split("/")[0]
        # One top folder, nothing absolute or climbing out of it.
        assert all(n.startswith(top + "/") and ".." not in n.split("/") for n in names), names
        tar.extractall(into, filter="data")
    return into / top


def _infer(package: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # -I: isolated mode, and run from elsewhere: the script finds its own files.
    return subprocess.run(
        [sys.executable, "-I", str(package / "infer.py"), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=package.parent,
    )


def test_sample_package_runs_alone_and_matches_segtui(workspace: Workspace, tmp_path: Path) -> None:
    projects = ensure_sample(workspace)
    assert projects is not None
    project = projects.annotated
    result = build_deployment(workspace, project.id, tmp_path)
    assert result.path == tmp_path / "segtui-deploy-sample-shapes-annotated.tar.gz"
    package = _extract(result.path, tmp_path / "x")
    for name in ("infer.py", "config.json", "classes.txt", "requirements.txt", "README.md"):
        assert (package / name).is_file(), name
    config = json.loads((package / "config.json").read_text())
    assert config["format_id"] == "omz-maskrcnn" and config["parent"] is None
    assert config["model"]["input_shapes"] == {"image": [1, 3, 256, 256]}
    assert (package / "classes.txt").read_text().split() == [
        "circle",
        "square",
        "triangle",
        "star",
        "hexagon",
        "ring",
    ]
    requirements = (package / "requirements.txt").read_text().split()
    assert "openvino==2026.4.1" in requirements and "pycocotools==2.0.11" in requirements
    runtime_files = sorted((package / "segtui_runtime").rglob("*.py"))
    assert {p.relative_to(package / "segtui_runtime").as_posix() for p in runtime_files} == set(
        runtime_sources()
    )
    runtime = "".join(p.read_text() for p in runtime_files)
    assert "segtui.core" not in runtime and "from segtui_runtime.predictions import" in runtime

    dataset = workspace.dataset(project.dataset_id)
    images = [
        im
        for im in workspace.dataset_images(dataset.id)
        if im.path in ("val_0019.jpg", "val_0013.jpg")
    ]
    paths = [image_path(dataset, im) for im in images]
    done = _infer(
        package, *map(str, paths), "--out", str(tmp_path / "r.json"), "--precision", "f32"
    )
    assert done.returncode == 0, done.stderr
    assert "val_0019.jpg: 6 instances (" in done.stdout
    written = json.loads((tmp_path / "r.json").read_text())
    assert written["threshold"] == 0.5

    loaded = load_registered(workspace.model(project.model_id))
    direct = run_inference(
        loaded.model, loaded.adapter, [(im.path, p) for im, p in zip(images, paths, strict=True)]
    )
    for image, prediction in zip(written["images"], direct.predictions, strict=True):
        expected = prediction.above(0.5)
        assert [i["class_id"] for i in image["instances"]] == [i.class_id for i in expected]
        for got, want in zip(image["instances"], expected, strict=True):
            assert got["box"] == pytest.approx(list(want.box), abs=1e-3)
            assert got["rle"] == want.rle
            assert got["class_name"] == loaded.adapter.class_names[want.class_id]


def test_child_package_carries_its_parent_and_bad_requests_are_refused(
    workspace: Workspace, tmp_path: Path
) -> None:
    parent = _project(workspace, tmp_path, images=3)
    child = optimize_project(workspace, parent.id, OptimizeSettings(), tmp_path / "work")
    before = sorted(p.relative_to(workspace.root) for p in workspace.root.rglob("*"))

    with pytest.raises(SegtuiError, match="has no parent model"):
        build_deployment(workspace, parent.id, tmp_path, with_parent=True)
    with pytest.raises(SegtuiError, match="does not exist"):
        build_deployment(workspace, child.id, tmp_path / "missing" / "p.tar.gz")
    out = tmp_path / "pkg.tar.gz"
    result = build_deployment(workspace, child.id, out, with_parent=True, score_threshold=0.3)
    assert result.with_parent and "parent/model.xml" in result.files
    package = _extract(out, tmp_path / "x")
    config = json.loads((package / "config.json").read_text())
    assert config["model"]["int8"] and not config["parent"]["int8"]
    assert config["score_threshold"] == 0.3
    with pytest.raises(SegtuiError, match="already exists"):
        build_deployment(workspace, child.id, out)
    again = build_deployment(workspace, child.id, out, overwrite=True)
    assert again.path == out and not again.with_parent and again.size_bytes < result.size_bytes
    assert not list(tmp_path.glob(".*.partial"))
    # Building packages leaves the workspace as it was.
    assert sorted(p.relative_to(workspace.root) for p in workspace.root.rglob("*")) == before

    images = workspace.dataset(parent.dataset_id).root
    for extra in ([], ["--parent"]):
        done = _infer(package, str(images), *extra, "--out", str(tmp_path / "r.json"))
        assert done.returncode == 0, done.stderr
        assert len(json.loads((tmp_path / "r.json").read_text())["images"]) == 3
    done = _infer(package, str(tmp_path / "nothing-here"))
    assert done.returncode != 0 and "no such file or folder" in done.stderr


def test_runtime_is_the_formats_package_and_what_it_imports_and_stands_alone(
    tmp_path: Path,
) -> None:
    sources = runtime_sources()
    package_modules = {f"formats/{p.name}" for p in Path(formats.__file__).parent.glob("*.py")}
    assert len(package_modules) >= 10
    assert package_modules | {"__init__.py", "errors.py", "predictions.py"} <= set(sources)
    assert not [name for name, text in sources.items() if "segtui.core" in text]
    assert "from segtui_runtime.formats.detect import" in sources["formats/__init__.py"]
    # Written out and imported in isolation, it loads no segtui module at all.
    for name, text in sources.items():
        target = tmp_path / "segtui_runtime" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    code = (
        f"import sys; sys.path.insert(0, {str(tmp_path)!r}); "
        "from segtui_runtime.formats import detect_format; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'segtui'))"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-c", code], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_runtime_refuses_imports_a_package_cannot_carry(monkeypatch: pytest.MonkeyPatch) -> None:
    # deploy.py imports segtui itself (its version): not a module the runtime can carry.
    with pytest.raises(RuntimeError, match=r"segtui\.core\.deploy imports segtui: .* only"):
        runtime_sources("segtui.core.deploy")
    # A third-party import must be pinned in requirements.txt.
    monkeypatch.delitem(deploy.RUNTIME_REQUIREMENTS, "yaml")
    with pytest.raises(RuntimeError, match=r"formats\.metadata imports yaml, .*requirements"):
        runtime_sources()
