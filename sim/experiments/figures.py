"""Figure helpers shared by the sensitivity and what-if plots (matplotlib is imported on first use)."""

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
