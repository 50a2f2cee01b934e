"""Tune jobs on Ray Tune: a driver function builds one TorchTrainer per trial (Train V2's pattern).

Search spaces are plain data keyed by dotted spec paths ("lr" is short for "optim.lr";
"model.num_glimpses" is a model override), so a spec, the CLI and the dashboard all speak the same keys:
    {"model.num_glimpses": {"choice": [4, 6, 8]}, "lr": {"loguniform": [1e-4, 3e-3]}}
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from attention_models import model_config, model_family
from jobs.api.spec import JobSpec, OptimSpec, SpecError
from jobs.run import storage
from jobs.run.checks import check_resources, check_spec
from jobs.run.loop import run_dir
from jobs.run.train import build_trainer

# The hyperparameters that matter for each family (papers.md), ready to use by name.
SEARCH_SPACES: dict[str, dict[str, dict[str, list]]] = {
    "ram": {
        "model.num_glimpses": {"choice": [4, 6, 8]},
        "model.patch_size": {"choice": [8, 12]},
        "model.num_scales": {"choice": [1, 2, 3]},
        "model.location_std": {"choice": [0.05, 0.1, 0.2]},
        "lr": {"loguniform": [1e-4, 3e-3]},
    },
    "dram": {
        "model.glimpses_per_label": {"choice": [2, 3, 4]},
        "model.patch_size": {"choice": [8, 12]},
        "model.num_scales": {"choice": [1, 2]},
        "model.location_std": {"choice": [0.05, 0.1, 0.2]},
        "lr": {"loguniform": [1e-4, 3e-3]},
    },
    "racnn": {
        "model.margin": {"uniform": [0.01, 0.2]},
        "model.num_scales": {"choice": [2, 3]},
        "model.mask_steepness": {"choice": [5.0, 10.0, 20.0]},
        "lr": {"loguniform": [1e-4, 3e-3]},
    },
    "mgcnn": {
        "lr": {"loguniform": [1e-4, 3e-3]},
        "optim.weight_decay": {"choice": [0.0, 1e-4]},
    },
}
_SAMPLERS = ("choice", "uniform", "loguniform", "randint", "grid")


@dataclass
class TuneResult:
    best_trial: str
    best_config: dict[str, Any]
    best_metrics: dict[str, Any]
    best_checkpoint: str | None
    trials_table: str
    run_dir: str


def search_space(spec: JobSpec) -> dict[str, dict[str, list]]:
    """The named space of the spec's family merged with the spec's per-key overrides, validated."""
    assert spec.tune is not None
    family = model_family(spec.model.name)
    if spec.tune.space not in ("default", "none"):
        raise SpecError(f"tune.space: unknown space {spec.tune.space!r}; known: 'default' (the family's), 'none'")
    named = {} if spec.tune.space == "none" else SEARCH_SPACES[family]
    space = {_normalise_key(k): copy.deepcopy(v) for k, v in named.items()}
    for key, dist in spec.tune.params.items():
        space[_normalise_key(key)] = dist
    # Keep only keys this model has (a family space may name a field a variant lacks).
    fields = {f.name for f in dataclasses.fields(type(model_config(spec.model.name)))}
    space = {k: v for k, v in space.items()
             if not k.startswith("model.") or k.split(".", 1)[1] in fields or k in _param_keys(spec)}
    for key, dist in space.items():
        _validate_dist(key, dist, fields)
    if not space:
        raise SpecError("tune.params: the search space is empty")
    return space


def _param_keys(spec: JobSpec) -> set[str]:
    return {_normalise_key(k) for k in spec.tune.params} if spec.tune else set()


def _normalise_key(key: str) -> str:
    optim = {f.name for f in dataclasses.fields(OptimSpec)}
    return f"optim.{key}" if key in optim else key


def _validate_dist(key: str, dist: Any, model_fields: set[str]) -> None:
    where = f"tune.params.{key}"
    section, _, name = key.partition(".")
    if section == "model":
        if name not in model_fields:
            raise SpecError(f"{where}: the model has no field {name!r}")
    elif section == "optim":
        if name not in {f.name for f in dataclasses.fields(OptimSpec)}:
            raise SpecError(f"{where}: optim has no field {name!r}")
    else:
        raise SpecError(f"{where}: keys are 'model.FIELD', 'optim.FIELD' or an optim field such as 'lr'")
    if not (isinstance(dist, dict) and len(dist) == 1 and next(iter(dist)) in _SAMPLERS):
        raise SpecError(f"{where}: must be one of {{{', '.join(s + ': [...]' for s in _SAMPLERS)}}}")
    kind, args = next(iter(dist.items()))
    if not isinstance(args, list) or not args:
        raise SpecError(f"{where}.{kind}: must be a non-empty list")
    if kind in ("uniform", "loguniform", "randint"):
        if len(args) != 2 or not args[0] < args[1]:
            raise SpecError(f"{where}.{kind}: must be [low, high] with low < high")
        if kind == "loguniform" and args[0] <= 0:
            raise SpecError(f"{where}.loguniform: low must be > 0")


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


def apply_params(spec_dict: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """A spec dict with the sampled params written into it (model.* go into model.overrides)."""
    d = copy.deepcopy(spec_dict)
    for key, value in params.items():
        section, _, name = key.partition(".")
        if section == "model":
            d["model"].setdefault("overrides", {})[name] = value
        else:
            d[section][name] = value
    d["kind"] = "train"
    d["tune"] = None
    return d


def _trial_driver(config: dict[str, Any]) -> None:
    """One Tune trial: the job's spec with this trial's params, trained by its own TorchTrainer."""
    from ray import tune
    from ray.tune.integration.ray_train import TuneReportCallback

    trial = tune.get_context().get_trial_id()
    base = config["__spec"]
    params = {k: v for k, v in config.items() if k != "__spec"}
    spec = JobSpec.from_dict(apply_params(base, params))
    trainer = build_trainer(spec, trial=trial, callbacks=[TuneReportCallback()], name=f"{spec.name}-{trial}")
    result = trainer.fit()
    storage.write_json(storage.join(run_dir(spec, trial), "result.json"), {
        "params": params,
        "checkpoint": result.checkpoint.path if result.checkpoint else None,
        "error": str(result.error) if result.error else None,
    })


def trials_table(spec: JobSpec, trial_params: dict[str, dict[str, Any]]) -> pa.Table:
    """One row per (trial, reported epoch): the trial's params and every metric it reported."""
    rows = []
    for trial, params in sorted(trial_params.items()):
        for m in storage.read_json(storage.join(run_dir(spec, trial), "metrics.json"), []):
            rows.append({"trial": trial, **{f"param.{k}": v for k, v in params.items()}, **m})
    keys = sorted({k for r in rows for k in r})
    return pa.table({k: [r.get(k) for r in rows] for k in keys}) if rows else pa.table({"trial": pa.array([], pa.string())})


