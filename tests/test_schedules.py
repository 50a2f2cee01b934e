"""What the loop schedules and groups (jobs/run/schedules.py, jobs/run/loop.py): learning rates against
hand-computed values, per-group scales in the optimiser, M training rollouts, the location-std anneal,
and the best epoch of a run."""

from __future__ import annotations

import math

import pytest
import torch

from attention_models import create_model
from attention_models.registry import list_models, model_family, model_training
from jobs.api.spec import JobSpec, OptimSpec, SpecError
from jobs.data.recipes import build_recipe
from jobs.data.store import write_dataset
from jobs.run import checkpoints, schedules, storage
from jobs.run.checks import check_spec
from jobs.run.layout import CHECKPOINT_SCORE, best_checkpoint
from jobs.run.loop import build_optimizers, fit, repeat_rollouts
from jobs.run.train import best_epoch


def _optim(**kw) -> OptimSpec:
    return JobSpec.from_dict({"data": {"path": "x"}, "optim": kw}).optim


@pytest.mark.parametrize(("kw", "expected"), [
    # exponential x0.98 per epoch (tfRAM's schedule), then the floor
    ({"schedule": "exponential", "lr": 1e-3, "lr_decay": 0.98, "min_lr": 1e-5, "epochs": 500},
     {0: 1e-3, 1: 9.8e-4, 3: 1e-3 * 0.98 * 0.98 * 0.98, 227: 1e-3 * 0.98**227, 228: 1e-5, 499: 1e-5}),
    # warm-up of 2 epochs, then cosine over the 8 that remain
    ({"schedule": "cosine", "lr": 0.1, "warmup_epochs": 2, "epochs": 10},
     {0: 0.1 / 3, 1: 0.2 / 3, 2: 0.1, 6: 0.05, 9: 0.1 * 0.5 * (1 + math.cos(math.pi * 7 / 8))}),
    ({"schedule": "linear", "lr": 0.2, "epochs": 10}, {0: 0.2, 5: 0.1, 9: 0.02}),
    ({"schedule": "linear", "lr": 0.2, "epochs": 10, "min_lr": 0.05}, {5: 0.1, 8: 0.05, 9: 0.05}),
    ({"schedule": "step", "lr": 1.0, "step_every": 3, "epochs": 10}, {0: 1.0, 2: 1.0, 3: 0.1, 7: 0.01}),
    ({"schedule": "constant", "lr": 0.3, "epochs": 4, "warmup_epochs": 1}, {0: 0.15, 1: 0.3, 3: 0.3}),
])
def test_each_schedule_gives_the_hand_computed_rates(kw, expected):
    o = _optim(**kw)
    for epoch, lr in expected.items():
        assert schedules.scheduled_lr(o, epoch) == pytest.approx(lr, rel=1e-12), epoch
    # (0.98**227 = 0.01019 keeps 1e-3 above the floor; 0.98**228 = 0.00999 takes it below)


def test_the_warm_up_must_end_before_the_run_does():
    with pytest.raises(SpecError, match=r"optim.warmup_epochs: must be < optim.epochs \(3\), got 3"):
        _optim(warmup_epochs=3, epochs=3)


@pytest.mark.parametrize("name", list_models())
def test_lr_groups_partition_every_trainable_parameter(name):
    model = create_model(name)
    groups = model.lr_groups()
    ids = [id(p) for ps in groups.values() for p in ps]
    assert sorted(ids) == sorted(id(p) for p in model.parameters() if p.requires_grad)
    assert set(groups) <= set(model_training(name).group_names())
    # every named group of the family claims something (a renamed module would leave its group empty)
    named = set(model_training(name).lr_groups)
    if name != "racnn-cub-lite0" and not name.startswith("mgcnn"):
        assert named <= set(groups), named - set(groups)


def _scales_spec(name: str, scales: dict[str, float]) -> JobSpec:
    return JobSpec.from_dict({"model": {"name": name}, "data": {"path": "x"},
                              "optim": {"lr": 0.01, "lr_scales": scales}})


