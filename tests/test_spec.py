"""The job spec: round trip, loading, and errors that name the field and the rule."""

from __future__ import annotations

import dataclasses
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from spec_junk import JUNK, with_junk

from jobs.api.spec import (
    CheckpointSpec,
    DataSpec,
    JobSpec,
    ModelSpec,
    OptimSpec,
    ScalingSpec,
    SpecError,
    TuneSpec,
    apply_overrides,
    load_spec,
)
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
        ({"model": {"name": "ram-nope"}}, "model.name: must be a registered model (dram-multidigit, "),
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


# ------------------------------------------------------------------------------- the rules pydantic holds

INF = float("inf")


@pytest.mark.parametrize(("patch", "message"), [
    ({"optim": {"lr": INF}}, "optim.lr: must be finite, got inf"),
    ({"optim": {"momentum": -INF}}, "optim.momentum: must be finite, got -inf"),
    ({"scaling": {"cpus_per_worker": float("nan")}}, "scaling.cpus_per_worker: must be finite, got nan"),
    ({"data": {"path": "/tmp/ds", "min_crop": float("nan")}}, "data.min_crop: must be finite"),
    ({"model": {"overrides": {"location_std": float("nan")}}}, "model.overrides.location_std: must be finite, got nan"),
    ({"model": {"overrides": {"scale_sizes": [32, [1.0, -INF]]}}}, "model.overrides.scale_sizes[1][1]: must be finite"),
    ({"kind": "tune", "tune": {"params": {"lr": {"uniform": [1e-4, INF]}}}}, "tune.params.lr.uniform[1]: must be finite"),
])
def test_non_finite_numbers_are_refused_anywhere(patch, message):
    with pytest.raises(SpecError) as err:
        JobSpec.from_dict({**BASE, **patch})
    assert str(err.value).startswith(message)


@pytest.mark.parametrize(("patch", "message"), [
    ({"optim": {"epochs": "3"}}, "optim.epochs: must be an integer, got '3'"),
    ({"optim": {"epochs": True}}, "optim.epochs: must be an integer, got True"),
    ({"optim": {"epochs": 3.0}}, "optim.epochs: must be an integer, got 3.0"),
    ({"optim": {"lr": "0.1"}}, "optim.lr: must be a number, got '0.1'"),
    ({"optim": {"lr": True}}, "optim.lr: must be a number, got True"),
    ({"data": {"path": "/tmp/ds", "hflip": 1}}, "data.hflip: must be true or false, got 1"),
    ({"name": 7}, "name: must be a string, got 7"),
    ({"checkpoint": {"mode": 1}}, "checkpoint.mode: must be one of 'max' or 'min', got 1"),
    ({"optim": {1: 2}}, "optim: field names must be strings, got 1"),
])
def test_no_silent_coercion(patch, message):
    with pytest.raises(SpecError) as err:
        JobSpec.from_dict({**BASE, **patch})
    assert str(err.value) == message


LONG = "x" * 4097


@pytest.mark.parametrize(("patch", "message"), [
    ({"name": "a" * 129}, "name: must be at most 128 characters"),
    ({"name": "../etc"}, "name: must match"),
    ({"name": "run one"}, "name: must match"),
    ({"model": {"name": "m" * 101}}, "model.name: must be at most 100 characters"),
    ({"model": {"name": ""}}, "model.name: must not be empty"),
    ({"data": {"path": "/" + LONG}}, "data.path: must be at most 4096 characters"),
    ({"data": {"path": "/tmp/a\x00b"}}, "data.path: must match"),
    ({"storage_path": LONG}, "storage_path: must be at most 4096 characters"),
    ({"storage_path": "out\x00"}, "storage_path: must match"),
    ({"data": {"path": "/tmp/ds", "train_split": "../train"}}, "data.train_split: must match"),
    ({"data": {"path": "/tmp/ds", "val_split": ""}}, "data.val_split: must match"),
    ({"data": {"path": "/tmp/ds", "val_split": "v" * 65}}, "data.val_split: must match"),
    ({"checkpoint": {"score": "val accuracy"}}, "checkpoint.score: must match"),
    ({"checkpoint": {"score": "a" * 101}}, "checkpoint.score: must be at most 100 characters"),
    ({"kind": "tune", "tune": {"metric": "val-loss"}}, "tune.metric: must match"),
    ({"model": {"overrides": {f"f{i}": 1 for i in range(65)}}}, "model.overrides: must have at most 64 entries"),
    ({"model": {"overrides": {"num glimpses": 1}}}, "model.overrides: keys must match"),
    ({"model": {"overrides": {"core": LONG}}}, "model.overrides.core: must be at most 4096 characters"),
    ({"model": {"overrides": {"seed": 2**63}}}, "model.overrides.seed: must fit in 64 bits"),
    ({"kind": "tune", "tune": {"params": {f"model.f{i}": {"choice": [1]} for i in range(65)}}},
     "tune.params: must have at most 64 entries"),
    ({"kind": "tune", "tune": {"params": {"lr rate": {"choice": [1]}}}}, "tune.params: keys must match"),
])
def test_every_stored_string_and_mapping_is_bounded(patch, message):
    with pytest.raises(SpecError) as err:
        JobSpec.from_dict({**BASE, **patch})
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


