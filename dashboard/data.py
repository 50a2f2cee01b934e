"""Everything the pages read, through the job service's client only (never Ray, never the models).

Loaders are cached per connection (address, token): short TTLs for what changes (job lists, the cluster),
longer ones for what does not once written (a finished job's trials and attention records). A job's
metrics come from one WatchJob stream per job, followed by a background thread (`follower`), so a live
panel reads what has arrived so far instead of opening a stream on every rerun.
Failures raise `ClientError`; the pages show them with `show_error`, never as a traceback.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from dashboard import specs
from jobs.api.client import ClientError, FoveateClient
from jobs.api.logtext import strip_ansi
from jobs.api.spec import SpecError
from jobs.api.spec_proto import value_from_proto
from jobs.api.states import STATES, WITH_RAY, is_final, is_unfinished, kind_name, state_name

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Connection:
    """Where the job service is and the token it wants (hashable: it keys the caches)."""

    address: str
    token: str = ""


def connection() -> Connection:
    """The connection chosen in the sidebar (app.py), else FOVEATE_SERVER / FOVEATE_TOKEN."""
    address = st.session_state.get("server") or os.environ.get("FOVEATE_SERVER") or "127.0.0.1:50051"
    token = st.session_state.get("token")
    if token is None:
        token = os.environ.get("FOVEATE_TOKEN", "")
    return Connection(address.strip(), token.strip())


@st.cache_resource(show_spinner=False)
def client(conn: Connection) -> FoveateClient:
    """One channel per connection for the dashboard process (gRPC channels are thread-safe)."""
    return FoveateClient(conn.address, conn.token or "", timeout=15.0)


def show_error(exc: Exception, what: str = "") -> None:
    """A failed call as one readable message with what to do about it."""
    prefix = f"{what}: " if what else ""
    if isinstance(exc, ClientError):
        hint = {
            "UNAVAILABLE": " — is `foveate serve` running at this address? Set it in the sidebar.",
            "UNAUTHENTICATED": " — the service requires a token: enter it in the sidebar (or set FOVEATE_TOKEN).",
            "DEADLINE_EXCEEDED": " — the service did not answer in time.",
        }.get(exc.code.name, "")
        st.error(f"{prefix}{exc} [{exc.code.name}]{hint}")
    elif isinstance(exc, SpecError | ValueError):
        st.error(f"{prefix}{exc}")
    else:
        st.error(f"{prefix}{type(exc).__name__}: {exc}")


# ------------------------------------------------------------------------------------------- jobs


def _ts(ts: Any) -> datetime | None:
    return datetime.fromtimestamp(ts.seconds + ts.nanos / 1e9, UTC) if ts.seconds else None


def job_dict(job: Any) -> dict[str, Any]:
    """The fields of a Job message the pages show, as plain data."""
    spec = job.spec
    kind = kind_name(spec.kind) or "train"
    epochs = spec.optim.epochs or 1
    return {
        "id": job.id, "state": state_name(job.state), "kind": kind, "model": spec.model.name,
        "dataset": Path(spec.data.path).name or spec.data.path, "data_path": spec.data.path,
        "owner": job.owner, "priority": job.priority,
        # A tune job's trials as the service plans them (its grid times tune.num_trials).
        "epochs": epochs, "trials": job.planned_trials if kind == "tune" else 1,
        "metric": spec.tune.metric if kind == "tune" else "val_accuracy",
        "mode": spec.tune.mode if kind == "tune" else "max",
        "created": _ts(job.created), "started": _ts(job.started), "finished": _ts(job.finished),
        "error": job.error, "run_dir": job.run_dir, "cancel_requested": job.cancel_requested,
        "result_metrics": dict(job.result.metrics), "best_trial": job.result.best_trial,
        "best_params": {k: value_from_proto(v) for k, v in job.result.best_params.items()},
        "checkpoint": job.result.checkpoint_path,
        "history": [{"state": state_name(h.state), "time": _ts(h.time), "reason": h.reason} for h in job.history],
        "spec": specs.plain(spec), "eval_samples": spec.optim.eval_samples or 1,
    }


@st.cache_data(ttl=2, show_spinner=False)
def list_jobs(conn: Connection, states: tuple[str, ...] = (), kind: str = "", model: str = "",
              owner: str = "", limit: int = 200) -> list[dict[str, Any]]:
    """Jobs matching the filters, newest first."""
    page = client(conn).list(states=list(states), kind=kind, model=model, owner=owner, page_size=min(limit, 500))
    return [job_dict(j) for j in page.jobs]


@st.cache_data(ttl=2, show_spinner=False)
def get_job(conn: Connection, job_id: str) -> dict[str, Any]:
    return job_dict(client(conn).get(job_id))


@st.cache_data(ttl=3, show_spinner=False)
def log_tail(conn: Connection, job_id: str, lines: int = 200) -> str:
    """The last `lines` of the job's driver log, without the ANSI colour codes Ray writes for a terminal."""
    text = strip_ansi("".join(client(conn).logs(job_id)))
    return "\n".join(text.splitlines()[-lines:])


