"""Where the app reads and writes, and the one check a folder name passes before it becomes a path.

The app works in the project folder (the checkout holding ``sim/``), whatever folder it was started from: it
reads the shipped calibration and scenarios there, writes its jobs under ``results/app/jobs/`` and shows only
folders under ``results/``, ``calibration/`` and ``docs/``.
"""

from __future__ import annotations

import os
from pathlib import Path

from sim.errors import InputError

PROJECT = Path(__file__).resolve().parents[2]
POSTERIOR = PROJECT / "calibration" / "posterior_main.csv"
SCENARIOS = PROJECT / "scenarios"
BROWSABLE = ("results", "calibration", "docs")
JOBS_ENV = "ORGSIM_APP_JOBS"          # set by `orgsim app --jobs DIR` for the server it starts
WORKERS_ENV = "ORGSIM_APP_WORKERS"    # set by `orgsim app --workers N`


def default_workers() -> int:
    """The pages' default --workers for a job (`orgsim app --workers N`), 1 to 2 (the machine's cores)."""
    text = os.environ.get(WORKERS_ENV, "1")
    return min(max(int(text), 1), 2) if text.isdigit() else 1


def jobs_dir() -> Path:
    return Path(os.environ.get(JOBS_ENV) or PROJECT / "results" / "app" / "jobs").resolve()


def trust_scenarios() -> list[str]:
    """The scenario files of scenarios/ (the five trusts and the generic trust), by name."""
    return sorted(path.stem for path in SCENARIOS.glob("*.yaml"))


def readiness_profiles() -> list[str]:
    """The example readiness profiles of scenarios/readiness/, by name."""
    return sorted(path.stem for path in (SCENARIOS / "readiness").glob("*.yaml"))


def checked_folder(name: str) -> Path:
    """The folder ``name`` (relative to the project, e.g. ``results/compare/x``) if it lies under results/,
    calibration/ or docs/ and exists; InputError otherwise. Symbolic links and '..' cannot lead out."""
    text = str(name).strip()
    if not text or "\x00" in text or Path(text).is_absolute():
        raise InputError(f"folder '{name}': give a folder under {', '.join(f'{b}/' for b in BROWSABLE)} of the project")
    folder = (PROJECT / text).resolve()
    roots = [(PROJECT / root).resolve() for root in BROWSABLE]
    if not any(folder == root or root in folder.parents for root in roots):
        raise InputError(f"folder '{name}': only folders under {', '.join(f'{b}/' for b in BROWSABLE)} of the "
                         "project can be opened")
    if not folder.is_dir():
        raise InputError(f"folder '{name}': no such folder")
    return folder


def result_folders() -> list[str]:
    """Folders under results/, calibration/ and docs/ that hold a table (csv, json) or a figure (png), relative to
    the project, sorted; the batch runner's own stores (runs/, series/) are left out."""
    found = set()
    for root in BROWSABLE:
        base = PROJECT / root
        if not base.is_dir():
            continue
        for path in base.rglob("*"):
            if path.suffix in (".csv", ".json", ".png") and path.is_file():
                folder = path.parent.relative_to(PROJECT)
                if not ({"runs", "series", "ensemble_runs"} & set(folder.parts)):
                    found.add(folder.as_posix())
    return sorted(found)
