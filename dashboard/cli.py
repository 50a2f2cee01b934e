"""`foveate dashboard`: run the Streamlit dashboard against a job service."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

APP = Path(__file__).resolve().parent / "app.py"


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dashboard", help="open the dashboard (Streamlit) on a job service")
    p.add_argument("--server", default=None, help="job service address host:port (env FOVEATE_SERVER)")
    p.add_argument("--token", default=None, help="the service's token (env FOVEATE_TOKEN)")
    p.add_argument("--port", type=int, default=8501, help="port of the dashboard's web server")
    p.add_argument("--host", default="127.0.0.1", help="interface the dashboard listens on")
    p.set_defaults(func=_dashboard)


def command(args: argparse.Namespace) -> tuple[list[str], dict[str, str]]:
    """The `streamlit run` command line and environment for `args` (the service address and token travel
    in FOVEATE_SERVER / FOVEATE_TOKEN, which the dashboard's sidebar starts from)."""
    env = dict(os.environ)
    if args.server:
        env["FOVEATE_SERVER"] = args.server
    if args.token:
        env["FOVEATE_TOKEN"] = args.token
    env.setdefault("STREAMLIT_BROWSER_GATHER_USAGE_STATS", "false")
    cmd = [sys.executable, "-m", "streamlit", "run", str(APP), "--server.port", str(args.port),
           "--server.address", args.host, "--server.headless", "true",
           # A failure inside a live fragment still shows one line, never a traceback.
           "--client.showErrorDetails", "type",
           # The menu without Streamlit's developer items (Deploy, Rerun, Clear cache): users run the
           # dashboard, they do not develop it.
           "--client.toolbarMode", "viewer"]
    return cmd, env


def launch(server: str, token: str | None = None, port: int = 8501, host: str = "127.0.0.1") -> subprocess.Popen:
    """Start the dashboard in the background on `server` (for scripts such as the demo that keep their
    own job service running); stop it with .terminate()."""
    args = argparse.Namespace(server=server, token=token, port=port, host=host)
    cmd, env = command(args)
    return subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL)


def _dashboard(args: argparse.Namespace) -> int:
    cmd, env = command(args)
    print(f"foveate dashboard: http://{args.host}:{args.port} (job service "
          f"{env.get('FOVEATE_SERVER', '127.0.0.1:50051')})", flush=True)
    # Become Streamlit: signals (Ctrl-C, a supervisor's SIGTERM) then reach the server itself.
    os.execve(cmd[0], cmd, env)
