"""The job service's roots on a real Ray head and a real gRPC server: specs outside them are refused by
field, and a job that cannot start fails at once while the job behind it runs to the end."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from service_harness import tiny_spec

from cluster.jobs_api import RayJobsAPI
from jobs.api.client import ClientError, FoveateClient
from jobs.api.states import state_name
from jobs.service.job_service import JobService, ServiceConfig
from jobs.service.server import create_server

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def test_a_job_that_cannot_start_fails_at_once_and_the_next_one_runs(ray_head, tiny_dataset, tmp_path):
    root = tmp_path / "runs"
    root.mkdir()
    config = ServiceConfig(db_path=str(tmp_path / "c.db"), max_running=1, poll_interval=0.5, watch_interval=0.3,
                           storage_roots=(str(root),), data_roots=(tiny_dataset,))
    # Not started yet: submitted jobs wait as QUEUED until its first reconcile.
    service = JobService(config, RayJobsAPI(ray_head.dashboard_url, ray_head.token()))
    server, port = create_server("127.0.0.1:0", service)
    server.start()
    try:
        with FoveateClient(f"127.0.0.1:{port}") as client:
            for storage, data in (("/etc", tiny_dataset), (str(root), "/etc")):
                with pytest.raises(ClientError) as err:
                    client.submit(tiny_spec(data, storage))
                assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT
                field, allowed = ("storage_path", root) if storage == "/etc" else ("data.path", tiny_dataset)
                assert str(err.value).startswith(f"{field}: must lie under one of {allowed}; /etc does not")
            assert not list(Path("/etc").glob("job-*"))

            blocked = client.submit(tiny_spec(tiny_dataset, str(root / "blocked")))
            behind = client.submit(tiny_spec(tiny_dataset, str(root)))
            (root / "blocked").write_text("a file where the first job's run directory should be")
            service.start()  # its first reconcile runs here, before start returns
            failed = client.get(blocked.id)
            assert state_name(failed.state) == "FAILED" and failed.history[-1].reason == "run directory not writable"
            assert "spec.json: " in failed.error and not failed.ray_job_id
            done = client.wait(behind.id)
            assert state_name(done.state) == "SUCCEEDED", done.error
            assert (root / behind.id / "spec.json").is_file()
    finally:
        server.stop(grace=None)
        service.stop()
