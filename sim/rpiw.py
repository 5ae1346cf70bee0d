"""Value streams, their processes, and Rapid Process Improvement Workshops (RPIWs) (ODD 7.6).

An RPIW is prepared for about 8 weeks of KPO-supported work (sim/kpo.py: short of time, preparation
goes slower), may be stood down under regulatory pressure or COVID-19, and when held redesigns the
next process of the current value stream: it removes a share of the process's waste, in lead time
and in defects alike, that depends on the team's capability and engagement. The KPO and the team
follow the new process up at 30, 60, 90 and 120 days, which holds the gain as far as the KPO has
time for it; after that it relapses unless daily management (practising staff in the owning team)
sustains it. How far gains reach organisational performance depends on how value streams were
chosen (top-down, aligned with priorities, or bottom-up; evidence 1.5).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim import relationships

PREPARATION_WEEKS = 8               # RPIWs are prepared for about 8 weeks (Table 7 notes)
MEASURED_AFTER_WEEKS = 13           # lead time re-measured at 90 days (Table 7.2)
SUSTAINED_WEEKS = 17                # follow-ups at 30/60/90/120 days (VMI method)
# Baseline process lead time per RPIW, Table 7.3: mean 3,569 minutes, standard error 829 over 82
# RPIWs, so a standard deviation of 829 x sqrt(82) and a coefficient of variation of 2.1; drawn
# lognormal with that mean and coefficient of variation.
LEAD_TIME_MEAN_HOURS = 3569 / 60
LEAD_TIME_CV = 829 * np.sqrt(82) / 3569
LEAD_TIME_LOG_SD = float(np.sqrt(np.log(1 + LEAD_TIME_CV ** 2)))
# Baseline defects per process are not published; only the share removed is read, so the scale is
# arbitrary (defects per 100 cases) and the spread is the lead time's.
DEFECTS_MEAN = 10.0


def lognormal_with_mean(rng: np.random.Generator, mean: float, log_sd: float) -> float:
    return float(mean * np.exp(log_sd * rng.standard_normal() - log_sd ** 2 / 2))


@dataclass
class Preparation:
    progress: float = 0.0   # effective weeks of supported preparation


class ImprovementWork:
    def __init__(self, model):
        self.model = model
        self.due = 0.0
        self.preparing: list[Preparation] = []
        self.cancelled = 0
        self.value_streams = 0
        self.processes_left = 0                # unimproved processes in the current value stream
        # one entry per RPIW held (arrays: read every week, appended a few dozen times a run)
        self.week_held = np.empty(0, dtype=int)
        self.owner_team = np.empty(0, dtype=int)
        self.aligned = np.empty(0, dtype=bool)   # chosen top-down (aligned with organisational priorities)
        self.baseline = np.empty(0)              # lead time, hours
        self.removed = np.empty(0)               # hours of lead time currently removed
        self.post_90 = np.empty(0)               # lead time 90 days after the workshop (nan until then)
        self.defects_baseline = np.empty(0)
        self.defects_removed = np.empty(0)
        self.defects_post_90 = np.empty(0)

    @property
    def held(self) -> int:
        return len(self.week_held)

    def follow_up_and_prepare(self, week: int) -> None:
        """Ongoing RPIW work, served from the KPO's week after teaching: follow-ups, then preparations."""
        m, p = self.model, self.model.params
        followed = self._in_follow_up(week)
        follow_share = m.kpo.serve(p["kpo_fte_per_rpiw_followup"] * int(followed.sum()))
        prep_share = m.kpo.serve(p["kpo_fte_per_rpiw_preparation"] * len(self.preparing))
        for prep in self.preparing:
            prep.progress += prep_share
        for prep in [x for x in self.preparing if x.progress >= PREPARATION_WEEKS]:
            self.preparing.remove(prep)
            stand_down = m.ctx.covid[week] or m.rng.random() < p["rpiw_cancel_pressure"] * m.ctx.pressure[week]
            if stand_down:
                self.cancelled += 1
            else:
                self._hold(week)
        self._relapse(week, follow_share)

    def plan_new(self, week: int) -> None:
        """New preparations from the plan's pace, with the KPO's time left (no new RPIW work under COVID-19)."""
        m, ctx, p = self.model, self.model.ctx, self.model.params
        if not ctx.programme_active[week] or ctx.covid[week]:
            return
        pace = ctx.rpiws_per_year[week]
        self.due = min(self.due + pace / 52.0, max(1.0, p["plan_backlog_years"] * pace))
        while self.due >= 1.0 and m.kpo.start(p["kpo_fte_per_rpiw_preparation"]):
            self.preparing.append(Preparation())
            self.due -= 1.0

    def _in_follow_up(self, week: int) -> np.ndarray:
        return week - self.week_held <= SUSTAINED_WEEKS

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
        size = (m.rng.integers(-2, 3) + m.params["rpiw_team_size"]) * m.scale   # mean, give or take 2
        size = max(1, int(size) + int(m.rng.random() < size - int(size)))
        # selected for process knowledge and influence: half from the owning team, half across, in proportion
        # to capability + 0.05 (nobody's chance is zero: a newcomer is drawn about an eighth as often as a KPO member)
        local = np.flatnonzero(s.team == home)
        pick_local = m.rng.choice(local, size=min(max(size // 2, 1), len(local)), replace=False)
        others = m.rng.choice(s.n, size=size - len(pick_local), replace=False,
                              p=(s.capability + 0.05) / (s.capability + 0.05).sum())
        return home, np.unique(np.concatenate([pick_local, others]))

    def _waste_share(self, mean: float) -> float:
        k = self.model.params["waste_share_concentration"]
        return float(self.model.rng.beta(mean * k, (1 - mean) * k))

    def _hold(self, week: int) -> None:
        m, s, p = self.model, self.model.staff, self.model.params
        self._next_process()
        home, team = self._team()
        readiness = (s.capability[team].mean() + s.engagement[team].mean()) / 2
        sensitivity = p["rpiw_context_sensitivity"]
        # context acts through the team's readiness (pressure lowers engagement) and through
        # cancellations, not on a workshop once held: process gains were real everywhere (evidence 1.5)
        effect = min(p["rpiw_effect"] * (1 - sensitivity + sensitivity * readiness), 1.0)
        baseline = lognormal_with_mean(m.rng, LEAD_TIME_MEAN_HOURS, LEAD_TIME_LOG_SD)
        defects = lognormal_with_mean(m.rng, DEFECTS_MEAN, LEAD_TIME_LOG_SD)
        self._record(week_held=week, owner_team=home, aligned=m.value_stream_selection == "top_down",
                     baseline=baseline, removed=baseline * self._waste_share(p["process_waste_share"]) * effect,
                     post_90=np.nan, defects_baseline=defects,
                     defects_removed=defects * self._waste_share(p["defect_waste_share"]) * effect,
                     defects_post_90=np.nan)
        s.capability[team] += p["rpiw_capability_gain"] * (1 - s.capability[team])
        s.engagement[team] = np.minimum(s.engagement[team] + p["rpiw_engagement_gain"], 1.0)
        starts = m.rng.random(len(team)) < p["trained_practice_share"] * s.engagement[team]
        s.practising[team[starts]] = True
        relationships.form_among(m.network, team, p["rpiw_ties"], week, "rpiw", m.rng)

    def _record(self, **fields) -> None:
        for name, value in fields.items():
            setattr(self, name, np.append(getattr(self, name), value))

    def _relapse(self, week: int, follow_share: float) -> None:
        if not self.held:
            return
        m, p = self.model, self.model.params
        sustain = m.team_practising_share()[self.owner_team]
        if m.ctx.covid[week]:
            sustain = np.minimum(sustain * (1 + p["covid_daily_management_boost"]), 1.0)
        # during follow-up the KPO holds the gain, as far as it has time for it
        sustain = np.where(self._in_follow_up(week), np.maximum(sustain, follow_share), sustain)
        keep = 1 - p["relapse_rate"] * (1 - sustain)
        self.removed = self.removed * keep
        self.defects_removed = self.defects_removed * keep
        measured_now = self.week_held == week - MEASURED_AFTER_WEEKS
        self.post_90[measured_now] = self.baseline[measured_now] - self.removed[measured_now]
        self.defects_post_90[measured_now] = self.defects_baseline[measured_now] - self.defects_removed[measured_now]

    def aligned_gain_per_1000_staff(self, staff: int, bottom_up_alignment: float) -> float:
        """Share of lead time and defects currently removed (their mean), summed over processes and
        weighted by alignment (1 top-down, ``bottom_up_alignment`` bottom-up), per 1,000 staff."""
        if not self.held:
            return 0.0
        removed = (self.removed / self.baseline + self.defects_removed / self.defects_baseline) / 2
        alignment = np.where(self.aligned, 1.0, bottom_up_alignment)
        return float((alignment * removed).sum() / (staff / 1000.0))

    def measured_by(self, week: int, sample: int | None = None, rng: np.random.Generator | None = None,
                    measures: tuple[str, ...] = ("lead_time", "defects")) -> dict[str, float]:
        """Summed baseline and 90-day lead time and defects of RPIWs held by ``week`` (current values
        if the 90 days are not over at the end of the run), and their number. With ``sample``, only that
        many of them, drawn at random with ``rng``, as an evaluation measuring some RPIWs would."""
        held = np.flatnonzero(self.week_held <= week)
        if sample is not None and sample < len(held):
            held = np.sort(rng.choice(held, size=sample, replace=False))
        out = {"n": len(held)}
        fields = {"lead_time": (self.baseline, self.removed, self.post_90),
                  "defects": (self.defects_baseline, self.defects_removed, self.defects_post_90)}
        for name in measures:
            base, removed, post = fields[name]
            b = base[held]
            current = b - removed[held]
            p90 = post[held]
            out[f"{name}_baseline"] = float(b.sum())
            out[f"{name}_post"] = float(np.where(np.isnan(p90), current, p90).sum())
        return out
