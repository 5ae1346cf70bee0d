"""Reading a calibrated posterior file (calibration/posterior_<name>.csv) and its manifest.

Columns: every behavioural parameter of sim/parameters.yaml (free ones vary, fixed ones are
constant), per-trust scenario fields as ``TRUST.field.path`` (e.g. ``SASH.programme.l4l_cohorts_per_year``)
and ``weight`` (sums to 1).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sim.errors import InputError
from sim.params import PARAMETERS, default_params, validate_params
from sim.scenario import deep_merge, load_scenario, validate_scenario

from .priors import _nested, split_particle
from .smc import manifest_path
from .targets import TRUST_NAMES


@dataclass
class Posterior:
    path: Path
    frame: pd.DataFrame            # parameter and per-trust columns, without weight
    weights: np.ndarray            # normalised
    manifest: dict
    missing_parameters: list[str]  # parameters of this model version the file does not hold

    def parameter_set(self, row: int, trusts=TRUST_NAMES) -> tuple[dict[str, float], dict[str, dict]]:
        """Row ``row`` as (behavioural parameters, per-trust scenario overrides)."""
        return split_particle(self.frame.iloc[row].to_dict(), trusts, default_params())

    def free_columns(self) -> list[str]:
        return [p["name"] for p in self.manifest.get("priors", [])] or [
            c for c in self.frame.columns if self.frame[c].nunique() > 1]

    def changed_defaults(self) -> dict[str, tuple[float, float]]:
        """Fixed parameters whose default changed since calibration: name -> (then, now)."""
        now = default_params()
        then = self.manifest.get("fixed_params", {})
        return {k: (v, now[k]) for k, v in then.items() if k in now and not np.isclose(v, now[k])}


def _column_kind(column: str) -> str:
    trust, _, field = column.partition(".")
    if field and trust in TRUST_NAMES:
        return "per_trust"
    return "parameter" if column in PARAMETERS else "unknown"


def load_posterior(path: str | Path) -> Posterior:
    """Read and check a posterior file; InputError names the file and what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: posterior file not found")
    try:
        table = pd.read_csv(path)
    except Exception as exc:  # pandas raises many kinds for a malformed file
        raise InputError(f"{path}: cannot read the posterior as CSV ({exc})") from None
    if table.empty or "weight" not in table:
        raise InputError(f"{path}: a posterior needs rows and a 'weight' column")
    unknown = [c for c in table.columns if c != "weight" and _column_kind(c) == "unknown"]
    if unknown:
        raise InputError(f"{path}: column(s) {', '.join(unknown)} are neither parameters of this model "
                         "(sim/parameters.yaml) nor TRUST.field columns; the model changed since this "
                         "calibration: recalibrate")
    weights = pd.to_numeric(table.pop("weight"), errors="coerce").to_numpy(dtype=float)
    if not np.all(np.isfinite(weights)) or np.any(weights < 0) or weights.sum() <= 0:
        raise InputError(f"{path}: column 'weight' must hold non-negative numbers with a positive sum")
    table = check_parameter_table(table, path)
    manifest_file = manifest_path(path)
    try:
        manifest = json.loads(manifest_file.read_text()) if manifest_file.is_file() else {}
    except (OSError, ValueError) as exc:
        raise InputError(f"{manifest_file}: unreadable posterior manifest ({exc})") from None
    missing = [name for name in PARAMETERS if name not in table.columns]
    return Posterior(path, table, weights / weights.sum(), manifest, missing)


def check_parameter_table(table: pd.DataFrame, path: Path) -> pd.DataFrame:
    """The parameter and ``TRUST.field`` columns of a table of parameter sets as numbers, every value
    checked (parameter ranges; the trust's scenario with that value). InputError names the row (and
    a CSV file's line), the column and the value at fault. Other columns are left as they are."""
    path = Path(path)

    def where(row: int) -> str:
        return f"{path} row {row + 1}" + (f" (line {row + 2})" if path.suffix == ".csv" else "")

    checked = table.copy()
    for column in table.columns:
        if _column_kind(str(column)) == "unknown":
            continue
        numbers = pd.to_numeric(table[column], errors="coerce").astype(float)
        bad = ~np.isfinite(numbers.to_numpy())
        if bad.any():
            row = int(np.argmax(bad))
            raw = table[column].iloc[row]
            raise InputError(f"{where(row)}: column '{column}' " + ("is empty" if pd.isna(raw) else
                                                                   f"holds {raw!r}; give a number"))
        checked[column] = numbers
    parameters = [column for column in checked.columns if column in PARAMETERS]
    for row, values in enumerate(checked[parameters].to_dict("records")):
        validate_params(values, source=where(row))
    _check_trust_fields(checked, where)
    return checked


def _check_trust_fields(table: pd.DataFrame, where) -> None:
    """Each row's ``TRUST.field`` values applied to that trust's scenario must give a valid scenario."""
    columns: dict[str, list[str]] = {}
    for column in table.columns:
        if _column_kind(str(column)) == "per_trust":
            columns.setdefault(column.partition(".")[0], []).append(column)
    for trust, trust_columns in columns.items():
        base = load_scenario(trust).model_dump(mode="json")
        for row, values in enumerate(table[trust_columns].to_dict("records")):
            overrides = {}
            for column, value in values.items():
                overrides = deep_merge(overrides, _nested(column.partition(".")[2], value))
            try:
                validate_scenario(deep_merge(base, overrides), f"{where(row)}: the {trust} columns together")
            except InputError:
                for column, value in values.items():   # name the column at fault, if one alone is
                    validate_scenario(deep_merge(base, _nested(column.partition(".")[2], value)),
                                      f"{where(row)}: column '{column}' = {value:g}")
                raise
