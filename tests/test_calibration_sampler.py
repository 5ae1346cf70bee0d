"""The calibration's local sampler (sim/calibration/sampler.py): seeded jobs, saved as they end.

A toy simulator stands in for the model: each proposal is a uniform draw from numpy's global generator (as pyabc's
proposals are), accepted below 0.3."""

import time

import numpy as np
import pandas as pd
import pytest
from pyabc.parameters import Parameter
from pyabc.population import Particle

from sim.calibration.sampler import ResumableSampler

N = 12


class ToySimulator:
    def __init__(self, seconds: float = 0.0):
        self.calls, self.seconds = 0, seconds

    def __call__(self) -> Particle:
        self.calls += 1
        time.sleep(self.seconds)
        x = float(np.random.uniform())
        return Particle(m=0, parameter=Parameter({"x": x}), weight=1.0, sum_stat={"s": x}, distance=x,
                        accepted=x < 0.3, proposal_id=0, preliminary=False)


def accepted(sample) -> list[float]:
    return [p.parameter["x"] for p in sample.accepted_particles]


def test_the_same_populations_whatever_the_number_of_workers(tmp_path):
    one = ResumableSampler(1, tmp_path / "one", seed=5, progress=lambda line: None)
    two = ResumableSampler(2, tmp_path / "two", seed=5, progress=lambda line: None)
    first = one.sample_until_n_accepted(N, ToySimulator(), t=3)
    second = two.sample_until_n_accepted(N, ToySimulator(), t=3)
    assert accepted(first) == accepted(second) and len(accepted(first)) == N
    assert one.nr_evaluations_ == two.nr_evaluations_ > N        # rejected proposals are counted
    other_generation = one.sample_until_n_accepted(N, ToySimulator(), t=4)
    prior_sample = one.sample_until_n_accepted(N, ToySimulator(), t=3, all_accepted=True)
    assert accepted(other_generation) != accepted(first) and accepted(prior_sample) != accepted(first)


def test_a_killed_generation_resumes_from_its_saved_jobs(tmp_path, interrupt_jobs):
    progress = []
    uninterrupted = ResumableSampler(1, tmp_path / "whole", seed=5, progress=lambda line: None)
    uninterrupted.context = "generation 3 of this calibration"
    whole = uninterrupted.sample_until_n_accepted(N, ToySimulator(), t=3)

    sampler = ResumableSampler(1, tmp_path / "jobs", seed=5, progress=progress.append)
    sampler.context = "generation 3 of this calibration"
    interrupt_jobs.after(5)
    with pytest.raises(KeyboardInterrupt):
        sampler.sample_until_n_accepted(N, ToySimulator(), t=3)
    assert len(list((tmp_path / "jobs").glob("*.pkl"))) == 5
    interrupt_jobs.restore()

    resumed_simulator = ToySimulator()
    resumed = sampler.sample_until_n_accepted(N, resumed_simulator, t=3)
    assert accepted(resumed) == accepted(whole)
    assert sampler.nr_evaluations_ == uninterrupted.nr_evaluations_         # the saved jobs' simulations count
    assert resumed_simulator.calls < uninterrupted.nr_evaluations_           # but are not run again
    assert any("5 of 12 jobs loaded" in line for line in progress)

    sampler.generation_stored()
    assert not (tmp_path / "jobs").exists()
    # every simulation of the generation is kept, resumed jobs' included: the proposals, their statistics, which won
    kept = pd.read_csv(tmp_path / "simulations" / "generation_003.csv.gz")
    assert len(kept) == uninterrupted.nr_evaluations_ and kept.groupby("job").accepted.sum().eq(1).all()
    assert sorted(kept.loc[kept.accepted, "param:x"]) == sorted(accepted(whole))
    assert (kept["stat:s"] == kept["param:x"]).all() and (kept.accepted == (kept.distance < 0.3)).all()


def test_jobs_saved_for_another_starting_state_are_not_reused(tmp_path):
    sampler = ResumableSampler(1, tmp_path / "jobs", seed=5, progress=lambda line: None)
    sampler.context = "state A"
    sampler.sample_until_n_accepted(N, ToySimulator(), t=3)
    sampler.context = "state B"          # e.g. epsilon or the last population differ
    simulator = ToySimulator()
    sampler.sample_until_n_accepted(N, simulator, t=3)
    assert simulator.calls == sampler.nr_evaluations_      # every job run again


@pytest.mark.parametrize("workers", [1, 2])
def test_sampling_stops_at_the_deadline_with_its_finished_jobs_saved_and_no_worker_left(tmp_path, workers):
    import multiprocessing

    from sim.calibration.sampler import TimeLimitReached

    already_running = set(multiprocessing.active_children())     # e.g. joblib's workers from earlier tests
    sampler = ResumableSampler(workers, tmp_path / "jobs", seed=5, progress=lambda line: None)
    sampler.context, sampler.deadline = "generation 3", time.perf_counter()      # already past
    with pytest.raises(TimeLimitReached, match="--max-minutes reached in generation 3: 1 of 12 jobs finished") as stop:
        sampler.sample_until_n_accepted(N, ToySimulator(seconds=0.2), t=3)
    assert len(list((tmp_path / "jobs").glob("*.pkl"))) == 1
    # the jobs under way are stopped with the sampling, even while the stop's traceback is kept (as a caller may)
    assert stop.traceback and not set(multiprocessing.active_children()) - already_running
