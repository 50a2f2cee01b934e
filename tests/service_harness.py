"""Helpers for the job service's tests: a real server on a free localhost port over a real Ray head."""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Iterator
from typing import Any

from cluster.jobs_api import RayJobsAPI
from jobs.api.client import FoveateClient
from jobs.api.states import is_final, state_name
from jobs.service.job_service import JobService, ServiceConfig
from jobs.service.server import create_server

TOKEN = "test-token-0123456789"


@contextlib.contextmanager
def running_server(head: Any, db: str, *, max_running: int = 2, token: str | None = TOKEN,
                   config: dict[str, Any] | None = None,
                   **server_kw: Any) -> Iterator[tuple[FoveateClient, JobService, int]]:
    """A JobService over `head` with its gRPC server on 127.0.0.1:<free port>, and a client of it;
    `config` sets further ServiceConfig fields, `server_kw` create_server's."""
    # The tests' datasets and run directories all lie in the temp dir: by default it is the only root.
    root = tempfile.gettempdir()
    config = ServiceConfig(db_path=db, max_running=max_running, poll_interval=0.5, watch_interval=0.3,
                           **{"storage_roots": (root,), "data_roots": (root,), **(config or {})})
    service = JobService(config, RayJobsAPI(head.dashboard_url, head.token())).start()
    server, port = create_server("127.0.0.1:0", service, token=token, **server_kw)
    server.start()
    client = FoveateClient(f"127.0.0.1:{port}", token)
    try:
        yield client, service, port
    finally:
        client.close()
        server.stop(grace=None)
        service.stop()


def tiny_spec(dataset: str, storage: str, *, epochs: int = 1, **sections: Any) -> dict[str, Any]:
    """A train spec that runs in seconds: RAM with 2 glimpses, 64 training images, in-driver training."""
    spec = {
        "kind": "train",
        "model": {"name": "ram-cluttered60", "overrides": {"num_glimpses": 2}},
        "data": {"path": dataset, "probe_count": 4, "max_train_samples": 64, "max_val_samples": 32},
        "optim": {"batch_size": 32, "epochs": epochs},
        "scaling": {"num_workers": 0},
        "storage_path": storage,
    }
    for key, value in sections.items():
        spec[key] = {**spec.get(key, {}), **value} if isinstance(value, dict) else value
    return spec


def wait_for(client: FoveateClient, job_id: str, states: tuple[str, ...], timeout: float = 180.0) -> Any:
    """Poll until the job is in one of `states` (fails fast if it ends in another)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(job_id)
        if state_name(job.state) in states:
            return job
        if is_final(job.state):
            raise AssertionError(f"{job_id} ended {state_name(job.state)} waiting for {states}: {job.error}")
        time.sleep(0.3)
    raise AssertionError(f"{job_id} still {state_name(client.get(job_id).state)} after {timeout}s, wanted {states}")
