"""The calibration's distance: pyabc's adaptive L1 distance, whose scale weights survive a resume.

pyabc refits an adaptive distance's scale weights after every generation from all of that generation's
simulations, accepted and rejected. Its database keeps only the accepted ones, so a resumed run refits them from
the last generation's accepted particles alone: a narrower spread, larger weights, every distance inflated and
epsilon jumping (measured on the census blocks: SATH's first resumed generation had an ESS of 5 of 150). Here
every generation's weights are logged (pyabc's ``scale_log_file``, JSON by generation) and a resume starts from
the logged weights of its first generation, as an uninterrupted run would have.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyabc
from pyabc.distance import PNormDistance
from pyabc.storage import load_dict_from_json


def logged_scale_weights(path: Path) -> dict[int, dict[str, float]]:
    """Scale weights by generation, as pyabc logged them ({} when there is no log yet)."""
    if not path.is_file() or path.stat().st_size == 0:
        return {}
    return load_dict_from_json(str(path))


class ResumableDistance(pyabc.AdaptivePNormDistance):
    """``AdaptivePNormDistance(p=1, scale_function=rmsd)`` with the target weights fixed, logging its scale weights
    to ``log_file``; a run resumed at generation t takes generation t's logged weights instead of refitting them."""

    def __init__(self, fixed_weights: dict[str, float], log_file: Path):
        super().__init__(p=1, scale_function=pyabc.distance.rmsd, fixed_weights=fixed_weights,
                         scale_log_file=str(log_file))
        self.log_file = Path(log_file)

    def initialize(self, t: int, get_sample, x_0: dict, total_sims: int) -> None:
        logged = logged_scale_weights(self.log_file).get(t) if t > 0 else None
        if logged is None:
            super().initialize(t=t, get_sample=get_sample, x_0=x_0, total_sims=total_sims)
            return
        PNormDistance.initialize(self, t=t, get_sample=get_sample, x_0=x_0, total_sims=total_sims)
        self.scale_weights[t] = np.array([logged[key] for key in self.sumstat.get_ids()], dtype=float)
