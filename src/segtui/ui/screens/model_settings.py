"""A model's accuracy settings, edited from the project page (`e`): a form with a preview.

The form (`SettingsForm`) has one row per setting of the model's format, with where its
value comes from (detected, or set by you). Each edit is parsed at once and checked
against the model (`check_changes`) in a thread worker; a valid edit redraws the
preview about 300 ms later: one image of the project's dataset predicted with the
stored settings (before) and with the form's (after), side by side; ctrl+n and ctrl+b walk
the dataset's images (letters would type into the form's fields; ctrl+p is the command
palette). ctrl+s stores the changes (`configure_model`); escape closes and drops what was
not saved.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import ClassVar

from rich.console import COLOR_SYSTEMS
from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container, Horizontal, Vertical
from textual.timer import Timer
from textual.widgets import Footer, Header, Label, Static

from segtui.core.accuracy_settings import (
    AccuracySettings,
    Origin,
    check_changes,
    configure_model,
    field_for,
    model_settings,
)
from segtui.core.datasets import image_path
from segtui.core.errors import SegtuiError
from segtui.core.records import ModelRecord, ProjectRecord
from segtui.core.setting_fields import SettingError
from segtui.core.workspace import Workspace
from segtui.ui.screens.base import SegtuiScreen
from segtui.ui.screens.model_settings_preview import (
    PreviewDrawing,
    PreviewImage,
    PreviewPredictions,
    PreviewRequest,
    make_preview,
)
from segtui.ui.screens.project import short_format
from segtui.ui.styles import css_path
from segtui.ui.widgets.half_blocks import HalfBlockImage
from segtui.ui.widgets.settings_form import SettingsForm, detected_value

#: A valid edit redraws the preview this long after the last keystroke.
PREVIEW_DELAY_S = 0.3
#: A resize redraws (without predicting) this long after the last resize event.
RESIZE_DELAY_S = 0.08
SIDES = ("before", "after")
SIDE_TITLES = {"before": "Before (stored)", "after": "After (this form)"}
SIDE_TOOLTIPS = {
    "before": "The image predicted with the model's stored settings.",
    "after": "The image predicted with the form's values. ✗: an instance with no match "
    "on the other side (same class, mask IoU ≥ 0.5); magenta: where the masks differ.",
}


@dataclass(frozen=True)
class SettingsPage:
    """What the screen shows, read in a worker: the project, its model and the settings,
    and the dataset's images, `index` the one the preview predicts (none: `no_image` says why)."""

    project: ProjectRecord
    model: ModelRecord
    settings: AccuracySettings
    images: tuple[PreviewImage, ...]
    index: int = 0
    no_image: str = ""

    @property
    def image(self) -> PreviewImage | None:
        return self.images[self.index] if self.images else None

    @property
    def position(self) -> str:
        """'(2/5)': where the preview's image is in the dataset."""
        return f"({self.index + 1}/{len(self.images)})"


def load_settings_page(ws: Workspace, project_id: int) -> SettingsPage:
    project = ws.project(project_id)
    model = ws.model(project.model_id)
    settings = model_settings(ws, model.id)
    dataset = ws.dataset(project.dataset_id)
    images = ws.dataset_images(dataset.id)
    if not images:
        return SettingsPage(project, model, settings, (), no_image="the dataset has no images")
    shown = tuple(PreviewImage(image_path(dataset, image), image.path) for image in images)
    return SettingsPage(project, model, settings, shown)


@dataclass(frozen=True)
class Checked:
    """The model's verdict on one set of pending changes."""

    key: tuple[tuple[str, str], ...]
    problems: Mapping[str, str]


def _instances(count: int) -> str:
    return f"{count} instance" + ("" if count == 1 else "s")


def _names(value: object) -> tuple[str, ...]:
    if isinstance(value, list | tuple):
        return tuple(str(v) for v in value)
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return ()


def saved_text(old: AccuracySettings, new: AccuracySettings) -> str:
    """What a save changed, in words: 'Channel order RGB, Mean back to detected'."""
    parts = []
    for key, value in new.values.items():
        field = field_for(key)
        if old.origins.get(key) == Origin.USER and new.origins.get(key) == Origin.DETECTED:
            parts.append(f"{field.label} back to detected")
        elif value != old.values.get(key) or old.origins.get(key) != new.origins.get(key):
            parts.append(f"{field.label} {field.format(value)}")
    return ", ".join(parts) or "no value changed"


class PreviewArea(Vertical):
    """Where one side's image and legend go; tells its screen when its size changes."""

    def on_resize(self, event: events.Resize) -> None:
        screen = self.screen
        if isinstance(screen, ModelSettingsScreen):
            screen.area_resized()


