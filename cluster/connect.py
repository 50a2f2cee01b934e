"""Reaching Ray. Nothing here runs at import time: callers decide when (and whether) Ray starts."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ClusterResources:
    """What the cluster has in total and what is free now (logical Ray resources)."""

    nodes: int
    cpus: float
    gpus: float
    free_cpus: float
    free_gpus: float


def connect(
    address: str | None = None,
    *,
    num_cpus: int | None = None,
    num_gpus: int | None = None,
    object_store_memory: int | None = None,
    temp_dir: str | None = None,
    include_dashboard: bool = True,
    namespace: str = "foveate",
    log_to_driver: bool = True,
) -> Any:
    """Connect to Ray, starting a local instance when `address` is None.

    address: None for an embedded local Ray; "auto" or "HOST:PORT" for a running cluster this machine
        is part of; "ray://HOST:10001" for a remote cluster through Ray Client.
    The local instance starts with the dashboard on, because Train V2's placement-group cleanup goes
    through the State API that the dashboard serves (without it, early-stopped Tune trials leak their
    workers' placement groups).
    log_to_driver: False keeps the workers' output in Ray's log files instead of this terminal.
    Returns Ray's context object. Calling it again while connected is a no-op.
    """
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if ray.is_initialized():
        return ray.get_runtime_context()
    if address is None:
        # Ray's own actors (Train V2's placement-group cleaner, the State API it calls) find "their" Ray by
        # auto-detection, which fails with "multiple active Ray instances" when another Ray runs on the
        # machine, and Tune trials then hang on leaked placement groups. Choosing the dashboard port here
        # lets every process of this job be told the address outright.
        port = free_port() if include_dashboard else None
        env = {"RAY_API_SERVER_ADDRESS": f"http://127.0.0.1:{port}"} if port else {}
        return ray.init(
            dashboard_host="127.0.0.1",
            dashboard_port=port,
            runtime_env={"env_vars": env} if env else None,
            num_cpus=num_cpus,
            num_gpus=num_gpus,
            object_store_memory=object_store_memory,
            _temp_dir=temp_dir,
            include_dashboard=include_dashboard,
            namespace=namespace,
            log_to_driver=log_to_driver,
            configure_logging=False,
        )
    return ray.init(address=address, namespace=namespace)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def resources() -> ClusterResources:
    """Totals and free logical resources of the connected cluster."""
    import ray

    total = ray.cluster_resources()
    free = ray.available_resources()
    alive = [n for n in ray.nodes() if n.get("Alive")]
    return ClusterResources(
        nodes=len(alive),
        cpus=float(total.get("CPU", 0)),
        gpus=float(total.get("GPU", 0)),
        free_cpus=float(free.get("CPU", 0)),
        free_gpus=float(free.get("GPU", 0)),
    )
