"""Which accuracy settings a stored result was made with, and whether they are still the model's.

Every result that depends on how a model's inputs are prepared and its outputs decoded
records the settings it ran with: an evaluation (`accuracy_settings`, the whole settings),
a report (`summary.settings`, of the optimized model and of the parent), a benchmark and a
sweep (`accuracy_settings_version`), and an optimized model's optimization record (the
parent's settings it was calibrated with). A result is

- **stale** when a version it recorded differs from its model's version now,
- **current** when every version it recorded is its model's now,
- **unknown** when it recorded none (made before segtui recorded them) or its model
  cannot be read: not stale.

The version is a hash of the values, so setting a value back makes older results current.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, TypedDict

from segtui.core.errors import SegtuiError
from segtui.core.records import JsonObject, ModelRecord, ResultRecord
from segtui.core.types import ResultKind
from segtui.core.workspace import Workspace

if TYPE_CHECKING:
    import openvino as ov

    from segtui.core.accuracy_values import AccuracySettingsJson

#: What the CLI's text and the TUI append to a stale result.
STALE_NOTE = "(stale: the model's accuracy settings changed since; run it again)"

#: `accuracy_fields.Origin.USER`: the origin of a value the user set (that module loads the
#: formats and OpenCV; this one stays light for the screens that show staleness).
USER_ORIGIN = "user"
#: Where each kind of result keeps the settings version of the model it ran.
VERSION_KEY = "accuracy_settings_version"
SETTINGS_KEY = "accuracy_settings"


class Staleness(StrEnum):
    """Whether a result was made with its model's settings as they are now."""

    CURRENT = "current"
    STALE = "stale"
    UNKNOWN = "unknown"

    @property
    def stale(self) -> bool:
        return self is Staleness.STALE


class StalenessJson(TypedDict):
    """What a `--json` document adds to a result: `stale` and the three-way `staleness`."""

    stale: bool
    staleness: str


@dataclass(frozen=True)
class Dependency:
    """A model a result ran, and the settings version it recorded for it (None: none)."""

    #: "model" for a result of one model; "optimized" or "parent" for a report's two.
    role: str
    model_id: int
    recorded: str | None


def settings_json(record: ModelRecord, graph: ov.Model | None = None) -> AccuracySettingsJson:
    """What a result records of the model it runs: its settings now, with their version
    (`graph`: the model the caller loaded, else its files are read)."""
    from segtui.core.accuracy_settings import record_settings  # detection on the graph

    return record_settings(record, graph).to_json()


def recorded_version(recorded: object) -> str | None:
    """The version in a recorded settings JSON (or a bare version text); None when absent."""
    if isinstance(recorded, Mapping):
        recorded = recorded.get("version")
    return recorded if isinstance(recorded, str) and recorded else None


def _model_of(ws: Workspace, project_id: object) -> int | None:
    if not isinstance(project_id, int) or isinstance(project_id, bool):
        return None
    try:
        return ws.project(project_id).model_id
    except SegtuiError:
        return None


def _report_dependencies(
    ws: Workspace, project_id: int, data: Mapping[str, object]
) -> list[Dependency]:
    """A report's two models: the optimized project's and the parent project's."""
    summary = data.get("summary")
    summary = summary if isinstance(summary, Mapping) else {}
    recorded = summary.get("settings")
    recorded = recorded if isinstance(recorded, Mapping) else {}
    found = []
    for role, key in (("optimized", "project_id"), ("parent", "parent_project_id")):
        model_id = _model_of(ws, summary.get(key, project_id if role == "optimized" else None))
        if model_id is not None:
            found.append(Dependency(role, model_id, recorded_version(recorded.get(role))))
    return found


def dependencies(
    ws: Workspace, kind: str, project_id: int, data: Mapping[str, object]
) -> list[Dependency]:
    """The models a result of `kind` stored for `project_id` ran, with the versions it recorded.

    A report depends on both of its models; every other kind on the one it ran (a
    benchmark names it; an evaluation and a sweep ran the project's).
    """
    if kind in (ResultKind.REPORT_PARENT, ResultKind.REPORT_ANNOTATIONS):
        return _report_dependencies(ws, project_id, data)
    named = data.get("model_id")
    model_id = named if isinstance(named, int) and not isinstance(named, bool) else None
    if model_id is None:
        model_id = _model_of(ws, project_id)
    if model_id is None:
        return []
    recorded = data.get(SETTINGS_KEY, data.get(VERSION_KEY))
    return [Dependency("model", model_id, recorded_version(recorded))]