class ModelSettingsScreen(SegtuiScreen):
    """The accuracy settings of a project's model: edit, preview, save."""

    CSS_PATH = css_path("model_settings.tcss")

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "ctrl+s",
            "save",
            "Save",
            id="model_settings.save",
            tooltip="Store the changed settings for this model (results made before them "
            "show as stale).",
        ),
        Binding(
            "ctrl+r",
            "reset_field",
            "Reset field",
            id="model_settings.reset",
            tooltip="Put the focused setting back to its detected value (ctrl+s saves it).",
        ),
        Binding(
            "ctrl+n",
            "image(1)",
            "Next image",
            show=False,  # the footer is full at 80 columns; F1 lists it
            id="model_settings.next_image",
            tooltip="Preview the dataset's next image (both sides are predicted again).",
        ),
        Binding(
            "ctrl+b",
            "image(-1)",
            "Previous image",
            show=False,
            id="model_settings.previous_image",
            tooltip="Preview the dataset's previous image (both sides are predicted again).",
        ),
        Binding(
            "escape",
            "back",
            "Close, drop edits",
            id="model_settings.back",
            tooltip="Close without asking: changes not saved with ctrl+s are dropped.",
        ),
    ]

    def __init__(self, project_id: int) -> None:
        super().__init__()
        self.project_id = project_id
        self.page: SettingsPage | None = None
        self.checked: Checked | None = None
        #: The preview shown, and how many times one was drawn (tests count redraws).
        self.preview: PreviewDrawing | None = None
        self.preview_redraws = 0
        self._kept: PreviewPredictions | None = None
        self._preview_timer: Timer | None = None
        #: The preview being made in a worker (None: none is).
        self._wanted: PreviewRequest | None = None

    @property
    def form(self) -> SettingsForm | None:
        forms = self.query(SettingsForm)
        return forms.first() if forms else None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(Text("Reading the model's settings…", style="dim"), id="settings-intro")
        yield Container(id="form-holder")
        yield Static(id="settings-status")
        with Horizontal(id="preview"):
            for side in SIDES:
                with Vertical(id=f"panel-{side}", classes="preview-panel"):
                    title = Label(SIDE_TITLES[side], id=f"title-{side}", classes="preview-title")
                    title.tooltip = SIDE_TOOLTIPS[side]
                    yield title
                    with PreviewArea(id=f"area-{side}", classes="preview-area"):
                        yield HalfBlockImage(id=f"image-{side}")
                        yield Static(id=f"legend-{side}", classes="preview-legend")
        yield Footer()

    def on_mount(self) -> None:
        self.title = "Accuracy settings"
        project_id = self.project_id
        self.tasks.run(
            lambda ws: load_settings_page(ws, project_id),
            self._show_page,
            group="settings-load",
            description="Read the model's settings",
            refused=self._load_refused,
        )

    def _load_refused(self, error: SegtuiError) -> None:
        self.notify(error.message, severity="error")
        # The status line: the intro is hidden below 30 rows.
        status = self.query_one("#settings-status", Static)
        status.update(Text(f"✗ {error.message}"))
        status.add_class("-bad")

    def _check_refused(self, error: SegtuiError) -> None:
        self.notify(f"The settings could not be checked: {error.message}", severity="error")

    async def _show_page(self, page: SettingsPage) -> None:
        self.page = page
        self.sub_title = f"{page.model.name} · project #{page.project.id}"
        self._show_intro()
        form = self.form
        if form is not None and form.settings.format_id == page.settings.format_id:
            form.load(page.settings)
        else:
            holder = self.query_one("#form-holder", Container)
            await holder.remove_children()
            form = SettingsForm(page.settings, id="settings-form")
            await holder.mount(form)
            next(form.iter_controls()).focus()
        self.checked = None
        self._update_status()
        # Once the form is laid out: the panels have their size then.
        self.call_after_refresh(self._request_preview)

    def _show_intro(self) -> None:
        page = self.page
        if page is None:
            return
        analysis = page.model.analysis
        image = page.image
        shown = f"{image.name} {page.position}" if image else f"none ({page.no_image})"
        self.query_one("#settings-intro", Static).update(
            Text.assemble(
                (f"{page.model.name}", "bold"),
                f" · {short_format(str(analysis.get('format', page.settings.format_id)))}",
                (" · preview: ", "dim"),
                shown,
                (f" · settings {page.settings.version}", "dim"),
            )
        )

    # -- checking -----------------------------------------------------------------

    @on(SettingsForm.Edited)
    def _edited(self) -> None:
        form, page = self.form, self.page
        if form is None or page is None:
            return
        pending = form.pending()
        self._update_status()
        if pending.empty:
            self.checked = Checked(pending.key(), {})
        else:
            model_id, key = page.model.id, pending.key()
            changes, resets = dict(pending.changes), pending.resets
            self.tasks.run(
                lambda ws: Checked(key, check_changes(ws, model_id, changes, resets)),
                self._show_checked,
                group="settings-check",
                description="Check the settings",
                refused=self._check_refused,
            )
        self._schedule_preview(PREVIEW_DELAY_S)

    def _show_checked(self, checked: Checked) -> None:
        form = self.form
        if form is None or checked.key != form.pending().key():
            return  # the form changed since: a newer check is on its way
        self.checked = checked
        form.show_problems(self.problems())
        self._update_status()

    def problems(self) -> dict[str, str]:
        """Every known problem of the form as it is (parsing, then the model's checks)."""
        form = self.form
        if form is None:
            return {}
        found = dict(form.parse_problems())
        if self.checked is not None and self.checked.key == form.pending().key():
            found = {**self.checked.problems, **found}
        return found

    def _update_status(self) -> None:
        status = self.query_one("#settings-status", Static)
        form = self.form
        if form is None:
            status.update("")
            return
        problems, pending = self.problems(), form.pending()
        status.set_class(bool(problems), "-bad")
        status.set_class(not problems and not pending.empty, "-pending")
        if problems:
            count = len(problems)
            status.update(
                f"✗ {count} problem{'s' if count > 1 else ''}: fix "
                f"{'them' if count > 1 else 'it'} to preview and save."
            )
        elif pending.empty:
            status.update(
                Text.assemble(
                    "No changes. ", ("ctrl+r puts the focused field back to detected.", "dim")
                )
            )
        else:
            count = len(pending.changes) + len(pending.resets)
            status.update(
                f"{count} change{'s' if count > 1 else ''} not saved: ctrl+s saves, "
                f"escape drops {'them' if count > 1 else 'it'}."
            )

    # -- the preview --------------------------------------------------------------

    @property
    def preview_busy(self) -> bool:
        """Whether a preview is due: waiting for its delay, or being made."""
        return self._preview_timer is not None or self._wanted is not None

    def _schedule_preview(self, delay: float) -> None:
        if self._preview_timer is not None:
            self._preview_timer.stop()
        self._preview_timer = self.set_timer(max(delay, 0.001), self._request_preview)

    def area_resized(self) -> None:
        """A panel's size changed (the terminal, or the form's height): draw again soon."""
        if self.preview is not None and self._preview_timer is None:
            self._schedule_preview(RESIZE_DELAY_S)

    def _request(self) -> PreviewRequest | None:
        """The preview the form asks for now, sized to the panels (None: nothing to draw)."""
        page, form = self.page, self.form
        if page is None or form is None or page.image is None:
            return None
        sizes = [self.query_one(f"#area-{side}").content_size for side in SIDES]
        columns, rows = min(s.width for s in sizes), min(s.height for s in sizes)
        if columns <= 0 or rows <= 0:
            return None
        pending = form.pending()
        settings = page.settings
        stored_names = _names(settings.values.get("class_names"))
        after_names = pending.changes.get("class_names", stored_names)
        if "class_names" in pending.resets:
            after_names = detected_value(settings, "class_names")
        return PreviewRequest(
            model_id=page.model.id,
            image=page.image,
            before_version=settings.version,
            changes=dict(pending.changes),
            resets=pending.resets,
            changes_key=pending.key(),
            class_names_before=stored_names,
            class_names_after=_names(after_names),
            columns=columns,
            rows=rows,
            error_style=f"bold {self.app.current_theme.error or 'red'}",
            color_system=COLOR_SYSTEMS.get(self.app.console.color_system or ""),
        )

    def _request_preview(self) -> None:
        self._preview_timer = None
        if self.page is not None and self.page.image is None:
            self._show_preview_text(f"No preview: {self.page.no_image}.")
            return
        if self.problems():
            return  # the preview keeps the last valid values until the problems are fixed
        request = self._request()
        if request is None:
            if self.page is not None:
                self._schedule_preview(RESIZE_DELAY_S)  # not laid out yet
            return
        if request in (self._wanted, self.preview.request if self.preview else None):
            return  # drawn, or on its way
        self._wanted = request
        kept = self._kept
        self.query_one("#title-after", Label).update(f"{SIDE_TITLES['after']} · predicting…")
        self.tasks.run(
            lambda ws: make_preview(ws, request, kept),
            self._show_preview,
            group="settings-preview",
            description="Predict the preview image",
            refused=self._preview_refused,
        )

    def _preview_refused(self, error: SegtuiError) -> None:
        self._wanted = None
        if isinstance(error, SettingError) and self.form is not None:
            form = self.form
            form.show_problems({**form.problems, error.field: error.message})
        self.query_one("#title-after", Label).update(f"{SIDE_TITLES['after']} · not drawn")
        self.query_one("#legend-after", Static).update(Text(f"✗ {error.message}", style="red"))

    def _show_preview_text(self, text: str) -> None:
        for side in SIDES:
            self.query_one(f"#image-{side}", HalfBlockImage).show_text(text)

    def _show_preview(self, drawing: PreviewDrawing) -> None:
        self.preview = drawing
        self._kept = drawing.predictions
        self._wanted = None
        self.preview_redraws += 1
        predictions = drawing.predictions
        counts = {"before": len(predictions.before), "after": len(predictions.after)}
        pictures = {"before": drawing.before, "after": drawing.after}
        legends = {"before": drawing.before_legend, "after": drawing.after_legend}
        layout = drawing.layout
        for side in SIDES:
            self.query_one(f"#image-{side}", HalfBlockImage).show(pictures[side])
            self.query_one(f"#area-{side}").set_class(bool(layout.width), "-beside")
            legend = self.query_one(f"#legend-{side}", Static)
            # The space the drawing was planned with: the same on both sides, so the
            # images stay level and showing it does not change the panels' size.
            legend.styles.height = layout.rows
            legend.styles.width = layout.width or "1fr"
            legend.update(legends[side])
            self.query_one(f"#title-{side}", Label).update(
                f"{SIDE_TITLES[side]} · {_instances(counts[side])}"
            )
        if drawing.differing:
            # ✗ in the legends marks them: no instance of that class at IoU ≥ 0.5 opposite.
            self.query_one("#title-after", Label).update(
                f"{SIDE_TITLES['after']} · {_instances(counts['after'])} · {drawing.differing} ✗"
            )
        if predictions.unreadable:
            self.query_one("#legend-before", Static).update(
                Text(f"The image cannot be read ({predictions.unreadable}).", style="red")
            )

    # -- actions ------------------------------------------------------------------

    def action_image(self, step: int) -> None:
        """Preview the image `step` places along the dataset (wrapping at either end)."""
        page = self.page
        if page is None:
            return
        if not page.images:
            self.notify(f"No image to preview: {page.no_image}.", timeout=3)
            return
        self.page = page = replace(page, index=(page.index + step) % len(page.images))
        self._show_intro()
        image = page.image
        if image is not None and self.has_class("-low"):  # the intro line is hidden
            self.notify(f"Preview: {image.name} {page.position}", timeout=2)
        if self.problems():
            self.notify("Fix the form's problems to preview this image.", timeout=3)
        self._schedule_preview(0)

    def action_reset_field(self) -> None:
        form = self.form
        key = form.focused_key() if form is not None else None
        if form is None or key is None:
            self.notify("Focus a setting first: ctrl+r puts it back to its detected value.")
            return
        form.reset(key)

    def action_save(self) -> None:
        form, page = self.form, self.page
        if form is None or page is None:
            return
        pending = form.pending()
        problems = self.problems()
        if problems:
            self.notify(f"Not saved: {next(iter(problems.values()))}", severity="error")
            return
        if pending.empty:
            self.notify("Nothing to save: no setting was changed.", timeout=3)
            return
        model_id, changes, resets = page.model.id, dict(pending.changes), pending.resets
        self.tasks.run(
            lambda ws: configure_model(ws, model_id, changes, reset=resets),
            self._saved,
            group="settings-save",
            description="Save the settings",
            exclusive=False,
            refused=self._save_refused,
        )

    async def _saved(self, settings: AccuracySettings) -> None:
        page = self.page
        if page is None:
            return
        await self._show_page(replace(page, settings=settings))
        self.notify(
            f"Saved: {saved_text(page.settings, settings)}. Results made with the "
            "earlier settings now show as stale.",
            timeout=6,
        )

    def _save_refused(self, error: SegtuiError) -> None:
        form = self.form
        if isinstance(error, SettingError) and form is not None:
            form.show_problems({**form.problems, error.field: error.message})
        self.notify(f"Not saved: {error.message}", severity="error")

    def action_back(self) -> None:
        self.app.pop_screen()
