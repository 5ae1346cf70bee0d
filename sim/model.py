"""TrustModel: one hospital trust, weekly steps, every member of staff an agent.

Order of a week (each a small method, all vectorised over staff):
leadership -> training -> improvement work (RPIWs) -> knowledge and adoption -> engagement ->
morale and turnover -> quality index -> network upkeep -> survey (Dec 2018) -> reporters.
"""

from __future__ import annotations

import datetime as dt

import mesa
import numpy as np

from sim.agents import StaffAgent
from sim.context import build_context, ceo_commitment, week_of
from sim.network import ImprovementNetwork
from sim.params import default_params
from sim.reporters import REPORTERS
from sim.rpiw import ImprovementWork
from sim.scenario import RATINGS, Scenario
from sim.staff import StaffState
from sim.survey import emulate_survey
from sim.training import TrainingProgramme

NETWORK_UPKEEP_EVERY = 4     # weeks between tie decay passes and network measures
TURNOVER_EVERY = 4           # leavers and recruits are processed monthly, as NHS workforce data are
TIE_DROP_WEIGHT = 0.1        # ties weaker than this are forgotten
COMPLIANCE_STANDARD = 1.5    # quality index compliance work aims at: middle of 'requires improvement'


def rating_of(quality: float) -> str:
    """CQC rating read from the quality index: one band per rating, 0-1 inadequate ... 3-4 outstanding."""
    return RATINGS[int(np.clip(np.floor(quality), 0, 3))]


