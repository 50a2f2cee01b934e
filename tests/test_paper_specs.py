"""The specs of examples/paper/ (one per reproduced row of a paper): each names its paper figure and the
`foveate data build` command it needs, and that command, run small, gives a dataset the spec validates
against; a curriculum's later stage starts from the earlier stage's run."""

from __future__ import annotations

import dataclasses
import shlex
from pathlib import Path

import pytest

from jobs.api.spec import load_spec, read_spec_file
from jobs.cli import main
from jobs.run.checks import check_spec

PAPER = sorted((Path(__file__).resolve().parents[1] / "examples" / "paper").glob("*.yaml"))


def _build_command(path: Path) -> list[str]:
    lines = [ln for ln in path.read_text().splitlines() if ln.startswith("# Data: foveate data build ")]
    assert len(lines) == 1, f"{path.name}: one '# Data: foveate data build ...' line"
    return shlex.split(lines[0].removeprefix("# Data: foveate "))


def test_the_paper_rows_are_there():
    assert {p.stem for p in PAPER} >= {"ram-mnist28-6", "ram-translated60-8", "ram-cluttered60-4",
                                        "ram-cluttered60-6", "ram-cluttered60-8", "ram-cluttered100-8",
                                        "dram-multidigit3-stage1", "dram-multidigit3-stage2"}


@pytest.mark.realdata
@pytest.mark.parametrize("path", PAPER, ids=lambda p: p.stem)
def test_each_spec_names_its_figure_and_validates_on_its_data(path, shared_data, tmp_path):
    head = path.read_text().splitlines()[0]
    assert head.startswith(("# RAM (Mnih et al. 2014), Table", "# DRAM (Ba et al. 2015), section")), head
    spec = load_spec(path)
    cmd = _build_command(path)
    out = cmd[cmd.index("--out") + 1]
    assert out == spec.data.path, "the build command writes the dataset the spec reads"
    cmd[cmd.index("--out") + 1] = str(tmp_path / "data")
    cmd[cmd.index("--source") + 1] = str(shared_data / "mnist")
    assert main([*cmd, "--train", "8", "--test", "4"]) == 0
    # (the earlier stage's run of a curriculum is not here: the rest must hold without it)
    small = spec.replace(data=dataclasses.replace(spec.data, path=str(tmp_path / "data")),
                         model=dataclasses.replace(spec.model, init_from=""), storage_path=str(tmp_path / "runs"))
    check_spec(small)


def test_a_curriculum_stage_starts_from_the_stage_before():
    stages = sorted(p for p in PAPER if "-stage" in p.stem)
    for earlier, later in zip(stages, stages[1:]):
        first, second = read_spec_file(earlier), read_spec_file(later)
        assert second["model"]["init_from"] == f"{first['storage_path']}/{first['name']}"
        assert second["model"]["name"] == first["model"]["name"]
