"""`foveate evaluate RUN_OR_CHECKPOINT [--data DATASET] [--split test] [--samples M]`: a trained model's
test errors (one sampled path, the mean path, M paths averaged), attention IoU, distance of each glimpse
from the object and a confusion matrix, as JSON on stdout or in --out, and a PNG of its attention on 16
test images (--png). The work is jobs/run/evaluator.py; this module imports torch only when it runs."""

from __future__ import annotations

import argparse
import json
import sys


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="test a trained model (run dir or checkpoint) on a dataset split")
    p.add_argument("source", metavar="RUN_OR_CHECKPOINT",
                   help="a run directory (train: its best checkpoint; tune: the best trial's), "
                        "a checkpoint directory, a state.pt file, or pretrained:VARIANT (the shipped weights)")
    p.add_argument("--data", default=None, metavar="DATASET",
                   help="a dataset `foveate data build` wrote (default: the one the model was trained on)")
    p.add_argument("--split", default="test", help="default: test")
    p.add_argument("--samples", type=int, default=10, metavar="M",
                   help="RAM/DRAM: glimpse paths averaged for the Monte Carlo error (default 10)")
    p.add_argument("--batch-size", type=int, default=250)
    p.add_argument("--seed", type=int, default=0, help="seed of the sampled paths (default 0)")
    p.add_argument("--limit", type=int, default=0, metavar="N", help="score only the first N images (0 = all)")
    p.add_argument("--out", default=None, metavar="FILE", help="write the JSON here instead of stdout")
    p.add_argument("--png", default=None, metavar="FILE", help="draw the attention on 16 test images")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from jobs.run.evaluator import evaluate_trained

    report = evaluate_trained(args.source, data=args.data, split=args.split, samples=args.samples,
                              batch_size=args.batch_size, seed=args.seed, limit=args.limit, picture=args.png,
                              progress=sys.stderr.isatty())
    text = json.dumps(report, indent=1)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
        paths = ", ".join(f"{k} {v['error']:.2%}" for k, v in report["paths"].items())
        print(f"{report['model']} epoch {report['epoch']} on {report['images']} {args.split} images: error {paths}")
        print(f"wrote {args.out}" + (f" and {args.png}" if args.png else ""))
    else:
        print(text)
    return 0
