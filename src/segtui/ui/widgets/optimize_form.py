"""The Optimize page's settings form, built from the OPTIMIZE schema.

Each field's initial text, choices and as-you-type check come from
`segtui.core.settings.OPTIMIZE`; the form adds what only it knows: the dataset's
image count (how many images a subset is, at most how many validate) and the
model's graph (whether extra layer names and types exist) and its format, whose preset
the preset field starts at (core.format_presets), with the reason on a line below.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from rich.cells import cell_len
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widget import Widget
from textual.widgets import DataTable, Input, Label, RadioButton, RadioSet, Static, Switch

from segtui.core.format_presets import PresetChoice, format_preset, resolve_preset
from segtui.core.ignored_scope import ScopeAnalysis
from segtui.core.optimize_settings import OptimizeSettings
from segtui.core.settings import OPTIMIZE, SettingError, SettingField
from segtui.core.types import DropType, Method, Preset

METHOD_HELP = {
    Method.DEFAULT: "nncf.quantize · minor, uncontrolled accuracy drop · "
    "annotated or not annotated datasets",
    Method.ACCURACY_AWARE: "nncf.quantize_with_accuracy_control · keeps mask AP within the "
    "max drop by reverting layers to floating point · slow (validates many times)",
}
PRESET_HELP = {
    Preset.PERFORMANCE: "Symmetric weights and activations: uncompromising performance.",
    Preset.MIXED: "Asymmetric activations: a trade-off between accuracy and performance.",
}
AUTO_IGNORE_OFF = (
    "Off: NNCF may quantize the geometry too (on the sample Mask R-CNN this took "
    "mask AP from 0.717 to 0.000)."
)
DROP_UNITS = {
    DropType.ABSOLUTE: "points of mask AP",
    DropType.RELATIVE: "% of the parent's mask AP",
}
#: How each choice reads on its radio button, and the short id some buttons have.
CHOICE_LABELS: dict[str, str] = {
    Method.DEFAULT: "Default",
    Method.ACCURACY_AWARE: "AccuracyAware",
    Preset.PERFORMANCE: "Performance preset",
    Preset.MIXED: "Mixed preset",
}
SHORT_IDS: dict[str, str] = {Method.ACCURACY_AWARE: "aa"}
SCOPE_COLUMNS = ("Layer", "Type", "Rule")
#: Radio sets by id: the schema field's name and the buttons' id prefix.
RADIO_SETS: dict[str, tuple[str, str]] = {
    "method": ("method", "method"),
    "preset": ("preset", "preset"),
    "drop-type": ("drop_type", "drop"),
}


def button_id(prefix: str, choice: str) -> str:
    """The id of a choice's radio button, e.g. 'method-aa' or 'preset-mixed'."""
    return f"{prefix}-{SHORT_IDS.get(choice, choice)}"


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


NO_CHECK = FieldCheck(True, "")


def parse_field(field: SettingField[Any], text: str) -> tuple[Any, str | None]:
    """`text` parsed by the schema field: (the value, None) or (None, the field's problem)."""
    raw = text.strip()
    if field.unit and raw.endswith(field.unit):
        raw = raw.removesuffix(field.unit)  # "7.5 %": the unit typed after the number
    try:
        return field.parse(raw), None
    except SettingError as exc:
        return None, exc.message


def check_subset(text: str, image_count: int) -> tuple[float | None, FieldCheck]:
    """Subset size in % → (value, check); the check says how many images that is."""
    value, problem = parse_field(OPTIMIZE.subset_percent, text)
    if problem is not None:
        return None, FieldCheck(False, problem)
    count = OptimizeSettings(subset_percent=value).subset_count(image_count)
    return value, FieldCheck(True, f"{value:g} % → {count} of {image_count} images")


def check_max_drop(text: str, drop_type: DropType) -> tuple[float | None, FieldCheck]:
    """Max accuracy drop in points of mask AP (absolute) or per cent (relative)."""
    value, problem = parse_field(OPTIMIZE.max_drop, text)
    if problem is not None:
        return None, FieldCheck(False, problem)
    return value, FieldCheck(True, f"at most {value:g} {DROP_UNITS[drop_type]}")


