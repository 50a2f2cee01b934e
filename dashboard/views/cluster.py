"""Cluster: the Ray nodes behind the service, what is in use, and the service's queue."""

import pandas as pd
import streamlit as st

from dashboard import data
from dashboard.widgets import state_label, table

st.title("Cluster")
conn = data.connection()


@st.fragment(run_every=5)
def cluster_panel() -> None:
    try:
        info = data.cluster(conn)
        queued = data.list_jobs(conn, states=("QUEUED",))
        running = data.list_jobs(conn, states=data.WITH_RAY)
    except data.ClientError as exc:
        data.show_error(exc, "describing the cluster")
        return
    c = st.columns(5)
    c[0].metric("Nodes", sum(n["alive"] for n in info["nodes"]), help=f"of {len(info['nodes'])} known")
    c[1].metric("CPUs in use", f"{info['cpus_used']:g} / {info['cpus']:g}")
    c[2].metric("GPUs in use", f"{info['gpus_used']:g} / {info['gpus']:g}")
    c[3].metric("Running jobs", f"{info['running_jobs']} / {info['max_running']}", help="handed to Ray / at most")
    c[4].metric("Queued jobs", info["queued_jobs"])
    st.caption(f"Ray {info['ray_version']} at {info['address']}")
    st.subheader("Nodes")
    table(pd.DataFrame(info["nodes"]))
    for title, jobs in (("Running", running), ("Queued", queued)):
        st.subheader(f"{title} jobs")
        if not jobs:
            st.caption("none")
            continue
        table(pd.DataFrame([{"job": j["id"], "state": state_label(j["state"]), "model": j["model"],
                             "owner": j["owner"], "priority": j["priority"], "submitted": data.age(j["created"]) + " ago"}
                            for j in jobs]))


cluster_panel()
