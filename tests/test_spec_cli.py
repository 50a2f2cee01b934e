"""`foveate spec schema`: the spec's JSON schema on stdout, the one the form and other clients read."""

from __future__ import annotations

import json

from jobs.api.spec import spec_schema
from jobs.cli import main


def test_spec_schema_prints_the_json_schema(capsys):
    assert main(["spec", "schema"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == spec_schema()
    data = printed["$defs"]["DataSpec"]["properties"]
    assert data["min_crop"]["exclusiveMinimum"] == 0 and data["min_crop"]["maximum"] == 1
    assert "foveate data build" in data["path"]["description"]
    assert main(["spec", "schema", "--compact"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 1


def test_spec_without_a_subcommand_shows_its_help(capsys):
    assert main(["spec"]) == 2
    assert "schema" in capsys.readouterr().out
