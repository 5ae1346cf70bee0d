"""TrustModel: one hospital trust, weekly steps, every member of staff an agent.

The week, in the order of the ODD's process overview (docs/ODD.md, section 3):
leadership -> KPO time -> value-stream choice (at programme start and a new CEO) -> teaching ->
RPIW follow-up and preparation -> new starts -> knowledge and adoption -> engagement -> morale and
turnover -> quality -> relationships (every 4 weeks) -> survey and inspections (on their dates) ->
reporters.
Each mechanism is a module of its own (sim/leadership.py, kpo.py, training.py, rpiw.py, knowledge.py,
engagement.py, morale.py, quality.py, relationships.py); this class holds the state and applies them.
"""

from __future__ import annotations

import datetime as dt

import mesa
import numpy as np

from sim import engagement, knowledge, leadership, morale, quality, relationships
from sim.agents import StaffAgent, StaffRoster
from sim.context import build_context, ceo_commitment, week_of
from sim.kpo import KpoBudget
from sim.network import ImprovementNetwork
from sim.params import default_params
from sim.quality import TERMS, rating_of
from sim.reporters import WeeklyCensus
from sim.rpiw import ImprovementWork
from sim.scenario import Scenario
from sim.staff import NONE, StaffState, average
from sim.survey import emulate_survey
from sim.training import TrainingProgramme

RELATIONSHIPS_EVERY = 4      # weeks between passes of tie exchange, return and fading
TURNOVER_EVERY = 4           # leavers and recruits are processed monthly, as NHS workforce data are
MANAGER = 2                  # index of 'manager' in sim.staff.ROLES: the CEO's post

__all__ = ["TrustModel", "rating_of"]


