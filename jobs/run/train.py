"""Run a train job on Ray Train: one TorchTrainer over the model-agnostic loop."""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from typing import Any

from jobs.api.spec import JobSpec, SpecError
from jobs.run import storage
from jobs.run.checks import check_resources, check_spec
from jobs.run.layout import RunLayout, best_checkpoint
from jobs.run.loop import train_loop_per_worker

# Ray Train's worker group startup timeout: its default, or what its environment variable sets.
STARTUP_TIMEOUT_S = float(os.environ.get("RAY_TRAIN_WORKER_GROUP_START_TIMEOUT_S", "60"))


@dataclass
class TrainResult:
    metrics: dict[str, Any]
    checkpoint_path: str | None
    run_dir: str
    error: str | None = None
    # Each resume from a checkpoint after workers were lost (RunLayout.resumes): epoch, from_checkpoint_epoch.
    resumes: list[dict[str, Any]] = field(default_factory=list)
    # The best epoch by checkpoint.score / checkpoint.mode: its metrics, and its checkpoint (what
    # `foveate evaluate` and `foveate export` read from the run; `checkpoint_path` is the last epoch's).
    best_metrics: dict[str, Any] = field(default_factory=dict)
    best_checkpoint: str | None = None


def best_epoch(history: list[dict[str, Any]], score: str, mode: str) -> dict[str, Any]:
    """The metrics of the best epoch in `history` by `score` ("max"/"min" `mode`; the later among equals,
    NaN never best); {} for an empty history."""
    def rank(m: dict[str, Any]) -> float:
        v = m.get(score)
        if not isinstance(v, int | float) or not math.isfinite(v):
            return -math.inf
        return v if mode == "max" else -v

    return max(reversed(history), key=rank, default={})


def build_trainer(spec: JobSpec, trial: str = "", callbacks: list | None = None):
    """The TorchTrainer of a spec (the same for a train job and for one trial of a tune job); its Ray
    Train run is the layout's `train_run` (`<name>`, or `<name>-<trial>` for a trial)."""
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    s = spec.scaling
    layout = RunLayout.of(spec, trial)
    return TorchTrainer(
        train_loop_per_worker,
        train_loop_config={"spec": spec.to_dict(), "trial": trial},
        scaling_config=ScalingConfig(
            num_workers=s.num_workers, use_gpu=s.use_gpu,
            resources_per_worker={"CPU": s.cpus_per_worker, **({"GPU": 1} if s.use_gpu else {})},
            placement_strategy=s.placement_strategy),
        run_config=RunConfig(
            # Named after the job (never a timestamp): a restarted job finds its checkpoints and resumes.
            name=layout.train_name,
            storage_path=layout.storage,
            checkpoint_config=CheckpointConfig(
                num_to_keep=spec.checkpoint.keep,
                checkpoint_score_attribute=spec.checkpoint.score,
                checkpoint_score_order=spec.checkpoint.mode),
            failure_config=FailureConfig(
                max_failures=spec.checkpoint.max_failures,
                # Each failed placement of the worker group is one controller failure, after Ray Train's
                # 60 s startup timeout: allow as many as fit in the spec's placement timeout, then fail.
                controller_failure_limit=max(0, math.ceil(s.placement_timeout_s / STARTUP_TIMEOUT_S) - 1)),
            callbacks=callbacks or None,
        ),
    )


# The last line of a Python traceback: "OSError: When resolving region for bucket 'b': ...".
_EXCEPTION_LINE = re.compile(r"^(?:[A-Za-z_][\w.]*\.)?[A-Za-z_]\w*(?:Error|Exception|Exit|Interrupt): .+$", re.M)


def _one_line(error: BaseException) -> str:
    """A worker's failure as one line: the traceback's last exception line (Ray ships the worker's
    traceback as text), else the message's first line."""
    text = str(error).strip()
    lines = _EXCEPTION_LINE.findall(text)
    return lines[-1] if lines else (text.splitlines() or [type(error).__name__])[0]


def failure_message(error: BaseException, spec: JobSpec) -> str:
    """The error of a failed Ray Train run as a user reads it, in one line per distinct cause: a placement
    that never came names the resources it waited for and what the cluster has; a worker's failure is
    its exception's line with the ranks that raised it (never the tracebacks: those are in the log)."""
    from ray.train import WorkerGroupError
    from ray.train.v2._internal.exceptions import (
        WorkerGroupStartupFailedError,
        WorkerGroupStartupTimeoutError,
    )

    if isinstance(error, WorkerGroupError) and error.worker_failures:
        causes: dict[str, list[int]] = {}
        for rank, failure in sorted(error.worker_failures.items()):
            causes.setdefault(_one_line(failure), []).append(rank)
        return "; ".join(f"worker rank {', '.join(map(str, ranks))}: {line}" for line, ranks in causes.items())
    cause = getattr(error, "controller_failure", None)
    if not isinstance(cause, WorkerGroupStartupTimeoutError | WorkerGroupStartupFailedError):
        return _one_line(cause or error)
    from cluster import resources

    s = spec.scaling
    each = {"CPU": s.cpus_per_worker, **({"GPU": 1} if s.use_gpu else {})}
    have = resources()
    return (f"scaling: the cluster placed no {s.num_workers} worker(s) of {each} ({s.placement_strategy}) within "
            f"placement_timeout_s={s.placement_timeout_s} s (it has {have.nodes} node(s), {have.cpus:g} CPUs, "
            f"{have.gpus:g} GPUs in all, some held by other runs); Ray: {str(cause).splitlines()[0]}")


def fit_trainer(spec: JobSpec, trial: str = "", callbacks: list | None = None) -> tuple[Any, str | None]:
    """Run `spec`'s TorchTrainer: (Ray's Result, None), or (None, failure_message) when training failed
    (Ray Train raises once the failure policy gives up)."""
    from ray.train import TrainingFailedError

    try:
        return build_trainer(spec, trial=trial, callbacks=callbacks).fit(), None
    except TrainingFailedError as exc:
        return None, failure_message(exc, spec)


def run_train(spec: JobSpec) -> TrainResult:
    """Fit `spec` on the connected Ray cluster and return its final metrics and checkpoint."""
    if spec.kind != "train":
        raise SpecError(f"kind: run_train needs 'train', got {spec.kind!r}")
    check_spec(spec)
    check_resources(spec)
    result, error = fit_trainer(spec)
    layout = RunLayout.of(spec)
    history = storage.read_json(layout.metrics, [])
    checkpoint = result.checkpoint if result is not None else None
    best = best_checkpoint(layout.train_run, spec.checkpoint.mode)
    return TrainResult(
        metrics=history[-1] if history else ((result.metrics or {}) if result is not None else {}),
        checkpoint_path=storage.uri_in(spec.storage_path, checkpoint.path) if checkpoint else None,
        run_dir=layout.root,
        error=error,
        resumes=storage.read_json(layout.resumes, []),
        best_metrics=best_epoch(history, spec.checkpoint.score, spec.checkpoint.mode),
        best_checkpoint=storage.uri_in(spec.storage_path, best) if best else None,
    )