@pytest.mark.parametrize(("name", "scales"), [
    ("ram-mnist28", {"location": 0.1, "classifier": 3.0}),
    ("dram-pairs", {"location": 0.5}),
    ("racnn-zoom", {"apn": 0.2, "trunk": 0.5}),  # two alternating optimisers, each split by group
])
def test_group_scales_reach_the_optimiser(name, scales):
    spec = _scales_spec(name, scales)
    model = create_model(name)
    expected = {id(p): 0.01 * scales.get(g, 1.0) for g, ps in model.lr_groups().items() for p in ps}
    seen = {}
    for opt in build_optimizers(model, spec).values():
        for g in opt.param_groups:
            for p in g["params"]:
                assert id(p) not in seen  # each parameter in one param group of one optimiser
                seen[id(p)] = g["lr"]
    assert seen == pytest.approx(expected)
    assert sorted(set(seen.values())) == sorted({0.01 * s for s in scales.values()} | {0.01})


def test_the_spec_check_refuses_what_a_family_lacks():
    with pytest.raises(SpecError, match=r"optim.lr_scales: ram has no parameter group 'apn'; its groups: location, "):
        check_spec(_scales_spec("ram-mnist28", {"apn": 0.1}), data=False)
    crop = {"model": {"name": "racnn-zoom"}, "data": {"path": "x"}}
    with pytest.raises(SpecError, match=r"optim.train_samples: racnn has no glimpse paths to sample .* got 4"):
        check_spec(JobSpec.from_dict({**crop, "optim": {"train_samples": 4}}), data=False)
    with pytest.raises(SpecError, match=r"optim.location_std_end: racnn has no location policy"):
        check_spec(JobSpec.from_dict({**crop, "optim": {"location_std_end": 0.05}}), data=False)


@pytest.mark.parametrize("name", ["ram-mnist28", "dram-pairs"])
def test_m_rollouts_give_the_loss_of_m_copies_with_one_rollout_each(name):
    """The batch of M paths per image scores each path as one more sample: its loss terms are the mean of
    the M single-rollout losses made with the same noise (the baseline is the model's learned one)."""
    torch.manual_seed(0)
    model = create_model(name, **({"num_glimpses": 3} if name.startswith("ram") else {"glimpses_per_label": 1}))
    B, M = 4, 3
    size = model.config.image_size
    batch = {"image": torch.rand(B, model.config.in_channels, size, size), "label": torch.arange(B) % 3,
             "boxes": torch.rand(B, 1, 4) * size}
    if name.startswith("dram"):
        batch["sequence"] = torch.tensor([[1, 2], [3, -1], [4, 5], [6, -1]])
    T = model.config.num_glimpses
    noise = torch.randn(B, M, T, 2)
    first = torch.rand(B, M, 2) * 2 - 1  # RAM's random first glimpse

    def paths(m: slice | int) -> dict[str, torch.Tensor]:
        given = {"noise": noise[:, m]}
        if "first_locations" in model.path_noise(1):
            given["first_locations"] = first[:, m]
        return {k: v.flatten(0, 1) if isinstance(m, slice) else v for k, v in given.items()}

    big = repeat_rollouts(batch, M)
    assert big["image"].shape[0] == B * M and torch.equal(big["label"], batch["label"].repeat_interleave(M))
    together = model.losses(model(big["image"], **paths(slice(None))), big)
    apart = [model.losses(model(batch["image"], **paths(m)), batch) for m in range(M)]
    for term, value in together.items():
        assert value.item() == pytest.approx(sum(a[term].item() for a in apart) / M, rel=1e-5, abs=1e-6), term


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("ds") / "mnist28"
    splits = {s: build_recipe("mnist28", count=n, seed=0, split=s) for s, n in (("train", 64), ("test", 16))}
    return write_dataset(str(out), splits, {"recipe": "mnist28", "seed": 0})


