"""Storage and data paths against the real service on the session's Ray head: a path outside the storage
root is refused before anything is written (a dispatch writes the job's spec.json into its run directory),
one inside is written there, and paths of every shape are answered with a status, never INTERNAL.
"""

from __future__ import annotations

import shutil
import time
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from service_fuzzing import (
    FUZZ,
    SENTINEL,
    Probe,
    S,
    assert_nothing_written_outside,
    away_places,
    files,
    path_strategy,
    roots,
)
from service_harness import running_server, tiny_spec

from jobs.api.spec_proto import spec_dict_to_proto
from jobs.api.states import state_name
from jobs.proto.foveate.v1 import jobs_pb2 as pb

pytestmark = pytest.mark.ray


@pytest.mark.parametrize("storage_path", [
    pytest.param("{sandbox}/outside/x", id="sandbox-outside"),
    pytest.param("{sandbox}/storage/../outside/y", id="dotdot-out-of-root"),
    pytest.param("/tmp/{S}/x", id="tmp"),
    pytest.param("/etc/{S}/x", id="etc"),
    pytest.param("~/{S}", id="home"),
    pytest.param("{S}/relative", id="relative"),
    pytest.param("file:///tmp/{S}/x", id="file-uri"),
    pytest.param("~nosuchuser/{S}", id="unknown-user"),
    pytest.param("hdfs://namenode/{S}", id="hdfs"),
    pytest.param("mock://{S}", id="mock-uri"),
])
def test_storage_paths_outside_the_root_are_refused_before_anything_is_written(ray_head, sandbox, storage_path):
    """A real submit on a dispatching queue: a storage path outside the storage root is INVALID_ARGUMENT
    naming storage_path, and nothing appears outside the root (the service writes a job's spec.json
    into its run directory when it hands the job to Ray)."""
    storage, db = sandbox / "storage", sandbox / f"paths-{uuid.uuid4().hex[:6]}"
    db.mkdir()
    before = files(sandbox, (storage, db))
    spec = tiny_spec(str(sandbox / "data"), storage_path.format(sandbox=sandbox, S=SENTINEL), epochs=1000)
    with running_server(ray_head, str(db / "c.db"), max_running=1, config=roots(storage, sandbox / "data")) as (
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
        for place in away_places():
            shutil.rmtree(place, ignore_errors=True) if place.is_dir() else place.unlink()


def test_paths_of_every_shape_are_answered_not_internal(ray_head, sandbox):
    """Valid specs but for one path: data.path or storage_path of every shape (the bulk test above
    changes other fields too, so its paths often meet another error first)."""
    storage, db = sandbox / "storage", sandbox / "shapes"
    db.mkdir(exist_ok=True)
    before = files(sandbox, (storage, db))
    valid = spec_dict_to_proto(tiny_spec(str(sandbox / "data"), str(storage)))
    # Not read when validating, so object stores can be named here (a data path there waits on the network).
    storage_only = st.sampled_from([f"s3://bucket/{SENTINEL}", f"gs://bucket/{SENTINEL}", f"s3://{SENTINEL}"])
    with running_server(ray_head, str(db / "c.db"), max_running=0, config=roots(storage, sandbox / "data")) as (
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
    print(f"{probe.calls} calls")
    assert probe.unexpected == [], f"{len(probe.unexpected)} of {probe.calls}:\n" + "\n".join(probe.unexpected[:40])
    assert_nothing_written_outside(sandbox, before, (db,))


def test_a_storage_path_under_the_root_is_written_there(ray_head, sandbox):
    """The control of the test above: a job under the root is accepted, and its dispatch writes there
    (so the check for files outside the root sees what a dispatch writes)."""
    storage, db = sandbox / "storage", sandbox / "control"
    db.mkdir()
    before = files(sandbox, (storage, db))
    spec = tiny_spec(str(sandbox / "data"), str(storage / "control"), epochs=1000)
    with running_server(ray_head, str(db / "c.db"), max_running=1, config=roots(storage, sandbox / "data")) as (
            client, _, _):
        job = client.submit(spec)
        deadline = time.monotonic() + 30
        while state_name(client.get(job.id).state) == "QUEUED" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert state_name(client.cancel(job.id).state) in ("CANCELLED", "PENDING")
        assert (storage / "control" / job.id / "spec.json").is_file()
    assert_nothing_written_outside(sandbox, before, (db,))
