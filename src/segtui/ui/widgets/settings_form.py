"""A model's accuracy settings as a form: one row per key of its format, checked as you type.

Built from `core.accuracy_settings`: `keys_for(format_id)` gives the rows, `field_for(key)`
each row's label, help, choices and parser. A choice is a Select, a flag a Checkbox,
anything else an Input holding the text `field.format` writes (what `--set key=` takes).
The form knows the stored settings (value and origin per key) and works out what the user
changed or asked to reset; the screen checks the changes against the model and hands the
problems back, each shown under its field.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Checkbox, Input, Label, Select, Static

from segtui.core.accuracy_settings import (
    AccuracyField,
    AccuracySettings,
    Origin,
    field_for,
    keys_for,
)
from segtui.core.setting_fields import SettingError

#: How each origin reads in the form's origin column.
ORIGIN_TEXT = {Origin.DETECTED: "detected", Origin.USER: "set by you"}
#: The origin column of a field whose value is not saved yet.
EDITED_TEXT = "• edited"
RESET_TEXT = "• detected"


def detected_value(settings: AccuracySettings, key: str) -> object:
    """The value format detection gives `key` (what a reset returns to)."""
    return settings.detected.get(key, settings.values.get(key))


def same_value(field: AccuracyField, a: object, b: object) -> bool:
    """Whether `a` and `b` are one value for `field` (a list and a tuple, 1 and 1.0 are)."""
    return field.format(a) == field.format(b)


def problem_text(key: str, message: str) -> str:
    """A problem as shown under its field: without the 'key: ' the CLI's message starts with."""
    return message.removeprefix(f"{key}: ")


def parse_problem(field: AccuracyField, text: str) -> tuple[object, str | None]:
    """`text` parsed by the field: (the value, None) or (None, what is wrong)."""
    try:
        return field.parse(text), None
    except SettingError as exc:
        return None, exc.message


@dataclass(frozen=True)
class Pending:
    """What the form would change: values to store (as typed) and keys back to detected."""

    changes: Mapping[str, object]
    resets: frozenset[str]

    @property
    def empty(self) -> bool:
        return not self.changes and not self.resets

    def key(self) -> tuple[tuple[str, str], ...]:
        """A hashable, ordered form of the changes (resets as 'detected'), for caches."""
        items = [(k, repr(v)) for k, v in self.changes.items()]
        items += [(k, "<detected>") for k in self.resets]
        return tuple(sorted(items))


