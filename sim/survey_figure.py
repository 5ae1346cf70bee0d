"""The emulated December 2018 survey networks drawn as the evaluation drew them (Burgess et al. 2022,
section 5): one panel per trust, circles for L4L participants, squares for the other people they
named, reciprocated ties highlighted, the survey's measures (sim/survey.py) beside each network.

Reads the survey files of a run folder (``survey_network_<TRUST>.csv``, ``survey_actors_<TRUST>.csv``)
and, when present, ``summary.json`` for whether the survey is comparable with the evaluation's.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import networkx as nx  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from sim.staff import ROLES  # noqa: E402
from sim.survey import network_measures, read_survey  # noqa: E402

ROLE_COLOURS = dict(zip(ROLES, ("#4c72b0", "#55a868", "#dd8452", "#8c8c8c")))
RECIPROCATED, ONE_WAY = "#c44e52", "#9a9a9a"
PARTICIPANT_STATUS = ("in_progress", "complete")


def draw_survey_network(ax, edges, actors) -> None:
    """One trust's survey network on ``ax``: shape by L4L participation, colour by role, a dark
    outline for respondents, one-way ties grey with arrows, reciprocated ties red."""
    graph = nx.DiGraph()
    graph.add_nodes_from(actors["id"].tolist())
    graph.add_edges_from(zip(edges["source"].tolist(), edges["target"].tolist()))
    pos = nx.spring_layout(graph.to_undirected(as_view=True), seed=1, iterations=60)
    mutual = [(u, v) for u, v in graph.edges if u < v and graph.has_edge(v, u)]
    one_way = [(u, v) for u, v in graph.edges if not graph.has_edge(v, u)]
    nx.draw_networkx_edges(graph, pos, edgelist=one_way, ax=ax, width=0.4, edge_color=ONE_WAY, arrowsize=4,
                           node_size=18)
    nx.draw_networkx_edges(graph, pos, edgelist=mutual, ax=ax, width=1.1, edge_color=RECIPROCATED, arrows=False)
    participant = actors["l4l"].isin(PARTICIPANT_STATUS)
    for shape, group in (("o", actors[participant]), ("s", actors[~participant])):
        for respondent, part in group.groupby("respondent"):
            nx.draw_networkx_nodes(graph, pos, nodelist=part["id"].tolist(), ax=ax, node_shape=shape,
                                   node_size=22 if respondent else 14,
                                   node_color=[ROLE_COLOURS.get(r, "#000000") for r in part["role"]],
                                   edgecolors="#000000" if respondent else "none", linewidths=0.6)
    ax.axis("off")


def measures_text(measures: dict, comparable: bool | None) -> str:
    m = measures
    lines = [f"{m['respondents']} respondents, {m['actors']} actors, {m['ties']} ties",
             f"reciprocity: dyad {m['dyad_reciprocity']:.2f}, arc {m['arc_reciprocity']:.2f}",
             f"components {m['components']}; respondents outside",
             f"  the largest {m['isolated_share']:.0%}",
             "brokerage simple / rec. in / rec. out / both:",
             f"  {m['brokerage_simple']} / {m['brokerage_recip_in']} / {m['brokerage_recip_out']} / "
             f"{m['brokerage_both']} (simple {m['brokerage_simple_share']:.0%})"]
    if comparable is False:
        lines.append("NOT comparable with the evaluation\n(run below full scale)")
    return "\n".join(lines)


def _comparable(folder: Path, trust: str) -> bool | None:
    path = folder / "summary.json"
    if not path.is_file():
        return None
    return json.loads(path.read_text()).get(trust, {}).get("survey", {}).get("comparable")


def plot_survey_networks(folder: Path, trusts: list[str], path) -> None:
    """One panel per trust of the survey networks in run ``folder``, measures beneath, saved to ``path``."""
    folder = Path(folder)
    fig = plt.figure(figsize=(3.8 * len(trusts), 5.8))
    grid = fig.add_gridspec(2, len(trusts), height_ratios=(4, 1.5), hspace=0.05)
    for column, trust in enumerate(trusts):
        edges, actors = read_survey(folder, trust)
        measures = network_measures(edges, actors.loc[actors["respondent"], "id"])
        network_ax, text_ax = fig.add_subplot(grid[0, column]), fig.add_subplot(grid[1, column])
        draw_survey_network(network_ax, edges, actors)
        network_ax.set_title(trust, fontsize=11)
        comparable = _comparable(folder, trust)
        text_ax.text(0.02, 0.98, measures_text(measures, comparable), va="top", ha="left", fontsize=7.5,
                     family="monospace", color="#a00000" if comparable is False else "#000000",
                     transform=text_ax.transAxes)
        text_ax.axis("off")
    fig.legend(handles=_legend(), loc="lower center", ncol=5, fontsize=8, frameon=False)
    fig.suptitle("Emulated December 2018 network survey of L4L participants (Table 5.3)")
    fig.subplots_adjust(left=0.01, right=0.99, top=0.88, bottom=0.08)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _legend() -> list:
    def marker(shape, label, colour="#ffffff", edge="#000000"):
        return Line2D([], [], ls="", marker=shape, markersize=6, markerfacecolor=colour, markeredgecolor=edge,
                      label=label)
    return [marker("o", "L4L participant"), marker("s", "named, not in L4L"),
            marker("o", "respondent (outlined)", "#cccccc"), marker("o", "named, did not respond", "#cccccc", "none"),
            *[marker("o", role.replace("_", "/"), colour, "none") for role, colour in ROLE_COLOURS.items()],
            Line2D([], [], color=RECIPROCATED, lw=1.2, label="reciprocated tie"),
            Line2D([], [], color=ONE_WAY, lw=0.8, label="one-way tie")]
