"""Widget groups shared by the pages; each returns the user's choice."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import streamlit as st

from dashboard import data

PAGES = {"jobs": "views/jobs.py", "job": "views/job.py", "trials": "views/trials.py",
         "attention": "views/attention.py", "cluster": "views/cluster.py"}


# What a table shows in a cell without a value (a running job's best metric, a metric a trial never
# reported): Streamlit would write "None".
MISSING = "–"


def table(df: Any, **kwargs: Any) -> Any:
    """st.dataframe with the dashboard's defaults: no index, full width, MISSING in empty cells."""
    return st.dataframe(df, **{"hide_index": True, "width": "stretch", "placeholder": MISSING, **kwargs})


def state_label(state: str) -> str:
    """A state as shown in tables and pickers (plain text: it must read in any font)."""
    return state


def labelled_choice(label: str, options: Sequence[Any], format_func: Callable[[Any], str], key: str,
                    default: Any = None, force: Any = None, **kwargs: Any) -> Any:
    """A selectbox whose shown choice always reads as `format_func` says now.

    The browser keeps the text of a keyed selectbox's choice as it was first sent, so a label that changes
    (a probe's "3 → 5 ✗ IoU 0.33" at another epoch, a job's state after a cancel) would stay stale: the
    widget's key carries a digest of the labels, so new labels make a new widget, and the choice is
    carried over under `key` in the session state. A new widget starts at that choice, else `default`
    (None: nothing chosen until the user picks); `force` (when offered) replaces the user's choice, for a
    choice made elsewhere (a link's query parameter). Returns the chosen option, or None."""
    options = list(options)
    labels = [format_func(o) for o in options]
    widget = f"{key}_{hashlib.blake2s(chr(31).join(labels).encode(), digest_size=4).hexdigest()}"
    if force in options or widget not in st.session_state:
        start = force if force in options else st.session_state.get(key, default)
        start = start if start in options else default if default in options else None
        if start is not None:
            st.session_state[widget] = start
    # No index: the widget's state (set above, or the user's pick) says what is chosen; index=None only
    # lets a widget without one start empty.
    value = st.selectbox(label, options, index=0 if widget in st.session_state else None, format_func=format_func,
                         key=widget, **kwargs)
    st.session_state[key] = value
    return value


def job_label(job: dict[str, Any]) -> str:
    return f"{job['id']} · {job['model']} · {job['kind']} · {state_label(job['state'])}"


def job_picker_ui(conn: data.Connection, *, kind: str = "", key: str = "job") -> dict[str, Any] | None:
    """A job chosen from the service's list (newest first); the `job` query parameter, or the job
    picked last on any page, is preselected. Returns the job, or None when there is none (or on error).
    With `kind`, a wanted job of another kind is said to be so, not silently swapped for one of `kind`:
    nothing is chosen until the user picks."""
    try:
        jobs = data.list_jobs(conn, kind=kind)
    except data.ClientError as exc:
        data.show_error(exc, "listing jobs")
        return None
    ids = [j["id"] for j in jobs]
    wanted = st.query_params.get("job") or st.session_state.get("current_job")
    default, told = (ids[0] if ids else None), False
    if wanted and wanted not in ids:
        try:  # an older job than the list shows, or one of another kind
            extra = data.get_job(conn, wanted)
        except data.ClientError as exc:
            data.show_error(exc, f"job {wanted}")
            extra = None
        if extra is not None and kind and extra["kind"] != kind:
            st.info(f"**{wanted}** is a {extra['kind']} job: it has no trials, only {kind} jobs do. "
                    + ("Pick a tune job below." if jobs else "Submit a tune job on the Jobs page."))
            wanted = default = None
            told = True
        elif extra is not None:
            jobs, ids = [extra, *jobs], [wanted, *ids]
    if not jobs:
        if not told:
            st.info("No tune jobs yet: submit one on the Jobs page." if kind == "tune"
                    else "No jobs yet: submit one on the Jobs page.")
        return None
    by_id = {j["id"]: j for j in jobs}
    # The picker's last choice is where every run leaves the query parameter: a different one came from a link.
    force = wanted if wanted != st.session_state.get(f"{key}_picker") else None
    choice = labelled_choice("Job", ids, lambda i: job_label(by_id[i]), key=f"{key}_picker", default=default,
                             force=force, placeholder="pick a tune job" if kind == "tune" else "pick a job")
    if choice is None:
        return None
    st.session_state["current_job"] = choice
    if st.query_params.get("job") != choice:
        st.query_params["job"] = choice
    return by_id[choice]


def rerun_on_state_change(conn: data.Connection, job_id: str, shown_state: str) -> dict[str, Any] | None:
    """For a live fragment: the job as the service has it now; when its state is no longer the one the page
    shows, the whole page reruns (pickers, header and buttons follow), its cached listings cleared so
    every label reads the new state. None when the service cannot say (the error is shown)."""
    try:
        job = data.get_job(conn, job_id)
    except data.ClientError as exc:
        data.show_error(exc, f"job {job_id}")
        return None
    if job["state"] != shown_state:
        data.list_jobs.clear()
        data.get_job.clear()
        st.rerun(scope="app")
    return job


def job_links(job: dict[str, Any], *, here: str = "") -> None:
    """Links from a job to its other pages."""
    links = [("job", "Curves and logs", ":material/monitoring:"), ("attention", "Attention", ":material/visibility:")]
    if job["kind"] == "tune":
        links.insert(1, ("trials", "Trials", ":material/science:"))
    cols = st.columns(len(links) + 2)
    for col, (page, label, icon) in zip(cols, [link for link in links if link[0] != here]):
        col.page_link(PAGES[page], label=label, icon=icon, query_params={"job": job["id"]})
