"""From a leader's answers to a scenario: one documented rule per question, the levers and the risks.

**The calendar.** The model was calibrated on 2013-2021 and its quality index carries the NHS-wide decline
counted from October 2013 (ODD 7.8); run in 2030 that term alone would rate every trust inadequate. So an
organisation is simulated on the partnership's calendar: its programme starts on 1 July 2015 (``ANCHOR``),
the run starts two years earlier, as the five trusts' runs do (their history: CEO tenure, values work,
regulatory episodes), and every date the leader gives moves by the same offset. The report shows years
since the programme starts, and the leader's own dates.

**Rules** (question -> scenario field):

| question | scenario | rule |
| --- | --- | --- |
| staff | ``staff`` | as given |
| programme_start, horizon_years | ``start``, ``end``, ``programme.start``, ``inspections`` | programme at ``ANCHOR``; run from two years before to the horizon's end; a rating read at the start and every anniversary (``cqc_<year>``: programme year k is ANCHOR's year + k) |
| ceo_started | ``leadership.ceo_in_post_since`` or a ``permanent`` change | in post since then if that is before the run starts; a later arrival is a permanent change on that date, the predecessor assumed in post for five years before the run (settled) |
| ceo_change | ``leadership.changes`` | a permanent change on that date; an interim one on that date and a permanent successor 12 months later (as at SATH, 2019-2020) |
| ceo_joins_l4l | ``leadership.ceo_joins_l4l`` | as given (blank: never) |
| values_work_years, values_work_continues, culture_in_place: shared_values | ``culture.values_work_years_before``, ``culture.values_work_during`` | the years done (counted half if simple shared values are not yet in place: an assumption of this mapping, the work has not yet produced its core) end at the programme start; those within the two years before it run during the run, the rest before; work that continues goes on to the horizon's end |
| culture_in_place: values_based_recruitment, reflective_routines | ``culture.values_based_recruitment``, ``culture.reflective_routines`` | in place: true |
| distributed_leadership | ``culture.distributed_leadership`` | none 0.2 (the schema default: leadership at the top), partly 0.5 (the national culture-first what-ifs), in_place 0.8 (SASH, "clinically led, managerially enabled") |
| regulatory_position, regulatory_since, regulatory_until | ``regulation.episodes`` | one episode of that kind from ``since`` (blank: the run's start, two years before the programme) to ``until`` (blank: the horizon's end) |
| regulator_relationship | ``regulation.style`` | as given |
| improvement_team | ``programme.kpo_staff`` | as given |
| l4l_cohorts_per_year, alt_places_per_year, rpiws_per_year | ``programme.*`` | as given |
| value_streams | ``programme.value_stream_selection`` | top_down, bottom_up; not_decided: ``auto`` (the model chooses from the culture index, ODD 7.6) |
| network_survey | ``network.team_ties``, ``network.cross_team_ties`` | sim/readiness/network.py |
| staff_engagement | none | not a model input (engagement emerges from culture, leadership and pressure); shown in the readiness profile and beside the model's starting engagement |

No COVID-19, no survey emulation and no lead-time audit in an organisation's scenario.

**Levers** (``LEVERS``) are changes the leader controls, each by a stated, realistic step applied to the base
scenario (a what-if file with ``base:``); **risks** (``RISKS``) are what they do not control. Each has a
``size`` (1 = the stated step, 0 = no change: an arm identical to the base).
"""

from __future__ import annotations

import re

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from sim.readiness.profile import Profile, add_years
from sim.runner import TRUSTS
from sim.scenario import Scenario, validate_scenario

ANCHOR = dt.date(2015, 7, 1)      # the partnership's start: the organisation's programme starts here
HISTORY_YEARS = 2                 # the run starts this long before the programme (as the five trusts' runs)
PREDECESSOR_YEARS = 5             # a CEO who arrived during the history had a settled predecessor this long
INTERIM_YEARS = 1                 # an interim CEO is followed by a permanent one this much later
DISTRIBUTED = {"none": 0.2, "partly": 0.5, "in_place": 0.8}


