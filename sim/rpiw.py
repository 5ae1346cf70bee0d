"""Value streams, their processes, and Rapid Process Improvement Workshops (RPIWs).

An RPIW is planned 8 weeks ahead, may be cancelled under regulatory pressure or COVID-19, and
when held redesigns the next process of the current value stream: it removes a share of the
process's waste that depends on the team's capability and engagement. The KPO and the team
follow the new process up at 30, 60, 90 and 120 days, which holds the gain; after that it relapses
unless daily management (practising staff in the owning team) sustains it.
"""

from __future__ import annotations

import numpy as np

PREPARATION_WEEKS = 8               # RPIWs are prepared for about 8 weeks
MEASURED_AFTER_WEEKS = 13           # lead time re-measured at 90 days (Table 7.2)
SUSTAINED_WEEKS = 17                # follow-ups at 30/60/90/120 days hold the gain (VMI method)
TEAM_SIZE = (6, 10)                 # temporary cross-functional team
# Baseline process lead time: lognormal; only sets the scale of summed hours, not the fractions.
LEAD_TIME_MEDIAN_HOURS = 30.0
LEAD_TIME_LOG_SD = 1.0
WASTE_CONCENTRATION = 10.0          # Beta(mean * k, (1 - mean) * k) for a process's waste share


