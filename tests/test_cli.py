"""The `foveate` command: one entry point whose help lists every area's subcommands."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from jobs.cli import main


def test_help_lists_subcommands(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "data" in out


def test_console_script_installed():
    exe = Path(sys.executable).parent / "foveate"
    proc = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "usage: foveate" in proc.stdout


def test_train_and_tune_refuse_bad_input_in_one_line_before_ray_starts(tmp_path, tiny_dataset, capsys):
    """`--set` and the command's kind apply before validation; an invalid field, a missing dataset or split
    are one line naming the field, exit code 2, reported before the CLI connects to (or starts) a Ray."""
    import json

    import ray

    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({
        "name": "bad", "kind": "tune", "storage_path": str(tmp_path / "out"), "tune": {},
        "model": {"name": "ram-cluttered60", "overrides": {"num_glimpses": 0}},
        "data": {"path": str(tmp_path / "nowhere")}, "scaling": {"num_workers": 0}}))
    started = ray.is_initialized()

    def error(*argv: str) -> str:
        assert main(list(argv)) == 2
        return capsys.readouterr().err

    assert "scaling.num_workers: must be >= 1 for a tune job" in error("tune", str(spec))
    # `foveate train` on the same file is a train job: the tune-only rule no longer applies.
    assert "model.num_glimpses: must be an integer >= 1, got 0" in error("train", str(spec))
    fixed = ["--set", "model.overrides.num_glimpses=2"]
    message = error("train", str(spec), *fixed)
    assert "data.path: " in message and "foveate data build" in message
    assert "data.val_split: no split 'nope'" in error(
        "train", str(spec), *fixed, "--set", f"data.path={tiny_dataset}", "--set", "data.val_split=nope")
    assert "no such spec file" in error("train", str(tmp_path / "missing.yaml"))
    assert ray.is_initialized() == started
