"""Ray Train's overhead: the same epochs in a plain in-process loop, and through TorchTrainer with 1 and 2
workers. Steady state = training images/s of the epochs after the first (start-up excluded), as measured
inside the loop; wall time includes Ray's start-up.

    .venv/bin/python bench/ray_overhead.py [--model ram-cluttered60] [--epochs 4] [--train 4000]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

from cluster import connect
from jobs.api.spec import JobSpec
from jobs.data.recipes import build_recipe
from jobs.data.store import write_dataset
from jobs.run import storage
from jobs.run.layout import RunLayout
from jobs.run.loop import fit
from jobs.run.train import run_train


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="ram-cluttered60")
    ap.add_argument("--recipe", default="cluttered60")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--train", type=int, default=4000)
    ap.add_argument("--batch-size", type=int, default=64)
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="fvbench")
    splits = {"train": build_recipe(args.recipe, args.train, 0), "test": build_recipe(args.recipe, 200, 0, "test")}
    data = write_dataset(f"{tmp}/data", splits, {"recipe": args.recipe, "seed": 0})

    def spec(name: str, workers: int) -> JobSpec:
        return JobSpec.from_dict({
            "name": name, "storage_path": f"{tmp}/runs", "model": {"name": args.model},
            "data": {"path": data, "probe_count": 0},
            "optim": {"epochs": args.epochs, "batch_size": args.batch_size},
            "scaling": {"num_workers": workers}, "checkpoint": {"keep": 1}})

    def steady(s: JobSpec) -> float:
        hist = storage.read_json(RunLayout.of(s).metrics)
        return statistics.mean(h["images_per_s"] for h in hist[1:])

    rows = []
    s = spec("plain", 0)
    # A Train worker with 1 CPU runs torch on 1 thread (Ray sets OMP_NUM_THREADS); so does the baseline,
    # else the ratio measures thread counts, not Ray.
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    fit(s, lambda m, st: None)
    rows.append(("plain PyTorch loop, in process", time.perf_counter() - t0, steady(s)))
    connect(None, num_cpus=4)
    for workers in (1, 2):
        s = spec(f"ray{workers}", workers)
        t0 = time.perf_counter()
        run_train(s)
        rows.append((f"TorchTrainer, {workers} worker(s)", time.perf_counter() - t0, steady(s)))
    base = rows[0][2]
    print(f"\n{args.model} on {args.recipe}, {args.train} images x {args.epochs} epochs, batch {args.batch_size}")
    print(f"{'path':34s} {'wall s':>8s} {'steady img/s':>13s} {'vs plain':>9s}")
    for name, wall, ips in rows:
        print(f"{name:34s} {wall:8.1f} {ips:13.0f} {ips / base:9.2f}")


if __name__ == "__main__":
    main()
