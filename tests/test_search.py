"""Which trial a search names best, on hand-written trial histories (what each trial's metrics.json holds)."""

from __future__ import annotations

import math

import pytest

from jobs.api.spec import JobSpec
from jobs.run.search import best_trial, planned_trials


def _h(*accs: float, steps_per_epoch: int = 10, metric: str = "val_accuracy") -> list[dict]:
    return [{"epoch": e, "step": (e + 1) * steps_per_epoch, metric: a} for e, a in enumerate(accs)]


def test_the_best_metric_of_any_epoch_wins():
    histories = {"a_00000": _h(0.5, 0.6), "a_00001": _h(0.7, 0.4), "a_00002": _h(0.1)}
    trial, metrics = best_trial(histories, "val_accuracy", "max")
    # a_00001's last epoch is worse, but its best epoch is the best of all.
    assert trial == "a_00001" and metrics == {"epoch": 0, "step": 10, "val_accuracy": 0.7}


def test_a_tie_on_the_metric_goes_to_the_first_to_reach_it():
    histories = {"a_00000": _h(0.25, 0.5), "a_00001": _h(0.5, 0.5), "a_00002": _h(0.25, 0.5)}
    assert best_trial(histories, "val_accuracy", "max")[0] == "a_00001"  # 0.5 after one epoch
    # The same epoch: the fewer steps (a smaller batch size runs more steps per epoch) wins.
    histories = {"a_00000": _h(0.5, steps_per_epoch=20), "a_00001": _h(0.5, steps_per_epoch=10)}
    assert best_trial(histories, "val_accuracy", "max") == ("a_00001", histories["a_00001"][0])


def test_a_tie_on_metric_and_epoch_goes_to_the_smaller_trial_id_whatever_the_order():
    rows = {"a_00002": _h(0.5, 0.5), "a_00000": _h(0.25, 0.5), "a_00001": _h(0.5)}
    for order in (list(rows), sorted(rows), sorted(rows, reverse=True)):
        assert best_trial({t: rows[t] for t in order}, "val_accuracy", "max")[0] == "a_00001"
    tied = {"a_00002": _h(0.5), "a_00000": _h(0.5), "a_00001": _h(0.5)}
    assert best_trial(tied, "val_accuracy", "max")[0] == "a_00000"


def test_nan_infinite_and_missing_metrics_never_win():
    histories = {
        "a_00000": _h(float("nan"), float("nan")),
        "a_00001": _h(float("nan"), 0.3),  # a NaN epoch does not spoil the trial's finite ones
        "a_00002": _h(float("inf")),
        "a_00003": [{"epoch": 0, "step": 10, "val_loss": 1.0}, {"epoch": 1, "step": 20, "val_accuracy": "n/a"}],
    }
    trial, metrics = best_trial(histories, "val_accuracy", "max")
    assert trial == "a_00001" and metrics["epoch"] == 1
    assert best_trial({"a_00000": _h(math.nan)}, "val_accuracy", "max") is None
    assert best_trial({}, "val_accuracy", "max") is None


def test_mode_min_picks_the_lowest_with_the_same_tie_rule():
    histories = {"a_00000": _h(0.9, 0.2, metric="val_loss"), "a_00001": _h(0.2, 0.3, metric="val_loss"),
                 "a_00002": _h(0.2, metric="val_loss")}
    trial, metrics = best_trial(histories, "val_loss", "min")
    assert trial == "a_00001" and metrics["val_loss"] == 0.2 and metrics["epoch"] == 0
    assert best_trial(histories, "val_loss", "max")[0] == "a_00000"
    with pytest.raises(ValueError, match="tune.mode: must be 'max' or 'min'"):
        best_trial(histories, "val_loss", "lowest")


def _tune(**tune) -> JobSpec:
    return JobSpec.from_dict({"kind": "tune", "data": {"path": "/d"}, "scaling": {"num_workers": 1},
                              "tune": {"space": "none", **tune}})


def test_planned_trials_multiply_the_samples_by_the_grid():
    grid = {"model.num_glimpses": {"grid": [1, 2, 3]}}
    assert planned_trials(_tune(params=grid, num_trials=1)) == 3  # the harness's "1 trials" for a grid of 3
    assert planned_trials(_tune(params={**grid, "lr": {"grid": [1e-3, 1e-2]}}, num_trials=2)) == 12
    choice = {"model.num_glimpses": {"choice": [1, 2, 3]}, "lr": {"loguniform": [1e-4, 1e-2]}}
    assert planned_trials(_tune(params=choice, num_trials=4)) == 4  # random search samples the choice
    assert planned_trials(_tune(params=choice, num_trials=4, search="grid")) == 12  # grid search spans it
