"""Ray Train's overhead and scaling: the same epochs in a plain in-process loop, and through TorchTrainer
with 1 and 2 workers (1 CPU, so 1 torch thread, each). Steady state = training images/s of the epochs
after the first (start-up excluded), as measured inside the loop (all workers' images); wall time includes
Ray's start-up. With --repeats N the three runs alternate N times and each figure is the median, so a
noisy minute on the machine moves every column alike. For 2 workers it also reports `sync_fraction`: the
share of each epoch rank 0 waited for the gradients' mean (the one all-reduce per step, jobs/run/loop.py).

    .venv/bin/python bench/ray_overhead.py [--model ram-cluttered60] [--epochs 4] [--train 12000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from cluster import connect
from jobs.api.spec import JobSpec
from jobs.data.recipes import build_recipe
from jobs.data.store import write_dataset
from jobs.run import storage
from jobs.run.layout import RunLayout
from jobs.run.loop import fit
from jobs.run.train import run_train

PATHS = {0: "plain PyTorch loop, in process", 1: "TorchTrainer, 1 worker", 2: "TorchTrainer, 2 workers"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="ram-cluttered60")
    ap.add_argument("--recipe", default="cluttered60")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--train", type=int, default=12000)
    ap.add_argument("--batch-size", type=int, default=64, help="per worker")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--json", default=None, help="also write the figures here")
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

    def steady(s: JobSpec, key: str = "images_per_s") -> float:
        hist = storage.read_json(RunLayout.of(s).metrics)
        return statistics.mean(h.get(key, float("nan")) for h in hist[1:])

    # A Train worker with 1 CPU runs torch on 1 thread (Ray sets OMP_NUM_THREADS); so does the baseline,
    # else the ratio measures thread counts, not Ray.
    torch.set_num_threads(1)
    connect(None, num_cpus=4)
    runs: dict[int, list[tuple[float, float, float]]] = {w: [] for w in PATHS}
    for r in range(args.repeats):
        for workers in PATHS:
            s = spec(f"w{workers}-r{r}", workers)
            t0 = time.perf_counter()
            fit(s, lambda m, st: None) if workers == 0 else run_train(s)
            sync = steady(s, "sync_fraction") if workers == 2 else float("nan")
            runs[workers].append((time.perf_counter() - t0, steady(s), sync))
            print(f"repeat {r + 1}/{args.repeats}: {PATHS[workers]}: {runs[workers][-1][1]:.0f} images/s", flush=True)
    rows = {w: tuple(statistics.median(x[i] for x in runs[w]) for i in range(3)) for w in PATHS}
    plain, one = rows[0][1], rows[1][1]
    print(f"\n{args.model} on {args.recipe}, {args.train} images x {args.epochs} epochs, batch {args.batch_size} "
          f"per worker, median of {args.repeats}")
    print(f"{'path':32s} {'wall s':>7s} {'steady img/s':>13s} {'vs plain':>9s} {'vs 1 worker':>12s}")
    for w, (wall, ips, _) in rows.items():
        print(f"{PATHS[w]:32s} {wall:7.1f} {ips:13.0f} {ips / plain:9.2f} {ips / one:12.2f}")
    print(f"2 workers: rank 0 waited {rows[2][2]:.1%} of each epoch for the gradients' mean")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "model": args.model, "train": args.train, "epochs": args.epochs, "batch_size": args.batch_size,
            "repeats": args.repeats, "sync_fraction_2_workers": rows[2][2],
            "rows": [{"path": PATHS[w], "workers": w, "wall_s": wall, "images_per_s": ips,
                      "vs_plain": ips / plain, "vs_1_worker": ips / one} for w, (wall, ips, _) in rows.items()]},
            indent=1))


if __name__ == "__main__":
    main()
