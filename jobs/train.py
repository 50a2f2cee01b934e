"""Run a train job on Ray Train: one TorchTrainer over the model-agnostic loop."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from jobs.spec import JobSpec, SpecError
from jobs.train_loop import run_dir, train_loop_per_worker


@dataclass
class TrainResult:
    metrics: dict[str, Any]
    checkpoint_path: str | None
    run_dir: str
    error: str | None = None


def check_resources(spec: JobSpec, free: bool = False, res=None) -> None:
    """Refuse a scaling request the cluster can never place (Ray would wait for it for ever).

    `res` (a cluster.ClusterResources) defaults to the connected cluster's; the job service passes
    what the Ray dashboard reports, since it does not join the cluster as a driver.
    """
    from cluster import resources

    res = res or resources()
    need_cpu = max(spec.scaling.num_workers, 1) * spec.scaling.cpus_per_worker
    have_cpu = res.free_cpus if free else res.cpus
    if need_cpu > have_cpu:
        raise SpecError(
            f"scaling: {spec.scaling.num_workers} workers x {spec.scaling.cpus_per_worker} CPUs = {need_cpu:g} "
            f"CPUs, but the cluster has {have_cpu:g}; lower scaling.num_workers or scaling.cpus_per_worker")
    if spec.scaling.use_gpu and max(spec.scaling.num_workers, 1) > res.gpus:
        raise SpecError(
            f"scaling.use_gpu: {max(spec.scaling.num_workers, 1)} workers need one GPU each, "
            f"but the cluster has {res.gpus:g} GPUs")


def check_data(spec: JobSpec) -> None:
    """Refuse a spec whose dataset or splits do not exist, before Ray starts a worker (there it would
    fail on every worker, be retried by the failure policy, and end in a traceback)."""
    from jobs.data.store import read_manifest

    try:
        manifest = read_manifest(spec.data.path)
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"data.path: {exc}; build one with `foveate data build`") from None
    for field in ("train_split", "val_split"):
        split = getattr(spec.data, field)
        if split not in manifest["shards"]:
            raise ValueError(f"data.{field}: no split {split!r} in {spec.data.path} "
                             f"(has {', '.join(manifest['shards'])})")
    if spec.data.hflip and manifest.get("sequence_length"):
        raise ValueError(f"data.hflip: {spec.data.path} holds digit sequences read left to right; "
                         "a mirror would reverse them (use data.max_shift only)")
    if spec.data.min_crop < 1 and manifest.get("sequence_length"):
        raise ValueError(f"data.min_crop: {spec.data.path} holds digit sequences; a window could cut off a digit "
                         "that the labels still read (use data.max_shift only)")


def _storage(spec: JobSpec) -> str:
    return spec.storage_path if "://" in spec.storage_path else os.path.abspath(os.path.expanduser(spec.storage_path))


def build_trainer(spec: JobSpec, trial: str = "", callbacks: list | None = None, name: str | None = None):
    """The TorchTrainer of a spec (the same for a train job and for one trial of a tune job)."""
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    s = spec.scaling
    return TorchTrainer(
        train_loop_per_worker,
        train_loop_config={"spec": spec.to_dict(), "trial": trial},
        scaling_config=ScalingConfig(
            num_workers=s.num_workers, use_gpu=s.use_gpu,
            resources_per_worker={"CPU": s.cpus_per_worker, **({"GPU": 1} if s.use_gpu else {})}),
        run_config=RunConfig(
            # Named after the job (never a timestamp): a restarted job finds its checkpoints and resumes.
            name=name or spec.name or "run",
            storage_path=_storage(spec),
            checkpoint_config=CheckpointConfig(
                num_to_keep=spec.checkpoint.keep,
                checkpoint_score_attribute=spec.checkpoint.score,
                checkpoint_score_order=spec.checkpoint.mode),
            failure_config=FailureConfig(max_failures=spec.checkpoint.max_failures),
            callbacks=callbacks or None,
        ),
    )


def run_train(spec: JobSpec) -> TrainResult:
    """Fit `spec` on the connected Ray cluster and return its final metrics and checkpoint."""
    if spec.kind != "train":
        raise SpecError(f"kind: run_train needs 'train', got {spec.kind!r}")
    check_data(spec)
    check_resources(spec)
    result = build_trainer(spec).fit()
    from jobs import storage

    history = storage.read_json(storage.join(run_dir(spec), "metrics.json"), [])
    return TrainResult(
        metrics=history[-1] if history else (result.metrics or {}),
        checkpoint_path=result.checkpoint.path if result.checkpoint else None,
        run_dir=run_dir(spec),
        error=str(result.error) if result.error else None,
    )
