"""What the service's hostile-input tests share: strategies for hostile values (strings of every size and
script, numbers with NaN, infinities and overflow, paths and URIs of every shape, spec messages with any
field set to any of them, page tokens), a `Probe` that calls RPCs and keeps every answer outside ALLOWED,
and a sandbox tree with the checks that nothing was written outside its storage root.

Every generated path lies in the sandbox, or outside it under a name unique to the run (SENTINEL) that is
looked for afterwards in each place a path can land (/, /tmp, /etc, $HOME, the working directory).
"""

from __future__ import annotations

import base64
import math
import os
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
from google.protobuf import text_format
from hypothesis import HealthCheck
from hypothesis import strategies as st

from jobs.proto.foveate.v1 import jobs_pb2 as pb

S = grpc.StatusCode
ALLOWED = {S.OK, S.INVALID_ARGUMENT, S.NOT_FOUND, S.FAILED_PRECONDITION, S.ALREADY_EXISTS, S.RESOURCE_EXHAUSTED,
           S.DEADLINE_EXCEEDED, S.UNAUTHENTICATED}
DEADLINE = 10.0  # per unary call; streams get STREAM_DEADLINE (a follow on a queued job never ends)
STREAM_DEADLINE = 1.0
SENTINEL = f"fvfuzz-{uuid.uuid4().hex[:8]}"
FUZZ = dict(derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck))

# ------------------------------------------------------------------------------------------ roots


def roots(storage: Path, data: Path) -> dict[str, tuple[str, ...]]:
    """ServiceConfig's path roots for the sandbox: the service writes only under `storage`, reads under `data`."""
    return {"storage_roots": (str(storage),), "data_roots": (str(data),)}


# ------------------------------------------------------------------------------------------ values

MEGA = "x" * (1 << 20)
TEXT = st.one_of(
    st.text(max_size=24),  # every script, combining marks, controls, astral planes (never surrogates)
    st.text(min_size=200, max_size=2000),
    st.sampled_from(["", " ", "\x00", "\u202e", "ジョブ", "𝕁𝕠𝕓", "%s%n", "' OR 1=1 --", "job-", "NaN", MEGA]))
# Mostly short (so the rest of the request gets looked at), sometimes anything TEXT makes.
SHORT_OR_TEXT = st.one_of(st.just(""), st.just("ann"), st.text(max_size=12), st.text(max_size=30), TEXT)
FLOATS = st.one_of(st.floats(), st.sampled_from([math.nan, math.inf, -math.inf, 1e308, 5e-324, -0.0]))
INT32 = st.one_of(st.integers(-(2**31), 2**31 - 1), st.sampled_from([-(2**31), 2**31 - 1, -1, 0]))
INT64 = st.one_of(st.integers(-(2**63), 2**63 - 1), st.sampled_from([-(2**63), 2**63 - 1]))
VALUES = st.recursive(
    st.one_of(st.builds(lambda v: pb.Value(int_value=v), INT64), st.builds(lambda v: pb.Value(float_value=v), FLOATS),
              st.builds(lambda v: pb.Value(bool_value=v), st.booleans()),
              st.builds(lambda v: pb.Value(string_value=v), TEXT), st.just(pb.Value())),
    lambda inner: st.lists(inner, max_size=4).map(lambda vs: pb.Value(list_value=pb.ValueList(values=vs))),
    max_leaves=8)


def path_strategy(sandbox: Path) -> st.SearchStrategy[str]:
    """Paths and URIs of every shape, each based in the sandbox or named after SENTINEL."""
    parts = st.lists(st.one_of(st.sampled_from(["..", ".", "", "x", "a b", "ジョブ", "~", "\x00", "*", "%2e%2e"]),
                               st.text(max_size=6)), max_size=5).map("/".join)
    inside = st.sampled_from([sandbox / "storage", sandbox / "outside", sandbox / "data", sandbox]).map(str)
    away = st.sampled_from([f"/{SENTINEL}", f"/tmp/{SENTINEL}", f"/etc/{SENTINEL}", f"~/{SENTINEL}", SENTINEL,
                            f"./{SENTINEL}", f"~nosuchuser/{SENTINEL}", f"~root/{SENTINEL}"])
    # s3:// and gs:// are left out of data paths here: reading them waits on the network (see the report).
    schemes = st.sampled_from(["file://", "file:///tmp/", "hdfs://namenode/", "mock://", "foo://", "://", "s3:/",
                               "http://127.0.0.1:9/", "C:\\", "\\\\server\\share\\"])
    return st.one_of(st.builds(lambda b, t: f"{b}/{t}", inside, parts), st.builds(lambda b, t: f"{b}/{t}", away, parts),
                     st.builds(lambda s, t: f"{s}{SENTINEL}/{t}", schemes, parts), st.sampled_from(["", "/", ".", "~"]),
                     TEXT.map(lambda t: f"{sandbox}/{t}"))


def _scalars(desc, prefix=()) -> list[tuple[tuple[str, ...], object]]:
    """(path, field) of every scalar field of a spec message, nested messages included."""
    out = []
    for f in desc.fields:
        if f.message_type is None and not f.is_repeated:
            out.append(((*prefix, f.name), f))
        elif f.message_type is not None and not f.is_repeated and f.message_type.name != "Value":
            out += _scalars(f.message_type, (*prefix, f.name))
    return out


SPEC_FIELDS = _scalars(pb.JobSpec.DESCRIPTOR)
F = type(SPEC_FIELDS[0][1])


