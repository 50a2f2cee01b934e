"""The spec's proto mirror: every field carried, types kept, defaults from the spec, bad values refused
on either side; and the committed stubs generated from the protos."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from spec_junk import JUNK, with_junk

from jobs.api.spec import JobSpec, SpecError
from jobs.api.spec_proto import spec_dict_to_proto, spec_from_proto, spec_to_proto, unmirrored_fields
from jobs.proto.foveate.v1 import jobs_pb2 as pb
from jobs.run.checks import check_model

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.yaml"))


# ------------------------------------------------------------------------------------ spec <-> proto


def test_every_spec_field_has_a_proto_field():
    assert unmirrored_fields() == []


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_specs_round_trip_through_the_wire(path):
    spec = JobSpec.from_dict(yaml.safe_load(path.read_text()))
    wire = pb.JobSpec.FromString(spec_to_proto(spec).SerializeToString())
    assert spec_from_proto(wire) == spec


def test_round_trip_keeps_value_types_and_tune_params():
    spec = JobSpec.from_dict({
        "kind": "tune", "data": {"path": "/d"},
        "model": {"name": "ram-cluttered60", "overrides": {"num_glimpses": 4, "location_std": 0.2, "core": "lstm"}},
        "tune": {"params": {"lr": {"loguniform": [1e-4, 1e-2]}, "model.num_glimpses": {"choice": [2, 4]}},
                 "num_trials": 3, "scheduler": "fifo"}})
    back = spec_from_proto(spec_to_proto(spec))
    assert back == spec
    assert type(back.model.overrides["num_glimpses"]) is int
    assert back.tune.params["model.num_glimpses"] == {"choice": [2, 4]}


def test_fields_left_out_take_the_spec_defaults_not_proto_zeros():
    spec = spec_from_proto(pb.JobSpec(data=pb.DataSpec(path="/d"), optim=pb.OptimSpec(epochs=3)))
    assert spec.optim.epochs == 3
    assert spec.optim.lr == JobSpec().optim.lr and spec.scaling.num_workers == JobSpec().scaling.num_workers
    assert spec.kind == "train" and spec.tune is None
    assert spec.storage_path == ""  # unset: where the runner keeps runs


def test_int64_fields_and_an_empty_tune_section_survive_json_format():
    """MessageToDict writes int64 as strings; they come back as the integers the spec needs."""
    spec = JobSpec.from_dict({"kind": "tune", "data": {"path": "/d", "max_train_samples": 2**40},
                              "optim": {"seed": -(2**62)}, "tune": {}})
    back = spec_from_proto(pb.JobSpec.FromString(spec_to_proto(spec).SerializeToString()))
    assert back == spec and back.optim.seed == -(2**62) and back.tune == JobSpec.from_dict(
        {"kind": "tune", "data": {"path": "/d"}, "tune": {}}).tune


def test_non_finite_numbers_sent_on_the_wire_are_refused():
    msg = pb.JobSpec(data=pb.DataSpec(path="/d"), optim=pb.OptimSpec(lr=float("nan")))
    with pytest.raises(SpecError, match=r"^optim.lr: must be finite, got nan$"):
        spec_from_proto(msg)
    msg = pb.JobSpec(data=pb.DataSpec(path="/d"))
    msg.model.overrides["scale_factor"].CopyFrom(pb.Value(float_value=float("inf")))
    with pytest.raises(SpecError, match=r"^model.overrides.scale_factor: must be finite, got inf$"):
        spec_from_proto(msg)


@pytest.mark.parametrize("bad, field", [
    ({"optim": {"lr": -1.0}, "data": {"path": "/d"}}, "optim.lr"),
    ({"data": {}}, "data.path"),
    ({"data": {"path": "/d"}, "model": {"name": "nope"}}, "model"),
    ({"data": {"path": "/d"}, "model": {"overrides": {"num_glimpses": 0}}}, "model.num_glimpses"),
    ({"data": {"path": "/d"}, "kind": "tune"}, "tune"),
])
def test_invalid_specs_name_the_field(bad, field):
    with pytest.raises(SpecError, match=rf"^{field}"):
        check_model(spec_from_proto(spec_dict_to_proto(bad)))


def test_client_side_conversion_rejects_what_the_proto_cannot_carry():
    with pytest.raises(SpecError, match="optim.epochs"):
        spec_dict_to_proto({"optim": {"epochs": "three"}})
    with pytest.raises(SpecError, match="model.overrides.x"):
        spec_dict_to_proto({"model": {"overrides": {"x": {"nested": 1}}}})
    with pytest.raises(SpecError, match="^optim: must be a mapping"):
        spec_dict_to_proto({"optim": 3})


@pytest.mark.parametrize("bad, message", [
    ({"optim": {"epochs": "3"}}, "optim.epochs: must be an integer, got '3'"),
    ({"optim": {"epochs": 3.0}}, "optim.epochs: must be an integer, got 3.0"),
    ({"optim": {"epochs": True}}, "optim.epochs: must be an integer, got True"),
    ({"optim": {"epochs": 2**31}}, "optim.epochs: integer out of the 32-bit range"),
    ({"optim": {"lr": True}}, "optim.lr: must be a number, got True"),
    ({"optim": {"lr": "NaN"}}, "optim.lr: must be a number, got 'NaN'"),
    ({"optim": {"lr": float("inf")}}, "optim.lr: must be finite"),
    ({"scaling": {"use_gpu": 1}}, "scaling.use_gpu: must be true or false, got 1"),
    ({"name": 5}, "name: must be a string, got 5"),
    ({"optim": {"learning_rate": 1}}, "optim.learning_rate: has no proto field"),
])
def test_client_side_conversion_never_coerces(bad, message):
    """json_format's JSON mapping would turn "3" or 3.0 into 3 and true into 1.0: the client refuses them."""
    with pytest.raises(SpecError) as err:
        spec_dict_to_proto(bad)
    assert str(err.value).startswith(message)


