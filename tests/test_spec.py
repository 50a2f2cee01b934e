"""The job spec: round trip, loading, and errors that name the field and the rule."""

from __future__ import annotations

import json

import pytest

from jobs.api.spec import JobSpec, SpecError, apply_overrides, load_spec
from jobs.run.checks import check_model
from jobs.run.search import apply_params, search_space

BASE = {"data": {"path": "/tmp/ds"}, "model": {"name": "ram-cluttered60"}}


def test_round_trip_through_json():
    spec = JobSpec.from_dict({**BASE, "optim": {"lr": 0.01, "epochs": 3}, "model": {
        "name": "ram-cluttered60", "overrides": {"num_glimpses": 4}}})
    again = JobSpec.from_dict(json.loads(spec.to_json()))
    assert again == spec
    assert again.model.overrides == {"num_glimpses": 4}
    assert again.optim.lr == 0.01


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"optim": {"lr": -1}}, "optim.lr: must be > 0"),
        ({"optim": {"lr": "fast"}}, "optim.lr: must be a number"),
        ({"optim": {"epochs": 2.5}}, "optim.epochs: must be an integer"),
        ({"optim": {"optimizer": "lbfgs"}}, "optim.optimizer: must be one of"),
        ({"scaling": {"num_workers": -1}}, "scaling.num_workers: must be >= 0"),
        ({"scaling": {"use_gpu": "yes"}}, "scaling.use_gpu: must be true or false"),
        ({"colour": "red"}, "colour: unknown field"),
        ({"optim": {"learning_rate": 1}}, "optim.learning_rate: unknown field"),
        ({"data": {"path": ""}}, "data.path: must name a dataset"),
        ({"data": {"path": "/tmp/ds", "min_crop": 0}}, "data.min_crop: must be > 0 and <= 1"),
        ({"data": {"path": "/tmp/ds", "min_crop": 1.5}}, "data.min_crop: must be > 0 and <= 1"),
        ({"kind": "tune"}, "tune: required when kind is 'tune'"),
        ({"kind": "serve"}, "kind: must be one of"),
        ({"kind": "tune", "tune": {}, "scaling": {"num_workers": 0}}, "scaling.num_workers: must be >= 1 for a tune"),
        ({"model": {"name": "ram-nope"}}, "model: unknown model 'ram-nope'"),
        ({"model": {"name": "ram-cluttered60", "overrides": {"num_glimpses": 0}}}, "model.num_glimpses: must be"),
        ({"model": {"name": "ram-cluttered60", "overrides": {"wings": 2}}}, "model.wings: not a field"),
        ({"optim": {"lr": float("nan")}}, "optim.lr: must be finite"),
        ({"model": "ram"}, "model: must be a mapping"),
    ],
)
def test_errors_name_the_field(patch, message):
    d = {**BASE, **patch}
    with pytest.raises(SpecError) as err:
        check_model(JobSpec.from_dict(d))  # the spec's own rules, then the one check of its model
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_load_yaml_and_bad_files(tmp_path):
    good = tmp_path / "s.yaml"
    good.write_text("kind: train\ndata:\n  path: /tmp/ds\noptim:\n  epochs: 2\n")
    assert load_spec(good).optim.epochs == 2
    bad = tmp_path / "b.yaml"
    bad.write_text("kind: [train\n")
    with pytest.raises(SpecError, match="b.yaml: not valid yaml"):
        load_spec(bad)
    with pytest.raises(SpecError, match="no such spec file"):
        load_spec(tmp_path / "missing.json")
    lst = tmp_path / "l.json"
    lst.write_text("[1, 2]")
    with pytest.raises(SpecError, match="must hold a mapping"):
        load_spec(lst)


def test_cli_overrides_parse_values():
    d = apply_overrides({"optim": {}}, ["optim.epochs=3", "model.overrides.num_glimpses=4", "scaling.use_gpu=true"])
    assert d == {"optim": {"epochs": 3}, "model": {"overrides": {"num_glimpses": 4}}, "scaling": {"use_gpu": True}}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        apply_overrides({}, ["epochs"])


def test_tune_space_defaults_overrides_and_errors():
    spec = JobSpec.from_dict({**BASE, "kind": "tune", "tune": {"params": {"lr": {"choice": [0.1, 0.01]}}}})
    space = search_space(spec)
    assert space["optim.lr"] == {"choice": [0.1, 0.01]}
    assert space["model.num_glimpses"] == {"choice": [4, 6, 8]}
    trial = apply_params(spec.to_dict(), {"optim.lr": 0.1, "model.num_glimpses": 4})
    built = JobSpec.from_dict(trial)
    assert built.kind == "train" and built.optim.lr == 0.1 and built.model.overrides["num_glimpses"] == 4
    for params, msg in [
        ({"model.wings": {"choice": [1]}}, "tune.params.model.wings: the model has no field"),
        ({"lr": {"uniform": [1, 0]}}, "tune.params.optim.lr.uniform: must be [low, high]"),
        ({"lr": {"normal": [0, 1]}}, "tune.params.optim.lr: must be one of"),
        ({"data.path": {"choice": ["a"]}}, "tune.params.data.path: keys are"),
    ]:
        bad = JobSpec.from_dict({**BASE, "kind": "tune", "tune": {"params": params}})
        with pytest.raises(SpecError, match=msg.replace(".", r"\.").replace("[", r"\[")):
            search_space(bad)


def test_every_sampled_racnn_scale_count_builds_a_valid_spec():
    from attention_models import create_model

    spec = JobSpec.from_dict({**BASE, "model": {"name": "racnn-zoom"}, "kind": "tune", "tune": {}})
    for n in search_space(spec)["model.num_scales"]["choice"]:
        trial = JobSpec.from_dict(apply_params(spec.to_dict(), {"model.num_scales": n}))
        model = create_model(trial.model.name, **trial.model.overrides)
        assert model.config.num_scales == n == len(model.config.scale_sizes)
