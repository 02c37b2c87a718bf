"""The ids inside stored results, renumbered when results move to another workspace.

A result's JSON names rows by id: a benchmark (and each measured cell of a sweep) the model
it ran, a report its project and the parent project it compared with. An export keeps them
as they are; an import gives every row a new id and rewrites these with it. An id that
the archive does not hold is refused: it would name an unrelated row of the workspace.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Literal

from segtui.core.errors import SegtuiError
from segtui.core.records import JsonObject
from segtui.core.types import ResultKind

#: Which table an id names.
Table = Literal["project", "model"]
#: For each kind of result, where its ids are: (path of keys to an object, '*' for each item
#: of a list there, the key holding the id, the table).
ID_FIELDS: dict[ResultKind, tuple[tuple[tuple[str, ...], str, Table], ...]] = {
    ResultKind.ACCURACY: (),
    ResultKind.BENCHMARK: (((), "model_id", "model"),),
    ResultKind.SWEEP: ((("cells", "*"), "model_id", "model"),),
    ResultKind.REPORT_PARENT: (
        (("summary",), "project_id", "project"),
        (("summary",), "parent_project_id", "project"),
    ),
    ResultKind.REPORT_ANNOTATIONS: (
        (("summary",), "project_id", "project"),
        (("summary",), "parent_project_id", "project"),
    ),
    ResultKind.SENSITIVITY: (
        ((), "project_id", "project"),
        ((), "parent_project_id", "project"),
        ((), "model_id", "model"),
        ((), "parent_model_id", "model"),
    ),
}


def _holders(data: object, path: tuple[str, ...]) -> list[dict[str, object]]:
    """The objects at `path` inside `data` ('*' walks every item of a list); none if absent."""
    found: list[object] = [data]
    for step in path:
        nxt: list[object] = []
        for item in found:
            if step == "*" and isinstance(item, list):
                nxt.extend(item)
            elif isinstance(item, dict) and step in item:
                nxt.append(item[step])
        found = nxt
    return [item for item in found if isinstance(item, dict)]


def remap_result(
    result_id: int,
    kind: str,
    data: JsonObject,
    ids: Mapping[Table, Mapping[int, int]],
) -> JsonObject:
    """A copy of `data` whose project and model ids are looked up in `ids` (old -> new)."""
    try:
        fields = ID_FIELDS[ResultKind(kind)]
    except ValueError:
        raise SegtuiError(
            f"Result {result_id} is of the unknown kind {kind!r}.",
            "It was written by a newer segtui: upgrade segtui to move it.",
        ) from None
    out = copy.deepcopy(data)
    for path, key, table in fields:
        for holder in _holders(out, path):
            if key not in holder:
                continue
            old = holder[key]
            if isinstance(old, bool) or not isinstance(old, int) or old not in ids[table]:
                raise SegtuiError(
                    f"Result {result_id} ({kind}) names {table} {old!r} in {key!r}, "
                    f"which is not part of the export.",
                    "Export the projects it belongs with together (--with-children), "
                    "or remove that result.",
                )
            holder[key] = ids[table][old]
    return out


__all__ = ["ID_FIELDS", "Table", "remap_result"]
