"""The run layout (one owner of a run's file names) and the torch-free read path the job service uses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from jobs.api.spec import JobSpec
from jobs.run import readers, record_files, storage
from jobs.run.layout import RunLayout, record_epoch, record_name

ROOT = Path(__file__).resolve().parents[1]


def _spec(storage_path: str, name: str = "job", kind: str = "train") -> JobSpec:
    return JobSpec.from_dict({"name": name, "kind": kind, "storage_path": storage_path,
                              "data": {"path": "/tmp/ds"}, "scaling": {"num_workers": 1},
                              **({"tune": {}} if kind == "tune" else {})})


def test_a_run_and_its_trials_keep_their_files_under_the_run_directory(tmp_path):
    run = RunLayout.of(_spec(str(tmp_path)))
    root = f"{tmp_path}/job"
    assert run.root == run.dir == root
    assert (run.spec, run.driver_log, run.result, run.metrics) == (
        f"{root}/spec.json", f"{root}/driver.log", f"{root}/result.json", f"{root}/metrics.json")
    assert (run.trials_table, run.best) == (f"{root}/trials.parquet", f"{root}/best.json")
    assert run.record(7) == f"{root}/attention/epoch=0007.parquet" and run.attention_dir == f"{root}/attention"
    trial = run.for_trial("ab12_00001")
    assert trial.dir == f"{root}/trials/ab12_00001"
    assert trial.metrics == f"{root}/trials/ab12_00001/metrics.json"
    assert trial.result == f"{root}/trials/ab12_00001/result.json"
    assert trial.record(0) == f"{root}/trials/ab12_00001/attention/epoch=0000.parquet"
    # The run-wide files stay the run's, whichever trial asks.
    assert (trial.spec, trial.best, trial.trials_table) == (run.spec, run.best, run.trials_table)


def test_ray_runs_are_named_after_the_job_beside_the_run_directory(tmp_path):
    run = RunLayout.of(_spec(str(tmp_path), kind="tune"))
    # A train job's Ray Train run is the run directory itself: its checkpoints sit beside metrics.json.
    assert (run.train_name, run.train_run) == ("job", f"{tmp_path}/job")
    trial = run.for_trial("ab12_00001")
    assert (trial.train_name, trial.train_run) == ("job-ab12_00001", f"{tmp_path}/job-ab12_00001")
    assert (run.tuner_name, run.tuner_dir) == ("job-tuner", f"{tmp_path}/job-tuner")
    assert trial.tuner_dir == run.tuner_dir


def test_the_storage_base_follows_the_path_policy(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert RunLayout.of(_spec("out")).root == f"{tmp_path}/out/job"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert RunLayout.of(_spec("~/runs")).root == f"{tmp_path}/home/runs/job"
    uri = RunLayout.of(_spec("s3://bucket/runs"), "t1")
    assert (uri.root, uri.metrics) == ("s3://bucket/runs/job", "s3://bucket/runs/job/trials/t1/metrics.json")
    assert uri.train_run == "s3://bucket/runs/job-t1"


@pytest.mark.parametrize("storage_path", ["/srv/runs", "/", "s3://bucket/runs", "gs://bucket"])
def test_a_run_directory_gives_back_the_layout_of_its_spec(storage_path):
    spec = _spec(storage_path)
    assert RunLayout.at(RunLayout.of(spec).root) == RunLayout.of(spec)
    assert RunLayout.at(RunLayout.of(spec).root + "/", "t") == RunLayout.of(spec, "t")
    assert RunLayout.at(RunLayout.of(spec).root).train_run == RunLayout.of(spec).root


@pytest.mark.parametrize("run_dir", ["/job", "job", "runs/job", "s3://bucket/job"])
def test_any_run_directory_is_its_own_root(run_dir):
    run = RunLayout.at(run_dir, "t")
    assert run.root == run_dir and run.dir == f"{run_dir}/trials/t" and run.tuner_dir == f"{run_dir}-tuner"


def test_a_layout_needs_a_name():
    with pytest.raises(ValueError, match="RunLayout.name: must not be empty"):
        RunLayout("/srv/runs", "")


def test_record_file_names_carry_their_epoch():
    assert record_name(12) == "epoch=0012.parquet" and record_epoch("s3://b/x/attention/epoch=0012.parquet") == 12
    assert record_epoch(record_name(12345)) == 12345  # past the padding, still read back
    for other in ("epoch=0001.parquet.tmp", "notes.parquet", "epoch=x.parquet", "epoch=0001.json"):
        assert record_epoch(other) is None, other


def _record(epoch: int, trial: str, n: int = 2) -> pa.Table:
    """A hand-written attention record (what records.build_record writes), without torch."""
    cols = {
        "sample_id": list(range(n)), "epoch": [epoch] * n, "trial": [trial] * n, "image": [b"\0" * 4] * n,
        "height": [2] * n, "width": [2] * n, "channels": [1] * n, "label": [1] * n, "prediction": [0] * n,
        "kind": ["glimpse"] * n, "boxes": [[0.0, 0.0, 1.0, 1.0]] * n, "steps": [1] * n, "patches": [1] * n,
        "gt_boxes": [[0.0, 0.0, 2.0, 2.0]] * n,
    }
    return pa.Table.from_pydict(cols, schema=record_files.record_schema(cols))


def _write_tune_run(storage_path: str) -> RunLayout:
    """A tune run as the driver leaves it mid-search: two trials' metrics and records, no table yet."""
    run = RunLayout.of(_spec(storage_path, kind="tune"))
    for trial, accs in (("t1", [0.5, 0.75]), ("t2", [0.25])):
        t = run.for_trial(trial)
        storage.write_json(t.metrics, [{"epoch": e, "val_accuracy": a} for e, a in enumerate(accs)])
        for e in range(len(accs)):
            record_files.write_record(t, _record(e, trial), e)
    storage.write_table(run.for_trial("t1").attention_dir + "/epoch=0001.parquet.tmp", _record(9, "t1"))
    return run


