"""The model's accuracy settings form (project page, e): edit, check as you type, preview, save."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pilot_screens import opened, text_of
from pilot_wait import settle, until
from test_ui_performance import PARENT_RT, bench
from textual.pilot import Pilot
from textual.widgets import Input, Select, Static
from tiny_models import build_omz_maskrcnn_conv

from segtui.core.accuracy_settings import Origin, configure_model, model_settings, settings_preview
from segtui.core.predictions import Instance, encode_mask
from segtui.core.projects import create_project_from_paths
from segtui.core.workspace import ProjectRecord, Workspace
from segtui.ui.app import SegtuiApp
from segtui.ui.screens import model_settings_preview
from segtui.ui.screens.help import binding_rows
from segtui.ui.screens.model_settings import ModelSettingsScreen
from segtui.ui.screens.model_settings_preview import legend_layout
from segtui.ui.screens.performance import PerformanceScreen
from segtui.ui.screens.project import ProjectScreen
from segtui.ui.widgets.settings_form import SettingsForm

SnapCompare = Any


@pytest.fixture
def project(workspace: Workspace, image_folder: Path, tmp_path: Path) -> ProjectRecord:
    """A project whose model computes from the pixels (so the colour order matters)."""
    model_path = build_omz_maskrcnn_conv(
        tmp_path / "m" / "model.xml", labels=["box", "disc", "ring"]
    )
    return create_project_from_paths(
        workspace, model_path=model_path, dataset_path=image_folder, name="Conv Mask R-CNN"
    )


async def settings_screen(pilot: Pilot[None], project_id: int) -> ModelSettingsScreen:
    """The project page, then e: the settings form, its first preview drawn."""
    page = await opened(pilot, ProjectScreen(project_id))
    await until(pilot, lambda: page.page is not None)
    await pilot.press("e")
    await until(pilot, lambda: isinstance(pilot.app.screen, ModelSettingsScreen))
    screen = pilot.app.screen
    assert isinstance(screen, ModelSettingsScreen)
    await drawn(pilot, screen)
    return screen


async def drawn(pilot: Pilot[None], screen: ModelSettingsScreen) -> int:
    """Until the preview the form asks for is drawn; how many drawings there were."""
    await until(pilot, lambda: screen.preview is not None and not screen.preview_busy)
    await settle(pilot)
    await until(pilot, lambda: not screen.preview_busy)
    return screen.preview_redraws


def form_of(screen: ModelSettingsScreen) -> SettingsForm:
    form = screen.form
    assert form is not None
    return form


def scores(instances: tuple[Instance, ...] | list[Instance]) -> list[float]:
    return [round(i.score, 6) for i in instances]


async def test_changing_the_colour_order_redraws_the_preview_and_ctrl_s_saves_it(
    workspace: Workspace, project: ProjectRecord
) -> None:
    model_id = project.model_id
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await settings_screen(pilot, project.id)
        count = screen.preview_redraws
        form = form_of(screen)
        assert form.keys[:2] == ("format", "channel_order")
        assert form.origin_text("channel_order") == "detected"
        first = screen.preview
        assert first is not None and screen.page is not None and screen.page.image is not None
        image = screen.page.image.path
        stored = model_settings(workspace, model_id)
        assert stored.values["channel_order"] == "BGR"
        # The before side is the model as stored, predicted by core on that image.
        assert scores(first.predictions.before) == scores(
            settings_preview(workspace, model_id, {}, image)
        )
        assert first.predictions.after == first.predictions.before

        # Tab to the colour order, open its list, pick RGB (the first choice).
        await pilot.press("tab")
        assert app.focused is form.query_one("#field-channel_order", Select)
        await pilot.press("enter", "home", "enter")
        await until(pilot, lambda: screen.preview_redraws > count)
        count = await drawn(pilot, screen)
        shown = screen.preview
        assert shown is not None
        assert dict(shown.request.changes) == {"channel_order": "RGB"}
        rgb = settings_preview(workspace, model_id, {"channel_order": "RGB"}, image)
        assert scores(shown.predictions.after) == scores(rgb)
        assert scores(shown.predictions.after) != scores(shown.predictions.before)
        assert shown.predictions.before == first.predictions.before  # not predicted again
        assert form.origin_text("channel_order") == "• edited"
        status = str(screen.query_one("#settings-status", Static).render())
        assert status == "1 change not saved: ctrl+s saves, escape drops it."
        # Nothing is stored until ctrl+s.
        assert model_settings(workspace, model_id).origins["channel_order"] == Origin.DETECTED

        await pilot.press("ctrl+s")
        await until(pilot, lambda: form_of(screen).origin_text("channel_order") == "set by you")
        saved = model_settings(workspace, model_id)
        assert saved.origins["channel_order"] == Origin.USER
        assert saved.values["channel_order"] == "RGB"
        assert saved.user_values() == {"channel_order": "RGB"}
        notes = [str(n.message) for n in app._notifications]
        assert any(n.startswith("Saved: Channel order RGB.") for n in notes), notes
        # The stored settings changed: the before side now runs with them.
        await until(pilot, lambda: screen.preview_redraws > count)
        await drawn(pilot, screen)
        after_save = screen.preview
        assert after_save is not None
        assert after_save.request.before_version == saved.version != stored.version
        assert scores(after_save.predictions.before) == scores(rgb)
        assert not after_save.request.changes


async def test_a_mean_of_two_numbers_is_shown_under_its_field_and_not_saved(
    workspace: Workspace, project: ProjectRecord
) -> None:
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await settings_screen(pilot, project.id)
        count = screen.preview_redraws
        form = form_of(screen)
        mean = form.query_one("#field-mean", Input)
        mean.focus()
        mean.value = ""
        await pilot.press("0", ",", "0")
        await settle(pilot)
        problem = form.query_one("#problem-mean", Static)
        assert problem.display
        text = str(problem.render())
        assert text.startswith("✗ needs 3 values, one per input channel"), text
        assert "(got 2: 0, 0)" in text
        assert mean.has_class("-invalid")
        assert screen.query_one("#settings-status", Static).has_class("-bad")
        await pilot.pause(0.5)  # past the preview's delay: an invalid value draws nothing
        assert screen.preview_redraws == count

        await pilot.press("ctrl+s")
        await settle(pilot)
        notes = [str(n.message) for n in app._notifications]
        assert any(n.startswith("Not saved: mean: needs 3 values") for n in notes), notes
        settings = model_settings(workspace, project.model_id)
        assert settings.origins["mean"] == Origin.DETECTED
        assert settings.user_values() == {}

        # Fixed, the problem goes and the preview runs with the new mean.
        await pilot.press(",", "1")
        await until(pilot, lambda: screen.preview_redraws > count)
        await drawn(pilot, screen)
        assert not problem.display
        assert screen.preview is not None
        assert dict(screen.preview.request.changes) == {"mean": "0,0,1"}


async def test_ctrl_r_puts_a_field_back_to_detected_and_escape_drops_edits(
    workspace: Workspace, project: ProjectRecord
) -> None:
    model_id = project.model_id
    configure_model(workspace, model_id, {"channel_order": "RGB", "score_threshold": "0.2"})
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await settings_screen(pilot, project.id)
        count = screen.preview_redraws
        form = form_of(screen)
        assert form.origin_text("channel_order") == "set by you"
        assert form.raw("channel_order") == "RGB"
        form.query_one("#field-channel_order", Select).focus()
        await pilot.press("ctrl+r")
        await settle(pilot)
        assert form.raw("channel_order") == "BGR"
        assert form.origin_text("channel_order") == "• detected"
        assert form.pending().resets == {"channel_order"}
        await until(pilot, lambda: screen.preview_redraws > count)
        await drawn(pilot, screen)
        assert screen.preview is not None
        assert screen.preview.request.resets == {"channel_order"}
        await pilot.press("ctrl+s")
        await until(pilot, lambda: form_of(screen).origin_text("channel_order") == "detected")
        settings = model_settings(workspace, model_id)
        assert settings.origins["channel_order"] == Origin.DETECTED
        assert settings.user_values() == {"score_threshold": 0.2}

        # An edit left unsaved is dropped by escape, without a question.
        threshold = form.query_one("#field-score_threshold", Input)
        threshold.focus()
        threshold.value = "0.4"
        await settle(pilot)
        assert form.origin_text("score_threshold") == "• edited"
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, ProjectScreen))
        assert model_settings(workspace, model_id).user_values() == {"score_threshold": 0.2}


async def test_a_model_whose_files_are_gone_is_said_so_on_the_screen(
    workspace: Workspace, project: ProjectRecord
) -> None:
    model = workspace.model(project.model_id)
    (model.dir / model.xml_name).unlink()
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await opened(pilot, ModelSettingsScreen(project.id))
        await until(pilot, lambda: bool(list(app._notifications)))
        await settle(pilot)
        status = str(screen.query_one("#settings-status", Static).render())
        assert status == f"✗ No such file: {model.dir / model.xml_name}."
        assert [n.severity for n in app._notifications] == ["error"]
        assert screen.form is None and screen.preview is None


async def test_ctrl_n_and_ctrl_b_walk_the_preview_through_the_datasets_images(
    workspace: Workspace, project: ProjectRecord
) -> None:
    model_id = project.model_id
    images = workspace.dataset_images(project.dataset_id)
    assert len(images) >= 2
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await settings_screen(pilot, project.id)
        page = screen.page
        assert page is not None and page.index == 0
        assert [i.name for i in page.images] == [i.path for i in images]
        intro = str(screen.query_one("#settings-intro", Static).render())
        assert f"preview: {images[0].path} (1/{len(images)})" in intro
        # The form has a pending edit: the after side runs with it on every image.
        count = screen.preview_redraws
        threshold = form_of(screen).query_one("#field-score_threshold", Input)
        threshold.focus()
        threshold.value = "0.5"
        await until(pilot, lambda: screen.preview_redraws > count)
        count = await drawn(pilot, screen)
        assert screen.preview is not None
        assert dict(screen.preview.request.changes) == {"score_threshold": "0.5"}

        await pilot.press("ctrl+n")  # in an Input: the key is not typed
        await until(pilot, lambda: screen.preview_redraws > count)
        count = await drawn(pilot, screen)
        assert form_of(screen).raw("score_threshold") == "0.5"
        assert screen.page is not None and screen.page.index == 1
        second = screen.page.images[1]
        assert second.name == images[1].path
        intro = str(screen.query_one("#settings-intro", Static).render())
        assert f"preview: {second.name} (2/{len(images)})" in intro
        shown = screen.preview
        assert shown is not None and shown.request.image == second
        assert shown.predictions.image == second
        # Both sides predicted on the new image: before as stored, after with the form's.
        before = settings_preview(workspace, model_id, {}, second.path)
        after = settings_preview(workspace, model_id, {"score_threshold": "0.5"}, second.path)
        assert scores(shown.predictions.before) == scores(before)
        assert scores(shown.predictions.after) == scores(after)

        await pilot.press("ctrl+b", "ctrl+b")  # back past the first: the last image
        await until(pilot, lambda: screen.preview_redraws > count)
        await drawn(pilot, screen)
        assert screen.page is not None and screen.page.index == len(images) - 1
        assert screen.preview is not None
        assert screen.preview.request.image.name == images[-1].path
        # F1 lists both keys as this screen's.
        listed = {desc: (keys, scope) for keys, desc, scope, _tip in binding_rows(app.screen)}
        assert listed["Next image"] == ("^n", "this screen")
        assert listed["Previous image"] == ("^b", "this screen")


def test_the_legend_goes_beside_a_square_image_and_under_a_wide_one() -> None:
    # A square image in a 38×9 panel: beside, it gets every row (18 px, not 14).
    beside = legend_layout((256, 256), (15, 5), 2, 38, 9)
    assert (beside.width, beside.rows, beside.image_size) == (15, 9, (18, 18))
    # A wide image in the same panel fills the columns with the legend under it.
    below = legend_layout((640, 160), (15, 5), 2, 38, 9)
    assert (below.width, below.rows, below.image_size) == (0, 2, (38, 10))
    # Nothing found: no legend beside.
    assert legend_layout((256, 256), (0, 0), 1, 38, 9).width == 0


def _fixed_instances(changes: Any, size: tuple[int, int]) -> list[Instance]:
    """Two rectangles (one fewer in RGB): the snapshot does not depend on inference."""
    height, width = size
    found = []
    count = 1 if dict(changes).get("channel_order") == "RGB" else 2
    for n in range(count):
        mask = np.zeros((height, width), np.uint8)
        mask[2 + 10 * n : 12 + 10 * n, 4 + 20 * n : 24 + 20 * n] = 1
        found.append(Instance(n, 0.9 - 0.2 * n, (4.0, 2.0, 24.0, 12.0), encode_mask(mask)))
    return found


def test_settings_form_80x24(
    snap_compare: SnapCompare,
    workspace: Workspace,
    project: ProjectRecord,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def fake_preview(
        ws: Workspace, model_id: int, changes: Any, image: Path, **_kw: Any
    ) -> list[Instance]:
        return _fixed_instances(changes, (48, 64))

    monkeypatch.setattr(model_settings_preview, "settings_preview", fake_preview)

    async def open_and_edit(pilot: Pilot[None]) -> None:
        await settings_screen(pilot, project.id)
        screen = pilot.app.screen
        assert isinstance(screen, ModelSettingsScreen)
        count = screen.preview_redraws
        await pilot.press("tab", "enter", "home", "enter")
        await until(pilot, lambda: screen.preview_redraws > count)
        await drawn(pilot, screen)

    app = SegtuiApp(workspace, register_sample=False)
    assert snap_compare(app, terminal_size=(80, 24), run_before=open_and_edit)


def test_the_model_tab_lists_the_users_values_above_the_detected_ones(
    workspace: Workspace, project: ProjectRecord
) -> None:
    from segtui.ui.screens.project_properties import model_properties

    def rows() -> dict[str, str]:
        return dict(model_properties(workspace.model(project.model_id)))

    assert "§Accuracy settings set by you (e edits them)" not in rows()
    assert "§Decoding settings as detected (e edits them)" in rows()
    configure_model(workspace, project.model_id, {"channel_order": "RGB", "scale": "255"})
    listed = model_properties(workspace.model(project.model_id))
    shown = [label for label, _value in listed]
    head = shown.index("§Accuracy settings set by you (e edits them)")
    (order, order_value), (scale, scale_value) = listed[head + 1 : head + 3]
    assert (order, order_value) == ("channel order", "RGB")
    assert scale == "scale" and "255" in scale_value
    # The detected section still says what detection found (BGR), below the user's values.
    detected = shown.index("§Decoding settings as detected (e edits them)")
    assert head < detected and dict(listed[detected:])["channel order"] == "BGR"


# -- staleness on the Performance screen (test_ui_performance.py is near 600 lines) ------


async def test_a_benchmark_made_with_other_accuracy_settings_is_marked_stale(
    workspace: Workspace, pair: tuple[ProjectRecord, ProjectRecord]
) -> None:
    parent, _ = pair
    model_id = parent.model_id
    version = model_settings(workspace, model_id).version
    for precision, recorded in (("f32", "0123456789ab"), ("bf16", version)):
        data = bench(precision, 4.0, 250.0, precision, PARENT_RT)
        data |= {"model_id": model_id, "accuracy_settings_version": recorded}
        workspace.add_result(project_id=parent.id, kind="benchmark", data=data)
    stale_id = workspace.results(parent.id)[0].id
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await opened(pilot, PerformanceScreen(parent.id))
        assert screen.page is not None and screen.page.stale == {"f32"}
        note = screen.query_one("#perf-stale")
        assert note.display
        assert text_of(screen, "#perf-stale") == (
            f"⚠ run {stale_id} (f32): the model's accuracy settings changed since (stale)"
        )

    # A change of the settings makes the run that was current stale as well.
    configure_model(workspace, model_id, {"channel_order": "RGB"})
    newer = model_settings(workspace, model_id).version
    assert newer != version
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await opened(pilot, PerformanceScreen(parent.id))
        assert screen.page is not None and screen.page.stale == {"f32", "bf16"}
        assert text_of(screen, "#perf-stale").startswith(f"⚠ runs {stale_id} (f32), ")


async def test_benchmarks_that_recorded_no_settings_are_not_marked(
    workspace: Workspace, pair: tuple[ProjectRecord, ProjectRecord]
) -> None:
    parent, _ = pair
    data = bench("f32", 4.0, 250.0, "f32", PARENT_RT) | {"model_id": parent.model_id}
    workspace.add_result(project_id=parent.id, kind="benchmark", data=data)
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await opened(pilot, PerformanceScreen(parent.id))
        assert screen.page is not None and screen.page.stale == frozenset()
        assert not screen.query_one("#perf-stale").display
        assert text_of(screen, "#perf-stale") == ""