class TrustModel(mesa.Model):
    def __init__(self, scenario: Scenario, params: dict[str, float] | None = None,
                 rng: np.random.Generator | int | None = None, scale: float = 1.0,
                 end: dt.date | None = None):
        super().__init__(rng=rng)
        if not 0 < scale <= 1:
            raise ValueError("scale must be in (0, 1]")
        self.trust = scenario
        self.params = params or default_params()
        self.scale = scale
        self.ctx = build_context(scenario, self.params, end)
        self.commitment = ceo_commitment(self.ctx, self.params)
        self.week = 0
        self.quality = self._initial_quality()
        self.leavers_total = 0
        self.survey = None
        self.network_measures: dict[str, float] = {}

        n = max(int(round(scenario.staff * scale)), 10)
        roles = scenario.roles
        self.staff = StaffState.create(
            n, scenario.network.team_size, [roles.doctor, roles.nurse_ahp, roles.manager, roles.support],
            self._recruit_engagement(n, values_based=False), self.rng)
        self.n_teams = int(self.staff.team.max()) + 1
        self.team_sizes = np.bincount(self.staff.team, minlength=self.n_teams)
        self.team_first = np.searchsorted(self.staff.team, np.arange(self.n_teams))  # staff sorted by team
        self.instability = self._inherited_instability()   # needs the staff: nobody practises yet
        self.network = ImprovementNetwork(n)
        self._build_work_network()
        self.staff_agents = list(StaffAgent.create_agents(self, n, np.arange(n)))
        self.training = TrainingProgramme(self)
        self.improvement = ImprovementWork(self)
        self._survey_week = week_of(scenario, scenario.survey.date) if scenario.survey else None
        self._inspections = {week_of(scenario, d): d for d in scenario.inspections}
        self.cqc: dict[str, str] = {}
        self._team_practising = None
        self.datacollector = mesa.DataCollector(model_reporters=REPORTERS)

    # -- set-up ----------------------------------------------------------------------------------
    def _initial_quality(self) -> float:
        """Uniform inside the band of the pre-programme rating, away from its edges: where in the
        band the trust stood is unknown."""
        band = RATINGS.index(self.trust.initial_cqc)
        return band + self.rng.uniform(0.2, 0.8)

    def _inherited_instability(self) -> float:
        """Instability left by the current CEO's arrival, if it came shortly before the start: the
        same jump as a change during the run (ODD 7.2), decayed over the weeks since. A long-serving
        CEO leaves none; a CEO who arrived as the programme began leaves it all."""
        weeks_in_post = week_of(self.trust, self.trust.start) - week_of(self.trust, self.trust.leadership.ceo_in_post_since)
        return float((1 - self._ceo_change_buffer()) * np.exp(-weeks_in_post / self.params["instability_time"]))

    def _ceo_change_buffer(self) -> float:
        """How far distributed leadership or a critical mass of practising staff protect against a
        CEO change (ODD 7.2): 0 none, 1 fully."""
        return max(self.trust.culture.distributed_leadership,
                   min(1.0, self.staff.practising.mean() / self.params["critical_mass_share"]))

    def _recruit_engagement(self, count: int, values_based: bool) -> np.ndarray:
        mean = self.params["engagement_baseline"] + self.params["culture_engagement_weight"] * self.culture
        if values_based:
            mean += self.params["recruit_engagement_boost"]
        return np.clip(self.rng.normal(mean, 0.1, count), 0, 1)

    def _team_ties(self, members: np.ndarray, ties_each: int) -> tuple[np.ndarray, np.ndarray]:
        """Random out-ties of ``members`` to others in their own team."""
        team = self.staff.team[members]
        first = np.repeat(self.team_first[team], ties_each)
        size = np.repeat(self.team_sizes[team], ties_each)
        source = np.repeat(members, ties_each)
        step = self.rng.integers(1, np.maximum(size, 2))   # never oneself unless alone in the team
        return source, first + (source - first + step) % size

    def _reciprocate(self, source, target):
        back = self.rng.random(len(source)) < self.reciprocation
        return np.concatenate([source, target[back]]), np.concatenate([target, source[back]])

    def _build_work_network(self) -> None:
        net, n = self.trust.network, self.staff.n
        src, dst = self._team_ties(np.arange(n), net.team_ties)
        cross = self.rng.poisson(net.cross_team_ties, n)
        src = np.concatenate([src, np.repeat(np.arange(n), cross)])
        dst = np.concatenate([dst, self.rng.integers(0, n, cross.sum())])
        self.network.add(*self._reciprocate(src, dst), weight=1.0, lasting=True)

    # -- shared quantities -----------------------------------------------------------------------
    @property
    def date(self) -> dt.date:
        return self.ctx.dates[min(self.week, self.ctx.weeks - 1)]

    @property
    def culture(self) -> float:
        """Culture index this week (ODD 5)."""
        return float(self.ctx.culture[min(self.week, self.ctx.weeks - 1)])

    @property
    def reciprocation(self) -> float:
        """Probability that a new tie is returned, this week."""
        return min(self.params["reciprocity_base"] + self.params["reciprocity_culture"] * self.culture, 1.0)

    def kpo_capacity(self, week: int) -> float:
        """KPO members available for improvement work after diversion to compliance."""
        return float(self.ctx.kpo_staff[week] * (1 - self.params["kpo_diversion"] * self.ctx.pressure[week]))

    def team_practising_share(self) -> np.ndarray:
        if self._team_practising is None:
            self._team_practising = np.bincount(self.staff.team, weights=self.staff.practising,
                                                minlength=self.n_teams) / np.maximum(self.team_sizes, 1)
        return self._team_practising

    def _network_measures(self) -> dict[str, float]:
        net, trained = self.network, self.staff.trained()
        among = trained[net.source] & trained[net.target]
        return {"ties": len(net.keys), "reciprocity": net.reciprocity(),
                "trained_ties_reciprocity": float(net.reciprocated[among].mean()) if among.any() else float("nan")}

    def agent_at(self, slot: int) -> StaffAgent:
        return self.staff_agents[slot]

    # -- the week --------------------------------------------------------------------------------
    def step(self) -> None:
        week = self.week
        self._team_practising = None
        self._leadership(week)
        self.training.step(week)
        self.improvement.step(week)
        self._knowledge_and_adoption(week)
        self._engagement(week)
        self._morale_and_turnover(week)
        self._quality(week)
        if week % NETWORK_UPKEEP_EVERY == 0:
            self.network.decay((1 - self.params["tie_decay_rate"]) ** NETWORK_UPKEEP_EVERY, TIE_DROP_WEIGHT)
            self.network_measures = self._network_measures()
        if week == self._survey_week:
            self.survey = emulate_survey(self, self.trust.survey.respondents)
        if week in self._inspections:
            self.cqc[str(self._inspections[week].year)] = rating_of(self.quality)
        self.datacollector.collect(self)
        self.week += 1
        self.running = self.week < self.ctx.weeks

    def run(self) -> "TrustModel":
        while self.running:
            self.step()
        return self

    def _leadership(self, week: int) -> None:
        p = self.params
        self.instability *= np.exp(-1.0 / p["instability_time"])
        if self.ctx.ceo_change[week]:
            buffer = self._ceo_change_buffer()
            self.staff.engagement *= 1 - p["ceo_exit_engagement_loss"] * (1 - buffer)
            self.instability += 1 - buffer

    def _knowledge_and_adoption(self, week: int) -> None:
        s, p, net = self.staff, self.params, self.network
        eff = p["one_way_efficiency"]
        gain = p["knowledge_sharing_rate"] * s.engagement * net.knowledge_gain(s.capability, eff)
        s.capability += np.minimum(gain, 1 - s.capability)
        s.capability -= p["capability_forgetting_rate"] * s.capability * ~s.practising
        exposure = net.inflow(s.practising.astype(float), eff)
        pull = exposure ** 2 / (exposure ** 2 + p["adoption_threshold"] ** 2)
        draw = self.rng.random(s.n)
        adopt = ~s.practising & (draw < p["adoption_rate"] * s.engagement * pull)
        daily_management = p["covid_daily_management_boost"] if self.ctx.covid[week] else 0.0
        abandon = s.practising & (draw < p["abandon_rate"] * (1 - s.engagement) * (1 - daily_management))
        s.practising = (s.practising | adopt) & ~abandon

    def _engagement(self, week: int) -> None:
        s, p, ctx = self.staff, self.params, self.ctx
        trained = s.trained()
        team_trained = np.bincount(s.team, weights=trained, minlength=self.n_teams) / np.maximum(self.team_sizes, 1)
        divide = ~trained * team_trained[s.team] * (1 - self.culture)
        target = (p["engagement_baseline"]
                  + p["ceo_sponsorship_weight"] * self.commitment[week] * ctx.programme_active[week]
                  + p["culture_engagement_weight"] * self.culture
                  + p["training_engagement_boost"] * trained
                  - p["pressure_engagement_loss"] * ctx.pressure[week]
                  - p["divide_penalty"] * divide)
        strength = self.network.in_strength(p["one_way_efficiency"])
        peers = np.where(strength > 0, self.network.inflow(s.engagement, p["one_way_efficiency"]) / np.maximum(strength, 1e-12),
                         s.engagement)
        s.engagement += p["engagement_adjust_rate"] * (target - s.engagement) + p["peer_influence_rate"] * (peers - s.engagement)
        np.clip(s.engagement, 0.0, 1.0, out=s.engagement)

    def _morale_and_turnover(self, week: int) -> None:
        s, p, ctx = self.staff, self.params, self.ctx
        target = (0.5 + p["morale_engagement_weight"] * (s.engagement - 0.5)
                  - p["pressure_morale_loss"] * ctx.pressure[week]
                  - p["covid_morale_loss"] * ctx.covid[week]
                  - p["instability_morale_loss"] * min(self.instability, 1.0))
        s.morale += p["morale_adjust_rate"] * (np.clip(target, 0.0, 1.0) - s.morale)
        if week % TURNOVER_EVERY:
            return
        leave = p["turnover_rate"] * TURNOVER_EVERY / 52.0 * np.maximum(1 + p["turnover_morale_sensitivity"] * 2 * (0.5 - s.morale), 0)
        leavers = np.flatnonzero(self.rng.random(s.n) < leave)
        if len(leavers):
            self._replace(leavers)

    def _replace(self, leavers: np.ndarray) -> None:
        """Leavers take their ties with them; recruits start untrained and peripheral."""
        self.leavers_total += len(leavers)
        values_based = self.trust.culture.values_based_recruitment
        self.staff.replace(leavers, self._recruit_engagement(len(leavers), values_based))
        self.network.remove_nodes(leavers)
        src, dst = self._team_ties(leavers, max(1, self.trust.network.team_ties // 2))
        self.network.add(*self._reciprocate(src, dst), weight=1.0, lasting=True)
        for slot in leavers:
            self.staff_agents[slot].remove()
            self.staff_agents[slot] = StaffAgent(self, slot)

    def _quality(self, week: int) -> None:
        s, p = self.staff, self.params
        drift = (p["quality_engagement_weight"] * (s.engagement.mean() - 0.5)
                 + p["quality_practice_weight"] * float(np.mean(s.practising * s.capability))
                 + p["quality_process_weight"] * self.improvement.aligned_gain_per_1000_staff(self.trust.staff)
                 - p["quality_instability_loss"] * min(self.instability, 1.0)
                 - p["quality_system_drift"]
                 + self._compliance_recovery(week))
        noise = p["quality_noise"] * np.sqrt(1 / 52) * self.rng.standard_normal()
        self.quality = float(np.clip(self.quality + drift / 52 + noise, 0.0, 4.0))

    def _compliance_recovery(self, week: int) -> float:
        """Special measures' turnaround work lifts a failing trust towards compliance (ODD 7.8)."""
        gap = max(COMPLIANCE_STANDARD - self.quality, 0.0)
        return self.params["compliance_recovery_rate"] * self.ctx.turnaround_support[week] * gap
