"""The docs stay true to the code (every parameter and reporter is in docs/ODD.md) and the repository stands
alone (no file points outside it, every relative link in the docs resolves)."""

import re
import subprocess
from pathlib import Path

import pytest

from sim.params import PARAMETERS
from sim.reporters import REPORTERS

ODD = (Path(__file__).resolve().parent.parent / "docs" / "ODD.md").read_text()


def test_every_parameter_is_in_the_odd():
    missing = [name for name in PARAMETERS if name not in ODD]
    assert not missing, f"parameters missing from docs/ODD.md: {missing}"


def test_every_reporter_is_in_the_odd():
    missing = [name for name in REPORTERS if f"`{name}`" not in ODD]
    assert not missing, f"reporters missing from docs/ODD.md: {missing}"


def test_every_parameter_has_meaning_unit_range_and_reason():
    for spec in PARAMETERS.values():
        assert spec.meaning and spec.unit and spec.reason
        assert spec.low <= spec.value <= spec.high, spec.name


REPO = Path(__file__).resolve().parent.parent
OUTSIDE = "../" + "shared"   # spelled in two parts so that this file does not match itself


def tracked_files() -> list[Path]:
    try:
        listing = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        pytest.skip("not a git checkout")
    return [REPO / name for name in listing.stdout.decode().split("\0") if name]


def test_no_tracked_file_points_outside_the_repository():
    """A clone has nothing beside it: sources are cited as the published report (docs/evidence.md)."""
    offending = [str(path.relative_to(REPO)) for path in tracked_files()
                 if path.is_file() and OUTSIDE.encode() in path.read_bytes()]
    assert not offending, f"files pointing at {OUTSIDE}: {offending}"


def test_relative_links_in_the_docs_resolve():
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    broken = []
    for page in pages:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if not re.match(r"[a-z]+:", target) and not (page.parent / target).exists():
                broken.append(f"{page.relative_to(REPO)}: {target}")
    assert not broken, f"links to missing files: {broken}"


def test_every_command_has_the_one_workers_option():
    from sim.cli import build_parser

    commands = build_parser()._subparsers._group_actions[0].choices
    assert set(commands) >= {"run", "calibrate", "report", "sweep", "sensitivity", "compare"}
    runs_nothing = {"calibrate-truncate", "calibrate-progress", "calibrate-loto"}   # read a posterior or a database: nothing to spread
    for name, command in commands.items():
        workers = [a for a in command._actions if "--workers" in a.option_strings]
        if name in runs_nothing:
            assert not workers, name
            continue
        assert len(workers) == 1 and workers[0].default == 1, name
        assert "default 1" in workers[0].help, name
