"""Jobs: every job with its state and progress, filters, and the submit form."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st
import yaml

from dashboard import data, forms, specs
from dashboard.widgets import PAGES, job_links, state_label, table
from jobs.api.client import absolute_paths
from jobs.api.spec import SpecError

st.title("Jobs")
conn = data.connection()


def filters_ui() -> dict[str, Any]:
    """States, kind, model and owner to filter the table by."""
    c = st.columns([3, 1, 2, 2])
    states = c[0].multiselect("State", data.STATES, key="filter_states", placeholder="any state")
    kind = c[1].selectbox("Kind", ["any", "train", "tune"], key="filter_kind")
    model = c[2].text_input("Model", key="filter_model", placeholder="any model").strip()
    owner = c[3].text_input("Owner", key="filter_owner", placeholder="anyone").strip()
    return {"states": tuple(states), "kind": "" if kind == "any" else kind, "model": model, "owner": owner}


def table_frame(jobs: list[dict[str, Any]]) -> pd.DataFrame:
    df = pd.DataFrame([{
        "job": j["id"], "state": state_label(j["state"]), "kind": j["kind"], "model": j["model"],
        "dataset": j["dataset"], "progress": j["progress"], "best": j["best"], "metric": j["metric"],
        "age": data.age(j["created"]), "owner": j["owner"]} for j in jobs])
    df["best"] = df["best"].astype("Float64")  # a job without the metric yet: a missing value, shown as a dash
    return df


def jobs_table(filters: dict[str, Any]) -> None:
    try:
        jobs = data.jobs_with_progress(conn, data.list_jobs(conn, **filters))
    except data.ClientError as exc:
        data.show_error(exc, "listing jobs")
        return
    if not jobs:
        st.info("No jobs match." if any(filters.values()) else "No jobs yet: submit one below.")
        return
    active = sum(data.is_unfinished(j["state"]) for j in jobs)
    st.caption(f"{len(jobs)} jobs · {active} queued or running" + (" · refreshes every 3 s" if active else ""))
    event = table(
        table_frame(jobs), key="jobs_table", on_select="rerun", selection_mode="single-row",
        column_config={
            "progress": st.column_config.ProgressColumn(
                "progress", min_value=0.0, max_value=1.0, format="percent",
                help="train: epochs reported of its epochs; tune: trials finished of the trials its search plans"),
            "best": st.column_config.NumberColumn("best", format="%.3f", help="best value of the job's metric so far"),
            "age": st.column_config.TextColumn("age", help="since submission"),
        })
    rows = event.selection.rows if event else []
    if rows:
        job = jobs[rows[0]]
        st.session_state["current_job"] = job["id"]
        st.markdown(f"**{job['id']}** · {job['model']} · {state_label(job['state'])}"
                    + (f" · {job['error'].splitlines()[0]}" if job["error"] else ""))
        job_links(job)
    else:
        st.caption("Select a row to open the job.")


def feedback_ui() -> None:
    """The outcome of the last validate or submit, beside the form: the service's refusal naming the
    field, or the spec as it would run (YAML), and where relative paths were resolved."""
    fb = st.session_state.get("submit_feedback")
    if not fb:
        st.caption("Validate checks the spec with the service (fields, model config, dataset, resources) "
                   "without creating a job. Relative paths are resolved here, where the dashboard runs.")
        return
    status, text, extra, resolved = fb
    if status == "error":
        field = text.split(":", 1)[0] if ":" in text else ""
        st.error(f"**The service refused the spec.**\n\n{text}")
        if field and " " not in field:
            st.caption(f"field: `{field}`")
    elif status == "valid":
        st.success("The spec is valid: the service would run it like this" + (f", {text}." if text else "."))
    else:
        st.success(f"Submitted **{text}**.")
        st.page_link(PAGES["job"], label=f"Follow {text}", icon=":material/monitoring:", query_params={"job": text})
    for path, written, there in resolved:
        st.caption(f"`{path}`: `{written}` resolved here to `{there}`")
    if status == "valid":
        st.code(extra, language="yaml", wrap_lines=True)


def resolved_paths(spec: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(field, as written, as sent) of the spec's local paths that the client resolves here (relative,
    `~`), as FoveateClient.submit sends them; SpecError names a path that cannot be resolved."""
    sent = absolute_paths(spec)
    pairs = [("data.path", (spec.get("data") or {}).get("path"), (sent.get("data") or {}).get("path")),
             ("storage_path", spec.get("storage_path"), sent.get("storage_path"))]
    return [(f, w, t) for f, w, t in pairs if isinstance(w, str) and w and w != t]