class CurrentVersions:
    """The models' settings versions now, each read once (detection reads the model's graph)."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self._versions: dict[int, str | None] = {}

    def of(self, model_id: int) -> str | None:
        """The model's version now; None when it cannot be read (gone, or its files are)."""
        from segtui.core.accuracy_settings import record_settings  # reads the model's graph

        if model_id not in self._versions:
            try:
                self._versions[model_id] = record_settings(self.ws.model(model_id)).version
            except SegtuiError:
                self._versions[model_id] = None
        return self._versions[model_id]


def judge(found: list[Dependency], current: CurrentVersions) -> Staleness:
    """Stale when a recorded version is not its model's now; unknown when one is missing."""
    if not found or any(d.recorded is None for d in found):
        return Staleness.UNKNOWN
    now = [current.of(d.model_id) for d in found]
    if any(d.recorded != v for d, v in zip(found, now, strict=True) if v is not None):
        return Staleness.STALE
    return Staleness.UNKNOWN if None in now else Staleness.CURRENT


def data_staleness(
    ws: Workspace,
    kind: str,
    project_id: int,
    data: Mapping[str, object],
    current: CurrentVersions | None = None,
) -> Staleness:
    """The staleness of a result's data (a job's result before its row is read back)."""
    return judge(dependencies(ws, kind, project_id, data), current or CurrentVersions(ws))


def staleness(
    ws: Workspace, result: ResultRecord, current: CurrentVersions | None = None
) -> Staleness:
    """Whether a stored result was made with its model(s)' settings as they are now."""
    return data_staleness(ws, result.kind, result.project_id, result.data, current)


def user_values(recorded: object) -> dict[str, object] | None:
    """The values a recorded settings JSON says the user set; None when it holds none."""
    if not isinstance(recorded, Mapping):
        return None
    values, origins = recorded.get("values"), recorded.get("origins")
    if not isinstance(values, Mapping) or not isinstance(origins, Mapping):
        return None
    return {str(k): v for k, v in values.items() if origins.get(k) == USER_ORIGIN}


def inherited_values(optimization: Mapping[str, object]) -> dict[str, object]:
    """The user values an optimized child gets: its parent's when it was calibrated."""
    return user_values(optimization.get(SETTINGS_KEY)) or {}


def optimization_staleness(model: ModelRecord) -> Staleness:
    """Whether an optimized model still has the settings it was calibrated with.

    It inherited its parent's user values at the time; detection on its own graph gives the
    rest, so what can have changed since is its user values. Unknown for a model not
    optimized here, or optimized before the settings were recorded.
    """
    optimization = model.optimization
    recorded = user_values(optimization.get("accuracy_settings") if optimization else None)
    if recorded is None:
        return Staleness.UNKNOWN
    return Staleness.CURRENT if recorded == model.accuracy_settings else Staleness.STALE


class ResultStateJson(StalenessJson):
    """A stored result as `segtui show project --json` lists it."""

    id: int
    kind: str
    created_at: float


@dataclass(frozen=True)
class ResultState:
    """A stored result of a project and whether its settings are still its models'."""

    result_id: int
    kind: str
    created_at: float
    staleness: Staleness

    def to_json(self) -> ResultStateJson:
        return {
            "id": self.result_id,
            "kind": self.kind,
            "created_at": self.created_at,
            **staleness_json(self.staleness),
        }


def project_result_states(ws: Workspace, project_id: int) -> list[ResultState]:
    """Every stored result of a project, oldest first, with its staleness."""
    current = CurrentVersions(ws)
    return [
        ResultState(r.id, r.kind, r.created_at, staleness(ws, r, current))
        for r in ws.results(project_id)
    ]


def staleness_json(state: Staleness) -> StalenessJson:
    return {"stale": state.stale, "staleness": str(state)}


def with_staleness(document: Mapping[str, object], state: Staleness) -> JsonObject:
    """A `--json` document with `stale` and `staleness` added."""
    return {**document, **staleness_json(state)}


def stale_suffix(state: Staleness) -> str:
    """' (stale: …)' after a stale result's line; '' otherwise."""
    return f" {STALE_NOTE}" if state.stale else ""


def stale_line(state: Staleness) -> str:
    """The note on a line of its own under a stale result's text; '' otherwise."""
    return f"\n{STALE_NOTE}" if state.stale else ""


__all__ = [
    "STALE_NOTE",
    "CurrentVersions",
    "Dependency",
    "ResultState",
    "ResultStateJson",
    "Staleness",
    "StalenessJson",
    "data_staleness",
    "dependencies",
    "inherited_values",
    "optimization_staleness",
    "project_result_states",
    "recorded_version",
    "settings_json",
    "stale_line",
    "stale_suffix",
    "staleness",
    "staleness_json",
    "user_values",
    "with_staleness",
]
