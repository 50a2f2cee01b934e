"""Every ready-made spec in examples/ loads and validates, and its search space (tune) is valid."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs.api.spec import load_spec
from jobs.run.tune import search_space

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.yaml"))


def test_every_family_has_train_tune_and_tiny_specs():
    names = {p.stem for p in EXAMPLES}
    for family in ("ram", "dram", "racnn", "mgcnn"):
        assert any(n.startswith(family) and n.endswith("-tiny") and "tune" not in n for n in names), family
        assert f"{family}-tune" in names and f"{family}-tune-tiny" in names, family


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_spec_is_valid(path):
    spec = load_spec(path)
    assert spec.kind == ("tune" if "tune" in path.stem else "train")
    if spec.kind == "tune":
        assert search_space(spec)
