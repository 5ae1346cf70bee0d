"""Scenario discovery: in which region of a sweep's inputs does an outcome happen? PRIM and CART (EMA Workbench).

    orgsim discover results/discovery_generic_trust --outcome "practising_share_final < 0.1"

reads a sweep's results folder (one row per run: the design's inputs ``context_*``, ``factor_*``, ``param_*``
and the outputs), marks the runs where the outcome holds, and asks two rule-induction methods which ranges
and levels of the inputs that vary hold them:

- PRIM (Friedman and Fisher 1999; ``ema_workbench.analysis.prim``, as in Bryant and Lempert 2010) peels the
  input space down to a box, trading coverage (the share of the outcome's runs inside the box) against
  density (the share of the box's runs with the outcome); each restriction of the chosen box has a quasi-p
  value (a one-sided binomial test of the density gained by it);
- CART (``ema_workbench.analysis.cart``, scikit-learn's tree): a classification tree whose leaves are boxes.

The outcome is a condition over the outputs, read by a small parser of its own (``outcome_mask``): comparisons,
``and``/``or``/``not`` (or ``&``/``|``/``~``), arithmetic, numbers, quoted text and ``in [...]``; CQC ratings
compare in their order (``cqc_latest < cqc_2014``: the latest rating is worse than the 2014 one). Nothing
in it is ever run as Python. Each run is one case (replicates are cases with the same inputs), so a box's
density includes the model's own noise.
"""

from __future__ import annotations

import argparse
import ast
import datetime as dt
import operator
import re
import shlex
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import sim
from sim.argtypes import add_workers_option, positive_int
from sim.errors import InputError
from sim.experiments.batch import read_manifest, read_runs
from sim.experiments.cluster import add_cluster_options
from sim.experiments.figures import pyplot, save
from sim.runner import AtomicFolder, git_commit, write_json
from sim.scenario import RATINGS

INPUT_PREFIXES = ("context_", "factor_", "param_")
BOOKKEEPING = ("run_index", "case", "case_index", "point", "replicate", "seed_index", "base_seed", "scale", "end",
               "overrides", "scenario")
SIGNIFICANT = 0.05           # a restriction with a quasi-p value at or above this may be noise
DEFAULT_OUT = Path("results") / "discovery"


# -- the outcome expression -------------------------------------------------------------------------------------
_COMPARISONS = {ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
                ast.Eq: operator.eq, ast.NotEq: operator.ne}
_ARITHMETIC = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}
ALLOWED = ("comparisons (< <= > >= == !=, chained), and/or/not (or & | ~), + - * /, numbers, 'quoted text', "
           "True/False, name in [...], and output columns")


class _Outcome:
    """Evaluates one parsed expression over a table of outputs, column-wise. Only the nodes below exist."""

    def __init__(self, expression: str, outputs: pd.DataFrame, inputs: list[str]):
        self.expression, self.outputs, self.inputs = expression, outputs, inputs
        self.used: list[str] = []

    def fail(self, message: str) -> InputError:
        return InputError(f"--outcome {self.expression!r}: {message}")

    def condition(self, node) -> pd.Series:
        value = self.value(node)
        if not (isinstance(value, pd.Series) and pd.api.types.is_bool_dtype(value)):
            raise self.fail(f"{ast.unparse(node)!r} is not a condition (true or false per run); "
                            "compare it, e.g. quality_final < 1")
        return value

    def value(self, node):
        match node:
            case ast.BoolOp(op=ast.And() | ast.Or() as op, values=values):
                combine = operator.and_ if isinstance(op, ast.And) else operator.or_
                result = self.condition(values[0])
                for other in values[1:]:
                    result = combine(result, self.condition(other))
                return result
            case ast.BinOp(op=ast.BitAnd() | ast.BitOr() as op, left=left, right=right):
                combine = operator.and_ if isinstance(op, ast.BitAnd) else operator.or_
                return combine(self.condition(left), self.condition(right))
            case ast.UnaryOp(op=ast.Not() | ast.Invert(), operand=operand):
                return ~self.condition(operand)
            case ast.UnaryOp(op=ast.USub() | ast.UAdd() as op, operand=operand):
                number = self.number(operand)
                return -number if isinstance(op, ast.USub) else number
            case ast.BinOp(op=op, left=left, right=right) if type(op) in _ARITHMETIC:
                return _ARITHMETIC[type(op)](self.number(left), self.number(right))
            case ast.Compare(left=left, ops=ops, comparators=comparators):
                result, current = None, self.value(left)
                for op, right_node in zip(ops, comparators):
                    step, current = self.compare(current, op, right_node)
                    result = step if result is None else result & step
                return result
            case ast.Name(id=name):
                return self.column(name)
            case ast.Constant(value=value) if isinstance(value, (bool, int, float, str)):
                return value
            case _:
                raise self.fail(f"{ast.unparse(node)!r} is not allowed here; allowed: {ALLOWED}")

    def number(self, node):
        value = self.value(node)
        numeric = (pd.api.types.is_numeric_dtype(value) and not pd.api.types.is_bool_dtype(value)
                   if isinstance(value, pd.Series) else isinstance(value, (int, float)) and not isinstance(value, bool))
        if not numeric:
            raise self.fail(f"{ast.unparse(node)!r} is not a number (ratings compare by order: use < or >, or the "
                            "score cqc_latest_score)")
        return value

    def column(self, name: str) -> pd.Series:
        if name not in self.outputs:
            kind = "an input of the design; the outcome is a condition on outputs" if name in self.inputs else \
                "unknown column"
            raise self.fail(f"{name!r} is {kind}; outputs in these results: {', '.join(self.outputs.columns)}")
        if name not in self.used:
            self.used.append(name)
        return self.outputs[name]

    def compare(self, left, op, right_node):
        if isinstance(op, (ast.In, ast.NotIn)):
            if not isinstance(right_node, (ast.List, ast.Tuple, ast.Set)):
                raise self.fail("'in' needs a list of values, e.g. cqc_latest in ['inadequate', 'good']")
            values = [self.value(element) for element in right_node.elts]
            if any(isinstance(v, pd.Series) for v in values) or not isinstance(left, pd.Series):
                raise self.fail("'in' compares a column with a list of fixed values")
            for v in values:
                self._check_rating(left, v)
            found = left.isin(values)
            return (~found if isinstance(op, ast.NotIn) else found), None
        if type(op) not in _COMPARISONS:
            raise self.fail(f"operator {type(op).__name__} is not allowed; allowed: {ALLOWED}")
        right = self.value(right_node)
        self._check_rating(left, right)
        self._check_rating(right, left)
        try:
            result = _COMPARISONS[type(op)](left, right)
        except TypeError as error:
            raise self.fail(f"cannot compare {ast.unparse(right_node)!r} this way ({error})") from None
        if not isinstance(result, pd.Series):
            raise self.fail("a comparison needs at least one output column")
        return result.astype(bool), right

    def _check_rating(self, column, other) -> None:
        if isinstance(column, pd.Series) and isinstance(column.dtype, pd.CategoricalDtype):
            if isinstance(other, str) and other not in RATINGS:
                raise self.fail(f"{other!r} is not a CQC rating; ratings, worst first: {', '.join(RATINGS)}")
            if isinstance(other, (int, float)) and not isinstance(other, bool):
                raise self.fail("a rating compares with a rating ('good') or another rating column; "
                                "for numbers use cqc_latest_score")