class ImprovementWork:
    def __init__(self, model):
        self.model = model
        self.due = 0.0
        self.scheduled: list[int] = []         # weeks at which planned RPIWs fall due
        self.cancelled = 0
        self.value_streams = 0
        self.processes_left = 0                # unimproved processes in the current value stream
        self.alignment = 1.0 if model.trust.programme.value_stream_selection == "top_down" \
            else model.params["bottom_up_alignment"]
        # one entry per RPIW held
        self.week_held: list[int] = []
        self.owner_team: list[int] = []
        self.baseline: list[float] = []
        self.removed: list[float] = []         # hours of lead time currently removed
        self.post_90: list[float] = []         # lead time 90 days after the workshop (nan until then)

    @property
    def held(self) -> int:
        return len(self.week_held)

    def step(self, week: int) -> None:
        m, ctx = self.model, self.model.ctx
        if ctx.programme_active[week] and not ctx.covid[week]:
            self.due = min(self.due + ctx.rpiws_per_year[week] / 52.0, 1.0)
            # each RPIW in preparation takes KPO time: the KPO caps how many are prepared at once
            max_in_preparation = int(m.kpo_capacity(week) * m.params["rpiw_preparations_per_kpo_member"])
            if self.due >= 1.0 and len(self.scheduled) < max_in_preparation:
                self.scheduled.append(week + PREPARATION_WEEKS)
                self.due -= 1.0
        for _ in range(self.scheduled.count(week)):
            stand_down = ctx.covid[week] or m.rng.random() < m.params["rpiw_cancel_pressure"] * ctx.pressure[week]
            if stand_down:
                self.cancelled += 1
            else:
                self._hold(week)
        self.scheduled = [w for w in self.scheduled if w > week]
        self._relapse(week)

    def _next_process(self) -> None:
        if self.processes_left == 0:
            self.value_streams += 1
            self.processes_left = 1 + self.model.rng.poisson(self.model.params["processes_per_value_stream"] - 1)
        self.processes_left -= 1

    def _team(self) -> tuple[int, np.ndarray]:
        m, s = self.model, self.model.staff
        home = int(m.rng.integers(0, m.n_teams))
        # at reduced scale the team shrinks with the staff (stochastic rounding), so that the share
        # of staff who have taken part in an RPIW is the same as at full scale
        size = m.rng.integers(TEAM_SIZE[0], TEAM_SIZE[1] + 1) * m.scale
        size = max(1, int(size) + int(m.rng.random() < size - int(size)))
        # selected for process knowledge and influence: half from the owning team, half across
        local = np.flatnonzero(s.team == home)
        pick_local = m.rng.choice(local, size=min(max(size // 2, 1), len(local)), replace=False)
        others = m.rng.choice(s.n, size=size - len(pick_local), replace=False,
                              p=(s.capability + 0.05) / (s.capability + 0.05).sum())
        return home, np.unique(np.concatenate([pick_local, others]))

    def _hold(self, week: int) -> None:
        m, s, p = self.model, self.model.staff, self.model.params
        self._next_process()
        home, team = self._team()
        mean_waste = p["process_waste_share"]
        waste = m.rng.beta(mean_waste * WASTE_CONCENTRATION, (1 - mean_waste) * WASTE_CONCENTRATION)
        readiness = (s.capability[team].mean() + s.engagement[team].mean()) / 2
        sensitivity = p["rpiw_context_sensitivity"]
        # context acts through the team's readiness (pressure lowers engagement) and through
        # cancellations, not on a workshop once held: process gains were real everywhere (evidence 1.5)
        effect = p["rpiw_effect"] * (1 - sensitivity + sensitivity * readiness)
        baseline = LEAD_TIME_MEDIAN_HOURS * np.exp(LEAD_TIME_LOG_SD * m.rng.standard_normal())
        self.week_held.append(week)
        self.owner_team.append(home)
        self.baseline.append(baseline)
        self.removed.append(baseline * waste * min(effect, 1.0))
        self.post_90.append(np.nan)
        s.capability[team] += p["rpiw_capability_gain"] * (1 - s.capability[team])
        s.engagement[team] = np.minimum(s.engagement[team] + p["rpiw_engagement_gain"], 1.0)
        starts = m.rng.random(len(team)) < p["trained_practice_share"] * s.engagement[team]
        s.practising[team[starts]] = True
        m.network.form_ties(team, int(p["rpiw_ties"]), m.reciprocation, m.rng)

    def _relapse(self, week: int) -> None:
        if not self.week_held:
            return
        m, p = self.model, self.model.params
        sustain = m.team_practising_share()[np.asarray(self.owner_team)]
        if m.ctx.covid[week]:
            sustain = np.minimum(sustain * (1 + p["covid_daily_management_boost"]), 1.0)
        followed_up = week - np.asarray(self.week_held) <= SUSTAINED_WEEKS
        sustain = np.where(followed_up, 1.0, sustain)
        removed = np.asarray(self.removed) * (1 - p["relapse_rate"] * (1 - sustain))
        self.removed = list(removed)
        due = np.flatnonzero(np.asarray(self.week_held) == week - MEASURED_AFTER_WEEKS)
        for i in due:
            self.post_90[i] = self.baseline[i] - self.removed[i]

    def aligned_gain_per_1000_staff(self, staff: int) -> float:
        """Aligned fraction of lead time currently removed, summed over processes, per 1000 staff."""
        if not self.week_held:
            return 0.0
        fraction = np.asarray(self.removed) / np.asarray(self.baseline)
        return float(self.alignment * fraction.sum() / (staff / 1000.0))

    def lead_time_by(self, week: int, sample: int | None = None,
                     rng: np.random.Generator | None = None) -> tuple[float, float, int]:
        """Summed baseline and 90-day lead time of RPIWs held by ``week`` (current value if the
        90 days are not over at the end of the run), and their number. With ``sample``, only that
        many of them, drawn at random with ``rng``, as an evaluation measuring some RPIWs would."""
        held = np.flatnonzero(np.asarray(self.week_held) <= week)
        if not len(held):
            return 0.0, 0.0, 0
        if sample is not None and sample < len(held):
            held = np.sort(rng.choice(held, size=sample, replace=False))
        baseline = np.asarray(self.baseline)[held]
        post = np.asarray(self.post_90)[held]
        current = baseline - np.asarray(self.removed)[held]
        post = np.where(np.isnan(post), current, post)
        return float(baseline.sum()), float(post.sum()), len(held)