def check_validation_images(text: str, image_count: int) -> tuple[int | None, FieldCheck]:
    """How many images the AccuracyAware metric runs on: within the schema and the dataset."""
    field = OPTIMIZE.validation_images
    value, problem = parse_field(field, text)
    if problem is not None:
        return None, FieldCheck(False, problem)
    if value > image_count:
        return None, FieldCheck(
            False, f"{field.label} {value} is more than the dataset's {image_count} images."
        )
    return value, FieldCheck(True, f"{value} of {image_count} images, spread over the dataset")


def split_names(text: str) -> tuple[str, ...]:
    """'a, b,,c' → ('a', 'b', 'c'), each once (OpenVINO layer names hold no commas)."""
    value, _ = parse_field(OPTIMIZE.ignore_names, text)
    return tuple(dict.fromkeys(value or ()))


def check_names(names: tuple[str, ...], scope: ScopeAnalysis | None) -> FieldCheck:
    """Extra layer names to ignore, checked against the model's graph."""
    if not names:
        return NO_CHECK
    if scope is None:
        return FieldCheck(True, "checked once the graph is analysed")
    unknown = scope.unknown_names(names)
    if unknown:
        return FieldCheck(False, "not in the model: " + ", ".join(unknown))
    return FieldCheck(True, f"{len(names)} more layer(s) kept in floating point")


def check_types(types: tuple[str, ...], scope: ScopeAnalysis | None) -> FieldCheck:
    """Extra layer types to ignore, checked against the model's graph."""
    if not types:
        return NO_CHECK
    if scope is None:
        return FieldCheck(True, "checked once the graph is analysed")
    unknown = scope.unknown_types(types)
    if unknown:
        return FieldCheck(False, "no layer of type " + ", ".join(unknown) + " in the model")
    return FieldCheck(True, f"{scope.layers_of_types(types)} layer(s) of these types")


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


def metric_text(annotated: bool) -> Text:
    """What AccuracyAware's metric compares with on this dataset."""
    if annotated:
        return Text.assemble(("Metric: ", "bold"), "mask AP against the dataset's annotations.")
    return Text.assemble(
        ("Metric: ", "bold"),
        "mask AP against the parent model's own predictions (score ≥ 0.5): the dataset "
        "has no annotations. ",
        ("The Workbench refused AccuracyAware here.", "italic"),
    )


def radio_set(set_id: str, pressed: str | None = None) -> RadioSet:
    """The radio set of a choice field: one button per schema choice, `pressed` (by default
    the schema's default) pressed."""
    name, prefix = RADIO_SETS[set_id]
    field = OPTIMIZE.field(name)
    pressed = str(field.default) if pressed is None else pressed
    buttons = [
        RadioButton(
            CHOICE_LABELS.get(choice, choice),
            value=choice == pressed,
            id=button_id(prefix, choice),
            name=choice,
        )
        for choice in field.choices
    ]
    return RadioSet(*buttons, id=set_id, compact=True)


def _input(field: SettingField[Any], widget_id: str, **kwargs: Any) -> Input:
    return Input(field.default_text, id=widget_id, compact=True, **kwargs)


#: Each switch's label: (id, title, (word, note) when on, (word, note) when off).
SWITCH_WORDS = (
    (
        "fast-bias",
        "Fast bias correction: ",
        ("on", "NNCF's default"),
        ("off", "slower, more exact bias correction"),
    ),
    (
        "drop-standalone",
        "Standalone FQs: ",
        ("dropped", "those feeding no INT8"),
        ("kept", "all of them"),
    ),
    ("rewrite-rois", "OMZ ROI pooling: ", ("ROIAlign", "same result"), ("extractor", "kept")),
    ("auto-ignore", "Instance-segmentation aware (automatic): ", ("on", ""), ("off", "")),
)


