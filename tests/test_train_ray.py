"""Training and tuning on the session's real local Ray: Train workers (DDP over gloo), resume, failures, Tune."""

from __future__ import annotations

import contextlib
import os
import signal
import time

import pytest

from attention_models import list_models
from jobs.api.spec import JobSpec, SpecError
from jobs.data.recipes import build_recipe
from jobs.data.store import write_dataset
from jobs.run import record_files, storage
from jobs.run.checkpoints import load_trained
from jobs.run.layout import RunLayout
from jobs.run.train import run_train
from jobs.run.tune import run_tune

pytestmark = [pytest.mark.ray, pytest.mark.slow]

# Per family: the smallest registered variant, overrides that make it tiny, and its recipe.
TINY = {
    "ram": ("ram-mnist28", {"num_glimpses": 2}, "mnist28", {}),
    "dram": ("dram-multidigit", {"image_size": 64, "max_digits": 2, "hidden": 32, "classifier_hidden": 32,
                                 "context_size": 16, "glimpses_per_label": 1},
             "multidigit", {"size": 64, "max_digits": 2}),
    "racnn": ("racnn-zoom", {}, "zoom", {}),
    "mgcnn": ("mgcnn-zoom", {}, "zoom", {}),
}
FAMILIES = [f for f, (name, *_) in TINY.items() if name in list_models()]


