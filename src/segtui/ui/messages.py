"""Typed messages the screens and the app pass around."""

from __future__ import annotations

from textual.message import Message


class OpenProject(Message):
    """Show the page of a project."""

    def __init__(self, project_id: int) -> None:
        super().__init__()
        self.project_id = project_id


class ProjectsChanged(Message):
    """Projects were added or changed: lists of projects must be reloaded."""


class ImportProgress(Message):
    """Progress of a model/dataset import running in a thread worker."""

    def __init__(self, fraction: float, stage: str) -> None:
        super().__init__()
        self.fraction = fraction
        self.stage = stage
