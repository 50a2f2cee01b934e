"""Hostile requests to every RPC of foveate.v1.JobService, on a real gRPC server over a real JobService
and the session's real Ray head: strings of every size and script, paths and URIs of every shape, numbers
with NaN, infinities and overflow in every spec field and in model.overrides, garbage page tokens,
unknown ids, and cancels racing submits and dispatches.

Every answer must be a status a client can act on (ALLOWED; OK where the request happened to be valid):
never INTERNAL or UNKNOWN. Each run collects every answer outside ALLOWED and reports them all at the end
(not only the first, as an assertion inside a hypothesis example would). Afterwards the server still
answers a health check and GetJob, and no file appeared outside the storage root: every generated path
lies in a sandbox tree, or outside it under a name unique to this run (SENTINEL) that is looked for
afterwards in each place a path can land (/, /tmp, /etc, $HOME, the working directory).
"""

from __future__ import annotations

import base64
import dataclasses
import math
import os
import shutil
import threading
import time
import uuid
from pathlib import Path

import grpc
import pytest
from google.protobuf import text_format
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from service_harness import running_server, tiny_spec

from cluster.jobs_api import RayJobsAPI
from jobs.api.spec_proto import spec_dict_to_proto
from jobs.api.states import FINAL, state_name
from jobs.proto.foveate.v1 import jobs_pb2 as pb
from jobs.service.catalog import JobRecord
from jobs.service.job_service import ServiceConfig

pytestmark = pytest.mark.ray
S = grpc.StatusCode
ALLOWED = {S.OK, S.INVALID_ARGUMENT, S.NOT_FOUND, S.FAILED_PRECONDITION, S.ALREADY_EXISTS, S.RESOURCE_EXHAUSTED,
           S.DEADLINE_EXCEEDED, S.UNAUTHENTICATED}
DEADLINE = 10.0  # per unary call; streams get STREAM_DEADLINE (a follow on a queued job never ends)
STREAM_DEADLINE = 1.0
SENTINEL = f"fvfuzz-{uuid.uuid4().hex[:8]}"
FUZZ = dict(derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck))

# ------------------------------------------------------------------------------------------ values

MEGA = "x" * (1 << 20)
TEXT = st.one_of(
    st.text(max_size=24),  # every script, combining marks, controls, astral planes (never surrogates)
    st.text(min_size=200, max_size=2000),
    st.sampled_from(["", " ", "\x00", "\u202e", "ジョブ", "𝕁𝕠𝕓", "%s%n", "' OR 1=1 --", "job-", "NaN", MEGA]))
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


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory, tiny_dataset):
    """A tree holding the storage root, a copy of the tiny dataset and an `outside` directory; every
    SENTINEL name this module may have made elsewhere is removed at the end (only where it exists)."""
    root = tmp_path_factory.mktemp("fuzz")
    (root / "storage").mkdir()
    (root / "outside").mkdir()
    shutil.copytree(tiny_dataset, root / "data")
    yield root
    for place in _away_places():
        shutil.rmtree(place, ignore_errors=True) if place.is_dir() else place.unlink()


def _away_places() -> list[Path]:
    """What exists under a SENTINEL name where a path from outside the sandbox can land."""
    bases = [Path(p) for p in ("/", "/tmp", "/etc", Path.home(), Path.cwd())]
    return [hit for base in bases for hit in base.glob(f"*{SENTINEL}*")]


def _files(root: Path, skip: tuple[Path, ...]) -> set[str]:
    out = set()
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = [d for d in dirnames if here / d not in skip]
        out |= {str(here / f) for f in filenames if here / f not in skip} | {str(here)}
    return out


def assert_nothing_written_outside(sandbox: Path, before: set[str], skip: tuple[Path, ...]) -> None:
    made = sorted(_files(sandbox, (sandbox / "storage", *skip)) - before)
    made += [str(p) for p in _away_places()]
    assert made == [], f"written outside the storage root: {made[:20]}"


# ------------------------------------------------------------------------------------------- tests


def _seed_jobs(service, sandbox: Path) -> dict[str, str]:
    """Jobs of every state a catalog may hold, including one whose run directory no filesystem reads
    (catalogs from before the path policy)."""
    out = {}
    for name, kind, state, run_dir in (("done", "train", "SUCCEEDED", sandbox / "storage" / "done"),
                                       ("tuned", "tune", "FAILED", sandbox / "storage" / "tuned"),
                                       ("unreadable", "tune", "SUCCEEDED", "hdfs://namenode/runs/x")):
        job_id = f"job-seed{name}"
        service.catalog.insert(JobRecord(id=job_id, kind=kind, model="ram-cluttered60", owner="seed", priority=0,
                                         state="QUEUED", spec={"name": job_id}, run_dir=str(run_dir)))
        service.catalog.transition(job_id, state)
        out[name] = job_id
    return out


