"""The driver's output kept with its run (RunLayout.driver_log), so it outlives the Ray head that ran it.

    with DriverLog(RunLayout.of(spec).driver_log):
        run_train(spec)          # everything printed, Ray's forwarded worker output included, is kept

The driver's stdout and stderr go on to where they went (Ray Jobs' own log, a terminal) and are copied
into the run directory. Ray forwards worker output through `sys.stdout`/`sys.stderr` as they are when it
prints, so replacing them copies that too. A local file is appended to as lines arrive; an object store
has no append, so there the whole log is rewritten every few seconds and at the end.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from typing import TextIO

import pyarrow.fs as pafs

from jobs.api import paths
from jobs.run import storage

FLUSH_EVERY_S = 5.0  # object stores: how stale the kept log may be while the job runs


class _Tee:
    """A text stream writing to `stream` and to the log."""

    def __init__(self, stream: TextIO, log: DriverLog, echo: bool):
        self._stream, self._log, self._echo = stream, log, echo

    def write(self, text: str) -> int:
        self._log.write(text)
        return self._stream.write(text) if self._echo else len(text)

    def flush(self) -> None:
        self._stream.flush()
        self._log.flush()

    def __getattr__(self, name: str):  # isatty, fileno, encoding, ... as the stream it wraps
        return getattr(self._stream, name)


class DriverLog:
    """Copy this process's stdout and stderr into `uri` (a local path or a pyarrow URI) while in use;
    with `echo=False`, only into `uri` (`foveate tune` shows its own progress lines and keeps Ray's there)."""

    def __init__(self, uri: str, echo: bool = True):
        self.uri = uri
        self._echo = echo
        self._lock = threading.Lock()
        self._remote = paths.is_uri(uri) and not uri.startswith("file://")
        self._file: TextIO | None = None
        self._text: list[str] = []  # remote: the whole log, rewritten on flush
        self._dirty = False
        self._stop = threading.Event()
        self._saved: tuple[TextIO, TextIO] | None = None
        self._flusher: threading.Thread | None = None

    def __enter__(self) -> DriverLog:
        fs, path = storage.resolve(self.uri)
        fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
        if self._remote:
            if fs.get_file_info(path).type == pafs.FileType.File:  # a restarted driver continues the log
                with fs.open_input_stream(path) as f:
                    self._text.append(f.read().decode(errors="replace"))
            self._flusher = threading.Thread(target=self._flush_loop, name="driver-log", daemon=True)
            self._flusher.start()
        else:
            self._file = open(path, "a", encoding="utf-8", errors="replace", buffering=1)  # noqa: SIM115 - closed in __exit__
        self._saved = (sys.stdout, sys.stderr)
        sys.stdout, sys.stderr = _Tee(sys.stdout, self, self._echo), _Tee(sys.stderr, self, self._echo)
        return self

    def __exit__(self, *exc) -> None:
        if self._saved:
            sys.stdout, sys.stderr = self._saved
        self._stop.set()
        if self._flusher:
            self._flusher.join(timeout=FLUSH_EVERY_S * 2)
        self.flush()
        if self._file:
            self._file.close()

    def write(self, text: str) -> None:
        with self._lock:
            if self._file:
                self._file.write(text)
            else:
                self._text.append(text)
                self._dirty = True

    def flush(self) -> None:
        with self._lock:
            if self._file:
                self._file.flush()
                return
            if not self._dirty:
                return
            body, self._dirty = "".join(self._text), False
            self._text = [body]
        with contextlib.suppress(OSError):  # a failed upload must not fail the job: the next one retries
            fs, path = storage.resolve(self.uri)
            with fs.open_output_stream(path) as f:
                f.write(body.encode())

    def _flush_loop(self) -> None:
        while not self._stop.wait(FLUSH_EVERY_S):
            self.flush()
