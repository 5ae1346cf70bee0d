"""The readiness report's figures (matplotlib figures, saved as PNG and placed in the PDF by sim/readiness/report.py).

Each function returns a figure; none saves it. Time runs in years since the programme starts (0), from the
two years of history before it to the horizon's end.
"""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd

from sim.experiments.figures import pyplot
from sim.plots import BAND_COLOURS, RATING_COLOURS, RATING_LABELS
from sim.readiness.network import COMPARED
from sim.scenario import RATINGS

LEVEL_COLOURS = {"weak": "#c0392b", "partial": "#e67e22", "strong": "#27ae60"}
OWN_COLOUR = "#1f4e9c"


def _band(ax, part: pd.DataFrame, colour: str, label: str | None = None) -> None:
    ax.fill_between(part["years"], part["q05"], part["q95"], color=colour, alpha=0.18, lw=0)
    ax.fill_between(part["years"], part["q25"], part["q75"], color=colour, alpha=0.4, lw=0)
    ax.plot(part["years"], part["median"], color=colour, lw=1.5, label=label)


def _start_line(ax) -> None:
    ax.axvline(0, color="#555555", lw=0.8, ls="--")
    ax.set_xlabel("years since the programme starts", fontsize=8)
    ax.grid(alpha=0.3)


def plot_dimensions(dimensions) -> object:
    """The readiness profile: one bar (0-100) per dimension, grouped by instrument, coloured by level."""
    plt = pyplot()
    figure, ax = plt.subplots(figsize=(8.5, 0.32 * len(dimensions) + 1.4))
    labels = [f"{d.instrument}: {d.name}" for d in dimensions]
    positions = np.arange(len(dimensions))
    ax.barh(positions, [d.score for d in dimensions], color=[LEVEL_COLOURS[d.level] for d in dimensions], height=0.65)
    for y, d in zip(positions, dimensions):
        ax.text(min(d.score + 1.5, 92), y, f"{d.score:.0f} {d.level}", va="center", fontsize=7)
    ax.set_yticks(positions, labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    for limit in (34, 67):
        ax.axvline(limit, color="#999999", lw=0.6, ls=":")
    ax.set_xlabel("score derived from the answers (0-100; weak < 34 <= partial < 67 <= strong)", fontsize=8)
    ax.set_title("Readiness on the dimensions leaders know (how each is derived: the report's table)", fontsize=10)
    figure.tight_layout()
    return figure


def plot_network(own: dict | None, references: dict[str, dict], name: str) -> object:
    """Each survey measure: the five trusts' emulated December 2018 surveys (dots) and this organisation's (star)."""
    plt = pyplot()
    figure, axes = plt.subplots(1, len(COMPARED), figsize=(3.0 * len(COMPARED), 3.0), squeeze=False)
    trusts = list(references)
    for ax, (measure, label) in zip(axes[0], COMPARED):
        values = [references[t].get(measure, np.nan) for t in trusts]
        ax.scatter(np.zeros(len(trusts)), values, color="#7f7f7f", zorder=3)
        for t, v in zip(trusts, values):
            ax.annotate(t, (0, v), xytext=(6, 0), textcoords="offset points", fontsize=7, va="center")
        if own:
            ax.scatter([0], [own[measure]], marker="*", s=180, color=OWN_COLOUR, zorder=4, label=name)
        ax.set_xlim(-0.5, 1.2)
        ax.set_xticks([])
        ax.set_title("\n".join(textwrap.wrap(label, 26)), fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    if own:
        figure.legend(*axes[0][0].get_legend_handles_labels(), fontsize=8, loc="lower center", ncol=1, frameon=False,
                      bbox_to_anchor=(0.5, -0.08))
    figure.suptitle("Your network survey (star) against the five trusts' emulated December 2018 surveys (dots)"
                    if own else "The five trusts' emulated December 2018 surveys (no survey of yours was given)",
                    fontsize=10)
    figure.tight_layout()
    return figure


def plot_trajectory(bands: pd.DataFrame, name: str) -> object:
    """L4L diffusion, staff practising, RPIWs and the quality index with its CQC bands: median, 50% and 90%."""
    plt = pyplot()
    figure, axes = plt.subplots(2, 2, figsize=(10, 6.4))
    get = lambda variable: bands[bands["variable"] == variable]  # noqa: E731
    ax = axes[0][0]
    _band(ax, get("l4l_participants"), "#1f77b4", "L4L participants (in progress or complete)")
    _band(ax, get("l4l_complete"), "#ff7f0e", "L4L complete")
    ax.set_title("Lean for Leaders: staff trained", fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    ax = axes[0][1]
    _band(ax, get("practising_share").assign(**{q: get("practising_share")[q] * 100 for q in
                                                 ("q05", "q25", "median", "q75", "q95")}), "#2ca02c")
    ax.set_title("Staff practising the method (%)", fontsize=9)
    ax = axes[1][0]
    _band(ax, get("rpiws"), "#9467bd")
    ax.set_title("RPIWs held (cumulative)", fontsize=9)
    ax = axes[1][1]
    quality = get("quality")
    for band, colour in enumerate(BAND_COLOURS):
        ax.axhspan(band, band + 1, color=colour, zorder=0)
    _band(ax, quality, "#333333")
    low, high = float(quality["q05"].min()), float(quality["q95"].max())
    ax.set_ylim(min(0.0, low) - 0.05, max(3.0, high) + 0.05)
    ax.set_yticks([0.5, 1.5, 2.5, 3.5], RATING_LABELS, fontsize=7)
    ax.set_title("Quality index in its CQC bands", fontsize=9)
    for ax in axes.flat:
        _start_line(ax)
        ax.tick_params(labelsize=8)
    for ax in axes.flat[:3]:
        ax.set_ylim(bottom=0)
    figure.suptitle(f"{name}: the likely trajectory (line: median; dark: 50% of runs; light: 90%)", fontsize=10)
    figure.tight_layout()
    return figure


def plot_contributions(bands: pd.DataFrame) -> object:
    """Each mechanism's contribution to the quality index summed from the programme start: median and 50%."""
    from sim.contributions import term_colours

    plt = pyplot()
    terms = [v.removeprefix("contribution_") for v in dict.fromkeys(bands["variable"])
             if v.startswith("contribution_") and v != "contribution_net"]
    colours = term_colours(terms)
    figure, ax = plt.subplots(figsize=(9, 4.2))
    for term in terms:
        part = bands[(bands["variable"] == f"contribution_{term}") & (bands["years"] >= 0)]
        ax.fill_between(part["years"], part["q25"], part["q75"], color=colours[term], alpha=0.2, lw=0)
        ax.plot(part["years"], part["median"], color=colours[term], lw=1.4, label=term)
    net = bands[(bands["variable"] == "contribution_net") & (bands["years"] >= 0)]
    ax.plot(net["years"], net["median"], color="black", lw=2.2, label="net change")
    ax.axhline(0, color="grey", lw=0.7)
    _start_line(ax)
    ax.set_ylabel("change of the quality index since the start", fontsize=8)
    ax.legend(fontsize=7, ncol=5, loc="upper center", bbox_to_anchor=(0.5, -0.16), frameon=False)
    ax.set_title("Why quality moves: each mechanism's contribution since the programme starts (median, 50% of runs)",
                 fontsize=10)
    figure.tight_layout()
    return figure


def plot_ratings(ratings: pd.DataFrame) -> object:
    """The probability of each CQC rating at the start and every anniversary (stacked, labelled)."""
    plt = pyplot()
    figure, ax = plt.subplots(figsize=(7.5, 3.6))
    bottom = np.zeros(len(ratings))
    for rating, label in zip(RATINGS, RATING_LABELS):
        values = ratings[rating].to_numpy()
        ax.bar(ratings["year"], values, bottom=bottom, color=RATING_COLOURS[rating], label=label, width=0.65)
        for x, b, v in zip(ratings["year"], bottom, values):
            if v >= 0.06:
                ax.text(x, b + v / 2, f"{v:.0%}", ha="center", va="center", fontsize=8)
        bottom += values
    ax.set_xticks(ratings["year"], ["at the start" if y == 0 else f"year {y}" for y in ratings["year"]], fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("probability (share of runs)", fontsize=8)
    ax.legend(fontsize=7, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.12), frameon=False)
    ax.set_title("CQC rating if inspected at the start and on each anniversary", fontsize=10)
    figure.tight_layout()
    return figure


def plot_levers(effects: pd.DataFrame, outcome_label: str, base_mean: float) -> object:
    """Levers (ranked, most helpful first) and, apart, risks: mean paired effect (dot), its 95% interval (thick)
    and where 90% of the paired differences fall (thin)."""
    plt = pyplot()
    kinds = [k for k in ("lever", "risk") if (effects["kind"] == k).any()]
    heights = [max(1, (effects["kind"] == k).sum()) for k in kinds]
    figure, axes = plt.subplots(len(kinds), 1, figsize=(9, 0.42 * sum(heights) + 1.8 * len(kinds)),
                                gridspec_kw={"height_ratios": heights}, squeeze=False)
    for ax, kind in zip(axes[:, 0], kinds):
        part = effects[effects["kind"] == kind]
        positions = np.arange(len(part))
        colour = "#1f77b4" if kind == "lever" else "#c0392b"
        ax.hlines(positions, part["interval_low"], part["interval_high"], color=colour, lw=1, alpha=0.7)
        ax.hlines(positions, part["ci_low"], part["ci_high"], color=colour, lw=5)
        ax.plot(part["difference"], positions, "o", color="black", ms=5)
        ax.axvline(0, color="grey", ls="--", lw=0.8)
        names = part["label"] if kind == "lever" else ["\n".join(textwrap.wrap(f"if {step}", 48)) for step in part["step"]]
        ax.set_yticks(positions, [f"{r}. {name}" for r, name in zip(part["rank"], names)], fontsize=8)
        ax.invert_yaxis()
        ax.grid(axis="x", alpha=0.3)
        ax.set_title(("Which lever first (most helpful at the top)" if kind == "lever" else
                      "What you do not control (most harmful at the top; right of zero: better than planned)"),
                     fontsize=10)
    axes[-1][0].set_xlabel("\n".join(textwrap.wrap(f"change in {outcome_label} against the plan as described "
                                                   f"(plan: {base_mean:.3g}); dot: mean; thick: 95% interval of the "
                                                   "mean; thin: 90% of paired runs", 110)), fontsize=8)
    figure.tight_layout()
    return figure
