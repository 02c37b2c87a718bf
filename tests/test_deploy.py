"""Deployment package: a .tar.gz whose infer.py runs the model alone and decodes as segtui does."""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import signal
import stat
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from conftest import write_scene
from test_optimize import _project
from tiny_models import Det, build_omz_maskrcnn

from segtui.core import deploy, formats
from segtui.core.datasets import image_path
from segtui.core.deploy import build_deployment, plan_deployment, runtime_sources, write_deployment
from segtui.core.deploy_config import runtime_line
from segtui.core.errors import SegtuiError
from segtui.core.inference import run_inference
from segtui.core.models import load_registered
from segtui.core.optimize import OptimizeSettings, optimize_project
from segtui.core.projects import create_project_from_paths
from segtui.core.sample import ensure_sample
from segtui.core.workspace import ProjectRecord, Workspace


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
    # No sweep: OpenVINO's defaults, as infer.py always compiled with, and no source.
    assert config["runtime"] == {
        "hint": "LATENCY",
        "streams": None,
        "batch": 1,
        "precision": "default",
        "source": None,
    }
    assert "No sweep: defaults; run segtui sweep to tune." in (package / "README.md").read_text()
    assert runtime_line(result.runtime) == "runtime: defaults (no sweep)"
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
    assert done.stdout.splitlines()[0] == (
        "runtime: LATENCY, auto streams, batch 1, f32 precision: defaults (no sweep; run "
        "segtui sweep to tune); --precision from the command line"
    )
    assert done.stdout.splitlines()[1].startswith("compiled for CPU: ")
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
    # An OMZ Mask R-CNN is a single-image graph: asked for batch 2, infer.py says so.
    done = _infer(package, str(images), "--batch", "2")
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith("infer.py: this model cannot run with batch 2 (")
    assert done.stderr.rstrip().endswith("); use --batch 1")


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


# --- Written safely: never through a link, never half-written, clear refusals -------------

VICTIM = b"precious: must never change\n"


