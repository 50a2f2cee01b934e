"""Tune jobs on Ray Tune: a driver function builds one TorchTrainer per trial (Train V2's pattern).

The search space, how params enter a trial's spec and which trial is best are plain data and rules in
jobs/run/search.py; this module turns them into Ray Tune's samplers, scheduler and tuner.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, TextIO

import pyarrow as pa

from jobs.api.spec import JobSpec, SpecError
from jobs.api.tables import PARAM_PREFIX
from jobs.run import storage
from jobs.run.checks import check_resources, check_spec
from jobs.run.layout import RunLayout, latest_checkpoint
from jobs.run.search import apply_params, best_trial, is_grid, search_space
from jobs.run.train import fit_trainer


@dataclass
class TuneResult:
    best_trial: str
    best_config: dict[str, Any]
    best_metrics: dict[str, Any]
    best_checkpoint: str | None
    trials_table: str
    run_dir: str


def to_tune_space(space: dict[str, dict[str, list]], search: str) -> dict[str, Any]:
    from ray import tune

    out = {}
    for key, dist in space.items():
        kind, args = next(iter(dist.items()))
        if is_grid(kind, search):  # the one grid rule, which planned_trials counts by too
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


def _trial_driver(params: dict[str, Any], spec: dict[str, Any]) -> None:
    """One Tune trial: the job's spec with this trial's params, trained by its own TorchTrainer. The spec
    comes by `tune.with_parameters` (Ray's object store), not in the trial's config: the config is what
    Tune searches and prints, the varied parameters only."""
    from ray import tune
    from ray.tune.integration.ray_train import TuneReportCallback

    trial = tune.get_context().get_trial_id()
    params = dict(params)
    spec = JobSpec.from_dict(apply_params(spec, params))
    # Known while the trial runs (the dashboard's Trials page), not only from the table at the end.
    storage.write_json(RunLayout.of(spec, trial).params, params)
    result, error = fit_trainer(spec, trial=trial, callbacks=[TuneReportCallback()])
    checkpoint = result.checkpoint if result is not None else None
    storage.write_json(RunLayout.of(spec, trial).result, {
        "params": params,
        "checkpoint": storage.uri_in(spec.storage_path, checkpoint.path) if checkpoint else None,
        "error": error,
    })
    if error:
        raise RuntimeError(error)  # the trial ERRORs in Tune (and the search goes on with the others)


# `foveate tune`'s terminal while a search runs (run_tune's `console`). Module state, not a callback
# attribute: Tune pickles its callbacks with the experiment, and an open stream does not pickle.
_console: list[TextIO] = []


def _say(line: str) -> None:
    print(line, flush=True)  # the driver's output: Ray Jobs' log and the run's driver.log
    for console in _console:  # `foveate tune` on a terminal: only these lines, Ray's own go to the log
        console.write(line + "\n")
        console.flush()


def _progress(metric: str):
    """A Tune callback printing what a user follows: a line per trial result (its parameters, epoch and
    metric) and per trial end, instead of Ray's tables (which `verbose=0` turns off)."""
    from ray.tune import Callback

    def label(trial) -> str:
        varied = ", ".join(f"{k}={v}" for k, v in sorted(trial.config.items()))
        return f"trial {trial.trial_id}" + (f" ({varied})" if varied else "")

    class Progress(Callback):
        def __init__(self):
            self.ended: set[str] = set()

        def on_trial_start(self, iteration, trials, trial, **info):
            _say(f"{label(trial)}: started")

        def on_trial_result(self, iteration, trials, trial, result, **info):
            value = result.get(metric)
            shown = f"{value:.4f}" if isinstance(value, int | float) else "-"
            _say(f"{label(trial)}: epoch {result.get('epoch', '?')}  {metric} {shown}")

        def on_trial_complete(self, iteration, trials, trial, **info):
            self.ended.add(trial.trial_id)
            _say(f"{label(trial)}: ended ({len(self.ended)} of {len(trials)} trials ended)")

        def on_trial_error(self, iteration, trials, trial, **info):
            self.ended.add(trial.trial_id)
            _say(f"{label(trial)}: failed ({trial.error_file or 'see the log'})")

    return Progress()


RELEASE_WAIT_S = 15.0  # how long Ray Train's own cleanup gets to free a finished trial's placement group


def _release_placement_groups(layout: RunLayout):
    """A Tune callback that frees a trial's Train placement group when the trial ends, before the next
    trial asks for one. Ray Train removes it itself once the trial's controller is gone; when that cleanup
    does not come (ray#54305: a trial stopped by the scheduler left its group in CREATED), the next trial's
    workers wait for resources the dead trial still holds, on a small cluster forever."""
    from ray.tune import Callback

    def release(trial_id: str) -> None:
        import time

        from ray._raylet import PlacementGroupID
        from ray.util.placement_group import PlacementGroup, placement_group_table, remove_placement_group

        try:
            found = storage.read_json(layout.for_trial(trial_id).placement_group, None)
        except (OSError, ValueError):
            return
        if not found:
            return
        pg = PlacementGroup(PlacementGroupID.from_hex(found["id"]))
        deadline = time.monotonic() + RELEASE_WAIT_S
        while placement_group_table(pg).get("state") not in ("REMOVED", None):
            if time.monotonic() > deadline:
                remove_placement_group(pg)
                print(f"trial {trial_id}: removed its workers' placement group {found['id']} (left behind)",
                      flush=True)
                return
            time.sleep(0.5)

    class Release(Callback):
        def on_trial_complete(self, iteration, trials, trial, **info):
            release(trial.trial_id)

        def on_trial_error(self, iteration, trials, trial, **info):
            release(trial.trial_id)

    return Release()


def summary(table: pa.Table, metric: str, mode: str, best: str) -> str:
    """The final table a tune run prints: a line per trial, its parameters, epochs and best metric."""
    rows = table.to_pylist()
    trials = sorted({r["trial"] for r in rows})
    params = sorted(c for c in table.column_names if c.startswith(PARAM_PREFIX))
    pick = max if mode == "max" else min
    head = ["trial", *(p.removeprefix(PARAM_PREFIX) for p in params), "epochs", metric]
    lines = []
    for trial in trials:
        mine = [r for r in rows if r["trial"] == trial]
        values = [r[metric] for r in mine if isinstance(r.get(metric), int | float)]
        cells = [trial + (" *" if trial == best else ""), *(str(mine[0].get(p)) for p in params),
                 str(len(mine)), f"{pick(values):.4f}" if values else "-"]
        lines.append(cells)
    widths = [max(len(str(c)) for c in col) for col in zip(head, *lines)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([fmt.format(*head), *(fmt.format(*cells) for cells in lines)]
                     + [f"* best trial: {best}" if best else "no trial reported a result"])


def trials_table(histories: dict[str, list[dict[str, Any]]], trial_params: dict[str, dict[str, Any]]) -> pa.Table:
    """One row per (trial, reported epoch): the trial's params and every metric it reported."""
    rows = []
    for trial, params in sorted(trial_params.items()):
        for m in histories.get(trial, []):
            rows.append({"trial": trial, **{f"{PARAM_PREFIX}{k}": v for k, v in params.items()}, **m})
    keys = sorted({k for r in rows for k in r})
    return pa.table({k: [r.get(k) for r in rows] for k in keys}) if rows else pa.table({"trial": pa.array([], pa.string())})


def run_tune(spec: JobSpec, console: TextIO | None = None) -> TuneResult:
    """Search `spec.tune`'s space on the connected cluster; resume the same-named run if it exists.
    Progress lines and the final table are printed, and also written to `console` when given."""
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
    trainable = tune.with_resources(tune.with_parameters(_trial_driver, spec=spec.to_dict()), {"CPU": 0.1})
    if tune.Tuner.can_restore(layout.tuner_dir):
        tuner = tune.Tuner.restore(layout.tuner_dir, trainable, resume_errored=True)
    else:
        param_space = to_tune_space(space, t.search)
        tuner = tune.Tuner(
            trainable,
            param_space=param_space,
            tune_config=tune.TuneConfig(
                metric=t.metric, mode=t.mode, num_samples=t.num_trials, scheduler=scheduler,
                search_alg=search_alg, max_concurrent_trials=concurrent),
            run_config=tune.RunConfig(name=layout.tuner_name, storage_path=layout.storage, verbose=0,
                                      callbacks=[_progress(t.metric), _release_placement_groups(layout)]),
        )
    _console[:] = [console] if console is not None else []
    try:
        grid = tuner.fit()
    finally:
        _console.clear()
    # Tune adds trial_id to every result a trial reports; a trial that reported nothing has no history.
    trial_params = {r.metrics["trial_id"]: dict(r.config)
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
    _console[:] = [console] if console is not None else []
    _say(summary(storage.read_table(layout.trials_table), t.metric, t.mode, out.best_trial))
    _console.clear()
    return out