def latest_checkpoint(train_run: str) -> str | None:
    """The newest `checkpoint_*` directory of a Ray Train run (their names sort by time), or None."""
    import pyarrow.fs as pafs

    fs, path = storage.resolve(train_run)
    if fs.get_file_info(path).type != pafs.FileType.Directory:
        return None
    dirs = sorted(i.base_name for i in fs.get_file_info(pafs.FileSelector(path))
                  if i.type == pafs.FileType.Directory and i.base_name.startswith("checkpoint_"))
    return storage.join(train_run, dirs[-1]) if dirs else None


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
    name = spec.name or "tune"
    storage_path = spec.storage_path if "://" in spec.storage_path else os.path.abspath(
        os.path.expanduser(spec.storage_path))
    # The driver needs almost no CPU: the trial's TorchTrainer workers take the real resources.
    trainable = tune.with_resources(_trial_driver, {"CPU": 0.1})
    path = storage.join(storage_path, f"{name}-tuner")
    if tune.Tuner.can_restore(path):
        tuner = tune.Tuner.restore(path, trainable, resume_errored=True)
    else:
        param_space = {**to_tune_space(space, grid=t.search == "grid"), "__spec": spec.to_dict()}
        tuner = tune.Tuner(
            trainable,
            param_space=param_space,
            tune_config=tune.TuneConfig(
                metric=t.metric, mode=t.mode, num_samples=t.num_trials, scheduler=scheduler,
                search_alg=search_alg, max_concurrent_trials=concurrent),
            run_config=tune.RunConfig(name=f"{name}-tuner", storage_path=storage_path),
        )
    grid = tuner.fit()
    trial_params = {r.metrics.get("trial_id") or os.path.basename(r.path).split("_")[1]: {
        k: v for k, v in r.config.items() if k != "__spec"} for r in grid}
    table = trials_table(spec, trial_params)
    table_uri = storage.join(run_dir(spec), "trials.parquet")
    storage.write_table(table_uri, table)
    best = grid.get_best_result(metric=t.metric, mode=t.mode, scope="all")
    best_trial = best.metrics.get("trial_id") if best.metrics else None
    best_trial = best_trial or next(iter(trial_params))
    history = storage.read_json(storage.join(run_dir(spec, best_trial), "metrics.json"), [])
    info = storage.read_json(storage.join(run_dir(spec, best_trial), "result.json"), {})
    if not info.get("checkpoint"):
        # A trial that reaches the scheduler's max_t is stopped by Tune before its driver returns and
        # writes result.json: its checkpoints are still in the trial's Train run directory.
        info["checkpoint"] = latest_checkpoint(storage.join(storage_path, f"{name}-{best_trial}"))
    pick = max if t.mode == "max" else min
    best_metrics = pick(history, key=lambda m: m.get(t.metric, float("nan"))) if history else {}
    out = TuneResult(best_trial, trial_params.get(best_trial, {}), best_metrics, info.get("checkpoint"),
                     table_uri, run_dir(spec))
    storage.write_json(storage.join(run_dir(spec), "best.json"), dataclasses.asdict(out))
    return out
