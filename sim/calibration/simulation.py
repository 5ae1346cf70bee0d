"""Running the trusts for one parameter set: the model that calibration and the ensemble evaluate.

Seeds: trust ``k`` of run ``i`` uses ``np.random.SeedSequence(base_seed, spawn_key=(i, k))``, with
``k`` the trust's position in ``TRUST_NAMES``; replicate ``r > 0`` of a calibration particle (see
``CalibrationModel``) uses ``spawn_key=(i, k, r)``. In the posterior ensemble ``i`` is the run index.
During ABC the order in which particles are proposed depends on the sampler and on timing, so ``i``
is a 63-bit digest of the particle's parameter values instead: every simulation of the calibration
can be repeated exactly from its parameter values and the calibration's base seed.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import numpy as np

from sim.reporters import SUMMARY_REPORTERS
from sim.runner import simulate
from sim.scenario import deep_merge, load_scenario, validate_scenario

from .priors import split_particle
from .targets import TRUST_NAMES, TargetSet, cross_trust_components, simulated_statistics

COMPONENT_PREFIX = "component."   # component.R.TRUST.statistic: replicate R's per-trust value behind a cross-trust target


def particle_key(particle: dict) -> int:
    """A stable 63-bit integer from a particle's parameter values (its run index during ABC)."""
    text = ";".join(f"{k}={float(particle[k])!r}" for k in sorted(particle))
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little") >> 1


def trust_seed(base_seed: int, run_index: int, trust: str, replicate: int = 0) -> np.random.SeedSequence:
    key = (run_index, TRUST_NAMES.index(trust)) + ((replicate,) if replicate else ())
    return np.random.SeedSequence(base_seed, spawn_key=key)


def simulate_trusts(params: dict[str, float], overrides: dict[str, dict], trusts, *, base_seed: int,
                    run_index: int, scale: float, end: dt.date | None = None) -> dict[str, dict]:
    """Summaries of ``trusts`` simulated with shared ``params`` and per-trust scenario ``overrides``."""
    summaries = {}
    for trust in trusts:
        scenario = load_scenario(trust, overrides=overrides.get(trust) or None)
        result = simulate(scenario, params, seed=trust_seed(base_seed, run_index, trust), scale=scale, end=end,
                          census=SUMMARY_REPORTERS)
        summaries[trust] = result.summary
    return summaries


class CalibrationModel:
    """The pyabc model: one particle -> all calibrated trusts simulated -> target statistics.

    With ``replicates`` R > 1 every trust is run R times with independent seeds and each statistic
    is the mean over the R runs. ABC accepts a particle on its statistics; from one run, a trust
    whose rating is near a coin toss for that particle is accepted on a lucky run as often as on a
    typical one (docs/calibration.md, "An eighth calibration"). The mean of R runs weighs the
    particle by what it usually does, at R times the cost per particle.

    The trusts' scenarios are resolved once, when the model is made, so that every particle of a
    calibration (which may run for an hour, or on other machines) sees the same scenarios.
    A plain picklable object so that it runs in forked local workers and on Dask workers alike.

    With ``components`` the statistics also carry, per replicate, the per-trust values behind every ordering and
    pooled target (``component.R.TRUST.statistic``; pyabc's distance reads only the targets' keys), so that a
    calibration's simulations can be re-scored over fewer trusts (sim/calibration/recycle.py).
    """

    def __init__(self, trusts, fixed_params: dict[str, float], targets: TargetSet, base_seed: int,
                 scale: float, end: dt.date | None = None, replicates: int = 1, components: bool = False):
        self.trusts = tuple(trusts)
        self.fixed_params = dict(fixed_params)
        self.targets = targets
        self.base_seed = int(base_seed)
        self.scale = float(scale)
        self.end = end
        self.replicates = int(replicates)
        self.components = bool(components)
        self.scenarios = {trust: load_scenario(trust).model_dump(mode="json") for trust in self.trusts}

    def scenario(self, trust: str, overrides: dict | None):
        if not overrides:
            return validate_scenario(self.scenarios[trust], trust)
        return validate_scenario(deep_merge(self.scenarios[trust], overrides), f"{trust} + {overrides}")

    def __call__(self, particle, run_index: int | None = None) -> dict[str, float]:
        """``run_index``: the seeds' run index; by default the particle's digest (module doc). A screening
        gives every point of a trajectory the same index: common random numbers."""
        particle = dict(particle)
        params, overrides = split_particle(particle, self.trusts, self.fixed_params)
        run_index = particle_key(particle) if run_index is None else int(run_index)
        replicates = [self._replicate(params, overrides, run_index, r) for r in range(self.replicates)]
        replicate_stats = [simulated_statistics(summaries, self.targets) for summaries in replicates]
        stats = {key: float(np.mean([each[key] for each in replicate_stats])) for key in replicate_stats[0]}
        if self.components:
            for r, summaries in enumerate(replicates):
                stats.update({f"{COMPONENT_PREFIX}{r}.{key}": value
                              for key, value in cross_trust_components(summaries, self.targets).items()})
        return stats

    def _replicate(self, params: dict, overrides: dict, run_index: int, replicate: int) -> dict[str, dict]:
        summaries = {}
        for trust in self.trusts:
            seed = trust_seed(self.base_seed, run_index, trust, replicate)
            result = simulate(self.scenario(trust, overrides[trust]), params, seed=seed, scale=self.scale, end=self.end,
                              census=SUMMARY_REPORTERS)   # calibration reads only summaries
            summaries[trust] = result.summary
        return summaries
