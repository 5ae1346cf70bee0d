"""Shared helpers (no tests here) for the experiment tests: tiny experiment files, the CLI in or out of process."""

import contextlib
import io
import signal
import subprocess
import sys
from pathlib import Path

import yaml

from sim.experiments.__main__ import main

REPO = Path(__file__).resolve().parents[1]
TINY = {"scale": 0.02, "end": "2016-01-01"}


def write_experiment(directory: Path, **fields) -> Path:
    """An experiment file with tiny defaults; ``fields`` override them."""
    data = {"name": "tiny", "scenarios": ["SATH"], **TINY,
            "outputs": {"final": ["quality_final", "engagement_mean_final", "cqc_latest_score"]}, **fields}
    path = directory / f"{data['name']}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def run_cli(*args) -> subprocess.CompletedProcess:
    """The experiment subcommands in this process (as ``python -m sim.experiments``): exit code and output."""
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main([str(arg) for arg in args])
    return subprocess.CompletedProcess(args, code, stdout.getvalue(), stderr.getvalue())


def run_cli_process(*args) -> subprocess.CompletedProcess:
    """``python -m sim.experiments ...`` in a child process: its real exit code, stdout and stderr."""
    return subprocess.run([sys.executable, "-m", "sim.experiments", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)


def _default_sigint() -> None:
    # a shell without job control starts background jobs ignoring SIGINT, and Python then never
    # turns Ctrl-C into KeyboardInterrupt: give the child the default, as a terminal would
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_cli(*args, **kwargs) -> subprocess.Popen:
    """The experiment subcommands in a child process, to interrupt or kill."""
    return subprocess.Popen([sys.executable, "-m", "sim.experiments", *map(str, args)], cwd=REPO,
                            preexec_fn=_default_sigint, **kwargs)
