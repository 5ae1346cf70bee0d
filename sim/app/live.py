"""One run, live: the Mesa model (sim/model.py TrustModel) stepping week by week in Mesa's SolaraViz, with play,
pause, step and reset, the improvement network (a sample of whole teams, coloured by training and practice) and
the weekly reporters (sim/reporters.py) as Mesa's DataCollector records them.

SolaraViz fits: it re-creates the model from constructor keywords (``LiveTrust`` below), steps it off the
page's thread and redraws the components each step, as Mesa's examples do (virus_on_network/app.py).
"""

from __future__ import annotations

import numpy as np
import solara
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from mesa.visualization import SolaraViz, make_plot_component
from mesa.visualization.utils import update_counter

from sim.app.paths import trust_scenarios
from sim.experiments.compare import CQC_LIMITS
from sim.model import TrustModel
from sim.reporters import REPORTERS
from sim.scenario import load_scenario
from sim.staff import COMPLETE, DROPPED, IN_PROGRESS

SAMPLE_TEAMS = 5           # whole teams drawn for the network view: about 125 staff, readable
TRAINING_COLOURS = {"not trained": "#c7c7c7", "L4L in progress": "#ff7f0e", "L4L complete": "#1f77b4",
                    "L4L dropped": "#e7969c", "KPO": "#9467bd"}


class LiveTrust(TrustModel):
    """A TrustModel made from plain keywords (what SolaraViz's controls set), with a fixed sample of whole teams
    and their positions for the network view."""

    def __init__(self, trust: str = "SATH", scale: float = 0.25, seed: int = 1):
        super().__init__(load_scenario(trust), rng=np.random.default_rng(seed), scale=scale)
        draw = np.random.default_rng(seed)            # the view's own draws: the run is the same with or without it
        teams = draw.choice(self.n_teams, size=min(SAMPLE_TEAMS, self.n_teams), replace=False)
        self.sample = np.flatnonzero(np.isin(self.staff.team, teams))
        self.positions = _team_layout(self.staff.team[self.sample], draw)


def _team_layout(teams: np.ndarray, draw: np.random.Generator) -> np.ndarray:
    """Each team a ring of its members, the teams' rings on a larger ring."""
    positions = np.zeros((len(teams), 2))
    labels = np.unique(teams)
    for number, team in enumerate(labels):
        members = np.flatnonzero(teams == team)
        centre = 3.0 * np.array([np.cos(2 * np.pi * number / len(labels)), np.sin(2 * np.pi * number / len(labels))])
        angles = 2 * np.pi * np.arange(len(members)) / max(len(members), 1) + draw.uniform(0, 2 * np.pi)
        positions[members] = centre + np.column_stack([np.cos(angles), np.sin(angles)])
    return positions


def training_status(model: LiveTrust) -> np.ndarray:
    """The sampled staff's training, as the keys of TRAINING_COLOURS."""
    s, at = model.staff, model.sample
    status = np.full(len(at), "not trained", dtype=object)
    status[s.l4l[at] == IN_PROGRESS] = "L4L in progress"
    status[s.l4l[at] == COMPLETE] = "L4L complete"
    status[s.l4l[at] == DROPPED] = "L4L dropped"
    status[s.kpo[at]] = "KPO"
    return status


