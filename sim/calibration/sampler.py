"""The calibration's local sampler: a generation made of seeded jobs, each saved as it ends.

pyabc stores a generation in its history only once the generation has ended, and a late generation of a
calibration can outlast a working session (r3's third was predicted at four hours). This sampler follows
pyabc's ``MappingSampler``: a generation of N particles is N jobs, and each job proposes and simulates until one
proposal is accepted (the first accepted of a sequence of independent proposals: an exact draw, as with any
sampler). Here each job draws its proposals from numpy's generator seeded by the calibration's seed, the
generation and the job's index, so a job's result depends only on them and on what the generation starts from
(the last population, epsilon, the distance's weights). Hence:

- **A killed generation resumes.** Each finished job is saved in ``results/calibration/NAME/generation/`` (with
  every particle it simulated, accepted or not, as the adaptive distance needs them). A resumed calibration whose
  unfinished generation starts from the same state (``GenerationContext``) loads those jobs and runs only the
  others; jobs saved for another state are discarded.
- **The same populations whatever the number of workers.** Jobs run in parallel on forked processes and are
  assembled in index order.
- **Every simulation is kept.** pyabc's database keeps only the accepted particles; once a generation is stored,
  all its simulations (parameters, statistics, distance, accepted or not) are written to
  ``results/calibration/NAME/simulations/generation_TTT.csv.gz``, from which the leave-one-trust-out posteriors
  are recomputed without new runs (sim/calibration/recycle.py).

Cost: the generation waits for its slowest job (a job's length is geometric in the acceptance rate), a few
minutes at the end of an hour's generation on two workers.
"""

from __future__ import annotations

import contextlib
import hashlib
import multiprocessing
import os
import pickle
import queue
import random
import shutil
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from pyabc.sampler import MappingSampler

JOB_DIR = "generation"       # in the calibration's folder: the finished jobs of the generation under way
SIMULATIONS_DIR = "simulations"   # in the calibration's folder: every stored generation's simulations
CONTEXT_FILE = "context.txt"
PROGRESS_EVERY = 10          # jobs between two progress lines


def generation_context(abc, t: int, seed: int) -> str:
    """A digest of what generation ``t`` starts from: epsilon, the last population and the distance's weights (the
    proposal kernel is fitted to that population). Jobs saved under another digest are not reused."""
    digest = hashlib.sha256(f"seed {seed} generation {t} epsilon {float(abc.eps(t))!r}".encode())
    if t > 0:
        population, weights = abc.history.get_distribution(t=t - 1)
        population = population.sort_index(axis=1)
        digest.update(population.to_numpy(dtype=float).tobytes() + np.asarray(weights, dtype=float).tobytes())
        digest.update(",".join(population.columns).encode())
    digest.update(np.asarray(abc.distance_function.get_weights(t), dtype=float).tobytes())
    return digest.hexdigest()


class TimeLimitReached(Exception):
    """Sampling stopped at the calibration's wall-time limit; the generation's finished jobs are saved."""


class ResumableSampler(MappingSampler):
    """pyabc's MappingSampler with seeded jobs on forked local processes, each finished job saved (module doc).

    ``context`` is set by the calibration before each generation (``generation_context``); without one (the prior
    sample that starts a new calibration, or any other use) the jobs are seeded but not saved."""

    def __init__(self, workers: int, job_dir: Path, seed: int, progress=None):
        super().__init__()
        self.sample_factory.record_rejected(True)   # every simulation is kept (module doc), not only for the distance
        self.workers = int(workers)
        self.job_dir = Path(job_dir)
        self.seed = int(seed)
        self.context: str | None = None
        self.generation: int | None = None
        self.deadline: float | None = None
        self.progress = progress or (lambda line: print(line, file=sys.stderr, flush=True))

    def start_generation(self, abc, t: int, deadline: float | None = None) -> None:
        """Called by the calibration before generation ``t``: its jobs are saved, and reused if already there; past
        ``deadline`` (``time.perf_counter()``) sampling stops with ``TimeLimitReached``, the finished jobs saved."""
        self.context = generation_context(abc, t, self.seed)
        self.deadline = deadline

    def generation_stored(self) -> None:
        """Called once pyabc has stored the generation in its history: its simulations are written to
        ``simulations/`` and its saved jobs are no longer needed."""
        if self.context is not None and self.job_dir.is_dir():
            jobs = _JobStore(self.job_dir, self.context).load(sys.maxsize)     # every saved job
            write_simulations(jobs, self.job_dir.parent / SIMULATIONS_DIR / f"generation_{self.generation:03d}.csv.gz")
            shutil.rmtree(self.job_dir)
        self.context = None

    def job_seed(self, t: int, job: int, prior_sample: bool) -> int:
        key = (int(prior_sample), t + 1, job)      # t is -1 or more; spawn keys are non-negative
        return int(np.random.SeedSequence(self.seed, spawn_key=key).generate_state(1)[0])

    def sample_until_n_accepted(self, n, simulate_one, t, *, max_eval=np.inf, all_accepted=False, ana_vars=None):
        self.generation = t
        store = _JobStore(self.job_dir, self.context) if self.context is not None else None
        done = store.load(n) if store else {}
        if done:
            self.progress(f"calibrate: generation {t}: {len(done)} of {n} jobs loaded from {self.job_dir} "
                          "(saved before the last stop)")
        todo = [(i, self.job_seed(t, i, all_accepted)) for i in range(n) if i not in done]
        started, simulated = time.perf_counter(), sum(evals for _, evals in done.values())
        with contextlib.closing(self._run(simulate_one, todo)) as finished:   # a stop here stops the workers
            for count, (i, sample, evals) in enumerate(finished, start=1):
                done[i] = (sample, evals)
                simulated += evals
                if store:
                    store.save(i, sample, evals)
                if count % PROGRESS_EVERY == 0 or count == len(todo):
                    minutes = (time.perf_counter() - started) / 60
                    left = minutes / count * (len(todo) - count)
                    self.progress(f"calibrate: generation {t}: {len(done)} of {n} accepted, {simulated} simulated "
                                  f"({len(done) / simulated:.1%}); {minutes:.1f} min, about {left:.0f} min to go")
                if self.deadline is not None and time.perf_counter() > self.deadline and count < len(todo):
                    where = f"saved in {self.job_dir}" if store else "not saved"
                    raise TimeLimitReached(f"--max-minutes reached in generation {t}: {len(done)} of {n} jobs "
                                           f"finished and {where} (--resume goes on)")
        sample = self._create_empty_sample()
        for i in range(n):
            sample += done[i][0]
        self.nr_evaluations_ = sum(evals for _, evals in done.values())
        return sample

    def _run(self, simulate_one, todo):
        """(job, sample, simulations) of every job in ``todo``, as each ends.

        As in pyabc's MulticoreEvalParallelSampler: workers forked from the main thread for the generation, taking
        the next job from a shared counter and sending results back on a queue the parent only reads (no pool: a
        pool forks replacement workers from a background thread, and a child forked while another thread holds a
        lock waits on it for ever)."""
        global _SIMULATE_ONE, _SAMPLE_FACTORY
        _SIMULATE_ONE, _SAMPLE_FACTORY = simulate_one, self.sample_factory   # forked workers inherit them
        if self.workers == 1 or len(todo) <= 1:
            yield from (_run_job(job) for job in todo)
            return
        context = multiprocessing.get_context("fork")
        next_job, results = context.Value("q", 0), context.Queue()
        workers = [context.Process(target=_work, args=(todo, next_job, results), daemon=True)
                   for _ in range(min(self.workers, len(todo)))]
        for worker in workers:
            worker.start()
        try:
            for _ in todo:
                yield _next_result(results, workers)
            for worker in workers:
                worker.join()
        finally:
            for worker in workers:
                if worker.is_alive():
                    worker.terminate()
                    worker.join()


