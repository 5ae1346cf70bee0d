"""``orgsim app [--host H] [--port N] [--jobs DIR]``: start the local web app (registered in sim/cli.py).

Solara serves the pages of sim/app/main.py; nothing is fetched from the internet (the browser code comes from the
``solara-assets`` package, and Solara's usage statistics are switched off).
"""

from __future__ import annotations

import argparse
import os
import socket
from pathlib import Path

from sim.argtypes import add_workers_option
from sim.errors import InputError

DEFAULT_PORT = 8765


def port_number(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not allowed; give a port 1-65535")
    return value


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "app", help="start the local web app: what-ifs, readiness, one run live, results (docs/app.md)",
        description="Start the orgsim web app on this computer and print its address; open it in a browser. "
                    "Long work runs as jobs in results/app/jobs/ (a reload or a restart of the app loses none).")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (127.0.0.1: this computer only; 0.0.0.0 opens it to the network)")
    parser.add_argument("--port", type=port_number, default=DEFAULT_PORT, help=f"port ({DEFAULT_PORT})")
    parser.add_argument("--jobs", type=Path, help="folder of the app's jobs (default results/app/jobs in the project)")
    add_workers_option(parser, "runs of each job the pages start (their default, changeable on the page)")
    parser.set_defaults(handler=serve)


def serve(args) -> int:
    check_port_free(args.host, args.port)
    os.environ["SOLARA_TELEMETRY_MIXPANEL_ENABLE"] = "False"      # read when solara is imported: set it first
    from sim.app.paths import JOBS_ENV, WORKERS_ENV

    os.environ[WORKERS_ENV] = str(args.workers)
    if args.jobs:
        os.environ[JOBS_ENV] = str(args.jobs.resolve())
    from solara.__main__ import run

    print(f"orgsim app: http://{args.host}:{args.port}/ (Ctrl-C stops it; running jobs go on)", flush=True)
    run.main(["sim.app.main", "--host", args.host, "--port", str(args.port), "--production", "--no-open",
              "--no-check-version"], standalone_mode=False)
    return 0


def check_port_free(host: str, port: int) -> None:
    """A taken port is a one-line error before the server starts (uvicorn would print a traceback)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)   # as uvicorn binds: closed connections do not count
        try:
            probe.bind((host, port))
        except OSError as error:
            raise InputError(f"--host {host} --port {port}: cannot listen there ({error.strerror}); choose another "
                             "--port") from None
