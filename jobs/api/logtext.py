"""What a log's text looks like to a reader: Ray and tqdm colour their output with ANSI escape codes, which a
terminal renders and everything else (a file, the dashboard, a pipe) shows as `\\x1b[36m(pid=...)`."""

from __future__ import annotations

import re

# CSI sequences (colours, cursor moves, erase line: ESC [ params final-byte) and OSC (ESC ] ... BEL or ST).
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")


def strip_ansi(text: str) -> str:
    """`text` without ANSI escape sequences (the characters they wrap are kept)."""
    return _ANSI.sub("", text)