@dataclass(frozen=True)
class Calendar:
    """Moves the leader's dates onto the model's calendar and back: by whole calendar months (so that the 1st of
    a month stays the 1st), less the days by which the programme starts after the 1st of its month."""
    programme_start: dt.date

    @property
    def months(self) -> int:
        return (ANCHOR.year - self.programme_start.year) * 12 + ANCHOR.month - self.programme_start.month

    @property
    def days(self) -> int:
        return self.programme_start.day - ANCHOR.day

    def to_model(self, date: dt.date) -> dt.date:
        return add_years(date, self.months / 12) - dt.timedelta(days=self.days)

    def to_real(self, date: dt.date) -> dt.date:
        return add_years(date + dt.timedelta(days=self.days), -self.months / 12)


def scenario_name(profile: Profile) -> str:
    """The organisation's name as a scenario name: one that can name a file (letters, digits, '_', '-', '.'),
    kept apart from the five trusts' (whose calibrated inputs would otherwise apply)."""
    name = file_safe(profile.organisation)
    return f"{name}_profile" if name in TRUSTS else name


def file_safe(text: str) -> str:
    """``text`` with every run of other characters turned into '_' (a scenario name names run files)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_.-")[:100]
    return safe or "organisation"


def values_work_years(profile: Profile) -> float:
    """Years of values work that count: half without simple shared values (see the rules)."""
    return profile.values_work_years * (1.0 if "shared_values" in profile.culture_in_place else 0.5)


def scenario_dict(profile: Profile, network: dict | None = None) -> dict:
    """The base scenario (a plain dict, as in a YAML file) on the model's calendar."""
    calendar = Calendar(profile.programme_start)
    start, end = add_years(ANCHOR, -HISTORY_YEARS), calendar.to_model(profile.end)
    culture = {"values_work_years_before": 0.0,
               "values_based_recruitment": "values_based_recruitment" in profile.culture_in_place,
               "reflective_routines": "reflective_routines" in profile.culture_in_place,
               "distributed_leadership": DISTRIBUTED[profile.distributed_leadership]}
    years = values_work_years(profile)
    if years > 0:
        during = min(years, HISTORY_YEARS)
        culture["values_work_years_before"] = round(years - during, 4)
        culture["values_work_during"] = {"start": add_years(ANCHOR, -during).isoformat(),
                                         "end": (end if profile.values_work_continues else ANCHOR).isoformat()}
    arrived = calendar.to_model(profile.ceo_started)
    changes = []
    if arrived > start:
        in_post_since = add_years(start, -PREDECESSOR_YEARS)
        changes.append({"date": arrived.isoformat(), "kind": "permanent", "note": "the current CEO arrives"})
    else:
        in_post_since = arrived
    if profile.ceo_change:
        when = calendar.to_model(profile.ceo_change.date)
        changes.append({"date": when.isoformat(), "kind": profile.ceo_change.kind, "note": "planned change"})
        successor = add_years(when, INTERIM_YEARS)
        if profile.ceo_change.kind == "interim" and successor <= end:
            changes.append({"date": successor.isoformat(), "kind": "permanent", "note": "permanent successor"})
    episodes = []
    if profile.regulatory_position != "none":
        since = max(calendar.to_model(profile.regulatory_since), start) if profile.regulatory_since else start
        until = min(calendar.to_model(profile.regulatory_until), end) if profile.regulatory_until else end
        episodes.append({"start": since.isoformat(), "end": until.isoformat(), "kind": profile.regulatory_position})
    raw = {
        "name": scenario_name(profile),
        "description": f"{profile.organisation}, from its readiness profile (sim/readiness/mapping.py); "
                       f"programme start {profile.programme_start} moved to {ANCHOR} (the model's calendar)",
        "staff": profile.staff,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "culture": culture,
        "leadership": {"ceo_in_post_since": in_post_since.isoformat(), "changes": changes,
                       "ceo_joins_l4l": calendar.to_model(profile.ceo_joins_l4l).isoformat()
                       if profile.ceo_joins_l4l else None},
        "regulation": {"style": profile.regulator_relationship, "episodes": episodes},
        "programme": {"start": ANCHOR.isoformat(), "kpo_staff": profile.improvement_team,
                      "l4l_cohorts_per_year": profile.l4l_cohorts_per_year,
                      "alt_places_per_year": profile.alt_places_per_year,
                      "rpiws_per_year": profile.rpiws_per_year,
                      "value_stream_selection": {"not_decided": "auto"}.get(profile.value_streams,
                                                                             profile.value_streams)},
        "inspections": [add_years(ANCHOR, k).isoformat() for k in range(profile.horizon_years + 1)],
    }
    if network:
        raw["network"] = network
    return raw


