"""Trials of a tune job: the table, each searched hyperparameter against the metric, accuracy against
the glimpse budget, and the best trial highlighted and linked to its attention."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import charts, data
from dashboard.widgets import PAGES, job_links, job_picker_ui, rerun_on_state_change, table
from jobs.api.tables import PARAM_PREFIX

st.title("Trials")
conn = data.connection()


def trials_panel(job: dict) -> None:
    if rerun_on_state_change(conn, job["id"], job["state"]) is None:
        return
    try:
        trials, complete, best = data.trials(conn, job["id"])
    except data.ClientError as exc:
        data.show_error(exc, "listing trials")
        return
    metric, mode = job["metric"], job["mode"]
    if trials.empty:
        st.info("No trial has reported yet." if data.is_unfinished(job["state"]) else "This search reported no trial.")
        return
    trials = trials.astype({c: "Int64" for c in ("epoch", "step") if c in trials})  # NaN-free counts, not floats
    params = [c for c in trials.columns if c.startswith(PARAM_PREFIX)]
    reported = trials["trial"].nunique()
    planned = f" of the {job['trials']} it plans" if job["trials"] else ""
    if not complete:
        st.info(f"The search is still running: {reported} trial{'s' if reported != 1 else ''}{planned} "
                "reported so far, each row from the trial's metrics so far"
                + ("." if params else "; the trials' parameters are not known yet."))
    else:
        st.caption(f"{reported} trial{'s' if reported != 1 else ''} reported{planned}.")
    rows = charts.final_rows(trials, metric, mode)
    best = best or (rows["trial"].iloc[0] if metric in rows and len(rows) else "")
    rows = pd.concat([rows[rows["trial"] == best], rows[rows["trial"] != best]], ignore_index=True)  # ties

    st.subheader("Trials")
    st.caption(f"one row per trial at its best epoch by {metric} ({mode}); the search's best trial first, "
               "highlighted")
    shown = rows[["trial", "epoch", *params, *[c for c in (metric, "val_accuracy", "val_loss", "attention_iou")
                                                if c in rows and c != "epoch"]]]
    shown = shown.loc[:, ~shown.columns.duplicated()]
    highlight = shown.style.apply(
        lambda r: ["background-color: #ffe0b2; font-weight: bold" if r["trial"] == best else "" for _ in r], axis=1)
    formats = {c: st.column_config.NumberColumn(c.removeprefix(PARAM_PREFIX), format="%.4g")
               for c in params if pd.api.types.is_float_dtype(shown[c])}
    formats |= {c: st.column_config.NumberColumn(format="%.4f") for c in shown.columns
                if c not in params and c not in ("trial", "epoch")}
    table(highlight, column_config=formats)
    if best:
        st.markdown(f"**Best trial{'' if complete else ' so far'}: `{best}`**" + (f" · {metric} = {rows.loc[rows.trial == best, metric].iloc[0]:.4f}"
                                                   if metric in rows and (rows.trial == best).any() else ""))
        st.page_link(PAGES["attention"], label=f"See where the best trial ({best}) looks", icon=":material/visibility:",
                     query_params={"job": job["id"], "trial": best})

    if params and metric in rows:
        st.subheader("Hyperparameters vs " + metric)
        cols = st.columns(min(len(params), 3))
        for i, p in enumerate(params):
            cols[i % len(cols)].altair_chart(charts.param_scatter(rows, p, metric, best), width="stretch")
    budget = charts.budget_chart(rows, "val_accuracy" if "val_accuracy" in rows else metric, best)
    st.subheader("Accuracy vs glimpse budget")
    if budget is not None:
        st.altair_chart(budget, width="stretch")
    elif not params:
        st.caption("Drawn once the trials' parameters are known.")
    else:
        st.caption("This search did not vary a glimpse count (model.num_glimpses or model.glimpses_per_label).")
    if metric in trials:
        st.subheader(f"{metric} per epoch")
        st.altair_chart(charts.curves(trials, [metric], f"{metric} per trial"), width="stretch")


job = job_picker_ui(conn, kind="tune")
if job is not None:
    job_links(job, here="trials")
    st.fragment(run_every=5 if data.is_unfinished(job["state"]) else None)(trials_panel)(job)
