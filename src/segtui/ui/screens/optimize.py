"""Perform → Optimize: the Workbench's INT8 settings page, then the running job until the child exists.

The settings mirror the Workbench (method, calibration scheme, subset size,
AccuracyAware limits) and add what segtui does differently: the
instance-segmentation-aware ignored scope, found from the graph when the screen
opens and shown before anything starts. Starting submits an "optimize" job
(a child process, see segtui.core.jobs); this screen then follows it with a
JobMonitor and, when it is done, replaces itself with the new child project.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from functools import partial
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import (
    Button,
    DataTable,
    Footer,
    Header,
    Input,
    Label,
    RadioButton,
    RadioSet,
    Static,
    Switch,
)
from textual.worker import Worker, WorkerState

from segtui.core import jobs
from segtui.core.errors import SegtuiError
from segtui.core.models import load_registered
from segtui.core.quantize import (
    COMPUTE_TYPES,
    IgnoredScopeProposal,
    OptimizeSettings,
    propose_ignored_scope,
)
from segtui.core.workspace import JobRecord, ModelRecord
from segtui.ui import messages
from segtui.ui.commands import Command, CommandList
from segtui.ui.screens.base import SegtuiScreen
from segtui.ui.styles import css_path
from segtui.ui.widgets.job_monitor import JobMonitor

SCOPE_GROUP = "optimize-scope"
LOG_TAIL_LINES = 14
DEFAULT_VALIDATION_IMAGES = 50

METHOD_HELP = {
    "default": "nncf.quantize · minor, uncontrolled accuracy drop · "
    "annotated or not annotated datasets",
    "accuracy-aware": "nncf.quantize_with_accuracy_control · keeps mask AP within the "
    "max drop by reverting layers to floating point · slow (validates many times)",
}
PRESET_HELP = {
    "performance": "Symmetric weights and activations: uncompromising performance.",
    "mixed": "Asymmetric activations: a trade-off between accuracy and performance.",
}
AUTO_IGNORE_OFF = (
    "Off: NNCF may quantize the geometry too (on the sample Mask R-CNN this took "
    "mask AP from 0.717 to 0.000)."
)


@dataclass(frozen=True)
class FieldCheck:
    """What a field's text is worth: ok or not, and the line shown under it."""

    ok: bool
    message: str

    @property
    def text(self) -> Text:
        if not self.message:
            return Text("")
        return Text(("✓ " if self.ok else "✗ ") + self.message)


def _number(text: str) -> float | None:
    try:
        value = float(text.strip().rstrip("%").strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def check_subset(text: str, image_count: int) -> tuple[float | None, FieldCheck]:
    """Subset size in % → (value, check); the check says how many images that is."""
    value = _number(text)
    if value is None:
        return None, FieldCheck(False, "a number from 1 to 100")
    if not 0 < value <= 100:
        return None, FieldCheck(False, f"{value:g} % is out of range: use 1–100 %")
    count = OptimizeSettings(subset_percent=value).subset_count(image_count)
    return value, FieldCheck(True, f"{value:g} % → {count} of {image_count} images")


def check_max_drop(text: str, drop_type: str) -> tuple[float | None, FieldCheck]:
    """Max accuracy drop in points of mask AP (absolute) or per cent (relative), 0.1–10."""
    value = _number(text)
    unit = "points of mask AP" if drop_type == "absolute" else "% of the parent's mask AP"
    if value is None:
        return None, FieldCheck(False, "a number from 0.1 to 10")
    if not 0.1 <= value <= 10:
        return None, FieldCheck(False, f"{value:g} is out of range: use 0.1–10")
    return value, FieldCheck(True, f"at most {value:g} {unit}")


def check_validation_images(text: str, image_count: int) -> tuple[int | None, FieldCheck]:
    """How many images the AccuracyAware metric runs on: 1 to the dataset's size."""
    try:
        value = int(text.strip())
    except ValueError:
        return None, FieldCheck(False, f"a whole number from 1 to {image_count}")
    if not 1 <= value <= image_count:
        return None, FieldCheck(False, f"{value} is out of range: use 1–{image_count}")
    return value, FieldCheck(True, f"{value} of {image_count} images, spread over the dataset")


def split_names(text: str) -> list[str]:
    """'a, b,,c' → ['a', 'b', 'c'] (layer names never contain commas in OpenVINO IRs we read)."""
    return list(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))


