"""Ship a trained run's best checkpoint as the pretrained weights of its variant: the weights only
(attention_models/pretrained/<variant>.pt) and a manifest beside them (<variant>.json) holding the model
config they fit, the spec, the commit, the data, the minutes and epochs, and the errors `foveate evaluate`
measures on the test split (one sampled path, the mean path, M paths averaged; attention IoU).

    .venv/bin/python bench/ship_pretrained.py RUN_DIR --data data/cluttered60 --build "foveate data build ..."

The variant is the run's `model.name`; `create_model(name, pretrained=True)` and `model.init_from:
pretrained` read what this writes.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import io
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from attention_models.pretrained_files import PRETRAINED_DIR, manifest_file, weights_file  # noqa: E402
from jobs.run import checkpoints, storage  # noqa: E402
from jobs.run.evaluator import evaluate_trained  # noqa: E402
from jobs.run.layout import RunLayout  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", help="a train run directory (its best checkpoint is shipped) or a checkpoint")
    p.add_argument("--data", default=None, help="the dataset to evaluate on (default: the run's)")
    p.add_argument("--build", default="", help="the `foveate data build` command that made the data")
    p.add_argument("--samples", type=int, default=10)
    p.add_argument("--spec-file", default="", help="the examples/paper spec the run was started from")
    args = p.parse_args(argv)

    trained = checkpoints.load_trained(args.run)
    name = trained.spec.model.name
    report = evaluate_trained(args.run, data=args.data, samples=args.samples, progress=True)
    history = storage.read_json(RunLayout.at(args.run).metrics, []) if Path(args.run).is_dir() else []
    buffer = io.BytesIO()
    torch.save(trained.model.state_dict(), buffer)
    PRETRAINED_DIR.mkdir(exist_ok=True)
    weights_file(name).write_bytes(buffer.getvalue())
    best = history[trained.epoch] if 0 <= trained.epoch < len(history) else trained.metrics
    manifest = {
        "variant": name,
        "config": dataclasses.asdict(trained.model.config),
        "spec": trained.spec.to_dict(),
        "spec_file": args.spec_file,
        "commit": trained.commit,
        "data": {"path": report["data"], "build": args.build, "split": report["split"], "images": report["images"]},
        "epoch": trained.epoch,
        "epochs_run": len(history),
        "minutes": round(best.get("elapsed_s", 0) / 60, 1) if best.get("elapsed_s") else None,
        "steps": best.get("step"),
        "images_per_s": round(best.get("images_per_s", 0), 1),
        "errors": {path: {k: figures[k] for k in ("error", "attention_iou", "object_distance_px")}
                   for path, figures in report["paths"].items()},
        "samples": report["samples"],
        "sha256": hashlib.sha256(buffer.getvalue()).hexdigest(),
        "size_bytes": len(buffer.getvalue()),
    }
    manifest_file(name).write_text(json.dumps(manifest, indent=1) + "\n")
    errors = ", ".join(f"{k} {v['error']:.2%}" for k, v in manifest["errors"].items())
    print(f"shipped {name}: epoch {trained.epoch}, {manifest['size_bytes'] / 1e6:.2f} MB, test error {errors}")


if __name__ == "__main__":
    main()