def feedback(status: str, text: str, extra: str = "", resolved: list[tuple[str, str, str]] = ()) -> None:
    """Record an outcome for feedback_ui: "error" (text: the message), "valid" (text: a search's planned
    trials, extra: the spec as YAML) or "submitted" (text: the job id), with the paths resolved on the way."""
    st.session_state["submit_feedback"] = (status, text, extra, list(resolved))


def send(spec: dict[str, Any], validate_only: bool) -> None:
    """Validate or submit `spec` and record the outcome for feedback_ui; a submitted job reruns the page,
    so that the jobs table above shows it at once."""
    resolved: list[tuple[str, str, str]] = []
    try:
        resolved = resolved_paths(spec)
        c = data.client(conn)
        if validate_only:
            verdict = c.submit(spec, validate_only=True)
            trials = verdict.planned_trials
            plan = f"a search of {trials} trial{'s' if trials != 1 else ''}" if trials else ""
            feedback("valid", plan, specs.to_yaml(specs.plain(verdict.spec)), resolved)
            return
        job = c.submit(spec)
    except data.ClientError as exc:
        feedback("error", f"{exc}", resolved=resolved)
        return
    except (SpecError, ValueError) as exc:  # what the client could not even put on the wire
        feedback("error", f"{exc}", resolved=resolved)
        return
    feedback("submitted", job.id, resolved=resolved)
    st.session_state["current_job"] = job.id
    data.list_jobs.clear()
    st.rerun()


def form_tab(jobs: list[dict[str, Any]]) -> None:
    try:
        models = data.models(conn)
    except data.ClientError as exc:
        data.show_error(exc, "listing the service's models")
        return
    kind, model = forms.model_ui(models, recent=[j["model"] for j in jobs])
    family, name = model["family"], model["name"]
    families = {m["name"]: m["family"] for m in models}
    # The dataset of the latest job of this model (or family): the form starts from where its user was.
    paths = [j["data_path"] for j in jobs if j["model"] == name and j["data_path"]] or \
            [j["data_path"] for j in jobs if families.get(j["model"]) == family and j["data_path"]]
    with st.form("submit_form", border=True):
        raw = forms.family_ui(family, model["defaults"])
        data_section, optim, scaling, storage = forms.training_ui(data_paths=paths)
        tune = forms.tune_ui(family) if kind == "tune" else None
        with st.container(horizontal=True):  # each button as wide as its label
            validate = st.form_submit_button("Validate")
            submit = st.form_submit_button("Submit", type="primary")
    if validate or submit:
        try:
            spec = forms.build_spec(kind=kind, model=name, overrides=forms.parse_overrides(family, raw),
                                    data=data_section, optim=optim, scaling=scaling, tune=tune, storage_path=storage)
        except ValueError as exc:
            feedback("error", str(exc))
            return
        st.session_state["last_spec"] = spec
        send(spec, validate_only=bool(validate))


def yaml_tab() -> None:
    examples = data.example_specs()
    start = st.selectbox("Start from", ["the form's last spec", *examples], key="yaml_start")
    # An example as its file has it, comments and all; the form's spec in the spec's field order.
    text = examples[start] if start in examples else \
        specs.to_yaml(specs.ordered(st.session_state["last_spec"])) if st.session_state.get("last_spec") else ""
    with st.form("yaml_form"):
        body = st.text_area("Spec (YAML)", value=text, height=320, key=f"yaml_body_{start}",
                            help="relative paths are resolved where the dashboard runs")
        with st.container(horizontal=True):
            validate = st.form_submit_button("Validate")
            submit = st.form_submit_button("Submit", type="primary")
    if validate or submit:
        try:
            spec = yaml.safe_load(body)
        except yaml.YAMLError as exc:
            feedback("error", f"spec: not valid YAML: {exc}".splitlines()[0])
            return
        if not isinstance(spec, dict):
            feedback("error", "spec: must be a mapping of spec fields")
            return
        send(spec, validate_only=bool(validate))


filters = filters_ui()
try:
    live = any(data.is_unfinished(j["state"]) for j in data.list_jobs(conn, **filters))
except data.ClientError:
    live = False  # the table says why
st.fragment(run_every=3 if live else None)(jobs_table)(filters)

st.header("Submit a job")
try:
    recent = data.list_jobs(conn)
except data.ClientError:
    recent = []  # the table above already shows why
left, right = st.columns([3, 2], gap="large")
with left:
    form, raw_yaml = st.tabs(["Form", "YAML"])
    with form:
        form_tab(recent)
    with raw_yaml:
        yaml_tab()
with right:
    st.subheader("Service says")
    feedback_ui()
