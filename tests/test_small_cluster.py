"""A search on the smallest cluster a user starts: `foveate serve --num-cpus 2` (its own embedded Ray head of
2 CPUs, beside the session's). Every trial of an ASHA search must end and free its placement group before
the next asks for one; Ray's placement groups are checked through its state API."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from service_harness import TOKEN, tiny_spec, wait_for

from cluster import local
from jobs.api.client import FoveateClient

pytestmark = [pytest.mark.ray, pytest.mark.slow]


@pytest.fixture(scope="module")
def two_cpu_service(tmp_path_factory, tiny_dataset):
    root = tmp_path_factory.mktemp("small")
    state_dir, port_file, out = root / "cluster", root / "port", root / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "jobs.cli", "serve", "--num-cpus", "2", "--db", str(root / "c.db"), "--port", "0",
         "--port-file", str(port_file), "--token", TOKEN, "--storage-root", str(out), "--data-root", tiny_dataset,
         "--poll-interval", "0.5"],
        env={**os.environ, "FOVEATE_CLUSTER_DIR": str(state_dir)}, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120  # it starts its own Ray head first
        while not port_file.exists():
            assert proc.poll() is None, "foveate serve exited"
            assert time.monotonic() < deadline, "foveate serve did not start"
            time.sleep(0.3)
        with FoveateClient(f"127.0.0.1:{port_file.read_text()}", TOKEN) as client:
            yield client, local.status(state_dir), str(out)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
        local.down(state_dir)


def _live_placement_groups(head) -> list[dict]:
    """Placement groups of the head's cluster that are not removed, from Ray's state API."""
    from cluster.jobs_api import RayJobsAPI

    found = RayJobsAPI(head.dashboard_url, head.token())._get("/api/v0/placement_groups?detail=1&limit=1000")
    return [p for p in found["data"]["result"]["result"] if p.get("state") != "REMOVED"]


def test_an_asha_search_finishes_every_trial_on_two_cpus(two_cpu_service, tiny_dataset):
    client, head, out = two_cpu_service
    # As examples/ram-tune-tiny.yaml: a grid over the glimpse count, ASHA stopping trials after 1 epoch.
    spec = tiny_spec(tiny_dataset, out, epochs=2, kind="tune", scaling={"num_workers": 1},
                     tune={"space": "none", "params": {"model.num_glimpses": {"grid": [1, 2, 3, 4]}},
                           "num_trials": 1, "search": "grid", "scheduler": "asha", "grace_period": 1})
    job = client.submit(spec)
    wait_for(client, job.id, ("SUCCEEDED",), timeout=600)
    trials = client.trials(job.id)
    assert trials.complete and len({r.trial for r in trials.rows}) == 4
    assert {r.values["param.model.num_glimpses"].int_value for r in trials.rows} == {1, 2, 3, 4}
    assert not _live_placement_groups(head)  # every trial's workers' group is gone
    log = "".join(client.logs(job.id))
    assert "__spec" not in log and log.count(": ended (") == 4  # the search's own lines, not the spec
