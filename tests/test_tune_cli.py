"""`foveate tune` on the embedded default, as a user runs it: a line per trial event and a final table on
the terminal, Ray's own output (its tables, the workers' logs) in the run's driver log, no spec in sight."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def test_foveate_tune_shows_the_trials_and_keeps_rays_output_in_the_log(tiny_dataset, tmp_path):
    spec = {
        "kind": "tune", "storage_path": str(tmp_path / "out"),
        "model": {"name": "ram-cluttered60"},
        "data": {"path": tiny_dataset, "probe_count": 2, "max_train_samples": 64, "max_val_samples": 32},
        "optim": {"batch_size": 32, "epochs": 1}, "scaling": {"num_workers": 1},
        "tune": {"space": "none", "params": {"model.num_glimpses": {"grid": [1, 2]}}, "num_trials": 1,
                 "search": "grid", "scheduler": "fifo"},
    }
    path = tmp_path / "tune.yaml"
    path.write_text(yaml.safe_dump(spec))
    run = subprocess.run([sys.executable, "-m", "jobs.cli", "tune", str(path), "--name", "cli-tune"],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    shown = run.stdout + run.stderr
    assert "__spec" not in shown and "Trial status" not in shown and "RayTrainWorker" not in shown
    lines = [line for line in run.stdout.splitlines() if line.strip()]
    ended = [line for line in lines if ": ended (" in line]
    assert len(ended) == 2 and all("model.num_glimpses=" in line for line in ended)
    assert any(line.startswith("* best trial: ") for line in lines) and "best trial " in run.stdout
    assert len(lines) < 40, run.stdout  # what a user follows; Ray's hundreds of lines are in the log
    log = (tmp_path / "out" / "cli-tune" / "driver.log").read_text()
    assert "Configuration for experiment" in log and "TrainController" in log and ": ended (" in log
