"""`foveate export RUN_OR_CHECKPOINT --format onnx|torchscript --out FILE [--samples M]`, also runnable as
`python -m jobs.run.export ...` (what the job service's ExportModel runs, so the service process itself
never imports torch). The work is jobs/run/exporter.py; this module imports torch only when it runs.
"""

from __future__ import annotations

import argparse
import sys

from jobs.api.errors import UserError
from jobs.api.exports import FORMATS, ExportRequest, card_path


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a trained model (run dir or checkpoint) as ONNX or TorchScript")
    _arguments(p)
    p.set_defaults(func=_run)


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", metavar="RUN_OR_CHECKPOINT",
                   help="a run directory (train: its best checkpoint; tune: the best trial's), "
                        "a checkpoint directory or a state.pt file")
    p.add_argument("--format", default="onnx", choices=list(FORMATS), help="default: onnx")
    p.add_argument("--out", required=True, metavar="FILE", help="the file to write; the model card goes beside it")
    p.add_argument("--samples", type=int, default=0, metavar="M",
                   help="RAM/DRAM: M sampled glimpse paths per image, their noise an input of the graph "
                        "(default 0: the deterministic mean path)")


def _run(args: argparse.Namespace) -> int:
    from jobs.run.exporter import PARITY_BATCH, export_trained

    request = ExportRequest(format=args.format, samples=args.samples)
    card = export_trained(args.source, request, args.out, progress=sys.stderr.isatty())
    worst = max(card["parity"]["max_relative_difference"].values(), default=0.0)
    print(f"wrote {args.out} ({card['size_bytes'] / 1e6:.2f} MB, {card['format']}"
          + (f", opset {card['opset']}" if card.get("opset") else "") + ")")
    print(f"wrote {card_path(args.out)}")
    print(f"parity with the eager model on {PARITY_BATCH} new images: max relative difference {worst:.2e}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m jobs.run.export ...`: the same command as `foveate export`, errors as one line."""
    parser = argparse.ArgumentParser(prog="foveate export")
    _arguments(parser)
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except (UserError, ValueError, FileNotFoundError) as exc:
        print(f"foveate export: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