def _field_values(field, paths: st.SearchStrategy[str]) -> st.SearchStrategy:
    if field.type == F.TYPE_STRING:
        return paths if field.name in ("path", "storage_path") else TEXT
    if field.type in (F.TYPE_DOUBLE, F.TYPE_FLOAT):
        return FLOATS
    if field.type == F.TYPE_INT64:
        return INT64
    if field.type == F.TYPE_BOOL:
        return st.booleans()
    return INT32  # int32 and enums (proto3 enums are open: unknown numbers travel)


@st.composite
def bad_specs(draw, valid: pb.JobSpec, paths: st.SearchStrategy[str]) -> pb.JobSpec:
    """`valid` with a few fields (of any depth) set to hostile values, and hostile overrides or params."""
    msg = pb.JobSpec()
    msg.CopyFrom(valid)
    if draw(st.booleans()):
        msg.kind = pb.JOB_KIND_TUNE
        msg.tune.space = draw(st.sampled_from(["none", "default"]))
    for path, field in draw(st.lists(st.sampled_from(SPEC_FIELDS), max_size=4)):
        target = msg
        for name in path[:-1]:
            target = getattr(target, name)
        setattr(target, path[-1], draw(_field_values(field, paths)))
    where = draw(st.sampled_from(["data", "storage", None]))  # a path of every shape in half the specs
    if where == "data":
        msg.data.path = draw(paths)
    elif where == "storage":
        msg.storage_path = draw(paths)
    for key, value in draw(st.dictionaries(st.one_of(st.sampled_from(["num_glimpses", "patch_size", "location_std",
                                                                      "core", "image_size"]), TEXT), VALUES, max_size=3)).items():
        msg.model.overrides[key].CopyFrom(value)
    if draw(st.booleans()):
        for key in draw(st.lists(st.one_of(st.sampled_from(["optim.lr", "model.num_glimpses", "model.nope"]), TEXT),
                                 max_size=2)):
            msg.tune.params[key].sampler = draw(st.one_of(st.sampled_from(["choice", "uniform", "loguniform", "grid"]), TEXT))
            msg.tune.params[key].args.extend(draw(st.lists(VALUES, max_size=3)))
    return msg


TOKENS = st.one_of(
    TEXT, st.binary(max_size=40).map(lambda b: base64.urlsafe_b64encode(b).decode()),
    st.one_of(st.integers(), st.sampled_from([2**63, 2**64, -(2**63) - 1, 10**400])).map(
        lambda n: base64.urlsafe_b64encode(f"v1:{n}".encode()).decode()),
    TEXT.map(lambda t: base64.urlsafe_b64encode(f"v1:{t}".encode()).decode()))


# ------------------------------------------------------------------------------------------ probing


class Probe:
    """Calls RPCs on a stub and keeps every answer outside ALLOWED (with what was asked)."""

    def __init__(self, client):
        self.stub, self.metadata = client._stub, client._metadata
        self.calls = 0
        self.seconds: dict[str, float] = {}  # per RPC, for the report
        self.unexpected: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, rpc: str, request, *, stream: bool = False) -> tuple[grpc.StatusCode, object]:
        answer, t0 = None, time.monotonic()
        try:
            if stream:
                call = getattr(self.stub, rpc)(request, metadata=self.metadata, timeout=STREAM_DEADLINE)
                try:
                    answer = next(call, None)
                finally:
                    call.cancel()
            else:
                answer = getattr(self.stub, rpc)(request, metadata=self.metadata, timeout=DEADLINE)
            code, details = S.OK, ""
        except grpc.RpcError as exc:
            code, details = exc.code(), exc.details() or ""
        with self._lock:
            self.calls += 1
            self.seconds[rpc] = self.seconds.get(rpc, 0.0) + time.monotonic() - t0
            if code not in ALLOWED:
                asked = text_format.MessageToString(request, as_one_line=True).replace(MEGA, "<1 MB>")[:300]
                if rpc == "SubmitJob":
                    asked = f"data.path={request.spec.data.path[:80]!r} storage_path={request.spec.storage_path[:80]!r} {asked}"
                self.unexpected.append(f"{rpc} -> {code.name}: {details[:300]} | {asked}")
        return code, answer


def make_sandbox(tmp_path_factory, tiny_dataset: str) -> Iterator[Path]:
    """A tree holding the storage root, a copy of the tiny dataset and an `outside` directory; every
    SENTINEL name this module may have made elsewhere is removed at the end (only where it exists)."""
    root = tmp_path_factory.mktemp("fuzz")
    (root / "storage").mkdir()
    (root / "outside").mkdir()
    shutil.copytree(tiny_dataset, root / "data")
    yield root
    for place in away_places():
        shutil.rmtree(place, ignore_errors=True) if place.is_dir() else place.unlink()


def away_places() -> list[Path]:
    """What exists under a SENTINEL name where a path from outside the sandbox can land."""
    bases = [Path(p) for p in ("/", "/tmp", "/etc", Path.home(), Path.cwd())]
    return [hit for base in bases for hit in base.glob(f"*{SENTINEL}*")]


def files(root: Path, skip: tuple[Path, ...]) -> set[str]:
    out = set()
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = [d for d in dirnames if here / d not in skip]
        out |= {str(here / f) for f in filenames if here / f not in skip} | {str(here)}
    return out


def assert_nothing_written_outside(sandbox: Path, before: set[str], skip: tuple[Path, ...]) -> None:
    made = sorted(files(sandbox, (sandbox / "storage", *skip)) - before)
    made += [str(p) for p in away_places()]
    assert made == [], f"written outside the storage root: {made[:20]}"
