"""Job: live curves of the loss terms, accuracy, per-scale accuracy and attention score; state history;
log tail; cancel; a finished job's model exported (ONNX or TorchScript) for download."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import streamlit as st

from dashboard import charts, data, specs
from dashboard.widgets import job_links, job_picker_ui, rerun_on_state_change, state_label, table
from jobs.api.exports import FORMATS, MAX_SAMPLES, SAMPLED_FAMILIES, card_path

st.title("Job")
conn = data.connection()


def header(job: dict[str, Any]) -> None:
    n = job["trials"]
    trials = (f" · {n} trial{'s' if n != 1 else ''}" if n else " · trials unknown") if job["kind"] == "tune" else ""
    st.markdown(f"**{job['model']}** · {job['kind']}{trials} · dataset `{job['dataset']}` · "
                f"owner {job['owner'] or '-'} · priority {job['priority']}")
    c = st.columns(4)
    c[0].metric("State", state_label(job["state"]))
    c[1].metric("Submitted", data.age(job["created"]) + " ago", help=str(job["created"]))
    if job["started"]:
        end = job["finished"] or pd.Timestamp.now(tz="UTC").to_pydatetime()
        c[2].metric("Ran for", data.age(job["started"], end))
    best = data.best_metric(job, None)
    if best is not None:
        c[3].metric(job["metric"], f"{best:.4f}", help="the result's value (best trial's, for a tune job)")
    if job["error"]:
        st.error(f"**Failed:** {job['error']}")
    if job["cancel_requested"] and data.is_unfinished(job["state"]):
        st.warning("Cancel requested: waiting for Ray to stop the job.")


def cancel_ui(job: dict[str, Any]) -> None:
    """A cancel button for a job that has not finished; the outcome stays on the page after the rerun
    that shows the job's new state."""
    outcome = st.session_state.get(f"cancel_outcome_{job['id']}")
    if outcome:
        st.success(outcome)
    if not data.is_unfinished(job["state"]):
        return
    if st.button("Cancel job", type="secondary", key=f"cancel_{job['id']}", icon=":material/cancel:"):
        try:
            done = data.client(conn).cancel(job["id"])
        except data.ClientError as exc:
            data.show_error(exc, "cancel")
            return
        state = data.state_name(done.state)
        st.session_state[f"cancel_outcome_{job['id']}"] = (
            f"{job['id']}: {state}" if state == "CANCELLED" else f"{job['id']}: cancel requested; Ray is stopping it")
        data.get_job.clear()
        data.list_jobs.clear()
        st.rerun()


def curves_panel(job_id: str, shown_state: str) -> None:
    """Every metric reported so far, one chart per unit and scale; reruns on its own while the job runs,
    and reruns the whole page when the job's state changes (header, history and cancel button follow)."""
    job = rerun_on_state_change(conn, job_id, shown_state)
    if job is None:
        return
    try:
        epochs = data.epoch_metrics(conn, job_id, final=data.is_final(job["state"]))
    except data.ClientError as exc:
        data.show_error(exc, "reading the job's epochs")
        return
    st.progress(data.progress(job, epochs), text=f"{state_label(job['state'])} · {data.progress_text(job, epochs)}")
    if epochs.empty:
        st.info("No epoch reported yet." if data.is_unfinished(job["state"]) else "This job reported no epoch.")
        return
    panels = charts.panels(epochs)
    for i in range(0, len(panels), 2):
        cols = st.columns(2)
        for col, panel in zip(cols, panels[i:i + 2]):
            col.altair_chart(charts.curves(epochs, panel.metrics, panel.title), width="stretch")
    with st.expander("Epoch metrics table"):
        order = charts.column_order(list(epochs.columns))
        if job["kind"] != "tune":
            order.remove("trial")  # empty for a train job
        table(epochs[order].astype({c: "Int64" for c in ("epoch", "step") if c in epochs}),
              column_config={m: st.column_config.NumberColumn(format="%.4g") for m in order if m not in charts.KEYS})


def logs_panel(job_id: str) -> None:
    try:
        text = data.log_tail(conn, job_id)
    except data.ClientError as exc:
        data.show_error(exc, "reading the log")
        return
    st.code(text or "(no output yet)", language="text", height=420, wrap_lines=True)


def history_table(job: dict[str, Any]) -> None:
    table(pd.DataFrame([{"state": state_label(h["state"]), "time": h["time"], "reason": h["reason"]}
                        for h in job["history"]]))


def result_panel(job: dict[str, Any]) -> None:
    if job["best_trial"]:
        params = ", ".join(f"{k} = {v:.4g}" if isinstance(v, float) else f"{k} = {v}"
                           for k, v in job["best_params"].items())
        st.markdown(f"**Best trial:** `{job['best_trial']}` · {params}")
    if job["result_metrics"]:
        metrics = pd.DataFrame(sorted(job["result_metrics"].items()), columns=["metric", "value"])
        table(metrics, height=min(36 * (len(metrics) + 1), 400),
              column_config={"value": st.column_config.NumberColumn(format="%.4g")})
    if job["checkpoint"]:
        st.caption(f"checkpoint: `{job['checkpoint']}`")
    st.caption(f"run directory: `{job['run_dir']}`")


