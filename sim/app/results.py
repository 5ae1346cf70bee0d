"""Results: open a finished sweep, sensitivity analysis, comparison, calibration report or job folder (under the
project's results/, calibration/ or docs/) and see its tables (CSV, JSON) and figures (PNG).

A folder name, picked or typed, becomes a path only through ``sim.app.paths.checked_folder``.
"""

from __future__ import annotations

from pathlib import Path

import solara

from sim.app.paths import BROWSABLE, PROJECT, checked_folder, result_folders
from sim.app.widgets import FieldError, Figure, Heading, Para, Table
from sim.errors import InputError

MAX_FIGURES = 24
MAX_TABLES = 12


def folder_contents(folder: Path) -> tuple[list[Path], list[Path]]:
    """The folder's figures and tables (its own files, not its subfolders'), manifest and summaries first."""
    files = sorted(path for path in folder.iterdir() if path.is_file())
    figures = [path for path in files if path.suffix == ".png"]
    tables = sorted((path for path in files if path.suffix in (".csv", ".json")),
                    key=lambda path: (path.name != "manifest.json", "summary" not in path.name, path.name))
    return figures, tables


@solara.component
def FolderView(folder: Path):
    figures, tables = folder_contents(folder)
    Heading(folder.relative_to(PROJECT).as_posix(), 3, classes=["folder-title"])
    subfolders = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if subfolders:
        Para("subfolders: " + ", ".join(subfolders))
    if not figures and not tables:
        Para("No tables or figures in this folder itself.")
    for path in figures[:MAX_FIGURES]:
        Figure(path, path.name)
    if len(figures) > MAX_FIGURES:
        Para(f"... and {len(figures) - MAX_FIGURES} more figures")
    for path in tables[:MAX_TABLES]:
        Table(path)
    if len(tables) > MAX_TABLES:
        Para(f"... and {len(tables) - MAX_TABLES} more tables")


@solara.component
def Page():
    folders = solara.use_memo(result_folders, [])
    chosen = solara.use_reactive(None)
    typed = solara.use_reactive("")
    error = solara.use_reactive("")

    def open_folder(name):
        try:
            folder = checked_folder(name)
        except InputError as exc:
            error.set(str(exc))
            return
        error.set("")
        chosen.set(folder.relative_to(PROJECT).as_posix())

    solara.Title("orgsim: results")
    with solara.Columns([1, 3]):
        with solara.Column():
            with solara.Card("Open a results folder", subtitle=f"under {', '.join(f'{b}/' for b in BROWSABLE)}"):
                solara.Select("folders with tables or figures", values=folders, value=chosen.value,
                              on_value=open_folder)
                solara.InputText("or type a folder (e.g. calibration/report_main)", value=typed,
                                 on_value=lambda v: (typed.set(v), open_folder(v)))
                FieldError([error.value] if error.value else [], "folder")
        with solara.Column():
            if chosen.value:
                FolderView(checked_folder(chosen.value))
            else:
                Para("Pick a folder: a sweep (results/<experiment>), a sensitivity analysis, a comparison "
                     "(results/compare/...), the calibration report (calibration/report_main), a readiness report "
                     "or a job of this app (results/app/jobs/...).")
