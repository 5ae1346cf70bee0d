import numpy as np
import pytest

from sim.params import default_params
from sim.scenario import load_scenario

SMALL = 0.1  # a tenth of the staff: fast, same mechanisms


@pytest.fixture(scope="session", autouse=True)
def compiled_kernels():
    """The numba kernels compiled (or loaded from their cache) before any test: a test that interrupts a child
    process must not land its signal inside a first compile."""
    from sim.kernels import compile_all
    compile_all()


@pytest.fixture
def params():
    return default_params()


def run_model(name, overrides=None, seed=1, scale=SMALL, end=None, params=None):
    from sim.model import TrustModel
    scenario = load_scenario(name, overrides)
    model = TrustModel(scenario, params or default_params(), rng=np.random.default_rng(seed), scale=scale, end=end)
    return model.run()
