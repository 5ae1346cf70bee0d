"""The readiness profile on the dimensions leaders know, each derived from the answers by a stated rule.

These are not the instruments' validated questionnaires: they place the answers on the instruments'
dimensions so that a board can read them in familiar terms. Each dimension is the mean of a few
components (each 0-1, listed with its value and where it comes from), shown as 0-100 and as weak
(below 34), partial (34-66) or strong (67 and above). The trajectory and the lever ranking come from the
model, not from these scores.

Components (``components``):

- values work: years of values work that count (mapping.values_work_years) / 2, at most 1 (the culture
  index saturates after ``values_work_saturation_years``, two years: the evaluation's "at least two years");
- shared values, values-based recruitment, reflective routines: 1 if in place;
- distributed leadership: none 0, partly 0.5, in place 1;
- CEO settled: the chief executive's years in post at the start / 2, at most 1;
- CEO stays: 1 with no planned change, 0.5 with a planned permanent change, 0 with an interim;
- regulatory freedom: 1 - the model's regulatory pressure at the start (1 under action by a traditional
  regulator, ``relational_pressure_factor`` under a relational one, 0 without a regulatory position);
- team size: KPO members per 1,000 staff / 2 (the five trusts' resourcing), at most 1;
- capacity for the plan: the KPO's time at the start (less what pressure diverts and turnaround
  consultants displace, ODD 7.5) / the time the planned work needs in steady state (L4L cohorts running
  ~10.5 months, ALT intakes of 12 weeks each quarter, RPIWs' 8 weeks of preparation and 17 weeks of
  follow-up, each at its ``kpo_fte_per_*`` parameter), at most 1;
- training reach: L4L leaders a year (cohorts x 25) per 1,000 staff / 10, at most 1 (SASH planned ~9);
- aligned value streams: 1 top-down (chosen, or the model's choice from a culture index at or above
  ``top_down_culture_threshold``), 0 bottom-up;
- staff engagement (if given): (NHS Staff Survey engagement score - 6.4) / 1.0, within 0-1 (acute trusts
  score about 6.4-7.4).

Instruments: ORIC (Shea et al. 2014: change commitment, change efficacy); MUSIQ (Kaplan et al. 2012:
external environment, organisation, microsystem, QI team and resources); NHS IMPACT (NHS England 2023: shared
purpose and vision, leadership behaviours, building capability and capacity, embedding improvement into
management systems, investing in culture and people); i-PARIHS context (Harvey and Kitson 2016: inner
local, inner organisational, outer).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.context import build_context, week_of
from sim.readiness.mapping import ANCHOR, kpo_per_thousand, values_work_years
from sim.readiness.profile import Profile
from sim.scenario import Scenario

L4L_COHORT_SIZE = 25          # mean of uniform 20-30 (ODD 7.5)
L4L_YEARS = 10.5 / 12         # six modules over 9-12 months
ALT_RUNNING = 4 * 12 / 52     # an intake every quarter, 12 weeks each
RPIW_PREPARATION_YEARS, RPIW_FOLLOW_UP_YEARS = 8 / 52, 17 / 52


@dataclass(frozen=True)
class Component:
    name: str
    value: float       # 0-1
    source: str        # where it comes from, in words


@dataclass(frozen=True)
class Dimension:
    instrument: str
    name: str
    parts: tuple[str, ...]
    score: float        # 0-100
    derivation: str

    @property
    def level(self) -> str:
        return "strong" if self.score >= 67 else "partial" if self.score >= 34 else "weak"


def model_reading(profile: Profile, scenario: Scenario, params: dict) -> dict:
    """What the model reads at the programme start: culture index, pressure, support, CEO tenure, KPO time and
    the planned work's need for it, the value-stream choice."""
    ctx = build_context(scenario, params)
    week = week_of(scenario, ANCHOR)
    culture = float(ctx.culture[week])
    available = float(ctx.kpo_staff[week] * (1 - params["kpo_diversion"] * ctx.pressure[week])
                      * (1 - params["turnaround_kpo_displacement"] * ctx.turnaround_support[week]))
    need = (profile.l4l_cohorts_per_year * L4L_YEARS * params["kpo_fte_per_cohort"]
            + (ALT_RUNNING * params["kpo_fte_per_alt_intake"] if profile.alt_places_per_year > 0 else 0.0)
            + profile.rpiws_per_year * (RPIW_PREPARATION_YEARS * params["kpo_fte_per_rpiw_preparation"]
                                        + RPIW_FOLLOW_UP_YEARS * params["kpo_fte_per_rpiw_followup"]))
    choice = scenario.programme.value_stream_selection
    if choice == "auto":
        choice = "top_down" if culture >= params["top_down_culture_threshold"] else "bottom_up"
    return {"culture_index": culture, "pressure": float(ctx.pressure[week]),
            "turnaround_support": float(ctx.turnaround_support[week]),
            "ceo_years_in_post": float(ctx.ceo_tenure[week]) / 52.0, "kpo_fte_available": available,
            "kpo_fte_needed": need, "value_streams": choice, "value_streams_chosen_by_model":
            scenario.programme.value_stream_selection == "auto",
            "top_down_threshold": params["top_down_culture_threshold"]}