def _partials(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*.partial") if not p.is_symlink())


@pytest.fixture
def tiny(workspace: Workspace, tmp_path: Path) -> ProjectRecord:
    return _project(workspace, tmp_path / "src", images=2)


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    path = tmp_path / "victim.txt"
    path.write_bytes(VICTIM)
    return path


def _package_names(path: Path) -> list[str]:
    assert stat.S_ISREG(path.lstat().st_mode)
    with tarfile.open(path) as tar:
        return [n.split("/", 1)[1] for n in tar.getnames()]


@pytest.mark.parametrize("planted", ["link to the victim", "dangling link", "link to a folder"])
def test_a_link_at_the_old_partial_name_is_never_written_through(
    planted: str, workspace: Workspace, tiny: ProjectRecord, tmp_path: Path, victim: Path
) -> None:
    out = tmp_path / "new.tar.gz"
    link = tmp_path / ".new.tar.gz.partial"  # the name deploy used to write to
    pointed = {
        "link to the victim": victim,
        "dangling link": tmp_path / "created-through-the-link",
        "link to a folder": workspace.root,
    }[planted]
    link.symlink_to(pointed)
    result = build_deployment(workspace, tiny.id, out)
    assert victim.read_bytes() == VICTIM
    assert not (tmp_path / "created-through-the-link").exists()
    assert "model/model.bin" in _package_names(out) and result.size_bytes == out.stat().st_size
    assert os.readlink(link) == str(pointed) and _partials(tmp_path) == []


@pytest.mark.parametrize("force", [False, True])
def test_a_link_at_the_package_path_is_refused(
    force: bool, workspace: Workspace, tiny: ProjectRecord, tmp_path: Path, victim: Path
) -> None:
    out = tmp_path / "new.tar.gz"
    out.symlink_to(victim)
    with pytest.raises(SegtuiError, match=r"new\.tar\.gz is a symbolic link") as raised:
        build_deployment(workspace, tiny.id, out, overwrite=force)
    assert raised.value.hint == "Remove the link, or choose another file name."
    assert victim.read_bytes() == VICTIM and os.readlink(out) == str(victim)
    assert _partials(tmp_path) == []


def _bin_links_to_victim(bin_path: Path, victim: Path) -> None:
    bin_path.unlink()
    bin_path.symlink_to(victim)


def _folder_links_out(bin_path: Path, victim: Path) -> None:
    folder = bin_path.parent
    outside = victim.parent / "elsewhere"
    shutil.copytree(folder, outside)
    shutil.rmtree(folder)
    folder.symlink_to(outside)


STAGING_REFUSALS = {
    "model.bin is a link": (_bin_links_to_victim, "is not a regular file inside the workspace"),
    "model folder links out": (_folder_links_out, "is not a regular file inside the workspace"),
    "model.bin is missing": (lambda b, _v: b.unlink(), "is missing from the workspace"),
}


@pytest.mark.parametrize("case", list(STAGING_REFUSALS))
def test_staging_never_follows_a_link_out_of_the_workspace(
    case: str, workspace: Workspace, tiny: ProjectRecord, tmp_path: Path, victim: Path
) -> None:
    bin_path = workspace.model(tiny.model_id).xml_path.with_suffix(".bin")
    tamper, message = STAGING_REFUSALS[case]
    tamper(bin_path, victim)
    out = tmp_path / "new.tar.gz"
    folder = re.escape(str(bin_path.parent))
    with pytest.raises(SegtuiError, match=rf"Model file {folder}/model\.(xml|bin) {message}"):
        build_deployment(workspace, tiny.id, out)
    assert not out.exists() and _partials(tmp_path) == [] and victim.read_bytes() == VICTIM


def test_a_link_swapped_in_after_the_plan_is_refused_while_writing(
    workspace: Workspace, tiny: ProjectRecord, tmp_path: Path, victim: Path
) -> None:
    plan = plan_deployment(workspace, tiny.id, tmp_path / "new.tar.gz")
    _bin_links_to_victim(workspace.model(tiny.model_id).xml_path.with_suffix(".bin"), victim)
    with pytest.raises(SegtuiError, match="is not a regular file inside the workspace"):
        write_deployment(plan)
    assert not plan.out.exists() and _partials(tmp_path) == []


def test_runtime_modules_never_lead_out_of_segtui_core() -> None:
    modules = deploy.runtime_modules()
    core = Path(deploy.__file__).resolve().parent
    assert len(modules) >= 12
    assert all(p.resolve().is_relative_to(core) and not p.is_symlink() for p in modules.values())


def _segtui(
    workspace: Path, *args: str, file_limit: int | None = None
) -> subprocess.CompletedProcess[str]:
    """The installed console script, as a user runs it (optionally with a file-size limit)."""

    def limit() -> None:
        # Ignored, SIGXFSZ lets a write past the limit fail with EFBIG, as a full disk would.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        assert file_limit is not None
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_limit, file_limit))

    script = Path(sys.executable).with_name("segtui")
    return subprocess.run(
        [str(script), *args, "--workspace", str(workspace)],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=limit if file_limit else None,
    )


def test_cli_refuses_a_link_planted_at_the_package(
    workspace: Workspace, tiny: ProjectRecord, tmp_path: Path, victim: Path
) -> None:
    out = tmp_path / "new.tar.gz"
    out.symlink_to(victim)
    (tmp_path / ".new.tar.gz.partial").symlink_to(victim)
    workspace.close()
    done = _segtui(workspace.root, "deploy", str(tiny.id), "--out", str(out), "--force")
    assert done.returncode == 1 and done.stdout == ""
    assert "Traceback" not in done.stderr
    assert done.stderr.strip() == (
        f"segtui: error: {out} is a symbolic link; segtui never writes through a link. "
        "Remove the link, or choose another file name."
    )
    assert victim.read_bytes() == VICTIM and os.readlink(out) == str(victim)
    out.unlink()
    done = _segtui(workspace.root, "deploy", str(tiny.id), "--out", str(out))
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert victim.read_bytes() == VICTIM and "infer.py" in _package_names(out)
    assert _partials(tmp_path) == []