@pytest.fixture(scope="module")
def datasets(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("ds")
    out = {}
    for family in FAMILIES:
        _, _, recipe, opts = TINY[family]
        splits = {s: build_recipe(recipe, count=n, seed=0, split=s, **opts) for s, n in (("train", 64), ("test", 16))}
        out[family] = write_dataset(str(root / family), splits, {"recipe": recipe, "seed": 0})
    return out


def _spec(datasets, tmp_path, family="ram", name="job", **sections) -> JobSpec:
    variant, overrides, *_ = TINY[family]
    d = {
        "name": name, "storage_path": str(tmp_path),
        "model": {"name": variant, "overrides": overrides},
        "data": {"path": datasets[family], "probe_count": 4},
        "optim": {"epochs": 1, "batch_size": 16, "attention_init_steps": 1, "alternate_every": 1},
        "scaling": {"num_workers": 2},
        "checkpoint": {"keep": 2},
    }
    for k, v in sections.items():
        d[k] = {**d.get(k, {}), **v} if isinstance(v, dict) else v
    return JobSpec.from_dict(d)


@pytest.mark.parametrize("family", FAMILIES)
def test_two_workers_report_metrics_record_and_checkpoint(ray_session, datasets, tmp_path, family):
    spec = _spec(datasets, tmp_path, family)
    result = run_train(spec)
    assert result.error is None
    assert result.metrics["epoch"] == 0 and "val_accuracy" in result.metrics and "attention_iou" in result.metrics
    assert result.checkpoint_path and os.path.exists(os.path.join(result.checkpoint_path, "state.pt"))
    table = record_files.read_records(RunLayout.at(result.run_dir), epoch=0)
    assert table is not None and table.num_rows == 4


def test_restarted_run_resumes_from_its_last_checkpoint(ray_session, datasets, tmp_path):
    one = _spec(datasets, tmp_path, name="resume", scaling={"num_workers": 1})
    run_train(one)
    two = _spec(datasets, tmp_path, name="resume", scaling={"num_workers": 1}, optim={"epochs": 3})
    result = run_train(two)
    history = storage.read_json(RunLayout.of(two).metrics)
    assert [h["epoch"] for h in history] == [0, 1, 2]
    assert result.metrics["epoch"] == 2
    # What `foveate export` and `foveate evaluate` read from the run directory: the best epoch's checkpoint
    # by checkpoint.score (the result names it), with that epoch's metrics.
    trained = load_trained(result.run_dir)
    assert trained.metrics["val_accuracy"] == max(h["val_accuracy"] for h in history)
    assert trained.checkpoint.startswith(result.best_checkpoint)  # (maybe of the first run: epochs 1)
    assert result.best_metrics["val_accuracy"] == trained.metrics["val_accuracy"]


def test_unplaceable_scaling_is_refused_before_ray_waits(ray_session, datasets, tmp_path):
    spec = _spec(datasets, tmp_path, scaling={"num_workers": 64})
    with pytest.raises(SpecError, match="scaling: 64 workers"):
        run_train(spec)


def test_tune_with_asha_names_a_best_trial(ray_session, datasets, tmp_path):
    """(test_small_cluster.py runs a 4-trial ASHA search end to end through the service; 3 trials suffice
    here for the table, the tie rule, the best checkpoint and the restore.)"""
    spec = _spec(datasets, tmp_path, name="tune", kind="tune", scaling={"num_workers": 1},
                 optim={"epochs": 2}, data={"probe_count": 2},
                 tune={"space": "none", "params": {"model.num_glimpses": {"choice": [1, 2]},
                                                   "lr": {"loguniform": [1e-3, 1e-2]}},
                       "num_trials": 3, "scheduler": "asha", "grace_period": 1})
    result = run_tune(spec)
    table = storage.read_table(result.trials_table).to_pylist()
    trials = {r["trial"] for r in table}
    assert len(trials) == 3
    assert result.best_trial in trials
    assert set(result.best_config) == {"model.num_glimpses", "optim.lr"}
    assert all("attention_iou" in r and "param.model.num_glimpses" in r for r in table)
    # The tie rule (tiny trials often tie on val_accuracy): the best value of any epoch of any trial, the
    # first to reach it (fewest epochs, then steps), then the smallest trial id.
    top = max(r["val_accuracy"] for r in table)
    assert result.best_metrics["val_accuracy"] == top
    first = min((r["epoch"], r["step"], r["trial"]) for r in table if r["val_accuracy"] == top)
    assert (result.best_metrics["epoch"], result.best_metrics["step"], result.best_trial) == first
    assert result.best_checkpoint and os.path.exists(os.path.join(result.best_checkpoint, "state.pt"))
    assert storage.read_json(RunLayout.of(spec).best)["best_trial"] == result.best_trial
    # A tune run directory exports its best trial's checkpoint, with that trial's parameters in the model.
    trained = load_trained(result.run_dir)
    assert trained.checkpoint.startswith(result.best_checkpoint)
    assert trained.model.config.num_glimpses == result.best_config["model.num_glimpses"]
    # The same job again (as after a restart of its driver) restores the tuner instead of starting over,
    # and names the same best trial (Tune's own result order differs after a restore).
    again = run_tune(spec)
    assert {r["trial"] for r in storage.read_table(again.trials_table).to_pylist()} == trials
    assert again.best_trial == result.best_trial


def _tune_state(spec: JobSpec) -> tuple[dict[str, float], float]:
    """(finished trial -> mtime of its result file, newest mtime of the tuner's saved state)."""
    run = RunLayout.of(spec)
    done = {}
    for trial in os.listdir(run.trials_dir) if os.path.isdir(run.trials_dir) else []:
        if os.path.exists(run.for_trial(trial).result):
            done[trial] = os.path.getmtime(run.for_trial(trial).result)
    tuner = run.tuner_dir
    states = [os.path.getmtime(os.path.join(tuner, f)) for f in os.listdir(tuner)
              if f.startswith("experiment_state")] if os.path.isdir(tuner) else []
    return done, max(states, default=0.0)


def test_tune_job_killed_mid_run_resumes_its_trials(datasets, tmp_path):
    """`foveate tune` SIGKILLed (with its embedded Ray) after one of its two trials finished; run again, it
    restores the same trials: the finished one is not rerun, the other runs to the end, a best one is named."""
    import json
    import subprocess
    import sys

    spec = _spec(datasets, tmp_path, name="crash", kind="tune", scaling={"num_workers": 1},
                 optim={"epochs": 3}, data={"probe_count": 2},
                 tune={"space": "none", "params": {"model.num_glimpses": {"grid": [1, 2]}},
                       "num_trials": 1, "scheduler": "fifo", "search": "grid", "max_concurrent_trials": 1})
    path = tmp_path / "crash.json"
    path.write_text(json.dumps(spec.to_dict()))
    cmd = [sys.executable, "-m", "jobs.cli", "tune", str(path)]
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    # Its own session, so that one killpg takes the CLI and the local Ray it started (a crash, not a stop).
    proc = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    done: dict[str, float] = {}
    try:
        while time.time() < deadline and proc.poll() is None:
            done, saved = _tune_state(spec)
            # Kill once a trial has finished and the tuner has saved its state since (every ~10 s).
            if done and saved > max(done.values()):
                break
            time.sleep(0.5)
    finally:
        with contextlib.suppress(ProcessLookupError):  # gone already if the job finished first
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the tune job finished before it could be killed"
    assert len(done) == 1
    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    table = storage.read_table(RunLayout.of(spec).trials_table).to_pylist()
    trials = {r["trial"] for r in table}
    assert set(done) <= trials and len(trials) == 2, "the restarted job did not restore the same trials"
    assert sorted({r["param.model.num_glimpses"] for r in table}) == [1, 2]
    after, _ = _tune_state(spec)
    assert len(after) == 2
    assert all(after[t] == m for t, m in done.items()), "a trial that had finished was run again"
    for t in trials:
        epochs = [h["epoch"] for h in storage.read_json(RunLayout.of(spec, t).metrics)]
        assert epochs == [0, 1, 2]
    assert storage.read_json(RunLayout.of(spec).best)["best_trial"] in trials


def test_local_mode_keeps_its_checkpoints_and_resumes_from_them(ray_session, datasets, tmp_path):
    """num_workers 0 (Ray Train's local mode keeps no checkpoint): the loop keeps them in the run, pruned as
    CheckpointConfig would (the latest plus the best `keep`), and a restarted run resumes from the newest."""
    one = _spec(datasets, tmp_path, name="local", scaling={"num_workers": 0}, optim={"epochs": 3},
                checkpoint={"keep": 1})
    result = run_train(one)
    assert result.error is None and result.checkpoint_path
    assert os.path.exists(os.path.join(result.checkpoint_path, "state.pt"))  # still there after the run
    kept = sorted(d for d in os.listdir(result.run_dir) if d.startswith("checkpoint_"))
    assert 1 <= len(kept) <= 2 and os.path.join(result.run_dir, kept[-1]) == result.checkpoint_path
    best = load_trained(result.run_dir)  # the best epoch by val_accuracy (kept with the latest)
    assert best.metrics["val_accuracy"] == max(h["val_accuracy"] for h in storage.read_json(RunLayout.of(one).metrics))
    two = _spec(datasets, tmp_path, name="local", scaling={"num_workers": 0}, optim={"epochs": 4},
                checkpoint={"keep": 1})
    again = run_train(two)
    assert [h["epoch"] for h in storage.read_json(RunLayout.of(two).metrics)] == [0, 1, 2, 3]
    assert again.metrics["epoch"] == 3
    history = storage.read_json(RunLayout.of(two).metrics)
    assert load_trained(again.run_dir).metrics["val_accuracy"] == max(h["val_accuracy"] for h in history)