def test_fit_sets_the_schedules_and_runs_m_rollouts(digits, tmp_path):
    spec = JobSpec.from_dict({
        "name": "sched", "storage_path": str(tmp_path),
        "model": {"name": "ram-mnist28", "overrides": {"num_glimpses": 2, "location_std": 0.2}},
        "data": {"path": digits, "probe_count": 2},
        "optim": {"epochs": 3, "batch_size": 16, "lr": 1e-3, "schedule": "exponential", "lr_decay": 0.5,
                  "lr_scales": {"location": 0.1}, "train_samples": 3, "location_std_end": 0.05},
        "scaling": {"num_workers": 0},
    })
    reports = []
    fit(spec, lambda m, s: reports.append((m, s)))
    assert [m["lr"] for m, _ in reports] == pytest.approx([1e-3, 5e-4, 2.5e-4])
    assert [m["location_std"] for m, _ in reports] == pytest.approx([0.2, 0.125, 0.05])
    assert [m["step"] for m, _ in reports] == [4, 8, 12]  # 64 images / 16 a step: rollouts do not add steps
    state = reports[-1][1]
    lrs = {g["lr_group"]: g["lr"] for g in state["optimizers"]["all"]["param_groups"]}
    assert lrs["location"] == pytest.approx(2.5e-5) and lrs["core"] == pytest.approx(2.5e-4)
    assert state["model_config"]["location_std"] == pytest.approx(0.05)  # the checkpoint keeps the annealed std


def test_the_best_epoch_and_its_checkpoint(tmp_path):
    history = [{"epoch": 0, "val_accuracy": 0.5}, {"epoch": 1, "val_accuracy": 0.8},
               {"epoch": 2, "val_accuracy": float("nan")}, {"epoch": 3, "val_accuracy": 0.8}]
    assert best_epoch(history, "val_accuracy", "max")["epoch"] == 3  # the later of equals, never NaN
    assert best_epoch(history, "val_accuracy", "min")["epoch"] == 0
    assert best_epoch([], "val_accuracy", "max") == {}
    run = str(tmp_path / "run")
    for m in history:
        checkpoints.save_checkpoint(run, {"epoch": m["epoch"], "metrics": m}, keep=3, score="val_accuracy", mode="max")
    best = best_checkpoint(run, "max")
    assert best is not None and storage.read_json(storage.join(best, CHECKPOINT_SCORE))["epoch"] == 3
    # without a mode given, the one the run's spec named (recorded in each score.json)
    low = str(tmp_path / "low")
    for m in history:
        state = {"epoch": m["epoch"], "metrics": m, "spec": {"checkpoint": {"mode": "min"}}}
        checkpoints.save_checkpoint(low, state, keep=4, score="val_accuracy", mode="min")
    assert storage.read_json(storage.join(best_checkpoint(low), CHECKPOINT_SCORE))["epoch"] == 0
    assert best_checkpoint(str(tmp_path / "nothing")) is None


def test_families_that_sample_are_the_ones_with_a_mean_path():
    for name in list_models():
        assert create_model(name).samples_paths == (model_family(name) in ("ram", "dram"))


def test_the_location_std_schedule_is_a_tune_axis_and_values_are_checked_per_family():
    from jobs.run.search import SEARCH_SPACES, search_space

    assert "optim.location_std_end" in SEARCH_SPACES["ram"] and "optim.location_std_end" in SEARCH_SPACES["dram"]

    def space(model: str, params: dict) -> dict:
        return search_space(JobSpec.from_dict({"kind": "tune", "model": {"name": model}, "data": {"path": "x"},
                                               "tune": {"space": "none", "params": params}}))

    assert space("ram-mnist28", {"train_samples": {"choice": [1, 10]}}) == {"optim.train_samples": {"choice": [1, 10]}}
    with pytest.raises(SpecError, match=r"tune.params.optim.train_samples.choice: 10: optim.train_samples: racnn has"):
        space("racnn-zoom", {"train_samples": {"choice": [1, 10]}})
    with pytest.raises(SpecError, match=r"tune.params.optim.lr_decay.uniform: 1.5: optim.lr_decay: must be > 0 and <= 1"):
        space("ram-mnist28", {"lr_decay": {"uniform": [0.9, 1.5]}})
