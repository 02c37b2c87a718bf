"""The create-project screen, driven with keys as a user would."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from pilot_wait import until
from textual.pilot import Pilot
from textual.widgets import Button, Static
from tiny_models import build_classifier, build_omz_maskrcnn

from segtui.core.errors import UnsupportedModelError
from segtui.core.models import load_model
from segtui.core.progress import CancelToken
from segtui.core.workspace import Workspace
from segtui.ui.app import SegtuiApp
from segtui.ui.screens import create_project as create_project_module
from segtui.ui.screens.create_project import CreateProjectScreen
from segtui.ui.screens.project import ProjectScreen
from segtui.ui.screens.start import StartScreen
from segtui.ui.widgets.path_field import PathField
from segtui.ui.widgets.property_table import PropertyTable


def _text(widget: Static) -> str:
    return str(widget.content)


async def _fill(pilot: Pilot[None], model: str, dataset: str) -> None:
    """Fill the two path fields directly (typing them is covered by the tests above)."""
    screen = pilot.app.screen
    screen.query_one("#model-field", PathField).input.value = model
    screen.query_one("#dataset-field", PathField).input.value = dataset
    await pilot.pause()


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # Short relative paths keep the typing quick; users type them too.
    monkeypatch.chdir(tmp_path)
    return tmp_path


async def test_create_project_through_the_form(
    workspace: Workspace, image_folder: Path, in_tmp: Path
) -> None:
    build_omz_maskrcnn(in_tmp / "m" / "model.xml")
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("n")
        await pilot.pause()
        assert isinstance(app.screen, CreateProjectScreen)
        await pilot.press(*"m/model.xml", "tab", *image_folder.name)
        await pilot.pause(0.3)
        model_field = app.screen.query_one("#model-field", PathField)
        dataset_field = app.screen.query_one("#dataset-field", PathField)
        assert model_field.check.text == "✓ OpenVINO IR (model.xml + model.bin)"
        assert dataset_field.check.text == "✓ folder with 3 images (not annotated)"
        assert dataset_field.input.has_class("-valid")
        await pilot.press("ctrl+s")
        await app.workers.wait_for_complete()
        # The project page reads the workspace in a worker of its own.
        await until(pilot, lambda: isinstance(app.screen, ProjectScreen) and bool(app.screen.page))

        projects = workspace.projects()
        assert len(projects) == 1
        model = workspace.model(projects[0].model_id)
        model_info = app.screen.query_one("#model-info", PropertyTable)
        assert model_info.value_of("Format id") == model.format_id
        assert model_info.value_of("Format") == model.analysis["format"]
        assert model.format_id == "omz-maskrcnn"
        assert model_info.value_of("Format") == "OMZ Mask R-CNN (instance-segmentation-security)"
        assert _text(app.screen.query_one("#cell-model", Static)) == "model\nOMZ Mask R-CNN"
        assert "3 images" in _text(app.screen.query_one("#cell-dataset", Static))
        await pilot.press("2")
        dataset_info = app.screen.query_one("#dataset-info", PropertyTable)
        assert dataset_info.value_of("Images") == "3"
        assert dataset_info.value_of("Type") == "Not annotated (images only)"
        # Escape goes back to the start screen (the form was replaced), which lists the project.
        await pilot.press("escape")
        start = app.screen
        assert isinstance(start, StartScreen)
        await until(pilot, lambda: start.loaded)
        assert list(start.rows) == [projects[0].id]


async def test_bad_paths_say_why_and_create_nothing(workspace: Workspace, in_tmp: Path) -> None:
    (in_tmp / "lonely.xml").write_text("<net><layers/></net>")
    (in_tmp / "empty").mkdir()
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("n")
        await pilot.pause()
        await pilot.press(*"nope.xml", "tab", *"empty")
        await pilot.pause(0.3)
        screen = app.screen
        model_field = screen.query_one("#model-field", PathField)
        dataset_field = screen.query_one("#dataset-field", PathField)
        assert model_field.check.text == "✗ no such file"
        assert _text(model_field.query_one(".field-message", Static)) == "✗ no such file"
        assert model_field.input.has_class("-invalid")
        assert dataset_field.check.text == "✗ no images in this folder"

        await pilot.press("shift+tab", "ctrl+a", "ctrl+k", *"lonely.xml")
        await pilot.pause(0.3)
        assert model_field.check.text == "✗ lonely.bin missing beside lonely.xml"

        await pilot.press("ctrl+s")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(app.screen, CreateProjectScreen)
        error = _text(app.screen.query_one("#error", Static))
        assert "✗ Model: lonely.bin missing beside lonely.xml" in error
        assert "✗ Dataset: no images in this folder" in error
    assert workspace.projects() == []
    assert workspace.models() == []
    assert workspace.datasets() == []


async def test_classifier_is_refused_inline_without_traceback(
    workspace: Workspace, image_folder: Path, in_tmp: Path
) -> None:
    model_path = build_classifier(in_tmp / "c" / "cls.xml")
    with pytest.raises(UnsupportedModelError) as refused:
        load_model(model_path)
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("n")
        await pilot.pause()
        await pilot.press(*"c/cls.xml", "tab", *image_folder.name, "ctrl+s")
        # Under load the worker may start late: wait for the message, not a fixed time.
        for _ in range(100):
            await app.workers.wait_for_complete()
            await pilot.pause(0.1)
            if _text(app.screen.query_one("#error", Static)).startswith("✗"):
                break
        screen = app.screen
        assert isinstance(screen, CreateProjectScreen)
        error = _text(screen.query_one("#error", Static))
        assert error.startswith(f"✗ {refused.value.message}")
        assert refused.value.hint in error
        assert "Traceback" not in error
        notes = [n.message for n in app._notifications]
        assert len(notes) == 1 and notes[0].splitlines()[0] in error
        # The form stays filled so the user can fix the path.
        assert screen.query_one("#model-field", PathField).value == "c/cls.xml"
        assert screen.query_one("#dataset-field", PathField).value == image_folder.name
    assert workspace.projects() == []
    assert workspace.models() == []
    assert workspace.datasets() == []


async def test_escape_while_importing_cancels_and_keeps_the_form(
    workspace: Workspace, image_folder: Path, in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build_omz_maskrcnn(in_tmp / "m" / "model.xml")
    started = threading.Event()

    def slow_create(ws: Workspace, *, cancel: CancelToken, **_kwargs: object) -> None:
        started.set()
        while not cancel.cancelled:
            time.sleep(0.01)
        cancel.raise_if_cancelled()

    monkeypatch.setattr(create_project_module, "create_project_from_paths", slow_create)
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("n")
        await _fill(pilot, "m/model.xml", image_folder.name)
        await pilot.press("ctrl+s")
        assert started.wait(5)
        screen = app.screen
        assert isinstance(screen, CreateProjectScreen)
        assert screen.query_one("#running").display
        assert screen.query_one("#create", Button).disabled
        await pilot.press("escape")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.screen is screen
        assert _text(screen.query_one("#error", Static)) == "✗ Cancelled."
        assert not screen.query_one("#running").display
        assert not screen.query_one("#create", Button).disabled
        await pilot.press("escape")
        assert type(app.screen).__name__ == "StartScreen"
    assert workspace.projects() == []


async def test_unexpected_error_is_a_notification_not_a_crash(
    workspace: Workspace, image_folder: Path, in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build_omz_maskrcnn(in_tmp / "m" / "model.xml")

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(create_project_module, "create_project_from_paths", broken)
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("n")
        await _fill(pilot, "m/model.xml", image_folder.name)
        await pilot.press("ctrl+s")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(app.screen, CreateProjectScreen)
        assert "RuntimeError: disk on fire" in _text(app.screen.query_one("#error", Static))
        notes = list(app._notifications)
        assert [n.severity for n in notes] == ["error"]
        # The traceback is in a log file, whose path the notification gives.
        message, details = str(notes[0].message).split("\nDetails: ")
        assert message == "Unexpected error: RuntimeError: disk on fire"
        assert "RuntimeError: disk on fire" in Path(details).read_text()
