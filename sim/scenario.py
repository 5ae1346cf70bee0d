"""Scenario files: one trust (or what-if) as a typed, documented, validated description.

A scenario holds everything that differs between organisations: size, culture, CEO timeline,
regulatory episodes, programme plan, inspection dates. Behavioural parameters are not here
(see sim/parameters.yaml). A scenario may name a ``base`` scenario and override some fields;
mappings merge recursively, lists and values replace.

Dates may be written as YYYY-MM-DD, YYYY-MM (first of the month) or YYYY (1 July, mid-year,
used where a source gives only the year).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from sim.errors import InputError, InputModel, UniqueKeyLoader, check_name, read_yaml, validation_message

SCENARIO_DIR = Path(__file__).resolve().parent.parent / "scenarios"
RATINGS = ("inadequate", "requires_improvement", "good", "outstanding")
EARLIEST, LATEST = dt.date(1990, 1, 1), dt.date(2100, 12, 31)


def _to_date(value):
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, int) and not isinstance(value, bool):
        value = dt.date(value, 7, 1)
    elif isinstance(value, str):
        parts = value.strip().split("-")
        try:
            nums = [int(p) for p in parts]
            value = dt.date(nums[0], 7, 1) if len(nums) == 1 else dt.date(*(nums + [1])[:3])
        except (ValueError, TypeError):
            raise ValueError(f"'{value}' is not a date (YYYY-MM-DD, YYYY-MM or YYYY)") from None
    if isinstance(value, dt.date) and not EARLIEST <= value <= LATEST:
        raise ValueError(f"date {value} is outside {EARLIEST.year}-{LATEST.year}")
    return value


Date = Annotated[dt.date, BeforeValidator(_to_date)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]


class Strict(InputModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Roles(Strict):
    """Share of staff in each role (must sum to 1). The defaults, an approximate acute-trust mix, are assumed
    (not published for these trusts) and the same for every trust that does not set them (ODD 6)."""
    doctor: Fraction = 0.15
    nurse_ahp: Fraction = 0.50
    manager: Fraction = 0.10
    support: Fraction = 0.25

    @model_validator(mode="after")
    def _sums_to_one(self):
        if abs(self.doctor + self.nurse_ahp + self.manager + self.support - 1.0) > 1e-6:
            raise ValueError("role shares must sum to 1")
        return self


class Network(Strict):
    """Structure of the initial work network. The defaults are assumed (not published for these trusts) and
    the same for every trust that does not set them (ODD 6)."""
    team_size: int = Field(25, ge=3, le=500, description="staff per team (ward/department)")
    team_ties: int = Field(4, ge=1, le=30, description="out-ties of each member to teammates")
    cross_team_ties: float = Field(1.0, ge=0, le=20, description="mean out-ties to other teams")
    directorate_teams: int = Field(8, ge=1, le=1000, description="teams per clinical directorate (consecutive "
                                   "teams; not published: about 200 staff at 25 per team), where leaders meet")


class Period(Strict):
    start: Date
    end: Date

    @model_validator(mode="after")
    def _ordered(self):
        if self.end < self.start:
            raise ValueError(f"period ends ({self.end}) before it starts ({self.start})")
        return self


class Culture(Strict):
    """Values-based cultural work (evidence 1.1): initial condition and ongoing lever."""
    values_work_years_before: float = Field(0.0, ge=0, le=20, description="years of values work before the run starts")
    values_work_during: Period | None = Field(None, description="values work done during the run (adds to the years as it goes)")
    values_based_recruitment: bool = False
    reflective_routines: bool = Field(False, description="formal routines of collective reflective talk")
    distributed_leadership: Fraction = Field(0.2, description="0 = all leadership at the top, 1 = fully distributed "
                                             "(clinical) leadership; default 0.2 (assumed: mostly at the top)")

    def levers(self) -> float:
        """Mean of the three ongoing levers that set SASH apart (evidence 1.1), 0-1; equal weights, because
        the evaluation names all three and ranks none above another."""
        return (self.values_based_recruitment + self.reflective_routines + self.distributed_leadership) / 3.0


class CeoChange(Strict):
    date: Date
    kind: Literal["permanent", "interim", "leave"]
    note: str = ""


class Leadership(Strict):
    ceo_in_post_since: Date
    changes: list[CeoChange] = []
    ceo_joins_l4l: Date | None = Field(None, description="date the CEO takes part in L4L")


class Episode(Period):
    """A dated regulatory episode. Every kind diverts capacity to compliance (pressure); the special
    measures regimes also bring turnaround support (an improvement director, partner trust,
    consultants), which regulatory action (warning notices, conditions) does not (ODD 7.1)."""
    kind: Literal["special_measures_quality", "special_measures_finance", "regulatory_action"]
    note: str = ""


class Regulation(Strict):
    style: Literal["relational", "traditional"] = "traditional"
    episodes: list[Episode] = []


class ProgrammeChange(Strict):
    """A dated change of the programme plan; unset fields keep their value."""
    date: Date
    l4l_cohorts_per_year: float | None = Field(None, ge=0, le=200)
    alt_places_per_year: float | None = Field(None, ge=0, le=1000)
    rpiws_per_year: float | None = Field(None, ge=0, le=200)
    kpo_staff: int | None = Field(None, ge=0, le=500)
    note: str = ""


class Programme(Strict):
    start: Date
    l4l_cohorts_per_year: float = Field(ge=0, le=200, description="planned L4L cohort starts per year")
    alt_places_per_year: float = Field(ge=0, le=1000, description="planned ALT places per year")
    rpiws_per_year: float = Field(ge=0, le=200, description="planned RPIW pace per year")
    kpo_staff: int = Field(ge=0, le=500, description="members of the central improvement team (KPO)")
    value_stream_selection: Literal["auto", "top_down", "bottom_up"] = Field(
        "auto", description="auto: the trust chooses by its culture when the programme starts and at each new "
                            "permanent CEO (ODD 7.6); top_down or bottom_up: a fixed decision, for what-ifs")
    changes: list[ProgrammeChange] = []


class Survey(Strict):
    """The December 2018 network survey of L4L participants (Table 5.3)."""
    date: Date
    respondents: int = Field(ge=1, le=10000)


class LeadTimeAudit(Strict):
    """The evaluation's paired lead-time measures (Table 7.2): it measured a sample of the RPIWs,
    not all of them, so the model's statistic is read from a random sample of the same size."""
    paired_rpiws: int = Field(ge=1, le=10000, description="RPIWs with baseline and 90-day lead time")