@solara.component
def NetworkView(model: LiveTrust):
    """The sampled teams' ties this week (darker: returned), members coloured by training, ringed if practising."""
    update_counter.get()          # redrawn at every step SolaraViz renders, as Mesa's own components are
    sample = model.sample
    source, target, returned_tie = _tie_snapshot(model.network)
    index = np.full(model.staff.n, -1)
    index[sample] = np.arange(len(sample))
    inside = (index[source] >= 0) & (index[target] >= 0)
    figure = Figure(figsize=(6, 6))
    ax = figure.subplots()
    for returned, colour in ((False, "#dddddd"), (True, "#888888")):
        ties = inside & (returned_tie == returned)
        segments = np.stack([model.positions[index[source[ties]]], model.positions[index[target[ties]]]], 1)
        ax.add_collection(LineCollection(segments, colors=colour, linewidths=0.6, zorder=1))
    status, practising = training_status(model), model.staff.practising[sample]
    for name, colour in TRAINING_COLOURS.items():
        mine = status == name
        ax.scatter(*model.positions[mine].T, s=50, c=colour, label=name, zorder=2,
                   edgecolors=np.where(practising[mine], "black", "white"), linewidths=np.where(practising[mine], 2, 0.5))
    ax.scatter([], [], s=50, c="white", edgecolors="black", linewidths=2, label="practising (ring)")
    figure.suptitle(f"{model.trust.name}, week {model.week} ({model.date}): {len(sample)} staff of {SAMPLE_TEAMS} teams,"
                    f" their ties ({int(inside.sum())})", fontsize=9, y=0.99)
    ax.set_axis_off()
    ax.set_aspect("equal")
    # legend at the top: SolaraViz's grid cell may cut the figure's bottom off
    figure.legend(*ax.get_legend_handles_labels(), fontsize=7, loc="upper center", bbox_to_anchor=(0.5, 0.95), ncol=3,
                  frameon=False)
    figure.subplots_adjust(left=0.02, right=0.98, top=0.84, bottom=0.02)
    return solara.FigureMatplotlib(figure, format="png")


def _tie_snapshot(network, tries: int = 5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ties' sources, targets and returns as one consistent set: SolaraViz steps the model on another thread,
    which may be replacing the tie arrays while the page reads them (then read again; no ties if it never settles)."""
    for _ in range(tries):
        source, target, returned = network.source, network.target, network.reciprocated
        if len(source) == len(target) == len(returned):
            return source, target, returned
    empty = np.empty(0, dtype=np.int64)
    return empty, empty, np.empty(0, dtype=bool)


@solara.component
def ReporterTable(model: LiveTrust):
    """This week's value of every weekly reporter (sim/reporters.py)."""
    update_counter.get()
    # SolaraViz steps the model on another thread, which may be appending this week's values while the page
    # reads them: show the last week every reporter has
    columns = model.datacollector.model_vars
    weeks = min((len(values) for values in columns.values()), default=0)
    if weeks == 0:
        solara.Text("Press Step or Play: the reporters are collected at the end of each week.")
        return
    rows = "".join(f"<tr><td>{name}</td><td style='text-align:right'>{_shown(columns[name][weeks - 1])}</td></tr>"
                   for name in REPORTERS)
    solara.HTML(tag="table", unsafe_innerHTML=f"<tr><th>reporter</th><th>week {weeks - 1}</th></tr>{rows}",
                style="font-size: 12px; width: 100%", classes=["reporter-table"])


def _shown(value) -> str:
    return f"{value:,.3g}" if isinstance(value, (float, np.floating)) else str(value)


def _cqc_limits(ax) -> None:
    for limit, name in CQC_LIMITS:
        ax.axhline(limit, color="#c0392b", linewidth=0.7, linestyle="--")
        ax.annotate(name, (0.01, limit), xycoords=("axes fraction", "data"), fontsize=6, color="#c0392b")
    ax.set_xlabel("week")


def _week_axis(ax) -> None:
    ax.set_xlabel("week")


MODEL_PARAMS = {
    "trust": {"type": "Select", "value": "SATH", "values": trust_scenarios(), "label": "trust scenario"},
    "scale": {"type": "SliderFloat", "value": 0.25, "min": 0.05, "max": 1.0, "step": 0.05, "label": "scale (staff)"},
    "seed": {"type": "SliderInt", "value": 1, "min": 0, "max": 99, "step": 1, "label": "seed"},
}
COMPONENTS = [
    NetworkView,
    make_plot_component("quality", post_process=_cqc_limits),
    make_plot_component({"l4l_in_progress": "#ff7f0e", "l4l_complete": "#1f77b4"}, post_process=_week_axis),
    make_plot_component({"practising_share": "#2ca02c", "engagement_mean": "#9467bd", "morale_mean": "#8c564b"},
                        post_process=_week_axis),
    make_plot_component({"rpiws": "#17becf"}, post_process=_week_axis),
    ReporterTable,
]


@solara.component
def Page():
    model = solara.use_memo(lambda: LiveTrust(), [])
    solara.Title("orgsim: one run, live")
    SolaraViz(model, components=COMPONENTS, model_params=MODEL_PARAMS, name="One run, live", play_interval=150,
              render_interval=4)
