"""Why each trust ends where it does: the latent quality index's change split by mechanism.

The model records, per trust and week, the change of the quality index due to each term of its
dynamics in timeseries columns ``quality_contribution_<term>`` (settling, engagement, practice,
process, instability, support, system, noise, ...; the terms are read from the columns, never
listed here), and their sums over the run in ``summary.json`` as ``quality_contributions: {term:
sum}`` (a batch results row flattens that to ``quality_contributions_<term>`` columns).

- one run: ``plot_contributions(frame, path)`` draws, per trust, each term's cumulative
  contribution over time and, below, the final sums per trust as diverging stacked bars;
- an ensemble: ``write_ensemble_contributions(summaries, out_dir)`` writes both of these:
  ``ensemble_contributions(summaries)`` gives the median and 90% interval of each
  term's summed contribution per trust (and of their total, term ``all_terms``), and
  ``plot_ensemble_contributions(table, path)`` draws them.

A frame or summaries without contributions give ``None`` (no figure) or an empty table, so that
callers need not check which model version wrote them.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from sim.experiments.figures import pyplot, save

COLUMN_PREFIX = "quality_contribution_"
SUMMARY_KEY = "quality_contributions"
FLAT_PREFIX = SUMMARY_KEY + "_"   # a summary flattened by sim.experiments.outputs.flatten_summary
TOTAL = "all_terms"
QUANTILES = {"q05": 0.05, "median": 0.5, "q95": 0.95}


def contribution_terms(columns: Iterable[str]) -> list[str]:
    """The terms of the ``quality_contribution_<term>`` columns, in the model's order."""
    return [column.removeprefix(COLUMN_PREFIX) for column in columns if column.startswith(COLUMN_PREFIX)]


def cumulative_contributions(frame: pd.DataFrame) -> pd.DataFrame:
    """Per trust, each term's contribution summed from the first week to each week (columns = terms)."""
    terms = contribution_terms(frame.columns)
    weekly = frame[[COLUMN_PREFIX + term for term in terms]].set_axis(terms, axis=1)
    cumulative = weekly.groupby(frame["trust"], sort=False).cumsum()
    time = pd.to_datetime(frame["date"]) if "date" in frame else frame["week"]
    return pd.concat([frame[["trust"]], time.rename("time"), cumulative], axis=1)


def final_contributions(frame: pd.DataFrame) -> pd.DataFrame:
    """Each term's contribution summed over the run: one row per trust, one column per term."""
    cumulative = cumulative_contributions(frame)
    return cumulative.groupby("trust", sort=False).last().drop(columns="time")


def term_colours(terms: list[str]) -> dict[str, tuple]:
    """One colour per term, the same in every panel and figure."""
    palette = pyplot().get_cmap("tab10" if len(terms) <= 10 else "tab20")
    return {term: palette(number % palette.N) for number, term in enumerate(terms)}


def plot_contributions(frame: pd.DataFrame, path: str | Path) -> Path | None:
    """One run's contributions: per trust the cumulative terms over time, then the final sums per trust.

    Returns the figure's path, or None if the frame has no ``quality_contribution_*`` columns.
    """
    terms = contribution_terms(frame.columns)
    if not terms:
        return None
    plt = pyplot()
    cumulative = cumulative_contributions(frame)
    trusts = list(dict.fromkeys(cumulative["trust"]))
    colours = term_colours(terms)
    figure = plt.figure(figsize=(max(3.4 * len(trusts), 8), 4.2 + 0.45 * len(trusts) + 1.2))
    grid = figure.add_gridspec(2, len(trusts), height_ratios=[3.2, 0.45 * len(trusts) + 1.2])
    lines_axes = [figure.add_subplot(grid[0, 0])]
    lines_axes += [figure.add_subplot(grid[0, column], sharey=lines_axes[0]) for column in range(1, len(trusts))]
    for ax, trust in zip(lines_axes, trusts):
        part = cumulative[cumulative["trust"] == trust]
        for term in terms:
            ax.plot(part["time"], part[term], color=colours[term], linewidth=1.2, label=term)
        ax.plot(part["time"], part[terms].sum(axis=1), color="black", linewidth=2, label="net change")
        ax.axhline(0, color="grey", linewidth=0.6)
        ax.set_title(trust)
        ax.tick_params(axis="x", labelrotation=45, labelsize=7)
        ax.grid(alpha=0.3)
    lines_axes[0].set_ylabel("cumulative change of quality")
    _diverging_bars(figure.add_subplot(grid[1, :]), final_contributions(frame).loc[trusts], colours)
    handles, labels = lines_axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="upper center", ncol=min(len(labels), 9), fontsize=8,
                  bbox_to_anchor=(0.5, 1.0), frameon=False)
    figure.suptitle("Why each trust ends where it does: each mechanism's contribution to the quality index", y=1.04)
    figure.tight_layout()
    return save(figure, Path(path))


