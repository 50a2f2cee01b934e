"""The job service's parts that need no Ray: the spec's proto mirror, the SQLite catalog, the queue and
reconcile logic against a scripted Ray Jobs API."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from spec_junk import JUNK, with_junk

from cluster.jobs_api import ClusterSnapshot, NodeInfo, RayJob
from jobs.api.spec import JobSpec, SpecError
from jobs.api.spec_proto import spec_dict_to_proto, spec_from_proto, spec_to_proto, unmirrored_fields
from jobs.proto.foveate.v1 import jobs_pb2 as pb
from jobs.run.checks import check_model
from jobs.service.catalog import SCHEMA_VERSION, Catalog, JobRecord
from jobs.service.job_service import JobService, JobStateError, ServiceConfig, failure_reason

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


# ------------------------------------------------------------------------------------------ catalog


def _rec(job_id: str, **kw) -> JobRecord:
    base = dict(id=job_id, kind="train", model="ram-cluttered60", owner="ann", priority=0, state="QUEUED",
                spec={"name": job_id}, run_dir=f"/r/{job_id}")
    return JobRecord(**{**base, **kw})


def test_catalog_transitions_are_compare_and_set_with_history(tmp_path):
    cat = Catalog(tmp_path / "c.db")
    cat.insert(_rec("a"))
    assert cat.transition("a", "RUNNING", from_states=("PENDING",)) is None  # not PENDING yet
    cat.transition("a", "PENDING", from_states=("QUEUED",), reason="submitted")
    rec = cat.transition("a", "SUCCEEDED", from_states=("PENDING", "RUNNING"), result={"metrics": {"x": 1}})
    assert [h[0] for h in rec.history] == ["QUEUED", "PENDING", "SUCCEEDED"]
    assert rec.result == {"metrics": {"x": 1}} and rec.finished is not None
    assert cat.transition("a", "CANCELLED", from_states=("QUEUED", "PENDING", "RUNNING")) is None


def test_catalog_pages_newest_first_and_dedupes_request_ids(tmp_path):
    cat = Catalog(tmp_path / "c.db")
    for i in range(5):
        cat.insert(_rec(f"j{i}", owner="ann" if i % 2 else "bob"))
    assert cat.insert(_rec("dup"), request_id="k").id == "dup"
    assert cat.insert(_rec("dup2"), request_id="k").id == "dup"  # a retried submit
    first = cat.list(limit=3)
    rest = cat.list(before_seq=first[-1].seq, limit=10)
    assert [r.id for r in first + rest] == ["dup", "j4", "j3", "j2", "j1", "j0"]
    assert {r.id for r in cat.list(owner="ann")} == {"j1", "j3", "dup"}


def test_request_ids_deduplicate_per_owner(tmp_path):
    cat = Catalog(tmp_path / "c.db")
    assert cat.insert(_rec("a1", owner="ann"), request_id="k").id == "a1"
    assert cat.insert(_rec("b1", owner="bob"), request_id="k").id == "b1"  # bob's key is his own
    assert cat.insert(_rec("a2", owner="ann"), request_id="k").id == "a1"
    assert cat.insert(_rec("b2", owner="bob"), request_id="k").id == "b1"
    assert {r.id for r in cat.list()} == {"a1", "b1"}


# The catalog as the service before SCHEMA_VERSION 1 wrote it: request_id unique across owners.
_SCHEMA_V0 = """
CREATE TABLE jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, kind TEXT NOT NULL, model TEXT NOT NULL,
    owner TEXT NOT NULL DEFAULT '', priority INTEGER NOT NULL DEFAULT 0, state TEXT NOT NULL, spec TEXT NOT NULL,
    run_dir TEXT NOT NULL, ray_job_id TEXT NOT NULL DEFAULT '', result TEXT, error TEXT NOT NULL DEFAULT '',
    cancel_requested INTEGER NOT NULL DEFAULT 0, request_id TEXT UNIQUE, created REAL NOT NULL, started REAL,
    finished REAL);