def build_scenario(profile: Profile, network: dict | None = None, source: str = "profile") -> Scenario:
    return validate_scenario(scenario_dict(profile, network), source)


# -- levers and risks -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Lever:
    """A change to the base scenario: ``apply(scenario dict, profile, size)`` returns the fields that change."""
    name: str
    label: str                    # what it is, in a leader's words
    step: str                     # the stated step at size 1
    kind: str                     # "lever" (the leader controls it) or "risk" (they do not)
    apply: Callable[[dict, Profile, float], dict]
    size: float = 1.0

    def changes(self, base: dict, profile: Profile) -> dict:
        return self.apply(base, profile, self.size) if self.size else {}

    def resized(self, size: float) -> Lever:
        return Lever(self.name, self.label, self.step, self.kind, self.apply, size)


def _culture_first(base: dict, profile: Profile, size: float) -> dict:
    """``size`` x 2 years of values work from the planned start, the programme starting that much later."""
    years = 2.0 * size
    launch = add_years(ANCHOR, years)
    end = dt.date.fromisoformat(base["end"])
    if launch >= end:
        launch = add_years(end, -1)
    during = base["culture"].get("values_work_during")
    work_from = dt.date.fromisoformat(during["start"]) if during else ANCHOR
    return {"culture": {"values_work_during": {"start": min(work_from, ANCHOR).isoformat(),
                                               "end": (end if profile.values_work_continues else launch).isoformat()}},
            "programme": {"start": launch.isoformat()}}


def _distributed(base: dict, profile: Profile, size: float) -> dict:
    now = base["culture"]["distributed_leadership"]
    return {"culture": {"distributed_leadership": round(now + size * max(DISTRIBUTED["in_place"] - now, 0), 4)}}


def _flag(field: str) -> Callable[[dict, Profile, float], dict]:
    return lambda base, profile, size: {"culture": {field: True}} if size >= 0.5 else {}


def _more_kpo(base: dict, profile: Profile, size: float) -> dict:
    """``size`` more KPO members per 1,000 staff (at least one for a positive size)."""
    extra = max(1, round(size * profile.staff / 1000)) if size > 0 else 0
    return {"programme": {"kpo_staff": base["programme"]["kpo_staff"] + extra}}


def _top_down(base: dict, profile: Profile, size: float) -> dict:
    return {"programme": {"value_stream_selection": "top_down"}}


def _slower_rpiws(base: dict, profile: Profile, size: float) -> dict:
    return {"programme": {"rpiws_per_year": round(base["programme"]["rpiws_per_year"] * (1 - 0.5 * size), 4)}}


def _more_l4l(base: dict, profile: Profile, size: float) -> dict:
    return {"programme": {"l4l_cohorts_per_year": base["programme"]["l4l_cohorts_per_year"] + size}}


def _ceo_in_l4l(base: dict, profile: Profile, size: float) -> dict:
    return {"leadership": {"ceo_joins_l4l": ANCHOR.isoformat()}}


def _ceo_leaves(base: dict, profile: Profile, size: float) -> dict:
    """An interim CEO 18 months after the start and a permanent successor a year later; or, if a change is
    planned, none after all."""
    if profile.ceo_change:
        return {"leadership": {"changes": [c for c in base["leadership"]["changes"] if c.get("note") != "planned change"
                                           and c.get("note") != "permanent successor"]}}
    leaves = add_years(ANCHOR, 1.5)
    return {"leadership": {"changes": [*base["leadership"]["changes"],
                                       {"date": leaves.isoformat(), "kind": "interim", "note": "risk: CEO leaves"},
                                       {"date": add_years(leaves, INTERIM_YEARS).isoformat(), "kind": "permanent",
                                        "note": "risk: permanent successor"}]}}


def _regulator(base: dict, profile: Profile, size: float) -> dict:
    """Under a regulatory episode: the other regulator style. Without one: regulatory action (traditional
    regulator) from one year after the start, for two years."""
    if base["regulation"]["episodes"]:
        other = "relational" if base["regulation"]["style"] == "traditional" else "traditional"
        return {"regulation": {"style": other}}
    begins = add_years(ANCHOR, 1)
    return {"regulation": {"style": "traditional", "episodes": [
        {"start": begins.isoformat(), "end": min(add_years(begins, 2), dt.date.fromisoformat(base["end"])).isoformat(),
         "kind": "regulatory_action"}]}}