class OptimizeForm(VerticalScroll):
    """The settings in two columns: method and calibration, then the ignored scope."""

    def __init__(
        self,
        image_count: int,
        annotated: bool,
        *,
        format_id: str | None = None,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.image_count = max(1, image_count)
        self.annotated = annotated
        self.scope: ScopeAnalysis | None = None
        self.format_id = format_id
        #: The model format's preset, which the field starts at (None: the schema's, no reason).
        self.format_preset: PresetChoice | None = (
            None if format_id is None else format_preset(format_id)
        )

    def compose(self) -> ComposeResult:
        with Vertical(id="columns"):
            with Vertical(id="settings-column", classes="column"):
                yield from self._settings_column()
            with Vertical(id="scope-column", classes="column"):
                yield from self._scope_column()

    def _settings_column(self) -> Iterator[Widget]:
        yield Label("Optimization method", classes="section")
        yield radio_set("method")
        yield Static(METHOD_HELP[OPTIMIZE.method.default], id="method-help", classes="help")
        yield Label("Calibration scheme", classes="section")
        preset = self.default_preset
        yield radio_set("preset", preset)
        yield Static(PRESET_HELP[preset], id="preset-help", classes="help")
        yield Static(id="preset-reason", classes="help")
        yield Label("Subset size, % of the dataset", classes="section")
        yield _input(OPTIMIZE.subset_percent, "subset", select_on_focus=True)
        yield Static(id="subset-message", classes="field-message")
        yield Horizontal(
            Switch(OPTIMIZE.fast_bias_correction.default, id="fast-bias"),
            Label(id="fast-bias-label", classes="switch-label"),
            classes="switch-row",
        )
        yield Horizontal(
            Switch(OPTIMIZE.drop_standalone_quantizers.default, id="drop-standalone"),
            Label(id="drop-standalone-label", classes="switch-label"),
            classes="switch-row -tight",
        )
        yield Horizontal(
            Switch(OPTIMIZE.rewrite_roi_extractors.default, id="rewrite-rois"),
            Label(id="rewrite-rois-label", classes="switch-label"),
            classes="switch-row -tight",
        )
        yield Label("AccuracyAware", classes="section")
        yield Static(
            "Only for AccuracyAware: choose it above to set a maximum accuracy drop.",
            id="aa-reason",
            classes="help",
        )
        yield Vertical(*self._accuracy_aware_fields(), id="aa-fields")

    def _accuracy_aware_fields(self) -> Iterator[Widget]:
        def inline(label: str, widget: Widget) -> Horizontal:
            return Horizontal(Label(label, classes="inline-label"), widget, classes="inline-field")

        yield inline("Max drop", _input(OPTIMIZE.max_drop, "max-drop", select_on_focus=True))
        yield Static(id="max-drop-message", classes="field-message")
        yield inline("Drop type", radio_set("drop-type"))
        validation = _input(OPTIMIZE.validation_images, "validation-images", select_on_focus=True)
        # The default (50) is capped to the dataset's size.
        validation.value = str(min(OPTIMIZE.validation_images.default, self.image_count))
        yield inline("Validation images", validation)
        yield Static(id="validation-images-message", classes="field-message")
        yield Static(metric_text(self.annotated), id="metric", classes="help")

    def _scope_column(self) -> Iterator[Widget]:
        yield Label("Ignored scope: kept in floating point", classes="section")
        yield Horizontal(
            Switch(OPTIMIZE.auto_ignore.default, id="auto-ignore"),
            Label(id="auto-ignore-label", classes="switch-label"),
            classes="switch-row",
        )
        yield Static("Analysing the model's graph…", id="scope-summary")
        yield DataTable[str](id="scope-table", cursor_type="row", zebra_stripes=True)
        # Layer names run to 80 characters: the highlighted one in full, wrapped, below.
        yield Static(id="scope-name", classes="help")
        yield Label("Also ignore layers (names, comma-separated)", classes="section")
        yield _input(OPTIMIZE.ignore_names, "ignore-names", placeholder="layer names")
        yield Static(id="ignore-names-message", classes="field-message")
        yield Label("Also ignore layer types", classes="section")
        yield _input(OPTIMIZE.ignore_types, "ignore-types", placeholder="e.g. Multiply, Add")
        yield Static(id="ignore-types-message", classes="field-message")

    def on_mount(self) -> None:
        table = self.query_one("#scope-table", DataTable)
        for label in SCOPE_COLUMNS:
            table.add_column(label, key=label.lower())
        self._update_method()
        self._update_switch_labels()
        self.check_all()

    # -- the ignored scope ------------------------------------------------------------

    def show_scope(self, scope: ScopeAnalysis) -> None:
        """The analysed graph: the proposal's names in the table, the counts above it."""
        self.scope = scope
        rows = [
            (name, scope.type_of.get(name, "?"), rule)
            for rule, names in scope.proposal.by_rule.items()
            for name in names
        ]
        table = self.query_one("#scope-table", DataTable)
        table.clear(columns=True)
        # Widths from the rows themselves: DataTable measures auto widths only when it is
        # next idle, and a repaint that comes first is cached at the headers' widths.
        for n, label in enumerate(SCOPE_COLUMNS):
            width = max([cell_len(label), *(cell_len(row[n]) for row in rows)])
            table.add_column(label, key=label.lower(), width=width)
        for row in rows:
            table.add_row(*row, key=row[0])
        self._update_scope_enabled()
        self.check_all()

    def show_scope_problem(self, text: str, *, bad: bool = False) -> None:
        """Why there is no scope to show (the model is INT8; `bad`: the graph is unreadable)."""
        summary = self.query_one("#scope-summary", Static)
        summary.update(Text(text))
        summary.set_class(bad, "-bad")

    def _update_scope_enabled(self) -> None:
        auto = self.query_one("#auto-ignore", Switch).value
        summary = self.query_one("#scope-summary", Static)
        self.query_one("#scope-table", DataTable).disabled = not auto
        if self.scope is None:
            return
        summary.update(scope_summary(self.scope) if auto else Text(AUTO_IGNORE_OFF))
        summary.set_class(not auto, "-off")

    # -- the choices ------------------------------------------------------------------

    @property
    def default_preset(self) -> Preset:
        """The preset the field starts at: the model format's, else the schema's."""
        return OPTIMIZE.preset.default if self.format_preset is None else self.format_preset.preset

    def preset_choice(self) -> PresetChoice | None:
        """The chosen preset and why: the format's, or the user's (None without a format)."""
        if self.format_preset is None or self.format_id is None:
            return None
        chosen = Preset(self.choice("preset"))
        if chosen == self.format_preset.preset:
            return self.format_preset
        return resolve_preset(self.format_id, chosen)

    def choice(self, set_id: str) -> str:
        """The pressed button's choice in the radio set `set_id` (the default if none is)."""
        pressed = self.query_one(f"#{set_id}", RadioSet).pressed_button
        if pressed is not None and pressed.name:
            return pressed.name
        if set_id == "preset":
            return str(self.default_preset)
        return str(OPTIMIZE.field(RADIO_SETS[set_id][0]).default)

    def choose(self, button: str) -> None:
        """Press one of the radio buttons (from the command palette)."""
        self.query_one(f"#{button}", RadioButton).value = True

    def toggle_switch(self, switch_id: str) -> None:
        self.query_one(f"#{switch_id}", Switch).toggle()

    def _update_method(self) -> None:
        method = Method(self.choice("method"))
        aa = method == Method.ACCURACY_AWARE
        self.query_one("#aa-fields").disabled = not aa
        self.query_one("#aa-reason").display = not aa
        self.query_one("#method-help", Static).update(METHOD_HELP[method])
        self.query_one("#preset-help", Static).update(PRESET_HELP[Preset(self.choice("preset"))])
        choice = self.preset_choice()
        reason = self.query_one("#preset-reason", Static)
        reason.update(Text(choice.reason if choice is not None else ""))
        reason.display = choice is not None

    def _update_switch_labels(self) -> None:
        for switch_id, title, when_on, when_off in SWITCH_WORDS:
            value = self.query_one(f"#{switch_id}", Switch).value
            word, note = when_on if value else when_off
            parts: list[str | tuple[str, str]] = [title, (word, "bold")]
            if note:
                parts.append((f" ({note})", "dim"))
            self.query_one(f"#{switch_id}-label", Label).update(Text.assemble(*parts))

    @on(DataTable.RowHighlighted, "#scope-table")
    def _show_scope_name(self, event: DataTable.RowHighlighted) -> None:
        self.query_one("#scope-name", Static).update(Text(str(event.row_key.value or "")))

    @on(RadioSet.Changed)
    def _radio_changed(self) -> None:
        self._update_method()
        self.check_all()

    @on(Switch.Changed)
    def _switch_changed(self) -> None:
        self._update_switch_labels()
        self._update_scope_enabled()

    @on(Input.Changed)
    def _input_changed(self) -> None:
        self.check_all()

    @on(Input.Submitted)
    def _input_submitted(self) -> None:
        # Enter moves on, as Tab does; ctrl+s or the button start.
        self.screen.focus_next()

    # -- the checks -------------------------------------------------------------------

    def _text(self, widget_id: str) -> str:
        return self.query_one(f"#{widget_id}", Input).value

    def _show_check(self, widget_id: str, check: FieldCheck) -> None:
        message = self.query_one(f"#{widget_id}-message", Static)
        message.update(check.text)
        message.display = bool(check.message)
        message.set_class(not check.ok, "-bad")
        self.query_one(f"#{widget_id}", Input).set_class(not check.ok, "-invalid")

    def _checked(
        self, widget_id: str, check: FieldCheck, problems: list[str], label: str = ""
    ) -> None:
        """Show `check` under its field; a problem goes to `problems` (after `label`, if any)."""
        self._show_check(widget_id, check)
        if not check.ok:
            problems.append(f"{label}: {check.message}" if label else check.message)

    def check_all(self) -> tuple[OptimizeSettings, list[str]]:
        """Check every field, show each verdict under its field; the settings and the problems.

        The AccuracyAware fields are checked only under that method; a value that does not
        parse leaves the schema's default in the settings.
        """
        problems: list[str] = []
        method = Method(self.choice("method"))
        aa = method == Method.ACCURACY_AWARE
        drop_type = DropType(self.choice("drop-type"))
        subset, check = check_subset(self._text("subset"), self.image_count)
        self._checked("subset", check, problems)
        drop, check = check_max_drop(self._text("max-drop"), drop_type)
        self._checked("max-drop", check if aa else NO_CHECK, problems)
        count, check = check_validation_images(self._text("validation-images"), self.image_count)
        self._checked("validation-images", check if aa else NO_CHECK, problems)
        names = split_names(self._text("ignore-names"))
        check = check_names(names, self.scope)
        self._checked("ignore-names", check, problems, "Layers to ignore")
        types = split_names(self._text("ignore-types"))
        check = check_types(types, self.scope)
        self._checked("ignore-types", check, problems, "Layer types to ignore")
        settings = OptimizeSettings(
            method=method,
            preset=Preset(self.choice("preset")),
            subset_percent=OPTIMIZE.subset_percent.default if subset is None else subset,
            fast_bias_correction=self.query_one("#fast-bias", Switch).value,
            auto_ignore=self.query_one("#auto-ignore", Switch).value,
            drop_standalone_quantizers=self.query_one("#drop-standalone", Switch).value,
            rewrite_roi_extractors=self.query_one("#rewrite-rois", Switch).value,
            ignore_names=names,
            ignore_types=types,
            max_drop=OPTIMIZE.max_drop.default if drop is None else drop,
            drop_type=drop_type,
            validation_images=OPTIMIZE.validation_images.default if count is None else count,
        )
        return settings, problems


__all__ = [
    "AUTO_IGNORE_OFF",
    "METHOD_HELP",
    "PRESET_HELP",
    "FieldCheck",
    "OptimizeForm",
    "check_max_drop",
    "check_names",
    "check_subset",
    "check_types",
    "check_validation_images",
    "scope_summary",
    "split_names",
]
