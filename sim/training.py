"""Lean for Leaders (L4L) cohorts and Advanced Lean Training (ALT), run by the KPO within its capacity."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.staff import COMPLETE, DROPPED, IN_PROGRESS, NONE

L4L_MODULES = 6                     # six assessed modules (Table 5.1 notes)
L4L_MONTHS = (9, 12)                # months to complete
COHORT_SIZE = (20, 30)              # participants per cohort
ALT_WEEKS = 12                      # 15 modules over 12 weeks
ALT_INTAKE_EVERY = 13               # weeks between ALT intakes (quarterly)
WEEKS_PER_MONTH = 52 / 12
# L4L is for leaders: relative chance of being put forward, by role (doctor, nurse/AHP, manager, support).
ROLE_NOMINATION_WEIGHT = np.array([2.0, 1.0, 3.0, 0.3])


@dataclass
class Cohort:
    id: int
    members: np.ndarray
    module_weeks: float     # weeks of teaching per module
    progress: float = 0.0   # effective teaching weeks so far
    modules_done: int = 0


class TrainingProgramme:
    def __init__(self, model):
        self.model = model
        self.cohorts: list[Cohort] = []
        self.l4l_due = 0.0
        self.alt_due = 0.0
        self.alt_intakes: list[tuple[int, np.ndarray]] = []  # (end week, members)
        self.cohort_sizes: list[int] = []
        self.dropouts = 0

    @property
    def active_cohorts(self) -> int:
        return len(self.cohorts)

    def step(self, week: int) -> None:
        m, ctx = self.model, self.model.ctx
        if ctx.programme_active[week]:
            capacity = m.kpo_capacity(week)
            self.l4l_due = min(self.l4l_due + ctx.l4l_cohorts_per_year[week] / 52.0, 1.0)
            max_cohorts = int(capacity * m.params["cohorts_per_kpo_member"])
            if self.l4l_due >= 1.0 and self.active_cohorts < max_cohorts:
                self._start_cohort()
                self.l4l_due -= 1.0
            self.alt_due += ctx.alt_places_per_year[week] / 52.0 * m.scale * min(capacity / max(ctx.kpo_staff[week], 1), 1)
            if week % ALT_INTAKE_EVERY == 0 and self.alt_due >= 1.0:
                self._start_alt(int(self.alt_due), week)
                self.alt_due -= int(self.alt_due)
        slowdown = m.params["covid_training_slowdown"] if ctx.covid[week] else 1.0
        for cohort in list(self.cohorts):
            cohort.progress += 1.0 / slowdown
            if cohort.progress >= (cohort.modules_done + 1) * cohort.module_weeks:
                self._complete_module(cohort, week)
        self._finish_alt(week)

    # -- L4L -----------------------------------------------------------------------------------
    def _start_cohort(self) -> None:
        m, s = self.model, self.model.staff
        eligible = np.flatnonzero(s.l4l == NONE)
        size = max(2, int(round(m.rng.integers(COHORT_SIZE[0], COHORT_SIZE[1] + 1) * m.scale)))
        size = min(size, len(eligible))
        if size < 2:
            return
        weight = ROLE_NOMINATION_WEIGHT[s.role[eligible]] * (0.2 + s.engagement[eligible])
        members = m.rng.choice(eligible, size=size, replace=False, p=weight / weight.sum())
        cohort = Cohort(id=len(self.cohort_sizes), members=members,
                        module_weeks=m.rng.uniform(*L4L_MONTHS) * WEEKS_PER_MONTH / L4L_MODULES)
        self.cohort_sizes.append(size)
        s.l4l[members] = IN_PROGRESS
        s.cohort[members] = cohort.id
        m.network.form_ties(members, int(m.params["cohort_ties"]), m.reciprocation, m.rng)
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
            self.cohorts.remove(cohort)

    # -- ALT -------------------------------------------------------------------------------------
    def _start_alt(self, places: int, week: int) -> None:
        m, s = self.model, self.model.staff
        eligible = np.flatnonzero(s.alt == NONE)
        places = min(places, len(eligible))
        if places == 0:
            return
        weight = s.capability[eligible] * (0.1 + s.engagement[eligible])
        members = m.rng.choice(eligible, size=places, replace=False, p=weight / weight.sum())
        s.alt[members] = IN_PROGRESS
        self.alt_intakes.append((week + ALT_WEEKS, members))

    def _finish_alt(self, week: int) -> None:
        s, p = self.model.staff, self.model.params
        for end, members in [x for x in self.alt_intakes if x[0] == week]:
            members = members[s.alt[members] == IN_PROGRESS]  # leavers' slots were reset
            s.alt[members] = COMPLETE
            s.capability[members] += p["alt_capability_gain"] * (1 - s.capability[members])
            s.practising[members] = True
        self.alt_intakes = [x for x in self.alt_intakes if x[0] > week]

