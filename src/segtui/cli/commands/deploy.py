"""`segtui deploy`: a .tar.gz that runs the project's model on its own."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from segtui.cli.common import open_workspace, resolve_project
from segtui.cli.options import add_schema_options, schema_values
from segtui.cli.output import EXIT_OK, Output
from segtui.core.settings import DEPLOY


def cmd_deploy(args: argparse.Namespace, out: Output) -> int:
    from segtui.core.deploy import plan_deployment, write_deployment
    from segtui.core.deploy_config import runtime_line

    settings = schema_values(args, DEPLOY)
    with open_workspace(args) as ws:
        project = resolve_project(ws, args.project)
        plan = plan_deployment(
            ws,
            project.id,
            Path(args.out) if args.out else None,
            with_parent=settings["with_parent"],
            score_threshold=settings["threshold"],
            overwrite=settings["force"],
        )
        out.note(f"Writing {plan.out}")  # where it goes, before anything is written there
        result = write_deployment(plan)
        out.result(
            result.to_json(),
            f"Deployment package for project {project.id}: {result.path} "
            f"({result.size_bytes / 1e6:.1f} MB, {len(result.files)} files"
            f"{', with the parent model' if result.with_parent else ''}); "
            f"inside: pip install -r requirements.txt, python infer.py IMAGES\n"
            f"{runtime_line(result.runtime)}",
        )
    return EXIT_OK


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "deploy", parents=[common], help="build a .tar.gz that runs the project's model alone"
    )
    p.add_argument("project")
    p.add_argument(
        "--out",
        help="the .tar.gz to write, or a folder "
        "(default: WORKSPACE/deploy/segtui-deploy-NAME.tar.gz)",
    )
    add_schema_options(p, DEPLOY)
    p.set_defaults(func=cmd_deploy)