def test_every_rpc_answers_hostile_requests_with_a_status_a_client_can_act_on(ray_head, sandbox):
    storage = sandbox / "storage"
    db = sandbox / "catalog"
    db.mkdir(exist_ok=True)
    before = _files(sandbox, (storage, db))
    paths = path_strategy(sandbox)
    valid = spec_dict_to_proto(tiny_spec(str(sandbox / "data"), str(storage)))
    with running_server(ray_head, str(db / "c.db"), max_running=0) as (client, service, port):
        probe = Probe(client)
        seeded = _seed_jobs(service, sandbox)
        queued = client.submit(valid, owner="seed").id
        ids = st.one_of(TEXT, st.sampled_from([queued, *seeded.values(), "job-" + "0" * 12, "job-" + "f" * 124]))

        @settings(max_examples=650, **FUZZ)
        @given(bad_specs(valid, paths), st.booleans(), TEXT, TEXT, INT32)
        def submit(spec, validate_only, owner, request_id, priority):
            code, answer = probe("SubmitJob", pb.SubmitJobRequest(spec=spec, validate_only=validate_only,
                                                                  owner=owner, request_id=request_id, priority=priority))
            if code == S.OK and not validate_only:
                probe("CancelJob", pb.CancelJobRequest(job_id=answer.job.id))  # the queue is paused: at once

        @settings(max_examples=450, **FUZZ)
        @given(st.lists(INT32, max_size=4), INT32, TEXT, TEXT, INT32, TOKENS)
        def list_jobs(states, kind, model, owner, page_size, token):
            probe("ListJobs", pb.ListJobsRequest(states=states, kind=kind, model=model, owner=owner,
                                                 page_size=page_size, page_token=token))

        @settings(max_examples=850, **FUZZ)
        @given(st.sampled_from(["GetJob", "CancelJob", "ListTrials", "GetAttention", "WatchJob", "StreamLogs"]),
               ids, TEXT, st.one_of(st.none(), INT32), INT32, st.booleans())
        def by_id(rpc, job_id, trial, epoch, max_records, follow):
            if rpc == "CancelJob" and job_id == queued:
                job_id = "job-" + "e" * 12  # keep the queued job for the others
            request = {"GetJob": pb.GetJobRequest(job_id=job_id), "CancelJob": pb.CancelJobRequest(job_id=job_id),
                       "ListTrials": pb.ListTrialsRequest(job_id=job_id),
                       "GetAttention": pb.GetAttentionRequest(job_id=job_id, trial=trial, epoch=epoch,
                                                              max_records=max_records),
                       "WatchJob": pb.WatchJobRequest(job_id=job_id),
                       "StreamLogs": pb.StreamLogsRequest(job_id=job_id, follow=follow)}[rpc]
            probe(rpc, request, stream=rpc in ("WatchJob", "StreamLogs"))

        @settings(max_examples=50, **FUZZ)
        @given(TEXT)
        def models(family):
            probe("ListModels", pb.ListModelsRequest(family=family))
            probe("DescribeCluster", pb.DescribeClusterRequest())

        t0 = time.monotonic()
        for run in (submit, list_jobs, by_id, models):
            run()
        elapsed = time.monotonic() - t0
        print(f"{probe.calls} calls in {elapsed:.0f} s;", {k: round(v, 1) for k, v in probe.seconds.items()})

        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:  # still serving, and still itself
            check = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert check.status == health_pb2.HealthCheckResponse.SERVING
        assert state_name(client.get(queued).state) == "QUEUED"
    assert probe.calls >= 2000, probe.calls
    assert probe.unexpected == [], f"{len(probe.unexpected)} of {probe.calls} calls in {elapsed:.0f} s:\n" + \
        "\n".join(probe.unexpected[:40])
    assert_nothing_written_outside(sandbox, before, (db,))


