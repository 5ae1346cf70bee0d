"""Run trusts and write run folders: the one entry point used by the CLI, calibration and sweeps.

A run is fixed by scenario + parameters + seed. Each trust's random stream is
``SeedSequence(seed, spawn_key=(trust_key(name),))``, so a trust gives the same result alone or
with others, in any order, on any worker.
"""

from __future__ import annotations

import ctypes
import datetime as dt
import errno
import glob
import json
import os
import shutil
import subprocess
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

import sim
from sim.errors import InputError
from sim.model import TrustModel
from sim.quality import rating_of, ratings_of
from sim.scenario import RATINGS, Scenario
from sim.survey import write_survey

TRUSTS = ("SASH", "LTHT", "UHCW", "SATH", "BHRUT")
TRAINING_CENSUS = dt.date(2021, 3, 31)   # Table 5.1
RPIW_CENSUS = dt.date(2019, 7, 31)       # Tables 7.1 and 7.2
L4L_SURVEY_CENSUS = dt.date(2018, 11, 30)     # Table 5.2: L4L participants invited, November 2018
NETWORK_SURVEY_CENSUS = dt.date(2018, 12, 1)  # Table 5.3: L4L participants invited, December 2018
# Months after the programme starts at which the headline outputs are also read, so that an organisation that is
# not one of the five (whose census dates mean nothing to it) gets real numbers: ``<output>_m<months>``.
HORIZON_MONTHS = (6, 12, 24, 36, 48)
HORIZON_SERIES = {"l4l_participants": "participants", "l4l_complete": "l4l_complete",
                  "practising_share": "practising_share", "rpiws": "rpiws", "quality": "quality"}


@dataclass
class RunResult:
    trust: str
    timeseries: pd.DataFrame
    summary: dict
    survey: dict | None = None          # the emulated December 2018 survey (sim/survey.py), if the run reached it
    seconds: float = 0.0


def trust_key(name: str) -> int:
    return zlib.crc32(name.encode())


def trust_seed(seed: int | np.random.SeedSequence, name: str) -> np.random.SeedSequence:
    """The random stream of one trust within a run of base ``seed``."""
    if isinstance(seed, np.random.SeedSequence):
        return seed
    return np.random.SeedSequence(int(seed), spawn_key=(trust_key(name),))


class _ValueAt:
    """``value_at(column, date)``: the value of ``column`` (a name in ``frame`` or a series of its length) in the
    last week on or before ``date`` (the last week if the run ends earlier); the dates read once per frame."""

    def __init__(self, frame: pd.DataFrame):
        self.frame = frame
        self.dates = frame["date"].to_numpy(dtype=str)    # weekly ISO dates sort as strings: no parsing

    def __call__(self, column: str | pd.Series, date: dt.date) -> float:
        series = self.frame[column] if isinstance(column, str) else column
        last_on_or_before = np.searchsorted(self.dates, date.isoformat(), side="right") - 1
        return float(series.iloc[max(int(last_on_or_before), 0)])


def horizon_date(start: dt.date, months: int) -> dt.date:
    """The date ``months`` calendar months after ``start`` (clipped to the month's last day)."""
    return (pd.Timestamp(start) + pd.DateOffset(months=months)).date()


def horizon_outputs(frame: pd.DataFrame, programme_start: dt.date) -> dict:
    """Headline outputs at 6, 12, 24, 36 and 48 months after the programme starts, and the CQC band of the
    quality index then (``cqc_band_m<months>``, as if inspected that week); None where the run ended before."""
    value_at = _ValueAt(frame)
    series = {name: frame[column] for name, column in HORIZON_SERIES.items() if column != "participants"}
    series["l4l_participants"] = frame["l4l_in_progress"] + frame["l4l_complete"]
    last = pd.Timestamp(frame["date"].iloc[-1]).date()
    outputs = {}
    for months in HORIZON_MONTHS:
        when = horizon_date(programme_start, months)
        reached = when <= last
        for name in HORIZON_SERIES:
            outputs[f"{name}_m{months}"] = value_at(series[name], when) if reached else None
        outputs[f"cqc_band_m{months}"] = rating_of(value_at("quality", when)) if reached else None
    return outputs


