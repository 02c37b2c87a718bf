"""The report form's number fields, built from the REPORT settings schema."""

from __future__ import annotations

from typing import Any

from textual.validation import ValidationResult, Validator
from textual.widgets import Input

from segtui.core.settings import SettingError, SettingField


class SchemaValidator(Validator):
    """An Input check by a settings field: what `field.parse` refuses, and why."""

    def __init__(self, field: SettingField[Any]) -> None:
        super().__init__()
        self.field = field

    def validate(self, value: str) -> ValidationResult:
        try:
            self.field.parse(value)
        except SettingError as exc:
            return self.failure(exc.message)
        return self.success()


def field_input(field: SettingField[Any], widget_id: str) -> Input:
    """A compact number Input with the field's default, range check and help as its tooltip."""
    return Input(
        field.default_text,
        id=widget_id,
        type="number",
        compact=True,
        validators=[SchemaValidator(field)],
        tooltip=f"{field.help.capitalize()} ({field.range_text()}).",
    )