def test_cancels_racing_submits_and_dispatches_never_let_a_job_run(ray_head, sandbox):
    """Real submits on a dispatching queue, each cancelled while it is queued, being handed to Ray or
    PENDING there, from several threads at once (and a retried submit racing its cancel): every answer
    is allowed, every job ends CANCELLED, Ray ends up running none of them, none wrote a result."""
    storage, db = sandbox / "storage", sandbox / "races"
    db.mkdir(exist_ok=True)
    spec = tiny_spec(str(sandbox / "data"), str(storage), epochs=1000)  # nothing finishes unless a cancel failed
    ray = RayJobsAPI(ray_head.dashboard_url, ray_head.token())
    made: list[str] = []
    try:
        with running_server(ray_head, str(db / "c.db"), max_running=2) as (client, service, _):
            probe = Probe(client)
            msg = client.spec_message(spec)
            handed: list[str] = []  # jobs cancelled only once Ray had them (PENDING or later)

            def submit_and_cancel(key: str, when: str, ids: list[str]) -> None:
                code, answer = probe("SubmitJob", pb.SubmitJobRequest(spec=msg, owner="racer", request_id=key))
                if code != S.OK:
                    return
                ids.append(answer.job.id)
                if when == "handed":  # wait for the dispatch, then cancel while Ray is starting it
                    deadline = time.monotonic() + 30
                    while state_name(client.get(answer.job.id).state) == "QUEUED" and time.monotonic() < deadline:
                        time.sleep(0.05)
                    handed.append(answer.job.id)
                elif when != "now":
                    time.sleep(float(when))  # somewhere in the dispatch
                probe("CancelJob", pb.CancelJobRequest(job_id=answer.job.id))

            for round_ in range(3):
                retried: list[str] = []  # one key, submitted and cancelled from three threads
                runs = [(f"race-{round_}", when, retried) for when in ("now", "now", "0.05")]
                runs += [(f"race-{round_}-{when}", when, made) for when in ("0.2", "handed")]
                threads = [threading.Thread(target=submit_and_cancel, args=run) for run in runs]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join(60)
                assert len(set(retried)) == 1, retried  # one owner's key: one job, however the submits interleave
                made.append(retried[0])
            assert probe.unexpected == [], "\n".join(probe.unexpected)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:  # Ray confirms every stop (the reconciler re-asks meanwhile)
                alive = [j for j in made if (rj := ray.job(j)) is not None and rj.status in ("PENDING", "RUNNING")]
                if not alive:
                    break
                time.sleep(0.5)
            assert alive == [], f"Ray still runs cancelled jobs {alive}"
            for job_id in made:
                rec = service.get(job_id)
                print(job_id, [h[0] for h in rec.history], rec.history[-1][2])  # which race each round met
                assert rec.state == "CANCELLED", (job_id, rec.state, rec.history)
                assert not (Path(rec.run_dir) / "result.json").exists()
            for job_id in handed:
                assert "PENDING" in [h[0] for h in service.get(job_id).history]  # these raced Ray, not the queue
    finally:
        for job_id in made:  # whatever happened above, nothing of this test keeps running in Ray
            rj = ray.job(job_id)
            if rj is not None and rj.status not in FINAL + ("STOPPED",):
                ray.stop(job_id)


def _roots(storage: Path, data: Path) -> dict[str, tuple[str, ...]]:
    """ServiceConfig's path roots for the sandbox, where this ServiceConfig has them (the path policy's
    storage and data roots; a service without them writes wherever a spec points)."""
    names = {f.name for f in dataclasses.fields(ServiceConfig)}
    return {k: v for k, v in (("storage_roots", (str(storage),)), ("data_roots", (str(data),))) if k in names}


# Cases this branch's service still accepts: its storage roots are another branch's (jobs/api/paths.py).
NEEDS_ROOTS = pytest.mark.xfail(not _roots(Path("/s"), Path("/d")), strict=True,
                                reason="storage_path roots: the path policy's, on another branch")


