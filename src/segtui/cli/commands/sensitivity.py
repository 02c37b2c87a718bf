"""`segtui sensitivity`: which quantizer groups of an INT8 project cost its accuracy (a job)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypedDict, cast

from segtui.cli.common import open_workspace, resolve_project, run_job
from segtui.cli.options import add_schema_options, naming_options, schema_values
from segtui.cli.output import EXIT_OK, CliError, Output
from segtui.core.preflight import check_job
from segtui.core.settings import SENSITIVITY
from segtui.core.types import JobKind

if TYPE_CHECKING:
    from segtui.core.sensitivity import SensitivityResult, SensitivityRow

#: Rows the text table shows at most (the measured and recommended ones come first).
TEXT_ROWS = 30


class IgnoredScopeNames(TypedDict):
    """What pastes into `nncf.IgnoredScope(names=...)`."""

    names: list[str]


def _number(value: float | None, digits: int, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    value = round(value, digits) + 0.0  # no "-0.0"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _short(name: str, width: int = 44) -> str:
    """A layer name without the exporter's `__module.` prefix, its start cut when long."""
    name = name.removeprefix("__module.")
    return name if len(name) <= width else "…" + name[-(width - 1) :]


def _layers(row: SensitivityRow, width: int = 100) -> str:
    text = ", ".join(_short(name) for name in row["fed_layers"])
    return text if len(text) <= width else text[: width - 1] + "…"


def _row_cells(row: SensitivityRow) -> list[str]:
    flags = [
        flag
        for flag, on in (("no data", row["no_data"]), ("range collapsed", row["range_collapsed"]))
        if on
    ]
    return [
        str(row["rank"]),
        str(row["id"]),
        ("* " if row["chosen"] else "  ") + ",".join(row["op_types"]),
        _number(row["error_db"], 1),
        f"{row['clipped'] * 100:.1f}%",
        _number(row["metric_change"], 2, signed=True),
        _number(row["cost_ms"], 3, signed=True),
        _layers(row) + (f"  [{'; '.join(flags)}]" if flags else ""),
    ]


def _table(rows: Sequence[SensitivityRow]) -> str:
    headers = [
        "rank",
        "group",
        "  feeds",
        "error dB",
        "clipped",
        "Δ points",
        "cost ms",
        "fed layers",
    ]
    cells = [headers, *(_row_cells(r) for r in rows)]
    widths = [max(len(line[i]) for line in cells) for i in range(len(headers) - 1)]

    def line(values: list[str]) -> str:
        padded = [
            v.rjust(w) if i not in (2,) else v.ljust(w)
            for i, (v, w) in enumerate(zip(values, widths, strict=False))
        ]
        return "  ".join([*padded, values[-1]]).rstrip()

    return "\n".join(line(values) for values in cells)


def summary_text(result: SensitivityResult, result_id: int) -> str:
    """The analysis as the terminal shows it: the figures, the ranked table, what to do next."""
    m = result
    chosen = m["chosen"]
    head = [
        f"Sensitivity of project {m['project_id']} (parent {m['parent_project_id']}): "
        f"{m['metric_label']} on {m['images']} images, result {result_id}",
        f"  parent {m['parent_metric']:.4f} · INT8 {m['int8_metric']:.4f}"
        + (
            f" · with {m['refitted']} collapsed ranges refitted {m['baseline_metric']:.4f}"
            if m["refitted"]
            else ""
        )
        + f" · {sum(r['measured'] for r in m['groups'])} candidates in float "
        f"{_number(m['candidates_metric'], 4)}"
        + (
            f" · recommended {len(chosen)} in float {_number(m['chosen_metric'], 4)}"
            if chosen
            else ""
        ),
        f"  {len(m['groups'])} quantizer groups ({m['quantizers']} quantizers), "
        f"{m['evaluations']} metric evaluations, {m['seconds']['total']:.0f} s",
        "",
    ]
    rows = m["groups"][:TEXT_ROWS]
    more = len(m["groups"]) - len(rows)
    tail = [f"… {more} more groups (--json lists them all)"] if more > 0 else []
    if chosen:
        tail.append(
            f"Recommended to keep in float (*): groups {', '.join(map(str, chosen))}. "
            f"Re-optimize: segtui optimize {m['parent_project_id']} --keep-float-from {result_id}"
        )
    else:
        tail.append("No group is worth keeping in float on these images.")
    return "\n".join([*head, _table(rows), "", *tail])


def _json(result: SensitivityResult, result_id: int, job_id: int | None) -> dict[str, Any]:
    from segtui.core.sensitivity import ignored_scope_names

    scope: IgnoredScopeNames = {"names": ignored_scope_names(result, result["chosen"])}
    return {**result, "result_id": result_id, "job_id": job_id, "ignored_scope": scope}


def cmd_sensitivity(args: argparse.Namespace, out: Output) -> int:
    from segtui.core.sensitivity import (
        SensitivityJobResult,
        SensitivitySettings,
        latest_sensitivity,
        stored_sensitivity,
    )

    settings = SensitivitySettings.from_values(schema_values(args, SENSITIVITY))
    with open_workspace(args) as ws:
        project = resolve_project(ws, args.project)
        job_id: int | None = None
        if args.stored:
            latest = latest_sensitivity(ws, project.id)
            if latest is None:
                raise CliError(
                    f"Project {project.id} has no stored sensitivity analysis.",
                    f"Run `segtui sensitivity {project.id}` first.",
                )
            result_id, result = latest
        else:
            with naming_options(SENSITIVITY):
                check_job(ws, JobKind.SENSITIVITY, project.id, settings.to_json())
            final = run_job(ws, JobKind.SENSITIVITY, project.id, settings.to_json(), out)
            job_id = final.id
            result_id = cast(SensitivityJobResult, final.result)["result_id"]
            result = stored_sensitivity(ws, result_id)
        out.result(_json(result, result_id, job_id), summary_text(result, result_id))
    return EXIT_OK


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "sensitivity",
        parents=[common],
        help="which quantizer groups of an INT8 project cost its accuracy (a job)",
    )
    p.add_argument("project", help="the optimized (INT8) project: id or name")
    add_schema_options(p, SENSITIVITY)
    p.add_argument(
        "--stored", action="store_true", help="print the project's latest stored analysis"
    )
    p.set_defaults(func=cmd_sensitivity)


def parse_groups(text: str) -> list[int]:
    """--groups 3,7,12 as group ids."""
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if not parts or not all(part.isascii() and part.isdigit() for part in parts):
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of group ids (e.g. 3,7,12).")
    return [int(part) for part in parts]


parse_groups.__name__ = "group ids"  # argparse names the type in its messages
