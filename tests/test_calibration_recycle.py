"""Leave-one-trust-out posteriors by importance sampling over a calibration's simulations (sim/calibration/recycle.py):
the estimator's arithmetic on a toy problem with a known answer. The reconstruction of a real calibration's weights,
distances and scale weights is tested in tests/test_calibration_run.py."""

import numpy as np
import pytest
from scipy import stats

from sim.calibration.recycle import balance_weights, matched_tolerance, weighted_quantile

OBSERVED, EPSILON, NOISE = 0.7, 0.03, 0.05


def _toy_generations(rng):
    """theta ~ U(0, 1), x = theta + N(0, NOISE); three 'generations' of proposals: the prior, then two defensive
    mixtures centred away from the posterior (so that pooling them without weights is biased)."""
    draws, densities = [], []
    mixtures = [(None, None), (0.55, 0.1), (0.6, 0.05)]
    for centre, width in mixtures:
        n = 4000
        if centre is None:
            theta = rng.uniform(size=n)
        else:
            theta = np.where(rng.uniform(size=n) < 0.2, rng.uniform(size=n), rng.normal(centre, width, size=n))
        draws.append(theta)
    pooled = np.concatenate(draws)
    for centre, width in mixtures:
        uniform = ((pooled >= 0) & (pooled <= 1)).astype(float)
        densities.append(uniform if centre is None else 0.2 * uniform + 0.8 * stats.norm.pdf(pooled, centre, width))
    return pooled, densities, [len(d) for d in draws]


def test_pooled_generations_weighted_by_the_balance_heuristic_give_the_abc_posterior():
    rng = np.random.default_rng(11)
    theta, densities, counts = _toy_generations(rng)
    x = theta + rng.normal(0, NOISE, size=len(theta))
    prior = ((theta >= 0) & (theta <= 1)).astype(float)
    weights = balance_weights(prior, densities, counts)
    keep = np.abs(x - OBSERVED) <= EPSILON
    recycled = np.average(theta[keep], weights=weights[keep])

    reference_theta = rng.uniform(size=400_000)     # plain rejection ABC from the prior, same tolerance
    reference = reference_theta[np.abs(reference_theta + rng.normal(0, NOISE, 400_000) - OBSERVED) <= EPSILON].mean()
    assert recycled == pytest.approx(reference, abs=0.006)
    assert abs(theta[keep].mean() - reference) > 0.02       # without the weights, the proposals' pull shows


def test_the_matched_tolerance_keeps_the_prior_acceptance_probability():
    rng = np.random.default_rng(2)
    distance, weights = rng.exponential(size=2000), rng.uniform(0.5, 1.5, size=2000)
    eps, p = matched_tolerance(distance, 0.3, distance, weights)
    assert np.sum(weights[distance <= eps]) == pytest.approx(np.sum(weights[distance <= 0.3]))   # same distance: same set
    fewer_targets = 0.5 * distance + rng.uniform(0, 0.05, size=2000)
    eps_fewer, p_fewer = matched_tolerance(distance, 0.3, fewer_targets, weights)
    assert p_fewer == p and np.sum(weights[fewer_targets <= eps_fewer]) / weights.sum() == pytest.approx(p, abs=1e-3)
    assert weighted_quantile(np.array([3.0, 1.0, 2.0]), np.ones(3), 0.5) == 2.0


def test_bad_calibrate_loto_input_is_a_clear_error(tmp_path, capsys):
    from sim.cli import main

    assert main(["calibrate-loto", "nosuch", "--results", str(tmp_path)]) == 2
    assert "no calibration in" in capsys.readouterr().err
    assert main(["calibrate-loto", "nosuch", "--leave-out", "SASH,NHS"]) == 2
    assert "--leave-out: NHS is not allowed" in capsys.readouterr().err
