"""Jobs: every job with its state and progress, filters, and the submit form."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st
import yaml

from dashboard import data, forms
from dashboard.widgets import PAGES, job_links, state_label
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
    df["best"] = df["best"].astype("Float64")  # a job without the metric yet shows an empty cell
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
    event = st.dataframe(
        table_frame(jobs), hide_index=True, width="stretch", key="jobs_table", on_select="rerun",
        selection_mode="single-row",
        column_config={
            "progress": st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0, format="percent"),
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
    """The outcome of the last validate or submit, beside the form."""
    fb = st.session_state.get("submit_feedback")
    if not fb:
        st.caption("Validate checks the spec with the service (fields, model config, dataset, resources) "
                   "without creating a job.")
        return
    status, text, extra = fb
    if status == "error":
        field = text.split(":", 1)[0] if ":" in text else ""
        st.error(f"**The service refused the spec.**\n\n{text}")
        if field and " " not in field:
            st.caption(f"field: `{field}`")
    elif status == "valid":
        st.success("The spec is valid: the service would run it like this.")
        st.code(extra, language="yaml")
    else:
        st.success(f"Submitted **{text}**.")
        st.page_link(PAGES["job"], label=f"Follow {text}", icon=":material/monitoring:", query_params={"job": text})


def send(spec: dict[str, Any], validate_only: bool) -> None:
    """Validate or submit `spec` and record the outcome for feedback_ui."""
    from google.protobuf.json_format import MessageToDict

    try:
        c = data.client(conn)
        if validate_only:
            normalised = MessageToDict(c.validate(spec), preserving_proto_field_name=True)
            st.session_state["submit_feedback"] = ("valid", "", forms.spec_yaml(normalised))
        else:
            job = c.submit(spec)
            st.session_state["submit_feedback"] = ("submitted", job.id, "")
            st.session_state["current_job"] = job.id
            data.list_jobs.clear()
    except data.ClientError as exc:
        st.session_state["submit_feedback"] = ("error", f"{exc}", exc.code.name)
    except (SpecError, ValueError) as exc:  # what the client could not even put on the wire
        st.session_state["submit_feedback"] = ("error", f"{exc}", "")


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
        c1, c2, _ = st.columns([1, 1, 4])
        validate = c1.form_submit_button("Validate")
        submit = c2.form_submit_button("Submit", type="primary")
    if validate or submit:
        try:
            spec = forms.build_spec(kind=kind, model=name, overrides=forms.parse_overrides(family, raw),
                                    data=data_section, optim=optim, scaling=scaling, tune=tune, storage_path=storage)
        except ValueError as exc:
            st.session_state["submit_feedback"] = ("error", str(exc), "")
            return
        st.session_state["last_spec"] = spec
        send(spec, validate_only=bool(validate))


def yaml_tab() -> None:
    examples = data.example_specs()
    start = st.selectbox("Start from", ["the form's last spec", *examples], key="yaml_start")
    text = forms.spec_yaml(st.session_state.get("last_spec") or {}) if start == "the form's last spec" \
        else forms.spec_yaml(examples[start])
    with st.form("yaml_form"):
        body = st.text_area("Spec (YAML)", value=text, height=320, key=f"yaml_body_{start}")
        c1, c2, _ = st.columns([1, 1, 4])
        validate = c1.form_submit_button("Validate")
        submit = c2.form_submit_button("Submit", type="primary")
    if validate or submit:
        try:
            spec = yaml.safe_load(body)
        except yaml.YAMLError as exc:
            st.session_state["submit_feedback"] = ("error", f"spec: not valid YAML: {exc}".splitlines()[0], "")
            return
        if not isinstance(spec, dict):
            st.session_state["submit_feedback"] = ("error", "spec: must be a mapping of spec fields", "")
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