def rating_columns(table: pd.DataFrame) -> pd.DataFrame:
    """CQC rating columns (text) as ordered categories, worst first, so that ratings compare by order."""
    table = table.copy()
    for column in table.columns:
        values = table[column].dropna()
        if not pd.api.types.is_numeric_dtype(table[column]) and len(values) and values.isin(RATINGS).all():
            table[column] = pd.Categorical(table[column], categories=RATINGS, ordered=True)
    return table


def outcome_mask(expression: str, outputs: pd.DataFrame, inputs: list[str] = ()) -> tuple[pd.Series, pd.Series, list]:
    """The outcome per run (bool), which runs have a value of every output it reads, and the outputs it reads.

    ``expression`` is parsed with Python's ``ast`` into a syntax tree and evaluated node by node over the
    columns of ``outputs``: never compiled or run. A run missing a value of an output it reads (a rating at an
    inspection the run did not reach) is undefined, not false. Raises InputError naming --outcome.
    """
    if not expression.strip():
        raise InputError("--outcome is empty; give a condition on the outputs, e.g. 'quality_final < 1'")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as error:
        raise InputError(f"--outcome {expression!r}: not a valid expression ({error.msg}, at column "
                         f"{error.offset}); allowed: {ALLOWED}") from None
    evaluator = _Outcome(expression, rating_columns(outputs), list(inputs))
    outcome = evaluator.condition(tree.body)
    defined = outputs[evaluator.used].notna().all(axis=1)
    return outcome & defined, defined, evaluator.used


# -- the results: inputs and outputs ---------------------------------------------------------------------------
def design_inputs(runs: pd.DataFrame) -> list[str]:
    """The inputs that vary between runs: context levers, scenario factors, parameters, and the scenario."""
    inputs = [c for prefix in INPUT_PREFIXES for c in runs.columns
              if c.startswith(prefix) and runs[c].nunique(dropna=False) > 1]
    return inputs + (["scenario"] if runs["scenario"].nunique() > 1 else [])


def output_columns(runs: pd.DataFrame) -> list[str]:
    return [c for c in runs.columns if c not in BOOKKEEPING and not c.startswith(INPUT_PREFIXES)]


def load_results(folder: Path) -> tuple[pd.DataFrame, dict]:
    if not (folder / "runs").is_dir() or not (folder / "manifest.json").is_file():
        raise InputError(f"{folder}: not a sweep's results folder (no runs/ and manifest.json); run "
                         "`orgsim sweep EXPERIMENT` first and give its folder, e.g. results/<experiment name>")
    runs = read_runs(folder)
    if runs.empty:
        raise InputError(f"{folder}: no finished runs in runs/; run or resume the sweep first")
    return runs, read_manifest(folder)


def input_table(runs: pd.DataFrame, inputs: list[str]) -> pd.DataFrame:
    """The inputs as PRIM and CART read them: numbers as floats (ema_workbench 3.0.0 fails pasting a whole-number
    column under pandas 3), text and true/false as categories. ``scenario`` is renamed: the EMA Workbench drops a
    column of that name."""
    x = runs[inputs].rename(columns={"scenario": "scenario_name"}).reset_index(drop=True)
    for column in x.columns:
        if pd.api.types.is_bool_dtype(x[column]) or not pd.api.types.is_numeric_dtype(x[column]):
            x[column] = x[column].astype(str).astype("category")
        else:
            x[column] = x[column].astype("float64")
    return x


