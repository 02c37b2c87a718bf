"""The settings schemas are the one source of defaults, choices and ranges for the CLI."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

import pytest

from segtui.cli import build_parser
from segtui.core import settings
from segtui.core.settings import (
    BENCHMARK,
    DEPLOY,
    OPTIMIZE,
    PREDICT,
    REPORT,
    REPORT_GATE,
    SCHEMAS,
    SWEEP,
    Schema,
    SettingError,
    SettingField,
)
from segtui.core.types import Hint, Method

#: The subcommand whose options each schema builds.
COMMANDS = {
    "optimize": "optimize",
    "benchmark": "benchmark",
    "sweep": "sweep",
    "report": "report",
    "report check": "report",
    "predict": "predict",
    "evaluate": "evaluate",
    "deploy": "deploy",
}


def subparser(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found: argparse.ArgumentParser = action.choices[command]
            return found
    raise AssertionError("no subcommands")


def option(parser: argparse.ArgumentParser, dest: str) -> argparse.Action:
    matches = [a for a in parser._actions if a.dest == dest]
    assert len(matches) == 1, dest
    return matches[0]


@pytest.mark.parametrize("schema", [s for s in SCHEMAS if s.name in COMMANDS], ids=str)
def test_every_field_is_an_option_with_the_schema_default(schema: Schema) -> None:
    command = subparser(build_parser(), COMMANDS[schema.name])
    for spec in schema:
        action = option(command, spec.name)
        assert spec.flag in action.option_strings
        if spec.kind == "bool":
            assert action.default is spec.default
        elif spec.kind == "names":
            assert action.default == []
        else:
            assert action.default == spec.default
            if spec.kind == "choice":
                assert action.metavar == "{" + ",".join(spec.choices) + "}"


def test_changing_a_schema_default_changes_the_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    changed = dataclasses.replace(OPTIMIZE.subset_percent, default=42.0)
    monkeypatch.setattr(settings.OptimizeSchema, "subset_percent", changed)
    faster = dataclasses.replace(BENCHMARK.duration_s, default=7.5, maximum=9.0)
    monkeypatch.setattr(settings.BenchmarkSchema, "duration_s", faster)
    parser = build_parser()
    assert parser.parse_args(["optimize", "1"]).subset_percent == 42.0
    assert parser.parse_args(["benchmark", "1"]).duration_s == 7.5
    help_text = subparser(parser, "optimize").format_help()
    assert "default 42" in help_text
    benchmark_help = subparser(parser, "benchmark").format_help()
    assert "0.5–9 s; default 7.5" in benchmark_help
    # The new maximum is enforced at parse time.
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(["benchmark", "1", "--time", "9.5"])
    assert exit_info.value.code == 2


def test_choices_come_from_the_enums_and_parse_case_insensitively() -> None:
    parser = build_parser()
    args = parser.parse_args(["benchmark", "1", "--hint", "latency"])
    assert args.hint is Hint.LATENCY
    args = parser.parse_args(["optimize", "1", "--method", "accuracy-aware"])
    assert args.method is Method.ACCURACY_AWARE
    assert OPTIMIZE.method.choices == tuple(m.value for m in Method)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["optimize", "1", "--subset", "0"], "Subset size 0 is out of range"),
        (["optimize", "1", "--max-drop", "11"], "Max accuracy drop 11 is out of range"),
        (["optimize", "1", "--validation-images", "0"], "Validation images 0 is out of range"),
        (["benchmark", "1", "--batch", "0"], "Batch 0 is out of range"),
        (["benchmark", "1", "--streams", "-2"], "Streams -2 is out of range"),
        (["benchmark", "1", "--hint", "fast"], "Hint 'fast' is not one of"),
        (["sweep", "1", "--streams", "1,1"], "lists a value twice"),
        (["sweep", "1", "--batch", "1,x"], "whole numbers separated by commas"),
        (["predict", "1", "--out", "x.json", "--limit", "-1"], "Image limit -1 is out of range"),
        (["report", "1", "--threshold", "1.5"], "Score threshold 1.5 is out of range"),
        (["report", "1", "--iou", "0"], "Match IoU 0 is out of range"),
        (["deploy", "1", "--threshold", "nan"], "must be a finite number"),
    ],
)
def test_out_of_range_options_are_refused_with_the_schema_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_problems_name_each_field_and_validate_lists_them_all() -> None:
    values: dict[str, Any] = {"subset_percent": 150.0, "preset": "fast", "max_drop": 0.5}
    problems = OPTIMIZE.problems(values)
    assert set(problems) == {"subset_percent", "preset"}
    assert (
        "150" in problems["subset_percent"]
        and "above 0 and at most 100 %" in problems["subset_percent"]
    )
    with pytest.raises(SettingError) as error:
        OPTIMIZE.validate(values)
    assert error.value.field == "subset_percent"
    assert "Preset 'fast'" in error.value.message
    assert OPTIMIZE.problems({"unknown": 1}) == {"unknown": "optimize has no setting 'unknown'."}


def test_parse_and_format_round_trip() -> None:
    assert SWEEP.streams.parse(" 1, 2 ,4") == (1, 2, 4)
    assert SWEEP.streams.format((1, 2, 4)) == "1,2,4"
    assert BENCHMARK.streams.parse("auto") is None and BENCHMARK.streams.parse("3") == 3
    assert BENCHMARK.streams.default_text == "auto"
    assert SWEEP.latency_limit_ms.parse("") is None
    assert OPTIMIZE.ignore_names.parse("a, b,,c") == ("a", "b", "c")
    with pytest.raises(SettingError, match="must be a whole number"):
        BENCHMARK.batch.parse("2.5")
    with pytest.raises(SettingError, match="needs a value"):
        BENCHMARK.batch.parse("")


def test_every_numeric_field_has_a_range() -> None:
    numeric: list[SettingField[Any]] = [
        f for s in SCHEMAS for f in s if f.kind in ("int", "float", "int_list")
    ]
    assert len(numeric) >= 15
    for spec in numeric:
        assert spec.minimum is not None and spec.maximum is not None, spec.name
        assert spec.problem(spec.default) is None, spec.name


def test_lists_are_checked_element_by_element_and_the_grid_is_bounded() -> None:
    # The one bad element is named, wherever it stands in the list.
    with pytest.raises(SettingError, match=r"^Streams 0 is out of range: use 1–256\.$"):
        SWEEP.streams.parse("1,2,0,4")
    with pytest.raises(SettingError, match=r"^Batch sizes 257 is out of range"):
        SWEEP.batches.parse("257,1")
    assert SWEEP.problems({"streams": [1, -3]}) == {
        "streams": "Streams -3 is out of range: use 1–256."
    }
    SWEEP.check_grid((1, 2, 4, 8), tuple(range(1, 17)))  # 64 cells: the most allowed
    with pytest.raises(SettingError, match=r"65 cells is too many \(at most 64\)") as error:
        SWEEP.check_grid((1, 2, 3, 4, 5), tuple(range(1, 14)))
    assert error.value.field == "streams" and "fewer" in error.value.hint


def test_every_option_help_states_its_range() -> None:
    subparsers = build_parser()._subparsers
    assert subparsers is not None
    commands = subparsers._group_actions[0].choices
    assert isinstance(commands, dict)
    for command, schemas in {
        "optimize": (OPTIMIZE,),
        "benchmark": (BENCHMARK,),
        "sweep": (SWEEP,),
        "report": (REPORT, REPORT_GATE),
        "predict": (PREDICT,),
        "deploy": (DEPLOY,),
    }.items():
        actions = commands[command]._actions
        helps = {a.option_strings[0]: a.help or "" for a in actions if a.option_strings}
        for spec in (spec for schema in schemas for spec in schema):
            if spec.kind in ("int", "float", "int_list"):
                assert spec.range_text() in helps[spec.flag].replace("%%", "%"), spec.flag