def summarise(model: TrustModel, frame: pd.DataFrame) -> dict:
    # drawn after the run, so the audit's sample never changes the simulated trajectory
    audit = model.trust.lead_time_audit
    measured = model.improvement.measured_by(
        (RPIW_CENSUS - model.trust.start).days // 7, sample=audit.paired_rpiws if audit else None, rng=model.rng)
    cqc = dict(model.cqc)
    latest = cqc[max(cqc)] if cqc else rating_of(model.quality)
    value_at = _ValueAt(frame)
    participants = frame["l4l_in_progress"] + frame["l4l_complete"]
    summary = {
        "trust": model.trust.name,
        "staff": model.trust.staff,
        "scale": model.scale,
        "weeks": len(frame),
        "l4l_participants_2018_11": value_at(participants, L4L_SURVEY_CENSUS),
        "l4l_participants_2018_12": value_at(participants, NETWORK_SURVEY_CENSUS),
        "l4l_complete_2021_03": value_at("l4l_complete", TRAINING_CENSUS),
        "l4l_in_progress_2021_03": value_at("l4l_in_progress", TRAINING_CENSUS),
        "alt_complete_2021_03": value_at("alt_complete", TRAINING_CENSUS),
        "alt_in_progress_2021_03": value_at("alt_in_progress", TRAINING_CENSUS),
        "value_streams_2019_07": value_at("value_streams", RPIW_CENSUS),
        "rpiws_2019_07": value_at("rpiws", RPIW_CENSUS),
        "rpiws_measured_2019_07": measured["n"],
        "lead_time_baseline_hours": measured["lead_time_baseline"],
        "lead_time_post_hours": measured["lead_time_post"],
        "lead_time_reduction": _reduction(measured["lead_time_baseline"], measured["lead_time_post"]),
        "defects_baseline": measured["defects_baseline"],
        "defects_post": measured["defects_post"],
        "defects_reduction": _reduction(measured["defects_baseline"], measured["defects_post"]),
        "rpiws_total": model.improvement.held,
        "rpiws_cancelled": model.improvement.cancelled,
        "value_stream_selection": model.value_stream_choices[0][1] if model.value_stream_choices else "none",
        "value_stream_choices": [list(choice) for choice in model.value_stream_choices],
        "quality_final": model.quality,
        "quality_contributions": dict(model.contributions_total),
        "engagement_mean_final": float(frame["engagement_mean"].iloc[-1]),
        "practising_share_final": float(frame["practising_share"].iloc[-1]),
        "morale_final": float(frame["morale_mean"].iloc[-1]),
        "leavers_total": float(frame["leavers"].iloc[-1]),
        "cqc": cqc,
        "inspection_dates": [d.isoformat() for d in model.trust.inspections if d <= model.date],
        "cqc_latest": latest,
        "cqc_latest_score": RATINGS.index(latest),
        "survey": model.survey["measures"] if model.survey else {},
        "programme_start": model.trust.programme.start.isoformat(),
        **horizon_outputs(frame, model.trust.programme.start),
    }
    return summary


def _reduction(baseline: float, post: float) -> float:
    return 1 - post / baseline if baseline else 0.0


def _caused_by_interrupt(error: BaseException) -> bool:
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, KeyboardInterrupt):
            return True
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return False


def simulate(scenario: Scenario, params: dict[str, float], seed: int | np.random.SeedSequence,
             scale: float = 1.0, end: dt.date | None = None,
             on_week: Callable[[], None] | None = None, census: tuple[str, ...] | None = None) -> RunResult:
    """Simulate one trust and return its weekly series, summary and survey network.

    ``on_week`` is called after every week (for progress bars). ``census``: the weekly series collected (all of
    sim.reporters.REPORTERS by default; at least SUMMARY_REPORTERS, which the summary reads)."""
    started = time.perf_counter()
    model = TrustModel(scenario, params, rng=np.random.default_rng(trust_seed(seed, scenario.name)),
                       scale=scale, end=end, census=census)
    while model.running:
        try:
            model.step()
        except SystemError as error:
            # a Ctrl-C that lands in one of numba's Python callbacks inside a compiled kernel comes out as a
            # SystemError chained to the KeyboardInterrupt: it is the interruption, and is handled as one
            if _caused_by_interrupt(error):
                raise KeyboardInterrupt from error
            raise
        if on_week:
            on_week()
    frame = model.datacollector.get_model_vars_dataframe().reset_index(names="week")
    frame.insert(0, "trust", scenario.name)
    frame["cqc_band"] = ratings_of(frame["quality"].to_numpy())
    return RunResult(scenario.name, frame, summarise(model, frame), model.survey, time.perf_counter() - started)


# -- run folders ------------------------------------------------------------------------------------
def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, timeout=5, cwd=Path(__file__).resolve().parent).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "") if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def manifest(scenarios: list[Scenario], params: dict, seed, scale: float, **extra) -> dict:
    return {
        "package": "orgsim",
        "version": sim.__version__,
        "git_commit": git_commit(),
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "seed": seed,
        "scale": scale,
        "scenarios": {s.name: s.model_dump(mode="json") for s in scenarios},
        "parameters": params,
        **extra,
    }


RUN_FOLDER_FILES = ("manifest.json", "timeseries.csv", "summary.json", "survey_network_*.csv", "*.png")


