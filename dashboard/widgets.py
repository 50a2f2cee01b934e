"""Widget groups shared by the pages; each returns the user's choice."""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboard import data

PAGES = {"jobs": "views/jobs.py", "job": "views/job.py", "trials": "views/trials.py",
         "attention": "views/attention.py", "cluster": "views/cluster.py"}


def state_label(state: str) -> str:
    """A state as shown in tables and pickers (plain text: it must read in any font)."""
    return state


def job_picker_ui(conn: data.Connection, *, kind: str = "", key: str = "job") -> dict[str, Any] | None:
    """A job chosen from the service's list (newest first); the `job` query parameter, or the job
    picked last on any page, is preselected. Returns the job, or None when there is none (or on error)."""
    try:
        jobs = data.list_jobs(conn, kind=kind)
    except data.ClientError as exc:
        data.show_error(exc, "listing jobs")
        return None
    if not jobs:
        st.info("No tune jobs yet: submit one on the Jobs page." if kind == "tune"
                else "No jobs yet: submit one on the Jobs page.")
        return None
    ids = [j["id"] for j in jobs]
    wanted = st.query_params.get("job") or st.session_state.get("current_job")
    if wanted and wanted not in ids:
        try:  # an older job than the list shows, or one of another kind
            extra = data.get_job(conn, wanted)
            if not kind or extra["kind"] == kind:
                jobs, ids = [extra, *jobs], [wanted, *ids]
        except data.ClientError as exc:
            data.show_error(exc, f"job {wanted}")
    by_id = {j["id"]: j for j in jobs}
    index = ids.index(wanted) if wanted in ids else 0
    choice = st.selectbox("Job", ids, index=index, key=f"{key}_picker",
                          format_func=lambda i: f"{i} · {by_id[i]['model']} · {by_id[i]['kind']} · "
                                                f"{state_label(by_id[i]['state'])}")
    st.session_state["current_job"] = choice
    if st.query_params.get("job") != choice:
        st.query_params["job"] = choice
    return by_id[choice]


def job_links(job: dict[str, Any], *, here: str = "") -> None:
    """Links from a job to its other pages."""
    links = [("job", "Curves and logs", ":material/monitoring:"), ("attention", "Attention", ":material/visibility:")]
    if job["kind"] == "tune":
        links.insert(1, ("trials", "Trials", ":material/science:"))
    cols = st.columns(len(links) + 2)
    for col, (page, label, icon) in zip(cols, [link for link in links if link[0] != here]):
        col.page_link(PAGES[page], label=label, icon=icon, query_params={"job": job["id"]})
