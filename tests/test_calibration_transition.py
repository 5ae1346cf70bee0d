"""The calibration's proposal kernel (sim/calibration/transition.py): inside the prior box, a true density, weights
bounded."""

import numpy as np
import pandas as pd
import pyabc
import pytest

from sim.calibration.priors import Prior, PriorSet
from sim.calibration.transition import PRIOR_SHARE, DefensiveTransition, LogitNormalTransition

PRIORS = PriorSet((Prior("a", 0.0, 1.0, False, "test"), Prior("b", 0.1, 10.0, True, "test"),
                   Prior("c", 2.0, 15.0, False, "test")))


def fitted(transition):
    rng = np.random.default_rng(0)      # a population crowded towards one corner of the box
    population = pd.DataFrame({"a": rng.beta(2, 8, 100), "b": np.exp(rng.uniform(np.log(0.1), np.log(0.5), 100)),
                               "c": rng.uniform(14.0, 15.0, 100)})
    transition.fit(population, np.full(100, 0.01))
    return transition


def draws(sample, n):
    np.random.seed(1)                  # pyabc's transitions draw from numpy's global generator
    return pd.DataFrame([sample() for _ in range(n)])[["a", "b", "c"]]


@pytest.mark.parametrize("make", [lambda: LogitNormalTransition(PRIORS, 3.0), lambda: DefensiveTransition(PRIORS, 3.0)])
def test_every_proposal_lies_inside_the_prior_box_and_the_density_integrates_to_one(make):
    transition = fitted(make())
    proposals = draws(transition.rvs_single, 2000)
    assert ((proposals.a > 0) & (proposals.a < 1) & (proposals.b > 0.1) & (proposals.b < 10) & (proposals.c > 2)
            & (proposals.c < 15)).all()
    rng = np.random.default_rng(2)                 # E_prior[q / prior] is the integral of q over the box
    uniform = pd.DataFrame({"a": rng.uniform(0, 1, 20000), "b": np.exp(rng.uniform(np.log(0.1), np.log(10), 20000)),
                            "c": rng.uniform(2, 15, 20000)})
    prior_density = 1 / (1 * uniform.b * np.log(10 / 0.1) * 13)     # uniform, log-uniform, uniform
    assert (transition.pdf(uniform) / prior_density).mean() == pytest.approx(1.0, abs=0.05)
    single = [transition.pdf(pyabc.Parameter(row.to_dict())) for _, row in proposals.head(5).iterrows()]
    assert np.allclose(single, transition.pdf(proposals.head(5)))


def test_the_defensive_kernel_s_density_of_a_table_is_its_density_row_by_row():
    transition = fitted(DefensiveTransition(PRIORS, 3.0))
    proposals = draws(transition.rvs_single, 50)
    rows = [transition.pdf(pyabc.Parameter(row.to_dict())) for _, row in proposals.iterrows()]
    assert transition.pdf(proposals).tolist() == rows       # bit for bit: pyabc weighs particles one at a time


def test_the_prior_share_bounds_every_importance_weight():
    transition = fitted(DefensiveTransition(PRIORS, 3.0))
    proposals = draws(transition.rvs_single, 2000)
    prior = PRIORS.to_pyabc()
    weights = np.array([prior.pdf(pyabc.Parameter(row.to_dict())) for _, row in proposals.iterrows()]) \
        / transition.pdf(proposals)
    assert weights.max() <= 1 / PRIOR_SHARE + 1e-9
    assert np.mean(weights) == pytest.approx(1.0, abs=0.1)      # E_q[prior / q] = 1: the weights are exact
