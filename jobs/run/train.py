"""Run a train job on Ray Train: one TorchTrainer over the model-agnostic loop."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

from jobs.api.spec import JobSpec, SpecError
from jobs.run import storage
from jobs.run.checks import check_resources, check_spec
from jobs.run.layout import RunLayout
from jobs.run.loop import train_loop_per_worker

# Ray Train's worker group startup timeout: its default, or what its environment variable sets.
STARTUP_TIMEOUT_S = float(os.environ.get("RAY_TRAIN_WORKER_GROUP_START_TIMEOUT_S", "60"))


@dataclass
class TrainResult:
    metrics: dict[str, Any]
    checkpoint_path: str | None
    run_dir: str
    error: str | None = None


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
            resources_per_worker={"CPU": s.cpus_per_worker, **({"GPU": 1} if s.use_gpu else {})}),
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


def failure_message(error: BaseException, spec: JobSpec) -> str:
    """The error of a failed Ray Train run as a user reads it: a placement that never came names the
    resources it waited for and what the cluster has; anything else is Ray's own message."""
    from ray.train.v2._internal.exceptions import (
        WorkerGroupStartupFailedError,
        WorkerGroupStartupTimeoutError,
    )

    cause = getattr(error, "controller_failure", None)
    if not isinstance(cause, WorkerGroupStartupTimeoutError | WorkerGroupStartupFailedError):
        return str(error)
    from cluster import resources

    s = spec.scaling
    each = {"CPU": s.cpus_per_worker, **({"GPU": 1} if s.use_gpu else {})}
    have = resources()
    return (f"scaling: the cluster placed no {s.num_workers} worker(s) of {each} within placement_timeout_s="
            f"{s.placement_timeout_s} s (it has {have.cpus:g} CPUs, {have.gpus:g} GPUs in all, some held by other "
            f"runs); Ray: {str(cause).splitlines()[0]}")


def run_train(spec: JobSpec) -> TrainResult:
    """Fit `spec` on the connected Ray cluster and return its final metrics and checkpoint."""
    if spec.kind != "train":
        raise SpecError(f"kind: run_train needs 'train', got {spec.kind!r}")
    check_spec(spec)
    check_resources(spec)
    result = build_trainer(spec).fit()
    layout = RunLayout.of(spec)
    history = storage.read_json(layout.metrics, [])
    return TrainResult(
        metrics=history[-1] if history else (result.metrics or {}),
        checkpoint_path=result.checkpoint.path if result.checkpoint else None,
        run_dir=layout.root,
        error=failure_message(result.error, spec) if result.error else None,
    )
