"""Calibration of orgsim against the five trusts: targets, priors, pyabc ABC-SMC, posterior ensembles, fit report.

Entry points: ``orgsim calibrate``, ``orgsim report`` (sim/calibration/cli.py) and
``run_posterior_ensemble`` (``orgsim run --all --posterior FILE``).
"""

from .targets import load_targets, simulated_statistics  # noqa: F401