@dataclass(frozen=True)
class ScopeAnalysis:
    """The automatic ignored scope of a model, and what its graph holds (to check user entries)."""

    proposal: IgnoredScopeProposal
    type_of: dict[str, str]  # layer name → op type, every op of the model
    quantized_compute: int  # compute layers (Convolution, MatMul, …) NNCF will quantize

    def check_names(self, names: list[str]) -> FieldCheck:
        if not names:
            return FieldCheck(True, "")
        unknown = [n for n in names if n not in self.type_of]
        if unknown:
            return FieldCheck(False, "not in the model: " + ", ".join(unknown))
        return FieldCheck(True, f"{len(names)} more layer(s) kept in floating point")

    def check_types(self, types: list[str]) -> FieldCheck:
        if not types:
            return FieldCheck(True, "")
        counts = Counter(self.type_of.values())
        unknown = [t for t in types if t not in counts]
        if unknown:
            return FieldCheck(False, "no layer of type " + ", ".join(unknown) + " in the model")
        return FieldCheck(True, f"{sum(counts[t] for t in types)} layer(s) of these types")


def analyse_scope(model: ModelRecord) -> ScopeAnalysis:
    """Load the model and find its geometry subgraphs (about a second on the sample model)."""
    loaded = load_registered(model)
    proposal = propose_ignored_scope(loaded.model)
    ignored = set(proposal.names)
    type_of: dict[str, str] = {}
    compute = 0
    for op in loaded.model.get_ordered_ops():
        name, kind = op.get_friendly_name(), op.get_type_name()
        type_of[name] = kind
        compute += kind in COMPUTE_TYPES and name not in ignored
    return ScopeAnalysis(proposal, type_of, compute)


def scope_summary(scope: ScopeAnalysis) -> Text:
    """Counts per rule and per op type, as shown above the list of names."""
    proposal = scope.proposal
    total = len(proposal.names)
    text = Text()
    if total == 0:
        text.append("No geometry found in this graph: ", style="bold")
        text.append("every layer NNCF can quantize will be quantized.")
        return text
    text.append(f"{total} layers stay in floating point", style="bold")
    text.append(f"; {scope.quantized_compute} compute layers are quantized.\n")
    rules = [f"{rule} {len(names)}" for rule, names in proposal.by_rule.items() if names]
    text.append("By rule: ", style="dim")
    text.append(" · ".join(rules) + "\n")
    text.append("By type: ", style="dim")
    text.append(" · ".join(f"{kind} {count}" for kind, count in proposal.types.items()))
    return text


class OptimizeCommands(CommandList):
    """The Optimize page's commands: start, the method and preset choices; later parent, edit."""

    def _commands(self) -> list[Command]:
        screen = self.screen
        if not isinstance(screen, OptimizeScreen):
            return []
        if screen.job_id is not None:
            commands: list[Command] = [
                (
                    "Open parent project",
                    screen.action_open_parent,
                    "The project being optimized (p)",
                )
            ]
            if screen.check_action("edit_settings", ()):
                commands.append(
                    ("Edit optimization settings", screen.action_edit_settings, "Try again (e)")
                )
            return commands
        return [
            (
                "Start optimization",
                screen.action_start,
                "INT8 calibration with these settings (ctrl+s)",
            ),
            ("Method: Default", partial(screen.choose, "method-default"), METHOD_HELP["default"]),
            (
                "Method: AccuracyAware",
                partial(screen.choose, "method-aa"),
                METHOD_HELP["accuracy-aware"],
            ),
            (
                "Preset: Performance",
                partial(screen.choose, "preset-performance"),
                PRESET_HELP["performance"],
            ),
            ("Preset: Mixed", partial(screen.choose, "preset-mixed"), PRESET_HELP["mixed"]),
            (
                "Toggle the automatic ignored scope",
                partial(screen.toggle_switch, "auto-ignore"),
                "Keep the geometry in floating point, or let NNCF quantize it",
            ),
            (
                "Toggle fast bias correction",
                partial(screen.toggle_switch, "fast-bias"),
                "Fast (NNCF's default) or the slower, more exact bias correction",
            ),
        ]


