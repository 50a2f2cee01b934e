"""Past one machine: a Ray cluster of two nodes started with Ray's own CLI (`ray start --head`, then
`ray start --address` for a second node with a custom resource), token authentication on, run outputs and
datasets on an S3 API (moto's server), and the job service connected with `foveate serve --address`.

One cluster for the module: a train job spread one worker per node, a search, and the second node
killed (SIGKILL to its raylet and workers) in the middle of a run that must resume from its checkpoint."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
from service_harness import TOKEN, wait_for

from cluster import local, nodes
from cluster.jobs_api import RayJobsAPI
from jobs.api.client import FoveateClient

pytest_plugins = ["s3_harness"]
pytestmark = [pytest.mark.ray, pytest.mark.slow]

BUCKET = "foveate-runs"


def _serve(root, head, env, name: str):
    """`foveate serve --address` on the head, writing to and reading from the bucket; (process, client)."""
    port_file = root / f"{name}.port"
    port_file.unlink(missing_ok=True)
    with open(root / f"{name}.log", "ab") as log:  # the child keeps its own copy
        proc = _popen_serve(head, root, port_file, env, log)
    deadline = time.monotonic() + 60
    while not port_file.exists():
        assert proc.poll() is None, (root / f"{name}.log").read_text()[-2000:]
        assert time.monotonic() < deadline, "foveate serve did not start"
        time.sleep(0.2)
    return proc, FoveateClient(f"127.0.0.1:{port_file.read_text()}", TOKEN)


def _popen_serve(head, root, port_file, env, log):
    return subprocess.Popen(
        [sys.executable, "-m", "jobs.cli", "serve", "--address", head.dashboard_url, "--ray-token-file",
         head.token_path, "--db", str(root / "catalog.db"), "--port", "0", "--port-file", str(port_file),
         "--token", TOKEN, "--storage-root", f"s3://{BUCKET}/runs", "--data-root", f"s3://{BUCKET}/data",
         "--poll-interval", "0.5"],
        env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _stop(proc) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=60)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, s3):
    """(head, state_dir, s3, root): the head (2 CPUs, resource head=1) and node2 (1 CPU, node2=1)."""
    root = tmp_path_factory.mktemp("two-nodes")
    state_dir = root / "cluster"
    s3.bucket(BUCKET)
    head = local.up(state_dir, num_cpus=2, resources={"head": 1}, env=s3.env)
    try:
        nodes.join(head.gcs_address, head.token_path, "node2", num_cpus=1, resources={"node2": 1},
                   state_dir=state_dir, env=s3.env)
        api = RayJobsAPI(head.dashboard_url, head.token())
        deadline = time.monotonic() + 60
        while sum(n.alive for n in api.describe().nodes) < 2:
            assert time.monotonic() < deadline, "node2 never showed in the cluster"
            time.sleep(0.5)
        # The dataset goes to the bucket the way a user puts it there.
        subprocess.run([sys.executable, "-m", "jobs.cli", "data", "build", "cluttered60", "--out",
                        f"s3://{BUCKET}/data/c60", "--train", "1024", "--test", "64"],
                       env={**os.environ, **s3.env}, check=True, capture_output=True)
        yield head, state_dir, s3, root
    finally:
        nodes.leave("node2", state_dir)
        local.down(state_dir)


@pytest.fixture(scope="module")
def service(cluster):
    head, _, s3, root = cluster
    proc, client = _serve(root, head, s3.env, "serve")
    holder = {"proc": proc, "client": client}
    yield holder
    holder["client"].close()
    _stop(holder["proc"])


def _spec(epochs: int, train: int = 0, **scaling) -> dict:
    return {"kind": "train", "model": {"name": "ram-cluttered60", "overrides": {"num_glimpses": 2}},
            "data": {"path": f"s3://{BUCKET}/data/c60", "probe_count": 4, "max_train_samples": train},
            "optim": {"batch_size": 32, "epochs": epochs}, "scaling": {"num_workers": 2, **scaling},
            "checkpoint": {"max_failures": 2}, "storage_path": f"s3://{BUCKET}/runs"}


def _worker_nodes(head, job_id: str) -> list[str]:
    """The node of every Ray Train worker the job ever had, from Ray's state API."""
    api = RayJobsAPI(head.dashboard_url, head.token())
    return [a["node_id"] for a in api.actors("RayTrainWorker", api.ray_job_id(job_id))]


def _epochs(s3, job_id: str) -> list[int]:
    key = f"runs/{job_id}/metrics.json"
    if key not in s3.keys(BUCKET, f"runs/{job_id}/"):
        return []
    body = s3.client().get_object(Bucket=BUCKET, Key=key)["Body"].read()
    return [m["epoch"] for m in json.loads(body)]


def test_cluster_status_shows_both_nodes_with_their_resources(cluster, service):
    head, state_dir, _, _ = cluster
    out = subprocess.run([sys.executable, "-m", "jobs.cli", "cluster", "status", "--dir", str(state_dir)],
                         capture_output=True, text=True, check=True).stdout
    rows = [line for line in out.splitlines() if " alive " in line]
    assert len(rows) == 2, out
    assert any(" head " in r and "CPU 0/2" in r and "head=1" in r for r in rows), out
    assert any(" worker " in r and "CPU 0/1" in r and "node2=1" in r for r in rows), out
    info = service["client"].cluster()  # the service's view (the dashboard's Cluster page)
    assert sorted(dict(n.resources) == {"node2": 1.0} for n in info.nodes if n.alive) == [False, True]


