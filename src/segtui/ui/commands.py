"""Command palette: the app's commands, each also bound to a key.

The screen-dependent providers are Textual `SimpleProvider`s whose commands are
built from the screen as the palette opens (`CommandList`). The project list comes
from the workspace, so `ProjectCommands` reads it in a thread instead: a
SimpleProvider takes its commands when it is made, on the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial
from typing import Any

from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider, SimpleProvider
from textual.screen import Screen
from textual.style import Style

from segtui.core.workspace import Workspace
from segtui.ui.screens.base import in_workspace

Command = tuple[str, Callable[[], object], str]


class CommandList(SimpleProvider):
    """A SimpleProvider over (name, callback, help), built by `build` when the palette opens.

    The palette is modal, so the screen cannot change while the commands are shown.
    """

    def __init__(self, screen: Screen[Any], match_style: Style | None = None) -> None:
        # Provider first, so that `build` can use self.screen and self.app.
        Provider.__init__(self, screen, match_style)
        self._match = match_style
        super().__init__(screen, list(self.build()))

    @property
    def match_style(self) -> Style | None:
        return self._match

    def build(self) -> list[Command]:
        """The commands on offer now."""
        raise NotImplementedError


class ProjectCommands(Provider):
    """New project, Refresh, and Open project <name> for each project in the workspace."""

    _cache: list[Command] | None = None

    async def _commands(self) -> list[Command]:
        from segtui.ui.app import SegtuiApp

        if self._cache is not None:
            return self._cache
        app = self.app
        assert isinstance(app, SegtuiApp)
        projects = await asyncio.to_thread(in_workspace, app.workspace.root, Workspace.projects)
        commands: list[Command] = [
            (
                "New project",
                app.action_new_project,
                "Create a project from a model file and a dataset (n)",
            ),
            ("Refresh", app.action_refresh, "Reload projects from the workspace (r)"),
        ]
        commands += [
            (
                f"Open project #{project.id} {project.name}",
                partial(app.show_project, project.id),
                f"Project #{project.id} on {project.device}",
            )
            for project in projects
        ]
        self._cache = commands
        return commands

    async def discover(self) -> Hits:
        for name, callback, help_text in await self._commands():
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, callback, help_text in await self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, text=name, help=help_text)


class ProjectPageCommands(CommandList):
    """Commands of the project page: its tabs and, for an optimized project, its parent."""

    def build(self) -> list[Command]:
        from segtui.ui.screens.project import ProjectScreen

        screen = self.screen
        if not isinstance(screen, ProjectScreen):
            return []
        commands: list[Command] = [
            ("Show model", partial(screen.action_show_tab, "model"), "The model's analysis (1)"),
            (
                "Show dataset",
                partial(screen.action_show_tab, "dataset"),
                "The dataset's analysis (2)",
            ),
            ("Show jobs", partial(screen.action_show_tab, "jobs"), "The project's jobs (3)"),
            (
                "Performance",
                screen.action_performance,
                "Benchmark, throughput/latency per precision, per-layer tables (b)",
            ),
            (
                "Explore inference configurations",
                screen.action_configs,
                "A batch × streams sweep, its plot and the sweet spot (i)",
            ),
            (
                "Accuracy settings",
                screen.action_model_settings,
                "The model's colour order, mean/scale, resize, thresholds, class names (e)",
            ),
        ]
        optional = [
            (
                "optimize",
                "Optimize (INT8)",
                screen.action_optimize,
                "Perform → Optimize with NNCF (o)",
            ),
            (
                "compare",
                "Compare projects",
                screen.action_compare,
                "This project against its parent or child (c)",
            ),
            (
                "report",
                "Accuracy report",
                screen.action_report,
                "Where the optimized model differs from the parent (a)",
            ),
        ]
        commands += [
            (title, action, help_)
            for name, title, action, help_ in optional
            if screen.check_action(name, ())
        ]
        if screen.check_action("open_parent", ()):
            commands.append(
                (
                    "Open parent project",
                    screen.action_open_parent,
                    "The project this one was optimized from (p)",
                )
            )
        return commands


class ScreenKeyCommands(CommandList):
    """The screen's own key bindings, offered in the command palette as well (name, key, tooltip)."""

    def build(self) -> list[Command]:
        screen = self.screen
        commands: list[Command] = []
        for binding in screen.BINDINGS:
            if not isinstance(binding, Binding) or not binding.description:
                continue
            if binding.action == "back" or screen.check_action(binding.action, ()) is False:
                continue
            key = self.app.get_key_display(binding)
            commands.append(
                (
                    binding.description,
                    partial(screen.run_action, binding.action),
                    f"{binding.tooltip} ({key})",
                )
            )
        return commands
