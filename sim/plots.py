"""Figures: a run folder's (one run per trust) and the posterior ensemble's trajectories with bands.

Every figure of a single run says on it what it is (one run, its seed and scale, and whether the
parameters are the uncalibrated defaults), and marks the published observations where the trust
has them (CQC ratings at their inspections, L4L and RPIW counts at their census dates, from
calibration/targets.yaml), so that a reader never takes one illustrative run for the answer.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from sim.contributions import plot_contributions  # noqa: E402
from sim.experiments.outputs import output_label, series_label  # noqa: E402
from sim.survey_figure import plot_survey_networks  # noqa: E402
from sim.runner import RPIW_CENSUS, TRAINING_CENSUS  # noqa: E402
from sim.scenario import RATINGS  # noqa: E402

BAND_COLOURS = ("#f4cccc", "#fce5cd", "#d9ead3", "#cfe2f3")
RATING_LABELS = ("Inadequate", "Requires improvement", "Good", "Outstanding")
SHORT_RATING = {"inadequate": "I", "requires_improvement": "RI", "good": "G", "outstanding": "O"}
RATING_NAMES = {"inadequate": "inadequate", "requires_improvement": "req. impr.", "good": "good",
                "outstanding": "outstanding"}
RATING_COLOURS = {"inadequate": "#c0392b", "requires_improvement": "#e67e22", "good": "#27ae60",
                  "outstanding": "#2c7fb8"}
# one look per trust, distinct in colour, line style and marker, so that overlapping lines stay visible
STYLES = ({"color": "#1f77b4", "linestyle": "-", "marker": "o"}, {"color": "#ff7f0e", "linestyle": "--", "marker": "s"},
          {"color": "#2ca02c", "linestyle": "-.", "marker": "^"}, {"color": "#d62728", "linestyle": ":", "marker": "D"},
          {"color": "#9467bd", "linestyle": (0, (5, 1, 1, 1)), "marker": "v"})
OBSERVED = {"marker": "X", "color": "black", "ms": 8, "linestyle": "none", "zorder": 5}
# summary statistic observed at a census date -> the weekly series it is read from
CENSUS_SERIES = {"l4l_complete_2021_03": ("l4l_complete", TRAINING_CENSUS),
                 "l4l_in_progress_2021_03": ("l4l_in_progress", TRAINING_CENSUS),
                 "alt_complete_2021_03": ("alt_complete", TRAINING_CENSUS),
                 "alt_in_progress_2021_03": ("alt_in_progress", TRAINING_CENSUS),
                 "rpiws_2019_07": ("rpiws", RPIW_CENSUS),
                 "value_streams_2019_07": ("value_streams", RPIW_CENSUS)}


# -- what was observed ---------------------------------------------------------------------------
def observations(trusts) -> dict[str, dict]:
    """Per trust: ``cqc`` {year: rating} and ``series`` {weekly series: (census date, count)} as published.

    Trusts that are not one of the five (a what-if or a user's own trust) get nothing."""
    from sim.calibration.targets import default_targets

    observed: dict[str, dict] = {trust: {"cqc": {}, "series": {}, "final": {}} for trust in trusts}
    for target in default_targets().targets:
        if target.trust not in observed:
            continue
        if target.kind == "ordinal":
            observed[target.trust]["cqc"][target.statistic.split(".")[1]] = target.observed
        elif target.kind in ("count", "ratio"):
            observed[target.trust]["final"][target.statistic] = target.observed_value
            if target.statistic in CENSUS_SERIES:
                column, census = CENSUS_SERIES[target.statistic]
                observed[target.trust]["series"][column] = (census, target.observed_value)
    for trust, seen in observed.items():
        if seen["cqc"]:
            seen["final"]["cqc_latest_score"] = float(RATINGS.index(seen["cqc"][max(seen["cqc"])]))
    return observed


def run_note(folder: Path) -> str:
    """What a run folder's figures show, from its manifest: one run, seed, scale, which parameters."""
    path = Path(folder) / "manifest.json"
    if not path.is_file():
        return "One run per trust"
    manifest = json.loads(path.read_text())
    from sim.params import default_params

    defaults = manifest.get("parameters") == default_params()
    source = ("at the default parameters: uncalibrated" if defaults
              else "at parameters from a file (uncalibrated unless they come from a calibration)")
    end = f", stopped {manifest['end']}" if manifest.get("end") else ""
    return (f"One run per trust (seed {manifest.get('seed')}, scale {manifest.get('scale')}{end}) {source}. "
            "X: published observations. The calibrated answer is the posterior ensemble "
            "(orgsim run --all --posterior calibration/posterior_main.csv; make run -> results/ensemble/).")


# -- helpers -----------------------------------------------------------------------------------
def style(index: int) -> dict:
    return STYLES[index % len(STYLES)]


def _by_trust(frame: pd.DataFrame):
    for trust, part in frame.groupby("trust", sort=False):
        yield trust, part.assign(date=pd.to_datetime(part["date"]))


def finish(fig, title: str, path: Path, note: str = "") -> None:
    """Title wrapped to the figure's width, the note under the panels, saved whole (nothing cut off)."""
    lines = textwrap.wrap(title, max(40, int(fig.get_figwidth() * 9)))
    fig.tight_layout()
    # above the figure's top edge, so above every panel title; bbox_inches="tight" keeps it
    fig.suptitle("\n".join(lines), y=1.0, va="bottom")
    if note:   # below the figure's bottom edge, so below every tick label; bbox_inches="tight" keeps it
        fig.text(0.5, -0.01, "\n".join(textwrap.wrap(note, int(fig.get_figwidth() * 14))), ha="center", va="top",
                 fontsize=8, color="#444444")
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def rating_bands(ax, low: float = 0.0, high: float = 4.0) -> None:
    """The CQC bands of the quality index as background (a rating is the band quality lies in)."""
    for band, colour in enumerate(BAND_COLOURS):
        ax.axhspan(band, band + 1, color=colour, zorder=0)
    ax.set_ylim(min(0.0, low) - 0.05, max(4.0, high) + 0.05)


def rating_axis(ax) -> None:
    ax.set_yticks([0.5, 1.5, 2.5, 3.5], RATING_LABELS, fontsize=7)


def mark_observed_ratings(ax, observed_cqc: dict, dates: dict[str, pd.Timestamp], label=True) -> None:
    """Published ratings (X) at their inspections, in the upper half of the rating's band."""
    for year, rating in observed_cqc.items():
        if year in dates:
            ax.plot(dates[year], RATINGS.index(rating) + 0.7, **OBSERVED,
                    label="observed rating" if label else None)
            label = False


def mark_observed_count(ax, observed: tuple | None) -> None:
    if observed is not None:
        census, value = observed
        ax.plot(pd.Timestamp(census), value, **OBSERVED, label="observed")


def inspection_dates(trust: str, summary: dict | None = None) -> dict[str, pd.Timestamp]:
    """Inspection year -> date, from the run summary or else the trust's scenario."""
    if summary and summary.get("inspection_dates"):
        dates = summary["inspection_dates"]
    else:
        from sim.scenario import load_scenario

        try:
            dates = [d.isoformat() for d in load_scenario(trust).inspections]
        except Exception:  # a scenario that cannot be loaded by name has no dates to show
            return {}
    return {d[:4]: pd.Timestamp(d) for d in dates}


# -- one run per trust -------------------------------------------------------------------------
def _panels(frame, columns: list[str], title: str, path: Path, note: str = "", observed: dict | None = None):
    fig, axes = plt.subplots(1, len(columns), figsize=(5 * len(columns), 3.8), squeeze=False)
    for ax, column in zip(axes[0], columns):
        for index, (trust, part) in enumerate(_by_trust(frame)):
            ax.plot(part["date"], part[column], label=trust, lw=1.3, markevery=max(1, len(part) // 8), ms=4,
                    **style(index))
            seen = (observed or {}).get(trust, {}).get("series", {}).get(column)
            if seen is not None:
                ax.plot(pd.Timestamp(seen[0]), seen[1], **{**OBSERVED, "color": style(index)["color"],
                                                           "mec": "black"})
        ax.set_title(series_label(column), fontsize=10)
        ax.grid(alpha=0.3)
        ax.tick_params(axis="x", labelrotation=30)
    axes[0][0].legend(fontsize=8)
    finish(fig, title, path, note)


def plot_training(frame, path, note: str = "", observed: dict | None = None):
    _panels(frame, ["l4l_complete", "l4l_in_progress", "alt_complete", "practising_share"],
            "Training diffusion (X: published count at the March 2021 census)", path, note, observed)


def plot_rpiws(frame, path, note: str = "", observed: dict | None = None):
    _panels(frame, ["rpiws", "rpiws_cancelled", "value_streams", "lead_time_removed_share"],
            "Rapid Process Improvement Workshops (X: published count, July 2019)", path, note, observed)


def plot_network(frame, path, note: str = ""):
    _panels(frame, ["network_arc_reciprocity", "trained_arc_reciprocity", "ties", "engagement_mean"],
            "Improvement network", path, note)


def plot_quality(frame, summary: dict, path, note: str = "", observed: dict | None = None):
    trusts = list(dict.fromkeys(frame["trust"]))
    fig, axes = plt.subplots(1, len(trusts), figsize=(3.6 * len(trusts) + 0.8, 3.8), sharey=True, squeeze=False)
    for ax, (trust, part) in zip(axes[0], _by_trust(frame)):
        rating_bands(ax, float(frame["quality"].min()), float(frame["quality"].max()))
        ax.plot(part["date"], part["quality"], color="black", lw=1.2, label="quality index")
        dates = inspection_dates(trust, summary[trust])
        first = True
        for year, rating in summary[trust]["cqc"].items():
            if year in dates:
                ax.plot(dates[year], RATINGS.index(rating) + 0.3, "o", color="#c44e52", ms=7,
                        label="simulated rating" if first else None)
                ax.annotate(SHORT_RATING[rating], (dates[year], RATINGS.index(rating) + 0.3), xytext=(0, -12),
                            textcoords="offset points", fontsize=8, ha="center")
                first = False
        mark_observed_ratings(ax, (observed or {}).get(trust, {}).get("cqc", {}), dates)
        ax.set_title(trust)
        ax.tick_params(axis="x", labelrotation=45)
    rating_axis(axes[0][0])
    axes[0][0].legend(fontsize=7, loc="upper left")
    finish(fig, "Latent quality index (line); CQC rating read at each inspection (dot) and published (X)", path, note)


COMPARED = ("l4l_complete_2021_03", "l4l_in_progress_2021_03", "rpiws_2019_07", "lead_time_reduction",
            "engagement_mean_final", "cqc_latest_score")


def plot_comparison(summary: dict, path, note: str = "", observed: dict | None = None):
    """One panel per statistic: a bar per trust, labelled with its value (a zero bar says 0), X observed."""
    trusts = list(summary)
    fig, axes = plt.subplots(2, 3, figsize=(13, 7))
    for ax, key in zip(axes.flat, COMPARED):
        seen = [(observed or {}).get(t, {}).get("final", {}).get(key) for t in trusts]
        values = [summary[t][key] for t in trusts]
        if key == "cqc_latest_score":
            rating_bands(ax)
            ax.plot(range(len(trusts)), np.add(values, 0.3), "o", color="#c44e52", ms=8, label="simulated")
            rating_axis(ax)
            offsets = 0.7
        else:
            bars = ax.bar(range(len(trusts)), values, color="#a6bddb", label="simulated")
            # inside the bar, so an observation's X never hides it; a zero bar reads 0 at the baseline
            ax.bar_label(bars, [f"{v:.3g}" if v else "" for v in values], fontsize=8, label_type="center")
            for x in (x for x, v in enumerate(values) if v == 0):
                ax.annotate("0", (x, 0), xytext=(0, 3), textcoords="offset points", ha="center", fontsize=8)
            ax.grid(axis="y", alpha=0.3)
            offsets = 0.0
        xs = [x for x, s in enumerate(seen) if s is not None]
        if xs:
            ax.plot(xs, [seen[x] + offsets for x in xs], **OBSERVED, label="observed")
        ax.set_xticks(range(len(trusts)), trusts)
        ax.set_title(output_label(key), fontsize=10)
        ax.margins(y=0.15)
    axes.flat[0].legend(fontsize=8)
    finish(fig, "Five trusts compared", path, note)


def surveyed_trusts(folder: Path, summary: dict) -> list[str]:
    """Trusts whose run held a survey with at least one tie (a trust without one gets no panel)."""
    trusts = []
    for trust, s in summary.items():
        path = Path(folder) / f"survey_network_{trust}.csv"
        if s.get("survey") and path.is_file() and len(pd.read_csv(path)):
            trusts.append(trust)
    return trusts


def plot_run(folder: Path, frame: pd.DataFrame, summary: dict) -> None:
    folder = Path(folder)
    note = run_note(folder)
    observed = observations(summary)
    plot_training(frame, folder / "training.png", note, observed)
    plot_rpiws(frame, folder / "rpiws.png", note, observed)
    plot_quality(frame, summary, folder / "quality.png", note, observed)
    plot_network(frame, folder / "network.png", note)
    plot_comparison(summary, folder / "comparison.png", note, observed)
    if trusts := surveyed_trusts(folder, summary):
        plot_survey_networks(folder, trusts, folder / "survey_networks.png")
    plot_contributions(frame, folder / "contributions.png")


# -- the posterior ensemble: trajectories with bands -------------------------------------------
def draw_band(ax, part: pd.DataFrame, colour: str, label: str | None = None) -> None:
    """Median line with the 50% (dark) and 90% (light) bands of one quantile table (date, q05 .. q95)."""
    dates = pd.to_datetime(part["date"])
    ax.fill_between(dates, part["q05"], part["q95"], color=colour, alpha=0.18, lw=0)
    ax.fill_between(dates, part["q25"], part["q75"], color=colour, alpha=0.4, lw=0)
    ax.plot(dates, part["median"], color=colour, lw=1.4, label=label)


def plot_ensemble_trajectories(bands: pd.DataFrame, path: Path, note: str = "") -> None:
    """Rows: weekly series; columns: trusts. Median, 50% and 90% bands over the ensemble; X observed.

    ``bands`` is the ensemble's quantile table (ensemble_series.csv): trust, variable, week, date,
    q05, q25, median, q75, q95."""
    trusts = list(dict.fromkeys(bands["trust"]))
    variables = [v for v in dict.fromkeys(bands["variable"])]
    observed = observations(trusts)
    fig, axes = plt.subplots(len(variables), len(trusts), figsize=(3.3 * len(trusts) + 0.8, 2.5 * len(variables)),
                             squeeze=False, sharex=True)
    for row, variable in enumerate(variables):
        for col, trust in enumerate(trusts):
            ax = axes[row][col]
            part = bands[(bands["trust"] == trust) & (bands["variable"] == variable)]
            if variable == "quality":   # one scale for every trust, so the bands line up across the row
                quality = bands[bands["variable"] == "quality"]
                rating_bands(ax, float(quality["q05"].min()), float(quality["q95"].max()))
                draw_band(ax, part, "#333333", "median, 50%, 90%")
                mark_observed_ratings(ax, observed[trust]["cqc"], inspection_dates(trust))
                if col == 0:
                    rating_axis(ax)
                    ax.set_ylabel(series_label(variable), fontsize=8)
                else:
                    ax.set_yticklabels([])
            else:
                draw_band(ax, part, style(col)["color"], "median, 50%, 90%")
                mark_observed_count(ax, observed[trust]["series"].get(variable))
                ax.grid(alpha=0.3)
                ax.set_ylim(bottom=0)
                if col == 0:
                    ax.set_ylabel(series_label(variable), fontsize=8)
            if row == 0:
                ax.set_title(trust)
            ax.tick_params(axis="x", labelrotation=45, labelsize=8)
    axes[0][0].legend(fontsize=7, loc="upper left")
    finish(fig, "Calibrated posterior ensemble: median with 50% and 90% bands over the runs; "
                "X: published observations (CQC ratings at inspections, counts at census dates)", path, note)