@st.cache_data(ttl=5, show_spinner=False)
def cluster(conn: Connection) -> dict[str, Any]:
    info = client(conn).cluster()
    return {
        "address": info.address, "ray_version": info.ray_version, "cpus": info.cpus, "cpus_used": info.cpus_used,
        "gpus": info.gpus, "gpus_used": info.gpus_used, "queued_jobs": info.queued_jobs,
        "running_jobs": info.running_jobs, "max_running": info.max_running,
        "nodes": [{"node": n.node_id[:12], "ip": n.ip, "head": n.is_head, "alive": n.alive, "CPUs": n.cpus,
                   "CPUs in use": n.cpus_used, "GPUs": n.gpus, "GPUs in use": n.gpus_used,
                   "Resources": ", ".join(f"{k}={v:g}" for k, v in sorted(n.resources.items()))} for n in info.nodes],
    }


@st.cache_data(ttl=300, show_spinner=False)
def models(conn: Connection) -> list[dict[str, Any]]:
    """The model variants the service can train: [{"name", "family", "defaults": {field: value}}]."""
    return client(conn).models()


def family(conn: Connection, model: str) -> str:
    """The family ("ram", "racnn", ...) of a model variant as the service lists it; "" if it lists none."""
    return next((m["family"] for m in models(conn) if m["name"] == model), "")


@st.cache_data(ttl=600, max_entries=8, show_spinner=False)
def export_model(conn: Connection, job_id: str, format: str, samples: int) -> tuple[str, dict[str, Any], bytes]:
    """(file name, model card, bytes) of a finished job's exported model; kept a while, as a finished
    job's model never changes (the service keeps the file too, so a reload only transfers it)."""
    return client(conn).export_model(job_id, format, samples)


