"""What an AppTest of the dashboard shows, read as a user (and the browser) sees it: errors, tables, image
captions, text, charts with their data, and the choice a labelled picker (dashboard.widgets.labelled_choice)
shows. Shared by tests/test_dashboard*.py."""

from __future__ import annotations

import json

import pandas as pd
from streamlit.testing.v1 import AppTest


def errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def table(at: AppTest, key: str | None = None):
    frames = [d.value for d in at.dataframe]
    return frames if key is None else next(d.value for d in at.dataframe if d.key == key)


def captions(at: AppTest) -> list[str]:
    """The captions of every image on the page (one st.image may show several)."""
    return [c for img in at.get("image") for c in img.captions]


def text(at: AppTest) -> str:
    return "\n".join(str(m.value) for m in [*at.markdown, *at.caption, *at.info, *at.success, *at.error])


def picker(at: AppTest, key: str):
    """The selectbox of widgets.labelled_choice(key=...): its key is `key` and a digest of its labels."""
    return next(s for s in at.selectbox if s.key and s.key.rsplit("_", 1)[0] == key)


def shown(at: AppTest, key: str, before: tuple[str, str] | None = None) -> tuple[str, str]:
    """(widget id, the label the browser shows as the choice) of a labelled_choice after a run, as the browser
    keeps it: a value the server sets is shown; else a widget the browser already has (`before`: its id and
    label after the previous run) keeps the label it had; else a new widget shows its default option."""
    w = picker(at, key)
    if w.proto.set_value:
        return w.id, w.proto.raw_value
    if before is not None and before[0] == w.id:
        return before
    return w.id, w.proto.options[w.proto.default]


def picked(at: AppTest, key: str) -> tuple[str, str]:
    """(widget id, label) of a labelled_choice right after the user picked in it: the option clicked."""
    w = picker(at, key)
    return w.id, w.options[w.index]


def charts(at: AppTest) -> list[tuple[dict, pd.DataFrame]]:
    """(Vega-Lite spec, its data) of every chart on the page (Streamlit sends the data beside the spec)."""
    from streamlit import dataframe_util

    out = []
    for c in at.get("vega_lite_chart"):
        frames = [dataframe_util.convert_arrow_bytes_to_pandas_df(d.data.data) for d in c.proto.datasets]
        out.append((json.loads(c.proto.spec), pd.concat(frames) if frames else pd.DataFrame()))
    return out