LEVERS = (
    Lever("culture_first", "Cultural work first", "two years of values-based cultural work before launch (the "
          "programme starts two years later; the horizon's end stays)", "lever", _culture_first),
    Lever("distributed_leadership", "Distributed clinical leadership", "leadership distributed to clinicians "
          "(0.8 on the model's 0-1 scale, SASH's level)", "lever", _distributed),
    Lever("reflective_routines", "Reflective routines", "formal routines of collective reflective talk in place",
          "lever", _flag("reflective_routines")),
    Lever("values_based_recruitment", "Values-based recruitment", "recruitment by values in place", "lever",
          _flag("values_based_recruitment")),
    Lever("more_kpo", "A larger improvement team", "one more KPO member per 1,000 staff", "lever", _more_kpo),
    Lever("more_l4l", "More leaders trained", "one more L4L cohort a year", "lever", _more_l4l),
    Lever("top_down_value_streams", "Value streams from priorities", "value streams chosen top-down by the board, "
          "from organisational priorities", "lever", _top_down),
    Lever("slower_rpiws", "A slower RPIW pace", "half the planned RPIWs a year", "lever", _slower_rpiws),
    Lever("ceo_in_l4l", "The chief executive in L4L", "the chief executive joins the first L4L cohort", "lever",
          _ceo_in_l4l),
)
RISKS = (
    Lever("ceo_change", "A change of chief executive", "an interim chief executive 18 months after the start and a "
          "permanent successor a year later (if a change is planned: none after all)", "risk", _ceo_leaves),
    Lever("regulator", "The regulator", "under a regulatory position: the other regulator style; otherwise "
          "regulatory action by a traditional regulator from year 1 for two years", "risk", _regulator),
)


def lever_step(lever: Lever, profile: Profile) -> str:
    """The stated step as it applies to this organisation."""
    base = scenario_dict(profile)
    if lever.name == "more_kpo":
        extra = _more_kpo(base, profile, lever.size)["programme"]["kpo_staff"] - profile.improvement_team
        return f"{lever.step}: {profile.improvement_team} -> {profile.improvement_team + extra}"
    if lever.name == "regulator":
        if base["regulation"]["episodes"]:
            return f"the regulator worked {_regulator(base, profile, 1)['regulation']['style']}ly instead"
        return "a traditional regulator took regulatory action from year 1 for two years"
    if lever.name == "ceo_change":
        return ("the planned change of chief executive did not happen" if profile.ceo_change else
                "an interim chief executive took over 18 months after the start, and a permanent successor a year "
                "later")
    return lever.step if lever.size == 1 else f"{lever.step} (x {lever.size:g})"


def already_in_place(lever: Lever, profile: Profile) -> bool:
    """A lever whose step changes nothing for this organisation (e.g. reflective routines already in place)."""
    base = scenario_dict(profile)
    changes = lever.changes(base, profile)
    return not changes or _merged(base, changes) == base


def _merged(base: dict, changes: dict) -> dict:
    from sim.scenario import deep_merge

    return deep_merge(base, changes)


def write_arms(profile: Profile, levers, folder: Path, network: dict | None = None) -> list[tuple[Lever | None, Path]]:
    """The base scenario and one what-if file per lever or risk (``base:`` the base file) in ``folder``.

    Returns (lever, path) pairs, the base first with lever None. Every file is validated."""
    folder.mkdir(parents=True, exist_ok=True)
    base = scenario_dict(profile, network)
    base_path = folder / "base.yaml"
    base_path.write_text(yaml.safe_dump(base, sort_keys=False))
    validate_scenario(base, str(base_path))
    arms: list[tuple[Lever | None, Path]] = [(None, base_path)]
    for lever in levers:
        changes = lever.changes(base, profile)
        what_if = {"name": file_safe(f"{base['name']}__{lever.name}"), "base": "base.yaml",
                   "description": f"{lever.kind}: {lever_step(lever, profile)}", **changes}
        path = folder / f"{lever.kind}_{lever.name}.yaml"
        path.write_text(yaml.safe_dump(what_if, sort_keys=False))
        validate_scenario(_merged(base, changes), str(path))
        arms.append((lever, path))
    return arms


def kpo_per_thousand(profile: Profile) -> float:
    return profile.improvement_team / profile.staff * 1000

