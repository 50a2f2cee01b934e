"""The `foveate` command. Each area adds its subcommands through an `add_commands(subparsers)` hook,
so this file only lists the areas and dispatches."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from jobs.api.errors import UserError

# Modules that contribute subcommands: each defines add_commands(subparsers) and sets `func` on its parsers.
_COMMAND_MODULES = [
    "jobs.data.cli",
    "jobs.run.cli",
    "jobs.run.export",
    "jobs.run.evaluate",
    "jobs.api.cli",
    "jobs.api.spec_cli",
    "jobs.service.cli",
    "cluster.cli",
    "dashboard.cli",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="foveate",
        description="Train, tune and inspect visual attention models (RAM, DRAM, RA-CNN, MG-CNN) on Ray.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        importlib.import_module(name).add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0 if args.command is None else 2
    try:
        return int(args.func(args) or 0)
    except (UserError, ValueError, FileNotFoundError) as exc:
        # Bad input is the user's to fix: one line naming the field or file, never a traceback.
        print(f"foveate {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`foveate spec schema | head`): stop quietly, as other Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
