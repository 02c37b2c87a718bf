"""`segtui optimize`: INT8 quantization with NNCF, as a background job."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from segtui.cli.commands.sensitivity import parse_groups
from segtui.cli.common import MAX_ID, open_workspace, resolve_project, run_job
from segtui.cli.options import add_schema_options, naming_options, schema_values
from segtui.cli.output import EXIT_OK, CliError, Output
from segtui.core.format_presets import presets_help, resolve_preset
from segtui.core.preflight import check_job
from segtui.core.roi_rewrite import rewrite_text
from segtui.core.settings import OPTIMIZE, SettingError
from segtui.core.standalone_fq_record import standalone_text
from segtui.core.types import JobKind, Preset

if TYPE_CHECKING:
    from segtui.core.keep_float import KeepFloatLink
    from segtui.core.optimize import OptimizationRecord, OptimizeJobResult
    from segtui.core.optimize_settings import OptimizeSettings
    from segtui.core.workspace import Workspace

#: Set on the parsed arguments when --preset was given (else the model's format chooses).
PRESET_GIVEN = "preset_given"


class _PresetAction(argparse.Action):
    """Stores --preset and notes that the user gave it: without it, the format's preset wins."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        setattr(namespace, self.dest, values)
        setattr(namespace, PRESET_GIVEN, True)


def _parse_preset(text: str) -> Preset:
    try:
        return OPTIMIZE.preset.parse(text)
    except SettingError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


_parse_preset.__name__ = OPTIMIZE.preset.label  # argparse names the type in its messages


def _keep_float_settings(
    args: argparse.Namespace, ws: Workspace, project_id: int, values: dict[str, Any]
) -> tuple[OptimizeSettings, KeepFloatLink | None]:
    """The settings of a re-optimization from --keep-float-from (else the options as given)."""
    from segtui.core.keep_float import keep_float_plan
    from segtui.core.optimize_settings import OptimizeSettings

    if args.keep_float_from is None:
        if args.top is not None or args.groups is not None:
            raise CliError(
                "--top and --groups choose groups of a sensitivity analysis.",
                "Give the analysis with --keep-float-from RESULT_ID.",
            )
        model = ws.model(ws.project(project_id).model_id)
        asked = values["preset"] if getattr(args, PRESET_GIVEN, False) else None
        choice = resolve_preset(model.format_id, asked)
        return OptimizeSettings.from_values({**values, "preset": choice.preset}), None
    if args.top is not None and args.groups is not None:
        raise CliError("--top and --groups cannot be combined.", "Give one of them.")
    # Options the user changed from their defaults replace the analysed model's recipe.
    overrides = {
        name: value
        for name, value in values.items()
        if value != OPTIMIZE.field(name).default
        or (name == OPTIMIZE.preset.name and getattr(args, PRESET_GIVEN, False))
    }
    plan = keep_float_plan(
        ws, args.keep_float_from, group_ids=args.groups, top=args.top, overrides=overrides
    )
    if plan.parent_project_id != project_id:
        raise CliError(
            f"Result {args.keep_float_from} analysed a child of project "
            f"{plan.parent_project_id}, not of project {project_id}.",
            f"Run `segtui optimize {plan.parent_project_id} --keep-float-from "
            f"{args.keep_float_from}`.",
        )
    return plan.settings, plan.link


def cmd_optimize(args: argparse.Namespace, out: Output) -> int:
    from segtui.core.keep_float import LINK_PARAM

    values = schema_values(args, OPTIMIZE)
    with open_workspace(args) as ws:
        project = resolve_project(ws, args.project)
        dataset = ws.dataset(project.dataset_id)
        model = ws.model(project.model_id)
        asked = values["preset"] if getattr(args, PRESET_GIVEN, False) else None
        choice = resolve_preset(model.format_id, asked)
        settings, link = _keep_float_settings(args, ws, project.id, values)
        params = settings.to_json() if link is None else {**settings.to_json(), LINK_PARAM: link}
        with naming_options(OPTIMIZE):
            check_job(ws, JobKind.OPTIMIZE, project.id, params)
        out.note(
            f"Optimizing project {project.id} ({settings.method}, {settings.preset} preset, "
            f"{settings.subset_count(dataset.image_count)} calibration images)\n"
            + (
                f"Preset {choice.reason}"
                if link is None
                else f"Recipe of the analysed project {link['project_id']}, groups "
                f"{', '.join(map(str, link['groups']))} kept in floating point "
                f"({len(link['names'])} layers)"
            )
        )
        final = run_job(ws, JobKind.OPTIMIZE, project.id, params, out)
        result = cast("OptimizeJobResult", final.result)
        child = result["child_project_id"]
        opt: OptimizationRecord | dict[str, object] = result["optimization"] or {}
        if opt.get("max_drop_met") is False:
            out.warn(
                f"AccuracyAware could not keep the drop within {settings.max_drop} "
                f"({opt.get('reported_drop_points')} points on the validation images); "
                "the best model was kept."
            )
        text = (
            f"Child project {child}: INT8 model {result['model_id']} "
            f"(calibration {opt.get('calibration_seconds')} s, "
            f"{opt.get('ignored_names_count')} layers kept in floating point)"
        )
        record = result["optimization"]
        standalone = standalone_text(record.get("standalone_quantizers") if record else None)
        if standalone:
            text += f"\nStandalone quantizers: {standalone}"
        pooling = rewrite_text(record.get("roi_rewrites") if record else None)
        if pooling:
            text += f"\nROI pooling: {pooling}"
        out.result({**result, "job_id": final.id, "preset_choice": choice.to_json()}, text)
    return EXIT_OK


def _add_preset_option(parser: argparse.ArgumentParser) -> None:
    """--preset, whose default is the schema's but which the model's format overrides unless
    the user gives it (see core.format_presets)."""
    spec = OPTIMIZE.preset
    parser.add_argument(
        spec.flag,
        dest=spec.name,
        action=_PresetAction,
        type=_parse_preset,
        default=spec.default,
        metavar="{" + ",".join(spec.choices) + "}",
        help=f"{spec.help}; default: the model format's ({presets_help()})",
    )


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("optimize", parents=[common], help="INT8 quantization with NNCF (a job)")
    p.add_argument("project", help="project id or name")
    names = [spec.name for spec in OPTIMIZE]
    at = names.index(OPTIMIZE.preset.name)  # --preset keeps its place among the options
    add_schema_options(p, OPTIMIZE, skip=names[at:])
    _add_preset_option(p)
    add_schema_options(p, OPTIMIZE, skip=names[: at + 1])
    p.add_argument(
        "--keep-float-from",
        type=_result_id,
        metavar="RESULT_ID",
        help="re-optimize from a sensitivity analysis of a child of this project: its recipe, "
        "with the recommended groups kept in floating point",
    )
    p.add_argument(
        "--top",
        type=_positive,
        metavar="K",
        help="with --keep-float-from: keep the first K groups of the analysis in float",
    )
    p.add_argument(
        "--groups",
        type=parse_groups,
        metavar="IDS",
        help="with --keep-float-from: keep these groups in float (comma-separated ids)",
    )
    p.set_defaults(func=cmd_optimize)


def _positive(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1.")
    return int(text)


_positive.__name__ = "number"


def _result_id(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) > MAX_ID:
        raise argparse.ArgumentTypeError(f"{text!r} is not a result id.")
    return int(text)


_result_id.__name__ = "result id"
