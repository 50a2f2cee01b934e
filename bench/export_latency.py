"""Exported models against eager PyTorch on this CPU: file size and latency at batch 1 and 128.

    .venv/bin/python bench/export_latency.py                          # the default variants, mean path
    .venv/bin/python bench/export_latency.py --models ram-mnist28 --samples 10 --threads 2
    .venv/bin/python bench/export_latency.py --json bench/export_latency.json

Each registered variant is built at its real size (weights untrained: latency does not depend on them),
wrapped as `attention_models.export.Serving`, written as ONNX (attention_models.export.export_onnx) and as
TorchScript, and timed on the same inputs: eager PyTorch (no_grad), onnxruntime (CPU provider, its intra-op
threads set to --threads) and the TorchScript module. Latency is the median of --repeats calls after two
warm-up calls, the three taking turns. Every exported output is compared with the eager one first, so a speed figure is never for
a graph that computes something else.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from attention_models import create_model  # noqa: E402
from attention_models.export import Serving, export_onnx, export_torchscript  # noqa: E402

DEFAULT_MODELS = ["ram-mnist28", "ram-cluttered60", "dram-multidigit", "racnn-zoom", "mgcnn-zoom"]


def _median_ms(calls: dict, repeats: int) -> dict[str, float]:
    """Median ms per call of each of `calls` (name -> function). The calls take turns within each repeat,
    so a busy spell on this shared machine slows all of them alike and their ratios stay put."""
    for fn in calls.values():
        fn(), fn()  # warm-up: allocator, onnxruntime's first-run graph optimisation, the JIT's profiling runs
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, fn in calls.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: 1000 * statistics.median(t) for name, t in times.items()}


def bench_model(name: str, samples: int, batches: list[int], threads: int, repeats: int, workdir: str) -> dict:
    import onnxruntime as ort

    model = create_model(name).eval()
    serving = Serving(model, samples if model.family in ("ram", "dram") else 0)
    onnx_file, ts_file = os.path.join(workdir, f"{name}.onnx"), os.path.join(workdir, f"{name}.pt")
    t0 = time.perf_counter()
    export_onnx(serving, onnx_file)
    onnx_s = time.perf_counter() - t0
    export_torchscript(serving, ts_file)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(onnx_file, options, providers=["CPUExecutionProvider"])
    scripted = torch.jit.load(ts_file)
    row = {"model": name, "samples": serving.samples, "onnx_mb": os.path.getsize(onnx_file) / 1e6,
           "torchscript_mb": os.path.getsize(ts_file) / 1e6, "onnx_export_s": onnx_s, "latency_ms": {}}
    for batch in batches:
        inputs = serving.example_inputs(batch, seed=batch)
        feed = {n: t.numpy() for n, t in zip(serving.input_names, inputs)}
        with torch.no_grad():
            want = [t.numpy() for t in serving(*inputs)]
            for got in (session.run(None, feed), [t.numpy() for t in scripted(*inputs)]):
                for a, b in zip(got, want):
                    assert np.allclose(a, b, atol=1e-4 * max(1.0, float(np.abs(b).max(initial=0)))), name
            row["latency_ms"][batch] = _median_ms({
                "eager": lambda x=inputs: serving(*x),
                "onnxruntime": lambda f=feed: session.run(None, f),
                "torchscript": lambda x=inputs: scripted(*x),
            }, repeats)
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=DEFAULT_MODELS)
    p.add_argument("--samples", type=int, default=0, help="M sampled paths (RAM/DRAM; the others use 0)")
    p.add_argument("--batches", type=int, nargs="+", default=[1, 128])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--json", default=None, help="also write the rows here")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        for name in tqdm(args.models, desc="export + time", unit="model"):
            rows.append(bench_model(name, args.samples, args.batches, args.threads, args.repeats, workdir))
    print(f"\nthreads {args.threads}, median of {args.repeats} calls, ms per call (speed-up over eager)")
    print(f"{'model':<18}{'M':>4}{'onnx MB':>9}{'ts MB':>8}  " + "  ".join(
        f"{'b' + str(b) + ' eager':>11}{'ort':>14}{'jit':>14}" for b in args.batches))
    for r in rows:
        cells = []
        for b in args.batches:
            lat = r["latency_ms"][b]
            cells.append(f"{lat['eager']:>11.2f}" + "".join(
                f"{lat[k]:>8.2f} ({lat['eager'] / lat[k]:.1f}x)" for k in ("onnxruntime", "torchscript")))
        print(f"{r['model']:<18}{r['samples']:>4}{r['onnx_mb']:>9.2f}{r['torchscript_mb']:>8.2f}  " + "  ".join(cells))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