class Scenario(Strict):
    name: str = Field(min_length=1)
    description: str = ""
    base: str | None = None
    staff: int = Field(gt=0, le=500_000)
    start: Date
    end: Date
    roles: Roles = Roles()
    network: Network = Network()
    culture: Culture = Culture()
    leadership: Leadership
    regulation: Regulation = Regulation()
    programme: Programme
    covid_start: Date | None = None
    inspections: list[Date] = Field(default=[], description="CQC inspection dates at which a rating is read "
                                                           "(the pre-programme one included)")
    survey: Survey | None = None
    lead_time_audit: LeadTimeAudit | None = None

    @model_validator(mode="after")
    def _dates_consistent(self):
        if self.end <= self.start:
            raise ValueError(f"end ({self.end}) must be after start ({self.start})")
        if self.leadership.ceo_in_post_since > self.start:
            raise ValueError("leadership.ceo_in_post_since must be on or before start "
                             "(a later arrival is a leadership change)")
        for field, when in [("programme.start", self.programme.start),
                            *[(f"inspections[{i}]", d) for i, d in enumerate(self.inspections)],
                            *([("survey.date", self.survey.date)] if self.survey else [])]:
            if not self.start <= when <= self.end:
                raise ValueError(f"{field} ({when}) must lie between start ({self.start}) and end ({self.end})")
        return self

    @model_validator(mode="after")
    def _events_inside_run(self):
        """A dated event outside the run would be ignored, or applied from the first week, without a word."""
        dated = [("covid_start", self.covid_start), ("leadership.ceo_joins_l4l", self.leadership.ceo_joins_l4l),
                 *[(f"leadership.changes[{i}]", c.date) for i, c in enumerate(self.leadership.changes)],
                 *[(f"programme.changes[{i}]", c.date) for i, c in enumerate(self.programme.changes)]]
        for field, when in dated:
            if when is not None and not self.start <= when <= self.end:
                raise ValueError(f"{field} ({when}) must lie between start ({self.start}) and end ({self.end})")
        periods = [*[(f"regulation.episodes[{i}]", e) for i, e in enumerate(self.regulation.episodes)],
                   ("culture.values_work_during", self.culture.values_work_during)]
        for field, period in periods:
            if period is not None and (period.end < self.start or period.start > self.end):
                raise ValueError(f"{field} ({period.start} to {period.end}) must overlap the run "
                                 f"({self.start} to {self.end})")
        return self

    @field_validator("name")
    @classmethod
    def _name_fits_in_a_file_name(cls, name: str) -> str:
        return check_name(name)   # it names the trust's files in a run folder


