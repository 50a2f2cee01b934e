"""`foveate train SPEC` and `foveate tune SPEC`: run a job on the embedded Ray or a cluster address."""

from __future__ import annotations

import argparse
import json
import threading
import uuid

from jobs.api import paths
from jobs.api.spec import JobSpec, apply_overrides, read_spec_file


def add_commands(sub: argparse._SubParsersAction) -> None:
    for kind in ("train", "tune"):
        p = sub.add_parser(kind, help=f"run a {kind} job from a YAML/JSON spec (see examples/)")
        p.add_argument("spec", help="spec file (.yaml or .json)")
        p.add_argument("--address", default=None,
                       help="Ray cluster address (host:port, auto, ray://host:10001); default: a local Ray")
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a spec field by dotted path, e.g. optim.epochs=2 (value parsed as YAML)")
        p.add_argument("--name", default=None, help="run name (default: spec name, else a new id)")
        p.set_defaults(func=_run, kind=kind)


def _progress(spec: JobSpec, stop: threading.Event) -> None:
    """A progress bar over epochs, fed by the metrics file rank 0 writes after each epoch."""
    from tqdm import tqdm

    from jobs.run import storage
    from jobs.run.layout import RunLayout

    uri = RunLayout.of(spec).metrics
    with tqdm(total=spec.optim.epochs, desc=f"{spec.model.name}", unit="epoch") as bar:
        while not stop.wait(1.0):
            hist = storage.read_json(uri, [])
            if hist:
                bar.n = len(hist)
                last = hist[-1]
                bar.set_postfix(val_acc=f"{last.get('val_accuracy', float('nan')):.3f}",
                                iou=f"{last.get('attention_iou', float('nan')):.3f}")
                bar.refresh()


def train_with_progress(spec: JobSpec):
    """run_train with a progress bar over epochs; returns its TrainResult."""
    from jobs.run.train import run_train

    stop = threading.Event()
    bar = threading.Thread(target=_progress, args=(spec, stop), daemon=True)
    bar.start()
    try:
        return run_train(spec)
    finally:
        stop.set()
        bar.join(timeout=5)


def run_spec(path: str, kind: str, overrides: list[str], name: str | None) -> JobSpec:
    """The spec `foveate train|tune` runs: the file with `--set` and the command's kind applied, validated
    once; "" or no storage_path is the runner's default root, and paths are resolved here, where the user
    wrote them (`~user`, relative, schemes), each error naming its field."""
    # Validated once, after --set and the command's kind: a tune spec run by `foveate train` is a train job.
    d = apply_overrides(read_spec_file(path), overrides)
    d["kind"] = kind
    d["name"] = name or d.get("name") or f"{kind}-{uuid.uuid4().hex[:8]}"
    if not d.get("storage_path"):
        d["storage_path"] = paths.DEFAULT_STORAGE_ROOT
    return JobSpec.from_dict(paths.absolute_spec_paths(d))


def _run(args: argparse.Namespace) -> int:
    from cluster import connect
    from jobs.run.checks import check_spec

    spec = run_spec(args.spec, args.kind, args.set, args.name)
    check_spec(spec)  # the driver checks again; here a wrong path is reported before a local Ray starts
    if spec.kind == "tune":
        return _tune(spec, args.address)
    connect(args.address)
    result = train_with_progress(spec)
    print(json.dumps({k: v for k, v in result.metrics.items()}, indent=1, default=float))
    print(f"run directory: {result.run_dir}\ncheckpoint: {result.checkpoint_path}")
    if result.error:
        print(f"error: {result.error}")
        return 1
    return 0


def _tune(spec: JobSpec, address: str | None) -> int:
    """A search with a line per trial event on the terminal; Ray's own output (its tables, the workers'
    logs) goes to the run's driver log, as a job of the service keeps it."""
    import sys

    from cluster import connect
    from jobs.run.driver_log import DriverLog
    from jobs.run.layout import RunLayout
    from jobs.run.tune import run_tune

    log = RunLayout.of(spec).driver_log
    print(f"Ray's output: {log}", flush=True)
    console = sys.stdout
    with DriverLog(log, echo=False):
        connect(address)
        result = run_tune(spec, console=console)
    print(f"best trial {result.best_trial}: {json.dumps(result.best_config, default=float)}")
    print(json.dumps(result.best_metrics, indent=1, default=float))
    print(f"trials table: {result.trials_table}\nrun directory: {result.run_dir}\ncheckpoint: {result.best_checkpoint}")
    return 0