@pytest.mark.parametrize(("field", "limit"), [
    ("optim.epochs", 2**31 - 1), ("scaling.num_workers", 2**31 - 1), ("checkpoint.max_failures", 2**31 - 1),
    ("optim.seed", 2**63 - 1), ("data.max_train_samples", 2**63 - 1),
])
def test_integers_fit_their_proto_field(field, limit):
    section, name = field.split(".")
    at_limit = JobSpec.from_dict({**BASE, section: {**BASE.get(section, {}), name: limit}})
    assert getattr(getattr(at_limit, section), name) == limit
    with pytest.raises(SpecError, match=rf"^{field}: must be .*<= {limit}, got {limit + 1}$"):
        JobSpec.from_dict({**BASE, section: {**BASE.get(section, {}), name: limit + 1}})


def test_valid_names_splits_and_sizes_pass():
    spec = JobSpec.from_dict({**BASE, "name": "job-0a1b.c_d", "data": {
        "path": "/tmp/ds", "train_split": "train.v2", "val_split": "val-1"}, "model": {
        "name": "ram-cluttered60", "overrides": {f"f{i}": [1, 2.5, "s", True] for i in range(64)}}})
    assert spec.name == "job-0a1b.c_d" and len(spec.model.overrides) == 64 and spec.data.val_split == "val-1"


def test_storage_path_defaults_to_the_runners_own_place():
    spec = JobSpec.from_dict(BASE)
    assert spec.storage_path == "" and spec.with_absolute_paths("/base").storage_path == ""
    assert spec.with_absolute_paths("/base").data.path == "/tmp/ds"
    assert JobSpec.from_dict({**BASE, "storage_path": "out"}).with_absolute_paths("/base").storage_path == "/base/out"


def test_the_sections_stay_dataclasses_that_revalidate_on_replace():
    spec = JobSpec.from_dict(BASE)
    assert [f.name for f in dataclasses.fields(spec.optim)][:3] == ["optimizer", "lr", "weight_decay"]
    assert dataclasses.asdict(spec) == spec.to_dict()
    assert spec.replace(optim=dataclasses.replace(spec.optim, epochs=7)).optim.epochs == 7
    with pytest.raises(SpecError, match=r"^name: must match"):
        spec.replace(name="no spaces")
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.optim.epochs = 3


def test_schema_carries_every_field_with_its_type_default_and_description():
    from jobs.api.spec import spec_schema

    schema = spec_schema()
    optim = schema["$defs"]["OptimSpec"]["properties"]
    assert {f.name for f in dataclasses.fields(OptimSpec)} == set(optim)
    assert optim["lr"]["type"] == "number" and optim["lr"]["default"] == 1e-3 and optim["lr"]["exclusiveMinimum"] == 0
    assert optim["optimizer"]["enum"] == ["adam", "adamw", "sgd"] and optim["epochs"]["maximum"] == 2**31 - 1
    for section in ("ModelSpec", "DataSpec", "OptimSpec", "ScalingSpec", "CheckpointSpec", "TuneSpec"):
        for name, prop in schema["$defs"][section]["properties"].items():
            assert prop.get("description"), f"{section}.{name} has no description"
    assert all(p.get("description") for p in schema["properties"].values())
    assert schema["properties"]["storage_path"]["default"] == ""
    schema["properties"].clear()
    assert spec_schema()["properties"]  # a copy: callers cannot change the next one


# Junk of every type at every field, in sections and free-form maps: what a client could send.
_FIELDS = [f"{section}.{f.name}" for section, cls in (("model", ModelSpec), ("data", DataSpec), ("optim", OptimSpec),
                                                      ("scaling", ScalingSpec), ("checkpoint", CheckpointSpec),
                                                      ("tune", TuneSpec)) for f in dataclasses.fields(cls)]
_FIELDS += [f.name for f in dataclasses.fields(JobSpec)] + ["optim.nope", "nope"]


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from(_FIELDS), JUNK, min_size=1, max_size=4), st.booleans())
def test_any_junk_is_a_one_line_spec_error_naming_a_field(junk, tune):
    d = with_junk({**BASE, "data": dict(BASE["data"]), "kind": "tune" if tune else "train", "tune": {} if tune else None}, junk)
    try:
        spec = JobSpec.from_dict(d)
    except SpecError as exc:
        message = str(exc)
        assert "\n" not in message and len(message) < 1200, message
        assert message.split(":", 1)[0].split(".")[0].split("[")[0] in {f.name for f in dataclasses.fields(JobSpec)} | {
            "spec", "nope"}, message
        return
    assert JobSpec.from_dict(json.loads(spec.to_json())) == spec  # what passes is plain data and round-trips
