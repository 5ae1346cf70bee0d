"""Figures of a run folder: what a reader would rather look at than read."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import networkx as nx  # noqa: E402
import pandas as pd  # noqa: E402

from sim.scenario import RATINGS  # noqa: E402

BAND_COLOURS = ("#f4cccc", "#fce5cd", "#d9ead3", "#cfe2f3")
RATING_LABELS = ("Inadequate", "Requires improvement", "Good", "Outstanding")
SHORT_RATING = {"inadequate": "I", "requires_improvement": "RI", "good": "G", "outstanding": "O"}


def _by_trust(frame: pd.DataFrame):
    for trust, part in frame.groupby("trust", sort=False):
        yield trust, part.assign(date=pd.to_datetime(part["date"]))


def _panels(frame, columns: list[tuple[str, str]], title: str, path: Path, sharey=False):
    fig, axes = plt.subplots(1, len(columns), figsize=(5 * len(columns), 3.8), sharey=sharey, squeeze=False)
    for ax, (column, label) in zip(axes[0], columns):
        for trust, part in _by_trust(frame):
            ax.plot(part["date"], part[column], label=trust)
        ax.set_title(label)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.suptitle(title)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_training(frame, path):
    _panels(frame, [("l4l_complete", "L4L complete"), ("l4l_in_progress", "L4L in progress"),
                    ("alt_complete", "ALT complete"), ("practising_share", "Share of staff practising")],
            "Training diffusion", path)


def plot_rpiws(frame, path):
    _panels(frame, [("rpiws", "RPIWs held (cumulative)"), ("rpiws_cancelled", "RPIWs cancelled (cumulative)"),
                    ("value_streams", "Value streams opened"), ("lead_time_removed_share", "Lead time removed (share)")],
            "Rapid Process Improvement Workshops", path)


def plot_network(frame, path):
    _panels(frame, [("reciprocity", "Reciprocity of all ties"), ("trained_ties_reciprocity", "Reciprocity among trained"),
                    ("ties", "Ties"), ("engagement_mean", "Mean engagement")],
            "Improvement network", path)


def plot_quality(frame, summary: dict, path):
    trusts = list(dict.fromkeys(frame["trust"]))
    fig, axes = plt.subplots(1, len(trusts), figsize=(3.6 * len(trusts), 3.6), sharey=True, squeeze=False)
    for ax, (trust, part) in zip(axes[0], _by_trust(frame)):
        for band, colour in enumerate(BAND_COLOURS):
            ax.axhspan(band, band + 1, color=colour, zorder=0)
        ax.plot(part["date"], part["quality"], color="black", lw=1.2)
        for when, rating in zip(summary[trust].get("inspection_dates", []), summary[trust]["cqc"].values()):
            ax.plot(pd.Timestamp(when), RATINGS.index(rating) + 0.5, "o", color="#c44e52", ms=7)
            ax.annotate(SHORT_RATING[rating], (pd.Timestamp(when), RATINGS.index(rating) + 0.5),
                        xytext=(0, 7), textcoords="offset points", fontsize=8, ha="center")
        ax.set_title(trust)
        ax.set_ylim(0, 4)
        ax.tick_params(axis="x", labelrotation=45)
    axes[0][0].set_yticks([0.5, 1.5, 2.5, 3.5], RATING_LABELS, fontsize=7)
    fig.suptitle("Latent quality index (line) and CQC ratings read at inspections (dots)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_comparison(summary: dict, path):
    trusts = list(summary)
    stats = [("l4l_complete_2021_03", "L4L complete, Mar 2021"), ("l4l_in_progress_2021_03", "L4L in progress, Mar 2021"),
             ("rpiws_2019_07", "RPIWs by Jul 2019"), ("lead_time_reduction", "Lead-time reduction (RPIWs to Jul 2019)"),
             ("engagement_mean_final", "Mean engagement, end"), ("cqc_latest_score", "Latest CQC (0 inadequate .. 3 outstanding)")]
    fig, axes = plt.subplots(2, 3, figsize=(13, 6.5))
    for ax, (key, label) in zip(axes.flat, stats):
        ax.bar(trusts, [summary[t][key] for t in trusts], color="#4c72b0")
        ax.set_title(label, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle("Five trusts compared")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_run(folder: Path, frame: pd.DataFrame, summary: dict) -> None:
    folder = Path(folder)
    plot_training(frame, folder / "training.png")
    plot_rpiws(frame, folder / "rpiws.png")
    plot_quality(frame, summary, folder / "quality.png")
    plot_network(frame, folder / "network.png")
    plot_comparison(summary, folder / "comparison.png")
    trusts = [t for t in summary if (folder / f"survey_network_{t}.csv").exists()]
    if trusts:
        plot_survey_networks(folder, trusts, folder / "survey_networks.png")
