"""The one conversion between `jobs.api.spec.JobSpec` and its proto mirror `foveate.v1.JobSpec`.

The proto mirrors the dataclasses field by field (same names), so the conversion walks both by name:
scalar fields are proto3 `optional` and only the ones the client set reach `JobSpec.from_dict`, which
fills in the defaults and validates. Free-form fields travel as typed `Value`s (model overrides) or
`Distribution`s (tune params) so integers stay integers.
"""

from __future__ import annotations

import dataclasses
from typing import Any

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


def spec_to_proto(spec: JobSpec) -> pb.JobSpec:
    """The proto of a (validated) spec, every field set."""
    return spec_dict_to_proto(spec.to_dict())


def spec_dict_to_proto(d: dict[str, Any]) -> pb.JobSpec:
    """The proto of a plain spec dict, not validated (the server validates): lets a client send a
    spec without importing the models. SpecError only for what the proto cannot carry."""
    msg = pb.JobSpec()
    _fill(msg, d, "")
    return msg


def spec_from_proto(msg: pb.JobSpec) -> JobSpec:
    """A validated JobSpec from the fields the client set; SpecError names the offending field."""
    return JobSpec.from_dict(spec_dict_from_proto(msg))


def spec_dict_from_proto(msg: pb.JobSpec) -> dict[str, Any]:
    """The plain spec dict of the fields present in `msg` (not yet validated)."""
    return _read(msg, "")


def _fill(msg: Message, d: dict[str, Any], path: str) -> None:
    for name, value in d.items():
        where = f"{path}.{name}" if path else name
        field = msg.DESCRIPTOR.fields_by_name.get(name)
        if field is None:
            raise SpecError(f"{where}: has no proto field (jobs.proto is out of date with jobs/api/spec.py)")
        if value is None:
            continue
        if where == "kind":
            if not isinstance(value, str) or value not in KIND_TO_PROTO:
                raise SpecError(f"kind: must be 'train' or 'tune', got {value!r}")
            msg.kind = KIND_TO_PROTO[value]
        elif field.message_type is not None and not isinstance(value, dict):
            raise SpecError(f"{where}: must be a mapping, got {type(value).__name__}")
        elif where == "model.overrides":
            if not isinstance(value, dict):
                raise SpecError(f"{where}: must be a mapping")
            for k, v in value.items():
                msg.overrides[k].CopyFrom(value_to_proto(v, f"{where}.{k}"))
        elif where == "tune.params":
            if not isinstance(value, dict):
                raise SpecError(f"{where}: must be a mapping")
            for k, dist in value.items():
                if not (isinstance(dist, dict) and len(dist) == 1):
                    raise SpecError(f"{where}.{k}: must be {{sampler: [args]}}")
                sampler, args = next(iter(dist.items()))
                args = args if isinstance(args, list | tuple) else [args]
                msg.params[k].CopyFrom(pb.Distribution(
                    sampler=sampler, args=[value_to_proto(a, f"{where}.{k}.{sampler}") for a in args]))
        elif field.message_type is not None:
            _fill(getattr(msg, name), value, where)
        else:
            try:
                setattr(msg, name, value)
            except (TypeError, ValueError) as exc:
                raise SpecError(f"{where}: {exc}") from None


def _read(msg: Message, path: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field in msg.DESCRIPTOR.fields:
        name = field.name
        where = f"{path}.{name}" if path else name
        if where == "kind":
            if msg.kind != pb.JOB_KIND_UNSPECIFIED:
                if msg.kind not in KIND_FROM_PROTO:
                    raise SpecError(f"kind: unknown job kind {msg.kind}; use JOB_KIND_TRAIN or JOB_KIND_TUNE")
                out["kind"] = KIND_FROM_PROTO[msg.kind]
        elif where == "model.overrides":
            if msg.overrides:
                out[name] = {k: value_from_proto(v, f"{where}.{k}") for k, v in msg.overrides.items()}
        elif where == "tune.params":
            if msg.params:
                out[name] = {k: {d.sampler: [value_from_proto(a, f"{where}.{k}.{d.sampler}") for a in d.args]}
                             for k, d in msg.params.items()}
        elif field.message_type is not None:
            if msg.HasField(name):
                out[name] = _read(getattr(msg, name), where)
        elif msg.HasField(name):
            out[name] = getattr(msg, name)
    return out


def unmirrored_fields() -> list[str]:
    """Dataclass fields of JobSpec without a proto field of the same name (should be empty)."""
    missing = []

    def walk(cls: type, desc: Any, path: str) -> None:
        for f in dataclasses.fields(cls):
            where = f"{path}.{f.name}" if path else f.name
            pf = desc.fields_by_name.get(f.name)
            if pf is None:
                missing.append(where)
                continue
            sub = _dataclass_of(f.type)
            if sub is not None and pf.message_type is not None:
                walk(sub, pf.message_type, where)

    walk(JobSpec, pb.JobSpec.DESCRIPTOR, "")
    return missing


def _dataclass_of(tp: Any) -> type | None:
    import jobs.api.spec as s

    name = tp if isinstance(tp, str) else getattr(tp, "__name__", "")
    name = name.replace(" | None", "").strip()
    cls = getattr(s, name, None)
    return cls if dataclasses.is_dataclass(cls) else None
