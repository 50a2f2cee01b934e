"""A job's spec as its user reads and writes it: plain YAML in the spec's field order, never the proto's
text (`kind: JOB_KIND_TRAIN`, `num_glimpses: {int_value: '4'}`). Pure: no Streamlit calls.

The service keeps the normalised spec (every default filled in); `written` narrows it to what differs
from the defaults, which is what the user wrote (a field set to its default value reads as unset).
"""

from __future__ import annotations

import contextlib
from typing import Any

import yaml

from jobs.api.spec import JobSpec, SpecError, TuneSpec
from jobs.api.spec_proto import spec_dict_from_proto
from jobs.proto.foveate.v1 import jobs_pb2 as pb


def plain(spec: pb.JobSpec) -> dict[str, Any]:
    """The spec message as a plain spec dict in the spec's field order, normalised (a message leaves
    out an empty map such as `optim.lr_scales`; the spec has it, empty)."""
    d = spec_dict_from_proto(spec)
    with contextlib.suppress(SpecError):  # one this dashboard's version cannot read is shown as the message has it
        d = JobSpec.from_dict(d).to_dict()
    return ordered(d)


def _defaults(kind: str) -> dict[str, Any]:
    d = JobSpec().to_dict()
    if kind == "tune":
        d["tune"] = JobSpec(tune=TuneSpec()).to_dict()["tune"]
    return d


def ordered(d: dict[str, Any], like: dict[str, Any] | None = None) -> dict[str, Any]:
    """`d` with its keys in the order of the spec's fields (as `like`, default JobSpec's, has them); keys
    the spec does not name (a mapping's own, such as model overrides) keep their order, after them."""
    like = _defaults(str(d.get("kind", "train"))) if like is None else like
    keys = [k for k in like if k in d] + [k for k in d if k not in like]
    return {k: ordered(d[k], like[k]) if isinstance(d[k], dict) and isinstance(like.get(k), dict) else d[k]
            for k in keys}


def written(d: dict[str, Any], job_id: str = "") -> dict[str, Any]:
    """The fields of a normalised spec that differ from the defaults (model overrides and search params
    whole); `name` left out when it is the job's id (the service names runs after their jobs)."""
    kind = str(d.get("kind", "train"))
    out = _diff(d, _defaults(kind))
    out["kind"] = kind
    # What the job is (its model and dataset) is always written, even where it is the default's.
    out.setdefault("model", {})["name"] = d.get("model", {}).get("name", "")
    out.setdefault("data", {})["path"] = d.get("data", {}).get("path", "")
    if job_id and out.get("name") == job_id:
        del out["name"]
    return ordered(out)


def _diff(d: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        b = base.get(k) if isinstance(base, dict) else None
        if isinstance(v, dict) and isinstance(b, dict) and b:
            sub = _diff(v, b)
            if sub:
                out[k] = sub
        elif v != b and v not in ({}, None):
            out[k] = v
    return out


class _Dumper(yaml.SafeDumper):
    """Sections as blocks, one field a line; lists inline (`grid: [1, 2, 3]`), as a user writes them."""


_Dumper.add_representer(list, lambda dumper, v: dumper.represent_sequence("tag:yaml.org,2002:seq", v, flow_style=True))


def to_yaml(d: dict[str, Any]) -> str:
    """A spec dict as YAML, in the dict's order."""
    return yaml.dump(d, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True, width=100)
