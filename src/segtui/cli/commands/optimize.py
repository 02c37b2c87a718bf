"""`segtui optimize`: INT8 quantization with NNCF, as a background job."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from segtui.cli.common import open_workspace, resolve_project, run_job
from segtui.cli.options import add_schema_options, naming_options, schema_values
from segtui.cli.output import EXIT_OK, Output
from segtui.core.format_presets import presets_help, resolve_preset
from segtui.core.preflight import check_job
from segtui.core.settings import OPTIMIZE, SettingError
from segtui.core.types import JobKind, Preset

if TYPE_CHECKING:
    from segtui.core.optimize import OptimizationRecord, OptimizeJobResult

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


def cmd_optimize(args: argparse.Namespace, out: Output) -> int:
    from segtui.core.optimize_settings import OptimizeSettings

    values = schema_values(args, OPTIMIZE)
    with open_workspace(args) as ws:
        project = resolve_project(ws, args.project)
        dataset = ws.dataset(project.dataset_id)
        model = ws.model(project.model_id)
        asked = values["preset"] if getattr(args, PRESET_GIVEN, False) else None
        choice = resolve_preset(model.format_id, asked)
        settings = OptimizeSettings.from_values({**values, "preset": choice.preset})
        with naming_options(OPTIMIZE):
            check_job(ws, JobKind.OPTIMIZE, project.id, settings.to_json())
        out.note(
            f"Optimizing project {project.id} ({settings.method}, {settings.preset} preset, "
            f"{settings.subset_count(dataset.image_count)} calibration images)\n"
            f"Preset {choice.reason}"
        )
        final = run_job(ws, JobKind.OPTIMIZE, project.id, settings.to_json(), out)
        result = cast("OptimizeJobResult", final.result)
        child = result["child_project_id"]
        opt: OptimizationRecord | dict[str, object] = result["optimization"] or {}
        if opt.get("max_drop_met") is False:
            out.warn(
                f"AccuracyAware could not keep the drop within {settings.max_drop} "
                f"({opt.get('reported_drop_points')} points on the validation images); "
                "the best model was kept."
            )
        out.result(
            {**result, "job_id": final.id, "preset_choice": choice.to_json()},
            f"Child project {child}: INT8 model {result['model_id']} "
            f"(calibration {opt.get('calibration_seconds')} s, "
            f"{opt.get('ignored_names_count')} layers kept in floating point)",
        )
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
    p.set_defaults(func=cmd_optimize)