def test_records_are_read_back_by_epoch(tmp_path):
    run = _write_tune_run(str(tmp_path))
    t1 = run.for_trial("t1")
    assert record_files.record_epochs(t1) == [0, 1]  # the unfinished .tmp write is not a record
    assert record_files.read_records(t1).column("epoch").to_pylist() == [1, 1]
    assert record_files.read_records(t1, epoch=0).column("trial").to_pylist() == ["t1", "t1"]
    assert record_files.read_records(t1, epoch=5) is None
    assert record_files.read_records(run) is None and record_files.record_epochs(run) == []
    with pytest.raises(ValueError, match=r"missing columns \['boxes'\]"):
        record_files.record_schema(set(record_files.RECORD_SCHEMA.names) - {"boxes"})


def test_readers_follow_a_tune_run_through_its_layout(tmp_path):
    run = _write_tune_run(str(tmp_path))
    assert readers.trial_ids(run.root) == ["t1", "t2"]
    assert readers.epoch_metrics(run.root, "tune") == [
        ("t1", 0, {"epoch": 0.0, "val_accuracy": 0.5}), ("t1", 1, {"epoch": 1.0, "val_accuracy": 0.75}),
        ("t2", 0, {"epoch": 0.0, "val_accuracy": 0.25})]
    rows, complete, best = readers.trials(run.root)
    assert (len(rows), complete, best) == (3, False, "")
    epochs, chosen, table = readers.attention(run.root, "t1", None)
    assert (epochs, chosen, table.num_rows) == ([0, 1], 1, 2)
    with pytest.raises(LookupError, match=r"recorded epochs: \[0\]"):
        readers.attention(run.root, "t2", 3)
    storage.write_table(run.trials_table, pa.table({"trial": ["t1"], "epoch": [1], "val_accuracy": [0.75]}))
    storage.write_json(run.best, {"best_trial": "t1"})
    storage.write_json(run.result, {"best_trial": "t1"})
    assert readers.trials(run.root) == ([{"trial": "t1", "epoch": 1, "val_accuracy": 0.75}], True, "t1")
    assert readers.read_result(run.root) == {"best_trial": "t1"}


def test_the_service_reads_runs_without_torch_or_ray(tmp_path):
    """The job service's process imports the layout and the readers and reads a whole run: never torch or
    Ray (they take seconds to import and the service may run where neither is installed)."""
    run = _write_tune_run(str(tmp_path))
    code = f"""
import sys
from jobs.run import layout, readers, record_files
from jobs.service import job_service, wire
root = {json.dumps(run.root)}
assert readers.trial_ids(root) == ["t1", "t2"]
assert readers.attention(root, "t1", None)[2].num_rows == 2
readers.trials(root), readers.epoch_metrics(root, "tune"), readers.read_result(root)
loaded = sorted(m for m in ("torch", "ray", "attention_models") if m in sys.modules)
assert not loaded, f"the read path imported {{loaded}}"
"""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
