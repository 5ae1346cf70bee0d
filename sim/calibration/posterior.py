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

from .priors import split_particle
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
    for number, row in enumerate(table[[c for c in table.columns if c in PARAMETERS]].to_dict("records")):
        validate_params(row, source=f"{path} row {number + 2}")
    manifest_file = manifest_path(path)
    manifest = json.loads(manifest_file.read_text()) if manifest_file.is_file() else {}
    missing = [name for name in PARAMETERS if name not in table.columns]
    return Posterior(path, table, weights / weights.sum(), manifest, missing)
