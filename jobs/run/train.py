"""Run a train job on Ray Train: one TorchTrainer over the model-agnostic loop."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jobs.api.spec import JobSpec, SpecError
from jobs.run import storage
from jobs.run.checks import check_resources, check_spec
from jobs.run.layout import RunLayout
from jobs.run.loop import train_loop_per_worker


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
            failure_config=FailureConfig(max_failures=spec.checkpoint.max_failures),
            callbacks=callbacks or None,
        ),
    )


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
        error=str(result.error) if result.error else None,
    )
