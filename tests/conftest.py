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


class JobInterrupter:
    """Makes the calibration sampler's jobs (sim/calibration/sampler.py) raise KeyboardInterrupt, as a Ctrl-C would,
    once ``after(k)`` of them have finished; ``restore()`` lets them run again."""

    def __init__(self, monkeypatch):
        import sim.calibration.sampler as sampler
        self.monkeypatch, self.sampler, self.run_job = monkeypatch, sampler, sampler._run_job

    def after(self, count: int) -> None:
        finished = []

        def job(args):
            if len(finished) == count:
                raise KeyboardInterrupt
            finished.append(args)
            return self.run_job(args)

        self.monkeypatch.setattr(self.sampler, "_run_job", job)

    def restore(self) -> None:
        self.monkeypatch.setattr(self.sampler, "_run_job", self.run_job)


@pytest.fixture
def interrupt_jobs(monkeypatch) -> JobInterrupter:
    return JobInterrupter(monkeypatch)
