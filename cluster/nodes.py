"""More nodes for a Ray cluster: `foveate cluster join | leave`, each `ray start --address ... --block`.

A node joins the head at its GCS address with the head's auth token (token authentication stays on, as
on the head: cluster/local.py), its own logical CPUs, and custom resources that tell it apart
(`{"node2": 1}`) so a job can ask for it. Several nodes may run on one machine, as Ray's own tests do:
each gets free ports for its agents. The node's `ray start` runs in its own session, so `leave` stops
exactly its processes, and `kill` (SIGKILL to that session: raylet, workers and all) is what losing the
machine looks like to Ray.

Each node is recorded in `<state_dir>/nodes/<name>.json`.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from cluster.connect import free_port
from cluster.local import default_state_dir


@dataclass(frozen=True)
class NodeProcess:
    """A worker node started by `join`."""

    name: str
    pid: int  # the `ray start --block` process; its session holds the raylet and the node's workers
    head: str  # GCS address it joined
    num_cpus: int
    resources: dict[str, float] = field(default_factory=dict)
    log_path: str = ""


def _record(state_dir: Path, name: str) -> Path:
    return state_dir / "nodes" / f"{name}.json"


def running(pid: int) -> bool:
    """Whether process `pid` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return not stat.split(") ", 1)[1].startswith("Z")


def join(head_address: str, token_path: str, name: str, *, num_cpus: int, resources: dict[str, float] | None = None,
         state_dir: str | Path | None = None, env: dict[str, str] | None = None, timeout: float = 60.0) -> NodeProcess:
    """Start a worker node joining `head_address` (the head's GCS host:port) and wait until its raylet
    is up; `env` adds to the node's environment (storage credentials, as every node needs its own)."""
    state_dir = Path(state_dir) if state_dir else default_state_dir()
    (state_dir / "nodes").mkdir(parents=True, exist_ok=True)
    bindir = os.path.dirname(sys.executable)
    resources = dict(resources or {})
    cmd = [os.path.join(bindir, "ray"), "start", f"--address={head_address}", "--block", f"--num-cpus={num_cpus}",
           f"--resources={json.dumps(resources)}", "--disable-usage-stats",
           # Fixed by default: a second node on this machine would find the head's agents on them.
           f"--dashboard-agent-listen-port={free_port()}", f"--metrics-export-port={free_port()}",
           f"--runtime-env-agent-port={free_port()}"]
    node_env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_AUTH_TOKEN")}
    node_env.update(env or {})
    node_env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token_path), RAY_USAGE_STATS_ENABLED="0",
                    PATH=bindir + os.pathsep + node_env.get("PATH", ""), RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S="0")
    log_path = state_dir / "nodes" / f"{name}.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(cmd, env=node_env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, cwd=str(state_dir))
    node = NodeProcess(name=name, pid=proc.pid, head=head_address, num_cpus=num_cpus, resources=resources,
                       log_path=str(log_path))
    _record(state_dir, name).write_text(json.dumps(asdict(node), indent=1))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:  # `ray start --block` says so once its raylet runs
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"ray start (node {name}) exited with code {proc.returncode}; log {log_path}:\n{tail}")
        if "will now block forever" in log_path.read_text(errors="replace"):
            return node
        time.sleep(0.5)
    leave(name, state_dir)
    raise TimeoutError(f"node {name} did not join {head_address} within {timeout:.0f} s (log: {log_path})")


def node(name: str, state_dir: str | Path | None = None) -> NodeProcess | None:
    """The node recorded under `name`, if its `ray start` still runs."""
    f = _record(Path(state_dir) if state_dir else default_state_dir(), name)
    if not f.exists():
        return None
    rec = NodeProcess(**json.loads(f.read_text()))
    return rec if running(rec.pid) else None


def kill(name: str, state_dir: str | Path | None = None) -> list[int]:
    """SIGKILL every process of the node (its session: `ray start`, raylet, workers): a lost machine.
    Returns the pids killed."""
    rec = node(name, state_dir)
    if rec is None:
        return []
    pids = _session_pids(rec.pid)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(rec.pid, 0)
    return pids


def leave(name: str, state_dir: str | Path | None = None, timeout: float = 30.0) -> bool:
    """Stop the node gracefully (SIGTERM to its `ray start`, SIGKILL to what lingers); False if it was not
    running."""
    state_dir = Path(state_dir) if state_dir else default_state_dir()
    rec = node(name, state_dir)
    if rec is not None:
        os.kill(rec.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while running(rec.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        for pid in _session_pids(rec.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(rec.pid, os.WNOHANG)
    _record(state_dir, name).unlink(missing_ok=True)
    return rec is not None


def _session_pids(leader: int) -> list[int]:
    """The processes of `leader`'s session (Ray's workers stay in the raylet's session)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = (entry / "stat").read_text().rsplit(") ", 1)[1].split()
            if int(fields[3]) == leader:  # field 6 of stat: the session id
                out.append(int(entry.name))
    return sorted(out, key=lambda p: p != leader)
