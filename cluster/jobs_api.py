"""Ray Jobs and cluster state over the Ray dashboard's HTTP API, with Ray's auth token.

The job service reaches Ray only through this: it submits drivers, polls their status, stops them,
reads their logs and describes the nodes, without joining the cluster as a driver itself (so it can
run anywhere that reaches the dashboard port, and beside another Ray in the same process).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class ClusterUnavailable(RuntimeError):
    """The Ray dashboard did not answer (down, wrong address, or a bad token)."""


@dataclass(frozen=True)
class RayJob:
    """What Ray says about one submitted job."""

    submission_id: str
    status: str  # PENDING | RUNNING | STOPPED | SUCCEEDED | FAILED
    message: str = ""
    start_time_ms: int = 0
    end_time_ms: int = 0


@dataclass(frozen=True)
class NodeInfo:
    node_id: str
    ip: str
    alive: bool
    is_head: bool
    cpus: float
    cpus_used: float
    gpus: float
    gpus_used: float
    # Custom resources that tell nodes apart ({"node2": 1.0}); Ray's own (CPU, memory, node:IP) left out.
    resources: dict[str, float] = field(default_factory=dict)


# Resources every Ray node reports by itself.
_BUILTIN = frozenset({"CPU", "GPU", "memory", "object_store_memory", "accelerator_type"})


@dataclass(frozen=True)
class ClusterSnapshot:
    ray_version: str
    nodes: list[NodeInfo] = field(default_factory=list)

    @property
    def cpus(self) -> float:
        return sum(n.cpus for n in self.nodes if n.alive)

    @property
    def gpus(self) -> float:
        return sum(n.gpus for n in self.nodes if n.alive)


def ray_token(token: str | None = None, token_path: str | None = None) -> str | None:
    """Ray's auth token: explicit value, explicit file, RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH, then
    ~/.ray/auth_token (Ray's own default); None when there is none (a cluster without auth)."""
    if token:
        return token.strip()
    for path in (token_path, os.environ.get("RAY_AUTH_TOKEN_PATH")):
        if path:
            return Path(path).expanduser().read_text().strip()
    if os.environ.get("RAY_AUTH_TOKEN"):
        return os.environ["RAY_AUTH_TOKEN"].strip()
    default = Path.home() / ".ray" / "auth_token"
    return default.read_text().strip() if default.exists() else None


class RayJobsAPI:
    """A Ray cluster's Jobs API and node state at `address` (the dashboard URL, http://host:8265)."""

    def __init__(self, address: str, token: str | None = None, timeout: float = 10.0):
        self.address = address if "://" in address else f"http://{address}"
        self.address = self.address.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._timeout = timeout
        self._client: Any = None

    # ------------------------------------------------------------------ jobs

    def _jobs(self) -> Any:
        if self._client is None:
            from ray.job_submission import JobSubmissionClient

            try:
                self._client = JobSubmissionClient(self.address, headers=dict(self._headers))
            except Exception as exc:  # connection refused, auth failure, version mismatch
                raise ClusterUnavailable(f"Ray Jobs API at {self.address}: {exc}") from exc
        return self._client

    def _call(self, fn: str, *args: Any, **kwargs: Any) -> Any:
        import requests

        try:
            return getattr(self._jobs(), fn)(*args, **kwargs)
        except requests.RequestException as exc:
            raise ClusterUnavailable(f"Ray Jobs API at {self.address}: {exc}") from exc
        except Exception as exc:
            if type(exc).__name__ == "AuthenticationError":
                raise ClusterUnavailable(f"Ray Jobs API at {self.address}: {exc}") from exc
            raise

    def submit(self, submission_id: str, entrypoint: str, env: dict[str, str] | None = None,
               metadata: dict[str, str] | None = None) -> bool:
        """Start a driver; True if submitted now, False if Ray already had this id (a retried submit)."""
        runtime_env = {"env_vars": env} if env else None
        try:
            self._call("submit_job", entrypoint=entrypoint, submission_id=submission_id,
                       runtime_env=runtime_env, metadata=metadata)
        except RuntimeError as exc:
            if "already exists" in str(exc):
                return False
            if re.search(r"status code 5\d\d", str(exc)):
                # e.g. "No available agent to submit job, please try again later" on a head just started
                raise ClusterUnavailable(f"Ray Jobs API at {self.address}: {exc}") from exc
            raise
        return True

    def jobs(self) -> dict[str, RayJob]:
        """Every submission Ray remembers, by submission id."""
        out = {}
        for j in self._call("list_jobs"):
            if j.submission_id:
                out[j.submission_id] = _ray_job(j)
        return out

    def job(self, submission_id: str) -> RayJob | None:
        try:
            return _ray_job(self._call("get_job_info", submission_id))
        except RuntimeError as exc:
            if "does not exist" in str(exc) or "404" in str(exc):
                return None
            raise

    def stop(self, submission_id: str) -> bool:
        """Ask Ray to stop a job (SIGTERM, then SIGKILL after RAY_JOB_STOP_WAIT_TIME_S)."""
        return bool(self._call("stop_job", submission_id))

    def logs(self, submission_id: str) -> str:
        try:
            return self._call("get_job_logs", submission_id)
        except RuntimeError as exc:
            if "does not exist" in str(exc) or "404" in str(exc):
                return ""
            raise

    # --------------------------------------------------------------- cluster

    def _get(self, path: str) -> dict[str, Any]:
        import requests

        try:
            r = requests.get(f"{self.address}{path}", headers=self._headers, timeout=self._timeout)
        except requests.RequestException as exc:
            raise ClusterUnavailable(f"Ray dashboard at {self.address}: {exc}") from exc
        if r.status_code in (401, 403):
            raise ClusterUnavailable(f"Ray dashboard at {self.address}: {r.status_code} {r.text.strip()}")
        r.raise_for_status()
        return r.json()

    def describe(self) -> ClusterSnapshot:
        """Nodes with their logical CPUs/GPUs, total and in use (the autoscaler's load report)."""
        version = self._get("/api/version").get("ray_version", "")
        nodes = self._get("/api/v0/nodes?limit=10000")["data"]["result"]["result"]
        status = self._get("/api/cluster_status")["data"].get("clusterStatus") or {}
        usage = (status.get("loadMetricsReport") or {}).get("usageByNode") or {}
        out = []
        for n in nodes:
            used = usage.get(n["node_id"], {})
            total = n.get("resources_total") or {}
            out.append(NodeInfo(
                node_id=n["node_id"], ip=n.get("node_ip", ""), alive=n.get("state") == "ALIVE",
                is_head=bool(n.get("is_head_node")), cpus=float(total.get("CPU", 0)),
                cpus_used=float(used.get("CPU", [0, 0])[0]), gpus=float(total.get("GPU", 0)),
                gpus_used=float(used.get("GPU", [0, 0])[0]),
                resources={k: float(v) for k, v in total.items() if k not in _BUILTIN and not k.startswith("node:")}))
        return ClusterSnapshot(ray_version=version, nodes=out)

    def ray_job_id(self, submission_id: str) -> str | None:
        """The Ray job id (hex, as actors carry it) of a submission; None when Ray does not know it."""
        try:
            return self._call("get_job_info", submission_id).job_id
        except RuntimeError as exc:
            if "does not exist" in str(exc) or "404" in str(exc):
                return None
            raise

    def actors(self, class_name: str, job_id: str | None = None) -> list[dict[str, Any]]:
        """Ray's state API on actors of `class_name` (of one Ray job when `job_id`), dead ones included:
        each with its node_id, pid, state and job_id."""
        params = {"filter_keys": "class_name", "filter_predicates": "=", "filter_values": class_name,
                  "limit": "10000", "detail": "true"}
        query = "&".join(f"{k}={v}" for k, v in params.items())
        found = self._get(f"/api/v0/actors?{query}")["data"]["result"]["result"]
        return [a for a in found if job_id is None or a.get("job_id") == job_id]


def _ray_job(j: Any) -> RayJob:
    return RayJob(submission_id=j.submission_id, status=str(getattr(j.status, "value", j.status)),
                  message=j.message or "", start_time_ms=j.start_time or 0, end_time_ms=j.end_time or 0)