_SIMULATE_ONE = None
_SAMPLE_FACTORY = None
WORKER_CHECK_SECONDS = 5


def _work(todo, next_job, results) -> None:
    """A worker: run jobs until none is left. Ctrl-C is left to the calibration, which stops the workers."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        with next_job.get_lock():
            k = next_job.value
            next_job.value += 1
        if k >= len(todo):
            return
        results.put(_run_job(todo[k]))


def _next_result(results, workers):
    while True:
        try:
            return results.get(timeout=WORKER_CHECK_SECONDS)
        except queue.Empty:
            failed = [w.exitcode for w in workers if w.exitcode not in (None, 0)]
            if failed:
                raise RuntimeError(f"a sampling worker died (exit code {failed[0]}); the jobs that finished are "
                                   "saved, and --resume goes on from them") from None


def _run_job(job):
    """Propose and simulate until one particle is accepted, from the job's seed (pyabc draws with numpy's and
    Python's global generators)."""
    index, seed = job
    np.random.seed(seed)
    random.seed(seed)
    sample, simulations = _SAMPLE_FACTORY(), 0
    while True:
        particle = _SIMULATE_ONE()
        simulations += 1
        sample.append(particle)
        if particle.accepted:
            return index, sample, simulations


def simulations_table(jobs: dict[int, tuple]) -> pd.DataFrame:
    """One row per simulation of a generation's jobs (job index order; in a job, the rejected proposals, then the
    accepted one): ``job``, ``accepted``, ``distance``, ``param:NAME`` and ``stat:KEY`` columns."""
    rows = []
    for index in sorted(jobs):
        sample = jobs[index][0]
        for particle in list(sample.rejected_particles) + list(sample.accepted_particles):
            row = {"job": index, "accepted": bool(particle.accepted), "distance": float(particle.distance)}
            row.update({f"param:{k}": float(v) for k, v in particle.parameter.items()})
            row.update({f"stat:{k}": float(v) for k, v in particle.sum_stat.items()})
            rows.append(row)
    return pd.DataFrame(rows)


def write_simulations(jobs: dict[int, tuple], path: Path) -> None:
    """``simulations_table`` of ``jobs`` written atomically to ``path`` (gzipped CSV, every float exact)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    simulations_table(jobs).to_csv(tmp, index=False, compression="gzip")
    os.replace(tmp, path)


class _JobStore:
    """The finished jobs of one generation on disk: one file each, written atomically; a store opened under another
    context empties the folder first."""

    def __init__(self, folder: Path, context: str):
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        marker = self.folder / CONTEXT_FILE
        if not marker.is_file() or marker.read_text().strip() != context:
            for old in self.folder.glob("*.pkl"):
                old.unlink()
            marker.write_text(context + "\n")

    def load(self, n: int) -> dict[int, tuple]:
        jobs = {}
        for path in sorted(self.folder.glob("*.pkl")):
            index = int(path.stem)
            if index < n:
                with path.open("rb") as handle:
                    jobs[index] = pickle.load(handle)
        return jobs

    def save(self, index: int, sample, simulations: int) -> None:
        path = self.folder / f"{index:05d}.pkl"
        tmp = path.with_suffix(".tmp")
        with tmp.open("wb") as handle:
            pickle.dump((sample, simulations), handle)
        os.replace(tmp, path)
