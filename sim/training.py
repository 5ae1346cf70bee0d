"""Lean for Leaders (L4L) cohorts and Advanced Lean Training (ALT), taught by the KPO (ODD 7.5).

Programme facts (Burgess et al. 2022, Table 5.1 notes): L4L is six assessed modules over 9-12
months in cohorts of 20-30; ALT is 15 modules over 12 weeks and prepares people to teach.
Teaching takes KPO time (sim/kpo.py): a cohort whose teaching is short of time progresses slower;
planned cohorts that the time cannot start wait (up to ``plan_backlog_years`` of the plan) and
start when time frees up.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim import relationships
from sim.staff import COMPLETE, DROPPED, IN_PROGRESS, NONE

L4L_MODULES = 6                     # six assessed modules (Table 5.1 notes)
L4L_MONTHS = (9, 12)                # months to complete
COHORT_SIZE = (20, 30)              # participants per cohort
ALT_WEEKS = 12                      # 15 modules over 12 weeks
ALT_INTAKE_EVERY = 13               # weeks between ALT intakes (quarterly; intakes may overlap)
WEEKS_PER_MONTH = 52 / 12


@dataclass
class Cohort:
    id: int
    members: np.ndarray
    facilitator: int        # the KPO member who teaches it (-1 if the KPO has nobody)
    module_weeks: float     # weeks of teaching per module
    progress: float = 0.0   # effective teaching weeks so far
    modules_done: int = 0


@dataclass
class AltIntake:
    members: np.ndarray
    progress: float = 0.0


class TrainingProgramme:
    def __init__(self, model):
        self.model = model
        self.cohorts: list[Cohort] = []
        self.alt_intakes: list[AltIntake] = []
        self.l4l_due = 0.0
        self.alt_due = 0.0
        self.cohort_sizes: list[int] = []
        self.dropouts = 0

    @property
    def active_cohorts(self) -> int:
        return len(self.cohorts)

    def teach(self, week: int) -> None:
        """Ongoing teaching, served first from the KPO's week."""
        m, p = self.model, self.model.params
        share = m.kpo.serve(p["kpo_fte_per_cohort"] * len(self.cohorts) + p["kpo_fte_per_alt_intake"] * len(self.alt_intakes))
        pace = share / (p["covid_training_slowdown"] if m.ctx.covid[week] else 1.0)
        for cohort in list(self.cohorts):
            cohort.progress += pace
            if cohort.progress >= (cohort.modules_done + 1) * cohort.module_weeks:
                self._complete_module(cohort, week)
        for intake in list(self.alt_intakes):
            intake.progress += share
            if intake.progress >= ALT_WEEKS:
                self._finish_alt(intake, week)

    def start_new(self, week: int) -> None:
        """New cohorts and ALT intakes, from the week's time left after ongoing work."""
        m, ctx, p = self.model, self.model.ctx, self.model.params
        if not ctx.programme_active[week]:
            return
        pace = ctx.l4l_cohorts_per_year[week]
        self.l4l_due = min(self.l4l_due + pace / 52.0, max(1.0, p["plan_backlog_years"] * pace))
        while self.l4l_due >= 1.0 and m.kpo.start(p["kpo_fte_per_cohort"]):
            self._start_cohort(week)
            self.l4l_due -= 1.0
        self.alt_due += ctx.alt_places_per_year[week] / 52.0 * m.scale
        if week % ALT_INTAKE_EVERY == 0 and self.alt_due >= 1.0 and m.kpo.start(p["kpo_fte_per_alt_intake"]):
            self._start_alt(int(self.alt_due))
            self.alt_due -= int(self.alt_due)

    # -- L4L -----------------------------------------------------------------------------------
    def _start_cohort(self, week: int) -> None:
        m, s, p = self.model, self.model.staff, self.model.params
        eligible = np.flatnonzero((s.l4l == NONE) & ~s.kpo)
        size = max(2, int(round(m.rng.integers(COHORT_SIZE[0], COHORT_SIZE[1] + 1) * m.scale)))
        size = min(size, len(eligible))
        if size < 2:
            return
        role_weight = np.array([p["nomination_weight_doctor"], 1.0, p["nomination_weight_manager"],
                                p["nomination_weight_support"]])     # ROLES order; nurse/AHP is the unit
        weight = role_weight[s.role[eligible]] * (p["nomination_engagement_offset"] + s.engagement[eligible])
        members = m.rng.choice(eligible, size=size, replace=False, p=weight / weight.sum())
        if m.ctx.ceo_l4l_due[week] and s.l4l[m.ceo_slot] == NONE:
            members = np.append(members, m.ceo_slot)     # the CEO joins as a member of the cohort
        kpo = np.flatnonzero(s.kpo)
        facilitator = int(m.rng.choice(kpo)) if len(kpo) else -1
        cohort = Cohort(id=len(self.cohort_sizes), members=members, facilitator=facilitator,
                        module_weeks=m.rng.uniform(*L4L_MONTHS) * WEEKS_PER_MONTH / L4L_MODULES)
        self.cohort_sizes.append(len(members))
        s.l4l[members] = IN_PROGRESS
        s.cohort[members] = cohort.id
        relationships.form_among(m.network, members, p["cohort_ties"], week, "cohort", m.rng)
        if facilitator >= 0:
            relationships.form_to(m.network, members, np.full(len(members), facilitator), week, "kpo")
        self.cohorts.append(cohort)

    def current_members(self, cohort: Cohort) -> np.ndarray:
        s = self.model.staff
        members = cohort.members
        return members[(s.cohort[members] == cohort.id) & (s.l4l[members] == IN_PROGRESS)]

    def _complete_module(self, cohort: Cohort, week: int) -> None:
        m, s, p = self.model, self.model.staff, self.model.params
        members = self.current_members(cohort)
        drop = p["dropout_per_module"] * (1 - s.engagement[members]) * (1 + p["pressure_dropout_factor"] * m.ctx.pressure[week])
        leaving = m.rng.random(len(members)) < drop
        s.l4l[members[leaving]] = DROPPED
        self.dropouts += int(leaving.sum())
        stay = members[~leaving]
        s.capability[stay] += p["module_capability_gain"] * (1 - s.capability[stay])
        cohort.modules_done += 1
        if cohort.modules_done == L4L_MODULES:
            s.l4l[stay] = COMPLETE
            starts = m.rng.random(len(stay)) < p["trained_practice_share"] * s.engagement[stay]
            s.practising[stay[starts]] = True
            m.hand_on_the_method(stay, week)
            self.cohorts.remove(cohort)

    # -- ALT -------------------------------------------------------------------------------------
    def _start_alt(self, places: int) -> None:
        m, s, p = self.model, self.model.staff, self.model.params
        eligible = np.flatnonzero((s.alt == NONE) & ~s.kpo)
        places = min(places, len(eligible))
        if places == 0:
            return
        weight = s.capability[eligible] * (p["nomination_engagement_offset"] + s.engagement[eligible])
        members = m.rng.choice(eligible, size=places, replace=False, p=weight / weight.sum())
        s.alt[members] = IN_PROGRESS
        self.alt_intakes.append(AltIntake(members))

    def _finish_alt(self, intake: AltIntake, week: int) -> None:
        m, s, p = self.model, self.model.staff, self.model.params
        members = intake.members[s.alt[intake.members] == IN_PROGRESS]  # leavers' slots were reset
        s.alt[members] = COMPLETE
        s.capability[members] += p["alt_capability_gain"] * (1 - s.capability[members])
        s.practising[members] = True
        source, target = relationships.teammates(members, p["alt_hub_ties"], s.team, m.team_first, m.team_sizes, m.rng)
        relationships.form_to(m.network, source, target, week, "alt_hub")   # graduates teach: hubs
        self.alt_intakes.remove(intake)
