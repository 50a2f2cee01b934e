"""The one conversion between `jobs.api.spec.JobSpec` and its proto mirror `foveate.v1.JobSpec`.

The proto mirrors the dataclasses field by field (same names). Scalar fields are proto3 `optional`, so
only the ones the client set reach `JobSpec.from_dict`, which fills in the defaults (an unset
storage_path arrives as "", the runner's default) and validates. Reading a message, protobuf's
`json_format.MessageToDict` (proto field names) gives exactly the fields present; its JSON mapping writes
int64 as strings and NaN as "NaN", which are turned back into numbers. Writing one walks the dict and
sets each field after checking its type: `json_format.ParseDict` would accept "3" or 3.0 for an integer
and true for a number (the JSON mapping's leniency), so it would need the same walk first, and it costs
about ten times as much on the path that turns every listed job into a message. Free-form fields travel
as typed `Value`s (model overrides) or `Distribution`s (tune params), which keep integers apart from
floats, and the kind as the JobKind enum; those three are converted by hand both ways.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from jobs.api.spec import JobSpec, SpecError
from jobs.api.states import KIND_FROM_PROTO, KIND_TO_PROTO
from jobs.proto.foveate.v1 import jobs_pb2 as pb

# ----------------------------------------------------------------------------------------- values


def value_to_proto(v: Any, path: str = "value") -> pb.Value:
    """A Python scalar or list as a typed `Value` (bool before int: bool is an int in Python)."""
    if isinstance(v, bool):
        return pb.Value(bool_value=v)
    if isinstance(v, int):
        if not -(2**63) <= v < 2**63:
            raise SpecError(f"{path}: integer out of the 64-bit range")
        return pb.Value(int_value=v)
    if isinstance(v, float):
        return pb.Value(float_value=v)
    if isinstance(v, str):
        return pb.Value(string_value=v)
    if isinstance(v, list | tuple):
        return pb.Value(list_value=pb.ValueList(values=[value_to_proto(x, f"{path}[{i}]") for i, x in enumerate(v)]))
    raise SpecError(f"{path}: {type(v).__name__} values cannot be sent; use a number, string, bool or list")


def value_from_proto(v: pb.Value, path: str = "value") -> Any:
    kind = v.WhichOneof("kind")
    if kind is None:
        raise SpecError(f"{path}: no value set")
    if kind == "list_value":
        return [value_from_proto(x, f"{path}[{i}]") for i, x in enumerate(v.list_value.values)]
    return getattr(v, kind)


# ------------------------------------------------------------------------------------------- spec

# Converted by hand: the kind (an enum named differently) and the typed free-form maps.
_BY_HAND = ("kind", "model.overrides", "tune.params")


def spec_to_proto(spec: JobSpec) -> pb.JobSpec:
    """The proto of a (validated) spec, every field set."""
    return spec_dict_to_proto(spec.to_dict())


def spec_dict_to_proto(d: dict[str, Any]) -> pb.JobSpec:
    """The proto of a plain spec dict, not validated (the server validates): lets a client send a
    spec without importing the models. SpecError only for what the proto cannot carry as given."""
    msg = pb.JobSpec()
    by_hand: dict[str, Any] = {}
    _fill(msg, d, "", by_hand)
    if "kind" in by_hand:
        kind = by_hand["kind"]
        if not isinstance(kind, str) or kind not in KIND_TO_PROTO:
            raise SpecError(f"kind: must be 'train' or 'tune', got {kind!r}")
        msg.kind = KIND_TO_PROTO[kind]
    for k, v in _mapping(by_hand.get("model.overrides", {}), "model.overrides").items():
        msg.model.overrides[k].CopyFrom(value_to_proto(v, f"model.overrides.{k}"))
    for k, dist in _mapping(by_hand.get("tune.params", {}), "tune.params").items():
        if not (isinstance(dist, dict) and len(dist) == 1):
            raise SpecError(f"tune.params.{k}: must be {{sampler: [args]}}")
        sampler, args = next(iter(dist.items()))
        args = args if isinstance(args, list | tuple) else [args]
        msg.tune.params[k].CopyFrom(pb.Distribution(
            sampler=sampler, args=[value_to_proto(a, f"tune.params.{k}.{sampler}") for a in args]))
    return msg


def spec_from_proto(msg: pb.JobSpec) -> JobSpec:
    """A validated JobSpec from the fields the client set; SpecError names the offending field."""
    return JobSpec.from_dict(spec_dict_from_proto(msg))


def spec_dict_from_proto(msg: pb.JobSpec) -> dict[str, Any]:
    """The plain spec dict of the fields present in `msg` (not yet validated)."""
    d = _numbers(json_format.MessageToDict(msg, preserving_proto_field_name=True), pb.JobSpec.DESCRIPTOR)
    d.pop("kind", None)
    if msg.kind != pb.JOB_KIND_UNSPECIFIED:
        if msg.kind not in KIND_FROM_PROTO:
            raise SpecError(f"kind: unknown job kind {msg.kind}; use JOB_KIND_TRAIN or JOB_KIND_TUNE")
        d["kind"] = KIND_FROM_PROTO[msg.kind]
    if msg.model.overrides:
        d["model"]["overrides"] = {k: value_from_proto(v, f"model.overrides.{k}")
                                   for k, v in msg.model.overrides.items()}
    if msg.tune.params:
        d["tune"]["params"] = {k: {p.sampler: [value_from_proto(a, f"tune.params.{k}.{p.sampler}") for a in p.args]}
                               for k, p in msg.tune.params.items()}
    return d


def _fill(msg: Message, d: Any, path: str, by_hand: dict[str, Any]) -> None:
    """Set the fields of `d` in `msg`: each known to the proto, each scalar of its field's own type, None
    left unset, a section present even when empty; the _BY_HAND fields put in `by_hand`."""
    for name, value in _mapping(d, path or "spec").items():
        where = f"{path}.{name}" if path else name
        field = msg.DESCRIPTOR.fields_by_name.get(name)
        if field is None:
            raise SpecError(f"{where}: has no proto field (jobs.proto is out of date with jobs/api/spec.py)")
        if value is None:
            continue
        if where in _BY_HAND:
            by_hand[where] = value
        elif _scalar_map(field):  # map<string, double> and co.: each value of the map's value type
            entries = getattr(msg, name)
            for k, v in _mapping(value, where).items():
                if not isinstance(k, str):
                    raise SpecError(f"{where}: keys must be strings, got {k!r}")
                entries[k] = _scalar(field.message_type.fields_by_name["value"], v, f"{where}.{k}")
        elif field.message_type is not None:
            sub = getattr(msg, name)
            sub.SetInParent()
            _fill(sub, value, where, by_hand)
        else:
            setattr(msg, name, _scalar(field, value, where))


_INT_RANGES = {FieldDescriptor.CPPTYPE_INT32: 32, FieldDescriptor.CPPTYPE_INT64: 64}


def _scalar(field: FieldDescriptor, v: Any, where: str) -> Any:
    t = field.cpp_type
    if t == FieldDescriptor.CPPTYPE_BOOL:
        ok, rule = isinstance(v, bool), "must be true or false"
    elif t in _INT_RANGES:
        bits = _INT_RANGES[t]
        ok, rule = isinstance(v, int) and not isinstance(v, bool), "must be an integer"
        if ok and not -(2 ** (bits - 1)) <= v < 2 ** (bits - 1):
            ok, rule = False, f"integer out of the {bits}-bit range"
    elif t == FieldDescriptor.CPPTYPE_DOUBLE:
        ok, rule = isinstance(v, int | float) and not isinstance(v, bool), "must be a number"
        if ok and not math.isfinite(v):
            ok, rule = False, "must be finite"
    else:
        ok, rule = isinstance(v, str), "must be a string"
    if not ok:
        raise SpecError(f"{where}: {rule}, got {v!r}")
    return v


def _numbers(d: dict[str, Any], desc: Descriptor) -> dict[str, Any]:
    """MessageToDict's JSON mapping undone for the plain fields: int64 as int, "NaN"/"Infinity" as float
    (so the spec says "must be finite", not "must be a number")."""
    for name, v in d.items():
        field = desc.fields_by_name[name]
        if isinstance(v, dict) and _scalar_map(field):
            d[name] = {k: float(x) if isinstance(x, str) else x for k, x in v.items()}
        elif isinstance(v, dict) and not field.message_type.GetOptions().map_entry:
            _numbers(v, field.message_type)
        elif field.cpp_type == FieldDescriptor.CPPTYPE_INT64:
            d[name] = int(v)
        elif field.cpp_type == FieldDescriptor.CPPTYPE_DOUBLE and isinstance(v, str):
            d[name] = float(v)
    return d


def _scalar_map(field: FieldDescriptor) -> bool:
    """A map whose values are plain scalars (`map<string, double>`), not messages."""
    entry = field.message_type
    return entry is not None and entry.GetOptions().map_entry and entry.fields_by_name["value"].message_type is None


def _mapping(v: Any, where: str) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise SpecError(f"{where}: must be a mapping, got {type(v).__name__}")
    return v


def unmirrored_fields() -> list[str]:
    """Dataclass fields of JobSpec without a proto field of the same name (should be empty)."""
    missing = []

    def walk(cls: type, desc: Descriptor, path: str) -> None:
        for f in dataclasses.fields(cls):
            where = f"{path}.{f.name}" if path else f.name
            pf = desc.fields_by_name.get(f.name)
            if pf is None:
                missing.append(where)
                continue
            tp = cls.__pydantic_fields__[f.name].annotation  # resolved, unlike f.type
            sub = next((a for a in (tp, *typing.get_args(tp)) if dataclasses.is_dataclass(a)), None)
            if sub is not None and pf.message_type is not None:
                walk(sub, pf.message_type, where)

    walk(JobSpec, pb.JobSpec.DESCRIPTOR, "")
    return missing