def _find(name: str, relative_to: Path | None = None) -> Path:
    candidate = Path(name)
    if candidate.suffix in (".yaml", ".yml"):
        for path in ([relative_to / candidate] if relative_to else []) + [candidate]:
            if path.is_file():
                return path
    roots = [r for r in (relative_to, Path.cwd() / "scenarios", SCENARIO_DIR) if r is not None]
    for root in roots:
        for path in (root / f"{name}.yaml", root / "whatif" / f"{name}.yaml"):
            if path.is_file():
                return path
    known = sorted(p.stem for p in SCENARIO_DIR.glob("**/*.yaml"))
    raise InputError(f"scenario '{name}' not found; known scenarios: {', '.join(known)} "
                     "(or give a path to a .yaml file)")


class _DatesAsText(UniqueKeyLoader):
    """YAML loader that leaves dates as text, so that the schema (not PyYAML) validates them."""


_DatesAsText.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _read_yaml(path: Path) -> dict:
    raw = read_yaml(path, "scenario", loader=_DatesAsText)
    if not isinstance(raw, dict):
        raise InputError(f"{path}: a scenario file must be a mapping of fields")
    return raw


def deep_merge(base: dict, override: dict) -> dict:
    """``override`` laid over ``base``, mappings merged key by key. A list of dated entries (leadership or
    programme changes) is addressed by date: ``{"changes": {"2019-01-01": {"l4l_cohorts_per_year": 5}}}``
    sets one field of the change dated 2019-01-01, as a calibration's ``TRUST.programme.changes.DATE.field``
    does; a list given as a list replaces the whole list."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        elif isinstance(value, dict) and isinstance(merged.get(key), list):
            merged[key] = _merge_dated(merged[key], value, key)
        else:
            merged[key] = value
    return merged


def _merge_dated(entries: list, override: dict, field: str) -> list:
    merged = list(entries)
    dates = [str(entry.get("date")) if isinstance(entry, dict) else None for entry in entries]
    for date, changes in override.items():
        if str(date) not in dates:
            known = ", ".join(d for d in dates if d) or "none"
            raise InputError(f"field '{field}.{date}': no entry of '{field}' is dated {date}; dated entries: {known}")
        at = dates.index(str(date))
        merged[at] = deep_merge(merged[at], changes) if isinstance(changes, dict) else changes
    return merged


def _resolve(path: Path, seen: tuple[Path, ...] = ()) -> dict:
    if path.resolve() in seen:
        raise InputError(f"{path}: field 'base': circular base chain {' -> '.join(str(p) for p in seen)}")
    raw = _read_yaml(path)
    base = raw.get("base")
    if base is None:
        return raw
    if not isinstance(base, str):
        raise InputError(f"{path}: field 'base' must be the name of another scenario")
    try:
        base_path = _find(base, relative_to=path.parent)
    except InputError as exc:
        raise InputError(f"{path}: field 'base': {exc}") from None
    return deep_merge(_resolve(base_path, seen + (path.resolve(),)), raw)


def validate_scenario(raw: dict, source: str, field_prefix: str = "", note: str = "") -> Scenario:
    """The scenario, or an InputError naming ``source`` and each field (below ``field_prefix``), then ``note``."""
    try:
        return Scenario.model_validate(raw)
    except ValidationError as exc:
        raise InputError(f"{source}: {validation_message(exc, field_prefix)}{note}") from None


def load_scenario(name_or_path: str, overrides: dict | None = None, *, source: str | None = None,
                  field_prefix: str = "") -> Scenario:
    """Load, resolve ``base`` chains, apply ``overrides`` and validate a scenario.

    ``source`` names where the overrides come from (a file, with their place in it as ``field_prefix``):
    errors of the scenario file then name that file, errors of the overrides name ``source``."""
    path = _find(name_or_path)
    raw = _resolve(path)
    if not overrides:
        return validate_scenario(raw, str(path))
    if source is None:
        return validate_scenario(deep_merge(raw, overrides), str(path))
    validate_scenario(raw, str(path))
    return validate_scenario(deep_merge(raw, overrides), source, field_prefix, f" (applied to scenario {name_or_path})")


def check_run_end(scenario: Scenario, end: dt.date | None, where: str = "--end") -> None:
    """An early stop must fall inside the run: after its start (not a one-week run) and not after its end."""
    if end is not None and not scenario.start < end <= scenario.end:
        raise InputError(f"{where}: {end} is outside the run of {scenario.name} ({scenario.start} to {scenario.end}); "
                         "give a date after its start and on or before its end")
