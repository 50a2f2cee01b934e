"""`foveate spec schema`: the job spec's JSON schema (every field's type, default, bounds, choices and
description), for editors, other clients and the dashboard's form. Needs only `jobs.api`."""

from __future__ import annotations

import argparse
import json


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("spec", help="the job spec's JSON schema")
    ssub = p.add_subparsers(dest="spec_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda args: p.print_help() or 2)
    schema = ssub.add_parser("schema", help="print the JSON schema of a train/tune spec")
    schema.add_argument("--compact", action="store_true", help="one line instead of indented JSON")
    schema.set_defaults(func=_schema)


def _schema(args: argparse.Namespace) -> int:
    from jobs.api.spec import spec_schema

    print(json.dumps(spec_schema(), indent=None if args.compact else 2))
    return 0