class TrustModel(mesa.Model):
    def __init__(self, scenario: Scenario, params: dict[str, float] | None = None,
                 rng: np.random.Generator | int | None = None, scale: float = 1.0,
                 end: dt.date | None = None, census: tuple[str, ...] | None = None):
        """``census``: the weekly reporters collected (names in sim.reporters.REPORTERS); all by default."""
        super().__init__(rng=rng)
        if not 0 < scale <= 1:
            raise ValueError("scale must be in (0, 1]")
        self.trust = scenario
        self.params = p = params or default_params()
        self.scale = scale
        self.ctx = build_context(scenario, p, end)
        self.base_commitment = ceo_commitment(self.ctx, p)
        self.week = 0
        self.leavers_total = 0
        self.survey = None
        self.network_measures: dict[str, float] = {}
        self.cqc: dict[str, str] = {}
        self.value_stream_selection = "none"       # chosen when the programme starts (ODD 7.6)
        self.value_stream_choices: list[tuple[str, str, str]] = []   # (date, choice, why)
        self._team_practising = None
        # observations (the survey's sampling and naming) draw from their own stream, so that how
        # the trust is observed never changes how it evolves
        self.observation_rng = np.random.default_rng(self.rng.integers(2 ** 63))

        n = max(int(round(scenario.staff * scale)), 10)
        roles = scenario.roles
        self.staff = StaffState.create(
            n, scenario.network.team_size, [roles.doctor, roles.nurse_ahp, roles.manager, roles.support],
            p["initial_capability"], self._recruit_engagement(n, values_based=False), np.full(n, p["morale_baseline"]),
            self.rng)
        self.n_teams = int(self.staff.team.max()) + 1
        self.team_sizes = np.bincount(self.staff.team, minlength=self.n_teams)
        self.team_first = np.searchsorted(self.staff.team, np.arange(self.n_teams))  # staff sorted by team
        self.directorate = self.staff.team // scenario.network.directorate_teams   # where leaders meet (ODD 7.4)
        self.ceo_slot = self._appoint_ceo()
        self._staff_kpo(0)
        self.network = ImprovementNetwork(n)
        self._build_work_network()
        self.divide = np.zeros(n)            # nobody carries the method yet (ODD 7.4)
        self.staff_agents = StaffRoster(self, n)
        self.kpo = KpoBudget(self.ctx, p)
        self.training = TrainingProgramme(self)
        self.improvement = ImprovementWork(self)
        weeks_in_post = week_of(scenario, scenario.start) - week_of(scenario, scenario.leadership.ceo_in_post_since)
        self.instability = leadership.inherited_instability(weeks_in_post, self._change_buffer(), p)
        self.contributions = dict.fromkeys(TERMS, 0.0)
        self.contributions_total = dict.fromkeys(TERMS, 0.0)
        self.quality = self._starting_quality(weeks_in_post) + p["quality_initial_sd"] * self.rng.standard_normal()
        self._survey_week = week_of(scenario, scenario.survey.date) if scenario.survey else None
        self._inspections = {week_of(scenario, d): d for d in scenario.inspections}
        self.datacollector = WeeklyCensus(census)

    # -- set-up (ODD 5) --------------------------------------------------------------------------
    def _recruit_engagement(self, count: int, values_based: bool) -> np.ndarray:
        p = self.params
        mean = (p["engagement_baseline"] + p["culture_engagement_weight"] * self.culture
                - p["pressure_engagement_loss"] * self.ctx.pressure[min(self.week, self.ctx.weeks - 1)])
        if values_based:
            mean += p["recruit_engagement_boost"]
        return np.clip(self.rng.normal(mean, p["engagement_spread"], count), 0, 1)

    def _appoint_ceo(self) -> int:
        managers = np.flatnonzero(self.staff.role == MANAGER)
        return int(self.rng.choice(managers if len(managers) else np.arange(self.staff.n)))

    def _staff_kpo(self, week: int) -> None:
        """Keep as many KPO posts as the plan has KPO members (at the model's scale)."""
        s = self.staff
        wanted = int(round(self.ctx.kpo_staff[week] * self.scale))
        if self.ctx.kpo_staff[week] > 0:
            wanted = max(wanted, 1)
        current = np.flatnonzero(s.kpo)
        if len(current) > wanted:
            s.kpo[self.rng.choice(current, size=len(current) - wanted, replace=False)] = False
        elif len(current) < wanted:
            candidates = np.flatnonzero(~s.kpo & (np.arange(s.n) != self.ceo_slot))
            s.appoint_kpo(self.rng.choice(candidates, size=wanted - len(current), replace=False),
                          self.params["kpo_capability"])

    def _build_work_network(self) -> None:
        """Team ties and cross-team ties (lasting: the formal work of one's post); each is returned
        with the chance the trust's culture gives a tie carrying exchange (ODD 5)."""
        net, n = self.trust.network, self.staff.n
        src, dst = relationships.teammates(np.arange(n), net.team_ties, self.staff.team, self.team_first,
                                           self.team_sizes, self.rng)
        cross = self.rng.poisson(net.cross_team_ties, n)
        cross_src, cross_dst = np.repeat(np.arange(n), cross), self.rng.integers(0, n, cross.sum())
        self.network.add(src, dst, self.week, "work", lasting=True)
        self.network.add(cross_src, cross_dst, self.week, "cross_team", lasting=True)
        src, dst = np.concatenate([src, cross_src]), np.concatenate([dst, cross_dst])
        back = self.rng.random(len(src)) < relationships.return_probability(self.culture, self.params)
        self.network.add(dst[back], src[back], self.week, "returned")

    # -- shared quantities -----------------------------------------------------------------------
    @property
    def date(self) -> dt.date:
        return self.ctx.dates[min(self.week, self.ctx.weeks - 1)]

    @property
    def culture(self) -> float:
        """Culture index this week (ODD 7.1)."""
        return float(self.ctx.culture[min(self.week, self.ctx.weeks - 1)])

    @property
    def commitment(self) -> float:
        """The CEO's commitment this week (ODD 7.2)."""
        trained = self.staff.l4l[self.ceo_slot] != NONE
        return leadership.commitment(float(self.base_commitment[min(self.week, self.ctx.weeks - 1)]), trained, self.params)

    def kpo_capacity(self, week: int) -> float:
        """KPO time (FTE) this week after diversion to compliance and displacement by turnaround work."""
        return self.kpo.available(week)

    def team_practising_share(self) -> np.ndarray:
        if self._team_practising is None:
            self._team_practising = np.bincount(self.staff.team, weights=self.staff.practising,
                                                minlength=self.n_teams) / np.maximum(self.team_sizes, 1)
        return self._team_practising

    def _change_buffer(self) -> float:
        return leadership.change_buffer(self.trust.culture.distributed_leadership, average(self.staff.practising),
                                        self.params)

    def practice(self) -> float:
        """Spread of capable practice: share practising x their capability (ODD 7.8)."""
        return average(self.staff.practising * self.staff.capability)

    def agent_at(self, slot: int) -> StaffAgent:
        return self.staff_agents[slot]

    @property
    def agents(self):
        """Mesa's set of all agents: every post's StaffAgent (made now if not yet asked for)."""
        self.staff_agents.make_all()
        return super().agents

    @property
    def agents_by_type(self):
        self.staff_agents.make_all()
        return super().agents_by_type

    # -- the week (ODD 3) --------------------------------------------------------------------------
    def step(self) -> None:
        week = self.week
        self._team_practising = None
        self.lead(week)
        self.kpo.open_week(week)
        self.choose_value_streams(week)
        self.training.teach(week)
        self.improvement.follow_up_and_prepare(week)
        self.training.start_new(week)
        self.improvement.plan_new(week)
        self.share_knowledge_and_adopt(week)
        self.update_engagement(week)
        self.update_morale_and_turnover(week)
        self.update_quality(week)
        if week % RELATIONSHIPS_EVERY == 0:
            self.tend_relationships(week)
        self.observe(week)
        self.datacollector.collect(self)
        self.week += 1
        self.running = self.week < self.ctx.weeks

    def run(self) -> "TrustModel":
        while self.running:
            self.step()
        return self

    def lead(self, week: int) -> None:
        """CEO changes (ODD 7.2): engagement lost unless buffered, instability, a new person in post."""
        p = self.params
        self.instability = leadership.decayed_instability(self.instability, p)
        if self.ctx.kpo_staff[week] != self.ctx.kpo_staff[max(week - 1, 0)]:
            self._staff_kpo(week)
        if self.ctx.ceo_change[week]:
            buffer = self._change_buffer()
            self.staff.engagement = leadership.engagement_after_change(self.staff.engagement, buffer, p)
            self.instability += 1 - buffer
            self._replace(np.array([self.ceo_slot]), count_as_leavers=False)
            if self.ctx.ceo_kind[week] == 0 and self.value_stream_selection != "none":
                self._choose(week, "new CEO")

    def choose_value_streams(self, week: int) -> None:
        if self.value_stream_selection == "none" and self.ctx.programme_active[week]:
            self._choose(week, "programme start")

    def _choose(self, week: int, reason: str) -> None:
        """Value-stream selection (ODD 7.6; evidence 1.5): where values work has given the trust shared
        values (culture index at least ``top_down_culture_threshold``) its leaders choose value streams
        top-down, aligned with organisational priorities; where not, they choose bottom-up, to build
        engagement. A scenario may fix the choice instead (what-ifs)."""
        fixed = self.trust.programme.value_stream_selection
        choice = fixed if fixed != "auto" else (
            "top_down" if self.culture >= self.params["top_down_culture_threshold"] else "bottom_up")
        self.value_stream_selection = choice
        self.value_stream_choices.append((self.date.isoformat(), choice, reason))

    def share_knowledge_and_adopt(self, week: int) -> None:
        """ODD 7.3: capability flows over ties; practice spreads by complex contagion."""
        s, p = self.staff, self.params
        # the week's flows in one pass; the engagement inflow is used by update_engagement (nothing in between
        # changes ties or engagement)
        knowledge_gap, exposure, *self._engagement_flows = self.network.weekly_flows(
            s.capability, s.practising, s.engagement, p["one_way_efficiency"])
        s.capability += knowledge.capability_gain(knowledge_gap, s.capability, s.engagement, p)
        s.capability -= p["capability_forgetting_rate"] * s.capability * ~s.practising
        daily_management = p["covid_daily_management_boost"] if self.ctx.covid[week] else 0.0
        s.practising = knowledge.adopt_and_abandon(s.practising, s.engagement, exposure, self.rng.random(s.n),
                                                   daily_management, p) | s.kpo

    def update_engagement(self, week: int) -> None:
        """ODD 7.4: towards a target of sponsorship, culture, training, pressure and the divide; and peers."""
        s, p, ctx = self.staff, self.params, self.ctx
        trained = s.trained()
        goal = engagement.target(p, self.commitment, bool(ctx.programme_active[week]), self.culture, trained,
                                 float(ctx.pressure[week]), self.divide)
        peers = engagement.peer_mean(*self._engagement_flows, s.engagement)
        s.engagement = engagement.updated(s.engagement, goal, peers, p)

    def update_morale_and_turnover(self, week: int) -> None:
        """ODD 7.7."""
        s, p, ctx = self.staff, self.params, self.ctx
        goal = morale.target(s.engagement, float(ctx.pressure[week]), bool(ctx.covid[week]), self.instability, p)
        s.morale += p["morale_adjust_rate"] * (goal - s.morale)
        if week % TURNOVER_EVERY:
            return
        leave = self.rng.random(s.n) < morale.leaving_probability(s.morale, TURNOVER_EVERY, p)
        leave[self.ceo_slot] = False              # CEO and KPO changes come from the scenario
        leave[s.kpo] = False
        leavers = np.flatnonzero(leave)
        if len(leavers):
            self._replace(leavers)

    def _replace(self, leavers: np.ndarray, count_as_leavers: bool = True) -> None:
        """Leavers take their relationships with them; recruits take the post's formal work ties and
        start untrained and peripheral: no improvement ties, none of the post's ties returned."""
        if count_as_leavers:
            self.leavers_total += len(leavers)
        values_based = self.trust.culture.values_based_recruitment
        self.staff.replace(leavers, self.params["initial_capability"],
                           self._recruit_engagement(len(leavers), values_based), self.params["recruit_morale"])
        self.network.remove_personal_ties(leavers)
        self.staff_agents.vacate(leavers)

    def _quality_terms(self, week: int) -> dict[str, float]:
        ctx = self.ctx
        process = self.improvement.aligned_gain_per_1000_staff(self.trust.staff, self.params["bottom_up_alignment"])
        return quality.level_terms(average(self.staff.engagement), self.practice(), process,
                                   float(ctx.turnaround_support[week]), self.instability,
                                   float(ctx.system_years[week]), self.params)

    def _settled_quality(self, week: int) -> float:
        return quality.settled_level(self._quality_terms(week), self.params)

    def _starting_quality(self, weeks_in_post: float) -> float:
        """ODD 5: the level the state at the start sets; with ``quality_start_lag`` its instability term is the part
        of the current CEO's arrival the index has followed since (quality.instability_followed), not all of it."""
        terms = self._quality_terms(0)
        lag = self.params["quality_start_lag"]
        if lag:
            arrival = leadership.inherited_instability(0, self._change_buffer(), self.params)
            followed = quality.instability_followed(arrival, weeks_in_post, self.params)
            terms["instability"] = (1 - lag) * terms["instability"] + lag * followed
        return quality.settled_level(terms, self.params)

    def update_quality(self, week: int) -> None:
        """ODD 7.8: the index moves towards the level the trust's state sets; each term's part is kept."""
        self.contributions = quality.weekly_contributions(self.quality, self._quality_terms(week),
                                                          self.rng.standard_normal(), self.params)
        for term, value in self.contributions.items():
            self.contributions_total[term] += value
        self.quality += sum(self.contributions.values())

    def hand_on_the_method(self, completers: np.ndarray, week: int) -> None:
        """L4L completers pass the method on to untrained teammates, one way (ODD 7.4, messengers)."""
        untrained = ~self.staff.trained()
        src, dst = relationships.messengers(completers, untrained, self.params["messenger_ties"],
                                            self.staff.team, self.team_first, self.team_sizes, self.rng)
        self.network.add(src, dst, week, "messenger")

    def tend_relationships(self, week: int) -> None:
        """ODD 7.4: exchange, return and fading of ties; reflective-talk routines and leaders' exchange across teams."""
        s, p = self.staff, self.params
        trained = s.trained()       # nothing below changes who is trained
        activity = relationships.talk_activity(s.engagement, trained, s.practising, p)
        if self.trust.culture.reflective_routines:
            src, dst = relationships.reflective_sessions(activity, s.team, RELATIONSHIPS_EVERY, self.rng, p)
            self.network.add(src, dst, week, "reflective")
        if self.culture * p["leader_exchange_rate"] > 0:   # at a zero rate nothing is drawn: the model without it
            src, dst = relationships.leaders_exchange(activity, trained, s.team, self.directorate, self.culture,
                                                      RELATIONSHIPS_EVERY, self.rng, p)
            self.network.add(src, dst, week, "leadership")
        relationships.exchange_and_fade(self.network, activity, s.engagement, self.culture, RELATIONSHIPS_EVERY,
                                        week, self.rng, p)
        self.divide = engagement.divide(self.network, trained)   # felt over the month's exchanges
        self.network_measures = self._network_measures()

    def _network_measures(self) -> dict[str, float]:
        net, trained = self.network, self.staff.trained()
        among = trained[net.source] & trained[net.target]
        return {"ties": len(net), "arc_reciprocity": net.arc_reciprocity(),
                "trained_arc_reciprocity": float(net.reciprocated[among].mean()) if among.any() else float("nan")}

    def observe(self, week: int) -> None:
        """The evaluation's survey (December 2018) and CQC inspections, on their dates."""
        if week == self._survey_week:
            self.survey = emulate_survey(self, self.trust.survey.respondents)
        if week in self._inspections:
            self.cqc[str(self._inspections[week].year)] = rating_of(self.quality)