class OptimizeScreen(SegtuiScreen):
    """INT8 optimization of one project: settings, then the job until the child project exists."""

    CSS_PATH = css_path("optimize.tcss")
    TITLE = "Optimize"
    COMMANDS = Screen.COMMANDS | {OptimizeCommands}

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "ctrl+s",
            "start",
            "Optimize",
            id="optimize.start",
            tooltip="Start INT8 calibration with these settings (a background job).",
        ),
        Binding(
            "escape",
            "back",
            "Back",
            id="optimize.back",
            tooltip="Go back to the project (a started job goes on in the background).",
        ),
        Binding(
            "p",
            "open_parent",
            "Parent project",
            id="optimize.parent",
            tooltip="Open the project being optimized (the parent of the new one).",
        ),
        Binding(
            "e",
            "edit_settings",
            "Edit settings",
            id="optimize.edit",
            tooltip="Back to the settings, to try again after a failed or cancelled job.",
        ),
    ]

    def __init__(self, project_id: int) -> None:
        super().__init__()
        self.project_id = project_id
        self.scope: ScopeAnalysis | None = None
        self.scope_error: str | None = None
        self.job_id: int | None = None
        self.job_state: str | None = None
        self.child_ready: int | None = None
        # Read from the workspace in compose (the app is needed for that).
        self.model: ModelRecord | None = None
        self.image_count = 1
        self.annotated = False

    # -- layout ----------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        ws = self.segtui.workspace
        project = ws.project(self.project_id)
        model = ws.model(project.model_id)
        dataset = ws.dataset(project.dataset_id)
        self.image_count = max(1, dataset.image_count)
        self.annotated = dataset.annotated
        self.model = model
        self.sub_title = f"Project #{project.id} {project.name}"
        kind = "annotated" if dataset.annotated else "not annotated"
        yield Header()
        with Vertical(id="form-view"):
            yield Static(
                Text.assemble(
                    (f"Optimize project #{project.id} ", "bold"),
                    (project.name, "bold"),
                    ("  INT8 calibration with NNCF\n", "dim"),
                    ("Model ", "dim"),
                    model.name,
                    ("  Dataset ", "dim"),
                    f"{dataset.name} ({kind}, {self.image_count} images)",
                ),
                id="opt-title",
            )
            with VerticalScroll(id="form"), Vertical(id="columns"):
                with Vertical(id="settings-column", classes="column"):
                    yield Label("Optimization method", classes="section")
                    with RadioSet(id="method", compact=True):
                        yield RadioButton("Default", value=True, id="method-default")
                        yield RadioButton("AccuracyAware", id="method-aa")
                    yield Static(METHOD_HELP["default"], id="method-help", classes="help")
                    yield Label("Calibration scheme", classes="section")
                    with RadioSet(id="preset", compact=True):
                        yield RadioButton("Performance preset", value=True, id="preset-performance")
                        yield RadioButton("Mixed preset", id="preset-mixed")
                    yield Static(PRESET_HELP["performance"], id="preset-help", classes="help")
                    yield Label("Subset size, % of the dataset", classes="section")
                    yield Input("100", id="subset", compact=True, select_on_focus=True)
                    yield Static(id="subset-message", classes="field-message")
                    with Horizontal(classes="switch-row"):
                        yield Switch(True, id="fast-bias")
                        yield Label(id="fast-bias-label", classes="switch-label")
                    yield Label("AccuracyAware", classes="section")
                    yield Static(
                        "Only for AccuracyAware: choose it above to set a maximum accuracy drop.",
                        id="aa-reason",
                        classes="help",
                    )
                    with Vertical(id="aa-fields"):
                        with Horizontal(classes="inline-field"):
                            yield Label("Max drop", classes="inline-label")
                            yield Input("0.5", id="max-drop", compact=True, select_on_focus=True)
                        yield Static(id="max-drop-message", classes="field-message")
                        with Horizontal(classes="inline-field"):
                            yield Label("Drop type", classes="inline-label")
                            with RadioSet(id="drop-type", compact=True):
                                yield RadioButton("absolute", value=True, id="drop-absolute")
                                yield RadioButton("relative", id="drop-relative")
                        with Horizontal(classes="inline-field"):
                            yield Label("Validation images", classes="inline-label")
                            yield Input(
                                str(min(DEFAULT_VALIDATION_IMAGES, self.image_count)),
                                id="validation-images",
                                compact=True,
                                select_on_focus=True,
                            )
                        yield Static(id="validation-images-message", classes="field-message")
                        yield Static(self._metric_text(), id="metric", classes="help")
                with Vertical(id="scope-column", classes="column"):
                    yield Label("Ignored scope: kept in floating point", classes="section")
                    with Horizontal(classes="switch-row"):
                        yield Switch(True, id="auto-ignore")
                        yield Label(id="auto-ignore-label", classes="switch-label")
                    yield Static("Analysing the model's graph…", id="scope-summary")
                    yield DataTable[str](id="scope-table", cursor_type="row", zebra_stripes=True)
                    yield Label("Also ignore layers (names, comma-separated)", classes="section")
                    yield Input(id="ignore-names", compact=True, placeholder="layer names")
                    yield Static(id="ignore-names-message", classes="field-message")
                    yield Label("Also ignore layer types", classes="section")
                    yield Input(id="ignore-types", compact=True, placeholder="e.g. Multiply, Add")
                    yield Static(id="ignore-types-message", classes="field-message")
            with Horizontal(id="actions"):
                yield Button("Optimize", id="start", variant="primary", compact=True)
                yield Static("ctrl+s starts · escape goes back", id="actions-hint")
            yield Static(id="start-error")
        with VerticalScroll(id="pending-view"):
            yield Static(id="pending-title")
            yield Static(id="pending-parent")
            yield Static(id="pending-settings")
            yield Static(id="outcome")
            yield Static(id="log-tail")
        yield Footer()

    def _metric_text(self) -> Text:
        if self.annotated:
            return Text.assemble(("Metric: ", "bold"), "mask AP against the dataset's annotations.")
        return Text.assemble(
            ("Metric: ", "bold"),
            "mask AP against the parent model's own predictions (score ≥ 0.5): the dataset "
            "has no annotations. ",
            ("The Workbench refused AccuracyAware here.", "italic"),
        )

    def on_mount(self) -> None:
        table = self.query_one("#scope-table", DataTable)
        for label in ("Layer", "Type", "Rule"):
            table.add_column(label, key=label.lower())
        self.query_one("#pending-view").display = False
        self.query_one("#start-error").display = False
        self._update_method()
        self._update_switch_labels()
        self._check_all()
        model = self.model
        assert model is not None
        if model.is_optimized and model.analysis.get("int8"):
            self.scope_error = "This project's model is already INT8: optimize its parent instead."
            self.query_one("#scope-summary", Static).update(Text(self.scope_error))
        else:
            self.analyse(model)
        running = [
            job
            for job in self.segtui.workspace.jobs(self.project_id)
            if job.kind == "optimize" and job.active
        ]
        if running:
            # One optimization at a time per project: follow the one already under way.
            self._show_pending(running[-1])
        else:
            self.query_one("#method", RadioSet).focus()

    # -- the ignored scope, found in a thread ----------------------------------------

    @work(
        thread=True,
        exclusive=True,
        exit_on_error=False,
        group=SCOPE_GROUP,
        description="Analyse the model's graph",
    )
    def analyse(self, model: ModelRecord) -> ScopeAnalysis:
        return analyse_scope(model)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != SCOPE_GROUP:
            return
        if event.state == WorkerState.SUCCESS:
            result = event.worker.result
            assert isinstance(result, ScopeAnalysis)
            self._show_scope(result)
        elif event.state == WorkerState.ERROR:
            self.segtui.report_worker_failure(event.worker)
            error = event.worker.error
            self.scope_error = str(error) if isinstance(error, SegtuiError) else repr(error)
            self.query_one("#scope-summary", Static).update(
                Text(f"✗ Cannot analyse the graph: {self.scope_error}")
            )
            self.query_one("#scope-summary").add_class("-bad")

    def _show_scope(self, scope: ScopeAnalysis) -> None:
        self.scope = scope
        table = self.query_one("#scope-table", DataTable)
        table.clear()
        for rule, names in scope.proposal.by_rule.items():
            for name in names:
                table.add_row(name, scope.type_of.get(name, "?"), rule, key=name)
        self._update_scope_enabled()
        self._check_all()

    def _update_scope_enabled(self) -> None:
        auto = self.query_one("#auto-ignore", Switch).value
        summary = self.query_one("#scope-summary", Static)
        table = self.query_one("#scope-table", DataTable)
        table.disabled = not auto
        if self.scope is None:
            return
        summary.update(scope_summary(self.scope) if auto else Text(AUTO_IGNORE_OFF))
        summary.set_class(not auto, "-off")

    # -- settings and their checks -----------------------------------------------------

    def _method(self) -> str:
        return "accuracy-aware" if self.query_one("#method-aa", RadioButton).value else "default"

    def _preset(self) -> str:
        return "mixed" if self.query_one("#preset-mixed", RadioButton).value else "performance"

    def _drop_type(self) -> str:
        return "relative" if self.query_one("#drop-relative", RadioButton).value else "absolute"

    def choose(self, button_id: str) -> None:
        """Press one of the radio buttons (from the command palette)."""
        self.query_one(f"#{button_id}", RadioButton).value = True

    def toggle_switch(self, switch_id: str) -> None:
        self.query_one(f"#{switch_id}", Switch).toggle()

    def _update_method(self) -> None:
        method = self._method()
        aa = method == "accuracy-aware"
        self.query_one("#aa-fields").disabled = not aa
        self.query_one("#aa-reason").display = not aa
        self.query_one("#method-help", Static).update(METHOD_HELP[method])
        self.query_one("#preset-help", Static).update(PRESET_HELP[self._preset()])

    @on(RadioSet.Changed)
    def _radio_changed(self) -> None:
        self._update_method()
        self._check_all()

    @on(Switch.Changed)
    def _switch_changed(self) -> None:
        self._update_switch_labels()
        self._update_scope_enabled()

    def _update_switch_labels(self) -> None:
        fast = self.query_one("#fast-bias", Switch).value
        self.query_one("#fast-bias-label", Label).update(
            Text.assemble(
                "Fast bias correction: ",
                ("on", "bold") if fast else ("off", "bold"),
                (" (NNCF's default)" if fast else " (slower, more exact bias correction)", "dim"),
            )
        )
        auto = self.query_one("#auto-ignore", Switch).value
        self.query_one("#auto-ignore-label", Label).update(
            Text.assemble(
                "Instance-segmentation aware (automatic): ", ("on" if auto else "off", "bold")
            )
        )

    @on(Input.Changed)
    def _input_changed(self) -> None:
        self._check_all()

    @on(Input.Submitted)
    def _input_submitted(self) -> None:
        # Enter moves on, as Tab does; ctrl+s or the button start.
        self.focus_next()

    def _show_check(self, widget_id: str, check: FieldCheck) -> None:
        message = self.query_one(f"#{widget_id}-message", Static)
        message.update(check.text)
        message.display = bool(check.message)
        message.set_class(not check.ok, "-bad")
        self.query_one(f"#{widget_id}", Input).set_class(not check.ok, "-invalid")

    def _check_all(self) -> tuple[OptimizeSettings, list[str]]:
        """Check every field, show each verdict under its field; the settings and the problems."""
        problems: list[str] = []
        settings = OptimizeSettings(
            method=self._method(),
            preset=self._preset(),
            fast_bias_correction=self.query_one("#fast-bias", Switch).value,
            auto_ignore=self.query_one("#auto-ignore", Switch).value,
            drop_type=self._drop_type(),
        )
        subset, check = check_subset(self.query_one("#subset", Input).value, self.image_count)
        self._show_check("subset", check)
        if subset is None:
            problems.append(f"Subset size: {check.message}")
        else:
            settings.subset_percent = subset
        aa = settings.method == "accuracy-aware"
        drop, check = check_max_drop(self.query_one("#max-drop", Input).value, settings.drop_type)
        self._show_check("max-drop", check if aa else FieldCheck(True, ""))
        if drop is not None:
            settings.max_drop = drop
        elif aa:
            problems.append(f"Max drop: {check.message}")
        count, check = check_validation_images(
            self.query_one("#validation-images", Input).value, self.image_count
        )
        self._show_check("validation-images", check if aa else FieldCheck(True, ""))
        if count is not None:
            settings.validation_images = count
        elif aa:
            problems.append(f"Validation images: {check.message}")
        settings.ignore_names = split_names(self.query_one("#ignore-names", Input).value)
        settings.ignore_types = split_names(self.query_one("#ignore-types", Input).value)
        for field_id, label, values in (
            ("ignore-names", "Layers to ignore", settings.ignore_names),
            ("ignore-types", "Layer types to ignore", settings.ignore_types),
        ):
            if self.scope is None:
                check = FieldCheck(True, "checked once the graph is analysed" if values else "")
            elif field_id == "ignore-names":
                check = self.scope.check_names(values)
            else:
                check = self.scope.check_types(values)
            self._show_check(field_id, check)
            if not check.ok:
                problems.append(f"{label}: {check.message}")
        return settings, problems

    # -- starting and following the job -------------------------------------------------

    @on(Button.Pressed, "#start")
    def _start_pressed(self) -> None:
        self.action_start()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        pending = self.job_id is not None
        if action == "start":
            return not pending
        if action == "open_parent":
            return pending
        if action == "edit_settings":
            return pending and self.job_state in ("failed", "cancelled", "interrupted")
        return True

    def action_start(self) -> None:
        if self.job_id is not None:
            return
        settings, problems = self._check_all()
        if self.scope_error is not None and "already INT8" in self.scope_error:
            problems.insert(0, self.scope_error)
        elif self.scope is None and self.scope_error is None and settings.auto_ignore:
            problems.insert(0, "The model's graph is still being analysed: a moment.")
        if not problems:
            try:
                settings.validate(self.annotated)
            except SegtuiError as exc:
                problems.append(str(exc))
        if problems:
            self._show_start_error("Cannot start yet.\n" + "\n".join(f"✗ {p}" for p in problems))
            return
        self._show_start_error(None)
        try:
            job = jobs.submit(
                self.segtui.workspace, "optimize", self.project_id, settings.to_json()
            )
        except SegtuiError as exc:
            self._show_start_error(f"✗ {exc}")
            return
        self._show_pending(job)

    def _show_start_error(self, text: str | None) -> None:
        error = self.query_one("#start-error", Static)
        error.update(Text(text or ""))
        error.display = bool(text)

    def _show_pending(self, job: JobRecord) -> None:
        self.job_id = job.id
        self.job_state = job.state
        self.query_one("#form-view").display = False
        pending = self.query_one("#pending-view")
        pending.display = True
        project = self.segtui.workspace.project(self.project_id)
        self.query_one("#pending-title", Static).update(
            Text.assemble(
                ("Optimizing ", "bold"),
                (f"#{project.id} {project.name}", "bold"),
                (" → a new INT8 project, created when calibration ends.", "dim"),
            )
        )
        self.query_one("#pending-parent", Static).update(
            Text.assemble(
                ("Parent project ", "dim"),
                f"#{project.id} {project.name}",
                ("  (p opens it)", "dim"),
            )
        )
        self.query_one("#pending-settings", Static).update(settings_line(job.params))
        self.query_one("#outcome", Static).display = False
        self.query_one("#log-tail", Static).display = False
        for old in self.query(JobMonitor):
            old.remove()
        monitor = JobMonitor(job.id, id="monitor")
        pending.mount(monitor, before="#outcome")
        monitor.focus()
        self.refresh_bindings()

    def on_job_monitor_finished(self, event: JobMonitor.Finished) -> None:
        job = event.job
        self.job_state = job.state
        self.refresh_bindings()
        if job.state == "done" and job.result and job.result.get("child_project_id"):
            child_id = int(job.result["child_project_id"])
            self.post_message(messages.ProjectsChanged())
            self.notify(
                f"Project #{child_id} created: the INT8 model of #{self.project_id}.",
                title="Optimization done",
                timeout=6,
            )
            # Not `is_current`: that is also true under another full screen (the parent's page).
            if self.app.screen is self:
                self.segtui.show_project(child_id, replace=True)
            else:
                self.child_ready = child_id
            return
        outcome = self.query_one("#outcome", Static)
        if job.state == "cancelled":
            text = Text("Cancelled. Its partial files were removed; e edits the settings.")
        else:
            text = Text.assemble(
                (f"✗ The optimization {job.state}: ", "bold"),
                job.error or "see the log below",
                "\nNo model was registered. e edits the settings and tries again.",
            )
        outcome.update(text)
        outcome.set_class(job.state != "cancelled", "-bad")
        outcome.display = True
        tail = jobs.log_tail(job.log_path, LOG_TAIL_LINES)
        log = self.query_one("#log-tail", Static)
        log.update(Text(f"Log ({job.log_path}):\n{tail}" if tail else "(the job wrote no log)"))
        log.display = True

    def on_screen_resume(self) -> None:
        if self.child_ready is not None:
            child_id, self.child_ready = self.child_ready, None
            self.segtui.show_project(child_id, replace=True)

    def action_open_parent(self) -> None:
        self.segtui.show_project(self.project_id)

    def action_edit_settings(self) -> None:
        self.job_id = None
        self.job_state = None
        for monitor in self.query(JobMonitor):
            monitor.remove()
        self.query_one("#pending-view").display = False
        self.query_one("#form-view").display = True
        self.query_one("#method", RadioSet).focus()
        self.refresh_bindings()

    def action_back(self) -> None:
        if self.job_id is not None and self.job_state in ("queued", "running"):
            self.notify(
                f"The optimization goes on in the background: see the Jobs tab of "
                f"project #{self.project_id}.",
                timeout=5,
            )
        self.app.pop_screen()


def settings_line(params: dict[str, object]) -> Text:
    """The settings a job was started with, on one line."""
    method = "AccuracyAware" if params.get("method") == "accuracy-aware" else "Default"
    parts = [
        f"{method} method",
        f"{str(params.get('preset', 'performance')).capitalize()} preset",
        f"subset {params.get('subset_percent', 100):g} %",
        f"fast bias correction {'on' if params.get('fast_bias_correction', True) else 'off'}",
        "automatic ignored scope " + ("on" if params.get("auto_ignore", True) else "off"),
    ]
    if params.get("method") == "accuracy-aware":
        parts.append(f"max drop {params.get('max_drop')} ({params.get('drop_type')})")
    return Text(" · ".join(parts), style="dim")
