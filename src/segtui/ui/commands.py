"""Command palette: the app's commands, each also bound to a key."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider

Command = tuple[str, Callable[[], object], str]


class CommandList(Provider):
    """A provider over a list of (name, callback, help) built when the palette asks."""

    def _commands(self) -> list[Command]:
        raise NotImplementedError

    async def discover(self) -> Hits:
        for name, callback, help_text in self._commands():
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, callback, help_text in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, text=name, help=help_text)


class ProjectCommands(CommandList):
    """New project, Refresh, and Open project <name> for each project in the workspace."""

    def _commands(self) -> list[Command]:
        from segtui.ui.app import SegtuiApp

        app = self.app
        assert isinstance(app, SegtuiApp)
        commands: list[Command] = [
            (
                "New project",
                app.action_new_project,
                "Create a project from a model file and a dataset (n)",
            ),
            ("Refresh", app.action_refresh, "Reload projects from the workspace (r)"),
        ]
        for project in app.workspace.projects():
            commands.append(
                (
                    f"Open project #{project.id} {project.name}",
                    partial(app.show_project, project.id),
                    f"Project #{project.id} on {project.device}",
                )
            )
        return commands


class ProjectPageCommands(CommandList):
    """Commands of the project page: its tabs and, for an optimized project, its parent."""

    def _commands(self) -> list[Command]:
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

    def _commands(self) -> list[Command]:
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