def check_out_path(out: Path, option: str = "--out") -> None:
    """Refuse an output path that is a file, or the current folder or one above it."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"{option} {out}: is a file, not a folder; give a folder (new, or one orgsim wrote)")
    here = Path.cwd().resolve()
    if out.resolve() in (here, *here.parents):
        raise InputError(f"{option} {out}: is the current folder or one above it, which a run cannot replace; "
                         "give a folder name, e.g. results/my-run")


class AtomicFolder:
    """Write into ``<out>.partial-<pid>`` and put it in place of ``out`` only when complete.

    A crash never leaves a folder that looks finished, and once ``out`` exists there is no moment
    without it: the finished folder is swapped with the old one in one step (Linux renameat2
    RENAME_EXCHANGE); elsewhere by two renames, and a run killed between them is undone by the next
    run. Only an empty folder or an orgsim run folder (an orgsim manifest.json and only the files a
    run writes) is replaced; any other folder is refused before the run starts, so nothing the run did
    not write is deleted. Partial folders of killed runs (their pid no longer alive) are removed."""

    def __init__(self, out: Path, option: str = "--out"):
        check_out_path(out, option)
        self.option = option
        self.out = Path(os.path.abspath(out))
        self.tmp = self.out.with_name(f"{self.out.name}.partial-{os.getpid()}")

    def __enter__(self) -> Path:
        try:
            self._clean_leftovers()
            self._check_replaceable()
            self.out.parent.mkdir(parents=True, exist_ok=True)
            self.tmp.mkdir()
        except OSError as exc:
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise InputError(f"{self.option} {self.out}: cannot create the folder "
                             f"({why_not_created(self.out, exc)})") from None
        return self.tmp

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return False
        if not self.out.exists():
            os.rename(self.tmp, self.out)
        elif _exchange(self.tmp, self.out):
            _remove(self.tmp)                   # now the old folder
        else:
            old = self.out.with_name(f"{self.out.name}.old-{os.getpid()}")
            os.rename(self.out, old)
            os.rename(self.tmp, self.out)
            _remove(old)
        return False

    def _check_replaceable(self) -> None:
        if not self.out.is_dir():
            return
        entries = sorted(self.out.iterdir())
        foreign = [p.name for p in entries if p.is_dir() or not any(p.match(g) for g in RUN_FOLDER_FILES)]
        if foreign:
            raise InputError(f"{self.option} {self.out}: the folder holds files that no orgsim run wrote "
                             f"({', '.join(foreign[:3])}{', ...' if len(foreign) > 3 else ''}); a run replaces its "
                             "whole folder: give a new or empty folder")
        if entries and not is_run_folder(self.out):
            raise InputError(f"{self.option} {self.out}: the folder is not an orgsim run folder (no orgsim "
                             "manifest.json); give a new or empty folder")

    def _clean_leftovers(self) -> None:
        """Partial folders of runs that were killed; an old folder whose replacement was cut short goes back."""
        for kind in ("partial", "old"):
            for leftover in self.out.parent.glob(f"{glob.escape(self.out.name)}.{kind}-*"):
                pid = leftover.name.rpartition("-")[2]
                if not pid.isdigit() or pid_alive(int(pid)):
                    continue
                if kind == "old" and not self.out.exists():
                    leftover.rename(self.out)
                else:
                    shutil.rmtree(leftover, ignore_errors=True)


def why_not_created(folder: Path, error: OSError) -> str:
    """The reason a folder could not be made: a file in the way, or the system's reason."""
    in_the_way = next((p for p in [folder, *folder.parents] if p.exists() and not p.is_dir()), None)
    return f"{in_the_way} is a file" if in_the_way else error.strerror or str(error)


def _remove(path: Path) -> None:
    """Delete a replaced folder (or, if ``--out`` was a link to one, only the link)."""
    if path.is_symlink():
        path.unlink()
    else:
        shutil.rmtree(path)


def is_run_folder(folder: Path) -> bool:
    try:
        return json.loads((folder / "manifest.json").read_text()).get("package") == "orgsim"
    except (OSError, ValueError, AttributeError):
        return False


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists (it may belong to another user)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


_RENAME_EXCHANGE, _AT_FDCWD = 2, -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths in one step (Linux renameat2); False where the system cannot."""
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    error = ctypes.get_errno()
    if error in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(error, os.strerror(error), str(b))


def write_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, indent=2, default=_json_default) + "\n")


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, (dt.date,)):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value)}")


def write_run(folder: Path, results: list[RunResult], run_manifest: dict) -> None:
    """Write a complete run folder's data files (plots are added by sim.plots)."""
    pd.concat([r.timeseries for r in results], ignore_index=True).to_csv(folder / "timeseries.csv", index=False)
    write_json(folder / "summary.json", {r.trust: r.summary for r in results})
    for r in results:
        if r.survey:
            write_survey(folder, r.trust, r.survey)
    run_manifest = dict(run_manifest, timings={r.trust: round(r.seconds, 3) for r in results})
    write_json(folder / "manifest.json", run_manifest)