FORMAT_LABELS = {"onnx": "ONNX", "torchscript": "TorchScript"}


def export_options_ui(job: dict[str, Any]) -> tuple[str, int]:
    """The format and the number of sampled glimpse paths M to export a job's model with (M only for the
    families that sample their paths; the others have one deterministic path)."""
    try:
        family = data.family(conn, job["model"])
    except data.ClientError:
        family = ""  # the service will judge M itself
    sampled = family in SAMPLED_FAMILIES or not family
    c = st.columns(2)
    fmt = c[0].radio("Format", list(FORMATS), format_func=lambda f: FORMAT_LABELS.get(f, f), horizontal=True,
                     key=f"export_format_{job['id']}")
    samples = c[1].number_input(
        "Sampled paths M", min_value=0, max_value=MAX_SAMPLES, value=0, step=1, key=f"export_samples_{job['id']}",
        disabled=not sampled,
        help="0: the deterministic mean glimpse path. M > 0: M sampled paths per image, their noise an input "
             "of the exported graph." if sampled else f"{family} models are deterministic: one path, M = 0.")
    return fmt, int(samples) if sampled else 0


def export_ui(job: dict[str, Any]) -> None:
    """For a SUCCEEDED job: the export options, "Prepare export" (the service exports the model once and
    keeps it), then a download of the file and of its model card, and the card itself."""
    choice = export_options_ui(job)
    prepared = f"export_prepared_{job['id']}"  # the choice last prepared, and its error if it failed
    if st.button("Prepare export", key=f"export_{job['id']}", icon=":material/deployed_code:"):
        st.session_state[prepared] = (choice, None)
        with st.spinner("Exporting the model on the service…"):
            try:
                data.export_model(conn, job["id"], *choice)
            except data.ClientError as exc:
                st.session_state[prepared] = (choice, exc)
    done = st.session_state.get(prepared)
    if done is None or done[0] != choice:
        st.caption("The first export of a format takes a few seconds; the service keeps the file for later.")
        return
    if done[1] is not None:
        data.show_error(done[1], "export")
        return
    try:
        name, card, blob = data.export_model(conn, job["id"], *choice)
    except data.ClientError as exc:
        data.show_error(exc, "export")
        return
    c = st.columns(2)
    c[0].download_button(f"Download {name}", data=blob, file_name=name, mime="application/octet-stream",
                         key=f"export_download_{job['id']}", icon=":material/download:", on_click="ignore")
    c[1].download_button("Model card", data=json.dumps(card, indent=1), file_name=card_path(name),
                         mime="application/json", key=f"export_card_{job['id']}", on_click="ignore")
    card_panel(name, card, len(blob))


def card_panel(name: str, card: dict[str, Any], size: int) -> None:
    """What a caller of the exported model needs at a glance (its tensors, the opset), then the whole card."""
    opset = f" · opset {card['opset']}" if card.get("opset") else ""
    st.caption(f"`{name}` · {size:,} bytes · {FORMAT_LABELS.get(card.get('format'), card.get('format', ''))}{opset}")
    dtypes = card.get("dtypes") or {}
    rows = [{"tensor": n, "role": role, "shape": " × ".join(map(str, shape)), "dtype": dtypes.get(n, "float32")}
            for role in ("input", "output") for n, shape in (card.get(f"{role}s") or {}).items()]
    if rows:
        table(pd.DataFrame(rows))
    with st.expander("Model card"):
        st.json(card, expanded=False)


def spec_panel(job: dict[str, Any]) -> None:
    """The spec in YAML as its user wrote it (the fields that differ from the defaults), or as it runs."""
    with st.expander("Spec"):
        full = st.toggle("with every default filled in", key=f"spec_full_{job['id']}",
                         help="as the service runs it; off: only the fields that differ from the defaults")
        d = specs.ordered(job["spec"]) if full else specs.written(job["spec"], job["id"])
        st.code(specs.to_yaml(d), language="yaml", wrap_lines=True)


job = job_picker_ui(conn)
if job is not None:
    job_id = job["id"]
    try:
        job = data.get_job(conn, job_id)
    except data.ClientError as exc:
        data.show_error(exc, f"job {job_id}")
        st.stop()
    header(job)
    job_links(job, here="job")
    cancel_ui(job)
    live = data.is_unfinished(job["state"])
    st.subheader("Curves")
    st.fragment(run_every=3 if live else None)(curves_panel)(job_id, job["state"])
    left, right = st.columns([2, 3])
    with left:
        st.subheader("State history")
        history_table(job)
        st.subheader("Result")
        result_panel(job)
    with right:
        st.subheader("Log tail")
        with st.container(key="log_tail"):  # the driver's own text, told apart from the page's (browser test)
            st.fragment(run_every=3 if live else None)(logs_panel)(job_id)
    if job["state"] == "SUCCEEDED":
        st.subheader("Export")
        export_ui(job)
    spec_panel(job)
