"""The KPO's time: one weekly budget shared by all improvement work (ODD 7.5).

The central improvement team's time, in full-time equivalents (FTE), is its members less what
regulatory pressure diverts to compliance and firefighting and what external turnaround consultants
displace (evidence 1.3). It is handed out each week by one rule, the programme's own priorities:
first the work already promised (L4L cohorts being taught, ALT intakes, follow-ups of held RPIWs,
RPIWs in preparation), then new starts in plan order (L4L cohorts, ALT intakes, RPIW preparations).
Ongoing work that the week's time cannot fully serve goes slower in proportion; no new work starts
without the time for it. So when pressure or a cancelled plan frees or takes time, the rest of the
plan absorbs it: BHRUT's cancelled RPIWs after July 2018 left its three-person KPO free for L4L.
"""

from __future__ import annotations


class KpoBudget:
    def __init__(self, ctx, params: dict):
        self.ctx, self.p = ctx, params
        self.free = 0.0
        self.used = 0.0

    def available(self, week: int) -> float:
        ctx, p = self.ctx, self.p
        return float(ctx.kpo_staff[week] * (1 - p["kpo_diversion"] * ctx.pressure[week])
                     * (1 - p["turnaround_kpo_displacement"] * ctx.turnaround_support[week]))

    def open_week(self, week: int) -> None:
        self.free = self.available(week)
        self.used = 0.0

    def serve(self, demand: float) -> float:
        """Time for ongoing work needing ``demand`` FTE: returns the share served (0-1)."""
        if demand <= 0:
            return 1.0
        given = min(demand, self.free)
        self.free -= given
        self.used += given
        return given / demand

    def start(self, cost: float) -> bool:
        """Start new work costing ``cost`` FTE a week if this week's free time covers it."""
        if cost > self.free:
            return False
        self.free -= cost
        self.used += cost
        return True
