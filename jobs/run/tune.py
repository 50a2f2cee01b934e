"""Tune jobs on Ray Tune: a driver function builds one TorchTrainer per trial (Train V2's pattern).

The search space, how params enter a trial's spec and which trial is best are plain data and rules in
jobs/run/search.py; this module turns them into Ray Tune's samplers, scheduler and tuner.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from jobs.api.spec import JobSpec, SpecError
from jobs.run import storage
from jobs.run.checks import check_resources, check_spec
from jobs.run.layout import RunLayout, latest_checkpoint
from jobs.run.search import apply_params, best_trial, search_space
from jobs.run.train import build_trainer


@dataclass
class TuneResult:
    best_trial: str
    best_config: dict[str, Any]
    best_metrics: dict[str, Any]
    best_checkpoint: str | None
    trials_table: str
    run_dir: str


def to_tune_space(space: dict[str, dict[str, list]], grid: bool) -> dict[str, Any]:
    from ray import tune

    out = {}
    for key, dist in space.items():
        kind, args = next(iter(dist.items()))
        if kind == "grid" or (grid and kind == "choice"):
            out[key] = tune.grid_search(args)
        elif kind == "choice":
            out[key] = tune.choice(args)
        elif kind == "uniform":
            out[key] = tune.uniform(*args)
        elif kind == "loguniform":
            out[key] = tune.loguniform(*args)
        else:
            out[key] = tune.randint(*args)
    return out


def _trial_driver(config: dict[str, Any]) -> None:
    """One Tune trial: the job's spec with this trial's params, trained by its own TorchTrainer."""
    from ray import tune
    from ray.tune.integration.ray_train import TuneReportCallback

    trial = tune.get_context().get_trial_id()
    base = config["__spec"]
    params = {k: v for k, v in config.items() if k != "__spec"}
    spec = JobSpec.from_dict(apply_params(base, params))
    result = build_trainer(spec, trial=trial, callbacks=[TuneReportCallback()]).fit()
    storage.write_json(RunLayout.of(spec, trial).result, {
        "params": params,
        "checkpoint": result.checkpoint.path if result.checkpoint else None,
        "error": str(result.error) if result.error else None,
    })


def trials_table(histories: dict[str, list[dict[str, Any]]], trial_params: dict[str, dict[str, Any]]) -> pa.Table:
    """One row per (trial, reported epoch): the trial's params and every metric it reported."""
    rows = []
    for trial, params in sorted(trial_params.items()):
        for m in histories.get(trial, []):
            rows.append({"trial": trial, **{f"param.{k}": v for k, v in params.items()}, **m})
    keys = sorted({k for r in rows for k in r})
    return pa.table({k: [r.get(k) for r in rows] for k in keys}) if rows else pa.table({"trial": pa.array([], pa.string())})


def run_tune(spec: JobSpec) -> TuneResult:
    """Search `spec.tune`'s space on the connected cluster; resume the same-named run if it exists."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    if spec.kind != "tune" or spec.tune is None:
        raise SpecError("kind: run_tune needs a 'tune' spec with a tune section")
    check_spec(spec)
    check_resources(spec)
    t = spec.tune
    space = search_space(spec)
    from cluster import resources

    per_trial = max(spec.scaling.num_workers, 1) * spec.scaling.cpus_per_worker + 0.1
    concurrent = t.max_concurrent_trials or max(1, math.floor(resources().cpus / per_trial))
    scheduler = (ASHAScheduler(max_t=spec.optim.epochs, grace_period=min(t.grace_period, spec.optim.epochs))
                 if t.scheduler == "asha" else FIFOScheduler())
    search_alg = None
    if t.search == "optuna":
        from ray.tune.search.optuna import OptunaSearch

        search_alg = OptunaSearch(seed=spec.optim.seed)
    layout = RunLayout.of(spec)
    # The driver needs almost no CPU: the trial's TorchTrainer workers take the real resources.
    trainable = tune.with_resources(_trial_driver, {"CPU": 0.1})
    if tune.Tuner.can_restore(layout.tuner_dir):
        tuner = tune.Tuner.restore(layout.tuner_dir, trainable, resume_errored=True)
    else:
        param_space = {**to_tune_space(space, grid=t.search == "grid"), "__spec": spec.to_dict()}
        tuner = tune.Tuner(
            trainable,
            param_space=param_space,
            tune_config=tune.TuneConfig(
                metric=t.metric, mode=t.mode, num_samples=t.num_trials, scheduler=scheduler,
                search_alg=search_alg, max_concurrent_trials=concurrent),
            run_config=tune.RunConfig(name=layout.tuner_name, storage_path=layout.storage),
        )
    grid = tuner.fit()
    # Tune adds trial_id to every result a trial reports; a trial that reported nothing has no history.
    trial_params = {r.metrics["trial_id"]: {k: v for k, v in r.config.items() if k != "__spec"}
                    for r in grid if r.metrics and r.metrics.get("trial_id")}
    histories = {trial: storage.read_json(layout.for_trial(trial).metrics, []) for trial in trial_params}
    storage.write_table(layout.trials_table, trials_table(histories, trial_params))
    # The best from the trials' own histories, not Tune's result order (which a restore changes).
    found = best_trial(histories, t.metric, t.mode)
    if found is None:
        out = TuneResult("", {}, {}, None, layout.trials_table, layout.root)
    else:
        best, best_metrics = found
        trial = layout.for_trial(best)
        # A trial that reaches the scheduler's max_t is stopped by Tune before its driver returns and
        # writes its result: its checkpoints are still in the trial's Train run directory.
        checkpoint = storage.read_json(trial.result, {}).get("checkpoint") or latest_checkpoint(trial.train_run)
        out = TuneResult(best, trial_params[best], best_metrics, checkpoint, layout.trials_table, layout.root)
    storage.write_json(layout.best, dataclasses.asdict(out))
    return out
