"""Figure helpers shared by the sensitivity and what-if plots, and the sweep figure.

matplotlib is imported on first use, so that the command line starts fast."""

from __future__ import annotations

from pathlib import Path


def pyplot():
    """matplotlib.pyplot with the file-only Agg backend, imported only when a figure is drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def output_grid(panels: int, panel_width: float, panel_height: float):
    """A figure with one panel per output, up to three per row; spare panels hidden."""
    columns = min(3, panels)
    rows = -(-panels // columns)
    figure, axes = pyplot().subplots(rows, columns, figsize=(panel_width * columns, panel_height * rows), squeeze=False)
    for ax in axes.flat[panels:]:
        ax.set_visible(False)
    return figure, list(axes.flat)


def save(figure, path: Path) -> Path:
    figure.savefig(path, dpi=150, bbox_inches="tight")
    pyplot().close(figure)
    return path


CONTINUOUS_LEVELS = 10   # an input with more distinct values than this is drawn as a scatter with binned means


def plot_sweep(runs, outputs: list[str], inputs: list[str], title: str):
    """Rows: numeric outputs; columns: the varied inputs. Per scenario (colour and marker): the mean of the
    runs at each level of the input with the interval where 90% of them fall, and each design point's mean
    as a small dot (other inputs vary between those dots); a continuous input gets binned means."""
    import numpy as np
    import pandas as pd

    from sim.experiments.outputs import is_numeric_output, output_label
    from sim.plots import style

    outputs = [o for o in outputs if is_numeric_output(o)]
    plt = pyplot()
    figure, axes = plt.subplots(len(outputs), len(inputs), figsize=(3.8 * len(inputs) + 0.5, 2.8 * len(outputs)),
                                squeeze=False)
    scenarios = list(dict.fromkeys(runs["scenario"]))
    for col, name in enumerate(inputs):
        numeric = pd.api.types.is_numeric_dtype(runs[name])
        levels = list(dict.fromkeys(runs[name].sort_values() if numeric else runs[name]))   # text: the design's order
        categorical = not numeric or len(levels) <= CONTINUOUS_LEVELS
        for row, output in enumerate(outputs):
            ax = axes[row][col]
            for index, scenario in enumerate(scenarios):
                look = style(index)
                part = runs[runs["scenario"] == scenario]
                points = part.groupby(["case", "point"]).agg(x=(name, "first"), y=(output, "mean"))
                offset = (index - (len(scenarios) - 1) / 2) * 0.08
                if categorical:
                    at = {level: i for i, level in enumerate(levels)}
                    xs = points["x"].map(at) + offset
                    grouped = part.groupby(name)[output]
                    means, low, high = grouped.mean(), grouped.quantile(0.05), grouped.quantile(0.95)
                    x = np.array([at[level] for level in means.index]) + offset
                    below, above = (means - low).clip(lower=0), (high - means).clip(lower=0)   # rounding: never < 0
                    ax.errorbar(x, means, yerr=[below, above], color=look["color"], marker=look["marker"],
                                linestyle=look["linestyle"], capsize=3, label=scenario, lw=1.2)
                    ax.plot(xs, points["y"], ".", color=look["color"], alpha=0.35, ms=4)
                else:
                    ax.plot(points["x"], points["y"], ".", color=look["color"], alpha=0.35, ms=4)
                    bins = np.quantile(points["x"], np.linspace(0, 1, 9))
                    binned = points.groupby(np.digitize(points["x"], bins[1:-1]))
                    ax.plot(binned["x"].mean(), binned["y"].mean(), color=look["color"], marker=look["marker"],
                            linestyle=look["linestyle"], label=scenario)
            if categorical:
                ax.set_xticks(range(len(levels)), [f"{v:.3g}" if isinstance(v, float) else str(v) for v in levels],
                              fontsize=8)
            if row == len(outputs) - 1:
                ax.set_xlabel(name.removeprefix("factor_").removeprefix("param_"), fontsize=9)
            if col == 0:
                ax.set_ylabel("\n".join(_wrap(output_label(output), 28)), fontsize=8)
            ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    explained = (f"{title}. Line: mean of the runs at each level of the input (in bins for a continuous one), "
                 "bars: where 90% of them fall; dots: each design point's mean (the other inputs vary between them)")
    figure.suptitle("\n".join(_wrap(explained, int(figure.get_figwidth() * 11))), fontsize=10)
    figure.tight_layout()
    return figure


def _wrap(text: str, width: int) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width)
