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