class SettingsForm(VerticalScroll):
    """One row per setting: label, control, origin, help; the problem, if any, under it."""

    class Edited(Message):
        """A value changed (typed, chosen, ticked or reset): the screen checks and previews."""

    def __init__(self, settings: AccuracySettings, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.settings = settings
        self.keys = keys_for(settings.format_id)
        self.fields = {key: field_for(key) for key in self.keys}
        #: Keys set by the user that ctrl+r put back to their detected value (not saved yet).
        self._reset_asked: set[str] = set()
        #: The problems shown, by key (from parsing, then from the model's checks).
        self.problems: dict[str, str] = {}

    # -- building -----------------------------------------------------------------

    def compose(self) -> ComposeResult:
        for key in self.keys:
            field = self.fields[key]
            with Vertical(id=f"row-{key}", classes="setting"):
                with Horizontal(classes="setting-line"):
                    yield Label(field.label, classes="setting-label")
                    yield self._control(key, field)
                    yield Static(id=f"origin-{key}", classes="setting-origin")
                    yield Static(
                        Text(field.help, no_wrap=True, overflow="ellipsis"), classes="setting-help"
                    )
                yield Static(id=f"problem-{key}", classes="setting-problem")

    def _control(self, key: str, field: AccuracyField) -> Widget:
        value = self.settings.values.get(key)
        control_id = f"field-{key}"
        tooltip = f"{field.label}: {field.help}"
        if field.kind == "choice":
            options = [(choice, choice) for choice in field.choices]
            if value is not None and str(value) not in field.choices:
                options.append((str(value), str(value)))
            return Select(
                options,
                value=str(value) if value is not None else field.choices[0],
                allow_blank=False,
                id=control_id,
                compact=True,
                tooltip=tooltip,
            )
        if field.kind == "bool":
            return Checkbox("on", bool(value), id=control_id, compact=True, tooltip=tooltip)
        return Input(
            field.format(value),
            id=control_id,
            compact=True,
            select_on_focus=False,
            tooltip=tooltip,
        )

    def on_mount(self) -> None:
        self._show_origins()
        for key in self.keys:
            self.query_one(f"#problem-{key}", Static).display = False

    def load(self, settings: AccuracySettings) -> None:
        """New stored settings (after a save): every control shows its stored value again."""
        self.settings = settings
        self._reset_asked.clear()
        with self.prevent(Input.Changed, Select.Changed, Checkbox.Changed):
            for key in self.keys:
                self._set_control(key, settings.values.get(key))
        self.show_problems({})
        self._show_origins()

    def _set_control(self, key: str, value: object) -> None:
        control = self.query_one(f"#field-{key}")
        if isinstance(control, Select):
            control.value = str(value)
        elif isinstance(control, Checkbox):
            control.value = bool(value)
        elif isinstance(control, Input):
            control.value = self.fields[key].format(value)

    # -- values -------------------------------------------------------------------

    def raw(self, key: str) -> object:
        """What the control holds: the text of an Input, the choice of a Select, a bool."""
        control = self.query_one(f"#field-{key}")
        if isinstance(control, Select):
            return str(control.value)
        if isinstance(control, Checkbox):
            return control.value
        assert isinstance(control, Input)
        return control.value

    def _value(self, key: str) -> tuple[object, str | None]:
        """The control's value parsed (texts by the field), or what is wrong with it."""
        raw = self.raw(key)
        if isinstance(raw, str) and not isinstance(self.query_one(f"#field-{key}"), Select):
            return parse_problem(self.fields[key], raw)
        return raw, None

    def pending(self) -> Pending:
        """The changes (keys whose value differs from the stored one) and the resets."""
        changes: dict[str, object] = {}
        resets: set[str] = set()
        for key in self.keys:
            field = self.fields[key]
            value, problem = self._value(key)
            stored = self.settings.values.get(key)
            if problem is not None:
                changes[key] = self.raw(key)  # refused by the checks, with the field's reason
            elif key in self._reset_asked and same_value(
                field, value, detected_value(self.settings, key)
            ):
                resets.add(key)
            elif not same_value(field, value, stored):
                changes[key] = self.raw(key)
        return Pending(changes, frozenset(resets))

    def parse_problems(self) -> dict[str, str]:
        """The fields whose text does not parse, with the field's reason (no model needed)."""
        found = {}
        for key in self.keys:
            _value, problem = self._value(key)
            if problem is not None:
                found[key] = problem
        return found

    # -- showing ------------------------------------------------------------------

    def show_problems(self, problems: Mapping[str, str]) -> None:
        """Each problem in red under its field; the others cleared."""
        self.problems = {k: v for k, v in problems.items() if k in self.fields}
        for key in self.keys:
            message = self.problems.get(key)
            line = self.query_one(f"#problem-{key}", Static)
            line.update(Text(f"✗ {problem_text(key, message)}" if message else ""))
            line.display = message is not None
            self.query_one(f"#field-{key}").set_class(message is not None, "-invalid")

    def _show_origins(self) -> None:
        pending = self.pending()
        for key in self.keys:
            origin = self.query_one(f"#origin-{key}", Static)
            stored = self.settings.origins.get(key, Origin.DETECTED)
            if key in pending.changes:
                text, kind = EDITED_TEXT, "-edited"
            elif key in pending.resets:
                text, kind = RESET_TEXT, "-edited"
            else:
                text = ORIGIN_TEXT.get(Origin(stored), str(stored))
                kind = "-user" if stored == Origin.USER else "-detected"
            origin.update(text)
            for name in ("-edited", "-user", "-detected"):
                origin.set_class(name == kind, name)

    def focused_key(self) -> str | None:
        """The setting whose control has the focus (None: none has)."""
        focused = self.screen.focused
        for key in self.keys:
            if focused is not None and focused.id == f"field-{key}":
                return key
        return None

    def reset(self, key: str) -> None:
        """Put `key` back to its detected value (saved as such by ctrl+s)."""
        if self.settings.origins.get(key) == Origin.USER:
            self._reset_asked.add(key)
        self._set_control(key, detected_value(self.settings, key))
        # Setting a control posts its change event: _edited runs from there.

    def origin_text(self, key: str) -> str:
        return str(self.query_one(f"#origin-{key}", Static).render())

    def iter_controls(self) -> Iterator[Widget]:
        for key in self.keys:
            yield self.query_one(f"#field-{key}")

    # -- events -------------------------------------------------------------------

    @on(Input.Changed)
    @on(Select.Changed)
    @on(Checkbox.Changed)
    def _edited(self, event: Message) -> None:
        event.stop()
        self.show_problems(self.parse_problems())
        self._show_origins()
        self.post_message(self.Edited())

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        # Enter moves on, as Tab does; ctrl+s saves.
        event.stop()
        self.screen.focus_next()


__all__ = [
    "EDITED_TEXT",
    "ORIGIN_TEXT",
    "RESET_TEXT",
    "Pending",
    "SettingsForm",
    "detected_value",
    "parse_problem",
    "problem_text",
    "same_value",
]