# -- PRIM and CART ---------------------------------------------------------------------------------------------
def _ema():
    """The EMA Workbench's prim and cart modules (its import warns about optional extras it does not need here)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from ema_workbench.analysis import cart, prim
    return prim, cart


def choose_box(trajectory: pd.DataFrame, min_density: float) -> tuple[int, str]:
    """The box with the largest coverage whose density reaches ``min_density`` (fewest restrictions on a tie);
    if none does, the best balance of the two (their harmonic mean, F1)."""
    reaching = trajectory[trajectory["density"] >= min_density - 1e-12]
    if len(reaching):
        best = reaching.sort_values(["coverage", "res_dim", "density"], ascending=[False, True, False]).index[0]
        return int(best), f"the largest coverage among the boxes of density at least {min_density:g}"
    f1 = 2 * trajectory["coverage"] * trajectory["density"] / (trajectory["coverage"] + trajectory["density"])
    return int(f1.idxmax()), (f"no box reaches density {min_density:g} (the densest: "
                              f"{trajectory['density'].max():.2f}), so the best balance of coverage and density "
                              "(their harmonic mean, F1)")


def box_limits(limits: pd.DataFrame, initial: pd.DataFrame, p_values: dict | None = None) -> list[dict]:
    """One row per restricted input: its range (or levels) in the box and in the data, and quasi-p values."""
    rows = []
    for column in limits.columns:
        low, high = limits[column].iloc[0], limits[column].iloc[1]
        full_low, full_high = initial[column].iloc[0], initial[column].iloc[1]
        if isinstance(low, set):
            if set(low) == set(full_low):
                continue
            row = {"input": column, "kind": "levels", "box": ", ".join(sorted(map(str, low))),
                   "full": ", ".join(sorted(map(str, full_low)))}
        else:
            if low == full_low and high == full_high:
                continue
            row = {"input": column, "kind": "range", "box_low": low, "box_high": high,
                   "full_low": full_low, "full_high": full_high,
                   "box": _range_text(low, high, full_low, full_high), "full": f"{full_low:.4g} .. {full_high:.4g}"}
        # EMA's quasi-p values: [lower limit, upper limit] of a range, [levels, -1] of a set; -1: not restricted
        qp_low, qp_high = [np.nan if v is None or v < 0 else float(v) for v in (p_values or {}).get(column, [-1, -1])]
        qp = np.nanmax([qp_low, qp_high]) if not np.isnan([qp_low, qp_high]).all() else np.nan
        row.update(qp_low=qp_low, qp_high=qp_high, qp=qp, significant=bool(qp < SIGNIFICANT))   # every side
        rows.append(row)
    return rows


def _range_text(low, high, full_low, full_high) -> str:
    if low != full_low and high != full_high:
        return f"{low:.4g} .. {high:.4g}"
    return f">= {low:.4g}" if low != full_low else f"<= {high:.4g}"


def run_prim(x: pd.DataFrame, y: np.ndarray, boxes: int, min_density: float, box_index: int | None,
             peel_alpha: float, paste_alpha: float, mass_min: float, drop_insignificant: bool = True
             ) -> tuple[object, list[dict]]:
    """PRIM's successive boxes, each found on the runs no earlier box holds. On each peeling trajectory one box is
    picked (``choose_box``, or ``box_index`` for the first); then, unless ``drop_insignificant`` is false, its
    restrictions with a quasi-p value at or above ``SIGNIFICANT`` are dropped one at a time, the weakest first
    (Bryant and Lempert 2010), each drop adding a box to the trajectory with fresh quasi-p values."""
    prim, _ = _ema()
    algorithm = prim.Prim(x, y.astype(bool), peel_alpha=peel_alpha, paste_alpha=paste_alpha, mass_min=mass_min)
    found = []
    for number in range(1, boxes + 1):
        if number > 1 and y.sum() == sum(int(y[e["runs_in_box"]].sum()) for e in found):
            break                                   # every run with the outcome is in an earlier box
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            box = algorithm.find_box()
        if box is None:
            break
        peeled = len(box.peeling_trajectory)
        if number == 1 and box_index is not None:
            if not 0 <= box_index < peeled:
                raise InputError(f"--box {box_index}: the peeling trajectory has boxes 0 to {peeled - 1}")
            picked, why = box_index, "chosen with --box"
        else:
            picked, why = choose_box(box.peeling_trajectory, min_density)
        box.select(picked)
        chosen, dropped = picked, []
        while drop_insignificant:
            limits = box_limits(box.box_lims[chosen], box.box_lims[0], box.p_values[chosen])
            sides = [(row, side, qp) for row in limits for side, qp in ((0, row["qp_low"]), (1, row["qp_high"]))
                     if not np.isnan(qp)]
            weak = [side for side in sides if side[2] >= SIGNIFICANT]
            if not weak or len(sides) == 1:
                break                               # the last restriction stays (flagged) rather than no box
            row, side, qp = max(weak, key=lambda side: side[2])
            chosen = _drop_limit(algorithm, box, chosen, row["input"], None if row["kind"] == "levels" else side)
            dropped.append({"input": row["input"], "limit": "levels" if row["kind"] == "levels" else
                            ("lower", "upper")[side], "qp": qp})
        trajectory = box.peeling_trajectory.copy()
        trajectory["step"] = ["peel/paste"] * peeled + ["drop"] * (len(trajectory) - peeled)
        found.append({"number": number, "box": box, "picked": picked, "chosen": chosen, "why": why,
                      "dropped": dropped, "trajectory": trajectory,
                      "limits": box_limits(box.box_lims[chosen], box.box_lims[0], box.p_values[chosen]),
                      "stats": trajectory.loc[chosen, ["coverage", "density", "mass", "res_dim", "n", "k"]].to_dict(),
                      "runs_in_box": np.asarray(box.yi)})
        if not found[-1]["limits"]:
            break                                   # an unrestricted box: nothing more to find
    return algorithm, found


def _drop_limit(algorithm, box, index: int, column: str, side: int | None) -> int:
    """Add to the trajectory box ``index`` with one limit back at the data's: the lower (0) or upper (1) end of a
    range, or all levels (``side`` None). ``PrimBox.drop_restriction`` would free both ends of a range at once."""
    limits, initial = box.box_lims[index].copy(), box.box_lims[0]
    if side is None:
        limits[column] = pd.Series([set(initial[column].iloc[0]), set(initial[column].iloc[1])], index=limits.index,
                                   dtype=object)
    else:
        limits.loc[limits.index[side], column] = initial[column].iloc[side]
    remaining = algorithm.yi_remaining
    box.update(limits, remaining[_in_box(algorithm.x.loc[remaining], limits)])
    return len(box.peeling_trajectory) - 1


def _in_box(x: pd.DataFrame, limits: pd.DataFrame) -> np.ndarray:
    inside = np.ones(len(x), dtype=bool)
    for column in limits.columns:
        low, high = limits[column].iloc[0], limits[column].iloc[1]
        inside &= (x[column].isin(list(low)) if isinstance(low, set) else x[column].between(low, high)).to_numpy()
    return inside


def run_cart(x: pd.DataFrame, y: np.ndarray, mass_min: float):
    """The EMA Workbench's CART (a scikit-learn tree on the inputs, categories as yes/no dummies, leaves of at least
    ``mass_min`` of the runs) and a table of its leaves: each leaf's rule, coverage, density and mass.

    The leaves are read from the fitted tree here: ``CART.boxes`` of ema_workbench 3.0.0 drops the level a
    leaf takes on the "is that level" side of a split and shares one set of levels between leaves."""
    _, cart = _ema()
    tree = cart.CART(x, y.astype(int), mass_min=mass_min)
    tree.build_tree()
    fitted = tree.clf.tree_
    names = tree.feature_names
    leaf_of_run = tree.clf.apply(tree._x.astype(float))
    rows = []

    def walk(node: int, conditions: list[tuple[str, str, float]]) -> None:
        if fitted.children_left[node] == -1:
            inside = leaf_of_run == node
            rows.append({"leaf": node, "coverage": y[inside].sum() / y.sum(), "density": y[inside].mean(),
                         "mass": inside.mean(), "runs": int(inside.sum()), **_leaf_rule(conditions, x, tree.sep)})
            return
        feature, threshold = names[fitted.feature[node]], float(fitted.threshold[node])
        walk(fitted.children_left[node], [*conditions, (feature, "<=", threshold)])
        walk(fitted.children_right[node], [*conditions, (feature, ">", threshold)])

    walk(0, [])
    return tree, pd.DataFrame(rows)


def _leaf_rule(conditions: list[tuple[str, str, float]], x: pd.DataFrame, separator: str) -> dict:
    """The path to a leaf as one restriction per input: a range, or the levels left."""
    ranges, levels = {}, {}
    for feature, side, threshold in conditions:
        if separator in feature:                 # a dummy: <= 0.5 is "not this level", > 0.5 is "this level"
            column, level = feature.split(separator, 1)
            allowed = levels.setdefault(column, set(map(str, x[column].cat.categories)))
            levels[column] = allowed - {level} if side == "<=" else allowed & {level}
        else:
            low, high = ranges.get(feature, (-np.inf, np.inf))
            ranges[feature] = (low, min(high, threshold)) if side == "<=" else (max(low, threshold), high)
    parts = [f"{column} >= {low:.4g}" if high == np.inf else f"{column} <= {high:.4g}" if low == -np.inf
             else f"{column} in {low:.4g} .. {high:.4g}" for column, (low, high) in ranges.items()]
    parts += [f"{column} in {{{', '.join(sorted(allowed))}}}" for column, allowed in levels.items()]
    return {"restricted": len(parts), "rule": " and ".join(parts) or "(all runs)"}


def _rule_text(rule: dict) -> str:
    return f"in {{{rule['box']}}}" if rule["kind"] == "levels" else (
        rule["box"] if rule["box"].startswith(("<", ">")) else f"in {rule['box']}")


def cart_feature_names(tree) -> list[str]:
    """scikit-learn's features, with the EMA Workbench's dummy separator written as '='."""
    return [name.replace(tree.sep, "=") for name in tree.feature_names]


# -- figures -------------------------------------------------------------------------------------------------------
def plot_tradeoff(found: list[dict], title: str):
    """Coverage against density along each PRIM peeling trajectory, coloured by the number of restricted inputs;
    the box picked on it ringed in grey, the boxes left by dropping restrictions that are not significant as
    squares, the final box ringed in red."""
    plt = pyplot()
    figure, axes = plt.subplots(1, len(found), figsize=(5.8 * len(found), 5), squeeze=False)
    for ax, entry in zip(axes[0], found):
        trajectory = entry["trajectory"]
        colours = {"c": trajectory["res_dim"], "cmap": "viridis", "vmin": 0, "vmax": max(trajectory["res_dim"].max(), 1)}
        peeled, drops = trajectory[trajectory["step"] != "drop"], trajectory[trajectory["step"] == "drop"]
        points = ax.scatter(peeled["coverage"], peeled["density"], s=18, **{**colours, "c": peeled["res_dim"]})
        if len(drops):
            path = trajectory.loc[[entry["picked"], *drops.index]]
            ax.plot(path["coverage"], path["density"], color="grey", lw=0.8, ls=":")
            ax.scatter(drops["coverage"], drops["density"], marker="s", s=30, **{**colours, "c": drops["res_dim"]},
                       label="after dropping a restriction that is not significant")
            picked = trajectory.loc[entry["picked"]]
            ax.plot(picked["coverage"], picked["density"], "o", ms=12, mfc="none", mec="grey", mew=1.2,
                    label=f"picked on the trajectory: box {entry['picked']}")
        chosen = trajectory.loc[entry["chosen"]]
        ax.plot(chosen["coverage"], chosen["density"], "o", ms=14, mfc="none", mec="red", mew=1.5,
                label=f"chosen: box {entry['chosen']} (coverage {chosen['coverage']:.2f}, "
                      f"density {chosen['density']:.2f})")
        ax.axhline(trajectory["density"].iloc[0], color="grey", lw=0.8, ls="--", label="share of runs with the outcome")
        ax.set(xlim=(0, 1.05), ylim=(0, 1.05), xlabel="coverage (share of the outcome's runs inside the box)",
               ylabel="density (share of the box's runs with the outcome)",
               title=f"PRIM box {entry['number']}: peeling trajectory")
        figure.colorbar(points, ax=ax, label="restricted inputs")
        ax.legend(fontsize=7, loc="lower left")
        ax.grid(alpha=0.3)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return figure


def plot_box_limits(entry: dict, title: str):
    """The box: each restricted input's limits (blue) against its range in the data (grey), or its levels (blue:
    inside the box), with the quasi-p values beside the names. (The EMA Workbench's box figure draws a set of
    levels as a segment of the first levels, which misreads when the box keeps later ones.)"""
    plt = pyplot()
    limits = entry["limits"]
    figure, ax = plt.subplots(figsize=(9, 0.9 + 0.75 * len(limits)))
    for position, row in enumerate(reversed(limits)):
        ax.plot([0, 1], [position, position], color="lightgrey", lw=6, solid_capstyle="butt")
        if row["kind"] == "levels":
            levels, inside = row["full"].split(", "), row["box"].split(", ")
            for j, level in enumerate(levels):
                at, kept = (j + 0.5) / len(levels), level in inside
                ax.plot(at, position, "o", ms=9, mfc="tab:blue" if kept else "white",
                        mec="tab:blue" if kept else "grey")
                ax.annotate(level, (at, position), xytext=(0, 8), textcoords="offset points", ha="center",
                            fontsize=7, color="tab:blue" if kept else "grey")
        else:
            span = (row["full_high"] - row["full_low"]) or 1.0
            low, high = [(v - row["full_low"]) / span for v in (row["box_low"], row["box_high"])]
            ax.plot([low, high], [position, position], color="tab:blue", lw=6, solid_capstyle="butt")
            for at, value, moved in ((low, row["box_low"], low > 0), (high, row["box_high"], high < 1)):
                if moved:
                    ax.annotate(f"{value:.3g}", (at, position), xytext=(0, 8), textcoords="offset points",
                                ha="center", fontsize=7, color="tab:blue")
            ax.annotate(f"{row['full_low']:.3g}", (0, position), xytext=(-4, 0), textcoords="offset points",
                        ha="right", va="center", fontsize=7)
            ax.annotate(f"{row['full_high']:.3g}", (1, position), xytext=(4, 0), textcoords="offset points",
                        ha="left", va="center", fontsize=7)
    ax.set_yticks(range(len(limits)), [f"{row['input']}\n(qp {row['qp']:.2g}" + ("" if row["significant"] else
                                       ", not significant") + ")" for row in reversed(limits)], fontsize=8)
    ax.set(xlim=(-0.12, 1.12), ylim=(-0.6, len(limits) - 0.3), xticks=[])
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)
    s = entry["stats"]
    ax.set_title(f"{title}\nPRIM box {entry['number']}: coverage {s['coverage']:.2f}, density {s['density']:.2f}, "
                 f"mass {s['mass']:.2f}. Blue: the box; grey: the range or levels in the runs", fontsize=9)
    figure.tight_layout()
    return figure


def plot_box_inputs(entry: dict, x: pd.DataFrame, y: np.ndarray, title: str):
    """Per restricted input, the share of runs with the outcome at each level (or in each tenth of its range, for a
    number), over all runs and among the runs inside the box's other restrictions, with the runs behind each bar;
    the box's part shaded."""
    from sim.experiments.figures import output_grid

    limits = entry["limits"]
    figure, axes = output_grid(len(limits), 4.6, 3.4)
    base = y.mean()
    for ax, row in zip(axes, limits):
        column = x[row["input"]]
        others = np.ones(len(x), dtype=bool)
        for other in limits:
            if other is not row:
                others &= _inside(x[other["input"]], other)
        if row["kind"] == "levels":
            groups = column.astype(str)
            order = sorted(column.cat.categories.astype(str))
            inside = [level in row["box"].split(", ") for level in order]
        else:
            edges = np.unique(np.quantile(column, np.linspace(0, 1, 11)))
            groups = pd.cut(column, edges, include_lowest=True)
            order = list(groups.cat.categories)
            inside = [interval.right > row["box_low"] and interval.left < row["box_high"] for interval in order]
        positions = np.arange(len(order))
        for offset, subset, label, colour in ((-0.2, np.ones(len(x), dtype=bool), "all runs", "tab:grey"),
                                              (0.2, others, "inside the other restrictions", "tab:red")):
            grouped = pd.Series(y[subset]).groupby(groups[subset].to_numpy(), observed=False)
            shares, counts = grouped.mean().reindex(order), grouped.size().reindex(order).fillna(0)
            bars = ax.bar(positions + offset, shares.to_numpy(dtype=float), width=0.4, color=colour, alpha=0.75,
                          label=label)
            ax.bar_label(bars, [f"{int(n)}" for n in counts], fontsize=6, padding=1, color=colour)   # runs per bar
        for position, is_in in zip(positions, inside):
            if is_in:
                ax.axvspan(position - 0.5, position + 0.5, color="gold", alpha=0.2, lw=0)
        ax.axhline(base, color="black", lw=0.8, ls="--", label="share over all runs")
        labels = order if row["kind"] == "levels" else [f"{i.left:.3g}-{i.right:.3g}" for i in order]
        ax.set_xticks(positions, labels, rotation=35 if len(order) > 4 else 0, ha="right" if len(order) > 4 else
                      "center", fontsize=7)
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("share of runs with the outcome", fontsize=8)
        ax.set_title(f"{row['input']}\nin the box (shaded): {_rule_text(row)}; qp {row['qp']:.2g}", fontsize=8)
    axes[0].legend(fontsize=7)
    figure.suptitle(f"{title}\nPRIM box {entry['number']}: where the outcome happens along each restricted input "
                    "(numbers: runs behind each bar)",
                    fontsize=10)
    figure.tight_layout()
    return figure