def test_cli_on_a_full_disk_names_it_and_leaves_no_partial(
    workspace: Workspace, tmp_path: Path
) -> None:
    # Many long class names: a package well over the limit, a workspace that still opens.
    labels = [f"class-{n:04d}-{os.urandom(12).hex()}" for n in range(1500)]
    model = build_omz_maskrcnn(
        tmp_path / "m" / "model.xml",
        input_hw=(48, 64),
        detections=[Det(1, 0.9, (16.0, 12.0, 48.0, 36.0), "full")],
        labels=labels,
    )
    write_scene(tmp_path / "images" / "a.png", (48, 64), 1)
    project = create_project_from_paths(
        workspace, model_path=model, dataset_path=tmp_path / "images", name="big"
    )
    workspace.close()
    out = tmp_path / "pkg" / "new.tar.gz"
    out.parent.mkdir()
    done = _segtui(
        workspace.root, "deploy", str(project.id), "--out", str(out), file_limit=48 * 1024
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip() == (
        f"Writing {out}\n"
        f"segtui: error: Could not write {out}: the disk is full or the file is too large "
        f"for it. Free some space in {out.parent}, or choose a folder on another disk, and "
        "try again."
    )
    assert list(out.parent.iterdir()) == []
    done = _segtui(workspace.root, "deploy", str(project.id), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert out.stat().st_size > 48 * 1024 and list(out.parent.iterdir()) == [out]


def test_the_default_package_goes_to_the_workspace_deploy_folder_never_the_current_one(
    workspace: Workspace, tiny: ProjectRecord, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    here = tmp_path / "checkout"
    here.mkdir()
    monkeypatch.chdir(here)
    expected = workspace.root / "deploy" / "segtui-deploy-tiny-conv.tar.gz"
    assert deploy.default_output(workspace, tiny.id) == expected
    with pytest.raises(SegtuiError, match="has no parent model"):
        build_deployment(workspace, tiny.id, with_parent=True)
    assert not expected.parent.exists()  # a refusal leaves no folder; a package makes it
    result = build_deployment(workspace, tiny.id)
    assert result.path == expected and "infer.py" in _package_names(expected)
    assert stat.S_IMODE(expected.parent.stat().st_mode) == 0o700  # as the workspace's folders
    assert list(here.iterdir()) == []
    with pytest.raises(SegtuiError, match="already exists"):
        build_deployment(workspace, tiny.id)
    # A folder of the user's is not created for them: it must be there.
    with pytest.raises(SegtuiError, match=r"Folder .*missing does not exist"):
        build_deployment(workspace, tiny.id, tmp_path / "missing" / "p.tar.gz")


def test_cli_says_where_the_package_goes_before_writing_it(
    workspace: Workspace, tiny: ProjectRecord, tmp_path: Path
) -> None:
    workspace.close()
    expected = workspace.root / "deploy" / "segtui-deploy-tiny-conv.tar.gz"
    done = _segtui(workspace.root, "deploy", str(tiny.id))
    assert done.returncode == 0, done.stderr
    assert done.stderr == f"Writing {expected}\n"
    assert done.stdout.startswith(f"Deployment package for project {tiny.id}: {expected} (")
    assert done.stdout.splitlines()[-1] == "runtime: defaults (no sweep)"
    assert "infer.py" in _package_names(expected)
    # Refused before writing: nothing said about writing.
    done = _segtui(workspace.root, "deploy", str(tiny.id))
    assert done.returncode == 1 and "Writing" not in done.stderr
    assert done.stderr.startswith(f"segtui: error: {expected} already exists.")
    done = _segtui(workspace.root, "deploy", "--help")
    assert "WORKSPACE/deploy/segtui-deploy-NAME.tar.gz" in " ".join(done.stdout.split())
