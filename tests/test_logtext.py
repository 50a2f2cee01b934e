"""Logs as a reader sees them: ANSI codes stripped where no terminal renders them; the driver's output kept."""

from __future__ import annotations

import subprocess
import sys

from jobs.api.logtext import strip_ansi
from jobs.run.driver_log import DriverLog


def test_ansi_codes_are_stripped_and_the_text_kept():
    ray = "\x1b[36m(RayTrainWorker pid=4242)\x1b[0m epoch 1 \x1b[1m\x1b[31mdone\x1b[0m"
    assert strip_ansi(ray) == "(RayTrainWorker pid=4242) epoch 1 done"
    tqdm = "  50%|#####     | 1/2\r\x1b[A\x1b[2K100%|##########| 2/2\n"
    assert strip_ansi(tqdm) == "  50%|#####     | 1/2\r100%|##########| 2/2\n"
    title = "\x1b]0;window title\x07text"
    assert strip_ansi(title) == "text"
    assert strip_ansi("plain [1m text") == "plain [1m text"  # no ESC, nothing to strip


def test_the_driver_log_copies_stdout_and_stderr_and_a_restart_appends(tmp_path):
    log = tmp_path / "run" / "driver.log"
    code = ("import sys; from jobs.run.driver_log import DriverLog\n"
            f"with DriverLog({str(log)!r}):\n"
            "    print('to stdout'); print('to stderr', file=sys.stderr)\n"
            "print('after, not kept')\n")
    for _ in range(2):
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        assert "to stdout" in run.stdout and "to stderr" in run.stderr  # still where it went
    assert log.read_text() == "to stdout\nto stderr\n" * 2


def test_the_driver_log_gives_back_the_streams_it_replaced(tmp_path):
    before = sys.stdout, sys.stderr
    with DriverLog(str(tmp_path / "driver.log")):
        assert sys.stdout is not before[0]
        print("inside")
    assert (sys.stdout, sys.stderr) == before
    assert (tmp_path / "driver.log").read_text() == "inside\n"