CREATE INDEX jobs_state ON jobs (state, priority DESC, seq);
CREATE TABLE history (job_id TEXT NOT NULL REFERENCES jobs (id), state TEXT NOT NULL, time REAL NOT NULL,
    reason TEXT NOT NULL DEFAULT '');
CREATE INDEX history_job ON history (job_id, time);
INSERT INTO jobs (id, kind, model, owner, state, spec, run_dir, request_id, created, finished, result)
    VALUES ('old1', 'train', 'ram-cluttered60', 'ann', 'SUCCEEDED', '{"name": "old1"}', '/r/old1', 'k', 1.0, 2.0,
            '{"metrics": {"val_accuracy": 0.5}}');
INSERT INTO jobs (id, kind, model, owner, state, spec, run_dir, created) VALUES
    ('old2', 'tune', 'ram-cluttered60', 'bob', 'QUEUED', '{"name": "old2"}', '/r/old2', 3.0);
INSERT INTO history VALUES ('old1', 'QUEUED', 1.0, ''), ('old1', 'SUCCEEDED', 2.0, 'done'), ('old2', 'QUEUED', 3.0, '');
"""


def test_a_catalog_of_the_old_schema_is_migrated_with_its_jobs(tmp_path):
    import sqlite3

    db = tmp_path / "old.db"
    with sqlite3.connect(db) as old:
        old.executescript(_SCHEMA_V0)
    cat = Catalog(db)
    old1 = cat.get("old1")
    assert (old1.state, old1.owner, old1.result, old1.finished) == ("SUCCEEDED", "ann", {"metrics": {"val_accuracy": 0.5}}, 2.0)
    assert old1.history == [("QUEUED", 1.0, ""), ("SUCCEEDED", 2.0, "done")]
    assert [r.id for r in cat.list()] == ["old2", "old1"] and cat.next_queued().id == "old2"
    assert cat.insert(_rec("new-ann", owner="ann"), request_id="k").id == "old1"  # ann's key still dedupes
    assert cat.insert(_rec("new-bob", owner="bob"), request_id="k").id == "new-bob"  # and is no longer global
    assert cat.list(limit=1)[0].seq > old1.seq  # AUTOINCREMENT carries on after the old jobs
    cat.close()
    again = Catalog(db)  # opening a migrated catalog changes nothing
    assert [r.id for r in again.list()] == ["new-bob", "old2", "old1"]
    assert again._db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_catalog_survives_sigkill_of_the_writer(tmp_path):
    db = tmp_path / "c.db"
    code = ("import os, signal\nfrom jobs.service.catalog import SCHEMA_VERSION, Catalog, JobRecord\n"
            f"c = Catalog({str(db)!r})\n"
            "c.insert(JobRecord(id='k', kind='train', model='m', owner='', priority=0, state='QUEUED', spec={}, run_dir='/r'))\n"
            "os.kill(os.getpid(), signal.SIGKILL)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True)
    assert proc.returncode == -9
    assert Catalog(db).get("k").state == "QUEUED"


def test_failure_reason_keeps_the_exception_line():
    msg = ("Job entrypoint command failed with exit code 1, last available logs (truncated to 20,000 chars):\n"
           "Traceback (most recent call last):\n  File \"x.py\", line 1\n"
           "jobs.api.spec.SpecError: scaling: 64 workers x 1 CPUs = 64 CPUs, but the cluster has 4\n")
    reason = failure_reason(msg)
    assert reason.startswith("jobs.api.spec.SpecError: scaling: 64 workers")
    assert "exit code 1" in reason


# ------------------------------------------------------------------- queue and reconcile, scripted Ray


class ScriptedRay:
    """Ray Jobs as a dict the test drives; `address` and `describe` as the service expects."""

    address = "http://scripted"

    def __init__(self):
        self.table: dict[str, RayJob] = {}
        self.submitted: list[str] = []
        self.stops: list[str] = []
        self.lose_stops = 0  # how many stops of a PENDING job to lose (its supervisor is not up yet)
        self.on_submit = lambda sid: None  # a hook inside submit, to hold a dispatch half-way

    def submit(self, sid, entrypoint, env=None, metadata=None):
        if sid in self.table:
            return False
        self.submitted.append(sid)
        self.table[sid] = RayJob(sid, "RUNNING")
        self.on_submit(sid)
        return True

    def jobs(self):
        return dict(self.table)

    def job(self, sid):
        return self.table.get(sid)

    def stop(self, sid):
        if sid not in self.table:  # as Ray's Jobs API answers for a submission id it never had
            raise RuntimeError(f"Request failed with status code 404: Job {sid} does not exist.")
        self.stops.append(sid)
        if self.table[sid].status == "PENDING" and self.lose_stops:
            self.lose_stops -= 1
            return False
        if self.table[sid].status in ("PENDING", "RUNNING"):
            self.table[sid] = RayJob(sid, "STOPPED")
        return True

    def logs(self, sid):
        return ""

    def describe(self):
        return ClusterSnapshot("x", [NodeInfo("n", "1.2.3.4", True, True, 4, 0, 0, 0)])


@pytest.fixture
def scripted(tmp_path):
    from jobs.data import build_recipe, write_dataset

    splits = {s: build_recipe("cluttered60", count=4, seed=0, split=s) for s in ("train", "test")}
    write_dataset(str(tmp_path / "data"), splits, {"recipe": "cluttered60", "seed": 0})
    ray = ScriptedRay()
    svc = JobService(ServiceConfig(db_path=str(tmp_path / "c.db"), max_running=1, poll_interval=3600,
                                   storage_roots=(str(tmp_path / "out"),), data_roots=(str(tmp_path / "data"),)), ray)
    spec = JobSpec.from_dict({"data": {"path": str(tmp_path / "data")}, "storage_path": str(tmp_path / "out"),
                              "scaling": {"num_workers": 1}})
    yield svc, ray, spec
    svc.stop()


def test_queue_starts_highest_priority_first_and_one_at_a_time(scripted):
    svc, ray, spec = scripted
    a = svc.submit(spec)
    svc._tick()
    low = svc.submit(spec, priority=0)
    high = svc.submit(spec, priority=5)
    svc._tick()
    assert ray.submitted == [a.id]
    assert svc.get(low.id).state == svc.get(high.id).state == "QUEUED"
    ray.table[a.id] = RayJob(a.id, "SUCCEEDED")
    svc._tick()
    assert svc.get(a.id).state == "SUCCEEDED"
    assert ray.submitted == [a.id, high.id] and svc.get(low.id).state == "QUEUED"


def test_a_submit_ray_already_has_is_recorded_not_repeated(scripted):
    svc, ray, spec = scripted
    job = svc.submit(spec)
    ray.table[job.id] = RayJob(job.id, "RUNNING")  # a crash between Ray's submit and the catalog's PENDING
    svc._tick()
    assert ray.submitted == [] and svc.get(job.id).state == "PENDING"
    svc._tick()
    assert svc.get(job.id).state == "RUNNING"


def test_jobs_ray_forgot_fail_and_stopped_ones_are_cancelled(scripted):
    svc, ray, spec = scripted
    job = svc.submit(spec)
    svc._tick()
    del ray.table[job.id]  # the cluster was replaced
    svc._tick()
    rec = svc.get(job.id)
    assert rec.state == "FAILED" and "no record" in rec.error
    other = svc.submit(spec)
    svc._tick()
    assert svc.cancel(other.id).state == "CANCELLED"
    assert [h[2] for h in svc.get(other.id).history][-1] == "cancelled by request"


# ------------------------------------------------------------- the service's roots, submit and start


def _with(spec: JobSpec, field: str, value: str) -> dict:
    d = spec.to_dict()
    if field == "data.path":
        d["data"]["path"] = value
    else:
        d[field] = value
    return d


REFUSED = [
    ("storage_path", "/etc", "must lie under one of"),
    ("storage_path", "/", "must lie under one of"),
    ("storage_path", "/proc/self", "must lie under one of"),
    ("storage_path", "~", "must lie under one of"),
    ("storage_path", "../../..", "must lie under one of"),
    ("storage_path", "/etc/passwd", "must lie under one of"),
    ("storage_path", "nonsense://x", "scheme 'nonsense://' is not served"),
    ("storage_path", "hdfs://namenode/runs", "scheme 'hdfs://' is not served"),
    ("storage_path", "~nosuchuser/x", "no user 'nosuchuser'"),
    ("data.path", "/etc", "must lie under one of"),
    ("data.path", "hdfs://namenode/data", "scheme 'hdfs://' is not served"),
    ("data.path", "~nosuchuser/x", "no user 'nosuchuser'"),
]


@pytest.mark.parametrize("field, value, rule", REFUSED, ids=[f"{f}={v}" for f, v, _ in REFUSED])
def test_paths_outside_the_roots_or_unserved_are_refused_at_submission(scripted, tmp_path, field, value, rule):
    svc, ray, spec = scripted
    bad = JobSpec.from_dict(_with(spec, field, value))
    for call in (svc.validate, svc.submit):
        with pytest.raises(SpecError, match=rf"^{field}: ") as err:
            call(bad)
        assert rule in str(err.value)
        if "must lie under" in rule:
            root = str(tmp_path / ("out" if field == "storage_path" else "data"))
            assert f"must lie under one of {root};" in str(err.value)
    assert svc.list() == [] and ray.submitted == []
    assert not list(Path("/etc").glob("job-*"))


def test_the_server_answers_invalid_argument_naming_the_field(scripted):
    """What a raw gRPC caller sends (no client-side resolution): refused by field, never INTERNAL."""
    import grpc

    from jobs.api.client import ClientError, FoveateClient
    from jobs.service.server import create_server

    svc, ray, spec = scripted
    server, port = create_server("127.0.0.1:0", svc)
    server.start()
    try:
        with FoveateClient(f"127.0.0.1:{port}") as client:
            for field, value, rule in REFUSED:
                for validate_only in (True, False):
                    with pytest.raises(ClientError) as err:
                        client.submit(spec_dict_to_proto(_with(spec, field, value)), validate_only=validate_only)
                    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT, (field, value, str(err.value))
                    assert str(err.value).startswith(f"{field}: ") and rule in str(err.value)
            assert list(client.list().jobs) == []
    finally:
        server.stop(None)


def test_an_empty_storage_path_gets_the_first_storage_root(scripted, tmp_path):
    from jobs.api.paths import absolute

    svc, ray, spec = scripted
    root = absolute(str(tmp_path / "out"))
    empty = spec.replace(storage_path="")  # the runner's default (the spec's default, once it is "")
    assert svc.validate(empty).storage_path == root
    rec = svc.submit(empty)
    assert rec.spec["storage_path"] == root and rec.run_dir == f"{root}/{rec.id}"


def test_object_store_roots_admit_their_own_prefixes_only(tmp_path, scripted):
    _, ray, spec = scripted
    svc = JobService(ServiceConfig(db_path=str(tmp_path / "s3.db"), storage_roots=("s3://bucket/runs",),
                                   data_roots=(str(tmp_path / "data"),)), ray)
    try:
        assert svc.validate(spec.replace(storage_path="S3://bucket/runs//team-a/")).storage_path == \
            "s3://bucket/runs/team-a"
        for outside in ("s3://bucket/runs-old", "s3://other/runs", "gs://bucket/runs", str(tmp_path / "out")):
            with pytest.raises(SpecError, match="^storage_path: must lie under one of s3://bucket/runs;"):
                svc.validate(spec.replace(storage_path=outside))
    finally:
        svc.stop()


def test_a_job_whose_run_directory_cannot_be_written_fails_at_once_and_the_queue_moves_on(scripted, tmp_path):
    svc, ray, spec = scripted
    (tmp_path / "out").mkdir()
    blocked = svc.submit(spec.replace(storage_path=str(tmp_path / "out" / "blocked")))
    behind = svc.submit(spec)
    # A file where the blocked job's directory should be (created after its submission passed).
    (tmp_path / "out" / "blocked").write_text("not a directory")
    svc._tick()
    rec = svc.get(blocked.id)
    assert rec.state == "FAILED" and rec.history[-1][2] == "run directory not writable"
    assert rec.error.startswith(f"cannot write {rec.run_dir}/spec.json: ")
    assert ray.submitted == [behind.id] and svc.get(behind.id).state == "PENDING"
    # Submitted now, the same path is refused up front.
    with pytest.raises(SpecError, match=r"^storage_path: .*blocked is a file, not a directory"):
        svc.submit(spec.replace(storage_path=str(tmp_path / "out" / "blocked" / "x")))


def test_a_queued_job_outside_a_restarted_services_roots_fails_and_writes_nothing(scripted, tmp_path):
    svc, ray, spec = scripted
    job = svc.submit(spec)  # queued under tmp/out, not started
    moved = JobService(ServiceConfig(db_path=str(tmp_path / "c.db"), max_running=1, poll_interval=3600,
                                     storage_roots=(str(tmp_path / "elsewhere"),)), ray)
    try:
        moved._tick()
        rec = moved.get(job.id)
        assert rec.state == "FAILED" and rec.history[-1][2] == "outside the storage roots"
        assert rec.error.startswith(f"storage_path: must lie under one of {tmp_path / 'elsewhere'};")
        assert ray.submitted == [] and not (tmp_path / "out").exists()
    finally:
        moved.stop()


def test_service_roots_default_and_refusals(tmp_path, monkeypatch):
    from jobs.api.paths import DEFAULT_STORAGE_ROOT, absolute

    monkeypatch.chdir(tmp_path)
    config = ServiceConfig(db_path=":memory:")
    assert config.storage_roots == (absolute(DEFAULT_STORAGE_ROOT),)
    assert config.data_roots == (str(tmp_path), absolute(DEFAULT_STORAGE_ROOT))
    with pytest.raises(SpecError, match="^storage_roots: give at least one"):
        ServiceConfig(storage_roots=())
    with pytest.raises(SpecError, match="^data_roots: scheme 'http://' is not served"):
        ServiceConfig(data_roots=("http://example.com/",))


def test_a_cancel_during_dispatch_waits_for_it_and_stops_the_job_in_ray(scripted):
    svc, ray, spec = scripted
    job = svc.submit(spec)
    in_submit, go_on = threading.Event(), threading.Event()
    ray.on_submit = lambda sid: (in_submit.set(), go_on.wait(10))
    ray.lose_stops = 0
    dispatch = threading.Thread(target=svc._tick)
    dispatch.start()
    assert in_submit.wait(10)  # Ray has the job; the catalog still says QUEUED
    answers = []
    cancels = [threading.Thread(target=lambda: answers.append(svc.cancel(job.id, wait_s=5))) for _ in range(2)]
    for t in cancels:
        t.start()
    time.sleep(0.3)  # let the cancels reach the dispatch's lock (were they later, they would pass the same)
    go_on.set()
    for t in (dispatch, *cancels):
        t.join(15)
    assert [a.state for a in answers] == ["CANCELLED", "CANCELLED"]  # both cancels agree
    assert ray.table[job.id].status == "STOPPED" and ray.stops and set(ray.stops) == {job.id}
    states = [h[0] for h in svc.get(job.id).history]
    assert states[:2] == ["QUEUED", "PENDING"] and states[-1] == "CANCELLED" and states.count("CANCELLED") == 1


def test_concurrent_cancels_of_a_queued_job_never_ask_ray(scripted):
    svc, ray, spec = scripted
    blocker = svc.submit(spec, priority=9)
    svc._tick()  # the one slot is taken: the next job stays queued
    job = svc.submit(spec)
    answers, errors = [], []

    def cancel():
        try:
            answers.append(svc.cancel(job.id).state)
        except Exception as exc:  # noqa: BLE001  (the test reports any)
            errors.append(exc)

    threads = [threading.Thread(target=cancel) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    assert errors == [] and answers == ["CANCELLED"] * 8
    assert job.id not in ray.stops and job.id not in ray.table
    assert svc.get(job.id).history[-1][2] == "cancelled while queued"
    ray.table[blocker.id] = RayJob(blocker.id, "SUCCEEDED")
    svc._tick()
    with pytest.raises(JobStateError, match="already finished"):
        svc.cancel(blocker.id)


def test_a_pending_job_whose_stop_ray_lost_is_stopped_again(scripted):
    svc, ray, spec = scripted
    job = svc.submit(spec)
    ray.on_submit = lambda sid: ray.table.__setitem__(sid, RayJob(sid, "PENDING"))
    svc._tick()
    ray.lose_stops = 1_000_000  # every stop is lost while Ray keeps it PENDING
    rec = svc.cancel(job.id, wait_s=0.5)
    assert rec.state == "PENDING" and rec.cancel_requested  # not claimed cancelled before Ray says so
    ray.lose_stops = 0
    svc._tick()  # the reconciler asks again, and this time it lands
    assert svc.get(job.id).state == "PENDING"
    svc._tick()
    rec = svc.get(job.id)
    assert rec.state == "CANCELLED" and rec.history[-1][2] == "cancelled by request"


def test_a_cancelled_job_ray_starts_anyway_is_stopped_and_keeps_its_slot(scripted):
    svc, ray, spec = scripted
    job = svc.submit(spec)
    svc._tick()
    assert svc.cancel(job.id).state == "CANCELLED"
    waiting = svc.submit(spec)
    ray.table[job.id] = RayJob(job.id, "RUNNING")  # Ray started the driver after all
    ray.stop = lambda sid: ray.stops.append(sid) or True  # and does not stop at once
    svc._tick()
    rec = svc.get(job.id)
    assert rec.state == "CANCELLED" and ray.stops[-1] == job.id
    assert rec.history[-1][2].startswith("Ray started this job after it had finished here (RUNNING there)")
    assert svc.get(waiting.id).state == "QUEUED"  # the stray still holds the only slot
    svc._tick()
    assert len([h for h in svc.get(job.id).history if "Ray started" in h[2]]) == 1  # said once
    ray.table[job.id] = RayJob(job.id, "STOPPED")
    svc._tick()
    assert svc.get(waiting.id).state == "PENDING"  # the slot is free once Ray confirms


def test_committed_stubs_match_the_protos(tmp_path):
    pytest.importorskip("grpc_tools")
    from jobs.proto import codegen

    assert codegen.main(tmp_path) == 0
    for generated in (tmp_path / "foveate" / "v1").iterdir():
        committed = codegen.HERE / "foveate" / "v1" / generated.name
        assert committed.read_text() == generated.read_text(), f"run `python -m jobs.proto.codegen`: {generated.name}"


def test_the_service_validates_a_spec_without_torch(tmp_path):
    """Submission runs the one validation (model config, search space, dataset) in the service's process,
    which never imports torch or the training code (jobs.service's import contract says so statically;
    this says so at run time, through the lazy exports of attention_models and jobs.data)."""
    import json
    import subprocess
    import sys

    from jobs.data import build_recipe, write_dataset

    splits = {s: build_recipe("cluttered60", count=4, seed=0, split=s) for s in ("train", "test")}
    data = write_dataset(str(tmp_path / "data"), splits, {"recipe": "cluttered60", "seed": 0})
    code = f"""
import sys
from jobs.api.spec import JobSpec, SpecError
from jobs.run.checks import check_spec
from jobs.service import job_service, server, wire
wire.models_to_proto()
spec = {{"kind": "tune", "tune": {{}}, "scaling": {{"num_workers": 1}}, "data": {{"path": {json.dumps(data)}}}}}
check_spec(JobSpec.from_dict(spec))
try:
    check_spec(JobSpec.from_dict({{**spec, "model": {{"overrides": {{"num_glimpses": 0}}}}}}))
    raise SystemExit("a bad override passed")
except SpecError as exc:
    assert str(exc).startswith("model.num_glimpses"), exc
loaded = sorted(m for m in ("torch", "torchvision", "ray.train", "ray.tune") if m in sys.modules)
assert not loaded, f"validation imported {{loaded}}"
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
