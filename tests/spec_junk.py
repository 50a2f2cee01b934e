"""Hypothesis strategies for hostile spec values, and how to put them into a spec dict (shared by the
spec's, the wire's and the service's tests)."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

JUNK = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), st.text(max_size=8),
                 st.lists(st.one_of(st.integers(), st.floats(), st.text(max_size=3)), max_size=3),
                 st.dictionaries(st.text(max_size=4), st.one_of(st.integers(), st.floats()), max_size=2))


def with_junk(spec: dict[str, Any], junk: dict[str, Any]) -> dict[str, Any]:
    """`spec` with each dotted `section.field` (or top-level field) of `junk` set to its value; a field
    whose section is not a mapping (junk put there first) is left out."""
    d = dict(spec)
    for path, value in junk.items():
        section, _, name = path.rpartition(".")
        if section and isinstance(d.get(section), dict):
            d[section] = {**d[section], name: value}
        elif not section:
            d[name] = value
    return d