def test_a_spread_job_runs_one_worker_per_node_with_everything_in_the_bucket(cluster, service):
    head, _, s3, _ = cluster
    client = service["client"]
    job = client.submit(_spec(2, train=256, placement_strategy="STRICT_SPREAD"))
    assert job.run_dir == f"s3://{BUCKET}/runs/{job.id}"
    done = wait_for(client, job.id, ("SUCCEEDED",), timeout=300)
    api = RayJobsAPI(head.dashboard_url, head.token())
    both = {n.node_id for n in api.describe().nodes if n.alive}
    assert sorted(set(_worker_nodes(head, job.id))) == sorted(both)  # one worker on each node
    keys = s3.keys(BUCKET, f"runs/{job.id}/")
    assert _epochs(s3, job.id) == [0, 1]
    assert {f"runs/{job.id}/attention/epoch=0000.parquet", f"runs/{job.id}/attention/epoch=0001.parquet",
            f"runs/{job.id}/result.json", f"runs/{job.id}/driver.log"} <= set(keys)
    assert any(k.endswith("/state.pt") for k in keys)
    assert done.result.checkpoint_path.startswith(f"s3://{BUCKET}/runs/{job.id}/checkpoint_")
    # The service reads it all back from the bucket.
    assert client.attention(job.id, epoch=1).num_rows == 4
    assert "result:" in "".join(client.logs(job.id))
    # Its model exported through the service, kept with the run in the bucket.
    name, card, data = client.export_model(job.id, "onnx")
    import onnx

    assert name == "model-mean.onnx" and onnx.load_from_string(data).graph.input[0].name == "images"
    assert max(card["parity"]["max_relative_difference"].values()) <= 1e-4
    assert {f"runs/{job.id}/export/model-mean.onnx", f"runs/{job.id}/export/model-mean.onnx.card.json"} <= set(
        s3.keys(BUCKET, f"runs/{job.id}/export/"))


def test_a_search_writes_its_trials_to_the_bucket(cluster, service):
    _, _, s3, _ = cluster
    client = service["client"]
    spec = {**_spec(1, train=64), "kind": "tune", "scaling": {"num_workers": 1},
            "tune": {"space": "none", "params": {"model.num_glimpses": {"grid": [2]}}, "num_trials": 1,
                     "search": "grid", "scheduler": "fifo"}}
    job = client.submit(spec)
    wait_for(client, job.id, ("SUCCEEDED",), timeout=300)
    trials = client.trials(job.id)
    assert trials.complete and len({r.trial for r in trials.rows}) == 1
    keys = s3.keys(BUCKET, f"runs/{job.id}/")
    assert f"runs/{job.id}/trials.parquet" in keys and f"runs/{job.id}/best.json" in keys


def test_a_job_survives_losing_a_node_and_a_service_restart(cluster, service):
    """node2 is killed (raylet and workers, SIGKILL by pid) while a 2-worker job spread over both nodes
    trains, and the service is restarted while the node is down: the job resumes on what the cluster can
    still place (both workers on the head) from its last checkpoint, with every epoch once."""
    head, state_dir, s3, root = cluster
    client = service["client"]
    epochs = 6
    job = client.submit(_spec(epochs, placement_strategy="SPREAD"))
    deadline = time.monotonic() + 240
    # Three epochs written: Ray Train has registered the checkpoint of epoch 1 at least (a report reaches
    # its controller at the next poll, which a worker killed right after reporting may never see).
    while len(_epochs(s3, job.id)) < 3:
        assert time.monotonic() < deadline, "the job did not reach its third epoch"
        time.sleep(0.5)
    assert len(set(_worker_nodes(head, job.id))) == 2  # SPREAD put a worker on each node
    node2 = nodes.node("node2", state_dir)
    killed = nodes.kill("node2", state_dir)
    assert node2.pid in killed and len(killed) >= 2  # `ray start`, its raylet (and the workers it ran)
    deadline = time.monotonic() + 10  # SIGKILL is not instant: give the kernel a moment to end them
    while any(nodes.running(p) for p in killed):
        assert time.monotonic() < deadline, [p for p in killed if nodes.running(p)]
        time.sleep(0.1)
    # The service goes down and comes back while the node is gone.
    service["client"].close()
    _stop(service["proc"])
    service["proc"], service["client"] = _serve(root, head, s3.env, "serve-again")
    client = service["client"]
    done = wait_for(client, job.id, ("SUCCEEDED",), timeout=420)
    assert _epochs(s3, job.id) == list(range(epochs))  # none lost, none twice
    reasons = [h.reason for h in done.history]
    # Resumed (once, or again should a first restart not place): the history says so and from where.
    assert any(re.match(r"resumed \d+ times? from a checkpoint: at epoch [1-5] ", r)
               for r in reasons), reasons
    # Resumed on the head alone: its later workers ran there.
    head_node = next(n.node_id for n in RayJobsAPI(head.dashboard_url, head.token()).describe().nodes if n.is_head)
    assert _worker_nodes(head, job.id).count(head_node) >= 3