def age(t: datetime | None, now: datetime | None = None) -> str:
    """'42 s', '5 min', '3 h', '2 d' since `t`."""
    if t is None:
        return "-"
    s = max(0.0, ((now or datetime.now(UTC)) - t).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if s >= size:
            return f"{int(s // size)} {unit}"
    return f"{int(s)} s"


# ---------------------------------------------------------------------------------- epoch metrics


@dataclass
class Follower:
    """Follows one job's WatchJob stream in a thread: the state changes and epochs so far."""

    conn: Connection
    job_id: str
    cl: FoveateClient
    epochs: list[dict[str, Any]] = field(default_factory=list)  # {"trial", "epoch", **metrics}
    error: Exception | None = None
    done: bool = False
    events: int = 0
    last_event: float = field(default_factory=time.monotonic)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> Follower:
        threading.Thread(target=self._run, name=f"follow-{self.job_id}", daemon=True).start()
        return self

    def _run(self) -> None:
        try:
            for event in self.cl.watch(self.job_id):
                if event.WhichOneof("event") == "epoch":
                    row = {"trial": event.epoch.trial, "epoch": event.epoch.epoch, **dict(event.epoch.metrics)}
                    with self._lock:
                        self.epochs.append(row)
                self.events += 1
                self.last_event = time.monotonic()
        except Exception as exc:  # shown by the page; the next read starts a new stream
            self.error = exc
        finally:
            self.done = True

    def settle(self, final: bool, timeout: float = 10.0) -> None:
        """Wait until the replayed history has arrived: a finished job's stream ends after it; a running
        job's goes quiet (the service replays what it has at once, then waits for news)."""
        deadline = time.monotonic() + (timeout if final else 3.0)
        while not self.done and time.monotonic() < deadline:
            if not final and self.events and time.monotonic() - self.last_event > 0.3:
                return
            time.sleep(0.05)

    def frame(self) -> pd.DataFrame:
        with self._lock:
            rows = list(self.epochs)
        return pd.DataFrame(rows) if rows else pd.DataFrame(columns=["trial", "epoch"])


class _Followers:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_job: dict[tuple[Connection, str], Follower] = {}

    def get(self, conn: Connection, job_id: str) -> Follower:
        with self._lock:
            f = self._by_job.get((conn, job_id))
            if f is None or f.error is not None:  # a failed stream is retried on the next read
                f = self._by_job[(conn, job_id)] = Follower(conn, job_id, client(conn)).start()
            return f


@st.cache_resource(show_spinner=False)
def _followers() -> _Followers:
    return _Followers()


def epoch_metrics(conn: Connection, job_id: str, final: bool = False) -> pd.DataFrame:
    """Every reported epoch of the job so far (one row per trial and epoch), after the replay arrived;
    `final`: the job has ended (its stream ends too). Raises the stream's ClientError when it failed
    before delivering anything."""
    f = _followers().get(conn, job_id)
    f.settle(final)
    if f.error is not None and not f.epochs:
        raise f.error
    return f.frame()


def epoch_metrics_many(conn: Connection, job_ids: list[str], finals: list[bool]) -> dict[str, pd.DataFrame]:
    """epoch_metrics of several jobs, their streams replaying at the same time; jobs whose stream
    failed are left out (a table shows them without progress until the next refresh)."""
    followers = [_followers().get(conn, j) for j in job_ids]
    for f, final in zip(followers, finals):
        f.settle(final)
    return {f.job_id: f.frame() for f in followers if f.error is None or f.epochs}


def trials_finished(job: dict[str, Any], epochs: pd.DataFrame | None) -> int:
    """A tune job's trials that have reported their last epoch (a trial a scheduler stopped early counts
    once the search has ended)."""
    if epochs is None or epochs.empty or "trial" not in epochs:
        return 0
    last = epochs.groupby("trial")["epoch"].max()
    if job["state"] == "SUCCEEDED":
        return len(last)
    return int((last >= job["epochs"] - 1).sum())


def progress(job: dict[str, Any], epochs: pd.DataFrame | None) -> float:
    """How far the job has got: a train job's epochs reported of its epochs; a tune job's trials finished
    of the trials its search plans (a search cancelled after 1 of 3 trials is a third done)."""
    if job["state"] == "SUCCEEDED":
        return 1.0
    if epochs is None or epochs.empty:
        return 0.0
    if job["kind"] == "tune":
        return min(1.0, trials_finished(job, epochs) / job["trials"]) if job["trials"] else 0.0
    return min(1.0, len(epochs) / max(job["epochs"], 1))


def progress_text(job: dict[str, Any], epochs: pd.DataFrame | None) -> str:
    """progress in words: '4 of 5 epochs reported', '1 of 3 trials finished · 7 epochs reported'."""
    reported = 0 if epochs is None else len(epochs)
    if job["kind"] != "tune":
        return f"{reported} of {job['epochs']} epochs reported"
    planned = str(job["trials"]) if job["trials"] else "?"
    return (f"{trials_finished(job, epochs)} of {planned} trials finished · {reported} epochs reported "
            f"(up to {job['epochs']} per trial)")


def best_metric(job: dict[str, Any], epochs: pd.DataFrame | None) -> float | None:
    """The best value of the job's metric (val_accuracy, or the tune metric) reported so far."""
    metric = job["metric"]
    values = []
    if metric in job["result_metrics"]:
        values.append(job["result_metrics"][metric])
    if epochs is not None and metric in epochs:
        values += epochs[metric].dropna().tolist()
    if not values:
        return None
    return max(values) if job["mode"] == "max" else min(values)


def jobs_with_progress(conn: Connection, jobs: list[dict[str, Any]], follow_limit: int = 30) -> list[dict[str, Any]]:
    """Jobs with `progress` and `best` filled in; epochs are read for the first `follow_limit` that
    have started and not succeeded (a succeeded job's result already holds its metric)."""
    followed = [j for j in jobs[:follow_limit] if (j["state"] == "RUNNING" or is_final(j["state"]))
                and (j["state"] != "SUCCEEDED" or j["metric"] not in j["result_metrics"])]
    epochs = epoch_metrics_many(conn, [j["id"] for j in followed], [is_final(j["state"]) for j in followed])
    return [{**j, "progress": progress(j, epochs.get(j["id"])), "best": best_metric(j, epochs.get(j["id"]))}
            for j in jobs]


# ----------------------------------------------------------------------------------- tune, attention


@st.cache_data(ttl=5, show_spinner=False)
def trials(conn: Connection, job_id: str) -> tuple[pd.DataFrame, bool, str]:
    """(trials table, complete, best trial) of a tune job."""
    resp = client(conn).trials(job_id)
    from jobs.api.tables import trials_to_table

    return trials_to_table(resp).to_pandas(), resp.complete, resp.best_trial


@st.cache_data(ttl=10, show_spinner=False, max_entries=64)
def attention(conn: Connection, job_id: str, trial: str = "", epoch: int | None = None) -> tuple[list[int], int, list[dict]]:
    """(epochs with a record, the epoch returned, its records as rows)."""
    resp = client(conn).attention_response(job_id, trial=trial, epoch=epoch)
    from jobs.api.tables import attention_to_table

    return list(resp.epochs), resp.epoch, attention_to_table(resp).to_pylist()


def trial_ids(conn: Connection, job_id: str) -> list[str]:
    """A tune job's trials that reported anything, sorted."""
    table, _, _ = trials(conn, job_id)
    return sorted(table["trial"].dropna().unique().tolist()) if "trial" in table else []


def example_specs() -> dict[str, str]:
    """The ready-made specs in examples/ (where the dashboard runs from a checkout) as their files' text,
    comments and all, by file stem; files that are not a YAML mapping are left out."""
    import yaml

    out = {}
    for p in sorted((ROOT / "examples").glob("*.yaml")):
        text = p.read_text()
        try:
            d = yaml.safe_load(text)
        except yaml.YAMLError:
            continue
        if isinstance(d, dict):
            out[p.stem] = text
    return out


__all__ = ["STATES", "WITH_RAY", "ClientError", "Connection", "is_final", "is_unfinished", "state_name"]