def components(profile: Profile, reading: dict) -> dict[str, Component]:
    in_place = set(profile.culture_in_place)
    years = values_work_years(profile)
    ceo_stays = 1.0 if not profile.ceo_change else 0.5 if profile.ceo_change.kind == "permanent" else 0.0
    capacity = min(reading["kpo_fte_available"] / reading["kpo_fte_needed"], 1.0) if reading["kpo_fte_needed"] else 1.0
    reach = profile.l4l_cohorts_per_year * L4L_COHORT_SIZE / profile.staff * 1000
    parts = [
        Component("values work", min(years / 2.0, 1.0), f"{profile.values_work_years:g} year(s) of values work"
                  + ("" if "shared_values" in in_place or not profile.values_work_years else ", counted half "
                     "(no simple shared values yet)")),
        Component("shared values", float("shared_values" in in_place), "simple shared values in place"
                  if "shared_values" in in_place else "no simple shared values"),
        Component("values-based recruitment", float("values_based_recruitment" in in_place),
                  "in place" if "values_based_recruitment" in in_place else "not in place"),
        Component("reflective routines", float("reflective_routines" in in_place),
                  "in place" if "reflective_routines" in in_place else "not in place"),
        Component("distributed leadership", {"none": 0.0, "partly": 0.5, "in_place": 1.0}[profile.distributed_leadership],
                  f"distributed clinical leadership: {profile.distributed_leadership.replace('_', ' ')}"),
        Component("CEO settled", min(reading["ceo_years_in_post"] / 2.0, 1.0),
                  f"chief executive {reading['ceo_years_in_post']:.1f} years in post at the start"),
        Component("CEO stays", ceo_stays, "no change planned" if not profile.ceo_change else
                  f"{profile.ceo_change.kind} change planned {profile.ceo_change.date:%b %Y}"),
        Component("regulatory freedom", 1.0 - reading["pressure"],
                  "no regulatory position" if profile.regulatory_position == "none" else
                  f"{profile.regulatory_position.replace('_', ' ')}, {profile.regulator_relationship} regulator "
                  f"(pressure {reading['pressure']:.2g})"),
        Component("team size", min(kpo_per_thousand(profile) / 2.0, 1.0),
                  f"{profile.improvement_team} KPO members, {kpo_per_thousand(profile):.1f} per 1,000 staff"),
        Component("capacity for the plan", capacity, f"{reading['kpo_fte_available']:.1f} FTE of KPO time for "
                  f"{reading['kpo_fte_needed']:.1f} FTE of planned work"),
        Component("training reach", min(reach / 10.0, 1.0), f"{reach:.1f} L4L leaders a year per 1,000 staff"),
        Component("aligned value streams", float(reading["value_streams"] == "top_down"),
                  f"value streams {reading['value_streams'].replace('_', '-')}"
                  + (f" (the model's choice: culture index {reading['culture_index']:.2f} "
                     f"{'>=' if reading['value_streams'] == 'top_down' else '<'} {reading['top_down_threshold']:g})"
                     if reading["value_streams_chosen_by_model"] else " (chosen)")),
    ]
    if profile.staff_engagement is not None:
        parts.append(Component("staff engagement", float(np.clip((profile.staff_engagement - 6.4) / 1.0, 0, 1)),
                               f"NHS Staff Survey engagement {profile.staff_engagement:g}"))
    return {part.name: part for part in parts}


ENGAGEMENT = "staff engagement"
DIMENSIONS = (
    ("ORIC", "change commitment", ("values work", "shared values", "CEO settled", "CEO stays", ENGAGEMENT)),
    ("ORIC", "change efficacy", ("capacity for the plan", "team size", "distributed leadership", "regulatory freedom")),
    ("MUSIQ", "external environment", ("regulatory freedom",)),
    ("MUSIQ", "organisation", ("CEO settled", "CEO stays", "values work", "shared values", "values-based recruitment")),
    ("MUSIQ", "microsystem", ("distributed leadership", "reflective routines")),
    ("MUSIQ", "QI team and resources", ("team size", "capacity for the plan")),
    ("NHS IMPACT", "shared purpose and vision", ("values work", "shared values")),
    ("NHS IMPACT", "leadership behaviours", ("CEO settled", "CEO stays", "distributed leadership")),
    ("NHS IMPACT", "building capability and capacity", ("team size", "capacity for the plan", "training reach")),
    ("NHS IMPACT", "embedding into management systems", ("aligned value streams", "reflective routines")),
    ("NHS IMPACT", "investing in culture and people", ("values-based recruitment", "reflective routines", ENGAGEMENT)),
    ("i-PARIHS", "inner context: local", ("distributed leadership", "reflective routines")),
    ("i-PARIHS", "inner context: organisational", ("CEO settled", "CEO stays", "values work", "shared values",
                                                  "team size")),
    ("i-PARIHS", "outer context", ("regulatory freedom",)),
)


def readiness_dimensions(profile: Profile, reading: dict) -> list[Dimension]:
    parts = components(profile, reading)
    dimensions = []
    for instrument, name, wanted in DIMENSIONS:
        used = [parts[p] for p in wanted if p in parts]     # staff engagement only when given
        score = 100 * float(np.mean([p.value for p in used]))
        derivation = "mean of " + "; ".join(f"{p.name} {p.value:.2f} ({p.source})" for p in used)
        dimensions.append(Dimension(instrument, name, tuple(p.name for p in used), score, derivation))
    return dimensions