def _diverging_bars(ax, finals: pd.DataFrame, colours: dict) -> None:
    """Per trust, positive terms stacked right of zero and negative ones left; a diamond at the net change."""
    positions = np.arange(len(finals))
    right = np.zeros(len(finals))
    left = np.zeros(len(finals))
    for term in finals.columns:
        values = finals[term].to_numpy(dtype=float)
        positive = np.clip(values, 0, None)
        negative = np.clip(values, None, 0)
        ax.barh(positions, positive, left=right, color=colours[term], height=0.6)
        ax.barh(positions, negative, left=left, color=colours[term], height=0.6)
        right += positive
        left += negative
    ax.plot(finals.sum(axis=1), positions, "D", color="black", markersize=6)
    ax.axvline(0, color="grey", linewidth=0.8)
    ax.set_yticks(positions, list(finals.index))
    ax.invert_yaxis()
    ax.set_xlabel("contribution to the quality index over the run (diamond: net change)")
    ax.grid(axis="x", alpha=0.3)


# -- ensembles --------------------------------------------------------------------------------------
def contribution_samples(summaries) -> pd.DataFrame:
    """Long table ``run, trust, term, value, weight`` from run summaries.

    ``summaries``: an iterable of summary dicts (summary.json's per-trust entries, with
    ``quality_contributions`` nested, or batch result rows with ``quality_contributions_<term>``
    columns), or a batch results DataFrame. The trust is the summary's ``trust`` (else
    ``scenario``); the weight its ``draw_weight`` or ``weight`` (else 1).
    """
    records = summaries.to_dict("records") if isinstance(summaries, pd.DataFrame) else list(summaries)
    rows = []
    for run, record in enumerate(records):
        nested = record.get(SUMMARY_KEY)
        contributions = nested if isinstance(nested, dict) else {
            key.removeprefix(FLAT_PREFIX): value for key, value in record.items() if key.startswith(FLAT_PREFIX)}
        weight = record.get("draw_weight", record.get("weight", 1.0))
        trust = record.get("trust", record.get("scenario"))
        rows.extend({"run": run, "trust": trust, "term": term, "value": float(value), "weight": float(weight)}
                    for term, value in contributions.items() if value is not None and np.isfinite(value))
    return pd.DataFrame(rows, columns=["run", "trust", "term", "value", "weight"])


def ensemble_contributions(summaries) -> pd.DataFrame:
    """Per trust and term: runs, weighted mean, median and 5%/95% quantiles of the summed contribution.

    Also a row per trust for ``all_terms`` (the terms' total in each run: the index's net change
    from them). Empty if no summary reports contributions.
    """
    from sim.experiments.compare import weighted_quantile  # imports the model: only when an ensemble is summarised

    samples = contribution_samples(summaries)
    if samples.empty:
        return pd.DataFrame(columns=["trust", "term", "runs", "mean", *QUANTILES])
    totals = samples.groupby(["run", "trust"], sort=False).agg(value=("value", "sum"), weight=("weight", "first"))
    samples = pd.concat([samples, totals.reset_index().assign(term=TOTAL)], ignore_index=True)
    rows = []
    for (trust, term), group in samples.groupby(["trust", "term"], sort=False):
        values, weights = group["value"].to_numpy(), group["weight"].to_numpy()
        rows.append({"trust": trust, "term": term, "runs": len(group),
                     "mean": float(np.average(values, weights=weights)),
                     **{name: weighted_quantile(values, weights, q) for name, q in QUANTILES.items()}})
    return pd.DataFrame(rows)


def plot_ensemble_contributions(table: pd.DataFrame, path: str | Path) -> Path | None:
    """One panel per trust: each term's median (dot) and 90% interval (bar); the total in black."""
    if table.empty:
        return None
    plt = pyplot()
    trusts = list(dict.fromkeys(table["trust"]))
    terms = [term for term in dict.fromkeys(table["term"]) if term != TOTAL]
    colours = {**term_colours(terms), TOTAL: "black"}
    rows = [*terms, TOTAL]
    figure, axes = plt.subplots(1, len(trusts), figsize=(3.2 * len(trusts) + 1.5, 0.35 * len(rows) + 1.6),
                                sharex=True, sharey=True, squeeze=False)
    for ax, trust in zip(axes[0], trusts):
        part = table[table["trust"] == trust].set_index("term").reindex(rows)
        positions = np.arange(len(rows))
        for position, term in zip(positions, rows):
            if pd.isna(part.loc[term, "median"]):
                continue
            ax.hlines(position, part.loc[term, "q05"], part.loc[term, "q95"], color=colours[term], linewidth=3)
            ax.plot(part.loc[term, "median"], position, "o", color=colours[term])
        ax.axvline(0, color="grey", linewidth=0.8)
        ax.set_title(f"{trust} ({int(part['runs'].max())} runs)", fontsize=10)
        ax.grid(axis="x", alpha=0.3)
        ax.set_yticks(positions, [term if term != TOTAL else "net change (all terms)" for term in rows])
    axes[0][0].invert_yaxis()
    figure.supxlabel("contribution to the quality index over the run")
    figure.suptitle("Each mechanism's contribution per trust across the ensemble (dot: median; bar: 90% interval)")
    figure.tight_layout()
    return save(figure, Path(path))


def write_ensemble_contributions(summaries, out_dir: str | Path) -> list[Path]:
    """``contributions.csv`` and ``contributions.png`` in ``out_dir``; nothing if no run reports contributions."""
    table = ensemble_contributions(summaries)
    if table.empty:
        return []
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    table.to_csv(out_dir / "contributions.csv", index=False, float_format="%.6g")
    return [out_dir / "contributions.csv", plot_ensemble_contributions(table, out_dir / "contributions.png")]