@pytest.mark.parametrize("storage_path", [
    pytest.param("{sandbox}/outside/x", marks=NEEDS_ROOTS, id="sandbox-outside"),
    pytest.param("{sandbox}/storage/../outside/y", marks=NEEDS_ROOTS, id="dotdot-out-of-root"),
    pytest.param("/tmp/{S}/x", marks=NEEDS_ROOTS, id="tmp"),
    pytest.param("/etc/{S}/x", marks=NEEDS_ROOTS, id="etc"),
    pytest.param("~/{S}", marks=NEEDS_ROOTS, id="home"),
    pytest.param("{S}/relative", marks=NEEDS_ROOTS, id="relative"),
    pytest.param("file:///tmp/{S}/x", marks=NEEDS_ROOTS, id="file-uri"),
    pytest.param("~nosuchuser/{S}", marks=NEEDS_ROOTS, id="unknown-user"),
    pytest.param("hdfs://namenode/{S}", marks=NEEDS_ROOTS, id="hdfs"),
    pytest.param("mock://{S}", marks=NEEDS_ROOTS, id="mock-uri"),
])
def test_storage_paths_outside_the_root_are_refused_before_anything_is_written(ray_head, sandbox, storage_path):
    """A real submit on a dispatching queue: a storage path outside the storage root is INVALID_ARGUMENT
    naming storage_path, and nothing appears outside the root (the service writes a job's spec.json
    into its run directory when it hands the job to Ray)."""
    storage, db = sandbox / "storage", sandbox / f"paths-{uuid.uuid4().hex[:6]}"
    db.mkdir()
    before = _files(sandbox, (storage, db))
    spec = tiny_spec(str(sandbox / "data"), storage_path.format(sandbox=sandbox, S=SENTINEL), epochs=1000)
    with running_server(ray_head, str(db / "c.db"), max_running=1, config=_roots(storage, sandbox / "data")) as (
            client, _, _):
        probe = Probe(client)
        code, answer = probe("SubmitJob", pb.SubmitJobRequest(spec=spec_dict_to_proto(spec), owner="paths"))
        if code == S.OK:  # let the dispatch write what it writes, then make sure nothing of it runs on
            deadline = time.monotonic() + 15
            while state_name(client.get(answer.job.id).state) == "QUEUED" and time.monotonic() < deadline:
                time.sleep(0.2)
            probe("CancelJob", pb.CancelJobRequest(job_id=answer.job.id))
    try:
        assert code == S.INVALID_ARGUMENT, f"{code.name} for storage_path {spec['storage_path']!r}"
        assert probe.unexpected == []
        assert_nothing_written_outside(sandbox, before, (db,))
    finally:
        for place in _away_places():
            shutil.rmtree(place, ignore_errors=True) if place.is_dir() else place.unlink()


@NEEDS_ROOTS
def test_paths_of_every_shape_are_answered_not_internal(ray_head, sandbox):
    """Valid specs but for one path: data.path or storage_path of every shape (the bulk test above
    changes other fields too, so its paths often meet another error first)."""
    storage, db = sandbox / "storage", sandbox / "shapes"
    db.mkdir(exist_ok=True)
    before = _files(sandbox, (storage, db))
    valid = spec_dict_to_proto(tiny_spec(str(sandbox / "data"), str(storage)))
    # Not read when validating, so object stores can be named here (a data path there waits on the network).
    storage_only = st.sampled_from([f"s3://bucket/{SENTINEL}", f"gs://bucket/{SENTINEL}", f"s3://{SENTINEL}"])
    with running_server(ray_head, str(db / "c.db"), max_running=0, config=_roots(storage, sandbox / "data")) as (
            client, _, _):
        probe = Probe(client)

        @settings(max_examples=300, **FUZZ)
        @given(st.sampled_from(["data", "storage"]), st.one_of(path_strategy(sandbox), storage_only), st.booleans())
        def check(where, path, validate_only):
            if where == "data" and path.startswith(("s3:", "gs:")):
                where = "storage"
            spec = pb.JobSpec()
            spec.CopyFrom(valid)
            if where == "data":
                spec.data.path = path
            else:
                spec.storage_path = path
            code, answer = probe("SubmitJob", pb.SubmitJobRequest(spec=spec, validate_only=validate_only, owner="p"))
            if code == S.OK and not validate_only:
                probe("CancelJob", pb.CancelJobRequest(job_id=answer.job.id))

        check()
    assert probe.unexpected == [], f"{len(probe.unexpected)} of {probe.calls}:\n" + "\n".join(probe.unexpected[:40])
    assert_nothing_written_outside(sandbox, before, (db,))


def test_a_storage_path_under_the_root_is_written_there(ray_head, sandbox):
    """The control of the test above: a job under the root is accepted, and its dispatch writes there
    (so the check for files outside the root sees what a dispatch writes)."""
    storage, db = sandbox / "storage", sandbox / "control"
    db.mkdir()
    before = _files(sandbox, (storage, db))
    spec = tiny_spec(str(sandbox / "data"), str(storage / "control"), epochs=1000)
    with running_server(ray_head, str(db / "c.db"), max_running=1, config=_roots(storage, sandbox / "data")) as (
            client, _, _):
        job = client.submit(spec)
        deadline = time.monotonic() + 30
        while state_name(client.get(job.id).state) == "QUEUED" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert state_name(client.cancel(job.id).state) in ("CANCELLED", "PENDING")
        assert (storage / "control" / job.id / "spec.json").is_file()
    assert_nothing_written_outside(sandbox, before, (db,))
