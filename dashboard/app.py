"""Foveate's dashboard: `foveate dashboard [--server ADDRESS]` (or `streamlit run dashboard/app.py`).

One file per page under views/, chosen with st.navigation. Every page reads the job service through
dashboard/data.py (the gRPC client only), so the dashboard works against a remote cluster's service.
The sidebar holds the service address and token (defaults: FOVEATE_SERVER, FOVEATE_TOKEN).
"""

from __future__ import annotations

import logging
import os

import streamlit as st

st.set_page_config(page_title="Foveate", page_icon=":material/visibility:", layout="wide")


def connection_ui() -> None:
    """Service address and token, kept in session state for every page (data.connection reads them)."""
    with st.sidebar:
        st.text_input("Job service", value=os.environ.get("FOVEATE_SERVER", "127.0.0.1:50051"), key="server",
                      help="host:port of `foveate serve` (env FOVEATE_SERVER)")
        st.text_input("Token", value=os.environ.get("FOVEATE_TOKEN", ""), type="password", key="token",
                      help="for a service started with --token (env FOVEATE_TOKEN)")


pages = [
    st.Page("views/jobs.py", title="Jobs", icon=":material/list_alt:", default=True),  # served at /
    st.Page("views/job.py", title="Job", icon=":material/monitoring:", url_path="job"),
    st.Page("views/trials.py", title="Trials", icon=":material/science:", url_path="trials"),
    st.Page("views/attention.py", title="Attention", icon=":material/visibility:", url_path="attention"),
    st.Page("views/cluster.py", title="Cluster", icon=":material/dns:", url_path="cluster"),
]
page = st.navigation(pages)
connection_ui()
try:
    page.run()
except Exception as exc:  # a bug, not a service answer: one line on the page, the traceback in the log
    logging.getLogger("foveate.dashboard").exception("page %s failed", page.title)
    st.error(f"This page failed: {type(exc).__name__}: {exc}. The dashboard's log has the details.")