_WIRE_PATHS = ["kind", "name", "storage_path", "model", "model.name", "model.overrides", "data.path", "data.max_shift",
               "data.max_train_samples", "data.min_crop", "optim.lr", "optim.epochs", "optim.seed", "optim.optimizer",
               "scaling.use_gpu", "scaling.cpus_per_worker", "tune", "tune.params", "tune.num_trials", "optim.nope"]


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(_WIRE_PATHS), JUNK, min_size=1, max_size=3))
def test_junk_through_the_wire_is_a_spec_error_on_either_side(junk):
    """The client refuses only what the proto cannot carry; the server's spec refuses the rest, both as SpecError."""
    d = with_junk({"data": {"path": "/d"}, "kind": "tune", "tune": {}}, junk)
    try:
        wire = pb.JobSpec.FromString(spec_dict_to_proto(d).SerializeToString())
    except SpecError:
        return
    try:
        spec = spec_from_proto(wire)
    except SpecError as exc:
        assert "\n" not in str(exc)
        return
    assert spec_from_proto(spec_to_proto(spec)) == spec


def test_unset_value_is_a_spec_error():
    msg = pb.JobSpec(data=pb.DataSpec(path="/d"))
    msg.model.overrides["num_glimpses"].CopyFrom(pb.Value())
    with pytest.raises(SpecError, match="model.overrides.num_glimpses: no value set"):
        spec_from_proto(msg)


def test_committed_stubs_match_the_protos(tmp_path):
    pytest.importorskip("grpc_tools")
    from jobs.proto import codegen

    assert codegen.main(tmp_path) == 0
    for generated in (tmp_path / "foveate" / "v1").iterdir():
        committed = codegen.HERE / "foveate" / "v1" / generated.name
        assert committed.read_text() == generated.read_text(), f"run `python -m jobs.proto.codegen`: {generated.name}"
