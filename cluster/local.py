"""A local Ray head that outlives the process that started it: `foveate cluster up | down | status`.

The head is `ray start --head --block` in its own session, so jobs keep running when the job service
restarts, and stopping it signals only that process (which tears down the Ray processes it started).
Never `ray stop`: that kills every Ray process of every user on the machine.

Ray's token authentication stays on: the head gets its own token file (`<state_dir>/auth_token`) through
RAY_AUTH_MODE=token and RAY_AUTH_TOKEN_PATH, which every Ray process it starts (job drivers included)
inherits. Clients of the head read that file. The head's PATH starts with this interpreter's bin
directory, so a job's `python -m jobs.run.entrypoint` runs in the same environment.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from cluster.connect import free_port


@dataclass(frozen=True)
class HeadInfo:
    """A running local head, as recorded in `<state_dir>/head.json`."""

    pid: int  # the `ray start --block` process
    gcs_address: str  # host:port for ray.init(address=...) / connect()
    dashboard_url: str  # http://host:port: Ray Jobs API and dashboard
    token_path: str  # Ray auth token file
    temp_dir: str  # Ray's temp dir (sessions and logs)
    log_path: str  # stdout/stderr of `ray start`
    state_dir: str

    def token(self) -> str:
        return Path(self.token_path).read_text().strip()

    def env(self) -> dict[str, str]:
        """Environment a process needs to join this cluster as a driver (token auth on)."""
        return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": self.token_path}


def default_state_dir() -> Path:
    return Path(os.environ.get("FOVEATE_CLUSTER_DIR", "~/.foveate/cluster")).expanduser()


def _state_file(state_dir: Path) -> Path:
    return state_dir / "head.json"


def _alive(pid: int) -> bool:
    """True when `pid` is still our `ray start` process (guards against a reused pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True
    return b"start" in cmdline and b"--block" in cmdline and not _zombie(pid)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except OSError:
        return False


def ensure_token(state_dir: Path) -> Path:
    """The head's token file, created (mode 0600) with a fresh random token when absent."""
    path = state_dir / "auth_token"
    if not path.exists():
        state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return path


def status(state_dir: str | Path | None = None) -> HeadInfo | None:
    """The running head recorded in `state_dir`, or None."""
    state_dir = Path(state_dir) if state_dir else default_state_dir()
    f = _state_file(state_dir)
    if not f.exists():
        return None
    info = HeadInfo(**json.loads(f.read_text()))
    return info if _alive(info.pid) else None


def up(
    state_dir: str | Path | None = None,
    *,
    num_cpus: int | None = None,
    num_gpus: int | None = None,
    object_store_memory: int | None = None,
    temp_dir: str | None = None,
    port: int | None = None,
    dashboard_port: int | None = None,
    resources: dict[str, float] | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 90.0,
) -> HeadInfo:
    """Start a local head (or return the one already running for `state_dir`) and wait until its
    Jobs API answers. Ports default to free ones; the temp dir to a short path under /tmp (Unix
    socket paths are limited to 107 bytes). `resources`: custom ones ({"head": 1}); `env` adds to the
    head's environment, which its jobs inherit (storage credentials: every node needs its own)."""
    state_dir = Path(state_dir) if state_dir else default_state_dir()
    running = status(state_dir)
    if running:
        return running
    state_dir.mkdir(parents=True, exist_ok=True)
    token_path = ensure_token(state_dir)
    digest = hashlib.sha1(str(state_dir.resolve()).encode()).hexdigest()[:8]
    temp_dir = temp_dir or f"/tmp/fvray-{os.getuid()}-{digest}"
    port = port or free_port()
    dashboard_port = dashboard_port or free_port()
    bindir = os.path.dirname(sys.executable)
    cmd = [os.path.join(bindir, "ray"), "start", "--head", "--block", f"--port={port}",
           f"--dashboard-port={dashboard_port}", "--dashboard-host=127.0.0.1", "--include-dashboard=true",
           # The job agent's port is fixed (52365) by default: a second Ray on the machine (a test session's,
           # another user's) would hold it and this head's Jobs API would never get an agent.
           f"--dashboard-agent-listen-port={free_port()}",
           f"--temp-dir={temp_dir}", "--disable-usage-stats"]
    if num_cpus is not None:
        cmd.append(f"--num-cpus={num_cpus}")
    if num_gpus is not None:
        cmd.append(f"--num-gpus={num_gpus}")
    if object_store_memory is not None:
        cmd.append(f"--object-store-memory={int(object_store_memory)}")
    if resources:
        cmd.append(f"--resources={json.dumps(resources)}")
    extra = env or {}
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_AUTH_TOKEN")}
    env.update(extra)
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token_path), RAY_USAGE_STATS_ENABLED="0",
               PATH=bindir + os.pathsep + env.get("PATH", ""),
               # `down` means down: no 30 s SIGTERM drain (it exists for Serve replicas on Kubernetes).
               RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S="0")
    log_path = state_dir / "head.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, cwd=str(state_dir))
    info = HeadInfo(pid=proc.pid, gcs_address=f"127.0.0.1:{port}",
                    dashboard_url=f"http://127.0.0.1:{dashboard_port}", token_path=str(token_path),
                    temp_dir=temp_dir, log_path=str(log_path), state_dir=str(state_dir))
    _state_file(state_dir).write_text(json.dumps(asdict(info), indent=1))
    try:
        _wait_ready(info, proc, timeout)
    except BaseException:
        down(state_dir)
        raise
    return info


def _wait_ready(info: HeadInfo, proc: subprocess.Popen, timeout: float) -> None:
    import requests

    headers = {"Authorization": f"Bearer {info.token()}"}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = Path(info.log_path).read_text(errors="replace")[-2000:]
            raise RuntimeError(f"ray start exited with code {proc.returncode}; log {info.log_path}:\n{tail}")
        try:
            if (requests.get(f"{info.dashboard_url}/api/jobs/", headers=headers, timeout=2).status_code == 200
                    and _node_reported(info)):
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"the Ray head did not answer at {info.dashboard_url} within {timeout:.0f} s "
                       f"(log: {info.log_path})")


def _node_reported(info: HeadInfo) -> bool:
    """The head's own node shows in the dashboard with its CPUs: until then placement checks see an
    empty cluster (a few seconds after the Jobs API first answers)."""
    from cluster.jobs_api import RayJobsAPI

    try:
        return RayJobsAPI(info.dashboard_url, info.token(), timeout=2).describe().cpus > 0
    except Exception:  # the dashboard is still coming up: ask again
        return False


def down(state_dir: str | Path | None = None, timeout: float = 30.0) -> bool:
    """Stop the head recorded in `state_dir`: SIGTERM to its `ray start` process, which stops the Ray
    processes it started; SIGKILL to its process group if it lingers. False when none was running."""
    state_dir = Path(state_dir) if state_dir else default_state_dir()
    f = _state_file(state_dir)
    if not f.exists():
        return False
    info = HeadInfo(**json.loads(f.read_text()))
    was_running = _alive(info.pid)
    if was_running:
        os.kill(info.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(info.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _alive(info.pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(info.pid, signal.SIGKILL)  # its own session: only the head's processes
    # Reap it when it is our child (cluster up and down in one process, as in tests).
    with contextlib.suppress(ChildProcessError):
        os.waitpid(info.pid, os.WNOHANG)
    f.unlink(missing_ok=True)
    return was_running