def _inside(column: pd.Series, row: dict) -> np.ndarray:
    if row["kind"] == "levels":
        return column.astype(str).isin(row["box"].split(", ")).to_numpy()
    return column.between(row["box_low"], row["box_high"]).to_numpy()


def plot_pairs(entry: dict, dims: list[str], title: str):
    """The EMA Workbench's pairwise scatter of the restricted numeric inputs, runs with the outcome coloured, the
    box drawn."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        grid = entry["box"].show_pairs_scatter(entry["chosen"], dims=dims)
    grid.figure.suptitle(title, y=1.02, fontsize=10)
    return grid.figure


def plot_cart(tree, title: str):
    from sklearn.tree import plot_tree

    plt = pyplot()
    leaves = tree.clf.get_n_leaves()
    figure, ax = plt.subplots(figsize=(max(8, 2.2 * leaves), 2.2 * tree.clf.get_depth() + 2))
    plot_tree(tree.clf, feature_names=cart_feature_names(tree), class_names=["no", "outcome"], filled=True,
              impurity=False, proportion=True, rounded=True, fontsize=7, ax=ax)
    ax.set_title(f"{title}\nCART: each node's share of the runs and of them without / with the outcome "
                 "(a split on name=level is a yes/no: <= 0.5 means not that level)", fontsize=9)
    return figure


# -- the command -------------------------------------------------------------------------------------------------
def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "discover", help="scenario discovery on a sweep's results: PRIM boxes and a CART tree of the inputs "
                         "where an outcome happens")
    parser.add_argument("results", help="a sweep's results folder (e.g. results/<experiment name>), or an experiment "
                                        "(name or .yaml file) to run or resume first into results/<experiment name>")
    parser.add_argument("--outcome", required=True,
                        help="a condition on the outputs, e.g. \"practising_share_final < 0.1\" or "
                             "\"cqc_latest < cqc_2014\" (latest rating worse than in 2014); allowed: " + ALLOWED)
    parser.add_argument("--name", help="a name for this analysis (the folder's name; default: from --outcome)")
    parser.add_argument("--inputs", help="comma-separated inputs to explain the outcome with (default: every input "
                                         "that varies: context_*, factor_*, param_*, scenario)")
    parser.add_argument("--min-density", type=_fraction, default=0.8,
                        help="choose the PRIM box of largest coverage with at least this density (0.8)")
    parser.add_argument("--box", type=int, help="choose this box of the first peeling trajectory instead "
                                                "(its number on prim_trajectory.csv)")
    parser.add_argument("--boxes", type=positive_int, default=1, help="successive PRIM boxes to find (1)")
    parser.add_argument("--keep-insignificant", action="store_true",
                        help=f"keep the picked box's restrictions whose quasi-p value is {SIGNIFICANT} or more "
                             "(by default they are dropped, the weakest first)")
    parser.add_argument("--peel-alpha", type=_fraction, default=0.05, help="share of runs peeled per step (0.05)")
    parser.add_argument("--paste-alpha", type=_fraction, default=0.05, help="share of runs pasted per step (0.05)")
    parser.add_argument("--mass-min", type=_fraction, default=0.05,
                        help="smallest box (PRIM) and leaf (CART), as a share of the runs (0.05)")
    parser.add_argument("--out", type=Path, help=f"output folder (default {DEFAULT_OUT}/<experiment>-<name>)")
    add_workers_option(parser, "runs of an experiment given instead of a results folder")
    parser.add_argument("--scheduler", help="Dask scheduler address: run an experiment's runs on that cluster")
    add_cluster_options(parser)
    parser.add_argument("--max-runs", type=positive_int, default=20_000,
                        help="refuse an experiment needing more runs than this (20000)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run_discover)


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not allowed; give a fraction between 0 and 1")
    return value


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")[:60] or "outcome"


def chosen_inputs(requested: str | None, available: list[str], runs: pd.DataFrame) -> list[str]:
    if requested is None:
        if not available:
            raise InputError("these results have no input that varies between runs: nothing to explain the outcome "
                             "with (a sweep over context levers, scenario factors or parameters is needed)")
        return available
    names = [name.strip() for name in requested.split(",") if name.strip()]
    unknown = [name for name in names if name not in available]
    if unknown or not names:
        constant = [name for name in unknown if name in runs]
        raise InputError(f"--inputs: {', '.join(unknown) or 'no names'} " +
                         (f"({', '.join(constant)} does not vary) " if constant else "") +
                         f"not among the inputs that vary: {', '.join(available)}")
    return names


def results_folder(args) -> Path | None:
    """The sweep's results folder: the argument if it is a folder; otherwise an experiment, whose outcome is checked
    against its outputs and whose runs are then run or resumed (None if interrupted)."""
    given = Path(args.results)
    if given.is_dir():
        return given
    from sim.experiments.cli import _run_experiment   # (cli imports this module)
    from sim.experiments.outputs import is_numeric_output
    from sim.experiments.schema import load_experiment, resolve_experiment_path

    try:
        resolve_experiment_path(args.results)
    except InputError as error:
        raise InputError(f"{args.results} is not a results folder, and {error}") from None
    experiment = load_experiment(args.results)
    outputs = experiment.outputs.final
    outcome_mask(args.outcome, pd.DataFrame({name: [0.0 if is_numeric_output(name) else "good"] for name in outputs}),
                 [])                                # its names and types, before any run
    runner = argparse.Namespace(experiment=args.results, out=None, max_runs=args.max_runs, workers=args.workers,
                                scheduler=args.scheduler, chunk_size=50, no_progress=args.no_progress)
    result = _run_experiment(experiment, runner)
    if result is None:
        return None
    print(f"{result.computed} runs computed, {result.done_before} reused; results in {result.out_dir}")
    return result.out_dir


def run_discover(args) -> int:
    started = time.monotonic()
    folder = results_folder(args)
    if folder is None:
        return 130
    runs, results_manifest = load_results(folder)
    available = design_inputs(runs)
    inputs = chosen_inputs(args.inputs, available, runs)
    outcome, defined, used = outcome_mask(args.outcome, runs[output_columns(runs)], available)
    table = runs[defined.to_numpy()].reset_index(drop=True)
    y = outcome[defined].to_numpy(dtype=bool)
    if y.sum() == 0 or y.all():
        raise InputError(f"--outcome {args.outcome!r} holds in {int(y.sum())} of {len(y)} runs: nothing to tell "
                         "apart; choose a condition that holds in some runs and not others")
    experiment = results_manifest.get("description", {}).get("experiment", {})
    name = _slug(args.name or args.outcome)
    out = args.out or DEFAULT_OUT / f"{_slug(experiment.get('name', folder.name))}-{name}"
    x = input_table(table, inputs)
    _, found = run_prim(x, y, args.boxes, args.min_density, args.box, args.peel_alpha, args.paste_alpha,
                        args.mass_min, drop_insignificant=not args.keep_insignificant)
    tree, leaves = run_cart(x, y, args.mass_min)
    context = {"results": str(folder), "experiment": experiment, "outcome": args.outcome, "reads": used,
               "runs": len(runs), "excluded": int((~defined).sum()), "cases": len(y), "hits": int(y.sum()),
               "inputs": inputs}
    with AtomicFolder(out) as target:
        written = write_discovery(target, context, x, y, table, found, tree, leaves, args)
        write_json(target / "manifest.json", {
            "kind": "orgsim discover", "package_version": sim.__version__, "git_commit": git_commit(),
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "command": shlex.join(["orgsim", *sys.argv[1:]]),
            "results": {"folder": str(folder), "fingerprint": results_manifest.get("fingerprint"),
                        "git_commit": results_manifest.get("git_commit"), "experiment": experiment.get("name")},
            "outcome": args.outcome, "outputs_read": used, "inputs": inputs,
            "runs": len(runs), "runs_excluded_no_value": context["excluded"], "runs_with_outcome": context["hits"],
            "options": {"min_density": args.min_density, "box": args.box, "boxes": args.boxes,
                        "peel_alpha": args.peel_alpha, "paste_alpha": args.paste_alpha, "mass_min": args.mass_min,
                        "keep_insignificant": args.keep_insignificant},
            "prim_boxes": [{"number": e["number"], "trajectory_box": e["chosen"], "picked": e["picked"],
                            "why": e["why"], "dropped": e["dropped"],
                            **{k: float(v) for k, v in e["stats"].items()}, "limits": e["limits"]} for e in found],
            "software": _versions(), "seconds": round(time.monotonic() - started, 1),
            "files": [path.name for path in written]})
    print(headline(context, found, leaves))
    print(f"wrote {out}/: " + ", ".join(path.name for path in written) + ", manifest.json")
    return 0


def _versions() -> dict:
    from importlib.metadata import version

    return {name: version(name) for name in ("ema_workbench", "scikit-learn", "pandas", "numpy")}


def write_discovery(folder: Path, context: dict, x, y, table, found, tree, leaves, args) -> list[Path]:
    from sklearn.tree import export_text

    title = f"{context['outcome']}: {context['hits']} of {context['cases']} runs ({context['hits'] / context['cases']:.0%})"
    cases = x.assign(run_index=table["run_index"].to_numpy(), outcome=y, prim_box=0)
    for entry in reversed(found):
        cases.loc[entry["runs_in_box"], "prim_box"] = entry["number"]
    paths = {name: folder / name for name in ("cases.csv", "prim_trajectory.csv", "prim_boxes.csv", "cart_leaves.csv",
                                              "cart_tree.txt", "report.md")}
    cases[["run_index", *x.columns, "outcome", "prim_box"]].to_csv(paths["cases.csv"], index=False)
    pd.concat([e["trajectory"].assign(prim_box=e["number"], chosen=lambda t, c=e["chosen"]: t.index == c)
               for e in found]).to_csv(paths["prim_trajectory.csv"], index_label="trajectory_box", float_format="%.6g")
    pd.DataFrame([{"prim_box": e["number"], "trajectory_box": e["chosen"], **e["stats"], **limit}
                  for e in found for limit in e["limits"]]).to_csv(paths["prim_boxes.csv"], index=False,
                                                                   float_format="%.6g")
    leaves.sort_values("density", ascending=False).to_csv(paths["cart_leaves.csv"], index=False, float_format="%.4g")
    tree_text = export_text(tree.clf, feature_names=cart_feature_names(tree), class_names=["no", "outcome"],
                            show_weights=True, decimals=3)
    paths["cart_tree.txt"].write_text(f"CART tree for {title}\n(weights: runs without, with the outcome)\n\n"
                                      + tree_text)
    figures = [save(plot_tradeoff(found, title), folder / "prim_tradeoff.png")]
    for entry in found:
        if not entry["limits"]:
            continue
        number = entry["number"]
        figures.append(save(plot_box_limits(entry, title), folder / f"prim_box{number}.png"))
        figures.append(save(plot_box_inputs(entry, x, y, title), folder / f"prim_box{number}_inputs.png"))
        numeric = [row["input"] for row in entry["limits"] if row["kind"] == "range"]
        if len(numeric) >= 2:
            figures.append(save(plot_pairs(entry, numeric, title), folder / f"prim_box{number}_pairs.png"))
    figures.append(save(plot_cart(tree, title), folder / "cart_tree.png"))
    paths["report.md"].write_text(report_markdown(context, found, leaves, tree_text, figures, args))
    return [*paths.values(), *figures]


def headline(context: dict, found: list[dict], leaves: pd.DataFrame) -> str:
    lines = [f"outcome {context['outcome']!r}: {context['hits']} of {context['cases']} runs "
             f"({context['hits'] / context['cases']:.0%})" +
             (f"; {context['excluded']} runs without a value excluded" if context["excluded"] else "")]
    for entry in found:
        s = entry["stats"]
        lines.append(f"PRIM box {entry['number']}: coverage {s['coverage']:.2f}, density {s['density']:.2f}, "
                     f"{int(s['n'])} runs; {_provenance(entry)}")
        for row in entry["limits"]:
            flag = "" if row["significant"] else "  (not significant)"
            lines.append(f"  {row['input']} {_rule_text(row)}   qp {row['qp']:.2g}{flag}")
    best = leaves.sort_values(["density", "coverage"], ascending=False).iloc[0]
    lines.append(f"CART: {len(leaves)} leaves; the densest: {best['rule']} (coverage {best['coverage']:.2f}, "
                 f"density {best['density']:.2f})")
    return "\n".join(lines)


def _provenance(entry: dict) -> str:
    """How the box was chosen: picked on the trajectory, and the restrictions dropped since."""
    text = f"trajectory box {entry['picked']}, {entry['why']}"
    if entry["dropped"]:
        text += ("; then freed as not significant: " +
                 ", ".join(f"the {d['limit']} limit of {d['input']} (qp {d['qp']:.2g})" for d in entry["dropped"]) +
                 f" (box {entry['chosen']})")
    return text


def report_markdown(context, found, leaves, tree_text, figures, args) -> str:
    experiment = context["experiment"]
    share = context["hits"] / context["cases"]
    lines = [f"# Scenario discovery: `{context['outcome']}`", "",
             f"Results: `{context['results']}`" + (f" (experiment `{experiment['name']}`"
                                                  + (f": {experiment['description'].strip().rstrip('.')}" if
                                                     experiment.get("description") else "") + ")"
                                                  if experiment.get("name") else "") + ".",
             "", f"The outcome holds in **{context['hits']} of {context['cases']} runs ({share:.0%})**"
             + (f"; {context['excluded']} runs without a value of {', '.join(context['reads'])} are left out" if
                context["excluded"] else "") + ". Each run is one case: replicates of a design point share its inputs, "
             "so no box can be denser than the model's own noise allows.", "",
             f"Inputs ({len(context['inputs'])}): " + ", ".join(f"`{name}`" for name in context["inputs"]) + ".", "",
             "## PRIM", "",
             f"Settings: peel alpha {args.peel_alpha:g}, paste alpha {args.paste_alpha:g}, smallest box "
             f"{args.mass_min:g} of the runs. **Coverage**: the share of the outcome's runs inside the box; "
             "**density**: the share of the box's runs with the outcome (against the overall share above); "
             "**mass**: the box's share of all runs. A restriction's **quasi-p value** is a one-sided binomial test "
             "of the density the box gains by it (Bryant and Lempert 2010); at or above "
             f"{SIGNIFICANT} the restriction may be noise" + ("" if args.keep_insignificant else
                                                              ", and is dropped from the picked box, the weakest first")
             + ".", "", "![trade-off](prim_tradeoff.png)", ""]
    for entry in found:
        s = entry["stats"]
        lines += [f"### Box {entry['number']}", "",
                  f"{_provenance(entry)[0].upper()}{_provenance(entry)[1:]}: coverage **{s['coverage']:.2f}**, density "
                  f"**{s['density']:.2f}** (lift {s['density'] / share:.1f}x), mass {s['mass']:.2f} "
                  f"({int(s['n'])} runs, {int(s['k'])} with the outcome)."
                  + (" Found on the runs the earlier boxes leave." if entry["number"] > 1 else ""), ""]
        if not entry["limits"]:
            lines += ["No restriction: no region of the inputs concentrates the outcome beyond this density.", ""]
            continue
        lines += ["| input | in the box | in the data | quasi-p | significant |", "|---|---|---|---|---|"]
        for row in entry["limits"]:
            lines.append(f"| `{row['input']}` | {_rule_text(row)} | {row['full']} | {row['qp']:.2g} | "
                         f"{'yes' if row['significant'] else '**no**'} |")
        lines += [""] + [f"![{path.stem}]({path.name})\n" for path in figures
                         if path.stem.startswith(f"prim_box{entry['number']}")]
    dense = leaves.sort_values(["density", "coverage"], ascending=False)
    lines += ["## CART", "",
              f"A classification tree (leaves of at least {args.mass_min:g} of the runs). Its leaves are boxes too; "
              "the densest:", "", "| leaf | rule | coverage | density | mass |", "|---|---|---|---|---|"]
    for leaf in dense.head(5).itertuples():
        lines.append(f"| {leaf.leaf} | {leaf.rule} | {leaf.coverage:.2f} | {leaf.density:.2f} | {leaf.mass:.2f} |")
    lines += ["", "```", tree_text.rstrip(), "```", "", "![CART tree](cart_tree.png)", "",
              "## Files", "",
              "`cases.csv` (each run's inputs, outcome and PRIM box), `prim_trajectory.csv` (every box on each "
              "peeling trajectory, with the boxes left by dropping restrictions), `prim_boxes.csv` (the chosen "
              "boxes' limits and quasi-p values), "
              "`cart_leaves.csv`, `cart_tree.txt`, the figures and `manifest.json` (command, options, the results' "
              "fingerprint, software versions).", ""]
    return "\n".join(lines)
